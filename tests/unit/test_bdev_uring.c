// SPDX-License-Identifier: BSD-3-Clause
/*
 * What only the io_uring backend does: -EAGAIN when the SQ ring is full and
 * one io_uring_submit per poll for the whole batch; short reads finished by
 * resubmitting the remainder (and zeroes past the end of the file); fixed
 * buffers used for I/O inside a registered region and not outside it; the
 * write-zeroes fallback on a filesystem without ZERO_RANGE; block devices
 * (a loop device); size rules; errors reaching the callback; and the wake
 * fd an idle reactor sleeps on.
 */
#include <linux/loop.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "test_bdev_helpers.h"

LEAP_BDEV_MODULE_USE(leap_bdev_uring_ops);

/* A uring bdev's params; size 0 and qd 0 leave the key out (the defaults). */
static json_t *uring_params(const char *path, uint64_t size, uint32_t bs, uint32_t qd,
			    bool buffered)
{
	json_t *p = json_pack("{s:s, s:s, s:s, s:i, s:b}", "type", "uring", "name", t_name(),
			      "path", path, "block_size", (int)bs, "buffered", buffered);

	if (p && size)
		json_object_set_new(p, "size", json_integer((json_int_t)size));
	if (p && qd)
		json_object_set_new(p, "queue_depth", json_integer(qd));
	return p;
}

static struct leap_bdev *mk_uring(const char *path, uint64_t size, uint32_t qd, bool buffered)
{
	struct leap_bdev *b = NULL;

	if (!path || t_create(uring_params(path, size, 512, qd, buffered), &b))
		return NULL;
	return b;
}

static void rm(struct leap_bdev *b)
{
	json_t *cfg = leap_bdev_config(b);
	char path[256];

	snprintf(path, sizeof(path), "%s", json_string_value(json_object_get(cfg, "path")));
	json_decref(cfg);
	leap_bdev_destroy(b);
	if (strncmp(path, "/dev/loop", 9) != 0)
		unlink(path);
}

/*
 * QD 128 ring, 256 I/Os: submit() says -EAGAIN once the SQ holds 128
 * unsubmitted entries, poll() pushes them in one call, and every I/O still
 * completes exactly once with its own data.
 */
static void test_uring_eagain_and_batching(void)
{
	enum { N = 256, BS = 4096 };
	static struct tio t[N];
	struct leap_bdev *b = mk_uring(t_path("qd.img"), (uint64_t)N * BS, 128, false);
	struct leap_bdev_channel *ch = NULL;
	uint8_t *buf = abuf((size_t)N * BS);
	int first_eagain = -1;

	T_ASSERT(b && buf);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	for (int pass = 0; pass < 2; pass++) {
		int op = pass ? LEAP_BDEV_OP_READ : LEAP_BDEV_OP_WRITE;

		if (pass)
			memset(buf, 0, (size_t)N * BS);
		for (int i = 0; i < N; i++) {
			uint64_t off = (uint64_t)((i * 37) % N) * BS; /* scattered */
			int rc;

			if (!pass)
				pattern_fill(buf + i * BS, BS, off, 99);
			tio_init(&t[i], op, off, buf + i * BS, BS, 1);
			rc = leap_bdev_submit(ch, &t[i].io);
			if (rc == -EAGAIN && first_eagain < 0)
				first_eagain = i;
			if (rc == -EAGAIN)
				rc = t_submit(ch, &t[i]);
			T_ASSERT_EQ(rc, 0);
		}
		for (uint64_t end = t_now_ns() + GUARD_NS; ch->inflight && t_now_ns() < end;)
			leap_bdev_poll(ch);
		for (int i = 0; i < N; i++) {
			T_ASSERT_EQ(t[i].calls, 1);
			T_ASSERT_EQ(t[i].status, 0);
		}
	}
	for (int i = 0; i < N; i++)
		if (!pattern_check(buf + i * BS, BS, (uint64_t)((i * 37) % N) * BS, 99))
			T_FAIL("block of I/O %d holds the wrong data", i);
	/* The SQ (128 entries) filled before the first poll. */
	T_ASSERT_EQ(first_eagain, 128);
	T_ASSERT(ch->stats.eagain > 0);
	T_ASSERT_U64_EQ(ch->stats.sqes, 2 * N);
	/* Batching: far fewer io_uring_submit calls than SQEs. */
	T_ASSERT(ch->stats.batches * 8 <= ch->stats.sqes);
	T_ASSERT_U64_EQ(ch->stats.completed, 2 * N);
	T_ASSERT_U64_EQ(ch->stats.resubmits, 0);
	leap_bdev_channel_close(ch);
	rm(b);
	free(buf);
}

