// SPDX-License-Identifier: BSD-3-Clause
/*
 * The reactor: a pinned thread that calls every registered poller in a
 * loop, runs messages other threads post to it, and sleeps in epoll when
 * nothing has happened for idle_sleep_us. Only this thread touches the
 * poller list, so pollers (queue pairs, bdev channels) need no locks.
 *
 * Messages travel through a bounded lock-free MPSC ring (Vyukov's
 * sequence-numbered slots): producers claim a slot with a CAS on the tail
 * and publish it with a release store of the slot's sequence number; the
 * reactor consumes in order. Producers write the eventfd only when the
 * reactor has announced it is going to sleep, so a busy reactor costs a
 * sender no syscall; the announcement and the sender's check form a Dekker
 * pair (see try_sleep() and leap_reactor_send_msg()).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "core/reactor.h"

#define MSG_BATCH	      64u
#define DEFAULT_IDLE_SLEEP_US 200u
#define DEFAULT_SLEEP_TIMEOUT 100u
#define DEFAULT_MSG_RING      4096u
#define EPOLL_EVENTS_PER_WAKE 16

struct msg_slot {
	/* == position + 1 when full for that position; position + size when free again */
	_Atomic uint64_t seq;
	void (*fn)(void *arg);
	void *arg;
};

/*
 * Contention: an iteration longer than CONTENDED_ITER_NS means we were
 * descheduled; for CONTENDED_HOLD_NS after that the reactor sleeps once
 * idle for CONTENDED_IDLE_NS instead of its idle window (see the loop).
 * CONTENDED_IDLE_NS is about one batch's turnaround in a tenant that runs
 * on the other CPU: long enough that the next batch usually finds us
 * awake, short enough that a descheduled tenant does not cost a CPU share
 * (hogs on both CPUs, one run each: 0 / 10 / 20 us gave 2.4 / 6.4 / 5.8 M
 * IOPS, bench/RESULTS.md). Pollers that answer LEAP_POLL_NOTIFY sleep at
 * once.
 */
#define CONTENDED_ITER_NS 200000ull
#define CONTENDED_HOLD_NS 100000000ull
#define CONTENDED_IDLE_NS 10000ull

struct leap_poller {
	struct leap_reactor *r;
	struct leap_poller_ops ops;
	void *arg;
	int wake_fd;
	bool in_epoll;
	bool removed;
	uint64_t period_ns, next_ns;
	uint64_t wake_ns; /* leap_poller_wake_at() for the sleep being prepared; 0: none */
};

struct reactor_counters {
	_Atomic uint64_t iterations, busy, sleeps, wakeups, messages;
	_Atomic uint64_t busy_ns, idle_ns, sleep_ns, io_sleeps, preempted;
};

struct leap_reactor {
	/* Producers' line: claimed positions. */
	_Atomic uint64_t msg_tail __attribute__((aligned(64)));
	/* Written by the reactor around sleeps, read by every producer. */
	_Atomic int sleeping __attribute__((aligned(64)));
	atomic_bool shutdown;
	/* The reactor's own line. */
	uint64_t msg_head __attribute__((aligned(64)));
	struct msg_slot *slots;
	uint32_t msg_mask;
	bool stop;
	bool in_iter; /* walking the poller list: unregister defers the free */
	bool dirty;   /* some poller was marked removed */

	struct leap_poller **pollers;
	uint32_t npollers, cap;

	int msg_efd, epfd;
	pthread_t thread;
	atomic_bool running;
	uint32_t id;
	int cpu;	       /* pinned to, or -1 */
	int cpu_now;	       /* sched_getcpu() at the start of this iteration */
	uint64_t iter_ns;      /* CLOCK_MONOTONIC at the start of this iteration */
	uint64_t settle_since; /* leap_reactor_settle(): sharing seen since, 0: never */
	uint64_t settle_last;  /* and last seen */
	_Atomic int settled;   /* the CPU an unpinned reactor pinned itself to, or -1 */
	uint64_t idle_sleep_ns, io_sleep_ns;
	uint32_t sleep_timeout_ms;
	char name[16];
	struct reactor_counters st;
};

static _Thread_local struct leap_reactor *tls_self;
static atomic_uint next_id;

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Single writer (the reactor thread): a relaxed load+store, no locked RMW. */
static inline void stat_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

