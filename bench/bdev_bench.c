// SPDX-License-Identifier: BSD-3-Clause
/*
 * Backend throughput and per-I/O cost, one thread, closed loop: `qd` I/Os
 * stay in flight, each callback resubmits its slot, the main loop only
 * polls. This is exactly what a reactor does with a bdev channel, minus the
 * NVMe front end, so it is the ceiling the runtime works under. Compare the
 * uring figures with fio on the same file:
 *   fio --name=x --filename=F --ioengine=io_uring --direct=1 --rw=randread \
 *       --bs=4k --iodepth=32 --runtime=10 --time_based
 *
 * Usage: bdev-bench [-t null|mem|uring] [-f file] [-S size_mib] [-q qd]
 *                   [-b bs] [-s seconds] [-r randread|randwrite|read|write]
 *                   [-F (register the buffers as fixed)] [-B (buffered)]
 * Prints one key=value line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "backend/bdev.h"

LEAP_BDEV_MODULE_USE(leap_bdev_null_ops);
LEAP_BDEV_MODULE_USE(leap_bdev_mem_ops);
LEAP_BDEV_MODULE_USE(leap_bdev_uring_ops);

struct slot {
	struct leap_bdev_io io;
	struct iovec iov;
};

struct bench {
	struct leap_bdev_channel *ch;
	struct slot *slots;
	uint64_t blocks, bs, next_seq, rng;
	uint64_t done, errors;
	int op;
	bool random, stop;
	struct leap_bdev_io *pending[4096]; /* submit said -EAGAIN: retry after poll */
	uint32_t npending;
};

static struct bench B;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t next_offset(void)
{
	if (B.random) {
		/* xorshift64: cheap and good enough to spread offsets. */
		B.rng ^= B.rng << 13;
		B.rng ^= B.rng >> 7;
		B.rng ^= B.rng << 17;
		return (B.rng % B.blocks) * B.bs;
	}
	return (B.next_seq++ % B.blocks) * B.bs;
}

static void issue(struct leap_bdev_io *io)
{
	io->offset = next_offset();
	if (leap_bdev_submit(B.ch, io) == -EAGAIN)
		B.pending[B.npending++] = io;
}

static void done_cb(struct leap_bdev_io *io, uint16_t status)
{
	B.done++;
	if (status)
		B.errors++;
	if (!B.stop)
		issue(io);
}

static int fill_done;

static void fill_cb(struct leap_bdev_io *io, uint16_t status)
{
	fill_done = status ? -EIO : 1;
}

/* Sequential 1 MiB writes over the whole bdev, so reads hit real blocks. */
static int prefill(struct leap_bdev *bdev, struct leap_bdev_channel *ch)
{
	const size_t chunk = 1 << 20;
	uint8_t *buf = aligned_alloc(4096, chunk);
	struct iovec iov = { buf, chunk };
	struct leap_bdev_io io = {
		.op = LEAP_BDEV_OP_WRITE,
		.iovcnt = 1,
		.buf_index = -1,
		.len = chunk,
		.iov = &iov,
		.cb = fill_cb,
	};
	int err = 0;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < chunk; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	for (uint64_t off = 0; off + chunk <= bdev->size && !err; off += chunk) {
		io.offset = off;
		fill_done = 0;
		err = leap_bdev_submit(ch, &io);
		while (!err && !fill_done)
			leap_bdev_poll(ch);
		if (fill_done < 0)
			err = fill_done;
	}
	free(buf);
	return err;
}

static void usage(void)
{
	fprintf(stderr, "usage: bdev-bench [-t null|mem|uring] [-f file] [-S size_mib] [-q qd] "
			"[-b bs] [-s seconds] [-r randread|randwrite|read|write] [-F] [-B]\n");
	exit(LEAP_EXIT_USAGE);
}

