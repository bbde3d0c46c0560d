// SPDX-License-Identifier: BSD-3-Clause
/*
 * The mirror backend: the write-intent bitmap's word arithmetic; the leg
 * state machine driven by real failures (a fault leg failing writes,
 * reads, hanging past a timeout): the caller sees success, the leg goes
 * FAULTY, its bitmap marks exactly the regions it missed, the last in-sync
 * leg is never failed; re-adding the healed leg copies only the marked
 * regions and leaves the legs byte-identical, also while writes keep
 * coming; remove/add/resync refusals; both read policies; the config
 * round-trips, a degraded leg included. The .c files are included to reach
 * the bitmap helpers and the mirror's state.
 */
#include <pthread.h>

#include "test_bdev_helpers.h"
#include "backend/mirror/mirror.c"
#include "backend/mirror/mirror_ctl.c"
#include "backend/mirror/mirror_resync.c"

LEAP_BDEV_MODULE_USE(leap_bdev_mem_ops);
LEAP_BDEV_MODULE_USE(leap_bdev_fault_ops);
LEAP_BDEV_MODULE_USE(leap_bdev_stripe_ops);

#define MB (1024 * 1024)

static uint64_t rnd_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* ---- bitmap ----------------------------------------------------------------------- */

static void test_bitmap(void)
{
	uint64_t bm[4] = { 0 };

	bm_set_range(bm, 3, 3);
	T_ASSERT_EQ(bm[0], 1ull << 3);
	bm_set_range(bm, 60, 70);
	T_ASSERT_EQ(bm[0], (1ull << 3) | (0xfull << 60));
	T_ASSERT_EQ(bm[1], 0x7f);
	bm_set_range(bm, 128, 191); /* one whole word */
	T_ASSERT_EQ(bm[2], ~0ull);
	T_ASSERT_EQ(bm_count(bm, 4), 1 + 11 + 64);
	T_ASSERT_EQ(bm_next(bm, 256, 0), 3);
	T_ASSERT_EQ(bm_next(bm, 256, 4), 60);
	T_ASSERT_EQ(bm_next(bm, 256, 71), 128);
	T_ASSERT_EQ(bm_next(bm, 256, 192), 256);
	T_ASSERT_EQ(bm_next(bm, 150, 150), 150); /* bit 150 set, nregions bound */
	T_ASSERT(bm_test(bm, 64));
	bm_clear(bm, 64);
	T_ASSERT(!bm_test(bm, 64));
	T_ASSERT_EQ(bm_count(bm, 4), 75);
	bm_set_range(bm, 0, 255);
	T_ASSERT_EQ(bm_count(bm, 4), 256);
	/* Setting what is set changes nothing. */
	bm_set_range(bm, 10, 200);
	T_ASSERT_EQ(bm_count(bm, 4), 256);
}

/* ---- fixtures ------------------------------------------------------------------------ */

static struct leap_bdev *mk_mem(const char *name, uint64_t size)
{
	struct leap_bdev *b = NULL;

	t_create(
	    json_pack("{s:s, s:s, s:I}", "name", name, "type", "mem", "size", (json_int_t)size),
	    &b);
	return b;
}

static struct leap_bdev *mk_fault(const char *name, const char *base, uint32_t timeout_ms)
{
	struct leap_bdev *b = NULL;
	json_t *p = json_pack("{s:s, s:s, s:s}", "name", name, "type", "fault", "base", base);

	if (timeout_ms)
		json_object_set_new(p, "io_timeout_ms", json_integer(timeout_ms));
	t_create(p, &b);
	return b;
}

/* Method call from JSON text (name added): 0 or -errno with t_err.msg. */
static int call(const char *method, const char *bdev, const char *text)
{
	json_error_t jerr;
	json_t *p = json_loads(text, 0, &jerr), *res = NULL;
	int rc;

	if (!p)
		T_FAIL("bad JSON in the test: %s", jerr.text);
	json_object_set_new(p, "name", json_string(bdev));
	rc = leap_bdev_method_call(method, p, &res, &t_err);
	json_decref(p);
	json_decref(res);
	return rc;
}

static const char *leg_state_of(struct leap_bdev *mb, uint32_t i)
{
	return mirror_leg_state_name(leg_state((struct mirror_bdev *)mb, i));
}

static uint64_t dirty(struct leap_bdev *mb, uint32_t i)
{
	struct mirror_bdev *m = (struct mirror_bdev *)mb;

	return bm_count(m->legs[i].bitmap, m->bm_words);
}

/* Poll ch until leg i of mb is ACTIVE (the resync thread finished), bounded. */
static bool wait_active(struct leap_bdev *mb, struct leap_bdev_channel *ch, uint32_t i)
{
	uint64_t end = t_now_ns() + GUARD_NS;

	while (t_now_ns() < end) {
		if (leg_state((struct mirror_bdev *)mb, i) == LEG_ACTIVE)
			return true;
		if (ch)
			leap_bdev_poll(ch);
		usleep(100);
	}
	return false;
}

