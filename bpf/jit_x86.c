// SPDX-License-Identifier: BSD-3-Clause
/*
 * x86-64 JIT. Translates a validated program (bpf/validate.c) one BPF
 * instruction at a time into native code with the interpreter's exact
 * semantics (RFC 9669). The program has been checked before we see it, so
 * the generated code carries no checks of its own.
 *
 * Register mapping (the Linux JIT's): BPF r0-r5 live in the System V
 * return/argument registers, so helper calls need no shuffling; r6-r9 live
 * in callee-saved registers, so both helper calls and bpf-to-bpf calls keep
 * them for free; r10 is rbp. r9-r11 are scratch.
 *
 * Every BPF function (main program and each bpf-to-bpf subprogram) gets a
 * real x86 frame: push rbp; mov rbp, rsp; a 512-byte BPF stack below rbp
 * only if the function uses r10; pushes of the callee-saved registers it
 * uses. Jumps are sized by iterating passes until the code length stops
 * changing (start pessimistic, only ever shrink), as the kernel does.
 *
 * Output goes into an anonymous mapping that is written while PROT_WRITE
 * and then switched to PROT_READ|PROT_EXEC: never writable and executable
 * at the same time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "leapio/common.h"
#include "bpf_internal.h"

#if defined(__x86_64__)

#include "jit_x86_internal.h"

static const uint8_t reg_map[11] = {
	RAX, /* r0 */
	RDI, /* r1 */
	RSI, /* r2 */
	RDX, /* r3 */
	RCX, /* r4 */
	R8,  /* r5 */
	RBX, /* r6 */
	R13, /* r7 */
	R14, /* r8 */
	R15, /* r9 */
	RBP, /* r10 */
};

const uint8_t jit_callee_saved[4] = { RBX, R13, R14, R15 };

