#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The plotted benchmark suite (issue 6): six figures, each measured against
# its baseline in the same run, drawn with gnuplot as SVG files into
# bench/plots/ and printed as markdown (one table per figure, with the
# machine, date, load average and exact commands) on stdout:
#   1. runtime ceiling: leap-perf on the null and mem backends, 4 KiB
#      random reads, QD 1..256: IOPS and p50/p99 against QD;
#   2. passthrough: fio through leapd with our engine against fio's own
#      io_uring engine (O_DIRECT) on the same 1 GiB file of random data,
#      QD 1..128: IOPS ratio, p50/p99 deltas;
#   3. policy overhead: 0 / 1 / 3 policies on the null backend;
#   4. live replace timeline: a verifying fio load's IOPS per 100 ms while
#      `leapctl policy replace` runs every 100 ms, against the same load
#      without replaces, replace instants marked;
#   5. scaling: 1 -> 64 queue pairs and 1 -> 16 tenants from one thread;
#   6. priority and isolation: a QD 1 tenant's percentiles solo / next to a
#      QD 32 tenant / with prio + `bdev qos --inflight`; and measured IOPS
#      per second against an isolation limit changed live mid-run.
# leapd's reactor runs on CPU 0, the load generators on CPU 1.
# Environment: BUILD, QUICK=1 (short runs, few points, plots into a
# temporary directory unless PLOTS is set), PLOTS (where the SVGs go;
# default bench/plots/), KEEP=1 (keep the temporary directory).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
QUICK="${QUICK:-0}"
BIN="$BUILD/bin"
POL="$BUILD/policies"
ENGINE="$BUILD/lib/leapio_fio.so"
FIO="$BUILD/fio/fio"
[ -x "$FIO" ] || FIO=fio
DIR=$(mktemp -d /var/tmp/leapio-suite.XXXXXX)
TAG="s$$"
LEAPD_PID=""
LOAD_PIDS=()

if [ "$QUICK" = 1 ]; then
	T=1 ROUNDS=1 REPL_SECS=4 STEP_SECS=2
	CEIL_QDS="1 16 256" PASS_QDS="1 32" QP_POINTS="1 8 64" TEN_POINTS="1 16"
	LIMITS="20000 5000 10000"
	PLOTS="${PLOTS:-/tmp/leapio-plots-quick}"
else
	T=3 ROUNDS=5 REPL_SECS=15 STEP_SECS=5
	CEIL_QDS="1 2 4 8 16 32 64 128 256" PASS_QDS="1 2 4 8 16 32 64 128"
	QP_POINTS="1 2 4 8 16 32 64" TEN_POINTS="1 2 4 8 16"
	LIMITS="20000 5000 40000 10000"
	PLOTS="${PLOTS:-$ROOT/bench/plots}"
fi
mkdir -p "$PLOTS"
if [ -n "${PNGDIR:-}" ]; then mkdir -p "$PNGDIR"; fi
case "$PLOTS" in
"$ROOT/bench/"*) LINK="${PLOTS#"$ROOT/bench/"}" ;;
*) LINK="$PLOTS" ;;
esac

