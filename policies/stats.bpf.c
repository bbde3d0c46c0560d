// SPDX-License-Identifier: BSD-3-Clause
/*
 * stats — per-tenant I/O counters and latency histograms (complete hook).
 *
 * For every completed command of tenant t = ctx->ctrl_id (< LEAP_TENANTS;
 * others pass uncounted): counts it by opcode, adds its bytes, counts an
 * error when ctx->status != 0, adds ctx->latency_ns, and counts it in the
 * log2 latency histogram. Always LEAP_PASS; never changes the status.
 *
 * Maps (no knobs):
 *   stats_io[LEAP_TENANTS]  struct leap_stats_io {reads, writes, other,
 *       read_bytes, write_bytes, errors, lat_ns_sum}: reads = Read, writes =
 *       Write, other = everything else (Flush, DSM, Write Zeroes, Compare);
 *       bytes are ctx->bytes of Reads and Writes.
 *   stats_lat[LEAP_TENANTS] struct leap_stats_lat {bucket[64]}: bucket i =
 *       floor(log2(latency_ns)) counts [2^i, 2^(i+1)) ns; 0 and 1 ns go to
 *       bucket 0. A percentile p is read as the first bucket whose running
 *       sum reaches p * total, reported as its bounds (at most 2x off).
 * One writer per tenant: leapd runs a controller (a tenant) on one reactor,
 * so the counters are plain increments (a locked add costs more than the
 * rest of the program); readers see racy-but-monotonic words.
 * Reset: clear both maps (leapctl map clear, or bpftool map update).
 *
 * Chain order: on leap/complete, first, so it sees the backend's status
 * before any later link rewrites it (a later LEAP_COMPLETE is not seen).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "leapio/policy.h"
#include "leap_policies.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LEAP_TENANTS);
	__type(key, __u32);
	__type(value, struct leap_stats_io);
} stats_io SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LEAP_TENANTS);
	__type(key, __u32);
	__type(value, struct leap_stats_lat);
} stats_lat SEC(".maps");

/* floor(log2(x)) for x >= 1, 0 for x == 0: six compares, no loop. */
static __always_inline __u32 log2_floor(__u64 x)
{
	__u32 n = 0;

	if (x >> 32) {
		n += 32;
		x >>= 32;
	}
	if (x >> 16) {
		n += 16;
		x >>= 16;
	}
	if (x >> 8) {
		n += 8;
		x >>= 8;
	}
	if (x >> 4) {
		n += 4;
		x >>= 4;
	}
	if (x >> 2) {
		n += 2;
		x >>= 2;
	}
	if (x >> 1)
		n += 1;
	return n;
}

SEC("leap/complete")
int stats_complete(struct leap_io_ctx *ctx)
{
	__u32 t = ctx->ctrl_id, opc;
	__u64 lat, bytes;
	struct leap_stats_io *s;
	struct leap_stats_lat *h;

	if (t >= LEAP_TENANTS)
		return LEAP_PASS;
	s = bpf_map_lookup_elem(&stats_io, &t);
	h = bpf_map_lookup_elem(&stats_lat, &t);
	if (!s || !h)
		return LEAP_PASS;
	/* Read after the lookups: nothing has to live across them on the stack. */
	opc = ctx->opcode;
	lat = ctx->latency_ns;
	bytes = ctx->bytes;
	if (opc == LEAP_OPC_READ) {
		s->reads += 1;
		s->read_bytes += bytes;
	} else if (opc == LEAP_OPC_WRITE) {
		s->writes += 1;
		s->write_bytes += bytes;
	} else {
		s->other += 1;
	}
	if (ctx->status)
		s->errors += 1;
	s->lat_ns_sum += lat;
	h->bucket[log2_floor(lat) & (LEAP_STATS_LAT_BUCKETS - 1)] += 1;
	return LEAP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