static uint32_t func_of(const struct jit_ctx *c, uint32_t insn)
{
	uint32_t lo = 0, hi = c->func_cnt;

	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;

		if (c->funcs[mid].start <= insn)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static void emit_jmp(struct jit_ctx *c, uint32_t target)
{
	emit_jmp_to(&c->b, target);
}

/* cc: the low nibble of the x86 condition (0x4 e, 0x5 ne, 0x7 a, ...). */
static void emit_jcc(struct jit_ctx *c, uint8_t cc, uint32_t target)
{
	emit_jcc_to(&c->b, cc, target);
}

/* A forward jump over code of known-small size: emit jcc rel8 and return where to patch. */
static uint32_t emit_jcc_fwd8(struct jit_buf *b, uint8_t cc)
{
	emit1(b, (uint8_t)(0x70 | cc));
	emit1(b, 0);
	return b->len;
}

static void patch_fwd8(struct jit_buf *b, uint32_t from)
{
	if (b->p)
		b->p[from - 1] = (uint8_t)(b->len - from);
}

/*
 * push rbp; mov rbp, rsp; the BPF stack (stack: 512 bytes) and `extra`
 * bytes below it; pushes of the callee-saved registers in `saved`. rsp
 * ends 16-byte aligned for helper calls.
 */
void jit_emit_frame(struct jit_buf *b, uint8_t saved, bool stack, uint32_t extra)
{
	uint32_t npush = (uint32_t)__builtin_popcount(saved);
	uint32_t frame = (stack ? LEAP_BPF_STACK_SIZE : 0) + extra + ((npush & 1) ? 8 : 0);

	emit_push(b, RBP);
	emit_mov_rr(b, true, RBP, RSP);
	if (frame) {
		/* sub rsp, frame (keeps rsp 16-byte aligned for helper calls) */
		emit_rex(b, true, 0, RSP, false);
		emit1(b, 0x81);
		emit_modrm(b, 3, 5, RSP);
		emit4(b, frame);
	}
	for (int i = 0; i < 4; i++)
		if (saved & (1u << i))
			emit_push(b, jit_callee_saved[i]);
}

/*
 * Zero the stack a function may touch (depth bytes below rbp), as the
 * interpreter does, so no run reads what an earlier one left. xmm0 is
 * caller-saved and otherwise unused here; r1-r5 carry arguments and must
 * survive.
 */
void jit_emit_zero_stack(struct jit_buf *b, uint16_t depth)
{
	if (depth && depth <= 64) {
		emit_rr(b, 0x31, false, R11, R11); /* xor r11d, r11d */
		for (int32_t off = -8; off >= -(int32_t)depth; off -= 8)
			emit_store_reg(b, 8, RBP, off, R11);
	} else if (depth) {
		int32_t off;

		emit1(b, 0x66); /* pxor xmm0, xmm0 */
		emit1(b, 0x0f);
		emit1(b, 0xef);
		emit1(b, 0xc0);
		for (off = -16; off >= -(int32_t)depth; off -= 16) {
			emit1(b, 0x0f); /* movups [rbp + off], xmm0 */
			emit1(b, 0x11);
			emit_mem(b, 0, RBP, off);
		}
		if (depth & 8) {
			emit1(b, 0x66); /* movq [rbp - depth], xmm0 */
			emit1(b, 0x0f);
			emit1(b, 0xd6);
			emit_mem(b, 0, RBP, -(int32_t)depth);
		}
	}
}

static void emit_prologue(struct jit_ctx *c, const struct jit_func *f)
{
	jit_emit_frame(&c->b, f->saved, f->stack, 0);
	jit_emit_zero_stack(&c->b, f->depth);
}

/* Pops of `saved`, leave, ret: the end of jit_emit_frame()'s frame. */
void jit_emit_frame_exit(struct jit_buf *b, uint8_t saved)
{
	for (int i = 3; i >= 0; i--)
		if (saved & (1u << i))
			emit_pop(b, jit_callee_saved[i]);
	emit1(b, 0xc9); /* leave */
	emit1(b, 0xc3); /* ret */
}

static void emit_epilogue(struct jit_ctx *c, const struct jit_func *f)
{
	jit_emit_frame_exit(&c->b, f->saved);
}

/* Shift dst by the count in BPF register src (x86 needs it in cl; masks like BPF). */
static void emit_shift_reg(struct jit_buf *b, int ext, bool w, int dst, int src)
{
	int target = dst;

	if (src != RCX) {
		emit_mov_rr(b, true, R11, RCX); /* BPF r4 lives in rcx: save it */
		emit_mov_rr(b, true, RCX, src);
		if (dst == RCX)
			target = R11;
	}
	emit_rex(b, w, 0, target, false);
	emit1(b, 0xd3);
	emit_modrm(b, 3, ext, target);
	/* Restore rcx; when dst was rcx, r11 holds the shifted value: the result. */
	if (src != RCX)
		emit_mov_rr(b, true, RCX, R11);
}

/*
 * dst = dst / src or dst % src (src a register or an immediate), BPF rules:
 * x / 0 = 0, x % 0 = x, and for signed ops INT_MIN / -1 = INT_MIN,
 * INT_MIN % -1 = 0 (x86 would trap). Uses rax/rdx, so saves them unless
 * they are the destination.
 */
static void emit_divmod(struct jit_buf *b, bool w, bool is_mod, bool is_signed, int dst, int src,
			bool use_imm, int32_t imm)
{
	uint32_t j_nonzero, j_done, j_not_m1, j_done2 = 0;

	if (use_imm)
		emit_mov_imm32(b, w, R11, imm);
	else
		emit_mov_rr(b, true, R11, src);
	if (dst != RAX)
		emit_push(b, RAX);
	if (dst != RDX)
		emit_push(b, RDX);
	emit_mov_rr(b, true, RAX, dst);

	emit_rr(b, 0x85, w, R11, R11); /* test r11, r11 */
	j_nonzero = emit_jcc_fwd8(b, 0x5);
	if (is_mod) {
		if (!w)
			emit_mov_rr(b, false, RAX, RAX); /* 32-bit: dividend, zero-extended */
	} else {
		emit_rr(b, 0x31, false, RAX, RAX); /* quotient 0 */
	}
	emit1(b, 0xeb); /* jmp short done */
	emit1(b, 0);
	j_done = b->len;
	patch_fwd8(b, j_nonzero);

	if (is_signed) {
		/* divisor == -1: negate (sdiv) or 0 (smod) without idiv. */
		emit_alu_imm(b, 7, w, R11, -1);
		j_not_m1 = emit_jcc_fwd8(b, 0x5);
		if (is_mod)
			emit_rr(b, 0x31, false, RAX, RAX);
		else {
			emit_rex(b, w, 0, RAX, false);
			emit1(b, 0xf7);
			emit_modrm(b, 3, 3, RAX); /* neg */
		}
		emit1(b, 0xeb);
		emit1(b, 0);
		j_done2 = b->len;
		patch_fwd8(b, j_not_m1);
		/* cqo / cdq: sign-extend rax into rdx */
		if (w)
			emit1(b, 0x48);
		emit1(b, 0x99);
	} else {
		emit_rr(b, 0x31, false, RDX, RDX);
	}
	emit_rex(b, w, 0, R11, false);
	emit1(b, 0xf7);
	emit_modrm(b, 3, is_signed ? 7 : 6, R11); /* idiv / div r11 */
	if (is_mod)
		emit_mov_rr(b, w, RAX, RDX);
	patch_fwd8(b, j_done);
	if (j_done2)
		patch_fwd8(b, j_done2);

	emit_mov_rr(b, w, R11, RAX); /* 32-bit: zero-extends the result */
	if (dst != RDX)
		emit_pop(b, RDX);
	if (dst != RAX)
		emit_pop(b, RAX);
	emit_mov_rr(b, true, dst, R11);
}

/*
 * dst /= d for a positive 64-bit constant d, as compilers do it: a
 * multiply by a precomputed reciprocal instead of a ~40-cycle div
 * (Granlund-Montgomery, the round-up variant that works for every d):
 * l = ceil(log2 d), m = floor(2^64 * (2^l - d) / d) + 1,
 * t = mulhi(m, n), q = (((n - t) >> 1) + t) >> (l - 1).
 */
static void emit_udiv64_const(struct jit_buf *b, int dst, uint64_t d)
{
	unsigned int l = 64u - (unsigned int)__builtin_clzll(d - 1); /* d >= 3, not a power of 2 */
	uint64_t m = (uint64_t)((((unsigned __int128)1 << 64) * ((1ull << l) - d)) / d) + 1;

	/* rax and rdx are BPF r0 and r3: park them in the scratch r9 and r11, not on the stack. */
	if (dst != RAX)
		emit_mov_rr(b, true, R9, RAX);
	if (dst != RDX)
		emit_mov_rr(b, true, R11, RDX);
	emit_mov_rr(b, true, R10, dst);
	emit_mov_imm64(b, RAX, m);
	emit_rex(b, true, 0, R10, false);
	emit1(b, 0xf7);
	emit_modrm(b, 3, 4, R10); /* mul r10: rdx = mulhi(m, n) */
	emit_mov_rr(b, true, RAX, R10);
	emit_rr(b, 0x29, true, RAX, RDX); /* n - t */
	emit_rex(b, true, 0, RAX, false);
	emit1(b, 0xd1);
	emit_modrm(b, 3, 5, RAX);	  /* shr rax, 1 */
	emit_rr(b, 0x01, true, RAX, RDX); /* + t */
	if (l > 1) {
		emit_rex(b, true, 0, RAX, false);
		emit1(b, 0xc1);
		emit_modrm(b, 3, 5, RAX);
		emit1(b, (uint8_t)(l - 1));
	}
	emit_mov_rr(b, true, R10, RAX);
	if (dst != RDX)
		emit_mov_rr(b, true, RDX, R11);
	if (dst != RAX)
		emit_mov_rr(b, true, RAX, R9);
	emit_mov_rr(b, true, dst, R10);
}

static void emit_bswap(struct jit_buf *b, int dst, int bits)
{
	switch (bits) {
	case 16:
		/* ror r16, 8 then movzx r32, r16 */
		emit1(b, 0x66);
		emit_rex(b, false, 0, dst, false);
		emit1(b, 0xc1);
		emit_modrm(b, 3, 1, dst);
		emit1(b, 8);
		emit_0f_rr(b, 0xb7, false, dst, dst, false);
		break;
	case 32:
		emit_rex(b, false, 0, dst, false);
		emit1(b, 0x0f);
		emit1(b, (uint8_t)(0xc8 + (dst & 7)));
		break;
	default:
		emit_rex(b, true, 0, dst, false);
		emit1(b, 0x0f);
		emit1(b, (uint8_t)(0xc8 + (dst & 7)));
		break;
	}
}

/* BPF_END with the byte order being already the host's: truncate and zero-extend. */
static void emit_truncate(struct jit_buf *b, int dst, int bits)
{
	if (bits == 16)
		emit_0f_rr(b, 0xb7, false, dst, dst, false);
	else if (bits == 32)
		emit_mov_rr(b, false, dst, dst);
}

/* Locked read-modify-write forms, group op: 0x01 add, 0x09 or, 0x21 and, 0x31 xor. */
static void emit_atomic(struct jit_buf *b, const struct bpf_insn *in, bool single_writer)
{
	bool w = BPF_SIZE(in->code) == BPF_DW;
	int base = reg_map[in->dst_reg], src = reg_map[in->src_reg];
	int32_t off = in->off;
	int32_t op = in->imm;
	uint8_t alu;

	switch (op & ~BPF_FETCH) {
	case BPF_ADD:
		alu = 0x01;
		break;
	case BPF_OR:
		alu = 0x09;
		break;
	case BPF_AND:
		alu = 0x21;
		break;
	case BPF_XOR:
		alu = 0x31;
		break;
	default:
		alu = 0;
		break;
	}

	if (op == BPF_XCHG) {
		emit_rex(b, w, src, base, false);
		emit1(b, 0x87); /* xchg is implicitly locked */
		emit_mem(b, src, base, off);
		return;
	}
	if (op == BPF_CMPXCHG) {
		emit1(b, 0xf0);
		emit_rex(b, w, src, base, false);
		emit1(b, 0x0f);
		emit1(b, 0xb1);
		emit_mem(b, src, base, off);
		if (!w)
			emit_mov_rr(b, false, RAX, RAX); /* r0 gets the old value, zero-extended */
		return;
	}
	if (!(op & BPF_FETCH)) {
		if (!single_writer) /* else no other writer: one instruction is enough */
			emit1(b, 0xf0);
		emit_rex(b, w, src, base, false);
		emit1(b, alu);
		emit_mem(b, src, base, off);
		return;
	}
	if (alu == 0x01) { /* lock xadd: src receives the old value */
		emit1(b, 0xf0);
		emit_rex(b, w, src, base, false);
		emit1(b, 0x0f);
		emit1(b, 0xc1);
		emit_mem(b, src, base, off);
		return;
	}

	/*
	 * fetch or/and/xor: a cmpxchg loop in rax. BPF r0 lives in rax, so it
	 * is saved in r10 unless src is r0 (then r0 is the result anyway); the
	 * operand or the base are copied out of rax first when they live there.
	 */
	{
		int operand = src, mbase = base;
		bool restore = src != RAX;
		uint32_t loop;

		if (!restore) {
			emit_mov_rr(b, true, R9, RAX);
			operand = R9;
			if (base == RAX) {
				emit_mov_rr(b, true, R10, RAX);
				mbase = R10;
			}
		} else {
			emit_mov_rr(b, true, R10, RAX);
			if (base == RAX) {
				emit_mov_rr(b, true, R9, RAX);
				mbase = R9;
			}
		}
		emit_load(b, w ? 8 : 4, false, RAX, mbase, off);
		loop = b->len;
		emit_mov_rr(b, w, R11, RAX);
		emit_rr(b, alu, w, R11, operand);
		emit1(b, 0xf0);
		emit_rex(b, w, R11, mbase, false);
		emit1(b, 0x0f);
		emit1(b, 0xb1);
		emit_mem(b, R11, mbase, off);
		/* jne loop (backward, short) */
		emit1(b, 0x75);
		emit1(b, (uint8_t)(int8_t)((int32_t)loop - (int32_t)(b->len + 1)));
		if (restore) {
			emit_mov_rr(b, w, src, RAX);
			emit_mov_rr(b, true, RAX, R10);
		} else if (!w) {
			emit_mov_rr(b, false, RAX, RAX);
		}
	}
}

static int emit_alu(struct jit_ctx *c, const struct bpf_insn *in)
{
	struct jit_buf *b = &c->b;
	bool w = BPF_CLASS(in->code) == BPF_ALU64;
	bool x = BPF_SRC(in->code) == BPF_X;
	int dst = reg_map[in->dst_reg], src = reg_map[in->src_reg];
	uint8_t op = BPF_OP(in->code);

	switch (op) {
	case BPF_MOV:
		if (!x) {
			emit_mov_imm32(b, w, dst, in->imm);
		} else if (in->off == 0) {
			if (dst != src || !w)
				emit_mov_rr(b, w, dst, src);
		} else if (in->off == 32) {
			emit_rex(b, true, dst, src, false);
			emit1(b, 0x63); /* movsxd */
			emit_modrm(b, 3, dst, src);
		} else {
			/* movsx from 8 or 16 bits; byte access to sil/dil needs REX */
			emit_0f_rr(b, in->off == 8 ? 0xbe : 0xbf, w, dst, src,
				   in->off == 8 && src >= 4);
		}
		return 0;
	case BPF_ADD:
	case BPF_SUB:
	case BPF_AND:
	case BPF_OR:
	case BPF_XOR: {
		static const uint8_t rr[16] = { [BPF_ADD >> 4] = 0x01,
						[BPF_SUB >> 4] = 0x29,
						[BPF_AND >> 4] = 0x21,
						[BPF_OR >> 4] = 0x09,
						[BPF_XOR >> 4] = 0x31 };
		static const uint8_t ext[16] = { [BPF_ADD >> 4] = 0,
						 [BPF_SUB >> 4] = 5,
						 [BPF_AND >> 4] = 4,
						 [BPF_OR >> 4] = 1,
						 [BPF_XOR >> 4] = 6 };
		if (x)
			emit_rr(b, rr[op >> 4], w, dst, src);
		else
			emit_alu_imm(b, ext[op >> 4], w, dst, in->imm);
		return 0;
	}
	case BPF_MUL:
		if (x) {
			emit_0f_rr(b, 0xaf, w, dst, src, false);
		} else {
			emit_rex(b, w, dst, dst, false);
			if (is_imm8(in->imm)) {
				emit1(b, 0x6b);
				emit_modrm(b, 3, dst, dst);
				emit1(b, (uint8_t)in->imm);
			} else {
				emit1(b, 0x69);
				emit_modrm(b, 3, dst, dst);
				emit4(b, (uint32_t)in->imm);
			}
		}
		return 0;
	case BPF_DIV:
	case BPF_MOD:
		/* Unsigned 64-bit division by a positive constant: no div instruction. */
		if (op == BPF_DIV && w && !x && in->off == 0 && in->imm > 0) {
			uint64_t d = (uint64_t)in->imm;

			if (d == 1)
				return 0;
			if (LEAP_IS_POW2(d)) {
				emit_rex(b, true, 0, dst, false);
				emit1(b, 0xc1);
				emit_modrm(b, 3, 5, dst);
				emit1(b, (uint8_t)__builtin_ctzll(d));
			} else {
				emit_udiv64_const(b, dst, d);
			}
			return 0;
		}
		emit_divmod(b, w, op == BPF_MOD, in->off == LEAP_BPF_OFF_SIGNED, dst, src, !x,
			    in->imm);
		return 0;
	case BPF_NEG:
		emit_rex(b, w, 0, dst, false);
		emit1(b, 0xf7);
		emit_modrm(b, 3, 3, dst);
		return 0;
	case BPF_LSH:
	case BPF_RSH:
	case BPF_ARSH: {
		int e = op == BPF_LSH ? 4 : op == BPF_RSH ? 5 : 7;

		if (x) {
			emit_shift_reg(b, e, w, dst, src);
		} else {
			uint8_t cnt = (uint8_t)(in->imm & (w ? 63 : 31));

			if (cnt == 0) {
				if (!w)
					emit_mov_rr(b, false, dst, dst);
				return 0;
			}
			emit_rex(b, w, 0, dst, false);
			emit1(b, 0xc1);
			emit_modrm(b, 3, e, dst);
			emit1(b, cnt);
		}
		return 0;
	}
	case BPF_END:
		if (BPF_CLASS(in->code) == BPF_ALU64 || BPF_SRC(in->code) == BPF_TO_BE)
			emit_bswap(b, dst, in->imm);
		else
			emit_truncate(b, dst, in->imm);
		return 0;
	default:
		return -EINVAL;
	}
}

static uint8_t jmp_cc(uint8_t op)
{
	switch (op) {
	case BPF_JEQ:
		return 0x4;
	case BPF_JNE:
	case BPF_JSET:
		return 0x5;
	case BPF_JGT:
		return 0x7;
	case BPF_JGE:
		return 0x3;
	case BPF_JLT:
		return 0x2;
	case BPF_JLE:
		return 0x6;
	case BPF_JSGT:
		return 0xf;
	case BPF_JSGE:
		return 0xd;
	case BPF_JSLT:
		return 0xc;
	case BPF_JSLE:
		return 0xe;
	default:
		return 0xff;
	}
}

/* Whether `in` leaves r1 as it is (and is no branch): what may sit between the map load and the call. */
static bool keeps_r1(const struct bpf_insn *in)
{
	switch (BPF_CLASS(in->code)) {
	case BPF_ALU:
	case BPF_ALU64:
	case BPF_LDX:
		return in->dst_reg != BPF_REG_1;
	case BPF_ST:
		return true;
	case BPF_STX:
		return BPF_MODE(in->code) == BPF_MEM; /* atomics may fetch into a register */
	default:
		return false; /* jumps, calls, exits, other loads */
	}
}

/* Whether `in` (not a jump: the stretches below hold none) may read BPF register r. */
static bool reads_reg(const struct bpf_insn *in, uint8_t r)
{
	switch (BPF_CLASS(in->code)) {
	case BPF_ALU:
	case BPF_ALU64:
		return (BPF_SRC(in->code) == BPF_X && in->src_reg == r) ||
		       (in->dst_reg == r && BPF_OP(in->code) != BPF_MOV);
	case BPF_LDX:
		return in->src_reg == r;
	case BPF_ST:
		return in->dst_reg == r;
	case BPF_STX:
		return in->dst_reg == r || in->src_reg == r ||
		       (r == BPF_REG_0 && BPF_MODE(in->code) == BPF_ATOMIC);
	case BPF_LD:
		return false;
	default:
		return true;
	}
}

/* Whether `in` (not a jump) may write BPF register r. */
static bool writes_reg(const struct bpf_insn *in, uint8_t r)
{
	switch (BPF_CLASS(in->code)) {
	case BPF_ALU:
	case BPF_ALU64:
	case BPF_LDX:
	case BPF_LD:
		return in->dst_reg == r;
	case BPF_ST:
		return false;
	case BPF_STX:
		return BPF_MODE(in->code) == BPF_ATOMIC && (in->src_reg == r || r == BPF_REG_0);
	default:
		return true;
	}
}

/*
 * `ld_imm64 r1, A; ...; call map_lookup_elem` with A an inlinable array
 * map, where the few instructions in between (clang schedules the key
 * pointer setup or a spill there) leave r1 alone and nothing jumps into
 * the stretch, so r1 is surely A at the call: the helper's work in six
 * instructions, no call. *ld is the ld_imm64's index.
 */
static const struct leap_bpf_array *inline_lookup(const struct jit_ctx *c, uint32_t i,
						  uint32_t *ld_at)
{
	const struct leap_bpf_prog *p = c->prog;
	const struct bpf_insn *ld = NULL;
	uint32_t j = i;
	uint64_t addr;

	if (p->insns[i].imm != BPF_FUNC_map_lookup_elem)
		return NULL;
	for (int steps = 0; steps < 8 && !ld; steps++) {
		if (c->is_target[j] || j < 1)
			return NULL; /* control may arrive at j without what precedes it */
		if (j >= 2 && leap_bpf_is_lddw(&p->insns[j - 2])) {
			if (p->insns[j - 2].dst_reg == BPF_REG_1)
				ld = &p->insns[j - 2];
			j -= 2;
			continue;
		}
		if (!keeps_r1(&p->insns[j - 1]))
			return NULL;
		j--;
	}
	if (!ld)
		return NULL;
	*ld_at = j;
	addr = (uint64_t)(uint32_t)ld->imm | ((uint64_t)(uint32_t)ld[1].imm << 32);
	for (uint32_t k = 0; k < p->array_cnt; k++)
		if ((uint64_t)(uintptr_t)p->arrays[k] == addr)
			return p->arrays[k];
	return NULL;
}

/* `if rX == 0 goto L` (64-bit, immediate 0) at k, nothing jumping to it: L, else UINT32_MAX. */
static uint32_t null_test_at(const struct jit_ctx *c, uint32_t k, uint8_t reg)
{
	const struct bpf_insn *in = &c->prog->insns[k];

	if (k >= c->prog->insn_cnt || c->is_target[k] || in->code != (BPF_JMP | BPF_JEQ | BPF_K) ||
	    in->dst_reg != reg || in->imm != 0)
		return UINT32_MAX;
	return k + 1 + (uint32_t)(int32_t)in->off;
}

/*
 * The verifier makes every program test a lookup's result for NULL before
 * using it, and clang puts the test right after the call (or after one
 * copy of r0 into a callee-saved register). The inlined lookup knows which
 * way it goes: the out-of-range path sets r0 (and the copy) to 0 and jumps
 * to the test's target itself; the test is then not emitted, and the
 * in-range path, which never yields NULL, falls through.
 */
static void plan_null_test(struct jit_ctx *c, uint32_t i)
{
	const struct bpf_insn *in = c->prog->insns;
	struct jit_inline *n = &c->inl[i];
	uint32_t to;

	n->null_to = UINT32_MAX;
	n->copy = BPF_REG_0;
	to = null_test_at(c, i + 1, BPF_REG_0);
	if (to != UINT32_MAX) {
		n->null_to = to;
		c->dead[i + 1] = 1;
		return;
	}
	if (i + 2 >= c->prog->insn_cnt || c->is_target[i + 1] ||
	    in[i + 1].code != (BPF_ALU64 | BPF_MOV | BPF_X) || in[i + 1].off ||
	    in[i + 1].src_reg != BPF_REG_0 || in[i + 1].dst_reg == BPF_REG_0 ||
	    in[i + 1].dst_reg >= BPF_REG_10)
		return;
	to = null_test_at(c, i + 2, in[i + 1].dst_reg);
	if (to == UINT32_MAX)
		to = null_test_at(c, i + 2, BPF_REG_0);
	if (to == UINT32_MAX)
		return;
	n->null_to = to;
	n->copy = in[i + 1].dst_reg;
	c->dead[i + 1] = c->dead[i + 2] = 1;
}

/* Whether control may reach j + 1 from elsewhere than j, with j + 1 < i (the stretch's end). */
static bool merges(const struct jit_ctx *c, uint32_t j, uint32_t i)
{
	return j + 1 < i && c->is_target[j + 1];
}

/*
 * Whether BPF register reg holds r10 + *off at instruction i, by its last
 * definition in straight-line code before i (`reg = r10; reg += K`).
 * Conditional jumps out of the stretch are fine; a merge point, an exit or
 * a call that may change reg ends the search.
 */
static bool frame_ptr_at(const struct jit_ctx *c, uint32_t i, uint8_t reg, int32_t *off)
{
	const struct bpf_insn *in = c->prog->insns;

	for (uint32_t j = i; j-- > 0 && i - j <= 64;) {
		if (j >= 1 && leap_bpf_is_lddw(&in[j - 1])) {
			if (in[j - 1].dst_reg == reg || c->is_target[j] || merges(c, j - 1, i))
				return false;
			j--;
			continue;
		}
		if (merges(c, j, i))
			return false;
		if (BPF_CLASS(in[j].code) == BPF_JMP || BPF_CLASS(in[j].code) == BPF_JMP32) {
			uint8_t op = BPF_OP(in[j].code);

			if (op == BPF_EXIT || op == BPF_JA)
				return false;
			if (op == BPF_CALL && reg <= BPF_REG_5)
				return false;
			continue;
		}
		if (!writes_reg(&in[j], reg))
			continue;
		if (in[j].code == (BPF_ALU64 | BPF_MOV | BPF_X) && !in[j].off &&
		    in[j].src_reg == BPF_REG_10) {
			*off = 0;
			return true;
		}
		if (in[j].code == (BPF_ALU64 | BPF_ADD | BPF_K) && j >= 1 && !c->is_target[j] &&
		    in[j - 1].code == (BPF_ALU64 | BPF_MOV | BPF_X) && !in[j - 1].off &&
		    in[j - 1].dst_reg == reg && in[j - 1].src_reg == BPF_REG_10) {
			*off = in[j].imm;
			return true;
		}
		return false;
	}
	return false;
}

/*
 * The key at [r10 + off] was stored from a register (`*(u32 *)(r10 + off)
 * = rX`) in straight-line code before the lookup at i, and nothing emitted
 * since changed rX's x86 register or the slot: then the key is read from
 * the register, not reloaded through the store buffer (a store-to-load
 * forward on the lookup's critical path). Returns X or -1.
 */
static int key_in_reg(const struct jit_ctx *c, uint32_t i, int32_t off)
{
	const struct bpf_insn *in = c->prog->insns;
	uint32_t written = 0; /* BPF registers whose x86 register emitted code may change */

	for (uint32_t j = i; j-- > 0 && i - j <= 64;) {
		const struct bpf_insn *x = &in[j];
		uint8_t cls = BPF_CLASS(x->code);

		if (j >= 1 && leap_bpf_is_lddw(&in[j - 1])) {
			if (c->is_target[j] || merges(c, j - 1, i))
				return -1;
			if (!c->dead[j - 1])
				written |= 1u << in[j - 1].dst_reg;
			j--;
			continue;
		}
		if (merges(c, j, i))
			return -1;
		if (cls == BPF_JMP || cls == BPF_JMP32) {
			uint8_t op = BPF_OP(x->code);

			if (op == BPF_EXIT || op == BPF_JA ||
			    (op == BPF_CALL && (x->src_reg == BPF_PSEUDO_CALL || !c->inl[j].a)))
				return -1; /* a real call may write any stack slot it was given */
			if (op == BPF_CALL)
				written |= 1u << BPF_REG_0 | 1u << c->inl[j].copy;
			continue;
		}
		if (cls == BPF_ST || cls == BPF_STX) {
			int size = BPF_SIZE(x->code) == BPF_B	? 1
				   : BPF_SIZE(x->code) == BPF_H ? 2
				   : BPF_SIZE(x->code) == BPF_W ? 4
								: 8;

			if (x->dst_reg != BPF_REG_10 || BPF_MODE(x->code) != BPF_MEM)
				return -1; /* may write the slot through another pointer */
			if (x->off + size <= off || x->off >= off + 4)
				continue;
			if (cls == BPF_STX && x->off == off && size == 4 &&
			    !(written & (1u << x->src_reg)) && x->src_reg != BPF_REG_10)
				return x->src_reg;
			return -1;
		}
		if (!c->dead[j] && writes_reg(x, x->dst_reg))
			written |= 1u << x->dst_reg;
	}
	return -1;
}

/*
 * After a helper call r1-r5 are unreadable (the kernel verifier refuses),
 * so for an inlined lookup the instructions that only prepare them are
 * moot: the ld_imm64 of the map into r1 when nothing else reads r1 before
 * the call, and the key pointer's `r2 = r10; r2 += K` or `r2 = rY` when
 * nothing reads r2 in between and rY keeps its value; the key is then
 * loaded from [r10 + K] or [rY] directly. Nothing may jump between the
 * definition and the call (r2 could come from elsewhere then).
 */
static void plan_inline(struct jit_ctx *c, uint32_t i, const struct leap_bpf_array *a, uint32_t ld)
{
	const struct bpf_insn *in = c->prog->insns;
	struct jit_inline *n = &c->inl[i];
	bool r1_read = false;
	uint32_t j, def = UINT32_MAX;

	n->a = a;
	n->key_reg = BPF_REG_2;
	n->key_off = 0;
	n->key_val = -1;
	plan_null_test(c, i);
	for (j = ld + 2; j < i; j++)
		r1_read |= reads_reg(&in[j], BPF_REG_1);
	if (!r1_read)
		c->dead[ld] = c->dead[ld + 1] = 1;

	for (j = i; j-- > 0 && i - j <= 16;) {
		if (j >= 1 && leap_bpf_is_lddw(&in[j - 1])) {
			if (in[j - 1].dst_reg == BPF_REG_2 || c->is_target[j - 1] ||
			    c->is_target[j])
				return;
			j--;
			continue;
		}
		if (c->is_target[j + 1] && j + 1 < i)
			return;
		if (writes_reg(&in[j], BPF_REG_2)) {
			def = j;
			break;
		}
		if (reads_reg(&in[j], BPF_REG_2))
			return;
	}
	if (def == UINT32_MAX || BPF_CLASS(in[def].code) != BPF_ALU64 || in[def].off)
		return;
	if (in[def].code == (BPF_ALU64 | BPF_ADD | BPF_K) && def >= 1 && !c->is_target[def] &&
	    in[def - 1].code == (BPF_ALU64 | BPF_MOV | BPF_X) && in[def - 1].dst_reg == BPF_REG_2 &&
	    in[def - 1].src_reg == BPF_REG_10 && !in[def - 1].off && in[def].imm >= INT16_MIN &&
	    in[def].imm <= INT16_MAX) {
		n->key_reg = BPF_REG_10;
		n->key_off = (int16_t)in[def].imm;
		c->dead[def - 1] = c->dead[def] = 1;
		n->key_val = (int8_t)key_in_reg(c, i, n->key_off);
		return;
	}
	if (in[def].code == (BPF_ALU64 | BPF_MOV | BPF_X) && in[def].src_reg != BPF_REG_2) {
		int32_t off;

		for (j = def + 1; j < i; j++)
			if (writes_reg(&in[j], in[def].src_reg))
				return;
		n->key_reg = in[def].src_reg;
		c->dead[def] = 1;
		/* rY = r10 + K itself (a key pointer kept for several lookups): use the slot. */
		if (frame_ptr_at(c, def, n->key_reg, &off) && off >= INT16_MIN &&
		    off <= INT16_MAX) {
			n->key_reg = BPF_REG_10;
			n->key_off = (int16_t)off;
			n->key_val = (int8_t)key_in_reg(c, i, off);
		}
	}
}

/* r0 = key < max ? data + key * stride : 0, the in-range path falling through. */
static void emit_inline_lookup(struct jit_ctx *c, const struct jit_inline *n)
{
	struct jit_buf *b = &c->b;
	const struct leap_bpf_array *a = n->a;
	uint32_t j_ok, j_done = 0;

	if (n->key_val >= 0)
		emit_mov_rr(b, false, RAX, reg_map[n->key_val]); /* eax = key, from its register */
	else
		emit_load(b, 4, false, RAX, reg_map[n->key_reg], n->key_off); /* eax = key */
	emit_alu_imm(b, 7, false, RAX, (int32_t)a->max_entries);	      /* cmp eax, max */
	j_ok = emit_jcc_fwd8(b, 0x2);					      /* jb: in range */
	emit_rr(b, 0x31, false, RAX, RAX);				      /* NULL */
	if (n->null_to != UINT32_MAX) {
		if (n->copy != BPF_REG_0)
			emit_rr(b, 0x31, false, reg_map[n->copy], reg_map[n->copy]);
		emit_jmp(c, c->off[n->null_to]);
	} else {
		emit1(b, 0xeb);
		emit1(b, 0);
		j_done = b->len;
	}
	patch_fwd8(b, j_ok);
	if (LEAP_IS_POW2(a->stride)) {
		emit_rex(b, true, 0, RAX, false);
		emit1(b, 0xc1);
		emit_modrm(b, 3, 4, RAX);
		emit1(b, (uint8_t)__builtin_ctz(a->stride)); /* shl rax, log2(stride) */
	} else {
		emit_rex(b, true, RAX, RAX, false);
		emit1(b, 0x69);
		emit_modrm(b, 3, RAX, RAX);
		emit4(b, a->stride); /* imul rax, rax, stride */
	}
	emit_mov_imm64(b, R11, (uint64_t)(uintptr_t)a->data);
	emit_rr(b, 0x01, true, RAX, R11); /* add rax, r11 */
	if (n->null_to != UINT32_MAX) {
		if (n->copy != BPF_REG_0)
			emit_mov_rr(b, true, reg_map[n->copy], RAX);
	} else {
		patch_fwd8(b, j_done);
	}
}

static int emit_jmp_insn(struct jit_ctx *c, uint32_t i)
{
	const struct bpf_insn *in = &c->prog->insns[i];
	struct jit_buf *b = &c->b;
	bool w = BPF_CLASS(in->code) == BPF_JMP;
	uint8_t op = BPF_OP(in->code);
	int dst = reg_map[in->dst_reg], src = reg_map[in->src_reg];
	const struct jit_func *f = &c->funcs[c->cur_func];

	switch (op) {
	case BPF_JA:
		emit_jmp(c, c->off[i + 1 + (w ? in->off : in->imm)]);
		return 0;
	case BPF_EXIT:
		if (i + 1 != f->end)
			emit_jmp(c, f->epilogue);
		return 0;
	case BPF_CALL:
		if (in->src_reg == BPF_PSEUDO_CALL) {
			uint32_t target = c->funcs[func_of(c, i + 1 + in->imm)].entry;

			emit1(b, 0xe8);
			emit4(b, (uint32_t)(int32_t)((int64_t)target - (int64_t)(b->len + 4)));
		} else {
			leap_bpf_helper_fn fn = c->prog->helpers->fn[in->imm];

			if (c->inl[i].a) {
				emit_inline_lookup(c, &c->inl[i]);
				return 0;
			}

			emit_mov_imm64(b, RAX, (uint64_t)(uintptr_t)fn);
			emit1(b, 0xff);
			emit_modrm(b, 3, 2, RAX); /* call rax */
		}
		return 0;
	default:
		break;
	}
	if (jmp_cc(op) == 0xff)
		return -EINVAL;
	if (BPF_SRC(in->code) == BPF_X) {
		emit_rr(b, op == BPF_JSET ? 0x85 : 0x39, w, dst, src);
	} else if (op == BPF_JSET) {
		emit_rex(b, w, 0, dst, false);
		emit1(b, 0xf7);
		emit_modrm(b, 3, 0, dst);
		emit4(b, (uint32_t)in->imm);
	} else {
		if (!in->imm && (op == BPF_JEQ || op == BPF_JNE))
			emit_rr(b, 0x85, w, dst, dst); /* test: same flags, shorter than cmp 0 */
		else
			emit_alu_imm(b, 7, w, dst, in->imm);
	}
	emit_jcc(c, jmp_cc(op), c->off[i + 1 + in->off]);
	return 0;
}

static int emit_insn(struct jit_ctx *c, uint32_t i)
{
	const struct bpf_insn *in = &c->prog->insns[i];
	struct jit_buf *b = &c->b;
	int size;

	if (c->dead[i])
		return leap_bpf_is_lddw(in) ? 1 : 0; /* see plan_inline() */
	switch (BPF_CLASS(in->code)) {
	case BPF_ALU:
	case BPF_ALU64:
		/* `rX = rY; rX += K` (nothing jumps between them): one lea. */
		if (in->code == (BPF_ALU64 | BPF_MOV | BPF_X) && !in->off &&
		    i + 1 < c->prog->insn_cnt && !c->is_target[i + 1] &&
		    in[1].code == (BPF_ALU64 | BPF_ADD | BPF_K) && in[1].dst_reg == in->dst_reg) {
			emit_rex(b, true, reg_map[in->dst_reg], reg_map[in->src_reg], false);
			emit1(b, 0x8d);
			emit_mem(b, reg_map[in->dst_reg], reg_map[in->src_reg], in[1].imm);
			return 1; /* consumed two slots */
		}
		return emit_alu(c, in);
	case BPF_JMP:
	case BPF_JMP32:
		return emit_jmp_insn(c, i);
	case BPF_LD:
		if (in->code != (BPF_LD | BPF_IMM | BPF_DW))
			return -EINVAL;
		emit_mov_imm64(b, reg_map[in->dst_reg],
			       (uint64_t)(uint32_t)in->imm | ((uint64_t)(uint32_t)in[1].imm << 32));
		return 1; /* consumed two slots */
	default:
		break;
	}
	switch (BPF_SIZE(in->code)) {
	case BPF_B:
		size = 1;
		break;
	case BPF_H:
		size = 2;
		break;
	case BPF_W:
		size = 4;
		break;
	default:
		size = 8;
		break;
	}
	switch (BPF_CLASS(in->code)) {
	case BPF_LDX:
		emit_load(b, size, BPF_MODE(in->code) == BPF_MEMSX, reg_map[in->dst_reg],
			  reg_map[in->src_reg], in->off);
		return 0;
	case BPF_ST:
		emit_store_imm(b, size, reg_map[in->dst_reg], in->off, in->imm);
		return 0;
	case BPF_STX:
		if (BPF_MODE(in->code) == BPF_ATOMIC)
			emit_atomic(b, in, c->prog->single_writer);
		else
			emit_store_reg(b, size, reg_map[in->dst_reg], in->off,
				       reg_map[in->src_reg]);
		return 0;
	default:
		return -EINVAL;
	}
}

int jit_emit_body(struct jit_ctx *c, uint32_t f)
{
	const struct jit_func *fn = &c->funcs[f];

	c->cur_func = f;
	for (uint32_t i = fn->start; i < fn->end; i++) {
		uint32_t before = c->b.len;
		int r;

		c->off[i] = c->b.len;
		r = emit_insn(c, i);
		if (r < 0)
			return r;
		if (c->b.len - before > JIT_INSN_MAX)
			return -E2BIG;
		if (r == 1)
			c->off[++i] = c->b.len;
	}
	return 0;
}

int jit_emit_func(struct jit_ctx *c, uint32_t f)
{
	struct jit_func *fn = &c->funcs[f];
	int err;

	fn->entry = c->b.len;
	emit_prologue(c, fn);
	err = jit_emit_body(c, f);
	if (err)
		return err;
	fn->epilogue = c->b.len;
	emit_epilogue(c, fn);
	return 0;
}

static int jit_pass(struct jit_ctx *c)
{
	c->b.len = 0;
	for (uint32_t f = 0; f < c->func_cnt; f++) {
		int err = jit_emit_func(c, f);

		if (err)
			return err;
	}
	c->off[c->prog->insn_cnt] = c->b.len;
	return 0;
}

static void analyse_funcs(struct jit_ctx *c)
{
	const struct leap_bpf_prog *p = c->prog;

	for (uint32_t f = 0; f < c->func_cnt; f++) {
		struct jit_func *fn = &c->funcs[f];

		fn->start = p->subprog_start[f];
		fn->end = f + 1 < c->func_cnt ? p->subprog_start[f + 1] : p->insn_cnt;
		fn->depth = p->stack_depth ? p->stack_depth[f] : LEAP_BPF_STACK_SIZE;
		for (uint32_t i = fn->start; i < fn->end; i++) {
			const struct bpf_insn *in = &p->insns[i];
			uint8_t regs[2] = { in->dst_reg, in->src_reg };

			for (int k = 0; k < 2; k++) {
				if (regs[k] >= 6 && regs[k] <= 9)
					fn->saved |= (uint8_t)(1u << (regs[k] - 6));
				if (regs[k] == 10)
					fn->stack = true;
			}
			if (in->code == (BPF_LD | BPF_IMM | BPF_DW))
				i++; /* the second half carries no registers */
		}
	}
}

void jit_release(struct jit_ctx *c)
{
	free(c->off);
	free(c->funcs);
	free(c->is_target);
	free(c->inl);
	free(c->dead);
}

int jit_prepare(struct jit_ctx *c, const struct leap_bpf_prog *prog)
{
	*c = (struct jit_ctx){ .prog = prog };
	c->func_cnt = prog->subprog_cnt ? prog->subprog_cnt : 1;
	c->off = calloc(prog->insn_cnt + 1, sizeof(*c->off));
	c->funcs = calloc(c->func_cnt, sizeof(*c->funcs));
	c->is_target = leap_bpf_jump_targets(prog);
	c->inl = calloc(prog->insn_cnt, sizeof(*c->inl));
	c->dead = calloc(prog->insn_cnt, 1);
	if (!c->off || !c->funcs || !c->is_target || !c->inl || !c->dead) {
		jit_release(c);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < prog->insn_cnt; i++) {
		const struct bpf_insn *in = &prog->insns[i];
		const struct leap_bpf_array *a;
		uint32_t ld;

		if (leap_bpf_is_lddw(in)) {
			i++;
			continue;
		}
		if (in->code != (BPF_JMP | BPF_CALL) || in->src_reg == BPF_PSEUDO_CALL)
			continue;
		a = inline_lookup(c, i, &ld);
		if (a)
			plan_inline(c, i, a, ld);
	}
	if (!prog->subprog_cnt) {
		c->funcs[0].start = 0;
		c->funcs[0].end = prog->insn_cnt;
	}
	analyse_funcs(c);
	/* Pessimistic start: every jump is long, so sizes only ever shrink. */
	for (uint32_t i = 0; i <= prog->insn_cnt; i++)
		c->off[i] = (i + 1) * JIT_INSN_MAX;
	for (uint32_t f = 0; f < c->func_cnt; f++) {
		c->funcs[f].entry = c->funcs[f].start * JIT_INSN_MAX;
		c->funcs[f].epilogue = (c->funcs[f].end + 1) * JIT_INSN_MAX;
	}
	return 0;
}

int jit_write_code(struct jit_buf *b, uint32_t len, int (*pass)(void *arg), void *arg,
		   size_t *map_len)
{
	long page = sysconf(_SC_PAGESIZE);
	void *mem;
	int err;

	*map_len = LEAP_ALIGN_UP((size_t)len, (size_t)page);
	mem = mmap(NULL, *map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -ENOMEM;
	b->p = mem;
	b->len = 0;
	err = pass(arg);
	if (!err && b->len != len)
		err = -EFAULT;
	if (!err && mprotect(mem, *map_len, PROT_READ | PROT_EXEC) != 0)
		err = -errno;
	if (err) {
		munmap(mem, *map_len);
		b->p = NULL;
	}
	return err;
}

static int jit_write_pass(void *arg)
{
	return jit_pass(arg);
}

int leap_bpf_prog_jit(struct leap_bpf_prog *prog, char *errbuf, size_t errbuf_sz)
{
	struct jit_ctx c;
	uint32_t prev = UINT32_MAX;
	size_t map_len;
	int err;

	if (prog->jit_code)
		return 0;
	err = jit_prepare(&c, prog);
	if (err)
		return err;
	for (int pass = 0; pass < JIT_MAX_PASSES; pass++) {
		err = jit_pass(&c);
		if (err) {
			leap_bpf_reject(errbuf, errbuf_sz, 0, "JIT cannot translate the program");
			goto out;
		}
		if (c.b.len == prev)
			break;
		prev = c.b.len;
	}
	if (c.b.len != prev) {
		err = leap_bpf_reject(errbuf, errbuf_sz, 0, "JIT jump sizes did not converge");
		goto out;
	}
	err = jit_write_code(&c.b, prev, jit_write_pass, &c, &map_len);
	if (err)
		goto out;
	prog->jit_code = c.b.p;
	prog->jit_size = prev;
	prog->jit_map_size = map_len;
out:
	jit_release(&c);
	return err;
}

#else /* !__x86_64__ */

int leap_bpf_prog_jit(struct leap_bpf_prog *prog, char *errbuf, size_t errbuf_sz)
{
	(void)prog;
	if (errbuf && errbuf_sz)
		snprintf(errbuf, errbuf_sz, "the JIT only targets x86-64");
	return -ENOTSUP;
}

#endif

leap_bpf_jit_fn leap_bpf_prog_jit_fn(const struct leap_bpf_prog *prog)
{
	return (leap_bpf_jit_fn)prog->jit_code;
}

size_t leap_bpf_prog_jit_size(const struct leap_bpf_prog *prog)
{
	return prog->jit_code ? prog->jit_size : 0;
}