/* Whole-device compare of two bdevs through their own channels. */
static bool same_data(struct leap_bdev *a, struct leap_bdev *b, uint64_t size)
{
	struct leap_bdev_channel *ca, *cb;
	uint8_t *x = abuf(MB), *y = abuf(MB);
	bool same = true;

	if (leap_bdev_channel_open(a, &ca) || leap_bdev_channel_open(b, &cb))
		return false;
	for (uint64_t off = 0; off < size && same; off += MB) {
		uint64_t len = size - off < MB ? size - off : MB;

		same = t_io(ca, LEAP_BDEV_OP_READ, off, x, len, 1) == 0 &&
		       t_io(cb, LEAP_BDEV_OP_READ, off, y, len, 1) == 0 && !memcmp(x, y, len);
	}
	leap_bdev_channel_close(ca);
	leap_bdev_channel_close(cb);
	free(x);
	free(y);
	return same;
}

/*
 * m0 (mem) and f1 = fault over m1 (mem), mirrored as "mir" with 64 KiB
 * regions over 4 MiB: 64 regions.
 */
struct fix {
	struct leap_bdev *m0, *m1, *f1, *mir;
	struct leap_bdev_channel *ch;
};

static void fix_up(struct fix *f, const char *extra)
{
	char text[512];
	json_error_t jerr;

	f->m0 = mk_mem("m0", 4 * MB);
	f->m1 = mk_mem("m1", 4 * MB);
	f->f1 = mk_fault("f1", "m1", 0);
	T_ASSERT(f->m0 && f->m1 && f->f1);
	snprintf(text, sizeof(text),
		 "{\"name\":\"mir\",\"type\":\"mirror\",\"legs\":[\"m0\",\"f1\"],"
		 "\"region_size\":65536%s}",
		 extra ? extra : "");
	T_ASSERT_EQ(t_create(json_loads(text, 0, &jerr), &f->mir), 0);
	T_ASSERT_EQ(leap_bdev_channel_open(f->mir, &f->ch), 0);
}

static void fix_down(struct fix *f)
{
	leap_bdev_channel_close(f->ch);
	T_ASSERT_EQ(leap_bdev_destroy(f->mir), 0);
	T_ASSERT_EQ(leap_bdev_destroy(f->f1), 0);
	T_ASSERT_EQ(leap_bdev_destroy(f->m1), 0);
	T_ASSERT_EQ(leap_bdev_destroy(f->m0), 0);
}

/* ---- the state machine under failures --------------------------------------------------- */

static void test_write_failure_degrades_then_bitmap_resync(void)
{
	struct fix f;
	uint8_t *buf = abuf(128 * 1024);
	struct mirror_bdev *m;

	fix_up(&f, NULL);
	m = (struct mirror_bdev *)f.mir;
	T_ASSERT_EQ(f.mir->size, 4 * MB);
	T_ASSERT_EQ(m->nregions, 64);
	/* In sync to begin with: a pattern over everything. */
	for (uint64_t off = 0; off < 4 * MB; off += 128 * 1024) {
		pattern_fill(buf, 128 * 1024, off, 1);
		T_ASSERT_EQ(t_io(f.ch, LEAP_BDEV_OP_WRITE, off, buf, 128 * 1024, 2), 0);
	}
	T_ASSERT(same_data(f.m0, f.m1, 4 * MB));

	/* f1 fails every write: the tenant sees success, the leg goes faulty. */
	T_ASSERT_EQ(call("bdev_fault_set", "f1", "{\"ops\":\"w\",\"action\":\"fail\"}"), 0);
	pattern_fill(buf, 4096, 65536 + 512, 2);
	T_ASSERT_EQ(t_io(f.ch, LEAP_BDEV_OP_WRITE, 65536 + 512, buf, 4096, 1), 0);
	T_ASSERT_STR_EQ(leg_state_of(f.mir, 1), "faulty");
	T_ASSERT_STR_EQ(leg_state_of(f.mir, 0), "active");
	T_ASSERT_EQ(dirty(f.mir, 1), 1);
	T_ASSERT(bm_test(m->legs[1].bitmap, 1));
	T_ASSERT_EQ(m->legs[1].write_errors, 1);
	/* Degraded: writes skip the leg and mark regions (a write across 2 regions marks 2). */
	pattern_fill(buf, 8192, 10 * 65536 - 4096, 3);
	T_ASSERT_EQ(t_io(f.ch, LEAP_BDEV_OP_WRITE, 10 * 65536 - 4096, buf, 8192, 1), 0);
	T_ASSERT_EQ(t_io(f.ch, LEAP_BDEV_OP_WRITE_ZEROES, 40 * 65536, NULL, 3 * 65536, 0), 0);
	T_ASSERT_EQ(dirty(f.mir, 1), 1 + 2 + 3);
	T_ASSERT_EQ(m->legs[1].write_errors, 1); /* not sent to the faulty leg */
	/* Reads come from the good leg and see the new data. */
	T_ASSERT_EQ(t_io(f.ch, LEAP_BDEV_OP_READ, 10 * 65536 - 4096, buf, 8192, 1), 0);
	T_ASSERT(pattern_check(buf, 8192, 10 * 65536 - 4096, 3));
	T_ASSERT_EQ(f.ch->stats.errors, 0);
	T_ASSERT(!same_data(f.m0, f.m1, 4 * MB));

	/* Re-adding a leg still failing is allowed; the resync's first write fails it again. */
	T_ASSERT_EQ(call("bdev_fault_set", "f1", "{\"clear\":true}"), 0);
	T_ASSERT_EQ(call("bdev_mirror_add_leg", "mir", "{\"leg\":\"f1\"}"), 0);
	T_ASSERT(wait_active(f.mir, f.ch, 1));
	/* Exactly the 6 marked regions were copied, and the legs are one again. */
	T_ASSERT_EQ(m->legs[1].resync_regions, 6);
	T_ASSERT_EQ(m->legs[1].resync_bytes, 6 * 65536);
	T_ASSERT_EQ(dirty(f.mir, 1), 0);
	T_ASSERT(same_data(f.m0, f.m1, 4 * MB));
	T_ASSERT_EQ(__atomic_load_n(&m->rl_on, __ATOMIC_RELAXED) == 0 || m->thread_running, 1);
	/* Both serve reads again: round robin over many reads reaches both legs. */
	T_ASSERT_EQ(f.ch->stats.errors, 0);
	fix_down(&f);
	free(buf);
}

