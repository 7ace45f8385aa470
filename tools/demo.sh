#!/usr/bin/env bash
# The main job end to end on a built-in default: collect 200 lift
# demonstrations with the scripted expert, train a Local Flow Matching policy
# on them, evaluate it in closed loop in MuJoCo on the 50 evaluation seeds,
# then serve it as a ZeroMQ controller node (lfp serve) and drive the MuJoCo
# simulator as a separate node against it (lfp sim): 10 episodes in lockstep
# (the same results as lfp eval on those seeds) and 5 on the wall clock at the
# task's 20 Hz. It ends by writing the run's report (lfp report: one HTML
# page with the policy's card, training curves, evaluation table, latency,
# action traces and videos of successes and failures) and printing its path.
# About 5 minutes on 2 cores. Files go to build/demo/. Extra arguments go to
# `lfp train`; LFP_DEMO_PORT picks the port (default 5555).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
dir=build/demo
ep="tcp://127.0.0.1:${LFP_DEMO_PORT:-5555}"
mkdir -p "$dir"
echo "== 1/5 collect: 200 lift demonstrations from the scripted expert"
build/lfp collect --env lift --episodes 200 --seed 0 --out "$dir/lift.hdf5"
echo "== 2/5 train: a Local Flow Matching policy (scored every 4000 steps on 10 selection episodes)"
build/lfp train --data "$dir/lift.hdf5" --out "$dir/lift.lfp" --eval-every 4000 --eval-episodes 10 "$@"
echo "== 3/5 evaluate: 50 closed-loop episodes in MuJoCo (seeds 100000..100049), 4 of them as videos"
rm -rf "$dir/videos"
build/lfp eval --policy "$dir/lift.lfp" --episodes 50 --seed 100000 --video "$dir/videos" --json > "$dir/eval.json"
echo "== 4/5 the controller node: lfp serve on $ep, lfp sim against it"
build/lfp serve --policy "$dir/lift.lfp" --bind "$ep" > "$dir/serve.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2> /dev/null || true' EXIT
for _ in $(seq 100); do grep -q "protocol [0-9]" "$dir/serve.log" && break; sleep 0.1; done
cat "$dir/serve.log"
kill -0 $server 2> /dev/null || { echo "demo: lfp serve did not start (is $ep taken? set LFP_DEMO_PORT)"; exit 1; }
build/lfp sim --connect "$ep" --episodes 10 --seed 100000 --mode lockstep --json > "$dir/sim.json"
build/lfp sim --connect "$ep" --episodes 5 --seed 100000 --mode realtime
kill -TERM $server
wait $server
trap - EXIT
tail -n 1 "$dir/serve.log"
echo "== 5/5 report: the policy's card, curves, evaluations and videos on one page"
build/lfp report --policy "$dir/lift.lfp" --eval "$dir/eval.json" --eval "$dir/sim.json" --videos "$dir/videos" \
  --out "$dir/report.html"
echo "demo: open $(pwd)/$dir/report.html in a browser (it needs nothing else: scripts and videos are inside)"
