#!/usr/bin/env bash
# The whole test suite, as CI runs it: install the Debian packages, build
# with clang under AddressSanitizer + UndefinedBehaviorSanitizer with the
# libFuzzer targets, and run every test with ctest (unit, fuzz, integration).
# Then build the whole tree once more with gcc -O2, as deploy/dev.sh does:
# gcc's optimiser warns about things clang does not (truncated snprintf,
# maybe-uninitialised), and warnings are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
BUILD=${MG_TEST_BUILD_DIR:-build-test}
cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
      -DMG_SANITIZE=ON -DMG_FUZZ=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
(cd "$BUILD" && ctest --output-on-failure -j"$(nproc)" "$@")
cmake -S . -B "$BUILD-gcc" -DCMAKE_C_COMPILER=gcc \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD-gcc" -j"$(nproc)" >/dev/null
echo "test.sh: gcc -O2 build of the whole tree: clean"
