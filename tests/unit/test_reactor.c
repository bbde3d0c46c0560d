// SPDX-License-Identifier: BSD-3-Clause
/*
 * Reactor: pollers run on the pinned reactor thread; 1M messages from two
 * other threads each arrive exactly once and in per-sender order; a sleeping
 * reactor wakes for a message and for a poller's eventfd (with a sleep
 * timeout far beyond the test guard, so a lost wake-up fails instead of
 * being hidden by the timeout); a poller waiting on a device (LEAP_POLL_WAIT)
 * sleeps after io_sleep_us and an extra watched fd wakes it; a poller that
 * asks to be woken (LEAP_POLL_NOTIFY) sleeps at once, unless another wants
 * polling; sleep_prepare
 * can veto a sleep; timed
 * pollers run while the reactor sleeps; stop runs what was queued and
 * joins; register/unregister rules. No assertion depends on timing.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "leapio/log.h"
#include "core/reactor.h"
#include "tap.h"

#define GUARD_NS (20ull * 1000000000ull)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Spin (yielding) until *v >= want or the guard expires; returns the last value. */
static uint64_t wait_ge(_Atomic uint64_t *v, uint64_t want)
{
	uint64_t end = now_ns() + GUARD_NS, x;

	while ((x = atomic_load(v)) < want && now_ns() < end)
		sched_yield();
	return x;
}

static struct leap_reactor *mk(int cpu, uint32_t idle_us, uint32_t timeout_ms, uint32_t ring)
{
	struct leap_reactor_opts o = {
		.cpu = cpu,
		.idle_sleep_us = idle_us,
		.sleep_timeout_ms = timeout_ms,
		.msg_ring_size = ring,
		.name = "test-reactor",
	};
	struct leap_reactor *r = NULL;

	if (leap_reactor_create(&o, &r))
		return NULL;
	return r;
}

static int test_cpu(void)
{
	return sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0;
}

/* ---- pinning and identity ---------------------------------------------- */

struct where {
	_Atomic uint64_t calls;
	int cpu;
	struct leap_reactor *self;
	pthread_t thread;
};

static int where_poll(void *arg)
{
	struct where *w = arg;

	w->cpu = sched_getcpu();
	w->self = leap_reactor_self();
	w->thread = pthread_self();
	atomic_fetch_add(&w->calls, 1);
	return LEAP_POLL_IDLE;
}

static void test_pollers_run_on_pinned_thread(void)
{
	static const struct leap_poller_ops ops = { .poll = where_poll };
	struct leap_reactor *r = mk(test_cpu(), 0, 0, 0), *r2 = mk(-1, 0, 0, 0);
	struct where w = { 0 };
	struct leap_reactor_stats st;
	char name[32] = "";

	T_ASSERT(r && r2);
	T_ASSERT(leap_reactor_id(r2) != leap_reactor_id(r));
	T_ASSERT_EQ(leap_poller_register(r, &ops, &w, -1, NULL), 0);
	T_ASSERT_EQ(leap_reactor_start(r), 0);
	T_ASSERT_EQ(leap_reactor_start(r), -EALREADY);
	T_ASSERT(wait_ge(&w.calls, 1000) >= 1000);
	pthread_getname_np(w.thread, name, sizeof(name));
	leap_reactor_stop(r);
	T_ASSERT_EQ(w.cpu, test_cpu());
	T_ASSERT(w.self == r);
	T_ASSERT(!pthread_equal(w.thread, pthread_self()));
	T_ASSERT_STR_EQ(name, "test-reactor");
	T_ASSERT(leap_reactor_self() == NULL);
	leap_reactor_get_stats(r, &st);
	T_ASSERT(st.iterations >= 1000);
	T_ASSERT(st.iterations >= atomic_load(&w.calls));
	leap_reactor_destroy(r);
	leap_reactor_destroy(r2);
	T_ASSERT_EQ(leap_reactor_create(&(struct leap_reactor_opts){ .cpu = 4096 }, &r), -EINVAL);
	T_ASSERT_EQ(
	    leap_reactor_create(&(struct leap_reactor_opts){ .cpu = -1, .msg_ring_size = 100 }, &r),
	    -EINVAL);
}

/* ---- messages ------------------------------------------------------------ */

