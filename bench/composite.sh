#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Composite backends (issue 14), every figure against a baseline taken in
# the same run, printed as markdown for bench/RESULTS.md:
#  1. the backend's own cost: build/bench/composite_bench, one thread, CPU
#     ns per 4 KiB random I/O at QD 128 on null, mirror-of-2-null and
#     stripe-of-2-null, rounds interleaved;
#  2. through leapd: leap-perf 4 KiB random reads and writes at QD 128 on a
#     single null bdev, a mirror of two null legs, a stripe of two null
#     legs; rounds alternate and the median is taken; targets: mirror reads
#     >= 0.9x, mirror writes to 2 legs >= 0.7x, stripe >= 0.9x the single
#     null backend;
#  3. the read policy: round robin vs least outstanding on equal null legs
#     and on a mirror with a slow leg (mem + a fault bdev adding 100 us to
#     its reads), QD 32; the fault bdev counts the reads that reached it;
#  4. resync throughput of a mem -> mem mirror (1 GiB legs): alone, then
#     under a tenant (randrw 70/30, QD 32) with the resync's rate limit
#     swept, both figures per row, and the fastest resync that left the
#     tenant at least 50 % of what it does alone (measured right before).
# leapd's reactor on CPU 0, leap-perf on CPU 1; the resync thread is not
# pinned (it shares the two CPUs). Environment: BUILD, QUICK=1 (shorter).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
QUICK="${QUICK:-0}"
BIN="$BUILD/bin"
POL="$BUILD/policies"
DIR=$(mktemp -d /tmp/leapio-compbench.XXXXXX)
LEAPD_PID=""
TAG="c$$"

