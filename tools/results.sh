#!/usr/bin/env bash
# Reproduces the README's results table: for each task, collect 200 expert
# demonstrations (seed 0), train LFM, FM and MSE policies with the same
# parameter count and training steps (lfp train's defaults), and evaluate each
# on the 50 evaluation seeds 100000..100049.
#   tools/results.sh [OUTDIR]        (default results/; about 11 minutes on 2 cores)
# The table's refused column counts episodes the policy ended by refusing to
# act (a non-finite chunk: never executed, a failure); unstable counts
# episodes MuJoCo could not simulate faithfully.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results}
mkdir -p "$out"
LFP=build/lfp
[ -x "$LFP" ] || tools/setup.sh
: > "$out/results.jsonl"
for task in lift pusht avoid; do
  "$LFP" collect --env "$task" --episodes 200 --seed 0 --out "$out/$task.hdf5" --json | tail -n 1 > "$out/$task.collect.json"
  for method in lfm fm mse; do
    "$LFP" train --data "$out/$task.hdf5" --out "$out/$task.$method.lfp" --method "$method" --json \
      | tail -n 1 > "$out/$task.$method.train.json"
    "$LFP" eval --policy "$out/$task.$method.lfp" --episodes 50 --seed 100000 --json \
      | tail -n 1 > "$out/$task.$method.eval.json"
    /usr/bin/python3 - "$out/$task.$method.train.json" "$out/$task.$method.eval.json" >> "$out/results.jsonl" <<'PY'
import json, sys
t, e = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
print(json.dumps({**{k: t[k] for k in ("method", "blocks", "width", "params", "steps", "train_s", "nfe")}, **e}))
PY
    echo "$task $method done" >&2
  done
done
/usr/bin/python3 - "$out/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| task | method | blocks | params | steps | train s | success (50 seeds) | 95% CI | refused / unstable | NFE | latency p50 / p99 us | task figure |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    fig = ""
    if "max_coverage_mean" in r: fig = "mean max coverage %.3f" % r["max_coverage_mean"]
    if "left" in r: fig = "%d left, %d right" % (r["left"], r["right"])
    print("| %s | %s | %d | %d | %d | %.0f | %.0f%% | [%.0f%%, %.0f%%] | %d / %d | %d | %.0f / %.0f | %s |" % (
        r["env"], r["method"], r["blocks"], r["params"], r["steps"], r["train_s"], 100 * r["success_rate"],
        100 * r["ci95"][0], 100 * r["ci95"][1], r["refused"], r["unstable"], r["nfe"], r["latency_us_p50"],
        r["latency_us_p99"], fig))
PY
