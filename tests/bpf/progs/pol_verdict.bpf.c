// SPDX-License-Identifier: BSD-3-Clause
/*
 * A test policy whose every decision is a knob, so one object exercises
 * each verdict path of leapd's hook runtime end to end (tests/e2e/
 * policy.bats): load it under several names, set knobs with `leapctl policy
 * set`, attach in some order. Counts what it saw in `seen`.
 *
 * Knobs (.data): verdict, status, target_bdev, target_lba_add, defer_ns,
 * split_nlb, split_verdict, prio, only_opcode (0xff: all), mark (stored in
 * cookie[0] at submit, checked at complete), complete_verdict; load-time
 * (.rodata): load_mark.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "leapio/policy.h"

__u32 verdict = LEAP_PASS;
__u32 status = 0;
__u32 target_bdev = 0;
__u64 target_lba_add = 0;
__u64 defer_ns = 0;
__u32 split_nlb = 0;
__u32 split_verdict = LEAP_PASS;
__u32 prio = LEAP_PRIO_MEDIUM;
__u32 only_opcode = 0xff;
__u64 mark = 0;
__u32 complete_verdict = LEAP_PASS;
__u32 complete_status = 0;
/* A load-time knob (.rodata, leapctl policy load --set load_mark=N): added to mark. */
const volatile __u64 load_mark = 0;

struct seen {
	__u64 submits;
	__u64 completes;
	__u64 parts;	    /* submit runs with part > 0 */
	__u64 marks_ok;	    /* completes whose cookie[0] == mark */
	__u64 last_nlb;	    /* nlb of the last submit run */
	__u64 last_slba;    /* slba of the last submit run */
	__u64 last_prio;    /* prio seen at the last submit run (set by an earlier link) */
	__u64 last_latency; /* latency_ns at the last completion */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct seen);
} seen SEC(".maps");

SEC("leap/submit")
int verdict_submit(struct leap_io_ctx *ctx)
{
	__u32 k = 0;
	struct seen *s = bpf_map_lookup_elem(&seen, &k);

	if (!s)
		return LEAP_PASS;
	s->submits++;
	if (ctx->part)
		s->parts++;
	s->last_nlb = ctx->nlb;
	s->last_slba = ctx->slba;
	s->last_prio = ctx->prio;
	ctx->cookie[0] = mark + load_mark;
	if (only_opcode != 0xff && ctx->opcode != only_opcode)
		return LEAP_PASS;
	ctx->prio = (__u16)prio;
	ctx->status = (__u16)status;
	ctx->target_bdev = target_bdev;
	ctx->target_lba += target_lba_add;
	ctx->defer_ns = defer_ns;
	ctx->split_nlb = split_nlb;
	ctx->split_verdict = split_verdict;
	/* A split only for the first run, so the rest passes as a whole. */
	if (verdict == LEAP_SPLIT && ctx->part)
		return LEAP_PASS;
	return (int)verdict;
}

SEC("leap/complete")
int verdict_complete(struct leap_io_ctx *ctx)
{
	__u32 k = 0;
	struct seen *s = bpf_map_lookup_elem(&seen, &k);

	if (!s)
		return LEAP_PASS;
	s->completes++;
	if (ctx->cookie[0] == mark + load_mark)
		s->marks_ok++;
	s->last_latency = ctx->latency_ns;
	ctx->status = (__u16)complete_status;
	return (int)complete_verdict;
}

char LICENSE[] SEC("license") = "GPL";
