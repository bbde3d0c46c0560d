// SPDX-License-Identifier: BSD-3-Clause
/*
 * vhost_client: a vhost-user-blk front-end for tests and benchmarks, speaking
 * to any back-end (leapd, qemu-storage-daemon) over its socket.
 *
 *   vhost_client info   SOCK                 negotiate, print the device config
 *   vhost_client verify SOCK                 write/read/compare, flush, get-id,
 *                                            discard, write-zeroes
 *   vhost_client bench  SOCK [-q QD] [-b BS] [-t SEC] [-w randread|randwrite]
 *                            [-Q QUEUES] [-p SERVER_PID] [-g GAP_US]
 *                                            host-side load: IOPS and CPU per I/O
 *                                            (-g: pause before each resubmission)
 *   vhost_client bad    SOCK CLASS           commit one kind of bad input and
 *                                            check the back-end's answer
 *   vhost_client bad list                    the classes
 *
 * Output is KEY=VALUE lines; exit 0 when what was checked held, 1 when not,
 * 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "vhost_lib.h"

#define MEM_SIZE	   (64ull << 20)
#define QSIZE		   128
#define LEAP_MIN_U64(a, b) ((uint64_t)(a) < (uint64_t)(b) ? (uint64_t)(a) : (uint64_t)(b))

static struct vl_dev dev;
static const char *sock_path;

static void die(const char *what, int rc)
{
	fprintf(stderr, "vhost_client: %s: %s\n", what, rc < 0 ? strerror(-rc) : "refused");
	exit(1);
}

/* Connect, negotiate everything, one queue pair of rings: a device ready for I/O. */
static void setup(uint32_t nq, uint32_t qsize, bool seal)
{
	int rc;

	memset(&dev, 0, sizeof(dev));
	if ((rc = vl_mem_create(&dev, MEM_SIZE, seal)))
		die("guest memory", rc);
	if ((rc = vl_connect(&dev, sock_path)))
		die("connect", rc);
	if ((rc = vl_negotiate(&dev, (1ull << VHOST_USER_PROTOCOL_F_MQ) |
					 (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
					 (1ull << VHOST_USER_PROTOCOL_F_CONFIG))))
		die("negotiate", rc);
	if (nq > dev.nq)
		nq = dev.nq;
	dev.nq = nq;
	if ((rc = vl_call(&dev, VHOST_USER_SET_FEATURES, &dev.features, 8, NULL, 0)))
		die("set features", rc);
	if ((rc = vl_mem_table(&dev)))
		die("memory table", rc);
	for (uint32_t q = 0; q < nq; q++) {
		vl_vq_alloc(&dev, q, qsize);
		if ((rc = vl_vq_start(&dev, q, 0)))
			die("queue start", rc);
	}
}

/* ---- one request at a time -------------------------------------------------- */

struct buf {
	uint64_t hdr, status, data;
};

static struct buf onebuf(uint32_t len)
{
	struct buf b;

	b.hdr = vl_alloc(&dev, 16, 16);
	b.status = vl_alloc(&dev, 1, 1);
	b.data = vl_alloc(&dev, len ? len : 1, 4096);
	return b;
}

static void set_hdr(uint64_t gpa, uint32_t type, uint64_t sector)
{
	struct virtio_blk_outhdr *h = vl_ptr(&dev, gpa);

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
}

/*
 * Run the chain `s` (n segments) as head 0 of queue 0; -1 when no answer came
 * within timeout_ms, else the status byte (read from status_gpa).
 */
static int run_chain(const struct vl_seg *s, uint32_t n, uint64_t status_gpa, uint32_t timeout_ms)
{
	struct vl_vq *vq = &dev.vq[0];
	uint16_t head = 0;
	uint32_t id, len;
	uint8_t *st = status_gpa ? vl_ptr(&dev, status_gpa) : NULL;

	if (st)
		*st = 0xee;
	vl_chain(vq->desc, 0, s, n);
	vl_publish(vq, &head, 1);
	if (!vl_wait(vq, &id, &len, timeout_ms))
		return -1;
	return st ? *st : 0;
}

static int rw(uint32_t type, uint64_t sector, uint64_t data, uint32_t len)
{
	struct buf b = { vl_alloc(&dev, 16, 16), vl_alloc(&dev, 1, 1), data };
	struct vl_seg s[3] = {
		{ b.hdr, 16, false },
		{ b.data, len, type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID },
		{ b.status, 1, true },
	};

	set_hdr(b.hdr, type, sector);
	if (type == VIRTIO_BLK_T_FLUSH) {
		s[1] = s[2];
		return run_chain(s, 2, b.status, 5000);
	}
	return run_chain(s, 3, b.status, 5000);
}

static int cmd_info(void)
{
	setup(1, QSIZE, true);
	printf("CAPACITY=%llu\nBLK_SIZE=%u\nSEG_MAX=%u\nSIZE_MAX=%u\nNUM_QUEUES=%u\n"
	       "MAX_DISCARD_SECTORS=%u\nMAX_DISCARD_SEG=%u\nMAX_WRITE_ZEROES_SECTORS=%u\n"
	       "FEATURES=0x%llx\nPROTOCOL_FEATURES=0x%llx\n",
	       (unsigned long long)dev.cfg.capacity, dev.cfg.blk_size, dev.cfg.seg_max,
	       dev.cfg.size_max, dev.nq, dev.cfg.max_discard_sectors, dev.cfg.max_discard_seg,
	       dev.cfg.max_write_zeroes_sectors, (unsigned long long)dev.features,
	       (unsigned long long)dev.proto);
	return 0;
}

static int cmd_verify(void)
{
	uint64_t wbuf, rbuf;
	uint32_t max = 128 << 10, fails = 0;
	uint64_t span;
	int st;

	setup(1, QSIZE, true);
	span = LEAP_MIN_U64(dev.cfg.capacity, 32768);
	wbuf = vl_alloc(&dev, max, 4096);
	rbuf = vl_alloc(&dev, max, 4096);
	srand(42);
	for (int i = 0; i < 64; i++) {
		uint32_t len = (uint32_t)(1 + rand() % 32) * 4096;
		uint64_t sector = (uint64_t)(rand() % (int)(span - len / 512)) & ~7ull;
		uint8_t *w = vl_ptr(&dev, wbuf), *r = vl_ptr(&dev, rbuf);

		for (uint32_t k = 0; k < len; k++)
			w[k] = (uint8_t)rand();
		memset(r, 0, len);
		if ((st = rw(VIRTIO_BLK_T_OUT, sector, wbuf, len)) != VIRTIO_BLK_S_OK ||
		    (st = rw(VIRTIO_BLK_T_IN, sector, rbuf, len)) != VIRTIO_BLK_S_OK ||
		    memcmp(w, r, len)) {
			fprintf(stderr, "verify: round %d (sector %llu, %u bytes): status %d%s\n",
				i, (unsigned long long)sector, len, st, st ? "" : ", data differs");
			fails++;
		}
	}
	printf("RW_ROUNDS_FAILED=%u\n", fails);
	st = rw(VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	printf("FLUSH=%d\n", st);
	fails += st != 0;
	{
		uint64_t id = vl_alloc(&dev, 20, 8);

		st = rw(VIRTIO_BLK_T_GET_ID, 0, id, 20);
		printf("GET_ID=%d\nSERIAL=%.20s\n", st, (char *)vl_ptr(&dev, id));
		fails += st != 0;
	}
	if (dev.features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES)) {
		uint64_t seg = vl_alloc(&dev, 16, 16);
		struct virtio_blk_discard_write_zeroes *z = vl_ptr(&dev, seg);
		uint8_t *r = vl_ptr(&dev, rbuf);

		memset(vl_ptr(&dev, wbuf), 0xab, 8192);
		rw(VIRTIO_BLK_T_OUT, 64, wbuf, 8192);
		*z = (struct virtio_blk_discard_write_zeroes){ .sector = 64, .num_sectors = 16 };
		st = rw(VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 16);
		memset(r, 0xff, 8192);
		rw(VIRTIO_BLK_T_IN, 64, rbuf, 8192);
		for (int k = 0; k < 8192; k++)
			if (r[k]) {
				st = 100;
				break;
			}
		printf("WRITE_ZEROES=%d\n", st);
		fails += st != 0;
	}
	if (dev.features & (1ull << VIRTIO_BLK_F_DISCARD)) {
		uint64_t seg = vl_alloc(&dev, 32, 16);
		struct virtio_blk_discard_write_zeroes *z = vl_ptr(&dev, seg);

		z[0] = (struct virtio_blk_discard_write_zeroes){ .sector = 0, .num_sectors = 8 };
		z[1] = (struct virtio_blk_discard_write_zeroes){ .sector = 256, .num_sectors = 8 };
		st = rw(VIRTIO_BLK_T_DISCARD, 0, seg, 32);
		printf("DISCARD=%d\n", st);
		fails += st != 0;
	}
	printf("VERIFY=%s\n", fails ? "failed" : "ok");
	return fails ? 1 : 0;
}

/* ---- benchmark ---------------------------------------------------------------- */

static uint64_t proc_cpu_ns(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return 0;
	}
	fclose(f);
	p = strrchr(buf, ')');
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

static uint64_t self_cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_utime.tv_sec * 1000000000ull + (uint64_t)ru.ru_utime.tv_usec * 1000 +
	       (uint64_t)ru.ru_stime.tv_sec * 1000000000ull + (uint64_t)ru.ru_stime.tv_usec * 1000;
}

