// SPDX-License-Identifier: BSD-3-Clause
/*
 * The JIT's inlined array-map lookup: `ld_imm64 r1, A; ...; call
 * map_lookup_elem` becomes a bounds check and an address computation when
 * the instructions in between leave r1 alone and nothing jumps into the
 * stretch. Each program runs on the interpreter (which always calls the
 * helper) and the JIT; a counting helper tells whether the JIT called it.
 * The cases that must NOT inline (r1 changed in between, a jump into the
 * stretch) must still return the right map's value.
 */
#include <string.h>

#include "leapio/bpf.h"
#include "tap.h"

#define LDDW(dst, v)                                                                               \
	{ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = (dst), .imm = (int32_t)(uint32_t)(v) },    \
	{                                                                                          \
		.imm = (int32_t)(uint32_t)((uint64_t)(v) >> 32)                                    \
	}
#define MOV64_REG(d, s)                                                                            \
	{                                                                                          \
		.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = (d), .src_reg = (s)                \
	}
#define MOV64_IMM(d, i)                                                                            \
	{                                                                                          \
		.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = (d), .imm = (i)                    \
	}
#define ADD64_IMM(d, i)                                                                            \
	{                                                                                          \
		.code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = (d), .imm = (i)                    \
	}
#define ST_W(d, o, i)                                                                              \
	{                                                                                          \
		.code = BPF_ST | BPF_MEM | BPF_W, .dst_reg = (d), .off = (o), .imm = (i)           \
	}
#define STX_DW(d, s, o)                                                                            \
	{                                                                                          \
		.code = BPF_STX | BPF_MEM | BPF_DW, .dst_reg = (d), .src_reg = (s), .off = (o)     \
	}
#define LDX_DW(d, s, o)                                                                            \
	{                                                                                          \
		.code = BPF_LDX | BPF_MEM | BPF_DW, .dst_reg = (d), .src_reg = (s), .off = (o)     \
	}
#define CALL(id)                                                                                   \
	{                                                                                          \
		.code = BPF_JMP | BPF_CALL, .imm = (id)                                            \
	}
#define JEQ_IMM(d, i, o)                                                                           \
	{                                                                                          \
		.code = BPF_JMP | BPF_JEQ | BPF_K, .dst_reg = (d), .imm = (i), .off = (o)          \
	}
#define EXIT                                                                                       \
	{                                                                                          \
		.code = BPF_JMP | BPF_EXIT                                                         \
	}

static uint64_t vals_a[4] = { 100, 101, 102, 103 };
static uint64_t vals_b[4] = { 200, 201, 202, 203 };
static const struct leap_bpf_array arr_a = { (uint8_t *)vals_a, 8, 4 };
static const struct leap_bpf_array arr_b = { (uint8_t *)vals_b, 8, 4 };
static const struct leap_bpf_array *const arrays[] = { &arr_a, &arr_b };
static unsigned helper_calls;

/* map_lookup_elem over the two test arrays: what the inline path must match. */
static uint64_t lookup(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	const struct leap_bpf_array *a = (const struct leap_bpf_array *)(uintptr_t)r1;
	uint32_t key;

	helper_calls++;
	memcpy(&key, (const void *)(uintptr_t)r2, 4);
	return key < a->max_entries ? (uint64_t)(uintptr_t)(a->data + (uint64_t)key * a->stride)
				    : 0;
}

static struct leap_bpf_helpers helpers;

/* Run on interp and JIT; returns the JIT's r0 after checking both agree; *calls: JIT helper calls. */
static uint64_t run_both(const struct bpf_insn *insns, uint32_t n, unsigned *calls)
{
	struct leap_bpf_prog_opts o = {
		.sz = sizeof(o), .helpers = &helpers, .arrays = arrays, .array_cnt = 2
	};
	struct leap_bpf_prog *p = NULL;
	uint64_t ctx[8] = { 0 }, ri, rj;
	char err[256] = "";

	helpers.fn[1] = lookup;
	o.errbuf = err;
	o.errbuf_sz = sizeof(err);
	if (leap_bpf_prog_create(insns, n, &o, &p))
		T_FAIL("create: %s", err);
	T_ASSERT_EQ(leap_bpf_prog_jit(p, err, sizeof(err)), 0);
	ri = leap_bpf_prog_run_interp(p, ctx, sizeof(ctx));
	helper_calls = 0;
	rj = leap_bpf_prog_jit_fn(p)(ctx, sizeof(ctx));
	*calls = helper_calls;
	leap_bpf_prog_free(p);
	T_ASSERT_U64_EQ(rj, ri);
	return rj;
}

