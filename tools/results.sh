#!/usr/bin/env bash
# Reproduces the README's results table with Diffusion Policy's protocol: for
# each task, collect expert demonstrations (seed 0; 200, pusht 1000: README's
# Push-T diagnosis shows why); for each method and
# network, train with lfp train's defaults for that task (its recipe) from 3
# training seeds; evaluate every policy on the 50 evaluation seeds
# 100000..100049; report per cell the mean and standard deviation over the
# training seeds, the best seed, and a 95% Wilson interval over all 150
# episodes.
#   tools/results.sh [OUTDIR]          (default results/)
# Environment: LFP (the program, default build/lfp), TASKS (default "lift pusht avoid can"), METHODS ("lfm fm mse"),
# NETS ("default": the network of the task's recipe, e.g. pusht's U-Net;
# or "mlp unet transformer" to compare them on every task; "transformer" is
# sized to the task's parameter count: width 88 on lift and can (the MLP's
# 0.56M parameters), 136 on pusht (its U-Net's 1.18M), 84 on avoid (486942
# against its MLP's 474400; README's avoid row ran at 72, 380634, with
# EXTRA="--width 72": the last --width wins); "latentD",
# e.g. "latent16", is the task's default network flowing in a D-value latent
# of an autoencoder of width 128: --latent D --ae-width 128, its parameters
# counted in the params column; pusht's recipe reads the latent as 4 tokens
# of D / 4 values for its U-Net and trains it 32000 steps), SEEDS ("0 1 2"), EXTRA (more lfp train flags, e.g.
# "--steps 8000" for a quick look: the table then says so). Runs are kept:
# a cell whose eval JSON exists is not trained again, so an interrupted run
# resumes where it stopped (delete OUTDIR to start afresh). How long it runs
# on this project's 2-core machine is in README, beside the table.
# The refused column counts episodes the policy ended by refusing to act (a
# non-finite chunk: never executed, a failure); unstable counts episodes
# MuJoCo could not simulate faithfully.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results}
mkdir -p "$out"
LFP=${LFP:-build/lfp}
[ -x "$LFP" ] || tools/setup.sh
TASKS=${TASKS:-lift pusht avoid can}
METHODS=${METHODS:-lfm fm mse}
NETS=${NETS:-default}
SEEDS=${SEEDS:-0 1 2}
EXTRA=${EXTRA:-}
t0=$(date +%s)
: > "$out/results.jsonl"
for task in $TASKS; do
  demos=200
  [ "$task" = pusht ] && demos=1000
  [ -f "$out/$task.hdf5" ] ||
    "$LFP" collect --env "$task" --episodes "$demos" --seed 0 --out "$out/$task.hdf5" --json | tail -n 1 > "$out/$task.collect.json"
  for method in $METHODS; do
    for net in $NETS; do
      for seed in $SEEDS; do
        cell="$out/$task.$method.$net.s$seed"
        if [ ! -s "$cell.eval.json" ]; then
          netflag=""
          case "$net" in
          default) ;;
          transformer)
            w=88
            [ "$task" = pusht ] && w=136
            [ "$task" = avoid ] && w=84
            netflag="--net transformer --width $w" ;;
          latent*) netflag="--latent ${net#latent} --ae-width 128" ;;
          *) netflag="--net $net" ;;
          esac
          # shellcheck disable=SC2086
          "$LFP" train --data "$out/$task.hdf5" --out "$cell.lfp" --method "$method" $netflag --seed "$seed" $EXTRA \
            --json | tail -n 1 > "$cell.train.json"
          "$LFP" eval --policy "$cell.lfp" --episodes 50 --seed 100000 --json | tail -n 1 > "$cell.eval.json"
        fi
        /usr/bin/python3 - "$cell.train.json" "$cell.eval.json" "$seed" >> "$out/results.jsonl" <<'PY'
import json, sys
t, e = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
keep = ("method", "blocks", "net", "params", "steps", "train_s", "nfe")
row = {**{k: t[k] for k in keep}, "train_seed": int(sys.argv[3]), **e}
if t.get("latent"):  # a latent flow: its decoder is part of the policy
    row["net"] = "%s, latent %d" % (t["net"], t["latent"])
    row["params"] = t["params"] + t["ae_params"]
    row["ae_valid_mse"] = t["ae_valid_mse"]
print(json.dumps(row))
PY
        echo "results: $task $method $net seed $seed done ($(( $(date +%s) - t0 )) s so far)" >&2
      done
    done
  done
done
echo "results: all cells done in $(( $(date +%s) - t0 )) s" >&2
/usr/bin/python3 - "$out/results.jsonl" "$EXTRA" <<'PY'
import json, math, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
cells = {}
for r in rows:
    cells.setdefault((r["env"], r["method"], r["net"]), []).append(r)
def wilson(k, n, z=1.959963984540054):
    p = k / n; den = 1 + z * z / n; mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return mid - half, mid + half
def ms(v, fmt):
    return (fmt % st.mean(v)) + (" ± " + fmt % st.stdev(v) if len(v) > 1 else "")
if sys.argv[2]:
    print("(lfp train flags added to every cell: `%s`)\n" % sys.argv[2])
print("| task | method | net | params | steps | train s | success: mean ± sd (max) | score: mean ± sd (max) "
      "| success 95% CI (all episodes) | refused / unstable | NFE | latency p50 / p99 us | task figure |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for (env, method, net), rs in cells.items():
    succ = [100 * r["success_rate"] for r in rs]
    score = [r["mean_score"] for r in rs]
    k = sum(round(r["success_rate"] * r["episodes"]) for r in rs)
    n = sum(r["episodes"] for r in rs)
    lo, hi = wilson(k, n)
    fig = ""
    if "max_coverage_mean" in rs[0]: fig = "mean max coverage %.3f" % st.mean(r["max_coverage_mean"] for r in rs)
    if "left" in rs[0]: fig = "%d left, %d right" % (sum(r["left"] for r in rs), sum(r["right"] for r in rs))
    if "ae_valid_mse" in rs[0]:
        fig = (fig + "; " if fig else "") + "reconstruction MSE %.4f (validation)" % st.mean(r["ae_valid_mse"] for r in rs)
    print("| %s | %s | %s | %d | %d | %.0f | %s%% (%.0f%%) | %s (%.3f) | [%.0f%%, %.0f%%] of %d | %d / %d | %d | %.0f / %.0f | %s |" % (
        env, method, net, rs[0]["params"], rs[0]["steps"], st.mean(r["train_s"] for r in rs), ms(succ, "%.0f"),
        max(succ), ms(score, "%.3f"), max(score), 100 * lo, 100 * hi, n, sum(r["refused"] for r in rs),
        sum(r["unstable"] for r in rs), rs[0]["nfe"], st.mean(r["latency_us_p50"] for r in rs),
        st.mean(r["latency_us_p99"] for r in rs), fig))
PY
