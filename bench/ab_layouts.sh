#!/usr/bin/env bash
# A/B of two builds serving one cluster layout (default: the medium model, 2 attention stages +
# 2 expert hosts on loopback), back to back: ROUNDS rounds alternating A and B, each starting the
# cluster with that build's binaries (MMX_BIN) and measuring decode tokens/s at 1 and 32 streams
# through the gRPC API (mmx-bench-serve, as bench/run_layouts.sh), and the coordinator's mean
# step time over each (its mmx_step_seconds). Compare within a round: this VM's bandwidth drifts
# between runs.
#   bash bench/ab_layouts.sh OLD_BIN_DIR NEW_BIN_DIR [LAYOUT] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
a=${1:?old build bin dir}; b=${2:?new build bin dir}
layout=${3:-disaggregated}; rounds=${4:-3}
model=$PWD/out/models/medium
[ -f "$model/model.safetensors.index.json" ] || build/bin/mmx-mkmodel --preset medium --out "$model" --seed 1
mkdir -p out/bench
sed "s|^model: .*|model: $model|" deploy/shard-configs/medium-$layout.yaml >out/bench/ab-$layout.yaml
# "sum count" of the coordinator's step histogram (metrics on the --port + 1 default).
step_seconds() {
  curl -s http://127.0.0.1:7091/metrics |
    awk '/^mmx_step_seconds_sum/ { s = $2 } /^mmx_step_seconds_count/ { c = $2 } END { print s + 0, c + 0 }'
}
for round in $(seq 1 "$rounds"); do
  for which in A B; do
    bin=$a; [ "$which" = B ] && bin=$b
    echo "=== round $round $which ($bin) $(date +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"
    MMX_BIN=$bin bash deploy/local-cluster.sh start --shard-config out/bench/ab-$layout.yaml --port 7090 --threads 2 \
      --expert-host-threads 1 --run-dir out/bench/ab-run >/dev/null
    for streams in 1 32; do
      before=$(step_seconds)
      "$bin/mmx-bench-serve" --server 127.0.0.1:7090 --concurrency "$streams" --prompt-len 16 --max-tokens 48 |
        grep -E "^\| *[0-9]" | tr -d '\n'
      after=$(step_seconds)
      # The coordinator's own mean step (mmx_step_seconds: sending a step to its last tokens).
      awk -v b="$before" -v a="$after" 'BEGIN { split(b, x, " "); split(a, y, " "); n = y[2] - x[2];
        ms = (n > 0) ? (y[1] - x[1]) / n * 1000 : 0;
        printf " mean step %.2f ms over %d steps\n", ms, n }'
    done
    MMX_BIN=$bin bash deploy/local-cluster.sh stop --run-dir out/bench/ab-run >/dev/null
  done
done
