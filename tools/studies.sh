#!/usr/bin/env bash
# The studies behind README's few-NFE and real-time figures (issue 12); the
# results table itself is tools/results.sh. Each study writes a markdown
# table to OUTDIR/STUDY.md and keeps its runs, so an interrupted study
# resumes (delete OUTDIR to start afresh).
#   tools/studies.sh distill [OUTDIR]   teachers vs naive few steps vs students
#   tools/studies.sh realtime [OUTDIR]  replace / blend / rtc at several delays
#   tools/studies.sh dfm [OUTDIR]       DFM: toy W2 against the NFE; avoid
#   tools/studies.sh video [OUTDIR]     what a video frame costs: each task at
#                                       320x320, pusht at 640x480 (expert demos)
#   tools/studies.sh latent-toy [OUTDIR] lfp toy in a latent: 8gaussians as a
#                                       curved sheet in 16 dimensions, FM on the
#                                       points and in latents of 1, 2, 4, 8
#                                       values, with the two parts of the bound
#   tools/studies.sh tfm-cond [OUTDIR]  the transformer's conditioning, adaLN-Zero
#                                       vs FiLM vs cross-attention at equal
#                                       parameters (TFM_CONDS: some; lift, FM,
#                                       training seed 0, the selection seeds
#                                       200000..; the runs side by side on
#                                       one thread each)
#   tools/studies.sh latent-recon [OUTDIR] the autoencoder's reconstruction
#                                       error against the latent size d on
#                                       lift, pusht and can (lfp train's
#                                       autoencoder, width 128 as results.sh;
#                                       the flow runs 1 step: only the fit counts)
#   tools/studies.sh latent-steps [OUTDIR] pusht's latent flow (d 8) at the
#                                       recipe's 8000 steps and at 32000 (FM,
#                                       training seed 0, the selection seeds
#                                       200000..; one thread each)
#   tools/studies.sh tfm-steps [OUTDIR] pusht's transformer (width 136, its
#                                       U-Net's parameters) at the recipe's
#                                       8000 steps and at 16000 (as latent-steps)
# Environment: LFP (default build/lfp), TASKS, METHODS (distill: "lfm fm"),
# SEEDS (training seeds, default "0 1 2"), EPISODES (evaluation episodes,
# default 50), DISTILL_FLAGS (extra lfp distill flags, e.g. "--steps 1000";
# default none; pusht: "--steps 2000 --pairs 16384", see README), DELAYS (realtime, ms:
# "0 50 120 250"), JOINS ("replace blend rtc"), RT_TASKS (realtime: "lift"),
# TFM_CONDS (tfm-cond: "adaln:80 film:88 cross:84", conditioning:width).
# Training uses lfp train's defaults; evaluation the seeds 100000.. only.
set -euo pipefail
cd "$(dirname "$0")/.."
study=${1:?usage: tools/studies.sh distill|realtime|dfm|video|latent-toy|tfm-cond|latent-recon|latent-steps|tfm-steps [OUTDIR]}
out=${2:-results/$study}
mkdir -p "$out"
LFP=${LFP:-build/lfp}
[ -x "$LFP" ] || tools/setup.sh
SEEDS=${SEEDS:-0 1 2}
EPISODES=${EPISODES:-50}
t0=$(date +%s)