static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static int cmd_bench(int argc, char **argv)
{
	uint32_t qd = 32, bs = 4096, secs = 5, nq = 1, span_mb = 1024, gap_us = 0;
	bool write = false;
	int pid = 0, opt;
	uint64_t done = 0, errors = 0, t0, t1, c0, c1, s0 = 0, s1 = 0, span_blocks;
	struct buf *bufs[VL_MAX_QUEUE];

	while ((opt = getopt(argc, argv, "q:b:t:w:Q:p:s:g:")) != -1) {
		switch (opt) {
		case 'g':
			gap_us = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'q':
			qd = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'b':
			bs = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 't':
			secs = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'Q':
			nq = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'p':
			pid = (int)strtol(optarg, NULL, 0);
			break;
		case 's':
			span_mb = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'w':
			write = strcmp(optarg, "randwrite") == 0;
			break;
		default:
			return 2;
		}
	}
	if (!qd || qd * 3 > QSIZE * 2 || !bs || bs % 512 || bs > (128u << 10) || !nq ||
	    nq > VL_MAX_QUEUE)
		return 2;
	setup(nq, 256, true);
	nq = dev.nq;
	span_blocks = LEAP_MIN_U64(dev.cfg.capacity * 512, (uint64_t)span_mb << 20) / bs;
	for (uint32_t q = 0; q < nq; q++) {
		struct vl_vq *vq = &dev.vq[q];
		uint16_t heads[256];

		bufs[q] = calloc(qd, sizeof(struct buf));
		for (uint32_t i = 0; i < qd; i++) {
			struct vl_seg s[3];

			bufs[q][i] = onebuf(bs);
			memset(vl_ptr(&dev, bufs[q][i].data), 0x5a, bs);
			set_hdr(bufs[q][i].hdr, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
				(rnd() % span_blocks) * (bs / 512));
			s[0] = (struct vl_seg){ bufs[q][i].hdr, 16, false };
			s[1] = (struct vl_seg){ bufs[q][i].data, bs, !write };
			s[2] = (struct vl_seg){ bufs[q][i].status, 1, true };
			vl_chain(vq->desc, (uint16_t)(i * 3), s, 3);
			heads[i] = (uint16_t)(i * 3);
		}
		vl_publish(vq, heads, qd);
	}
	t0 = vl_now_ns();
	c0 = self_cpu_ns();
	if (pid)
		s0 = proc_cpu_ns(pid);
	t1 = t0 + (uint64_t)secs * 1000000000ull;
	for (uint64_t now = t0, spins = 0; now < t1; spins++) {
		for (uint32_t q = 0; q < nq; q++) {
			struct vl_vq *vq = &dev.vq[q];
			uint16_t heads[256];
			uint32_t n = 0, id, len;

			while (vl_reap(vq, &id, &len)) {
				struct buf *b = &bufs[q][id / 3];

				if (*(uint8_t *)vl_ptr(&dev, b->status) != VIRTIO_BLK_S_OK)
					errors++;
				done++;
				set_hdr(b->hdr, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
					(rnd() % span_blocks) * (bs / 512));
				heads[n++] = (uint16_t)id;
			}
			/* A guest that submits far apart: spin, usleep() overshoots by 100s of us. */
			for (uint64_t until = vl_now_ns() + gap_us * 1000ull;
			     n && gap_us && vl_now_ns() < until;)
				;
			if (n)
				vl_publish(vq, heads, n);
		}
		if (gap_us || (spins & 255) == 0)
			now = vl_now_ns();
	}
	t1 = vl_now_ns();
	c1 = self_cpu_ns();
	if (pid)
		s1 = proc_cpu_ns(pid);
	printf("IOPS=%.0f\nIOS=%llu\nERRORS=%llu\nCLIENT_CPU_NS_PER_IO=%.0f\n",
	       (double)done * 1e9 / (double)(t1 - t0), (unsigned long long)done,
	       (unsigned long long)errors, (double)(c1 - c0) / (double)(done ? done : 1));
	if (pid)
		printf("SERVER_CPU_NS_PER_IO=%.0f\nSERVER_CPU_PCT=%.0f\n",
		       (double)(s1 - s0) / (double)(done ? done : 1),
		       100.0 * (double)(s1 - s0) / (double)(t1 - t0));
	for (uint32_t q = 0; q < nq; q++)
		free(bufs[q]);
	return errors ? 1 : 0;
}

