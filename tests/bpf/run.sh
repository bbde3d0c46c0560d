#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Data-driven instruction tests: each tests/bpf/data/*.data file holds a
# program (`-- asm` in LLVM's BPF assembler syntax, assembled with llvm-mc,
# or `-- raw` hex for instructions clang 14's assembler predates), optional
# memory (`-- mem`, hex bytes passed as r1/r2) and either the expected r0
# (`-- result`) or the expected rejection text (`-- error`). Every program
# runs through leap-bpfrun on the interpreter, the JIT and the kernel
# (BPF_PROG_TEST_RUN, which returns only r0's low 32 bits). A kernel
# verifier rejection is a skip for that engine, never a pass. Prints TAP.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
RUN="$BUILD/bin/leap-bpfrun"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

files=("$ROOT"/tests/bpf/data/*.data)
engines=(interp jit kernel)
echo "1..$((${#files[@]} * ${#engines[@]}))"

section() { # FILE NAME: print the body of "-- NAME"
	awk -v want="-- $2" '/^-- /{on = ($0 == want); next} on && !/^#/' "$1"
}

assemble() { # FILE -> prints program hex, or fails
	local f=$1 raw
	raw=$(section "$f" raw | tr -d ' \t\n')
	if [ -n "$raw" ]; then
		echo "$raw"
		return 0
	fi
	section "$f" asm >"$TMP/p.s"
	llvm-mc -triple bpfel -filetype=obj -o "$TMP/p.o" "$TMP/p.s" 2>"$TMP/asm.err" || return 1
	llvm-objcopy -O binary --only-section=.text "$TMP/p.o" "$TMP/p.bin" || return 1
	# A program without a final exit gets one (result tests end with r0 set).
	if ! grep -qx 'exit' <(section "$f" asm | sed 's/^[[:space:]]*//;s/[[:space:]]*$//' | tail -n1) &&
		[ -z "$(section "$f" error)" ]; then
		printf '\x95\x00\x00\x00\x00\x00\x00\x00' >>"$TMP/p.bin"
	fi
	od -An -tx1 -v "$TMP/p.bin" | tr -d ' \n'
}

n=0
for f in "${files[@]}"; do
	name=$(basename "$f" .data)
	prog=$(assemble "$f")
	asm_ok=$?
	mem=$(section "$f" mem | tr -d ' \t\n')
	want=$(section "$f" result | tr -d ' \t\n' | sed 's/^0x//' | sed 's/^0*//')
	want=${want:-0}
	err=$(section "$f" error | sed 's/^[[:space:]]*//' | head -n1)
	for e in "${engines[@]}"; do
		n=$((n + 1))
		if [ "$asm_ok" -ne 0 ]; then
			echo "not ok $n $name [$e] # assembler failed: $(head -n1 "$TMP/asm.err")"
			continue
		fi
		out=$(echo "$prog" | "$RUN" --engine "$e" ${mem:+"$mem"} 2>"$TMP/err")
		rc=$?
		if [ "$rc" -eq 77 ]; then
			echo "ok $n $name [$e] # SKIP $(head -n1 "$TMP/err")"
			continue
		fi
		if [ -n "$err" ]; then
			if [ "$rc" -eq 1 ] && grep -qF -- "$err" "$TMP/err"; then
				echo "ok $n $name [$e] rejected: $err"
			else
				echo "not ok $n $name [$e]"
				echo "# expected a rejection containing '$err', got exit $rc, stdout '$out'"
				sed 's/^/# /' "$TMP/err"
			fi
			continue
		fi
		exp=$want
		if [ "$e" = kernel ]; then
			exp=$(printf '%x' $((0x$want & 0xffffffff)))
		fi
		got=$(echo "$out" | sed 's/^0*//')
		got=${got:-0}
		if [ "$rc" -eq 0 ] && [ "$got" = "$exp" ]; then
			echo "ok $n $name [$e] = $exp"
		else
			echo "not ok $n $name [$e]"
			echo "# expected $exp, got '$out' (exit $rc)"
			sed 's/^/# /' "$TMP/err"
		fi
	done
done
