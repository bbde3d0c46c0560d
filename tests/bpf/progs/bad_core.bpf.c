// SPDX-License-Identifier: BSD-3-Clause
/*
 * Rejection class: a failed CO-RE relocation. The field does not exist in
 * the kernel's task_struct, so libbpf resolves the "exists" check to 0 and
 * poisons the guarded load with a call to helper 0xbad2310. The kernel
 * accepts the program (that code is dead); the loader still refuses it,
 * because the object was built for a type layout this kernel does not have.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct___leap {
	int leap_no_such_field;
} __attribute__((preserve_access_index));

SEC("leap/submit")
int core(void *ctx)
{
	struct task_struct___leap *t = ctx;

	if (bpf_core_field_exists(t->leap_no_such_field))
		return t->leap_no_such_field;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
