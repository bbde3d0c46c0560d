// SPDX-License-Identifier: BSD-3-Clause
/* Loader test object: a hash map, served through the syscall (slow) path. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

SEC("leap/submit")
int remember(void *ctx)
{
	__u32 key = *(__u32 *)ctx;
	__u64 one = 1, *v = bpf_map_lookup_elem(&seen, &key);

	if (v) {
		__u64 n = *v + 1;

		bpf_map_update_elem(&seen, &key, &n, BPF_EXIST);
		return (int)n;
	}
	bpf_map_update_elem(&seen, &key, &one, BPF_NOEXIST);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
