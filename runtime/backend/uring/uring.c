// SPDX-License-Identifier: BSD-3-Clause
/*
 * The io_uring backend: a file or block device, O_DIRECT unless asked for
 * buffered I/O. Each channel owns one ring with the file registered as fixed
 * file 0 and a sparse table of fixed buffers into which tenants' shared
 * regions are registered once, so the common I/O (one iovec inside a tenant
 * region) is a READ_FIXED/WRITE_FIXED with no per-I/O page pinning.
 *
 * submit() only fills an SQE; poll() makes one io_uring_submit() for the
 * whole batch and reaps every CQE. An I/O may take several steps, all
 * driven from its completions with state in io->priv (no allocation):
 *   priv[0] = bytes done (short read/write remainder, zero-write progress)
 *   priv[1] = stage (plain read/write, fsync, punch, zero range, zero writes)
 * A step that finds the SQ full waits in a per-channel retry ring sized to
 * the in-flight limit, so it can never overflow. In-flight I/O is capped at
 * the CQ size so the kernel never has to buffer overflowing CQEs.
 *
 * Write Zeroes is fallocate(ZERO_RANGE) and Deallocate fallocate(PUNCH_HOLE);
 * when the filesystem refuses (EOPNOTSUPP) the bdev remembers it and writes
 * from a shared read-only zero buffer instead.
 *
 * Parameters besides the common ones: "path" (required: a file, created if
 * missing, or a block device; "size" 0 or absent = the file's size rounded
 * down, a regular file smaller than "size" grows sparse), "buffered"
 * (open without O_DIRECT, default false), "queue_depth" (SQ entries per
 * channel, 1..4096, default 256).
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "backend/bdev_internal.h"

extern const struct leap_bdev_ops leap_bdev_uring_ops;

#define URING_DEFAULT_QD    256u
#define URING_MAX_QD	    4096u
#define URING_BUF_SLOTS	    64u
#define URING_SLICE_SHIFT   30 /* the kernel caps one fixed buffer at 1 GiB */
#define URING_ZERO_BUF_SIZE (1u << 20)
#define URING_CQE_BATCH	    64u

enum uring_stage {
	ST_RW = 0,
	ST_FLUSH,
	ST_PUNCH,
	ST_ZERO_RANGE,
	ST_ZERO_WRITES,
};

struct uring_bdev {
	struct leap_bdev base;
	char path[256];
	bool buffered;
	int fd;
	uint32_t queue_depth;
	void *zero_buf; /* URING_ZERO_BUF_SIZE bytes, PROT_READ: the zero page, shared */
	/* Learned once from the filesystem, read by every channel's thread. */
	atomic_bool no_punch, no_zero_range;
};

/*
 * A registered region occupies one fixed-buffer slot per 1 GiB slice; the
 * head slot (the buf_index handed out) describes the whole region.
 */
struct uring_slot {
	uintptr_t base; /* head: region start */
	size_t len;	/* head: region length */
	uint32_t nslots;
	bool head;
};

struct uring_channel {
	struct leap_bdev_channel base;
	struct io_uring ring;
	int efd;
	bool buffers_ok; /* sparse buffer table registered */
	uint32_t max_inflight;
	struct leap_bdev_io **retry; /* FIFO of max_inflight entries */
	uint32_t retry_head, retry_count;
	uint64_t slot_map;
	struct uring_slot slots[URING_BUF_SLOTS];
};

static inline struct uring_bdev *to_ub(struct leap_bdev *b)
{
	return (struct uring_bdev *)b;
}

/* ---- bdev: open, size, alignment ----------------------------------- */

