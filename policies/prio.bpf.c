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
 *   prio_rules[LEAP_PRIO_RULES]  struct leap_prio_rule (policies/leap_policies.h):
 *       {enabled, ctrl_id, qid, opcode, min_bytes, max_bytes, prio}.
 *       ctrl_id/qid/opcode: LEAP_ANY (0xffffffff) matches anything;
 *       bytes match when min_bytes <= ctx->bytes and (max_bytes == 0 or
 *       ctx->bytes <= max_bytes). The first enabled rule that matches wins.
 *       All rules start disabled.
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

struct leap_prio_rule prio_rules[LEAP_PRIO_RULES] SEC(".data") = {};
__u32 prio_default SEC(".data") = LEAP_PRIO_MEDIUM;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LEAP_PRIO_CNT);
	__type(key, __u32);
	__type(value, struct leap_prio_count);
} prio_counts SEC(".maps");

static __always_inline int field_matches(__u32 want, __u32 got)
{
	return want == LEAP_ANY || want == got;
}

SEC("leap/submit")
int prio_submit(struct leap_io_ctx *ctx)
{
	__u32 ctrl = ctx->ctrl_id, qid = ctx->qid, opc = ctx->opcode;
	__u64 bytes = ctx->bytes;
	__u32 cls = prio_default;
	struct leap_prio_count *c;

	for (__u32 i = 0; i < LEAP_PRIO_RULES; i++) {
		const struct leap_prio_rule *r = &prio_rules[i];

		if (!r->enabled || !field_matches(r->ctrl_id, ctrl) ||
		    !field_matches(r->qid, qid) || !field_matches(r->opcode, opc) ||
		    bytes < r->min_bytes || (r->max_bytes && bytes > r->max_bytes))
			continue;
		cls = r->prio;
		break;
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