# demos DIR TASK: the task's expert demonstrations (seed 0; 200, pusht 1000 as
# tools/results.sh), once
demos() {
  local n=200
  [ "$2" = pusht ] && n=1000
  [ -f "$1/$2.hdf5" ] || "$LFP" collect --env "$2" --episodes "$n" --seed 0 --out "$1/$2.hdf5" > /dev/null
}
# policy TASK METHOD SEED [train flags]: trained once, path on stdout
policy() {
  local p="$out/$1.$2.s$3.lfp"
  [ -f "$p" ] || "$LFP" train --data "$out/$1.hdf5" --out "$p" --method "$2" --seed "$3" "${@:4}" > "$p.train.log"
  echo "$p"
}
# evaluate NAME POLICY [eval flags]: one eval JSON, once
evaluate() {
  local j="$out/$1.eval.json"
  [ -s "$j" ] || "$LFP" eval --policy "$2" --episodes "$EPISODES" --seed 100000 --json "${@:3}" | tail -n 1 > "$j"
}
# The selection studies (tfm-cond, latent-steps, tfm-steps) compare variants
# of one task's FM policy, training seed 0, trained side by side on one
# thread each and evaluated on the selection seeds 200000.. only.
# side NAME TASK [train flags]: trains NAME in the background, once
side() {
  local n=$1 task=$2
  [ -f "$out/$n.lfp" ] || FC_THREADS=1 "$LFP" train --data "$out/$task.hdf5" --out "$out/$n.lfp" --method fm --seed 0 \
    --json "${@:3}" 2> "$out/$n.train.log" | tail -n 1 > "$out/$n.train.json" &
}
# select_table NAME:LABEL...: evaluates each NAME on the selection seeds
# (once) and prints the comparison table; `wait` for the side runs first
select_table() {
  echo "| variant | net | params | steps | train s (1 thread, runs side by side) | final train / valid loss | success (selection seeds) | score | refused | task figure |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  local v j
  for v in "$@"; do
    j="$out/${v%%:*}.select.json"
    [ -s "$j" ] || "$LFP" eval --policy "$out/${v%%:*}.lfp" --episodes "$EPISODES" --seed 200000 --json |
      tail -n 1 > "$j"
    /usr/bin/python3 - "$out/${v%%:*}.train.json" "$j" "${v#*:}" <<'PY'
import json, sys
t, e = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
fig = "mean max coverage %.3f" % e["max_coverage_mean"] if "max_coverage_mean" in e else ""
if "left" in e: fig = "%d left, %d right" % (e["left"], e["right"])
print("| %s | %s | %d | %d | %.0f | %.4f / %.4f | %.0f%% (%d/%d) | %.3f | %d | %s |" % (sys.argv[3], t["net_desc"],
      t["params"], t["steps"], t["train_s"], t["train_loss"], t["valid_loss"], 100 * e["success_rate"],
      round(e["success_rate"] * e["episodes"]), e["episodes"], e["mean_score"], e["refused"], fig))
PY
  done
}

case "$study" in
distill)
  TASKS=${TASKS:-lift avoid}
  METHODS=${METHODS:-lfm fm}
  for task in $TASKS; do
    demos "$out" "$task"
    flags=${DISTILL_FLAGS:-}
    [ "$task" = pusht ] && flags=${DISTILL_FLAGS:---steps 2000 --pairs 16384}
    for m in $METHODS; do
      for s in $SEEDS; do
        T=$(policy "$task" $m "$s")
        S="$out/$task.$m.s$s.student.lfp"
        [ -f "$S" ] || "$LFP" distill --policy "$T" --data "$out/$task.hdf5" --out "$S" --seed "$s" $flags --json |
          tail -n 1 > "$S.json"
        evaluate "$task.$m.s$s.teacher" "$T"
        evaluate "$task.$m.s$s.euler1" "$T" --sampler euler --ode-steps 1
        evaluate "$task.$m.s$s.euler2" "$T" --sampler euler --ode-steps 2
        evaluate "$task.$m.s$s.student" "$S"
        echo "studies: distill $task $m seed $s done ($(( $(date +%s) - t0 )) s)" >&2
      done
    done
  done
  /usr/bin/python3 - "$out" "$TASKS" "$SEEDS" "$METHODS" > "$out/distill.md" <<'PY'
import json, statistics as st, sys, os
out, tasks, seeds, methods = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
def ms(v, f):
    return (f % st.mean(v)) + (" ± " + f % st.stdev(v) if len(v) > 1 else "")
