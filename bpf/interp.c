// SPDX-License-Identifier: BSD-3-Clause
/*
 * The reference interpreter: the BPF ISA as RFC 9669 states it. It is the
 * definition the JIT is tested against, so every opcode is spelled out on
 * its own, in one place.
 *
 * Dispatch is direct threaded: a 256-entry table of label addresses indexed
 * by the opcode byte (GCC's computed goto), one indirect jump per
 * instruction and no intermediate switch on the class — about three times
 * faster than a switch-of-switches, which matters because a policy without
 * the JIT still sits on the I/O path. Validation (validate.c) has already
 * rejected every opcode the table does not list, so entries left NULL are
 * never reached, and there are no checks here.
 *
 * BPF stacks (512 bytes per frame) live on the C stack of the calling
 * thread: nothing is allocated per run.
 */
#include <string.h>

#include "bpf_internal.h"

struct frame {
	uint32_t ret_pc;
	uint64_t saved[5]; /* r6-r10 of the caller */
};

static inline uint64_t sdiv64(int64_t a, int64_t b)
{
	if (b == 0)
		return 0;
	if (b == -1)
		return (uint64_t)0 - (uint64_t)a; /* INT64_MIN / -1 wraps, never traps */
	return (uint64_t)(a / b);
}

static inline uint64_t smod64(int64_t a, int64_t b)
{
	if (b == 0)
		return (uint64_t)a;
	if (b == -1)
		return 0;
	return (uint64_t)(a % b);
}

static inline uint32_t sdiv32(int32_t a, int32_t b)
{
	if (b == 0)
		return 0;
	if (b == -1)
		return (uint32_t)0 - (uint32_t)a;
	return (uint32_t)(a / b);
}

static inline uint32_t smod32(int32_t a, int32_t b)
{
	if (b == 0)
		return (uint32_t)a;
	if (b == -1)
		return 0;
	return (uint32_t)(a % b);
}

/* BPF_ATOMIC: really atomic, sequentially consistent like the kernel's. */
static void atomic_op(const struct bpf_insn *in, uint64_t *r)
{
	uintptr_t addr = (uintptr_t)(r[in->dst_reg] + (int64_t)in->off);
	uint64_t s = r[in->src_reg], old;

	if (BPF_SIZE(in->code) == BPF_W) {
		uint32_t *p = (uint32_t *)addr, o;

		switch (in->imm & ~BPF_FETCH) {
		case BPF_ADD:
			o = __atomic_fetch_add(p, (uint32_t)s, __ATOMIC_SEQ_CST);
			break;
		case BPF_OR:
			o = __atomic_fetch_or(p, (uint32_t)s, __ATOMIC_SEQ_CST);
			break;
		case BPF_AND:
			o = __atomic_fetch_and(p, (uint32_t)s, __ATOMIC_SEQ_CST);
			break;
		case BPF_XOR:
			o = __atomic_fetch_xor(p, (uint32_t)s, __ATOMIC_SEQ_CST);
			break;
		case BPF_XCHG & ~BPF_FETCH:
			o = __atomic_exchange_n(p, (uint32_t)s, __ATOMIC_SEQ_CST);
			break;
		default: /* BPF_CMPXCHG */
			o = (uint32_t)r[0];
			__atomic_compare_exchange_n(p, &o, (uint32_t)s, false, __ATOMIC_SEQ_CST,
						    __ATOMIC_SEQ_CST);
			r[0] = o;
			return;
		}
		if (in->imm & BPF_FETCH)
			r[in->src_reg] = o;
		return;
	}
	{
		uint64_t *p = (uint64_t *)addr;

		switch (in->imm & ~BPF_FETCH) {
		case BPF_ADD:
			old = __atomic_fetch_add(p, s, __ATOMIC_SEQ_CST);
			break;
		case BPF_OR:
			old = __atomic_fetch_or(p, s, __ATOMIC_SEQ_CST);
			break;
		case BPF_AND:
			old = __atomic_fetch_and(p, s, __ATOMIC_SEQ_CST);
			break;
		case BPF_XOR:
			old = __atomic_fetch_xor(p, s, __ATOMIC_SEQ_CST);
			break;
		case BPF_XCHG & ~BPF_FETCH:
			old = __atomic_exchange_n(p, s, __ATOMIC_SEQ_CST);
			break;
		default:
			old = r[0];
			__atomic_compare_exchange_n(p, &old, s, false, __ATOMIC_SEQ_CST,
						    __ATOMIC_SEQ_CST);
			r[0] = old;
			return;
		}
		if (in->imm & BPF_FETCH)
			r[in->src_reg] = old;
	}
}

