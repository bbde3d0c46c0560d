// SPDX-License-Identifier: BSD-3-Clause
/*
 * The reference interpreter: the BPF ISA as RFC 9669 states it. It is the
 * definition the JIT is tested against, so every opcode is spelled out on
 * its own, in one place.
 *
 * Dispatch is direct threaded over a pre-decoded copy of the program
 * (struct leap_bpf_dinsn, built once by leap_bpf_interp_prepare() at create
 * time): each slot carries its handler's label address, whole-byte register
 * numbers and the operands, so an instruction costs one load and one
 * indirect jump to dispatch and no field decoding. The decoder also picks
 * specialised handlers where the opcode byte alone would need a branch at
 * run time (movsx, signed division, byte swaps by width, helper vs local
 * call), and fuses what the JIT also treats as one unit: `ld_imm64 r1, A;
 * call map_lookup_elem` on an inlinable array becomes a bounds check and an
 * address computation, `rX = rY; rX += K` one add, and unsigned division by
 * a constant a multiply by its reciprocal. Fusion never spans a jump target,
 * and slot indices stay those of the BPF program, so jump offsets keep
 * their meaning. The hottest forms (loads, stores, moves, adds and
 * compare-and-jump) also exist once per register combination, so their
 * register accesses use fixed stack offsets: a dependent chain of BPF
 * instructions then forwards through the CPU's store buffer (and memory
 * renaming) instead of stalling on indexed accesses — on the bench policy
 * that alone took the interpreter from ~75 to ~35 ns per call. Validation
 * (validate.c) has already rejected everything the tables do not list, so
 * there are no checks here.
 *
 * BPF stacks (512 bytes per frame) live on the C stack of the calling
 * thread: nothing is allocated per run.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "leapio/common.h"

#include "bpf_internal.h"

struct frame {
	const struct leap_bpf_dinsn *ret;
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

/*
 * Zero the `bytes` (a multiple of 8) below `top`. A plain loop: most
 * functions need one or two words, where a call to memset costs more than
 * the stores; the empty asm keeps GCC from turning it back into one.
 */
static inline void zero_below(uint8_t *top, uint32_t bytes)
{
	for (uint64_t *w = (uint64_t *)(void *)(top - bytes); w < (uint64_t *)(void *)top; w++) {
		*w = 0;
		__asm__("" : "+r"(w));
	}
}

/* BPF_ATOMIC: really atomic, sequentially consistent like the kernel's. */
static void atomic_op(const struct leap_bpf_dinsn *in, uint64_t *r, bool w64)
{
	uintptr_t addr = (uintptr_t)(r[in->dst] + (int64_t)in->off);
	uint64_t s = r[in->src], old;

	if (!w64) {
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
			r[in->src] = o;
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
			r[in->src] = old;
	}
}

/* Opcode bytes, by class. */
#define A64(op, src) (BPF_ALU64 | BPF_##op | BPF_##src)
#define A32(op, src) (BPF_ALU | BPF_##op | BPF_##src)
#define J64(op, src) (BPF_JMP | BPF_##op | BPF_##src)
#define J32(op, src) (BPF_JMP32 | BPF_##op | BPF_##src)

/*
 * Register-specialised handlers for the hottest forms: with the register
 * numbers constants, r[] is addressed at fixed offsets from the stack
 * pointer, which the CPU can forward (and rename) far better than indexed
 * accesses; chains of dependent instructions are what an interpreter
 * spends its time on. Both lists hold all eleven registers (r10 is a
 * store's base; validation keeps it from being written).
 */
#define FOR_D(M, ...)                                                                              \
	M(0, __VA_ARGS__)                                                                          \
	M(1, __VA_ARGS__)                                                                          \
	M(2, __VA_ARGS__)                                                                          \
	M(3, __VA_ARGS__)                                                                          \
	M(4, __VA_ARGS__)                                                                          \
	M(5, __VA_ARGS__)                                                                          \
	M(6, __VA_ARGS__)                                                                          \
	M(7, __VA_ARGS__) M(8, __VA_ARGS__) M(9, __VA_ARGS__) M(10, __VA_ARGS__)