/*
 * A buffered bdev whose file was cut short behind its back: the kernel
 * returns a short read, the backend reads the rest (hitting end of file)
 * and hands back zeroes past it, status 0.
 */
static void test_uring_short_read_eof(void)
{
	const size_t sz = 16384, cut = 10240;
	const char *path = t_path("short.img");
	struct leap_bdev *b = mk_uring(path, sz, 0, true);
	struct leap_bdev_channel *ch = NULL;
	uint8_t *w = abuf(sz), *r = abuf(sz);
	struct stat st;

	T_ASSERT(b && w && r);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	pattern_fill(w, sz, 0, 33);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 0, w, sz, 1), 0);
	T_ASSERT_EQ(truncate(path, cut), 0);
	T_ASSERT_EQ(stat(path, &st), 0);
	T_ASSERT_EQ(st.st_size, cut);

	/* Four segments: the cut falls inside the third. */
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, r, sz, 4), 0);
	T_ASSERT(pattern_check(r, cut, 0, 33));
	T_ASSERT(all_zero(r + cut, sz - cut));
	T_ASSERT(ch->stats.resubmits >= 1);

	/* Entirely past the end: zeroes, no error. */
	memset(r, 0xEE, sz);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 12288, r, 4096, 1), 0);
	T_ASSERT(all_zero(r, 4096));

	/* Starting before the cut, single iovec. */
	memset(r, 0xEE, sz);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 8192, r, 8192, 1), 0);
	T_ASSERT(pattern_check(r, cut - 8192, 8192, 33));
	T_ASSERT(all_zero(r + cut - 8192, 8192 - (cut - 8192)));
	T_ASSERT_U64_EQ(ch->stats.errors, 0);
	leap_bdev_channel_close(ch);
	rm(b);
	free(w);
	free(r);
}

