#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# No collapse under contention (issue 17, item 1): the null-backend QD 128
# load (leapd with one unpinned reactor, leap-perf in its default adaptive
# mode, unpinned: what a user gets by default) in many short rounds while a
# rotating background load runs; the target is every round >= 0.4x of quiet.
#
# A round (the headline table): one leapd and one tenant for TI s (4) while
# the load is stopped and continued every WINDOW_MS (250 ms; SIGSTOP/SIGCONT
# to its process group), IOPS per window from leapd's counters (leapctl
# stats). The round's ratio is its loaded windows' mean IOPS over its quiet
# windows' mean: the quiet baseline is taken in the same seconds. This host's
# speed changes 2x within seconds (quiet runs back to back: 13-29 M IOPS),
# so a baseline even a few seconds away is often decided by the host, not by
# the load. Each loaded window against the quiet windows either side is
# reported too (the worst 250 ms).
# RUNS=1 also runs the older form: each round a separate run of T s,
# between two quiet runs, against them and against the quiet median. Off by
# default: there the host's state, not the load, decides most rounds (loaded
# and quiet runs alike fall into two groups 2x apart; bench/RESULTS.md,
# 2026-12-06 16:45 UTC).
#
# Background loads: cpu hog on CPU 0, on CPU 1, on both; a compile; buffered
# and O_DIRECT writeback; a second busy-polling leapd with its own polling
# tenant; a process that sleeps and wakes every 50 us; memory-bandwidth
# pressure. With BUILD_A set, every load runs on that build too, alternating
# (the baseline in the same run).
# Environment: BUILD, BUILD_A, QUICK=1 (1 round per load, shorter), T, TI,
# WINDOW_MS, ROUNDS, RUNS, PERF_ARGS (more leap-perf options for the measured
# tenant: --poll for the always-spinning tenant of before, --irq), LOADS (a
# subset, e.g. "quiet hog0").
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
if [ "${QUICK:-0}" = 1 ]; then
	T="${T:-1}" TI="${TI:-2}" ROUNDS="${ROUNDS:-1}"
else
	T="${T:-2}" TI="${TI:-4}" ROUNDS="${ROUNDS:-3}"
fi
WINDOW_MS="${WINDOW_MS:-250}"
DIR=$(mktemp -d /tmp/leapio-contention.XXXXXX)
LEAPD_PID=""
BG_PIDS=()

# Every background load is its own process group, so a signal reaches the
# whole of it (a compile loop's gcc, a writeback loop's dd). Not its own
# session (setsid): with autogroup scheduling, on here, a session is a task
# group with its own weight, so a hog there gets more of its CPU than a
# thread of ours does (loaded IOPS lower by up to half in a few runs); a
# load in the same session competes thread for thread, as in every earlier
# measurement here. (A leapd in a cgroup of its own meets the same rule:
# its cpu.weight is its share against the other groups.)
PG=(perl -e 'setpgrp(0, 0); exec @ARGV or die "exec: $!"' --)

stop_bg() {
	local p
	for p in "${BG_PIDS[@]}"; do
		kill -CONT -- "-$p" 2>/dev/null || true
		kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	BG_PIDS=()
}

cleanup() {
	stop_bg
	[ -n "$LEAPD_PID" ] && kill -TERM "$LEAPD_PID" 2>/dev/null && wait "$LEAPD_PID" 2>/dev/null
	rm -rf "$DIR"
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

# A C file to compile in a loop (the "compile" load): any translation unit of ours.
CSRC="$ROOT/runtime/nvme/ctrl_io.c"

hog() { # CPU: spin pinned there
	"${PG[@]}" taskset -c "$1" bash -c 'while :; do :; done' &
	BG_PIDS+=($!)
}

start_bg() {
	case "$1" in
	quiet) ;;
	hog0) hog 0 ;;
	hog1) hog 1 ;;
	hog01) hog 0; hog 1 ;;
	compile)
		"${PG[@]}" bash -c "while :; do gcc -O2 -Iinclude -Iruntime -D_GNU_SOURCE -c '$CSRC' \
			-o '$DIR/cc.o' 2>/dev/null; done" &
		BG_PIDS+=($!) ;;
	writeback)
		"${PG[@]}" bash -c "while :; do dd if=/dev/zero of='$DIR/wb' bs=1M count=256 2>/dev/null; \
			rm -f '$DIR/wb'; done" &
		BG_PIDS+=($!) ;;
	direct)
		"${PG[@]}" bash -c "while :; do dd if=/dev/zero of=/var/tmp/leapio-contention.$$ bs=1M \
			count=128 oflag=direct 2>/dev/null; done" &
		BG_PIDS+=($!) ;;
	leapd2)
		mkdir -p "$DIR/l2"
		"${PG[@]}" "$BIN/leapd" --foreground -c "$DIR/cfg.json" -r "$DIR/l2/rpc.sock" \
			-s "$DIR/l2/t.sock" -l "$DIR/l2/log" </dev/null >/dev/null 2>&1 &
		BG_PIDS+=($!)
		for _ in $(seq 1 50); do
			"$BIN/leapctl" -r "$DIR/l2/rpc.sock" info >/dev/null 2>&1 && break
			sleep 0.1
		done
		"${PG[@]}" "$BIN/leap-perf" -s "$DIR/l2/t.sock" -c c0 -w randread -q 128 -t 3600 \
			>/dev/null 2>&1 &
		BG_PIDS+=($!) ;;
	wakeups)
		"${PG[@]}" perl -MTime::HiRes=usleep -e 'while (1) { usleep(50) }' &
		BG_PIDS+=($!) ;;
	membw)
		"${PG[@]}" perl -e '$a = "x" x (128 << 20); while (1) { my $b = $a; $b =~ tr/x/y/; }' &
		BG_PIDS+=($!) ;;
	esac
	sleep 0.3
}