static int uring_open_file(struct uring_bdev *ub, bool *created, struct leap_bdev_err *err)
{
	int flags = O_RDWR | O_CLOEXEC | (ub->buffered ? 0 : O_DIRECT);
	int fd = open(ub->path, flags);

	*created = false;
	if (fd < 0 && errno == ENOENT) {
		fd = open(ub->path, flags | O_CREAT | O_EXCL, 0600);
		*created = fd >= 0;
	}
	if (fd < 0) {
		int rc = -errno;

		if (rc == -EINVAL && !ub->buffered)
			return bdev_err(err, rc, "%s: O_DIRECT not supported here (use buffered)",
					ub->path);
		return bdev_err(err, rc, "open %s: %s", ub->path, strerror(-rc));
	}
	return fd;
}

/* The device's direct-I/O alignment must not exceed our block size. */
static int uring_check_dio(struct uring_bdev *ub, const struct stat *st, struct leap_bdev_err *err)
{
	struct statx sx = { 0 };
	uint32_t off_align = 0, mem_align = 0;
	int lbs;

	if (statx(ub->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN)) {
		off_align = sx.stx_dio_offset_align;
		mem_align = sx.stx_dio_mem_align;
	} else if (S_ISBLK(st->st_mode) && ioctl(ub->fd, BLKSSZGET, &lbs) == 0) {
		off_align = mem_align = (uint32_t)lbs;
	}
	if (!off_align && (sx.stx_mask & STATX_DIOALIGN))
		return bdev_err(err, -EINVAL, "%s does not support O_DIRECT (use buffered)",
				ub->path);
	if (off_align > ub->base.block_size)
		return bdev_err(err, -EINVAL,
				"device needs %u-byte aligned direct I/O, block_size is %u",
				off_align, ub->base.block_size);
	ub->base.mem_align = mem_align ? mem_align : ub->base.block_size;
	return 0;
}

static int uring_size(struct uring_bdev *ub, const struct stat *st, uint64_t want,
		      struct leap_bdev_err *err)
{
	uint64_t have, bs = ub->base.block_size;

	if (S_ISBLK(st->st_mode)) {
		if (ioctl(ub->fd, BLKGETSIZE64, &have) != 0)
			return bdev_err(err, -errno, "%s: BLKGETSIZE64: %s", ub->path,
					strerror(errno));
	} else if (S_ISREG(st->st_mode)) {
		have = (uint64_t)st->st_size;
	} else {
		return bdev_err(err, -EINVAL, "%s is neither a regular file nor a block device",
				ub->path);
	}
	if (!want) {
		want = have / bs * bs;
		if (!want)
			return bdev_err(err, -EINVAL, "%s is empty and no size was given",
					ub->path);
	} else if (have < want) {
		if (S_ISBLK(st->st_mode))
			return bdev_err(err, -EINVAL, "device %s holds %llu bytes, %llu asked",
					ub->path, (unsigned long long)have,
					(unsigned long long)want);
		/* Sparse growth: the new tail reads as zeroes and costs nothing. */
		if (ftruncate(ub->fd, (off_t)want) != 0)
			return bdev_err(err, -errno, "grow %s: %s", ub->path, strerror(errno));
	}
	ub->base.size = want;
	return 0;
}

static void uring_destroy(struct leap_bdev *bdev)
{
	struct uring_bdev *ub = to_ub(bdev);

	if (!ub)
		return;
	if (ub->zero_buf && ub->zero_buf != MAP_FAILED)
		munmap(ub->zero_buf, URING_ZERO_BUF_SIZE);
	if (ub->fd >= 0)
		close(ub->fd);
	free(ub);
}

struct uring_params {
	const char *path;
	bool buffered;
	uint32_t queue_depth;
};

static const struct bdev_param uring_spec[] = {
	BDEV_PARAM("path", BDEV_PARAM_STR, false, struct uring_params, path),
	BDEV_PARAM("buffered", BDEV_PARAM_BOOL, false, struct uring_params, buffered),
	BDEV_PARAM_RANGE("queue_depth", BDEV_PARAM_U32, false, struct uring_params, queue_depth, 1,
			 URING_MAX_QD),
};

