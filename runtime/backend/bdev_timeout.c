// SPDX-License-Identifier: BSD-3-Clause
/*
 * Backend I/O timeouts, for every backend alike: on a channel whose bdev
 * has an io_timeout_ms, leap_bdev_submit() stamps each accepted I/O and
 * appends it to the channel's list, so the list is in submission order and
 * only its head can be the first to expire. The channel's own poll (through
 * leap_bdev_poll()) looks at the head, asks the backend to abort what is
 * overdue (leap_bdev_ops.abort) and counts it; the completion that follows
 * carries LEAP_BDEV_STATUS_TIMEOUT instead of the backend's abort status.
 * A backend that cannot abort (an io_uring read stuck in the kernel) keeps
 * its I/O until the device answers, but the timeout is counted and logged
 * once per channel. Everything here runs on the channel's thread: no lock,
 * no atomic; the cost without a timeout is one store per submit and one
 * test per completion.
 */
#include <time.h>

#include "leapio/log.h"
#include "bdev_internal.h"

/* Read the clock once per this many busy polls; an idle poll always reads it. */
#define TMO_POLL_EVERY 64u

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t tmo_ns(const struct leap_bdev_channel *ch)
{
	return (uint64_t)ch->bdev->io_timeout_ms * 1000000ull;
}

static void unlink_io(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	if (io->tmo_prev)
		io->tmo_prev->tmo_next = io->tmo_next;
	else
		ch->tmo_head = io->tmo_next;
	if (io->tmo_next)
		io->tmo_next->tmo_prev = io->tmo_prev;
	else
		ch->tmo_tail = io->tmo_prev;
	io->tmo_next = io->tmo_prev = NULL;
}

void leap_bdev_tmo_track(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	io->tmo_start = now_ns();
	io->tmo_next = NULL;
	io->tmo_prev = ch->tmo_tail;
	if (ch->tmo_tail)
		ch->tmo_tail->tmo_next = io;
	else
		ch->tmo_head = io;
	ch->tmo_tail = io;
}

uint16_t leap_bdev_tmo_done(struct leap_bdev_channel *ch, struct leap_bdev_io *io, uint16_t status)
{
	if (io->tmo_start == LEAP_BDEV_TMO_EXPIRED) {
		/* Aborted for its timeout: say so, unless it made it after all. */
		if (status)
			status = LEAP_BDEV_STATUS_TIMEOUT;
	} else {
		unlink_io(ch, io);
	}
	io->tmo_start = 0;
	return status;
}

void leap_bdev_tmo_poll(struct leap_bdev_channel *ch, int events)
{
	struct leap_bdev_io *io;
	uint64_t now, limit = tmo_ns(ch);

	if (events > 0 && (++ch->tmo_polls % TMO_POLL_EVERY) != 0)
		return;
	now = now_ns();
	while ((io = ch->tmo_head) && now - io->tmo_start >= limit) {
		unlink_io(ch, io);
		io->tmo_start = LEAP_BDEV_TMO_EXPIRED;
		ch->stats.timeouts++;
		if (leap_bdev_abort(ch, io) == 0) {
			ch->stats.aborts++;
			continue;
		}
		/* Once per channel: a device that hangs one I/O hangs many. */
		if (!ch->tmo_warned) {
			ch->tmo_warned = true;
			LEAP_WARN("bdev",
				  "%s: an I/O is outstanding for more than %u ms and the backend "
				  "cannot abort it; waiting for the device",
				  ch->bdev->name, ch->bdev->io_timeout_ms);
		}
	}
}

uint64_t leap_bdev_tmo_deadline(const struct leap_bdev_channel *ch)
{
	return ch->tmo_head ? ch->tmo_head->tmo_start + tmo_ns(ch) : 0;
}
