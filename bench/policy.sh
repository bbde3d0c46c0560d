#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Policy benchmarks (issue 5's targets), every figure against a baseline
# taken in the same run, printed as markdown for bench/RESULTS.md:
#   1. chain overhead: prio + isolation + stats (no limits set) against no
#      policy, null backend, 4 KiB random reads at QD 128; rounds alternate.
#   2. live replace every 100 ms under a verifying load (mem backend):
#      errors, mismatches, the worst single I/O against the same load
#      without replaces.
#   3. isolation accuracy: measured rate / limit for IOPS and bytes/s limits.
#   (Priority in the tail, with tenants that do not busy-poll one CPU with
#   the reactor, is bench/prio_tail.sh.)
# Environment: BUILD, QUICK=1 (shorter runs, fewer points), SECTIONS (which
# of 1..3 to run, default all), ROUNDS_OVERRIDE (rounds of section 1).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
QUICK="${QUICK:-0}"
BIN="$BUILD/bin"
POL="${POL:-$BUILD/policies}" # POL: another directory of prio/isolation/stats.bpf.o (ablations)
DIR=$(mktemp -d /tmp/leapio-polbench.XXXXXX)
LEAPD_PID=""
TAG="b$$"

cleanup() {
	[ -n "$LEAPD_PID" ] && kill -TERM "$LEAPD_PID" 2>/dev/null && wait "$LEAPD_PID" 2>/dev/null
	rm -rf "$DIR" /sys/fs/bpf/leapio/*_"$TAG"
}
trap cleanup EXIT

SECTIONS="${SECTIONS:-1 2 3}"
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
if [ "$QUICK" = 1 ]; then
	T=1 REPL_SECS=5 RATE_SECS=2 ROUNDS=1
	IOPS_LIMITS="1000 100000" BPS_LIMITS="10 500"
else
	T=3 REPL_SECS=30 RATE_SECS=10 ROUNDS=3
	IOPS_LIMITS="1000 10000 100000" BPS_LIMITS="10 100 500"
fi
ROUNDS="${ROUNDS_OVERRIDE:-$ROUNDS}"

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
perf() { timeout 120 "$BIN/leap-perf" -s "$DIR/t.sock" "$@"; }
j() { jq -r "$1" <<<"$2"; }


load3() {
	ctl policy load "$POL/prio.bpf.o" --name "prio_$TAG" >/dev/null
	ctl policy load "$POL/isolation.bpf.o" --name "iso_$TAG" >/dev/null
	ctl policy load "$POL/stats.bpf.o" --name "stats_$TAG" >/dev/null
}

echo "### Policies (bench/policy.sh$([ "$QUICK" = 1 ] && echo ', QUICK' || true))"
echo
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# ---- 1. chain overhead ------------------------------------------------------------------
if want 1; then
cat >"$DIR/cfg.json" <<EOF
[
 {"method": "bdev_create", "params": {"name": "n0", "type": "null", "size": 1073741824}},
 {"method": "ctrl_create", "params": {"name": "c0", "max_qpairs": 4}},
 {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "n0"}}
]
EOF
start_leapd "$DIR/cfg.json"
load3
none=() chain=()
for r in $(seq 1 "$ROUNDS"); do
	out=$(perf -c c0 -w randread -q 128 -t "$T" --json)
	none+=("$(j .iops "$out")")
	ctl policy attach "prio_$TAG" --order 10 >/dev/null
	ctl policy attach "iso_$TAG" --order 20 >/dev/null
	ctl policy attach "stats_$TAG" --order 30 >/dev/null
	out=$(perf -c c0 -w randread -q 128 -t "$T" --json)
	chain+=("$(j .iops "$out")")
	links=$(ctl --json policy list)
	ctl policy detach "prio_$TAG" >/dev/null
	ctl policy detach "iso_$TAG" >/dev/null
	ctl policy detach "stats_$TAG" >/dev/null
done
stop_leapd
echo "1. Chain overhead, null backend, 4 KiB randread QD 128, ${T} s per run, rounds alternate"
echo "   (command: \`leap-perf -c c0 -w randread -q 128 -t $T\`, with and without"
echo "   prio+isolation+stats attached). Target: ≤ 10 % IOPS loss."
echo
echo "| round | no policy IOPS | 3 policies IOPS | ratio |"
echo "|---|---|---|---|"
for i in "${!none[@]}"; do
	awk -v r=$((i + 1)) -v a="${none[$i]}" -v b="${chain[$i]}" \
		'BEGIN { printf "| %d | %.0f | %.0f | %.3f |\n", r, a, b, b / a }'
done
sum_n=$(printf '%s\n' "${none[@]}" | awk '{ s += $1 } END { print s }')
sum_c=$(printf '%s\n' "${chain[@]}" | awk '{ s += $1 } END { print s }')
awk -v a="$sum_n" -v b="$sum_c" 'BEGIN { printf "\nall rounds: ratio %.3f (loss %.1f %%)\n", b / a, (1 - b / a) * 100 }'
# Per round: the chain's cost in ns per I/O (1e9/IOPS with minus without); median over rounds.
for i in "${!none[@]}"; do
	awk -v a="${none[$i]}" -v b="${chain[$i]}" 'BEGIN { printf "%.4f %.2f\n", b / a, 1e9 / b - 1e9 / a }'
done | sort -g >"$DIR/r1"
awk '{ r[NR] = $1 } END { printf "ratio per round min / median / max: %.3f / %.3f / %.3f\n", r[1], r[int((NR + 1) / 2)], r[NR] }' "$DIR/r1"
sort -g -k2 "$DIR/r1" | awk '{ c[NR] = $2 } END { printf "chain cost, ns per I/O, min / median / max: %.1f / %.1f / %.1f (target <= 15)\n", c[1], c[int((NR + 1) / 2)], c[NR] }'
echo
echo "The last round's per-link cost as leapd timed it (at most 1 chain run per ms timed, ns per run incl. a clock read):"
echo
jq -r '.links[] | "- \(.policy) \(.hook): \(.runs) runs, \(.ns_per_run|floor) ns/run"' <<<"$links"
echo
fi

# ---- 2. live replace under a verifying load -----------------------------------------------
if want 2; then
cat >"$DIR/cfg.json" <<EOF
[
 {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 67108864}},
 {"method": "ctrl_create", "params": {"name": "c0", "max_qpairs": 4}},
 {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "m0"}}
]
EOF
start_leapd "$DIR/cfg.json"
load3
ctl policy attach "prio_$TAG" --order 10 >/dev/null
ctl policy attach "iso_$TAG" --order 20 >/dev/null
ctl policy attach "stats_$TAG" --order 30 >/dev/null
base=$(perf -c c0 -w randrw -q 16 -t "$REPL_SECS" --verify --json)
perf -c c0 -w randrw -q 16 -t "$REPL_SECS" --verify --json >"$DIR/repl.json" &
ppid=$!
n=0
end=$((SECONDS + REPL_SECS))
while [ $SECONDS -lt "$end" ] && kill -0 "$ppid" 2>/dev/null; do
	ctl policy replace "iso_$TAG" "$POL/isolation.bpf.o" >/dev/null
	n=$((n + 1))
	sleep 0.1
done
wait "$ppid"
repl=$(cat "$DIR/repl.json")
stop_leapd
echo "2. Live replace of the isolation link every 100 ms for ${REPL_SECS} s under"
echo "   \`leap-perf -c c0 -w randrw -q 16 -t $REPL_SECS --verify\` (mem backend, 3-policy chain)."
echo "   Target: 0 errors, 0 mismatches, worst I/O stall ≤ 1 ms."
echo
echo "| run | replaces | I/Os | errors | mismatches | p99.9 µs | max µs |"
echo "|---|---|---|---|---|---|---|"
echo "| no replace | 0 | $(j .ios "$base") | $(j .errors "$base") | $(j .verify_mismatches "$base") | $(j .latency_us.p99_9 "$base") | $(j .latency_us.max "$base") |"
echo "| replace every 100 ms | $n | $(j .ios "$repl") | $(j .errors "$repl") | $(j .verify_mismatches "$repl") | $(j .latency_us.p99_9 "$repl") | $(j .latency_us.max "$repl") |"
echo
fi

# ---- 3. isolation accuracy ------------------------------------------------------------------
if want 3; then
cat >"$DIR/cfg.json" <<EOF
[
 {"method": "bdev_create", "params": {"name": "n0", "type": "null", "size": 1073741824}},
 {"method": "ctrl_create", "params": {"name": "c0", "max_qpairs": 4}},
 {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "n0"}}
]
EOF
start_leapd "$DIR/cfg.json"
ctl policy load "$POL/isolation.bpf.o" --name "iso_$TAG" >/dev/null
ctl policy attach "iso_$TAG" >/dev/null
cid=$(ctl --json ctrl list c0 | jq -r '.[0].cntlid // .cntlid')
echo "3. Isolation accuracy: \`leap-perf -c c0 -w randread -q 32 -t $RATE_SECS\` (null backend)"
echo "   under \`leapctl policy set iso iops_limit[$cid]=L\` / \`bps_limit[$cid]=B\`, changed live."
echo "   Target: measured within ±5 % of the limit over 10 s."
echo
echo "| limit | I/O size | measured | ratio |"
echo "|---|---|---|---|"
for l in $IOPS_LIMITS; do
	ctl policy set "iso_$TAG" "iops_limit[$cid]=$l" "bps_limit[$cid]=0" >/dev/null
	out=$(perf -c c0 -w randread -q 32 -t "$RATE_SECS" --json)
	awk -v l="$l" -v m="$(j .iops "$out")" \
		'BEGIN { printf "| %d IOPS | 4 KiB | %.0f IOPS | %.3f |\n", l, m, m / l }'
done
for b in $BPS_LIMITS; do
	ctl policy set "iso_$TAG" "iops_limit[$cid]=0" "bps_limit[$cid]=$((b << 20))" >/dev/null
	out=$(perf -c c0 -w randread -o 131072 -q 32 -t "$RATE_SECS" --json)
	awk -v l="$b" -v m="$(j .mibps "$out")" \
		'BEGIN { printf "| %d MiB/s | 128 KiB | %.1f MiB/s | %.3f |\n", l, m, m / l }'
done
stop_leapd
echo
fi


echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