/* A shared-memory region like a tenant's: memfd, MAP_SHARED. */
static void *shm_region(size_t len)
{
	int fd = memfd_create("leap-test-region", MFD_CLOEXEC);
	void *p;

	if (fd < 0)
		return NULL;
	if (ftruncate(fd, (off_t)len)) {
		close(fd);
		return NULL;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

static void test_uring_fixed_buffers(void)
{
	const size_t rlen = 2 << 20, reglen = 3 << 19; /* register 1.5 of 2 MiB */
	struct leap_bdev *b = mk_uring(t_path("fixed.img"), 4 << 20, 0, false);
	struct leap_bdev_channel *ch = NULL;
	uint8_t *reg = shm_region(rlen), *heap = abuf(8192);
	int idx, idx2, slots[64], nslots = 0, rc;
	struct tio t;

	T_ASSERT(b && reg && heap);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	T_ASSERT(leap_bdev_channel_wake_fd(ch) >= 0);
	idx = leap_bdev_region_register(ch, reg, reglen);
	T_ASSERT(idx >= 0);

	/* Inside the region, one iovec: WRITE_FIXED then READ_FIXED. */
	pattern_fill(reg + 4096, 65536, 8192, 44);
	tio_init(&t, LEAP_BDEV_OP_WRITE, 8192, reg + 4096, 65536, 1);
	t.io.buf_index = idx;
	T_ASSERT_EQ(t_submit(ch, &t), 0);
	T_ASSERT_EQ(t_wait(ch, &t.calls, 1), 1);
	T_ASSERT_EQ(t.status, 0);
	T_ASSERT_U64_EQ(ch->stats.fixed_buf, 1);
	tio_init(&t, LEAP_BDEV_OP_READ, 8192, reg + (1 << 20), 65536, 1);
	t.io.buf_index = idx;
	T_ASSERT_EQ(t_submit(ch, &t), 0);
	T_ASSERT_EQ(t_wait(ch, &t.calls, 1), 1);
	T_ASSERT_EQ(t.status, 0);
	T_ASSERT_U64_EQ(ch->stats.fixed_buf, 2);
	T_ASSERT(pattern_check(reg + (1 << 20), 65536, 8192, 44));

	/* buf_index given but the buffer is elsewhere: plain read, still right. */
	tio_init(&t, LEAP_BDEV_OP_READ, 8192, heap, 8192, 1);
	t.io.buf_index = idx;
	T_ASSERT_EQ(t_submit(ch, &t), 0);
	T_ASSERT_EQ(t_wait(ch, &t.calls, 1), 1);
	T_ASSERT_EQ(t.status, 0);
	T_ASSERT(pattern_check(heap, 8192, 8192, 44));
	/* Straddling the registered part's end (still mapped): also plain. */
	memset(reg + reglen - 4096, 0, 8192);
	tio_init(&t, LEAP_BDEV_OP_READ, 8192, reg + reglen - 4096, 8192, 1);
	t.io.buf_index = idx;
	T_ASSERT_EQ(t_submit(ch, &t), 0);
	T_ASSERT_EQ(t_wait(ch, &t.calls, 1), 1);
	T_ASSERT_EQ(t.status, 0);
	T_ASSERT(pattern_check(reg + reglen - 4096, 8192, 8192, 44));
	T_ASSERT_U64_EQ(ch->stats.fixed_buf, 2);
	/* Several iovecs: READV even inside the region. */
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 8192, reg, 16384, 4), 0);
	T_ASSERT_U64_EQ(ch->stats.fixed_buf, 2);
	T_ASSERT(ch->stats.vectored >= 1);
	T_ASSERT(pattern_check(reg, 16384, 8192, 44));

	/* Slots: fill the table, -ENOSPC, free one, get that one back. */
	for (nslots = 0; nslots < 64; nslots++) {
		rc = leap_bdev_region_register(ch, heap, 4096);
		if (rc < 0)
			break;
		slots[nslots] = rc;
	}
	T_ASSERT_EQ(nslots, 63);
	T_ASSERT_EQ(rc, -ENOSPC);
	leap_bdev_region_unregister(ch, slots[10]);
	idx2 = leap_bdev_region_register(ch, heap, 4096);
	T_ASSERT_EQ(idx2, slots[10]);
	for (int i = 0; i < nslots; i++)
		leap_bdev_region_unregister(ch, slots[i]);

	/* After unregistering, a stale buf_index is ignored, not a fault. */
	leap_bdev_region_unregister(ch, idx);
	tio_init(&t, LEAP_BDEV_OP_READ, 8192, reg + 4096, 4096, 1);
	t.io.buf_index = idx;
	memset(reg + 4096, 0, 4096);
	T_ASSERT_EQ(t_submit(ch, &t), 0);
	T_ASSERT_EQ(t_wait(ch, &t.calls, 1), 1);
	T_ASSERT_EQ(t.status, 0);
	T_ASSERT(pattern_check(reg + 4096, 4096, 8192, 44));
	T_ASSERT_U64_EQ(ch->stats.fixed_buf, 2);
	T_ASSERT_EQ(leap_bdev_region_register(ch, NULL, 4096), -EINVAL);
	leap_bdev_channel_close(ch);
	rm(b);
	munmap(reg, rlen);
	free(heap);
}

