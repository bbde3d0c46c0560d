#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# A/B data-path benchmark between two builds of leapio in the same run, so
# a refactor or an optimisation is judged against its own baseline on this
# noisy shared machine. Rounds alternate A, B, A, B... For each build:
#   - null backend, 4 KiB random reads, QD 128, no policy (IOPS);
#   - the same with prio + isolation + stats attached (IOPS, and the ratio
#     to the same build's no-policy figure).
# Usage: bench/ab.sh BUILD_A BUILD_B   (e.g. a worktree of the old commit's
# build/ and ./build). Environment: ROUNDS (default 5), T (seconds per run,
# default 3). Prints markdown for bench/RESULTS.md.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
A=${1:?usage: bench/ab.sh BUILD_A BUILD_B}
B=${2:?usage: bench/ab.sh BUILD_A BUILD_B}
ROUNDS="${ROUNDS:-5}"
T="${T:-3}"
DIR=$(mktemp -d /tmp/leapio-ab.XXXXXX)
LEAPD_PID=""
TAG="ab$$"

cleanup() {
	[ -n "$LEAPD_PID" ] && kill -TERM "$LEAPD_PID" 2>/dev/null && wait "$LEAPD_PID" 2>/dev/null
	rm -rf "$DIR" /sys/fs/bpf/leapio/*_"$TAG"
}
trap cleanup EXIT

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

cat >"$DIR/cfg.json" <<EOF2
[
 {"method": "bdev_create", "params": {"name": "n0", "type": "null", "size": 1073741824}},
 {"method": "ctrl_create", "params": {"name": "c0", "max_qpairs": 4}},
 {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "n0"}}
]
EOF2

# one_round BUILD -> "none chain" IOPS
one_round() {
	local build=$1 none chain
	BIN="$build/bin"
	start_leapd "$DIR/cfg.json"
	ctl policy load "$build/policies/prio.bpf.o" --name "prio_$TAG" >/dev/null
	ctl policy load "$build/policies/isolation.bpf.o" --name "iso_$TAG" >/dev/null
	ctl policy load "$build/policies/stats.bpf.o" --name "stats_$TAG" >/dev/null
	none=$(timeout 120 "$BIN/leap-perf" -s "$DIR/t.sock" -c c0 -w randread -q 128 -t "$T" \
		--json | jq -r .iops)
	ctl policy attach "prio_$TAG" --order 10 >/dev/null
	ctl policy attach "iso_$TAG" --order 20 >/dev/null
	ctl policy attach "stats_$TAG" --order 30 >/dev/null
	chain=$(timeout 120 "$BIN/leap-perf" -s "$DIR/t.sock" -c c0 -w randread -q 128 -t "$T" \
		--json | jq -r .iops)
	stop_leapd
	echo "$none $chain"
}

echo "### A/B: $A vs $B (bench/ab.sh, $ROUNDS alternating rounds, ${T} s per run)"
echo
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| round | A no policy | A 3 policies | A ratio | B no policy | B 3 policies | B ratio | B/A no policy |"
echo "|---|---|---|---|---|---|---|---|"
for r in $(seq 1 "$ROUNDS"); do
	read -r an ac < <(one_round "$A")
	read -r bn bc < <(one_round "$B")
	echo "$an $ac $bn $bc" >>"$DIR/rows"
	awk -v r="$r" -v an="$an" -v ac="$ac" -v bn="$bn" -v bc="$bc" 'BEGIN {
		printf "| %d | %.0f | %.0f | %.3f | %.0f | %.0f | %.3f | %.3f |\n",
			r, an, ac, ac / an, bn, bc, bc / bn, bn / an }'
done
echo
sort -n -k1 "$DIR/rows" | awk '{ a[NR] = $1 } END { printf "A no-policy median: %.0f\n", a[int((NR + 1) / 2)] }'
sort -n -k3 "$DIR/rows" | awk '{ b[NR] = $3 } END { printf "B no-policy median: %.0f\n", b[int((NR + 1) / 2)] }'
awk '{ print $2 / $1 }' "$DIR/rows" | sort -n | awk '{ a[NR] = $1 } END { printf "A chain ratio median: %.3f\n", a[int((NR + 1) / 2)] }'
awk '{ print $4 / $3 }' "$DIR/rows" | sort -n | awk '{ a[NR] = $1 } END { printf "B chain ratio median: %.3f\n", a[int((NR + 1) / 2)] }'