int main(int argc, char **argv)
{
	const char *type = "null", *path = NULL, *rw = "randread";
	struct leap_bdev_err berr = { { 0 } };
	bool buffered = false;
	json_t *params;
	uint64_t size_mib = 1024, t0, t1, c0, c1;
	uint32_t qd = 32, bs = 4096, secs = 5;
	bool fixed = false;
	struct leap_bdev *bdev;
	uint8_t *bufs;
	int opt, idx = -1, err;
	struct stat st;
	bool need_fill = false;

	while ((opt = getopt(argc, argv, "t:f:S:q:b:s:r:FB")) != -1) {
		switch (opt) {
		case 't':
			type = optarg;
			break;
		case 'f':
			path = optarg;
			break;
		case 'S':
			size_mib = strtoull(optarg, NULL, 10);
			break;
		case 'q':
			qd = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			bs = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 's':
			secs = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			rw = optarg;
			break;
		case 'F':
			fixed = true;
			break;
		case 'B':
			buffered = true;
			break;
		default:
			usage();
		}
	}
	if (!qd || qd > 1024 || !bs || bs % 512 || !secs || !size_mib)
		usage();
	B.op = strstr(rw, "write") ? LEAP_BDEV_OP_WRITE : LEAP_BDEV_OP_READ;
	B.random = strncmp(rw, "rand", 4) == 0;
	params = json_pack("{s:s, s:s, s:I, s:i}", "type", type, "name", "bench", "size",
			   (json_int_t)(size_mib << 20), "block_size", 512);
	if (params && strcmp(type, "uring") == 0) {
		json_object_set_new(params, "path", json_string(path ? path : ""));
		json_object_set_new(params, "buffered", json_boolean(buffered));
		json_object_set_new(params, "queue_depth", json_integer(qd < 128 ? 128 : qd));
		need_fill = path && (stat(path, &st) != 0 ||
				     (uint64_t)st.st_blocks * 512 < (size_mib << 20));
	}
	err = params ? leap_bdev_create_wait(params, &bdev, &berr) : -ENOMEM;
	json_decref(params);
	if (!err)
		err = leap_bdev_channel_open(bdev, &B.ch);
	if (err) {
		fprintf(stderr, "bdev-bench: %s%s%s\n", strerror(-err), berr.msg[0] ? ": " : "",
			berr.msg);
		return 1;
	}
	if (need_fill && B.op == LEAP_BDEV_OP_READ && prefill(bdev, B.ch)) {
		fprintf(stderr, "bdev-bench: prefill failed\n");
		return 1;
	}
	bufs = aligned_alloc(4096, (size_t)qd * bs);
	B.slots = calloc(qd, sizeof(*B.slots));
	if (!bufs || !B.slots)
		return 1;
	memset(bufs, 0x5a, (size_t)qd * bs);
	if (fixed) {
		idx = leap_bdev_region_register(B.ch, bufs, (size_t)qd * bs);
		if (idx < 0)
			fprintf(stderr, "bdev-bench: no fixed buffers (%s)\n", strerror(-idx));
	}
	B.blocks = bdev->size / bs;
	B.bs = bs;
	B.rng = 0x9e3779b97f4a7c15ull;
	for (uint32_t i = 0; i < qd; i++) {
		struct slot *s = &B.slots[i];

		s->iov.iov_base = bufs + (size_t)i * bs;
		s->iov.iov_len = bs;
		s->io.op = (uint8_t)B.op;
		s->io.iov = &s->iov;
		s->io.iovcnt = 1;
		s->io.len = bs;
		s->io.buf_index = idx;
		s->io.cb = done_cb;
	}

	t0 = now_ns();
	c0 = cpu_ns();
	for (uint32_t i = 0; i < qd; i++)
		issue(&B.slots[i].io);
	for (uint64_t it = 0;; it++) {
		uint32_t n = B.npending;

		leap_bdev_poll(B.ch);
		B.npending = 0;
		for (uint32_t i = 0; i < n; i++)
			issue(B.pending[i]);
		if ((it & 255) == 0 && now_ns() - t0 >= (uint64_t)secs * 1000000000ull)
			break;
	}
	t1 = now_ns();
	c1 = cpu_ns();
	B.stop = true;
	while (B.ch->inflight)
		leap_bdev_poll(B.ch);

	printf("bdev-bench type=%s rw=%s bs=%u qd=%u fixed=%d buffered=%d seconds=%.1f ios=%llu "
	       "iops=%.0f ns_per_io=%.1f cpu_ns_per_io=%.1f sqes_per_submit=%.1f fixed_sqes=%llu "
	       "errors=%llu\n",
	       type, rw, bs, qd, idx >= 0, buffered, (t1 - t0) / 1e9, (unsigned long long)B.done,
	       B.done / ((t1 - t0) / 1e9), (double)(t1 - t0) / (double)B.done,
	       (double)(c1 - c0) / (double)B.done,
	       B.ch->stats.batches ? (double)B.ch->stats.sqes / (double)B.ch->stats.batches : 0.0,
	       (unsigned long long)B.ch->stats.fixed_buf, (unsigned long long)B.errors);
	if (idx >= 0)
		leap_bdev_region_unregister(B.ch, idx);
	leap_bdev_channel_close(B.ch);
	leap_bdev_destroy(bdev);
	free(bufs);
	free(B.slots);
	return B.errors ? 1 : 0;
}