/* Everything that can fail on the system's side; the result goes to the callback. */
static int uring_open(struct uring_bdev *ub, uint64_t size, struct leap_bdev_err *err)
{
	struct stat st;
	bool created = false;
	int rc;

	ub->fd = uring_open_file(ub, &created, err);
	if (ub->fd < 0)
		return ub->fd;
	if (fstat(ub->fd, &st) != 0) {
		rc = bdev_err(err, -errno, "fstat %s: %s", ub->path, strerror(errno));
		goto err_close;
	}
	rc = uring_size(ub, &st, size, err);
	if (rc)
		goto err_close;
	if (!ub->buffered) {
		rc = uring_check_dio(ub, &st, err);
		if (rc)
			goto err_close;
	}
	/* Never written: every page is the kernel's zero page. */
	ub->zero_buf =
	    mmap(NULL, URING_ZERO_BUF_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ub->zero_buf == MAP_FAILED) {
		rc = bdev_err(err, -errno, "zero buffer: %s", strerror(errno));
		goto err_close;
	}
	return 0;

err_close:
	close(ub->fd);
	ub->fd = -1;
	if (created)
		unlink(ub->path);
	return rc;
}

static int uring_create(const struct leap_bdev_common_params *common, const json_t *params,
			struct leap_bdev_err *err, leap_bdev_create_cb cb, void *cb_arg)
{
	struct uring_params p = { .queue_depth = URING_DEFAULT_QD };
	struct uring_bdev *ub;
	int rc;

	rc = bdev_params_decode(params, uring_spec, LEAP_ARRAY_SIZE(uring_spec), &p, err);
	if (rc)
		return rc;
	if (!p.path || !p.path[0])
		return bdev_err(err, -EINVAL,
				"invalid params: 'path' is required for a uring bdev");
	if (strlen(p.path) >= sizeof(ub->path))
		return bdev_err(err, -EINVAL,
				"invalid params: 'path' must be shorter than %zu bytes",
				sizeof(ub->path));
	ub = calloc(1, sizeof(*ub));
	if (!ub) {
		cb(cb_arg, bdev_err(err, -ENOMEM, "out of memory"), NULL);
		return 0;
	}
	ub->fd = -1;
	bdev_init_common(&ub->base, &leap_bdev_uring_ops, common);
	snprintf(ub->path, sizeof(ub->path), "%s", p.path);
	ub->buffered = p.buffered;
	ub->queue_depth = p.queue_depth;
	rc = uring_open(ub, common->size, err);
	if (rc) {
		uring_destroy(&ub->base);
		cb(cb_arg, rc, NULL);
		return 0;
	}
	cb(cb_arg, 0, &ub->base);
	return 0;
}

static int uring_write_config(const struct leap_bdev *bdev, json_t *out)
{
	const struct uring_bdev *ub = (const struct uring_bdev *)bdev;

	if (json_object_set_new(out, "path", json_string(ub->path)) ||
	    json_object_set_new(out, "buffered", json_boolean(ub->buffered)) ||
	    json_object_set_new(out, "queue_depth", json_integer(ub->queue_depth)))
		return -ENOMEM;
	return 0;
}

static int uring_dump_info(const struct leap_bdev *bdev, json_t *out)
{
	struct uring_bdev *ub = (struct uring_bdev *)bdev;

	if (uring_write_config(bdev, out) ||
	    json_object_set_new(out, "mem_align", json_integer(bdev->mem_align)) ||
	    json_object_set_new(
		out, "punch_hole",
		json_boolean(!atomic_load_explicit(&ub->no_punch, memory_order_relaxed))) ||
	    json_object_set_new(
		out, "zero_range",
		json_boolean(!atomic_load_explicit(&ub->no_zero_range, memory_order_relaxed))))
		return -ENOMEM;
	return 0;
}

/* Every op: Write Zeroes and Deallocate fall back to writing zeroes. */
static bool uring_io_type_supported(const struct leap_bdev *bdev, enum leap_bdev_op op)
{
	return op < LEAP_BDEV_OP_CNT;
}

