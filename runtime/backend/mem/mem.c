// SPDX-License-Identifier: BSD-3-Clause
/*
 * The RAM backend: one anonymous MAP_NORESERVE mapping of the bdev's size,
 * so an untouched block costs no memory and reads as zeroes. I/O is a
 * memcpy done at poll() time, in submission order, with the callback right
 * after: the same ordering a uring channel gives (nothing completes inside
 * submit()). Write Zeroes and Deallocate give whole pages back to the kernel
 * (MADV_DONTNEED, after which they read as zeroes) and memset the edges.
 * Every channel works on the same mapping; overlapping I/O from different
 * threads races exactly as it would on a disk. Parameters: the common
 * ones only ("size" required).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "leapio/common.h"
#include "backend/bdev_internal.h"

/*
 * Below this, memset beats the madvise syscall and the page faults that
 * follow; above it, returning memory matters more.
 */
#define MEM_MADVISE_MIN (64u * 1024)

struct mem_bdev {
	struct leap_bdev base;
	uint8_t *data;
	size_t page_size;
};

struct mem_channel {
	struct leap_bdev_channel base;
	struct bdev_io_fifo queued;
};

extern const struct leap_bdev_ops leap_bdev_mem_ops;

static int mem_create(const struct leap_bdev_common_params *common, const json_t *params,
		      struct leap_bdev_err *err, leap_bdev_create_cb cb, void *cb_arg)
{
	struct mem_bdev *mb;
	int rc;

	rc = bdev_params_decode(params, NULL, 0, NULL, err); /* no keys of its own */
	if (rc)
		return rc;
	if (!common->size)
		return bdev_err(err, -EINVAL, "invalid params: 'size' is required for a mem bdev");
	if (common->size > SIZE_MAX)
		return bdev_err(err, -EINVAL, "invalid params: 'size' %llu is too large here",
				(unsigned long long)common->size);
	mb = calloc(1, sizeof(*mb));
	if (!mb) {
		cb(cb_arg, bdev_err(err, -ENOMEM, "out of memory"), NULL);
		return 0;
	}
	bdev_init_common(&mb->base, &leap_bdev_mem_ops, common);
	mb->page_size = (size_t)sysconf(_SC_PAGESIZE);
	mb->data = mmap(NULL, common->size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mb->data == MAP_FAILED) {
		rc = bdev_err(err, -errno, "mmap %llu bytes: %s", (unsigned long long)common->size,
			      strerror(errno));
		free(mb);
		cb(cb_arg, rc, NULL);
		return 0;
	}
	cb(cb_arg, 0, &mb->base);
	return 0;
}

static void mem_destroy(struct leap_bdev *bdev)
{
	struct mem_bdev *mb = (struct mem_bdev *)bdev;

	munmap(mb->data, bdev->size);
	free(mb);
}

static int mem_channel_open(struct leap_bdev *bdev, struct leap_bdev_channel **out)
{
	struct mem_channel *mc = calloc(1, sizeof(*mc));

	if (!mc)
		return -ENOMEM;
	mc->base.bdev = bdev;
	*out = &mc->base;
	return 0;
}

static void mem_channel_close(struct leap_bdev_channel *ch)
{
	free(ch);
}

static int mem_submit(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	struct mem_channel *mc = (struct mem_channel *)ch;

	bdev_assert_io(ch->bdev, io);
	bdev_fifo_push(&mc->queued, io);
	ch->inflight++;
	ch->stats.submitted++;
	return 0;
}

static void copy_iov(uint8_t *dev, const struct leap_bdev_io *io, bool to_dev)
{
	for (unsigned int i = 0; i < io->iovcnt; i++) {
		size_t n = io->iov[i].iov_len;

		if (to_dev)
			memcpy(dev, io->iov[i].iov_base, n);
		else
			memcpy(io->iov[i].iov_base, dev, n);
		dev += n;
	}
}

static void zero_range(struct mem_bdev *mb, uint64_t off, uint64_t len)
{
	uint8_t *start = mb->data + off, *end = start + len;
	uint8_t *pstart = (uint8_t *)LEAP_ALIGN_UP((uintptr_t)start, mb->page_size);
	uint8_t *pend = (uint8_t *)((uintptr_t)end & ~(uintptr_t)(mb->page_size - 1));

	if (len < MEM_MADVISE_MIN || pend <= pstart) {
		memset(start, 0, len);
		return;
	}
	memset(start, 0, (size_t)(pstart - start));
	memset(pend, 0, (size_t)(end - pend));
	/* Private anonymous pages read back as zeroes after MADV_DONTNEED. */
	if (madvise(pstart, (size_t)(pend - pstart), MADV_DONTNEED) != 0)
		memset(pstart, 0, (size_t)(pend - pstart));
}

static uint16_t mem_execute(struct mem_bdev *mb, const struct leap_bdev_io *io)
{
	switch (io->op) {
	case LEAP_BDEV_OP_READ:
		copy_iov(mb->data + io->offset, io, false);
		return 0;
	case LEAP_BDEV_OP_WRITE:
		copy_iov(mb->data + io->offset, io, true);
		return 0;
	case LEAP_BDEV_OP_FLUSH:
		return 0;
	case LEAP_BDEV_OP_WRITE_ZEROES:
	case LEAP_BDEV_OP_DEALLOCATE:
		zero_range(mb, io->offset, io->len);
		return 0;
	default:
		return leap_bdev_status_from_errno(-EINVAL, (enum leap_bdev_op)io->op);
	}
}

/* Every op: Write Zeroes and Deallocate read back as zeroes. */
static bool mem_io_type_supported(const struct leap_bdev *bdev, enum leap_bdev_op op)
{
	return op < LEAP_BDEV_OP_CNT;
}

static int mem_poll(struct leap_bdev_channel *ch)
{
	struct mem_channel *mc = (struct mem_channel *)ch;
	struct mem_bdev *mb = (struct mem_bdev *)ch->bdev;
	struct leap_bdev_io *io = bdev_fifo_take(&mc->queued), *next;
	int n = 0;

	for (; io; io = next, n++) {
		/* Read the link first: the callback may resubmit io. */
		next = bdev_fifo_next(io);
		bdev_io_complete(ch, io, mem_execute(mb, io));
	}
	return n;
}

const struct leap_bdev_ops leap_bdev_mem_ops = {
	.type = "mem",
	.create = mem_create,
	.destroy = mem_destroy,
	.io_type_supported = mem_io_type_supported,
	.channel_open = mem_channel_open,
	.channel_close = mem_channel_close,
	.submit = mem_submit,
	.poll = mem_poll,
};

LEAP_BDEV_MODULE_REGISTER(leap_bdev_mem_ops)
