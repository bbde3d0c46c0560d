// SPDX-License-Identifier: BSD-3-Clause
/*
 * The stripe backend: its split math against a brute-force model for
 * several geometries; data written through the stripe in every shape
 * (unaligned to chunks, many chunks, several iovecs) reads back through it
 * and sits on each leg exactly where the map says; Write Zeroes and
 * Deallocate clear exactly their range; Flush reaches every leg; a leg's
 * error and a leg's timeout reach the caller; bad parameters are refused
 * with the field named; the config round-trips. The .c is included to
 * reach its static helpers.
 */
#include "test_bdev_helpers.h"
#include "backend/stripe/stripe.c"

LEAP_BDEV_MODULE_USE(leap_bdev_mem_ops);
LEAP_BDEV_MODULE_USE(leap_bdev_fault_ops);

#define MB (1024 * 1024)

static uint64_t rnd_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* ---- split math ----------------------------------------------------------- */

static void test_map_and_ranges(void)
{
	for (uint32_t n = 2; n <= 5; n++) {
		for (uint32_t shift = 12; shift <= 13; shift++) {
			struct stripe_geom g = { .n = n, .shift = shift };
			uint64_t chunk = 1ull << shift, total = chunk * n * 4;

			for (uint64_t off = 0; off < total; off += 512) {
				uint64_t lo;
				uint32_t leg = stripe_map(&g, off, &lo);

				T_ASSERT_EQ(leg, (off / chunk) % n);
				T_ASSERT_EQ(lo, (off / chunk / n) * chunk + off % chunk);
			}
			for (int t = 0; t < 2000; t++) {
				uint64_t off = rnd() % (total / 512) * 512;
				uint64_t len = (rnd() % ((total - off) / 512) + 1) * 512;

				T_ASSERT_EQ(stripe_pieces(&g, off, len),
					    (off + len - 1) / chunk - off / chunk + 1);
				for (uint32_t leg = 0; leg < n; leg++) {
					uint64_t lo = 0, ll = 0, want_lo = UINT64_MAX, want_hi = 0;
					bool has = stripe_leg_range(&g, off, len, leg, &lo, &ll);

					/* Brute force: every 512-byte block of the range on this leg. */
					for (uint64_t b = off; b < off + len; b += 512) {
						uint64_t bo;

						if (stripe_map(&g, b, &bo) != leg)
							continue;
						if (bo < want_lo)
							want_lo = bo;
						if (bo + 512 > want_hi)
							want_hi = bo + 512;
					}
					T_ASSERT_EQ(has, want_lo != UINT64_MAX);
					if (!has)
						continue;
					T_ASSERT_EQ(lo, want_lo);
					T_ASSERT_EQ(ll, want_hi - want_lo);
				}
			}
		}
	}
}

static void test_iov_slice(void)
{
	char a[100], b[50], c[30];
	struct iovec in[3] = { { a, 100 }, { b, 50 }, { c, 30 } }, out[4];

	T_ASSERT_EQ(iov_slice(in, 3, 0, 180, out, 4), 3);
	T_ASSERT_EQ(iov_slice(in, 3, 90, 20, out, 4), 2);
	T_ASSERT(out[0].iov_base == a + 90 && out[0].iov_len == 10);
	T_ASSERT(out[1].iov_base == b && out[1].iov_len == 10);
	T_ASSERT_EQ(iov_slice(in, 3, 100, 50, out, 4), 1);
	T_ASSERT(out[0].iov_base == b && out[0].iov_len == 50);
	T_ASSERT_EQ(iov_slice(in, 3, 149, 31, out, 4), 2);
	T_ASSERT(out[0].iov_base == b + 49 && out[1].iov_base == c && out[1].iov_len == 30);
	T_ASSERT_EQ(iov_slice(in, 3, 10, 160, out, 2), 0); /* needs 3 entries */
	T_ASSERT_EQ(iov_slice(in, 3, 170, 20, out, 4), 0); /* runs past the end */
}

/* ---- data ---------------------------------------------------------------------- */

static struct leap_bdev *mk_mem(uint64_t size)
{
	struct leap_bdev *b = NULL;

	t_create(
	    json_pack("{s:s, s:s, s:I}", "name", t_name(), "type", "mem", "size", (json_int_t)size),
	    &b);
	return b;
}

static struct leap_bdev *mk_stripe(struct leap_bdev **legs, int n, uint32_t chunk)
{
	json_t *a = json_array();
	struct leap_bdev *b = NULL;

	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_string(legs[i]->name));
	t_create(json_pack("{s:s, s:s, s:o, s:i}", "name", t_name(), "type", "stripe", "legs", a,
			   "chunk_size", (int)chunk),
		 &b);
	return b;
}

