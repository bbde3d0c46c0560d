#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# leap-bpfrun, the engine's command line (and bpf_conformance plugin): the
# same programs give the same r0 on the interpreter, the JIT and the kernel
# (which reports only the low 32 bits), the memory argument reaches r1/r2,
# malformed input and rejected programs give the documented exit codes and
# messages, and --repeat reports a time per call.
#
# Instruction hex: opcode, dst|src<<4, off (le16), imm (le32).

bats_require_minimum_version 1.5.0

setup() {
	BPFRUN="${BUILD:-build}/bin/leap-bpfrun"
	[ -x "$BPFRUN" ] || skip "leap-bpfrun not built"
}

EXIT=9500000000000000

# name | program | memory | expected r0 (64-bit, hex) | also on kernel (y/n)
CASES=(
	"mov32 r0,1|b400000001000000 $EXIT||1|y"
	"mov64 r0,-1|b7000000ffffffff $EXIT||ffffffffffffffff|y"
	"ldxdw r0,[r1]|7910000000000000 $EXIT|0102030405060708|807060504030201|y"
	"ldxb r0,[r1+3]|7110030000000000 $EXIT|0102030405060708|4|y"
	"r0 = r2 (memory length)|bf20000000000000 $EXIT|0a0b0c0d0e|5|n"
	"div by zero is 0|b70000000a000000 b703000000000000 3f30000000000000 $EXIT||0|y"
	"mod by zero keeps dividend|b70000000a000000 b703000000000000 9f30000000000000 $EXIT||a|y"
	"sdiv -7 by 2 (v4)|b7000000f9ffffff b703000002000000 3f30010000000000 $EXIT||fffffffffffffffd|y"
	"stack store then load|b703000034120000 7b3af8ff00000000 79a0f8ff00000000 $EXIT||1234|y"
	"ld_imm64|1800000088776655 0000000044332211 $EXIT||1122334455667788|y"
	"jeq forward skips|b700000001000000 1500010001000000 b700000002000000 $EXIT||1|y"
)

# check_engine ENGINE: every case on one engine; kernel compares the low 32 bits.
check_engine() {
	local engine=$1 c name prog mem want kern got
	for c in "${CASES[@]}"; do
		IFS='|' read -r name prog mem want kern <<<"$c"
		if [ "$engine" = kernel ]; then
			[ "$kern" = y ] || continue
			want=$(printf '%x' $((0x$want & 0xffffffff)))
		fi
		run --separate-stderr "$BPFRUN" --engine "$engine" $mem <<<"$prog"
		if [ "$status" -eq 77 ]; then
			skip "$engine engine unavailable: $stderr"
		fi
		if [ "$status" -ne 0 ] || [ "$output" != "$want" ]; then
			echo "case '$name' on $engine: exit $status, r0 '$output', want '$want'"
			echo "stderr: $stderr"
			return 1
		fi
	done
}

@test "interpreter: r0 for ALU, memory, r2 length, division by zero, sdiv, stack, jumps" {
	check_engine interp
}

@test "jit: same results as the interpreter" {
	check_engine jit
}

@test "kernel: same low 32 bits through BPF_PROG_TEST_RUN" {
	check_engine kernel
}

@test "default engine is the interpreter; whitespace in the hex is ignored" {
	run --separate-stderr "$BPFRUN" <<<"b4 00 00 00 2a 00 00 00
	95 00 00 00 00 00 00 00"
	[ "$status" -eq 0 ]
	[ "$output" = 2a ]
}

@test "kernel: the memory is the syscall program's context" {
	# r0 = *(u32 *)(r1 + 4)
	run --separate-stderr "$BPFRUN" --engine kernel 00000000efbeadde <<<"6110040000000000 $EXIT"
	[ "$status" -ne 77 ] || skip "kernel BPF unavailable: $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = deadbeef ]
}

@test "bad hex on stdin: exit 2 with a message" {
	run --separate-stderr "$BPFRUN" <<<"b40000000100zz00 $EXIT"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"bad hex"* ]]
	[ -z "$output" ]
}

@test "program not a multiple of 8 bytes: exit 2" {
	run --separate-stderr "$BPFRUN" <<<"b400000001000000 950000"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"multiple of 8"* ]]
}

