// SPDX-License-Identifier: BSD-3-Clause
/*
 * Loader test object: counts calls in an array map and in .bss, adds the
 * context's first word into counters[1], and returns a .rodata knob, so a
 * test can check maps, global data, context access and --set in one run.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

const volatile __u64 answer = 7;
const volatile __u32 small_knob = 3;
__u64 bss_calls;
__u64 data_base = 1000;

SEC("leap/submit")
int count(void *ctx)
{
	__u32 k0 = 0, k1 = 1;
	__u64 *v;

	v = bpf_map_lookup_elem(&counters, &k0);
	if (v)
		__sync_fetch_and_add(v, 1);
	v = bpf_map_lookup_elem(&counters, &k1);
	if (v)
		*v += *(__u32 *)ctx;
	bss_calls++;
	data_base++;
	return (int)(answer + small_knob);
}

char LICENSE[] SEC("license") = "GPL";
