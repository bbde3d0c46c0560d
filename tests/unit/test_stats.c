// SPDX-License-Identifier: BSD-3-Clause
/*
 * Statistics (runtime/stats.c): counting rules, log2 latency buckets,
 * percentile interpolation against values worked out by hand, error slots
 * by status, aggregation, and the single-writer/many-reader contract (a
 * reader thread's snapshots never go backwards while a writer records).
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "leapio/nvme_spec.h"
#include "core/stats.h"
#include "tap.h"

#define LBA_OOR	 NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_LBA_OUT_OF_RANGE)
#define CMP_FAIL NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILURE)

static void test_counts_and_bytes(void)
{
	struct leap_stats s = { 0 };

	leap_stats_record(&s, LEAP_STATS_READ, 4096, 0, 100);
	leap_stats_record(&s, LEAP_STATS_READ, 512, 0, 100);
	leap_stats_record(&s, LEAP_STATS_WRITE, 8192, 0, 100);
	/* A failed command counts as an operation but moves no bytes. */
	leap_stats_record(&s, LEAP_STATS_WRITE, 8192, LBA_OOR | NVME_CQE_DNR, 100);
	leap_stats_record(&s, LEAP_STATS_FLUSH, 0, 0, 100);
	leap_stats_record(&s, LEAP_STATS_OTHER, 0, 0, 100);
	T_ASSERT_EQ(s.ops[LEAP_STATS_READ], 2);
	T_ASSERT_EQ(s.ops[LEAP_STATS_WRITE], 2);
	T_ASSERT_EQ(s.ops[LEAP_STATS_FLUSH], 1);
	T_ASSERT_EQ(s.ops[LEAP_STATS_OTHER], 1);
	T_ASSERT_EQ(s.bytes[0], 4608);
	T_ASSERT_EQ(s.bytes[1], 8192);
	T_ASSERT_EQ(s.errors, 1);
	T_ASSERT_EQ(leap_stats_total_ops(&s), 6);
	T_ASSERT_EQ(s.lat_sum_ns, 600);
}

static void test_buckets(void)
{
	struct leap_stats s = { 0 };
	static const struct {
		uint64_t ns;
		int bucket;
	} c[] = { { 0, 0 },    { 1, 0 },     { 2, 1 },	      { 3, 1 },
		  { 1023, 9 }, { 1024, 10 }, { 1000000, 19 }, { UINT64_MAX, 63 } };

	for (size_t i = 0; i < TAP_N(c); i++) {
		memset(&s, 0, sizeof(s));
		leap_stats_record(&s, LEAP_STATS_READ, 0, 0, c[i].ns);
		T_ASSERT_EQ(s.lat_hist[c[i].bucket], 1);
	}
}

static void test_percentiles(void)
{
	struct leap_stats s = { 0 };
	uint64_t p;

	T_ASSERT_EQ(leap_stats_percentile(&s, 50), 0);
	/* 100 samples in [1024, 2048): p50 interpolates to the middle. */
	for (int i = 0; i < 100; i++)
		leap_stats_record(&s, LEAP_STATS_READ, 0, 0, 1500);
	T_ASSERT_EQ(leap_stats_percentile(&s, 50), 1536);
	T_ASSERT_EQ(leap_stats_percentile(&s, 100), 2048);

	/* 999 fast ([512, 1024)) and 1 slow ([2^19, 2^20)). */
	memset(&s, 0, sizeof(s));
	for (int i = 0; i < 999; i++)
		leap_stats_record(&s, LEAP_STATS_READ, 0, 0, 700);
	leap_stats_record(&s, LEAP_STATS_READ, 0, 0, 1000000);
	p = leap_stats_percentile(&s, 50);
	T_ASSERT(p >= 512 && p < 1024);
	T_ASSERT(leap_stats_percentile(&s, 99) < 1024);
	T_ASSERT(leap_stats_percentile(&s, 99.5) < 1024);
	/* Rank 999.9: 90% into the slow sample's bucket. */
	p = leap_stats_percentile(&s, 99.99);
	T_ASSERT(p >= 996140 && p <= 996150);
}

static void test_summary(void)
{
	struct leap_stats s = { 0 };
	struct leap_stats_summary sum;

	leap_stats_summarize(&s, &sum);
	T_ASSERT_EQ(sum.lat_p50_ns, 0);
	T_ASSERT_EQ(sum.lat_max_ns, 0);
	for (int i = 0; i < 10; i++)
		leap_stats_record(&s, LEAP_STATS_WRITE, 4096, 0, 3000);
	leap_stats_record(&s, LEAP_STATS_READ, 4096, CMP_FAIL, 9000);
	leap_stats_summarize(&s, &sum);
	T_ASSERT_EQ(sum.ops[LEAP_STATS_WRITE], 10);
	T_ASSERT_EQ(sum.ops[LEAP_STATS_READ], 1);
	T_ASSERT_EQ(sum.bytes_written, 40960);
	T_ASSERT_EQ(sum.bytes_read, 0);
	T_ASSERT_EQ(sum.errors, 1);
	T_ASSERT_EQ(sum.lat_avg_ns, 39000 / 11);
	T_ASSERT(sum.lat_p50_ns >= 2048 && sum.lat_p50_ns < 4096);
	T_ASSERT(sum.lat_p999_ns >= 8192 && sum.lat_p999_ns <= 16384);
	T_ASSERT_EQ(sum.lat_max_ns, 16383);
}