#define FOR_S(M, ...)                                                                              \
	M(0, __VA_ARGS__)                                                                          \
	M(1, __VA_ARGS__)                                                                          \
	M(2, __VA_ARGS__)                                                                          \
	M(3, __VA_ARGS__)                                                                          \
	M(4, __VA_ARGS__)                                                                          \
	M(5, __VA_ARGS__)                                                                          \
	M(6, __VA_ARGS__)                                                                          \
	M(7, __VA_ARGS__) M(8, __VA_ARGS__) M(9, __VA_ARGS__) M(10, __VA_ARGS__)
/*
 * The specialised forms: name, opcode byte, and the handler body with the
 * register numbers d and sr as constants.
 */
/*
 * Memory access at an address the program computed, which BPF does not
 * require to be aligned (the verifier accepts a u32 at an odd context
 * offset, x86 runs it); a misaligned typed access is undefined behaviour
 * in C, so they go through memcpy of a constant size: one plain move at
 * -O2 (bench/bpf_bench shows no change).
 */
static inline uint64_t ld_mem(uintptr_t a, size_t n)
{
	uint64_t v = 0;

	/* Little-endian: the low bytes of v are the n bytes loaded, zero-extended. */
	memcpy(&v, (const void *)a, n);
	return v;
}

static inline void st_mem(uintptr_t a, uint64_t v, size_t n)
{
	memcpy((void *)a, &v, n);
}

#define LD(t, d, sr)  r[d] = ld_mem((uintptr_t)(r[sr] + (int64_t)in->off), sizeof(t))
#define STR(t, d, sr) st_mem((uintptr_t)(r[d] + (int64_t)in->off), r[sr], sizeof(t))
#define STI(t, d)                                                                                  \
	st_mem((uintptr_t)(r[d] + (int64_t)in->off), (uint64_t)(int64_t)in->imm, sizeof(t))
#define A32X(d, sr, op) r[d] = (uint32_t)((uint32_t)r[d] op(uint32_t) r[sr])
#define A32K(d, op)	r[d] = (uint32_t)((uint32_t)r[d] op(uint32_t) in->imm)
#define JX(d, sr, cmp)                                                                             \
	if (r[d] cmp r[sr])                                                                        \
	in += in->off
#define JK(d, cmp)                                                                                 \
	if (r[d] cmp(uint64_t)(int64_t) in->imm)                                                   \
	in += in->off
#define SPEC2(M)                                                                                   \
	M(ldxb, BPF_LDX | BPF_MEM | BPF_B)                                                         \
	M(ldxw, BPF_LDX | BPF_MEM | BPF_W)                                                         \
	M(ldxdw, BPF_LDX | BPF_MEM | BPF_DW)                                                       \
	M(stxb, BPF_STX | BPF_MEM | BPF_B)                                                         \
	M(stxw, BPF_STX | BPF_MEM | BPF_W)                                                         \
	M(stxdw, BPF_STX | BPF_MEM | BPF_DW)                                                       \
	M(mov64x, A64(MOV, X))                                                                     \
	M(add64x, A64(ADD, X))                                                                     \
	M(sub64x, A64(SUB, X))                                                                     \
	M(mov32x, A32(MOV, X))                                                                     \
	M(jeqx, J64(JEQ, X))                                                                       \
	M(jnex, J64(JNE, X))                                                                       \
	M(jgtx, J64(JGT, X))                                                                       \
	M(jgex, J64(JGE, X))                                                                       \
	M(jltx, J64(JLT, X))                                                                       \
	M(jlex, J64(JLE, X))