print("| task | method | sampler | NFE | success: mean ± sd | score | latency p50 / p99 us | distillation s | task figure |")
print("|---|---|---|---|---|---|---|---|---|")
for task in tasks:
    for m in methods:
        for kind, label in (("teacher", "teacher (RK4, its steps)"), ("euler1", "teacher, Euler 1 step per block"),
                            ("euler2", "teacher, Euler 2 steps per block"), ("student", "distilled student")):
            rs = [json.load(open(f"{out}/{task}.{m}.s{s}.{kind}.eval.json")) for s in seeds]
            dist = ""
            if kind == "student":
                ds = [json.load(open(f"{out}/{task}.{m}.s{s}.student.lfp.json"))["train_s"] for s in seeds]
                dist = "%.0f" % st.mean(ds)
            fig = ""
            if "left" in rs[0]: fig = "%d left, %d right" % (sum(r["left"] for r in rs), sum(r["right"] for r in rs))
            if "max_coverage_mean" in rs[0]: fig = "coverage %.3f" % st.mean(r["max_coverage_mean"] for r in rs)
            print("| %s | %s | %s | %d | %s%% | %s | %.0f / %.0f | %s | %s |" % (
                task, m, label, rs[0]["nfe"], ms([100 * r["success_rate"] for r in rs], "%.0f"),
                ms([r["mean_score"] for r in rs], "%.3f"), st.mean(r["latency_us_p50"] for r in rs),
                st.mean(r["latency_us_p99"] for r in rs), dist, fig))
PY
  ;;
realtime)
  RT_TASKS=${RT_TASKS:-lift}
  DELAYS=${DELAYS:-0 50 120 250}
  JOINS=${JOINS:-replace blend rtc}
  port=${LFP_STUDY_PORT:-5591}
  for task in $RT_TASKS; do
    demos "$out" "$task"
    P=$(policy "$task" fm 0)
    "$LFP" serve --policy "$P" --bind "tcp://127.0.0.1:$port" > "$out/serve.log" 2>&1 &
    server=$!
    trap 'kill -TERM $server 2> /dev/null || true' EXIT
    for _ in $(seq 100); do grep -q "protocol [0-9]" "$out/serve.log" && break; sleep 0.1; done
    for d in $DELAYS; do
      for j in $JOINS; do
        r="$out/$task.$j.d$d.sim.json"
        [ -s "$r" ] || "$LFP" sim --connect "tcp://127.0.0.1:$port" --mode realtime --episodes "$EPISODES" --seed 100000 \
          --delay-ms "$d" --join "$j" --json | tail -n 1 > "$r"
        echo "studies: realtime $task $j ${d} ms done ($(( $(date +%s) - t0 )) s)" >&2
      done
    done
    kill -TERM $server
    wait $server || true
    trap - EXIT
  done
  /usr/bin/python3 - "$out" "$RT_TASKS" "$DELAYS" "$JOINS" > "$out/realtime.md" <<'PY'
import json, sys
out, tasks, delays, joins = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
print("| task | delay ms | join | success | score | seam jump mean | late actions | held steps | round trip p50 / p99 us |")
print("|---|---|---|---|---|---|---|---|---|")
for t in tasks:
    for d in delays:
        for j in joins:
            r = json.load(open(f"{out}/{t}.{j}.d{d}.sim.json"))
            print("| %s | %s | %s | %.0f%% | %.3f | %.4f | %d | %d | %.0f / %.0f |" % (
                t, d, j, 100 * r["success_rate"], r["mean_score"], r["seam_jump_mean"], r["late_actions"],
                r["held_steps"], r["rtt_us_p50"], r["rtt_us_p99"]))
PY
  ;;
