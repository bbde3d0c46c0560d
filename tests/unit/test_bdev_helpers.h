/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared by the bdev unit tests: creation from JSON with the registry's
 * message kept, a tracked I/O (counts its callbacks, keeps the NVMe status
 * and completion order), synchronous submit/wait on a channel,
 * pattern fill/check, and a scratch directory on a filesystem that really
 * does O_DIRECT. Waits are bounded by a generous wall-clock guard so a lost
 * completion fails the test instead of hanging it; nothing asserts on time.
 */
#ifndef LEAPIO_TESTS_BDEV_HELPERS_H
#define LEAPIO_TESTS_BDEV_HELPERS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "leapio/nvme_spec.h"
#include "backend/bdev.h"
#include "tap.h"

#define GUARD_NS (10ull * 1000000000ull)

struct tio {
	struct leap_bdev_io io;
	struct iovec iov[8];
	int calls;
	int status; /* the NVMe status of the last callback, or -1 before any */
	int order;
};

/* The last creation's error message. */
static struct leap_bdev_err t_err;

/* Create from `params` (consumed) and wait: 0 and *out, or -errno (t_err.msg says why). */
static inline int t_create(json_t *params, struct leap_bdev **out)
{
	struct leap_bdev *b = NULL;
	int rc;

	memset(&t_err, 0, sizeof(t_err));
	if (!params)
		return -ENOMEM;
	rc = leap_bdev_create_wait(params, &b, &t_err);
	json_decref(params);
	if (out)
		*out = rc ? NULL : b;
	return rc;
}

static int tio_seq;

static uint64_t t_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void tio_cb(struct leap_bdev_io *io, uint16_t status)
{
	struct tio *t = leap_container_of(io, struct tio, io);

	t->calls++;
	t->status = status;
	t->order = tio_seq++;
}

/* One I/O over `nseg` equal segments of buf (1 = a single iovec). */
static inline void tio_init(struct tio *t, int op, uint64_t off, void *buf, size_t len, int nseg)
{
	memset(t, 0, sizeof(*t));
	t->io.op = (uint8_t)op;
	t->io.buf_index = -1;
	t->io.offset = off;
	t->io.len = len;
	t->io.cb = tio_cb;
	if (buf) {
		for (int i = 0; i < nseg; i++) {
			t->iov[i].iov_base = (char *)buf + len / nseg * i;
			t->iov[i].iov_len = len / nseg;
		}
		t->io.iov = t->iov;
		t->io.iovcnt = (uint16_t)nseg;
	}
	t->status = -1; /* not an NVMe status */
}

/* Submit, polling while the channel is full. Returns submit's final answer. */
static inline int t_submit(struct leap_bdev_channel *ch, struct tio *t)
{
	uint64_t end = t_now_ns() + GUARD_NS;
	int rc;

	while ((rc = leap_bdev_submit(ch, &t->io)) == -EAGAIN && t_now_ns() < end)
		leap_bdev_poll(ch);
	return rc;
}

/* Poll until *calls reaches want or the guard expires; returns the final value. */
static inline int t_wait(struct leap_bdev_channel *ch, const int *calls, int want)
{
	uint64_t end = t_now_ns() + GUARD_NS;

	while (*calls < want && t_now_ns() < end)
		leap_bdev_poll(ch);
	return *calls;
}

/* Synchronous I/O: the completion's NVMe status (-1: it never completed, -2: refused). */
static inline int t_io(struct leap_bdev_channel *ch, int op, uint64_t off, void *buf, size_t len,
		       int nseg)
{
	struct tio t;

	tio_init(&t, op, off, buf, len, nseg);
	if (t_submit(ch, &t))
		return -2;
	if (t_wait(ch, &t.calls, 1) != 1)
		return -1;
	return t.status;
}

/* Bytes that encode their own offset and a seed, so a misplaced block shows. */
static inline void pattern_fill(void *buf, size_t len, uint64_t off, uint32_t seed)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)((off + i) * 131u + seed + ((off + i) >> 9));
}

static inline bool pattern_check(const void *buf, size_t len, uint64_t off, uint32_t seed)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)((off + i) * 131u + seed + ((off + i) >> 9)))
			return false;
	return true;
}

static inline bool all_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static inline void *abuf(size_t len)
{
	void *p = aligned_alloc(4096, LEAP_ALIGN_UP(len, 4096));

	if (p)
		memset(p, 0xEE, len);
	return p;
}

/* A unique bdev name per call, so a failed case never poisons the next. */
static inline const char *t_name(void)
{
	static char names[64][16];
	static int n;

	snprintf(names[n % 64], sizeof(names[0]), "t%d", n);
	return names[n++ % 64];
}

static char t_dir_path[256];

static void t_dir_cleanup(void)
{
	DIR *d = opendir(t_dir_path);
	struct dirent *e;
	char p[512];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", t_dir_path, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(t_dir_path);
}

/* Can this directory's filesystem do an aligned O_DIRECT write? */
static bool dir_does_direct(const char *dir)
{
	char p[512];
	void *buf = abuf(4096);
	bool ok = false;
	int fd;

	snprintf(p, sizeof(p), "%s/probe", dir);
	fd = open(p, O_RDWR | O_CREAT | O_DIRECT, 0600);
	if (fd >= 0) {
		ok = buf && pwrite(fd, buf, 4096, 0) == 4096;
		close(fd);
		unlink(p);
	}
	free(buf);
	return ok;
}

/*
 * A fresh directory (removed at exit) on a filesystem that supports
 * O_DIRECT: tmpfs does not on every kernel, so try a few places.
 */
static const char *t_dir(void)
{
	static const char *const bases[] = { "/var/tmp", "/tmp", "build" };

	if (t_dir_path[0])
		return t_dir_path;
	for (size_t i = 0; i < LEAP_ARRAY_SIZE(bases); i++) {
		snprintf(t_dir_path, sizeof(t_dir_path), "%s/leap-bdev-XXXXXX", bases[i]);
		if (!mkdtemp(t_dir_path))
			continue;
		if (dir_does_direct(t_dir_path)) {
			atexit(t_dir_cleanup);
			return t_dir_path;
		}
		rmdir(t_dir_path);
	}
	t_dir_path[0] = 0;
	return NULL;
}

/* A path inside t_dir() (static storage, rotates over 16 names). */
static inline const char *t_path(const char *leaf)
{
	static char paths[16][512];
	static int n;
	char *p = paths[n++ % 16];
	const char *d = t_dir();

	if (!d)
		return NULL;
	snprintf(p, 512, "%s/%s", d, leaf);
	return p;
}

#endif /* LEAPIO_TESTS_BDEV_HELPERS_H */
