// SPDX-License-Identifier: BSD-3-Clause
/*
 * The null backend: every I/O succeeds without touching data (READ leaves
 * the buffers as they were). It measures the runtime itself, the upper
 * bound of leapd's speed. Completions are queued by submit() and delivered
 * by the next poll(), exactly like a real device, so callers see the same
 * callback ordering on every backend.
 */
#include <errno.h>
#include <stdlib.h>

#include "leapio/log.h"
#include "backend/bdev_internal.h"

struct null_channel {
	struct leap_bdev_channel base;
	struct bdev_io_fifo done;
};

static int null_create(const struct leap_bdev_params *p, struct leap_bdev **out)
{
	struct leap_bdev *bdev;

	if (!p->size) {
		LEAP_ERR("bdev", "%s: null bdev needs a size", p->name);
		return -EINVAL;
	}
	bdev = calloc(1, sizeof(*bdev));
	if (!bdev)
		return -ENOMEM;
	bdev_init_common(bdev, &leap_bdev_null_ops, p);
	*out = bdev;
	return 0;
}

static void null_destroy(struct leap_bdev *bdev)
{
	free(bdev);
}

static int null_channel_open(struct leap_bdev *bdev, struct leap_bdev_channel **out)
{
	struct null_channel *nc = calloc(1, sizeof(*nc));

	if (!nc)
		return -ENOMEM;
	nc->base.bdev = bdev;
	*out = &nc->base;
	return 0;
}

static void null_channel_close(struct leap_bdev_channel *ch)
{
	free(ch);
}

static int null_submit(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	struct null_channel *nc = (struct null_channel *)ch;

	bdev_assert_io(ch->bdev, io);
	bdev_fifo_push(&nc->done, io);
	ch->inflight++;
	ch->stats.submitted++;
	return 0;
}

static int null_poll(struct leap_bdev_channel *ch)
{
	struct null_channel *nc = (struct null_channel *)ch;
	struct leap_bdev_io *io = bdev_fifo_take(&nc->done), *next;
	int n = 0;

	for (; io; io = next, n++) {
		/* Read the link first: the callback may resubmit io. */
		next = bdev_fifo_next(io);
		bdev_io_complete(ch, io, 0);
	}
	return n;
}

const struct leap_bdev_ops leap_bdev_null_ops = {
	.type = "null",
	.create = null_create,
	.destroy = null_destroy,
	.channel_open = null_channel_open,
	.channel_close = null_channel_close,
	.submit = null_submit,
	.poll = null_poll,
};