dfm)
  for dist in 8gaussians moons checkerboard; do
    j="$out/toy.$dist.json"
    [ -s "$j" ] || "$LFP" toy --dist "$dist" --method all --sweep 1,2,4,8,16,32 --json | tail -n 1 > "$j"
    echo "studies: dfm toy $dist done ($(( $(date +%s) - t0 )) s)" >&2
  done
  TASKS=${TASKS:-avoid}
  for task in $TASKS; do
    demos "$out" "$task"
    for s in $SEEDS; do
      evaluate "$task.dfm.s$s" "$(policy "$task" dfm "$s")"
      echo "studies: dfm $task seed $s done ($(( $(date +%s) - t0 )) s)" >&2
    done
  done
  /usr/bin/python3 - "$out" "$TASKS" "$SEEDS" > "$out/dfm.md" <<'PY'
import json, statistics as st, sys
out, tasks, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
print("W2 against the NFE (first-order steps: Euler for fm and lfm, Euler-Maruyama for dfm; `lfp toy --method all --sweep`), and each method's default sampler (RK4 at NFE 32 for the flows, Euler-Maruyama with 32 steps for dfm):\n")
for dist in ("8gaussians", "moons", "checkerboard"):
    d = json.load(open(f"{out}/toy.{dist}.json"))
    nfe = d["results"][0]["sweep_nfe"]
    if dist == "8gaussians":
        print("| distribution | method | " + " | ".join("NFE %d" % n for n in nfe) + " | default (NFE 32) | W2 floor |")
        print("|---|---|" + "---|" * (len(nfe) + 2))
    for r in d["results"]:
        print("| %s | %s | " % (dist, r["method"]) + " | ".join("—" if w is None else "%.3f" % w for w in r["sweep_w2"]) +
              " | %.3f | %.3f |" % (r["w2"], r["w2_floor"]))
print()
print("| task | method | success: mean ± sd | score | task figure | NFE |")
print("|---|---|---|---|---|---|")
for t in tasks:
    rs = [json.load(open(f"{out}/{t}.dfm.s{s}.eval.json")) for s in seeds]
    sr = [100 * r["success_rate"] for r in rs]
    fig = "%d left, %d right" % (sum(r["left"] for r in rs), sum(r["right"] for r in rs)) if "left" in rs[0] else ""
    print("| %s | dfm | %.0f%s%% | %.3f | %s | %d |" % (t, st.mean(sr), " ± %.0f" % st.stdev(sr) if len(sr) > 1 else "",
          st.mean(r["mean_score"] for r in rs), fig, rs[0]["nfe"]))
PY
  ;;
video)
  # 4 expert demos per task, replayed into videos (lfp replay --video draws
  # them from their recorded states, as lfp eval --video does)
  {
    echo "| task | size | frames | drawing, ms/frame | encoding, ms/frame | bytes/frame |"
    echo "|---|---|---|---|---|---|"
    for t in lift pusht can avoid pusht@640x480; do
      task=${t%@*}
      size=320x320
      [ "$t" != "$task" ] && size=${t#*@}
      [ -f "$out/$task.hdf5" ] || "$LFP" collect --env "$task" --episodes 4 --seed 0 --out "$out/$task.hdf5" > /dev/null
      rm -rf "$out/$t.videos"
      "$LFP" replay "$out/$task.hdf5" --video "$out/$t.videos" --video-episodes 4 --size "$size" --json \
        > "$out/$t.json" 2> /dev/null
      /usr/bin/python3 - "$out/$t.json" "$task" "$size" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))
n = d["videos"]
frames = sum(v["frames"] for v in n)
size = sum(os.path.getsize(v["file"]) for v in n)
print("| %s | %s | %d | %.1f | %.1f | %.0f |" % (sys.argv[2], sys.argv[3], frames, d["video_ms_per_frame_draw"],
      d["video_ms_per_frame_encode"], size / frames))
PY
    done
  } | tee "$out/video.md"
  ;;
