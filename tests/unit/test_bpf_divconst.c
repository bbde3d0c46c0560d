// SPDX-License-Identifier: BSD-3-Clause
/*
 * Unsigned 64-bit division by a constant: both engines replace the divide
 * with a reciprocal multiply that borrows rax/rdx (BPF r0 and r3) on the
 * JIT. Every destination register, dividends at the edges, and r0/r3 must
 * come out untouched unless they are the destination.
 */
#include "leapio/bpf.h"
#include "tap.h"

#define I(c, d, s, o, i)                                                                           \
	((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })

static void test_div_by_constant_every_register(void)
{
	static const uint64_t ns[] = {
		0, 1, 999999, 1000000, 123456789012345ull, ~0ull, 1ull << 63
	};
	static const int32_t ds[] = { 3, 7, 10, 641, 1000000, 0x7fffffff };

	for (unsigned int a = 0; a < sizeof(ns) / sizeof(ns[0]); a++) {
		for (unsigned int k = 0; k < sizeof(ds) / sizeof(ds[0]); k++) {
			for (uint8_t dst = 0; dst <= 9; dst++) {
				/* r0 = 5; r3 = 9; rD = n / d; r0 = rD ^ r0 * 3 ^ r3 * 5 */
				struct bpf_insn p[] = {
					I(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 5),
					I(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, 9),
					I(BPF_LD | BPF_IMM | BPF_DW, dst, 0, 0, (int32_t)ns[a]),
					I(0, 0, 0, 0, (int32_t)(ns[a] >> 32)),
					I(BPF_ALU64 | BPF_DIV | BPF_K, dst, 0, 0, ds[k]),
					I(BPF_ALU64 | BPF_MOV | BPF_X, 6, dst, 0, 0),
					I(BPF_ALU64 | BPF_MUL | BPF_K, 0, 0, 0, 3),
					I(BPF_ALU64 | BPF_MUL | BPF_K, 3, 0, 0, 5),
					I(BPF_ALU64 | BPF_XOR | BPF_X, 6, 0, 0, 0),
					I(BPF_ALU64 | BPF_XOR | BPF_X, 6, 3, 0, 0),
					I(BPF_ALU64 | BPF_MOV | BPF_X, 0, 6, 0, 0),
					I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
				};
				struct leap_bpf_prog_opts o = { .sz = sizeof(o) };
				struct leap_bpf_prog *prog = NULL;
				uint64_t q = ns[a] / (uint64_t)ds[k];
				uint64_t r0 = dst == 0 ? q : 5, r3 = dst == 3 ? q : 9;
				uint64_t want = q ^ (r0 * 3) ^ (r3 * 5), got_i, got_j;

				T_ASSERT_EQ(leap_bpf_prog_create(p, 12, &o, &prog), 0);
				T_ASSERT_EQ(leap_bpf_prog_jit(prog, NULL, 0), 0);
				got_i = leap_bpf_prog_run_interp(prog, NULL, 0);
				got_j = leap_bpf_prog_jit_fn(prog)(NULL, 0);
				leap_bpf_prog_free(prog);
				T_ASSERT_EQ(got_i, want);
				T_ASSERT_EQ(got_j, want);
			}
		}
	}
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_div_by_constant_every_register),
	};
	return tap_run(cases, TAP_N(cases));
}
