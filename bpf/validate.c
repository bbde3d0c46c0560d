// SPDX-License-Identifier: BSD-3-Clause
/*
 * Structural validation (uBPF's validate(), stricter): every opcode known and
 * every reserved field zero, jumps inside their own function and never into
 * the second half of an ld_imm64, no falling off the end of a function, r10
 * never written, helpers only from the runtime's table, no kfuncs, and a
 * static call graph without recursion and at most LEAP_BPF_MAX_CALL_DEPTH
 * frames deep. It is what lets the interpreter and the JIT run with no
 * checks of their own. The kernel verifier has already proved memory safety
 * for loaded policies; this pass makes the same code safe to execute for
 * the structural properties our executors rely on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bpf_internal.h"

#define R(...) leap_bpf_reject(eb, es, __VA_ARGS__)

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

uint8_t *leap_bpf_jump_targets(const struct leap_bpf_prog *p)
{
	uint8_t *t = calloc((size_t)p->insn_cnt + 1, 1);

	for (uint32_t i = 0; t && i < p->insn_cnt; i++) {
		const struct bpf_insn *in = &p->insns[i];
		uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);

		if (leap_bpf_is_lddw(in)) {
			i++;
			continue;
		}
		if ((cls != BPF_JMP && cls != BPF_JMP32) || op == BPF_CALL || op == BPF_EXIT)
			continue;
		t[i + 1 + (cls == BPF_JMP32 && op == BPF_JA ? in->imm : in->off)] = 1;
	}
	return t;
}

uint32_t leap_bpf_subprog_of(const struct leap_bpf_prog *prog, uint32_t insn)
{
	uint32_t lo = 0, hi = prog->subprog_cnt;

	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;

		if (prog->subprog_start[mid] <= insn)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static bool is_lddw_tail(const struct bpf_insn *insns, uint32_t i)
{
	return i > 0 && leap_bpf_is_lddw(&insns[i - 1]);
}

/* Collect function entry points: 0 and every bpf-to-bpf call target. */
static int find_subprogs(struct leap_bpf_prog *p, char *eb, size_t es)
{
	uint32_t n = 1, cap = 8;
	uint32_t *s = malloc(cap * sizeof(*s));

	if (!s)
		return -ENOMEM;
	s[0] = 0;
	for (uint32_t i = 0; i < p->insn_cnt; i++) {
		const struct bpf_insn *in = &p->insns[i];
		int64_t t;

		if (leap_bpf_is_lddw(in)) {
			i++;
			continue;
		}
		if (in->code != (BPF_JMP | BPF_CALL) || in->src_reg != BPF_PSEUDO_CALL)
			continue;
		t = (int64_t)i + 1 + in->imm;
		if (t < 0 || t >= p->insn_cnt || is_lddw_tail(p->insns, (uint32_t)t)) {
			free(s);
			return R(i, "call to %lld is outside the program", (long long)t);
		}
		if (n == cap) {
			uint32_t *ns = realloc(s, 2 * cap * sizeof(*s));

			if (!ns) {
				free(s);
				return -ENOMEM;
			}
			s = ns;
			cap *= 2;
		}
		s[n++] = (uint32_t)t;
	}
	qsort(s, n, sizeof(*s), cmp_u32);
	p->subprog_cnt = 0;
	for (uint32_t i = 0; i < n; i++)
		if (i == 0 || s[i] != s[i - 1])
			s[p->subprog_cnt++] = s[i];
	p->subprog_start = s;
	return 0;
}

static int check_alu(const struct bpf_insn *in, uint32_t i, char *eb, size_t es)
{
	bool a64 = BPF_CLASS(in->code) == BPF_ALU64;
	uint8_t op = BPF_OP(in->code);
	bool x = BPF_SRC(in->code) == BPF_X;

	if (in->dst_reg == BPF_REG_10)
		return R(i, "r10 is read-only");
	if (in->dst_reg > BPF_REG_10 || (x && in->src_reg > BPF_REG_10))
		return R(i, "invalid register");
	if (op == BPF_END) {
		if (in->src_reg || in->off || (in->imm != 16 && in->imm != 32 && in->imm != 64))
			return R(i, "invalid byte swap (imm %d)", in->imm);
		if (a64 && BPF_SRC(in->code) != BPF_TO_LE)
			return R(i, "invalid 64-bit byte swap");
		return 0;
	}
	if (!x && in->src_reg)
		return R(i, "src_reg must be 0 with an immediate operand");
	if (x && in->imm)
		return R(i, "imm must be 0 with a register operand");
	switch (op) {
	case BPF_ADD:
	case BPF_SUB:
	case BPF_MUL:
	case BPF_OR:
	case BPF_AND:
	case BPF_LSH:
	case BPF_RSH:
	case BPF_ARSH:
	case BPF_XOR:
		break;
	case BPF_NEG:
		if (x || in->imm)
			return R(i, "invalid neg");
		break;
	case BPF_DIV:
	case BPF_MOD:
		if (in->off != 0 && in->off != LEAP_BPF_OFF_SIGNED)
			return R(i, "invalid division offset %d", in->off);
		return 0;
	case BPF_MOV:
		if (in->off == 0)
			return 0;
		if (x && (in->off == 8 || in->off == 16 || (a64 && in->off == 32)))
			return 0; /* movsx */
		return R(i, "invalid mov offset %d", in->off);
	default:
		return R(i, "unknown ALU opcode 0x%02x", in->code);
	}
	if (in->off)
		return R(i, "off must be 0");
	return 0;
}