static void test_read_error_retried_on_other_leg(void)
{
	struct fix f;
	uint8_t *buf = abuf(16384);
	struct mirror_bdev *m;

	fix_up(&f, ",\"read_policy\":\"round_robin\"");
	m = (struct mirror_bdev *)f.mir;
	pattern_fill(buf, 16384, 0, 9);
	T_ASSERT_EQ(t_io(f.ch, LEAP_BDEV_OP_WRITE, 0, buf, 16384, 1), 0);
	T_ASSERT_EQ(call("bdev_fault_set", "f1", "{\"ops\":\"r\",\"action\":\"fail\"}"), 0);
	/* Round robin: one of the first two reads lands on f1, fails, and is served by m0. */
	for (int i = 0; i < 4; i++) {
		memset(buf, 0, 16384);
		T_ASSERT_EQ(t_io(f.ch, LEAP_BDEV_OP_READ, 0, buf, 16384, 2), 0);
		T_ASSERT(pattern_check(buf, 16384, 0, 9));
	}
	T_ASSERT_EQ(m->read_retries, 1);
	T_ASSERT_EQ(m->legs[1].read_errors, 1);
	T_ASSERT_STR_EQ(leg_state_of(f.mir, 1), "faulty");
	T_ASSERT_EQ(dirty(f.mir, 1), 0); /* a read error marks nothing: the data is the same */
	T_ASSERT_EQ(f.ch->stats.errors, 0);
	fix_down(&f);
	free(buf);
}

static void test_last_leg_never_failed(void)
{
	struct fix f;
	struct leap_bdev *f0 = NULL, *mir2 = NULL;
	struct leap_bdev_channel *ch;
	uint8_t *buf = abuf(4096);

	fix_up(&f, NULL);
	/* One leg down: a failure of the other is the tenant's error, the leg stays. */
	T_ASSERT_EQ(call("bdev_fault_set", "f1", "{\"ops\":\"w\",\"action\":\"fail\"}"), 0);
	T_ASSERT_EQ(t_io(f.ch, LEAP_BDEV_OP_WRITE, 0, buf, 4096, 1), 0);
	T_ASSERT_STR_EQ(leg_state_of(f.mir, 1), "faulty");
	T_ASSERT_EQ(call("bdev_mirror_remove_leg", "mir", "{\"leg\":\"m0\"}"), -EBUSY);
	T_ASSERT_STR_EQ(t_err.msg, "leg 'm0' is the mirror's last in-sync leg");
	fix_down(&f);

	/* Both legs failing the same write: an error, and both stay in. */
	f.m0 = mk_mem("m0", MB);
	f.m1 = mk_mem("m1", MB);
	f0 = mk_fault("f0", "m0", 0);
	f.f1 = mk_fault("f1", "m1", 0);
	T_ASSERT_EQ(t_create(json_pack("{s:s,s:s,s:[s,s]}", "name", "mir2", "type", "mirror",
				       "legs", "f0", "f1"),
			     &mir2),
		    0);
	T_ASSERT_EQ(leap_bdev_channel_open(mir2, &ch), 0);
	T_ASSERT_EQ(call("bdev_fault_set", "f0", "{\"ops\":\"w\",\"action\":\"fail\"}"), 0);
	T_ASSERT_EQ(call("bdev_fault_set", "f1", "{\"ops\":\"w\",\"action\":\"fail\"}"), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 0, buf, 4096, 1),
		    NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULTS));
	T_ASSERT_STR_EQ(leg_state_of(mir2, 0), "active");
	T_ASSERT_STR_EQ(leg_state_of(mir2, 1), "active");
	leap_bdev_channel_close(ch);
	T_ASSERT_EQ(leap_bdev_destroy(mir2), 0);
	T_ASSERT_EQ(leap_bdev_destroy(f0), 0);
	T_ASSERT_EQ(leap_bdev_destroy(f.f1), 0);
	T_ASSERT_EQ(leap_bdev_destroy(f.m0), 0);
	T_ASSERT_EQ(leap_bdev_destroy(f.m1), 0);
	free(buf);
}

