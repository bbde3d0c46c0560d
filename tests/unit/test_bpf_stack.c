// SPDX-License-Identifier: BSD-3-Clause
/*
 * The BPF stack is zeroed at function entry, as deep as the function may
 * read bytes it has not surely written (computed at validation), on the
 * interpreter and the JIT alike: a program reading a slot it never wrote
 * sees 0, never what an earlier run (another tenant's I/O) left there.
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
#define LDX(sz, d, s, o) I(BPF_LDX | BPF_MEM | (sz), d, s, o, 0)
#define STX(sz, d, s, o) I(BPF_STX | BPF_MEM | (sz), d, s, o, 0)
#define ST(sz, d, o, k)	 I(BPF_ST | BPF_MEM | (sz), d, 0, o, k)
#define JNEK(d, k, off)	 I(BPF_JMP | BPF_JNE | BPF_K, d, 0, off, k)
#define JEQK(d, k, off)	 I(BPF_JMP | BPF_JEQ | BPF_K, d, 0, off, k)
#define CALL_LOCAL(off)	 I(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, off)
#define EXIT()		 I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define N(p)		 ((uint32_t)(sizeof(p) / sizeof((p)[0])))

static struct leap_bpf_prog *load(const struct bpf_insn *p, uint32_t n)
{
	char err[256] = "";
	struct leap_bpf_prog_opts o = { .sz = sizeof(o), .errbuf = err, .errbuf_sz = sizeof(err) };
	struct leap_bpf_prog *prog = NULL;

	if (leap_bpf_prog_create(p, n, &o, &prog) || leap_bpf_prog_jit(prog, err, sizeof(err))) {
		printf("# %s\n", err);
		leap_bpf_prog_free(prog);
		return NULL;
	}
	return prog;
}

/* Run with ctx_len 1 (the program writes its slot), then 0 (it reads it): both engines. */
static void write_then_read(struct leap_bpf_prog *prog, uint64_t *interp, uint64_t *jit)
{
	leap_bpf_jit_fn fn = leap_bpf_prog_jit_fn(prog);

	leap_bpf_prog_run_interp(prog, NULL, 1);
	*interp = leap_bpf_prog_run_interp(prog, NULL, 0);
	fn(NULL, 1);
	*jit = fn(NULL, 0);
}

static void test_main_frame_is_zeroed_per_run(void)
{
	struct bpf_insn p[] = {
		JNEK(2, 1, 3), ST(BPF_DW, 10, -8, 0x1234), MOVK(0, 0),
		EXIT(),	       LDX(BPF_DW, 0, 10, -8),	   EXIT(),
	};
	struct leap_bpf_prog *prog = load(p, N(p));
	uint64_t a, b;

	T_ASSERT(prog != NULL);
	T_ASSERT_EQ(prog->stack_depth[0], 8);
	write_then_read(prog, &a, &b);
	leap_bpf_prog_free(prog);
	T_ASSERT_EQ(a, 0);
	T_ASSERT_EQ(b, 0);
}

static void test_depth_follows_stack_pointers(void)
{
	/* The read goes through r2 = r10 - 64: the whole 64 bytes are zeroed. */
	struct bpf_insn p[] = {
		JNEK(2, 1, 3), ST(BPF_DW, 10, -64, 0x77), MOVK(0, 0), EXIT(), MOV64(2, 10),
		ADDK(2, -64),  LDX(BPF_DW, 0, 2, 0),	  EXIT(),
	};
	struct leap_bpf_prog *prog = load(p, N(p));
	uint64_t a, b;

	T_ASSERT(prog != NULL);
	T_ASSERT_EQ(prog->stack_depth[0], 64);
	write_then_read(prog, &a, &b);
	leap_bpf_prog_free(prog);
	T_ASSERT_EQ(a, 0);
	T_ASSERT_EQ(b, 0);
}

static void test_written_before_read_needs_no_zeroing(void)
{
	/* Written on every path before it is read: nothing to zero. */
	struct bpf_insn full[] = { STX(BPF_W, 10, 2, -4), LDX(BPF_W, 0, 10, -4), EXIT() };
	/* Half written: the other half still needs zeros. */
	struct bpf_insn half[] = {
		JNEK(2, 1, 3),	      ST(BPF_DW, 10, -8, -1), MOVK(0, 0), EXIT(),
		ST(BPF_W, 10, -8, 1), LDX(BPF_DW, 0, 10, -8), EXIT(),
	};
	struct leap_bpf_prog *prog = load(full, N(full));
	uint64_t a, b;

	T_ASSERT(prog != NULL);
	T_ASSERT_EQ(prog->stack_depth[0], 0);
	leap_bpf_prog_free(prog);
	prog = load(half, N(half));
	T_ASSERT(prog != NULL);
	T_ASSERT_EQ(prog->stack_depth[0], 8);
	write_then_read(prog, &a, &b);
	leap_bpf_prog_free(prog);
	T_ASSERT_EQ(a, 1);
	T_ASSERT_EQ(b, 1);
}

static void test_callee_frame_is_zeroed_per_call(void)
{
	/* main: f(1) writes f's slot, f(0) reads it; r0 is what the second call read. */
	struct bpf_insn p[] = {
		MOVK(1, 1),
		CALL_LOCAL(3),
		MOVK(1, 0),
		CALL_LOCAL(1),
		EXIT(),
		JEQK(1, 0, 3),
		ST(BPF_DW, 10, -24, 0x99),
		MOVK(0, 0),
		EXIT(),
		LDX(BPF_DW, 0, 10, -24),
		EXIT(),
	};
	struct leap_bpf_prog *prog = load(p, N(p));
	uint64_t a, b;

	T_ASSERT(prog != NULL);
	T_ASSERT_EQ(prog->subprog_cnt, 2);
	T_ASSERT_EQ(prog->stack_depth[0], 0);
	T_ASSERT_EQ(prog->stack_depth[1], 24);
	a = leap_bpf_prog_run_interp(prog, NULL, 0);
	b = leap_bpf_prog_jit_fn(prog)(NULL, 0);
	leap_bpf_prog_free(prog);
	T_ASSERT_EQ(a, 0);
	T_ASSERT_EQ(b, 0);
}

static void test_unknown_stack_offset_zeroes_the_frame(void)
{
	/* r10 plus an offset we cannot follow: the whole frame is zeroed. */
	struct bpf_insn p[] = {
		JNEK(2, 1, 3),
		ST(BPF_DW, 10, -512, 0x42),
		MOVK(0, 0),
		EXIT(),
		MOV64(3, 10),
		I(BPF_ALU64 | BPF_ADD | BPF_X, 3, 2, 0, 0), /* + ctx_len (0 here) */
		LDX(BPF_DW, 0, 3, -512),
		EXIT(),
	};
	struct leap_bpf_prog *prog = load(p, N(p));
	uint64_t a, b;

	T_ASSERT(prog != NULL);
	T_ASSERT_EQ(prog->stack_depth[0], LEAP_BPF_STACK_SIZE);
	write_then_read(prog, &a, &b);
	leap_bpf_prog_free(prog);
	T_ASSERT_EQ(a, 0);
	T_ASSERT_EQ(b, 0);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_main_frame_is_zeroed_per_run),
		TAP_CASE(test_depth_follows_stack_pointers),
		TAP_CASE(test_written_before_read_needs_no_zeroing),
		TAP_CASE(test_callee_frame_is_zeroed_per_call),
		TAP_CASE(test_unknown_stack_offset_zeroes_the_frame),
	};
	return tap_run(cases, TAP_N(cases));
}
