// SPDX-License-Identifier: BSD-3-Clause
/*
 * The fault backend and the I/O timeouts it exists to test: a healthy
 * fault bdev is its base byte for byte; each rule fails exactly the I/O it
 * names (op, LBA range, one in N) with the status asked for; a delay holds
 * I/O at least that long and its timer wakes a sleeping channel; a hang
 * holds I/O until the rule is cleared, after which it reaches the base; an
 * io_timeout_ms aborts a held I/O and the caller gets the timeout status;
 * the control method refuses bad rules with the field named; the config
 * round-trips.
 */
#include <poll.h>

#include "test_bdev_helpers.h"

LEAP_BDEV_MODULE_USE(leap_bdev_mem_ops);
LEAP_BDEV_MODULE_USE(leap_bdev_fault_ops);

#define MB (1024 * 1024)

static struct leap_bdev *mk_mem(uint64_t size)
{
	struct leap_bdev *b = NULL;

	t_create(
	    json_pack("{s:s, s:s, s:I}", "name", t_name(), "type", "mem", "size", (json_int_t)size),
	    &b);
	return b;
}

static struct leap_bdev *mk_fault(struct leap_bdev *base, uint32_t timeout_ms)
{
	struct leap_bdev *b = NULL;
	json_t *p =
	    json_pack("{s:s, s:s, s:s}", "name", t_name(), "type", "fault", "base", base->name);

	if (timeout_ms)
		json_object_set_new(p, "io_timeout_ms", json_integer(timeout_ms));
	t_create(p, &b);
	return b;
}

/* bdev_fault_set from JSON text: 0, or -errno with t_err.msg. */
static int set(struct leap_bdev *f, const char *rule)
{
	json_error_t jerr;
	json_t *p = json_loads(rule, 0, &jerr), *res = NULL;
	int rc;

	if (!p)
		T_FAIL("bad JSON in the test: %s", jerr.text);
	json_object_set_new(p, "name", json_string(f->name));
	rc = leap_bdev_method_call("bdev_fault_set", p, &res, &t_err);
	json_decref(p);
	json_decref(res);
	return rc;
}

static void destroy2(struct leap_bdev *f, struct leap_bdev *base)
{
	T_ASSERT_EQ(leap_bdev_destroy(f), 0);
	T_ASSERT_EQ(leap_bdev_destroy(base), 0);
}

static void test_passthrough(void)
{
	struct leap_bdev *m = mk_mem(4 * MB), *f = mk_fault(m, 0);
	struct leap_bdev_channel *ch, *mch;
	uint8_t *buf = abuf(64 * 1024), *back = abuf(64 * 1024);

	T_ASSERT(m && f);
	T_ASSERT_EQ(f->size, m->size);
	T_ASSERT_EQ(f->block_size, m->block_size);
	/* The base is held: it cannot be deleted under the fault bdev. */
	T_ASSERT_EQ(leap_bdev_destroy(m), -EBUSY);
	T_ASSERT_EQ(leap_bdev_channel_open(f, &ch), 0);
	T_ASSERT_EQ(leap_bdev_channel_open(m, &mch), 0);
	pattern_fill(buf, 64 * 1024, 4096, 7);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 4096, buf, 64 * 1024, 4), 0);
	T_ASSERT_EQ(t_io(mch, LEAP_BDEV_OP_READ, 4096, back, 64 * 1024, 1), 0);
	T_ASSERT(pattern_check(back, 64 * 1024, 4096, 7));
	memset(back, 0, 64 * 1024);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 4096, back, 64 * 1024, 2), 0);
	T_ASSERT(pattern_check(back, 64 * 1024, 4096, 7));
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_FLUSH, 0, NULL, 0, 0), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE_ZEROES, 4096, NULL, 4096, 0), 0);
	T_ASSERT_EQ(t_io(mch, LEAP_BDEV_OP_READ, 4096, back, 4096, 1), 0);
	T_ASSERT(all_zero(back, 4096));
	T_ASSERT_EQ(ch->stats.submitted, 4);
	T_ASSERT_EQ(ch->stats.completed, 4);
	T_ASSERT_EQ(ch->inflight, 0);
	leap_bdev_channel_close(ch);
	leap_bdev_channel_close(mch);
	destroy2(f, m);
	free(buf);
	free(back);
}