/* Byte `off` of the stripe as its leg holds it. */
static int leg_read(struct leap_bdev_channel **lch, const struct stripe_geom *g, uint64_t off,
		    uint8_t *dst, uint64_t len)
{
	for (uint64_t pos = off; pos < off + len; pos += 512) {
		uint64_t lo;
		uint32_t leg = stripe_map(g, pos, &lo);

		if (t_io(lch[leg], LEAP_BDEV_OP_READ, lo, dst + (pos - off), 512, 1))
			return -1;
	}
	return 0;
}

static void run_data(uint32_t nlegs, uint32_t chunk)
{
	struct leap_bdev *legs[4], *s;
	struct leap_bdev_channel *ch, *lch[4];
	const uint64_t size = 2 * MB;
	uint8_t *ref = calloc(1, nlegs * size), *buf = abuf(256 * 1024), *back = abuf(256 * 1024);
	struct stripe_geom g;

	for (uint32_t i = 0; i < nlegs; i++) {
		legs[i] = mk_mem(size);
		T_ASSERT(legs[i]);
	}
	s = mk_stripe(legs, (int)nlegs, chunk);
	T_ASSERT(s);
	T_ASSERT_EQ(s->size, nlegs * size);
	g = ((struct stripe_bdev *)s)->g;
	T_ASSERT_EQ(leap_bdev_channel_open(s, &ch), 0);
	for (uint32_t i = 0; i < nlegs; i++)
		T_ASSERT_EQ(leap_bdev_channel_open(legs[i], &lch[i]), 0);

	for (int t = 0; t < 300; t++) {
		/* Lengths up to 32 chunks, offsets anywhere on a 512-byte grid. */
		uint64_t len = (rnd() % (32u * chunk / 512) + 1) * 512, off;
		int nseg = (int)(rnd() % 4) + 1;

		if (len > 256 * 1024)
			len = 256 * 1024;
		len -= len % (512u * (uint32_t)nseg);
		if (!len)
			len = 512u * (uint32_t)nseg;
		off = rnd() % ((s->size - len) / 512 + 1) * 512;
		pattern_fill(buf, len, off, (uint32_t)t);
		T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, off, buf, len, nseg), 0);
		memcpy(ref + off, buf, len);
		if (t % 10 == 0) {
			uint64_t zlen = (rnd() % (8u * chunk / 512) + 1) * 512;
			uint64_t zoff = rnd() % ((s->size - zlen) / 512 + 1) * 512;

			T_ASSERT_EQ(
			    t_io(ch, t % 20 ? LEAP_BDEV_OP_WRITE_ZEROES : LEAP_BDEV_OP_DEALLOCATE,
				 zoff, NULL, zlen, 0),
			    0);
			memset(ref + zoff, 0, zlen);
		}
	}
	/* Read back through the stripe, in other shapes than written. */
	for (uint64_t off = 0; off < s->size; off += 96 * 1024) {
		uint64_t len = s->size - off < 96 * 1024 ? s->size - off : 96 * 1024;

		T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, off, back, len, len % 3 ? 1 : 3), 0);
		T_ASSERT(memcmp(back, ref + off, len) == 0);
	}
	/* And on the legs, where the map says each block lives. */
	for (int t = 0; t < 50; t++) {
		uint64_t off = rnd() % ((s->size - 8192) / 512) * 512;

		T_ASSERT_EQ(leg_read(lch, &g, off, back, 8192), 0);
		T_ASSERT(memcmp(back, ref + off, 8192) == 0);
	}
	/* A flush is one per leg. */
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_FLUSH, 0, NULL, 0, 0), 0);
	T_ASSERT_EQ(ch->inflight, 0);
	T_ASSERT_EQ(ch->stats.errors, 0);
	T_ASSERT_EQ(((struct stripe_channel *)ch)->pool.avail, STRIPE_POOL);
	leap_bdev_channel_close(ch);
	for (uint32_t i = 0; i < nlegs; i++)
		leap_bdev_channel_close(lch[i]);
	T_ASSERT_EQ(leap_bdev_destroy(s), 0);
	for (uint32_t i = 0; i < nlegs; i++)
		T_ASSERT_EQ(leap_bdev_destroy(legs[i]), 0);
	free(ref);
	free(buf);
	free(back);
}

static void test_data_2x4k(void)
{
	run_data(2, 4096);
}

static void test_data_3x8k(void)
{
	run_data(3, 8192);
}

