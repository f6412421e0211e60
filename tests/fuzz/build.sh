#!/usr/bin/env bash
# Builds the sanitizer tree: clang-14 with ASan + UBSan + libFuzzer coverage (MMX_FUZZ), the
# fuzz harnesses and the parser and transport unit tests (target mmx_sanitizer_checks).
# Usage: tests/fuzz/build.sh [BUILD_DIR] (default build-fuzz). Prints the tree's path last.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="${1:-build-fuzz}"
if [ ! -f "$dir/build.ninja" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMMX_FUZZ=ON -DMMX_CUDA=OFF >/dev/null
fi
ninja -C "$dir" -j"$(nproc)" mmx_sanitizer_checks >&2
echo "$dir"
