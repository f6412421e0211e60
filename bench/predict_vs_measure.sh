#!/usr/bin/env bash
# Issue 4, item 8: plan the `medium` model for this machine's loopback workers
# (bench/loopback-cluster.yaml), run the plan on a local cluster, and print the predicted decode
# step against the measured one at the plan's serving target (max_sequences streams).
#   bash bench/predict_vs_measure.sh [--spec FILE] [--tokens 32]
set -euo pipefail
cd "$(dirname "$0")/.."
spec=bench/loopback-cluster.yaml; tokens=32
while [ $# -gt 0 ]; do
  case "$1" in
    --spec) spec=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    *) echo "predict_vs_measure.sh: error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
model=$PWD/out/models/medium
[ -f "$model/model.safetensors.index.json" ] || build/bin/mmx-mkmodel --preset medium --out "$model" --seed 1
mkdir -p out/bench
build/bin/mmx-coord plan --model "$model" --cluster "$spec" --out out/bench/planned.yaml --json >out/bench/plan.json
# The report's JSON: decode.step_s (seconds) at decode.sequences.
predicted=$(grep -o '"step_s": *[0-9.e-]*' out/bench/plan.json | head -1 | awk -F: '{printf("%.3f", $2 * 1000)}')
sequences=$(grep -o '"sequences": *[0-9]*' out/bench/plan.json | head -1 | grep -o '[0-9]*$')
echo "load before: $(cat /proc/loadavg)"
bash deploy/local-cluster.sh start --shard-config out/bench/planned.yaml --port 7095 --threads 1 \
  --micro-batches 1 --run-dir out/bench/run-planned >/dev/null
trap 'bash deploy/local-cluster.sh stop --run-dir out/bench/run-planned >/dev/null' EXIT
measured=$(build/bin/mmx-bench-serve --server 127.0.0.1:7095 --concurrency "$sequences" --max-tokens "$tokens" |
  tail -1 | awk -F'|' '{gsub(/ /, "", $4); print $4}')
echo "load after: $(cat /proc/loadavg)"
awk -v p="$predicted" -v m="$measured" -v s="$sequences" 'BEGIN {
  printf("decode step at %d sequences: predicted %.1f ms, measured %.1f ms, error %+.0f%%\n", s, p, m, 100 * (p - m) / m) }'
