/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * x86-64 instruction encoder for the JIT (jit_x86.c): just the forms the
 * BPF translation needs, each a small function over a growable byte cursor.
 * Registers are x86 numbers 0..15; bit 3 goes into the REX prefix.
 */
#ifndef LEAPIO_BPF_JIT_X86_EMIT_H
#define LEAPIO_BPF_JIT_X86_EMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

enum x86_reg {
	RAX = 0,
	RCX = 1,
	RDX = 2,
	RBX = 3,
	RSP = 4,
	RBP = 5,
	RSI = 6,
	RDI = 7,
	R8 = 8,
	R9 = 9,
	R10 = 10,
	R11 = 11,
	R12 = 12,
	R13 = 13,
	R14 = 14,
	R15 = 15,
};

struct jit_buf {
	uint8_t *p;   /* NULL during sizing passes: only count */
	uint32_t len; /* bytes emitted so far */
};

static inline void emit1(struct jit_buf *b, uint8_t v)
{
	if (b->p)
		b->p[b->len] = v;
	b->len++;
}

static inline void emit4(struct jit_buf *b, uint32_t v)
{
	if (b->p)
		memcpy(b->p + b->len, &v, 4);
	b->len += 4;
}

static inline void emit8(struct jit_buf *b, uint64_t v)
{
	if (b->p)
		memcpy(b->p + b->len, &v, 8);
	b->len += 8;
}

static inline bool is_imm8(int64_t v)
{
	return v >= -128 && v <= 127;
}

/*
 * REX prefix for `reg` (ModRM.reg) and `rm` (ModRM.rm or opcode+reg).
 * force: emit even when no bit is set (8-bit access to sil/dil/bpl/spl).
 */
static inline void emit_rex(struct jit_buf *b, bool w, int reg, int rm, bool force)
{
	uint8_t rex = 0x40 | (w ? 8 : 0) | ((reg & 8) ? 4 : 0) | ((rm & 8) ? 1 : 0);

	if (rex != 0x40 || force)
		emit1(b, rex);
}

static inline void emit_modrm(struct jit_buf *b, int mod, int reg, int rm)
{
	emit1(b, (uint8_t)((mod << 6) | ((reg & 7) << 3) | (rm & 7)));
}

/* ModRM for [base + disp]; base is never rsp/r12 here (no SIB needed). */
static inline void emit_mem(struct jit_buf *b, int reg, int base, int32_t disp)
{
	if (is_imm8(disp)) {
		emit_modrm(b, 1, reg, base);
		emit1(b, (uint8_t)disp);
	} else {
		emit_modrm(b, 2, reg, base);
		emit4(b, (uint32_t)disp);
	}
}

/* op reg/rm form: `op rm, reg` (e.g. 0x01 add, 0x89 mov, 0x39 cmp, 0x85 test). */
static inline void emit_rr(struct jit_buf *b, uint8_t op, bool w, int dst, int src)
{
	emit_rex(b, w, src, dst, false);
	emit1(b, op);
	emit_modrm(b, 3, src, dst);
}

/* Two-byte 0F opcode with reg <- rm: imul, movzx, movsx, bsf... */
static inline void emit_0f_rr(struct jit_buf *b, uint8_t op, bool w, int reg, int rm, bool force)
{
	emit_rex(b, w, reg, rm, force);
	emit1(b, 0x0f);
	emit1(b, op);
	emit_modrm(b, 3, reg, rm);
}

/* Group-1 ALU with immediate: ext 0 add, 1 or, 4 and, 5 sub, 6 xor, 7 cmp. */
static inline void emit_alu_imm(struct jit_buf *b, int ext, bool w, int dst, int32_t imm)
{
	emit_rex(b, w, 0, dst, false);
	if (is_imm8(imm)) {
		emit1(b, 0x83);
		emit_modrm(b, 3, ext, dst);
		emit1(b, (uint8_t)imm);
	} else {
		emit1(b, 0x81);
		emit_modrm(b, 3, ext, dst);
		emit4(b, (uint32_t)imm);
	}
}

static inline void emit_mov_rr(struct jit_buf *b, bool w, int dst, int src)
{
	emit_rr(b, 0x89, w, dst, src);
}

