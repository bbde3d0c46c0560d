// SPDX-License-Identifier: BSD-3-Clause
/*
 * Rejection class: a typed __ksym (a kernel variable), which libbpf turns
 * into ld_imm64 src_reg 3 (BPF_PSEUDO_BTF_ID). The kernel accepts it; a
 * kernel address means nothing in leapd's process, so the loader refuses.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern const int bpf_prog_active __ksym;

SEC("leap/submit")
int ksym(void *ctx)
{
	const int *active = bpf_this_cpu_ptr(&bpf_prog_active);

	return *active;
}

char LICENSE[] SEC("license") = "GPL";
