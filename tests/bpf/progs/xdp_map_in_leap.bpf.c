// SPDX-License-Identifier: BSD-3-Clause
/*
 * Rejection class (tests/e2e/xdp.bats): a leap/ program (run by leapd's
 * engine) that uses a per-CPU map, a type only the kernel can serve. The
 * kernel accepts it; the loader refuses it, naming the map.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} per_cpu SEC(".maps");

SEC("leap/submit")
int uses_per_cpu(void *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&per_cpu, &k);

	if (v)
		*v += 1;
	return 0;
}

SEC("xdp")
int pass_all(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