/* A hung leg with a timeout: writes still succeed (after the timeout), the leg goes. */
static void test_hung_leg_times_out(void)
{
	struct leap_bdev *m0 = mk_mem("m0", MB), *m1 = mk_mem("m1", MB);
	struct leap_bdev *f1 = mk_fault("f1", "m1", 100), *mir = NULL;
	struct leap_bdev_channel *ch;
	uint8_t *buf = abuf(4096);
	uint64_t t0;

	T_ASSERT_EQ(t_create(json_pack("{s:s,s:s,s:[s,s]}", "name", "mir", "type", "mirror", "legs",
				       "m0", "f1"),
			     &mir),
		    0);
	T_ASSERT_EQ(leap_bdev_channel_open(mir, &ch), 0);
	T_ASSERT_EQ(call("bdev_fault_set", "f1", "{\"action\":\"hang\"}"), 0);
	t0 = t_now_ns();
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 0, buf, 4096, 1), 0);
	T_ASSERT(t_now_ns() - t0 >= 100000000ull);
	T_ASSERT_STR_EQ(leg_state_of(mir, 1), "faulty");
	T_ASSERT_EQ(dirty(mir, 1), 1);
	/* Now degraded: no waiting at all. */
	t0 = t_now_ns();
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 0, buf, 4096, 1), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, buf, 4096, 1), 0);
	T_ASSERT(t_now_ns() - t0 < 100000000ull);
	leap_bdev_channel_close(ch);
	T_ASSERT_EQ(leap_bdev_destroy(mir), 0);
	T_ASSERT_EQ(leap_bdev_destroy(f1), 0);
	T_ASSERT_EQ(leap_bdev_destroy(m1), 0);
	T_ASSERT_EQ(leap_bdev_destroy(m0), 0);
	free(buf);
}

/*
 * A leg that refuses a write inside submit() (a stripe leg takes at most
 * 64 iovecs): the other leg's kid is still counted, the write succeeds
 * once, the refusing leg goes faulty.
 */
static void test_leg_refusing_in_submit(void)
{
	struct leap_bdev *m0 = mk_mem("m0", MB), *s0 = mk_mem("s0", MB), *s1 = mk_mem("s1", MB);
	struct leap_bdev *st = NULL, *mir = NULL;
	struct leap_bdev_channel *ch;
	static struct iovec iov[65];
	uint8_t *buf = abuf(65 * 512);
	struct tio t;

	T_ASSERT_EQ(t_create(json_pack("{s:s,s:s,s:[s,s]}", "name", "st", "type", "stripe", "legs",
				       "s0", "s1"),
			     &st),
		    0);
	T_ASSERT_EQ(t_create(json_pack("{s:s,s:s,s:[s,s]}", "name", "mir", "type", "mirror", "legs",
				       "st", "m0"),
			     &mir),
		    0);
	T_ASSERT_EQ(leap_bdev_channel_open(mir, &ch), 0);
	for (int i = 0; i < 65; i++)
		iov[i] = (struct iovec){ buf + i * 512, 512 };
	tio_init(&t, LEAP_BDEV_OP_WRITE, 0, NULL, 65 * 512, 0);
	t.io.iov = iov;
	t.io.iovcnt = 65;
	T_ASSERT_EQ(leap_bdev_submit(ch, &t.io), 0);
	T_ASSERT_EQ(t_wait(ch, &t.calls, 1), 1);
	for (int i = 0; i < 10; i++)
		leap_bdev_poll(ch);
	T_ASSERT_EQ(t.calls, 1);
	T_ASSERT_EQ(t.status, 0);
	T_ASSERT_STR_EQ(leg_state_of(mir, 0), "faulty");
	T_ASSERT_EQ(ch->inflight, 0);
	leap_bdev_channel_close(ch);
	T_ASSERT_EQ(leap_bdev_destroy(mir), 0);
	T_ASSERT_EQ(leap_bdev_destroy(st), 0);
	T_ASSERT_EQ(leap_bdev_destroy(s0), 0);
	T_ASSERT_EQ(leap_bdev_destroy(s1), 0);
	T_ASSERT_EQ(leap_bdev_destroy(m0), 0);
	free(buf);
}

/* ---- resync under load ---------------------------------------------------------------- */

