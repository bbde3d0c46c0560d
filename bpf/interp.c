// SPDX-License-Identifier: BSD-3-Clause
/*
 * The reference interpreter: the BPF ISA as RFC 9669 states it, one
 * instruction at a time. It is the definition the JIT is tested against, so
 * it favours being obviously right over being clever: one switch per
 * instruction class, the arithmetic in small pure functions.
 *
 * Validation (validate.c) has already rejected every malformed instruction,
 * so there are no checks here. BPF stacks (512 bytes per frame) live on the
 * C stack of the calling thread: nothing is allocated per run.
 */
#include <string.h>

#include "bpf_internal.h"

struct frame {
	uint32_t ret_pc;
	uint64_t saved[5]; /* r6-r10 of the caller */
};

static inline uint64_t bswap16(uint64_t v)
{
	return __builtin_bswap16((uint16_t)v);
}

static inline uint64_t bswap32(uint64_t v)
{
	return __builtin_bswap32((uint32_t)v);
}

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

static uint64_t alu64(uint8_t op, int16_t off, uint64_t d, uint64_t s)
{
	switch (op) {
	case BPF_ADD:
		return d + s;
	case BPF_SUB:
		return d - s;
	case BPF_MUL:
		return d * s;
	case BPF_DIV:
		if (off)
			return sdiv64((int64_t)d, (int64_t)s);
		return s ? d / s : 0;
	case BPF_MOD:
		if (off)
			return smod64((int64_t)d, (int64_t)s);
		return s ? d % s : d;
	case BPF_OR:
		return d | s;
	case BPF_AND:
		return d & s;
	case BPF_XOR:
		return d ^ s;
	case BPF_LSH:
		return d << (s & 63);
	case BPF_RSH:
		return d >> (s & 63);
	case BPF_ARSH:
		return (uint64_t)((int64_t)d >> (s & 63));
	case BPF_NEG:
		return (uint64_t)0 - d;
	case BPF_MOV:
		switch (off) {
		case 8:
			return (uint64_t)(int64_t)(int8_t)s;
		case 16:
			return (uint64_t)(int64_t)(int16_t)s;
		case 32:
			return (uint64_t)(int64_t)(int32_t)s;
		default:
			return s;
		}
	default:
		return d;
	}
}

static uint32_t alu32(uint8_t op, int16_t off, uint32_t d, uint32_t s)
{
	switch (op) {
	case BPF_ADD:
		return d + s;
	case BPF_SUB:
		return d - s;
	case BPF_MUL:
		return d * s;
	case BPF_DIV:
		if (off)
			return sdiv32((int32_t)d, (int32_t)s);
		return s ? d / s : 0;
	case BPF_MOD:
		if (off)
			return smod32((int32_t)d, (int32_t)s);
		return s ? d % s : d;
	case BPF_OR:
		return d | s;
	case BPF_AND:
		return d & s;
	case BPF_XOR:
		return d ^ s;
	case BPF_LSH:
		return d << (s & 31);
	case BPF_RSH:
		return d >> (s & 31);
	case BPF_ARSH:
		return (uint32_t)((int32_t)d >> (s & 31));
	case BPF_NEG:
		return (uint32_t)0 - d;
	case BPF_MOV:
		switch (off) {
		case 8:
			return (uint32_t)(int32_t)(int8_t)s;
		case 16:
			return (uint32_t)(int32_t)(int16_t)s;
		default:
			return s;
		}
	default:
		return d;
	}
}

static bool cond64(uint8_t op, uint64_t a, uint64_t b)
{
	switch (op) {
	case BPF_JEQ:
		return a == b;
	case BPF_JNE:
		return a != b;
	case BPF_JGT:
		return a > b;
	case BPF_JGE:
		return a >= b;
	case BPF_JLT:
		return a < b;
	case BPF_JLE:
		return a <= b;
	case BPF_JSET:
		return a & b;
	case BPF_JSGT:
		return (int64_t)a > (int64_t)b;
	case BPF_JSGE:
		return (int64_t)a >= (int64_t)b;
	case BPF_JSLT:
		return (int64_t)a < (int64_t)b;
	case BPF_JSLE:
		return (int64_t)a <= (int64_t)b;
	default:
		return false;
	}
}

static bool cond32(uint8_t op, uint32_t a, uint32_t b)
{
	switch (op) {
	case BPF_JSGT:
		return (int32_t)a > (int32_t)b;
	case BPF_JSGE:
		return (int32_t)a >= (int32_t)b;
	case BPF_JSLT:
		return (int32_t)a < (int32_t)b;
	case BPF_JSLE:
		return (int32_t)a <= (int32_t)b;
	default:
		return cond64(op, a, b);
	}
}

static uint64_t load(uint8_t mode, uint8_t size, uintptr_t addr)
{
	switch (size) {
	case BPF_B:
		return mode == BPF_MEMSX ? (uint64_t)(int64_t) * (int8_t *)addr : *(uint8_t *)addr;
	case BPF_H:
		return mode == BPF_MEMSX ? (uint64_t)(int64_t) * (int16_t *)addr
					 : *(uint16_t *)addr;
	case BPF_W:
		return mode == BPF_MEMSX ? (uint64_t)(int64_t) * (int32_t *)addr
					 : *(uint32_t *)addr;
	default:
		return *(uint64_t *)addr;
	}
}