/* clang's schedule: key pointer set up and a spill between the map load and the call. */
static void test_inlined_across_key_setup_and_spill(void)
{
	const struct bpf_insn prog[] = {
		ST_W(10, -4, 2),
		MOV64_REG(2, 10),
		ADD64_IMM(2, -4),
		LDDW(1, (uintptr_t)&arr_a),
		STX_DW(10, 0, -16),
		MOV64_REG(3, 2),
		CALL(1),
		JEQ_IMM(0, 0, 1),
		LDX_DW(0, 0, 0),
		EXIT,
	};
	unsigned calls;

	T_ASSERT_U64_EQ(run_both(prog, sizeof(prog) / sizeof(prog[0]), &calls), 102);
	T_ASSERT_EQ(calls, 0); /* inlined */
}

/* The later of two map loads into r1 is the one the call sees. */
static void test_last_load_wins(void)
{
	const struct bpf_insn prog[] = {
		ST_W(10, -4, 3),
		LDDW(1, (uintptr_t)&arr_a),
		MOV64_REG(2, 10),
		LDDW(1, (uintptr_t)&arr_b),
		ADD64_IMM(2, -4),
		CALL(1),
		JEQ_IMM(0, 0, 1),
		LDX_DW(0, 0, 0),
		EXIT,
	};
	unsigned calls;

	T_ASSERT_U64_EQ(run_both(prog, sizeof(prog) / sizeof(prog[0]), &calls), 203);
	T_ASSERT_EQ(calls, 0);
}

/* r1 changed after the map load: not provably A, so the helper is called (and gets B). */
static void test_r1_rewritten_is_not_inlined(void)
{
	const struct bpf_insn prog[] = {
		ST_W(10, -4, 1),
		LDDW(6, (uintptr_t)&arr_b),
		LDDW(1, (uintptr_t)&arr_a),
		MOV64_REG(2, 10),
		MOV64_REG(1, 6), /* r1 = B */
		ADD64_IMM(2, -4),
		CALL(1),
		JEQ_IMM(0, 0, 1),
		LDX_DW(0, 0, 0),
		EXIT,
	};
	unsigned calls;

	T_ASSERT_U64_EQ(run_both(prog, sizeof(prog) / sizeof(prog[0]), &calls), 201);
	T_ASSERT_EQ(calls, 1);
}

/* A jump lands between the map load and the call: r1 may come from elsewhere. */
static void test_jump_into_stretch_is_not_inlined(void)
{
	const struct bpf_insn prog[] = {
		ST_W(10, -4, 0),
		LDDW(1, (uintptr_t)&arr_b),
		MOV64_IMM(3, 0),
		JEQ_IMM(3, 0, 2), /* taken: skip the load of A, r1 stays B */
		LDDW(1, (uintptr_t)&arr_a),
		MOV64_REG(2, 10), /* jump target */
		ADD64_IMM(2, -4),
		CALL(1),
		JEQ_IMM(0, 0, 1),
		LDX_DW(0, 0, 0),
		EXIT,
	};
	unsigned calls;

	T_ASSERT_U64_EQ(run_both(prog, sizeof(prog) / sizeof(prog[0]), &calls), 200);
	T_ASSERT_EQ(calls, 1);
}

/* An out-of-range key returns NULL on the inline path too. */
static void test_inlined_bounds(void)
{
	const struct bpf_insn prog[] = {
		ST_W(10, -4, 4),  MOV64_REG(2, 10),
		ADD64_IMM(2, -4), LDDW(1, (uintptr_t)&arr_a),
		CALL(1),	  EXIT,
	};
	unsigned calls;

	T_ASSERT_U64_EQ(run_both(prog, sizeof(prog) / sizeof(prog[0]), &calls), 0);
	T_ASSERT_EQ(calls, 0);
}

/*
 * The NULL test after the lookup is folded into it: `if r0 == 0` right
 * after the call, or `r6 = r0; if r6 == 0`. Both ways, in and out of
 * range; on the NULL path r0 (and the copy) must read 0 at the target,
 * which returns r0 + r6 * 2 + 7 to see both.
 */