cleanup() {
	local p
	for p in "${LOAD_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	[ -n "$LEAPD_PID" ] && kill -TERM "$LEAPD_PID" 2>/dev/null && wait "$LEAPD_PID" 2>/dev/null
	rm -rf /sys/fs/bpf/leapio/*_"$TAG"
	[ -n "${KEEP:-}" ] || rm -rf "$DIR"
}
trap cleanup EXIT

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
# leap-perf on CPU 1, JSON out.
perf() { timeout 300 taskset -c 1 "$BIN/leap-perf" -s "$DIR/t.sock" --json "$@"; }
# fio on CPU 1; the engine's options are added by fio_leap.
fio1() { timeout 300 taskset -c 1 "$FIO" "$@"; }
fio_leap() { # CTRL ARGS...
	local c=$1
	shift
	fio1 --ioengine=external:"$ENGINE" --thread=1 --socket="$DIR/t.sock" --ctrl="$c" \
		--nsid=1 "$@"
}
j() { jq -r "$1" <<<"$2"; }
# ms from T0 (now_ms) to the start of the job in fio's JSON report: the
# report's timestamp less the job's runtime (fio's log times count from there).
fio_offset() { # JSON_FILE T0
	echo $(($(jq '.timestamp_ms' "$1") - $(jq '.jobs[0].job_runtime' "$1") - $2))
}
now_ms() { echo $((${EPOCHREALTIME//[.,]/} / 1000)); }


cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
MACHINE="$(nproc) CPUs, ${cpu_model:-unknown CPU}, Linux $(uname -r)"
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
HAVE_GNUPLOT=1
command -v gnuplot >/dev/null || HAVE_GNUPLOT=0

# Figure header: title, then what every figure reports.
fig_head() { # N TITLE SVG
	echo "#### Figure $1: $2"
	echo
	if [ "$HAVE_GNUPLOT" = 1 ]; then
		echo "![Figure $1: $2]($LINK/$3)"
	else
		echo "(gnuplot not installed: no plot)"
	fi
	echo
	echo "- machine: $MACHINE; revision $REV"
	echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- leapd: \`leapd --foreground -c cfg.json -m 0\` (reactor on CPU 0); loads on CPU 1 (\`taskset -c 1\`)"
}

# gnuplot with the common preamble; the script comes on stdin. PNGDIR set:
# also a PNG of the same script there (pngcairo), to look at without a browser.
plot() { # SVG SUBTITLE
	[ "$HAVE_GNUPLOT" = 1 ] || return 0
	local body term out
	body=$(cat)
	for term in svg png; do
		if [ "$term" = svg ]; then
			out="$PLOTS/$1"
			term="svg size 960,560 dynamic enhanced font 'Helvetica,12' background rgb 'white'"
		else
			[ -n "${PNGDIR:-}" ] || continue
			out="$PNGDIR/${1%.svg}.png"
			term="pngcairo size 1200,700 enhanced font 'Helvetica,11' background rgb 'white'"
		fi
		{
			echo "set terminal $term"
			echo "set output '$out'"
			echo "sub = \"$2 — leapio $REV, $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1 /proc/loadavg), $(nproc) vCPU$(if [ "$QUICK" = 1 ]; then echo ', QUICK'; fi)\""
			echo "set grid lc rgb '#dddddd'"
			echo "set key outside top center horizontal"
			echo "$body"
		} | gnuplot 2>"$DIR/gnuplot.err" || {
			echo "gnuplot failed for $out:" >&2
			cat "$DIR/gnuplot.err" >&2
			return 1
		}
	done
}

echo "### Plotted suite (bench/suite.sh$(if [ "$QUICK" = 1 ]; then echo ', QUICK'; fi))"
echo
echo "Plots in \`$LINK/\`; ${T} s per point. Load average at start: $(cut -d' ' -f1-3 /proc/loadavg)."
echo

# ---- 0. hook cost ------------------------------------------------------------------------------
# bpf_bench's table: per program and engine, the median ns per call of 5 repeats (and min/max).
bpf_args=()
[ "$QUICK" = 1 ] && bpf_args=(--quick)
"$BUILD/bench/bpf_bench" "${bpf_args[@]}" >"$DIR/bpf.txt"
awk -F'|' '$2 ~ /minimal|policy/ && $3 !~ /in-kernel/ {
	gsub(/^ +| +$/, "", $2); gsub(/^ +| +$/, "", $3)
	printf "\"%s\" \"%s\" %s %s %s\n", $2, $3, $4, $5, $6 }' "$DIR/bpf.txt" >"$DIR/bpf.dat"
fig_head 0 "hook cost: interpreter / JIT / kernel prog_run / native C" fig0-hook-cost.svg
echo "- command: \`build/bench/bpf_bench$(if [ "$QUICK" = 1 ]; then echo ' --quick'; fi)\` (the minimal program and the realistic policy: 3 array-map lookups, a few branches)"
echo
sed -n '/^| program/,/^$/p' "$DIR/bpf.txt"
sed -n '/^| ratio/,/^$/p' "$DIR/bpf.txt"
plot fig0-hook-cost.svg "bench/bpf\\\\_bench, median of 5 repeats, min–max bars" <<GP
set title "Figure 0: cost of one hook run\\n{/*0.8 " . sub . "}"
set style data histogram
set style histogram errorbars gap 2 lw 1
set xtics noenhanced
set style fill solid 0.7 border -1
set logscale y
set ylabel "ns per call (log scale)"
set yrange [1:*]
set xtics nomirror
plot "< grep '\"minimal\"' $DIR/bpf.dat" u 3:4:5:xtic(2) t "minimal program" lc rgb '#4477aa', \
     "< grep '\"policy\"' $DIR/bpf.dat" u 3:4:5 t "realistic policy" lc rgb '#ee6677'
GP

# ---- 1. runtime ceiling ----------------------------------------------------------------------
cat >"$DIR/cfg.json" <<JSON
[
 {"method": "bdev_create", "params": {"name": "n0", "type": "null", "size": 1099511627776, "block_size": 4096}},
 {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 1073741824, "block_size": 4096}},
 {"method": "ctrl_create", "params": {"name": "null", "max_qpairs": 4}},
 {"method": "ns_add", "params": {"ctrl": "null", "bdev": "n0", "lba_size": 4096}},
 {"method": "ctrl_create", "params": {"name": "mem", "max_qpairs": 4}},
 {"method": "ns_add", "params": {"ctrl": "mem", "bdev": "m0", "lba_size": 4096}}
]
JSON
start_leapd "$DIR/cfg.json" -m 0
: >"$DIR/ceil.dat"
for qd in $CEIL_QDS; do
	row="$qd"
	for b in null mem; do
		o=$(perf -c "$b" -q "$qd" -o 4096 -w randread -t "$T")
		row="$row $(j .iops "$o") $(j .latency_us.p50 "$o") $(j .latency_us.p99 "$o")"
	done
	echo "$row" >>"$DIR/ceil.dat"
done
stop_leapd
fig_head 1 "runtime ceiling (null and mem backends, 4 KiB random reads)" fig1-ceiling.svg
echo "- command per point: \`taskset -c 1 leap-perf -s t.sock -c null|mem -q QD -o 4096 -w randread -t $T\`"
echo
echo "| QD | null IOPS | null p50 µs | null p99 µs | mem IOPS | mem p50 µs | mem p99 µs |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
awk '{ printf "| %d | %.0f | %.1f | %.1f | %.0f | %.1f | %.1f |\n", $1, $2, $3, $4, $5, $6, $7 }' \
	"$DIR/ceil.dat"
echo
plot fig1-ceiling.svg "leap-perf, 4 KiB randread" <<GP
set multiplot layout 1,2 title "Figure 1: runtime ceiling\n{/*0.8 " . sub . "}"
set logscale x 2
set xlabel "queue depth"
set ylabel "IOPS (millions)"
set yrange [0:*]
set title "throughput"
plot '$DIR/ceil.dat' u 1:(\$2/1e6) w lp pt 7 lw 2 t "null", '' u 1:(\$5/1e6) w lp pt 5 lw 2 t "mem"
set logscale y 10
set yrange [*:*]
set ylabel "latency (µs, log scale)"
set title "latency"
plot '$DIR/ceil.dat' u 1:3 w lp pt 7 lw 2 lc 1 t "null p50", '' u 1:4 w lp pt 6 lw 2 dt 2 lc 1 t "null p99", \
     '' u 1:6 w lp pt 5 lw 2 lc 2 t "mem p50", '' u 1:7 w lp pt 4 lw 2 dt 2 lc 2 t "mem p99"
unset multiplot
GP

# ---- 2. passthrough --------------------------------------------------------------------------
head -c 1G /dev/urandom >"$DIR/data.img"
sync "$DIR/data.img" # O_DIRECT reads of dirty pages would wait for their writeback
cat >"$DIR/cfg.json" <<JSON
[
 {"method": "bdev_create", "params": {"name": "f0", "type": "uring", "path": "$DIR/data.img", "block_size": 512}},
 {"method": "ctrl_create", "params": {"name": "p0", "max_qpairs": 1}},
 {"method": "ns_add", "params": {"ctrl": "p0", "bdev": "f0", "lba_size": 512}}
]
JSON
start_leapd "$DIR/cfg.json" -m 0
FIO_COMMON=(--name=pass --rw=randread --bs=4k --runtime="$T" --time_based --lat_percentiles=1
	--output-format=json)
fio_pct() { # JSON -> "IOPS p50_us p99_us" (total latency: submission + completion)
	jq -r '.jobs[0].read | "\(.iops) \(.lat_ns.percentile["50.000000"] / 1000) \(.lat_ns.percentile["99.000000"] / 1000)"' <<<"$1"
}
: >"$DIR/pass.dat"
for qd in $PASS_QDS; do
	u=$(fio1 "${FIO_COMMON[@]}" --iodepth="$qd" --ioengine=io_uring --direct=1 \
		--filename="$DIR/data.img" 2>/dev/null)
	l=$(fio_leap p0 "${FIO_COMMON[@]}" --iodepth="$qd" 2>/dev/null)
	echo "$qd $(fio_pct "$u") $(fio_pct "$l")" >>"$DIR/pass.dat"
done
stop_leapd
fig_head 2 "passthrough: fio via leapd (leapio engine) vs fio io_uring O_DIRECT, same file" \
	fig2-passthrough.svg
echo "- file: 1 GiB of random data (\`head -c 1G /dev/urandom\`), leapd backend \`uring\` over it (block size 512)"
echo "- baseline: \`taskset -c 1 fio --name=pass --rw=randread --bs=4k --runtime=$T --time_based --lat_percentiles=1 --iodepth=QD --ioengine=io_uring --direct=1 --filename=data.img\`"
echo "- leapd: \`taskset -c 1 fio --ioengine=external:build/lib/leapio_fio.so --thread=1 --socket=t.sock --ctrl=p0 --nsid=1\` + the same job options"
echo "- latency is fio's total latency (\`lat_ns\`, submission to completion) for both"
echo
echo "| QD | io_uring IOPS | leapio IOPS | ratio | io_uring p50 µs | leapio p50 µs | Δp50 µs | io_uring p99 µs | leapio p99 µs | Δp99 µs |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk '{ printf "| %d | %.0f | %.0f | %.2f | %.1f | %.1f | %+.1f | %.1f | %.1f | %+.1f |\n",
	$1, $2, $5, $5 / $2, $3, $6, $6 - $3, $4, $7, $7 - $4 }' "$DIR/pass.dat"
echo
plot fig2-passthrough.svg "fio randread 4 KiB, 1 GiB file" <<GP
set multiplot layout 1,2 title "Figure 2: passthrough, leapd vs fio io\\\\_uring on the same file\n{/*0.8 " . sub . "}"
set logscale x 2
set xlabel "queue depth"
set ylabel "IOPS (thousands)"
set y2label "leapio / io\\\\_uring IOPS ratio"
set yrange [0:*]
set y2range [0:1.5]
set ytics nomirror
set y2tics 0.25
set title "throughput"
plot '$DIR/pass.dat' u 1:(\$2/1e3) w lp pt 7 lw 2 t "fio io\\\\_uring O\\\\_DIRECT", \
     '' u 1:(\$5/1e3) w lp pt 5 lw 2 t "fio via leapd (leapio engine)", \
     '' u 1:(\$5/\$2) axes x1y2 w lp pt 2 lw 1 dt 3 lc rgb 'black' t "ratio (right axis)"
unset y2label
unset y2tics
set ytics mirror
set logscale y 10
set yrange [*:*]
set ylabel "total latency (µs, log scale)"
set title "latency"
plot '$DIR/pass.dat' u 1:3 w lp pt 7 lw 2 lc 1 t "io\\\\_uring p50", '' u 1:4 w lp pt 6 lw 2 dt 2 lc 1 t "io\\\\_uring p99", \
     '' u 1:6 w lp pt 5 lw 2 lc 2 t "leapio p50", '' u 1:7 w lp pt 4 lw 2 dt 2 lc 2 t "leapio p99"
unset multiplot
GP

# ---- 3. policy overhead ----------------------------------------------------------------------
cat >"$DIR/cfg.json" <<JSON
[
 {"method": "bdev_create", "params": {"name": "n0", "type": "null", "size": 1073741824}},
 {"method": "ctrl_create", "params": {"name": "c0", "max_qpairs": 4}},
 {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "n0"}}
]
JSON
start_leapd "$DIR/cfg.json" -m 0
ctl policy load "$POL/prio.bpf.o" --name "prio_$TAG" >/dev/null
ctl policy load "$POL/isolation.bpf.o" --name "iso_$TAG" >/dev/null
ctl policy load "$POL/stats.bpf.o" --name "stats_$TAG" >/dev/null
: >"$DIR/pol.dat"
for r in $(seq 1 "$ROUNDS"); do
	p0=$(perf -c c0 -w randread -q 128 -t "$T" | jq .iops)
	ctl policy attach "prio_$TAG" --order 10 >/dev/null
	p1=$(perf -c c0 -w randread -q 128 -t "$T" | jq .iops)
	ctl policy attach "iso_$TAG" --order 20 >/dev/null
	ctl policy attach "stats_$TAG" --order 30 >/dev/null
	p3=$(perf -c c0 -w randread -q 128 -t "$T" | jq .iops)
	ctl policy detach "prio_$TAG" >/dev/null
	ctl policy detach "iso_$TAG" >/dev/null
	ctl policy detach "stats_$TAG" >/dev/null
	echo "$r $p0 $p1 $p3" >>"$DIR/pol.dat"
done
stop_leapd
# label, mean IOPS, mean / mean without policies, min and max over the rounds
awk '{ for (k = 2; k <= 4; k++) { s[k] += $k; if (NR == 1 || $k < lo[k]) lo[k] = $k; if ($k > hi[k]) hi[k] = $k } }
	END { split("0 policies|1 (prio)|3 (prio, isolation, stats)", name, "|");
	  for (k = 2; k <= 4; k++) printf "\"%s\" %f %f %f %f\n", name[k - 1], s[k] / NR, s[k] / s[2], lo[k], hi[k] }' \
	"$DIR/pol.dat" >"$DIR/polmean.dat"
fig_head 3 "policy overhead (null backend, 4 KiB randread QD 128)" fig3-policies.svg
echo "- command: \`taskset -c 1 leap-perf -s t.sock -c c0 -w randread -q 128 -t $T\`, rounds of 0 → 1 → 3 policies"
echo "- policies: \`leapctl policy load build/policies/{prio,isolation,stats}.bpf.o --name NAME_$TAG\`; \`leapctl policy attach prio_$TAG --order 10\` (then iso 20, stats 30); no limits or rules set"
echo
echo "| round | 0 policies IOPS | 1 policy IOPS | ratio | 3 policies IOPS | ratio |"
echo "|---:|---:|---:|---:|---:|---:|"
awk '{ printf "| %d | %.0f | %.0f | %.3f | %.0f | %.3f |\n", $1, $2, $3, $3 / $2, $4, $4 / $2 }' \
	"$DIR/pol.dat"
awk '{ a += $2; b += $3; c += $4 } END { printf "| mean | %.0f | %.0f | %.3f | %.0f | %.3f |\n", a / NR, b / NR, b / a, c / NR, c / a }' \
	"$DIR/pol.dat"
echo
plot fig3-policies.svg "leap-perf randread QD 128, null backend, mean of $ROUNDS rounds" <<GP
set title "Figure 3: policy chain overhead\n{/*0.8 " . sub . "}"
set style fill solid 0.7 border -1
set boxwidth 0.5
set xrange [-0.6:2.6]
set ylabel "IOPS (millions)"
set xlabel "policies attached (submit and complete hooks)"
set yrange [0:*]
plot '$DIR/polmean.dat' u 0:(\$2/1e6):xtic(1) w boxes lc rgb '#4477aa' t "mean of $ROUNDS rounds", \
     '' u 0:(\$2/1e6):(\$4/1e6):(\$5/1e6) w yerrorbars pt 0 lw 2 lc rgb 'black' t "min–max of the rounds", \
     '' u 0:(\$5/1e6):(sprintf("%.2f M (%.0f %%)", \$2/1e6, \$3*100)) w labels offset 0,1 notitle
GP

# ---- 4. live replace timeline ------------------------------------------------------------------
cat >"$DIR/cfg.json" <<JSON
[
 {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 67108864}},
 {"method": "ctrl_create", "params": {"name": "c0", "max_qpairs": 4}},
 {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "m0"}}
]
JSON
start_leapd "$DIR/cfg.json" -m 0
ctl policy load "$POL/prio.bpf.o" --name "prio_$TAG" >/dev/null
ctl policy load "$POL/isolation.bpf.o" --name "iso_$TAG" >/dev/null
ctl policy load "$POL/stats.bpf.o" --name "stats_$TAG" >/dev/null
ctl policy attach "prio_$TAG" --order 10 >/dev/null
ctl policy attach "iso_$TAG" --order 20 >/dev/null
ctl policy attach "stats_$TAG" --order 30 >/dev/null
REPL_FIO=(--name=verify --rw=randwrite --bs=4k --iodepth=16 --size=64m --time_based
	--runtime="$REPL_SECS" --verify=crc32c --verify_backlog=256 --verify_fatal=1 --verify_state_save=0
	--log_avg_msec=100 --output-format=json)
# per-100 ms IOPS from a fio iops log: writes and verify reads summed per window.
iops_series() { awk -F', *' '{ s[$1] += $2 } END { for (t in s) print t / 1000, s[t] }' "$1" |
	sort -n; }
base_rc=0
base=$(fio_leap c0 "${REPL_FIO[@]}" --write_iops_log="$DIR/base" --write_lat_log="$DIR/base" \
	2>"$DIR/base.err") || base_rc=$?
: >"$DIR/repl.times"
fio_leap c0 "${REPL_FIO[@]}" --write_iops_log="$DIR/repl" --write_lat_log="$DIR/repl" \
	>"$DIR/repl.json" 2>"$DIR/repl.err" &
fpid=$!
LOAD_PIDS+=("$fpid")
t0=$(now_ms)
n=0 fail=0
next=$((t0 + 100))
while kill -0 "$fpid" 2>/dev/null && [ $(($(now_ms) - t0)) -lt $((REPL_SECS * 1000)) ]; do
	w=$((next - $(now_ms)))
	[ "$w" -gt 0 ] && sleep "$(printf '0.%03d' "$w")"
	ts=$(now_ms)
	if ctl policy replace "iso_$TAG" "$POL/isolation.bpf.o" >/dev/null; then
		echo "$((ts - t0)) $(($(now_ms) - ts))" >>"$DIR/repl.times"
		n=$((n + 1))
	else
		fail=$((fail + 1))
	fi
	next=$((next + 100))
	[ "$next" -lt "$(now_ms)" ] && next=$(($(now_ms) + 1))
done
repl_rc=0
wait "$fpid" || repl_rc=$?
LOAD_PIDS=()
repl=$(cat "$DIR/repl.json")
stop_leapd
roff=$(fio_offset "$DIR/repl.json" "$t0")
iops_series "$DIR/base_iops.1.log" >"$DIR/base.ser"
iops_series "$DIR/repl_iops.1.log" >"$DIR/repl.ser"
awk -v o="$roff" '{ printf "%.3f\n", ($1 - o) / 1000 }' "$DIR/repl.times" >"$DIR/repl.marks"
ser_stats() { # SERIES -> "mean min" of the 100 ms windows (first and last dropped)
	awk 'NR > 1 { v[n++] = $2 } END { n--; for (i = 0; i < n; i++) { s += v[i];
		if (i == 0 || v[i] < m) m = v[i] } printf "%.0f %.0f", s / n, m }' "$1"
}
lat_max() { awk -F', *' '$2 > m { m = $2 } END { printf "%.1f", m / 1000 }' "$1"; }
read -r bmean bmin <<<"$(ser_stats "$DIR/base.ser")"
read -r rmean rmin <<<"$(ser_stats "$DIR/repl.ser")"
fig_head 4 "live replace timeline (verifying fio load, mem backend, 3-policy chain)" \
	fig4-replace.svg
echo "- load: \`taskset -c 1 fio --ioengine=external:build/lib/leapio_fio.so --thread=1 --socket=t.sock --ctrl=c0 --nsid=1 ${REPL_FIO[*]} --write_iops_log=F --write_lat_log=F\`"
echo "- replaces: \`leapctl policy replace iso_$TAG build/policies/isolation.bpf.o\` scheduled every 100 ms for $REPL_SECS s; instants on fio's clock (fio's job started $roff ms after the replace clock: fio's report timestamp less its runtime)"
echo "- baseline: the same fio job just before, without replaces"
echo
echo "| run | replaces (failed) | mean replace call ms | fio exit | I/O errors | mean IOPS per 100 ms | worst 100 ms window IOPS | max 100 ms mean latency µs |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
echo "| no replace | 0 | — | $base_rc | $(j '.jobs[0].error' "$base") | $bmean | $bmin | $(lat_max "$DIR/base_lat.1.log") |"
echo "| replace every 100 ms | $n ($fail) | $(awk '{ s += $2 } END { printf "%.0f", NR ? s / NR : 0 }' "$DIR/repl.times") | $repl_rc | $(j '.jobs[0].error' "$repl") | $rmean | $rmin | $(lat_max "$DIR/repl_lat.1.log") |"
echo
echo "fio verifies every block it wrote (crc32c, \`verify_backlog=256\`, \`verify_fatal=1\`): exit 0 means no mismatch."
echo
plot fig4-replace.svg "fio randwrite+verify QD 16, mem backend" <<GP
set title "Figure 4: live policy replace every 100 ms under a verifying load\n{/*0.8 " . sub . "}"
set xlabel "time since fio start (s)"
set ylabel "IOPS per 100 ms window (writes + verify reads, thousands)"
set yrange [0:*]
plot '$DIR/base.ser' u 1:(\$2/1e3) w l lw 2 lc rgb '#999999' t "no replace (baseline, same run)", \
     '$DIR/repl.ser' u 1:(\$2/1e3) w l lw 2 lc rgb '#cc3311' t "replace every 100 ms", \
     '$DIR/repl.marks' u 1:(0) w p pt 9 ps 1 lc rgb '#0077bb' t "replace instants ($n)"
GP

# ---- 5. scaling --------------------------------------------------------------------------------
cfg=""
for i in $(seq 0 15); do
	cfg="$cfg,
 {\"method\": \"ctrl_create\", \"params\": {\"name\": \"c$i\", \"max_qpairs\": 4}},
 {\"method\": \"ns_add\", \"params\": {\"ctrl\": \"c$i\", \"bdev\": \"n0\", \"offset\": $((i << 35)), \"size\": $((1 << 35)), \"lba_size\": 4096}}"
done
cat >"$DIR/cfg.json" <<JSON
[
 {"method": "bdev_create", "params": {"name": "n0", "type": "null", "size": 1099511627776, "block_size": 4096}}$cfg
]
JSON
start_leapd "$DIR/cfg.json" -m 0
ctrls() { seq -s, -f 'c%.0f' 0 $(($1 - 1)); }
: >"$DIR/qp.dat"
for q in $QP_POINTS; do
	if [ "$q" -le 4 ]; then nc=1 np=$q; else nc=$((q / 4)) np=4; fi
	o=$(perf -c "$(ctrls "$nc")" -P "$np" -q 8 -o 4096 -w randread -t "$T")
	echo "$q $(j .iops "$o") $(j .latency_us.p99 "$o")" >>"$DIR/qp.dat"
done
: >"$DIR/ten.dat"
for n in $TEN_POINTS; do
	o=$(perf -c "$(ctrls "$n")" -P 1 -q 8 -o 4096 -w randread -t "$T")
	echo "$n $(j .iops "$o") $(j .latency_us.p99 "$o")" >>"$DIR/ten.dat"
done
stop_leapd
fig_head 5 "scaling: queue pairs and tenants (null backend, one leap-perf thread)" fig5-scaling.svg
echo "- queue pairs Q: \`taskset -c 1 leap-perf -c c0[,c1,...] -P min(Q,4) -q 8 -o 4096 -w randread -t $T\` (Q/4 controllers of 4 queue pairs above 4)"
echo "- tenants N: \`taskset -c 1 leap-perf -c c0,...,c(N-1) -P 1 -q 8 -o 4096 -w randread -t $T\`"
echo "- QD 8 per queue pair, so outstanding I/O grows with the points; baseline: the first point"
echo
echo "| queue pairs | IOPS | vs 1 | p99 µs |"
echo "|---:|---:|---:|---:|"
awk 'NR == 1 { b = $2 } { printf "| %d | %.0f | %.2f | %.1f |\n", $1, $2, $2 / b, $3 }' "$DIR/qp.dat"
echo
echo "| tenants (1 queue pair each) | IOPS | vs 1 | p99 µs |"
echo "|---:|---:|---:|---:|"
awk 'NR == 1 { b = $2 } { printf "| %d | %.0f | %.2f | %.1f |\n", $1, $2, $2 / b, $3 }' "$DIR/ten.dat"
echo
plot fig5-scaling.svg "leap-perf randread 4 KiB, QD 8 per queue pair" <<GP
set multiplot layout 1,2 title "Figure 5: scaling from one thread\n{/*0.8 " . sub . "}"
set logscale x 2
set yrange [0:*]
set ylabel "aggregate IOPS (millions)"
set y2label "p99 latency (µs, log scale)"
set ytics nomirror
set y2tics
set logscale y2 10
set y2range [1:*]
set xlabel "queue pairs (4 per controller)"
set title "queue pairs"
plot '$DIR/qp.dat' u 1:(\$2/1e6) w lp pt 7 lw 2 t "IOPS", '' u 1:3 axes x1y2 w lp pt 6 dt 2 lw 2 t "p99 (right)"
set xlabel "tenants (controllers, 1 queue pair each)"
set title "tenants"
plot '$DIR/ten.dat' u 1:(\$2/1e6) w lp pt 7 lw 2 t "IOPS", '' u 1:3 axes x1y2 w lp pt 6 dt 2 lw 2 t "p99 (right)"
unset multiplot
GP

# ---- 6. priority and isolation ----------------------------------------------------------------
head -c 268435456 /dev/urandom >"$DIR/u0.img"
sync "$DIR/u0.img"
cat >"$DIR/cfg.json" <<JSON
[
 {"method": "bdev_create",
  "params": {"name": "u0", "type": "uring", "path": "$DIR/u0.img", "size": 268435456}},
 {"method": "ctrl_create", "params": {"name": "fg", "max_qpairs": 2}},
 {"method": "ctrl_create", "params": {"name": "bg", "max_qpairs": 2}},
 {"method": "ns_add", "params": {"ctrl": "fg", "bdev": "u0", "size": 134217728}},
 {"method": "ns_add", "params": {"ctrl": "bg", "bdev": "u0", "offset": 134217728}},
 {"method": "bdev_create", "params": {"name": "n0", "type": "null", "size": 1073741824}},
 {"method": "ctrl_create", "params": {"name": "lim", "max_qpairs": 2}},
 {"method": "ns_add", "params": {"ctrl": "lim", "bdev": "n0"}}
]
JSON
start_leapd "$DIR/cfg.json" -m 0
INFLIGHT=4
fgid=$(ctl --json ctrl list fg | jq -r '.[0].cntlid // .cntlid')
# Both tenants wait on completion eventfds (--irq): two spinning pollers on
# the one load CPU would measure the scheduler's time slices, not leapd.
fg_run() { perf -c fg -w randread -q 1 -t "$T" --irq; }
with_bg() { # OUT: fg next to a QD 32 bg tenant
	perf -c bg -w randread -q 32 -t $((T + 2)) --irq >"$DIR/bg_$1.json" &
	LOAD_PIDS+=($!)
	sleep 0.5
	fg_run >"$DIR/fg_$1.json"
	wait "${LOAD_PIDS[@]}"
	LOAD_PIDS=()
}
fg_run >"$DIR/fg_solo.json"
with_bg nopol
ctl policy load "$POL/prio.bpf.o" --name "prio_$TAG" >/dev/null
ctl policy set "prio_$TAG" "rule_enabled[0]=1" "rule_ctrl[0]=$fgid" "rule_prio[0]=0" \
	prio_default=3 >/dev/null
ctl policy attach "prio_$TAG" >/dev/null
ctl bdev qos u0 --inflight "$INFLIGHT" >/dev/null
with_bg prio
ctl policy detach "prio_$TAG" >/dev/null
for s in solo nopol prio; do
	f=$(cat "$DIR/fg_$s.json")
	b='{}'
	[ -f "$DIR/bg_$s.json" ] && b=$(cat "$DIR/bg_$s.json")
	echo "$s $(j .iops "$f") $(j .latency_us.p50 "$f") $(j .latency_us.p99 "$f") $(j .latency_us.p99_9 "$f") $(j '.iops // 0' "$b")"
done >"$DIR/prio.dat"

# isolation tracking: fio's IOPS per second against a limit changed live.
lid=$(ctl --json ctrl list lim | jq -r '.[0].cntlid // .cntlid')
ctl policy load "$POL/isolation.bpf.o" --name "iso_$TAG" >/dev/null
# shellcheck disable=SC2086 # the list is split on purpose
set -- $LIMITS
ctl policy set "iso_$TAG" "iops_limit[$lid]=$1" >/dev/null
ctl policy attach "iso_$TAG" --ctrl lim >/dev/null
nlim=$#
fio_leap lim --name=lim --rw=randread --bs=4k --iodepth=32 --time_based \
	--runtime=$((nlim * STEP_SECS)) --write_iops_log="$DIR/lim" --log_avg_msec=1000 \
	--output-format=json >"$DIR/lim.json" 2>"$DIR/lim.err" &
fpid=$!
LOAD_PIDS+=("$fpid")
t0=$(now_ms)
echo "0 $1" >"$DIR/lim.steps"
shift
k=1
for l in "$@"; do
	w=$((t0 + k * STEP_SECS * 1000 - $(now_ms)))
	[ "$w" -gt 0 ] && sleep "$((w / 1000)).$(printf '%03d' $((w % 1000)))"
	ctl policy set "iso_$TAG" "iops_limit[$lid]=$l" >/dev/null
	echo "$(($(now_ms) - t0)) $l" >>"$DIR/lim.steps"
	k=$((k + 1))
done
wait "$fpid" || true
LOAD_PIDS=()
stop_leapd
loff=$(fio_offset "$DIR/lim.json" "$t0")
awk -v o="$loff" 'NR == 1 { print; next } { print $1 - o, $2 }' "$DIR/lim.steps" >"$DIR/lim.tmp"
mv "$DIR/lim.tmp" "$DIR/lim.steps"
awk -v e=$((nlim * STEP_SECS * 1000)) '{ print $1 / 1000, $2; l = $2 } END { print e / 1000, l }' \
	"$DIR/lim.steps" >"$DIR/lim.stepdat"
iops_series "$DIR/lim_iops.1.log" >"$DIR/lim.ser"
# Each 1 s window against the limit in force over most of it; a window with a
# change inside it is marked (the limit moved mid-window).
awk 'NR == FNR { st[n] = $1; lv[n++] = $2; next }
	{ e = $1 * 1000; t = e - 500; l = lv[0]; ch = "";
	  for (i = 0; i < n; i++) { if (st[i] <= t) l = lv[i]; if (i && st[i] > e - 1000 && st[i] < e) ch = "change" }
	  printf "%.1f %.0f %d %.3f %s\n", $1, $2, l, $2 / l, ch }' "$DIR/lim.steps" "$DIR/lim.ser" >"$DIR/lim.cmp"

fig_head 6 "priority and isolation effect" fig6-prio-isolation.svg
echo "- backend: \`uring\` over a 256 MiB file of random data; tenant fg (first 128 MiB) and bg (the rest)"
echo "- fg: \`taskset -c 1 leap-perf -c fg -w randread -q 1 -t $T --irq\`; bg: \`taskset -c 1 leap-perf -c bg -w randread -q 32 -t $((T + 2)) --irq\` started 0.5 s earlier (both wait on completion eventfds: two spinning pollers on one CPU would time-slice)"
echo "- prio: \`leapctl policy load build/policies/prio.bpf.o --name prio_$TAG\`; \`leapctl policy set prio_$TAG 'rule_enabled[0]=1' 'rule_ctrl[0]=$fgid' 'rule_prio[0]=0' prio_default=3\`; \`leapctl policy attach prio_$TAG\`; \`leapctl bdev qos u0 --inflight $INFLIGHT\`"
echo
echo "| fg run | fg IOPS | fg p50 µs | fg p99 µs | fg p99.9 µs | p99 / solo | bg IOPS |"
echo "|---|---:|---:|---:|---:|---:|---:|"
awk 'NR == 1 { s = $4 } { n = $1 == "solo" ? "solo" : $1 == "nopol" ? "with bg, no policy" : "with bg, prio + qos inflight '"$INFLIGHT"'";
	printf "| %s | %.0f | %.1f | %.1f | %.1f | %.2f | %s |\n", n, $2, $3, $4, $5, $4 / s, $1 == "solo" ? "—" : sprintf("%.0f", $6) }' \
	"$DIR/prio.dat"
echo
echo "Isolation tracking: \`leapctl policy load build/policies/isolation.bpf.o --name iso_$TAG\`, \`leapctl policy attach iso_$TAG --ctrl lim\` (null backend), limit \`leapctl policy set iso_$TAG 'iops_limit[$lid]=L'\` changed live every $STEP_SECS s ($LIMITS; change instants on fio's clock, fio started $loff ms after the schedule's clock) under \`taskset -c 1 fio --ioengine=external:build/lib/leapio_fio.so --thread=1 --socket=t.sock --ctrl=lim --nsid=1 --name=lim --rw=randread --bs=4k --iodepth=32 --time_based --runtime=$((nlim * STEP_SECS)) --write_iops_log=F --log_avg_msec=1000\`:"
echo
echo "| 1 s window ending at (s) | measured IOPS | limit | ratio | note |"
echo "|---:|---:|---:|---:|---|"
awk '{ printf "| %.1f | %d | %d | %.3f | %s |\n", $1, $2, $3, $4, $5 == "change" ? "limit changed in this window" : "" }' "$DIR/lim.cmp"
awk '$5 != "change" { s += $4; n++; d = $4 > 1 ? $4 - 1 : 1 - $4; if (d > m) m = d }
	END { if (n) printf "\nWindows without a change: mean ratio %.3f, worst deviation %.1f %%.\n", s / n, m * 100 }' "$DIR/lim.cmp"
echo
plot fig6-prio-isolation.svg "leap-perf / fio through leapd" <<GP
set multiplot layout 1,2 title "Figure 6: priority and isolation\n{/*0.8 " . sub . "}"
set title "QD 1 tenant (fg) next to a QD 32 tenant (bg), uring file"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.7 border -1
set ylabel "fg latency (µs, log scale)"
set logscale y 10
set yrange [10:*]
set bmargin 5
set xtics ("solo" 0, "with bg,\nno policy" 1, "with bg, prio\n+ qos inflight $INFLIGHT" 2)
plot '$DIR/prio.dat' u 3 t "p50", '' u 4 t "p99", '' u 5 t "p99.9"
set xtics autofreq
unset logscale y
set title "isolation: IOPS limit changed live"
set xlabel "time since fio start (s)"
set ylabel "IOPS per 1 s (thousands)"
set yrange [0:*]
plot '$DIR/lim.stepdat' u 1:(\$2/1e3) w steps lw 2 dt 2 lc rgb 'black' t "iops\\\\_limit", \
     '$DIR/lim.ser' u (\$1-0.5):(\$2/1e3) w lp pt 7 lw 2 lc rgb '#cc3311' t "measured (1 s windows)"
unset multiplot
GP
echo "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg)."