static int check_jump_target(const struct leap_bpf_prog *p, uint32_t i, int64_t t, char *eb,
			     size_t es)
{
	if (t < 0 || t >= p->insn_cnt)
		return R(i, "jump to %lld is outside the program", (long long)t);
	if (is_lddw_tail(p->insns, (uint32_t)t))
		return R(i, "jump into the middle of ld_imm64");
	if (leap_bpf_subprog_of(p, (uint32_t)t) != leap_bpf_subprog_of(p, i))
		return R(i, "jump to %lld leaves the function", (long long)t);
	return 0;
}

static int check_jmp(const struct leap_bpf_prog *p, uint32_t i, char *eb, size_t es)
{
	const struct bpf_insn *in = &p->insns[i];
	bool j32 = BPF_CLASS(in->code) == BPF_JMP32;
	uint8_t op = BPF_OP(in->code);
	bool x = BPF_SRC(in->code) == BPF_X;

	switch (op) {
	case BPF_JA:
		if (x || in->dst_reg || in->src_reg)
			return R(i, "invalid ja");
		if (j32) /* gotol: 32-bit offset in imm */
			return in->off ? R(i, "gotol with non-zero off")
				       : check_jump_target(p, i, (int64_t)i + 1 + in->imm, eb, es);
		if (in->imm)
			return R(i, "ja with non-zero imm");
		return check_jump_target(p, i, (int64_t)i + 1 + in->off, eb, es);
	case BPF_EXIT:
		if (j32 || x || in->dst_reg || in->src_reg || in->off || in->imm)
			return R(i, "invalid exit");
		return 0;
	case BPF_CALL:
		if (j32 || x || in->dst_reg || in->off)
			return R(i, "invalid call");
		if (in->src_reg == BPF_PSEUDO_KFUNC_CALL)
			return R(i, "kfunc calls are not supported");
		if (in->src_reg == BPF_PSEUDO_CALL)
			return 0; /* target checked by find_subprogs */
		if (in->src_reg)
			return R(i, "invalid call src_reg %u", in->src_reg);
		if (in->imm < 0 || in->imm >= LEAP_BPF_MAX_HELPERS || !p->helpers ||
		    !p->helpers->fn[in->imm]) {
			const char *name = leap_bpf_helper_name((uint32_t)in->imm);

			return R(i, "helper #%d (%s) is not allowed", in->imm,
				 name ? name : "unknown");
		}
		return 0;
	case BPF_JEQ:
	case BPF_JGT:
	case BPF_JGE:
	case BPF_JSET:
	case BPF_JNE:
	case BPF_JSGT:
	case BPF_JSGE:
	case BPF_JLT:
	case BPF_JLE:
	case BPF_JSLT:
	case BPF_JSLE:
		if (in->dst_reg > BPF_REG_10 || (x && in->src_reg > BPF_REG_10))
			return R(i, "invalid register");
		if (!x && in->src_reg)
			return R(i, "src_reg must be 0 with an immediate operand");
		if (x && in->imm)
			return R(i, "imm must be 0 with a register operand");
		return check_jump_target(p, i, (int64_t)i + 1 + in->off, eb, es);
	default:
		return R(i, "unknown jump opcode 0x%02x", in->code);
	}
}

