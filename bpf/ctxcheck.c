// SPDX-License-Identifier: BSD-3-Clause
/*
 * Context bounds. For BPF_PROG_TYPE_SYSCALL the kernel verifier accepts any
 * context offset below 64 KiB because it does not know the context's size;
 * we do (each hook declares it), so every load or store through the
 * context pointer must land inside it.
 *
 * A forward may-analysis to a fixed point: per instruction, which registers
 * may hold the unmodified context pointer, which registers hold r10 plus a
 * known constant, and which 8-byte stack slots may hold a spilled context
 * pointer. Functions start with r1-r5 merged from their call sites and
 * return r0 merged from their exits. Arithmetic on the context pointer
 * yields a value the kernel will not let the program dereference, so it
 * drops out of the analysis. A context pointer stored through a pointer we
 * cannot follow is not tracked: leapd also hands every run a context buffer
 * of 64 KiB (the kernel's own bound), so that gap cannot corrupt memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bpf_internal.h"

#define FP_UNKNOWN INT32_MIN
#define SLOTS	   (LEAP_BPF_STACK_SIZE / 8)

struct state {
	uint8_t live;
	uint16_t ctx;	   /* bit r: register r may hold the context pointer */
	int32_t fp[11];	   /* r10 + fp[r] when known, else FP_UNKNOWN */
	uint64_t slot_ctx; /* bit k: stack slot at r10 - 8*(k+1) may hold it */
};

static bool merge(struct state *dst, const struct state *src)
{
	bool changed = false;

	if (!dst->live) {
		*dst = *src;
		dst->live = 1;
		return true;
	}
	if ((dst->ctx | src->ctx) != dst->ctx) {
		dst->ctx |= src->ctx;
		changed = true;
	}
	if ((dst->slot_ctx | src->slot_ctx) != dst->slot_ctx) {
		dst->slot_ctx |= src->slot_ctx;
		changed = true;
	}
	for (int r = 0; r < 11; r++) {
		if (dst->fp[r] != FP_UNKNOWN && dst->fp[r] != src->fp[r]) {
			dst->fp[r] = FP_UNKNOWN;
			changed = true;
		}
	}
	return changed;
}

static void clobber(struct state *s, int r)
{
	s->ctx &= (uint16_t) ~(1u << r);
	s->fp[r] = FP_UNKNOWN;
}

/* Stack slot index for r10-relative offset `off` of an 8-byte access, or -1. */
static int slot_of(int32_t off)
{
	if (off >= 0 || off < -LEAP_BPF_STACK_SIZE || (off & 7))
		return -1;
	return (-off / 8) - 1;
}

static int size_of(uint8_t code)
{
	switch (BPF_SIZE(code)) {
	case BPF_B:
		return 1;
	case BPF_H:
		return 2;
	case BPF_W:
		return 4;
	default:
		return 8;
	}
}

static int check_access(const struct leap_bpf_prog *p, uint32_t i, const struct state *s, int base,
			int size, char *eb, size_t es)
{
	const struct bpf_insn *in = &p->insns[i];

	if (!(s->ctx & (1u << base)))
		return 0;
	if (in->off < 0 || (uint32_t)in->off + (uint32_t)size > p->ctx_size)
		return leap_bpf_reject(eb, es, i,
				       "context access at offset %d size %d outside the %u-byte "
				       "context",
				       in->off, size, p->ctx_size);
	return 0;
}

