#!/usr/bin/env bash
# The whole test suite: install packages, build, run every CTest test, then the sanitizer stage
# (the parser and transport unit tests and the fuzz harnesses, built with clang's ASan + UBSan:
# tests/fuzz/check.sh). `.ci/run` calls this.
# Nothing is retried: a test that fails once fails the run (a flaky test is a bug to fix).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/build.sh
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 600)
bash tests/fuzz/check.sh build-fuzz
