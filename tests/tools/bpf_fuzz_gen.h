/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Program generator of the differential fuzzer (bpf_fuzz.c). Header-only
 * because every C file in tests/tools/ is built as a program of its own.
 *
 * Every generated program is valid for the kernel verifier by construction:
 * only initialised registers and stack bytes are read, memory accesses are
 * aligned and in bounds, constant divisors are non-zero, constant shifts are
 * in range, all jumps go forward and every instruction is reachable.
 *
 * Layout of a program:
 *   prologue   r9 = &map value (ld_imm64 BPF_PSEUDO_MAP_VALUE), 8 stack slots
 *              written, ctx pointer spilled at r10-72, r0 and r2..r8 set
 *   body       random items (below), forward jumps, calls to subprograms
 *   epilogue   r0, r2..r8 and the stack slots stored into the map; exit
 *   subprogs   r0 set, 2 own stack slots written, random items on
 *              r0, r2..r5 (arguments) with ctx reads through r1; exit
 * After a call the caller reloads r1 from its spill slot and sets r2..r5
 * again (the verifier forgets caller-saved registers).
 */
#ifndef LEAPIO_BPF_FUZZ_GEN_H
#define LEAPIO_BPF_FUZZ_GEN_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../../bpf/bpf_internal.h" /* v4 opcode constants */
#include "leapio/common.h"

#define CTX_SIZE      64
#define VAL_SIZE      512
#define DATA_SIZE     256 /* map bytes the body loads, stores and updates atomically */
#define REGDUMP_OFF   256 /* epilogue: r0, r2..r8 */
#define STACKDUMP_OFF 320 /* epilogue: the main frame's stack slots */
#define NSLOTS	      8	  /* main frame: 8-byte slots at r10-8 .. r10-64 */
#define SUB_NSLOTS    2	  /* subprogram frames: r10-8, r10-16 */
#define CTX_SPILL_OFF (-72)
#define MAX_BODY      64 /* items per frame (each a few instructions) */
#define MAX_JUMPS     8	 /* bounds the verifier's path count */
#define MAX_SUBPROGS  2
#define MAX_INSNS     1024
#define REG_CTX	      1
#define REG_MAP	      9

static const uint8_t main_regs[] = { 0, 2, 3, 4, 5, 6, 7, 8 };
static const uint8_t sub_regs[] = { 0, 2, 3, 4, 5 };

struct rng {
	uint64_t s;
};

