// SPDX-License-Identifier: BSD-3-Clause
/*
 * A map value holding a struct bpf_spin_lock, used under the lock. The
 * kernel accepts it: an array with BPF_F_MMAPABLE, and bpf_spin_lock in a
 * sleepable syscall program. But it will not mmap the map (ENOTSUPP), so
 * the loader refuses it with that reason (tests/unit/test_loader.c checks
 * both the kernel's behaviour and the loader's message).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct locked_val {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 n;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct locked_val);
} locked SEC(".maps");

SEC("leap/submit")
int inc(void *ctx)
{
	__u32 k = 0;
	struct locked_val *v = bpf_map_lookup_elem(&locked, &k);

	if (!v)
		return 0;
	bpf_spin_lock(&v->lock);
	v->n++;
	bpf_spin_unlock(&v->lock);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