/*
 * Legs out of sync everywhere (a full resync, rate-limited so it takes a
 * while) while this thread keeps writing random patterns through the
 * mirror: at the end both legs equal the reference, so no copy raced a
 * write.
 */
static void test_resync_while_writing(void)
{
	const uint64_t size = 16 * MB;
	struct leap_bdev *m0 = mk_mem("m0", size), *m1 = mk_mem("m1", size), *mir = NULL;
	struct leap_bdev_channel *ch;
	uint8_t *ref = calloc(1, size), *buf = abuf(64 * 1024);
	struct mirror_bdev *m;
	static struct tio t[32];
	uint64_t writes = 0, deferred_seen = 0;
	int inflight = 0;

	T_ASSERT_EQ(t_create(json_pack("{s:s,s:s,s:[s,s],s:i,s:i,s:i}", "name", "mir", "type",
				       "mirror", "legs", "m0", "m1", "region_size", 65536,
				       "resync_rate_mbps", 200, "resync_depth", 2),
			     &mir),
		    0);
	m = (struct mirror_bdev *)mir;
	T_ASSERT_EQ(leap_bdev_channel_open(mir, &ch), 0);
	T_ASSERT_EQ(call("bdev_mirror_resync", "mir", "{\"leg\":\"m1\",\"full\":true}"), 0);
	T_ASSERT_STR_EQ(leg_state_of(mir, 1), "resyncing");
	for (int i = 0; i < 32; i++)
		t[i].calls = 1;
	while (leg_state(m, 1) != LEG_ACTIVE) {
		for (int i = 0; i < 32; i++) {
			uint64_t len, off;

			if (t[i].calls != 1)
				continue;
			/* Each slot writes its own stripe of 4 KiB blocks: no two in flight overlap. */
			len = 4096 * (rnd() % 4 + 1);
			off = ((rnd() % (size / 4096 / 32 - 4)) * 32 + (uint64_t)i) * 4096;
			pattern_fill(buf + i * 0, len, off, (uint32_t)writes);
			memcpy(ref + off, buf, len);
			tio_init(&t[i], LEAP_BDEV_OP_WRITE, off, ref + off, len, 1);
			t[i].calls = 0;
			T_ASSERT_EQ(t_submit(ch, &t[i]), 0);
			writes++;
			inflight++;
		}
		deferred_seen += ((struct mirror_channel *)ch)->deferred_head != NULL;
		leap_bdev_poll(ch);
		for (int i = 0; i < 32; i++)
			if (t[i].calls == 1 && t[i].status != -1) {
				T_ASSERT_EQ(t[i].status, 0);
				t[i].status = -1;
			}
	}
	for (uint64_t end = t_now_ns() + GUARD_NS; ch->inflight && t_now_ns() < end;)
		leap_bdev_poll(ch);
	T_ASSERT_EQ(ch->inflight, 0);
	T_ASSERT(writes > 64); /* several rounds of writes overlapped the copy */
	T_ASSERT_EQ(ch->stats.errors, 0);
	T_ASSERT_EQ(m->legs[1].resync_regions, 256);
	T_ASSERT(same_data(m0, m1, size));
	{
		/* And equal to what was written (the writes use ref itself as their buffer). */
		struct leap_bdev_channel *c0;
		uint8_t *x = abuf(MB);

		T_ASSERT_EQ(leap_bdev_channel_open(m0, &c0), 0);
		for (uint64_t off = 0; off < size; off += MB) {
			T_ASSERT_EQ(t_io(c0, LEAP_BDEV_OP_READ, off, x, MB, 1), 0);
			T_ASSERT(memcmp(x, ref + off, MB) == 0);
		}
		leap_bdev_channel_close(c0);
		free(x);
	}
	printf("# %llu writes during the resync, %llu waited for a region being copied "
	       "(%llu polls saw one)\n",
	       (unsigned long long)writes, (unsigned long long)m->deferred_writes,
	       (unsigned long long)deferred_seen);
	leap_bdev_channel_close(ch);
	T_ASSERT_EQ(leap_bdev_destroy(mir), 0);
	T_ASSERT_EQ(leap_bdev_destroy(m1), 0);
	T_ASSERT_EQ(leap_bdev_destroy(m0), 0);
	free(ref);
	free(buf);
}

/*
 * Region locks by hand: a write to a region being copied waits, a write
 * elsewhere does not wait behind it, a later write to the same region
 * waits behind the first and both go, in order, when the copy ends.
 */
