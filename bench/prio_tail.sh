#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Priority in the tail (issue 17, item 5), every figure against a baseline
# taken in the same round, printed as markdown for bench/RESULTS.md.
#
# One uring file (O_DIRECT, random data), two controllers on halves of it:
# fg (urgent: QD 1 random reads) and bg (bulk: QD 32 random reads). Both
# load generators run in `--irq` mode (they block on their completion
# eventfds instead of spinning), so on this 2-CPU machine what is measured
# is leapd and the device, not two busy-polling processes time-slicing one
# CPU with the reactor. leapd's reactor on CPU 0, both tenants on CPU 1.
#
# Each round: fg solo, bg solo, fg next to bg without a policy, then with
# the prio policy (fg high, the rest low) and the per-backend arbiter at
# each in-flight budget of INFLIGHT. Per configuration: fg's p50/p99 over
# its solo p99 and bg's IOPS over its solo IOPS. Target: fg p99 <= 2x
# solo while bg keeps >= 50 % of its solo IOPS. Medians over ROUNDS.
#
# Environment: BUILD, QUICK=1, ROUNDS, T (seconds per run), INFLIGHT.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
QUICK="${QUICK:-0}"
BIN="$BUILD/bin"
POL="$BUILD/policies"
DIR=$(mktemp -d /var/tmp/leapio-priobench.XXXXXX)
LEAPD_PID=""
TAG="pt$$"

cleanup() {
	[ -n "$LEAPD_PID" ] && kill -TERM "$LEAPD_PID" 2>/dev/null && wait "$LEAPD_PID" 2>/dev/null
	rm -rf "$DIR" /sys/fs/bpf/leapio/*_"$TAG"
}
trap cleanup EXIT

if [ "$QUICK" = 1 ]; then
	ROUNDS=${ROUNDS:-2} T=${T:-2}
else
	ROUNDS=${ROUNDS:-5} T=${T:-3}
fi
INFLIGHT=${INFLIGHT:-"1 2 4"}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
perf() { timeout 120 taskset -c 1 "$BIN/leap-perf" -s "$DIR/t.sock" --irq --json "$@"; }
j() { jq -r "$1" <<<"$2"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

cat >"$DIR/cfg.json" <<EOF
[
 {"method": "bdev_create",
  "params": {"name": "u0", "type": "uring", "path": "$DIR/u0.img", "size": 536870912}},
 {"method": "ctrl_create", "params": {"name": "fg", "max_qpairs": 2}},
 {"method": "ctrl_create", "params": {"name": "bg", "max_qpairs": 2}},
 {"method": "ns_add", "params": {"ctrl": "fg", "bdev": "u0", "size": 268435456}},
 {"method": "ns_add", "params": {"ctrl": "bg", "bdev": "u0", "offset": 268435456}}
]
EOF
head -c 536870912 /dev/urandom >"$DIR/u0.img"
sync # no writeback of the file competing with the baselines

echo "### Priority in the tail (bench/prio_tail.sh$([ "$QUICK" = 1 ] && echo ', QUICK' || true))"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg);" \
	"$(nproc) CPUs; reactor on CPU 0, both tenants \`leap-perf --irq\` on CPU 1; $ROUNDS rounds of $T s."
echo

start_leapd "$DIR/cfg.json" -m 0
fgid=$(ctl --json ctrl list fg | jq -r '.[0].cntlid // .cntlid')
ctl policy load "$POL/prio.bpf.o" --name "prio_$TAG" >/dev/null
ctl policy set "prio_$TAG" "rule_enabled[0]=1" "rule_ctrl[0]=$fgid" "rule_prio[0]=0" \
	prio_default=3 >/dev/null
fg() { perf -c fg -w randread -q 1 -t "$T"; }
bg() { perf -c bg -w randread -q 32 -t "$1"; }
# together CONFIG: fg next to bg (bg started first, running past fg's end).
together() {
	bg $((T + 2)) >"$DIR/bg.json" &
	local p=$!
	sleep 0.5
	fg >"$DIR/fg.json"
	wait "$p"
	echo "$1 $(j .latency_us.p50 "$(cat "$DIR/fg.json")") $(j .latency_us.p99 "$(cat "$DIR/fg.json")")" \
		"$(j .iops "$(cat "$DIR/bg.json")")" >>"$DIR/rows"
}
fg >/dev/null # warm-up, discarded
: >"$DIR/rows"
for r in $(seq 1 "$ROUNDS"); do
	s=$(fg)
	b=$(bg "$T")
	echo "solo $(j .latency_us.p50 "$s") $(j .latency_us.p99 "$s") $(j .iops "$b")" >>"$DIR/rows"
	ctl bdev qos u0 --inflight 0 >/dev/null
	together none
	ctl policy attach "prio_$TAG" >/dev/null
	for n in $INFLIGHT; do
		ctl bdev qos u0 --inflight "$n" >/dev/null
		together "prio+arb$n"
	done
	ctl bdev qos u0 --inflight 0 >/dev/null
	ctl policy detach "prio_$TAG" >/dev/null
done
stop_leapd

# Per round, ratios against that round's solo run; then min/median/max.
awk '$1 == "solo" { s50 = $2; s99 = $3; sb = $4; next }
     { printf "%s %.3f %.3f %.3f %.1f %.1f\n", $1, $2 / s50, $3 / s99, $4 / sb, $3, s99 }' \
	"$DIR/rows" >"$DIR/ratios"
echo "| configuration | fg p99 µs (median) | fg p99 / solo p99: min / median / max | fg p50 / solo p50 (median) | bg IOPS / solo: min / median / max | target (p99 ≤ 2×, bg ≥ 0.5×) |"
echo "|---|---:|---|---:|---|---|"
solo99=$(median $(awk '$1 == "solo" { print $3 }' "$DIR/rows"))
soloiops=$(median $(awk '$1 == "solo" { print $4 }' "$DIR/rows"))
echo "| solo (fg alone; bg alone) | $solo99 | 1 | 1 | 1 (bg solo ${soloiops} IOPS) | |"
for c in none $(for n in $INFLIGHT; do echo "prio+arb$n"; done); do
	p99=($(awk -v c="$c" '$1 == c { print $3 }' "$DIR/ratios" | sort -g))
	p50=($(awk -v c="$c" '$1 == c { print $2 }' "$DIR/ratios"))
	bgr=($(awk -v c="$c" '$1 == c { print $4 }' "$DIR/ratios" | sort -g))
	abs=($(awk -v c="$c" '$1 == c { print $5 }' "$DIR/ratios"))
	m99=$(median "${p99[@]}")
	mbg=$(median "${bgr[@]}")
	ok=$(awk -v a="$m99" -v b="$mbg" 'BEGIN { print (a <= 2 && b >= 0.5) ? "met" : "missed" }')
	[ "$c" = none ] && ok="(no policy)"
	label=$c
	[ "$c" = none ] && label="with bg, no policy"
	[[ "$c" == prio+arb* ]] && label="with bg, prio + arbiter, \`--inflight ${c#prio+arb}\`"
	echo "| $label | $(median "${abs[@]}") | ${p99[0]} / $m99 / ${p99[-1]} | $(median "${p50[@]}") | ${bgr[0]} / $mbg / ${bgr[-1]} | $ok |"
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
