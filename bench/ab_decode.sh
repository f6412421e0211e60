#!/usr/bin/env bash
# A/B of two mmx-bench-decode binaries on one model, back to back: a warm-up run (page cache),
# then ROUNDS rounds alternating A and B, each printing the triad, the decode table and the
# load average. This VM's bandwidth drifts between runs, so compare within a round.
#   bash bench/ab_decode.sh OLD_BINARY NEW_BINARY [MODEL_DIR] [ROUNDS] [extra mmx-bench-decode flags]
set -euo pipefail
a=${1:?old mmx-bench-decode}; b=${2:?new mmx-bench-decode}
model=${3:-out/models/medium}; rounds=${4:-3}
shift $(( $# < 4 ? $# : 4 ))
flags=(--model "$model" --batches 1,32 --steps 24 --prefill 0 "$@")
"$b" "${flags[@]}" > /dev/null  # warm-up: reads the checkpoint into the page cache
for round in $(seq 1 "$rounds"); do
  for which in A B; do
    bin=$a; [ "$which" = B ] && bin=$b
    echo "=== round $round $which ($bin) $(date +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$bin" "${flags[@]}" | grep -E "triad|^\| [0-9]|RSS"
  done
done
