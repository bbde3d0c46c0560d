#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# bench/xdp.sh — the fabric ACL at the port: policies/fabric_acl.bpf.c (XDP,
# attached by leapd) against the equivalent nftables drop rule, on the same
# veth pair in the same run.
#
#  1. Drop rate: a raw SYN flood (tests/tools/xdp_net flood, sendmmsg
#     batches, qdisc bypass) from a source outside the allow-list to the
#     guarded port, as fast as one sender core goes, for each filter in
#     turn: XDP native, XDP generic, nftables netdev ingress (the earliest
#     nftables hook), nftables inet input (the usual firewall place), and
#     nothing (the kernel answers each SYN with a RST). Dropped packets per
#     second = the filter's own drop counter over the flood's wall time. On a
#     veth the receiver runs in the sender's softirq on the same core, so
#     the rate is that of sender + filter together: the cheaper the drop,
#     the more packets per second the pair gets through. Wall-clock rates
#     suffer from whatever else runs on the machine, so the sender is pinned
#     to one CPU and its CPU time per packet (getrusage: its own work plus
#     the receiver's softirq run in its context, plus that CPU's ksoftirqd,
#     where the kernel defers softirq work under load) is reported too: that
#     figure does not grow when other processes take the CPU away. A drop-all
#     XDP program attached the same way is the floor (sender + cheapest
#     possible drop); each filter's CPU time above it is what it costs.
#  2. Latency for allowed traffic, with no filter, XDP native, XDP generic
#     and nftables ingress: 64-byte request/response round trips on one TCP
#     connection (xdp_net connect --lat, port 4421, also guarded), and
#     NVMe/TCP 4 KiB random reads at queue depth 1 from leapd's target (the
#     host library's nvmf_probe, port 4420; mean latency = 1 / IOPS).
# Filters are interleaved over RUNS rounds and the median is reported.
# Prints a markdown section (bench/run.sh runs it among the per-issue
# benchmarks and appends it to RESULTS.md).
#
# Environment: BUILD, QUICK=1 (shorter floods, one round), RUNS, SECS.
# Needs root and nft (nftables, installed by scripts/deps.sh); without them
# it says so and exits 0 (a benchmark that cannot run here is no failure). Traffic stays between two namespaces this script creates
# and removes (also on failure); every loop is bounded.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
BIN="$BUILD/bin"
NET="$BUILD/tests/tools/xdp_net"
OBJ="$BUILD/policies/fabric_acl.bpf.o"
if [ "${QUICK:-0}" = 1 ]; then RUNS="${RUNS:-1}" SECS="${SECS:-2}" PINGS=10000; else
	RUNS="${RUNS:-3}" SECS="${SECS:-5}" PINGS=50000
fi
PORT=4420

if [ "$(id -u)" -ne 0 ] || ! command -v nft >/dev/null || ! command -v nsenter >/dev/null; then
	echo "bench/xdp.sh: needs root, nft and nsenter; skipped (no figures)"
	exit 0
fi
if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
	mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf
fi

TAG=$$
NS="xbS$TAG" NR="xbR$TAG" VS="xs$TAG" VR="xr$TAG"
DIR=$(mktemp -d /tmp/leapio-xdpbench.XXXXXX)
POL="acl_$TAG"
LEAPD_PID="" SRV_PID=""
cleanup() {
	[ -n "$SRV_PID" ] && { kill "$SRV_PID" 2>/dev/null || true; wait "$SRV_PID" 2>/dev/null || true; }
	[ -n "$LEAPD_PID" ] && { kill "$LEAPD_PID" 2>/dev/null || true; wait "$LEAPD_PID" 2>/dev/null || true; }
	ip netns del "$NS" 2>/dev/null || true
	ip netns del "$NR" 2>/dev/null || true
	rm -rf "/sys/fs/bpf/leapio/$POL" "/sys/fs/bpf/leapio/floor_$TAG" "$DIR"
}
trap cleanup EXIT

in_ns() { local n=$1; shift; nsenter --net="/run/netns/$n" "$@"; }
ctl() { "$BIN/leapctl" -r "$DIR/rpc.sock" -t 30 "$@"; }

ip netns add "$NS"
ip netns add "$NR"
ip link add "$VS" type veth peer name "$VR"
ip link set "$VS" netns "$NS"
ip link set "$VR" netns "$NR"
ip -n "$NS" addr add 198.18.9.2/24 dev "$VS"
ip -n "$NR" addr add 198.18.9.1/24 dev "$VR"
ip -n "$NS" link set "$VS" up
ip -n "$NR" link set "$VR" up
ip -n "$NS" link set lo up
ip -n "$NR" link set lo up
MAC=$(ip -n "$NR" -j link show dev "$VR" | jq -r '.[0].address')

nsenter --net="/run/netns/$NR" "$BIN/leapd" --foreground -r "$DIR/rpc.sock" -s "$DIR/t.sock" -l "$DIR/leapd.log" \
	</dev/null >/dev/null 2>&1 &
