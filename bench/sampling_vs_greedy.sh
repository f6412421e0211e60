#!/usr/bin/env bash
# Sampled decode against greedy decode on one running cluster: the `small` preset on the demo's
# layout (deploy/shard-configs/small-disaggregated.yaml), 32 streams through the gRPC API with
# mmx-bench-serve, greedy and temperature 0.7 / top_p 0.9 alternating for three rounds, so each
# ratio is taken back to back. Record the table in docs/benchmarks.md.
#   bash bench/sampling_vs_greedy.sh [--streams 32] [--tokens 48] [--rounds 3] [--threads 2]
set -euo pipefail
cd "$(dirname "$0")/.."
streams=32; tokens=48; rounds=3; threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    --streams) streams=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "sampling_vs_greedy.sh: error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
model=$PWD/out/models/small
[ -f "$model/model.safetensors.index.json" ] || build/bin/mmx-mkmodel --preset small --out "$model" --seed 1
mkdir -p out/bench
sed "s|^model: .*|model: $model|" deploy/shard-configs/small-disaggregated.yaml >out/bench/sampling.yaml
run_dir=out/bench/run-sampling
trap 'bash deploy/local-cluster.sh stop --run-dir $run_dir >/dev/null 2>&1 || true' EXIT
bash deploy/local-cluster.sh start --shard-config out/bench/sampling.yaml --port 7093 --threads "$threads" \
  --expert-host-threads $(( threads / 2 > 0 ? threads / 2 : 1 )) --run-dir "$run_dir" >/dev/null
echo "load before: $(cat /proc/loadavg)"
tps() {  # tokens/s of one run of $streams streams with the given sampling flags
  build/bin/mmx-bench-serve --server 127.0.0.1:7093 --concurrency "$streams" --max-tokens "$tokens" "$@" |
    awk -F'|' 'NR == 3 { gsub(/ /, "", $3); print $3 }'
}
tps >/dev/null  # warm-up: first touches of the weights
echo "| round | greedy tokens/s | temperature 0.7, top_p 0.9 tokens/s | sampled / greedy |"
echo "|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
  greedy=$(tps)
  sampled=$(tps --temperature 0.7 --top-p 0.9)
  echo "| $round | $greedy | $sampled | $(awk -v s="$sampled" -v g="$greedy" 'BEGIN { printf "%.3f", s / g }') |"
done
echo "load after: $(cat /proc/loadavg)"