static void test_folded_null_test(void)
{
	for (int copy = 0; copy < 2; copy++) {
		for (int key = 2; key <= 4; key += 2) {
			struct bpf_insn prog[24] = {
				MOV64_IMM(6, 99), ST_W(10, -4, key),	      MOV64_REG(2, 10),
				ADD64_IMM(2, -4), LDDW(1, (uintptr_t)&arr_b), CALL(1),
			};
			uint32_t n = 7;
			unsigned calls;
			uint64_t r;

			if (copy)
				prog[n++] = (struct bpf_insn)MOV64_REG(6, 0);
			prog[n++] = (struct bpf_insn)JEQ_IMM(copy ? 6 : 0, 0, 2);
			prog[n++] = (struct bpf_insn)LDX_DW(0, 0, 0); /* in range: the value */
			prog[n++] = (struct bpf_insn)EXIT;
			prog[n++] = (struct bpf_insn)MOV64_REG(1, 6); /* NULL: r0 + r6 * 2 + 7 */
			prog[n++] = (struct bpf_insn)ADD64_IMM(1, 0);
			prog[n++] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_ADD | BPF_X,
						       .dst_reg = 0,
						       .src_reg = 1 };
			prog[n++] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_ADD | BPF_X,
						       .dst_reg = 0,
						       .src_reg = 1 };
			prog[n++] = (struct bpf_insn)ADD64_IMM(0, 7);
			prog[n++] = (struct bpf_insn)EXIT;
			r = run_both(prog, n, &calls);
			T_ASSERT_EQ(calls, 0);
			if (key < 4)
				T_ASSERT_U64_EQ(r, vals_b[key]);
			else
				T_ASSERT_U64_EQ(r, copy ? 7 : 99 * 2 + 7);
		}
	}
}

#define STX_W(d, s, o)                                                                             \
	{                                                                                          \
		.code = BPF_STX | BPF_MEM | BPF_W, .dst_reg = (d), .src_reg = (s), .off = (o)      \
	}

/*
 * The key is taken from the register it was stored from when nothing
 * changed the register or the slot since: the register changed after the
 * store, or the slot rewritten through another pointer, must still give
 * the slot's value.
 */
static void test_key_from_register(void)
{
	for (int variant = 0; variant < 3; variant++) {
		struct bpf_insn prog[16] = {
			MOV64_IMM(6, 1),
			STX_W(10, 6, -4),
		};
		uint32_t n = 2;
		unsigned calls;
		uint64_t want = vals_a[1];

		if (variant == 1) {
			prog[n++] = (struct bpf_insn)MOV64_IMM(6, 3); /* the slot still holds 1 */
		} else if (variant == 2) {
			prog[n++] = (struct bpf_insn)MOV64_REG(3, 10);
			prog[n++] = (struct bpf_insn)ST_W(3, -4, 2); /* the slot now holds 2 */
			want = vals_a[2];
		}
		prog[n++] = (struct bpf_insn)MOV64_REG(2, 10);
		prog[n++] = (struct bpf_insn)ADD64_IMM(2, -4);
		prog[n++] = (struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM,
					       .dst_reg = 1,
					       .imm = (int32_t)(uint32_t)(uintptr_t)&arr_a };
		prog[n++] =
		    (struct bpf_insn){ .imm =
					   (int32_t)(uint32_t)((uint64_t)(uintptr_t)&arr_a >> 32) };
		prog[n++] = (struct bpf_insn)CALL(1);
		prog[n++] = (struct bpf_insn)JEQ_IMM(0, 0, 1);
		prog[n++] = (struct bpf_insn)LDX_DW(0, 0, 0);
		prog[n++] = (struct bpf_insn)EXIT;
		T_ASSERT_U64_EQ(run_both(prog, n, &calls), want);
		T_ASSERT_EQ(calls, 0);
	}
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_inlined_across_key_setup_and_spill),
		TAP_CASE(test_last_load_wins),
		TAP_CASE(test_r1_rewritten_is_not_inlined),
		TAP_CASE(test_jump_into_stretch_is_not_inlined),
		TAP_CASE(test_inlined_bounds),
		TAP_CASE(test_folded_null_test),
		TAP_CASE(test_key_from_register),
	};

	return tap_run(cases, TAP_N(cases));
}