/* A region over 1 GiB takes several slots; I/O in the second slice is fixed too. */
static void test_uring_fixed_buffer_over_1g(void)
{
	const size_t rlen = (1ull << 30) + (4 << 20);
	struct leap_bdev *b = mk_uring(t_path("big.img"), 1 << 20, 0, false);
	struct leap_bdev_channel *ch = NULL;
	uint8_t *reg;
	int idx, next;
	struct tio t;

	T_ASSERT(b);
	reg = mmap(NULL, rlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	T_ASSERT(reg != MAP_FAILED);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	idx = leap_bdev_region_register(ch, reg, rlen);
	if (idx == -ENOMEM || idx == -EFAULT) {
		munmap(reg, rlen);
		leap_bdev_channel_close(ch);
		rm(b);
		T_SKIP("cannot pin 1 GiB here");
	}
	T_ASSERT(idx >= 0);
	next = leap_bdev_region_register(ch, reg, 4096);
	T_ASSERT_EQ(next, idx + 2); /* two slices taken */
	pattern_fill(reg + (1ull << 30) + 4096, 8192, 0, 55);
	tio_init(&t, LEAP_BDEV_OP_WRITE, 0, reg + (1ull << 30) + 4096, 8192, 1);
	t.io.buf_index = idx;
	T_ASSERT_EQ(t_submit(ch, &t), 0);
	T_ASSERT_EQ(t_wait(ch, &t.calls, 1), 1);
	T_ASSERT_EQ(t.status, 0);
	T_ASSERT_U64_EQ(ch->stats.fixed_buf, 1);
	/* Across the 1 GiB edge: not one fixed buffer, so the plain path. */
	tio_init(&t, LEAP_BDEV_OP_READ, 0, reg + (1ull << 30) - 4096, 8192, 1);
	t.io.buf_index = idx;
	T_ASSERT_EQ(t_submit(ch, &t), 0);
	T_ASSERT_EQ(t_wait(ch, &t.calls, 1), 1);
	T_ASSERT_EQ(t.status, 0);
	T_ASSERT_U64_EQ(ch->stats.fixed_buf, 1);
	T_ASSERT(pattern_check(reg + (1ull << 30) - 4096, 8192, 0, 55));
	leap_bdev_region_unregister(ch, idx);
	leap_bdev_region_unregister(ch, next);
	leap_bdev_channel_close(ch);
	rm(b);
	munmap(reg, rlen);
}

/*
 * tmpfs has no fallocate(ZERO_RANGE): Write Zeroes falls back to writing
 * zeroes, in 1 MiB pieces, and remembers not to try again.
 */
static void test_uring_write_zeroes_fallback(void)
{
	const size_t sz = 4 << 20;
	const uint64_t zo = 512 * 3, zl = (3 << 20) + 4096;
	struct statfs sf;
	struct leap_bdev *b;
	struct leap_bdev_channel *ch = NULL;
	uint8_t *w = abuf(sz), *r = abuf(sz);
	char path[128];

	if (statfs("/dev/shm", &sf) || sf.f_type != 0x01021994 /* TMPFS_MAGIC */)
		T_SKIP("no tmpfs at /dev/shm to refuse ZERO_RANGE");
	snprintf(path, sizeof(path), "/dev/shm/leap-bdev-zr-%d", getpid());
	b = mk_uring(path, sz, 0, true);
	T_ASSERT(b && w && r);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	pattern_fill(w, sz, 0, 66);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 0, w, sz, 2), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE_ZEROES, zo, NULL, zl, 0), 0);
	T_ASSERT_U64_EQ(ch->stats.zero_writes, 1);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, r, sz, 1), 0);
	T_ASSERT(pattern_check(r, zo, 0, 66));
	T_ASSERT(all_zero(r + zo, zl));
	T_ASSERT(pattern_check(r + zo + zl, sz - zo - zl, zo + zl, 66));
	/* Second time: straight to writes. Punch still works on tmpfs. */
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 0, w, sz, 1), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE_ZEROES, 0, NULL, 8192, 0), 0);
	T_ASSERT_U64_EQ(ch->stats.zero_writes, 2);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_DEALLOCATE, 1 << 20, NULL, 1 << 20, 0), 0);
	T_ASSERT_U64_EQ(ch->stats.zero_writes, 2);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, r, sz, 1), 0);
	T_ASSERT(all_zero(r, 8192));
	T_ASSERT(pattern_check(r + 8192, (1 << 20) - 8192, 8192, 66));
	T_ASSERT(all_zero(r + (1 << 20), 1 << 20));
	T_ASSERT(pattern_check(r + (2 << 20), 2 << 20, 2 << 20, 66));
	T_ASSERT_U64_EQ(ch->stats.errors, 0);
	leap_bdev_channel_close(ch);
	rm(b);
	free(w);
	free(r);
}

/* Attach an autoclear loop device to `file`: it goes away with the last close. */
static int loop_attach(const char *file, char *dev, size_t devlen)
{
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC), ffd, dfd = -1;

	if (ctl < 0)
		return -errno;
	ffd = open(file, O_RDWR | O_CLOEXEC);
	for (int tries = 0; ffd >= 0 && tries < 8; tries++) {
		struct loop_config cfg = { .fd = (uint32_t)ffd };
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);

		if (n < 0)
			break;
		snprintf(dev, devlen, "/dev/loop%d", n);
		dfd = open(dev, O_RDWR | O_CLOEXEC);
		if (dfd < 0)
			break;
		cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
		if (ioctl(dfd, LOOP_CONFIGURE, &cfg) == 0)
			break;
		close(dfd); /* raced with someone else: try the next free one */
		dfd = -1;
	}
	if (ffd >= 0)
		close(ffd);
	close(ctl);
	return dfd >= 0 ? dfd : -ENODEV;
}

