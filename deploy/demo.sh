#!/usr/bin/env bash
# The main job: build mmx, generate a small random-weight MiniMax-Text-01 checkpoint in the
# official layout (once; kept in out/models/), start a local cluster serving it (two attention
# stages and two expert hosts, separate processes over gRPC and UCX), generate through the API
# and print tokens/s, then stop the cluster.
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
if [ ! -f "$model/model.safetensors.index.json" ]; then
  echo "== generating the '$preset' model into $model"
  build/bin/mmx-mkmodel --preset "$preset" --out "$model" --seed 1
fi

mkdir -p out/cluster
sed "s|^model: .*|model: $model|" "$template" >out/cluster/shard.yaml
trap 'bash deploy/local-cluster.sh stop >/dev/null' EXIT
echo "== starting a local cluster from $template"
bash deploy/local-cluster.sh start --shard-config out/cluster/shard.yaml --port 7070

echo "== generating 32 tokens from a 16-token prompt through the cluster"
build/bin/mmx generate --server 127.0.0.1:7070 --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16 --max-tokens 32
