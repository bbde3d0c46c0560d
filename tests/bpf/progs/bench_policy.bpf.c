// SPDX-License-Identifier: BSD-3-Clause
/*
 * The benchmark's realistic policy (bench/bpf_bench.c): per-tenant admission
 * for a submitted I/O. Three array-map lookups (configuration, token bucket,
 * statistics), bounds and permission checks, a token-bucket refill and a
 * counter update — the shape of a QoS service. bench/bpf_bench.c carries a
 * native C twin of this function; keep the two in step.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bench_policy.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BENCH_TENANTS);
	__type(key, __u32);
	__type(value, struct bench_cfg);
} bench_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BENCH_TENANTS);
	__type(key, __u32);
	__type(value, struct bench_bucket);
} bench_bucket SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BENCH_TENANTS);
	__type(key, __u32);
	__type(value, struct bench_stats);
} bench_stats SEC(".maps");

SEC("leap/submit")
int bench_submit(struct bench_ctx *ctx)
{
	__u32 tenant = ctx->tenant;
	struct bench_cfg *cfg;
	struct bench_bucket *b;
	struct bench_stats *st;
	__u64 tokens, cost, now;

	cfg = bpf_map_lookup_elem(&bench_cfg, &tenant);
	if (!cfg)
		return BENCH_REJECT;
	b = bpf_map_lookup_elem(&bench_bucket, &tenant);
	if (!b)
		return BENCH_REJECT;
	st = bpf_map_lookup_elem(&bench_stats, &tenant);
	if (!st)
		return BENCH_REJECT;

	if (!(cfg->flags & BENCH_CFG_ENABLED) ||
	    ((cfg->flags & BENCH_CFG_READ_ONLY) && ctx->opcode == 1) ||
	    ctx->lba + (ctx->len >> 9) > cfg->lba_limit) {
		st->rejected++;
		return BENCH_REJECT;
	}

	now = ctx->now_ns;
	tokens = b->tokens;
	if (now > b->last_ns) {
		tokens += (now - b->last_ns) / 1000000 * cfg->rate_per_ms;
		if (tokens > cfg->burst)
			tokens = cfg->burst;
	}
	b->last_ns = now;
	cost = (ctx->len + 4095) >> 12;
	if (tokens < cost) {
		b->tokens = tokens;
		st->throttled++;
		return BENCH_THROTTLE;
	}
	b->tokens = tokens - cost;
	ctx->prio = cfg->prio;
	st->ios++;
	st->bytes += ctx->len;
	return BENCH_PASS;
}

char LICENSE[] SEC("license") = "GPL";
