/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the program JIT (jit_x86.c) shares with the chain JIT
 * (jit_x86_chain.c): the per-program translation state, and the pieces
 * that emit a frame, a function body and whole functions into a buffer
 * both write at absolute offsets.
 */
#ifndef LEAPIO_BPF_JIT_X86_INTERNAL_H
#define LEAPIO_BPF_JIT_X86_INTERNAL_H

#include <stddef.h>

#include "bpf_internal.h"
#include "jit_x86_emit.h"

#define JIT_MAX_PASSES 32
#define JIT_INSN_MAX   96 /* bytes of code per BPF instruction, upper bound */

/* BPF r6-r9, in jit_func.saved's bit order. */
extern const uint8_t jit_callee_saved[4];

struct jit_func {
	uint32_t start, end; /* insn range [start, end) */
	uint32_t entry;	     /* code offset of the prologue */
	uint32_t epilogue;   /* code offset of the epilogue */
	uint8_t saved;	     /* bitmask over jit_callee_saved[] */
	bool stack;	     /* uses r10 */
	uint16_t depth;	     /* bytes below r10 zeroed at entry */
};

/* An inlined map_lookup_elem (at its call instruction): the map and where the key is. */
struct jit_inline {
	const struct leap_bpf_array *a;
	uint8_t key_reg; /* BPF register holding the key's address ... */
	int16_t key_off; /* ... plus this */
	/*
	 * The NULL test that follows, folded in: `if r0 == 0 goto null_to`,
	 * after `copy = r0` when copy is not 0. null_to UINT32_MAX: none.
	 */
	uint32_t null_to;
	uint8_t copy;
	/* The key's value still sits in this BPF register's x86 register (-1: load it). */
	int8_t key_val;
};

struct jit_ctx {
	const struct leap_bpf_prog *prog;
	struct jit_buf b;
	uint32_t *off;		/* code offset of each instruction */
	uint8_t *is_target;	/* instruction is a jump target */
	struct jit_inline *inl; /* per instruction; .a NULL: no inlined lookup there */
	uint8_t *dead;		/* instruction whose only effect an inlined lookup makes moot */
	struct jit_func *funcs;
	uint32_t func_cnt;
	uint32_t cur_func;
};

/*
 * Allocate c's tables for prog, plan inlined lookups, find the functions,
 * and set pessimistic offsets (every jump long). 0 or -ENOMEM.
 */
int jit_prepare(struct jit_ctx *c, const struct leap_bpf_prog *prog);
void jit_release(struct jit_ctx *c);
/* Function f's instructions at c->b (no prologue or epilogue); BPF_EXIT jumps to its epilogue. */
int jit_emit_body(struct jit_ctx *c, uint32_t f);
/* Function f whole: prologue, body, epilogue; sets its entry and epilogue offsets. */
int jit_emit_func(struct jit_ctx *c, uint32_t f);
/* The frame every function gets; `extra` bytes more below the BPF stack. */
void jit_emit_frame(struct jit_buf *b, uint8_t saved, bool stack, uint32_t extra);
void jit_emit_frame_exit(struct jit_buf *b, uint8_t saved);
void jit_emit_zero_stack(struct jit_buf *b, uint16_t depth);
/*
 * The final pass, for real: map len bytes read+write at b, run pass(arg)
 * (it must write exactly len: the layout the sizing passes converged on),
 * then make them read+execute; never writable and executable at once.
 * On error nothing stays mapped.
 */
int jit_write_code(struct jit_buf *b, uint32_t len, int (*pass)(void *arg), void *arg,
		   size_t *map_len);

#endif /* LEAPIO_BPF_JIT_X86_INTERNAL_H */
