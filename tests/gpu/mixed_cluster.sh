#!/usr/bin/env bash
# Mixed CPU/GPU clusters on one GPU machine, each held to the golden set's greedy ids:
#   gpu-attention: one GPU worker runs embedding, every attention layer and the tail; two CPU
#                  workers host the experts (the KTransformers split, as separate processes).
#   gpu-experts:   the reverse: a CPU worker runs the attention and a GPU worker hosts half the
#                  experts, a CPU worker the other half.
# For each layout: start it with deploy/local-cluster.sh (each worker on its entry's device),
# generate 16 greedy tokens for the golden prompts p5 and p64, compare with
# decode.safetensors' generated_ids, stop it. Exit 0 only if every comparison matched.
#
#   tests/gpu/mixed_cluster.sh [BIN_DIR]      (default build-gpu/bin)
# MMX_MIXED_DEVICE=cpu runs the same layouts with the "GPU" workers on the CPU: how the script
# itself is checked on machines without a GPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
export MMX_BIN=${1:-build-gpu/bin}
gpu=${MMX_MIXED_DEVICE:-cuda:0}
model=tests/data/golden/tiny-a
work=$(mktemp -d /tmp/mmx-mixed.XXXXXX)
failures=0

# fp32 KV: the golden ids are the fp32 model's.
cat >"$work/gpu-attention.yaml" <<YAML
model: $PWD/$model
serving: {kv_dtype: fp32}
workers:
  - {name: gpu, device: $gpu, embedding: true, attention: [0, 8], lm_head: true}
  - {name: cpu-a, experts: [{layers: [0, 8], ids: [0, 1, 2, 3]}]}
  - {name: cpu-b, experts: [{layers: [0, 8], ids: [4, 5, 6, 7]}]}
YAML
cat >"$work/gpu-experts.yaml" <<YAML
model: $PWD/$model
serving: {kv_dtype: fp32}
workers:
  - {name: cpu, embedding: true, attention: [0, 8], lm_head: true, experts: [{layers: [0, 8], ids: [4, 5, 6, 7]}]}
  - {name: gpu, device: $gpu, experts: [{layers: [0, 8], ids: [0, 1, 2, 3]}]}
YAML

# Prompt ids and golden greedy ids, from the golden files (python3 standard library only).
golden() {  # golden NAME -> "prompt_csv expected_csv"
  python3 - "$model/golden" "$1" <<'PY'
import json, struct, sys
d, name = sys.argv[1], sys.argv[2]
prompt = json.load(open(f"{d}/prompts.json"))["prompts"][name]
with open(f"{d}/decode.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    data = f.read()
t = header[f"{name}.generated_ids"]
b, e = t["data_offsets"]
ids = struct.unpack(f"<{(e - b) // 8}q", data[b:e])
print(",".join(map(str, prompt)), ",".join(map(str, ids)))
PY
}

for layout in gpu-attention gpu-experts; do
  echo "== $layout"
  run_dir="$work/$layout"
  if ! deploy/local-cluster.sh start --shard-config "$work/$layout.yaml" --port 7171 --run-dir "$run_dir" --timeout 180; then
    echo "FAILED: $layout did not start"; tail -5 "$run_dir"/*.log || true
    failures=$((failures + 1)); continue
  fi
  grep -h "cuda\|uploading" "$run_dir"/gpu.log | tail -3 || true
  for p in p5 p64; do
    read -r prompt want < <(golden "$p")
    got=$("$MMX_BIN/mmx" generate --server 127.0.0.1:7171 --prompt-ids "$prompt" --max-tokens 16 --json |
          python3 -c 'import json,sys; print(",".join(map(str, json.load(sys.stdin)["output_ids"])))')
    if [ "$got" = "$want" ]; then
      echo "$layout $p: 16/16 greedy ids equal the golden set"
    else
      echo "FAILED: $layout $p: got $got, golden $want"; failures=$((failures + 1))
    fi
  done
  deploy/local-cluster.sh stop --run-dir "$run_dir" >/dev/null
  sleep 1
done
rm -rf "$work"
echo "mixed clusters: $failures failure(s)"
exit $((failures > 0))
