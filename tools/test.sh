#!/usr/bin/env bash
# Set up, build and run the tests: the Release build, then the same tests in an
# AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh

echo "== Release tests =="
ctest --test-dir build --output-on-failure -j2

echo "== ASan + UBSan build and tests =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLFP_SANITIZE=ON > /dev/null
cmake --build build-asan -j"$(nproc)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure -j2
