#!/usr/bin/env bash
# The main job: build mmx, generate a small random-weight MiniMax-Text-01 checkpoint in the
# official layout with a test tokenizer.json (once; kept in out/models/), start a local cluster
# serving it (two attention stages and two expert hosts, separate processes over gRPC and UCX;
# batch jobs kept in out/cluster/state), stream a generation from a text prompt through the API,
# show the cluster's status and metrics, then stop the cluster. The weights are random, so the
# text is gibberish; the point is the whole path.
#   bash deploy/demo.sh [--preset small|tiny|medium] [--shard-config FILE]
set -euo pipefail
cd "$(dirname "$0")/.."

preset=small
template=deploy/shard-configs/small-disaggregated.yaml
while [ $# -gt 0 ]; do
  case "$1" in
    --preset) preset=$2; shift 2 ;;
    --shard-config) template=$2; shift 2 ;;
    *) echo "demo.sh: error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

bash deploy/build.sh
model=$PWD/out/models/$preset
if [ ! -f "$model/model.safetensors.index.json" ] || [ ! -f "$model/tokenizer.json" ]; then
  echo "== generating the '$preset' model into $model"
  build/bin/mmx-mkmodel --preset "$preset" --out "$model" --seed 1
fi

mkdir -p out/cluster
sed "s|^model: .*|model: $model|" "$template" >out/cluster/shard.yaml
trap 'bash deploy/local-cluster.sh stop >/dev/null' EXIT
echo "== starting a local cluster from $template"
bash deploy/local-cluster.sh start --shard-config out/cluster/shard.yaml --port 7070 --state-dir out/cluster/state

echo "== streaming 48 tokens from a text prompt through the cluster"
build/bin/mmx generate --server 127.0.0.1:7070 --prompt "The capital of France is" --max-tokens 48 --ignore-eos
echo "== cluster status"
build/bin/mmx status --server 127.0.0.1:7070
