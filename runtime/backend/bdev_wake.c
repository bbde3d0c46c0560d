// SPDX-License-Identifier: BSD-3-Clause
/*
 * One wake fd for a channel over child channels (see bdev_wake_internal.h):
 * an epoll fd nesting the children's wake fds and a timerfd. The syscalls
 * here run only on the way into and out of an idle sleep, never per I/O.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "bdev_wake_internal.h"

int bdev_wake_init(struct bdev_wake *w, bool timer)
{
	struct epoll_event ev = { .events = EPOLLIN };

	memset(w, 0, sizeof(*w));
	w->tfd = -1;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0)
		return -errno;
	if (!timer)
		return 0;
	w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (w->tfd < 0)
		return -errno;
	ev.data.fd = w->tfd;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->tfd, &ev))
		return -errno;
	return 0;
}

void bdev_wake_fini(struct bdev_wake *w)
{
	if (w->tfd >= 0)
		close(w->tfd);
	if (w->epfd > 0)
		close(w->epfd);
	w->tfd = w->epfd = -1;
}

int bdev_wake_add(struct bdev_wake *w, struct leap_bdev_channel *child)
{
	int fd = leap_bdev_channel_wake_fd(child);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	if (fd < 0)
		return 0;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) && errno != EEXIST)
		return -errno;
	return 0;
}

void bdev_wake_del(struct bdev_wake *w, struct leap_bdev_channel *child)
{
	int fd = leap_bdev_channel_wake_fd(child);

	if (fd >= 0)
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
}

bool bdev_wake_prepare(struct bdev_wake *w, struct leap_bdev_channel *const *children, uint32_t n,
		       uint64_t deadline_ns)
{
	w->narmed = 0;
	if (deadline_ns && w->tfd >= 0) {
		struct itimerspec its = {
			.it_value = { .tv_sec = (time_t)(deadline_ns / 1000000000ull),
				      .tv_nsec = (long)(deadline_ns % 1000000000ull) },
		};

		if (timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL))
			return false;
		w->timer_armed = true;
	} else if (deadline_ns) {
		return false; /* something is due and nothing would wake us for it */
	}
	for (uint32_t i = 0; i < n; i++) {
		struct leap_bdev_channel *c = children[i];

		if (!c || !c->inflight)
			continue;
		if (leap_bdev_channel_wake_fd(c) < 0 || w->narmed == BDEV_WAKE_MAX)
			return false;
		w->armed[w->narmed++] = c;
		if (!leap_bdev_channel_sleep_prepare(c))
			return false;
	}
	return true;
}

void bdev_wake_done(struct bdev_wake *w)
{
	static const struct itimerspec off;
	uint64_t v;

	for (uint32_t i = 0; i < w->narmed; i++)
		leap_bdev_channel_sleep_done(w->armed[i]);
	w->narmed = 0;
	if (w->timer_armed) {
		timerfd_settime(w->tfd, 0, &off, NULL);
		/* Drain an expiry, or the epoll fd stays readable and every sleep ends at once. */
		if (read(w->tfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			v = 0;
		w->timer_armed = false;
	}
}
