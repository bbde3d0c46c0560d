#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Data-path benchmarks for leapd, each against its baseline in the same run:
#  1. runtime ceiling: leap-perf on the null and mem backends, 4 KiB random
#     reads, QD sweep (leapd's reactor pinned to CPU 0, leap-perf to CPU 1);
#  2. passthrough: fio's io_uring engine with O_DIRECT on a 1 GiB file of
#     random data vs leap-perf through leapd's uring backend on the same
#     file, QD 32 (IOPS ratio) and QD 1 (added p50 latency), leap-perf
#     polling and in interrupt mode (--irq); fio runs with lat_percentiles
#     so its total latency (submission + completion, what leap-perf
#     measures) is compared as well as its clat; CPU used by leapd and by
#     the load generator over each run. Three layouts: the reactor on
#     CPU 0 and leap-perf polling on CPU 1 (the layout of section 1);
#     the same with leap-perf --irq; and reactor and leap-perf --irq both
#     on IRQ_CPU (default 1: the CPU taking the virtio disk's interrupts
#     here, see /proc/interrupts), where fio runs: the same one-CPU budget
#     as fio, and completions reach the reactor without a cross-CPU wake;
#  3. scaling: 16 controllers x 4 queue pairs vs one queue pair (null), all
#     64 queue pairs driven by ONE leap-perf thread (-c c0,...,c15 -P 4), so
#     the figure is leapd's, not the oversubscription of two CPUs;
#  4. leapd RSS idle and with 64 queue pairs attached.
# Prints a markdown section on stdout. QUICK=1 shortens every run.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
BIN="$BUILD/bin"
QUICK="${QUICK:-0}"
IRQ_CPU="${IRQ_CPU:-1}"
T=$([ "$QUICK" = 1 ] && echo 2 || echo 5)
FIO="$BUILD/fio/fio"
[ -x "$FIO" ] || FIO=fio
DIR="$(mktemp -d /var/tmp/leapio-bench.XXXXXX)"
LEAPD_PID=""