static inline bool on_owner_thread(const struct leap_reactor *r)
{
	return !atomic_load_explicit(&r->running, memory_order_acquire) || tls_self == r;
}

/* ---- messages --------------------------------------------------------- */

int leap_reactor_send_msg(struct leap_reactor *r, void (*fn)(void *arg), void *arg)
{
	struct msg_slot *slot;
	uint64_t pos, seq;
	int64_t diff;

	if (!r || !fn)
		return -EINVAL;
	if (atomic_load_explicit(&r->shutdown, memory_order_relaxed))
		return -ESHUTDOWN;
	pos = atomic_load_explicit(&r->msg_tail, memory_order_relaxed);
	for (;;) {
		slot = &r->slots[pos & r->msg_mask];
		/*
		 * Acquire pairs with the consumer's release store of
		 * seq = pos (+ ring size) in run_msgs(): once we see the slot
		 * free, the consumer's reads of its old fn/arg are done.
		 */
		seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
		diff = (int64_t)(seq - pos);
		if (diff == 0) {
			/* Claim only; the slot's seq store below publishes the data. */
			if (atomic_compare_exchange_weak_explicit(&r->msg_tail, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed))
				break;
		} else if (diff < 0) {
			return -EAGAIN; /* the slot still holds a message one lap old: full */
		} else {
			pos = atomic_load_explicit(&r->msg_tail, memory_order_relaxed);
		}
	}
	slot->fn = fn;
	slot->arg = arg;
	/* Release pairs with the consumer's acquire load of seq: fn/arg are visible. */
	atomic_store_explicit(&slot->seq, pos + 1, memory_order_release);
	/*
	 * Dekker with try_sleep(): it stores sleeping = 1, fences, then checks
	 * the ring; we publish, fence, then check sleeping. With both fences
	 * seq_cst, at least one side sees the other's store, so a message is
	 * never left in the ring of a sleeping reactor.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&r->sleeping, memory_order_relaxed)) {
		uint64_t one = 1;

		if (write(r->msg_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			return -errno;
	}
	return 0;
}

static inline bool msg_pending(const struct leap_reactor *r)
{
	const struct msg_slot *slot = &r->slots[r->msg_head & r->msg_mask];

	/* Acquire: pairs with the producer's release store of seq. */
	return atomic_load_explicit(&slot->seq, memory_order_acquire) == r->msg_head + 1;
}

static uint32_t run_msgs(struct leap_reactor *r, uint32_t max)
{
	uint32_t n;

	for (n = 0; n < max; n++) {
		struct msg_slot *slot = &r->slots[r->msg_head & r->msg_mask];
		void (*fn)(void *arg);
		void *arg;

		/* Acquire pairs with the producer's release store: fn/arg are written. */
		if (atomic_load_explicit(&slot->seq, memory_order_acquire) != r->msg_head + 1)
			break;
		fn = slot->fn;
		arg = slot->arg;
		/*
		 * Release pairs with the producer's acquire load of seq: our
		 * reads of fn/arg happen before anyone may overwrite the slot
		 * for the next lap (position + ring size).
		 */
		atomic_store_explicit(&slot->seq, r->msg_head + r->msg_mask + 1,
				      memory_order_release);
		r->msg_head++;
		fn(arg);
	}
	if (n)
		stat_add(&r->st.messages, n);
	return n;
}

/* ---- pollers ------------------------------------------------------------ */

static void poller_free(struct leap_poller *p)
{
	if (p->in_epoll)
		epoll_ctl(p->r->epfd, EPOLL_CTL_DEL, p->wake_fd, NULL);
	free(p);
}

int leap_poller_register(struct leap_reactor *r, const struct leap_poller_ops *ops, void *arg,
			 int wake_fd, struct leap_poller **out)
{
	struct leap_poller *p;

	if (!r || !ops || !ops->poll)
		return -EINVAL;
	if (!on_owner_thread(r))
		return -EPERM;
	if (r->npollers == r->cap) {
		uint32_t cap = r->cap ? r->cap * 2 : 8;
		struct leap_poller **a = realloc(r->pollers, cap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		r->pollers = a;
		r->cap = cap;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->r = r;
	p->ops = *ops;
	p->arg = arg;
	p->wake_fd = wake_fd;
	if (wake_fd >= 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };

		if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, wake_fd, &ev) == 0) {
			p->in_epoll = true;
		} else if (errno != EEXIST) {
			int err = -errno;

			LEAP_ERR("reactor", "%s: epoll add fd %d: %s", r->name, wake_fd,
				 strerror(-err));
			free(p);
			return err;
		}
		/* EEXIST: another poller watches the same fd; sleeping still wakes. */
	}
	r->pollers[r->npollers++] = p;
	if (out)
		*out = p;
	return 0;
}

