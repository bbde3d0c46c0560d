// SPDX-License-Identifier: BSD-3-Clause
/* Rejection class: a helper the kernel allows but leapio does not implement. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("leap/submit")
int pid(void *ctx)
{
	return (int)bpf_get_current_pid_tgid();
}

char LICENSE[] SEC("license") = "GPL";
