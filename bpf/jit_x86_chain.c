// SPDX-License-Identifier: BSD-3-Clause
/*
 * Chain JIT: one native function that runs several JITed programs in
 * order on one context, as a loop calling each program's own code would.
 * What it saves is what surrounds the programs: per link an indirect call,
 * a frame (push rbp ... leave; ret) and the loop's loads of the next
 * entry; 2-3 ns of the ~10 ns a three-link chain of empty programs cost a
 * reactor (chain_bench, 2026-12-06).
 *
 * Layout:
 *   frame: the union of the links' callee-saved registers, the 512-byte
 *          BPF stack when a link uses it, and two slots below it for the
 *          context pointer and length (r1/r2 of every link);
 *   link k: zero the stack its main function may read, then its body,
 *          each BPF_EXIT jumping to the link's end: `test rax, rax; jnz
 *          out_k`, the link's pass counter += 1, r1/r2 reloaded;
 *   all passed: edx = n; the shared exit (pops, leave, ret);
 *   out_k: edx = k; jmp exit;
 *   then every link's subprograms, as whole functions of their own.
 * Returns r0 in rax and the index of the link that ended the run in rdx:
 * the System V return of a two-word struct.
 *
 * Offsets are absolute in the one buffer, so each link's jump targets and
 * calls resolve as in its own JIT; passes repeat until the length stops
 * changing, from pessimistic starting offsets, as leap_bpf_prog_jit() does.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "leapio/common.h"
#include "jit_x86_internal.h"

struct leap_bpf_chain {
	void *code;
	size_t size, map_size;
};

#if defined(__x86_64__)

#define SLOT_CTX (-(int32_t)LEAP_BPF_STACK_SIZE - 8)
#define SLOT_LEN (-(int32_t)LEAP_BPF_STACK_SIZE - 16)

struct chain_jit {
	struct jit_ctx *l; /* one per link */
	uint32_t n;
	uint64_t *const *pass_count;
	uint8_t saved;
	uint32_t exit; /* code offset of the shared exit */
	uint32_t *out; /* per link: code offset of out_k */
	struct jit_buf b;
};

static int chain_pass(struct chain_jit *cj)
{
	struct jit_buf *b = &cj->b;
	int err;

	b->len = 0;
	jit_emit_frame(b, cj->saved, true, 16);
	emit_store_reg(b, 8, RBP, SLOT_CTX, RDI);
	emit_store_reg(b, 8, RBP, SLOT_LEN, RSI);
	for (uint32_t k = 0; k < cj->n; k++) {
		struct jit_ctx *c = &cj->l[k];
		struct jit_func *main_fn = &c->funcs[0];

		if (k) { /* the previous link may have changed any register */
			emit_load(b, 8, false, RDI, RBP, SLOT_CTX);
			emit_load(b, 8, false, RSI, RBP, SLOT_LEN);
		}
		jit_emit_zero_stack(b, main_fn->depth);
		main_fn->entry = b->len;
		c->b = *b;
		err = jit_emit_body(c, 0);
		*b = c->b;
		if (err)
			return err;
		/* The link's end: its exits land here with r0 in rax. */
		main_fn->epilogue = b->len;
		emit_rr(b, 0x85, true, RAX, RAX); /* test rax, rax */
		emit_jcc_to(b, 0x5, cj->out[k]);  /* jnz out_k */
		emit_mov_imm64(b, R11, (uint64_t)(uintptr_t)cj->pass_count[k]);
		emit_rex(b, true, 0, R11, false); /* add qword [r11], 1 */
		emit1(b, 0x83);
		emit_modrm(b, 0, 0, R11);
		emit1(b, 1);
	}
	emit_mov_imm32(b, false, RDX, (int32_t)cj->n);
	cj->exit = b->len;
	jit_emit_frame_exit(b, cj->saved);
	for (uint32_t k = 0; k < cj->n; k++) {
		cj->out[k] = b->len;
		emit_mov_imm32(b, false, RDX, (int32_t)k);
		emit_jmp_to(b, cj->exit);
	}
	for (uint32_t k = 0; k < cj->n; k++) {
		struct jit_ctx *c = &cj->l[k];

		c->b = *b;
		for (uint32_t f = 1; f < c->func_cnt; f++) {
			err = jit_emit_func(c, f);
			if (err)
				return err;
		}
		*b = c->b;
		c->off[c->prog->insn_cnt] = b->len;
	}
	return 0;
}

