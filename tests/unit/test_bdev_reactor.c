// SPDX-License-Identifier: BSD-3-Clause
/*
 * A bdev channel run as a reactor poller through leap_bdev_poller_ops, the
 * way leapd drives backends: I/O is submitted from a message and from
 * callbacks on the reactor thread, the reactor falls asleep while the
 * device works (idle_sleep_us is tiny, the sleep timeout a minute, so only
 * the completion can wake it in time), and all data arrives intact. Also a
 * channel opened on the helper thread for a caller that must not block.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "core/reactor.h"
#include "test_bdev_helpers.h"

LEAP_BDEV_MODULE_USE(leap_bdev_uring_ops);

enum { CHAIN = 64, IOSZ = 1 << 20 };

struct chain_ctx {
	struct leap_reactor *r;
	struct leap_bdev_channel *ch;
	struct leap_poller *poller;
	struct tio t;
	uint8_t *buf;
	int reg_rc, submit_rc;
	int left, fails;
	bool wrong_thread;
	_Atomic int finished;
};

static struct chain_ctx C;

static void chain_cb(struct leap_bdev_io *io, uint16_t status)
{
	if (leap_reactor_self() != C.r)
		C.wrong_thread = true;
	if (status)
		C.fails++;
	if (--C.left == 0) {
		atomic_store(&C.finished, 1);
		return;
	}
	io->offset = (uint64_t)(CHAIN - C.left) * IOSZ;
	C.t.iov[0].iov_base = C.buf + io->offset;
	if (leap_bdev_submit(C.ch, io))
		C.fails++;
}

static void start_msg(void *arg)
{
	C.reg_rc = leap_poller_register(C.r, &leap_bdev_poller_ops, C.ch,
					leap_bdev_channel_wake_fd(C.ch), &C.poller);
	tio_init(&C.t, LEAP_BDEV_OP_WRITE, 0, C.buf, IOSZ, 1);
	C.t.io.cb = chain_cb;
	C.submit_rc = leap_bdev_submit(C.ch, &C.t.io);
}

static void stop_msg(void *arg)
{
	leap_poller_unregister(C.poller);
}

static void test_channel_as_poller_sleeps_with_io_in_flight(void)
{
	struct leap_reactor_opts o = {
		.cpu = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0,
		.idle_sleep_us = 5,
		.sleep_timeout_ms = 60000,
	};
	struct leap_bdev *b = NULL;
	const char *path = t_path("glue.img");
	struct leap_reactor_stats st;
	uint8_t *r = abuf(CHAIN * IOSZ);
	uint64_t end;

	memset(&C, 0, sizeof(C));
	C.left = CHAIN;
	C.buf = abuf(CHAIN * IOSZ);
	T_ASSERT(C.buf && r && path);
	pattern_fill(C.buf, CHAIN * IOSZ, 0, 17);
	T_ASSERT_EQ(t_create(json_pack("{s:s, s:s, s:s, s:i}", "type", "uring", "name", t_name(),
				       "path", path, "size", CHAIN * IOSZ),
			     &b),
		    0);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &C.ch), 0);
	T_ASSERT_EQ(leap_reactor_create(&o, &C.r), 0);
	T_ASSERT_EQ(leap_reactor_start(C.r), 0);
	T_ASSERT_EQ(leap_reactor_send_msg(C.r, start_msg, NULL), 0);
	end = t_now_ns() + 2 * GUARD_NS;
	while (!atomic_load(&C.finished) && t_now_ns() < end)
		sched_yield();
	T_ASSERT_EQ(atomic_load(&C.finished), 1);
	T_ASSERT_EQ(leap_reactor_send_msg(C.r, stop_msg, NULL), 0);
	leap_reactor_stop(C.r); /* joined: the channel is ours again */
	leap_reactor_get_stats(C.r, &st);
	T_ASSERT_EQ(C.reg_rc, 0);
	T_ASSERT_EQ(C.submit_rc, 0);
	T_ASSERT_EQ(C.fails, 0);
	T_ASSERT(!C.wrong_thread);
	T_ASSERT_U64_EQ(C.ch->stats.completed, CHAIN);
	printf("# reactor slept %llu times during %d I/Os, %llu wake-ups\n",
	       (unsigned long long)st.sleeps, CHAIN, (unsigned long long)st.wakeups);
	T_ASSERT(st.sleeps > 0);
	T_ASSERT_EQ(t_io(C.ch, LEAP_BDEV_OP_READ, 0, r, CHAIN * IOSZ, 8), 0);
	T_ASSERT(pattern_check(r, CHAIN * IOSZ, 0, 17));
	leap_reactor_destroy(C.r);
	leap_bdev_channel_close(C.ch);
	unlink(path);
	T_ASSERT_EQ(leap_bdev_destroy(b), 0);
	free(C.buf);
	free(r);
}

struct async_open {
	pthread_t caller, opener;
	struct leap_bdev_channel *ch;
	int rc;
	_Atomic int done;
};

static void async_opened(void *arg, int rc, struct leap_bdev_channel *ch)
{
	struct async_open *a = arg;

	a->opener = pthread_self();
	a->rc = rc;
	a->ch = ch;
	atomic_store(&a->done, 1);
}

/* The open runs on another thread, and its channel works where it is handed. */
static void test_channel_open_async(void)
{
	struct async_open a = { .caller = pthread_self(), .rc = 1 };
	const char *path = t_path("async.img");
	struct leap_bdev *b = NULL;
	uint8_t *buf = abuf(4096);
	uint64_t end;

	T_ASSERT(path && buf);
	T_ASSERT_EQ(t_create(json_pack("{s:s, s:s, s:s, s:i}", "type", "uring", "name", t_name(),
				       "path", path, "size", 1 << 20),
			     &b),
		    0);
	T_ASSERT_EQ(leap_bdev_channel_open_async(b, async_opened, &a), 0);
	end = t_now_ns() + GUARD_NS;
	while (!atomic_load(&a.done) && t_now_ns() < end)
		sched_yield();
	T_ASSERT_EQ(atomic_load(&a.done), 1);
	T_ASSERT_EQ(a.rc, 0);
	T_ASSERT(!pthread_equal(a.opener, a.caller));
	T_ASSERT(a.ch && a.ch->bdev == b);
	pattern_fill(buf, 4096, 8192, 3);
	T_ASSERT_EQ(t_io(a.ch, LEAP_BDEV_OP_WRITE, 8192, buf, 4096, 1), 0);
	memset(buf, 0, 4096);
	T_ASSERT_EQ(t_io(a.ch, LEAP_BDEV_OP_READ, 8192, buf, 4096, 1), 0);
	T_ASSERT(pattern_check(buf, 4096, 8192, 3));
	leap_bdev_channel_close(a.ch);
	T_ASSERT_EQ(leap_bdev_destroy(b), 0);
	unlink(path);
	free(buf);
}

static void quiet(enum leap_log_level l, const char *s, const char *f, va_list ap, void *c)
{
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_channel_as_poller_sleeps_with_io_in_flight),
		TAP_CASE(test_channel_open_async),
	};

	if (!t_dir()) {
		printf("1..0 # SKIP no filesystem with O_DIRECT under /var/tmp, /tmp or build\n");
		return 77;
	}
	leap_log_set_callback(quiet, NULL);
	return tap_run(cases, TAP_N(cases));
}
