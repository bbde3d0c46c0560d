// SPDX-License-Identifier: BSD-3-Clause
/*
 * Rejection class: the kernel verifier refuses (map value used without a NULL
 * check). The key comes from the context: with a constant in-range key, 6.x
 * verifiers know an array lookup cannot fail and accept the program.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} vals SEC(".maps");

SEC("leap/submit")
int unchecked(void *ctx)
{
	__u32 k = *(__u32 *)ctx;
	__u64 *v = bpf_map_lookup_elem(&vals, &k);

	return (int)*v;
}

char LICENSE[] SEC("license") = "GPL";
