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
 * thread with an internal NVMe status (0: success; see
 * include/leapio/nvme_spec.h). A callback is never called from inside submit()
 * (every backend completes from poll(), so callback ordering is the same on
 * all of them). A callback may submit new I/O; it must not call poll().
 *
 * Thread rules: the registry (create/destroy/find/next/get/put) is locked
 * and may be used from any thread. A channel and everything done on it
 * (submit, poll, region_register, sleep hooks, its stats) belong to the
 * thread that uses it; open it anywhere, then hand it over.
 */
#ifndef LEAPIO_RUNTIME_BDEV_H
#define LEAPIO_RUNTIME_BDEV_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct leap_bdev;
struct leap_bdev_channel;
struct leap_bdev_io;
struct leap_poller_ops;

enum leap_bdev_op {
	LEAP_BDEV_OP_READ = 0,
	LEAP_BDEV_OP_WRITE = 1,
	LEAP_BDEV_OP_FLUSH = 2,	       /* fdatasync semantics */
	LEAP_BDEV_OP_WRITE_ZEROES = 3, /* reads back as zeroes afterwards */
	LEAP_BDEV_OP_DEALLOCATE = 4,   /* punch hole; reads back as zeroes */
	LEAP_BDEV_OP_CNT
};

/* WRITE: durable on completion (uring: RWF_DSYNC). Ignored by other ops. */
#define LEAP_BDEV_IO_FUA (1u << 0)

/*
 * Completion: `status` is an internal NVMe status (NVME_STATUS(sct, sc),
 * 0 = success), what the controller posts for the command. Backends that
 * only have an errno translate it with leap_bdev_status_from_errno().
 */
typedef void (*leap_bdev_cb)(struct leap_bdev_io *io, uint16_t status);

/*
 * One I/O. offset and len are multiples of the bdev's block_size and
 * offset + len <= size: the controller validates that before submitting
 * (backends only assert it). FLUSH ignores offset/len; WRITE_ZEROES and
 * DEALLOCATE use offset/len and ignore iov. The backend never modifies the
 * caller's fields (op..cb_arg) nor the iovec array; `priv` is its scratch
 * from submit until the callback.
 */
struct leap_bdev_io {
	uint8_t op;	   /* enum leap_bdev_op */
	uint8_t flags;	   /* LEAP_BDEV_IO_* */
	uint16_t iovcnt;   /* READ/WRITE only, >= 1 */
	int32_t buf_index; /* region registered on this channel (fixed buffer), or -1 */
	uint64_t offset;   /* bytes from the start of the bdev */
	uint64_t len;	   /* bytes */
	struct iovec *iov; /* READ/WRITE: data, total == len; must stay valid until the callback */
	leap_bdev_cb cb;
	void *cb_arg;
	uint64_t priv[2]; /* backend scratch; no per-I/O allocation anywhere */
};

/* Creation parameters; which fields matter depends on the type. */
struct leap_bdev_params {
	const char *type;     /* "uring", "mem", "null" */
	const char *name;     /* unique, < 64 bytes, used by namespaces and RPCs */
	const char *path;     /* uring: file (created if missing) or block device */
	uint64_t size;	      /* bytes, multiple of block_size; uring: 0 = the file's size
			       * (rounded down); a regular file smaller than size is grown
			       * (sparse); mem/null: required */
	uint32_t block_size;  /* 512 or 4096 (0 = 512); the smallest I/O unit and alignment */
	bool buffered;	      /* uring: open without O_DIRECT (default O_DIRECT) */
	uint32_t queue_depth; /* uring: SQ entries per channel (default 256, max 4096) */
};

/*
 * Per-channel counters, written only by the owning thread (read them there,
 * e.g. from a reactor message, for exact values).
 */
struct leap_bdev_channel_stats {
	uint64_t submitted;	/* I/Os accepted by submit() */
	uint64_t completed;	/* callbacks delivered */
	uint64_t errors;	/* callbacks with a non-zero status */
	uint64_t bytes_read;	/* READ bytes completed successfully */
	uint64_t bytes_written; /* WRITE bytes completed successfully */
	uint64_t eagain;	/* submit() refused with -EAGAIN (queue full) */
	uint64_t fixed_buf;	/* uring: SQEs issued as READ_FIXED/WRITE_FIXED */
	uint64_t vectored;	/* uring: SQEs issued as READV/WRITEV */
	uint64_t resubmits;	/* uring: short transfers, remainder reissued */
	uint64_t zero_writes;	/* uring: WRITE_ZEROES/DEALLOCATE served by writing zeroes */
	uint64_t batches;	/* uring: io_uring_submit() calls that submitted SQEs */
	uint64_t sqes;		/* uring: SQEs submitted by those calls */
};

