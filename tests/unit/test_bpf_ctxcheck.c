// SPDX-License-Identifier: BSD-3-Clause
/*
 * The context-bounds analysis (bpf/ctxcheck.c) on hand-built programs, one
 * case per way a context pointer can travel: constant arithmetic (directly
 * or through scalar registers), arithmetic we cannot follow, spills through
 * a copy of r10, a callee writing into or reading from its caller's stack,
 * and atomics moving the pointer into or out of a stack slot. Each case has
 * an out-of-bounds variant that must be rejected and an in-bounds variant
 * that must load, so false rejections show as well as misses.
 */
#include <errno.h>
#include <string.h>

#include "leapio/bpf.h"
#include "tap.h"

#define I(c, d, s, o, i)                                                                           \
	((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define MOV64(d, s)		I(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV32(d, s)		I(BPF_ALU | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOVK(d, k)		I(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, k)
#define ADDK(d, k)		I(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, k)
#define SUBK(d, k)		I(BPF_ALU64 | BPF_SUB | BPF_K, d, 0, 0, k)
#define ADDX(d, s)		I(BPF_ALU64 | BPF_ADD | BPF_X, d, s, 0, 0)
#define SUBX(d, s)		I(BPF_ALU64 | BPF_SUB | BPF_X, d, s, 0, 0)
#define MULK(d, k)		I(BPF_ALU64 | BPF_MUL | BPF_K, d, 0, 0, k)
#define ANDK(d, k)		I(BPF_ALU64 | BPF_AND | BPF_K, d, 0, 0, k)
#define LDX(sz, d, s, o)	I(BPF_LDX | BPF_MEM | (sz), d, s, o, 0)
#define STX(sz, d, s, o)	I(BPF_STX | BPF_MEM | (sz), d, s, o, 0)
#define ST(sz, d, o, k)		I(BPF_ST | BPF_MEM | (sz), d, 0, o, k)
#define ATOMIC(sz, d, s, o, op) I(BPF_STX | BPF_ATOMIC | (sz), d, s, o, op)
#define CALL_LOCAL(off)		I(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, off)
#define JEQK(d, k, off)		I(BPF_JMP | BPF_JEQ | BPF_K, d, 0, off, k)
#define JA(off)			I(BPF_JMP | BPF_JA, 0, 0, off, 0)
#define EXIT()			I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define N(p)			((uint32_t)(sizeof(p) / sizeof((p)[0])))

#define CTX 64 /* bytes of context in every case */

static char err[256];

static int create(const struct bpf_insn *p, uint32_t n)
{
	struct leap_bpf_prog_opts o = {
		.sz = sizeof(o), .ctx_size = CTX, .errbuf = err, .errbuf_sz = sizeof(err)
	};
	struct leap_bpf_prog *prog = NULL;
	int rc;

	err[0] = 0;
	rc = leap_bpf_prog_create(p, n, &o, &prog);
	if (rc)
		printf("# %s\n", err);
	leap_bpf_prog_free(prog);
	return rc;
}

/* Set the `off` of instruction `at` to in-bounds, then out-of-bounds, and check both. */
#define BOTH(p, at, good, bad, want)                                                               \
	do {                                                                                       \
		(p)[at].off = (good);                                                              \
		T_ASSERT_EQ(create(p, N(p)), 0);                                                   \
		(p)[at].off = (bad);                                                               \
		T_ASSERT_EQ(create(p, N(p)), -EINVAL);                                             \
		T_ASSERT(strstr(err, want) != NULL);                                               \
	} while (0)

static void test_constant_arithmetic_nets_out(void)
{
	/* r1 += 8; r1 -= 8: back at offset 0. */
	struct bpf_insn a[] = { ADDK(1, 8), SUBK(1, 8), LDX(BPF_DW, 0, 1, 0), EXIT() };
	/* r3 = 8; r1 += r3: the offset comes through a scalar register. */
	struct bpf_insn b[] = { MOVK(3, 4), MULK(3, 2), ADDX(1, 3), LDX(BPF_W, 0, 1, 0), EXIT() };
	/* r2 = 16; r2 += r1: constant plus pointer. */
	struct bpf_insn c[] = { MOVK(2, 16), ADDX(2, 1), LDX(BPF_W, 0, 2, 0), EXIT() };
	/* r4 = -8; r1 -= r4, then a copy. */
	struct bpf_insn d[] = { MOVK(4, -8), SUBX(1, 4), MOV64(5, 1), LDX(BPF_W, 0, 5, 0), EXIT() };

	BOTH(a, 2, 56, 57, "insn 2: context access at offset 57 size 8");
	BOTH(b, 3, 52, 53, "insn 3: context access at offset 61 size 4");
	BOTH(c, 2, 44, 45, "insn 2: context access at offset 61 size 4");
	BOTH(d, 3, 52, 53, "insn 3: context access at offset 61 size 4");
	/* Out through a large positive offset and back through a negative one. */
	struct bpf_insn e[] = { ADDK(1, 4096), LDX(BPF_B, 0, 1, -4096), EXIT() };
	BOTH(e, 1, -4033, -4032, "insn 1: context access at offset 64 size 1");
}

static void test_arithmetic_we_cannot_follow_is_rejected(void)
{
	/* An unknown scalar added to the pointer. */
	struct bpf_insn unknown[] = { LDX(BPF_W, 3, 1, 0), ADDX(1, 3), LDX(BPF_B, 0, 1, 0),
				      EXIT() };
	/* A no-op mask, a 32-bit copy, and ctx - ctx: all lose the offset. */
	struct bpf_insn mask[] = { ANDK(1, -1), LDX(BPF_B, 0, 1, 0), EXIT() };
	struct bpf_insn trunc[] = { MOV32(2, 1), LDX(BPF_B, 0, 2, 0), EXIT() };
	struct bpf_insn diff[] = { MOV64(2, 1), SUBX(2, 1), ADDX(2, 1), LDX(BPF_B, 0, 2, 0),
				   EXIT() };
	/* Different offsets on two paths merge into an unknown one. */
	struct bpf_insn paths[] = { LDX(BPF_W, 3, 1, 0), JEQK(3, 0, 1), ADDK(1, 8),
				    LDX(BPF_B, 0, 1, 0), EXIT() };

	T_ASSERT_EQ(create(unknown, N(unknown)), -EINVAL);
	T_ASSERT(strstr(err, "insn 2: context access through a pointer whose offset is not known"));
	T_ASSERT_EQ(create(mask, N(mask)), -EINVAL);
	T_ASSERT(strstr(err, "insn 1: context access through a pointer whose offset"));
	T_ASSERT_EQ(create(trunc, N(trunc)), -EINVAL);
	T_ASSERT(strstr(err, "insn 1: context access through a pointer whose offset"));
	T_ASSERT_EQ(create(diff, N(diff)), -EINVAL);
	T_ASSERT(strstr(err, "insn 3: context access through a pointer whose offset"));
	T_ASSERT_EQ(create(paths, N(paths)), -EINVAL);
	T_ASSERT(strstr(err, "insn 3: context access through a pointer whose offset"));
	/* Computing such a value without dereferencing it is fine. */
	unknown[2] = MOVK(0, 0);
	T_ASSERT_EQ(create(unknown, N(unknown)), 0);
	/* The same offset on both paths stays known. */
	paths[2] = ADDK(1, 0);
	T_ASSERT_EQ(create(paths, N(paths)), 0);
}

static void test_spill_through_copied_stack_pointer(void)
{
	struct bpf_insn p[] = {
		MOV64(2, 10),
		ADDK(2, -16),
		STX(BPF_DW, 2, 1, 0),
		MOVK(1, 0),
		LDX(BPF_DW, 3, 10, -16),
		LDX(BPF_W, 0, 3, 60),
		EXIT(),
	};
	/* The stack offset itself through a scalar register. */
	struct bpf_insn q[] = {
		MOVK(4, -24),
		MOV64(2, 10),
		ADDX(2, 4),
		STX(BPF_DW, 2, 1, 8),
		LDX(BPF_DW, 3, 10, -16),
		LDX(BPF_W, 0, 3, 60),
		EXIT(),
	};

	BOTH(p, 5, 60, 61, "insn 5: context access at offset 61 size 4");
	BOTH(q, 5, 60, 100, "insn 5: context access at offset 100 size 4");
	/* Half a spilled pointer is not a pointer we can follow. */
	p[4] = LDX(BPF_W, 3, 10, -16);
	p[5].off = 0;
	T_ASSERT_EQ(create(p, N(p)), -EINVAL);
	T_ASSERT(strstr(err, "insn 5: context access through a pointer whose offset"));
	/* r10 accesses stay inside the frame. */
	struct bpf_insn out[] = { LDX(BPF_DW, 0, 10, -8), EXIT() };
	BOTH(out, 0, -512, 0, "insn 0: stack access at offset 0 size 8 outside the 512-byte frame");
}

static void test_callee_writes_ctx_into_callers_stack(void)
{
	struct bpf_insn p[] = {
		/* main: r2 = &slot; f(ctx, &slot); reload the slot and dereference it */
		MOV64(2, 10),
		ADDK(2, -16),
		ST(BPF_DW, 10, -16, 0),
		CALL_LOCAL(3),
		LDX(BPF_DW, 3, 10, -16),
		LDX(BPF_W, 0, 3, 60),
		EXIT(),
		/* f: *r2 = r1 */
		STX(BPF_DW, 2, 1, 0),
		MOVK(0, 0),
		EXIT(),
	};

	BOTH(p, 5, 60, 61, "insn 5: context access at offset 61 size 4");
	/* The callee stores a scalar instead: the slot holds no pointer. */
	p[7] = ST(BPF_DW, 2, 0, 0);
	p[5].off = 1000;
	T_ASSERT_EQ(create(p, N(p)), 0);
}

static void test_callee_reads_ctx_from_callers_stack(void)
{
	struct bpf_insn p[] = {
		/* main: spill ctx, pass a pointer to the spill */
		STX(BPF_DW, 10, 1, -8),
		MOV64(1, 10),
		ADDK(1, -8),
		CALL_LOCAL(1),
		EXIT(),
		/* f: r3 = *r1; load through it */
		LDX(BPF_DW, 3, 1, 0),
		LDX(BPF_W, 0, 3, 60),
		EXIT(),
	};

	BOTH(p, 6, 60, 61, "insn 6: context access at offset 61 size 4");
	/* A pointer returned to the caller is followed as well. */
	struct bpf_insn ret[] = {
		CALL_LOCAL(2), LDX(BPF_W, 0, 0, 60), EXIT(), ADDK(1, 4), MOV64(0, 1), EXIT(),
	};
	BOTH(ret, 1, 56, 57, "insn 1: context access at offset 61 size 4");
}

static void test_atomics_move_ctx_through_stack(void)
{
	/* xchg puts ctx into a slot; a later load takes it out. */
	struct bpf_insn xin[] = {
		MOV64(2, 1),
		ST(BPF_DW, 10, -8, 0),
		ATOMIC(BPF_DW, 10, 2, -8, BPF_XCHG),
		LDX(BPF_DW, 3, 10, -8),
		LDX(BPF_W, 0, 3, 60),
		EXIT(),
	};
	/* xchg takes a spilled ctx out into a register. */
	struct bpf_insn xout[] = {
		STX(BPF_DW, 10, 1, -8), MOVK(2, 0), ATOMIC(BPF_DW, 10, 2, -8, BPF_XCHG),
		LDX(BPF_W, 0, 2, 60),	EXIT(),
	};
	/* cmpxchg may store ctx into the slot... */
	struct bpf_insn cin[] = {
		MOVK(0, 0),
		ST(BPF_DW, 10, -8, 0),
		ATOMIC(BPF_DW, 10, 1, -8, BPF_CMPXCHG),
		LDX(BPF_DW, 3, 10, -8),
		LDX(BPF_W, 0, 3, 60),
		EXIT(),
	};
	/* ...and returns the old value (a spilled ctx) in r0. */
	struct bpf_insn cout[] = {
		STX(BPF_DW, 10, 1, -8),
		MOVK(0, 0),
		MOVK(2, 0),
		ATOMIC(BPF_DW, 10, 2, -8, BPF_CMPXCHG),
		LDX(BPF_W, 0, 0, 60),
		EXIT(),
	};
	/* A fetching add hands the old value (ctx) to its source register. */
	struct bpf_insn fout[] = {
		STX(BPF_DW, 10, 1, -8), MOVK(2, 0), ATOMIC(BPF_DW, 10, 2, -8, BPF_ADD | BPF_FETCH),
		LDX(BPF_W, 0, 2, 60),	EXIT(),
	};
	/* Adding ctx into a zeroed slot leaves a pointer with no known offset. */
	struct bpf_insn add[] = {
		ST(BPF_DW, 10, -8, 0),
		ATOMIC(BPF_DW, 10, 1, -8, BPF_ADD),
		LDX(BPF_DW, 3, 10, -8),
		LDX(BPF_B, 0, 3, 0),
		EXIT(),
	};
	/* Atomics through the context pointer are bounds-checked too. */
	struct bpf_insn on_ctx[] = { MOVK(2, 1), ATOMIC(BPF_W, 1, 2, 60, BPF_ADD), MOVK(0, 0),
				     EXIT() };

	BOTH(xin, 4, 60, 61, "insn 4: context access at offset 61 size 4");
	BOTH(xout, 3, 60, 61, "insn 3: context access at offset 61 size 4");
	BOTH(cin, 4, 60, 61, "insn 4: context access at offset 61 size 4");
	BOTH(cout, 4, 60, 61, "insn 4: context access at offset 61 size 4");
	BOTH(fout, 3, 60, 61, "insn 3: context access at offset 61 size 4");
	T_ASSERT_EQ(create(add, N(add)), -EINVAL);
	T_ASSERT(strstr(err, "insn 3: context access through a pointer whose offset"));
	BOTH(on_ctx, 1, 60, 61, "insn 1: context access at offset 61 size 4");
}

static void test_ctx_stored_through_unknown_memory(void)
{
	/*
	 * ctx stored through a pointer the analysis cannot name (here the
	 * context itself), then loaded back through such a pointer.
	 */
	struct bpf_insn p[] = {
		STX(BPF_DW, 1, 1, 0),
		LDX(BPF_DW, 3, 1, 0),
		LDX(BPF_W, 0, 3, 60),
		EXIT(),
	};

	BOTH(p, 2, 60, 61, "insn 2: context access at offset 61 size 4");
}

/* Create with ctx_size `ctx` and return the context words read and written. */
static int masks(const struct bpf_insn *p, uint32_t n, uint32_t ctx, uint64_t *rd, uint64_t *wr)
{
	struct leap_bpf_prog_opts o = {
		.sz = sizeof(o), .ctx_size = ctx, .errbuf = err, .errbuf_sz = sizeof(err)
	};
	struct leap_bpf_helpers h = { .fn = { [BPF_FUNC_ktime_get_ns] = (leap_bpf_helper_fn)1 } };
	struct leap_bpf_prog *prog = NULL;
	int rc;

	o.helpers = &h;
	rc = leap_bpf_prog_create(p, n, &o, &prog);
	if (!rc) {
		*rd = leap_bpf_prog_ctx_reads(prog);
		*wr = leap_bpf_prog_ctx_writes(prog);
	} else {
		printf("# %s\n", err);
	}
	leap_bpf_prog_free(prog);
	return rc;
}

static void test_ctx_word_masks(void)
{
	uint64_t rd = 0, wr = 0;
	/*
	 * A word read directly, one read through an offset copy, a store, an
	 * atomic (both), a word read on one path only (may-read counts), one
	 * read in a callee.
	 */
	struct bpf_insn p[] = {
		LDX(BPF_W, 0, 1, 4),		   /* word 0 */
		MOV64(4, 1),			   /* r4 = ctx + 24 */
		ADDK(4, 24),			   /* */
		LDX(BPF_H, 0, 4, 6),		   /* word 3 */
		ST(BPF_W, 1, 20, 7),		   /* word 2 (write) */
		MOVK(2, 1),			   /* */
		ATOMIC(BPF_DW, 1, 2, 48, BPF_ADD), /* word 6 (both) */
		JEQK(0, 0, 1),			   /* */
		LDX(BPF_B, 0, 1, 63),		   /* word 7, one path */
		CALL_LOCAL(1),			   /* f */
		EXIT(),				   /* */
		LDX(BPF_DW, 0, 1, 8),		   /* f: word 1 */
		EXIT(),
	};
	/* The context handed to a helper: it may touch all of it. */
	struct bpf_insn helper[] = { I(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_ktime_get_ns),
				     MOVK(0, 0), EXIT() };

	T_ASSERT_EQ(masks(p, N(p), CTX, &rd, &wr), 0);
	T_ASSERT_EQ(rd, (1ull << 0) | (1ull << 1) | (1ull << 3) | (1ull << 6) | (1ull << 7));
	T_ASSERT_EQ(wr, (1ull << 2) | (1ull << 6));
	/* Unchecked (ctx_size 0): everything. */
	T_ASSERT_EQ(masks(p, N(p), 0, &rd, &wr), 0);
	T_ASSERT_EQ(rd, ~0ull);
	T_ASSERT_EQ(wr, ~0ull);
	T_ASSERT_EQ(masks(helper, N(helper), CTX, &rd, &wr), 0);
	T_ASSERT_EQ(rd, ~0ull);
	T_ASSERT_EQ(wr, ~0ull);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_constant_arithmetic_nets_out),
		TAP_CASE(test_arithmetic_we_cannot_follow_is_rejected),
		TAP_CASE(test_spill_through_copied_stack_pointer),
		TAP_CASE(test_callee_writes_ctx_into_callers_stack),
		TAP_CASE(test_callee_reads_ctx_from_callers_stack),
		TAP_CASE(test_atomics_move_ctx_through_stack),
		TAP_CASE(test_ctx_stored_through_unknown_memory),
		TAP_CASE(test_ctx_word_masks),
	};
	return tap_run(cases, TAP_N(cases));
}