latent-toy)
  LATENTS=${LATENTS:-0 1 2 4 8}
  {
    echo "| latent d | flow params | AE params | W2 total | W2 floor | W2 autoencoder | W2 latent | reconstruction MSE | modes | train s |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for d in $LATENTS; do
      j="$out/toy.latent$d.json"
      [ -s "$j" ] || "$LFP" toy --dist 8gaussians --method fm --ambient 16 --latent "$d" --json 2> /dev/null | tail -n 1 > "$j"
      /usr/bin/python3 - "$j" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
pm = lambda k: "%.3f ± %.3f" % (r[k], r[k + "_sd"]) if k in r else "-"
print("| %s | %d | %s | %s | %s | %s | %s | %s | %d/%d | %.0f |" % (r["latent"] or "none (the 16-D points)", r["params"],
      r.get("ae_params", "-"), pm("w2"), pm("w2_floor"), pm("w2_ae"), pm("w2_latent"),
      "%.5f" % r["ae_mse"] if "ae_mse" in r else "-", r["modes_covered"], r["modes_total"], r["train_s"]))
PY
    done
  } | tee "$out/latent-toy.md"
  ;;
tfm-cond)
  # lift's parameter count (its MLP's, 561520): adaLN at width 80 (559895),
  # FiLM, whose modulation is a third smaller, at width 88 (573855), cross-
  # attention, without modulation but with a memory MLP and a second
  # attention a block, at width 84 (555911); TFM_CONDS picks some of them
  demos "$out" lift
  rows=()
  for v in ${TFM_CONDS:-adaln:80 film:88 cross:84}; do
    side "lift.${v%:*}" lift --net transformer --tfm-cond "${v%:*}" --width "${v#*:}"
    rows+=("lift.${v%:*}:${v%:*}")
  done
  wait
  select_table "${rows[@]}" | tee "$out/tfm-cond.md"
  ;;
latent-recon)
  # d from 4 to the whole chunk (pusht's 16 x 2 = 32, lift's and can's 16 x 7 = 112)
  {
    echo "| task | chunk values | latent d | AE params | reconstruction MSE train | validation | fit s |"
    echo "|---|---|---|---|---|---|---|"
    for task in lift pusht can; do
      demos "$out" "$task"
      ds="4 8 16 32 64 112"
      # pusht's chunk is 32 values (its recipe reads the latent as 4 tokens)
      [ "$task" = pusht ] && ds="4 8 16 32"
      for d in $ds; do
        j="$out/$task.latent$d.json"
        [ -s "$j" ] || FC_THREADS=1 "$LFP" train --data "$out/$task.hdf5" --out "$out/$task.latent$d.lfp" --method fm \
          --latent "$d" --ae-width 128 --steps 1 --seed 0 --json 2> /dev/null | tail -n 1 > "$j"
        /usr/bin/python3 - "$j" "$task" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
print("| %s | %d | %d | %d | %.5f | %.5f | %.1f |" % (sys.argv[2], t["chunk_values"], t["latent"], t["ae_params"],
      t["ae_train_mse"], t["ae_valid_mse"], t["ae_s"]))
PY
      done
    done
  } | tee "$out/latent-recon.md"
  ;;
latent-steps)
  demos "$out" pusht
  for steps in 8000 32000; do side "pusht.latent8.$steps" pusht --latent 8 --ae-width 128 --steps "$steps"; done
  wait
  select_table pusht.latent8.8000:8000 pusht.latent8.32000:32000 | tee "$out/latent-steps.md"
  ;;
tfm-steps)
  # the transformer at pusht's parameter count (width 136, 1185690, its
  # U-Net's 1.18M) at the recipe's 8000 steps and at 16000
  demos "$out" pusht
  for steps in 8000 16000; do side "pusht.tfm.$steps" pusht --net transformer --width 136 --steps "$steps"; done
  wait
  select_table pusht.tfm.8000:8000 pusht.tfm.16000:16000 | tee "$out/tfm-steps.md"
  ;;
*)
  echo "tools/studies.sh: unknown study '$study' (distill, realtime, dfm, video, latent-toy, tfm-cond, latent-recon, latent-steps or tfm-steps)" >&2
  exit 2
  ;;
esac
echo "studies: $study done in $(( $(date +%s) - t0 )) s; table in $out/$study.md" >&2
