/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Backends ("bdevs"): where a namespace's blocks really live. One ops table,
 * one file per implementation (bdev_uring.c, bdev_mem.c, bdev_null.c), the
 * SPDK bdev module pattern. A bdev is shared; each reactor thread opens its
 * own channel on it (an io_uring ring, say) and owns that channel outright,
 * so the I/O path takes no lock.
 *
 * I/O contract: the caller owns `struct leap_bdev_io` (pre-allocated per
 * queue-pair slot, never malloc'ed per I/O), fills it and calls
 * leap_bdev_submit(). The backend may queue it; queued submissions reach the
 * device at the next leap_bdev_poll() (batching: one io_uring_submit per poll
 * iteration), which also reaps completions and calls io->cb on the channel's
 * thread with 0 or -errno. A callback may submit new I/O.
 */
#ifndef LEAPIO_RUNTIME_BDEV_H
#define LEAPIO_RUNTIME_BDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct leap_bdev;
struct leap_bdev_channel;
struct leap_bdev_io;

enum leap_bdev_op {
	LEAP_BDEV_OP_READ = 0,
	LEAP_BDEV_OP_WRITE = 1,
	LEAP_BDEV_OP_FLUSH = 2,	       /* fdatasync semantics */
	LEAP_BDEV_OP_WRITE_ZEROES = 3, /* reads back as zeroes afterwards */
	LEAP_BDEV_OP_DEALLOCATE = 4,   /* punch hole; reads back as zeroes */
};

#define LEAP_BDEV_IO_FUA (1u << 0)

typedef void (*leap_bdev_cb)(struct leap_bdev_io *io, int status);

struct leap_bdev_io {
	uint8_t op;	    /* enum leap_bdev_op */
	uint8_t flags;	    /* LEAP_BDEV_IO_* */
	uint16_t iovcnt;    /* READ/WRITE only */
	int32_t buf_index;  /* region registered on this channel (fixed buffer), or -1 */
	uint64_t offset;    /* bytes from the start of the bdev */
	uint64_t len;	    /* bytes */
	struct iovec *iov;  /* READ/WRITE: data, total == len */
	leap_bdev_cb cb;
	void *cb_arg;
	uint64_t priv[2];   /* backend scratch; no per-I/O allocation anywhere */
};

/* Creation parameters; which fields matter depends on the type. */
struct leap_bdev_params {
	const char *type;     /* "uring", "mem", "null" */
	const char *name;     /* unique, used by namespaces and RPCs */
	const char *path;     /* uring: file or block device */
	uint64_t size;	      /* bytes; uring: 0 = the file's size (a regular file is grown if larger) */
	uint32_t block_size;  /* 512 or 4096; the smallest I/O unit and alignment */
	bool buffered;	      /* uring: open without O_DIRECT (default O_DIRECT) */
	uint32_t queue_depth; /* uring: ring entries per channel (default 256) */
};

struct leap_bdev_ops {
	const char *type;
	int (*create)(const struct leap_bdev_params *p, struct leap_bdev **out);
	void (*destroy)(struct leap_bdev *bdev);
	int (*channel_open)(struct leap_bdev *bdev, struct leap_bdev_channel **out);
	void (*channel_close)(struct leap_bdev_channel *ch);
	int (*submit)(struct leap_bdev_channel *ch, struct leap_bdev_io *io);
	int (*poll)(struct leap_bdev_channel *ch);
	int (*region_register)(struct leap_bdev_channel *ch, void *addr, size_t len);
	void (*region_unregister)(struct leap_bdev_channel *ch, int buf_index);
	/* An fd that becomes readable when completions are ready (for idle sleep), or -1. */
	int (*channel_wake_fd)(struct leap_bdev_channel *ch);
};

/* Common header of every bdev; implementations embed it first. */
struct leap_bdev {
	const struct leap_bdev_ops *ops;
	char name[64];
	char type[16];
	char path[256];
	uint64_t size;
	uint32_t block_size;
	uint32_t refs; /* namespaces using it; destroy refuses while non-zero */
};

struct leap_bdev_channel {
	struct leap_bdev *bdev;
	uint32_t inflight; /* submitted, not yet completed */
};

/* Create and register a bdev by type. -EEXIST (name taken), -EINVAL (bad params), -ENOENT (type). */
int leap_bdev_create(const struct leap_bdev_params *p, struct leap_bdev **out);
/* Unregister and free. -EBUSY while referenced. */
int leap_bdev_destroy(struct leap_bdev *bdev);
struct leap_bdev *leap_bdev_find(const char *name);
/* Iterate registered bdevs: pass NULL to start. */
struct leap_bdev *leap_bdev_next(struct leap_bdev *prev);

static inline int leap_bdev_submit(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	return ch->bdev->ops->submit(ch, io);
}

static inline int leap_bdev_poll(struct leap_bdev_channel *ch)
{
	return ch->bdev->ops->poll(ch);
}

#endif /* LEAPIO_RUNTIME_BDEV_H */