@test "bad hex in the memory argument: exit 2" {
	run --separate-stderr "$BPFRUN" 0x12 <<<"b400000001000000 $EXIT"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"memory"* ]]
}

@test "usage errors: unknown engine, bad --repeat, two memory arguments" {
	run --separate-stderr "$BPFRUN" --engine ebpf <<<"$EXIT"
	[ "$status" -eq 2 ]
	run --separate-stderr "$BPFRUN" --repeat 0 <<<"$EXIT"
	[ "$status" -eq 2 ]
	run --separate-stderr "$BPFRUN" 00 11 <<<"$EXIT"
	[ "$status" -eq 2 ]
}

@test "validator rejects a jump out of range: exit 1, message names the insn" {
	# ja +5; exit
	run --separate-stderr "$BPFRUN" --engine interp <<<"0500050000000000 $EXIT"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"insn"* ]]
	[ -z "$output" ]
}

@test "validator rejects a program that falls off the end: exit 1" {
	run --separate-stderr "$BPFRUN" --engine jit <<<"b400000001000000"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"insn"* ]]
}

@test "kernel verifier rejection (uninitialised r3): exit 77 with the verifier log" {
	# r0 = r3; exit
	run --separate-stderr "$BPFRUN" --engine kernel <<<"bf30000000000000 $EXIT"
	[ "$status" -eq 77 ]
	[[ "$stderr" == *"R3 !read_ok"* ]]
	[ -z "$output" ]
}

@test "--repeat prints r0 once and ns/call on stderr, on every engine" {
	local engine
	for engine in interp jit kernel; do
		run --separate-stderr "$BPFRUN" --engine $engine --repeat 1000 <<<"b400000007000000 $EXIT"
		if [ "$status" -eq 77 ]; then
			echo "# $engine unavailable: $stderr" >&3
			continue
		fi
		[ "$status" -eq 0 ]
		[ "$output" = 7 ]
		[[ "$stderr" =~ ns/call:\ [0-9]+\.[0-9] ]]
	done
}

@test "map helpers are refused for raw programs (no maps to pass); other helpers run" {
	# call map_lookup_elem; exit
	run --separate-stderr "$BPFRUN" --engine interp <<<"8500000001000000 $EXIT"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"map_lookup_elem"* ]]
	# r0 = ktime_get_ns() >> 1 (kept positive for the test); a clock is never 0
	local engine
	for engine in interp jit kernel; do
		run --separate-stderr "$BPFRUN" --engine $engine <<<"8500000005000000 7700000001000000 $EXIT"
		[ "$status" -ne 77 ] || continue
		[ "$status" -eq 0 ]
		[[ "$output" =~ ^[0-9a-f]+$ ]]
		[ "$output" != 0 ]
	done
}

# Two programs kernel 6.18 runs wrongly (found by tests/tools/bpf_fuzz; see
# bpf_fuzz_gen.h). Our engines must give the ISA's answer.
@test "32-bit cmpxchg zero-extends r0 on every path (kernel 6.18 does not)" {
	local prog="b7000000ffffffff 630af8ff00000000 6118000000000000 c30af8fff1000000
		b608010005000000 8510000002000000 7700000020000000 $EXIT b700000007000000 $EXIT"
	local engine
	for engine in interp jit; do
		run --separate-stderr "$BPFRUN" --engine $engine 00000000 <<<"$prog"
		[ "$status" -ne 77 ] || continue
		[ "$status" -eq 0 ]
		[ "$output" = 0 ]
	done
}

@test "a value fetched from the stack by an atomic decides a branch (kernel 6.18 prunes it)" {
	local j=0500000000000000
	local prog="7116000000000000 $j $j $j $j $j $j $j $j $j $j b7020000ff7f0000
		1506010000000000 b402000000000080 8510000003000000 26000100ffffff7f
		b700000063000000 $EXIT b7000000ff7f0000 7b2af8ff00000000 b704000001000000
		c34af8fff1000000 $EXIT"
	local engine
	for engine in interp jit; do
		run --separate-stderr "$BPFRUN" --engine $engine 00000000 <<<"$prog"
		[ "$status" -ne 77 ] || continue
		[ "$status" -eq 0 ]
		[ "$output" = 63 ]
	done
}
