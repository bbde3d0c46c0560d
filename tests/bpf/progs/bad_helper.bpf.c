// SPDX-License-Identifier: BSD-3-Clause
/*
 * Rejection class: a helper the kernel allows but leapio does not implement.
 * It also has an array map and .bss, so the rejection comes after the maps
 * were created and mmapped: the test checks that nothing leaks.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} last_pid SEC(".maps");

__u64 calls;

SEC("leap/submit")
int pid(void *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&last_pid, &k);

	calls++;
	if (v)
		*v = bpf_get_current_pid_tgid();
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
