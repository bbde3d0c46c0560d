// SPDX-License-Identifier: BSD-3-Clause
/*
 * The null backend: every I/O succeeds without touching data (READ leaves
 * the buffers as they were). It measures the runtime itself, the upper
 * bound of leapd's speed. Completions are queued by submit() and delivered
 * by the next poll(), exactly like a real device, so callers see the same
 * callback ordering on every backend. Parameters: the common ones only
 * ("size" required).
 */
#include <errno.h>
#include <stdlib.h>

#include "backend/bdev_internal.h"

struct null_channel {
	struct leap_bdev_channel base;
	struct bdev_io_fifo done;
};

extern const struct leap_bdev_ops leap_bdev_null_ops;

static int null_create(const struct leap_bdev_common_params *common, const json_t *params,
		       struct leap_bdev_err *err, leap_bdev_create_cb cb, void *cb_arg)
{
	struct leap_bdev *bdev;
	int rc;

	rc = bdev_params_decode(params, NULL, 0, NULL, err); /* no keys of its own */
	if (rc)
		return rc;
	if (!common->size)
		return bdev_err(err, -EINVAL, "invalid params: 'size' is required for a null bdev");
	bdev = calloc(1, sizeof(*bdev));
	if (!bdev) {
		cb(cb_arg, bdev_err(err, -ENOMEM, "out of memory"), NULL);
		return 0;
	}
	bdev_init_common(bdev, &leap_bdev_null_ops, common);
	cb(cb_arg, 0, bdev);
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

/* Every op, all of them no-ops. */
static bool null_io_type_supported(const struct leap_bdev *bdev, enum leap_bdev_op op)
{
	return op < LEAP_BDEV_OP_CNT;
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
	.io_type_supported = null_io_type_supported,
	.channel_open = null_channel_open,
	.channel_close = null_channel_close,
	.submit = null_submit,
	.poll = null_poll,
};

LEAP_BDEV_MODULE_REGISTER(leap_bdev_null_ops)
