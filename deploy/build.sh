#!/usr/bin/env bash
# Configures and builds mmx into build/ (one build dir shared by the demo, the tests and the
# benchmarks, so the tree is compiled once). Installs the Debian packages first when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then
  bash deploy/install-deps.sh
fi

werror=OFF
if [ "${CI:-}" = "true" ]; then werror=ON; fi
jobs=$(nproc)

if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMMX_WERROR="$werror" >/dev/null
fi
ninja -C build -j"$jobs" "$@"
