#!/usr/bin/env bash
# The GPU check of the CUDA backend, for a machine with an NVIDIA GPU, in one run meant to take
# 4-7 minutes (budget: under 8): print the device, build the CUDA tests, the cluster binaries
# and mmx-bench-cuda into build-gpu (-DMMX_CUDA=ON, so a missing toolkit fails loudly instead
# of skipping), run every CUDA test binary with its full output (kernels against kernels/cpu,
# then the whole model on the GPU against the golden set, fp32 and bf16 modes), the mixed
# CPU/GPU clusters (tests/gpu/mixed_cluster.sh), then the kernel benchmark.
#
#   tests/gpu/run.sh            (from anywhere; it cds to the repository root)
#
# With gpu-kit.tar.xz at the root (tests/gpu/pack.sh, run beforehand on a build machine and
# carried along), it runs those prebuilt binaries instead of building: the device image has
# CUDA, CMake and ninja but not mmx's other dependencies.
#
# Ends with a summary table (test counts, the golden max difference, the bf16 statistics, each
# benchmarked kernel's fraction of peak HBM) to paste into docs/benchmarks.md as is.
#
# Logs: nvidia-smi.txt, build.log, tests.log, bench.txt and summary.txt in $OUT when it is set,
# else in a fresh temporary directory (printed at the end). Exit status 0 only if the build,
# every test binary and the benchmark succeeded and no device test was skipped (a skip on a
# GPU machine means the binaries did not see the GPU).
set -euo pipefail

cd "$(dirname "$0")/../.."
logdir="${OUT:-$(mktemp -d /tmp/mmx-gpu.XXXXXX)}"
mkdir -p "$logdir"
start=$SECONDS

echo "== device"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.memory --format=csv
  nvidia-smi
} 2>&1 | tee "$logdir/nvidia-smi.txt"

tests=(cuda_status_test cuda_device_buffer_test cuda_launch_validation_test cuda_gemm_test
       cuda_elementwise_test cuda_router_test cuda_lightning_test cuda_attention_test cuda_paged_attention_test
       cuda_rows_test
       cuda_stage_compute_test)
if [ -f gpu-kit.tar.xz ]; then
  # Prebuilt (tests/gpu/pack.sh): the machine's image lacks gRPC, UCX, abseil, GTest, ...
  echo "== gpu-kit.tar.xz (prebuilt by tests/gpu/pack.sh)"
  kit=/tmp/mmx-gpu-kit
  rm -rf "$kit" && mkdir -p "$kit" && tar -C "$kit" -xJf gpu-kit.tar.xz --strip-components=1
  # CUDA's own libraries from this machine: the toolkit's, then any pip wheels' (nvidia-*).
  source tests/gpu/cuda_lib_path.sh
  cuda_libs=$(cuda_library_path)
  export LD_LIBRARY_PATH="$kit/lib${cuda_libs:+:$cuda_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export UCX_MODULE_DIR="$kit/lib/ucx"
  export MMX_TEST_DATA_DIR="$PWD/tests/data"
  test_dir=$kit/tests
  bin_dir=$kit/bin
  {
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    ldd "$test_dir/cuda_stage_compute_test" "$bin_dir/mmx-worker" | grep -E "not found|cudart|cublas|nccl" || true
  } 2>&1 | tee "$logdir/build.log"
else
  echo "== build (build-gpu, Release, MMX_CUDA=ON)"
  {
    cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DMMX_CUDA=ON
    timeout 330 ninja -C build-gpu -j"$(nproc)" "${tests[@]}" mmx-bench-cuda mmx-coord mmx-worker mmx
    echo "build done at +$((SECONDS - start)) s"
  } 2>&1 | tee "$logdir/build.log"
  test_dir=build-gpu/tests/cuda
  bin_dir=build-gpu/bin
fi

echo "== tests"
failed=()
: > "$logdir/tests.log"
for t in "${tests[@]}"; do
  echo "---- $t (+$((SECONDS - start)) s)" | tee -a "$logdir/tests.log"
  rc=0
  timeout 240 "$test_dir/$t" --gtest_color=no 2>&1 | tee -a "$logdir/tests.log" || rc=$?
  if ((rc)); then failed+=("$t (exit status $rc)"); fi
done
# AllocateFailsCleanlyWithoutAGpu is the one test that skips on purpose when a GPU is present.
skipped=$(grep -E '^\[  SKIPPED \] [A-Za-z0-9_]+\.' "$logdir/tests.log" | grep -v 'AllocateFailsCleanlyWithoutAGpu' |
          sed 's/ (.*//' | sort -u || true)

echo "== mixed CPU/GPU clusters (+$((SECONDS - start)) s)"
mixed_rc=0
timeout 240 tests/gpu/mixed_cluster.sh "$bin_dir" 2>&1 | tee "$logdir/mixed.log" || mixed_rc=$?

echo "== bench"
bench_rc=0
timeout 240 "$bin_dir/mmx-bench-cuda" 2>&1 | tee "$logdir/bench.txt" || bench_rc=$?

{
  echo "== summary (+$((SECONDS - start)) s, logs in $logdir)"
  if ((${#failed[@]})); then printf 'FAILED: %s\n' "${failed[@]}"; fi
  if [[ -n "$skipped" ]]; then printf 'SKIPPED on a GPU machine:\n%s\n' "$skipped"; fi
  echo
  bash tests/gpu/summary.sh "$logdir" "${#tests[@]}" "${#failed[@]}" "$mixed_rc" "$bench_rc"
} 2>&1 | tee "$logdir/summary.txt"
if ((${#failed[@]} || bench_rc || mixed_rc)) || [[ -n "$skipped" ]]; then
  exit 1
fi
