#!/usr/bin/env bash
# The main job: build mmx, generate a small random-weight MiniMax-Text-01 checkpoint in the
# official layout (once; it is kept in out/models/), and generate from it, printing tokens/s.
#   bash deploy/demo.sh [--preset small|tiny|medium] [extra `mmx-coord run` flags...]
set -euo pipefail
cd "$(dirname "$0")/.."

preset=small
if [ "${1:-}" = "--preset" ]; then preset=$2; shift 2; fi

bash deploy/build.sh
model=out/models/$preset
if [ ! -f "$model/model.safetensors.index.json" ]; then
  echo "== generating the '$preset' model into $model"
  build/bin/mmx-mkmodel --preset "$preset" --out "$model" --seed 1
fi
echo "== generating 32 tokens from a 16-token prompt on $model"
build/bin/mmx-coord run --model "$model" --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16 \
  --max-tokens 32 "$@"
