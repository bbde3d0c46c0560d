// SPDX-License-Identifier: BSD-3-Clause
/* Statistics counters and percentiles (see stats.h for the memory-ordering contract). */
#include <string.h>

#include "stats.h"

#define BUMP(field, v) __atomic_store_n(&(field), (field) + (v), __ATOMIC_RELAXED)
#define READ(field)    __atomic_load_n(&(field), __ATOMIC_RELAXED)

static unsigned int bucket_of(uint64_t ns)
{
	return ns ? 63u - (unsigned int)__builtin_clzll(ns) : 0;
}

void leap_stats_record(struct leap_stats *s, enum leap_stats_kind kind, uint64_t bytes,
		       uint16_t status, uint64_t lat_ns)
{
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

uint64_t leap_stats_percentile(const struct leap_stats *s, double p)
{
	uint64_t total = 0, seen = 0;
	double rank;

	for (int b = 0; b < LEAP_STATS_BUCKETS; b++)
		total += s->lat_hist[b];
	if (!total)
		return 0;
	rank = p / 100.0 * (double)total;
	for (int b = 0; b < LEAP_STATS_BUCKETS; b++) {
		uint64_t n = s->lat_hist[b];

		if (n && (double)(seen + n) >= rank) {
			double lo = b ? (double)(1ull << b) : 0.0, width = b ? lo : 1.0;
			double frac = (rank - (double)seen) / (double)n;

			return (uint64_t)(lo + frac * width);
		}
		seen += n;
	}
	return 1ull << 63;
}