enum { NPROD = 2, PER_PROD = 500000 };

struct msg_state {
	struct leap_reactor *r;
	uint64_t next[NPROD]; /* reactor thread only */
	_Atomic uint64_t delivered;
	_Atomic uint64_t out_of_order, wrong_thread;
	_Atomic uint64_t eagain;
};

static struct msg_state ms;

static void count_msg(void *arg)
{
	uintptr_t v = (uintptr_t)arg;
	unsigned int prod = (unsigned int)(v >> 32);
	uint64_t seq = v & 0xffffffffu;

	if (leap_reactor_self() != ms.r)
		atomic_fetch_add(&ms.wrong_thread, 1);
	if (prod >= NPROD || seq != ms.next[prod])
		atomic_fetch_add(&ms.out_of_order, 1);
	else
		ms.next[prod]++;
	atomic_fetch_add(&ms.delivered, 1);
}

static void *producer(void *arg)
{
	uintptr_t prod = (uintptr_t)arg;
	uint64_t end = now_ns() + GUARD_NS;

	for (uintptr_t i = 0; i < PER_PROD; i++) {
		int rc;

		while ((rc = leap_reactor_send_msg(ms.r, count_msg, (void *)((prod << 32) | i))) ==
		       -EAGAIN) {
			atomic_fetch_add(&ms.eagain, 1);
			/* A reactor that never drains (lost wake-up) must fail, not hang. */
			if ((ms.eagain & 1023) == 0 && now_ns() > end)
				return (void *)2;
			sched_yield();
		}
		if (rc)
			return (void *)1;
	}
	return NULL;
}

static void test_million_messages_in_order(void)
{
	pthread_t th[NPROD];
	void *ret;

	memset(&ms, 0, sizeof(ms));
	/* A small ring so producers also meet a full ring. */
	ms.r = mk(test_cpu(), 20, 60000, 256);
	T_ASSERT(ms.r);
	T_ASSERT_EQ(leap_reactor_start(ms.r), 0);
	for (uintptr_t i = 0; i < NPROD; i++)
		T_ASSERT_EQ(pthread_create(&th[i], NULL, producer, (void *)i), 0);
	for (int i = 0; i < NPROD; i++) {
		pthread_join(th[i], &ret);
		T_ASSERT(ret == NULL);
	}
	T_ASSERT_U64_EQ(wait_ge(&ms.delivered, NPROD * PER_PROD), NPROD * PER_PROD);
	leap_reactor_stop(ms.r);
	printf("# ring full %llu times\n", (unsigned long long)atomic_load(&ms.eagain));
	T_ASSERT_U64_EQ(atomic_load(&ms.delivered), NPROD * PER_PROD); /* none twice */
	T_ASSERT_U64_EQ(atomic_load(&ms.out_of_order), 0);
	T_ASSERT_U64_EQ(atomic_load(&ms.wrong_thread), 0);
	for (int i = 0; i < NPROD; i++)
		T_ASSERT_U64_EQ(ms.next[i], PER_PROD);
	leap_reactor_destroy(ms.r);
}

/*
 * Ping-pong with a reactor that sleeps after 1 µs idle and would sleep a
 * minute: each message must wake it through the eventfd. A lost wake-up
 * (the Dekker pair in send_msg/try_sleep broken) hangs one round -> fail.
 */
static _Atomic uint64_t pong;

static void pong_msg(void *arg)
{
	atomic_fetch_add(&pong, 1);
}

static void test_sleeping_reactor_wakes_for_messages(void)
{
	struct leap_reactor *r = mk(test_cpu(), 1, 60000, 0);
	struct leap_reactor_stats st;
	const uint64_t rounds = 2000;

	T_ASSERT(r);
	atomic_store(&pong, 0);
	T_ASSERT_EQ(leap_reactor_start(r), 0);
	for (uint64_t i = 1; i <= rounds; i++) {
		T_ASSERT_EQ(leap_reactor_send_msg(r, pong_msg, NULL), 0);
		T_ASSERT_U64_EQ(wait_ge(&pong, i), i);
		/* Now and then let it fall asleep before the next message. */
		if (i % 8 == 0)
			usleep(200);
	}
	leap_reactor_get_stats(r, &st);
	leap_reactor_stop(r);
	printf("# %llu sleeps, %llu wakeups\n", (unsigned long long)st.sleeps,
	       (unsigned long long)st.wakeups);
	T_ASSERT(st.sleeps > 0);
	T_ASSERT(st.wakeups > 0);
	T_ASSERT_U64_EQ(st.messages, rounds);
	leap_reactor_destroy(r);
}