/* ---- bad input ------------------------------------------------------------------ */

enum expect { E_STATUS, E_BROKEN, E_ACK_FAIL, E_CLOSED, E_SURVIVE };

static bool peer_closed(void)
{
	struct pollfd p = { .fd = dev.sock, .events = POLLIN };
	char c;

	if (poll(&p, 1, 3000) <= 0)
		return false;
	return recv(dev.sock, &c, 1, MSG_DONTWAIT) == 0;
}

/* A valid 4 KiB read completes with OK (the device works). */
static int good_read(uint32_t timeout_ms)
{
	struct buf b = onebuf(4096);
	struct vl_seg s[3] = { { b.hdr, 16, false },
			       { b.data, 4096, true },
			       { b.status, 1, true } };
	struct vl_vq *vq = &dev.vq[0];
	uint16_t head = 8;
	uint32_t id, len;

	set_hdr(b.hdr, VIRTIO_BLK_T_IN, 0);
	*(uint8_t *)vl_ptr(&dev, b.status) = 0xee;
	vl_chain(vq->desc, head, s, 3);
	vl_publish(vq, &head, 1);
	if (!vl_wait(vq, &id, &len, timeout_ms))
		return -1;
	return *(uint8_t *)vl_ptr(&dev, b.status);
}

/* The guest resets the device: stop the ring, fresh rings, start again. */
static int reset_queue(void)
{
	struct vhost_vring_state st = { 0, 0 };
	struct vl_vq *vq = &dev.vq[0];
	int rc;

	if ((rc = vl_send(&dev, VHOST_USER_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0)) ||
	    vl_recv(&dev, VHOST_USER_GET_VRING_BASE, &st, sizeof(st), NULL) != sizeof(st))
		return -1;
	memset(vq->desc, 0, vring_desc_size(vq->num));
	memset(vq->avail, 0, vring_avail_size(vq->num));
	memset(vq->used, 0, vring_used_size(vq->num));
	vq->avail_idx = vq->used_seen = 0;
	close(vq->kick);
	vq->kick = 0;
	return vl_vq_start(&dev, 0, 0);
}

