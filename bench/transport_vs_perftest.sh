#!/usr/bin/env bash
# mmx's data plane against UCX itself, back to back: mmx_transport_bench (UcxTransport between
# two processes: envelope, mailbox, progress thread) and ucx_perftest (ucp_am_lat, ucp_am_bw),
# with the same UCX_TLS, the same sizes and the same pinning (client on CPU 0, server on CPU 1).
# Prints both figures and their ratio per transport and size; record them in docs/benchmarks.md.
#   bash bench/transport_vs_perftest.sh [--tls shm,tcp] [--sizes 8192,1048576] [--iters 5000]
#                                       [--window 16] [--senders 1] [--slide] [--rounds 2]
# shm = UCX_TLS=^mm (mmx's default on one host: TCP for small messages, CMA for large ones);
# tcp = UCX_TLS=tcp UCX_NET_DEVICES=lo. Latency is one-way (half the round trip's median for
# mmx; perftest's own 50th percentile, which it already halves). Bandwidth: mmx posts --window
# sends at once (SendAll) from each of --senders threads, or with --slide keeps --window in
# flight from one thread, posting the next as the oldest completes (as perftest keeps its
# default window of outstanding sends). perftest
# reports MB/s of 2^20 bytes; converted to GB/s of 1e9 here. Each round runs every pair again,
# so drift between runs shows as spread within a ratio column.
set -euo pipefail
cd "$(dirname "$0")/.."
tls_list=shm,tcp; sizes=8192,1048576; iters=5000; window=16; senders=1; slide=(); rounds=2
while [ $# -gt 0 ]; do
  case "$1" in
    --tls) tls_list=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --window) window=$2; shift 2 ;;
    --senders) senders=$2; shift 2 ;;
    --slide) slide=(--slide); shift ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "transport_vs_perftest.sh: error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
bench=build/bin/mmx_transport_bench
[ -x "$bench" ] || { echo "transport_vs_perftest.sh: error: build $bench first (ninja -C build mmx_transport_bench)" >&2; exit 1; }
command -v ucx_perftest >/dev/null || { echo "transport_vs_perftest.sh: error: ucx_perftest not found (apt-get install ucx-utils)" >&2; exit 1; }
source bench/wait_quiet.sh
port=$((13000 + RANDOM % 2000))

# perftest TEST SIZE PORT: prints perftest's "Final:" line; the server runs pinned to CPU 1.
perftest() {
  local test=$1 size=$2 port=$3 n=$iters
  [ "$test" = ucp_am_bw ] && n=$(( size >= 1048576 ? 2000 : iters * 4 ))
  taskset -c 1 ucx_perftest -p "$port" -t "$test" -s "$size" -n "$n" >/dev/null 2>&1 &
  local server=$!
  local line="" try
  for try in 1 2 3 4 5 6 7 8 9 10; do  # the server needs a moment to listen
    sleep 0.3
    line=$(taskset -c 0 ucx_perftest 127.0.0.1 -p "$port" -t "$test" -s "$size" -n "$n" 2>/dev/null | grep '^Final:' || true)
    [ -n "$line" ] && break
  done
  wait "$server" 2>/dev/null || true
  echo "$line"
}

echo "load before: $(cat /proc/loadavg)"
printf '%-4s %9s %6s | %12s %12s %6s | %10s %10s %6s\n' tls size round "mmx 1-way us" "ucx 1-way us" ratio "mmx GB/s" "ucx GB/s" ratio
for round in $(seq 1 "$rounds"); do
  for tls in ${tls_list//,/ }; do
    case "$tls" in
      shm) export UCX_TLS='^mm'; unset UCX_NET_DEVICES ;;
      tcp) export UCX_TLS=tcp UCX_NET_DEVICES=lo ;;
      *) echo "transport_vs_perftest.sh: error: --tls takes shm and tcp, not '$tls'" >&2; exit 2 ;;
    esac
    wait_quiet
    # The bench sets UCX_TLS itself from --tls; for shm it leaves mmx's default (^mm).
    # --bw-bytes: as many bandwidth messages as perftest sends (2000 of 1 MiB, 20000 of 8 KB).
    mmx=$(env -u UCX_TLS -u UCX_NET_DEVICES "$bench" --tls "$tls" --pin --send-budget-us 50 \
      --sizes "$sizes" --iters "$iters" --window "$window" --senders "$senders" "${slide[@]}" \
      --bw-bytes 2097152000 | grep ' budget ')
    for size in ${sizes//,/ }; do
      line=$(grep -E " $size B " <<<"$mmx")
      m_lat=$(sed -E 's/.*one-way ~ *([0-9.]+) us.*/\1/' <<<"$line")
      m_bw=$(sed -E 's/.*bw +([0-9.]+) GB\/s.*/\1/' <<<"$line")
      port=$((port + 2))
      u_lat=$(perftest ucp_am_lat "$size" "$port" | awk '{print $3}')
      u_bw=$(perftest ucp_am_bw "$size" $((port + 1)) | awk '{printf "%.3f", $7 * 1048576 / 1e9}')
      awk -v t="$tls" -v s="$size" -v r="$round" -v ml="$m_lat" -v ul="$u_lat" -v mb="$m_bw" -v ub="$u_bw" 'BEGIN {
        printf "%-4s %9s %6s | %12.1f %12.1f %6.2f | %10.3f %10.3f %6.2f\n", t, s, r, ml, ul,
               (ul > 0 ? ml / ul : 0), mb, ub, (ub > 0 ? mb / ub : 0) }'
    done
  done
done
echo "load after:  $(cat /proc/loadavg)"
echo "(latency ratio: mmx / ucx, lower is better; bandwidth ratio: mmx / ucx, higher is better)"
