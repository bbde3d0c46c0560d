// SPDX-License-Identifier: BSD-3-Clause
/*
 * Context bounds. For BPF_PROG_TYPE_SYSCALL the kernel verifier accepts any
 * context offset below 64 KiB because it does not know the context's size;
 * we do (each hook declares it), so every load or store through a value
 * derived from the context pointer must land inside it.
 *
 * A forward may-analysis to a fixed point over basic blocks. Each register
 * and each 8-byte slot of the function's own 512-byte frame holds an
 * abstract value: "may be the context pointer plus a known constant (or
 * plus something unknown)", "may be this frame's r10 plus a known
 * constant", "may point into some other stack or unknown memory" (wild),
 * or a scalar, possibly a known constant. Constants are followed through
 * arithmetic, so `r3 = 8; r1 += r3` and `r1 += 8; r1 -= 8` keep an exact
 * offset; any other arithmetic touching the context pointer taints the
 * result as "context, offset unknown", and dereferencing that is rejected.
 * 32-bit operations and partial loads or stores of a pointer taint the same
 * way.
 *
 * Memory we cannot name precisely (map values, the context itself, other
 * frames reached through pointer arguments) is summarised by two values for
 * the whole program: E, everything stored through such pointers, and X,
 * everything held in a frame whose address has escaped (passed to a call,
 * stored to memory, returned, or given an unknown offset). Loads through
 * such pointers yield E and X; loads from an escaped frame's own slots also
 * yield E, which is how a callee that writes the context pointer into its
 * caller's stack is caught. Atomic operations read and write memory the
 * same way (xchg and cmpxchg move values both ways).
 *
 * The same pass measures each function's stack depth: the deepest byte
 * below r10 reached through a known offset, or the whole frame once its
 * address escapes or gets an unknown offset. The interpreter and the JIT
 * zero exactly that much at function entry (prog->stack_depth), so a run
 * never reads what an earlier one left on the stack. The depth is computed
 * for every program; the context checks only run with a ctx_size.
 *
 * It also records which 8-byte words of the context some path may read and
 * which it may write (prog->ctx_rd/ctx_wr): every access through a value
 * that may be the context pointer has a known offset here or was rejected,
 * so the masks are complete. leapd fills only the words a chain can read.
 *
 * Helpers are runtime code: they return scalars and store no pointers; r1-r5
 * after any call are unreadable in kernel-verified code and are treated as
 * scalars (tainted if a context pointer was among a helper's arguments). Out
 * of scope are values rebuilt through control flow (bit by bit in branches):
 * the kernel verifier already refuses to dereference scalars, and raw
 * programs run with ctx_size 0 are not checked at all. Accesses through
 * r10 outside the frame are rejected here, as the kernel does, because the
 * slots beyond it belong to other frames.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bpf_internal.h"

#define SLOTS (LEAP_BPF_STACK_SIZE / 8)

/* Abstract value flags. */
#define V_CTX	  0x01 /* may be ctx + coff */
#define V_CTX_UNK 0x02 /* ... with an unknown offset */
#define V_FP	  0x04 /* may be this frame's r10 + foff */
#define V_WILD	  0x08 /* may point into another frame or unknown memory */
#define V_KNOWN	  0x10 /* exactly the constant k (never with a pointer flag) */
#define V_PTR	  (V_CTX | V_FP | V_WILD)

/* No padding anywhere: states are compared with memcmp. */
struct aval {
	uint32_t f;
	int32_t coff, foff;
	int32_t zero;
	int64_t k;
};
_Static_assert(sizeof(struct aval) == 24, "struct aval has padding");

struct state {
	uint32_t live;
	uint32_t exposed;			 /* this frame's address has escaped */
	uint64_t init[LEAP_BPF_STACK_SIZE / 64]; /* bit b: r10 - 512 + b written on every path */
	struct aval r[11];
	struct aval slot[SLOTS]; /* slot[j] covers r10 - 512 + 8 * j */
};

