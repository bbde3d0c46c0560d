// SPDX-License-Identifier: BSD-3-Clause
/*
 * The engine's own load-time checks on hand-built programs: structural
 * validation (each rejection names the instruction) and the context-bounds
 * analysis (the context pointer followed through copies, stack spills,
 * reloads via a copy of r10, bpf-to-bpf calls and returns).
 */
#include <errno.h>
#include <string.h>

#include "leapio/bpf.h"
#include "tap.h"

#define I(c, d, s, o, i)                                                                           \
	((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define MOV64(d, s)	 I(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOVK(d, k)	 I(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, k)
#define ADDK(d, k)	 I(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, k)
#define LDX(sz, d, s, o) I(BPF_LDX | BPF_MEM | (sz), d, s, o, 0)
#define STX(sz, d, s, o) I(BPF_STX | BPF_MEM | (sz), d, s, o, 0)
#define CALL_LOCAL(off)	 I(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, off)
#define EXIT()		 I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define N(p)		 ((uint32_t)(sizeof(p) / sizeof((p)[0])))

static char err[256];

static int create(const struct bpf_insn *p, uint32_t n, uint32_t ctx_size)
{
	struct leap_bpf_prog_opts o = {
		.sz = sizeof(o), .ctx_size = ctx_size, .errbuf = err, .errbuf_sz = sizeof(err)
	};
	struct leap_bpf_prog *prog = NULL;
	int rc = leap_bpf_prog_create(p, n, &o, &prog);

	leap_bpf_prog_free(prog);
	return rc;
}

static void test_ctx_direct_and_copied(void)
{
	struct bpf_insn ok[] = { MOV64(6, 1), LDX(BPF_DW, 0, 6, 56), EXIT() };
	struct bpf_insn bad[] = { MOV64(6, 1), LDX(BPF_W, 0, 6, 62), EXIT() };

	T_ASSERT_EQ(create(ok, N(ok), 64), 0);
	T_ASSERT_EQ(create(bad, N(bad), 64), -EINVAL);
	T_ASSERT_STR_EQ(err,
			"insn 1: context access at offset 62 size 4 outside the 64-byte context");
	/* Without a declared context size (raw programs) nothing is checked. */
	T_ASSERT_EQ(create(bad, N(bad), 0), 0);
}

static void test_ctx_spill_and_reload_through_r10_copy(void)
{
	struct bpf_insn p[] = {
		STX(BPF_DW, 10, 1, -8), MOVK(1, 0), MOV64(2, 10), ADDK(2, -8), LDX(BPF_DW, 3, 2, 0),
		LDX(BPF_B, 0, 3, 100),	EXIT(),
	};

	T_ASSERT_EQ(create(p, N(p), 64), -EINVAL);
	T_ASSERT(strstr(err, "insn 5: context access at offset 100") != NULL);
	/* Overwriting the slot with a scalar kills the pointer. */
	p[1] = STX(BPF_DW, 10, 0, -8);
	T_ASSERT_EQ(create(p, N(p), 64), 0);
}

static void test_ctx_through_calls(void)
{
	/* The callee reads through r1 = ctx; a second program returns ctx in r0. */
	struct bpf_insn arg[] = { CALL_LOCAL(1), EXIT(), LDX(BPF_DW, 0, 1, 64), EXIT() };
	struct bpf_insn ret[] = { CALL_LOCAL(2), LDX(BPF_H, 0, 0, 64), EXIT(), MOV64(0, 1),
				  EXIT() };
	struct bpf_insn saved[] = { MOV64(6, 1), CALL_LOCAL(2), LDX(BPF_B, 0, 6, 64),
				    EXIT(),	 MOVK(6, 0),	EXIT() };

	T_ASSERT_EQ(create(arg, N(arg), 64), -EINVAL);
	T_ASSERT(strstr(err, "insn 2: context access at offset 64") != NULL);
	T_ASSERT_EQ(create(ret, N(ret), 64), -EINVAL);
	T_ASSERT(strstr(err, "insn 1: context access") != NULL);
	/* r6 is callee-saved: the caller's copy of ctx survives the call. */
	T_ASSERT_EQ(create(saved, N(saved), 64), -EINVAL);
	T_ASSERT(strstr(err, "insn 2:") != NULL);
}

static void test_validator_rejections_name_the_insn(void)
{
	struct bpf_insn r10[] = { MOVK(0, 0), MOVK(10, 1), EXIT() };
	struct bpf_insn jmp[] = { MOVK(0, 0), I(BPF_JMP | BPF_JA, 0, 0, 5, 0), EXIT() };
	struct bpf_insn fall[] = { MOVK(0, 0) };
	struct bpf_insn rec[] = { CALL_LOCAL(1), EXIT(), CALL_LOCAL(-1), EXIT() };
	struct bpf_insn helper[] = { I(BPF_JMP | BPF_CALL, 0, 0, 0, 14), EXIT() };
	struct bpf_insn kfunc[] = { I(BPF_JMP | BPF_CALL, 0, 2, 0, 1234), EXIT() };
	struct bpf_insn lddw_src[] = { I(BPF_LD | BPF_IMM | BPF_DW, 1, 1, 0, 3), I(0, 0, 0, 0, 0),
				       EXIT() };

	T_ASSERT_EQ(create(r10, N(r10), 0), -EINVAL);
	T_ASSERT_STR_EQ(err, "insn 1: r10 is read-only");
	/* A fetching atomic writes its source register: r10 would be clobbered. */
	struct bpf_insn xadd_r10[] = { I(BPF_STX | BPF_ATOMIC | BPF_DW, 10, 10, -8,
					 BPF_ADD | BPF_FETCH),
				       MOVK(0, 0), EXIT() };
	T_ASSERT_EQ(create(xadd_r10, N(xadd_r10), 0), -EINVAL);
	T_ASSERT_STR_EQ(err, "insn 0: r10 is read-only");
	xadd_r10[0].imm = BPF_ADD; /* no fetch: r10 is only read */
	T_ASSERT_EQ(create(xadd_r10, N(xadd_r10), 0), 0);
	T_ASSERT_EQ(create(jmp, N(jmp), 0), -EINVAL);
	T_ASSERT(strstr(err, "insn 1: jump to 7 is outside the program") != NULL);
	T_ASSERT_EQ(create(fall, N(fall), 0), -EINVAL);
	T_ASSERT(strstr(err, "insn 0: the function can fall off its end") != NULL);
	T_ASSERT_EQ(create(rec, N(rec), 0), -EINVAL);
	T_ASSERT(strstr(err, "recursive call") != NULL);
	T_ASSERT_EQ(create(helper, N(helper), 0), -EINVAL);
	T_ASSERT_STR_EQ(err, "insn 0: helper #14 (get_current_pid_tgid) is not allowed");
	T_ASSERT_EQ(create(kfunc, N(kfunc), 0), -EINVAL);
	T_ASSERT_STR_EQ(err, "insn 0: kfunc calls are not supported");
	T_ASSERT_EQ(create(lddw_src, N(lddw_src), 0), -EINVAL);
	T_ASSERT(strstr(err, "insn 0: ld_imm64 with src_reg 1") != NULL);
}

static void test_call_depth_limit(void)
{
	/* A chain of 9 nested functions: one frame more than the kernel allows. */
	struct bpf_insn p[2 * 9];

	for (int f = 0; f < 9; f++) {
		p[2 * f] = f < 8 ? CALL_LOCAL(1) : MOVK(0, 0);
		p[2 * f + 1] = EXIT();
	}
	T_ASSERT_EQ(create(p, N(p), 0), -EINVAL);
	T_ASSERT(strstr(err, "deeper than 8 frames") != NULL);
	T_ASSERT_EQ(create(p + 2, N(p) - 2, 0), 0); /* 8 frames are fine */
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_ctx_direct_and_copied),
		TAP_CASE(test_ctx_spill_and_reload_through_r10_copy),
		TAP_CASE(test_ctx_through_calls),
		TAP_CASE(test_validator_rejections_name_the_insn),
		TAP_CASE(test_call_depth_limit),
	};
	return tap_run(cases, TAP_N(cases));
}
