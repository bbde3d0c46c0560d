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
};

struct leap_poller_ops {
	/* Do a bounded amount of work; return enum leap_poll_status. */
	int (*poll)(void *arg);
	/*
	 * Optional. Arm wake-up and re-check: return true if the reactor may
	 * sleep now (no work is pending after arming), false to keep polling.
	 */
	bool (*sleep_prepare)(void *arg);
	/* Optional. Called after waking, before polling resumes (disarm). */
	void (*sleep_done)(void *arg);
};

struct leap_reactor_opts {
	int cpu;		  /* pin to this CPU, or -1 */
	uint32_t idle_sleep_us;	  /* consecutive idle time before sleeping (default 200) */
	const char *name;	  /* thread name */
};

int leap_reactor_create(const struct leap_reactor_opts *opts, struct leap_reactor **out);
int leap_reactor_start(struct leap_reactor *r);
/* Ask the thread to stop after its current iteration and join it. */
void leap_reactor_stop(struct leap_reactor *r);
void leap_reactor_destroy(struct leap_reactor *r);

/* Must be called on the reactor's own thread (or before start). */
int leap_poller_register(struct leap_reactor *r, const struct leap_poller_ops *ops, void *arg,
			 int wake_fd, struct leap_poller **out);
void leap_poller_unregister(struct leap_poller *p);

/* Run fn(arg) on the reactor thread. Safe from any thread; never blocks. */
int leap_reactor_send_msg(struct leap_reactor *r, void (*fn)(void *arg), void *arg);

/* The reactor running on the calling thread, or NULL. */
struct leap_reactor *leap_reactor_self(void);
uint32_t leap_reactor_id(const struct leap_reactor *r);

/* Counters for stats: iterations, busy iterations, sleeps. */
struct leap_reactor_stats {
	uint64_t iterations, busy, sleeps, wakeups;
};
void leap_reactor_get_stats(const struct leap_reactor *r, struct leap_reactor_stats *st);

#endif /* LEAPIO_RUNTIME_REACTOR_H */
