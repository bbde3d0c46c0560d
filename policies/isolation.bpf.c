// SPDX-License-Identifier: BSD-3-Clause
/*
 * isolation — per-tenant rate limits and LBA areas (submit hook).
 *
 * 1. Rate: two token buckets per tenant (tenant = ctx->ctrl_id; tenants >=
 *    LEAP_TENANTS pass untouched), one on I/Os per second, one on bytes per
 *    second. Tokens are fixed point, in units of 1e-9 I/O and 1e-9 byte, so
 *    refill is exact integer arithmetic: tokens += elapsed_ns * rate, an
 *    I/O costs 1e9, a byte costs 1e9. Time is ctx->now_ns (never the
 *    clock), so leapd and the tests are deterministic. When either bucket
 *    is short the command is not charged and the verdict is LEAP_DEFER with
 *    ctx->defer_ns = the exact (ceiling) ns until both buckets hold enough;
 *    leapd re-runs the chain then. A SPLIT remainder (ctx->part > 0) is not
 *    charged again: the whole command was charged at part 0.
 *    Bucket capacity is rate * iso_burst_ms, and never less than this
 *    command's cost (so a command larger than the burst still goes through,
 *    at the rate). Elapsed time is capped at 1 s (>= the burst), which with
 *    rates <= LEAP_ISO_RATE_MAX keeps every sum in 64 bits. A limit change
 *    applies from the next command, refilling the time since the last one
 *    at the new rate; a bucket whose limit goes from 0 to a value starts
 *    full, or empty if the tenant's other limit was in force meanwhile.
 * 2. Area (Arrakis-style virtual storage area): when area_nlb[t] != 0 the
 *    tenant sees blocks [0, area_nlb) that live at blocks [area_base,
 *    area_base + area_nlb) of the namespace's own backend (absolute, in the
 *    namespace's LBA size). A command with slba + nlb > area_nlb completes
 *    with LEAP_ST_LBA_OUT_OF_RANGE and never reaches the backend; otherwise
 *    it is LEAP_REDIRECT to target_bdev 0 at target_lba = area_base + slba.
 *    Flush (nlb 0, no range) passes. DSM's ranges are not in the context,
 *    so with an area set a DSM cannot be remapped or checked: it completes
 *    with LEAP_ST_INVALID_FIELD (without an area it passes).
 *    Order: the rate check first (a deferred command is not range-checked
 *    yet), then the area.
 *
 * Knobs (.data, live: `leapctl policy set isolation iops_limit[3]=5000`):
 *   iops_limit[LEAP_TENANTS]  I/Os per second, 0: unlimited
 *   bps_limit[LEAP_TENANTS]   bytes per second, 0: unlimited
 *       (both clamped to LEAP_ISO_RATE_MAX = 2^33)
 *   iso_burst_ms              bucket depth in ms of the rate (default 50,
 *       clamped to [1, 1000]); over a window W a tenant gets at most
 *       rate * (W + burst): 0.5 % over 10 s at the default. The depth is
 *       also what a reactor may lag behind a deadline (descheduled on a
 *       busy host) without the tenant losing rate: 10 ms measured 0.84 of
 *       a 100 k IOPS limit on this 2-core VM under load.
 *   area_base[LEAP_TENANTS], area_nlb[LEAP_TENANTS]  the area, nlb 0: none
 *
 * Maps: iso_bucket[LEAP_TENANTS] struct leap_iso_bucket {io_tokens,
 *   byte_tokens, last_ns}; iso_counts[LEAP_TENANTS] struct leap_iso_count
 *   {passed, deferred, out_of_range, invalid}.
 *
 * Concurrency: a tenant's bucket is updated without a lock (the loader
 * refuses spin locks in mmapped maps); leapd must run one tenant's submit
 * chains on one reactor at a time, or the buckets may admit a little more
 * than the limit. Counters follow the same rule (plain increments).
 *
 * Chain order: prio → isolation → snapshot. Isolation before snapshot so a
 * deferred command is not routed twice; a tenant with an area gets
 * REDIRECT here, which ends the chain, so areas and snapshot routing of
 * the same namespace exclude each other.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "leapio/policy.h"
#include "leap_policies.h"

__u64 iops_limit[LEAP_TENANTS] SEC(".data") = {};
__u64 bps_limit[LEAP_TENANTS] SEC(".data") = {};
__u64 iso_burst_ms SEC(".data") = 50;
__u64 area_base[LEAP_TENANTS] SEC(".data") = {};
__u64 area_nlb[LEAP_TENANTS] SEC(".data") = {};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LEAP_TENANTS);
	__type(key, __u32);
	__type(value, struct leap_iso_bucket);
} iso_bucket SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LEAP_TENANTS);
	__type(key, __u32);
	__type(value, struct leap_iso_count);
} iso_counts SEC(".maps");

/*
 * Refill one bucket to now and return how many ns it is short of `cost`
 * (0: enough). rate <= 2^33 and elapsed, burst_ns <= 1e9 keep
 * elapsed * rate and rate * burst_ns below 2^33 * 1e9; a cost (bytes * 1e9)
 * stays below that for any command under 8 GiB; so tokens + add < 2^64.
 */