struct summary {
	uint8_t live;
	struct aval r[6]; /* r0-r5 at the function's exits, in the caller's view */
};

struct ana {
	const struct leap_bpf_prog *p;
	uint32_t *lead;	    /* insn -> state index, or UINT32_MAX */
	struct state *st;   /* one per leader */
	struct summary *fn; /* one per function */
	struct aval E, X;
	uint32_t cur_fn;	 /* function of the block being walked */
	uint16_t *depth;	 /* per function: bytes below r10 it may touch */
	uint64_t ctx_rd, ctx_wr; /* context words (bit i: bytes [8i, 8i + 8)) reached */
	bool changed;
	char *eb;
	size_t es;
};

static const struct aval scalar; /* unknown scalar: all zero */

static struct aval known(int64_t k)
{
	return (struct aval){ .f = V_KNOWN, .k = k };
}

static void norm(struct aval *v)
{
	if (v->f & V_PTR)
		v->f &= (uint32_t)~V_KNOWN;
	if (!(v->f & V_CTX) || (v->f & V_CTX_UNK))
		v->coff = 0;
	if (!(v->f & V_FP))
		v->foff = 0;
	if (!(v->f & V_KNOWN))
		v->k = 0;
}

/* a ⊔ b. Two different frame offsets make a wild pointer: *lost_fp says so. */
static struct aval join(struct aval a, struct aval b, bool *lost_fp)
{
	struct aval v = { .f = a.f | b.f };

	if ((a.f & V_KNOWN) && (b.f & V_KNOWN) && a.k == b.k)
		v.k = a.k;
	else if ((a.f | b.f) & V_KNOWN)
		v.f &= (uint32_t)~V_KNOWN;
	if ((a.f & V_CTX) && (b.f & V_CTX) && !(v.f & V_CTX_UNK) && a.coff != b.coff)
		v.f |= V_CTX_UNK;
	v.coff = (a.f & V_CTX) ? a.coff : b.coff;
	v.foff = (a.f & V_FP) ? a.foff : b.foff;
	/*
	 * Two frame offsets, or a frame pointer that may also be wild: the
	 * result is wild (and the caller exposes the frame), so that joining
	 * again cannot bring the offset back — the join stays monotone.
	 */
	if (((a.f & V_FP) && (b.f & V_FP) && a.foff != b.foff) ||
	    ((v.f & V_FP) && (v.f & V_WILD))) {
		v.f = (uint32_t)((v.f & ~V_FP) | V_WILD);
		*lost_fp = true;
	}
	norm(&v);
	return v;
}

/* The value as another frame sees it: this frame's pointers become wild. */
static struct aval outside(struct aval v)
{
	if (v.f & V_FP)
		v.f = (uint32_t)((v.f & ~V_FP) | V_WILD);
	norm(&v);
	return v;
}

static void global_join(struct ana *a, struct aval *g, struct aval v)
{
	bool lost = false;
	struct aval n = join(*g, outside(v), &lost);

	if (memcmp(&n, g, sizeof(n))) {
		*g = n;
		a->changed = true;
	}
}

/* The frame's address escapes: whatever it holds may be read from anywhere. */
static void expose(struct ana *a, struct state *s)
{
	/* Another frame or an unknown offset may reach any of it. */
	a->depth[a->cur_fn] = LEAP_BPF_STACK_SIZE;
	if (s->exposed)
		return;
	s->exposed = 1;
	for (int j = 0; j < SLOTS; j++)
		global_join(a, &a->X, s->slot[j]);
}

/* What is left of v after arithmetic we do not follow or a partial access. */
static struct aval taint(struct ana *a, struct state *s, struct aval v)
{
	struct aval t = { .f = v.f & (V_CTX | V_CTX_UNK | V_WILD) };

