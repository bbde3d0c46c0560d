#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Data-driven BPF instruction tests, printed as TAP. Each tests/bpf/data/**/*.data
# file (the bpf_conformance / uBPF format) holds a program and what it must do:
#   -- asm     assembly for build/tests/tools/bpf_asm
#   -- raw     or: 64-bit instruction words (0x... or decimal), one per line
#   -- mem     optional memory bytes in hex; r1 points at them, r2 = their length
#   -- result  expected r0 (0x hex or decimal)
#   -- error   or: the program must be refused (leap-bpfrun exits 1); when the
#              section has text, the refusal message on stderr must contain it
# '#' starts a comment; other sections are ignored. A file named SKIP in a
# data directory lists "name: reason" lines for tests that directory's
# source expects but this engine deliberately does not implement; they are
# reported as SKIP with the reason. Every file runs on each
# engine in $ENGINES (default: interp jit kernel) through leap-bpfrun, one TAP
# line per (file, engine). The kernel engine reports only the low 32 bits of
# r0, so only those are compared. leap-bpfrun exit 77 (engine unavailable, or
# the kernel verifier refused the program) is a SKIP carrying its first
# stderr line, never a pass.
#
# Environment: BUILD (default ./build), ENGINES, DATA_FILTER (substring of
# the file path relative to tests/bpf/data).
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
DATA="$ROOT/tests/bpf/data/conformance"
ASM="$BUILD/tests/tools/bpf_asm"
RUN="$BUILD/bin/leap-bpfrun"
ENGINES="${ENGINES:-interp jit kernel}"

if [ ! -x "$ASM" ]; then
	echo "1..0 # SKIP $ASM not built"
	exit 77
fi
if [ ! -x "$RUN" ]; then
	echo "1..0 # SKIP $RUN not built (it comes from the tools branch)"
	exit 77
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

mapfile -t files < <(cd "$DATA" && find . -name '*.data' | sed 's|^\./||' | LC_ALL=C sort |
	grep -F -- "${DATA_FILTER:-}")
read -ra engines <<<"$ENGINES"
echo "1..$((${#files[@]} * ${#engines[@]}))"

# Lowercase hex, no 0x, no leading zeros ("0" for zero).
norm_hex() {
	local v=${1,,}
	v=${v#0x}
	v=$(sed 's/^0*//' <<<"$v")
	echo "${v:-0}"
}

# Expected value: 0x hex or unsigned decimal, normalised like norm_hex.
norm_expected() {
	local v=$1
	if [[ "$v" == 0x* || "$v" == 0X* ]]; then
		norm_hex "$v"
	elif [[ "$v" =~ ^[0-9]+$ ]]; then
		norm_hex "$(printf '%x' "$v")"
	else
		echo "bad:$v"
	fi
}

low32() {
	local v=$1
	[ ${#v} -gt 8 ] && v=${v: -8}
	norm_hex "$v"
}

n=0
for f in "${files[@]}"; do
	name="${f%.data}"
	rm -f "$TMP"/sec.*
	# Split into sections; comments and blank lines dropped.
	awk -v dir="$TMP" '
		{ sub(/\r$/, ""); sub(/#.*/, "") }
		/^[ \t]*--/ {
			s = $0; sub(/^[ \t]*--[ \t]*/, "", s); sub(/[ \t]+$/, "", s)
			sec = (s == "asm" || s == "raw" || s == "mem" || s == "result" || s == "error") ? s : ""
			if (sec != "") printf "" > (dir "/sec." sec)
			next
		}
		/^[ \t]*$/ { next }
		sec != "" { print > (dir "/sec." sec) }
	' "$DATA/$f"

	hexfile="$TMP/prog.hex"
	asm_err=""
	if [ -e "$TMP/sec.raw" ]; then
		"$ASM" --raw <"$TMP/sec.raw" >"$hexfile" 2>"$TMP/asm.err" || asm_err=$(head -n1 "$TMP/asm.err")
	elif [ -e "$TMP/sec.asm" ]; then
		"$ASM" <"$TMP/sec.asm" >"$hexfile" 2>"$TMP/asm.err" || asm_err=$(head -n1 "$TMP/asm.err")
	else
		asm_err="no -- asm or -- raw section"
	fi
	mem=""
	[ -e "$TMP/sec.mem" ] && mem=$(tr -d ' \t\n' <"$TMP/sec.mem")
	want_error=0
	[ -e "$TMP/sec.error" ] && want_error=1
	expected=""
	if [ -e "$TMP/sec.result" ]; then
		expected=$(norm_expected "$(head -n1 "$TMP/sec.result" | tr -d ' \t')")
	fi

	skip_reason=""
	skipfile="$DATA/$(dirname "$f")/SKIP"
	if [ -e "$skipfile" ]; then
		skip_reason=$(awk -v t="$(basename "$name")" -F': ' '$1 == t { sub(/^[^:]*: /, ""); print; exit }' "$skipfile")
	fi

	for e in "${engines[@]}"; do
		n=$((n + 1))
		label="$name [$e]"
		if [ -n "$skip_reason" ]; then
			echo "ok $n $label # SKIP $skip_reason"
			continue
		fi
		if [ -n "$asm_err" ]; then
			echo "not ok $n $label"
			echo "# assembling: $asm_err"
			continue
		fi
		if [ "$want_error" -eq 0 ] && [ -z "$expected" ]; then
			echo "not ok $n $label"
			echo "# neither -- result nor -- error"
			continue
		fi
		args=(--engine "$e")
		[ -n "$mem" ] && args+=("$mem")
		timeout 20 "$RUN" "${args[@]}" <"$hexfile" >"$TMP/out" 2>"$TMP/err"
		rc=$?
		if [ "$rc" -eq 77 ]; then
			echo "ok $n $label # SKIP $(head -n1 "$TMP/err")"
			continue
		fi
		if [ "$want_error" -eq 1 ]; then
			want_msg=$(head -n1 "$TMP/sec.error" 2>/dev/null | sed 's/^[ \t]*//; s/[ \t]*$//')
			if [ "$rc" -eq 1 ] && { [ -z "$want_msg" ] || grep -qiF -- "$want_msg" "$TMP/err"; }; then
				echo "ok $n $label"
			elif [ "$rc" -eq 1 ]; then
				echo "not ok $n $label"
				echo "# refused, but not with '$want_msg': $(head -n1 "$TMP/err")"
			else
				echo "not ok $n $label"
				echo "# want rejection (exit 1), got exit $rc, stdout '$(head -c 80 "$TMP/out")'"
			fi
			continue
		fi
		got=$(norm_hex "$(tr -d ' \t\n' <"$TMP/out")")
		want=$expected
		if [ "$e" = kernel ]; then
			got=$(low32 "$got")
			want=$(low32 "$want")
		fi
		if [ "$rc" -eq 0 ] && [ "$got" = "$want" ]; then
			echo "ok $n $label"
		else
			echo "not ok $n $label"
			echo "# want $want, got '$got' (exit $rc): $(head -n1 "$TMP/err")"
		fi
	done
done