static void test_error_slots(void)
{
	struct leap_stats s = { 0 };

	leap_stats_record(&s, LEAP_STATS_READ, 0, LBA_OOR | NVME_CQE_DNR, 1);
	leap_stats_record(&s, LEAP_STATS_READ, 0, LBA_OOR, 1);
	leap_stats_record(&s, LEAP_STATS_READ, 0, CMP_FAIL, 1);
	/* DNR is not part of the status code. */
	T_ASSERT_EQ(leap_stats_error_count(&s, LBA_OOR), 2);
	T_ASSERT_EQ(leap_stats_error_count(&s, LBA_OOR | NVME_CQE_DNR), 2);
	T_ASSERT_EQ(leap_stats_error_count(&s, CMP_FAIL), 1);
	T_ASSERT_EQ(leap_stats_error_count(&s, NVME_STATUS(0, 0x02)), 0);
	/* 16 slots; further distinct statuses land in err_other. */
	for (uint16_t sc = 0x10; sc < 0x10 + 20; sc++)
		leap_stats_record(&s, LEAP_STATS_OTHER, 0, NVME_STATUS(NVME_SCT_VENDOR, sc), 1);
	T_ASSERT_EQ(s.errors, 23);
	T_ASSERT_EQ(s.err_other, 20 - (LEAP_STATS_ERR_SLOTS - 2));
}

static void test_accumulate(void)
{
	struct leap_stats a = { 0 }, b = { 0 }, sum = { 0 };

	leap_stats_record(&a, LEAP_STATS_READ, 4096, 0, 10);
	leap_stats_record(&a, LEAP_STATS_READ, 0, LBA_OOR, 10);
	leap_stats_record(&b, LEAP_STATS_WRITE, 512, 0, 20);
	leap_stats_record(&b, LEAP_STATS_WRITE, 0, CMP_FAIL, 20);
	leap_stats_record(&b, LEAP_STATS_WRITE, 0, LBA_OOR, 20);
	leap_stats_accumulate(&sum, &a);
	leap_stats_accumulate(&sum, &b);
	T_ASSERT_EQ(sum.ops[LEAP_STATS_READ], 2);
	T_ASSERT_EQ(sum.ops[LEAP_STATS_WRITE], 3);
	T_ASSERT_EQ(sum.bytes[0], 4096);
	T_ASSERT_EQ(sum.bytes[1], 512);
	T_ASSERT_EQ(sum.errors, 3);
	T_ASSERT_EQ(sum.lat_sum_ns, 80);
	T_ASSERT_EQ(sum.lat_hist[3], 2); /* 10 ns */
	T_ASSERT_EQ(sum.lat_hist[4], 3); /* 20 ns */
	T_ASSERT_EQ(leap_stats_error_count(&sum, LBA_OOR), 2);
	T_ASSERT_EQ(leap_stats_error_count(&sum, CMP_FAIL), 1);
}

/* ---- one writer, one concurrent reader -------------------------------------- */

#define RACE_N 200000

static struct leap_stats race;
static volatile bool race_done;

static void *writer(void *arg)
{
	(void)arg;
	for (int i = 0; i < RACE_N; i++)
		leap_stats_record(&race, (i & 1) ? LEAP_STATS_WRITE : LEAP_STATS_READ, 512,
				  (i % 1000) == 999 ? LBA_OOR : 0, (uint64_t)i);
	__atomic_store_n(&race_done, true, __ATOMIC_RELEASE);
	return NULL;
}

static void test_snapshots_are_monotonic(void)
{
	struct leap_stats prev = { 0 }, cur;
	pthread_t t;
	int snaps = 0;
	bool done;

	memset(&race, 0, sizeof(race));
	race_done = false;
	T_ASSERT_EQ(pthread_create(&t, NULL, writer, NULL), 0);
	do {
		done = __atomic_load_n(&race_done, __ATOMIC_ACQUIRE);
		memset(&cur, 0, sizeof(cur));
		leap_stats_accumulate(&cur, &race);
		for (int k = 0; k < LEAP_STATS_KINDS; k++)
			T_ASSERT(cur.ops[k] >= prev.ops[k]);
		T_ASSERT(cur.bytes[0] >= prev.bytes[0] && cur.bytes[1] >= prev.bytes[1]);
		T_ASSERT(cur.errors >= prev.errors);
		T_ASSERT(cur.lat_sum_ns >= prev.lat_sum_ns);
		/* A published error slot always carries its count. */
		if (cur.err_status[0])
			T_ASSERT(cur.err_count[0] >= 1 && cur.err_count[0] >= prev.err_count[0]);
		prev = cur;
		snaps++;
	} while (!done);
	pthread_join(t, NULL);
	T_ASSERT_EQ(cur.ops[LEAP_STATS_READ] + cur.ops[LEAP_STATS_WRITE], RACE_N);
	T_ASSERT_EQ(cur.errors, RACE_N / 1000);
	T_ASSERT_EQ(leap_stats_error_count(&cur, LBA_OOR), RACE_N / 1000);
	T_ASSERT(snaps >= 1);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_counts_and_bytes),
		TAP_CASE(test_buckets),
		TAP_CASE(test_percentiles),
		TAP_CASE(test_summary),
		TAP_CASE(test_error_slots),
		TAP_CASE(test_accumulate),
		TAP_CASE(test_snapshots_are_monotonic),
	};

	return tap_run(cases, TAP_N(cases));
}