#define SPEC1(M)                                                                                   \
	M(add64k, A64(ADD, K))                                                                     \
	M(sub64k, A64(SUB, K))                                                                     \
	M(mov64k, A64(MOV, K))                                                                     \
	M(and64k, A64(AND, K))                                                                     \
	M(lsh64k, A64(LSH, K))                                                                     \
	M(rsh64k, A64(RSH, K))                                                                     \
	M(mov32k, A32(MOV, K))                                                                     \
	M(add32k, A32(ADD, K))                                                                     \
	M(and32k, A32(AND, K))                                                                     \
	M(lsh32k, A32(LSH, K))                                                                     \
	M(rsh32k, A32(RSH, K))                                                                     \
	M(jeqk, J64(JEQ, K))                                                                       \
	M(jnek, J64(JNE, K))                                                                       \
	M(jgtk, J64(JGT, K))                                                                       \
	M(jgek, J64(JGE, K))                                                                       \
	M(jltk, J64(JLT, K))                                                                       \
	M(jlek, J64(JLE, K))                                                                       \
	M(jeq32k, J32(JEQ, K))                                                                     \
	M(jne32k, J32(JNE, K))                                                                     \
	M(stb, BPF_ST | BPF_MEM | BPF_B)                                                           \
	M(sth, BPF_ST | BPF_MEM | BPF_H)                                                           \
	M(stw, BPF_ST | BPF_MEM | BPF_W)                                                           \
	M(stdw, BPF_ST | BPF_MEM | BPF_DW)
#define B_ldxb(d, sr)	LD(uint8_t, d, sr)
#define B_ldxw(d, sr)	LD(uint32_t, d, sr)
#define B_ldxdw(d, sr)	LD(uint64_t, d, sr)
#define B_stxb(d, sr)	STR(uint8_t, d, sr)
#define B_stxw(d, sr)	STR(uint32_t, d, sr)
#define B_stxdw(d, sr)	STR(uint64_t, d, sr)
#define B_mov64x(d, sr) r[d] = r[sr]
#define B_add64x(d, sr) r[d] += r[sr]
#define B_sub64x(d, sr) r[d] -= r[sr]
#define B_mov32x(d, sr) r[d] = (uint32_t)r[sr]
#define B_jeqx(d, sr)	JX(d, sr, ==)
#define B_jnex(d, sr)	JX(d, sr, !=)
#define B_jgtx(d, sr)	JX(d, sr, >)
#define B_jgex(d, sr)	JX(d, sr, >=)
#define B_jltx(d, sr)	JX(d, sr, <)
#define B_jlex(d, sr)	JX(d, sr, <=)
#define B_add64k(d)	r[d] += (uint64_t)(int64_t)in->imm
#define B_sub64k(d)	r[d] -= (uint64_t)(int64_t)in->imm
#define B_mov64k(d)	r[d] = (uint64_t)(int64_t)in->imm
#define B_and64k(d)	r[d] &= (uint64_t)(int64_t)in->imm
#define B_lsh64k(d)	r[d] <<= in->imm & 63
#define B_rsh64k(d)	r[d] >>= in->imm & 63
#define B_mov32k(d)	r[d] = (uint32_t)in->imm
#define B_add32k(d)	A32K(d, +)
#define B_and32k(d)	A32K(d, &)
#define B_lsh32k(d)	r[d] = (uint32_t)((uint32_t)r[d] << (in->imm & 31))
#define B_rsh32k(d)	r[d] = (uint32_t)r[d] >> (in->imm & 31)
#define B_jeqk(d)	JK(d, ==)
#define B_jnek(d)	JK(d, !=)
#define B_jgtk(d)	JK(d, >)
#define B_jgek(d)	JK(d, >=)
#define B_jltk(d)	JK(d, <)
#define B_jlek(d)	JK(d, <=)
#define B_jeq32k(d)                                                                                \
	if ((uint32_t)r[d] == (uint32_t)in->imm)                                                   \
	in += in->off
#define B_jne32k(d)                                                                                \
	if ((uint32_t)r[d] != (uint32_t)in->imm)                                                   \
	in += in->off
