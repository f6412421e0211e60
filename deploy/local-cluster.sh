#!/usr/bin/env bash
# Starts (or stops) a whole mmx cluster on this machine: one mmx-coord and one mmx-worker per
# worker of a shard config, each a separate process talking gRPC and UCX over loopback.
#
#   deploy/local-cluster.sh start --shard-config FILE [--port 7070] [--threads N] [--run-dir DIR]
#                                 [--expert-host-threads N] [--micro-batches M] [--steps-in-flight N]
#                                 [--pin] [--state-dir DIR] [--tls-dir DIR]
#   deploy/local-cluster.sh stop [--run-dir DIR]
#
# Each worker runs on the device its shard config entry names (cpu, cuda:N).
# Logs and pid files go to the run dir (default out/cluster). `start` returns once the cluster
# is ready (or fails with the coordinator's log). Needs a build (deploy/build.sh).
#
# --threads: compute threads per worker. --expert-host-threads: for workers that hold only
# experts (default: --threads). On one machine the expert hosts of a layer run at the same time
# while the attention stages take turns, so giving expert hosts cores/hosts threads each keeps
# them from fighting over the cores. --micro-batches, --steps-in-flight: 0 (default) lets the
# coordinator choose. --pin: the k-th worker runs on core k (modulo the cores), with `taskset`.
# --state-dir: where the coordinator keeps batch jobs (SQLite); without it jobs are off.
# --tls-dir: serve over TLS with the certificates deploy/certs.sh wrote there (workers and the
# readiness check verify against its ca.crt).
set -euo pipefail
cd "$(dirname "$0")/.."

cmd=${1:-}; shift || true
shard=""; port=7070; threads=1; run_dir=out/cluster; timeout_s=300; micro_batches=0; expert_threads=""; state_dir=""
steps_in_flight=0; pin=0; tls_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --shard-config) shard=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --run-dir) run_dir=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --micro-batches) micro_batches=$2; shift 2 ;;
    --steps-in-flight) steps_in_flight=$2; shift 2 ;;
    --pin) pin=1; shift ;;
    --expert-host-threads) expert_threads=$2; shift 2 ;;
    --state-dir) state_dir=$2; shift 2 ;;
    --tls-dir) tls_dir=$2; shift 2 ;;
    *) echo "local-cluster.sh: error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
bin=${MMX_BIN:-build/bin}  # MMX_BIN: another build's bin directory (tests/gpu uses build-gpu/bin)

stop_all() {
  [ -d "$run_dir" ] || return 0
  for pidfile in "$run_dir"/*.pid; do
    [ -f "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

case "$cmd" in
  stop)
    stop_all
    echo "local-cluster: stopped"
    ;;
  start)
    [ -n "$shard" ] || { echo "local-cluster.sh: error: start needs --shard-config FILE" >&2; exit 2; }
    # Validates the config against the checkpoint before anything starts.
    workers=$("$bin/mmx-coord" check --shard-config "$shard" --list-workers)
    expert_hosts=" $("$bin/mmx-coord" check --shard-config "$shard" --list-expert-hosts | tr '\n' ' ') "
    devices=$("$bin/mmx-coord" check --shard-config "$shard" --list-devices)
    stop_all
    mkdir -p "$run_dir"
    addr=127.0.0.1:$port
    extra=()
    [ -n "$state_dir" ] && extra+=(--state-dir "$state_dir")
    [ "$steps_in_flight" != 0 ] && extra+=(--steps-in-flight "$steps_in_flight")
    client_tls=()
    if [ -n "$tls_dir" ]; then
      extra+=(--tls-cert "$tls_dir/coordinator.crt" --tls-key "$tls_dir/coordinator.key")
      client_tls=(--tls-ca "$tls_dir/ca.crt")
    fi
    "$bin/mmx-coord" serve --shard-config "$shard" --listen "$addr" --micro-batches "$micro_batches" "${extra[@]}" \
      >"$run_dir/coordinator.log" 2>&1 &
    echo $! >"$run_dir/coordinator.pid"
    k=0
    for w in $workers; do
      t=$threads
      if [ -n "$expert_threads" ] && [[ "$expert_hosts" == *" $w "* ]]; then t=$expert_threads; fi
      device=$(awk -v w="$w" '$1 == w { print $2 }' <<<"$devices")
      pinned=()
      [ "$pin" = 1 ] && pinned=(taskset -c $((k % $(nproc))))
      k=$((k + 1))
      "${pinned[@]}" "$bin/mmx-worker" --coordinator "$addr" --name "$w" --threads "$t" --device "${device:-cpu}" \
        "${client_tls[@]}" \
        >"$run_dir/$w.log" 2>&1 &
      echo $! >"$run_dir/$w.pid"
    done
    echo "local-cluster: coordinator on $addr, workers: $(echo $workers | tr '\n' ' ')"
    deadline=$((SECONDS + timeout_s))
    while ! "$bin/mmx" status --server "$addr" "${client_tls[@]}" 2>/dev/null | grep -q "^cluster: ready"; do
      if [ $SECONDS -gt $deadline ] || ! kill -0 "$(cat "$run_dir/coordinator.pid")" 2>/dev/null; then
        echo "local-cluster.sh: error: cluster not ready; coordinator log:" >&2
        tail -20 "$run_dir/coordinator.log" >&2
        stop_all
        exit 1
      fi
      sleep 0.5
    done
    "$bin/mmx" status --server "$addr" "${client_tls[@]}"
    ;;
  *)
    echo "usage: local-cluster.sh start --shard-config FILE [--port P] [--threads N] | stop" >&2
    exit 2
    ;;
esac
