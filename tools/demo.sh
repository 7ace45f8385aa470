#!/usr/bin/env bash
# The main job end to end on a built-in default: collect 200 lift
# demonstrations with the scripted expert, train a Local Flow Matching policy
# on them, and evaluate it in closed loop in MuJoCo on the 50 evaluation seeds.
# (The ZeroMQ controller node joins when `lfp serve` exists.) About 2 minutes
# on 2 cores. Files go to build/demo/. Extra arguments go to `lfp train`.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
dir=build/demo
mkdir -p "$dir"
echo "== 1/3 collect: 200 lift demonstrations from the scripted expert"
build/lfp collect --env lift --episodes 200 --seed 0 --out "$dir/lift.hdf5"
echo "== 2/3 train: a Local Flow Matching policy"
build/lfp train --data "$dir/lift.hdf5" --out "$dir/lift.lfp" "$@"
echo "== 3/3 evaluate: 50 closed-loop episodes in MuJoCo (seeds 100000..100049)"
build/lfp eval --policy "$dir/lift.lfp" --episodes 50 --seed 100000