#define B_stb(d)  STI(uint8_t, d)
#define B_sth(d)  STI(uint16_t, d)
#define B_stw(d)  STI(uint32_t, d)
#define B_stdw(d) STI(uint64_t, d)
enum spec2 {
#define E2(name, code) S2_##name,
	SPEC2(E2) S2_COUNT
#undef E2
};
enum spec1 {
#define E1(name, code) S1_##name,
	SPEC1(E1) S1_COUNT
#undef E1
};

/* Handlers for forms the decoder specialises (not one opcode byte each). */
enum xop {
	X_NOP,
	X_MOVSX64_8,
	X_MOVSX64_16,
	X_MOVSX64_32,
	X_MOVSX32_8,
	X_MOVSX32_16,
	X_SDIV64X,
	X_SDIV64K,
	X_SMOD64X,
	X_SMOD64K,
	X_SDIV32X,
	X_SDIV32K,
	X_SMOD32X,
	X_SMOD32K,
	X_UDIV64_MAGIC,
	X_BSWAP16,
	X_BSWAP32,
	X_BSWAP64,
	X_ZEXT16,
	X_ZEXT32,
	X_MOVADD,
	X_LOOKUP,
	X_LOOKUP_KEY,
	X_CALL_LOCAL,
	X_CALL_HELPER,
	X_ATOMIC32,
	X_ATOMIC64,
	X_COUNT
};

struct labels {
	const void *const *op;		 /* by opcode byte */
	const void *const *x;		 /* by enum xop */
	const void *const (*s2)[11][11]; /* [enum spec2][dst][src] */
	const void *const (*s1)[11];	 /* [enum spec1][dst] */
};

/*
 * prog == NULL is the decoder asking for the handler addresses (ctx points
 * to a struct labels): they exist only inside this function. noipa keeps
 * GCC from cloning it for that call, which would give the clone its own
 * labels.
 */
__attribute__((noipa)) uint64_t leap_bpf_prog_run_interp(const struct leap_bpf_prog *prog,
							 void *ctx, uint64_t ctx_len)
{
	uint8_t stack[LEAP_BPF_MAX_CALL_DEPTH][LEAP_BPF_STACK_SIZE] __attribute__((aligned(16)));
	struct frame frames[LEAP_BPF_MAX_CALL_DEPTH];
	const struct leap_bpf_dinsn *in;
	const leap_bpf_helper_fn *helper;
	const uint64_t *consts;
	uint64_t r[11];
	uint32_t depth = 0;

/* Register-or-immediate operands, as each handler reads them. */
#define DST r[in->dst]
#define SRC r[in->src]
#define IMM ((uint64_t)(int64_t)in->imm)
#define D32 ((uint32_t)r[in->dst])
#define S32 ((uint32_t)r[in->src])
#define I32 ((uint32_t)in->imm)
#define NEXT                                                                                       \
	do {                                                                                       \
		in++;                                                                              \
		goto * in->h;                                                                      \
	} while (0)
#define JUMP_IF(cond)                                                                              \
	do {                                                                                       \
		if (cond)                                                                          \
			in += in->off;                                                             \
		NEXT;                                                                              \
	} while (0)
/* Loads and stores through the unaligned-safe accessors above (sign extension by the caller's cast). */
#define MEM(type)      ((type)ld_mem((uintptr_t)(SRC + (int64_t)in->off), sizeof(type)))
#define STO(type, val) st_mem((uintptr_t)(DST + (int64_t)in->off), (uint64_t)(val), sizeof(type))

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

		[J64(JA, K)] = &&ja,
		[BPF_JMP32 | BPF_JA] = &&gotol,
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
	};
	static const void *const xtbl[X_COUNT] = {
		[X_NOP] = &&nop,
		[X_MOVSX64_8] = &&movsx64_8,
		[X_MOVSX64_16] = &&movsx64_16,
		[X_MOVSX64_32] = &&movsx64_32,
		[X_MOVSX32_8] = &&movsx32_8,
		[X_MOVSX32_16] = &&movsx32_16,
		[X_SDIV64X] = &&sdiv64x,
		[X_SDIV64K] = &&sdiv64k,
		[X_SMOD64X] = &&smod64x,
		[X_SMOD64K] = &&smod64k,
		[X_SDIV32X] = &&sdiv32x,
		[X_SDIV32K] = &&sdiv32k,
		[X_SMOD32X] = &&smod32x,
		[X_SMOD32K] = &&smod32k,
		[X_UDIV64_MAGIC] = &&udiv64_magic,
		[X_BSWAP16] = &&bswap16,
		[X_BSWAP32] = &&bswap32,
		[X_BSWAP64] = &&bswap64,
		[X_ZEXT16] = &&zext16,
		[X_ZEXT32] = &&zext32,
		[X_MOVADD] = &&movadd,
		[X_LOOKUP] = &&lookup,
		[X_LOOKUP_KEY] = &&lookup_key,
		[X_CALL_LOCAL] = &&call_local,
		[X_CALL_HELPER] = &&call_helper,
		[X_ATOMIC32] = &&atomic32,
		[X_ATOMIC64] = &&atomic64,
	};

