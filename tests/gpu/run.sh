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

echo "== build (build-gpu, Release, MMX_CUDA=ON)"
tests=(cuda_status_test cuda_device_buffer_test cuda_launch_validation_test cuda_gemm_test
       cuda_elementwise_test cuda_router_test cuda_lightning_test cuda_attention_test cuda_rows_test
       cuda_stage_compute_test)
{
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DMMX_CUDA=ON
  timeout 330 ninja -C build-gpu -j"$(nproc)" "${tests[@]}" mmx-bench-cuda mmx-coord mmx-worker mmx
  echo "build done at +$((SECONDS - start)) s"
} 2>&1 | tee "$logdir/build.log"

echo "== tests"
failed=()
: > "$logdir/tests.log"
for t in "${tests[@]}"; do
  echo "---- $t (+$((SECONDS - start)) s)" | tee -a "$logdir/tests.log"
  rc=0
  timeout 240 "build-gpu/tests/cuda/$t" --gtest_color=no 2>&1 | tee -a "$logdir/tests.log" || rc=$?
  if ((rc)); then failed+=("$t (exit status $rc)"); fi
done
# AllocateFailsCleanlyWithoutAGpu is the one test that skips on purpose when a GPU is present.
skipped=$(grep -E '^\[  SKIPPED \] [A-Za-z0-9_]+\.' "$logdir/tests.log" | grep -v 'AllocateFailsCleanlyWithoutAGpu' |
          sed 's/ (.*//' | sort -u || true)

echo "== mixed CPU/GPU clusters (+$((SECONDS - start)) s)"
mixed_rc=0
timeout 240 tests/gpu/mixed_cluster.sh build-gpu/bin 2>&1 | tee "$logdir/mixed.log" || mixed_rc=$?

echo "== bench"
bench_rc=0
timeout 240 build-gpu/bin/mmx-bench-cuda 2>&1 | tee "$logdir/bench.txt" || bench_rc=$?

{
  echo "== summary (+$((SECONDS - start)) s, logs in $logdir)"
  echo "test binaries run: ${#tests[@]}, failed: ${#failed[@]}"
  if ((${#failed[@]})); then printf 'FAILED: %s\n' "${failed[@]}"; fi
  if [[ -n "$skipped" ]]; then printf 'SKIPPED on a GPU machine:\n%s\n' "$skipped"; fi
  echo "mixed clusters exit status: $mixed_rc"
  grep -h "bf16 vs fp32" "$logdir/tests.log" || true
  echo "mmx-bench-cuda exit status: $bench_rc"
} 2>&1 | tee "$logdir/summary.txt"
if ((${#failed[@]} || bench_rc || mixed_rc)) || [[ -n "$skipped" ]]; then
  exit 1
fi