	if (t.f & V_CTX)
		t.f |= V_CTX_UNK;
	if (v.f & V_FP) {
		t.f |= V_WILD;
		expose(a, s);
	}
	return t;
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

/* The function reaches r10 + o: its stack depth is at least -o. */
static void note_depth(struct ana *a, int64_t o)
{
	uint16_t *d = &a->depth[a->cur_fn];

	if (o >= 0)
		return;
	if (o < -LEAP_BPF_STACK_SIZE)
		o = -LEAP_BPF_STACK_SIZE;
	if ((uint16_t)-o > *d)
		*d = (uint16_t)-o;
}

/* Bytes [lo, hi) below r10 are read: any not surely written must be zeroed at entry. */
static void note_read(struct ana *a, const struct state *s, int64_t lo, int64_t hi)
{
	if (lo < -LEAP_BPF_STACK_SIZE)
		lo = -LEAP_BPF_STACK_SIZE;
	if (hi > 0)
		hi = 0;
	for (int64_t o = lo; o < hi; o++) {
		uint32_t b = (uint32_t)(o + LEAP_BPF_STACK_SIZE);

		if (!(s->init[b / 64] >> (b % 64) & 1)) {
			note_depth(a, o);
			return; /* the lowest byte decides */
		}
	}
}

static void mark_written(struct state *s, int64_t lo, int64_t hi)
{
	if (lo < -LEAP_BPF_STACK_SIZE)
		lo = -LEAP_BPF_STACK_SIZE;
	for (int64_t o = lo; o < hi && o < 0; o++) {
		uint32_t b = (uint32_t)(o + LEAP_BPF_STACK_SIZE);

		s->init[b / 64] |= 1ull << (b % 64);
	}
}

/* Bytes [o, o + size) of the context are read and/or written (the bounds were checked). */
static void note_ctx(struct ana *a, int64_t o, int size, bool rd, bool wr)
{
	uint64_t m = 0;

	for (int64_t w = o / 8; w <= (o + size - 1) / 8; w++)
		m |= w < 64 ? 1ull << w : ~0ull; /* beyond 512 bytes: say "all" */
	if (rd)
		a->ctx_rd |= m;
	if (wr)
		a->ctx_wr |= m;
}

static int check_access(struct ana *a, uint32_t i, struct aval base, int32_t off, int size, bool rd,
			bool wr)
{
	const struct leap_bpf_prog *p = a->p;

	if ((base.f & V_CTX) && p->ctx_size) {
		int64_t o = (int64_t)base.coff + off;

		if (base.f & V_CTX_UNK)
			return leap_bpf_reject(a->eb, a->es, i,
					       "context access through a pointer whose offset is "
					       "not known (size %d)",
					       size);
		if (o < 0 || o + size > p->ctx_size)
			return leap_bpf_reject(a->eb, a->es, i,
					       "context access at offset %lld size %d outside the "
					       "%u-byte context",
					       (long long)o, size, p->ctx_size);
		note_ctx(a, o, size, rd, wr);
	}
	if (base.f & V_FP) {
		int64_t o = (int64_t)base.foff + off;

		if (p->ctx_size && (o < -LEAP_BPF_STACK_SIZE || o + size > 0))
			return leap_bpf_reject(a->eb, a->es, i,
					       "stack access at offset %lld size %d outside the "
					       "%d-byte frame",
					       (long long)o, size, LEAP_BPF_STACK_SIZE);
	}
	return 0;
}

/* Load `size` bytes at base + off (already checked). */
static struct aval mem_read(struct ana *a, struct state *s, struct aval base, int32_t off, int size)
{
	struct aval v = scalar;
	bool any = false, lost = false;

