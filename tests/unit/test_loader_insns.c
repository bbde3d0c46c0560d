// SPDX-License-Identifier: BSD-3-Clause
/*
 * The loader's own instruction checks and map-reference rewrite
 * (loader/loader_insns.c) on synthetic instruction arrays, so every class
 * is covered whatever this kernel's verifier lets through first (typed
 * ksyms, for one, never reach us here: no CONFIG_KALLSYMS_ALL). No kernel
 * is involved: the "maps" are leap_map structs with made-up descriptors.
 */
#include <errno.h>
#include <string.h>

#include "../../loader/loader_internal.h"
#include "tap.h"

#define LDDW(dst, src, imm_lo, imm_hi)                                                             \
	{ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = dst, .src_reg = src, .imm = imm_lo },      \
	{                                                                                          \
		.imm = imm_hi                                                                      \
	}
#define CALL(src, id)                                                                              \
	{                                                                                          \
		.code = BPF_JMP | BPF_CALL, .src_reg = src, .imm = id                              \
	}
#define MOV0                                                                                       \
	{                                                                                          \
		.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0                        \
	}
#define EXIT                                                                                       \
	{                                                                                          \
		.code = BPF_JMP | BPF_EXIT                                                         \
	}

static uint8_t values[4096];
static struct leap_map maps[2];
static struct leap_obj obj = { .maps = maps, .map_cnt = 2 };
static char log_buf[512];
static const struct leap_obj_opts opts = {
	.sz = sizeof(opts),
	.log_buf = log_buf,
	.log_sz = sizeof(log_buf),
};

static void setup(void)
{
	memset(maps, 0, sizeof(maps));
	maps[0] = (struct leap_map){ .data = values,
				     .stride = 8,
				     .max_entries = 512,
				     .value_size = 8,
				     .fd = 100,
				     .ref_fd = 100,
				     .map_len = sizeof(values),
				     .name = "arr" };
	maps[1] = (struct leap_map){
		.fd = 101, .ref_fd = 101, .value_size = 8, .slow_path = true, .name = "hash"
	};
	log_buf[0] = 0;
}

static uint64_t lddw_value(const struct bpf_insn *in)
{
	return (uint64_t)(uint32_t)in[0].imm | (uint64_t)(uint32_t)in[1].imm << 32;
}

static int resolve(const struct bpf_insn *insns, uint32_t cnt, struct bpf_insn **out)
{
	setup();
	return leap_loader_insns_resolve(&obj, "p", insns, cnt, &opts, out);
}

static void test_map_fd_becomes_the_leap_map_address(void)
{
	const struct bpf_insn in[] = { LDDW(1, BPF_PSEUDO_MAP_FD, 101, 0), MOV0,
				       LDDW(2, BPF_PSEUDO_MAP_FD, 100, 0), EXIT };
	struct bpf_insn *out = NULL;

	T_ASSERT_EQ(resolve(in, TAP_N(in), &out), 0);
	T_ASSERT_EQ(out[0].src_reg, 0);
	T_ASSERT_EQ(out[0].dst_reg, 1);
	T_ASSERT_U64_EQ(lddw_value(&out[0]), (uintptr_t)&maps[1]);
	T_ASSERT_U64_EQ(lddw_value(&out[3]), (uintptr_t)&maps[0]);
	T_ASSERT_EQ(out[3].src_reg, 0);
	/* The caller's (libbpf's) instructions are left as they were. */
	T_ASSERT_EQ(in[0].src_reg, BPF_PSEUDO_MAP_FD);
	T_ASSERT_EQ(in[0].imm, 101);
	free(out);
}

static void test_map_value_becomes_the_mmapped_address(void)
{
	const struct bpf_insn in[] = { LDDW(3, BPF_PSEUDO_MAP_VALUE, 100, 24), EXIT };
	struct bpf_insn *out = NULL;

	T_ASSERT_EQ(resolve(in, TAP_N(in), &out), 0);
	T_ASSERT_EQ(out[0].src_reg, 0);
	T_ASSERT_U64_EQ(lddw_value(&out[0]), (uintptr_t)(values + 24));
	free(out);
}

static void expect_reject(const struct bpf_insn *in, uint32_t cnt, const char *msg)
{
	struct bpf_insn *out = (struct bpf_insn *)1;

	T_ASSERT_EQ(resolve(in, cnt, &out), -EINVAL);
	T_ASSERT(out == NULL);
	if (strcmp(log_buf, msg) != 0)
		T_FAIL("got \"%s\", want \"%s\"", log_buf, msg);
}

