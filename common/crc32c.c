// SPDX-License-Identifier: BSD-3-Clause
/*
 * CRC32C behind include/leapio/crc32c.h. NVMe/TCP digests cover every byte a
 * queue moves, so this must run near memory speed: with SSE4.2 the crc32q
 * instruction does 8 bytes per instruction but has a 3-cycle latency, so a
 * long buffer is cut into three equal blocks whose CRCs run in parallel and
 * are then combined by "shifting" a CRC over a block of zeros with a
 * precomputed table (the approach of Mark Adler's crc32c.c, written anew
 * here). Without SSE4.2, slicing-by-8 tables do 8 bytes per ~10 loads.
 *
 * Internally CRCs are "raw" register values (no pre/post inversion); the
 * public functions add the ~0 in and out, zlib style.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "leapio/common.h"
#include "leapio/crc32c.h"

#define CRC32C_POLY 0x82f63b78u /* reflected Castagnoli */
#define LONG_BLOCK  8192	/* per-stream block for buffers >= 24 KiB */
#define SHORT_BLOCK 256		/* per-stream block for buffers >= 768 B */

static uint32_t sw_table[8][256];
static uint32_t shift_long[4][256];
static uint32_t shift_short[4][256];
static bool have_hw;
static _Atomic int tables_ready;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* Feed `len` zero bytes to a raw CRC: eight at a time through the slicing tables. */
static uint32_t crc_feed_zeros(uint32_t crc, size_t len)
{
	for (; len >= 8; len -= 8)
		crc = sw_table[7][crc & 0xff] ^ sw_table[6][(crc >> 8) & 0xff] ^
		      sw_table[5][(crc >> 16) & 0xff] ^ sw_table[4][crc >> 24];
	for (; len; len--)
		crc = sw_table[0][crc & 0xff] ^ (crc >> 8);
	return crc;
}

/*
 * Build shift[k][n] = the raw CRC register n << 8k after `len` zero bytes.
 * Appending zeros is linear over GF(2), so each table entry is the XOR of
 * the images of its set bits; the 32 images come from feeding zeros.
 */
static void build_shift(uint32_t shift[4][256], size_t len)
{
	uint32_t basis[32];

	for (int i = 0; i < 32; i++)
		basis[i] = crc_feed_zeros(1u << i, len);
	for (int k = 0; k < 4; k++)
		for (uint32_t n = 0; n < 256; n++) {
			uint32_t v = 0;

			for (int b = 0; b < 8; b++)
				if (n & (1u << b))
					v ^= basis[8 * k + b];
			shift[k][n] = v;
		}
}

static void build_tables(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		sw_table[0][n] = c;
	}
	/* sw_table[k][n]: byte n followed by k zero bytes. */
	for (uint32_t n = 0; n < 256; n++)
		for (int k = 1; k < 8; k++)
			sw_table[k][n] =
			    sw_table[0][sw_table[k - 1][n] & 0xff] ^ (sw_table[k - 1][n] >> 8);
	build_shift(shift_long, LONG_BLOCK);
	build_shift(shift_short, SHORT_BLOCK);
	__builtin_cpu_init();
	have_hw = __builtin_cpu_supports("sse4.2");
	/* Release: a reader that sees tables_ready also sees the tables. */
	atomic_store_explicit(&tables_ready, 1, memory_order_release);
}

__attribute__((constructor)) static void crc32c_ctor(void)
{
	pthread_once(&tables_once, build_tables);
}

/* Other constructors may run before ours; they pay one pthread_once. */
static inline void ensure_tables(void)
{
	if (leap_unlikely(!atomic_load_explicit(&tables_ready, memory_order_acquire)))
		pthread_once(&tables_once, build_tables);
}

static inline uint32_t crc_shift(uint32_t shift[4][256], uint32_t crc)
{
	return shift[0][crc & 0xff] ^ shift[1][(crc >> 8) & 0xff] ^ shift[2][(crc >> 16) & 0xff] ^
	       shift[3][crc >> 24];
}

static uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (; len && ((uintptr_t)p & 7); len--)
		crc = sw_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	for (; len >= 8; len -= 8, p += 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		w ^= crc;
		crc = sw_table[7][w & 0xff] ^ sw_table[6][(w >> 8) & 0xff] ^
		      sw_table[5][(w >> 16) & 0xff] ^ sw_table[4][(w >> 24) & 0xff] ^
		      sw_table[3][(w >> 32) & 0xff] ^ sw_table[2][(w >> 40) & 0xff] ^
		      sw_table[1][(w >> 48) & 0xff] ^ sw_table[0][w >> 56];
	}
	for (; len; len--)
		crc = sw_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t w;

	memcpy(&w, p, 8);
	return w;
}

/*
 * Three streams over consecutive blocks of `blk` bytes: stream 1 and 2 start
 * from a zero register, and the result is ((c0 << blk) ^ c1) << blk) ^ c2,
 * "<<" being the zero-append shift.
 */
#define CRC_3WAY(blk, shift)                                                                       \
	while (len >= 3 * (blk)) {                                                                 \
		uint64_t c1 = 0, c2 = 0;                                                           \
		const uint8_t *end = p + (blk);                                                    \
		do {                                                                               \
			c0 = __builtin_ia32_crc32di(c0, load64(p));                                \
			c1 = __builtin_ia32_crc32di(c1, load64(p + (blk)));                        \
			c2 = __builtin_ia32_crc32di(c2, load64(p + 2 * (blk)));                    \
			p += 8;                                                                    \
		} while (p < end);                                                                 \
		c0 = crc_shift(shift, (uint32_t)c0) ^ c1;                                          \
		c0 = crc_shift(shift, (uint32_t)c0) ^ c2;                                          \
		p += 2 * (blk);                                                                    \
		len -= 3 * (blk);                                                                  \
	}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *buf,
							    size_t len)
{
	const uint8_t *p = buf;
	uint64_t c0 = crc;

	for (; len && ((uintptr_t)p & 7); len--)
		c0 = __builtin_ia32_crc32qi((uint32_t)c0, *p++);
	CRC_3WAY(LONG_BLOCK, shift_long)
	CRC_3WAY(SHORT_BLOCK, shift_short)
	for (; len >= 8; len -= 8, p += 8)
		c0 = __builtin_ia32_crc32di(c0, load64(p));
	for (; len; len--)
		c0 = __builtin_ia32_crc32qi((uint32_t)c0, *p++);
	return (uint32_t)c0;
}

static inline uint32_t crc32c_raw(uint32_t crc, const void *buf, size_t len)
{
	return have_hw ? crc32c_hw(crc, buf, len) : crc32c_sw(crc, buf, len);
}

uint32_t leap_crc32c(uint32_t crc, const void *buf, size_t len)
{
	ensure_tables();
	return ~crc32c_raw(~crc, buf, len);
}

uint32_t leap_crc32c_iov(uint32_t crc, const struct iovec *iov, int iovcnt)
{
	ensure_tables();
	crc = ~crc;
	for (int i = 0; i < iovcnt; i++)
		crc = crc32c_raw(crc, iov[i].iov_base, iov[i].iov_len);
	return ~crc;
}

int leap_crc32c_hw_available(void)
{
	ensure_tables();
	return have_hw;
}
