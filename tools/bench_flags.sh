#!/usr/bin/env bash
# What portable compiler flags cost: build lfp twice (LFP_NATIVE=OFF, the
# default, and LFP_NATIVE=ON: -march=native) in build-flags/, then run
# `lfp bench flowcore --json --no-torch --no-unet` with each, alternated,
# ROUNDS times (default 3), and print the medians side by side. Run it alone:
# two benchmarks at once distort each other.
#   tools/bench_flags.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
for v in portable native; do
  flag=OFF; [ $v = native ] && flag=ON
  cmake -S . -B build-flags/$v -DCMAKE_BUILD_TYPE=Release -DLFP_NATIVE=$flag > /dev/null
  cmake --build build-flags/$v -j"$(nproc)" --target lfp > /dev/null
done
out=build-flags/results.jsonl
: > "$out"
for r in $(seq "$rounds"); do
  for v in portable native; do
    build-flags/$v/lfp bench flowcore --json --no-torch --no-unet 2> /dev/null | tail -1 | \
      /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); d['variant']='$v'; print(json.dumps(d))" >> "$out"
    echo "bench_flags: round $r, $v done" >&2
  done
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = [("train_samples_per_s", "training samples/s", "%.0f"), ("peak_fraction", "fraction of the sgemm peak", "%.3f"),
        ("fwd_b1_us", "batch-1 forward (us)", "%.1f"), ("sgemm_peak_gflops", "sgemm peak (GFLOP/s)", "%.1f"),
        ("pinned_one_step_ms", "small run, one thread (ms/step)", "%.3f")]
med = {v: {k: statistics.median(r[k] for r in rows if r["variant"] == v) for k, _, _ in keys} for v in ("portable", "native")}
print(f"{len(rows) // 2} rounds, alternated; OpenBLAS {rows[0]['blas_core']}, {rows[0]['threads']} threads")
print(f"{'figure':34s} {'portable':>10s} {'native':>10s} {'portable/native':>16s}")
for k, name, fmt in keys:
    p, n = med["portable"][k], med["native"][k]
    print(f"{name:34s} {fmt % p:>10s} {fmt % n:>10s} {p / n:16.3f}")
print(json.dumps({"bench": "flags", "rounds": len(rows) // 2, "medians": med}))
PY