/* ---- channel -------------------------------------------------------- */

static void uring_channel_close(struct leap_bdev_channel *ch)
{
	struct uring_channel *uc = (struct uring_channel *)ch;

	if (!uc)
		return;
	if (uc->ring.ring_fd >= 0)
		io_uring_queue_exit(&uc->ring);
	if (uc->efd >= 0)
		close(uc->efd);
	free(uc->retry);
	free(uc);
}

static int uring_channel_open(struct leap_bdev *bdev, struct leap_bdev_channel **out)
{
	struct uring_bdev *ub = to_ub(bdev);
	/*
	 * COOP_TASKRUN: a completion is turned into its CQE by task work run
	 * in the reactor thread. By default the kernel forces a busy-polling
	 * reactor out of user space for it (an IPI to its CPU and a kernel
	 * entry per completion batch, paid on top of our polling); with
	 * COOP_TASKRUN it waits for our next entry: the submit of the next
	 * poll, or the CQ peek, which TASKRUN_FLAG (IORING_SQ_TASKRUN) tells
	 * liburing to make. A sleeping reactor is still woken (the flag's
	 * setter wakes interruptible sleepers: epoll returns EINTR).
	 */
	struct io_uring_params params = { .flags = IORING_SETUP_SUBMIT_ALL |
						   IORING_SETUP_COOP_TASKRUN |
						   IORING_SETUP_TASKRUN_FLAG };
	struct uring_channel *uc;
	int err;

	uc = calloc(1, sizeof(*uc));
	if (!uc)
		return -ENOMEM;
	uc->base.bdev = bdev;
	uc->efd = -1;
	uc->ring.ring_fd = -1;

	/* SUBMIT_ALL keeps one bad SQE from stalling the rest of a batch. */
	err = io_uring_queue_init_params(ub->queue_depth, &uc->ring, &params);
	for (unsigned int i = 0; err == -EINVAL && i < 2; i++) { /* older kernels: fewer flags */
		memset(&params, 0, sizeof(params));
		params.flags = i == 0 ? IORING_SETUP_SUBMIT_ALL : 0;
		err = io_uring_queue_init_params(ub->queue_depth, &uc->ring, &params);
	}
	if (err) {
		uc->ring.ring_fd = -1;
		LEAP_ERR("bdev", "%s: io_uring_queue_init(%u): %s", bdev->name, ub->queue_depth,
			 strerror(-err));
		goto err_close;
	}
	uc->max_inflight = uc->ring.cq.ring_entries;
	uc->retry = calloc(uc->max_inflight, sizeof(*uc->retry));
	if (!uc->retry) {
		err = -ENOMEM;
		goto err_close;
	}
	err = io_uring_register_files(&uc->ring, &ub->fd, 1);
	if (err) {
		LEAP_ERR("bdev", "%s: register file: %s", bdev->name, strerror(-err));
		goto err_close;
	}
	/* Fixed buffers are an optimisation: without them, I/O still works. */
	err = io_uring_register_buffers_sparse(&uc->ring, URING_BUF_SLOTS);
	if (err)
		LEAP_WARN("bdev", "%s: sparse buffer table: %s; no fixed buffers", bdev->name,
			  strerror(-err));
	uc->buffers_ok = err == 0;

	uc->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (uc->efd < 0) {
		err = -errno;
		goto err_close;
	}
	err = io_uring_register_eventfd(&uc->ring, uc->efd);
	if (err) {
		LEAP_ERR("bdev", "%s: register eventfd: %s", bdev->name, strerror(-err));
		goto err_close;
	}
	/* Off while polling; sleep_prepare turns it on (the EventIdx idea). */
	io_uring_cq_eventfd_toggle(&uc->ring, false);
	*out = &uc->base;
	return 0;

err_close:
	uring_channel_close(&uc->base);
	return err;
}

static int uring_channel_wake_fd(struct leap_bdev_channel *ch)
{
	return ((struct uring_channel *)ch)->efd;
}

