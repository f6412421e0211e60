#!/usr/bin/env bash
# Several steps in flight on two pipeline stages: the `medium` model as two attention stages with
# their experts co-located (deploy/shard-configs/medium-pipeline.yaml), each worker pinned to its
# own core with one thread, 16 streams through the gRPC API (mmx-bench-serve). The workers start
# once; the coordinator is restarted for each setting (--steps-in-flight 1, 2 and 0 = automatic)
# and the workers register again keeping their shards, the settings alternating round by round so
# that each ratio is taken back to back. Record the table in docs/benchmarks.md.
#   bash bench/steps_in_flight.sh [--streams 16] [--tokens 48] [--rounds 3] [--layout pipeline]
# Needs a build and ~6 GB of free memory; generates out/models/medium once.
set -euo pipefail
cd "$(dirname "$0")/.."
streams=16; tokens=48; rounds=3; layout=pipeline
while [ $# -gt 0 ]; do
  case "$1" in
    --streams) streams=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --layout) layout=$2; shift 2 ;;
    *) echo "steps_in_flight.sh: error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
model=$PWD/out/models/medium
[ -f "$model/model.safetensors.index.json" ] || build/bin/mmx-mkmodel --preset medium --out "$model" --seed 1
mkdir -p out/bench
config=out/bench/steps-$layout.yaml
sed "s|^model: .*|model: $model|" "deploy/shard-configs/medium-$layout.yaml" >"$config"
run_dir=out/bench/run-steps
port=7095
addr=127.0.0.1:$port
trap 'bash deploy/local-cluster.sh stop --run-dir $run_dir >/dev/null 2>&1 || true' EXIT
bash deploy/local-cluster.sh start --shard-config "$config" --port "$port" --threads 1 --pin \
  --steps-in-flight 1 --run-dir "$run_dir" >/dev/null

# Restarts the coordinator with `--steps-in-flight $1`; returns once the workers are back.
coordinator() {
  kill "$(cat "$run_dir/coordinator.pid")" 2>/dev/null || true
  while kill -0 "$(cat "$run_dir/coordinator.pid")" 2>/dev/null; do sleep 0.2; done
  build/bin/mmx-coord serve --shard-config "$config" --listen "$addr" --steps-in-flight "$1" \
    >"$run_dir/coordinator.log" 2>&1 &
  echo $! >"$run_dir/coordinator.pid"
  local deadline=$((SECONDS + 300))
  until build/bin/mmx status --server "$addr" 2>/dev/null | grep -q "^cluster: ready"; do
    [ $SECONDS -lt $deadline ] || { echo "steps_in_flight.sh: error: cluster not ready" >&2; tail "$run_dir/coordinator.log" >&2; exit 1; }
    sleep 0.5
  done
}
# bench/loopback-cluster.yaml's figures for this machine's single-threaded workers, under the
# shard config's worker names.
spec=out/bench/steps-spec.yaml
worker_spec="device: cpu, memory_gib: 10, mem_bandwidth_gbs: 18.9, tflops: 0.115, network_gbps: 40, network_latency_us: 40"
{
  echo "workers:"
  for w in $(build/bin/mmx-coord check --shard-config "$config" --list-workers); do echo "  - {name: $w, $worker_spec}"; done
  echo "serving: {max_context: 4096, max_sequences: $streams}"
} >"$spec"
predict() {  # the planner's tokens/s for this layout with $1 steps in flight
  build/bin/mmx-coord plan --check "$config" --cluster "$spec" \
    --steps-in-flight "$1" --json | grep -o '"tokens_per_s": *[0-9.e+-]*' | head -1 | awk -F: '{ printf "%.2f", $2 }'
}
source bench/wait_quiet.sh
tps() {  # tokens/s of one run of $streams streams
  wait_quiet
  build/bin/mmx-bench-serve --server "$addr" --concurrency "$streams" --max-tokens "$tokens" |
    awk -F'|' 'NR == 3 { gsub(/ /, "", $3); print $3 }'
}
coordinator 0
grep -h "cluster ready" "$run_dir/coordinator.log" || true
automatic=$(build/bin/mmx status --server "$addr" | grep -o "steps in flight: [0-9]* of [0-9]*" | awk '{ print $NF }')
tps >/dev/null  # warm-up: first touches of the weights
echo "load before: $(cat /proc/loadavg)"
echo "| round | steps in flight 1: tokens/s | 2: tokens/s | automatic: tokens/s | 2 / 1 | automatic / 1 |"
echo "|---|---|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
  coordinator 1; one=$(tps)
  coordinator 2; two=$(tps)
  coordinator 0; auto=$(tps)
  echo "| $round | $one | $two | $auto | $(awk -v a="$two" -v b="$one" 'BEGIN { printf "%.2f", a / b }') |" \
    "$(awk -v a="$auto" -v b="$one" 'BEGIN { printf "%.2f", a / b }') |"
done
echo "load after: $(cat /proc/loadavg)"
echo "planner (mmx-coord plan --check, bench/loopback-cluster.yaml, $streams sequences): steps in flight 1:" \
  "$(predict 1) tokens/s; 2: $(predict 2) tokens/s; automatic ($automatic): $(predict "$automatic") tokens/s"
