#!/usr/bin/env bash
# tests/gpu/summary.sh on logs shaped like a GPU run's: the table counts the gtest cases,
# carries the golden and bf16 lines, and gives each benchmarked kernel its time and fraction of
# peak HBM; missing logs leave their rows out instead of failing.
set -euo pipefail
cd "$(dirname "$0")/../.."
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
cat > "$logs/nvidia-smi.txt" <<'LOG'
name, driver_version, memory.total [MiB], clocks.max.sm [MHz], clocks.max.memory [MHz]
NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB, 1980 MHz, 2619 MHz
LOG
cat > "$logs/tests.log" <<'LOG'
[  PASSED  ] 17 tests.
[  SKIPPED ] CudaDeviceBufferTest.AllocateFailsCleanlyWithoutAGpu (0 ms)
[  PASSED  ] 40 tests.
golden prefill logits (p1, p5, p64, p300, p700): max |diff| 1.22e-04 (tolerance 5e-04)
bf16 vs fp32 KV cache on the GPU (golden tiny-a prefill, p64+p300+p700): mean |dlogit| 0.00400, max 2.1000, greedy agreement 1064/1064
[  FAILED  ] CudaGemmInt8Test.MatchesTheCpuInt8KernelAtTheExpertW1Shape (12 ms)
LOG
cat > "$logs/bench.txt" <<'LOG'
Gemm                 9216x6144 T=1              int8 w, 1 pass             21.0 us     2700 GB/s   80.6% HBM     5.39 TFLOP/s
AttentionDecode      64/8x128 n=32768           bf16 KV pages             40.5 us     2650 GB/s   79.1% HBM
LOG
out=$(bash tests/gpu/summary.sh "$logs" 11 1 0 0)
expect() {
  if ! grep -qF -- "$1" <<< "$out"; then
    echo "FAIL: summary lacks: $1" >&2
    echo "$out" >&2
    exit 1
  fi
}
expect "| NVIDIA H100 80GB HBM3 | result |"
expect "| test binaries | 11 run, 1 failed |"
expect "| test cases | 57 passed, 1 failed, 1 skipped |"
expect "| golden prefill logits (p1, p5, p64, p300, p700) | max |diff| 1.22e-04 (tolerance 5e-04) |"
expect "| bf16 vs fp32 KV cache on the GPU (golden tiny-a prefill, p64+p300+p700) | mean |dlogit| 0.00400"
expect "| Gemm 9216x6144 T=1 int8 w, 1 pass | 21.0 us, 80.6% of peak HBM |"
expect "| AttentionDecode 64/8x128 n=32768 bf16 KV pages | 40.5 us, 79.1% of peak HBM |"
expect "| mmx-bench-cuda | exit status 0 |"

rm "$logs/bench.txt" "$logs/nvidia-smi.txt"
out=$(bash tests/gpu/summary.sh "$logs" 11 0 0 1)
expect "| GPU | result |"
expect "| mmx-bench-cuda | exit status 1 |"
echo "summary.sh: table rows as expected"