static void test_fail_ops_and_status(void)
{
	struct leap_bdev *m = mk_mem(MB), *f = mk_fault(m, 0);
	struct leap_bdev_channel *ch;
	uint8_t *buf = abuf(4096);

	T_ASSERT_EQ(leap_bdev_channel_open(f, &ch), 0);
	T_ASSERT_EQ(set(f, "{\"ops\":\"w\",\"action\":\"fail\"}"), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 0, buf, 4096, 1),
		    NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULTS));
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE_ZEROES, 0, NULL, 4096, 0),
		    NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULTS));
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, buf, 4096, 1), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_FLUSH, 0, NULL, 0, 0), 0);
	T_ASSERT_EQ(set(f, "{\"ops\":\"rf\",\"action\":\"fail\",\"status\":6}"), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, buf, 4096, 1), 6);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_FLUSH, 0, NULL, 0, 0), 6);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 0, buf, 4096, 1), 0);
	T_ASSERT_EQ(set(f, "{\"ops\":\"r\",\"action\":\"fail\"}"), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, buf, 4096, 1),
		    NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_UNRECOVERED_READ_ERROR));
	/* Healed. */
	T_ASSERT_EQ(set(f, "{\"clear\":true}"), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, buf, 4096, 1), 0);
	T_ASSERT_EQ(ch->stats.errors, 5);
	leap_bdev_channel_close(ch);
	destroy2(f, m);
	free(buf);
}

static void test_one_in_n_and_range(void)
{
	struct leap_bdev *m = mk_mem(MB), *f = mk_fault(m, 0);
	struct leap_bdev_channel *ch;
	uint8_t *buf = abuf(8192);
	int failed = 0;

	T_ASSERT_EQ(leap_bdev_channel_open(f, &ch), 0);
	T_ASSERT_EQ(set(f, "{\"action\":\"fail\",\"every\":3}"), 0);
	for (int i = 1; i <= 12; i++) {
		int st = t_io(ch, i % 2 ? LEAP_BDEV_OP_WRITE : LEAP_BDEV_OP_READ, 0, buf, 512, 1);

		T_ASSERT(st >= 0);
		/* Exactly the 3rd, 6th, 9th and 12th matching I/O. */
		T_ASSERT_EQ(st != 0, i % 3 == 0);
		failed += st != 0;
	}
	T_ASSERT_EQ(failed, 4);

	/* Blocks [16, 24): an I/O touching one block of it fails, its neighbours do not. */
	T_ASSERT_EQ(set(f, "{\"action\":\"fail\",\"lba\":16,\"lba_count\":8}"), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 8 * 512, buf, 8 * 512, 1), 0);
	T_ASSERT(t_io(ch, LEAP_BDEV_OP_WRITE, 9 * 512, buf, 8 * 512, 1) != 0);
	T_ASSERT(t_io(ch, LEAP_BDEV_OP_READ, 23 * 512, buf, 512, 1) != 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 24 * 512, buf, 8192, 1), 0);
	/* lba_count 0: from lba to the end. */
	T_ASSERT_EQ(set(f, "{\"action\":\"fail\",\"lba\":2040}"), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 2039 * 512, buf, 512, 1), 0);
	T_ASSERT(t_io(ch, LEAP_BDEV_OP_WRITE, 2047 * 512, buf, 512, 1) != 0);
	leap_bdev_channel_close(ch);
	destroy2(f, m);
	free(buf);
}

static void test_delay_and_wake(void)
{
	struct leap_bdev *m = mk_mem(MB), *f = mk_fault(m, 0);
	struct leap_bdev_channel *ch;
	uint8_t *buf = abuf(4096);
	struct pollfd pfd;
	struct tio t;
	uint64_t t0;

	T_ASSERT_EQ(leap_bdev_channel_open(f, &ch), 0);
	T_ASSERT_EQ(set(f, "{\"ops\":\"r\",\"delay_us\":20000}"), 0);
	t0 = t_now_ns();
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, buf, 4096, 1), 0);
	T_ASSERT(t_now_ns() - t0 >= 20000000ull);
	/* Writes are not in the rule: no delay (generously under it). */
	t0 = t_now_ns();
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 0, buf, 4096, 1), 0);
	T_ASSERT(t_now_ns() - t0 < 20000000ull);

	/* Asleep with a delayed read: the wake fd fires when it falls due. */
	tio_init(&t, LEAP_BDEV_OP_READ, 0, buf, 4096, 1);
	T_ASSERT_EQ(leap_bdev_submit(ch, &t.io), 0);
	leap_bdev_poll(ch);
	T_ASSERT(leap_bdev_channel_sleep_prepare(ch));
	pfd = (struct pollfd){ .fd = leap_bdev_channel_wake_fd(ch), .events = POLLIN };
	t0 = t_now_ns();
	T_ASSERT_EQ(poll(&pfd, 1, 5000), 1);
	T_ASSERT(t_now_ns() - t0 < 1000000000ull);
	leap_bdev_channel_sleep_done(ch);
	T_ASSERT_EQ(t_wait(ch, &t.calls, 1), 1);
	T_ASSERT_EQ(t.status, 0);
	leap_bdev_channel_close(ch);
	destroy2(f, m);
	free(buf);
}

