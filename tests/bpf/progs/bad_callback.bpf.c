// SPDX-License-Identifier: BSD-3-Clause
/*
 * Rejection class: a callback function pointer (ld_imm64 src_reg 4,
 * BPF_PSEUDO_FUNC), here for bpf_loop(). The kernel accepts it for syscall
 * programs; the engine has no callback-taking helpers, so the loader refuses.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static long step(__u32 idx, void *data)
{
	return 0;
}

SEC("leap/submit")
int loop(void *ctx)
{
	return (int)bpf_loop(4, step, NULL, 0);
}

char LICENSE[] SEC("license") = "GPL";