LOADS="${LOADS:-quiet hog0 hog1 hog01 compile writeback direct leapd2 wakeups membw}"

# measure BUILD LOAD -> IOPS
measure() {
	local build=$1 load=$2 out
	BIN="$build/bin"
	start_leapd "$DIR/cfg.json"
	start_bg "$load"
	# shellcheck disable=SC2086 # PERF_ARGS: words on purpose
	out=$(timeout 120 "$BIN/leap-perf" -s "$DIR/t.sock" -c c0 -w randread -q 128 -t "$T" \
		--json ${PERF_ARGS:-} 2>/dev/null || echo '{"iops": 0}')
	stop_bg
	stop_leapd
	rm -f "/var/tmp/leapio-contention.$$"
	jq -r .iops <<<"$out"
}

# One round: the load stopped and continued every WINDOW_MS for TI s while
# one tenant runs throughout; IOPS per window from leapd's counters.
reads() { "$BIN/leapctl" -r "$DIR/rpc.sock" --json stats | jq -r '.controllers[0].total.reads'; }
now_ns() { date +%s%N; }

# interleave BUILD LOAD -> one line per window: "q IOPS" (load stopped) or "l IOPS" (running)
interleave() {
	local build=$1 load=$2 n r0 t0 r1 t1 w p sig kind perf
	BIN="$build/bin"
	start_leapd "$DIR/cfg.json"
	start_bg "$load"
	# shellcheck disable=SC2086 # PERF_ARGS: words on purpose
	# Runs past the windows (each also waits for leapctl, slow under load), ended below.
	timeout 120 "$BIN/leap-perf" -s "$DIR/t.sock" -c c0 -w randread -q 128 -t 100 \
		${PERF_ARGS:-} >/dev/null 2>&1 &
	perf=$!
	sleep 0.5
	n=$((TI * 1000 / WINDOW_MS))
	r0=$(reads)
	t0=$(now_ns)
	for w in $(seq 1 "$n"); do
		if [ $((w % 2)) = 1 ]; then sig=STOP kind=q; else sig=CONT kind=l; fi
		for p in "${BG_PIDS[@]}"; do kill -"$sig" -- "-$p" 2>/dev/null || true; done
		sleep "$(awk -v m="$WINDOW_MS" 'BEGIN { print m / 1000 }')"
		r1=$(reads)
		t1=$(now_ns)
		echo "$kind $(((r1 - r0) * 1000000000 / (t1 - t0)))"
		r0=$r1
		t0=$t1
	done
	for p in "${BG_PIDS[@]}"; do kill -CONT -- "-$p" 2>/dev/null || true; done
	kill -TERM "$perf" 2>/dev/null || true
	wait "$perf" 2>/dev/null || true
	stop_bg
	stop_leapd
	rm -f "/var/tmp/leapio-contention.$$"
}

builds=("$BUILD")
[ -n "${BUILD_A:-}" ] && builds=("$BUILD_A" "$BUILD")
label() { [ "$1" = "$BUILD" ] && echo "this build" || echo "baseline ($1)"; }

echo "### Contention (bench/contention.sh: $ROUNDS round(s) per load, rounds of $TI s in $WINDOW_MS ms windows)"
echo
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "leapd one unpinned reactor, \`leap-perf -c c0 -w randread -q 128${PERF_ARGS:+ $PERF_ARGS}\` unpinned, null backend."
echo "A round: the load stopped and continued every $WINDOW_MS ms for $TI s, one leapd and one tenant"
echo "throughout; ratio = the mean IOPS of its loaded windows over that of its quiet windows"
echo "(leapctl stats totals per window; the windows include the switch). Worst window: a loaded"
echo "window against the mean of the quiet windows either side; \"next to a state change\": its two"
echo "quiet neighbours 1.5x or more apart (the host switched between its fast and slow state there)."
echo
# Rounds rotate through the loads (and builds): rows "BUILD LOAD ROUND q|l IOPS".
: >"$DIR/win_all"
for r in $(seq 1 "$ROUNDS"); do
	for load in $LOADS; do
		[ "$load" = quiet ] && continue
		for b in "${builds[@]}"; do
			interleave "$b" "$load" | sed "s|^|$b $load $r |" >>"$DIR/win_all"
		done
	done