/* splitmix64: tiny, full-period, and good enough to pick instructions. */
static uint64_t rnd(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t rnd_below(struct rng *r, uint32_t n)
{
	return (uint32_t)(rnd(r) % n);
}

static bool chance(struct rng *r, uint32_t percent)
{
	return rnd_below(r, 100) < percent;
}

/* Immediates biased towards the edges where engines get things wrong. */
static int32_t rnd_imm(struct rng *r)
{
	static const int32_t edges[] = { 0,	 1,	 -1,	     2,		7,    8,    31,
					 32,	 63,	 64,	     0x7f,	0x80, 0xff, 0x7fff,
					 0x8000, 0xffff, 0x7fffffff, INT32_MIN, -2 };

	switch (rnd_below(r, 4)) {
	case 0:
		return edges[rnd_below(r, LEAP_ARRAY_SIZE(edges))];
	case 1:
		return (int32_t)rnd_below(r, 256) - 128;
	default:
		return (int32_t)rnd(r);
	}
}

static uint64_t rnd_imm64(struct rng *r)
{
	static const uint64_t edges[] = { 0,
					  1,
					  ~0ull,
					  0x8000000000000000ull,
					  0x7fffffffffffffffull,
					  0xffffffffull,
					  0x100000000ull,
					  0xffffffff80000000ull };

	if (chance(r, 30))
		return edges[rnd_below(r, LEAP_ARRAY_SIZE(edges))];
	return rnd(r);
}

struct prog {
	struct bpf_insn insns[MAX_INSNS];
	uint32_t cnt;
	/* Indexes of ld_imm64 BPF_PSEUDO_MAP_VALUE instructions (imm = map fd at load). */
	uint32_t map_refs[4];
	uint32_t map_ref_cnt;
};

/* What the current frame may touch. */
struct gen {
	struct rng *r;
	const uint8_t *regs; /* initialised scalar registers */
	uint32_t nregs;
	uint32_t nslots; /* initialised 8-byte stack slots below r10 */
	bool map;	 /* r9 points to the map value */
	uint32_t nsub;	 /* subprograms this frame may call */
};

static uint8_t rnd_scalar(const struct gen *g)
{
	return g->regs[rnd_below(g->r, g->nregs)];
}

static void emit(struct prog *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	struct bpf_insn *i = &p->insns[p->cnt++];

	memset(i, 0, sizeof(*i));
	i->code = code;
	i->dst_reg = dst;
	i->src_reg = src;
	i->off = off;
	i->imm = imm;
}

static void emit_ld_imm64(struct prog *p, uint8_t dst, uint64_t v)
{
	emit(p, BPF_LD | BPF_DW | BPF_IMM, dst, 0, 0, (int32_t)(uint32_t)v);
	emit(p, 0, 0, 0, 0, (int32_t)(uint32_t)(v >> 32));
}

static void emit_map_value(struct prog *p, uint8_t dst, uint32_t off)
{
	p->map_refs[p->map_ref_cnt++] = p->cnt;
	emit(p, BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_VALUE, 0, 0);
	emit(p, 0, 0, 0, 0, (int32_t)off);
}

static const uint8_t size_codes[] = { BPF_B, BPF_H, BPF_W, BPF_DW };
static const uint8_t size_bytes[] = { 1, 2, 4, 8 };

enum region { REGION_CTX, REGION_MAP, REGION_STACK };

static enum region rnd_region(const struct gen *g, bool ctx_ok)
{
	for (;;) {
		enum region reg = (enum region)rnd_below(g->r, 3);

		if ((reg == REGION_CTX && ctx_ok) || (reg == REGION_MAP && g->map) ||
		    reg == REGION_STACK)
			return reg;
	}
}

/* A base register and an offset for an aligned `bytes`-wide access in `reg`. */
static void rnd_addr(const struct gen *g, enum region reg, uint32_t bytes, uint8_t *base,
		     int16_t *off)
{
	switch (reg) {
	case REGION_CTX:
		*base = REG_CTX;
		*off = (int16_t)(rnd_below(g->r, CTX_SIZE / bytes) * bytes);
		break;
	case REGION_MAP:
		*base = REG_MAP;
		*off = (int16_t)(rnd_below(g->r, DATA_SIZE / bytes) * bytes);
		break;
	default:
		*base = BPF_REG_10;
		*off = (int16_t) - (int)((rnd_below(g->r, g->nslots * 8 / bytes) + 1) * bytes);
		break;
	}
}

static void gen_load(const struct gen *g, struct prog *p, uint8_t dst)
{
	enum region reg = rnd_region(g, true);
	uint32_t sz = rnd_below(g->r, 4);
	bool sx = sz < 3 && chance(g->r, 35);
	uint8_t base;
	int16_t off;

	rnd_addr(g, reg, size_bytes[sz], &base, &off);
	emit(p, BPF_LDX | (sx ? BPF_MEMSX : BPF_MEM) | size_codes[sz], dst, base, off, 0);
}

static void gen_store(const struct gen *g, struct prog *p)
{
	enum region reg = rnd_region(g, true);
	uint32_t sz = rnd_below(g->r, 4);
	uint8_t base;
	int16_t off;

	rnd_addr(g, reg, size_bytes[sz], &base, &off);
	/* The verifier refuses BPF_ST (immediate) stores into the context. */
	if (reg != REGION_CTX && chance(g->r, 40))
		emit(p, BPF_ST | BPF_MEM | size_codes[sz], base, 0, off, rnd_imm(g->r));
	else
		emit(p, BPF_STX | BPF_MEM | size_codes[sz], base, rnd_scalar(g), off, 0);
}

static void gen_atomic(const struct gen *g, struct prog *p)
{
	static const int32_t ops[] = { BPF_ADD, BPF_OR, BPF_AND, BPF_XOR, BPF_XCHG, BPF_CMPXCHG };
	/* Atomics are refused on the context: map value and stack only. */
	enum region reg = g->map && chance(g->r, 70) ? REGION_MAP : REGION_STACK;
	uint32_t sz = chance(g->r, 50) ? 2 : 3;
	int32_t op = ops[rnd_below(g->r, LEAP_ARRAY_SIZE(ops))];
	uint8_t src = rnd_scalar(g);
	uint8_t base;
	int16_t off;

	/*
	 * Kernel 6.18 bug found by this fuzzer: precision backtracking does
	 * not follow the value a fetching atomic (xchg, cmpxchg, fetch_*)
	 * loads from a stack slot, across a subprogram return; pruning then
	 * drops a feasible path and the branch is compiled as always taken.
	 * leap-bpfrun --engine kernel 00000000 prints 7fff, interp/jit 63:
	 *   7116000000000000 0500000000000000 (x10) b7020000ff7f0000
	 *   1506010000000000 b402000000000080 8510000003000000 26000100ffffff7f
	 *   b700000063000000 9500000000000000 b7000000ff7f0000 7b2af8ff00000000
	 *   b704000001000000 c34af8fff1000000 9500000000000000
	 * So stack atomics here never fetch; map values (whose contents the
	 * verifier does not know) get every kind.
	 */
	if (reg == REGION_STACK)
		op = ops[rnd_below(g->r, 4)];
	else if (op != BPF_XCHG && op != BPF_CMPXCHG && chance(g->r, 50))
		op |= BPF_FETCH;
	rnd_addr(g, reg, size_bytes[sz], &base, &off);
	emit(p, BPF_STX | BPF_ATOMIC | size_codes[sz], base, src, off, op);
	/*
	 * Kernel 6.18 bug found by this fuzzer: x86 `lock cmpxchg` leaves rax
	 * alone on success, so the kernel zero-extends r0 after a 32-bit
	 * cmpxchg only where the verifier saw r0 read as 64 bits — and it
	 * misses reads on paths it pruned (say, the other branch called a
	 * subprogram). The ISA says zero-extend; our engines do. Reproducer:
	 * `leap-bpfrun --engine kernel 00000000` prints ffffffff, interp 0:
	 *   b7000000ffffffff 630af8ff00000000 6118000000000000 c30af8fff1000000
	 *   b608010005000000 8510000002000000 7700000020000000 9500000000000000
	 *   b700000007000000 9500000000000000
	 * A 64-bit read right away (r0 = r0, a no-op) makes the kernel
	 * zero-extend, and still exposes an engine that does not.
	 */
	if (op == BPF_CMPXCHG && sz == 2)
		emit(p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_0, BPF_REG_0, 0, 0);
}

static void gen_alu(const struct gen *g, struct prog *p)
{
	static const uint8_t ops[] = { BPF_ADD, BPF_SUB, BPF_MUL,  BPF_DIV, BPF_OR,
				       BPF_AND, BPF_LSH, BPF_RSH,  BPF_NEG, BPF_MOD,
				       BPF_XOR, BPF_MOV, BPF_ARSH, BPF_END };
	struct rng *r = g->r;
	bool is64 = chance(r, 50);
	uint8_t cls = is64 ? BPF_ALU64 : BPF_ALU;
	uint8_t op = ops[rnd_below(r, LEAP_ARRAY_SIZE(ops))];
	uint8_t dst = rnd_scalar(g);
	bool use_reg = chance(r, 50);
	int16_t off = 0;
	int32_t imm = rnd_imm(r);

	switch (op) {
	case BPF_NEG:
		emit(p, cls | BPF_NEG | BPF_K, dst, 0, 0, 0);
		return;
	case BPF_END: {
		static const int32_t widths[] = { 16, 32, 64 };

		imm = widths[rnd_below(r, 3)];
		/* ALU64|END is the v4 unconditional bswap and only exists as TO_LE. */
		if (is64)
			emit(p, BPF_ALU64 | BPF_END | BPF_TO_LE, dst, 0, 0, imm);
		else
			emit(p, BPF_ALU | BPF_END | (chance(r, 50) ? BPF_TO_BE : BPF_TO_LE), dst, 0,
			     0, imm);
		return;
	}
	case BPF_DIV:
	case BPF_MOD:
		if (chance(r, 40))
			off = LEAP_BPF_OFF_SIGNED;
		/* A constant zero divisor is a verifier error; a register holding zero is defined. */
		if (!use_reg && imm == 0)
			imm = chance(r, 50) ? -1 : 3;
		break;
	case BPF_LSH:
	case BPF_RSH:
	case BPF_ARSH:
		if (!use_reg)
			imm = (int32_t)rnd_below(r, is64 ? 64 : 32);
		break;
	case BPF_MOV:
		if (use_reg && chance(r, 30)) {
			static const int16_t sx[] = { 8, 16, 32 };

			off = sx[rnd_below(r, is64 ? 3 : 2)]; /* movsx */
		}
		break;
	}
	if (use_reg)
		emit(p, cls | op | BPF_X, dst, rnd_scalar(g), off, 0);
	else
		emit(p, cls | op | BPF_K, dst, 0, off, imm);
}

/*
 * A body item: a few instructions. Jumps hold a target item index and calls
 * a subprogram number until layout turns them into offsets.
 */
struct item {
	struct bpf_insn insn[8];
	uint8_t n;
	uint8_t kind; /* ITEM_* */
	uint8_t at;   /* index in insn[] of the jump or call */
	bool gotol;   /* JMP32|JA: the offset lives in imm */
	uint32_t target;
};
enum { ITEM_PLAIN, ITEM_JUMP, ITEM_CALL };

static void gen_jump(const struct gen *g, struct item *it, uint32_t idx, uint32_t nitems)
{
	static const uint8_t conds[] = { BPF_JEQ,  BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT,
					 BPF_JSGE, BPF_JLT, BPF_JLE, BPF_JSLT, BPF_JSLE };
	struct rng *r = g->r;
	struct bpf_insn *i = &it->insn[0];

	it->n = 1;
	it->kind = ITEM_JUMP;
	/* Forward only, at most to the epilogue (item index nitems). */
	it->target = idx + 1 + rnd_below(r, nitems - idx);
	if (chance(r, 10)) {
		/*
		 * The verifier rejects code no path reaches, so a conditional
		 * jump over the ja leads into what the ja skips.
		 */
		i->code = BPF_JMP | BPF_JEQ | BPF_K;
		i->dst_reg = rnd_scalar(g);
		i->imm = rnd_imm(r);
		i->off = 1;
		it->gotol = chance(r, 50);
		it->insn[1].code = (it->gotol ? BPF_JMP32 : BPF_JMP) | BPF_JA;
		it->n = 2;
		it->at = 1;
		return;
	}
	i->code =
	    (chance(r, 50) ? BPF_JMP32 : BPF_JMP) | conds[rnd_below(r, LEAP_ARRAY_SIZE(conds))];
	i->dst_reg = rnd_scalar(g);
	if (chance(r, 50)) {
		i->code |= BPF_X;
		i->src_reg = rnd_scalar(g);
	} else {
		i->code |= BPF_K;
		i->imm = rnd_imm(r);
	}
}

/* call subprog; then r1 = the spilled ctx pointer and r2..r5 set again. */
static void gen_call(const struct gen *g, struct item *it)
{
	struct prog tmp;

	tmp.cnt = 0;
	emit(&tmp, BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, 0);
	emit(&tmp, BPF_LDX | BPF_MEM | BPF_DW, REG_CTX, BPF_REG_10, CTX_SPILL_OFF, 0);
	for (uint8_t reg = 2; reg <= 5; reg++) {
		if (chance(g->r, 50))
			emit(&tmp, BPF_ALU64 | BPF_MOV | BPF_X, reg, BPF_REG_0, 0, 0);
		else
			emit(&tmp, BPF_ALU64 | BPF_MOV | BPF_K, reg, 0, 0, rnd_imm(g->r));
	}
	memcpy(it->insn, tmp.insns, tmp.cnt * sizeof(struct bpf_insn));
	it->n = (uint8_t)tmp.cnt;
	it->kind = ITEM_CALL;
	it->at = 0;
	it->target = rnd_below(g->r, g->nsub);
}

static void gen_item(const struct gen *g, struct item *it)
{
	struct prog tmp;
	uint32_t k = rnd_below(g->r, 100);

	tmp.cnt = 0;
	if (k < 50)
		gen_alu(g, &tmp);
	else if (k < 54)
		emit_ld_imm64(&tmp, rnd_scalar(g), rnd_imm64(g->r));
	else if (k < 70)
		gen_load(g, &tmp, rnd_scalar(g));
	else if (k < 84)
		gen_store(g, &tmp);
	else
		gen_atomic(g, &tmp);
	memcpy(it->insn, tmp.insns, tmp.cnt * sizeof(struct bpf_insn));
	it->n = (uint8_t)tmp.cnt;
	it->kind = ITEM_PLAIN;
}

/* A call instruction waiting for its subprogram's start. */
struct call_fixup {
	uint32_t insn, sub;
};

/*
 * Random body of `nitems` items appended to p; jumps resolved, calls
 * recorded in fix[] (returns their number).
 */
static uint32_t gen_body(const struct gen *g, struct prog *p, uint32_t nitems,
			 struct call_fixup *fix)
{
	struct item items[MAX_BODY];
	uint32_t pos[MAX_BODY + 1];
	uint32_t jumps = 0, nfix = 0;

	for (uint32_t i = 0; i < nitems; i++) {
		memset(&items[i], 0, sizeof(items[i]));
		if (jumps < MAX_JUMPS && chance(g->r, 12)) {
			gen_jump(g, &items[i], i, nitems);
			jumps++;
		} else if (g->nsub && chance(g->r, 4)) {
			gen_call(g, &items[i]);
		} else {
			gen_item(g, &items[i]);
		}
	}
	pos[0] = p->cnt;
	for (uint32_t i = 0; i < nitems; i++)
		pos[i + 1] = pos[i] + items[i].n;
	for (uint32_t i = 0; i < nitems; i++) {
		struct item *it = &items[i];
		struct bpf_insn *j = &it->insn[it->at];

		if (it->kind == ITEM_JUMP) {
			int32_t delta = (int32_t)(pos[it->target] - (pos[i] + it->at + 1));

			if (it->gotol)
				j->imm = delta;
			else
				j->off = (int16_t)delta;
		} else if (it->kind == ITEM_CALL) {
			fix[nfix].insn = pos[i] + it->at;
			fix[nfix++].sub = it->target;
		}
		memcpy(&p->insns[p->cnt], it->insn, it->n * sizeof(struct bpf_insn));
		p->cnt += it->n;
	}
	return nfix;
}

static void gen_subprog(struct rng *r, struct prog *p)
{
	struct gen g = {
		.r = r, .regs = sub_regs, .nregs = LEAP_ARRAY_SIZE(sub_regs), .nslots = SUB_NSLOTS
	};

	/* r0 is not an argument; r2..r5 are. The frame's own slots are written first. */
	emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, rnd_imm(r));
	for (uint32_t s = 0; s < SUB_NSLOTS; s++)
		emit(p, BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, (uint8_t)(2 + s),
		     (int16_t) - (int)(8 * (s + 1)), 0);
	gen_body(&g, p, 4 + rnd_below(r, 16), NULL);
	emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

static void gen_prog(struct rng *r, struct prog *p)
{
	struct gen g = { .r = r,
			 .regs = main_regs,
			 .nregs = LEAP_ARRAY_SIZE(main_regs),
			 .nslots = NSLOTS,
			 .map = true };
	struct call_fixup fix[MAX_BODY];
	uint32_t sub_start[MAX_SUBPROGS];
	uint32_t nfix;

	p->cnt = 0;
	p->map_ref_cnt = 0;
	g.nsub = rnd_below(r, MAX_SUBPROGS + 1);
	emit_map_value(p, REG_MAP, 0);
	emit(p, BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, REG_CTX, CTX_SPILL_OFF, 0);
	/* Stack first: register set-up may load from it. r0 is scratch until set below. */
	for (uint32_t s = 0; s < NSLOTS; s++) {
		emit_ld_imm64(p, BPF_REG_0, rnd_imm64(r));
		emit(p, BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, BPF_REG_0,
		     (int16_t) - (int)(8 * (s + 1)), 0);
	}
	for (uint32_t i = 0; i < LEAP_ARRAY_SIZE(main_regs); i++) {
		uint8_t reg = main_regs[i];
		uint32_t k = rnd_below(r, 100);

		if (k < 45)
			emit(p, BPF_ALU64 | BPF_MOV | BPF_K, reg, 0, 0, rnd_imm(r));
		else if (k < 65)
			emit_ld_imm64(p, reg, rnd_imm64(r));
		else if (k < 80)
			emit(p, BPF_ALU | BPF_MOV | BPF_K, reg, 0, 0, rnd_imm(r));
		else
			gen_load(&g, p, reg);
	}

	nfix = gen_body(&g, p, 8 + rnd_below(r, MAX_BODY - 8), fix);

	/* Epilogue: make all state visible in the map, then return r0. */
	for (uint32_t i = 0; i < LEAP_ARRAY_SIZE(main_regs); i++)
		emit(p, BPF_STX | BPF_MEM | BPF_DW, REG_MAP, main_regs[i],
		     (int16_t)(REGDUMP_OFF + 8 * i), 0);
	for (uint32_t s = 0; s < NSLOTS; s++) {
		emit(p, BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_2, BPF_REG_10,
		     (int16_t) - (int)(8 * (s + 1)), 0);
		emit(p, BPF_STX | BPF_MEM | BPF_DW, REG_MAP, BPF_REG_2,
		     (int16_t)(STACKDUMP_OFF + 8 * s), 0);
	}
	emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);

	/* Only subprograms some call reaches: the verifier rejects unreachable code. */
	for (uint32_t s = 0; s < g.nsub; s++) {
		bool used = false;

		for (uint32_t i = 0; i < nfix; i++)
			used |= fix[i].sub == s;
		if (used) {
			sub_start[s] = p->cnt;
			gen_subprog(r, p);
		}
	}
	for (uint32_t i = 0; i < nfix; i++)
		p->insns[fix[i].insn].imm = (int32_t)(sub_start[fix[i].sub] - (fix[i].insn + 1));
}

#endif /* LEAPIO_BPF_FUZZ_GEN_H */