struct bad {
	const char *name;
	enum expect expect;
	int status; /* E_STATUS */
	const char *what;
};

static const struct bad bads[] = {
	{ "desc-outside", E_STATUS, VIRTIO_BLK_S_IOERR, "data descriptor outside every region" },
	{ "desc-wrap", E_STATUS, VIRTIO_BLK_S_IOERR, "data descriptor wrapping the address space" },
	{ "status-outside", E_BROKEN, 0, "status descriptor outside every region" },
	{ "loop", E_BROKEN, 0, "descriptor chain that loops" },
	{ "indirect-loop", E_BROKEN, 0, "indirect table whose chain loops" },
	{ "indirect-huge", E_BROKEN, 0, "indirect table larger than any queue" },
	{ "indirect-nested", E_BROKEN, 0, "indirect descriptor inside an indirect table" },
	{ "bad-next", E_BROKEN, 0, "next index outside the queue" },
	{ "seg-max", E_STATUS, VIRTIO_BLK_S_IOERR, "more data descriptors than seg_max" },
	{ "too-big", E_STATUS, VIRTIO_BLK_S_IOERR, "request larger than seg_max x size_max" },
	{ "hdr-writable", E_STATUS, VIRTIO_BLK_S_IOERR, "header in a device-writable descriptor" },
	{ "status-readable", E_BROKEN, 0, "status in a device-readable descriptor" },
	{ "readable-after-writable", E_BROKEN, 0, "readable descriptor after a writable one" },
	{ "short-hdr", E_STATUS, VIRTIO_BLK_S_IOERR, "request shorter than its header" },
	{ "avail-jump", E_BROKEN, 0, "avail index jumping by more than the queue size" },
	{ "bad-head", E_BROKEN, 0, "avail ring naming a head past the queue" },
	{ "unsupported", E_STATUS, VIRTIO_BLK_S_UNSUPP, "unknown request type" },
	{ "out-of-range", E_STATUS, VIRTIO_BLK_S_IOERR, "sector past the capacity" },
	{ "unaligned", E_STATUS, VIRTIO_BLK_S_IOERR, "data length not a multiple of 512" },
	{ "discard-flags", E_STATUS, VIRTIO_BLK_S_UNSUPP, "discard with the unmap flag" },
	{ "regions-overlap", E_ACK_FAIL, 0, "memory table with overlapping regions" },
	{ "region-empty", E_ACK_FAIL, 0, "memory region of size 0" },
	{ "region-beyond-fd", E_ACK_FAIL, 0, "memory region larger than its fd" },
	{ "region-wrap", E_ACK_FAIL, 0, "memory region wrapping the address space" },
	{ "region-unsealed", E_ACK_FAIL, 0, "memory region fd that may shrink" },
	{ "kick-pipe", E_ACK_FAIL, 0, "kick fd that is a pipe, not an eventfd" },
	{ "ring-outside", E_ACK_FAIL, 0, "vring address outside guest memory" },
	{ "msg-size", E_CLOSED, 0, "message with the wrong payload size" },
	{ "msg-fds", E_CLOSED, 0, "message with an unexpected fd" },
	{ "msg-huge", E_CLOSED, 0, "message claiming a huge payload" },
	{ "msg-unknown", E_CLOSED, 0, "unknown request" },
	{ "msg-version", E_CLOSED, 0, "wrong protocol version" },
	{ "disconnect-mid", E_SURVIVE, 0, "front-end gone with requests in flight" },
};