static void test_hang_then_heal(void)
{
	struct leap_bdev *m = mk_mem(MB), *f = mk_fault(m, 0);
	struct leap_bdev_channel *ch, *mch;
	uint8_t *buf = abuf(4096), *back = abuf(4096);
	struct tio t;
	uint64_t end;

	T_ASSERT_EQ(leap_bdev_channel_open(f, &ch), 0);
	T_ASSERT_EQ(leap_bdev_channel_open(m, &mch), 0);
	T_ASSERT_EQ(set(f, "{\"ops\":\"w\",\"action\":\"hang\"}"), 0);
	pattern_fill(buf, 4096, 8192, 3);
	tio_init(&t, LEAP_BDEV_OP_WRITE, 8192, buf, 4096, 1);
	T_ASSERT_EQ(leap_bdev_submit(ch, &t.io), 0);
	end = t_now_ns() + 50000000ull;
	while (t_now_ns() < end)
		leap_bdev_poll(ch);
	T_ASSERT_EQ(t.calls, 0);
	T_ASSERT_EQ(ch->inflight, 1);
	/* Nothing to wake for: the channel may sleep with the I/O held. */
	T_ASSERT(leap_bdev_channel_sleep_prepare(ch));
	leap_bdev_channel_sleep_done(ch);
	T_ASSERT_EQ(t_io(mch, LEAP_BDEV_OP_READ, 8192, back, 4096, 1), 0);
	T_ASSERT(all_zero(back, 4096));
	/* Healed: the held write reaches the base and completes. */
	T_ASSERT_EQ(set(f, "{}"), 0);
	T_ASSERT_EQ(t_wait(ch, &t.calls, 1), 1);
	T_ASSERT_EQ(t.status, 0);
	T_ASSERT_EQ(t_io(mch, LEAP_BDEV_OP_READ, 8192, back, 4096, 1), 0);
	T_ASSERT(pattern_check(back, 4096, 8192, 3));
	leap_bdev_channel_close(ch);
	leap_bdev_channel_close(mch);
	destroy2(f, m);
	free(buf);
	free(back);
}

/* A hung device with io_timeout_ms: the caller gets the timeout status, not a hang. */
static void test_timeout_aborts_hung_io(void)
{
	struct leap_bdev *m = mk_mem(MB), *f = mk_fault(m, 100);
	struct leap_bdev_channel *ch;
	uint8_t *buf = abuf(4096);
	struct tio t[3];
	struct pollfd pfd;
	json_t *cfg;
	uint64_t t0;

	T_ASSERT_EQ(f->io_timeout_ms, 100);
	cfg = leap_bdev_config(f);
	T_ASSERT_EQ(json_integer_value(json_object_get(cfg, "io_timeout_ms")), 100);
	json_decref(cfg);
	T_ASSERT_EQ(leap_bdev_channel_open(f, &ch), 0);
	T_ASSERT_EQ(set(f, "{\"ops\":\"r\",\"action\":\"hang\"}"), 0);
	t0 = t_now_ns();
	for (int i = 0; i < 3; i++) {
		tio_init(&t[i], i == 1 ? LEAP_BDEV_OP_WRITE : LEAP_BDEV_OP_READ, 0, buf, 4096, 1);
		T_ASSERT_EQ(leap_bdev_submit(ch, &t[i].io), 0);
	}
	/* The write is not held: it completes now, while the reads wait. */
	T_ASSERT_EQ(t_wait(ch, &t[1].calls, 1), 1);
	T_ASSERT_EQ(t[1].status, 0);
	T_ASSERT_EQ(t[0].calls + t[2].calls, 0);
	/* Asleep, the timer wakes the channel at the deadline. */
	T_ASSERT(leap_bdev_channel_sleep_prepare(ch));
	pfd = (struct pollfd){ .fd = leap_bdev_channel_wake_fd(ch), .events = POLLIN };
	T_ASSERT_EQ(poll(&pfd, 1, 5000), 1);
	leap_bdev_channel_sleep_done(ch);
	T_ASSERT_EQ(t_wait(ch, &t[0].calls, 1), 1);
	T_ASSERT_EQ(t_wait(ch, &t[2].calls, 1), 1);
	T_ASSERT(t_now_ns() - t0 >= 100000000ull);
	T_ASSERT_EQ(t[0].status, LEAP_BDEV_STATUS_TIMEOUT);
	T_ASSERT_EQ(t[2].status, LEAP_BDEV_STATUS_TIMEOUT);
	T_ASSERT_EQ(ch->stats.timeouts, 2);
	T_ASSERT_EQ(ch->stats.aborts, 2);
	T_ASSERT_EQ(ch->inflight, 0);
	T_ASSERT(ch->tmo_head == NULL);
	/* Healthy I/O on the same channel is tracked and untracked without a timeout. */
	T_ASSERT_EQ(set(f, "{\"clear\":true}"), 0);
	for (int i = 0; i < 100; i++)
		T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, buf, 4096, 1), 0);
	T_ASSERT_EQ(ch->stats.timeouts, 2);
	T_ASSERT(ch->tmo_head == NULL);
	leap_bdev_channel_close(ch);
	destroy2(f, m);
	free(buf);
}