#define CELL(sr, name, d) [d][sr] = &&name##_##d##_##sr,
#define ROW(d, name)	  FOR_S(CELL, name, d)
#define T2(name, code)	  [S2_##name] = { FOR_D(ROW, name) },
	static const void *const stbl2[S2_COUNT][11][11] = { SPEC2(T2) };
#define CELL1(d, name) [d] = &&name##_##d,
#define T1(name, code) [S1_##name] = { FOR_D(CELL1, name) },
	static const void *const stbl1[S1_COUNT][11] = { SPEC1(T1) };

	if (__builtin_expect(!prog, 0)) {
		struct labels *l = ctx;

		l->op = tbl;
		l->x = xtbl;
		l->s2 = stbl2;
		l->s1 = stbl1;
		return 0;
	}
	helper = prog->helpers ? prog->helpers->fn : NULL;
	consts = prog->consts;
	r[0] = 0;
	r[1] = (uint64_t)(uintptr_t)ctx;
	r[2] = ctx_len;
	r[3] = r[4] = r[5] = 0;
	r[10] = (uint64_t)(uintptr_t)(stack[0] + LEAP_BPF_STACK_SIZE);
	/* Zero what the function may touch: no run reads another's data (as the JIT). */
	zero_below(stack[0] + LEAP_BPF_STACK_SIZE, prog->stack_depth[0]);
	in = prog->dinsns;
	goto * in->h;

nop:
	NEXT;

	/* ---- register-specialised copies of the hottest handlers ---- */
#define SH2(sr, name, d)                                                                           \
	name##_##d##_##sr : B_##name(d, sr);                                                       \
	NEXT;
#define SROW(d, name)	  FOR_S(SH2, name, d)
#define SALL2(name, code) FOR_D(SROW, name)
	SPEC2(SALL2)
#define SH1(d, name)                                                                               \
	name##_##d : B_##name(d);                                                                  \
	NEXT;
#define SALL1(name, code) FOR_D(SH1, name)
	SPEC1(SALL1)

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
	DST = SRC ? DST / SRC : 0;
	NEXT;
div64k:
	DST = IMM ? DST / IMM : 0;
	NEXT;
udiv64_magic : { /* dst / d for a constant d > 2, not a power of 2 (see the decoder) */
	uint64_t n = DST, t = (uint64_t)(((unsigned __int128)consts[in->imm] * n) >> 64);

	DST = (((n - t) >> 1) + t) >> in->off;
	NEXT;
}
mod64x:
	DST = SRC ? DST % SRC : DST;
	NEXT;
mod64k:
	DST = IMM ? DST % IMM : DST;
	NEXT;
sdiv64x:
	DST = sdiv64((int64_t)DST, (int64_t)SRC);
	NEXT;
sdiv64k:
	DST = sdiv64((int64_t)DST, (int64_t)IMM);
	NEXT;