static int commit_bad(const char *name)
{
	struct vl_vq *vq = &dev.vq[0];
	struct buf b = onebuf(8192);
	uint64_t outside = VL_GPA_BASE + dev.size; /* the canary: mapped here, not offered */
	struct vl_seg s[48];
	uint16_t head = 0;

	set_hdr(b.hdr, VIRTIO_BLK_T_IN, 0);
	s[0] = (struct vl_seg){ b.hdr, 16, false };
	s[1] = (struct vl_seg){ b.data, 4096, true };
	s[2] = (struct vl_seg){ b.status, 1, true };
	if (!strcmp(name, "desc-outside")) {
		s[1].gpa = outside;
		return run_chain(s, 3, b.status, 2000);
	}
	if (!strcmp(name, "desc-wrap")) {
		s[1].gpa = ~0ull - 2047;
		return run_chain(s, 3, b.status, 2000);
	}
	if (!strcmp(name, "status-outside")) {
		s[2].gpa = outside + 100;
		return run_chain(s, 3, 0, 1000);
	}
	if (!strcmp(name, "loop")) {
		vl_chain(vq->desc, 0, s, 3);
		vq->desc[2].flags |= VRING_DESC_F_NEXT;
		vq->desc[2].next = 0;
		vl_publish(vq, &head, 1);
		return -1;
	}
	if (!strcmp(name, "indirect-loop") || !strcmp(name, "indirect-huge") ||
	    !strcmp(name, "indirect-nested")) {
		uint32_t n = !strcmp(name, "indirect-huge") ? VIRTQUEUE_MAX_SIZE + 1 : 3;
		uint64_t tbl = vl_alloc(&dev, n * 16ull, 16);
		struct vring_desc *t = vl_ptr(&dev, tbl);

		vl_chain(t, 0, s, 3);
		if (!strcmp(name, "indirect-loop")) {
			t[2].flags |= VRING_DESC_F_NEXT;
			t[2].next = 1;
		}
		if (!strcmp(name, "indirect-nested"))
			t[1].flags = VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT;
		vq->desc[0] = (struct vring_desc){ tbl, n * 16, VRING_DESC_F_INDIRECT, 0 };
		vl_publish(vq, &head, 1);
		return -1;
	}
	if (!strcmp(name, "bad-next")) {
		vl_chain(vq->desc, 0, s, 3);
		vq->desc[1].next = (uint16_t)(vq->num + 3);
		vl_publish(vq, &head, 1);
		return -1;
	}
	if (!strcmp(name, "seg-max") || !strcmp(name, "too-big")) {
		uint32_t n = !strcmp(name, "seg-max") ? 40 : 2, len = n == 2 ? (128u << 10) : 512;
		uint64_t data = vl_alloc(&dev, (uint64_t)n * len, 4096);

		for (uint32_t i = 0; i < n; i++)
			s[1 + i] = (struct vl_seg){ data + (uint64_t)i * len, len, true };
		s[1 + n] = (struct vl_seg){ b.status, 1, true };
		return run_chain(s, n + 2, b.status, 2000);
	}
	if (!strcmp(name, "hdr-writable")) {
		s[0].write = true;
		return run_chain(s, 3, b.status, 2000);
	}
	if (!strcmp(name, "status-readable")) {
		set_hdr(b.hdr, VIRTIO_BLK_T_OUT, 0);
		s[1].write = s[2].write = false;
		return run_chain(s, 3, 0, 1000);
	}
	if (!strcmp(name, "readable-after-writable")) {
		s[2].write = false;
		return run_chain(s, 3, 0, 1000);
	}
	if (!strcmp(name, "short-hdr")) {
		s[0].len = 8;
		return run_chain(s, 3, b.status, 2000);
	}
	if (!strcmp(name, "avail-jump")) {
		vl_chain(vq->desc, 0, s, 3);
		vq->avail_idx = (uint16_t)(vq->num + 5);
		vl_publish(vq, &head, 1);
		return -1;
	}
	if (!strcmp(name, "bad-head")) {
		head = (uint16_t)(vq->num + 5);
		vl_publish(vq, &head, 1);
		return -1;
	}
	if (!strcmp(name, "unsupported")) {
		set_hdr(b.hdr, 99, 0);
		return run_chain(s, 3, b.status, 2000);
	}
	if (!strcmp(name, "out-of-range")) {
		set_hdr(b.hdr, VIRTIO_BLK_T_IN, dev.cfg.capacity);
		return run_chain(s, 3, b.status, 2000);
	}
	if (!strcmp(name, "unaligned")) {
		s[1].len = 100;
		return run_chain(s, 3, b.status, 2000);
	}
	if (!strcmp(name, "discard-flags")) {
		struct virtio_blk_discard_write_zeroes *z = vl_ptr(&dev, b.data);

		set_hdr(b.hdr, VIRTIO_BLK_T_DISCARD, 0);
		*z = (struct virtio_blk_discard_write_zeroes){ 0, 8, 1 };
		s[1] = (struct vl_seg){ b.data, 16, false };
		return run_chain(s, 3, b.status, 2000);
	}
	if (!strncmp(name, "region-", 7) || !strcmp(name, "regions-overlap")) {
		struct vhost_user_memory m = { .nregions = 1 };
		int fds[2] = { dev.memfd, dev.memfd }, fd2 = -1, nr = 1;

		m.regions[0] = (struct vhost_user_mem_region){ VL_GPA_BASE, dev.size,
							       (uint64_t)(uintptr_t)dev.mem, 0 };
		if (!strcmp(name, "regions-overlap")) {
			m.nregions = nr = 2;
			m.regions[1] = (struct vhost_user_mem_region){
				VL_GPA_BASE + 4096, 8192, (uint64_t)(uintptr_t)dev.mem + dev.size, 0
			};
		} else if (!strcmp(name, "region-empty")) {
			m.regions[0].memory_size = 0;
		} else if (!strcmp(name, "region-beyond-fd")) {
			m.regions[0].memory_size = dev.size + VL_CANARY + (1ull << 20);
		} else if (!strcmp(name, "region-wrap")) {
			m.regions[0].guest_phys_addr = ~0ull - 4095;
		} else {
			fd2 = memfd_create("unsealed", MFD_CLOEXEC);
			if (fd2 < 0 || ftruncate(fd2, (off_t)dev.size) < 0)
				return -2;
			fds[0] = fd2;
		}
		return vl_call(&dev, VHOST_USER_SET_MEM_TABLE, &m,
			       8 + (uint32_t)nr * sizeof(m.regions[0]), fds, nr);
	}
	if (!strcmp(name, "kick-pipe")) {
		int p[2];
		uint64_t v = 0;

		if (pipe(p) < 0)
			return -2;
		reset_queue(); /* stopped: a new kick fd is expected */
		return vl_call(&dev, VHOST_USER_SET_VRING_KICK, &v, 8, &p[0], 1);
	}
	if (!strcmp(name, "ring-outside")) {
		struct vhost_vring_addr a = { .index = 0 };
		struct vhost_vring_state st = { 0, 0 };

		vl_send(&dev, VHOST_USER_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0);
		vl_recv(&dev, VHOST_USER_GET_VRING_BASE, &st, sizeof(st), NULL);
		a.desc_user_addr = (uint64_t)(uintptr_t)dev.mem + dev.size - 64;
		a.avail_user_addr = (uint64_t)(uintptr_t)vq->avail;
		a.used_user_addr = (uint64_t)(uintptr_t)vq->used;
		vl_call(&dev, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
		{
			uint64_t v = 0;
			int k = eventfd(0, EFD_CLOEXEC);

			return vl_call(&dev, VHOST_USER_SET_VRING_KICK, &v, 8, &k, 1);
		}
	}
	if (!strcmp(name, "msg-size")) {
		uint32_t x = 0;

		return vl_send(&dev, VHOST_USER_SET_VRING_NUM, 0, &x, 4, NULL, 0);
	}
	if (!strcmp(name, "msg-fds"))
		return vl_send(&dev, VHOST_USER_GET_FEATURES, 0, NULL, 0, &dev.memfd, 1);
	if (!strcmp(name, "msg-huge")) {
		struct vhost_user_hdr h = { VHOST_USER_SET_FEATURES, VHOST_USER_VERSION, 1u << 20 };

		return send(dev.sock, &h, sizeof(h), MSG_NOSIGNAL) == sizeof(h) ? 0 : -1;
	}
	if (!strcmp(name, "msg-unknown"))
		return vl_send(&dev, 99, 0, NULL, 0, NULL, 0);
	if (!strcmp(name, "msg-version")) {
		struct vhost_user_hdr h = { VHOST_USER_GET_FEATURES, 2, 0 };

		return send(dev.sock, &h, sizeof(h), MSG_NOSIGNAL) == sizeof(h) ? 0 : -1;
	}
	if (!strcmp(name, "disconnect-mid")) {
		uint64_t data = vl_alloc(&dev, 32ull * 65536, 4096);
		uint16_t heads[32];

		for (uint32_t i = 0; i < 32; i++) {
			struct buf x = onebuf(0);

			set_hdr(x.hdr, VIRTIO_BLK_T_OUT, i * 128);
			s[0] = (struct vl_seg){ x.hdr, 16, false };
			s[1] = (struct vl_seg){ data + i * 65536ull, 65536, false };
			s[2] = (struct vl_seg){ x.status, 1, true };
			vl_chain(vq->desc, (uint16_t)(i * 3), s, 3);
			heads[i] = (uint16_t)(i * 3);
		}
		vl_publish(vq, heads, 32);
		close(dev.sock);
		return 0;
	}
	return -2;
}

static int cmd_bad(const char *name)
{
	const struct bad *b = NULL;
	int rc, after;

	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
		if (!strcmp(bads[i].name, name))
			b = &bads[i];
	if (!b)
		return 2;
	setup(1, QSIZE, true);
	rc = commit_bad(name);
	if (rc == -2)
		return 2;
	printf("CLASS=%s\nWHAT=%s\n", b->name, b->what);
	switch (b->expect) {
	case E_STATUS:
		printf("STATUS=%d\n", rc);
		if (rc != b->status)
			goto fail;
		after = good_read(2000);
		printf("AFTER=%d\n", after);
		if (after != VIRTIO_BLK_S_OK)
			goto fail;
		break;
	case E_BROKEN:
		/* No answer, and nothing more is fetched until the guest resets the device. */
		printf("STATUS=%d\n", rc);
		if (rc != -1)
			goto fail;
		after = good_read(500);
		printf("WHILE_BROKEN=%d\n", after);
		if (after != -1)
			goto fail;
		if (reset_queue())
			goto fail;
		after = good_read(2000);
		printf("AFTER_RESET=%d\n", after);
		if (after != VIRTIO_BLK_S_OK)
			goto fail;
		break;
	case E_ACK_FAIL:
		printf("ACK=%d\n", rc);
		if (rc != 1)
			goto fail;
		break;
	case E_CLOSED:
		if (rc || !peer_closed())
			goto fail;
		printf("CLOSED=1\n");
		break;
	case E_SURVIVE:
		break;
	}
	if (!vl_canary_ok(&dev)) {
		printf("CANARY=touched\n");
		goto fail;
	}
	printf("RESULT=ok\n");
	return 0;
fail:
	printf("RESULT=unexpected\n");
	return 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "bad") && !strcmp(argv[2], "list")) {
		for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
			printf("%s\n", bads[i].name);
		return 0;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: vhost_client info|verify|bench|bad SOCK [...]\n");
		return 2;
	}
	sock_path = argv[2];
	if (!strcmp(argv[1], "info"))
		return cmd_info();
	if (!strcmp(argv[1], "verify"))
		return cmd_verify();
	if (!strcmp(argv[1], "bench"))
		return cmd_bench(argc - 2, argv + 2);
	if (!strcmp(argv[1], "bad") && argc == 4)
		return cmd_bad(argv[3]);
	fprintf(stderr, "usage: vhost_client info|verify|bench|bad SOCK [...]\n");
	return 2;
}
