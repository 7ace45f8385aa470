#!/usr/bin/env bash
# Set up, build and run the tests: the Release build, then the same tests in an
# AddressSanitizer + UndefinedBehaviorSanitizer build with clang (build-asan/),
# which also runs the node's fuzz target under libFuzzer for LFP_FUZZ_SECONDS
# (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh

echo "== Release tests =="
ctest --test-dir build --output-on-failure -j2

echo "== ASan + UBSan build and tests =="
# a build dir configured with another compiler is started afresh
if [ -f build-asan/CMakeCache.txt ] && ! grep -q "CMAKE_C_COMPILER:.*clang" build-asan/CMakeCache.txt; then
  rm -rf build-asan
fi
cmake -S . -B build-asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLFP_SANITIZE=ON -DLFP_FUZZ=ON \
  -DLFP_FUZZ_SECONDS="${LFP_FUZZ_SECONDS:-60}" > /dev/null
cmake --build build-asan -j"$(nproc)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure -j2
# what each fuzz target did (libFuzzer's final stats, from ctest's log)
awk '/^[0-9]+\/[0-9]+ Test: fuzz\./ { t = $3 } /^stat::number_of_executed_units/ && t { x = $2 }
     /^stat::new_units_added/ && t { printf "%s: %s executions, %s new inputs, no failure\n", t, x, $2; t = "" }' \
  build-asan/Testing/Temporary/LastTest.log

echo "== ThreadSanitizer: flowcore's thread pool =="
# only test_par (the pool, and flowcore's elementwise loops through a small
# training run; OpenBLAS is not instrumented), in its own build dir, with clang
if [ -f build-tsan/CMakeCache.txt ] && ! grep -q "CMAKE_C_COMPILER:.*clang" build-tsan/CMakeCache.txt; then
  rm -rf build-tsan
fi
cmake -S . -B build-tsan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread > /dev/null
cmake --build build-tsan -j"$(nproc)" --target test_par
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ctest --test-dir build-tsan -R '^test_par\.' --output-on-failure -j2
