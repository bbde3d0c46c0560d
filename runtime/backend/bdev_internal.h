/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the backend implementations share and nobody else needs: their ops
 * tables (for the registry in bdev.c), common parameter checks, the one
 * completion path that keeps every channel's counters honest, and a FIFO of
 * finished I/Os threaded through io->priv for backends that complete from
 * poll() without a device queue (mem, null).
 */
#ifndef LEAPIO_RUNTIME_BDEV_INTERNAL_H
#define LEAPIO_RUNTIME_BDEV_INTERNAL_H

#include <assert.h>

#include "backend/bdev.h"

extern const struct leap_bdev_ops leap_bdev_uring_ops;
extern const struct leap_bdev_ops leap_bdev_mem_ops;
extern const struct leap_bdev_ops leap_bdev_null_ops;

/*
 * Fill the common header from params (name, type, size, block size). The
 * registry has already validated name, type and block_size; `size` may be 0
 * here for uring (the backend decides it).
 */
void bdev_init_common(struct leap_bdev *bdev, const struct leap_bdev_ops *ops,
		      const struct leap_bdev_params *p);

/* Cheap debug-only contract checks the controller is responsible for. */
static inline void bdev_assert_io(const struct leap_bdev *bdev, const struct leap_bdev_io *io)
{
#ifndef NDEBUG
	if (io->op == LEAP_BDEV_OP_FLUSH)
		return;
	assert(((io->offset | io->len) & (bdev->block_size - 1)) == 0);
	assert(io->len > 0 && io->offset + io->len <= bdev->size);
	assert(io->op > LEAP_BDEV_OP_WRITE || (io->iovcnt > 0 && io->iov));
	assert(io->op <= LEAP_BDEV_OP_DEALLOCATE);
#else
	(void)bdev;
	(void)io;
#endif
}

/* The only way a backend finishes an I/O: counters, then the callback. */
static inline void bdev_io_complete(struct leap_bdev_channel *ch, struct leap_bdev_io *io,
				    uint16_t status)
{
	ch->inflight--;
	ch->stats.completed++;
	if (status)
		ch->stats.errors++;
	else if (io->op == LEAP_BDEV_OP_READ)
		ch->stats.bytes_read += io->len;
	else if (io->op == LEAP_BDEV_OP_WRITE)
		ch->stats.bytes_written += io->len;
	io->cb(io, status);
}

/* FIFO of I/Os linked through priv[0]; no allocation, unbounded. */
struct bdev_io_fifo {
	struct leap_bdev_io *head, *tail;
};

static inline void bdev_fifo_push(struct bdev_io_fifo *f, struct leap_bdev_io *io)
{
	io->priv[0] = 0;
	if (f->tail)
		f->tail->priv[0] = (uint64_t)(uintptr_t)io;
	else
		f->head = io;
	f->tail = io;
}

/* Detach the whole list so I/O queued by callbacks waits for the next poll. */
static inline struct leap_bdev_io *bdev_fifo_take(struct bdev_io_fifo *f)
{
	struct leap_bdev_io *head = f->head;

	f->head = f->tail = NULL;
	return head;
}

static inline struct leap_bdev_io *bdev_fifo_next(const struct leap_bdev_io *io)
{
	return (struct leap_bdev_io *)(uintptr_t)io->priv[0];
}

#endif /* LEAPIO_RUNTIME_BDEV_INTERNAL_H */
