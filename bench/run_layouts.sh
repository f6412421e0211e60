#!/usr/bin/env bash
# Decode tokens/s of the `medium` model at batch 1 and 32: the single process (mmx-bench-decode)
# against three cluster layouts on loopback (deploy/shard-configs/medium-*.yaml), each measured
# through the gRPC API with mmx-bench-serve. Prints one table; record it in docs/benchmarks.md.
#   bash bench/run_layouts.sh [--threads N] [--tokens 48]
# Needs a build and ~8 GB of free memory; generates out/models/medium once. The machine should
# be otherwise idle: each run waits for quiet CPUs (/proc/loadavg is printed before and after).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2; tokens=48
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    *) echo "run_layouts.sh: error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
model=$PWD/out/models/medium
[ -f "$model/model.safetensors.index.json" ] || build/bin/mmx-mkmodel --preset medium --out "$model" --seed 1
echo "load before: $(cat /proc/loadavg)"

source bench/wait_quiet.sh

single() {
  wait_quiet
  echo "== single process (mmx-bench-decode, $threads threads)"
  build/bin/mmx-bench-decode --model "$model" --threads "$threads" --batches 1,32 --steps 32 --prefill 0
}

# On one machine the expert hosts of a layer compute at the same time: split the threads.
expert_threads=$(( threads / 2 > 0 ? threads / 2 : 1 ))
single
mkdir -p out/bench
for layout in single pipeline disaggregated; do
  sed "s|^model: .*|model: $model|" deploy/shard-configs/medium-$layout.yaml >out/bench/$layout.yaml
  for mb in 0 2; do
    wait_quiet
    echo "== cluster layout '$layout', micro-batches $mb (0 = the coordinator's choice), $threads threads per worker" \
      "($expert_threads per expert-only host)"
    bash deploy/local-cluster.sh start --shard-config out/bench/$layout.yaml --port 7090 --threads "$threads" \
      --expert-host-threads "$expert_threads" --micro-batches "$mb" --run-dir out/bench/run-$layout >/dev/null
    grep -h "cluster ready" out/bench/run-$layout/coordinator.log || true
    build/bin/mmx-bench-serve --server 127.0.0.1:7090 --concurrency 1,32 --prompt-len 16 --max-tokens "$tokens"
    bash deploy/local-cluster.sh stop --run-dir out/bench/run-$layout >/dev/null
  done
done
single  # again: this VM's memory bandwidth drifts; the two single-process runs bracket the rest
echo "load after: $(cat /proc/loadavg)"
