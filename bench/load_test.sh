#!/usr/bin/env bash
# Load test (issue 5): starts the demo cluster (the small model, two attention stages and two
# expert hosts, jobs in a fresh state dir), then runs bench/load_test.py: 64 concurrent
# streaming clients plus a 200-prompt batch job; all must complete with greedy outputs equal to
# solo runs; the coordinator's memory is sampled. Prints a table for docs/benchmarks.md.
#   bash bench/load_test.sh [--streams 64] [--job 200] [--max-tokens 32]
set -euo pipefail
cd "$(dirname "$0")/.."
model=$PWD/out/models/small
[ -f "$model/tokenizer.json" ] || build/bin/mmx-mkmodel --preset small --out "$model" --seed 1
mkdir -p out/load
sed "s|^model: .*|model: $model|" deploy/shard-configs/small-disaggregated.yaml >out/load/shard.yaml
rm -rf out/load/state
trap 'bash deploy/local-cluster.sh stop --run-dir out/load/run >/dev/null' EXIT
bash deploy/local-cluster.sh start --shard-config out/load/shard.yaml --port 7080 --run-dir out/load/run \
  --state-dir out/load/state >/dev/null
echo "load before: $(cat /proc/loadavg)"
MMX_PY_STUBS=$PWD/build/python /usr/bin/python3 bench/load_test.py --server 127.0.0.1:7080 \
  --coordinator-pid "$(cat out/load/run/coordinator.pid)" "$@"
echo "load after: $(cat /proc/loadavg)"