struct leap_bdev_ops {
	const char *type;
	int (*create)(const struct leap_bdev_params *p, struct leap_bdev **out);
	void (*destroy)(struct leap_bdev *bdev);
	int (*channel_open)(struct leap_bdev *bdev, struct leap_bdev_channel **out);
	void (*channel_close)(struct leap_bdev_channel *ch);
	int (*submit)(struct leap_bdev_channel *ch, struct leap_bdev_io *io);
	int (*poll)(struct leap_bdev_channel *ch);
	/* Optional (NULL: -EOPNOTSUPP). Returns a buf_index >= 0 or -errno. */
	int (*region_register)(struct leap_bdev_channel *ch, void *addr, size_t len);
	void (*region_unregister)(struct leap_bdev_channel *ch, int buf_index);
	/* An fd that becomes readable when completions are ready (for idle sleep), or -1. */
	int (*channel_wake_fd)(struct leap_bdev_channel *ch);
	/* Optional: see leap_bdev_channel_sleep_prepare() / _sleep_done(). */
	bool (*sleep_prepare)(struct leap_bdev_channel *ch);
	void (*sleep_done)(struct leap_bdev_channel *ch);
};

/* Common header of every bdev; implementations embed it first. */
struct leap_bdev {
	const struct leap_bdev_ops *ops;
	char name[64];
	char type[16];
	char path[256];
	uint64_t size;
	uint32_t block_size;
	/*
	 * Alignment every iov_base and iov_len of a READ/WRITE must have:
	 * 1 unless the backend does direct I/O (uring O_DIRECT: the device's
	 * DIO memory alignment, usually 512). A controller whose guest buffers
	 * may be less aligned must bounce or fail such I/O.
	 */
	uint32_t mem_align;
	uint32_t refs; /* namespaces using it; destroy refuses while non-zero */
	uint32_t id;   /* 1.., never reused in a process: what policies redirect to */
	/*
	 * Arbitration in front of this backend (arb.c), set by the control
	 * plane at any time and read by reactors with relaxed loads: at most
	 * qos_inflight I/Os in flight per reactor (0: no limit, no queueing),
	 * the rest wait in per-class queues, urgent first, then high, medium
	 * and low by weighted round robin with these weights (1..255).
	 */
	uint32_t qos_inflight;
	uint8_t qos_weight[3];
	struct leap_bdev *next; /* registry list (bdev.c) */
};

struct leap_bdev_channel {
	struct leap_bdev *bdev;
	uint32_t inflight; /* submitted, callback not yet delivered */
	struct leap_bdev_channel_stats stats;
};

/* ---- registry (any thread; serialized by a mutex) ------------------- */

/*
 * Create and register a bdev by type. -EEXIST (name taken), -EINVAL (bad
 * params), -ENOENT (unknown type), or the backend's -errno (open failed...).
 * The new bdev has refs == 0.
 */
int leap_bdev_create(const struct leap_bdev_params *p, struct leap_bdev **out);
/* Unregister and free. -EBUSY while referenced, -ENOENT if not registered. */
int leap_bdev_destroy(struct leap_bdev *bdev);
/* Look up by name; no reference is taken (use leap_bdev_get() to hold it). */
struct leap_bdev *leap_bdev_find(const char *name);
/*
 * Iterate registered bdevs in creation order: pass NULL to start. The result
 * is only meaningful while no one destroys bdevs concurrently (control plane).
 */
struct leap_bdev *leap_bdev_next(struct leap_bdev *prev);
/* Find by id and take a reference (a policy redirect's first use). NULL if absent. */
struct leap_bdev *leap_bdev_get_id(uint32_t id);
/*
 * Whether a bdev with this id may exist, without a lock (a lock-free table of
 * ids < LEAP_BDEV_MAX_IDS): false means certainly not, so a policy
 * redirecting to a missing backend costs no lock per I/O.
 */
bool leap_bdev_id_live(uint32_t id);
#define LEAP_BDEV_MAX_IDS 4096

/* Find by name and take a reference (a namespace attaching). NULL if absent. */
struct leap_bdev *leap_bdev_get(const char *name);
/* Drop a reference taken by leap_bdev_get(). */
void leap_bdev_put(struct leap_bdev *bdev);

