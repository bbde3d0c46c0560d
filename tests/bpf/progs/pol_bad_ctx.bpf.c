// SPDX-License-Identifier: BSD-3-Clause
/*
 * Rejection class for leapd: a context read past struct leap_io_ctx. The
 * kernel verifier accepts it (any offset below 64 KiB for syscall
 * programs); leapd's load-time bound check must refuse it, naming the
 * instruction.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "leapio/policy.h"

SEC("leap/submit")
int past_end(struct leap_io_ctx *ctx)
{
	return (int)*(__u32 *)((char *)ctx + 4096);
}

char LICENSE[] SEC("license") = "GPL";