LEAPD_PID=$!
for _ in $(seq 1 100); do ctl info >/dev/null 2>&1 && break; sleep 0.1; done
ctl policy load "$OBJ" --name "$POL" >/dev/null
ctl policy prefix-add "$POL" 198.18.9.2 >/dev/null
ctl policy set "$POL" 'acl_ports[1]=4421' >/dev/null
ctl bdev create "m_$TAG" --type mem --size 64M >/dev/null
ctl ctrl add c0 >/dev/null
ctl ns add c0 "m_$TAG" >/dev/null
ctl subsys allow-any-host c0 on >/dev/null
ctl listener add tcp --addr 198.18.9.1 --port "$PORT" >/dev/null
ctl policy load "$BUILD/tests/bpf/progs/xdp_drop_all.bpf.o" --name "floor_$TAG" >/dev/null
nsenter --net="/run/netns/$NR" "$NET" serve 0.0.0.0 $((PORT + 1)) "$DIR/server.log" 3600 &
SRV_PID=$!
for _ in $(seq 1 50); do grep -q listening "$DIR/server.log" 2>/dev/null && break; sleep 0.1; done

NFT_INGRESS="table netdev xdpbench {
	set allow4 { type ipv4_addr; flags interval; elements = { 198.18.9.2/32 } }
	chain ingress {
		type filter hook ingress device \"$VR\" priority -500; policy accept;
		ip saddr != @allow4 tcp dport { $PORT, $((PORT + 1)) } counter drop
	}
}"
NFT_INPUT="table inet xdpbench {
	set allow4 { type ipv4_addr; flags interval; elements = { 198.18.9.2/32 } }
	chain input {
		type filter hook input priority 0; policy accept;
		ip saddr != @allow4 tcp dport { $PORT, $((PORT + 1)) } counter drop
	}
}"

filter_on() { # FILTER
	case $1 in
	xdp-native) ctl policy attach "$POL" --xdp "$VR" --mode native >/dev/null ;;
	xdp-generic) ctl policy attach "$POL" --xdp "$VR" --mode generic >/dev/null ;;
	floor) ctl policy attach "floor_$TAG" --xdp "$VR" --mode native >/dev/null ;;
	nft-ingress) in_ns "$NR" nft -f - <<<"$NFT_INGRESS" ;;
	nft-input) in_ns "$NR" nft -f - <<<"$NFT_INPUT" ;;
	none) ;;
	esac
}

filter_off() { # FILTER
	case $1 in
	xdp-* | floor) ctl policy detach --xdp "$VR" >/dev/null ;;
	nft-ingress) in_ns "$NR" nft delete table netdev xdpbench ;;
	nft-input) in_ns "$NR" nft delete table inet xdpbench ;;
	none) ;;
	esac
}

drops() { # FILTER: the filter's drop counter
	case $1 in
	xdp-*) ctl --json policy acl "$POL" | jq '.totals.dropped' ;;
	nft-ingress) in_ns "$NR" nft list chain netdev xdpbench ingress | sed -n 's/.*packets \([0-9]*\).*/\1/p' ;;
	nft-input) in_ns "$NR" nft list chain inet xdpbench input | sed -n 's/.*packets \([0-9]*\).*/\1/p' ;;
	none | floor) ip -n "$NR" -j -s link show dev "$VR" | jq '.[0].stats64.rx.packets' ;;
	esac
}

