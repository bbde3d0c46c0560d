// SPDX-License-Identifier: BSD-3-Clause
/* Loader test object: same map name as counter.bpf.c, incompatible value size. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} counters SEC(".maps");

SEC("leap/submit")
int count(void *ctx)
{
	__u32 k = 0, *v = bpf_map_lookup_elem(&counters, &k);

	return v ? *v : 0;
}

char LICENSE[] SEC("license") = "GPL";