/* ---- fixed-buffer regions ------------------------------------------- */

static int uring_region_register(struct leap_bdev_channel *ch, void *addr, size_t len)
{
	struct uring_channel *uc = (struct uring_channel *)ch;
	struct iovec iov[URING_BUF_SLOTS];
	__u64 tags[URING_BUF_SLOTS] = { 0 }; /* 0: no free notification CQE */
	size_t slice = (size_t)1 << URING_SLICE_SHIFT;
	uint32_t n, first;
	uint64_t mask;
	int ret;

	if (!uc->buffers_ok)
		return -EOPNOTSUPP;
	if (!addr || !len)
		return -EINVAL;
	n = (uint32_t)((len + slice - 1) >> URING_SLICE_SHIFT);
	if (n > URING_BUF_SLOTS)
		return -ENOSPC;
	mask = n == 64 ? ~0ull : ((1ull << n) - 1);
	for (first = 0; first + n <= URING_BUF_SLOTS; first++)
		if (!(uc->slot_map & (mask << first)))
			break;
	if (first + n > URING_BUF_SLOTS)
		return -ENOSPC;
	for (uint32_t i = 0; i < n; i++) {
		iov[i].iov_base = (char *)addr + (size_t)i * slice;
		iov[i].iov_len = LEAP_MIN(slice, len - (size_t)i * slice);
	}
	ret = io_uring_register_buffers_update_tag(&uc->ring, first, iov, tags, n);
	if (ret < 0) {
		LEAP_WARN("bdev", "%s: register region %p+%zu: %s", ch->bdev->name, addr, len,
			  strerror(-ret));
		return ret;
	}
	uc->slot_map |= mask << first;
	uc->slots[first] = (struct uring_slot){
		.base = (uintptr_t)addr,
		.len = len,
		.nslots = n,
		.head = true,
	};
	return (int)first;
}

static void uring_region_unregister(struct leap_bdev_channel *ch, int buf_index)
{
	struct uring_channel *uc = (struct uring_channel *)ch;
	struct iovec iov[URING_BUF_SLOTS] = { 0 }; /* NULL base: empty the slot */
	__u64 tags[URING_BUF_SLOTS] = { 0 };
	struct uring_slot *s;
	uint32_t n;

	if (buf_index < 0 || (uint32_t)buf_index >= URING_BUF_SLOTS)
		return;
	s = &uc->slots[buf_index];
	if (!s->head)
		return;
	n = s->nslots;
	/* The kernel keeps its own reference while I/O on the buffer is in flight. */
	io_uring_register_buffers_update_tag(&uc->ring, (unsigned)buf_index, iov, tags, n);
	uc->slot_map &= ~((n == 64 ? ~0ull : ((1ull << n) - 1)) << buf_index);
	memset(s, 0, sizeof(*s));
}

/*
 * The fixed-buffer slot holding [addr, addr+len) within region buf_index,
 * or -1 (not registered here, outside it, or across a 1 GiB slice edge).
 */
static inline int fixed_slot(const struct uring_channel *uc, int32_t buf_index, uintptr_t addr,
			     size_t len)
{
	const struct uring_slot *s;
	uintptr_t rel;

	if ((uint32_t)buf_index >= URING_BUF_SLOTS)
		return -1;
	s = &uc->slots[buf_index];
	if (!s->head || addr < s->base || len > s->len || addr - s->base > s->len - len)
		return -1;
	rel = addr - s->base;
	if ((rel >> URING_SLICE_SHIFT) != ((rel + len - 1) >> URING_SLICE_SHIFT))
		return -1;
	return buf_index + (int)(rel >> URING_SLICE_SHIFT);
}

/* ---- I/O steps ------------------------------------------------------ */