	if (base.f & V_FP) {
		int32_t o = base.foff + off + LEAP_BPF_STACK_SIZE;

		if (size == 8 && !(o & 7)) {
			v = s->slot[o / 8];
		} else {
			for (int j = o / 8; j <= (o + size - 1) / 8; j++)
				v = j == o / 8 ? s->slot[j] : join(v, s->slot[j], &lost);
			v = taint(a, s, v);
		}
		if (s->exposed)
			v = join(v, size == 8 ? a->E : taint(a, s, a->E), &lost);
		any = true;
	}
	if (!(base.f & V_FP) || (base.f & (V_CTX | V_WILD))) {
		struct aval m = join(a->E, a->X, &lost);

		if (size != 8)
			m = taint(a, s, m);
		v = any ? join(v, m, &lost) : m;
	}
	if (lost)
		expose(a, s);
	return v;
}

/* Store v (`size` bytes) at base + off (already checked). */
static void mem_write(struct ana *a, struct state *s, struct aval base, int32_t off, int size,
		      struct aval v)
{
	bool lost = false;

	if (base.f & V_FP) {
		int32_t o = base.foff + off + LEAP_BPF_STACK_SIZE;
		bool strong = (base.f & V_PTR) == V_FP;

		if (size == 8 && !(o & 7)) {
			s->slot[o / 8] = strong ? v : join(s->slot[o / 8], v, &lost);
		} else {
			for (int j = o / 8; j <= (o + size - 1) / 8; j++)
				s->slot[j] = taint(a, s, join(s->slot[j], v, &lost));
		}
		if (s->exposed)
			global_join(a, &a->X, size == 8 ? v : taint(a, s, v));
	}
	if (!(base.f & V_FP) || (base.f & (V_CTX | V_WILD))) {
		if (v.f & V_FP)
			expose(a, s);
		global_join(a, &a->E, size == 8 ? v : taint(a, s, v));
	}
	if (lost)
		expose(a, s);
}

/* Constant folding, BPF semantics; false for what we do not fold. */
static bool fold(uint8_t op, bool is64, uint64_t x, uint64_t y, int64_t *out)
{
	uint64_t r;

	if (!is64) {
		x = (uint32_t)x;
		y = (uint32_t)y;
	}
	switch (op) {
	case BPF_ADD:
		r = x + y;
		break;
	case BPF_SUB:
		r = x - y;
		break;
	case BPF_MUL:
		r = x * y;
		break;
	case BPF_OR:
		r = x | y;
		break;
	case BPF_AND:
		r = x & y;
		break;
	case BPF_XOR:
		r = x ^ y;
		break;
	case BPF_LSH:
		r = x << (y & (is64 ? 63 : 31));
		break;
	case BPF_RSH:
		r = x >> (y & (is64 ? 63 : 31));
		break;
	case BPF_NEG:
		r = (uint64_t)0 - x;
		break;
	case BPF_MOV:
		r = y;
		break;
	default:
		return false;
	}
	*out = (int64_t)(is64 ? r : (uint32_t)r);
	return true;
}

/* ptr + c for a value that may be a pointer with known offsets. */
static struct aval shift(struct ana *a, struct state *s, struct aval v, int64_t c)
{
	if (v.f & V_CTX && !(v.f & V_CTX_UNK)) {
		int64_t o = (int64_t)v.coff + c;

		if (o < INT32_MIN || o > INT32_MAX)
			v.f |= V_CTX_UNK;
		else
			v.coff = (int32_t)o;
	}
	if (v.f & V_FP) {
		int64_t o = (int64_t)v.foff + c;

		if (o < INT32_MIN || o > INT32_MAX) {
			v.f = (uint32_t)((v.f & ~V_FP) | V_WILD);
			expose(a, s);
		} else {
			v.foff = (int32_t)o;
		}
	}
	if (v.f & V_KNOWN)
		v.k = (int64_t)((uint64_t)v.k + (uint64_t)c);
	norm(&v);
	return v;
}

static struct aval alu(struct ana *a, struct state *s, const struct bpf_insn *in)
{
	bool is64 = BPF_CLASS(in->code) == BPF_ALU64, x = BPF_SRC(in->code) == BPF_X;
	uint8_t op = BPF_OP(in->code);
	struct aval d = s->r[in->dst_reg];
	struct aval src =
	    x ? s->r[in->src_reg] : known(is64 ? (int64_t)in->imm : (int64_t)(uint32_t)in->imm);
	bool lost = false;
	int64_t k;

