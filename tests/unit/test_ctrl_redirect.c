// SPDX-License-Identifier: BSD-3-Clause
/*
 * A policy redirect's first command to a backend on a real reactor: the
 * target's channel opens on a helper thread (a slow open, standing in for a
 * network backend's connect), the reactor keeps serving messages meanwhile,
 * the parked commands then run in arrival order against the target, and a
 * failed open fails its parked commands with Internal Device Error.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "test_ctrl_helpers.h"

enum { N = 8, OPEN_DELAY_US = 100000 };

static struct leap_reactor *reactor;
static struct leap_poller *poller;
static struct leap_bdev *m1;
static struct leap_bdev_ops m1_ops;
static int (*real_open)(struct leap_bdev *bdev, struct leap_bdev_channel **out);
static pthread_t opener;
static _Atomic uint64_t open_done_ns, ping_ns;
static _Atomic int open_fail, submitted;
static bool opening_seen, no_cqe_seen;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Slow, like a connect; records where it ran. */
static int slow_open(struct leap_bdev *bdev, struct leap_bdev_channel **out)
{
	int rc;

	opener = pthread_self();
	usleep(OPEN_DELAY_US);
	rc = atomic_load(&open_fail) ? -ECONNREFUSED : real_open(bdev, out);
	atomic_store(&open_done_ns, now_ns());
	return rc;
}

static uint16_t redirect_to_m1(struct leap_req *req, void *arg)
{
	(void)arg;
	req->rt_bdev_id = m1->id;
	return LEAP_HOOK_RET_CONTINUE;
}

static int ctrl_poll(void *arg)
{
	return leap_ctrl_poll(arg);
}

static const struct leap_poller_ops ctrl_poller_ops = { .poll = ctrl_poll };

static uint64_t bufs;

/* Reactor: N writes (slba i, seed i), then what the controller looks like right after. */
static void submit_msg(void *arg)
{
	(void)arg;
	for (uint32_t i = 0; i < N; i++) {
		struct nvme_sqe s = rw_sqe(NVME_OPC_WRITE, 1, i, 1, bufs + (uint64_t)i * PG, 512);

		s.cid = (uint16_t)(0x200 + i);
		submit(1, &s);
	}
	opening_seen = ctrl->rchan[0].opening && ctrl->rchan[0].ch == NULL;
	no_cqe_seen = __atomic_load_n(&ft.ncqe, __ATOMIC_RELAXED) == 0;
	atomic_store(&submitted, 1);
}

static void ping_msg(void *arg)
{
	(void)arg;
	atomic_store(&ping_ns, now_ns());
}

static void poller_msg(void *arg)
{
	(void)arg;
	leap_poller_register(reactor, &ctrl_poller_ops, ctrl, -1, &poller);
}

static void unpoll_msg(void *arg)
{
	(void)arg;
	leap_poller_unregister(poller);
}

static bool wait_ncqe(uint32_t n)
{
	for (uint64_t end = now_ns() + 10000000000ull; now_ns() < end; sched_yield())
		if (__atomic_load_n(&ft.ncqe, __ATOMIC_ACQUIRE) >= n)
			return true;
	return false;
}