static void test_uring_block_device(void)
{
	const char *file = t_path("loop.img");
	const size_t sz = 4 << 20;
	struct leap_bdev *b;
	struct leap_bdev_channel *ch = NULL;
	uint8_t *w = abuf(65536), *r = abuf(65536);
	char dev[64];
	int dfd, fd;

	T_ASSERT(file && w && r);
	fd = open(file, O_RDWR | O_CREAT, 0600);
	T_ASSERT(fd >= 0);
	T_ASSERT_EQ(ftruncate(fd, sz), 0);
	close(fd);
	dfd = loop_attach(file, dev, sizeof(dev));
	if (dfd < 0)
		T_SKIP("no loop device available");
	{
		struct leap_bdev *bad = NULL;
		char want[128];

		/* A device cannot grow. */
		T_ASSERT_EQ(t_create(uring_params(dev, sz * 2, 512, 0, false), &bad), -EINVAL);
		snprintf(want, sizeof(want), "device %s holds %zu bytes, %zu asked", dev, sz,
			 sz * 2);
		T_ASSERT_STR_EQ(t_err.msg, want);
	}
	b = mk_uring(dev, 0, 0, false);
	close(dfd); /* the bdev's own fd keeps the loop attached */
	T_ASSERT(b);
	T_ASSERT_U64_EQ(b->size, sz); /* BLKGETSIZE64 */
	T_ASSERT(b->mem_align >= 1 && b->mem_align <= 4096);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	pattern_fill(w, 65536, 4096, 88);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 4096, w, 65536, 2), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 4096, r, 65536, 1), 0);
	T_ASSERT(pattern_check(r, 65536, 4096, 88));
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE_ZEROES, 8192, NULL, 8192, 0), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_DEALLOCATE, 32768, NULL, 16384, 0), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_FLUSH, 0, NULL, 0, 0), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 4096, r, 65536, 1), 0);
	T_ASSERT(pattern_check(r, 4096, 4096, 88));
	T_ASSERT(all_zero(r + 4096, 8192));
	T_ASSERT(pattern_check(r + 12288, 28672 - 12288, 4096 + 12288, 88));
	T_ASSERT(all_zero(r + 28672, 16384));
	T_ASSERT(pattern_check(r + 45056, 65536 - 45056, 4096 + 45056, 88));
	leap_bdev_channel_close(ch);
	rm(b); /* last close: the loop device detaches itself */
	unlink(file);
	free(w);
	free(r);
}

static void test_uring_size_rules(void)
{
	const char *grow = t_path("grow.img"), *odd = t_path("odd.img"), *none = t_path("none.img");
	struct leap_bdev *b = NULL;
	char want[600];
	struct stat st;
	int fd;

	/* A new file is created and grown sparse to the size asked. */
	T_ASSERT_EQ(t_create(uring_params(grow, 64 << 20, 4096, 0, false), &b), 0);
	T_ASSERT_EQ(stat(grow, &st), 0);
	T_ASSERT_EQ(st.st_size, 64 << 20);
	T_ASSERT(st.st_blocks < 64); /* sparse: nothing allocated */
	T_ASSERT(b->mem_align >= 1 && b->mem_align <= 4096);
	rm(b);

	/* size 0: the file's size, rounded down to the block size. */
	fd = open(odd, O_RDWR | O_CREAT, 0600);
	T_ASSERT(fd >= 0);
	T_ASSERT_EQ(ftruncate(fd, (1 << 20) + 100), 0);
	close(fd);
	T_ASSERT_EQ(t_create(uring_params(odd, 0, 4096, 0, true), &b), 0);
	T_ASSERT_U64_EQ(b->size, 1 << 20);
	T_ASSERT_EQ(b->mem_align, 1);
	rm(b);

	/* size 0 and no file: refused, and no empty file left behind. */
	T_ASSERT_EQ(t_create(uring_params(none, 0, 4096, 0, true), &b), -EINVAL);
	snprintf(want, sizeof(want), "%s is empty and no size was given", none);
	T_ASSERT_STR_EQ(t_err.msg, want);
	T_ASSERT(access(none, F_OK) != 0);
	/* Not a file or device. */
	T_ASSERT(t_create(uring_params(t_dir(), 4096, 4096, 0, true), &b) < 0);
	T_ASSERT(leap_bdev_find("none") == NULL);
	T_ASSERT_EQ(t_create(uring_params(grow, 4096, 4096, 8192, true), &b), -EINVAL);
	T_ASSERT_STR_EQ(t_err.msg, "invalid params: 'queue_depth' must be in [1, 4096], got 8192");
}