smod64x:
	DST = smod64((int64_t)DST, (int64_t)SRC);
	NEXT;
smod64k:
	DST = smod64((int64_t)DST, (int64_t)IMM);
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
	DST = SRC;
	NEXT;
movsx64_8:
	DST = (uint64_t)(int64_t)(int8_t)SRC;
	NEXT;
movsx64_16:
	DST = (uint64_t)(int64_t)(int16_t)SRC;
	NEXT;
movsx64_32:
	DST = (uint64_t)(int64_t)(int32_t)SRC;
	NEXT;
mov64k:
	DST = IMM;
	NEXT;
movadd: /* dst = src; dst += imm (a pointer into the stack, usually) */
	DST = SRC + IMM;
	in++;
	NEXT;
bswap16: /* v4 ALU64 | END | TO_LE, and TO_BE on this little-endian host */
	DST = __builtin_bswap16((uint16_t)DST);
	NEXT;
bswap32:
	DST = __builtin_bswap32((uint32_t)DST);
	NEXT;
bswap64:
	DST = __builtin_bswap64(DST);
	NEXT;
zext16: /* TO_LE on a little-endian host: truncate */
	DST = (uint16_t)DST;
	NEXT;
zext32:
	DST = (uint32_t)DST;
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
	DST = S32 ? D32 / S32 : 0;
	NEXT;
div32k:
	DST = I32 ? D32 / I32 : 0;
	NEXT;
mod32x:
	DST = S32 ? D32 % S32 : D32;
	NEXT;
mod32k:
	DST = I32 ? D32 % I32 : D32;
	NEXT;
sdiv32x:
	DST = sdiv32((int32_t)D32, (int32_t)S32);
	NEXT;
sdiv32k:
	DST = sdiv32((int32_t)D32, (int32_t)I32);
	NEXT;
smod32x:
	DST = smod32((int32_t)D32, (int32_t)S32);
	NEXT;
smod32k:
	DST = smod32((int32_t)D32, (int32_t)I32);
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
	DST = S32;
	NEXT;
movsx32_8:
	DST = (uint32_t)(int32_t)(int8_t)SRC;
	NEXT;
movsx32_16:
	DST = (uint32_t)(int32_t)(int16_t)SRC;
	NEXT;
mov32k:
	DST = I32;
	NEXT;

	/* ---- jumps ---- */
ja:
	in += in->off;
	NEXT;
gotol:
	in += in->imm;
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
call_local : {
	struct frame *f = &frames[depth++];

	f->ret = in;
	memcpy(f->saved, &r[6], sizeof(f->saved));
	r[10] = (uint64_t)(uintptr_t)(stack[depth] + LEAP_BPF_STACK_SIZE);
	zero_below(stack[depth] + LEAP_BPF_STACK_SIZE, (uint16_t)in->off);
	in += in->imm;
	NEXT;
}
call_helper:
	r[0] = helper[in->imm](r[1], r[2], r[3], r[4], r[5]);
	NEXT;
lookup : { /* ld_imm64 r1, A; call map_lookup_elem, A an inlinable array (see the decoder) */
	uint32_t key = *(const uint32_t *)(uintptr_t)r[2];

	r[1] = in[1].k;
	r[0] = key < (uint32_t)in[2].imm ? in[2].k + (uint64_t)key * (uint32_t)in->imm : 0;
	in += 2;
	NEXT;
}
lookup_key : { /* r2 = rS + K, then the lookup above at in + 2: the key never leaves a register */
	uint64_t kp = SRC + IMM;
	uint32_t key = *(const uint32_t *)(uintptr_t)kp;

	r[2] = kp;
	r[1] = in[3].k;
	r[0] = key < (uint32_t)in[4].imm ? in[4].k + (uint64_t)key * (uint32_t)in[2].imm : 0;
	in += 4;
	NEXT;
}
exit:
	if (depth == 0)
		return r[0];
	{
		struct frame *f = &frames[--depth];

		memcpy(&r[6], f->saved, sizeof(f->saved));
		in = f->ret;
	}
	NEXT;

	/* ---- loads and stores ---- */