static void redirect_setup(bool fail)
{
	struct leap_reactor_opts ro = { .cpu = -1, .idle_sleep_us = 100 };
	json_t *bp;

	setup();
	create_qpair(1);
	bp = json_pack("{s:s, s:s, s:i}", "type", "mem", "name", "m1", "size", 1 << 20);
	T_ASSERT_EQ(leap_bdev_create_wait(bp, &m1, NULL), 0);
	json_decref(bp);
	m1_ops = *m1->ops;
	real_open = m1_ops.channel_open;
	m1_ops.channel_open = slow_open;
	m1->ops = &m1_ops;
	ctrl->hook_submit = redirect_to_m1;
	atomic_store(&open_fail, fail);
	atomic_store(&open_done_ns, 0);
	atomic_store(&ping_ns, 0);
	atomic_store(&submitted, 0);
	bufs = talloc(N);
	for (uint32_t i = 0; i < N; i++)
		fill(bufs + (uint64_t)i * PG, 512, (uint8_t)(0x30 + i));
	ft.ncqe = 0;
	T_ASSERT_EQ(leap_reactor_create(&ro, &reactor), 0);
	T_ASSERT_EQ(leap_reactor_start(reactor), 0);
	T_ASSERT_EQ(leap_reactor_send_msg(reactor, poller_msg, NULL), 0);
	T_ASSERT_EQ(leap_reactor_send_msg(reactor, submit_msg, NULL), 0);
	while (!atomic_load(&submitted))
		sched_yield();
	T_ASSERT_EQ(leap_reactor_send_msg(reactor, ping_msg, NULL), 0);
	T_ASSERT(wait_ncqe(N));
	T_ASSERT_EQ(leap_reactor_send_msg(reactor, unpoll_msg, NULL), 0);
	leap_reactor_stop(reactor); /* joined: the controller is the test thread's again */
}

static void redirect_teardown(void)
{
	leap_reactor_destroy(reactor);
	reactor = NULL;
	ctrl->hook_submit = NULL;
	leap_ctrl_channels_close(ctrl);
	T_ASSERT_EQ(m1->refs, 0);
	T_ASSERT_EQ(leap_bdev_destroy(m1), 0);
	teardown();
}

static void test_redirect_target_opens_off_the_reactor(void)
{
	uint64_t r;

	redirect_setup(false);
	T_ASSERT(opening_seen);
	T_ASSERT(no_cqe_seen);
	/* The reactor served a message while the open was still sleeping. */
	T_ASSERT(atomic_load(&ping_ns) != 0);
	T_ASSERT(atomic_load(&ping_ns) < atomic_load(&open_done_ns));
	T_ASSERT(!pthread_equal(opener, pthread_self()));
	T_ASSERT(ctrl->rchan[0].ch != NULL);
	/* Parked commands ran in arrival order, each successfully. */
	for (uint32_t i = 0; i < N; i++) {
		T_ASSERT_EQ(ft.cqes[i].cid, 0x200 + i);
		T_ASSERT_OK(&ft.cqes[i]);
	}
	/* The data is on m1 (read through the redirect), not on m0. */
	r = talloc(1);
	for (uint32_t i = 0; i < N; i++) {
		T_ASSERT_OK(io(NVME_OPC_READ, 1, i, 1, r));
		T_ASSERT_MEM_EQ(lp(r), lp(bufs + (uint64_t)i * PG), 512);
	}
	ctrl->hook_submit = NULL;
	T_ASSERT_OK(io(NVME_OPC_READ, 1, 0, 1, r));
	T_ASSERT(all_bytes(lp(r), 512, 0));
	redirect_teardown();
}

static void test_redirect_open_failure_fails_parked_commands(void)
{
	uint64_t r;

	redirect_setup(true);
	T_ASSERT(opening_seen);
	for (uint32_t i = 0; i < N; i++)
		T_ASSERT_STATUS(&ft.cqes[i], NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
	T_ASSERT(ctrl->rchan[0].failed);
	/* Later commands fail fast, without another attempt. */
	atomic_store(&open_done_ns, 0);
	r = talloc(1);
	T_ASSERT_STATUS(io(NVME_OPC_READ, 1, 0, 1, r), NVME_SCT_GENERIC,
			NVME_SC_INTERNAL_DEVICE_ERROR);
	T_ASSERT_EQ(atomic_load(&open_done_ns), 0);
	T_ASSERT_EQ(leap_ctrl_inflight(ctrl), 0);
	redirect_teardown();
}

static void quiet(enum leap_log_level l, const char *s, const char *f, va_list ap, void *c)
{
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_redirect_target_opens_off_the_reactor),
		TAP_CASE(test_redirect_open_failure_fails_parked_commands),
	};

	leap_log_set_callback(quiet, NULL);
	return tap_run(cases, TAP_N(cases));
}
