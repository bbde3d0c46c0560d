/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * I/O statistics kept per controller, per namespace and per queue pair:
 * operation and byte counts by direction, errors by NVMe status, and a
 * latency histogram in log2 buckets (bucket 0 holds [0, 2) ns, bucket k > 0
 * holds [2^k, 2^(k+1)) ns) from which p50/p99/p99.9 are computed.
 *
 * Memory ordering. Each struct has exactly one writer, the reactor that owns
 * the object. It updates a counter with a plain load, add, and a relaxed
 * atomic store of the sum: a single aligned 64-bit mov on x86-64, no lock
 * prefix, no fence — but the compiler may not tear, split or invent the
 * store. Readers (the control thread) load every field with a relaxed
 * atomic load. So a reader never sees a torn value and every counter it
 * sees only grows; fields are not mutually consistent (a snapshot may
 * count an I/O's operation but not yet its bytes). The one publication
 * that needs order is an error slot's status code: the writer stores the
 * slot's first count, then the code with release; the reader loads the code
 * with acquire, so a named slot's count is never missed.
 */
#ifndef LEAPIO_RUNTIME_STATS_H
#define LEAPIO_RUNTIME_STATS_H

#include <stdint.h>

#define LEAP_STATS_BUCKETS   64
#define LEAP_STATS_ERR_SLOTS 16

enum leap_stats_kind {
	LEAP_STATS_READ = 0, /* Read and Compare */
	LEAP_STATS_WRITE = 1,
	LEAP_STATS_FLUSH = 2,
	LEAP_STATS_OTHER = 3, /* Write Zeroes, Dataset Management, rejected opcodes */
	LEAP_STATS_KINDS = 4,
};

struct leap_stats {
	uint64_t ops[LEAP_STATS_KINDS]; /* completed commands, failed ones included */
	uint64_t bytes[2];		/* read, write: successful commands only */
	uint64_t errors;
	uint64_t lat_sum_ns;
	uint64_t lat_hist[LEAP_STATS_BUCKETS];
	uint16_t err_status[LEAP_STATS_ERR_SLOTS]; /* internal status (SCT/SC); 0 = free slot */
	uint64_t err_count[LEAP_STATS_ERR_SLOTS];
	uint64_t err_other; /* statuses that found no free slot */
};

/* What stats_get reports: derived from one snapshot. */
struct leap_stats_summary {
	uint64_t ops[LEAP_STATS_KINDS];
	uint64_t bytes_read, bytes_written;
	uint64_t errors;
	uint64_t lat_avg_ns, lat_p50_ns, lat_p99_ns, lat_p999_ns;
	uint64_t lat_max_ns; /* upper bound of the highest non-empty bucket */
};

/*
 * Writer side (the owning reactor only): one completed command of `kind`
 * that moved `bytes` (counted only when status is 0), finished with
 * internal `status` (SCT/SC, DNR ignored) after `lat_ns`.
 */
void leap_stats_record(struct leap_stats *s, enum leap_stats_kind kind, uint64_t bytes,
		       uint16_t status, uint64_t lat_ns);

/* Reader side: relaxed snapshot of src added into dst (dst is private to the reader). */
void leap_stats_accumulate(struct leap_stats *dst, const struct leap_stats *src);

/*
 * Latency at percentile p (0 < p <= 100) in ns, interpolated linearly inside
 * its bucket; 0 if the histogram is empty. s must be a private snapshot.
 */
uint64_t leap_stats_percentile(const struct leap_stats *s, double p);
uint64_t leap_stats_total_ops(const struct leap_stats *s);
/* Count recorded for `status` (SCT/SC), 0 if never seen (or only in err_other). */
uint64_t leap_stats_error_count(const struct leap_stats *s, uint16_t status);
/* Summary of a private snapshot. */
void leap_stats_summarize(const struct leap_stats *s, struct leap_stats_summary *out);

#endif /* LEAPIO_RUNTIME_STATS_H */