int leap_poller_watch_fd(struct leap_poller *p, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };

	if (!p || fd < 0)
		return -EINVAL;
	if (!on_owner_thread(p->r))
		return -EPERM;
	if (epoll_ctl(p->r->epfd, EPOLL_CTL_ADD, fd, &ev) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

void leap_poller_unwatch_fd(struct leap_poller *p, int fd)
{
	if (!p || fd < 0 || !on_owner_thread(p->r))
		return;
	epoll_ctl(p->r->epfd, EPOLL_CTL_DEL, fd, NULL);
}

void leap_poller_wake_at(struct leap_poller *p, uint64_t deadline_ns)
{
	if (!p->wake_ns || deadline_ns < p->wake_ns)
		p->wake_ns = deadline_ns ? deadline_ns : 1;
}

void leap_poller_set_period(struct leap_poller *p, uint32_t period_us)
{
	if (!p)
		return;
	p->period_ns = (uint64_t)period_us * 1000;
	p->next_ns = 0; /* due at once, then every period */
}

static void compact_pollers(struct leap_reactor *r)
{
	uint32_t j = 0;

	for (uint32_t i = 0; i < r->npollers; i++) {
		if (r->pollers[i]->removed)
			free(r->pollers[i]);
		else
			r->pollers[j++] = r->pollers[i];
	}
	r->npollers = j;
	r->dirty = false;
}

void leap_poller_unregister(struct leap_poller *p)
{
	struct leap_reactor *r;

	if (!p || p->removed)
		return;
	r = p->r;
	if (!on_owner_thread(r)) {
		LEAP_ERR("reactor", "%s: poller unregistered from a foreign thread", r->name);
		return;
	}
	/* Out of epoll now, so the caller may close the fd right after we return. */
	if (p->in_epoll)
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, p->wake_fd, NULL);
	p->in_epoll = false;
	p->removed = true;
	r->dirty = true;
	if (!r->in_iter)
		compact_pollers(r);
}

/* ---- the thread ------------------------------------------------------- */

static void drain_eventfd(int fd)
{
	uint64_t v;

	/* Non-blocking: EAGAIN just means someone drained it already. */
	while (read(fd, &v, sizeof(v)) == sizeof(v))
		;
}

/* Nanoseconds until the earliest timed poller is due (UINT64_MAX: none). */
static uint64_t next_timer_ns(const struct leap_reactor *r, uint64_t now)
{
	uint64_t best = UINT64_MAX;

	for (uint32_t i = 0; i < r->npollers; i++) {
		const struct leap_poller *p = r->pollers[i];

		if (p->removed || !p->period_ns)
			continue;
		best = LEAP_MIN(best, p->next_ns > now ? p->next_ns - now : 0);
	}
	return best;
}

