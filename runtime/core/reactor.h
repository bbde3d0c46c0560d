/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reactors: one polling thread each, pinned to a CPU, owning its pollers
 * (queue pairs, backend channels) outright — SPDK's thread + poller model.
 * A poller returns LEAP_POLL_BUSY when it did work and LEAP_POLL_IDLE when
 * not; after an idle period the reactor asks every poller whether it may
 * sleep (each arms its wake-up, e.g. publishes an NVMe EventIdx, and
 * re-checks for work) and then blocks in epoll on the pollers' wake fds and
 * its own message eventfd. Other threads talk to a reactor only through
 * leap_reactor_send_msg() (a lock-free MPSC queue + eventfd).
 *
 * One iteration: run up to 64 pending messages, then every poller once
 * (timed pollers only when due). Pollers may register and unregister
 * pollers, themselves included, from inside poll() or a message.
 */
#ifndef LEAPIO_RUNTIME_REACTOR_H
#define LEAPIO_RUNTIME_REACTOR_H

#include <stdbool.h>
#include <stdint.h>

struct leap_reactor;
struct leap_poller;

enum leap_poll_status {
	LEAP_POLL_IDLE = 0,
	LEAP_POLL_BUSY = 1,
	/*
	 * Idle now, but work is outstanding in a device that will make a
	 * watched fd readable when it completes (backend I/O in flight). The
	 * reactor then tries to sleep after io_sleep_us instead of
	 * idle_sleep_us: spinning on a disk's latency only steals the CPU the
	 * kernel needs to complete the I/O.
	 */
	LEAP_POLL_WAIT = 2,
	/*
	 * Idle, and this poller would rather be woken than polled: its work
	 * arrives far apart compared with what a wake-up costs (its
	 * sleep_prepare arms a wake fd for the next piece). When every poller
	 * in an iteration said NOTIFY (or nothing at all), the reactor tries to
	 * sleep at once instead of after idle_sleep_us. Any IDLE, WAIT or BUSY
	 * keeps the usual window. Also the answer of a poller whose peer (the
	 * tenant that will submit the next command) runs on this reactor's CPU:
	 * polling then only delays it (leap_reactor_cpu_now()).
	 */
	LEAP_POLL_NOTIFY = 3,
};

struct leap_poller_ops {
	/* Do a bounded amount of work; return enum leap_poll_status. */
	int (*poll)(void *arg);
	/*
	 * Optional. Arm wake-up and re-check: return true if the reactor may
	 * sleep now (no work is pending after arming), false to keep polling.
	 * NULL means "always fine to sleep" (the poller only has work after its
	 * wake fd fires, or can wait for the sleep timeout). A poller whose
	 * wake fd is level-triggered (an eventfd) must drain it here or in
	 * poll(), or every sleep ends at once.
	 */
	bool (*sleep_prepare)(void *arg);
	/*
	 * Optional. Called after waking, before polling resumes (disarm).
	 * Called for every poller whose sleep_prepare ran, also when another
	 * poller's answer (false) cancelled the sleep.
	 */
	void (*sleep_done)(void *arg);
};

struct leap_reactor_opts {
	int cpu;		   /* pin to this CPU, or -1 */
	uint32_t idle_sleep_us;	   /* consecutive idle time before sleeping (default 200) */
	const char *name;	   /* thread name (first 15 bytes), default "reactor<id>" */
	uint32_t sleep_timeout_ms; /* longest single sleep (default 100) */
	uint32_t msg_ring_size;	   /* message slots, power of two (default 4096) */
	/*
	 * Idle time before sleeping when a poller said LEAP_POLL_WAIT (0: as
	 * idle_sleep_us). Shorter saves CPU on slow devices but adds a wake-up
	 * to every I/O that completes while asleep: on a VM a cross-CPU wake
	 * costs tens of microseconds, so the default does not sleep earlier.
	 */
	uint32_t io_sleep_us;
};

/*
 * Allocate a reactor (not running yet). -EINVAL on bad opts (cpu not
 * online, ring size not a power of two), -ENOMEM, or an eventfd/epoll error.
 */
int leap_reactor_create(const struct leap_reactor_opts *opts, struct leap_reactor **out);
/* Start the thread, pinned to opts->cpu. -EALREADY if running; pthread errors as -errno. */
int leap_reactor_start(struct leap_reactor *r);
/*
 * Ask the thread to stop after its current iteration and join it. Messages
 * sent before stop are all run first. Must not be called on the reactor
 * itself. No-op if not running; the reactor can be started again.
 */