static void test_map_value_of_a_slow_path_map_is_rejected(void)
{
	const struct bpf_insn in[] = { MOV0, LDDW(3, BPF_PSEUDO_MAP_VALUE, 101, 0), EXIT };

	expect_reject(in, TAP_N(in),
		      "program 'p': insn 1: direct value access to map 'hash', which is not "
		      "mmapped");
}

static void test_map_value_past_the_mapping_is_rejected(void)
{
	const struct bpf_insn in[] = { LDDW(3, BPF_PSEUDO_MAP_VALUE, 100, 4096), EXIT };

	expect_reject(in, TAP_N(in),
		      "program 'p': insn 0: direct value access at offset 4096 is outside map "
		      "'arr' (4096 bytes)");
}

static void test_unknown_map_fd_is_rejected(void)
{
	const struct bpf_insn in[] = { LDDW(1, BPF_PSEUDO_MAP_FD, 55, 0), EXIT };

	expect_reject(in, TAP_N(in),
		      "program 'p': insn 0: map fd 55 is not one of this object's maps");
}

static void test_kfunc_call_is_rejected(void)
{
	const struct bpf_insn in[] = { MOV0, MOV0, CALL(BPF_PSEUDO_KFUNC_CALL, 1234), EXIT };

	expect_reject(in, TAP_N(in), "program 'p': insn 2: kfunc call not supported");
}

static void test_btf_id_load_is_rejected(void)
{
	const struct bpf_insn in[] = { MOV0, LDDW(1, BPF_PSEUDO_BTF_ID, 13780, 0), EXIT };

	expect_reject(in, TAP_N(in),
		      "program 'p': insn 1: BTF-id loads (kernel variables) are not supported");
}

static void test_callback_pointer_is_rejected(void)
{
	const struct bpf_insn in[] = { LDDW(2, BPF_PSEUDO_FUNC, 3, 0), MOV0, EXIT, MOV0, EXIT };

	expect_reject(in, TAP_N(in),
		      "program 'p': insn 0: callback function pointers are not supported");
}

static void test_core_poison_is_rejected(void)
{
	const struct bpf_insn in[] = { MOV0, CALL(0, 0xbad2310), EXIT };

	expect_reject(in, TAP_N(in),
		      "program 'p': insn 1: a CO-RE relocation failed (libbpf poisoned this call)");
}

static void test_other_ld_imm64_kinds_and_truncation_are_rejected(void)
{
	const struct bpf_insn idx[] = { LDDW(1, BPF_PSEUDO_MAP_IDX, 0, 0), EXIT };
	const struct bpf_insn trunc[] = { MOV0, { .code = BPF_LD | BPF_DW | BPF_IMM } };

	expect_reject(idx, TAP_N(idx),
		      "program 'p': insn 0: ld_imm64 with src_reg 5 is not supported");
	expect_reject(trunc, TAP_N(trunc), "program 'p': insn 1: truncated ld_imm64");
}

static void test_helper_calls_and_plain_constants_pass_through(void)
{
	/* The helper whitelist is the engine's job; the loader leaves calls alone. */
	const struct bpf_insn in[] = { LDDW(1, 0, 0x11223344, 0x55667788), CALL(0, 14), CALL(1, 1),
				       EXIT };
	struct bpf_insn *out = NULL;

	T_ASSERT_EQ(resolve(in, TAP_N(in), &out), 0);
	T_ASSERT_MEM_EQ(out, in, sizeof(in));
	free(out);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_map_fd_becomes_the_leap_map_address),
		TAP_CASE(test_map_value_becomes_the_mmapped_address),
		TAP_CASE(test_map_value_of_a_slow_path_map_is_rejected),
		TAP_CASE(test_map_value_past_the_mapping_is_rejected),
		TAP_CASE(test_unknown_map_fd_is_rejected),
		TAP_CASE(test_kfunc_call_is_rejected),
		TAP_CASE(test_btf_id_load_is_rejected),
		TAP_CASE(test_callback_pointer_is_rejected),
		TAP_CASE(test_core_poison_is_rejected),
		TAP_CASE(test_other_ld_imm64_kinds_and_truncation_are_rejected),
		TAP_CASE(test_helper_calls_and_plain_constants_pass_through),
	};

	return tap_run(cases, TAP_N(cases));
}