/* One contiguous piece: a whole single-iovec I/O or the rest of a segment. */
static void prep_contig(struct uring_channel *uc, struct leap_bdev_io *io, struct io_uring_sqe *sqe,
			void *addr, size_t len, uint64_t off)
{
	int slot = fixed_slot(uc, io->buf_index, (uintptr_t)addr, len);
	bool rd = io->op == LEAP_BDEV_OP_READ;

	if (slot >= 0) {
		if (rd)
			io_uring_prep_read_fixed(sqe, 0, addr, (unsigned)len, off, slot);
		else
			io_uring_prep_write_fixed(sqe, 0, addr, (unsigned)len, off, slot);
		uc->base.stats.fixed_buf++;
	} else if (rd) {
		io_uring_prep_read(sqe, 0, addr, (unsigned)len, off);
	} else {
		io_uring_prep_write(sqe, 0, addr, (unsigned)len, off);
	}
}

static void prep_rw(struct uring_channel *uc, struct leap_bdev_io *io, struct io_uring_sqe *sqe)
{
	uint64_t done = io->priv[0];

	if (done == 0 && io->iovcnt == 1) {
		prep_contig(uc, io, sqe, io->iov[0].iov_base, io->iov[0].iov_len, io->offset);
	} else if (done == 0) {
		if (io->op == LEAP_BDEV_OP_READ)
			io_uring_prep_readv(sqe, 0, io->iov, io->iovcnt, io->offset);
		else
			io_uring_prep_writev(sqe, 0, io->iov, io->iovcnt, io->offset);
		uc->base.stats.vectored++;
	} else {
		/* Remainder after a short transfer: rest of one segment per step. */
		uint64_t skip = done;
		unsigned int i = 0;

		while (skip >= io->iov[i].iov_len)
			skip -= io->iov[i++].iov_len;
		prep_contig(uc, io, sqe, (char *)io->iov[i].iov_base + skip,
			    io->iov[i].iov_len - skip, io->offset + done);
	}
	if (io->op == LEAP_BDEV_OP_WRITE && (io->flags & LEAP_BDEV_IO_FUA))
		sqe->rw_flags = RWF_DSYNC;
}

static void prep_step(struct uring_channel *uc, struct leap_bdev_io *io, struct io_uring_sqe *sqe)
{
	struct uring_bdev *ub = to_ub(uc->base.bdev);
	uint64_t done = io->priv[0];

	switch (io->priv[1]) {
	case ST_RW:
		prep_rw(uc, io, sqe);
		break;
	case ST_FLUSH:
		io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
		break;
	case ST_PUNCH:
		io_uring_prep_fallocate(sqe, 0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)io->offset, (off_t)io->len);
		break;
	case ST_ZERO_RANGE:
		io_uring_prep_fallocate(sqe, 0, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
					(off_t)io->offset, (off_t)io->len);
		break;
	case ST_ZERO_WRITES:
		io_uring_prep_write(
		    sqe, 0, ub->zero_buf,
		    (unsigned)LEAP_MIN((uint64_t)URING_ZERO_BUF_SIZE, io->len - done),
		    io->offset + done);
		break;
	}
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, io);
}

/* Issue the I/O's next step now, or park it until poll() finds an SQE. */
static void requeue(struct uring_channel *uc, struct leap_bdev_io *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&uc->ring);

	if (sqe) {
		prep_step(uc, io, sqe);
		return;
	}
	/* At most one entry per in-flight I/O, and the ring holds max_inflight. */
	uc->retry[(uc->retry_head + uc->retry_count) % uc->max_inflight] = io;
	uc->retry_count++;
}

static uint64_t initial_zero_stage(struct uring_channel *uc)
{
	if (atomic_load_explicit(&to_ub(uc->base.bdev)->no_zero_range, memory_order_relaxed)) {
		uc->base.stats.zero_writes++;
		return ST_ZERO_WRITES;
	}
	return ST_ZERO_RANGE;
}

