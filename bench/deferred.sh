#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Deferred I/O without spinning (issue 17, item 3): a tenant held by the
# isolation policy at a low IOPS limit, with nothing else running. Reports
# leapd's CPU (utime + stime of the process, from /proc) as a fraction of
# one core, and the measured rate against the limit. With BUILD_A set, the
# same run on that build first (e.g. the commit before reactor deadlines),
# so the figure has its baseline in the same run.
# Environment: BUILD (default ./build), BUILD_A (optional), T (seconds, 10),
# LIMITS ("10 100 1000").
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
if [ "${QUICK:-0}" = 1 ]; then
	T="${T:-3}" LIMITS="${LIMITS:-10 1000}"
else
	T="${T:-10}" LIMITS="${LIMITS:-10 100 1000}"
fi
DIR=$(mktemp -d /tmp/leapio-defer.XXXXXX)
LEAPD_PID=""
TAG="d$$"

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

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

run_build() {
	local build=$1 label=$2 cid
	BIN="$build/bin"
	start_leapd "$DIR/cfg.json"
	ctl policy load "$build/policies/isolation.bpf.o" --name "iso_$TAG" >/dev/null
	ctl policy attach "iso_$TAG" >/dev/null
	cid=$(ctl --json ctrl list c0 | jq -r '.[0].cntlid // .cntlid')
	for l in $LIMITS; do
		ctl policy set "iso_$TAG" "iops_limit[$cid]=$l" >/dev/null
		local t0 t1 out hz
		hz=$(getconf CLK_TCK)
		t0=$(ticks "$LEAPD_PID")
		out=$(timeout 120 "$BIN/leap-perf" -s "$DIR/t.sock" -c c0 -w randread -q 4 --irq \
			-t "$T" --json)
		t1=$(ticks "$LEAPD_PID")
		awk -v b="$label" -v l="$l" -v m="$(jq -r .iops <<<"$out")" -v c=$((t1 - t0)) \
			-v hz="$hz" -v t="$T" 'BEGIN {
			printf "| %s | %d | %.1f | %.3f | %.1f %% |\n", b, l, m, m / l, 100 * c / hz / t }'
	done
	stop_leapd
}

echo "### Deferred I/O without spinning (bench/deferred.sh, ${T} s per limit)"
echo
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Tenant: \`leap-perf -c c0 -w randread -q 4 --irq -t $T\` under \`policy set iso iops_limit[c0]=L\`,"
echo "null backend, one reactor; leapd CPU = its utime+stime over the run / run time."
echo
echo "| build | limit IOPS | measured IOPS | ratio | leapd CPU (one core = 100 %) |"
echo "|---|---|---|---|---|"
if [ -n "${BUILD_A:-}" ]; then
	run_build "$BUILD_A" "before"
fi
run_build "$BUILD" "after"
