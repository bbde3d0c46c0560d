/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * I/O statistics kept per controller, per namespace and per queue pair:
 * operation and byte counts, errors by NVMe status, and a latency
 * histogram in log2 buckets (bucket k holds [2^k, 2^(k+1)) ns).
 *
 * Each struct has exactly one writer, the reactor that owns the object,
 * which updates fields with relaxed atomic stores (plain moves on x86-64);
 * the control thread snapshots them with relaxed loads. A snapshot may mix
 * two moments by a few I/Os, never a torn value — good enough for counters
 * that only grow.
 */
#ifndef LEAPIO_RUNTIME_STATS_H
#define LEAPIO_RUNTIME_STATS_H

#include <stdint.h>

#define LEAP_STATS_BUCKETS   64
#define LEAP_STATS_ERR_SLOTS 16

enum leap_stats_kind {
	LEAP_STATS_READ = 0,
	LEAP_STATS_WRITE = 1,
	LEAP_STATS_FLUSH = 2,
	LEAP_STATS_OTHER = 3,
	LEAP_STATS_KINDS = 4,
};

struct leap_stats {
	uint64_t ops[LEAP_STATS_KINDS];
	uint64_t bytes[2]; /* read, write */
	uint64_t errors;
	uint64_t lat_sum_ns;
	uint64_t lat_hist[LEAP_STATS_BUCKETS];
	uint16_t err_status[LEAP_STATS_ERR_SLOTS]; /* internal status; 0 = free slot */
	uint64_t err_count[LEAP_STATS_ERR_SLOTS];
	uint64_t err_other; /* statuses that found no free slot */
};

/* Writer side (the owning reactor only). */
void leap_stats_record(struct leap_stats *s, enum leap_stats_kind kind, uint64_t bytes,
		       uint16_t status, uint64_t lat_ns);

/* Reader side: relaxed snapshot of src added into dst (dst is private to the reader). */
void leap_stats_accumulate(struct leap_stats *dst, const struct leap_stats *src);

/* Latency at percentile p (0 < p < 100) in ns, interpolated inside its bucket; 0 if empty. */
uint64_t leap_stats_percentile(const struct leap_stats *s, double p);
uint64_t leap_stats_total_ops(const struct leap_stats *s);

#endif /* LEAPIO_RUNTIME_STATS_H */
