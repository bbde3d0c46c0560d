// SPDX-License-Identifier: BSD-3-Clause
/*
 * Rejection class: the verifier refuses after a long walk. The bounded loop
 * is explored iteration by iteration, so the level-1 log outgrows the
 * loader's 64 KiB buffer; the kernel keeps the log's tail and answers
 * -ENOSPC instead of its own error, which the loader must still report as
 * a verifier rejection with the reason at the end.
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
int long_walk(void *ctx)
{
	__u32 k = *(volatile __u32 *)ctx;
	__u64 sum = 0, *v;

	for (int i = 0; i < 3000; i++)
		sum += *(volatile __u32 *)ctx;
	v = bpf_map_lookup_elem(&vals, &k);
	return (int)(*v + sum);
}

char LICENSE[] SEC("license") = "GPL";