static void test_region_lock_defers_only_overlapping(void)
{
	struct fix f;
	struct mirror_bdev *m;
	struct tio w1, w2, w3;
	uint8_t *buf = abuf(12288) /* w3 writes 8 KiB from buf + 4 KiB */;

	fix_up(&f, NULL);
	m = (struct mirror_bdev *)f.mir;
	__atomic_store_n(&m->rl_on, 1, __ATOMIC_SEQ_CST);
	*lock_word(m, 5) = MIRROR_LOCK_COPY;
	tio_init(&w1, LEAP_BDEV_OP_WRITE, 5 * 65536 + 4096, buf, 4096, 1);
	tio_init(&w2, LEAP_BDEV_OP_WRITE, 9 * 65536, buf, 4096, 1);
	tio_init(&w3, LEAP_BDEV_OP_WRITE, 5 * 65536 - 4096, buf + 4096, 8192, 1); /* regions 4..5 */
	T_ASSERT_EQ(leap_bdev_submit(f.ch, &w1.io), 0);
	T_ASSERT_EQ(leap_bdev_submit(f.ch, &w2.io), 0);
	T_ASSERT_EQ(leap_bdev_submit(f.ch, &w3.io), 0);
	T_ASSERT_EQ(t_wait(f.ch, &w2.calls, 1), 1);
	for (int i = 0; i < 100; i++)
		leap_bdev_poll(f.ch);
	T_ASSERT_EQ(w1.calls + w3.calls, 0);
	T_ASSERT_EQ(m->deferred_writes, 2);
	/* The copy of region 5 ends. */
	__atomic_store_n(lock_word(m, 5), 0, __ATOMIC_RELEASE);
	T_ASSERT_EQ(t_wait(f.ch, &w3.calls, 1), 1);
	T_ASSERT_EQ(w1.calls, 1);
	T_ASSERT(w1.order < w3.order);
	T_ASSERT_EQ(w1.status | w2.status | w3.status, 0);
	/* Every reference a write took is back. */
	for (uint32_t i = 0; i < MIRROR_LOCKS; i++)
		T_ASSERT_EQ(m->rl[i], 0);
	__atomic_store_n(&m->rl_on, 0, __ATOMIC_SEQ_CST);
	fix_down(&f);
	free(buf);
}

/* ---- leg changes and refusals -------------------------------------------------------------- */

static void test_remove_and_add_legs(void)
{
	struct fix f;
	struct leap_bdev *m2 = mk_mem("m2", 4 * MB), *small = mk_mem("small", MB);
	uint8_t *buf = abuf(65536);
	struct mirror_bdev *m;

	fix_up(&f, NULL);
	m = (struct mirror_bdev *)f.mir;
	pattern_fill(buf, 65536, 0, 4);
	T_ASSERT_EQ(t_io(f.ch, LEAP_BDEV_OP_WRITE, 0, buf, 65536, 1), 0);
	T_ASSERT_EQ(call("bdev_mirror_remove_leg", "mir", "{\"leg\":\"f1\"}"), 0);
	T_ASSERT_STR_EQ(leg_state_of(f.mir, 1), "removed");
	/* The channel lets go of the leg at its next I/O; then the bdev is free. */
	T_ASSERT_EQ(t_io(f.ch, LEAP_BDEV_OP_WRITE, 65536, buf, 65536, 1), 0);
	T_ASSERT(m->legs[1].bdev == NULL);
	T_ASSERT_EQ(f.f1->refs, 0);
	T_ASSERT_EQ(dirty(f.mir, 1), 1); /* it missed region 1 */
	T_ASSERT_EQ(call("bdev_mirror_remove_leg", "mir", "{\"leg\":\"f1\"}"), -ENOENT);
	T_ASSERT_EQ(call("bdev_mirror_add_leg", "mir", "{\"leg\":\"m0\"}"), -EEXIST);
	T_ASSERT_EQ(call("bdev_mirror_add_leg", "mir", "{\"leg\":\"nope\"}"), -ENOENT);
	T_ASSERT_EQ(call("bdev_mirror_add_leg", "mir", "{\"leg\":\"small\"}"), -EINVAL);
	T_ASSERT_STR_EQ(t_err.msg,
			"invalid params: leg 'small' (1048576 bytes) is smaller than the mirror "
			"(4194304)");
	T_ASSERT_EQ(call("bdev_mirror_add_leg", "mir", "{\"leg\":\"mir\"}"), -EINVAL);
	/* A third leg, new: a full copy. The removed one comes back from its bitmap. */
	T_ASSERT_EQ(call("bdev_mirror_add_leg", "mir", "{\"leg\":\"m2\"}"), 0);
	T_ASSERT(wait_active(f.mir, f.ch, 2));
	T_ASSERT_EQ(m->legs[2].resync_regions, 64);
	T_ASSERT(same_data(f.m0, m2, 4 * MB));
	T_ASSERT_EQ(call("bdev_mirror_add_leg", "mir", "{\"leg\":\"f1\"}"), 0);
	T_ASSERT(wait_active(f.mir, f.ch, 1));
	T_ASSERT_EQ(m->legs[1].resync_regions, 1);
	T_ASSERT(same_data(f.m0, f.m1, 4 * MB));
	/* Resync refusals and a full rebuild of an in-sync leg. */
	T_ASSERT_EQ(call("bdev_mirror_resync", "mir", "{}"), -EALREADY);
	T_ASSERT_EQ(call("bdev_mirror_resync", "mir", "{\"leg\":\"m2\"}"), -EALREADY);
	T_ASSERT_EQ(call("bdev_mirror_resync", "mir", "{\"leg\":\"zz\"}"), -ENOENT);
	T_ASSERT_EQ(call("bdev_mirror_resync", "mir", "{\"leg\":\"m2\",\"full\":true}"), 0);
	T_ASSERT(wait_active(f.mir, f.ch, 2));
	T_ASSERT_EQ(m->legs[2].resync_regions, 128);
	/* Removing the legs down to one in-sync leg; the last is refused. */
	T_ASSERT_EQ(call("bdev_mirror_remove_leg", "mir", "{\"leg\":\"m2\"}"), 0);
	T_ASSERT_EQ(call("bdev_mirror_remove_leg", "mir", "{\"leg\":\"f1\"}"), 0);
	T_ASSERT_EQ(call("bdev_mirror_remove_leg", "mir", "{\"leg\":\"m0\"}"), -EBUSY);
	T_ASSERT_EQ(t_io(f.ch, LEAP_BDEV_OP_READ, 0, buf, 65536, 1), 0);
	T_ASSERT(pattern_check(buf, 65536, 0, 4));
	fix_down(&f);
	T_ASSERT_EQ(leap_bdev_destroy(m2), 0);
	T_ASSERT_EQ(leap_bdev_destroy(small), 0);
	free(buf);
}