static int uring_submit(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	struct uring_channel *uc = (struct uring_channel *)ch;
	struct io_uring_sqe *sqe;

	bdev_assert_io(ch->bdev, io);
	if (leap_unlikely(ch->inflight >= uc->max_inflight))
		goto eagain;
	sqe = io_uring_get_sqe(&uc->ring);
	if (leap_unlikely(!sqe))
		goto eagain;
	io->priv[0] = 0;
	switch (io->op) {
	case LEAP_BDEV_OP_READ:
	case LEAP_BDEV_OP_WRITE:
		io->priv[1] = ST_RW;
		break;
	case LEAP_BDEV_OP_FLUSH:
		io->priv[1] = ST_FLUSH;
		break;
	case LEAP_BDEV_OP_DEALLOCATE:
		/* A filesystem that cannot punch holes zeroes instead. */
		if (!atomic_load_explicit(&to_ub(ch->bdev)->no_punch, memory_order_relaxed))
			io->priv[1] = ST_PUNCH;
		else
			io->priv[1] = initial_zero_stage(uc);
		break;
	default:
		io->priv[1] = initial_zero_stage(uc);
		break;
	}
	prep_step(uc, io, sqe);
	ch->inflight++;
	ch->stats.submitted++;
	return 0;
eagain:
	ch->stats.eagain++;
	return -EAGAIN;
}

/* A read that hit end of file: the bdev is larger than the file; zeroes. */
static void zero_fill_tail(struct leap_bdev_io *io, uint64_t done)
{
	for (unsigned int i = 0; i < io->iovcnt; i++) {
		size_t n = io->iov[i].iov_len;

		if (done >= n) {
			done -= n;
			continue;
		}
		memset((char *)io->iov[i].iov_base + done, 0, n - done);
		done = 0;
	}
}

/* Fold one CQE into the I/O's progress: complete it or issue its next step. */
static void handle_cqe(struct uring_channel *uc, struct leap_bdev_io *io, int res)
{
	struct uring_bdev *ub = to_ub(uc->base.bdev);

	/* The kernel may bounce a step back; the same step is safe to repeat. */
	if (leap_unlikely(res == -EAGAIN || res == -EINTR)) {
		requeue(uc, io);
		return;
	}
	switch (io->priv[1]) {
	case ST_RW:
		if (res < 0)
			break;
		if (leap_unlikely(res == 0)) {
			if (io->op == LEAP_BDEV_OP_WRITE) {
				res = -EIO;
				break;
			}
			zero_fill_tail(io, io->priv[0]);
			break;
		}
		io->priv[0] += (uint64_t)res;
		if (leap_likely(io->priv[0] >= io->len)) {
			res = 0;
			break;
		}
		uc->base.stats.resubmits++;
		requeue(uc, io);
		return;
	case ST_PUNCH:
		if (res != -EOPNOTSUPP)
			break;
		atomic_store_explicit(&ub->no_punch, true, memory_order_relaxed);
		io->priv[1] = initial_zero_stage(uc);
		requeue(uc, io);
		return;
	case ST_ZERO_RANGE:
		if (res != -EOPNOTSUPP)
			break;
		LEAP_INFO("bdev", "%s: no fallocate(ZERO_RANGE) here; writing zeroes instead",
			  ub->base.name);
		atomic_store_explicit(&ub->no_zero_range, true, memory_order_relaxed);
		uc->base.stats.zero_writes++;
		io->priv[1] = ST_ZERO_WRITES;
		io->priv[0] = 0;
		requeue(uc, io);
		return;
	case ST_ZERO_WRITES:
		if (res <= 0) {
			res = res ? res : -EIO;
			break;
		}
		io->priv[0] += (uint64_t)res;
		if (io->priv[0] >= io->len) {
			res = 0;
			break;
		}
		requeue(uc, io);
		return;
	default: /* ST_FLUSH */
		break;
	}
	bdev_io_complete(&uc->base, io,
			 leap_unlikely(res < 0)
			     ? leap_bdev_status_from_errno(res, (enum leap_bdev_op)io->op)
			     : 0);
}

