// SPDX-License-Identifier: BSD-3-Clause
/* Rejection class: a program in a section leapio has no hook for. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("syscall")
int elsewhere(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