static void try_sleep(struct leap_reactor *r, uint64_t *now, bool io_wait)
{
	struct epoll_event evs[EPOLL_EVENTS_PER_WAKE];
	uint64_t timeout_ns = (uint64_t)r->sleep_timeout_ms * 1000000ull;
	uint32_t prepared = 0;
	bool ok = true;
	int n;

	timeout_ns = LEAP_MIN(timeout_ns, next_timer_ns(r, *now));
	if (timeout_ns < 1000)
		return; /* a timer is due: sleeping would only be a syscall */

	/*
	 * Announce the sleep before the last checks. The fence pairs with the
	 * one in leap_reactor_send_msg(): either we see its message below or
	 * it sees sleeping == 1 and writes the eventfd.
	 */
	atomic_store_explicit(&r->sleeping, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (msg_pending(r))
		ok = false;
	for (uint32_t i = 0; ok && i < r->npollers; i++) {
		struct leap_poller *p = r->pollers[i];

		if (p->removed || !p->ops.sleep_prepare)
			continue;
		prepared = i + 1;
		ok = p->ops.sleep_prepare(p->arg);
	}
	/* Deadlines the pollers asked for (deferred commands): sleep until the earliest. */
	for (uint32_t i = 0; ok && i < prepared; i++) {
		struct leap_poller *p = r->pollers[i];

		if (p->removed || !p->wake_ns)
			continue;
		if (p->wake_ns <= *now + 1000) {
			ok = false; /* due now: sleeping would only be a syscall */
			break;
		}
		timeout_ns = LEAP_MIN(timeout_ns, p->wake_ns - *now);
	}
	if (ok) {
		struct timespec ts = {
			.tv_sec = (time_t)(timeout_ns / 1000000000ull),
			.tv_nsec = (long)(timeout_ns % 1000000000ull),
		};
		uint64_t t0 = *now;

		/* Counted on the way in, so an observer can tell the reactor is asleep. */
		stat_add(&r->st.sleeps, 1);
		if (io_wait)
			stat_add(&r->st.io_sleeps, 1);
		n = epoll_pwait2(r->epfd, evs, EPOLL_EVENTS_PER_WAKE, &ts, NULL);
		*now = now_ns();
		stat_add(&r->st.sleep_ns, *now - t0);
		/* EINTR: io_uring task work or a signal; either way there may be work. */
		if (n > 0 || (n < 0 && errno == EINTR))
			stat_add(&r->st.wakeups, 1);
		for (int i = 0; i < n; i++)
			if (!evs[i].data.ptr)
				drain_eventfd(r->msg_efd);
	}
	atomic_store_explicit(&r->sleeping, 0, memory_order_relaxed);
	for (uint32_t i = 0; i < prepared; i++) {
		struct leap_poller *p = r->pollers[i];

		p->wake_ns = 0;
		if (!p->removed && p->ops.sleep_prepare && p->ops.sleep_done)
			p->ops.sleep_done(p->arg);
	}
}

static void *reactor_thread(void *arg)
{
	struct leap_reactor *r = arg;
	uint64_t now = now_ns(), idle_since = now, contended_until = 0;

	tls_self = r;
	pthread_setname_np(pthread_self(), r->name);
	while (!r->stop) {
		bool busy = run_msgs(r, MSG_BATCH) > 0, io_wait = false, notify = false,
		     poll_wanted = false, quick;
		uint64_t t, iter_start = now, window;

		r->cpu_now = sched_getcpu();
		r->iter_ns = now;
		r->in_iter = true;
		for (uint32_t i = 0; i < r->npollers; i++) {
			struct leap_poller *p = r->pollers[i];

			if (p->removed)
				continue;
			if (p->period_ns) {
				if (now < p->next_ns)
					continue;
				p->next_ns = now + p->period_ns;
			}
			switch (p->ops.poll(p->arg)) {
			case LEAP_POLL_BUSY:
				busy = true;
				break;
			case LEAP_POLL_WAIT:
				io_wait = true;
				break;
			case LEAP_POLL_NOTIFY:
				notify = true;
				break;
			default:
				poll_wanted = true;
				break;
			}
		}
		t = now_ns();
		stat_add(&r->st.iterations, 1);
		if (busy) {
			stat_add(&r->st.busy, 1);
			stat_add(&r->st.busy_ns, t - now);
			idle_since = t;
		} else {
			stat_add(&r->st.idle_ns, t - now);
		}
		now = t;
		/*
		 * Waiting on a device, sleep early: its completion raises a
		 * watched fd, and a spinning reactor competes for the CPU the
		 * kernel (and, in a VM, the hypervisor) needs to complete it.
		 */
		/*
		 * An iteration that took far longer than any poll does means the
		 * scheduler ran something else on this CPU meanwhile: we share
		 * it. Then sleep as soon as we are idle instead of spinning out
		 * the idle window: a polling tenant the scheduler put on this
		 * CPU otherwise waits out our time slice before it can submit
		 * the next batch (20x fewer IOPS, bench/contention.sh), and
		 * its doorbell kick wakes us (with wake-up preemption) the
		 * moment it has work.
		 */
		if (leap_unlikely(t - iter_start > CONTENDED_ITER_NS)) {
			contended_until = t + CONTENDED_HOLD_NS;
			stat_add(&r->st.preempted, 1);
		}
		/*
		 * Sleep at once when the pollers that ran would rather be
		 * woken (LEAP_POLL_NOTIFY) and none wants polling.
		 */
		quick = t < contended_until;
		window = notify && !io_wait && !poll_wanted ? 0
			 : quick			    ? CONTENDED_IDLE_NS
			 : io_wait			    ? r->io_sleep_ns
							    : r->idle_sleep_ns;
		if (!busy && !r->stop && now - idle_since >= window) {
			try_sleep(r, &now, io_wait);
			idle_since = now;
		}
		r->in_iter = false;
		if (r->dirty)
			compact_pollers(r);
	}
	/* Whatever was queued behind the stop message still runs, once. */
	while (run_msgs(r, MSG_BATCH))
		;
	tls_self = NULL;
	return NULL;
}

/* ---- lifecycle -------------------------------------------------------- */

int leap_reactor_create(const struct leap_reactor_opts *opts, struct leap_reactor **out)
{
	static const struct leap_reactor_opts defaults = { .cpu = -1 };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct leap_reactor *r;
	uint32_t ring;
	int err;

	if (!out)
		return -EINVAL;
	if (!opts)
		opts = &defaults;
	ring = opts->msg_ring_size ? opts->msg_ring_size : DEFAULT_MSG_RING;
	if (!LEAP_IS_POW2(ring) || ring < 2)
		return -EINVAL;
	if (opts->cpu >= CPU_SETSIZE || opts->cpu < -1 ||
	    (opts->cpu >= 0 && opts->cpu >= sysconf(_SC_NPROCESSORS_CONF)))
		return -EINVAL;

	r = aligned_alloc(64, LEAP_ALIGN_UP(sizeof(*r), 64));
	if (!r)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	r->msg_efd = r->epfd = -1;
	r->slots = calloc(ring, sizeof(*r->slots));
	if (!r->slots) {
		err = -ENOMEM;
		goto err_free;
	}
	for (uint32_t i = 0; i < ring; i++)
		atomic_init(&r->slots[i].seq, i);
	r->msg_mask = ring - 1;
	r->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
	r->cpu = opts->cpu;
	atomic_init(&r->settled, -1);
	r->idle_sleep_ns =
	    (uint64_t)(opts->idle_sleep_us ? opts->idle_sleep_us : DEFAULT_IDLE_SLEEP_US) * 1000;
	r->io_sleep_ns = opts->io_sleep_us ? (uint64_t)opts->io_sleep_us * 1000 : r->idle_sleep_ns;
	r->sleep_timeout_ms =
	    opts->sleep_timeout_ms ? opts->sleep_timeout_ms : DEFAULT_SLEEP_TIMEOUT;
	if (opts->name)
		snprintf(r->name, sizeof(r->name), "%s", opts->name);
	else
		snprintf(r->name, sizeof(r->name), "reactor%u", r->id);

	r->msg_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->msg_efd < 0 || r->epfd < 0) {
		err = -errno;
		goto err_free;
	}
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->msg_efd, &ev) != 0) {
		err = -errno;
		goto err_free;
	}
	*out = r;
	return 0;