cleanup() {
	[ -n "$LEAPD_PID" ] && kill -TERM "$LEAPD_PID" 2>/dev/null && wait "$LEAPD_PID" 2>/dev/null
	rm -rf "$DIR" /sys/fs/bpf/leapio/*_"$TAG"
}
trap cleanup EXIT

if [ "$QUICK" = 1 ]; then
	T=1 ROUNDS=3 BSECS=1 BROUNDS=3 RS_SECS=4 FILL=2 RATES="0 500"
else
	T=2 ROUNDS=7 BSECS=2 BROUNDS=5 RS_SECS=10 FILL=4 RATES="0 2000 1000 500 250"
fi

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
perf() { taskset -c 1 "$BIN/leap-perf" -s "$DIR/t.sock" --json "$@"; }
j() { jq -r "$1" <<<"$2"; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
ratio() { echo "$1 / $2" | bc -l; }
samples() { printf '%.0f ' "$@" | sed 's/ $//'; }
met() { [ "$(echo "$1 >= $2" | bc)" = 1 ] && echo met || echo MISSED; }
binfo() { ctl --json bdev list "$1" | jq -c '.[0]'; }
leg() { binfo "$1" | jq -r ".legs[] | select(.name == \"$2\") | $3"; }
state() { binfo "$1" | jq -r .state; }

echo "### Composite backends (bench/composite.sh$([ "$QUICK" = 1 ] && echo ', QUICK' || true))"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; leapd's reactor on CPU 0, leap-perf on CPU 1."
echo

# ---- 1. the backend alone ------------------------------------------------------------
echo "**1. Per-I/O cost of the backend itself** (\`build/bench/composite_bench -q 128 -s $BSECS -r $BROUNDS\`: one thread, closed loop, CPU ns per 4 KiB random I/O, median of $BROUNDS interleaved rounds):"
echo
echo "| backend | randread ns/I/O | randwrite ns/I/O |"
echo "|---|---:|---:|"
cb=$("$BUILD/bench/composite_bench" -q 128 -s "$BSECS" -r "$BROUNDS")
cost() { awk -v k="kind=$1" -v w="rw=$2" '$2 == k && $3 == w {sub("cpu_ns_per_io=", "", $7); print $7}' <<<"$cb"; }
echo "| null | $(cost null randread) | $(cost null randwrite) |"
echo "| mirror of 2 null | $(cost mirror randread) | $(cost mirror randwrite) |"
echo "| stripe of 2 null (64 KiB chunks) | $(cost stripe randread) | $(cost stripe randwrite) |"
cb=$("$BUILD/bench/composite_bench" -q 128 -s "$BSECS" -r "$BROUNDS" -p round_robin)
echo "| mirror of 2 null, round robin reads (the default is least outstanding) | $(cost mirror randread) | - |"
echo
if command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null; then
	instr() { # KIND RW: instructions per I/O of composite_bench's loop, under callgrind
		local out ios ir
		out=$(valgrind --tool=callgrind --callgrind-out-file="$DIR/cg.out" --toggle-collect=run \
			"$BUILD/bench/composite_bench" -k "$1" -w "$2" -s 1 -r 1 2>/dev/null)
		ios=$(grep -o 'ios=[0-9]*' <<<"$out" | cut -d= -f2)
		ir=$(callgrind_annotate "$DIR/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
		printf '%.0f' "$(echo "$ir / $ios" | bc -l)"
	}
	echo 'Instructions per I/O of the same loop (exact and repeatable where wall and CPU time are not; `valgrind --tool=callgrind --toggle-collect=run build/bench/composite_bench -k KIND -w RW -s 1 -r 1`, Ir over the I/Os it did; the loop itself and the null legs included):'
	echo
	echo "| backend | randread instr/I/O | randwrite instr/I/O |"
	echo "|---|---:|---:|"
	for k in null mirror stripe; do
		echo "| $k | $(instr "$k" randread) | $(instr "$k" randwrite) |"
	done
	echo
fi

# ---- 1b. through the controller model ------------------------------------------------
declare -A CN
for _ in $(seq 1 "$BROUNDS"); do
	for w in randread randwrite; do
		for k in null mirror stripe; do
			CN[$k.$w]="${CN[$k.$w]:-} $("$BUILD/bench/composite_bench" -c 2000000 -k "$k" -w "$w" |
				grep -o 'cpu_ns_per_io=[0-9.]*' | cut -d= -f2)"
		done
	done
done
have_cg=0
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null && have_cg=1
cinstr() { # KIND RW: instructions per I/O through the controller model
	valgrind --tool=callgrind --callgrind-out-file="$DIR/cgc.out" --toggle-collect=run_ctrl \
		"$BUILD/bench/composite_bench" -c 50000 -k "$1" -w "$2" >/dev/null 2>&1
	printf '%.0f' "$(echo "$(callgrind_annotate "$DIR/cgc.out" 2>/dev/null |
		awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}') / 50000" | bc -l)"
}
echo '**1b. Through the controller model** (what a reactor does per I/O short of the transport: `build/bench/composite_bench -c 2000000 -k KIND -w RW`, reads and writes of 4 KiB through `leap_ctrl_submit()`/`leap_ctrl_poll()` at QD 128 on a namespace of the backend, as `bench/chain_bench.c` does; CPU ns per I/O, median of '"$BROUNDS"' interleaved rounds, and instructions per I/O under callgrind, `--toggle-collect=run_ctrl`, 50 000 I/Os). The ratio is the single null backend'"'"'s cost over the composite'"'"'s, the throughput ratio a CPU-bound reactor would see; the targets (mirror reads >= 0.9, writes >= 0.7, stripe >= 0.9) are for the end-to-end figure of section 2, where the shm transport and the tenant add the same cost to both sides:'
echo
echo "| backend | randread ns/I/O | ratio | randread instr/I/O | ratio | randwrite ns/I/O | ratio | randwrite instr/I/O | ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
declare -A CI
for k in null mirror stripe; do
	for w in randread randwrite; do
		CI[$k.$w]=$([ "$have_cg" = 1 ] && cinstr "$k" "$w" || echo 0)
	done
done
for k in null mirror stripe; do
	row="| $k"
	for w in randread randwrite; do
		# shellcheck disable=SC2086
		ns=$(median ${CN[$k.$w]}) ns0=$(median ${CN[null.$w]})
		row="$row | $ns | $(printf '%.2f' "$(ratio "$ns0" "$ns")") | ${CI[$k.$w]} | $([ "${CI[$k.$w]}" != 0 ] && printf '%.2f' "$(ratio "${CI[null.$w]}" "${CI[$k.$w]}")" || echo -)"
	done
	echo "$row |"
done
echo

# ---- 2. through leapd ------------------------------------------------------------------
G=1073741824
cat >"$DIR/cfg.json" <<JSON
[
 {"method": "bdev_create", "params": {"name": "n0", "type": "null", "size": $G}},
 {"method": "bdev_create", "params": {"name": "ml0", "type": "null", "size": $G}},
 {"method": "bdev_create", "params": {"name": "ml1", "type": "null", "size": $G}},
 {"method": "bdev_create", "params": {"name": "sl0", "type": "null", "size": $G}},
 {"method": "bdev_create", "params": {"name": "sl1", "type": "null", "size": $G}},
 {"method": "bdev_create", "params": {"name": "mir", "type": "mirror", "legs": ["ml0", "ml1"]}},
 {"method": "bdev_create", "params": {"name": "st", "type": "stripe", "legs": ["sl0", "sl1"]}},
 {"method": "bdev_create", "params": {"name": "fm0", "type": "mem", "size": 268435456}},
 {"method": "bdev_create", "params": {"name": "sm1", "type": "mem", "size": 268435456}},
 {"method": "bdev_create", "params": {"name": "slow", "type": "fault", "base": "sm1"}},
 {"method": "bdev_create", "params": {"name": "asym", "type": "mirror", "legs": ["fm0", "slow"]}},
 {"method": "ctrl_create", "params": {"name": "c0", "max_qpairs": 2}},
 {"method": "ctrl_create", "params": {"name": "cm", "max_qpairs": 2}},
 {"method": "ctrl_create", "params": {"name": "cs", "max_qpairs": 2}},
 {"method": "ctrl_create", "params": {"name": "ca", "max_qpairs": 2}},
 {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "n0"}},
 {"method": "ns_add", "params": {"ctrl": "cm", "bdev": "mir"}},
 {"method": "ns_add", "params": {"ctrl": "cs", "bdev": "st"}},
 {"method": "ns_add", "params": {"ctrl": "ca", "bdev": "asym"}}
]
JSON
start_leapd "$DIR/cfg.json" -m 0
declare -A S
for _ in $(seq 1 "$ROUNDS"); do
	for w in randread randwrite; do
		for c in c0 cm cs; do
			S[$w.$c]="${S[$w.$c]:-} $(j .iops "$(perf -c "$c" -w "$w" -q 128 -t "$T")")"
		done
	done
done
echo "**2. Through leapd** (\`leap-perf -q 128 -o 4096 -t $T\`, $ROUNDS alternating rounds, median; every sample in brackets):"
echo
echo "| workload | single null IOPS | mirror of 2 null legs | ratio | target | stripe of 2 null legs | ratio | target |"
echo "|---|---:|---:|---:|---|---:|---:|---|"
for w in randread randwrite; do
	# shellcheck disable=SC2086 # the samples are words on purpose
	b=$(median ${S[$w.c0]}) m=$(median ${S[$w.cm]}) s=$(median ${S[$w.cs]})
	mt=$([ $w = randread ] && echo 0.9 || echo 0.7)
	mr=$(ratio "$m" "$b") sr=$(ratio "$s" "$b")
	# shellcheck disable=SC2086
	printf '| %s | %.0f [%s] | %.0f [%s] | %.2f | >= %s: %s | %.0f [%s] | %.2f | >= 0.9: %s |\n' \
		"$w" "$b" "$(samples ${S[$w.c0]})" "$m" "$(samples ${S[$w.cm]})" "$mr" "$mt" \
		"$(met "$mr" "$mt")" "$s" "$(samples ${S[$w.cs]})" "$sr" "$(met "$sr" 0.9)"
done
echo

# ---- 3. read policy ----------------------------------------------------------------------
# Real pages on both mem legs, then the slow leg's reads take 100 us more.
perf -c ca -w write -q 32 -o 131072 -t 1 >/dev/null
ctl rpc bdev_fault_set '{"name": "slow", "ops": "r", "delay_us": 100}' >/dev/null
declare -A P F
for _ in $(seq 1 "$ROUNDS"); do
	for pol in round_robin least_outstanding; do
		ctl rpc bdev_mirror_set "{\"name\": \"mir\", \"read_policy\": \"$pol\"}" >/dev/null
		ctl rpc bdev_mirror_set "{\"name\": \"asym\", \"read_policy\": \"$pol\"}" >/dev/null
		P[sym.$pol]="${P[sym.$pol]:-} $(j .iops "$(perf -c cm -w randread -q 32 -t "$T")")"
		d0=$(binfo slow | jq -r .fault.delayed)
		out=$(perf -c ca -w randread -q 32 -t "$T")
		d1=$(binfo slow | jq -r .fault.delayed)
		P[asym.$pol]="${P[asym.$pol]:-} $(j .iops "$out")"
		F[$pol]="${F[$pol]:-} $(echo "100 * ($d1 - $d0) / $(j .ios "$out")" | bc -l)"
	done
done
echo "**3. Read policy** (\`leap-perf -w randread -q 32 -o 4096 -t $T\`, $ROUNDS alternating rounds, median; asymmetric: a mirror of a mem leg and a fault bdev over mem that adds 100 us to every read, so one leg is slow):"
echo
echo "| legs | round robin IOPS | least outstanding IOPS | LO / RR | reads to the slow leg, RR / LO |"
echo "|---|---:|---:|---:|---:|"
for kind in sym asym; do
	# shellcheck disable=SC2086
	rr=$(median ${P[$kind.round_robin]}) lo=$(median ${P[$kind.least_outstanding]})
	if [ $kind = sym ]; then
		printf '| 2 null (equal) | %.0f | %.0f | %.2f | - |\n' "$rr" "$lo" "$(ratio "$lo" "$rr")"
	else
		# shellcheck disable=SC2086
		printf '| mem + mem with +100 us reads | %.0f | %.0f | %.2f | %.1f %% / %.1f %% |\n' \
			"$rr" "$lo" "$(ratio "$lo" "$rr")" "$(median ${F[round_robin]})" \
			"$(median ${F[least_outstanding]})"
	fi
done
echo
stop_leapd

# ---- 4. resync ----------------------------------------------------------------------------
cat >"$DIR/rs.json" <<JSON
[
 {"method": "bdev_create", "params": {"name": "r0", "type": "mem", "size": $G}},
 {"method": "bdev_create", "params": {"name": "r1", "type": "mem", "size": $G}},
 {"method": "bdev_create", "params": {"name": "rs", "type": "mirror", "legs": ["r0", "r1"]}},
 {"method": "ctrl_create", "params": {"name": "t", "max_qpairs": 2}},
 {"method": "ns_add", "params": {"ctrl": "t", "bdev": "rs"}}
]
JSON
start_leapd "$DIR/rs.json" -m 0
wait_optimal() { while [ "$(state rs)" != optimal ]; do sleep 0.25; done; }
# Data on both legs, then one untimed full copy: every page of both legs exists.
perf -c t -w write -q 32 -o 131072 -t "$FILL" >/dev/null
ctl bdev mirror resync rs r1 --full >/dev/null
wait_optimal
resync_series() { # SECONDS: full resyncs of r1 back to back; prints each one's MB/s
	local end
	end=$(($(date +%s%N) + $1 * 1000000000))
	while [ "$(date +%s%N)" -lt "$end" ]; do
		ctl bdev mirror resync rs r1 --full >/dev/null
		wait_optimal
		leg rs r1 '"\(.resync.last_bytes / .resync.last_us) \(.resync.last_cpu_us / 1000 / .resync.last_bytes * 1073741824)"'
	done
}
mean() { printf '%s\n' "$@" | awk '{s += $1} END {printf "%.0f", NR ? s / NR : 0}'; }
# (a) alone.
# Each resync prints "MB/s CPU-ms-per-GiB".
mbs_of() { awk '{print $1}' <<<"$1"; }
cpu_of() { awk '{print $2}' <<<"$1"; }
series=$(resync_series "$((RS_SECS / 2))")
# shellcheck disable=SC2046 # one word per resync
alone="$(mean $(mbs_of "$series")) | $(mean $(cpu_of "$series"))"

# (b) per rate: the tenant alone on the optimal mirror, right before the same
# tenant with full resyncs back to back (a pair, so load drifting on a shared
# machine hits both alike).
echo "**4. Resync of a mem -> mem mirror** (1 GiB legs, 1 MiB regions, 4 regions copied at once in 1 MiB I/Os, full resyncs of one leg back to back; MB/s is each resync's own bytes over its duration, averaged; tenant: \`leap-perf -w randrw -M 70 -q 32 -o 4096 -t $RS_SECS\` on the mirror, first alone, then with the resyncs running; the resync thread is not pinned (nice 10) and shares the two CPUs with the reactor and leap-perf):"
echo
echo "| resync rate limit | resync MB/s | resync CPU ms per GiB | full resyncs | tenant IOPS alone | tenant IOPS during the resync | kept | tenant p99 µs alone / during | tenant errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '| resync alone, no tenant, no limit | %s | - | - | - | - | - | - |\n' "$alone"
best=""
for rate in $RATES; do
	ctl rpc bdev_mirror_set "{\"name\": \"rs\", \"resync_rate_mbps\": $rate}" >/dev/null
	base=$(perf -c t -w randrw -M 70 -q 32 -t "$RS_SECS")
	perf -c t -w randrw -M 70 -q 32 -t "$RS_SECS" >"$DIR/tenant.json" &
	ppid=$!
	series=$(resync_series "$RS_SECS")
	wait "$ppid"
	tenant=$(cat "$DIR/tenant.json")
	pct=$(echo "100 * $(j .iops "$tenant") / $(j .iops "$base")" | bc -l)
	# shellcheck disable=SC2046
	mb=$(mean $(mbs_of "$series")) cpu=$(mean $(cpu_of "$series"))
	printf '| %s | %s | %s | %s | %.0f | %.0f | %.0f %% | %.0f / %.0f | %s |\n' \
		"$([ "$rate" = 0 ] && echo none || echo "$rate MB/s")" "$mb" "$cpu" \
		"$(wc -l <<<"$series")" "$(j .iops "$base")" "$(j .iops "$tenant")" "$pct" \
		"$(j .latency_us.p99 "$base")" "$(j .latency_us.p99 "$tenant")" "$(j .errors "$tenant")"
	if [ -z "$best" ] && [ "$(echo "$pct >= 50" | bc)" = 1 ]; then
		best="$mb MB/s of resync with the tenant at $(printf '%.0f' "$pct") % of its IOPS alone (limit: $([ "$rate" = 0 ] && echo none || echo "$rate MB/s"))"
	fi
done
echo
echo "Fastest resync that left the tenant at least 50 % of its IOPS alone: ${best:-none of the rates tried}. Tenant writes that waited for a region being copied: $(binfo rs | jq -r .deferred_writes)."
stop_leapd