static __always_inline __u64 refill(__u64 *tokens, __u64 rate, __u64 elapsed, __u64 burst_ns,
				    __u64 cost)
{
	__u64 cap = rate * burst_ns, t;

	if (cap < cost)
		cap = cost;
	t = *tokens + elapsed * rate;
	if (t > cap)
		t = cap;
	*tokens = t;
	if (t >= cost)
		return 0;
	return (cost - t + rate - 1) / rate;
}

static __always_inline __u64 clamp_rate(__u64 r)
{
	return r > LEAP_ISO_RATE_MAX ? LEAP_ISO_RATE_MAX : r;
}

SEC("leap/submit")
int isolation_submit(struct leap_io_ctx *ctx)
{
	__u32 t = ctx->ctrl_id;
	struct leap_iso_count *cnt;
	__u64 iops, bps, area, base, slba, nlb;

	if (t >= LEAP_TENANTS)
		return LEAP_PASS;
	/* Knobs first, while t is known bounded (the key below goes through the stack). */
	iops = iops_limit[t];
	bps = bps_limit[t];
	area = area_nlb[t];
	base = area_base[t];
	cnt = bpf_map_lookup_elem(&iso_counts, &t);
	if (!cnt)
		return LEAP_PASS;

	if (ctx->part == 0) {
		if (iops || bps) {
			struct leap_iso_bucket *b = bpf_map_lookup_elem(&iso_bucket, &t);
			__u64 now = ctx->now_ns, burst_ns = iso_burst_ms, elapsed = 0;
			__u64 io_tok, byte_tok, wait = 0, w;

			if (!b)
				return LEAP_PASS;
			/* Clamped here: 0 stays 0, and unlimited tenants skip the work. */
			iops = clamp_rate(iops);
			bps = clamp_rate(bps);
			if (burst_ns < 1)
				burst_ns = 1;
			if (burst_ns > LEAP_ISO_BURST_MS_MAX)
				burst_ns = LEAP_ISO_BURST_MS_MAX;
			burst_ns *= 1000000;
			if (now > b->last_ns)
				elapsed = now - b->last_ns;
			if (elapsed > LEAP_ISO_SCALE)
				elapsed = LEAP_ISO_SCALE;
			io_tok = b->io_tokens;
			byte_tok = b->byte_tokens;
			if (iops) {
				w = refill(&io_tok, iops, elapsed, burst_ns, LEAP_ISO_SCALE);
				wait = w;
			}
			if (bps) {
				w = refill(&byte_tok, bps, elapsed, burst_ns,
					   ctx->bytes * LEAP_ISO_SCALE);
				if (w > wait)
					wait = w;
			}
			if (now > b->last_ns)
				b->last_ns = now;
			if (wait) {
				b->io_tokens = io_tok;
				b->byte_tokens = byte_tok;
				ctx->defer_ns = wait;
				cnt->deferred++;
				return LEAP_DEFER;
			}
			b->io_tokens = iops ? io_tok - LEAP_ISO_SCALE : 0;
			b->byte_tokens = bps ? byte_tok - ctx->bytes * LEAP_ISO_SCALE : 0;
		}
		cnt->passed++;
	}

	if (!area)
		return LEAP_PASS;
	switch (ctx->opcode) {
	case LEAP_OPC_FLUSH:
		return LEAP_PASS;
	case LEAP_OPC_DSM:
		ctx->status = LEAP_ST_INVALID_FIELD;
		cnt->invalid++;
		return LEAP_COMPLETE;
	}
	slba = ctx->slba;
	nlb = ctx->nlb;
	/* Written so that a huge slba cannot wrap around the sum. */
	if (slba > area || nlb > area - slba) {
		ctx->status = LEAP_ST_LBA_OUT_OF_RANGE;
		cnt->out_of_range++;
		return LEAP_COMPLETE;
	}
	ctx->target_bdev = 0;
	ctx->target_lba = base + slba;
	return LEAP_REDIRECT;
}

char LICENSE[] SEC("license") = "GPL";