/* ---- read policies ---------------------------------------------------------------------- */

static void test_read_policies(void)
{
	struct fix f;
	struct mirror_channel *mc;
	uint8_t *buf = abuf(4096);
	static struct tio t[64];
	uint64_t r0, r1;

	fix_up(&f, ",\"read_policy\":\"round_robin\"");
	mc = (struct mirror_channel *)f.ch;
	for (int i = 0; i < 100; i++)
		T_ASSERT_EQ(t_io(f.ch, LEAP_BDEV_OP_READ, 0, buf, 4096, 1), 0);
	r0 = mc->leg_ch[0]->stats.submitted;
	r1 = mc->leg_ch[1]->stats.submitted;
	T_ASSERT_EQ(r0 + r1, 100);
	T_ASSERT(r0 >= 49 && r1 >= 49);

	/* Least outstanding: leg 1 slow (2 ms), 64 reads at once -- most go to leg 0. */
	T_ASSERT_EQ(call("bdev_mirror_set", "mir", "{\"read_policy\":\"least_outstanding\"}"), 0);
	T_ASSERT_EQ(call("bdev_fault_set", "f1", "{\"ops\":\"r\",\"delay_us\":2000}"), 0);
	for (int round = 0; round < 10; round++) {
		for (int i = 0; i < 64; i++) {
			tio_init(&t[i], LEAP_BDEV_OP_READ, 0, buf, 4096, 1);
			T_ASSERT_EQ(t_submit(f.ch, &t[i]), 0);
			/* Completions arrive between submissions, as on a running channel. */
			leap_bdev_poll(f.ch);
		}
		for (int i = 0; i < 64; i++)
			T_ASSERT_EQ(t_wait(f.ch, &t[i].calls, 1), 1);
	}
	r0 = mc->leg_ch[0]->stats.submitted - r0;
	r1 = mc->leg_ch[1]->stats.submitted - r1;
	printf("# least outstanding, leg 1 slowed by 2 ms: %llu reads to leg 0, %llu to leg 1\n",
	       (unsigned long long)r0, (unsigned long long)r1);
	T_ASSERT_EQ(r0 + r1, 640);
	T_ASSERT(r0 > 4 * r1);
	T_ASSERT_EQ(call("bdev_mirror_set", "mir", "{\"read_policy\":\"fastest\"}"), -EINVAL);
	fix_down(&f);
	free(buf);
}

/* ---- params and config ------------------------------------------------------------------------ */

