#!/usr/bin/env bash
# The data plane between two network namespaces over a veth pair (UCX over TCP), unshaped and
# shaped with tc tbf to a NIC's rate, against what the planner's network term predicts for the
# same link (plan/cost_model.h: a message takes bytes / (rate x kNetworkEfficiency 0.9) plus both
# ends' latency, network_latency_us, default 10 us each). There is no netem here: bandwidth only.
#   sudo bash bench/transport_netns.sh [--rates unshaped,10gbit] [--sizes 8192,1048576] [--iters 2000]
# Needs root (ip netns, tc) and a build (build/bin/mmx_transport_bench). Removes what it made.
set -euo pipefail
cd "$(dirname "$0")/.."
rates=unshaped,10gbit; sizes=8192,1048576; iters=2000
while [ $# -gt 0 ]; do
  case "$1" in
    --rates) rates=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    *) echo "transport_netns.sh: error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
bench=build/bin/mmx_transport_bench
[ -x "$bench" ] || { echo "transport_netns.sh: error: build $bench first" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "transport_netns.sh: error: needs root (ip netns, tc)" >&2; exit 1; }
a=mmxb-client; b=mmxb-server
cleanup() { ip netns del "$a" 2>/dev/null || true; ip netns del "$b" 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add "$a"; ip netns add "$b"
# One veth pair, each end named mmx0 inside its namespace (so one UCX_NET_DEVICES fits both).
ip link add mmx0 netns "$a" type veth peer name mmx0 netns "$b"
ip -n "$a" addr add 10.231.0.1/24 dev mmx0; ip -n "$b" addr add 10.231.0.2/24 dev mmx0
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; ip -n "$ns" link set mmx0 up; done
source bench/wait_quiet.sh

# shape RATE: tbf on both ends' egress (each direction is limited once), or none.
shape() {
  for ns in "$a" "$b"; do
    tc -n "$ns" qdisc del dev mmx0 root 2>/dev/null || true
    # burst: a few 64 KiB TCP segments (veth offloads to 64 KiB); latency bounds the queue.
    [ "$rate" = unshaped ] || tc -n "$ns" qdisc add dev mmx0 root tbf rate "$rate" burst 256kb latency 5ms
  done
}

echo "load before: $(cat /proc/loadavg)"
printf '%-9s %9s | %12s %12s | %10s %10s\n' rate size "1-way us" "planner us" "GB/s" "planner GB/s"
for rate in ${rates//,/ }; do
  shape
  wait_quiet
  out=$("$bench" --tls tcp --net-devices mmx0 --client-netns "$a" --server-netns "$b" \
    --send-budget-us 50 --sizes "$sizes" --iters "$iters" | grep ' budget ')
  for size in ${sizes//,/ }; do
    line=$(grep -E " $size B " <<<"$out")
    lat=$(sed -E 's/.*one-way ~ *([0-9.]+) us.*/\1/' <<<"$line")
    bw=$(sed -E 's/.*bw +([0-9.]+) GB\/s.*/\1/' <<<"$line")
    # The planner for a link of this rate (unshaped: no figure to compare with).
    awk -v r="$rate" -v s="$size" -v l="$lat" -v b="$bw" 'BEGIN {
      gbit = 0; if (r ~ /gbit$/) gbit = substr(r, 1, length(r) - 4) + 0; else if (r ~ /mbit$/) gbit = (substr(r, 1, length(r) - 4) + 0) / 1000;
      if (gbit > 0) { bytes_s = gbit * 1e9 / 8 * 0.9; p_lat = s / bytes_s * 1e6 + 2 * 10; p_bw = bytes_s / 1e9;
        printf "%-9s %9s | %12.1f %12.1f | %10.3f %10.3f\n", r, s, l, p_lat, b, p_bw }
      else printf "%-9s %9s | %12.1f %12s | %10.3f %10s\n", r, s, l, "-", b, "-" }'
  done
done
echo "load after:  $(cat /proc/loadavg)"
