#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# Differential fuzzing of the engine (build/tests/tools/bpf_fuzz): random
# kernel-verifiable programs run on the interpreter, the JIT and the kernel
# must agree on r0, the map value and the context. A short fixed-seed run
# here; `make bench` runs a million programs. FUZZ_PROGRAMS overrides the
# count. Also checks that the fuzzer notices a wrong result at all.

bats_require_minimum_version 1.5.0

setup() {
	FUZZ="${BUILD:-build}/tests/tools/bpf_fuzz"
	[ -x "$FUZZ" ] || skip "bpf_fuzz not built"
	COUNT="${FUZZ_PROGRAMS:-2000}"
}

# summary_field NAME: the number after "NAME: " on the summary line.
summary_field() {
	sed -n "s/.*$1: \([0-9]*\).*/\1/p" <<<"$output" | tail -n1
}

@test "interpreter, JIT and kernel agree on ${FUZZ_PROGRAMS:-2000} random programs (seed 20250101)" {
	run --separate-stderr "$FUZZ" --seed 20250101 --count "$COUNT"
	[ "$status" -ne 77 ] || skip "$stderr"
	echo "$output"
	echo "$stderr" | tail -n 60
	[ "$status" -eq 0 ]
	[ "$(summary_field mismatches)" -eq 0 ]
	[ "$(summary_field programs)" -ge "$COUNT" ]
	# Under 1 % of generated programs may be refused by the verifier.
	[ $(($(summary_field kernel-rejected) * 100)) -lt "$COUNT" ]
}

@test "interpreter and JIT agree on 5000 more programs without the kernel" {
	run --separate-stderr "$FUZZ" --seed 7 --count 5000 --no-kernel
	[ "$status" -ne 77 ] || skip "$stderr"
	echo "$stderr" | tail -n 60
	[ "$status" -eq 0 ]
	[ "$(summary_field mismatches)" -eq 0 ]
	[ "$(summary_field programs)" -eq 5000 ]
}

@test "a corrupted engine result is reported with seed, index and program" {
	run --separate-stderr "$FUZZ" --seed 3 --count 50 --inject-fault 17
	[ "$status" -ne 77 ] || skip "$stderr"
	[ "$status" -eq 1 ]
	[ "$(summary_field mismatches)" -eq 1 ]
	[[ "$stderr" == *"MISMATCH seed 3 program 17"* ]]
	[[ "$stderr" == *"replay: bpf_fuzz --seed 3 --first 17 --count 1"* ]]
	[[ "$stderr" == *"map value differs"* ]]
}

@test "usage error: exit 2" {
	run "$FUZZ" --count
	[ "$status" -eq 2 ]
	run "$FUZZ" extra-arg
	[ "$status" -eq 2 ]
}