static void test_params_and_config(void)
{
	static const struct {
		const char *params, *msg;
	} cases[] = {
		{ "{\"name\":\"x\",\"type\":\"mirror\"}",
		  "invalid params: missing required field 'legs'" },
		{ "{\"name\":\"x\",\"type\":\"mirror\",\"legs\":[]}",
		  "invalid params: 'legs' must be an array of 1 to 4 bdev names (2 or more for "
		  "redundancy)" },
		{ "{\"name\":\"x\",\"type\":\"mirror\",\"legs\":[\"a\",\"b\",\"a\",\"b\",\"a\"]}",
		  "invalid params: 'legs' must be an array of 1 to 4 bdev names (2 or more for "
		  "redundancy)" },
		{ "{\"name\":\"x\",\"type\":\"mirror\",\"legs\":[\"a\",\"zz\"]}",
		  "invalid params: leg bdev 'zz' not found" },
		{ "{\"name\":\"x\",\"type\":\"mirror\",\"legs\":[\"a\",\"a\"]}",
		  "invalid params: leg 'a' given twice" },
		{ "{\"name\":\"x\",\"type\":\"mirror\",\"legs\":[\"a\",\"b4k\"]}",
		  "invalid params: leg 'b4k' has 4096-byte blocks, the mirror 512" },
		{ "{\"name\":\"x\",\"type\":\"mirror\",\"legs\":[\"a\",\"b\"],\"region_size\":"
		  "3000}",
		  "invalid params: 'region_size' must be in [4096, 1073741824], got 3000" },
		{ "{\"name\":\"x\",\"type\":\"mirror\",\"legs\":[\"a\",\"b\"],\"region_size\":"
		  "12288}",
		  "invalid params: 'region_size' must be a power of two, got 12288" },
		{ "{\"name\":\"x\",\"type\":\"mirror\",\"legs\":[\"a\",\"b\"],\"read_policy\":"
		  "\"x\"}",
		  "invalid params: 'read_policy' must be least_outstanding or round_robin, got "
		  "'x'" },
		{ "{\"name\":\"x\",\"type\":\"mirror\",\"legs\":[\"a\",\"b\"],\"degraded\":[\"c\"]"
		  "}",
		  "invalid params: degraded leg 'c' is not in 'legs'" },
		{ "{\"name\":\"x\",\"type\":\"mirror\",\"legs\":[\"a\",\"b\"],\"degraded\":[\"a\","
		  "\"b\"]}",
		  "invalid params: every leg is degraded" },
		{ "{\"name\":\"x\",\"type\":\"mirror\",\"legs\":[\"a\",\"b\"],\"size\":4194304}",
		  "invalid params: 'size' is larger than the smallest leg (2097152 bytes)" },
	};
	struct leap_bdev *a = mk_mem("a", 2 * MB), *b = mk_mem("b", 3 * MB), *x = NULL, *y = NULL;
	struct leap_bdev *b4k = NULL;
	json_t *cfg, *cfg2, *info;

	T_ASSERT_EQ(t_create(json_pack("{s:s,s:s,s:i,s:i}", "name", "b4k", "type", "mem", "size",
				       MB, "block_size", 4096),
			     &b4k),
		    0);
	for (size_t i = 0; i < LEAP_ARRAY_SIZE(cases); i++) {
		json_error_t jerr;

		T_ASSERT_EQ(t_create(json_loads(cases[i].params, 0, &jerr), NULL), -EINVAL);
		T_ASSERT_STR_EQ(t_err.msg, cases[i].msg);
	}
	T_ASSERT_EQ(a->refs, 0);
	T_ASSERT_EQ(
	    t_create(json_pack("{s:s,s:s,s:[s,s],s:[s],s:s}", "name", "x", "type", "mirror", "legs",
			       "a", "b", "degraded", "b", "read_policy", "round_robin"),
		     &x),
	    0);
	T_ASSERT_EQ(x->size, 2 * MB); /* the smaller leg */
	T_ASSERT_STR_EQ(leg_state_of(x, 1), "faulty");
	T_ASSERT_EQ(dirty(x, 1), 2);
	info = leap_bdev_info(x);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(info, "state")), "degraded");
	T_ASSERT_STR_EQ(json_string_value(json_object_get(
			    json_array_get(json_object_get(info, "legs"), 1), "state")),
			"faulty");
	json_decref(info);
	cfg = leap_bdev_config(x);
	T_ASSERT_EQ(json_array_size(json_object_get(cfg, "degraded")), 1);
	json_object_set_new(cfg, "name", json_string("y"));
	T_ASSERT_EQ(t_create(json_incref(cfg), &y), 0);
	cfg2 = leap_bdev_config(y);
	T_ASSERT(json_equal(cfg, cfg2));
	json_decref(cfg);
	json_decref(cfg2);
	T_ASSERT_EQ(leap_bdev_destroy(a), -EBUSY);
	T_ASSERT_EQ(leap_bdev_destroy(y), 0);
	T_ASSERT_EQ(leap_bdev_destroy(x), 0);
	T_ASSERT_EQ(leap_bdev_destroy(a), 0);
	T_ASSERT_EQ(leap_bdev_destroy(b), 0);
	T_ASSERT_EQ(leap_bdev_destroy(b4k), 0);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_bitmap),
		TAP_CASE(test_write_failure_degrades_then_bitmap_resync),
		TAP_CASE(test_read_error_retried_on_other_leg),
		TAP_CASE(test_last_leg_never_failed),
		TAP_CASE(test_hung_leg_times_out),
		TAP_CASE(test_leg_refusing_in_submit),
		TAP_CASE(test_resync_while_writing),
		TAP_CASE(test_region_lock_defers_only_overlapping),
		TAP_CASE(test_remove_and_add_legs),
		TAP_CASE(test_read_policies),
		TAP_CASE(test_params_and_config),
	};

	leap_log_set_level(LEAP_LOG_ERROR);
	return tap_run(cases, TAP_N(cases));
}
