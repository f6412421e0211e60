#!/usr/bin/env bash
# The summary table of tests/gpu/run.sh, from its logs: test counts, the golden max difference,
# the int8 GPU-vs-CPU difference, the bf16 statistics and each benchmarked kernel's fraction of
# peak HBM, as Markdown to paste into docs/benchmarks.md as is.
#   tests/gpu/summary.sh LOGDIR BINARIES_RUN BINARIES_FAILED MIXED_RC BENCH_RC
# LOGDIR holds nvidia-smi.txt, tests.log and bench.txt (any may be missing: its rows are left out).
set -uo pipefail
logdir=$1 binaries=$2 binaries_failed=$3 mixed_rc=$4 bench_rc=$5
gpu=$(sed -n 2p "$logdir/nvidia-smi.txt" 2>/dev/null | cut -d, -f1)
tests_log="$logdir/tests.log"
[ -f "$tests_log" ] || tests_log=/dev/null
passed=$(grep -ohE '^\[  PASSED  \] [0-9]+ test' "$tests_log" | awk '{s += $4} END {print s + 0}')
failed_cases=$(grep -cE '^\[  FAILED  \] [A-Za-z0-9_/]+\.[A-Za-z0-9_/]+ \(' "$tests_log")
skipped_cases=$(grep -cE '^\[  SKIPPED \] [A-Za-z0-9_/]+\.[A-Za-z0-9_/]+ \(' "$tests_log")
echo "| ${gpu:-GPU} | result |"
echo "|---|---|"
echo "| test binaries | $binaries run, $binaries_failed failed |"
echo "| test cases | $passed passed, $failed_cases failed, $skipped_cases skipped |"
# "what: figures" lines the tests print become "| what | figures |" rows.
grep -hE "golden prefill logits|bf16 vs fp32|int8 experts, GPU vs CPU" "$tests_log" | sed -E 's/^([^:]*): (.*)$/| \1 | \2 |/'
echo "| mixed CPU/GPU clusters | exit status $mixed_rc |"
if [ -f "$logdir/bench.txt" ]; then
  # Kernel rows: "NAME SHAPE... PATH... T us G GB/s P% HBM ...": everything before the time, the
  # time and the fraction of HBM.
  grep -E "% HBM" "$logdir/bench.txt" | awk '{
    label = ""; us = ""; hbm = ""
    for (i = 1; i <= NF; ++i) {
      if ($(i + 1) == "us" && us == "") { us = $i; continue }
      if ($i == "us") continue
      if ($(i + 1) == "HBM") { hbm = $i; break }
      if (us == "") label = label (label == "" ? "" : " ") $i
    }
    printf "| %s | %s us, %s of peak HBM |\n", label, us, hbm }'
fi
echo "| mmx-bench-cuda | exit status $bench_rc |"
