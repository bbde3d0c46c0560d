// SPDX-License-Identifier: BSD-3-Clause
/*
 * Statistics counters and percentiles. stats.h states the memory-ordering
 * contract: one writer per struct using relaxed stores, racy-but-monotonic
 * relaxed readers, release/acquire only for publishing an error slot.
 */
#include <string.h>

#include "core/stats.h"

/* Single writer: a plain read-modify-write whose store cannot tear (not an atomic RMW). */
#define BUMP(field, v) __atomic_store_n(&(field), (field) + (v), __ATOMIC_RELAXED)
#define READ(field)    __atomic_load_n(&(field), __ATOMIC_RELAXED)

static unsigned int bucket_of(uint64_t ns)
{
	return ns ? 63u - (unsigned int)__builtin_clzll(ns) : 0;
}

void leap_stats_record(struct leap_stats *s, enum leap_stats_kind kind, uint64_t bytes,
		       uint16_t status, uint64_t lat_ns)
{
	status &= 0x7ff;
	BUMP(s->ops[kind], 1);
	if (kind <= LEAP_STATS_WRITE && !status)
		BUMP(s->bytes[kind], bytes);
	BUMP(s->lat_sum_ns, lat_ns);
	BUMP(s->lat_hist[bucket_of(lat_ns)], 1);
	if (!status)
		return;
	BUMP(s->errors, 1);
	for (unsigned int i = 0; i < LEAP_STATS_ERR_SLOTS; i++) {
		if (s->err_status[i] == status) {
			BUMP(s->err_count[i], 1);
			return;
		}
		if (s->err_status[i] == 0) {
			/* Count first, then publish the slot: a reader never sees a named empty slot. */
			BUMP(s->err_count[i], 1);
			__atomic_store_n(&s->err_status[i], status, __ATOMIC_RELEASE);
			return;
		}
	}
	BUMP(s->err_other, 1);
}

void leap_stats_accumulate(struct leap_stats *dst, const struct leap_stats *src)
{
	for (int k = 0; k < LEAP_STATS_KINDS; k++)
		dst->ops[k] += READ(src->ops[k]);
	dst->bytes[0] += READ(src->bytes[0]);
	dst->bytes[1] += READ(src->bytes[1]);
	dst->errors += READ(src->errors);
	dst->lat_sum_ns += READ(src->lat_sum_ns);
	for (int b = 0; b < LEAP_STATS_BUCKETS; b++)
		dst->lat_hist[b] += READ(src->lat_hist[b]);
	dst->err_other += READ(src->err_other);
	for (int i = 0; i < LEAP_STATS_ERR_SLOTS; i++) {
		/* Acquire pairs with the writer's release: the count is there. */
		uint16_t st = __atomic_load_n(&src->err_status[i], __ATOMIC_ACQUIRE);
		uint64_t n;
		int j;

		if (!st)
			break;
		n = READ(src->err_count[i]);
		for (j = 0; j < LEAP_STATS_ERR_SLOTS; j++) {
			if (dst->err_status[j] == st || dst->err_status[j] == 0) {
				dst->err_status[j] = st;
				dst->err_count[j] += n;
				break;
			}
		}
		if (j == LEAP_STATS_ERR_SLOTS)
			dst->err_other += n;
	}
}

uint64_t leap_stats_total_ops(const struct leap_stats *s)
{
	uint64_t n = 0;

	for (int k = 0; k < LEAP_STATS_KINDS; k++)
		n += s->ops[k];
	return n;
}

uint64_t leap_stats_error_count(const struct leap_stats *s, uint16_t status)
{
	status &= 0x7ff;
	for (int i = 0; i < LEAP_STATS_ERR_SLOTS && s->err_status[i]; i++)
		if (s->err_status[i] == status)
			return s->err_count[i];
	return 0;
}

/* Bucket b covers [lo, lo + width). */
static void bucket_range(int b, double *lo, double *width)
{
	*lo = b ? (double)(1ull << b) : 0.0;
	*width = b ? *lo : 2.0;
}

uint64_t leap_stats_percentile(const struct leap_stats *s, double p)
{
	uint64_t total = 0, seen = 0;
	double rank, lo, width;

	for (int b = 0; b < LEAP_STATS_BUCKETS; b++)
		total += s->lat_hist[b];
	if (!total || p <= 0)
		return 0;
	if (p > 100)
		p = 100;
	rank = p / 100.0 * (double)total;
	for (int b = 0; b < LEAP_STATS_BUCKETS; b++) {
		uint64_t n = s->lat_hist[b];

		if (n && (double)(seen + n) >= rank) {
			double frac = (rank - (double)seen) / (double)n;

			bucket_range(b, &lo, &width);
			return (uint64_t)(lo + frac * width);
		}
		seen += n;
	}
	/* Unreachable unless rounding left rank above the total: the top of the last bucket. */
	return UINT64_MAX;
}

void leap_stats_summarize(const struct leap_stats *s, struct leap_stats_summary *out)
{
	uint64_t n = 0;
	double lo, width;

	memset(out, 0, sizeof(*out));
	for (int k = 0; k < LEAP_STATS_KINDS; k++)
		out->ops[k] = s->ops[k];
	out->bytes_read = s->bytes[0];
	out->bytes_written = s->bytes[1];
	out->errors = s->errors;
	for (int b = 0; b < LEAP_STATS_BUCKETS; b++) {
		n += s->lat_hist[b];
		if (s->lat_hist[b]) {
			bucket_range(b, &lo, &width);
			out->lat_max_ns = b == 63 ? UINT64_MAX : (uint64_t)(lo + width) - 1;
		}
	}
	if (!n)
		return;
	out->lat_avg_ns = s->lat_sum_ns / n;
	out->lat_p50_ns = leap_stats_percentile(s, 50.0);
	out->lat_p99_ns = leap_stats_percentile(s, 99.0);
	out->lat_p999_ns = leap_stats_percentile(s, 99.9);
}
