/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Backends ("bdevs"): where a namespace's blocks really live. One ops table,
 * one folder per implementation (backend/uring/, backend/mem/,
 * backend/null/), each registering itself with LEAP_BDEV_MODULE_REGISTER(),
 * the SPDK bdev module pattern: the registry, the RPC layer and the
 * controller model know no backend type. A bdev is shared; each reactor
 * thread opens its own channel on it (an io_uring ring, say) and owns that
 * channel outright, so the I/O path takes no lock.
 *
 * Creation: leap_bdev_create() takes the bdev_create JSON object. The
 * registry parses the keys every backend has (name, type, size,
 * block_size), reserves the name, and hands the object to the module, which
 * validates its own keys (unknown key, wrong type, range: each with a
 * message naming the field) and creates the bdev, now or later: completion
 * is a callback, and no registry lock is held meanwhile, so a backend may
 * open other bdevs (a mirror's children) or connect to a remote target.
 * write_config() gives back the object that recreates a bdev; dump_info()
 * its state for bdev_list.
 *
 * I/O contract: the caller owns `struct leap_bdev_io` (pre-allocated per
 * queue-pair slot, never malloc'ed per I/O), fills it and calls
 * leap_bdev_submit(). The backend may queue it; queued submissions reach the
 * device at the next leap_bdev_poll() (batching: one io_uring_submit per poll
 * iteration), which also reaps completions and calls io->cb on the channel's
 * thread with an internal NVMe status (0: success; see
 * include/leapio/nvme_spec.h). A callback is never called from inside
 * submit() (every backend completes from poll(), so callback ordering is the
 * same on all of them). A callback may submit new I/O; it must not call
 * poll().
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

#include <jansson.h>

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
 * from submit until the callback (a fan-out backend lends it to its child
 * pool, see bdev_internal.h).
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
	/*
	 * I/O timeouts (bdev_timeout.c): written by leap_bdev_submit() and the
	 * completion, never by the caller or the backend. tmo_start is the
	 * submit time (CLOCK_MONOTONIC ns) of an I/O on a channel whose bdev
	 * has an io_timeout_ms, 0 otherwise.
	 */
	uint64_t tmo_start;
	struct leap_bdev_io *tmo_next, *tmo_prev;
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
	uint64_t timeouts;	/* I/Os outstanding longer than the bdev's io_timeout_ms */
	uint64_t aborts;	/* of those, aborted by the backend (the rest are waited for) */
};

/*
 * The keys every bdev_create object has, parsed once by the registry:
 * "name" (1..63 bytes, unique), "type" (a registered module), "size"
 * (bytes, a multiple of block_size; 0 = not given), "block_size"
 * (512 or 4096, default 512) and "io_timeout_ms" (0 = none, the default:
 * see LEAP_BDEV_STATUS_TIMEOUT).
 */
struct leap_bdev_common_params {
	const char *name;
	const char *type;
	uint64_t size;
	uint32_t block_size;
	uint32_t io_timeout_ms;
};

/* Why a creation failed, in words for the user (an RPC error message). */
struct leap_bdev_err {
	char msg[256];
};

/* Creation finished: rc 0 and the registered bdev, or -errno and NULL. */
typedef void (*leap_bdev_create_cb)(void *cb_arg, int rc, struct leap_bdev *bdev);

/*
 * A backend module. Calls marked "control" come from control-plane threads
 * (never two at once for one bdev); the channel calls from the channel's
 * owning thread.
 */
struct leap_bdev_ops {
	const char *type; /* the "type" of bdev_create; unique among modules */
	/*
	 * Control. Validate `params` (the whole bdev_create object: the
	 * common keys are already in *common, validated; every other key is
	 * this module's, and an unknown one is an error) and create the bdev,
	 * filling its header with bdev_init_common(). A bad request returns
	 * -EINVAL now with err->msg naming the field ("invalid params: ..."),
	 * and cb is never called. Otherwise return 0 and call cb(cb_arg, 0,
	 * bdev) or cb(cb_arg, -errno, NULL) with err->msg set, exactly once,
	 * from any thread, now or later; *common, params and err stay valid
	 * until then. No registry lock is held: the module may use the
	 * registry (leap_bdev_get() a child) and block only if it completes
	 * synchronously.
	 */
	int (*create)(const struct leap_bdev_common_params *common, const json_t *params,
		      struct leap_bdev_err *err, leap_bdev_create_cb cb, void *cb_arg);
	/* Control. Free the bdev (no channel open, refs == 0). */
	void (*destroy)(struct leap_bdev *bdev);
	/*
	 * Control. Add this module's keys to `params_out` (which already holds
	 * name, type, size, block_size) so that bdev_create with it rebuilds
	 * the same bdev: resolved values, not defaults. NULL: no keys of its own.
	 */
	int (*write_config)(const struct leap_bdev *bdev, json_t *params_out);
	/* Control. Add state worth showing (bdev_list) to `out`; NULL: nothing. */
	int (*dump_info)(const struct leap_bdev *bdev, json_t *out);
	/* Whether submit() accepts `op` on this bdev; NULL: READ, WRITE and FLUSH only. */
	bool (*io_type_supported)(const struct leap_bdev *bdev, enum leap_bdev_op op);
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
	/*
	 * Optional, channel thread: finish `io` (accepted by submit(), not
	 * completed yet) early. 0: it will complete from a later poll(), with
	 * an error status unless it finished meanwhile; never call the callback
	 * from here. -EOPNOTSUPP (also NULL) or -EBUSY: it completes when the
	 * device completes it. Used by I/O timeouts and by backends that fan
	 * out (aborting a parent aborts its children).
	 */
	int (*abort)(struct leap_bdev_channel *ch, struct leap_bdev_io *io);
	/*
	 * Optional, control thread: leapd is stopping. A backend that holds
	 * I/O for a path that may come back (a remote one reconnecting) stops
	 * waiting for it: what it holds and what comes next fail now with the
	 * status a lost path would get, so the drains of shutdown end. I/O at
	 * a live device is left to complete. NULL: nothing is ever held.
	 */
	void (*shutdown)(struct leap_bdev *bdev);
	/*
	 * Optional: the module's own control-plane methods, ending with an
	 * entry whose name is NULL (see struct leap_bdev_method).
	 */
	const struct leap_bdev_method *methods;
};

/*
 * A control-plane method of a module, served by leapd's JSON-RPC layer
 * under `name` ("bdev_<type>_<verb>", e.g. "bdev_fault_set"), which knows
 * no module: it hands the request's params to leap_bdev_method_call(). The
 * params' "name" is the bdev, found and checked to be of this module before
 * fn runs; every other key is the module's to decode (bdev_params_decode()
 * with "name" in its table). Control thread, never two at once. Returns 0
 * and *result (a new reference; NULL answers true), or -errno with
 * err->msg (-EINVAL: a bad parameter, worded "invalid params: ...").
 */
struct leap_bdev_method {
	const char *name;
	int (*fn)(struct leap_bdev *bdev, const json_t *params, json_t **result,
		  struct leap_bdev_err *err);
};

/*
 * Register a module (from a constructor: use the macro). A second module
 * with the same type is refused with a log line.
 */
void leap_bdev_module_register(const struct leap_bdev_ops *ops);

/*
 * In a backend module's file, after its ops table (which must have external
 * linkage, named leap_bdev_<type>_ops by convention):
 *   LEAP_BDEV_MODULE_REGISTER(leap_bdev_mem_ops);
 */
#define LEAP_BDEV_MODULE_REGISTER(ops)                                                             \
	__attribute__((constructor)) static void leap_bdev_module_ctor_##ops(void)                 \
	{                                                                                          \
		leap_bdev_module_register(&(ops));                                                 \
	}

/*
 * A module whose only reference is its constructor is not pulled out of a
 * static library: leapd links the runtime with --whole-archive; a test or a
 * benchmark names each module it uses once, at file scope:
 *   LEAP_BDEV_MODULE_USE(leap_bdev_mem_ops);
 */
#define LEAP_BDEV_MODULE_USE(ops)                                                                  \
	extern const struct leap_bdev_ops ops;                                                     \
	__attribute__((used)) static const struct leap_bdev_ops *const leap_bdev_use_##ops = &(ops)

/* Registered modules in type order: pass NULL to start. */
const struct leap_bdev_ops *leap_bdev_module_next(const struct leap_bdev_ops *prev);

/* Common header of every bdev; implementations embed it first. */
struct leap_bdev {
	const struct leap_bdev_ops *ops;
	char name[64];
	char type[16];
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
	 * An I/O outstanding longer than this (ms; 0: no limit) is aborted
	 * where the backend can and completes with LEAP_BDEV_STATUS_TIMEOUT,
	 * so a hung device cannot hold a tenant's queue forever.
	 */
	uint32_t io_timeout_ms;
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
	/* I/O timeouts (bdev_timeout.c): accepted I/Os oldest first, while the bdev has one. */
	struct leap_bdev_io *tmo_head, *tmo_tail;
	uint32_t tmo_polls;
	bool tmo_warned;
};

/* ---- registry (any thread; serialized by a mutex) ------------------- */

/*
 * Create and register a bdev from its bdev_create object (borrowed until
 * cb). A request that cannot be started returns -errno now, with err->msg
 * set and no callback: -EINVAL (bad params; the message starts with
 * "invalid params:"), -EEXIST (the name is taken or being created). Otherwise
 * returns 0 and cb(cb_arg, rc, bdev) runs exactly once, from any thread, maybe
 * before this returns; on failure err->msg says why (err stays the caller's
 * until then). While the module works the name is reserved: a second create
 * gets -EEXIST and leap_bdev_find() does not see it yet. The new bdev has
 * refs == 0.
 */
int leap_bdev_create(const json_t *params, struct leap_bdev_err *err, leap_bdev_create_cb cb,
		     void *cb_arg);
/*
 * leap_bdev_create() and wait for its callback (setup code, tests,
 * benchmarks): 0 and *out, or -errno (err may be NULL). Only for modules
 * that do not need the calling thread to complete.
 */
int leap_bdev_create_wait(const json_t *params, struct leap_bdev **out, struct leap_bdev_err *err);
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
 * The bdev_create object that rebuilds `bdev` (config_save): the common keys
 * plus the module's write_config(). New reference, or NULL (ENOMEM).
 */
json_t *leap_bdev_config(const struct leap_bdev *bdev);
/*
 * A description for bdev_list: name, type, size, block_size, blocks, id,
 * namespaces, qos, then the module's dump_info() keys. New reference or NULL.
 */
json_t *leap_bdev_info(const struct leap_bdev *bdev);

/* Whether `op` may be submitted to this bdev (Identify: ONCS, DSM). */
static inline bool leap_bdev_io_type_supported(const struct leap_bdev *bdev, enum leap_bdev_op op)
{
	if (bdev->ops->io_type_supported)
		return bdev->ops->io_type_supported(bdev, op);
	return op == LEAP_BDEV_OP_READ || op == LEAP_BDEV_OP_WRITE || op == LEAP_BDEV_OP_FLUSH;
}

/*
 * The internal NVMe status for a backend's -errno on `op` (0 for 0): EIO and
 * ENODATA are media errors (Unrecovered Read Error on a read, Write Fault
 * otherwise), EFAULT a Data Transfer Error, ENOSPC and EDQUOT Capacity
 * Exceeded, EACCES, EPERM and EROFS Access Denied, ECANCELED Aborted by
 * Request; anything else an Internal Device Error.
 */
uint16_t leap_bdev_status_from_errno(int err, enum leap_bdev_op op);

/*
 * The status of an I/O that outlived its bdev's io_timeout_ms and was
 * aborted: Command Aborted By Host (status code type Path Related, 0x71),
 * what Linux's fabrics hosts complete a timed-out command with. DNR is
 * clear: the host may retry it.
 */
#define LEAP_BDEV_STATUS_TIMEOUT ((uint16_t)((0x3 << 8) | 0x71))

/* ---- module methods (control thread) ---------------------------------- */

/* Every module's methods, module by module: pass NULL to start. */
const struct leap_bdev_method *leap_bdev_method_next(const struct leap_bdev_method *prev);
/*
 * Run the module method called `method` on the bdev named by params'
 * "name". -ENOSYS when no module has that method, -EINVAL (bad or missing
 * "name", or a bdev of another type) and -ENOENT (no such bdev) with
 * err->msg; otherwise what the method returns (see struct leap_bdev_method).
 */
int leap_bdev_method_call(const char *method, const json_t *params, json_t **result,
			  struct leap_bdev_err *err);

/* ---- I/O timeouts (bdev_timeout.c; called by the inline wrappers below) --- */

#define LEAP_BDEV_TMO_EXPIRED UINT64_MAX /* io->tmo_start of an I/O past its timeout */

/* submit() accepted io on a bdev with a timeout: stamp and queue it. */
void leap_bdev_tmo_track(struct leap_bdev_channel *ch, struct leap_bdev_io *io);
/* After a poll() that handled `events`: abort what is overdue (clock read rate-limited). */
void leap_bdev_tmo_poll(struct leap_bdev_channel *ch, int events);
/* A tracked io completes with `status`: unqueue it; the status the caller gets. */
uint16_t leap_bdev_tmo_done(struct leap_bdev_channel *ch, struct leap_bdev_io *io, uint16_t status);
/*
 * When the oldest tracked I/O on ch will be overdue (CLOCK_MONOTONIC ns),
 * or 0 when none is tracked: a backend that sleeps on a timer of its own
 * arms it no later than this.
 */
uint64_t leap_bdev_tmo_deadline(const struct leap_bdev_channel *ch);

/* ---- channels (owning thread) -------------------------------------- */

/*
 * Open a per-thread channel: everything the I/O path needs is allocated
 * here (ring, tables, connections). Close only with inflight == 0 (poll
 * until then); closing with I/O in flight drops those callbacks. Opening
 * may block (a network backend connects): never call it on a data path.
 */
static inline int leap_bdev_channel_open(struct leap_bdev *bdev, struct leap_bdev_channel **out)
{
	int rc = bdev->ops->channel_open(bdev, out);

	if (rc == 0) {
		(*out)->tmo_head = (*out)->tmo_tail = NULL;
		(*out)->tmo_polls = 0;
		(*out)->tmo_warned = false;
	}
	return rc;
}

static inline void leap_bdev_channel_close(struct leap_bdev_channel *ch)
{
	if (ch)
		ch->bdev->ops->channel_close(ch);
}

typedef void (*leap_bdev_channel_open_cb)(void *cb_arg, int rc, struct leap_bdev_channel *ch);

/*
 * Open a channel on a helper thread and call cb(cb_arg, rc, ch) there when
 * done (rc 0 and the channel, or -errno and NULL): for a thread that must
 * not block, such as a reactor; cb hands the channel over (a reactor
 * message). The caller holds a reference on bdev until cb. 0, or -errno
 * when no helper could be started (cb is then never called).
 */
int leap_bdev_channel_open_async(struct leap_bdev *bdev, leap_bdev_channel_open_cb cb,
				 void *cb_arg);

/*
 * Queue one I/O. 0: accepted, the callback will run from a later poll().
 * -EAGAIN: the channel is full (uring: SQ ring full or as many I/Os in
 * flight as the CQ ring holds); keep the I/O and retry after the next poll.
 */
static inline int leap_bdev_submit(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	int rc = ch->bdev->ops->submit(ch, io);

	/* After submit(): it never completes the I/O, and a refused one is not tracked. */
	io->tmo_start = 0;
	if (__builtin_expect(ch->bdev->io_timeout_ms != 0, 0) && rc == 0)
		leap_bdev_tmo_track(ch, io);
	return rc;
}

/*
 * Ask the backend to finish io early (see leap_bdev_ops.abort): 0 when it
 * will complete from a later poll(), -EOPNOTSUPP or -EBUSY when it cannot.
 */
static inline int leap_bdev_abort(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	return ch->bdev->ops->abort ? ch->bdev->ops->abort(ch, io) : -EOPNOTSUPP;
}

/*
 * Push queued submissions to the device and deliver ready completions.
 * Returns the number of events handled (submissions + completions), 0 if
 * idle, or -errno on a ring failure.
 */
static inline int leap_bdev_poll(struct leap_bdev_channel *ch)
{
	int n = ch->bdev->ops->poll(ch);

	if (__builtin_expect(ch->tmo_head != NULL, 0))
		leap_bdev_tmo_poll(ch, n);
	return n;
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
