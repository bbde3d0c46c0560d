// SPDX-License-Identifier: BSD-3-Clause
/*
 * leap_bpf_prog_opts.single_writer: the JIT drops the lock prefix of the
 * atomics that return nothing (add, or, and, xor), 32- and 64-bit, and
 * only of those: a fetching add and cmpxchg keep theirs. Same results as
 * the interpreter either way; the code is one byte shorter per dropped
 * prefix and the byte is really gone.
 */
#include <string.h>

#include "leapio/bpf.h"
#include "tap.h"

#define I(c, d, s, o, i)                                                                           \
	((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define ATOMIC(sz, op) I(BPF_STX | BPF_ATOMIC | (sz), 10, 1, -8, (op))

/* *(fp-8) = 0xf0f0; r1 = 0x0ff5; four RMWs of `sz`; r0 = *(fp-8) (+ a fetch/cmpxchg tail). */
static struct leap_bpf_prog *build(bool single_writer, int sz, bool tail, size_t *code)
{
	struct bpf_insn p[] = {
		I(BPF_ST | BPF_MEM | BPF_DW, 10, 0, -8, 0xf0f0),
		I(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 0x0ff5),
		ATOMIC(sz, BPF_ADD),
		ATOMIC(sz, BPF_OR),
		ATOMIC(sz, BPF_AND),
		ATOMIC(sz, BPF_XOR),
		/* tail: r1 = fetch_add(fp-8, r1); r0 = 7; cmpxchg(fp-8, r0 -> r1) */
		ATOMIC(sz, BPF_ADD | BPF_FETCH),
		I(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 7),
		ATOMIC(sz, BPF_CMPXCHG),
		I(BPF_LDX | BPF_MEM | BPF_DW, 0, 10, -8, 0),
		I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	struct leap_bpf_prog_opts o = { .sz = sizeof(o), .single_writer = single_writer };
	struct leap_bpf_prog *prog = NULL;
	uint32_t n = sizeof(p) / sizeof(p[0]);

	if (!tail) { /* drop the three tail instructions */
		memmove(&p[6], &p[9], 2 * sizeof(p[0]));
		n -= 3;
	}
	if (leap_bpf_prog_create(p, n, &o, &prog) || leap_bpf_prog_jit(prog, NULL, 0))
		return NULL;
	*code = leap_bpf_prog_jit_size(prog);
	return prog;
}

static int count_lock(const struct leap_bpf_prog *prog, size_t size)
{
	const uint8_t *c = (const uint8_t *)(uintptr_t)leap_bpf_prog_jit_fn(prog);
	int n = 0;

	/* 0xf0 also occurs inside other encodings: compare counts between two builds only. */
	for (size_t i = 0; i < size; i++)
		n += c[i] == 0xf0;
	return n;
}

static void test_counters_unlocked_rest_locked(void)
{
	for (int t = 0; t < 2; t++) {
		for (int w = 0; w < 2; w++) {
			int sz = w ? BPF_DW : BPF_W;
			size_t locked_sz, plain_sz;
			struct leap_bpf_prog *locked = build(false, sz, t, &locked_sz);
			struct leap_bpf_prog *plain = build(true, sz, t, &plain_sz);

			T_ASSERT(locked && plain);
			/* Four prefixes gone; the fetch-add and cmpxchg of the tail keep theirs. */
			T_ASSERT_EQ(locked_sz - plain_sz, 4);
			T_ASSERT_EQ(count_lock(locked, locked_sz) - count_lock(plain, plain_sz), 4);
			T_ASSERT_EQ(leap_bpf_prog_jit_fn(plain)(NULL, 0),
				    leap_bpf_prog_run_interp(plain, NULL, 0));
			T_ASSERT_EQ(leap_bpf_prog_jit_fn(locked)(NULL, 0),
				    leap_bpf_prog_jit_fn(plain)(NULL, 0));
			leap_bpf_prog_free(locked);
			leap_bpf_prog_free(plain);
		}
	}
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_counters_unlocked_rest_locked),
	};
	return tap_run(cases, TAP_N(cases));
}
