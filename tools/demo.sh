#!/usr/bin/env bash
# The main job on a built-in default, end to end. For now: train global flow
# matching and Local Flow Matching (4 blocks, same parameter count, same
# training steps) on the 8-Gaussians distribution and compare them by exact W2
# against held-out samples. Extra arguments go to `lfp toy`.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
build/lfp toy --dist 8gaussians --method both "$@"
