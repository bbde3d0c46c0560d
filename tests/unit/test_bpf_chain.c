// SPDX-License-Identifier: BSD-3-Clause
/*
 * The chain JIT (bpf/jit_x86_chain.c) against its definition: running the
 * programs' own JITed code one after the other on the same context, stopping
 * at the first r0 other than 0. Same context bytes, same r0, the index of
 * the program that stopped it, pass counters of the programs that passed;
 * each program's stack zeroed as in its own run; subprograms, helpers'
 * registers (r6-r9) and the stack in links that need them.
 */
#include <errno.h>
#include <string.h>

#include "../../bpf/bpf_internal.h"
#include "leapio/bpf.h"
#include "tap.h"

#define I(c, d, s, o, i)                                                                           \
	((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define MOV64(d, s)	 I(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOVK(d, k)	 I(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, k)
#define ADDK(d, k)	 I(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, k)
#define MULK(d, k)	 I(BPF_ALU64 | BPF_MUL | BPF_K, d, 0, 0, k)
#define ADDX(d, s)	 I(BPF_ALU64 | BPF_ADD | BPF_X, d, s, 0, 0)
#define LDX(sz, d, s, o) I(BPF_LDX | BPF_MEM | (sz), d, s, o, 0)
#define STX(sz, d, s, o) I(BPF_STX | BPF_MEM | (sz), d, s, o, 0)
#define ST(sz, d, o, k)	 I(BPF_ST | BPF_MEM | (sz), d, 0, o, k)
#define JEQK(d, k, off)	 I(BPF_JMP | BPF_JEQ | BPF_K, d, 0, off, k)
#define CALL_LOCAL(off)	 I(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, off)
#define EXIT()		 I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define N(p)		 ((uint32_t)(sizeof(p) / sizeof((p)[0])))

#define CTX_WORDS 8

static struct leap_bpf_prog *load(const struct bpf_insn *p, uint32_t n)
{
	char err[256] = "";
	struct leap_bpf_prog_opts o = {
		.sz = sizeof(o), .ctx_size = CTX_WORDS * 8, .errbuf = err, .errbuf_sz = sizeof(err)
	};
	struct leap_bpf_prog *prog = NULL;

	if (leap_bpf_prog_create(p, n, &o, &prog) || leap_bpf_prog_jit(prog, err, sizeof(err))) {
		printf("# %s\n", err);
		leap_bpf_prog_free(prog);
		return NULL;
	}
	return prog;
}

/* ctx[0] = ctx[0] * 3 + 1 through r6-r9 (the chain's frame must save them); r0 = 0. */
static const struct bpf_insn p_scale[] = {
	MOV64(6, 1), LDX(BPF_DW, 7, 6, 0), MULK(7, 3), MOVK(8, 1), ADDX(7, 8),
	MOV64(9, 7), STX(BPF_DW, 6, 9, 0), MOVK(0, 0), EXIT(),
};

/*
 * ctx[1] = sub(ctx[1]) through the stack, sub(x) = x + 5 a subprogram;
 * r0 = ctx[4] (the test's verdict for this link).
 */
static const struct bpf_insn p_sub[] = {
	MOV64(6, 1),
	LDX(BPF_DW, 2, 6, 8),
	STX(BPF_DW, 10, 2, -16),
	LDX(BPF_DW, 1, 10, -16),
	CALL_LOCAL(3),
	STX(BPF_DW, 6, 0, 8),
	LDX(BPF_DW, 0, 6, 32),
	EXIT(),
	/* sub: */
	MOV64(0, 1),
	ADDK(0, 5),
	EXIT(),
};

/* ctx[3] = 0x77 (it ran); r0 = ctx[2]. Two exits, so its end is jumped to. */
static const struct bpf_insn p_mark[] = {
	ST(BPF_DW, 1, 24, 0x77), LDX(BPF_DW, 0, 1, 16), JEQK(0, 0, 1), EXIT(), MOVK(0, 0), EXIT(),
};

/* Writes its stack, passes. */
static const struct bpf_insn p_dirty[] = {
	ST(BPF_DW, 10, -8, 0x55),
	ST(BPF_DW, 10, -64, 0x66),
	MOVK(0, 0),
	EXIT(),
};

/* Returns what it reads from its stack without writing it: 0 when zeroed. */
static const struct bpf_insn p_peek[] = {
	LDX(BPF_DW, 0, 10, -8),
	LDX(BPF_DW, 2, 10, -64),
	ADDX(0, 2),
	EXIT(),
};

/*
 * Jumps of both sizes inside a link that sits behind another: a loop
 * (backward, short), a forward jump over 40 instructions (long), and one
 * over 2 (short). ctx[5] = 3 * 5 + 40 * 0 + 7 when ctx[6] == 0, r0 = 0.
 */
#define JNEK(d, k, off) I(BPF_JMP | BPF_JNE | BPF_K, d, 0, off, k)
#define SUBK(d, k)	I(BPF_ALU64 | BPF_SUB | BPF_K, d, 0, 0, k)
#define JA(off)		I(BPF_JMP | BPF_JA, 0, 0, off, 0)
#define X8(i)		i, i, i, i, i, i, i, i
static const struct bpf_insn p_jumps[] = {
	MOVK(3, 0),
	MOVK(2, 5),
	ADDK(3, 3), /* loop: */
	SUBK(2, 1),
	JNEK(2, 0, -3),
	LDX(BPF_DW, 4, 1, 48),
	JEQK(4, 0, 40), /* over the 40 below */
	X8(ADDK(3, 1000)),
	X8(ADDK(3, 1000)),
	X8(ADDK(3, 1000)),
	X8(ADDK(3, 1000)),
	X8(ADDK(3, 1000)),
	JA(2),
	ADDK(3, 500),
	ADDK(3, 500),
	ADDK(3, 7),
	STX(BPF_DW, 1, 3, 40),
	MOVK(0, 0),
	EXIT(),
};

/* The definition: each program's own code in turn. */
static struct leap_bpf_chain_ret run_loop(struct leap_bpf_prog *const *progs, uint64_t *pass,
					  uint32_t n, uint64_t *ctx)
{
	for (uint32_t k = 0; k < n; k++) {
		uint64_t r0 = leap_bpf_prog_jit_fn(progs[k])(ctx, CTX_WORDS * 8);

		if (r0)
			return (struct leap_bpf_chain_ret){ r0, k };
		pass[k]++;
	}
	return (struct leap_bpf_chain_ret){ 0, n };
}

/* Run ctx through the chain and a copy through the loop: same r0, link, bytes, counters. */
static void same_as_loop(const struct leap_bpf_chain *ch, struct leap_bpf_prog *const *progs,
			 uint32_t n, const uint64_t *pass, uint64_t *want_pass, uint64_t *ctx)
{
	uint64_t want[CTX_WORDS];
	struct leap_bpf_chain_ret r, w;

	memcpy(want, ctx, sizeof(want));
	w = run_loop(progs, want_pass, n, want);
	r = leap_bpf_chain_fn_of(ch)(ctx, CTX_WORDS * 8);
	T_ASSERT_U64_EQ(r.r0, w.r0);
	T_ASSERT_U64_EQ(r.link, w.link);
	T_ASSERT_MEM_EQ(ctx, want, sizeof(want));
	T_ASSERT_MEM_EQ(pass, want_pass, n * sizeof(*pass));
}

static void test_chain_matches_the_loop(void)
{
	struct leap_bpf_prog *progs[3] = { load(p_scale, N(p_scale)), load(p_sub, N(p_sub)),
					   load(p_mark, N(p_mark)) };
	uint64_t pass[3] = { 0 }, want_pass[3] = { 0 };
	uint64_t *pc[3] = { &pass[0], &pass[1], &pass[2] };
	/* ctx[4]: link 1's verdict, ctx[2]: link 2's. */
	static const uint64_t verdicts[][2] = { { 0, 0 }, { 0, 9 }, { 4, 0 }, { 4, 9 }, { 0, 0 } };
	struct leap_bpf_chain *ch = NULL;

	T_ASSERT(progs[0] && progs[1] && progs[2]);
	T_ASSERT_EQ(leap_bpf_chain_jit((const struct leap_bpf_prog *const *)progs, pc, 3, &ch), 0);
	T_ASSERT(leap_bpf_chain_size(ch) > 0);
	for (size_t i = 0; i < sizeof(verdicts) / sizeof(verdicts[0]); i++) {
		uint64_t ctx[CTX_WORDS] = { 7 + i, 100 * i, verdicts[i][1], 0, verdicts[i][0] };

		same_as_loop(ch, progs, 3, pass, want_pass, ctx);
	}
	/* And the figures themselves, so the definition cannot drift with the chain. */
	T_ASSERT_U64_EQ(pass[0], 5);
	T_ASSERT_U64_EQ(pass[1], 3); /* rounds 2 and 3 stopped at link 1 */
	T_ASSERT_U64_EQ(pass[2], 2); /* round 1 stopped at link 2 */
	leap_bpf_chain_free(ch);
	for (int k = 0; k < 3; k++)
		leap_bpf_prog_free(progs[k]);
}

static void test_stop_leaves_later_links_unrun(void)
{
	struct leap_bpf_prog *progs[2] = { load(p_sub, N(p_sub)), load(p_mark, N(p_mark)) };
	uint64_t pass[2] = { 0 }, *pc[2] = { &pass[0], &pass[1] };
	uint64_t ctx[CTX_WORDS] = { 0, 1, 0, 0, 0xdead };
	struct leap_bpf_chain *ch = NULL;
	struct leap_bpf_chain_ret r;

	T_ASSERT(progs[0] && progs[1]);
	T_ASSERT_EQ(leap_bpf_chain_jit((const struct leap_bpf_prog *const *)progs, pc, 2, &ch), 0);
	r = leap_bpf_chain_fn_of(ch)(ctx, sizeof(ctx));
	T_ASSERT_U64_EQ(r.r0, 0xdead);
	T_ASSERT_U64_EQ(r.link, 0);
	T_ASSERT_U64_EQ(ctx[1], 6);  /* link 0 ran, its subprogram too */
	T_ASSERT_U64_EQ(ctx[3], 0);  /* link 1 did not */
	T_ASSERT_U64_EQ(pass[0], 0); /* a stop is not a pass */
	T_ASSERT_U64_EQ(pass[1], 0);
	leap_bpf_chain_free(ch);
	leap_bpf_prog_free(progs[0]);
	leap_bpf_prog_free(progs[1]);
}

static void test_each_link_starts_on_a_zeroed_stack(void)
{
	struct leap_bpf_prog *progs[2] = { load(p_dirty, N(p_dirty)), load(p_peek, N(p_peek)) };
	uint64_t pass[2] = { 0 }, *pc[2] = { &pass[0], &pass[1] };
	uint64_t ctx[CTX_WORDS] = { 0 };
	struct leap_bpf_chain *ch = NULL;
	struct leap_bpf_chain_ret r;

	T_ASSERT(progs[0] && progs[1]);
	T_ASSERT(progs[1]->stack_depth[0] >= 64);
	T_ASSERT_EQ(leap_bpf_chain_jit((const struct leap_bpf_prog *const *)progs, pc, 2, &ch), 0);
	r = leap_bpf_chain_fn_of(ch)(ctx, sizeof(ctx));
	/* 0x55 + 0x66 if link 1 saw link 0's stack. */
	T_ASSERT_U64_EQ(r.r0, 0);
	T_ASSERT_U64_EQ(r.link, 2);
	T_ASSERT_U64_EQ(pass[0], 1);
	T_ASSERT_U64_EQ(pass[1], 1);
	leap_bpf_chain_free(ch);
	leap_bpf_prog_free(progs[0]);
	leap_bpf_prog_free(progs[1]);
}

static void test_jumps_of_both_sizes_behind_another_link(void)
{
	struct leap_bpf_prog *progs[3] = { load(p_mark, N(p_mark)), load(p_jumps, N(p_jumps)),
					   load(p_scale, N(p_scale)) };
	uint64_t pass[3] = { 0 }, want_pass[3] = { 0 };
	uint64_t *pc[3] = { &pass[0], &pass[1], &pass[2] };
	struct leap_bpf_chain *ch = NULL;

	T_ASSERT(progs[0] && progs[1] && progs[2]);
	T_ASSERT_EQ(leap_bpf_chain_jit((const struct leap_bpf_prog *const *)progs, pc, 3, &ch), 0);
	for (uint64_t skip = 0; skip < 2; skip++) {
		uint64_t ctx[CTX_WORDS] = { 2, 0, 0, 0, 0, 0, skip };

		same_as_loop(ch, progs, 3, pass, want_pass, ctx);
		T_ASSERT_U64_EQ(ctx[5], skip ? 15 + 40000 + 7 : 15 + 7);
		T_ASSERT_U64_EQ(ctx[0], 7);
	}
	leap_bpf_chain_free(ch);
	for (int k = 0; k < 3; k++)
		leap_bpf_prog_free(progs[k]);
}

static void test_refuses_what_it_cannot_chain(void)
{
	char err[256] = "";
	struct leap_bpf_prog_opts o = { .sz = sizeof(o), .errbuf = err, .errbuf_sz = sizeof(err) };
	struct leap_bpf_prog *jitted = load(p_mark, N(p_mark)), *plain = NULL;
	uint64_t pass[2] = { 0 }, *pc[2] = { &pass[0], &pass[1] };
	struct leap_bpf_chain *ch = (struct leap_bpf_chain *)&o;

	T_ASSERT(jitted != NULL);
	T_ASSERT_EQ(leap_bpf_prog_create(p_mark, N(p_mark), &o, &plain), 0);
	T_ASSERT_EQ(leap_bpf_chain_jit((const struct leap_bpf_prog *[]){ jitted }, pc, 0, &ch),
		    -EINVAL);
	T_ASSERT(ch == NULL);
	T_ASSERT_EQ(
	    leap_bpf_chain_jit((const struct leap_bpf_prog *[]){ jitted, plain }, pc, 2, &ch),
	    -EINVAL);
	T_ASSERT_EQ(leap_bpf_chain_jit((const struct leap_bpf_prog *[]){ jitted },
				       (uint64_t *[]){ NULL }, 1, &ch),
		    -EINVAL);
	leap_bpf_chain_free(NULL);
	leap_bpf_prog_free(jitted);
	leap_bpf_prog_free(plain);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_chain_matches_the_loop),
		TAP_CASE(test_stop_leaves_later_links_unrun),
		TAP_CASE(test_each_link_starts_on_a_zeroed_stack),
		TAP_CASE(test_jumps_of_both_sizes_behind_another_link),
		TAP_CASE(test_refuses_what_it_cannot_chain),
	};
	return tap_run(cases, TAP_N(cases));
}