static void store(uint8_t size, uintptr_t addr, uint64_t v)
{
	switch (size) {
	case BPF_B:
		*(uint8_t *)addr = (uint8_t)v;
		break;
	case BPF_H:
		*(uint16_t *)addr = (uint16_t)v;
		break;
	case BPF_W:
		*(uint32_t *)addr = (uint32_t)v;
		break;
	default:
		*(uint64_t *)addr = v;
		break;
	}
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

uint64_t leap_bpf_prog_run_interp(const struct leap_bpf_prog *prog, void *ctx, uint64_t ctx_len)
{
	uint8_t stack[LEAP_BPF_MAX_CALL_DEPTH][LEAP_BPF_STACK_SIZE] __attribute__((aligned(16)));
	struct frame frames[LEAP_BPF_MAX_CALL_DEPTH];
	const struct bpf_insn *insns = prog->insns;
	uint64_t r[11];
	uint32_t pc = 0, depth = 0;

	r[0] = 0;
	r[1] = (uint64_t)(uintptr_t)ctx;
	r[2] = ctx_len;
	r[3] = r[4] = r[5] = 0;
	r[10] = (uint64_t)(uintptr_t)(stack[0] + LEAP_BPF_STACK_SIZE);

	for (;;) {
		const struct bpf_insn *in = &insns[pc++];
		uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);

		switch (cls) {
		case BPF_ALU64: {
			uint64_t s = BPF_SRC(in->code) == BPF_X ? r[in->src_reg]
								: (uint64_t)(int64_t)in->imm;

			if (op == BPF_END) /* v4 bswap */
				r[in->dst_reg] = in->imm == 16 ? bswap16(r[in->dst_reg])
						 : in->imm == 32
						     ? bswap32(r[in->dst_reg])
						     : __builtin_bswap64(r[in->dst_reg]);
			else
				r[in->dst_reg] = alu64(op, in->off, r[in->dst_reg], s);
			break;
		}
		case BPF_ALU: {
			uint32_t s = BPF_SRC(in->code) == BPF_X ? (uint32_t)r[in->src_reg]
								: (uint32_t)in->imm;
			uint64_t d = r[in->dst_reg];

			if (op == BPF_END) {
				if (BPF_SRC(in->code) == BPF_TO_BE)
					d = in->imm == 16   ? bswap16(d)
					    : in->imm == 32 ? bswap32(d)
							    : __builtin_bswap64(d);
				else
					d = in->imm == 16   ? (uint16_t)d
					    : in->imm == 32 ? (uint32_t)d
							    : d;
				r[in->dst_reg] = d;
			} else {
				r[in->dst_reg] = alu32(op, in->off, (uint32_t)d, s);
			}
			break;
		}
		case BPF_JMP:
		case BPF_JMP32:
			if (op == BPF_JA) {
				pc += cls == BPF_JMP ? in->off : in->imm;
				break;
			}
			if (op == BPF_CALL) {
				if (in->src_reg == BPF_PSEUDO_CALL) {
					struct frame *f = &frames[depth++];

					f->ret_pc = pc;
					memcpy(f->saved, &r[6], sizeof(f->saved));
					r[10] = (uint64_t)(uintptr_t)(stack[depth] +
								      LEAP_BPF_STACK_SIZE);
					pc += in->imm;
				} else {
					r[0] = prog->helpers->fn[in->imm](r[1], r[2], r[3], r[4],
									  r[5]);
				}
				break;
			}
			if (op == BPF_EXIT) {
				struct frame *f;

				if (depth == 0)
					return r[0];
				f = &frames[--depth];
				memcpy(&r[6], f->saved, sizeof(f->saved));
				pc = f->ret_pc;
				break;
			}
			{
				uint64_t s = BPF_SRC(in->code) == BPF_X
						 ? r[in->src_reg]
						 : (uint64_t)(int64_t)in->imm;
				bool t = cls == BPF_JMP
					     ? cond64(op, r[in->dst_reg], s)
					     : cond32(op, (uint32_t)r[in->dst_reg], (uint32_t)s);

				if (t)
					pc += in->off;
			}
			break;
		case BPF_LD: /* validated: only ld_imm64 */
			r[in->dst_reg] =
			    (uint64_t)(uint32_t)in->imm | ((uint64_t)(uint32_t)in[1].imm << 32);
			pc++;
			break;
		case BPF_LDX:
			r[in->dst_reg] = load(BPF_MODE(in->code), BPF_SIZE(in->code),
					      (uintptr_t)(r[in->src_reg] + (int64_t)in->off));
			break;
		case BPF_ST:
			store(BPF_SIZE(in->code), (uintptr_t)(r[in->dst_reg] + (int64_t)in->off),
			      (uint64_t)(int64_t)in->imm);
			break;
		case BPF_STX:
			if (BPF_MODE(in->code) == BPF_ATOMIC)
				atomic_op(in, r);
			else
				store(BPF_SIZE(in->code),
				      (uintptr_t)(r[in->dst_reg] + (int64_t)in->off),
				      r[in->src_reg]);
			break;
		}
	}
}