static int chain_write_pass(void *arg)
{
	return chain_pass(arg);
}

static int chain_converge(struct chain_jit *cj, uint32_t *len)
{
	uint32_t prev = UINT32_MAX;

	for (int pass = 0; pass < JIT_MAX_PASSES; pass++) {
		int err = chain_pass(cj);

		if (err)
			return err;
		if (cj->b.len == prev) {
			*len = prev;
			return 0;
		}
		prev = cj->b.len;
	}
	return -EFAULT;
}

int leap_bpf_chain_jit(const struct leap_bpf_prog *const *progs, uint64_t *const *pass_count,
		       uint32_t n, struct leap_bpf_chain **out)
{
	struct chain_jit cj = { .n = n, .pass_count = pass_count };
	struct leap_bpf_chain *ch = NULL;
	uint32_t len = 0, pessimistic = 0, prepared = 0;
	size_t map_len = 0;
	int err;

	*out = NULL;
	if (!n || n > LEAP_BPF_CHAIN_MAX)
		return -EINVAL;
	for (uint32_t k = 0; k < n; k++)
		if (!progs[k]->jit_code || !pass_count[k])
			return -EINVAL; /* only programs their own JIT took */
	cj.l = calloc(n, sizeof(*cj.l));
	cj.out = calloc(n, sizeof(*cj.out));
	ch = calloc(1, sizeof(*ch));
	if (!cj.l || !cj.out || !ch) {
		err = -ENOMEM;
		goto out;
	}
	for (; prepared < n; prepared++) {
		err = jit_prepare(&cj.l[prepared], progs[prepared]);
		if (err)
			goto out;
		cj.saved |= cj.l[prepared].funcs[0].saved;
		pessimistic += (progs[prepared]->insn_cnt + 3) * JIT_INSN_MAX;
	}
	/*
	 * Every label starts beyond the end of the longest code this can be, so
	 * the first pass emits only long jumps and later ones only shrink: then
	 * a pass that keeps the length kept every offset. (jit_prepare()'s
	 * offsets count from 0, right for a program at the start of a buffer,
	 * not for one in the middle.)
	 */
	pessimistic += JIT_INSN_MAX * (n + 2);
	for (uint32_t k = 0; k < n; k++) {
		struct jit_ctx *c = &cj.l[k];

		for (uint32_t i = 0; i <= c->prog->insn_cnt; i++)
			c->off[i] += pessimistic;
		for (uint32_t f = 0; f < c->func_cnt; f++) {
			c->funcs[f].entry += pessimistic;
			c->funcs[f].epilogue += pessimistic;
		}
		cj.out[k] = pessimistic + JIT_INSN_MAX * (k + 1);
	}
	err = chain_converge(&cj, &len);
	if (err)
		goto out;
	err = jit_write_code(&cj.b, len, chain_write_pass, &cj, &map_len);
	if (err)
		goto out;
	ch->code = cj.b.p;
	ch->size = len;
	ch->map_size = map_len;
	*out = ch;
	ch = NULL;
out:
	for (uint32_t k = 0; k < prepared; k++)
		jit_release(&cj.l[k]);
	free(cj.l);
	free(cj.out);
	free(ch);
	return err;
}

#else /* !__x86_64__ */

int leap_bpf_chain_jit(const struct leap_bpf_prog *const *progs, uint64_t *const *pass_count,
		       uint32_t n, struct leap_bpf_chain **out)
{
	(void)progs;
	(void)pass_count;
	(void)n;
	*out = NULL;
	return -ENOTSUP;
}

#endif

leap_bpf_chain_fn leap_bpf_chain_fn_of(const struct leap_bpf_chain *ch)
{
	return (leap_bpf_chain_fn)ch->code;
}

size_t leap_bpf_chain_size(const struct leap_bpf_chain *ch)
{
	return ch ? ch->size : 0;
}

void leap_bpf_chain_free(struct leap_bpf_chain *ch)
{
	if (!ch)
		return;
	munmap(ch->code, ch->map_size);
	free(ch);
}