static int uring_poll(struct leap_bdev_channel *ch)
{
	struct uring_channel *uc = (struct uring_channel *)ch;
	struct io_uring_cqe *cqes[URING_CQE_BATCH];
	struct leap_bdev_io *ios[URING_CQE_BATCH];
	int res[URING_CQE_BATCH];
	int events = 0, ret;
	unsigned int n;

	while (uc->retry_count) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&uc->ring);

		if (!sqe)
			break;
		prep_step(uc, uc->retry[uc->retry_head], sqe);
		uc->retry_head = (uc->retry_head + 1) % uc->max_inflight;
		uc->retry_count--;
	}
	if (io_uring_sq_ready(&uc->ring)) {
		ret = io_uring_submit(&uc->ring);
		if (leap_unlikely(ret < 0)) {
			/* Transient (EAGAIN/EBUSY/EINTR): the SQEs stay queued for next time. */
			if (ret != -EAGAIN && ret != -EBUSY && ret != -EINTR)
				return ret;
		} else {
			ch->stats.batches++;
			ch->stats.sqes += (uint64_t)ret;
			events += ret;
		}
	}
	/*
	 * Copy each CQE out and release the batch to the kernel before running
	 * callbacks, so a slow callback never holds CQ space. Steps requeued
	 * by the callbacks go to the kernel at the next poll, so this loop ends.
	 */
	do {
		n = io_uring_peek_batch_cqe(&uc->ring, cqes, URING_CQE_BATCH);
		for (unsigned int i = 0; i < n; i++) {
			ios[i] = io_uring_cqe_get_data(cqes[i]);
			res[i] = cqes[i]->res;
		}
		io_uring_cq_advance(&uc->ring, n);
		for (unsigned int i = 0; i < n; i++)
			handle_cqe(uc, ios[i], res[i]);
		events += (int)n;
	} while (n == URING_CQE_BATCH);
	return events;
}

/* ---- idle sleep ----------------------------------------------------- */

static bool uring_sleep_prepare(struct leap_bdev_channel *ch)
{
	struct uring_channel *uc = (struct uring_channel *)ch;
	uint64_t v;

	if (uc->retry_count || io_uring_sq_ready(&uc->ring))
		return false;
	if (!ch->inflight)
		return true;
	/* Completions waiting for our task work: the next poll's peek runs it. */
	if (IO_URING_READ_ONCE(*uc->ring.sq.kflags) & IORING_SQ_TASKRUN)
		return false;
	io_uring_cq_eventfd_toggle(&uc->ring, true);
	/* Drain first, then look: a CQE posted after the drain signals again. */
	while (read(uc->efd, &v, sizeof(v)) == sizeof(v))
		;
	/*
	 * Pairs with the kernel posting a CQE and then testing the eventfd
	 * flag: either it sees the flag set above or we see its CQE below.
	 * The reactor's epoll timeout bounds any wake-up this misses.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	return io_uring_cq_ready(&uc->ring) == 0;
}

static void uring_sleep_done(struct leap_bdev_channel *ch)
{
	struct uring_channel *uc = (struct uring_channel *)ch;

	io_uring_cq_eventfd_toggle(&uc->ring, false);
}

const struct leap_bdev_ops leap_bdev_uring_ops = {
	.type = "uring",
	.create = uring_create,
	.destroy = uring_destroy,
	.write_config = uring_write_config,
	.dump_info = uring_dump_info,
	.io_type_supported = uring_io_type_supported,
	.channel_open = uring_channel_open,
	.channel_close = uring_channel_close,
	.submit = uring_submit,
	.poll = uring_poll,
	.region_register = uring_region_register,
	.region_unregister = uring_region_unregister,
	.channel_wake_fd = uring_channel_wake_fd,
	.sleep_prepare = uring_sleep_prepare,
	.sleep_done = uring_sleep_done,
};

LEAP_BDEV_MODULE_REGISTER(leap_bdev_uring_ops)
