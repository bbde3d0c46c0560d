#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Runs every libFuzzer harness in $BUILD/fuzz/fuzzers for FUZZ_SECONDS each
# (tests/run.sh: a short smoke; `make fuzz`: long), over its checked-in
# seeds (tests/fuzz/corpus/NAME, read-only) and what earlier runs kept
# ($BUILD/fuzz/corpus/NAME). Speaks TAP, one case per harness: ok with the
# executions and speed, not ok with the crash artifact when it found one.
# The last lines are a Markdown table for bench/RESULTS.md.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
FZ="$BUILD/fuzz"
SECONDS_EACH="${FUZZ_SECONDS:-10}"

shopt -s nullglob
bins=("$FZ"/fuzzers/fuzz_*)
bins=("${bins[@]/*.d/}")
names=()
for b in "${bins[@]}"; do [ -n "$b" ] && [ -x "$b" ] && names+=("$(basename "$b")"); done
if [ "${#names[@]}" -eq 0 ]; then
	echo "1..0 # SKIP no fuzzers in $FZ/fuzzers (make fuzz-build)"
	exit 77
fi
echo "1..${#names[@]}"
table=()
i=0
for n in "${names[@]}"; do
	i=$((i + 1))
	work="$FZ/corpus/$n"
	art="$FZ/artifacts/$n/"
	log="$FZ/logs/$n.log"
	mkdir -p "$work" "$art" "$(dirname "$log")"
	# The harnesses are leapd's own code: leaks count, and UBSan stops at the first report.
	ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
		"$FZ/fuzzers/$n" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=4096 \
		-print_final_stats=1 -artifact_prefix="$art" "$work" "$ROOT/tests/fuzz/corpus/$n" \
		>"$log" 2>&1
	rc=$?
	# The last figures are the run's: a forked child that crashed may print its own first.
	execs=$(grep '^stat::number_of_executed_units' "$log" | tail -n1 | awk '{print $2}')
	speed=$(grep '^stat::average_exec_per_sec' "$log" | tail -n1 | awk '{print $2}')
	corpus=$(ls "$work" | wc -l)
	table+=("| $n | ${SECONDS_EACH} s | ${execs:-?} | ${speed:-?}/s | $corpus | $([ $rc -eq 0 ] && echo 0 || echo 1) |")
	if [ "$rc" -eq 0 ]; then
		echo "ok $i $n: ${execs:-?} execs (${speed:-?}/s), corpus $corpus"
	else
		echo "not ok $i $n: exit $rc after ${execs:-?} execs; artifact: $(ls "$art" | head -n1)"
		grep -E 'ERROR|runtime error|SUMMARY|#[0-9]+ ' "$log" | head -n 30 | sed 's/^/# /'
	fi
done
echo "# | harness | time | executions | speed | corpus | crashes |"
echo "# |---|---|---|---|---|---|"
for row in "${table[@]}"; do echo "# $row"; done
