// SPDX-License-Identifier: BSD-3-Clause
/*
 * Rejection class: a context read past the hook's context size. The kernel
 * accepts any offset below 64 KiB for syscall programs; leapio knows the
 * real size and refuses.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("leap/submit")
int far(void *ctx)
{
	return (int)*(__u64 *)(ctx + 128);
}

char LICENSE[] SEC("license") = "GPL";