	if (op == BPF_END || op == BPF_NEG)
		src = known(0);
	if (op == BPF_MOV && in->off == 0) {
		if (is64 || !(src.f & V_PTR))
			return is64 ? src : (src.f & V_KNOWN) ? known((uint32_t)src.k) : scalar;
		return taint(a, s, src);
	}
	if (is64 && (op == BPF_ADD || op == BPF_SUB) && !(src.f & V_PTR) && (src.f & V_KNOWN))
		return shift(a, s, d, op == BPF_ADD ? src.k : (int64_t)(0 - (uint64_t)src.k));
	if (is64 && op == BPF_ADD && !(d.f & V_PTR) && (d.f & V_KNOWN) && (src.f & V_PTR))
		return shift(a, s, src, d.k);
	if ((d.f | src.f) & V_PTR) {
		if (op == BPF_MOV) /* movsx */
			return taint(a, s, src);
		return taint(a, s, join(d, src, &lost));
	}
	if (op != BPF_MOV && (d.f & V_KNOWN) && (src.f & V_KNOWN) &&
	    fold(op, is64, (uint64_t)d.k, (uint64_t)src.k, &k))
		return known(k);
	return scalar;
}

/* Atomic read-modify-write at dst + off; the operand and results in registers. */
static void atomic(struct ana *a, struct state *s, const struct bpf_insn *in, int size)
{
	struct aval base = s->r[in->dst_reg], v = s->r[in->src_reg];
	struct aval old = mem_read(a, s, base, in->off, size);
	bool lost = false;

	if (size != 8) {
		old = taint(a, s, old);
		v = taint(a, s, v);
	}
	switch (in->imm) {
	case BPF_XCHG:
		mem_write(a, s, base, in->off, size, v);
		s->r[in->src_reg] = old;
		break;
	case BPF_CMPXCHG:
		mem_write(a, s, base, in->off, size, join(old, v, &lost));
		s->r[BPF_REG_0] = old;
		break;
	default: /* add/or/and/xor, with or without fetch */
		mem_write(a, s, base, in->off, size, taint(a, s, join(old, v, &lost)));
		if (in->imm & BPF_FETCH)
			s->r[in->src_reg] = old;
		break;
	}
	if (lost)
		expose(a, s);
}

static void merge(struct ana *a, uint32_t target, struct state *src)
{
	struct state *dst = &a->st[a->lead[target]];
	uint32_t fn = a->cur_fn;
	struct state n;
	bool lost = false;

	if (!dst->live) {
		*dst = *src;
		dst->live = 1;
		a->changed = true;
		return;
	}
	n.live = 1;
	n.exposed = dst->exposed | src->exposed;
	for (int r = 0; r < 11; r++)
		n.r[r] = join(dst->r[r], src->r[r], &lost);
	for (int j = 0; j < SLOTS; j++)
		n.slot[j] = join(dst->slot[j], src->slot[j], &lost);
	for (int k = 0; k < LEAP_BPF_STACK_SIZE / 64; k++)
		n.init[k] = dst->init[k] & src->init[k];
	if (lost || n.exposed) {
		n.exposed = 0;
		a->cur_fn = leap_bpf_subprog_of(a->p, target);
		expose(a, &n);
		a->cur_fn = fn;
	}
	if (memcmp(&n, dst, sizeof(n))) {
		*dst = n;
		a->changed = true;
	}
}

static void init_frame(struct state *s)
{
	memset(s, 0, sizeof(*s));
	s->live = 1;
	s->r[BPF_REG_10].f = V_FP;
}

static void call(struct ana *a, uint32_t i, struct state *s)
{
	const struct bpf_insn *in = &a->p->insns[i];

	if (in->src_reg != BPF_PSEUDO_CALL) {
		/*
		 * A helper returns a scalar and stores no pointers. r1-r5 are
		 * not readable after the call (the kernel verifier marks them
		 * so; the JIT leaves junk there): they become scalars, except
		 * that a context pointer among the arguments leaves a taint.
		 */
		bool ctx = false;

		for (int r = 1; r <= 5; r++) {
			ctx |= (s->r[r].f & V_CTX) != 0;
			/* Helpers are not analysed: one given the context may touch all of it. */
			if (s->r[r].f & V_CTX) {
				a->ctx_rd = ~0ull;
				a->ctx_wr = ~0ull;
			}
			/* A helper may read from a stack pointer up to the frame's top. */
			if (s->r[r].f & V_FP)
				note_read(a, s, s->r[r].foff, 0);
		}
		s->r[0] = scalar;
		for (int r = 1; r <= 5; r++)
			s->r[r] = ctx ? (struct aval){ .f = V_CTX | V_CTX_UNK } : scalar;
	} else {
		uint32_t t = i + 1 + (uint32_t)in->imm;
		const struct summary *f = &a->fn[leap_bpf_subprog_of(a->p, t)];
		struct state e;

		init_frame(&e);
		for (int r = 0; r < 10; r++) {
			if (s->r[r].f & V_FP)
				expose(a, s);
			e.r[r] = outside(s->r[r]);
		}
		merge(a, t, &e);
		/* r6-r9 and r10 are restored; r0-r5 are what the callee left. */
		for (int r = 0; r <= 5; r++)
			s->r[r] = f->live ? f->r[r] : scalar;
	}
}

static void exit_fn(struct ana *a, uint32_t i, struct state *s)
{
	struct summary *f = &a->fn[leap_bpf_subprog_of(a->p, i)];
	bool lost = false;

	for (int r = 0; r <= 5; r++) {
		struct aval v;

		/*
		 * A stack pointer returned in r0 lets the caller read this
		 * frame. r1-r5 are not readable after a call (the kernel marks
		 * them so): they go back as wild pointers, but do not make the
		 * frame escape, since clang leaves argument pointers there.
		 */
		if (r == 0 && (s->r[r].f & V_FP) && a->cur_fn)
			expose(a, s);
		v = f->live ? join(f->r[r], outside(s->r[r]), &lost) : outside(s->r[r]);
		if (!f->live || memcmp(&v, &f->r[r], sizeof(v))) {
			f->r[r] = v;
			a->changed = true;
		}
	}
	f->live = 1;
}

/* Run one basic block from leader l; merges into successors. */
static int walk(struct ana *a, uint32_t l)
{
	const struct leap_bpf_prog *p = a->p;
	struct state s = a->st[a->lead[l]];
	int err;

	a->cur_fn = leap_bpf_subprog_of(p, l);
	for (uint32_t i = l;;) {
		const struct bpf_insn *in = &p->insns[i];
		uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
		int size = size_of(in->code);
		uint32_t next = leap_bpf_is_lddw(in) ? i + 2 : i + 1;

		switch (cls) {
		case BPF_ALU:
		case BPF_ALU64:
			s.r[in->dst_reg] = alu(a, &s, in);
			break;
		case BPF_LD:
			s.r[in->dst_reg] = known((int64_t)((uint64_t)(uint32_t)in->imm |
							   ((uint64_t)(uint32_t)in[1].imm << 32)));
			break;
		case BPF_LDX:
			err = check_access(a, i, s.r[in->src_reg], in->off, size, true, false);
			if (err)
				return err;
			if (s.r[in->src_reg].f & V_FP)
				note_read(a, &s, (int64_t)s.r[in->src_reg].foff + in->off,
					  (int64_t)s.r[in->src_reg].foff + in->off + size);
			s.r[in->dst_reg] = mem_read(a, &s, s.r[in->src_reg], in->off, size);
			if (BPF_MODE(in->code) == BPF_MEMSX || size != 8)
				s.r[in->dst_reg] = taint(a, &s, s.r[in->dst_reg]);
			break;
		case BPF_ST:
		case BPF_STX:
			err =
			    check_access(a, i, s.r[in->dst_reg], in->off, size,
					 cls == BPF_STX && BPF_MODE(in->code) == BPF_ATOMIC, true);
			if (err)
				return err;
			if (s.r[in->dst_reg].f & V_FP) {
				int64_t o = (int64_t)s.r[in->dst_reg].foff + in->off;

				if (cls == BPF_STX && BPF_MODE(in->code) == BPF_ATOMIC)
					note_read(a, &s, o, o + size);
				if ((s.r[in->dst_reg].f & V_PTR) == V_FP)
					mark_written(&s, o, o + size);
			}
			if (cls == BPF_STX && BPF_MODE(in->code) == BPF_ATOMIC)
				atomic(a, &s, in, size);
			else
				mem_write(a, &s, s.r[in->dst_reg], in->off, size,
					  cls == BPF_ST ? known(in->imm) : s.r[in->src_reg]);
			break;
		default: /* JMP, JMP32 */
			if (op == BPF_EXIT) {
				exit_fn(a, i, &s);
				return 0;
			}
			if (op == BPF_CALL) {
				call(a, i, &s);
				break;
			}
			if (op == BPF_JA) {
				merge(a, i + 1 + (cls == BPF_JMP ? in->off : in->imm), &s);
				return 0;
			}
			merge(a, i + 1 + in->off, &s);
			break;
		}
		if (a->lead[next] != UINT32_MAX) {
			merge(a, next, &s);
			return 0;
		}
		i = next;
	}
}

int leap_bpf_ctxcheck(struct leap_bpf_prog *p, char *eb, size_t es)
{
	struct ana a = { .p = p, .eb = eb, .es = es, .changed = true };
	uint8_t *targets;
	uint32_t n = 0;
	int err = 0;

	a.lead = malloc(((size_t)p->insn_cnt + 1) * sizeof(*a.lead));
	a.fn = calloc(p->subprog_cnt, sizeof(*a.fn));
	a.depth = calloc(p->subprog_cnt, sizeof(*a.depth));
	if (!a.lead || !a.fn || !a.depth) {
		err = -ENOMEM;
		goto out;
	}
	memset(a.lead, 0xff, ((size_t)p->insn_cnt + 1) * sizeof(*a.lead));
	for (uint32_t f = 0; f < p->subprog_cnt; f++)
		a.lead[p->subprog_start[f]] = 0;
	targets = leap_bpf_jump_targets(p);
	if (!targets) {
		err = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < p->insn_cnt; i++)
		if (targets[i])
			a.lead[i] = 0;
	free(targets);
	for (uint32_t i = 0; i < p->insn_cnt; i++)
		if (a.lead[i] != UINT32_MAX)
			a.lead[i] = n++;
	a.st = calloc(n, sizeof(*a.st));
	if (!a.st) {
		err = -ENOMEM;
		goto out;
	}
	init_frame(&a.st[0]);
	a.st[0].r[BPF_REG_1].f = V_CTX;

	while (a.changed && !err) {
		a.changed = false;
		for (uint32_t i = 0; i < p->insn_cnt && !err; i++)
			if (a.lead[i] != UINT32_MAX && a.st[a.lead[i]].live)
				err = walk(&a, i);
	}
	if (!err) {
		/* Whole 8-byte words: the zeroing at function entry works in those. */
		for (uint32_t f = 0; f < p->subprog_cnt; f++)
			a.depth[f] = (uint16_t)((a.depth[f] + 7) & ~7);
		p->stack_depth = a.depth;
		a.depth = NULL;
		/* Unchecked (raw) programs may touch any of it. */
		p->ctx_rd = p->ctx_size ? a.ctx_rd : ~0ull;
		p->ctx_wr = p->ctx_size ? a.ctx_wr : ~0ull;
	}
out:
	free(a.lead);
	free(a.st);
	free(a.fn);
	free(a.depth);
	return err;
}
