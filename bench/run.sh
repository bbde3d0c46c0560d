#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# `make bench` / `make bench-quick` (QUICK=1): the engine benchmark
# (build/bench/bpf_bench: ns per call on interpreter, JIT, kernel and native
# C, with the ratios against the engine's targets), the differential
# fuzzer's long run (1 M programs; 20 k in QUICK mode), timed, and the
# runtime's own benchmarks when built (reactor_bench, bdev_bench on the
# null and mem backends), whose key=value lines are recorded as printed,
# the data path (bench/datapath.sh), the policies (bench/policy.sh) and
# the plotted suite (bench/suite.sh: SVGs in bench/plots/, or a temporary
# directory in QUICK mode).
#
# A full run appends a dated section to bench/RESULTS.md: machine, date,
# the exact commands, the table. QUICK mode writes nothing unless RECORD=1.
# Environment: BUILD, QUICK, RECORD, FUZZ_SEED (default: the date, printed),
# FUZZ_COUNT (override the program count).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
QUICK="${QUICK:-0}"
if [ "$QUICK" = 1 ]; then
	RECORD="${RECORD:-0}"
	FUZZ_COUNT="${FUZZ_COUNT:-20000}"
	BENCH_ARGS=(--quick)
else
	RECORD="${RECORD:-1}"
	FUZZ_COUNT="${FUZZ_COUNT:-1000000}"
	BENCH_ARGS=()
fi
FUZZ_SEED="${FUZZ_SEED:-$(date -u +%Y%m%d)}"
RESULTS="$ROOT/bench/RESULTS.md"

if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
	mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
fi

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
machine="$(nproc) CPUs, ${cpu_model:-unknown CPU}, Linux $(uname -r)"
when=$(date -u '+%Y-%m-%d %H:%M UTC')
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	rev="$rev+dirty"
fi

bench_cmd="build/bench/bpf_bench${BENCH_ARGS[*]:+ ${BENCH_ARGS[*]}}"
fuzz_cmd="build/tests/tools/bpf_fuzz --seed $FUZZ_SEED --count $FUZZ_COUNT"

echo "== engine benchmark: $bench_cmd"
echo "   $machine"
bench_out=$(mktemp)
fuzz_out=$(mktemp)
other_out=$(mktemp)
trap 'rm -f "$bench_out" "$fuzz_out" "$other_out"' EXIT

bench_rc=0
"$BUILD/bench/bpf_bench" "${BENCH_ARGS[@]}" | tee "$bench_out" || bench_rc=$?
[ "$bench_rc" -eq 0 ] || echo "bpf_bench: exit $bench_rc"

echo
echo "== differential fuzzer: $fuzz_cmd"
fuzz_rc=0
start=$(date +%s.%N)
"$BUILD/tests/tools/bpf_fuzz" --seed "$FUZZ_SEED" --count "$FUZZ_COUNT" | tee "$fuzz_out" ||
	fuzz_rc=$?
end=$(date +%s.%N)
fuzz_secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
echo "fuzzer wall time: ${fuzz_secs} s (exit $fuzz_rc)"

echo
echo "== runtime benchmarks"
if [ "$QUICK" = 1 ]; then secs=1 samples=100; else secs=3 samples=1000; fi
other_cmds=()
[ -x "$BUILD/bench/reactor_bench" ] && other_cmds+=("reactor_bench $secs $samples")
if [ -x "$BUILD/bench/bdev_bench" ]; then
	other_cmds+=("bdev_bench -t null -s $secs" "bdev_bench -t mem -s $secs")
fi
other_rc=0
for c in "${other_cmds[@]}"; do
	echo "\$ build/bench/$c"
	# shellcheck disable=SC2086 # the command line is split on purpose
	"$BUILD/bench/"$c 2>/dev/null | tee -a "$other_out" || other_rc=$?
done

echo
echo "== data path: bench/datapath.sh"
dp_out=$(mktemp)
dp_rc=0
QUICK="$QUICK" BUILD="$BUILD" "$ROOT/bench/datapath.sh" | tee "$dp_out" || dp_rc=$?

echo
echo "== policies: bench/policy.sh"
pol_out=$(mktemp)
pol_rc=0
QUICK="$QUICK" BUILD="$BUILD" "$ROOT/bench/policy.sh" | tee "$pol_out" || pol_rc=$?

echo
echo "== plotted suite: bench/suite.sh"
suite_out=$(mktemp)
suite_rc=0
QUICK="$QUICK" BUILD="$BUILD" "$ROOT/bench/suite.sh" | tee "$suite_out" || suite_rc=$?

# The per-issue benchmarks, each against its own same-run baseline, in the
# order they were added; each prints markdown. A script that is absent is
# skipped (so this list can name what other branches add).
extra_out=$(mktemp)
extra_rc=0
for b in deferred tcp nvmf_initiator composite vhost xdp contention passthrough prio_tail; do
	[ -x "$ROOT/bench/$b.sh" ] || continue
	echo
	echo "== bench/$b.sh"
	QUICK="$QUICK" BUILD="$BUILD" "$ROOT/bench/$b.sh" | tee -a "$extra_out" || extra_rc=$?
	echo >>"$extra_out"
done

if [ "$RECORD" = 1 ]; then
	{
		echo
		echo "## $when — $rev$([ "$QUICK" = 1 ] && echo ' (quick)' || true)"
		echo
		echo "- machine: $machine"
		echo "- commands: \`$bench_cmd\`; \`$fuzz_cmd\`"
		echo
		if [ "$bench_rc" -eq 0 ]; then
			cat "$bench_out"
		else
			echo "bpf_bench failed (exit $bench_rc)."
		fi
		echo
		echo "Differential fuzzer (interpreter vs JIT vs kernel), ${fuzz_secs} s wall, exit $fuzz_rc:"
		echo
		echo '```'
		cat "$fuzz_out"
		echo '```'
		if [ "${#other_cmds[@]}" -gt 0 ]; then
			echo
			echo "Runtime benchmarks (\`$(printf '%s; ' "${other_cmds[@]}")\`):"
			echo
			echo '```'
			cat "$other_out"
			echo '```'
		fi
		echo
		cat "$dp_out"
		echo
		cat "$pol_out"
		echo
		cat "$suite_out"
		echo
		cat "$extra_out"
	} >>"$RESULTS"
	echo
	echo "appended to bench/RESULTS.md"
fi
rm -f "$dp_out" "$pol_out" "$suite_out" "$extra_out"
[ "$bench_rc" -eq 0 ] && [ "$fuzz_rc" -eq 0 ] && [ "$other_rc" -eq 0 ] && [ "$dp_rc" -eq 0 ] &&
	[ "$pol_rc" -eq 0 ] && [ "$suite_rc" -eq 0 ] && [ "$extra_rc" -eq 0 ]