void leap_reactor_stop(struct leap_reactor *r);
/* Stop if running, then free, pollers included (their args stay the caller's). NULL-safe. */
void leap_reactor_destroy(struct leap_reactor *r);

/*
 * Add a poller. Must be called on the reactor's own thread (or while it is
 * not running): -EPERM otherwise. wake_fd (or -1) is added to the sleep
 * epoll set for readability; give each poller its own fd. The ops table is
 * copied; arg stays the caller's.
 */
int leap_poller_register(struct leap_reactor *r, const struct leap_poller_ops *ops, void *arg,
			 int wake_fd, struct leap_poller **out);
/*
 * Run the poller at most every period_us (0: every iteration, the default).
 * A timed poller also bounds the reactor's sleep, so it runs on time while
 * the reactor is idle (token-bucket refills, keep-alive timers). Same thread
 * rule as register.
 */
void leap_poller_set_period(struct leap_poller *p, uint32_t period_us);
/*
 * Also wake the reactor from sleep when `fd` becomes readable (a poller
 * that owns several wake-up sources, e.g. a controller's backend channels).
 * Same thread rule as register. 0 (also when fd is already watched) or
 * -errno. The caller must unwatch (or close) fd before the poller goes.
 */
int leap_poller_watch_fd(struct leap_poller *p, int fd);
/*
 * From inside sleep_prepare (returning true): the reactor may sleep, but
 * must be running again by `deadline_ns` (CLOCK_MONOTONIC), e.g. when a
 * rate-limited command's deferral is due. The earliest deadline of all
 * pollers bounds the sleep; it applies to this one sleep only.
 */
void leap_poller_wake_at(struct leap_poller *p, uint64_t deadline_ns);

/* Stop watching fd (same thread rule). */
void leap_poller_unwatch_fd(struct leap_poller *p, int fd);
/* Remove and free a poller (on the reactor's thread, or while not running). NULL-safe. */
void leap_poller_unregister(struct leap_poller *p);

/*
 * Run fn(arg) on the reactor thread, in the order sent per sender. Safe from
 * any thread (the reactor's own included); never blocks: -EAGAIN when the
 * message ring is full (retry later), -ESHUTDOWN once destroy began.
 * Messages may be sent before start; they run when the thread starts.
 */
int leap_reactor_send_msg(struct leap_reactor *r, void (*fn)(void *arg), void *arg);

/* The reactor running on the calling thread, or NULL. */
struct leap_reactor *leap_reactor_self(void);
/*
 * For pollers: the CPU the calling reactor runs on, read once per
 * iteration (sched_getcpu() is an rseq load: no syscall); -1 elsewhere.
 */
int leap_reactor_cpu_now(void);
/*
 * For pollers: CLOCK_MONOTONIC as read once at the start of the calling
 * reactor's iteration (a fresh read elsewhere). For per-I/O timestamps: a
 * clock read costs ~20 ns on a VM, as much as the rest of a null I/O; this
 * costs a load. Stale by at most the iteration so far (microseconds).
 */
uint64_t leap_reactor_now_ns(void);
/*
 * For pollers: the tenant that feeds this poller runs on this reactor's
 * CPU. An unpinned reactor that keeps hearing this pins itself to its
 * current CPU, so the tenant can move away for good (see reactor.c).
 */
void leap_reactor_settle(void);
/* A process-unique id, assigned in creation order from 0. */
uint32_t leap_reactor_id(const struct leap_reactor *r);

/*
 * Counters for stats, readable from any thread (each field is individually
 * atomic; the set is not a snapshot). busy_ns + idle_ns + sleep_ns is the
 * thread's running time since start.
 */
struct leap_reactor_stats {
	uint64_t iterations; /* poller loop passes */
	uint64_t busy;	     /* passes where a message ran or a poller said BUSY */
	uint64_t sleeps;     /* times it entered epoll (counted before blocking) */
	uint64_t wakeups;    /* sleeps ended by an fd or a signal, not the timeout */
	uint64_t messages;   /* messages run */
	uint64_t busy_ns;    /* time in iterations where something did work */
	uint64_t idle_ns;    /* time in iterations where nothing did */
	uint64_t sleep_ns;   /* time blocked in epoll */
	uint64_t io_sleeps;  /* sleeps entered while a poller had device I/O in flight */
	uint64_t preempted;  /* iterations the scheduler interrupted (the CPU is shared) */
	int settled_cpu; /* where an unpinned reactor pinned itself (leap_reactor_settle()), or -1 */
};
void leap_reactor_get_stats(const struct leap_reactor *r, struct leap_reactor_stats *st);

#endif /* LEAPIO_RUNTIME_REACTOR_H */
