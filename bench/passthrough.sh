#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Passthrough on a shared host (issue 17, item 4), in alternating rounds:
# fio's io_uring engine with O_DIRECT on a 1 GiB file of random data (the
# baseline, run before and after each leapd run) vs leap-perf through
# leapd's uring backend on the same file. QD 32: the IOPS ratio to the mean
# of the fio runs either side, every round (target >= 0.95x in each); QD 1:
# leapd's p50 minus that of the fio run right before (total latency,
# submission + completion, what leap-perf measures; target <= 3 us).
#
# Layouts (LAYOUTS, "REACTOR_CPU PERF_CPU MODE" separated by commas):
# default: the reactor and leap-perf --irq on IRQ_CPU (the CPU taking the
# virtio disk's interrupts, where fio runs too: the same one-CPU budget);
# the reactor on IRQ_CPU, where fio runs (it is the one that submits to and
# reaps the io_uring, like fio), with leap-perf polling on the other CPU;
# and the reverse (reactor on the other CPU, leap-perf polling on IRQ_CPU):
# each completion then crosses CPUs from the interrupt to the reactor
# (0.80-0.91 where the one above gave 0.94-0.96, 2026-12-06 16:43 UTC).
# MODE is leap-perf's wait mode: irq, poll or adaptive (its default);
# PERF_ARGS adds options to every leap-perf run (e.g. --poll-us 20).
# Environment: BUILD, QUICK=1, ROUNDS (5), T (seconds per run, 4), IRQ_CPU (1).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
BIN="$BUILD/bin"
FIO="${FIO:-$BUILD/fio/fio}"
if [ "${QUICK:-0}" = 1 ]; then
	ROUNDS="${ROUNDS:-2}" T="${T:-2}"
else
	ROUNDS="${ROUNDS:-5}" T="${T:-4}"
fi
IRQ_CPU="${IRQ_CPU:-1}"
OTHER_CPU=$((1 - IRQ_CPU))
LAYOUTS="${LAYOUTS:-$IRQ_CPU $IRQ_CPU irq,$IRQ_CPU $OTHER_CPU poll,$OTHER_CPU $IRQ_CPU poll}"
DIR=$(mktemp -d /var/tmp/leapio-passbench.XXXXXX)
LEAPD_PID=""

cleanup() {
	[ -n "$LEAPD_PID" ] && kill -TERM "$LEAPD_PID" 2>/dev/null && wait "$LEAPD_PID" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
[ -x "$FIO" ] || FIO=$(command -v fio)
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

head -c 1G /dev/urandom >"$DIR/data.img"
sync
cat >"$DIR/pass.json" <<JSON
[
 {"method": "bdev_create", "params": {"name": "f0", "type": "uring", "path": "$DIR/data.img", "block_size": 512}},
 {"method": "ctrl_create", "params": {"name": "p0", "max_qpairs": 1}},
 {"method": "ns_add", "params": {"ctrl": "p0", "bdev": "f0", "lba_size": 512}}
]
JSON
fio_run() { # QD -> "IOPS total-lat-p50-us"
	taskset -c "$IRQ_CPU" "$FIO" --name=base --filename="$DIR/data.img" --ioengine=io_uring \
		--direct=1 --rw=randread --bs=4k --iodepth="$1" --runtime="$T" --time_based \
		--lat_percentiles=1 --output-format=json 2>/dev/null |
		jq -r '.jobs[0].read | "\(.iops) \(.lat_ns.percentile["50.000000"] / 1000)"'
}
leap_run() { # PERF_CPU MODE QD -> "IOPS p50-us"
	local args=()
	case $2 in # MODE: leap-perf's wait mode (adaptive is its default)
	irq) args=(--irq) ;;
	poll) args=(--poll) ;;
	esac
	timeout 120 taskset -c "$1" "$BIN/leap-perf" -s "$DIR/t.sock" -c p0 -q "$3" -o 4096 \
		-w randread -t "$T" --json "${args[@]}" ${PERF_ARGS:-} | jq -r '"\(.iops) \(.latency_us.p50)"'
}

echo "### Passthrough on a shared host (bench/passthrough.sh)"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg);" \
	"$(nproc) CPUs; $ROUNDS alternating rounds of $T s; fio and leap-perf on CPU $IRQ_CPU (the disk's interrupts)."
echo
echo "| layout (reactor CPU / leap-perf CPU, mode) | QD 32 leapd / fio IOPS per round (fio: mean of the runs before and after) | min / median / max | every round ≥ 0.95 | fio QD 32 k IOPS, min-max | QD 1 added p50 µs per round | median (target ≤ 3) |"
echo "|---|---|---|---|---|---|---|"
IFS=',' read -r -a layouts <<<"$LAYOUTS"
for layout in "${layouts[@]}"; do
	read -r rcpu pcpu mode <<<"$layout"
	start_leapd "$DIR/pass.json" -m "$rcpu"
	leap_run "$pcpu" "$mode" 32 >/dev/null # warm-up, discarded
	fios=()
	leaps=()
	added=()
	for _ in $(seq 1 "$ROUNDS"); do
		read -r fi _ <<<"$(fio_run 32)"
		read -r li _ <<<"$(leap_run "$pcpu" "$mode" 32)"
		fios+=("$fi")
		leaps+=("$li")
		read -r _ fl <<<"$(fio_run 1)"
		read -r _ lp <<<"$(leap_run "$pcpu" "$mode" 1)"
		added+=("$(echo "$lp - $fl" | bc -l | xargs printf '%+.1f')")
	done
	read -r fi _ <<<"$(fio_run 32)" # the last round's "after"
	fios+=("$fi")
	stop_leapd
	# Each leapd run against the mean of the fio runs before and after it:
	# the disk's own rate drifts between runs (fio QD 32 alone: 88-96 k IOPS within minutes, 2026-12-06).
	ratios=()
	for i in $(seq 0 $((ROUNDS - 1))); do
		ratios+=("$(echo "2 * ${leaps[$i]} / (${fios[$i]} + ${fios[$((i + 1))]})" | bc -l |
			xargs printf '%.2f')")
	done
	fio_k=$(printf '%s\n' "${fios[@]}" | sort -g | awk '{ a[NR] = $1 } END { printf "%.0f-%.0f", a[1] / 1e3, a[NR] / 1e3 }')
	sorted=($(printf '%s\n' "${ratios[@]}" | sort -g))
	all=$(awk -v m="${sorted[0]}" 'BEGIN { print (m >= 0.95) ? "yes" : "no" }')
	echo "| $rcpu / $pcpu, $mode | ${ratios[*]} | ${sorted[0]} / $(median "${ratios[@]}") / ${sorted[-1]} | $all | $fio_k | ${added[*]} | $(median "${added[@]}") |"
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