/* ---- sleep and wake via a poller's eventfd ------------------------------- */

struct efd_poller {
	int efd;
	_Atomic uint64_t got, prepares, dones, polls;
	bool veto;
};

static int efd_poll(void *arg)
{
	struct efd_poller *p = arg;
	uint64_t v;

	atomic_fetch_add(&p->polls, 1);
	if (read(p->efd, &v, sizeof(v)) == sizeof(v)) {
		atomic_fetch_add(&p->got, v);
		return LEAP_POLL_BUSY;
	}
	return LEAP_POLL_IDLE;
}

static bool efd_prepare(void *arg)
{
	struct efd_poller *p = arg;

	atomic_fetch_add(&p->prepares, 1);
	return !p->veto;
}

static void efd_done(void *arg)
{
	atomic_fetch_add(&((struct efd_poller *)arg)->dones, 1);
}

static const struct leap_poller_ops efd_ops = {
	.poll = efd_poll,
	.sleep_prepare = efd_prepare,
	.sleep_done = efd_done,
};

static void test_sleep_then_eventfd_wakes(void)
{
	struct leap_reactor *r = mk(test_cpu(), 50, 60000, 0);
	struct efd_poller p = { .efd = eventfd(0, EFD_NONBLOCK) };
	struct leap_reactor_stats st;
	uint64_t v = 42, end;

	T_ASSERT(r && p.efd >= 0);
	T_ASSERT_EQ(leap_poller_register(r, &efd_ops, &p, p.efd, NULL), 0);
	T_ASSERT_EQ(leap_reactor_start(r), 0);
	/* Wait until it is asleep: prepare ran and polling stopped. */
	end = now_ns() + GUARD_NS;
	do {
		usleep(1000);
	} while (atomic_load(&p.prepares) == 0 && now_ns() < end);
	T_ASSERT(atomic_load(&p.prepares) > 0);
	T_ASSERT_EQ(write(p.efd, &v, sizeof(v)), sizeof(v));
	T_ASSERT_U64_EQ(wait_ge(&p.got, 42), 42);
	leap_reactor_stop(r);
	leap_reactor_get_stats(r, &st);
	T_ASSERT(st.sleeps >= 1);
	T_ASSERT(st.wakeups >= 1);
	T_ASSERT(st.sleep_ns > 0);
	T_ASSERT(st.busy >= 1);
	T_ASSERT_U64_EQ(atomic_load(&p.dones), atomic_load(&p.prepares));
	leap_reactor_destroy(r);
	close(p.efd);
}

static void test_sleep_prepare_can_veto(void)
{
	struct leap_reactor *r = mk(test_cpu(), 10, 60000, 0);
	struct efd_poller p = { .efd = eventfd(0, EFD_NONBLOCK), .veto = true };
	struct leap_reactor_stats st;

	T_ASSERT(r && p.efd >= 0);
	T_ASSERT_EQ(leap_poller_register(r, &efd_ops, &p, p.efd, NULL), 0);
	T_ASSERT_EQ(leap_reactor_start(r), 0);
	T_ASSERT(wait_ge(&p.prepares, 50) >= 50);
	leap_reactor_stop(r);
	leap_reactor_get_stats(r, &st);
	T_ASSERT_U64_EQ(st.sleeps, 0);
	T_ASSERT_U64_EQ(atomic_load(&p.dones), atomic_load(&p.prepares));
	T_ASSERT(atomic_load(&p.polls) > atomic_load(&p.prepares));
	leap_reactor_destroy(r);
	close(p.efd);
}

/* A poller with "device I/O" in flight whose completion arrives on a watched fd. */
struct io_poller {
	int efd;
	_Atomic uint64_t got, polls;
	atomic_bool waiting;
};