err_free:
	LEAP_ERR("reactor", "create: %s", strerror(-err));
	leap_reactor_destroy(r);
	return err;
}

int leap_reactor_start(struct leap_reactor *r)
{
	pthread_attr_t attr;
	int err;

	if (!r)
		return -EINVAL;
	if (atomic_load_explicit(&r->running, memory_order_relaxed))
		return -EALREADY;
	err = pthread_attr_init(&attr);
	if (err)
		return -err;
	if (r->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(r->cpu, &set);
		/* Pinned from its first instruction: no migration window. */
		err = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
		if (err)
			goto out;
	}
	r->stop = false;
	/*
	 * Release pairs with on_owner_thread()'s acquire: a thread that sees
	 * running == false saw everything set before the thread existed.
	 */
	atomic_store_explicit(&r->running, true, memory_order_release);
	err = pthread_create(&r->thread, &attr, reactor_thread, r);
	if (err)
		atomic_store_explicit(&r->running, false, memory_order_release);
out:
	pthread_attr_destroy(&attr);
	if (err)
		LEAP_ERR("reactor", "%s: start on cpu %d: %s", r->name, r->cpu, strerror(err));
	return -err;
}

static void stop_msg(void *arg)
{
	((struct leap_reactor *)arg)->stop = true;
}