CPU=$(($(nproc) > 1 ? 1 : 0))
CLK_TCK=$(getconf CLK_TCK)
# ksoftirqd/CPU's CPU time in ns (utime + stime, fields 14 and 15 of its stat).
ksoftirqd_ns() {
	local pid
	pid=$(pgrep -x "ksoftirqd/$CPU" | head -n1)
	[ -n "$pid" ] || { echo 0; return; }
	awk -v hz="$CLK_TCK" '{printf "%.0f", ($14 + $15) * 1e9 / hz}' "/proc/$pid/stat"
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

FILTERS=(floor xdp-native xdp-generic nft-ingress nft-input none)
declare -A PPS CPUNS
for r in $(seq 1 "$RUNS"); do
	for f in "${FILTERS[@]}"; do
		filter_on "$f"
		d0=$(drops "$f")
		k0=$(ksoftirqd_ns)
		t0=$(date +%s.%N)
		out=$(in_ns "$NS" taskset -c "$CPU" "$NET" flood "$VS" "$MAC" 198.18.9.7 198.18.9.1 "$PORT" -r 0 -n 1000000000 -d "$SECS")
		t1=$(date +%s.%N)
		k1=$(ksoftirqd_ns)
		d1=$(drops "$f")
		filter_off "$f"
		PPS[$f]+="$(awk -v a="$t0" -v b="$t1" -v n=$((d1 - d0)) 'BEGIN {printf "%.0f", n / (b - a)}') "
		# CPU ns per packet sent: the sender (with the softirq in its context) + ksoftirqd.
		CPUNS[$f]+="$(awk -v k=$((k1 - k0)) '{printf "%.0f", ($6 + k) / $2}' <<<"$out") "
	done
done

LAT_FILTERS=(none xdp-native xdp-generic nft-ingress)
declare -A P50 P99 MEAN NVME
for r in $(seq 1 "$RUNS"); do
	for f in "${LAT_FILTERS[@]}"; do
		filter_on "$f"
		out=$(in_ns "$NS" "$NET" connect 198.18.9.1 $((PORT + 1)) --lat -n "$PINGS")
		read -r _ _ p50 _ p99 _ mean <<<"$out"
		P50[$f]+="$p50 " P99[$f]+="$p99 " MEAN[$f]+="$mean "
		out=$(in_ns "$NS" "$BUILD/tests/tools/nvmf_probe" -q 1 -d 1 -v 0 -t "$SECS" \
			"traddr:198.18.9.1 trsvcid:$PORT subnqn:nqn.2024-01.io.leapio:c0")
		NVME[$f]+="$(sed -n 's/^PERF_IOPS=//p' <<<"$out" | awk '{printf "%.2f", ($1 > 0 ? 1e6 / $1 : 0)}') "
		filter_off "$f"
	done
done

# The program's own cost per packet, from the kernel (BPF_ENABLE_STATS, held by leapd).
filter_on xdp-native
in_ns "$NS" "$NET" flood "$VS" "$MAC" 198.18.9.7 198.18.9.1 "$PORT" -r 0 -n 200000 -d 5 >/dev/null
in_ns "$NS" "$NET" connect 198.18.9.1 $((PORT + 1)) --lat -n 20000 >/dev/null
ns_per_run=$(ctl --json policy list | jq '.xdp_links[0].ns_per_run')
filter_off xdp-native

med() { tr ' ' '\n' <<<"$1" | grep -v '^$' | median; }
xdp_pps=$(med "${PPS[xdp-native]}")
echo "### XDP fabric ACL vs nftables ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "\`bench/xdp.sh\` (RUNS=$RUNS, SECS=$SECS): one veth pair between two namespaces, fabric_acl"
echo "attached by leapd; a raw SYN flood from a source outside the allow-list to port $PORT"
echo "(one sender core, sendmmsg); medians of $RUNS interleaved rounds."
echo
floor_cpu=$(med "${CPUNS[floor]}")
xdp_cpu=$(med "${CPUNS[xdp-native]}")
echo "| filter | dropped pkt/s (wall) | XDP native ÷ this | CPU ns/pkt (sender + filter) | CPU ns/pkt above the floor | this ÷ XDP native (above floor) |"
echo "|---|---|---|---|---|---|"
for f in "${FILTERS[@]}"; do
	p=$(med "${PPS[$f]}")
	c=$(med "${CPUNS[$f]}")
	label=$f
	[ "$f" = floor ] && label="floor: XDP \`return XDP_DROP\` (counted as received)"
	[ "$f" = none ] && label="none: the kernel answers each SYN with a RST (counted as received)"
	echo "| $label | $p | $(awk -v a="$xdp_pps" -v b="$p" 'BEGIN {printf (b > 0 ? "%.2f" : "-"), a / b}') | $c | $((c - floor_cpu)) | $(awk -v x=$((xdp_cpu - floor_cpu)) -v y=$((c - floor_cpu)) 'BEGIN {printf (x > 0 && y > 0 ? "%.2f" : "-"), y / x}') |"
done
echo
echo "The sender and the receiving filter share one core (a veth receives in the sender's"
echo "softirq), so pkt/s is the pair's rate and moves with the machine's other load; the CPU"
echo "time per packet (sender pinned to CPU $CPU: its getrusage, which includes the softirq run"
echo "in its context, plus ksoftirqd/$CPU) does not. \"Above the floor\" subtracts a drop-all"
echo "XDP program's cost: what each filter adds per packet; the last column is that cost as a"
echo "multiple of fabric_acl's (native)."
echo
echo "Allowed traffic, µs: round trip of a 64-byte request/response on one TCP connection"
echo "(\`xdp_net connect --lat -n $PINGS\`), and NVMe/TCP 4 KiB random reads at QD1 against"
echo "leapd's target (\`nvmf_probe -q 1 -d 1 -v 0 -t $SECS\`, mean latency = 1 / IOPS):"
echo
echo "| filter | TCP p50 | TCP p99 | TCP mean | added TCP p50 | NVMe/TCP QD1 read | added |"
echo "|---|---|---|---|---|---|---|"
base=$(med "${P50[none]}")
nbase=$(med "${NVME[none]}")
for f in "${LAT_FILTERS[@]}"; do
	p=$(med "${P50[$f]}")
	n=$(med "${NVME[$f]}")
	echo "| $f | $p | $(med "${P99[$f]}") | $(med "${MEAN[$f]}") | $(awk -v a="$p" -v b="$base" 'BEGIN {printf "%+.2f", a - b}') | $n | $(awk -v a="$n" -v b="$nbase" 'BEGIN {printf "%+.2f", a - b}') |"
done
echo
echo "fabric_acl's own run time per packet (kernel run_time_ns / run_cnt, native): $ns_per_run ns"
