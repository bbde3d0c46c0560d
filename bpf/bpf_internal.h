/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Engine internals shared by the validator, the interpreter and the JIT.
 * Opcode constants the installed linux/bpf.h (6.1 UAPI) lacks — the v4 ISA
 * additions — are defined here with their RFC 9669 values.
 */
#ifndef LEAPIO_BPF_INTERNAL_H
#define LEAPIO_BPF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "leapio/bpf.h"

#ifndef BPF_MEMSX
#define BPF_MEMSX 0x80 /* sign-extending load (class LDX), v4 */
#endif
#ifndef BPF_JCOND
#define BPF_JCOND 0xe0
#endif
/* v4: ALU/ALU64 DIV and MOD with off == 1 are signed (sdiv/smod). */
#define LEAP_BPF_OFF_SIGNED 1
/* v4: BPF_ALU64 | BPF_END | BPF_TO_LE is an unconditional byte swap (bswap16/32/64). */
/* v4: BPF_ALU{,64} | BPF_MOV | BPF_X with off 8/16/32 is movsx. */
/* v4: BPF_JMP32 | BPF_JA uses imm (not off) as the jump offset (gotol). */

/*
 * The interpreter's pre-decoded instruction (interp.c): one per BPF slot, so
 * jump offsets keep their meaning. `h` is the address of the handler label;
 * the second slot of an ld_imm64 holds the 64-bit value in `k`, and fused
 * forms keep their extra operands in the slots they swallow.
 */
struct leap_bpf_dinsn {
	union {
		const void *h;
		uint64_t k;
	};
	uint8_t dst, src;
	int16_t off;
	int32_t imm;
};

struct leap_bpf_prog {
	struct bpf_insn *insns;
	uint32_t insn_cnt;
	const struct leap_bpf_helpers *helpers; /* NULL: no helpers */
	uint32_t ctx_size;
	const struct leap_bpf_array **arrays; /* inlinable lookups (copied list) */
	uint32_t array_cnt;
	bool single_writer; /* see leap_bpf_prog_opts */

	/* Filled by validation: subprogram entry points, sorted, [0] == 0. */
	uint32_t *subprog_start;
	uint32_t subprog_cnt;
	/*
	 * Filled by ctxcheck.c: per subprogram, the bytes below r10 it may
	 * touch (a multiple of 8, at most LEAP_BPF_STACK_SIZE). Both engines
	 * zero exactly these at function entry, so no run sees another's data.
	 */
	uint16_t *stack_depth;
	/* Filled by ctxcheck.c: context words (bit i: bytes [8i, 8i + 8)) reachable. */
	uint64_t ctx_rd, ctx_wr;

	/* Interpreter form (interp.c), built at create time. */
	struct leap_bpf_dinsn *dinsns;
	uint64_t *consts; /* division magic numbers the decoded form refers to */

	/* JIT output: read+execute mapping, or NULL. */
	void *jit_code;
	size_t jit_size;     /* bytes of code */
	size_t jit_map_size; /* bytes mapped */
};

/* Write "insn N: reason" into errbuf (when non-NULL) and return -EINVAL. */
int leap_bpf_reject(char *errbuf, size_t errbuf_sz, uint32_t insn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Structural validation; fills subprog_start/subprog_cnt (validate.c). */
int leap_bpf_validate(struct leap_bpf_prog *prog, char *errbuf, size_t errbuf_sz);
/*
 * Pointer analysis (ctxcheck.c): context bounds against prog->ctx_size when
 * it is non-zero, and prog->stack_depth always.
 */
int leap_bpf_ctxcheck(struct leap_bpf_prog *prog, char *errbuf, size_t errbuf_sz);
/* Build prog->dinsns and prog->consts (interp.c). Returns 0 or -ENOMEM. */
int leap_bpf_interp_prepare(struct leap_bpf_prog *prog);
/* Index of the subprogram containing insn (binary search over subprog_start). */
/*
 * The instructions some jump lands on: a calloc'ed array of insn_cnt + 1
 * bytes, 1 where a jump (not a call or exit) targets that index. Targets
 * were range-checked by leap_bpf_validate(). The caller frees it; NULL on
 * ENOMEM.
 */
uint8_t *leap_bpf_jump_targets(const struct leap_bpf_prog *prog);

uint32_t leap_bpf_subprog_of(const struct leap_bpf_prog *prog, uint32_t insn);

/* True when insns[i] is the first half of a 16-byte ld_imm64. */
static inline int leap_bpf_is_lddw(const struct bpf_insn *insn)
{
	return insn->code == (BPF_LD | BPF_DW | BPF_IMM);
}

#endif /* LEAPIO_BPF_INTERNAL_H */
