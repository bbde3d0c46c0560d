/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the backend modules share and nobody else needs: the header fill,
 * JSON parameter decoding with the messages every module uses, the one
 * completion path that keeps every channel's counters honest, a FIFO of
 * finished I/Os threaded through io->priv for backends that complete from
 * poll() without a device queue (mem, null), and the child-I/O pool of
 * backends that fan one I/O out to other bdevs (bdev_child.c).
 */
#ifndef LEAPIO_RUNTIME_BDEV_INTERNAL_H
#define LEAPIO_RUNTIME_BDEV_INTERNAL_H

#include <assert.h>

#include "backend/bdev.h"

/* Fill the common header from the registry's parse (name, type, size, block size). */
void bdev_init_common(struct leap_bdev *bdev, const struct leap_bdev_ops *ops,
		      const struct leap_bdev_common_params *common);

/* Format err->msg and return rc (a module's one-line failure report). */
__attribute__((format(printf, 3, 4))) int bdev_err(struct leap_bdev_err *err, int rc,
						   const char *fmt, ...);

/* ---- module parameters ----------------------------------------------- */

enum bdev_param_type {
	BDEV_PARAM_STR,	 /* const char * (borrowed from the params object) */
	BDEV_PARAM_U32,	 /* uint32_t */
	BDEV_PARAM_U64,	 /* uint64_t */
	BDEV_PARAM_BOOL, /* bool */
	BDEV_PARAM_JSON, /* json_t * (borrowed), any type */
};

struct bdev_param {
	const char *name;
	enum bdev_param_type type;
	bool required;
	size_t offset;	   /* offsetof the field in the module's struct */
	uint64_t min, max; /* integers: inclusive range when max != 0 */
};

#define BDEV_PARAM(nm, ty, req, st, fld)                                                           \
	{                                                                                          \
		.name = (nm), .type = (ty), .required = (req), .offset = offsetof(st, fld)         \
	}
#define BDEV_PARAM_RANGE(nm, ty, req, st, fld, lo, hi)                                             \
	{                                                                                          \
		.name = (nm), .type = (ty), .required = (req), .offset = offsetof(st, fld),        \
		.min = (lo), .max = (hi)                                                           \
	}

/*
 * Decode a module's keys of a bdev_create object into `out` by `spec`
 * (absent keys keep their values: pre-fill defaults; null counts as
 * absent). A key that is neither in spec nor a common key is an error, as
 * are a wrong type, an integer out of range and a missing required key:
 * -EINVAL with err->msg as the RPC layer words it ("invalid params:
 * unknown field 'x'", "'x' must be a boolean", "'x' must be in [1, 8], got
 * 9", "missing required field 'x'"). 0 otherwise.
 */
int bdev_params_decode(const json_t *params, const struct bdev_param *spec, size_t n, void *out,
		       struct leap_bdev_err *err);
/* The same for the keys in spec only, others ignored (the registry's common keys). */
int bdev_params_get(const json_t *params, const struct bdev_param *spec, size_t n, void *out,
		    struct leap_bdev_err *err);

/* ---- I/O --------------------------------------------------------------- */

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
	if (__builtin_expect(io->tmo_start != 0, 0))
		status = leap_bdev_tmo_done(ch, io, status);
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

/* ---- child I/Os (bdev_child.c) ---------------------------------------- */

/*
 * A backend that serves one I/O (the parent, submitted to its channel) with
 * several I/Os on other bdevs' channels (a mirror's legs, a stripe's
 * chunks) takes those children from a pool its channel allocated at open:
 * nothing is allocated per I/O. While children are out the pool owns the
 * parent's priv[] (outstanding count, first failing status). The parent
 * completes on the fan-out channel, through bdev_io_complete(), when its
 * last child has: from the child channel's poll (which the fan-out
 * channel's poll drives), or from bdev_child_pool_poll() when a child could
 * not even be submitted, so never inside submit().
 *
 * Use, in the fan-out backend's submit(parent):
 *   if (bdev_child_get(pool, parent, k, kids)) return -EAGAIN;  (all k or none)
 *   fill each kids[i]->io (op, offset, len, iov: kids[i]->iov has
 *   iov_per_child entries), then bdev_child_submit() each;
 * and in its poll(): poll every child channel, then bdev_child_pool_poll().
 */
struct bdev_child {
	struct leap_bdev_io io; /* what goes to the child channel (cb/cb_arg: the pool's) */
	struct leap_bdev_io *parent;
	struct leap_bdev_channel *target; /* where bdev_child_submit() sent it */
	struct iovec *iov;	 /* iov_per_child entries for slices of the parent's data */
	struct bdev_child *next; /* free list, retry list */
};

struct bdev_child_pool {
	struct leap_bdev_channel *ch; /* the fan-out channel: parents complete there */
	struct bdev_child *children;
	struct iovec *iovs;
	struct bdev_child *free;
	struct bdev_child *retry_head, *retry_tail; /* child channel was full: resubmit */
	struct bdev_io_fifo done;		    /* parents finished inside submit() */
	uint32_t size, avail, iov_per_child;
};

/* Allocate `size` children with `iov_per_child` iovecs each. 0 or -ENOMEM. */
int bdev_child_pool_init(struct bdev_child_pool *pool, struct leap_bdev_channel *ch, uint32_t size,
			 uint32_t iov_per_child);
/* Free the pool (every child back; a zeroed pool is fine). */
void bdev_child_pool_fini(struct bdev_child_pool *pool);

static inline uint32_t bdev_child_avail(const struct bdev_child_pool *pool)
{
	return pool->avail;
}

/*
 * Take `k` (>= 1) children of `parent` into out[], all or none: -EAGAIN
 * when fewer are free (the backend's submit() answers -EAGAIN in turn), 0
 * otherwise. The parent's outstanding count becomes k, its status 0. Each
 * child->io is cleared except buf_index = -1, iov = child->iov and the
 * pool's callback.
 */
int bdev_child_get(struct bdev_child_pool *pool, struct leap_bdev_io *parent, uint32_t k,
		   struct bdev_child **out);
/*
 * Submit a filled child to a child channel. A full channel (-EAGAIN) keeps
 * it for bdev_child_pool_poll(); any other refusal finishes the child with
 * that error's status. Never calls the parent's callback.
 */
void bdev_child_submit(struct bdev_child_pool *pool, struct bdev_child *child,
		       struct leap_bdev_channel *target);
/* Resubmit children that found their channel full and finish parents left done. Events. */
int bdev_child_pool_poll(struct bdev_child_pool *pool);

#endif /* LEAPIO_RUNTIME_BDEV_INTERNAL_H */