done
for b in "${builds[@]}"; do
	echo "$(label "$b"):"
	echo
	echo "| load | ratio per round | min round | quiet IOPS per round (mean of its windows) | worst loaded window (to the quiet either side) | windows below 0.4 |"
	echo "|---|---|---|---|---|---|"
	for load in $LOADS; do
		[ "$load" = quiet ] && continue
		awk -v b="$b" -v l="$load" 'function flag(x) { return x < 0.4 ? " **below 0.4**" : "" }
			$1 == b && $2 == l { n++; rd[n] = $3; k[n] = $4; v[n] = $5 }
			END {
				for (i = 1; i <= n; i++) {
					r = rd[i]
					if (!(r in seen)) { seen[r] = 1; order[++nr] = r }
					if (k[i] == "q") { qs[r] += v[i]; qc[r]++; continue }
					ls[r] += v[i]; lc[r]++
					s = 0; c = 0; lo = 0; hi = 0
					if (i > 1 && rd[i - 1] == r && k[i - 1] == "q") { s += v[i - 1]; c++; lo = hi = v[i - 1] }
					if (i < n && rd[i + 1] == r && k[i + 1] == "q") {
						s += v[i + 1]; c++
						if (!lo || v[i + 1] < lo) lo = v[i + 1]
						if (v[i + 1] > hi) hi = v[i + 1]
					}
					if (!c || s == 0) continue
					w = v[i] / (s / c); nw++
					if (wmin == "" || w < wmin) wmin = w
					if (w < 0.4) {
						below++
						# the host changed state next to it: its quiet neighbours 1.5x apart
						if (c == 2 && lo > 0 && hi / lo >= 1.5) shift++
					}
				}
				for (j = 1; j <= nr; j++) {
					r = order[j]
					x = (qc[r] && lc[r] && qs[r] > 0) ? (ls[r] / lc[r]) / (qs[r] / qc[r]) : 0
					rr = rr sprintf("%s%.2f", (j > 1 ? ", " : ""), x)
					qq = qq sprintf("%s%.1fM", (j > 1 ? ", " : ""), qc[r] ? qs[r] / qc[r] / 1e6 : 0)
					if (min == "" || x < min) min = x
				}
				printf "| %s | %s | %.2f%s | %s | %.2f | %d of %d%s |\n", l, rr, min, flag(min), qq,
					wmin, below, nw, below ? sprintf(" (%d next to a state change)", shift) : ""
			}' "$DIR/win_all"
	done
	echo
done

if [ "${RUNS:-0}" = 1 ]; then
	echo "#### Separate runs: each round a run of $T s, between two quiet runs"
	echo
	: >"$DIR/rows"
	for r in $(seq 1 "$ROUNDS"); do
		for load in $LOADS; do
			for b in "${builds[@]}"; do
				pq=0
				[ "$load" != quiet ] && pq=$(measure "$b" quiet)
				echo "$b $load $(measure "$b" "$load") $pq" >>"$DIR/rows"
			done
		done
	done
	# One more quiet run per build closes the sequence: each loaded run is then
	# between two quiet ones (the next loaded run's "before" is this one's "after").
	for b in "${builds[@]}"; do
		echo "$b end 0 $(measure "$b" quiet)" >>"$DIR/rows"
	done
	# Column 5: the quiet run after.
	awk '{ row[NR] = $0; b[NR] = $1; q[NR] = $4 }
		END {
			for (i = 1; i <= NR; i++) {
				after = 0
				for (j = i + 1; j <= NR && !after; j++) if (b[j] == b[i] && q[j] > 0) after = q[j]
				print row[i], after
			}
		}' "$DIR/rows" | awk '$2 != "end"' >"$DIR/rows5"
	for b in "${builds[@]}"; do
		quiet=$(awk -v b="$b" '$1 == b && $2 == "quiet" { print $3 }' "$DIR/rows5" | sort -n |
			awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
		echo "$(label "$b"): quiet median $quiet IOPS"
		echo
		echo "| load | IOPS per round | min ratio to quiet median | quiet runs before / after each | ratio to the run before, min | to the mean of before and after, min |"
		echo "|---|---|---|---|---|---|"
		for load in $LOADS; do
			awk -v b="$b" -v l="$load" -v q="$quiet" 'function flag(x) { return x < 0.4 ? " **below 0.4**" : "" }
				$1 == b && $2 == l {
				v = v sprintf("%s%.2fM", (n++ ? ", " : ""), $3 / 1e6)
				r = $3 / q; if (min == "" || r < min) min = r
				if ($4 > 0) {
					pv = pv sprintf("%s%.1f/%.1fM", (np++ ? ", " : ""), $4 / 1e6, $5 / 1e6)
					pr = $3 / $4; if (pmin == "" || pr < pmin) pmin = pr
					m = $5 > 0 ? ($4 + $5) / 2 : $4
					sr = $3 / m; if (smin == "" || sr < smin) smin = sr
				} }
				END { printf "| %s | %s | %.2f%s | %s | %s | %s |\n", l, v, min, flag(min),
					(np ? pv : "-"), (np ? sprintf("%.2f%s", pmin, flag(pmin)) : "-"),
					(np ? sprintf("%.2f%s", smin, flag(smin)) : "-") }' \
				"$DIR/rows5"
		done
		echo
	done
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