lddw:
	DST = in[1].k;
	in++;
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
	STO(uint8_t, in->imm);
	NEXT;
sth:
	STO(uint16_t, in->imm);
	NEXT;
stw:
	STO(uint32_t, in->imm);
	NEXT;
stdw:
	STO(uint64_t, IMM);
	NEXT;
stxb:
	STO(uint8_t, SRC);
	NEXT;
stxh:
	STO(uint16_t, SRC);
	NEXT;
stxw:
	STO(uint32_t, SRC);
	NEXT;
stxdw:
	STO(uint64_t, SRC);
	NEXT;
atomic32:
	atomic_op(in, r, false);
	NEXT;
atomic64:
	atomic_op(in, r, true);
	NEXT;
}

/* ---- the decoder: BPF instructions -> struct leap_bpf_dinsn ---- */

static const struct leap_bpf_array *inlinable(const struct leap_bpf_prog *p, uint64_t addr)
{
	for (uint32_t k = 0; k < p->array_cnt; k++)
		if ((uint64_t)(uintptr_t)p->arrays[k] == addr)
			return p->arrays[k];
	return NULL;
}

/* The specialised handler for insn `in`, or X_COUNT for the plain opcode table. */
static enum xop special(const struct bpf_insn *in)
{
	uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
	bool a64 = cls == BPF_ALU64, x = BPF_SRC(in->code) == BPF_X;

	if (cls == BPF_ALU || cls == BPF_ALU64) {
		if (op == BPF_MOV && x && in->off)
			return a64 ? (in->off == 8    ? X_MOVSX64_8
				      : in->off == 16 ? X_MOVSX64_16
						      : X_MOVSX64_32)
				   : (in->off == 8 ? X_MOVSX32_8 : X_MOVSX32_16);
		if ((op == BPF_DIV || op == BPF_MOD) && in->off == LEAP_BPF_OFF_SIGNED) {
			static const enum xop t[2][2][2] = {
				{ { X_SDIV32K, X_SDIV32X }, { X_SMOD32K, X_SMOD32X } },
				{ { X_SDIV64K, X_SDIV64X }, { X_SMOD64K, X_SMOD64X } },
			};
			return t[a64][op == BPF_MOD][x];
		}
		if (op == BPF_END) {
			if (!a64 && BPF_SRC(in->code) == BPF_TO_LE)
				return in->imm == 16 ? X_ZEXT16 : in->imm == 32 ? X_ZEXT32 : X_NOP;
			return in->imm == 16 ? X_BSWAP16 : in->imm == 32 ? X_BSWAP32 : X_BSWAP64;
		}
		return X_COUNT;
	}
	if (in->code == (BPF_JMP | BPF_CALL))
		return in->src_reg == BPF_PSEUDO_CALL ? X_CALL_LOCAL : X_CALL_HELPER;
	if (cls == BPF_STX && BPF_MODE(in->code) == BPF_ATOMIC)
		return BPF_SIZE(in->code) == BPF_DW ? X_ATOMIC64 : X_ATOMIC32;
	return X_COUNT;
}

/* Opcode byte -> 1 + specialised form, 0 for none. */
static const uint8_t s2_of[256] = {
#define O2(name, code) [code] = S2_##name + 1,
	SPEC2(O2)
};
static const uint8_t s1_of[256] = {
#define O1(name, code) [code] = S1_##name + 1,
	SPEC1(O1)
};

