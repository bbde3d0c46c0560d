// SPDX-License-Identifier: BSD-3-Clause
/*
 * prio — priority classification (submit hook).
 *
 * Assigns ctx->prio (enum leap_prio) to every submitted command and returns
 * LEAP_PASS; leapd arbitrates its per-class queues in front of each backend
 * (urgent strict, the rest weighted round robin). The policy only
 * classifies; it never holds or fails a command.
 *
 * Knobs (.data, live: `leapctl policy set prio var=value`, `var[idx]=value`):
 *   the rule table, LEAP_PRIO_RULES (16) rules as parallel arrays so that
 *   each field is one `var[idx]=value`; rule i is:
 *     rule_enabled[i]    0: skipped (all rules start disabled)
 *     rule_ctrl[i]       controller id, or LEAP_ANY (0xffffffff, the default)
 *     rule_qid[i]        submission queue id, or LEAP_ANY (default)
 *     rule_opcode[i]     LEAP_OPC_*, or LEAP_ANY (default)
 *     rule_min_bytes[i]  matches when ctx->bytes >= this (default 0) ...
 *     rule_max_bytes[i]  ... and ctx->bytes <= this (0, the default: no bound)
 *     rule_prio[i]       the class to assign (enum leap_prio)
 *   The first enabled rule that matches wins. Set a rule's fields before
 *   its rule_enabled (a command may be classified in between).
 *   prio_default   class when no rule matches (default LEAP_PRIO_MEDIUM).
 *   A class >= LEAP_PRIO_CNT in a rule or the default is read as LOW.
 *
 * Maps: prio_counts[LEAP_PRIO_CNT] struct leap_prio_count {ios, bytes}:
 *   chain runs classified into each class (atomic adds). A command leapd
 *   defers or splits is classified again on each chain run and counted
 *   again; per-command numbers are stats.bpf.c's.
 *
 * Chain order: first on leap/submit (prio → isolation → snapshot), so that
 * every later link and leapd's queues see the class, including for commands
 * a later link redirects.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "leapio/policy.h"
#include "leap_policies.h"

#define ANY_X16                                                                                    \
	{                                                                                          \
		LEAP_ANY, LEAP_ANY, LEAP_ANY, LEAP_ANY, LEAP_ANY, LEAP_ANY, LEAP_ANY, LEAP_ANY,    \
		    LEAP_ANY, LEAP_ANY, LEAP_ANY, LEAP_ANY, LEAP_ANY, LEAP_ANY, LEAP_ANY, LEAP_ANY \
	}
_Static_assert(LEAP_PRIO_RULES == 16, "ANY_X16 initialises 16 rules");

/* 8-aligned: read as LEAP_PRIO_RULES / 2 words by any_rule_enabled(). */
__u32 rule_enabled[LEAP_PRIO_RULES] SEC(".data") __attribute__((aligned(8))) = {};
__u32 rule_ctrl[LEAP_PRIO_RULES] SEC(".data") = ANY_X16;
__u32 rule_qid[LEAP_PRIO_RULES] SEC(".data") = ANY_X16;
__u32 rule_opcode[LEAP_PRIO_RULES] SEC(".data") = ANY_X16;
__u64 rule_min_bytes[LEAP_PRIO_RULES] SEC(".data") = {};
__u64 rule_max_bytes[LEAP_PRIO_RULES] SEC(".data") = {};
__u32 rule_prio[LEAP_PRIO_RULES] SEC(".data") = {};
__u32 prio_default SEC(".data") = LEAP_PRIO_MEDIUM;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LEAP_PRIO_CNT);
	__type(key, __u32);
	__type(value, struct leap_prio_count);
} prio_counts SEC(".maps");

/*
 * Whether some rule is enabled: eight 8-byte loads instead of sixteen
 * tests on the common path where none is (the default: every command gets
 * prio_default). A rule enabled meanwhile is seen by the next command.
 */
static __always_inline int any_rule_enabled(void)
{
	const __u64 *en = (const __u64 *)rule_enabled;
	__u64 any = 0;

	/* Hide where en points: clang would keep these words for the loop below, spilled. */
	asm volatile("" : "+r"(en));

#pragma unroll
	for (__u32 i = 0; i < LEAP_PRIO_RULES / 2; i++)
		any |= en[i];
	return any != 0;
}
_Static_assert(LEAP_PRIO_RULES % 2 == 0, "any_rule_enabled() reads rules in pairs");

static __always_inline int field_matches(__u32 want, __u32 got)
{
	return want == LEAP_ANY || want == got;
}

SEC("leap/submit")
int prio_submit(struct leap_io_ctx *ctx)
{
	__u64 bytes = ctx->bytes;
	__u32 cls = prio_default;
	struct leap_prio_count *c;

	if (any_rule_enabled()) {
		__u32 ctrl = ctx->ctrl_id, qid = ctx->qid, opc = ctx->opcode;

#pragma unroll
		for (__u32 i = 0; i < LEAP_PRIO_RULES; i++) {
			if (!rule_enabled[i] || !field_matches(rule_ctrl[i], ctrl) ||
			    !field_matches(rule_qid[i], qid) ||
			    !field_matches(rule_opcode[i], opc) || bytes < rule_min_bytes[i] ||
			    (rule_max_bytes[i] && bytes > rule_max_bytes[i]))
				continue;
			cls = rule_prio[i];
			break;
		}
	}
	if (cls >= LEAP_PRIO_CNT)
		cls = LEAP_PRIO_LOW;
	ctx->prio = (__u16)cls;
	c = bpf_map_lookup_elem(&prio_counts, &cls);
	if (c) {
		__sync_fetch_and_add(&c->ios, 1);
		__sync_fetch_and_add(&c->bytes, bytes);
	}
	return LEAP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
