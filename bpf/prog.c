// SPDX-License-Identifier: BSD-3-Clause
/*
 * Program objects: copy, validate (validate.c), check context bounds
 * (ctxcheck.c), and release. After leap_bpf_prog_create() returns, a program
 * is immutable and may run on any number of threads.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bpf_internal.h"

int leap_bpf_reject(char *errbuf, size_t errbuf_sz, uint32_t insn, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!errbuf || !errbuf_sz)
		return -EINVAL;
	n = snprintf(errbuf, errbuf_sz, "insn %u: ", insn);
	if (n < 0 || (size_t)n >= errbuf_sz)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(errbuf + n, errbuf_sz - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int leap_bpf_prog_create(const struct bpf_insn *insns, uint32_t insn_cnt,
			 const struct leap_bpf_prog_opts *opts, struct leap_bpf_prog **out)
{
	struct leap_bpf_prog *p;
	char *eb = opts ? opts->errbuf : NULL;
	size_t es = opts ? opts->errbuf_sz : 0;
	int err;

	*out = NULL;
	if (!opts || opts->sz < sizeof(*opts) || !insns)
		return -EINVAL;
	if (eb && es)
		eb[0] = 0;
	if (insn_cnt == 0)
		return leap_bpf_reject(eb, es, 0, "empty program");
	if (insn_cnt > LEAP_BPF_MAX_INSNS) {
		leap_bpf_reject(eb, es, LEAP_BPF_MAX_INSNS, "more than %u instructions",
				LEAP_BPF_MAX_INSNS);
		return -E2BIG;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->insns = malloc((size_t)insn_cnt * sizeof(*insns));
	if (!p->insns) {
		free(p);
		return -ENOMEM;
	}
	memcpy(p->insns, insns, (size_t)insn_cnt * sizeof(*insns));
	p->insn_cnt = insn_cnt;
	p->helpers = opts->helpers;
	p->ctx_size = opts->ctx_size;
	p->single_writer = opts->single_writer;
	if (opts->array_cnt) {
		p->arrays = malloc(opts->array_cnt * sizeof(*p->arrays));
		if (!p->arrays) {
			leap_bpf_prog_free(p);
			return -ENOMEM;
		}
		memcpy(p->arrays, opts->arrays, opts->array_cnt * sizeof(*p->arrays));
		p->array_cnt = opts->array_cnt;
	}

	err = leap_bpf_validate(p, eb, es);
	if (!err)
		err = leap_bpf_ctxcheck(p, eb, es);
	if (!err)
		err = leap_bpf_interp_prepare(p);
	if (err) {
		leap_bpf_prog_free(p);
		return err;
	}
	*out = p;
	return 0;
}

uint32_t leap_bpf_prog_insn_cnt(const struct leap_bpf_prog *prog)
{
	return prog->insn_cnt;
}

uint64_t leap_bpf_prog_ctx_reads(const struct leap_bpf_prog *prog)
{
	return prog->ctx_rd;
}

uint64_t leap_bpf_prog_ctx_writes(const struct leap_bpf_prog *prog)
{
	return prog->ctx_wr;
}

void leap_bpf_prog_free(struct leap_bpf_prog *prog)
{
	if (!prog)
		return;
	if (prog->jit_code)
		munmap(prog->jit_code, prog->jit_map_size);
	free(prog->subprog_start);
	free(prog->stack_depth);
	free(prog->dinsns);
	free(prog->consts);
	free(prog->arrays);
	free(prog->insns);
	free(prog);
}