static int io_poll(void *arg)
{
	struct io_poller *p = arg;
	uint64_t v;

	atomic_fetch_add(&p->polls, 1);
	if (read(p->efd, &v, sizeof(v)) == sizeof(v)) {
		atomic_store(&p->got, v);
		atomic_store(&p->waiting, false);
		return LEAP_POLL_BUSY;
	}
	return atomic_load(&p->waiting) ? LEAP_POLL_WAIT : LEAP_POLL_IDLE;
}

static void test_io_wait_sleeps_early_and_watched_fd_wakes(void)
{
	static const struct leap_poller_ops ops = { .poll = io_poll };
	/* idle_sleep far beyond the guard: only the io_sleep_us path can sleep. */
	struct leap_reactor_opts o = {
		.cpu = test_cpu(),
		.idle_sleep_us = 100000000u,
		.io_sleep_us = 20,
		.sleep_timeout_ms = 60000,
		.name = "test-io-wait",
	};
	struct io_poller p = { .efd = eventfd(0, EFD_NONBLOCK) };
	struct leap_reactor *r = NULL;
	struct leap_poller *lp = NULL;
	struct leap_reactor_stats st;
	uint64_t v = 7, end;

	atomic_store(&p.waiting, true);
	T_ASSERT(p.efd >= 0);
	T_ASSERT_EQ(leap_reactor_create(&o, &r), 0);
	/* Registered without a wake fd; the device's fd is watched separately. */
	T_ASSERT_EQ(leap_poller_register(r, &ops, &p, -1, &lp), 0);
	T_ASSERT_EQ(leap_poller_watch_fd(lp, p.efd), 0);
	T_ASSERT_EQ(leap_poller_watch_fd(lp, p.efd), 0); /* again: already watched is fine */
	T_ASSERT_EQ(leap_poller_watch_fd(lp, -1), -EINVAL);
	T_ASSERT_EQ(leap_reactor_start(r), 0);
	end = now_ns() + GUARD_NS;
	do {
		usleep(1000);
		leap_reactor_get_stats(r, &st);
	} while (st.io_sleeps == 0 && now_ns() < end);
	T_ASSERT(st.io_sleeps >= 1);
	/* The sleep timeout is 60 s: only the watched fd can end this sleep in time. */
	T_ASSERT_EQ(write(p.efd, &v, sizeof(v)), sizeof(v));
	T_ASSERT_U64_EQ(wait_ge(&p.got, 7), 7);
	leap_reactor_stop(r);
	leap_reactor_get_stats(r, &st);
	T_ASSERT(st.wakeups >= 1);
	/* Not waiting any more and idle_sleep_us unreachable: no new io sleep. */
	T_ASSERT(!atomic_load(&p.waiting));
	leap_poller_unwatch_fd(lp, p.efd);
	leap_reactor_destroy(r);
	close(p.efd);
}

/* A poller that would rather be woken than polled (LEAP_POLL_NOTIFY), on its eventfd. */
struct notify_poller {
	int efd;
	_Atomic uint64_t got;
};

static int notify_poll(void *arg)
{
	struct notify_poller *p = arg;
	uint64_t v;

	if (read(p->efd, &v, sizeof(v)) == sizeof(v)) {
		atomic_store(&p->got, v);
		return LEAP_POLL_BUSY;
	}
	return LEAP_POLL_NOTIFY;
}

static int idle_poll(void *arg)
{
	(void)arg;
	return LEAP_POLL_IDLE;
}

