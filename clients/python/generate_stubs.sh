#!/usr/bin/env bash
# Generates the Python stubs of proto/mmx/v1/inference.proto into DIR (default build/python),
# with Debian's protoc and grpc_python_plugin (packages protobuf-compiler, protobuf-compiler-grpc).
# The CMake build does the same (target mmx_python_stubs); this is for a client machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-build/python}
mkdir -p "$out"
protoc -I proto --python_out="$out" --grpc_out="$out" --plugin=protoc-gen-grpc="$(command -v grpc_python_plugin)" \
  proto/mmx/v1/inference.proto
touch "$out/mmx/__init__.py" "$out/mmx/v1/__init__.py"
echo "generate_stubs.sh: stubs in $out"
