// SPDX-License-Identifier: BSD-3-Clause
/*
 * The cheapest XDP filter there is: drop every frame. bench/xdp.sh attaches
 * it (through leapd, like any XDP policy) as the floor against which the
 * per-packet cost of fabric_acl and of nftables is read.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_drop_all(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