int leap_bpf_interp_prepare(struct leap_bpf_prog *p)
{
	const struct bpf_insn *insns = p->insns;
	struct leap_bpf_dinsn *d;
	uint8_t *target;
	uint32_t n = p->insn_cnt, nconst = 0;
	struct labels l;

	leap_bpf_prog_run_interp(NULL, &l, 0);
	d = calloc(n, sizeof(*d));
	/* Fusing two instructions is only safe when nothing jumps to the second. */
	target = leap_bpf_jump_targets(p);
	p->consts = malloc((size_t)n * sizeof(*p->consts));
	if (!d || !target || !p->consts) {
		free(d);
		free(target);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct bpf_insn *in = &insns[i];
		enum xop x = special(in);

		d[i] = (struct leap_bpf_dinsn){ .h = x == X_COUNT ? l.op[in->code] : l.x[x],
						.dst = in->dst_reg,
						.src = in->src_reg,
						.off = in->off,
						.imm = in->imm };
		if (x == X_COUNT && s2_of[in->code] && !(BPF_OP(in->code) == BPF_MOV && in->off))
			d[i].h = l.s2[s2_of[in->code] - 1][in->dst_reg][in->src_reg];
		else if (x == X_COUNT && s1_of[in->code])
			d[i].h = l.s1[s1_of[in->code] - 1][in->dst_reg];
		if (x == X_CALL_LOCAL) /* the callee's stack depth, zeroed on entry */
			d[i].off =
			    (int16_t)
				p->stack_depth[leap_bpf_subprog_of(p, i + 1 + (uint32_t)in->imm)];
		if (leap_bpf_is_lddw(in)) {
			uint64_t v =
			    (uint64_t)(uint32_t)in->imm | ((uint64_t)(uint32_t)in[1].imm << 32);
			const struct leap_bpf_array *a = inlinable(p, v);

			d[i + 1].k = v;
			/* The JIT's rule (jit_x86.c inline_lookup), so both agree on r0. */
			if (a && in->dst_reg == BPF_REG_1 && i + 2 < n && !target[i + 2] &&
			    insns[i + 2].code == (BPF_JMP | BPF_CALL) && !insns[i + 2].src_reg &&
			    insns[i + 2].imm == BPF_FUNC_map_lookup_elem) {
				d[i].h = l.x[X_LOOKUP];
				d[i].imm = (int32_t)a->stride;
				d[i + 2].k = (uint64_t)(uintptr_t)a->data;
				d[i + 2].imm = (int32_t)a->max_entries;
				i++;
			}
			i++;
			continue;
		}
		if (in->code == (BPF_ALU64 | BPF_MOV | BPF_X) && !in->off && i + 1 < n &&
		    !target[i + 1] && insns[i + 1].code == (BPF_ALU64 | BPF_ADD | BPF_K) &&
		    insns[i + 1].dst_reg == in->dst_reg) {
			d[i].h = l.x[X_MOVADD];
			d[i].imm = insns[i + 1].imm;
		}
		/* Unsigned 64-bit division by a constant: a multiply, as the JIT does. */
		if (in->code == (BPF_ALU64 | BPF_DIV | BPF_K) && !in->off && in->imm > 0) {
			uint64_t dv = (uint64_t)in->imm;

			if (dv == 1) {
				d[i].h = l.x[X_NOP];
			} else if (LEAP_IS_POW2(dv)) {
				d[i].h = l.op[BPF_ALU64 | BPF_RSH | BPF_K];
				d[i].imm = __builtin_ctzll(dv);
			} else {
				unsigned int sh = 64u - (unsigned int)__builtin_clzll(dv - 1);

				p->consts[nconst] = (uint64_t)((((unsigned __int128)1 << 64) *
								((1ull << sh) - dv)) /
							       dv) +
						    1;
				d[i].h = l.x[X_UDIV64_MAGIC];
				d[i].imm = (int32_t)nconst++;
				d[i].off = (int16_t)(sh - 1);
			}
		}
	}
	/* `r2 = rS; r2 += K` right before a fused lookup: one handler for all of it. */
	for (uint32_t i = 0; i + 4 < n; i++)
		if (d[i].h == l.x[X_MOVADD] && d[i].dst == BPF_REG_2 &&
		    d[i + 2].h == l.x[X_LOOKUP] && !target[i + 2])
			d[i].h = l.x[X_LOOKUP_KEY];
	free(target);
	p->dinsns = d;
	return 0;
}