/* dst = imm, sign-extended to 64 bits (w) or zero-extended 32-bit value (!w). */
static inline void emit_mov_imm32(struct jit_buf *b, bool w, int dst, int32_t imm)
{
	if (imm == 0) { /* xor r32, r32: shorter, and zero-extends */
		emit_rr(b, 0x31, false, dst, dst);
		return;
	}
	if (w && imm < 0) {
		emit_rex(b, true, 0, dst, false);
		emit1(b, 0xc7);
		emit_modrm(b, 3, 0, dst);
		emit4(b, (uint32_t)imm);
		return;
	}
	emit_rex(b, false, 0, dst, false);
	emit1(b, (uint8_t)(0xb8 + (dst & 7)));
	emit4(b, (uint32_t)imm);
}

static inline void emit_mov_imm64(struct jit_buf *b, int dst, uint64_t imm)
{
	if (imm <= 0xffffffffull) {
		emit_mov_imm32(b, false, dst, (int32_t)(uint32_t)imm);
		return;
	}
	if ((int64_t)imm >= INT32_MIN && (int64_t)imm < 0) {
		emit_mov_imm32(b, true, dst, (int32_t)imm);
		return;
	}
	emit_rex(b, true, 0, dst, false);
	emit1(b, (uint8_t)(0xb8 + (dst & 7)));
	emit8(b, imm);
}

/* Load `size` bytes from [base+off] into dst, zero-extending (or sign-extending). */
static inline void emit_load(struct jit_buf *b, int size, bool sx, int dst, int base, int32_t off)
{
	switch (size) {
	case 1:
		emit_rex(b, sx, dst, base, false);
		emit1(b, 0x0f);
		emit1(b, sx ? 0xbe : 0xb6);
		break;
	case 2:
		emit_rex(b, sx, dst, base, false);
		emit1(b, 0x0f);
		emit1(b, sx ? 0xbf : 0xb7);
		break;
	case 4:
		emit_rex(b, sx, dst, base, false);
		emit1(b, sx ? 0x63 : 0x8b);
		break;
	default:
		emit_rex(b, true, dst, base, false);
		emit1(b, 0x8b);
		break;
	}
	emit_mem(b, dst, base, off);
}

static inline void emit_store_reg(struct jit_buf *b, int size, int base, int32_t off, int src)
{
	if (size == 2)
		emit1(b, 0x66);
	/* 8-bit stores of sil/dil/bpl need a REX prefix to mean those registers. */
	emit_rex(b, size == 8, src, base, size == 1 && src >= 4);
	emit1(b, size == 1 ? 0x88 : 0x89);
	emit_mem(b, src, base, off);
}

static inline void emit_store_imm(struct jit_buf *b, int size, int base, int32_t off, int32_t imm)
{
	if (size == 2)
		emit1(b, 0x66);
	emit_rex(b, size == 8, 0, base, false);
	emit1(b, size == 1 ? 0xc6 : 0xc7);
	emit_mem(b, 0, base, off);
	if (size == 1)
		emit1(b, (uint8_t)imm);
	else if (size == 2) {
		emit1(b, (uint8_t)imm);
		emit1(b, (uint8_t)(imm >> 8));
	} else
		emit4(b, (uint32_t)imm);
}

static inline void emit_push(struct jit_buf *b, int reg)
{
	emit_rex(b, false, 0, reg, false);
	emit1(b, (uint8_t)(0x50 + (reg & 7)));
}

static inline void emit_pop(struct jit_buf *b, int reg)
{
	emit_rex(b, false, 0, reg, false);
	emit1(b, (uint8_t)(0x58 + (reg & 7)));
}

/* jmp to absolute code offset target: rel8 when it fits, else rel32. */
static inline void emit_jmp_to(struct jit_buf *b, uint32_t target)
{
	int64_t d = (int64_t)target - (int64_t)(b->len + 2);

	if (is_imm8(d)) {
		emit1(b, 0xeb);
		emit1(b, (uint8_t)d);
	} else {
		emit1(b, 0xe9);
		emit4(b, (uint32_t)(int32_t)((int64_t)target - (int64_t)(b->len + 4)));
	}
}

/* jcc (cc: the low nibble of the x86 condition, 0x4 e, 0x5 ne, ...) to target. */
static inline void emit_jcc_to(struct jit_buf *b, uint8_t cc, uint32_t target)
{
	int64_t d = (int64_t)target - (int64_t)(b->len + 2);

	if (is_imm8(d)) {
		emit1(b, (uint8_t)(0x70 | cc));
		emit1(b, (uint8_t)d);
	} else {
		emit1(b, 0x0f);
		emit1(b, (uint8_t)(0x80 | cc));
		emit4(b, (uint32_t)(int32_t)((int64_t)target - (int64_t)(b->len + 4)));
	}
}

#endif /* LEAPIO_BPF_JIT_X86_EMIT_H */