static void test_data_4x64k(void)
{
	run_data(4, 65536);
}

/* Many I/Os in flight at once, more pieces than a poll's worth, each exactly once. */
static void test_many_in_flight(void)
{
	struct leap_bdev *legs[2] = { mk_mem(2 * MB), mk_mem(2 * MB) },
			 *s = mk_stripe(legs, 2, 4096);
	struct leap_bdev_channel *ch;
	static struct tio t[256];
	uint8_t *buf = abuf(MB);
	int calls = 0, accepted = 0, eagain = 0;

	T_ASSERT_EQ(leap_bdev_channel_open(s, &ch), 0);
	for (int i = 0; i < 256; i++) {
		/* 16 KiB at 2 KiB past a chunk boundary: 5 pieces each. */
		tio_init(&t[i], LEAP_BDEV_OP_WRITE, (uint64_t)i * 8192 + 2048, buf, 16384, 2);
		while (leap_bdev_submit(ch, &t[i].io) == -EAGAIN) {
			eagain++;
			leap_bdev_poll(ch);
		}
		accepted++;
	}
	T_ASSERT(eagain > 0); /* 1280 pieces cannot all be out at once (1024 children) */
	for (uint64_t end = t_now_ns() + GUARD_NS; ch->inflight && t_now_ns() < end;)
		leap_bdev_poll(ch);
	for (int i = 0; i < 256; i++) {
		T_ASSERT_EQ(t[i].calls, 1);
		T_ASSERT_EQ(t[i].status, 0);
		calls += t[i].calls;
	}
	T_ASSERT_EQ(calls, accepted);
	leap_bdev_channel_close(ch);
	T_ASSERT_EQ(leap_bdev_destroy(s), 0);
	T_ASSERT_EQ(leap_bdev_destroy(legs[0]), 0);
	T_ASSERT_EQ(leap_bdev_destroy(legs[1]), 0);
	free(buf);
}

static int fault_set(struct leap_bdev *f, const char *ops, const char *action)
{
	json_t *p = json_pack("{s:s, s:s, s:s}", "name", f->name, "ops", ops, "action", action),
	       *res = NULL;
	int rc = leap_bdev_method_call("bdev_fault_set", p, &res, &t_err);

	json_decref(p);
	json_decref(res);
	return rc;
}

static void test_leg_error_and_timeout(void)
{
	struct leap_bdev *m0 = mk_mem(MB), *m1 = mk_mem(MB), *f = NULL, *legs[2], *s;
	struct leap_bdev_channel *ch;
	uint8_t *buf = abuf(16384);

	T_ASSERT_EQ(t_create(json_pack("{s:s, s:s, s:s, s:i}", "name", "sf", "type", "fault",
				       "base", m1->name, "io_timeout_ms", 50),
			     &f),
		    0);
	legs[0] = m0;
	legs[1] = f;
	s = mk_stripe(legs, 2, 4096);
	T_ASSERT_EQ(leap_bdev_channel_open(s, &ch), 0);
	T_ASSERT_EQ(fault_set(f, "w", "fail"), 0);
	/* Chunk 0 is on the good leg, chunk 1 on the failing one. */
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 0, buf, 4096, 1), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 0, buf, 8192, 1),
		    NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULTS));
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, buf, 16384, 1), 0);
	/* A hung leg: the stripe I/O ends with the leg's timeout. */
	T_ASSERT_EQ(fault_set(f, "r", "hang"), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, buf, 16384, 4), LEAP_BDEV_STATUS_TIMEOUT);
	T_ASSERT_EQ(ch->inflight, 0);
	leap_bdev_channel_close(ch);
	T_ASSERT_EQ(leap_bdev_destroy(s), 0);
	T_ASSERT_EQ(leap_bdev_destroy(f), 0);
	T_ASSERT_EQ(leap_bdev_destroy(m0), 0);
	T_ASSERT_EQ(leap_bdev_destroy(m1), 0);
	free(buf);
}

