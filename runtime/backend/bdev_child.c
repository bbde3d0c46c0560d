// SPDX-License-Identifier: BSD-3-Clause
/*
 * The child-I/O pool of fan-out backends (see bdev_internal.h): children
 * pre-allocated per channel with their iovecs, handed out all-or-none per
 * parent, each completion folded into the parent (outstanding count in
 * parent->priv[0], first failing status in priv[1]), the parent completed
 * on its own channel by the last child. Everything runs on the fan-out
 * channel's thread, so there is no atomic and no lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "leapio/common.h"
#include "bdev_internal.h"

int bdev_child_pool_init(struct bdev_child_pool *pool, struct leap_bdev_channel *ch, uint32_t size,
			 uint32_t iov_per_child)
{
	memset(pool, 0, sizeof(*pool));
	pool->children = calloc(size, sizeof(*pool->children));
	pool->iovs =
	    calloc((size_t)size * (iov_per_child ? iov_per_child : 1), sizeof(*pool->iovs));
	if (!pool->children || !pool->iovs) {
		bdev_child_pool_fini(pool);
		return -ENOMEM;
	}
	pool->ch = ch;
	pool->size = pool->avail = size;
	pool->iov_per_child = iov_per_child;
	for (uint32_t i = size; i-- > 0;) {
		pool->children[i].iov =
		    pool->iovs + (size_t)i * (iov_per_child ? iov_per_child : 1);
		pool->children[i].next = pool->free;
		pool->free = &pool->children[i];
	}
	return 0;
}

void bdev_child_pool_fini(struct bdev_child_pool *pool)
{
	free(pool->children);
	free(pool->iovs);
	memset(pool, 0, sizeof(*pool));
}

static void child_put(struct bdev_child_pool *pool, struct bdev_child *c)
{
	c->parent = NULL;
	c->next = pool->free;
	pool->free = c;
	pool->avail++;
}

/*
 * Fold one finished child into its parent. Returns the parent when that
 * was its last child (the caller completes it), else NULL.
 */
static struct leap_bdev_io *child_finish(struct bdev_child_pool *pool, struct bdev_child *c,
					 uint16_t status)
{
	struct leap_bdev_io *parent = c->parent;

	child_put(pool, c);
	if (status && !parent->priv[1])
		parent->priv[1] = status;
	return --parent->priv[0] == 0 ? parent : NULL;
}

/* A child completed on its channel: from that channel's poll, driven by ours. */
static void child_cb(struct leap_bdev_io *io, uint16_t status)
{
	struct bdev_child_pool *pool = io->cb_arg;
	struct bdev_child *c = leap_container_of(io, struct bdev_child, io);
	struct leap_bdev_io *parent = child_finish(pool, c, status);

	if (parent)
		bdev_io_complete(pool->ch, parent, (uint16_t)parent->priv[1]);
}

int bdev_child_get(struct bdev_child_pool *pool, struct leap_bdev_io *parent, uint32_t k,
		   struct bdev_child **out)
{
	if (!k || pool->avail < k)
		return -EAGAIN;
	parent->priv[0] = k;
	parent->priv[1] = 0;
	for (uint32_t i = 0; i < k; i++) {
		struct bdev_child *c = pool->free;

		pool->free = c->next;
		memset(&c->io, 0, sizeof(c->io));
		c->io.buf_index = -1;
		c->io.iov = c->iov;
		c->io.cb = child_cb;
		c->io.cb_arg = pool;
		c->parent = parent;
		c->target = NULL;
		c->next = NULL;
		out[i] = c;
	}
	pool->avail -= k;
	return 0;
}

void bdev_child_submit(struct bdev_child_pool *pool, struct bdev_child *c,
		       struct leap_bdev_channel *target)
{
	struct leap_bdev_io *parent;
	int rc;

	c->target = target;
	/* Behind children already waiting, so a parent's pieces keep their order. */
	rc = pool->retry_head ? -EAGAIN : leap_bdev_submit(target, &c->io);
	if (leap_likely(rc == 0))
		return;
	if (rc == -EAGAIN) {
		c->next = NULL;
		if (pool->retry_tail)
			pool->retry_tail->next = c;
		else
			pool->retry_head = c;
		pool->retry_tail = c;
		return;
	}
	/* Inside the parent's submit(): its callback must wait for our poll. */
	parent = child_finish(pool, c, leap_bdev_status_from_errno(rc, c->io.op));
	if (parent)
		bdev_fifo_push(&pool->done, parent);
}

int bdev_child_pool_poll(struct bdev_child_pool *pool)
{
	struct leap_bdev_io *parent, *next;
	int n = 0;

	while (pool->retry_head) {
		struct bdev_child *c = pool->retry_head;
		int rc = leap_bdev_submit(c->target, &c->io);

		if (rc == -EAGAIN)
			break;
		pool->retry_head = c->next;
		if (!pool->retry_head)
			pool->retry_tail = NULL;
		n++;
		if (rc) {
			parent = child_finish(pool, c, leap_bdev_status_from_errno(rc, c->io.op));
			if (parent)
				bdev_io_complete(pool->ch, parent, (uint16_t)parent->priv[1]);
		}
	}
	for (parent = bdev_fifo_take(&pool->done); parent; parent = next, n++) {
		/* Read the link first: the callback may resubmit the parent. */
		next = bdev_fifo_next(parent);
		bdev_io_complete(pool->ch, parent, (uint16_t)parent->priv[1]);
	}
	return n;
}