/* Apply instruction i to s (in place). Returns 0 or a rejection. */
static int transfer(const struct leap_bpf_prog *p, uint32_t i, struct state *s, bool *ret_ctx,
		    char *eb, size_t es)
{
	const struct bpf_insn *in = &p->insns[i];
	uint8_t cls = BPF_CLASS(in->code);
	int d = in->dst_reg, sr = in->src_reg, size = size_of(in->code), slot;
	int err;

	switch (cls) {
	case BPF_ALU64:
		if (BPF_OP(in->code) == BPF_MOV && BPF_SRC(in->code) == BPF_X && in->off == 0) {
			s->ctx = (uint16_t)((s->ctx & ~(1u << d)) | (((s->ctx >> sr) & 1u) << d));
			s->fp[d] = s->fp[sr];
			return 0;
		}
		if ((BPF_OP(in->code) == BPF_ADD || BPF_OP(in->code) == BPF_SUB) &&
		    BPF_SRC(in->code) == BPF_K && s->fp[d] != FP_UNKNOWN) {
			int64_t v = (int64_t)s->fp[d] +
				    (BPF_OP(in->code) == BPF_ADD ? in->imm : -(int64_t)in->imm);

			clobber(s, d);
			if (v >= -LEAP_BPF_STACK_SIZE && v <= 0)
				s->fp[d] = (int32_t)v;
			return 0;
		}
		clobber(s, d);
		return 0;
	case BPF_ALU:
	case BPF_LD:
		clobber(s, d);
		return 0;
	case BPF_LDX:
		err = check_access(p, i, s, sr, size, eb, es);
		if (err)
			return err;
		slot = s->fp[sr] != FP_UNKNOWN && size == 8 ? slot_of(s->fp[sr] + in->off) : -1;
		clobber(s, d);
		if (slot >= 0 && (s->slot_ctx >> slot) & 1)
			s->ctx |= (uint16_t)(1u << d);
		return 0;
	case BPF_ST:
	case BPF_STX:
		err = check_access(p, i, s, d, size, eb, es);
		if (err)
			return err;
		if (s->fp[d] != FP_UNKNOWN) {
			int32_t off = s->fp[d] + in->off;

			/* Any write touching a slot replaces what the slot held. */
			for (int b = off & ~7; b < off + size; b += 8)
				if (slot_of(b) >= 0)
					s->slot_ctx &= ~(1ull << slot_of(b));
			slot = slot_of(off);
			if (cls == BPF_STX && BPF_MODE(in->code) == BPF_MEM && size == 8 &&
			    slot >= 0 && ((s->ctx >> sr) & 1))
				s->slot_ctx |= 1ull << slot;
		}
		if (cls == BPF_STX && BPF_MODE(in->code) == BPF_ATOMIC) {
			if (in->imm & BPF_FETCH)
				clobber(s, sr);
			if (in->imm == BPF_CMPXCHG)
				clobber(s, 0);
		}
		return 0;
	default: /* JMP, JMP32 */
		if (BPF_OP(in->code) == BPF_CALL) {
			bool callee_ret =
			    in->src_reg == BPF_PSEUDO_CALL &&
			    ret_ctx[leap_bpf_subprog_of(p, i + 1 + (uint32_t)in->imm)];

			for (int r = 0; r <= 5; r++)
				clobber(s, r);
			if (callee_ret)
				s->ctx |= 1;
		}
		return 0;
	}
}

int leap_bpf_ctxcheck(const struct leap_bpf_prog *p, char *eb, size_t es)
{
	struct state *st = calloc(p->insn_cnt, sizeof(*st));
	bool *ret_ctx = calloc(p->subprog_cnt, sizeof(*ret_ctx));
	bool changed = true;
	int err = 0;

	if (!st || !ret_ctx) {
		err = -ENOMEM;
		goto out;
	}
	st[0].live = 1;
	st[0].ctx = 1u << BPF_REG_1;
	for (int r = 0; r < 11; r++)
		st[0].fp[r] = FP_UNKNOWN;
	st[0].fp[BPF_REG_10] = 0;

	while (changed && !err) {
		changed = false;
		for (uint32_t i = 0; i < p->insn_cnt && !err; i++) {
			const struct bpf_insn *in = &p->insns[i];
			struct state s;
			uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
			uint32_t next = leap_bpf_is_lddw(in) ? i + 2 : i + 1;

			if (!st[i].live)
				continue;
			s = st[i];
			err = transfer(p, i, &s, ret_ctx, eb, es);
			if (err)
				break;
			if (cls == BPF_JMP || cls == BPF_JMP32) {
				if (op == BPF_EXIT) {
					uint32_t f = leap_bpf_subprog_of(p, i);

					if ((st[i].ctx & 1) && !ret_ctx[f]) {
						ret_ctx[f] = true;
						changed = true;
					}
					continue;
				}
				if (op == BPF_CALL && in->src_reg == BPF_PSEUDO_CALL) {
					/* Callee entry: r1-r5 from here, a fresh frame. */
					uint32_t t = i + 1 + (uint32_t)in->imm;
					struct state e = { .live = 1 };

					for (int r = 0; r < 11; r++)
						e.fp[r] = FP_UNKNOWN;
					e.fp[BPF_REG_10] = 0;
					e.ctx = st[i].ctx & 0x3e;
					changed |= merge(&st[t], &e);
				}
				if (op == BPF_JA) {
					changed |= merge(
					    &st[i + 1 + (cls == BPF_JMP ? in->off : in->imm)], &s);
					continue;
				}
				if (op != BPF_CALL)
					changed |= merge(&st[i + 1 + in->off], &s);
			}
			if (next < p->insn_cnt)
				changed |= merge(&st[next], &s);
		}
	}
out:
	free(st);
	free(ret_ctx);
	return err;
}