static int check_mem(const struct bpf_insn *in, uint32_t i, char *eb, size_t es)
{
	uint8_t cls = BPF_CLASS(in->code), mode = BPF_MODE(in->code), sz = BPF_SIZE(in->code);

	if (in->dst_reg > BPF_REG_10 || in->src_reg > BPF_REG_10)
		return R(i, "invalid register");
	switch (cls) {
	case BPF_LDX:
		if (in->dst_reg == BPF_REG_10)
			return R(i, "r10 is read-only");
		if (mode != BPF_MEM && !(mode == BPF_MEMSX && sz != BPF_DW))
			return R(i, "invalid load mode");
		if (in->imm)
			return R(i, "imm must be 0");
		return 0;
	case BPF_ST:
		if (mode != BPF_MEM || in->src_reg)
			return R(i, "invalid store");
		return 0;
	default: /* BPF_STX */
		if (mode == BPF_MEM)
			return in->imm ? R(i, "imm must be 0") : 0;
		if (mode != BPF_ATOMIC || (sz != BPF_W && sz != BPF_DW))
			return R(i, "invalid store mode");
		switch (in->imm) {
		case BPF_ADD:
		case BPF_OR:
		case BPF_AND:
		case BPF_XOR:
			return 0;
		case BPF_ADD | BPF_FETCH:
		case BPF_OR | BPF_FETCH:
		case BPF_AND | BPF_FETCH:
		case BPF_XOR | BPF_FETCH:
		case BPF_XCHG:
			/* Fetching forms write the old value into src_reg: never into r10. */
			return in->src_reg == BPF_REG_10 ? R(i, "r10 is read-only") : 0;
		case BPF_CMPXCHG:
			return 0;
		default:
			return R(i, "unknown atomic operation 0x%x", in->imm);
		}
	}
}

/* DFS over the static call graph: no recursion; height[f] = frames f needs. */
static int check_calls(const struct leap_bpf_prog *p, uint32_t f, uint8_t *state, uint8_t *height,
		       char *eb, size_t es)
{
	uint32_t start = p->subprog_start[f];
	uint32_t end = f + 1 < p->subprog_cnt ? p->subprog_start[f + 1] : p->insn_cnt;
	uint8_t h = 1;
	int err;

	if (state[f] == 2)
		return 0;
	if (state[f] == 1)
		return R(start, "recursive call");
	state[f] = 1;
	for (uint32_t i = start; i < end; i++) {
		const struct bpf_insn *in = &p->insns[i];

		if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_CALL) {
			uint32_t t = leap_bpf_subprog_of(p, (uint32_t)((int64_t)i + 1 + in->imm));

			err = check_calls(p, t, state, height, eb, es);
			if (err)
				return err;
			if (height[t] + 1 > h)
				h = (uint8_t)(height[t] + 1);
			if (h > LEAP_BPF_MAX_CALL_DEPTH)
				return R(i, "calls nest deeper than %d frames",
					 LEAP_BPF_MAX_CALL_DEPTH);
		}
	}
	height[f] = h;
	state[f] = 2;
	return 0;
}

int leap_bpf_validate(struct leap_bpf_prog *p, char *eb, size_t es)
{
	uint8_t *state;
	int err;

	err = find_subprogs(p, eb, es);
	if (err)
		return err;
	for (uint32_t i = 0; i < p->insn_cnt; i++) {
		const struct bpf_insn *in = &p->insns[i];

		switch (BPF_CLASS(in->code)) {
		case BPF_ALU:
		case BPF_ALU64:
			err = check_alu(in, i, eb, es);
			break;
		case BPF_JMP:
		case BPF_JMP32:
			err = check_jmp(p, i, eb, es);
			break;
		case BPF_LD:
			if (!leap_bpf_is_lddw(in))
				return R(i, "legacy packet loads are not supported");
			if (i + 1 >= p->insn_cnt)
				return R(i, "incomplete ld_imm64");
			if (in->src_reg)
				return R(i,
					 "ld_imm64 with src_reg %u (map or BTF reference not "
					 "resolved by the loader)",
					 in->src_reg);
			if (in->dst_reg >= BPF_REG_10)
				return R(i, "invalid ld_imm64 destination");
			if (in->off || p->insns[i + 1].code || p->insns[i + 1].dst_reg ||
			    p->insns[i + 1].src_reg || p->insns[i + 1].off)
				return R(i, "malformed ld_imm64");
			if (leap_bpf_subprog_of(p, i + 1) != leap_bpf_subprog_of(p, i))
				return R(i, "ld_imm64 split across functions");
			i++;
			err = 0;
			break;
		default:
			err = check_mem(in, i, eb, es);
			break;
		}
		if (err)
			return err;
	}
	/* The last instruction of every function must not fall through. */
	for (uint32_t f = 0; f < p->subprog_cnt; f++) {
		uint32_t end = f + 1 < p->subprog_cnt ? p->subprog_start[f + 1] : p->insn_cnt;
		uint32_t last = end - 1;
		const struct bpf_insn *in = &p->insns[last];

		if (is_lddw_tail(p->insns, last) ||
		    !(in->code == (BPF_JMP | BPF_EXIT) || in->code == (BPF_JMP | BPF_JA) ||
		      in->code == (BPF_JMP32 | BPF_JA)))
			return R(last, "the function can fall off its end");
	}
	state = calloc(2 * (size_t)p->subprog_cnt, 1);
	if (!state)
		return -ENOMEM;
	for (uint32_t f = 0; f < p->subprog_cnt && !err; f++)
		err = check_calls(p, f, state, state + p->subprog_cnt, eb, es);
	free(state);
	return err;
}