static void test_params_and_config(void)
{
	static const struct {
		const char *params, *msg;
	} cases[] = {
		{ "{\"name\":\"s\",\"type\":\"stripe\"}",
		  "invalid params: missing required field 'legs'" },
		{ "{\"name\":\"s\",\"type\":\"stripe\",\"legs\":[\"a0\"]}",
		  "invalid params: 'legs' must be an array of 2 to 16 bdev names" },
		{ "{\"name\":\"s\",\"type\":\"stripe\",\"legs\":\"a0\"}",
		  "invalid params: 'legs' must be an array of 2 to 16 bdev names" },
		{ "{\"name\":\"s\",\"type\":\"stripe\",\"legs\":[\"a0\",\"a1\"],\"chunk_size\":"
		  "12288}",
		  "invalid params: 'chunk_size' must be a power of two, got 12288" },
		{ "{\"name\":\"s\",\"type\":\"stripe\",\"legs\":[\"a0\",\"a1\"],\"chunk_size\":"
		  "2048}",
		  "invalid params: 'chunk_size' must be in [4096, 16777216], got 2048" },
		{ "{\"name\":\"s\",\"type\":\"stripe\",\"legs\":[\"a0\",\"zz\"]}",
		  "invalid params: leg bdev 'zz' not found" },
		{ "{\"name\":\"s\",\"type\":\"stripe\",\"legs\":[\"a0\",\"a0\"]}",
		  "invalid params: leg 'a0' given twice" },
		{ "{\"name\":\"s\",\"type\":\"stripe\",\"legs\":[\"a0\",\"a4k\"]}",
		  "invalid params: legs 'a0' and 'a4k' differ in block size" },
		{ "{\"name\":\"s\",\"type\":\"stripe\",\"legs\":[\"a0\",5]}",
		  "invalid params: 'legs' must be an array of bdev names" },
		{ "{\"name\":\"s\",\"type\":\"stripe\",\"legs\":[\"a0\",\"a1\"],\"chunk_size\":"
		  "2097152}",
		  "invalid params: a leg is smaller than one chunk (2097152 bytes)" },
	};
	struct leap_bdev *a0 = NULL, *a1 = NULL, *a4k = NULL, *s = NULL, *s2 = NULL;
	json_t *cfg, *cfg2;

	T_ASSERT_EQ(
	    t_create(json_pack("{s:s,s:s,s:i}", "name", "a0", "type", "mem", "size", MB), &a0), 0);
	/* A smaller leg: the stripe takes whole chunks of the smallest. */
	T_ASSERT_EQ(
	    t_create(json_pack("{s:s,s:s,s:i}", "name", "a1", "type", "mem", "size", MB - 4096),
		     &a1),
	    0);
	T_ASSERT_EQ(t_create(json_pack("{s:s,s:s,s:i,s:i}", "name", "a4k", "type", "mem", "size",
				       MB, "block_size", 4096),
			     &a4k),
		    0);
	for (size_t i = 0; i < LEAP_ARRAY_SIZE(cases); i++) {
		json_error_t jerr;

		T_ASSERT_EQ(t_create(json_loads(cases[i].params, 0, &jerr), NULL), -EINVAL);
		T_ASSERT_STR_EQ(t_err.msg, cases[i].msg);
	}
	T_ASSERT_EQ(a0->refs, 0);
	T_ASSERT_EQ(t_create(json_pack("{s:s,s:s,s:[s,s],s:i}", "name", "s", "type", "stripe",
				       "legs", "a0", "a1", "chunk_size", 65536),
			     &s),
		    0);
	T_ASSERT_EQ(s->size, 2ull * (MB - 65536));
	T_ASSERT_EQ(a0->refs, 1);
	T_ASSERT(leap_bdev_io_type_supported(s, LEAP_BDEV_OP_DEALLOCATE));
	cfg = leap_bdev_config(s);
	T_ASSERT_EQ(json_integer_value(json_object_get(cfg, "chunk_size")), 65536);
	json_object_set_new(cfg, "name", json_string("s2"));
	T_ASSERT_EQ(t_create(json_incref(cfg), &s2), 0);
	cfg2 = leap_bdev_config(s2);
	T_ASSERT(json_equal(cfg, cfg2));
	json_decref(cfg);
	json_decref(cfg2);
	T_ASSERT_EQ(leap_bdev_destroy(a0), -EBUSY);
	T_ASSERT_EQ(leap_bdev_destroy(s2), 0);
	T_ASSERT_EQ(leap_bdev_destroy(s), 0);
	T_ASSERT_EQ(leap_bdev_destroy(a0), 0);
	T_ASSERT_EQ(leap_bdev_destroy(a1), 0);
	T_ASSERT_EQ(leap_bdev_destroy(a4k), 0);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_map_and_ranges),
		TAP_CASE(test_iov_slice),
		TAP_CASE(test_data_2x4k),
		TAP_CASE(test_data_3x8k),
		TAP_CASE(test_data_4x64k),
		TAP_CASE(test_many_in_flight),
		TAP_CASE(test_leg_error_and_timeout),
		TAP_CASE(test_params_and_config),
	};

	leap_log_set_level(LEAP_LOG_ERROR);
	return tap_run(cases, TAP_N(cases));
}