void leap_reactor_stop(struct leap_reactor *r)
{
	if (!r || !atomic_load_explicit(&r->running, memory_order_relaxed))
		return;
	if (tls_self == r) {
		LEAP_ERR("reactor", "%s: stop called on the reactor itself", r->name);
		return;
	}
	/* A full ring drains as the reactor runs; stopping is worth a short wait. */
	while (leap_reactor_send_msg(r, stop_msg, r) == -EAGAIN)
		sched_yield();
	pthread_join(r->thread, NULL);
	atomic_store_explicit(&r->running, false, memory_order_release);
}

void leap_reactor_destroy(struct leap_reactor *r)
{
	if (!r)
		return;
	leap_reactor_stop(r);
	atomic_store_explicit(&r->shutdown, true, memory_order_relaxed);
	for (uint32_t i = 0; i < r->npollers; i++)
		if (r->pollers[i]->removed)
			free(r->pollers[i]);
		else
			poller_free(r->pollers[i]);
	free(r->pollers);
	if (r->epfd >= 0)
		close(r->epfd);
	if (r->msg_efd >= 0)
		close(r->msg_efd);
	free(r->slots);
	free(r);
}

struct leap_reactor *leap_reactor_self(void)
{
	return tls_self;
}

/*
 * Wake-ups between a reactor and a tenant that sleep on each other are
 * "sync" for the scheduler (a pipe write: the waker is about to wait), so
 * it keeps moving the two onto one CPU, where they take turns a batch at a
 * time (bench/contention.sh: 0.27x). Pinned where it is, the reactor stops
 * following; the tenant library's users leave its CPU (leap-perf does). A
 * reactor pinned by configuration is left alone; SETTLE_NS of sharing
 * first, so a passing migration does not pin it.
 */
#define SETTLE_NS     20000000ull
#define SETTLE_GAP_NS 5000000ull

void leap_reactor_settle(void)
{
	struct leap_reactor *r = tls_self;
	cpu_set_t set;

	if (!r || r->cpu >= 0 || atomic_load_explicit(&r->settled, memory_order_relaxed) >= 0 ||
	    r->cpu_now < 0)
		return;
	/* Sharing that stopped for SETTLE_GAP_NS starts over: a passing visit pins nothing. */
	if (!r->settle_since || r->iter_ns - r->settle_last > SETTLE_GAP_NS)
		r->settle_since = r->iter_ns;
	r->settle_last = r->iter_ns;
	if (r->iter_ns - r->settle_since < SETTLE_NS)
		return;
	CPU_ZERO(&set);
	CPU_SET(r->cpu_now, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		r->settle_since = r->iter_ns; /* try again later */
		return;
	}
	atomic_store_explicit(&r->settled, r->cpu_now, memory_order_relaxed);
	LEAP_INFO("reactor", "%s: a polling tenant shares CPU %d: staying on it", r->name,
		  r->cpu_now);
}

uint64_t leap_reactor_now_ns(void)
{
	struct leap_reactor *r = tls_self;

	return r ? r->iter_ns : now_ns();
}

int leap_reactor_cpu_now(void)
{
	return tls_self ? tls_self->cpu_now : -1;
}

uint32_t leap_reactor_id(const struct leap_reactor *r)
{
	return r->id;
}

void leap_reactor_get_stats(const struct leap_reactor *r, struct leap_reactor_stats *st)
{
	st->iterations = atomic_load_explicit(&r->st.iterations, memory_order_relaxed);
	st->busy = atomic_load_explicit(&r->st.busy, memory_order_relaxed);
	st->sleeps = atomic_load_explicit(&r->st.sleeps, memory_order_relaxed);
	st->wakeups = atomic_load_explicit(&r->st.wakeups, memory_order_relaxed);
	st->messages = atomic_load_explicit(&r->st.messages, memory_order_relaxed);
	st->busy_ns = atomic_load_explicit(&r->st.busy_ns, memory_order_relaxed);
	st->idle_ns = atomic_load_explicit(&r->st.idle_ns, memory_order_relaxed);
	st->sleep_ns = atomic_load_explicit(&r->st.sleep_ns, memory_order_relaxed);
	st->io_sleeps = atomic_load_explicit(&r->st.io_sleeps, memory_order_relaxed);
	st->preempted = atomic_load_explicit(&r->st.preempted, memory_order_relaxed);
	st->settled_cpu = atomic_load_explicit(&r->settled, memory_order_relaxed);
}
