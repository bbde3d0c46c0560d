// SPDX-License-Identifier: BSD-3-Clause
/*
 * CRC32C: the published vectors (RFC 3720 appendix B.4 and the "123456789"
 * check value), then the SSE4.2 path against the table path over random
 * buffers of every interesting length and alignment (the 3-way interleave
 * and its shift tables only run on long buffers, so lengths straddle both
 * block sizes), chaining and iovecs. Throughput is printed as a TAP comment.
 * The .c is included so both implementations can be called directly.
 */
#include <time.h>

#include "../../common/crc32c.c"
#include "tap.h"

static void test_rfc3720_vectors(void)
{
	uint8_t buf[32];

	memset(buf, 0, sizeof(buf));
	T_ASSERT_U64_EQ(leap_crc32c(0, buf, 32), 0x8a9136aa);
	memset(buf, 0xff, sizeof(buf));
	T_ASSERT_U64_EQ(leap_crc32c(0, buf, 32), 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	T_ASSERT_U64_EQ(leap_crc32c(0, buf, 32), 0x46dd794e);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	T_ASSERT_U64_EQ(leap_crc32c(0, buf, 32), 0x113fdb5c);
	T_ASSERT_U64_EQ(leap_crc32c(0, "123456789", 9), 0xe3069283);
	T_ASSERT_U64_EQ(leap_crc32c(0, NULL, 0), 0);
}

static void test_vectors_both_paths(void)
{
	static const char check[] = "123456789";

	ensure_tables();
	T_ASSERT_U64_EQ(~crc32c_sw(~0u, check, 9), 0xe3069283);
	if (!have_hw)
		T_SKIP("no SSE4.2 on this CPU");
	T_ASSERT_U64_EQ(~crc32c_hw(~0u, check, 9), 0xe3069283);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void test_hw_matches_sw(void)
{
	enum { MAX = 3 * LONG_BLOCK * 2 + 64 };
	uint8_t *buf = malloc(MAX + 8);
	static const size_t lens[] = { 0,
				       1,
				       7,
				       8,
				       9,
				       63,
				       255,
				       256,
				       767,
				       768,
				       769,
				       3 * SHORT_BLOCK * 2 + 5,
				       4096,
				       8192,
				       3 * LONG_BLOCK - 1,
				       3 * LONG_BLOCK,
				       3 * LONG_BLOCK + 777,
				       MAX - 8 };

	T_ASSERT(buf);
	ensure_tables();
	if (!have_hw) {
		free(buf);
		T_SKIP("no SSE4.2 on this CPU");
	}
	for (size_t i = 0; i < MAX + 8; i++)
		buf[i] = (uint8_t)rng();
	for (size_t l = 0; l < LEAP_ARRAY_SIZE(lens); l++)
		for (size_t align = 0; align < 8; align++) {
			uint32_t seed = (uint32_t)rng();
			uint32_t a = crc32c_sw(seed, buf + align, lens[l]);
			uint32_t b = crc32c_hw(seed, buf + align, lens[l]);

			if (a != b) {
				free(buf);
				T_FAIL("len %zu align %zu: sw 0x%08x hw 0x%08x", lens[l], align, a,
				       b);
			}
		}
	/* Random lengths too, so nothing lines up by construction. */
	for (int i = 0; i < 2000; i++) {
		size_t len = rng() % (MAX - 8), align = rng() % 8;
		uint32_t a = crc32c_sw(0, buf + align, len), b = crc32c_hw(0, buf + align, len);

		if (a != b) {
			free(buf);
			T_FAIL("len %zu align %zu: sw 0x%08x hw 0x%08x", len, align, a, b);
		}
	}
	free(buf);
}

static void test_chaining_and_iov(void)
{
	uint8_t buf[10000];
	struct iovec iov[4];
	uint32_t whole, part;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rng();
	whole = leap_crc32c(0, buf, sizeof(buf));
	part = leap_crc32c(0, buf, 1234);
	part = leap_crc32c(part, buf + 1234, sizeof(buf) - 1234);
	T_ASSERT_U64_EQ(part, whole);
	iov[0] = (struct iovec){ buf, 3 };
	iov[1] = (struct iovec){ buf + 3, 0 };
	iov[2] = (struct iovec){ buf + 3, 5000 };
	iov[3] = (struct iovec){ buf + 5003, sizeof(buf) - 5003 };
	T_ASSERT_U64_EQ(leap_crc32c_iov(0, iov, 4), whole);
	/* A flipped bit changes the digest. */
	buf[777] ^= 0x10;
	T_ASSERT(leap_crc32c(0, buf, sizeof(buf)) != whole);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double gbps(uint32_t (*fn)(uint32_t, const void *, size_t), const uint8_t *buf, size_t len)
{
	volatile uint32_t sink = 0;
	size_t total = 0;
	double t0 = now_s(), t;

	do {
		for (int i = 0; i < 16; i++)
			sink ^= fn(sink, buf, len);
		total += 16 * len;
		t = now_s() - t0;
	} while (t < 0.2);
	return (double)total / t / 1e9;
}

/* Not an assertion: the numbers go in the log for whoever sizes digests against line rate. */
static void test_throughput_report(void)
{
	static const size_t sizes[] = { 512, 4096, 65536, 1 << 20 };
	uint8_t *buf = malloc(1 << 20);

	T_ASSERT(buf);
	memset(buf, 0xa5, 1 << 20);
	ensure_tables();
	for (size_t i = 0; i < LEAP_ARRAY_SIZE(sizes); i++) {
		printf("# crc32c %7zu B: table %.2f GB/s", sizes[i],
		       gbps(crc32c_sw, buf, sizes[i]));
		if (have_hw)
			printf(", sse4.2 %.2f GB/s", gbps(crc32c_hw, buf, sizes[i]));
		printf("\n");
	}
	free(buf);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_rfc3720_vectors),	  TAP_CASE(test_vectors_both_paths),
		TAP_CASE(test_hw_matches_sw),	  TAP_CASE(test_chaining_and_iov),
		TAP_CASE(test_throughput_report),
	};

	return tap_run(cases, TAP_N(cases));
}
