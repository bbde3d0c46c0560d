// SPDX-License-Identifier: BSD-3-Clause
/*
 * Rejection class for XDP policies (tests/e2e/xdp.bats): the kernel verifier
 * refuses a packet read without a bounds check against data_end.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_unchecked(struct xdp_md *ctx)
{
	unsigned char *data = (unsigned char *)(long)ctx->data;

	return data[12] == 0x08 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
