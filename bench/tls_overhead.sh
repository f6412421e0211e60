#!/usr/bin/env bash
# What TLS costs in serving: one cluster layout (default: the medium model, 2 attention stages +
# 2 expert hosts on loopback) served in plain text and over TLS, back to back, ROUNDS rounds
# alternating the two; decode tokens/s at 1 and 32 streams through the gRPC API
# (mmx-bench-serve). TLS covers gRPC only (the client API and the control plane); activations
# go over UCX, so the two should be within noise. Compare within a round: this VM's bandwidth
# drifts between runs.
#   bash bench/tls_overhead.sh [LAYOUT] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
layout=${1:-disaggregated}; rounds=${2:-3}
model=$PWD/out/models/medium
[ -f "$model/model.safetensors.index.json" ] || build/bin/mmx-mkmodel --preset medium --out "$model" --seed 1
mkdir -p out/bench
sed "s|^model: .*|model: $model|" deploy/shard-configs/medium-$layout.yaml >out/bench/tls-$layout.yaml
[ -f out/bench/tls/ca.crt ] || bash deploy/certs.sh out/bench/tls >/dev/null
for round in $(seq 1 "$rounds"); do
  for mode in plain tls; do
    tls=(); ca=()
    [ "$mode" = tls ] && tls=(--tls-dir out/bench/tls) && ca=(--tls-ca out/bench/tls/ca.crt)
    echo "=== round $round $mode $(date +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"
    bash deploy/local-cluster.sh start --shard-config out/bench/tls-$layout.yaml --port 7091 --threads 2 \
      --expert-host-threads 1 --run-dir out/bench/tls-run "${tls[@]}" >/dev/null
    build/bin/mmx-bench-serve --server 127.0.0.1:7091 "${ca[@]}" --concurrency 1,32 --prompt-len 16 \
      --max-tokens 48 | grep -E "^\| *[0-9]"
    bash deploy/local-cluster.sh stop --run-dir out/bench/tls-run >/dev/null
  done
done
