/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The idle sleep of a channel built over other channels (a mirror's or a
 * stripe's legs, a fault bdev's base): the reactor watches one fd per
 * channel, so such a channel offers an epoll fd that becomes readable when
 * any child channel's wake fd does, or when its own timerfd expires (a
 * delayed I/O falls due, a timeout is near). bdev_wake_prepare() is the
 * child-facing half of the channel's sleep_prepare(): it arms every child
 * that has I/O in flight, and answers false when one of them cannot wake
 * us (no wake fd) or has work ready.
 */
#ifndef LEAPIO_RUNTIME_BDEV_WAKE_INTERNAL_H
#define LEAPIO_RUNTIME_BDEV_WAKE_INTERNAL_H

#include "backend/bdev.h"

#define BDEV_WAKE_MAX 16

struct bdev_wake {
	int epfd; /* the channel's wake fd */
	int tfd;  /* timerfd in epfd, or -1 */
	bool timer_armed;
	uint32_t narmed;
	struct leap_bdev_channel *armed[BDEV_WAKE_MAX];
};

/* epoll fd (and a timerfd in it when `timer`). 0 or -errno; fini is safe after a failure. */
int bdev_wake_init(struct bdev_wake *w, bool timer);
void bdev_wake_fini(struct bdev_wake *w);
/* Watch (stop watching) a child channel's wake fd, if it has one. 0 or -errno. */
int bdev_wake_add(struct bdev_wake *w, struct leap_bdev_channel *child);
void bdev_wake_del(struct bdev_wake *w, struct leap_bdev_channel *child);
/*
 * Arm the timer for `deadline_ns` (CLOCK_MONOTONIC; 0: none) and every
 * child in children[0..n) with I/O in flight (NULL entries skipped). True
 * when the channel may sleep as far as its children go. Call
 * bdev_wake_done() afterwards whatever the answer.
 */
bool bdev_wake_prepare(struct bdev_wake *w, struct leap_bdev_channel *const *children, uint32_t n,
		       uint64_t deadline_ns);
/* Disarm what bdev_wake_prepare() armed. */
void bdev_wake_done(struct bdev_wake *w);

#endif /* LEAPIO_RUNTIME_BDEV_WAKE_INTERNAL_H */