static void test_notify_sleeps_at_once_unless_another_wants_polling(void)
{
	static const struct leap_poller_ops nops = { .poll = notify_poll };
	static const struct leap_poller_ops iops = { .poll = idle_poll };
	/* idle_sleep far beyond the guard: only NOTIFY (or contention) can make it sleep. */
	struct leap_reactor_opts o = {
		.cpu = test_cpu(),
		.idle_sleep_us = 100000000u,
		.sleep_timeout_ms = 60000,
		.name = "test-notify",
	};
	struct notify_poller p = { .efd = eventfd(0, EFD_NONBLOCK) };
	struct leap_reactor *r = NULL;
	struct leap_poller *lp = NULL;
	struct leap_reactor_stats st;
	uint64_t v = 5, end;

	T_ASSERT(p.efd >= 0);
	T_ASSERT_EQ(leap_reactor_create(&o, &r), 0);
	T_ASSERT_EQ(leap_poller_register(r, &nops, &p, p.efd, &lp), 0);
	T_ASSERT_EQ(leap_reactor_start(r), 0);
	end = now_ns() + GUARD_NS;
	do {
		usleep(1000);
		leap_reactor_get_stats(r, &st);
	} while (st.sleeps == 0 && now_ns() < end);
	T_ASSERT(st.sleeps >= 1);
	/* The sleep timeout is a minute: the poller's fd ends the sleep. */
	T_ASSERT_EQ(write(p.efd, &v, sizeof(v)), sizeof(v));
	T_ASSERT_U64_EQ(wait_ge(&p.got, 5), 5);
	leap_reactor_stop(r);
	leap_reactor_destroy(r);

	/* The same poller beside one that says IDLE: the idle window (unreachable) holds. */
	T_ASSERT_EQ(leap_reactor_create(&o, &r), 0);
	T_ASSERT_EQ(leap_poller_register(r, &nops, &p, p.efd, &lp), 0);
	T_ASSERT_EQ(leap_poller_register(r, &iops, NULL, -1, &lp), 0);
	T_ASSERT_EQ(leap_reactor_start(r), 0);
	end = now_ns() + GUARD_NS;
	do {
		usleep(1000);
		leap_reactor_get_stats(r, &st);
	} while (st.iterations < 20000 && !st.sleeps && now_ns() < end);
	leap_reactor_stop(r);
	leap_reactor_get_stats(r, &st);
	printf("# %llu iterations, %llu sleeps, %llu preempted\n",
	       (unsigned long long)st.iterations, (unsigned long long)st.sleeps,
	       (unsigned long long)st.preempted);
	/* Unless the scheduler took the CPU away (then it sleeps early by design). */
	T_ASSERT(st.sleeps == 0 || st.preempted > 0);
	T_ASSERT(st.iterations >= 20000 || st.sleeps);
	leap_reactor_destroy(r);
	close(p.efd);
}

/* A busy poller whose tenant shares the reactor's CPU (leap_reactor_settle()). */
static int settle_poll(void *arg)
{
	(void)arg;
	leap_reactor_settle();
	return LEAP_POLL_BUSY;
}

/*
 * An unpinned reactor that keeps hearing that its tenant shares its CPU
 * pins itself to that CPU after 20 ms (and says so in its stats); one
 * pinned by configuration never changes its affinity.
 */
static void test_unpinned_reactor_settles(void)
{
	static const struct leap_poller_ops ops = { .poll = settle_poll };
	struct leap_reactor_opts o = { .cpu = -1, .name = "test-settle" };
	struct leap_reactor *r = NULL;
	struct leap_reactor_stats st;
	uint64_t end;

	T_ASSERT_EQ(leap_reactor_create(&o, &r), 0);
	leap_reactor_get_stats(r, &st);
	T_ASSERT_EQ(st.settled_cpu, -1);
	T_ASSERT_EQ(leap_poller_register(r, &ops, NULL, -1, NULL), 0);
	T_ASSERT_EQ(leap_reactor_start(r), 0);
	end = now_ns() + GUARD_NS;
	do {
		usleep(1000);
		leap_reactor_get_stats(r, &st);
	} while (st.settled_cpu < 0 && now_ns() < end);
	T_ASSERT(st.settled_cpu >= 0);
	leap_reactor_stop(r);
	leap_reactor_destroy(r);

	o.cpu = test_cpu();
	T_ASSERT_EQ(leap_reactor_create(&o, &r), 0);
	T_ASSERT_EQ(leap_poller_register(r, &ops, NULL, -1, NULL), 0);
	T_ASSERT_EQ(leap_reactor_start(r), 0);
	usleep(100000);
	leap_reactor_get_stats(r, &st);
	T_ASSERT_EQ(st.settled_cpu, -1);
	leap_reactor_stop(r);
	leap_reactor_destroy(r);
}

/* A timed poller keeps running on schedule while the reactor sleeps. */
static int tick_poll(void *arg)
{
	atomic_fetch_add((_Atomic uint64_t *)arg, 1);
	return LEAP_POLL_IDLE;
}