/* Kernel errors reach the callback as NVMe statuses and count as errors. */
static void test_uring_error_status(void)
{
	struct leap_bdev *b = mk_uring(t_path("err.img"), 1 << 20, 0, false);
	struct leap_bdev_channel *ch = NULL;
	uint8_t *buf = abuf(8192);
	void *hole;

	T_ASSERT(b && buf);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	hole = mmap(NULL, 8192, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	T_ASSERT(hole != MAP_FAILED);
	/* Allocate block 0: direct reads of a hole never check alignment. */
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 0, buf, 4096, 1), 0);
	/* EFAULT: the buffer is not there. */
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, hole, 4096, 1),
		    NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_DATA_TRANSFER_ERROR));
	if (b->mem_align > 1) /* O_DIRECT refuses a misaligned buffer: EINVAL */
		T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, buf + 1, 4096, 1),
			    NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR));
	T_ASSERT(ch->stats.errors >= 1);
	T_ASSERT_U64_EQ(ch->stats.errors, ch->stats.completed - 1); /* all but the write */
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, buf, 4096, 1), 0);
	T_ASSERT_EQ(ch->inflight, 0);
	munmap(hole, 8192);
	leap_bdev_channel_close(ch);
	rm(b);
	free(buf);
}

/*
 * Idle sleep contract: with I/O in flight, sleep_prepare either says "sleep"
 * and then the wake fd turns readable when the I/O completes, or says "don't"
 * because the completion is already there. Both branches are checked.
 */
static void test_uring_wake_fd(void)
{
	struct leap_bdev *b = mk_uring(t_path("wake.img"), 8 << 20, 0, false);
	struct leap_bdev_channel *ch = NULL;
	uint8_t *buf = abuf(1 << 20);
	int slept = 0, kept = 0;

	T_ASSERT(b && buf);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	T_ASSERT(leap_bdev_channel_sleep_prepare(ch)); /* nothing in flight */
	leap_bdev_channel_sleep_done(ch);
	for (int i = 0; i < 20; i++) {
		struct tio t;
		struct pollfd pfd = { .fd = leap_bdev_channel_wake_fd(ch), .events = POLLIN };

		tio_init(&t, LEAP_BDEV_OP_WRITE, (uint64_t)(i % 8) << 20, buf, 1 << 20, 1);
		T_ASSERT_EQ(leap_bdev_submit(ch, &t.io), 0);
		/* Unsubmitted SQE: must not sleep. */
		T_ASSERT(!leap_bdev_channel_sleep_prepare(ch));
		leap_bdev_channel_sleep_done(ch);
		T_ASSERT_EQ(leap_bdev_poll(ch) >= 1, 1);
		if (t.calls) {
			kept++;
			continue;
		}
		if (leap_bdev_channel_sleep_prepare(ch)) {
			T_ASSERT_EQ(poll(&pfd, 1, 10000), 1);
			slept++;
		} else {
			kept++;
		}
		leap_bdev_channel_sleep_done(ch);
		T_ASSERT(leap_bdev_poll(ch) >= 1);
		T_ASSERT_EQ(t.calls, 1);
		T_ASSERT_EQ(t.status, 0);
	}
	printf("# slept %d, completion already there %d\n", slept, kept);
	T_ASSERT_EQ(slept + kept, 20);
	leap_bdev_channel_close(ch);
	rm(b);
	free(buf);
}

static void quiet(enum leap_log_level l, const char *s, const char *f, va_list ap, void *c)
{
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_uring_eagain_and_batching),
		TAP_CASE(test_uring_short_read_eof),
		TAP_CASE(test_uring_fixed_buffers),
		TAP_CASE(test_uring_fixed_buffer_over_1g),
		TAP_CASE(test_uring_write_zeroes_fallback),
		TAP_CASE(test_uring_block_device),
		TAP_CASE(test_uring_size_rules),
		TAP_CASE(test_uring_error_status),
		TAP_CASE(test_uring_wake_fd),
	};

	if (!t_dir()) {
		printf("1..0 # SKIP no filesystem with O_DIRECT under /var/tmp, /tmp or build\n");
		return 77;
	}
	leap_log_set_callback(quiet, NULL);
	return tap_run(cases, TAP_N(cases));
}