/*
 * The internal NVMe status for a backend's -errno on `op` (0 for 0): EIO and
 * ENODATA are media errors (Unrecovered Read Error on a read, Write Fault
 * otherwise), EFAULT a Data Transfer Error, ENOSPC and EDQUOT Capacity
 * Exceeded, EACCES, EPERM and EROFS Access Denied, ECANCELED Aborted by
 * Request; anything else an Internal Device Error.
 */
uint16_t leap_bdev_status_from_errno(int err, enum leap_bdev_op op);

/* ---- channels (owning thread) -------------------------------------- */

/*
 * Open a per-thread channel: everything the I/O path needs is allocated
 * here (ring, tables). Close only with inflight == 0 (poll until then);
 * closing with I/O in flight drops those callbacks.
 */
static inline int leap_bdev_channel_open(struct leap_bdev *bdev, struct leap_bdev_channel **out)
{
	return bdev->ops->channel_open(bdev, out);
}

static inline void leap_bdev_channel_close(struct leap_bdev_channel *ch)
{
	if (ch)
		ch->bdev->ops->channel_close(ch);
}

/*
 * Queue one I/O. 0: accepted, the callback will run from a later poll().
 * -EAGAIN: the channel is full (uring: SQ ring full or as many I/Os in
 * flight as the CQ ring holds); keep the I/O and retry after the next poll.
 */
static inline int leap_bdev_submit(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	return ch->bdev->ops->submit(ch, io);
}

/*
 * Push queued submissions to the device and deliver ready completions.
 * Returns the number of events handled (submissions + completions), 0 if
 * idle, or -errno on a ring failure.
 */
static inline int leap_bdev_poll(struct leap_bdev_channel *ch)
{
	return ch->bdev->ops->poll(ch);
}

/*
 * Register [addr, addr+len) (a tenant's shared memory) so I/O whose single
 * iovec lies inside it skips per-I/O page pinning (uring fixed buffers). Returns
 * the buf_index to put in leap_bdev_io.buf_index, -EOPNOTSUPP if the
 * backend has no use for it, -ENOSPC when all slots are taken, or -errno;
 * on any error just use buf_index = -1 (the I/O still works). A wrong
 * buf_index is harmless too: the backend checks the bounds.
 */
static inline int leap_bdev_region_register(struct leap_bdev_channel *ch, void *addr, size_t len)
{
	if (!ch->bdev->ops->region_register)
		return -EOPNOTSUPP;
	return ch->bdev->ops->region_register(ch, addr, len);
}

/* Release a slot. Safe with I/O in flight on it (the kernel holds its own ref). */
static inline void leap_bdev_region_unregister(struct leap_bdev_channel *ch, int buf_index)
{
	if (ch->bdev->ops->region_unregister && buf_index >= 0)
		ch->bdev->ops->region_unregister(ch, buf_index);
}

/* The fd to add to the reactor's epoll set, or -1 (no wake-up source). */
static inline int leap_bdev_channel_wake_fd(struct leap_bdev_channel *ch)
{
	return ch->bdev->ops->channel_wake_fd ? ch->bdev->ops->channel_wake_fd(ch) : -1;
}

/*
 * About to sleep: arm the wake fd and re-check. True if the thread may
 * block now: every I/O still in flight will make the wake fd readable when
 * it completes, and nothing is waiting for poll(). False: poll again.
 * Backends without a wake fd answer true only when inflight == 0. Call
 * leap_bdev_channel_sleep_done() afterwards whatever the answer.
 */
static inline bool leap_bdev_channel_sleep_prepare(struct leap_bdev_channel *ch)
{
	if (ch->bdev->ops->sleep_prepare)
		return ch->bdev->ops->sleep_prepare(ch);
	return ch->inflight == 0;
}

/* Back from sleep (or the sleep was aborted): disarm the wake fd. */
static inline void leap_bdev_channel_sleep_done(struct leap_bdev_channel *ch)
{
	if (ch->bdev->ops->sleep_done)
		ch->bdev->ops->sleep_done(ch);
}

/*
 * Reactor glue: a channel can be its own poller.
 *   leap_poller_register(r, &leap_bdev_poller_ops, ch, leap_bdev_channel_wake_fd(ch), &p);
 * poll = leap_bdev_poll (BUSY when it handled events), sleep hooks as above.
 */
extern const struct leap_poller_ops leap_bdev_poller_ops;

#endif /* LEAPIO_RUNTIME_BDEV_H */