/* Opcode bytes, by class. */
#define A64(op, src) (BPF_ALU64 | BPF_##op | BPF_##src)
#define A32(op, src) (BPF_ALU | BPF_##op | BPF_##src)
#define J64(op, src) (BPF_JMP | BPF_##op | BPF_##src)
#define J32(op, src) (BPF_JMP32 | BPF_##op | BPF_##src)

uint64_t leap_bpf_prog_run_interp(const struct leap_bpf_prog *prog, void *ctx, uint64_t ctx_len)
{
	uint8_t stack[LEAP_BPF_MAX_CALL_DEPTH][LEAP_BPF_STACK_SIZE] __attribute__((aligned(16)));
	struct frame frames[LEAP_BPF_MAX_CALL_DEPTH];
	const struct bpf_insn *insns = prog->insns, *in;
	uint64_t r[11];
	uint32_t pc = 0, depth = 0;

/* Register-or-immediate operands, as each opcode reads them. */
#define DST r[in->dst_reg]
#define SRC r[in->src_reg]
#define IMM ((uint64_t)(int64_t)in->imm)
#define D32 ((uint32_t)r[in->dst_reg])
#define S32 ((uint32_t)r[in->src_reg])
#define I32 ((uint32_t)in->imm)
#define NEXT                                                                                       \
	do {                                                                                       \
		in = &insns[pc++];                                                                 \
		goto *tbl[in->code];                                                               \
	} while (0)
#define JUMP_IF(cond)                                                                              \
	do {                                                                                       \
		if (cond)                                                                          \
			pc += in->off;                                                             \
		NEXT;                                                                              \
	} while (0)
#define MEM(type) (*(type *)(uintptr_t)(SRC + (int64_t)in->off))
#define STO(type) (*(type *)(uintptr_t)(DST + (int64_t)in->off))

	static const void *const tbl[256] = {
		[A64(ADD, X)] = &&add64x,
		[A64(ADD, K)] = &&add64k,
		[A64(SUB, X)] = &&sub64x,
		[A64(SUB, K)] = &&sub64k,
		[A64(MUL, X)] = &&mul64x,
		[A64(MUL, K)] = &&mul64k,
		[A64(DIV, X)] = &&div64x,
		[A64(DIV, K)] = &&div64k,
		[A64(MOD, X)] = &&mod64x,
		[A64(MOD, K)] = &&mod64k,
		[A64(OR, X)] = &&or64x,
		[A64(OR, K)] = &&or64k,
		[A64(AND, X)] = &&and64x,
		[A64(AND, K)] = &&and64k,
		[A64(XOR, X)] = &&xor64x,
		[A64(XOR, K)] = &&xor64k,
		[A64(LSH, X)] = &&lsh64x,
		[A64(LSH, K)] = &&lsh64k,
		[A64(RSH, X)] = &&rsh64x,
		[A64(RSH, K)] = &&rsh64k,
		[A64(ARSH, X)] = &&arsh64x,
		[A64(ARSH, K)] = &&arsh64k,
		[A64(NEG, K)] = &&neg64,
		[A64(MOV, X)] = &&mov64x,
		[A64(MOV, K)] = &&mov64k,
		[A64(END, K)] = &&bswap64,

		[A32(ADD, X)] = &&add32x,
		[A32(ADD, K)] = &&add32k,
		[A32(SUB, X)] = &&sub32x,
		[A32(SUB, K)] = &&sub32k,
		[A32(MUL, X)] = &&mul32x,
		[A32(MUL, K)] = &&mul32k,
		[A32(DIV, X)] = &&div32x,
		[A32(DIV, K)] = &&div32k,
		[A32(MOD, X)] = &&mod32x,
		[A32(MOD, K)] = &&mod32k,
		[A32(OR, X)] = &&or32x,
		[A32(OR, K)] = &&or32k,
		[A32(AND, X)] = &&and32x,
		[A32(AND, K)] = &&and32k,
		[A32(XOR, X)] = &&xor32x,
		[A32(XOR, K)] = &&xor32k,
		[A32(LSH, X)] = &&lsh32x,
		[A32(LSH, K)] = &&lsh32k,
		[A32(RSH, X)] = &&rsh32x,
		[A32(RSH, K)] = &&rsh32k,
		[A32(ARSH, X)] = &&arsh32x,
		[A32(ARSH, K)] = &&arsh32k,
		[A32(NEG, K)] = &&neg32,
		[A32(MOV, X)] = &&mov32x,
		[A32(MOV, K)] = &&mov32k,
		[A32(END, TO_LE)] = &&le,
		[A32(END, TO_BE)] = &&be,

		[J64(JA, K)] = &&ja,
		[BPF_JMP32 | BPF_JA] = &&gotol,
		[J64(CALL, K)] = &&call,
		[J64(EXIT, K)] = &&exit,
		[J64(JEQ, X)] = &&jeqx,
		[J64(JEQ, K)] = &&jeqk,
		[J64(JNE, X)] = &&jnex,
		[J64(JNE, K)] = &&jnek,
		[J64(JGT, X)] = &&jgtx,
		[J64(JGT, K)] = &&jgtk,
		[J64(JGE, X)] = &&jgex,
		[J64(JGE, K)] = &&jgek,
		[J64(JLT, X)] = &&jltx,
		[J64(JLT, K)] = &&jltk,
		[J64(JLE, X)] = &&jlex,
		[J64(JLE, K)] = &&jlek,
		[J64(JSET, X)] = &&jsetx,
		[J64(JSET, K)] = &&jsetk,
		[J64(JSGT, X)] = &&jsgtx,
		[J64(JSGT, K)] = &&jsgtk,
		[J64(JSGE, X)] = &&jsgex,
		[J64(JSGE, K)] = &&jsgek,
		[J64(JSLT, X)] = &&jsltx,
		[J64(JSLT, K)] = &&jsltk,
		[J64(JSLE, X)] = &&jslex,
		[J64(JSLE, K)] = &&jslek,
		[J32(JEQ, X)] = &&jeq32x,
		[J32(JEQ, K)] = &&jeq32k,
		[J32(JNE, X)] = &&jne32x,
		[J32(JNE, K)] = &&jne32k,
		[J32(JGT, X)] = &&jgt32x,
		[J32(JGT, K)] = &&jgt32k,
		[J32(JGE, X)] = &&jge32x,
		[J32(JGE, K)] = &&jge32k,
		[J32(JLT, X)] = &&jlt32x,
		[J32(JLT, K)] = &&jlt32k,
		[J32(JLE, X)] = &&jle32x,
		[J32(JLE, K)] = &&jle32k,
		[J32(JSET, X)] = &&jset32x,
		[J32(JSET, K)] = &&jset32k,
		[J32(JSGT, X)] = &&jsgt32x,
		[J32(JSGT, K)] = &&jsgt32k,
		[J32(JSGE, X)] = &&jsge32x,
		[J32(JSGE, K)] = &&jsge32k,
		[J32(JSLT, X)] = &&jslt32x,
		[J32(JSLT, K)] = &&jslt32k,
		[J32(JSLE, X)] = &&jsle32x,
		[J32(JSLE, K)] = &&jsle32k,

		[BPF_LD | BPF_IMM | BPF_DW] = &&lddw,
		[BPF_LDX | BPF_MEM | BPF_B] = &&ldxb,
		[BPF_LDX | BPF_MEM | BPF_H] = &&ldxh,
		[BPF_LDX | BPF_MEM | BPF_W] = &&ldxw,
		[BPF_LDX | BPF_MEM | BPF_DW] = &&ldxdw,
		[BPF_LDX | BPF_MEMSX | BPF_B] = &&ldxsb,
		[BPF_LDX | BPF_MEMSX | BPF_H] = &&ldxsh,
		[BPF_LDX | BPF_MEMSX | BPF_W] = &&ldxsw,
		[BPF_ST | BPF_MEM | BPF_B] = &&stb,
		[BPF_ST | BPF_MEM | BPF_H] = &&sth,
		[BPF_ST | BPF_MEM | BPF_W] = &&stw,
		[BPF_ST | BPF_MEM | BPF_DW] = &&stdw,
		[BPF_STX | BPF_MEM | BPF_B] = &&stxb,
		[BPF_STX | BPF_MEM | BPF_H] = &&stxh,
		[BPF_STX | BPF_MEM | BPF_W] = &&stxw,
		[BPF_STX | BPF_MEM | BPF_DW] = &&stxdw,
		[BPF_STX | BPF_ATOMIC | BPF_W] = &&atomic,
		[BPF_STX | BPF_ATOMIC | BPF_DW] = &&atomic,
	};

	r[0] = 0;
	r[1] = (uint64_t)(uintptr_t)ctx;
	r[2] = ctx_len;
	r[3] = r[4] = r[5] = 0;
	r[10] = (uint64_t)(uintptr_t)(stack[0] + LEAP_BPF_STACK_SIZE);
	NEXT;

	/* ---- ALU64 ---- */
add64x:
	DST += SRC;
	NEXT;
add64k:
	DST += IMM;
	NEXT;
sub64x:
	DST -= SRC;
	NEXT;
sub64k:
	DST -= IMM;
	NEXT;
mul64x:
	DST *= SRC;
	NEXT;
mul64k:
	DST *= IMM;
	NEXT;
div64x:
	DST = in->off ? sdiv64((int64_t)DST, (int64_t)SRC) : SRC ? DST / SRC : 0;
	NEXT;
div64k:
	DST = in->off ? sdiv64((int64_t)DST, (int64_t)IMM) : IMM ? DST / IMM : 0;
	NEXT;
mod64x:
	DST = in->off ? smod64((int64_t)DST, (int64_t)SRC) : SRC ? DST % SRC : DST;
	NEXT;
mod64k:
	DST = in->off ? smod64((int64_t)DST, (int64_t)IMM) : IMM ? DST % IMM : DST;
	NEXT;
or64x:
	DST |= SRC;
	NEXT;
or64k:
	DST |= IMM;
	NEXT;
and64x:
	DST &= SRC;
	NEXT;
and64k:
	DST &= IMM;
	NEXT;
xor64x:
	DST ^= SRC;
	NEXT;
xor64k:
	DST ^= IMM;
	NEXT;
lsh64x:
	DST <<= SRC & 63;
	NEXT;
lsh64k:
	DST <<= IMM & 63;
	NEXT;
rsh64x:
	DST >>= SRC & 63;
	NEXT;
rsh64k:
	DST >>= IMM & 63;
	NEXT;
arsh64x:
	DST = (uint64_t)((int64_t)DST >> (SRC & 63));
	NEXT;
arsh64k:
	DST = (uint64_t)((int64_t)DST >> (IMM & 63));
	NEXT;
neg64:
	DST = (uint64_t)0 - DST;
	NEXT;
mov64x:
	switch (in->off) {
	case 8:
		DST = (uint64_t)(int64_t)(int8_t)SRC;
		break;
	case 16:
		DST = (uint64_t)(int64_t)(int16_t)SRC;
		break;
	case 32:
		DST = (uint64_t)(int64_t)(int32_t)SRC;
		break;
	default:
		DST = SRC;
		break;
	}
	NEXT;
mov64k:
	DST = IMM;
	NEXT;
bswap64: /* v4: ALU64 | END | TO_LE swaps unconditionally */
	DST = in->imm == 16   ? __builtin_bswap16((uint16_t)DST)
	      : in->imm == 32 ? __builtin_bswap32((uint32_t)DST)
			      : __builtin_bswap64(DST);
	NEXT;

	/* ---- ALU32: results are zero-extended ---- */
add32x:
	DST = D32 + S32;
	NEXT;
add32k:
	DST = D32 + I32;
	NEXT;
sub32x:
	DST = D32 - S32;
	NEXT;
sub32k:
	DST = D32 - I32;
	NEXT;
mul32x:
	DST = D32 * S32;
	NEXT;
mul32k:
	DST = D32 * I32;
	NEXT;
div32x:
	DST = in->off ? sdiv32((int32_t)D32, (int32_t)S32) : S32 ? D32 / S32 : 0;
	NEXT;
div32k:
	DST = in->off ? sdiv32((int32_t)D32, (int32_t)I32) : I32 ? D32 / I32 : 0;
	NEXT;
mod32x:
	DST = in->off ? smod32((int32_t)D32, (int32_t)S32) : S32 ? D32 % S32 : D32;
	NEXT;
mod32k:
	DST = in->off ? smod32((int32_t)D32, (int32_t)I32) : I32 ? D32 % I32 : D32;
	NEXT;
or32x:
	DST = D32 | S32;
	NEXT;
or32k:
	DST = D32 | I32;
	NEXT;
and32x:
	DST = D32 & S32;
	NEXT;
and32k:
	DST = D32 & I32;
	NEXT;
xor32x:
	DST = D32 ^ S32;
	NEXT;
xor32k:
	DST = D32 ^ I32;
	NEXT;
lsh32x:
	DST = D32 << (S32 & 31);
	NEXT;
lsh32k:
	DST = D32 << (I32 & 31);
	NEXT;
rsh32x:
	DST = D32 >> (S32 & 31);
	NEXT;
rsh32k:
	DST = D32 >> (I32 & 31);
	NEXT;
arsh32x:
	DST = (uint32_t)((int32_t)D32 >> (S32 & 31));
	NEXT;
arsh32k:
	DST = (uint32_t)((int32_t)D32 >> (I32 & 31));
	NEXT;
neg32:
	DST = (uint32_t)0 - D32;
	NEXT;
mov32x:
	switch (in->off) {
	case 8:
		DST = (uint32_t)(int32_t)(int8_t)SRC;
		break;
	case 16:
		DST = (uint32_t)(int32_t)(int16_t)SRC;
		break;
	default:
		DST = S32;
		break;
	}
	NEXT;
mov32k:
	DST = I32;
	NEXT;
le: /* little-endian host: truncate */
	DST = in->imm == 16 ? (uint16_t)DST : in->imm == 32 ? (uint32_t)DST : DST;
	NEXT;
be:
	DST = in->imm == 16   ? __builtin_bswap16((uint16_t)DST)
	      : in->imm == 32 ? __builtin_bswap32((uint32_t)DST)
			      : __builtin_bswap64(DST);
	NEXT;

	/* ---- jumps ---- */
ja:
	pc += in->off;
	NEXT;
gotol:
	pc += in->imm;
	NEXT;
jeqx:
	JUMP_IF(DST == SRC);
jeqk:
	JUMP_IF(DST == IMM);
jnex:
	JUMP_IF(DST != SRC);
jnek:
	JUMP_IF(DST != IMM);
jgtx:
	JUMP_IF(DST > SRC);
jgtk:
	JUMP_IF(DST > IMM);
jgex:
	JUMP_IF(DST >= SRC);
jgek:
	JUMP_IF(DST >= IMM);
jltx:
	JUMP_IF(DST < SRC);
jltk:
	JUMP_IF(DST < IMM);
jlex:
	JUMP_IF(DST <= SRC);
jlek:
	JUMP_IF(DST <= IMM);
jsetx:
	JUMP_IF(DST & SRC);
jsetk:
	JUMP_IF(DST & IMM);
jsgtx:
	JUMP_IF((int64_t)DST > (int64_t)SRC);
jsgtk:
	JUMP_IF((int64_t)DST > (int64_t)IMM);
jsgex:
	JUMP_IF((int64_t)DST >= (int64_t)SRC);
jsgek:
	JUMP_IF((int64_t)DST >= (int64_t)IMM);
jsltx:
	JUMP_IF((int64_t)DST < (int64_t)SRC);
jsltk:
	JUMP_IF((int64_t)DST < (int64_t)IMM);
jslex:
	JUMP_IF((int64_t)DST <= (int64_t)SRC);
jslek:
	JUMP_IF((int64_t)DST <= (int64_t)IMM);
jeq32x:
	JUMP_IF(D32 == S32);
jeq32k:
	JUMP_IF(D32 == I32);
jne32x:
	JUMP_IF(D32 != S32);
jne32k:
	JUMP_IF(D32 != I32);
jgt32x:
	JUMP_IF(D32 > S32);
jgt32k:
	JUMP_IF(D32 > I32);
jge32x:
	JUMP_IF(D32 >= S32);
jge32k:
	JUMP_IF(D32 >= I32);
jlt32x:
	JUMP_IF(D32 < S32);
jlt32k:
	JUMP_IF(D32 < I32);
jle32x:
	JUMP_IF(D32 <= S32);
jle32k:
	JUMP_IF(D32 <= I32);
jset32x:
	JUMP_IF(D32 & S32);
jset32k:
	JUMP_IF(D32 & I32);
jsgt32x:
	JUMP_IF((int32_t)D32 > (int32_t)S32);
jsgt32k:
	JUMP_IF((int32_t)D32 > (int32_t)I32);
jsge32x:
	JUMP_IF((int32_t)D32 >= (int32_t)S32);
jsge32k:
	JUMP_IF((int32_t)D32 >= (int32_t)I32);
jslt32x:
	JUMP_IF((int32_t)D32 < (int32_t)S32);
jslt32k:
	JUMP_IF((int32_t)D32 < (int32_t)I32);
jsle32x:
	JUMP_IF((int32_t)D32 <= (int32_t)S32);
jsle32k:
	JUMP_IF((int32_t)D32 <= (int32_t)I32);
call:
	if (in->src_reg == BPF_PSEUDO_CALL) {
		struct frame *f = &frames[depth++];

		f->ret_pc = pc;
		memcpy(f->saved, &r[6], sizeof(f->saved));
		r[10] = (uint64_t)(uintptr_t)(stack[depth] + LEAP_BPF_STACK_SIZE);
		pc += in->imm;
	} else if (in->imm == BPF_FUNC_map_lookup_elem && prog->array_cnt) {
		/* An array the loader declared inlinable: the helper's work, no call. */
		const struct leap_bpf_array *a = NULL;

		for (uint32_t k = 0; k < prog->array_cnt; k++)
			if ((uint64_t)(uintptr_t)prog->arrays[k] == r[1])
				a = prog->arrays[k];
		if (a) {
			uint32_t key = *(const uint32_t *)(uintptr_t)r[2];

			r[0] = key < a->max_entries
				   ? (uint64_t)(uintptr_t)(a->data + (size_t)key * a->stride)
				   : 0;
		} else {
			r[0] = prog->helpers->fn[in->imm](r[1], r[2], r[3], r[4], r[5]);
		}
	} else {
		r[0] = prog->helpers->fn[in->imm](r[1], r[2], r[3], r[4], r[5]);
	}
	NEXT;
exit:
	if (depth == 0)
		return r[0];
	{
		struct frame *f = &frames[--depth];

		memcpy(&r[6], f->saved, sizeof(f->saved));
		pc = f->ret_pc;
	}
	NEXT;

	/* ---- loads and stores ---- */
lddw:
	DST = (uint64_t)(uint32_t)in->imm | ((uint64_t)(uint32_t)in[1].imm << 32);
	pc++;
	NEXT;
ldxb:
	DST = MEM(uint8_t);
	NEXT;
ldxh:
	DST = MEM(uint16_t);
	NEXT;
ldxw:
	DST = MEM(uint32_t);
	NEXT;
ldxdw:
	DST = MEM(uint64_t);
	NEXT;
ldxsb:
	DST = (uint64_t)(int64_t)MEM(int8_t);
	NEXT;
ldxsh:
	DST = (uint64_t)(int64_t)MEM(int16_t);
	NEXT;
ldxsw:
	DST = (uint64_t)(int64_t)MEM(int32_t);
	NEXT;
stb:
	STO(uint8_t) = (uint8_t)in->imm;
	NEXT;
sth:
	STO(uint16_t) = (uint16_t)in->imm;
	NEXT;
stw:
	STO(uint32_t) = (uint32_t)in->imm;
	NEXT;
stdw:
	STO(uint64_t) = IMM;
	NEXT;
stxb:
	STO(uint8_t) = (uint8_t)SRC;
	NEXT;
stxh:
	STO(uint16_t) = (uint16_t)SRC;
	NEXT;
stxw:
	STO(uint32_t) = (uint32_t)SRC;
	NEXT;
stxdw:
	STO(uint64_t) = SRC;
	NEXT;
atomic:
	atomic_op(in, r);
	NEXT;
}
