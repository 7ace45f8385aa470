#!/usr/bin/env bash
# Data-parallel training, measured and projected: samples/s of `lfp train`
# with 2 ranks x 1 thread against 1 rank x 1 thread on this machine (the same
# global batch), then, on paper, what an allreduce of the gradient costs
# across machines: its bytes (one float per parameter of a block, plus the
# loss) against the measured step time, at 10 and 100 Gbit/s (a ring
# allreduce moves 2 (K - 1) / K of the buffer per rank; latency ignored).
#   tools/bench_mpi.sh [STEPS]   (default 3000; lift's default MLP and pusht's U-Net recipe)
set -euo pipefail
cd "$(dirname "$0")/.."
LFP=${LFP:-build/lfp}
STEPS=${1:-3000}
[ -x "$LFP" ] || tools/setup.sh
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_btl=self,vader
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$LFP" collect --env lift --episodes 100 --seed 0 --out "$tmp/lift.hdf5" > /dev/null
"$LFP" collect --env pusht --episodes 100 --seed 0 --out "$tmp/pusht.hdf5" > /dev/null
for task in lift pusht; do
  args=(--data "$tmp/$task.hdf5" --steps "$STEPS" --ckpt-every 100000000)
  FC_THREADS=1 "$LFP" train "${args[@]}" --out "$tmp/$task.1.lfp" --json > "$tmp/$task.1.json" 2> /dev/null
  FC_THREADS=1 mpirun --oversubscribe -np 2 -x FC_THREADS "$LFP" train "${args[@]}" --out "$tmp/$task.2.lfp" --json \
    > "$tmp/$task.2.json" 2> /dev/null
done
/usr/bin/python3 - "$tmp" <<'PY'
import json, sys
tmp = sys.argv[1]
print("| task, network | parameters | 1 rank x 1 thread | 2 ranks x 1 thread | speedup | allreduce bytes | step time "
      "| allreduce at 10 Gbit/s | at 100 Gbit/s |")
print("|---|---|---|---|---|---|---|---|---|")
for task in ("lift", "pusht"):
    a, b = (json.load(open(f"{tmp}/{task}.{k}.json")) for k in (1, 2))
    sps = [r["steps"] * r["batch"] / r["train_s"] for r in (a, b)]
    step = a["train_s"] / a["steps"]
    nbytes = 4 * (a["params"] // a["blocks"] + 1)
    ring = lambda gbit, K=2: 2 * (K - 1) / K * nbytes * 8 / (gbit * 1e9)  # noqa: E731
    print(f"| {task}, {a['net_desc']} | {a['params']} | {sps[0]:.0f}/s | {sps[1]:.0f}/s | {sps[1] / sps[0]:.2f}x | "
          f"{nbytes / 1e6:.2f} MB | {1e3 * step:.1f} ms | {1e3 * ring(10):.2f} ms | {1e3 * ring(100):.3f} ms |")
PY
