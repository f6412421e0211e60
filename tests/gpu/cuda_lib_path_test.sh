#!/usr/bin/env bash
# tests/gpu/cuda_lib_path.sh under run.sh's own shell options: a toolkit without /usr/local/cuda/lib
# (the stock layout) gives its other folders and the script goes on; one without any gives "".
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/gpu/cuda_lib_path.sh
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root/usr/local/cuda/lib64" "$root/usr/local/cuda/targets/x86_64-linux/lib"
got=$(cuda_library_path "$root")
want="$root/usr/local/cuda/lib64:$root/usr/local/cuda/targets/x86_64-linux/lib"
if [ "$got" != "$want" ]; then
  echo "FAIL: stock toolkit: got '$got', want '$want'" >&2
  exit 1
fi

rm -rf "$root/usr"
got=$(cuda_library_path "$root")
if [ -n "$got" ]; then
  echo "FAIL: no toolkit: got '$got', want ''" >&2
  exit 1
fi
echo "cuda_library_path: stock layout and no toolkit both handled under set -euo pipefail"