static void test_timed_poller_runs_while_idle(void)
{
	static const struct leap_poller_ops ops = { .poll = tick_poll };
	struct leap_reactor *r = mk(test_cpu(), 50, 60000, 0);
	_Atomic uint64_t ticks = 0;
	struct leap_poller *p = NULL;
	struct leap_reactor_stats st;

	T_ASSERT(r);
	T_ASSERT_EQ(leap_poller_register(r, &ops, (void *)&ticks, -1, &p), 0);
	leap_poller_set_period(p, 2000);
	T_ASSERT_EQ(leap_reactor_start(r), 0);
	/* The sleep timeout is a minute: only the timer can end each sleep. */
	T_ASSERT(wait_ge(&ticks, 20) >= 20);
	leap_reactor_stop(r);
	leap_reactor_get_stats(r, &st);
	T_ASSERT(st.sleeps >= 10);
	/* Not polled every iteration: far fewer ticks than iterations. */
	T_ASSERT(atomic_load(&ticks) < st.iterations);
	leap_reactor_destroy(r);
}

/*
 * A poller with work due at a time (a deferred command) asks for a deadline
 * in sleep_prepare: the reactor sleeps (no spinning until then) and polls
 * it again at or after the deadline, although the sleep timeout is a minute.
 */
struct deadline_arg {
	struct leap_poller *p;
	uint64_t due;		 /* CLOCK_MONOTONIC ns */
	_Atomic uint64_t ran_at; /* first poll at or after due */
	_Atomic uint64_t early;	 /* polls that saw the work not yet due */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int deadline_poll(void *arg)
{
	struct deadline_arg *a = arg;
	uint64_t now = mono_ns();

	if (atomic_load(&a->ran_at))
		return LEAP_POLL_IDLE;
	if (now >= a->due) {
		atomic_store(&a->ran_at, now);
		return LEAP_POLL_BUSY;
	}
	atomic_fetch_add(&a->early, 1);
	return LEAP_POLL_IDLE;
}

static bool deadline_sleep_prepare(void *arg)
{
	struct deadline_arg *a = arg;

	if (!atomic_load(&a->ran_at))
		leap_poller_wake_at(a->p, a->due);
	return true;
}

static void test_wake_at_bounds_the_sleep(void)
{
	static const struct leap_poller_ops ops = { .poll = deadline_poll,
						    .sleep_prepare = deadline_sleep_prepare };
	struct leap_reactor *r = mk(test_cpu(), 50, 60000, 0);
	static struct deadline_arg a;
	struct leap_reactor_stats st;

	T_ASSERT(r);
	a.due = mono_ns() + 100 * 1000000ull;
	atomic_store(&a.ran_at, 0);
	atomic_store(&a.early, 0);
	T_ASSERT_EQ(leap_poller_register(r, &ops, &a, -1, &a.p), 0);
	T_ASSERT_EQ(leap_reactor_start(r), 0);
	for (int i = 0; i < 5000 && !atomic_load(&a.ran_at); i++)
		usleep(1000);
	leap_reactor_stop(r);
	leap_reactor_get_stats(r, &st);
	T_ASSERT(atomic_load(&a.ran_at) >= a.due); /* never before it was due */
	T_ASSERT(st.sleeps >= 1);
	/* It slept through the wait rather than spinning: most of the 100 ms asleep. */
	T_ASSERT(st.sleep_ns >= 50 * 1000000ull);
	leap_reactor_destroy(r);
}

/* ---- lifecycle and registration rules ------------------------------------- */

static _Atomic uint64_t ran;

static void ran_msg(void *arg)
{
	atomic_fetch_add(&ran, 1);
}

static void test_stop_runs_queued_and_joins(void)
{
	struct leap_reactor *r = mk(test_cpu(), 0, 0, 0);

	T_ASSERT(r);
	atomic_store(&ran, 0);
	/* Sent before start: they wait in the ring. */
	for (int i = 0; i < 10; i++)
		T_ASSERT_EQ(leap_reactor_send_msg(r, ran_msg, NULL), 0);
	T_ASSERT_U64_EQ(atomic_load(&ran), 0);
	T_ASSERT_EQ(leap_reactor_start(r), 0);
	for (int i = 0; i < 1000; i++)
		while (leap_reactor_send_msg(r, ran_msg, NULL) == -EAGAIN)
			sched_yield();
	leap_reactor_stop(r); /* joins: everything sent before has run */
	T_ASSERT_U64_EQ(atomic_load(&ran), 1010);
	T_ASSERT_EQ(leap_reactor_send_msg(r, ran_msg, NULL), 0);
	usleep(10000);
	T_ASSERT_U64_EQ(atomic_load(&ran), 1010); /* stopped: nothing runs */
	T_ASSERT_EQ(leap_reactor_start(r), 0);	  /* restartable */
	T_ASSERT_U64_EQ(wait_ge(&ran, 1011), 1011);
	leap_reactor_stop(r);
	leap_reactor_stop(r); /* idempotent */
	leap_reactor_destroy(r);
	leap_reactor_destroy(NULL);
}

struct selfrm {
	struct leap_poller *p;
	_Atomic uint64_t calls;
	uint64_t limit;
};

static int selfrm_poll(void *arg)
{
	struct selfrm *s = arg;

	if (atomic_fetch_add(&s->calls, 1) + 1 == s->limit)
		leap_poller_unregister(s->p);
	return LEAP_POLL_IDLE;
}

static struct leap_reactor *reg_r;
static struct selfrm reg_s;
static _Atomic int reg_rc = 1;
static struct where reg_w;

static void register_msg(void *arg)
{
	static const struct leap_poller_ops ops = { .poll = selfrm_poll };
	static const struct leap_poller_ops wops = { .poll = where_poll };
	int rc = leap_poller_register(reg_r, &ops, &reg_s, -1, &reg_s.p);

	if (!rc)
		rc = leap_poller_register(reg_r, &wops, &reg_w, -1, NULL);
	atomic_store(&reg_rc, rc);
}

static void test_register_rules(void)
{
	static const struct leap_poller_ops ops = { .poll = tick_poll };
	_Atomic uint64_t ticks = 0;
	struct leap_poller *p = NULL;
	uint64_t end;

	reg_r = mk(test_cpu(), 0, 0, 0);
	T_ASSERT(reg_r);
	reg_s.limit = 10;
	T_ASSERT_EQ(leap_poller_register(reg_r, NULL, NULL, -1, &p), -EINVAL);
	T_ASSERT_EQ(leap_reactor_start(reg_r), 0);
	/* Foreign thread while running: refused. */
	T_ASSERT_EQ(leap_poller_register(reg_r, &ops, (void *)&ticks, -1, &p), -EPERM);
	/* On the reactor, via a message: fine. */
	T_ASSERT_EQ(leap_reactor_send_msg(reg_r, register_msg, NULL), 0);
	end = now_ns() + GUARD_NS;
	while (atomic_load(&reg_rc) == 1 && now_ns() < end)
		sched_yield();
	T_ASSERT_EQ(atomic_load(&reg_rc), 0);
	/* The self-removing poller stops at exactly its limit while others go on. */
	T_ASSERT(wait_ge(&reg_w.calls, 100000) >= 100000);
	leap_reactor_stop(reg_r);
	T_ASSERT_U64_EQ(atomic_load(&reg_s.calls), 10);
	/* Stopped: the caller may manage pollers again. */
	T_ASSERT_EQ(leap_poller_register(reg_r, &ops, (void *)&ticks, -1, &p), 0);
	leap_poller_unregister(p);
	leap_reactor_destroy(reg_r);
}

static void quiet(enum leap_log_level l, const char *s, const char *f, va_list ap, void *c)
{
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_pollers_run_on_pinned_thread),
		TAP_CASE(test_million_messages_in_order),
		TAP_CASE(test_sleeping_reactor_wakes_for_messages),
		TAP_CASE(test_sleep_then_eventfd_wakes),
		TAP_CASE(test_sleep_prepare_can_veto),
		TAP_CASE(test_io_wait_sleeps_early_and_watched_fd_wakes),
		TAP_CASE(test_notify_sleeps_at_once_unless_another_wants_polling),
		TAP_CASE(test_unpinned_reactor_settles),
		TAP_CASE(test_timed_poller_runs_while_idle),
		TAP_CASE(test_wake_at_bounds_the_sleep),
		TAP_CASE(test_stop_runs_queued_and_joins),
		TAP_CASE(test_register_rules),
	};

	leap_log_set_callback(quiet, NULL);
	return tap_run(cases, TAP_N(cases));
}