cleanup() {
	[ -n "$LEAPD_PID" ] && kill -TERM "$LEAPD_PID" 2>/dev/null && wait "$LEAPD_PID" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap - EXIT

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

perf() { # CTRL ARGS... -> JSON (on CPU $PERF_CPU, default 1)
	local c=$1
	shift
	taskset -c "${PERF_CPU:-1}" "$BIN/leap-perf" -s "$DIR/t.sock" -c "$c" --json "$@"
}

rss_kb() { awk '/^VmRSS/ {print $2}' /proc/"$LEAPD_PID"/status; }
# utime + stime of leapd in clock ticks (comm has no spaces: fields 14, 15).
leapd_ticks() { awk '{print $14 + $15}' /proc/"$LEAPD_PID"/stat; }
HZ=$(getconf CLK_TCK)

echo "#### Data path ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "Command: \`bench/datapath.sh\`$([ "$QUICK" = 1 ] && echo ' (QUICK=1)'), ${T} s per point; leapd's reactor on CPU 0, the load generator on CPU 1."
echo "Load average at start: $(cut -d' ' -f1-3 /proc/loadavg)."
echo

# ---- 1. ceiling -----------------------------------------------------------
ctrls=""
for i in $(seq 0 15); do
	ctrls="$ctrls{\"method\": \"ctrl_create\", \"params\": {\"name\": \"c$i\", \"max_qpairs\": 4}},
{\"method\": \"ns_add\", \"params\": {\"ctrl\": \"c$i\", \"bdev\": \"n0\", \"offset\": $((i << 35)), \"size\": $((1 << 35)), \"lba_size\": 4096}},"
done
cat >"$DIR/ceil.json" <<JSON
[
 {"method": "bdev_create", "params": {"name": "n0", "type": "null", "size": 1099511627776, "block_size": 4096}},
 {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 1073741824, "block_size": 4096}},
 $ctrls
 {"method": "ctrl_create", "params": {"name": "mem", "max_qpairs": 4}},
 {"method": "ns_add", "params": {"ctrl": "mem", "bdev": "m0", "lba_size": 4096}}
]
JSON
start_leapd "$DIR/ceil.json" -m 0
rss_idle=$(rss_kb)
echo "| backend | QD | IOPS | p50 µs | p99 µs |"
echo "|---|---:|---:|---:|---:|"
for qd in 1 32 128 256; do
	for b in null mem; do
		c=$([ $b = null ] && echo c0 || echo mem)
		j=$(perf "$c" -q "$qd" -o 4096 -w randread -t "$T")
		printf '| %s | %s | %.0f | %.1f | %.1f |\n' "$b" "$qd" "$(jq .iops <<<"$j")" \
			"$(jq .latency_us.p50 <<<"$j")" "$(jq .latency_us.p99 <<<"$j")"
	done
done
echo

# ---- 3. scaling ------------------------------------------------------------
all=$(seq -s, -f 'c%.0f' 0 15)
# The single-queue figure before and after (mean): on a shared VM the load moves.
single1=$(perf c0 -q 32 -o 4096 -w randread -t "$T" | jq .iops)
perf "$all" -q 8 -P 4 -o 4096 -w randread -t "$T" >"$DIR/scale.json" &
spid=$!
sleep 1
rss_64=$(rss_kb)
wait "$spid"
agg=$(jq .iops "$DIR/scale.json")
single2=$(perf c0 -q 32 -o 4096 -w randread -t "$T" | jq .iops)
single=$(echo "($single1 + $single2) / 2" | bc -l)
printf 'Scaling (null backend, 4 KiB random reads): one queue pair at QD 32: %.0f IOPS (mean of %.0f before and %.0f after); 16 controllers x 4 queue pairs at QD 8 each (64 queue pairs, one leap-perf thread: `leap-perf -c c0,...,c15 -P 4 -q 8`): %.0f IOPS aggregate, ratio %.2f.\n\n' \
	"$single" "$single1" "$single2" "$agg" "$(echo "$agg / $single" | bc -l)"
printf 'leapd RSS: %s KiB idle with 17 controllers; %s KiB with 64 queue pairs attached (%.0f KiB per queue pair).\n\n' \
	"$rss_idle" "$rss_64" "$(echo "($rss_64 - $rss_idle) / 64" | bc -l)"
stop_leapd

# ---- 2. passthrough ---------------------------------------------------------
head -c 1G /dev/urandom >"$DIR/data.img"
cat >"$DIR/pass.json" <<JSON
[
 {"method": "bdev_create", "params": {"name": "f0", "type": "uring", "path": "$DIR/data.img", "block_size": 512}},
 {"method": "ctrl_create", "params": {"name": "p0", "max_qpairs": 1}},
 {"method": "ns_add", "params": {"ctrl": "p0", "bdev": "f0", "lba_size": 512}}
]
JSON
fio_run() { # QD -> [IOPS, clat p50 us, total lat p50 us]
	taskset -c "$IRQ_CPU" "$FIO" --name=base --filename="$DIR/data.img" --ioengine=io_uring --direct=1 \
		--rw=randread --bs=4k --iodepth="$1" --runtime="$T" --time_based --lat_percentiles=1 \
		--output-format=json 2>/dev/null |
		jq -c '.jobs[0].read | [.iops, .clat_ns.percentile["50.000000"] / 1000,
			.lat_ns.percentile["50.000000"] / 1000]'
}
echo "| QD | layout (reactor CPU / leap-perf CPU, mode) | fio IOPS | leapd IOPS | ratio | fio clat p50 µs | fio lat p50 µs | leapd p50 µs | added p50 µs (vs fio lat) | leapd CPU % | leap-perf CPU % |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for layout in "0 1 poll" "0 1 irq" "$IRQ_CPU $IRQ_CPU irq"; do
	read -r rcpu pcpu mode <<<"$layout"
	start_leapd "$DIR/pass.json" -m "$rcpu"
	for qd in 32 1; do
		f=$(fio_run "$qd")
		args=()
		[ "$mode" = irq ] && args=(--irq)
		t0=$(leapd_ticks)
		l=$(PERF_CPU=$pcpu perf p0 -q "$qd" -o 4096 -w randread -t "$T" "${args[@]}")
		t1=$(leapd_ticks)
		fi=$(jq '.[0]' <<<"$f")
		fc=$(jq '.[1]' <<<"$f")
		fl=$(jq '.[2]' <<<"$f")
		li=$(jq .iops <<<"$l")
		lp=$(jq .latency_us.p50 <<<"$l")
		lsec=$(jq .seconds <<<"$l")
		printf '| %s | %s / %s, %s | %.0f | %.0f | %.2f | %.1f | %.1f | %.1f | %.1f | %.0f | %.0f |\n' \
			"$qd" "$rcpu" "$pcpu" "$mode" "$fi" "$li" "$(echo "$li / $fi" | bc -l)" "$fc" \
			"$fl" "$lp" "$(echo "$lp - $fl" | bc -l)" \
			"$(echo "100 * ($t1 - $t0) / $HZ / $lsec" | bc -l)" "$(jq .cpu_pct <<<"$l")"
	done
	stop_leapd
done
echo
