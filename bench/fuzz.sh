#!/usr/bin/env bash
# Fuzzes every parser of outside input for longer than CI does: each libFuzzer harness of
# tests/fuzz for MMX_FUZZ_SECONDS (default 600), MMX_FUZZ_JOBS at a time (default: the cores),
# in the ASan + UBSan tree (tests/fuzz/build.sh). The corpus each grows is kept in
# out/fuzz/corpus/NAME (seeded from tests/fuzz/corpus/NAME), crashes in out/fuzz/crashes/NAME.
# Prints one line per harness: executions, executions per second, corpus size, crashes found by
# this run (reproducers of earlier runs stay in out/fuzz/crashes, uncounted).
# Exit status 1 if any harness crashed (its reproducer is in out/fuzz/crashes).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${MMX_FUZZ_SECONDS:-600}"
jobs="${MMX_FUZZ_JOBS:-$(nproc)}"
dir="$(bash tests/fuzz/build.sh "${1:-build-fuzz}")"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
mkdir -p out/fuzz

run_one() {
  local name="$1"
  mkdir -p "out/fuzz/corpus/$name" "out/fuzz/crashes/$name"
  touch "out/fuzz/$name.start"  # reproducers of earlier runs stay, but are not counted
  "$dir/tests/fuzz/$name" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="out/fuzz/crashes/$name/" \
      "out/fuzz/corpus/$name" "tests/fuzz/corpus/$name" >"out/fuzz/$name.log" 2>&1 || true
  local execs rate corpus crashes
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "out/fuzz/$name.log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "out/fuzz/$name.log" | grep -o '[0-9]*$' || echo 0)
  corpus=$(find "out/fuzz/corpus/$name" -type f | wc -l)
  crashes=$(find "out/fuzz/crashes/$name" -type f -newer "out/fuzz/$name.start" | wc -l)
  printf '%-26s %12s execs %8s/s  corpus %6s  crashes %s\n' "$name" "$execs" "$rate" "$corpus" "$crashes"
}
export -f run_one
export dir seconds
ls tests/fuzz/corpus | xargs -P "$jobs" -I{} bash -c 'run_one {}' | sort | tee out/fuzz/summary.txt
! grep -q 'crashes [1-9]' out/fuzz/summary.txt
