#!/usr/bin/env bash
# CI's sanitizer stage (deploy/test.sh): the parser and transport unit tests built with ASan +
# UBSan, then each fuzz harness over its seed corpus and a bounded number of mutated inputs.
# Any sanitizer report, crash or test failure fails the stage. bench/fuzz.sh fuzzes for longer.
# Usage: tests/fuzz/check.sh [BUILD_DIR] (default build-fuzz; built by tests/fuzz/build.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="$(bash tests/fuzz/build.sh "${1:-build-fuzz}")"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

tests=$(sed -n '/^set(MMX_SANITIZER_TESTS/,/)/p' tests/fuzz/CMakeLists.txt | tr ' ()' '\n' | grep -E '_test$')
for t in $tests; do
  binary=$(find "$dir/tests" -type f -name "$t" -perm -u+x | head -1)
  [ -n "$binary" ] || { echo "check.sh: $t was not built" >&2; exit 1; }
  "$binary" --gtest_brief=1 >/tmp/mmx-sanitizer-$t.log 2>&1 || {
    tail -40 /tmp/mmx-sanitizer-$t.log >&2; echo "check.sh: $t failed under ASan + UBSan" >&2; exit 1; }
  echo "sanitizers: $t passed"
done

runs="${MMX_FUZZ_RUNS:-20000}"  # each harness also stops after 5 s: under a minute in all
for corpus in tests/fuzz/corpus/*/; do
  name=$(basename "$corpus")
  scratch=$(mktemp -d)
  "$dir/tests/fuzz/$name" -runs="$runs" -max_total_time=5 -max_len=65536 -timeout=10 -rss_limit_mb=2048 -seed=1 \
      "$scratch" "$corpus" >"$scratch.log" 2>&1 || {
    tail -40 "$scratch.log" >&2; echo "check.sh: $name found a crash (log above)" >&2; exit 1; }
  echo "fuzz: $name $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$scratch.log")"
  rm -rf "$scratch" "$scratch.log"
done
