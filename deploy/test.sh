#!/usr/bin/env bash
# The whole test suite: install packages, build, run every CTest test. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 600
