// SPDX-License-Identifier: BSD-3-Clause
/*
 * Rejection class for live replace: a map named like pol_verdict's `seen`
 * but with another shape (max_entries 2). Replacing pol_verdict with this
 * must be refused, naming the field, and leave the running chain alone.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "leapio/policy.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64[8]);
} seen SEC(".maps");

SEC("leap/submit")
int shape_submit(struct leap_io_ctx *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&seen, &k);

	if (v)
		v[0]++;
	return LEAP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
