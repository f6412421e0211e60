#!/usr/bin/env bash
# Packs what tests/gpu/run.sh runs into gpu-kit.tar.xz, for a GPU machine whose image has CUDA,
# CMake and ninja but none of mmx's other dependencies (gRPC, protobuf, UCX, abseil, GTest,
# yaml-cpp, ICU, SQLite, ...; .library/device/KINDS.md) and no network to fetch them. Run here,
# after a build with the CUDA backend (deploy/build.sh, or `ninja -C build`); carry the tarball:
#
#   tests/gpu/pack.sh [BUILD_DIR]          (default build; writes gpu-kit.tar.xz at the root)
#   device: run --carry gpu-kit.tar.xz -- bash tests/gpu/run.sh
#
# The kit holds the stripped test and cluster binaries and the shared libraries they link,
# except the C library's own and CUDA's (cudart, cuBLAS, NCCL, the driver): run.sh finds those on
# the machine. Built against Debian 12 (glibc 2.36): the machine's glibc must be at least that.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
tests=(cuda_status_test cuda_device_buffer_test cuda_launch_validation_test cuda_gemm_test
       cuda_elementwise_test cuda_router_test cuda_lightning_test cuda_attention_test cuda_paged_attention_test cuda_rows_test
       cuda_stage_compute_test)
bins=(mmx-coord mmx-worker mmx mmx-bench-cuda)
ninja -C "$build" "${tests[@]}" "${bins[@]}" >/dev/null
stage=$(mktemp -d /tmp/mmx-gpu-kit.XXXXXX)
mkdir -p "$stage/gpu-kit/bin" "$stage/gpu-kit/tests" "$stage/gpu-kit/lib"
for b in "${bins[@]}"; do strip -o "$stage/gpu-kit/bin/$b" "$build/bin/$b"; done
for t in "${tests[@]}"; do strip -o "$stage/gpu-kit/tests/$t" "$build/tests/cuda/$t"; done
# Shared libraries, minus the ones the machine must provide itself.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libcuda\.so|libcudart|libcublas|libnccl)'
for f in "$stage"/gpu-kit/bin/* "$stage"/gpu-kit/tests/*; do
  ldd "$f" | awk '$3 ~ /^\// { print $1, $3 }'
done | sort -u | while read -r name path; do
  [[ "$name" =~ $skip ]] && continue
  cp -L "$path" "$stage/gpu-kit/lib/$name"
done
# UCX loads its transports as modules from its own directory.
ucx_modules=$(dirname "$(ldd "$build/bin/mmx-worker" | awk '/libucs\.so/ { print $3 }')")/ucx
if [ -d "$ucx_modules" ]; then
  cp -rL "$ucx_modules" "$stage/gpu-kit/lib/ucx"
  find "$stage/gpu-kit/lib/ucx" -name "*.a" -delete
fi
tar -C "$stage" -cJf gpu-kit.tar.xz gpu-kit
rm -rf "$stage"
echo "gpu-kit.tar.xz: $(du -h gpu-kit.tar.xz | cut -f1) ($(tar -tJf gpu-kit.tar.xz | wc -l) files)"