static void test_set_errors(void)
{
	static const struct {
		const char *rule, *msg;
	} cases[] = {
		{ "{\"ops\":\"rx\"}", "invalid params: 'ops' is a set of r (reads), w (writes), f "
				      "(flushes), got 'rx'" },
		{ "{\"action\":\"explode\"}",
		  "invalid params: 'action' must be none, fail or hang, got 'explode'" },
		{ "{\"status\":6}", "invalid params: 'status' needs action 'fail'" },
		{ "{\"action\":\"fail\",\"every\":0}",
		  "invalid params: 'every' must be in [1, 4294967295], got 0" },
		{ "{\"action\":\"fail\",\"lba\":2048}",
		  "invalid params: blocks [2048, +0) are beyond the bdev's 2048" },
		{ "{\"action\":\"fail\",\"lba\":2000,\"lba_count\":49}",
		  "invalid params: blocks [2000, +49) are beyond the bdev's 2048" },
		{ "{\"clear\":true,\"action\":\"fail\"}",
		  "invalid params: 'clear' takes no other rule key" },
		{ "{\"bogus\":1}", "invalid params: unknown field 'bogus'" },
	};
	struct leap_bdev *m = mk_mem(MB), *f = mk_fault(m, 0);
	json_t *p, *res = NULL;

	for (size_t i = 0; i < LEAP_ARRAY_SIZE(cases); i++) {
		T_ASSERT_EQ(set(f, cases[i].rule), -EINVAL);
		T_ASSERT_STR_EQ(t_err.msg, cases[i].msg);
	}
	/* The method names its bdev, and only a fault bdev. */
	p = json_pack("{s:s}", "name", m->name);
	T_ASSERT_EQ(leap_bdev_method_call("bdev_fault_set", p, &res, &t_err), -EINVAL);
	json_decref(p);
	p = json_pack("{s:s}", "name", "nope");
	T_ASSERT_EQ(leap_bdev_method_call("bdev_fault_set", p, &res, &t_err), -ENOENT);
	T_ASSERT_EQ(leap_bdev_method_call("bdev_fault_frobnicate", p, &res, &t_err), -ENOSYS);
	json_decref(p);
	/* Create-time refusals. */
	T_ASSERT_EQ(
	    t_create(json_pack("{s:s, s:s, s:s}", "name", "fx", "type", "fault", "base", "missing"),
		     NULL),
	    -EINVAL);
	T_ASSERT_STR_EQ(t_err.msg, "invalid params: 'base' bdev 'missing' not found");
	T_ASSERT_EQ(t_create(json_pack("{s:s, s:s, s:s, s:s}", "name", "fx", "type", "fault",
				       "base", m->name, "action", "melt"),
			     NULL),
		    -EINVAL);
	/* A refused creation leaves the base unreferenced. */
	T_ASSERT_EQ(m->refs, 1);
	destroy2(f, m);
}

static void test_config_round_trip(void)
{
	struct leap_bdev *m = mk_mem(MB), *f = mk_fault(m, 0), *g = NULL;
	json_t *cfg, *cfg2;

	T_ASSERT_EQ(set(f, "{\"ops\":\"wf\",\"action\":\"fail\",\"every\":5,\"lba\":8,"
			   "\"lba_count\":16,\"status\":641,\"delay_us\":300}"),
		    0);
	cfg = leap_bdev_config(f);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(cfg, "base")), m->name);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(cfg, "ops")), "wf");
	T_ASSERT_EQ(json_integer_value(json_object_get(cfg, "every")), 5);
	json_object_set_new(cfg, "name", json_string("again"));
	T_ASSERT_EQ(t_create(json_incref(cfg), &g), 0);
	cfg2 = leap_bdev_config(g);
	json_object_set_new(cfg2, "name", json_string("again"));
	T_ASSERT(json_equal(cfg, cfg2));
	json_decref(cfg);
	json_decref(cfg2);
	T_ASSERT_EQ(leap_bdev_destroy(g), 0);
	destroy2(f, m);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_passthrough),	   TAP_CASE(test_fail_ops_and_status),
		TAP_CASE(test_one_in_n_and_range), TAP_CASE(test_delay_and_wake),
		TAP_CASE(test_hang_then_heal),	   TAP_CASE(test_timeout_aborts_hung_io),
		TAP_CASE(test_set_errors),	   TAP_CASE(test_config_round_trip),
	};

	leap_log_set_level(LEAP_LOG_ERROR);
	return tap_run(cases, TAP_N(cases));
}
