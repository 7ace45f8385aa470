#!/usr/bin/env bash
# CLI behaviour: help, and bad flags get one clear sentence and exit code 2.
set -u
LFP=$1
fail=0
expect() { # expect CODE "substring" args...
  local code=$1 want=$2; shift 2
  local out rc
  out=$("$LFP" "$@" 2>&1); rc=$?
  if [ "$rc" != "$code" ] || [[ "$out" != *"$want"* ]]; then
    echo "FAIL: lfp $* -> exit $rc, output: $out (wanted exit $code and '$want')"; fail=1
  fi
}
expect 0 "usage: lfp <command>" help
expect 0 "lfp " --version
# OpenBLAS's kernels: a given OPENBLAS_CORETYPE is kept (one load, that set);
# without one, a CPU with AVX2 and FMA never ends up on a pre-AVX2 set (lfp
# runs itself again with OPENBLAS_CORETYPE when OpenBLAS does not know the CPU)
cores=$(OPENBLAS_CORETYPE=Prescott OPENBLAS_VERBOSE=2 "$LFP" version 2>&1 | grep "^Core:" | tr '\n' ' ')
[ "$cores" = "Core: Prescott " ] || { echo "FAIL: OPENBLAS_CORETYPE=Prescott not kept: '$cores'"; fail=1; }
last=$(env -u OPENBLAS_CORETYPE OPENBLAS_VERBOSE=2 "$LFP" version 2>&1 | grep "^Core:" | tail -n 1)
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  case "$last" in
  *Prescott|*Core2|*Penryn|*Dunnington|*Nehalem|*Atom|*Barcelona|*Opteron*|*Sandybridge|"")
    echo "FAIL: an AVX2 CPU left on OpenBLAS's '$last' kernels"; fail=1 ;;
  esac
fi
# every command's --help exits 0 with its usage line
for c in toy collect replay train distill eval serve sim info "bench flowcore" "bench datasets" "bench envs" "bench node"; do
  expect 0 "usage: lfp $c" $c --help
done
expect 0 "--dist" toy --help
expect 0 "--dist" help toy
expect 0 "flowcore" bench --help
expect 2 "unknown command 'frobnicate'" frobnicate
expect 2 "unknown option '--bogus'" toy --bogus
expect 2 "--steps expects an integer, got 'ten'" toy --steps ten
expect 2 "--steps must be between 1 and" toy --steps 0
expect 2 "--dist must be one of 8gaussians, moons, checkerboard, rings, got 'spiral'" toy --dist spiral
expect 2 "--steps needs a value" toy --steps
expect 2 "--lr expects a number, got 'nan'" toy --lr nan
expect 2 "--json takes no value" toy --json=1
expect 2 "unknown target 'gpu'" bench gpu
expect 0 "usage: lfp info" info --help
expect 0 "envs" bench --help
expect 0 "--keep-failures" collect --help
expect 0 "usage: lfp replay" replay --help
expect 0 "--net {mlp|unet|transformer}" train --help
expect 2 "--net must be one of mlp, unet, transformer, got 'resnet'" train --data d.hdf5 --out p.lfp --net resnet
[ $fail = 0 ] && echo "all CLI checks passed"
exit $fail
