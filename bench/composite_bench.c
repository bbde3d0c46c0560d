// SPDX-License-Identifier: BSD-3-Clause
/*
 * What a composite backend costs per I/O, without leapd around it: one
 * thread, closed loop at a fixed queue depth (each callback resubmits its
 * slot, the loop only polls), 4 KiB random I/O on a null bdev, a mirror of
 * two null bdevs and a stripe of two, rounds interleaved so a busy machine
 * hurts all three alike. The figure is CPU time per I/O on this thread
 * (CLOCK_THREAD_CPUTIME_ID), which time slices stolen by other processes
 * do not inflate. Prints one line per configuration:
 *   composite-bench kind=mirror rw=randwrite qd=128 ios=... cpu_ns_per_io=... (median)
 * Usage: composite-bench [-q qd] [-s seconds per run] [-r rounds] [-p mirror read policy]
 *                        [-k null|mirror|stripe] [-w randread|randwrite]
 * -k and -w run one configuration only: under
 *   valgrind --tool=callgrind --toggle-collect=run build/bench/composite_bench -k mirror ...
 * the instructions per I/O are the collected count over the ios printed.
 * -c N: instead, N I/Os through the controller model (leap_ctrl_submit()
 * and leap_ctrl_poll(), a namespace on the bdev, QD 128, as
 * bench/chain_bench.c does), so --toggle-collect=run_ctrl counts what a
 * reactor does per I/O short of the transport.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "leapio/nvme_spec.h"
#include "backend/bdev.h"
#include "nvme/ctrl.h"
#include "policy/policy.h"

LEAP_BDEV_MODULE_USE(leap_bdev_null_ops);
LEAP_BDEV_MODULE_USE(leap_bdev_mirror_ops);
LEAP_BDEV_MODULE_USE(leap_bdev_stripe_ops);

#define BS	  4096u
#define MAX_QD	  1024u
#define MAX_ROUND 15

struct slot {
	struct leap_bdev_io io;
	struct iovec iov;
};

static struct {
	struct leap_bdev_channel *ch;
	struct slot slots[MAX_QD];
	struct leap_bdev_io *pending[MAX_QD];
	uint32_t npending;
	uint64_t rng, blocks, done, errors;
	bool stop;
} B;

static uint64_t clock_of(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void issue(struct leap_bdev_io *io)
{
	B.rng ^= B.rng << 13;
	B.rng ^= B.rng >> 7;
	B.rng ^= B.rng << 17;
	io->offset = (B.rng % B.blocks) * BS;
	if (leap_bdev_submit(B.ch, io) == -EAGAIN)
		B.pending[B.npending++] = io;
}

static void done_cb(struct leap_bdev_io *io, uint16_t status)
{
	B.done++;
	B.errors += status != 0;
	if (!B.stop)
		issue(io);
}

/* One closed-loop run: CPU ns per I/O. */
/* Not inlined: callgrind --toggle-collect=run counts exactly this. */
__attribute__((noinline, noclone)) static double run(struct leap_bdev *b, int op, uint32_t qd,
						     uint32_t secs, uint64_t *ios)
{
	static uint8_t buf[MAX_QD * BS] __attribute__((aligned(4096)));
	uint64_t t0, c0, c1;

	if (leap_bdev_channel_open(b, &B.ch))
		return -1;
	B.blocks = b->size / BS;
	B.rng = 0x9e3779b97f4a7c15ull;
	B.done = B.npending = 0;
	B.stop = false;
	for (uint32_t i = 0; i < qd; i++) {
		struct slot *s = &B.slots[i];

		memset(&s->io, 0, sizeof(s->io));
		s->iov.iov_base = buf + (size_t)i * BS;
		s->iov.iov_len = BS;
		s->io.op = (uint8_t)op;
		s->io.iov = &s->iov;
		s->io.iovcnt = 1;
		s->io.len = BS;
		s->io.buf_index = -1;
		s->io.cb = done_cb;
	}
	t0 = clock_of(CLOCK_MONOTONIC);
	c0 = clock_of(CLOCK_THREAD_CPUTIME_ID);
	for (uint32_t i = 0; i < qd; i++)
		issue(&B.slots[i].io);
	for (uint64_t it = 0;; it++) {
		uint32_t n = B.npending;

		leap_bdev_poll(B.ch);
		B.npending = 0;
		for (uint32_t i = 0; i < n; i++)
			issue(B.pending[i]);
		if ((it & 255) == 0 && clock_of(CLOCK_MONOTONIC) - t0 >= secs * 1000000000ull)
			break;
	}
	c1 = clock_of(CLOCK_THREAD_CPUTIME_ID);
	*ios = B.done;
	B.stop = true;
	while (B.ch->inflight)
		leap_bdev_poll(B.ch);
	leap_bdev_channel_close(B.ch);
	return (double)(c1 - c0) / (double)*ios;
}

/* ---- through the controller model (-c) ------------------------------------------- */

static uint64_t c_completed, c_failed;

static void ctrl_complete(void *t, struct leap_req *req)
{
	c_completed++;
	c_failed += req->status != 0;
	leap_qpair_req_put(req->qp, req);
}

static const struct leap_transport_caps c_caps = { .prp = true, .cntrltype = 1 };
static const struct leap_ctrl_transport_ops c_ops = { .caps = &c_caps, .complete = ctrl_complete };

/* Not inlined: callgrind --toggle-collect=run_ctrl counts exactly this. */
__attribute__((noinline, noclone)) static void
run_ctrl(struct leap_ctrl *ctrl, struct leap_qpair *qp, int write, uint64_t n, void *buf)
{
	uint64_t submitted = 0, lba = 0;

	c_completed = 0;
	while (c_completed < n) {
		struct leap_req *req;

		while (submitted - c_completed < 128 && submitted < n &&
		       (req = leap_qpair_req_get(qp))) {
			memset(&req->sqe, 0, sizeof(req->sqe));
			req->sqe.opc = write ? NVME_OPC_WRITE : NVME_OPC_READ;
			req->sqe.nsid = 1;
			req->sqe.cid = (uint16_t)submitted;
			req->sqe.prp1 = (uint64_t)(uintptr_t)buf;
			/* 4 KiB at a spread of LBAs: 8 blocks of 512 bytes. */
			req->sqe.cdw10 = (uint32_t)((lba * 2654435761u) & 0x1ffff) * 8;
			req->sqe.cdw12 = 7;
			lba++;
			submitted++;
			leap_ctrl_submit(ctrl, req, false);
		}
		leap_ctrl_poll(ctrl);
	}
}

static int ctrl_mode(const char *kind, const char *rw, uint64_t n)
{
	static struct leap_qpair qp;
	struct leap_ctrl *ctrl;
	const char *bdev = strcmp(kind, "mirror") == 0	 ? "mir"
			   : strcmp(kind, "stripe") == 0 ? "st"
							 : "n";
	void *buf = aligned_alloc(4096, 4096);
	uint64_t t0;

	if (!buf || leap_ctrl_create(&(struct leap_ctrl_opts){ .name = "cb" }, &ctrl) ||
	    leap_ctrl_ns_add(ctrl, 1, bdev, 0, 0, 512) != 1) {
		fprintf(stderr, "composite-bench: controller setup failed\n");
		return 1;
	}
	leap_ctrl_transport_bind(ctrl, &c_ops, NULL);
	if (leap_qpair_init(&qp, ctrl, 1, 1, 128, 128) || leap_policy_ctrl_add(ctrl, 0))
		return 1;
	ctrl->mem.cnt = 1;
	ctrl->mem.r[0] =
	    (struct leap_mem_region){ .base = (uint64_t)(uintptr_t)buf, .len = 4096, .local = buf };
	memset(buf, 0x5a, 4096);
	t0 = clock_of(CLOCK_THREAD_CPUTIME_ID);
	run_ctrl(ctrl, &qp, strcmp(rw, "randwrite") == 0, n, buf);
	printf("composite-bench ctrl kind=%s rw=%s ios=%llu cpu_ns_per_io=%.1f failed=%llu\n", kind,
	       rw, (unsigned long long)n,
	       (double)(clock_of(CLOCK_THREAD_CPUTIME_ID) - t0) / (double)n,
	       (unsigned long long)c_failed);
	return c_failed ? 1 : 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static struct leap_bdev *mk(const char *text)
{
	struct leap_bdev_err err = { { 0 } };
	json_error_t jerr;
	json_t *p = json_loads(text, 0, &jerr);
	struct leap_bdev *b = NULL;
	int rc = p ? leap_bdev_create_wait(p, &b, &err) : -EINVAL;

	json_decref(p);
	if (rc) {
		fprintf(stderr, "composite-bench: %s: %s\n", text, err.msg);
		exit(1);
	}
	return b;
}

int main(int argc, char **argv)
{
	static const char *const kinds[] = { "null", "mirror", "stripe" };
	static const char *const rws[] = { "randread", "randwrite" };
	uint32_t qd = 128, secs = 2, rounds = 3;
	const char *policy = NULL, *only_kind = NULL, *only_rw = NULL;
	uint64_t ctrl_ios = 0;
	double cost[3][2][MAX_ROUND];
	uint64_t ios[3][2] = { { 0 } };
	struct leap_bdev *b[3];
	int opt;

	while ((opt = getopt(argc, argv, "q:s:r:p:k:w:c:")) != -1) {
		if (opt == 'c')
			ctrl_ios = strtoull(optarg, NULL, 10);
		else if (opt == 'p')
			policy = optarg;
		else if (opt == 'k')
			only_kind = optarg;
		else if (opt == 'w')
			only_rw = optarg;
		else if (opt == 'q')
			qd = (uint32_t)strtoul(optarg, NULL, 10);
		else if (opt == 's')
			secs = (uint32_t)strtoul(optarg, NULL, 10);
		else if (opt == 'r')
			rounds = (uint32_t)strtoul(optarg, NULL, 10);
		else
			return LEAP_EXIT_USAGE;
	}
	if (!qd || qd > MAX_QD || !secs || !rounds || rounds > MAX_ROUND)
		return LEAP_EXIT_USAGE;
	leap_log_set_level(LEAP_LOG_WARN);
	b[0] = mk("{\"name\":\"n\",\"type\":\"null\",\"size\":1073741824}");
	mk("{\"name\":\"m0\",\"type\":\"null\",\"size\":1073741824}");
	mk("{\"name\":\"m1\",\"type\":\"null\",\"size\":1073741824}");
	mk("{\"name\":\"s0\",\"type\":\"null\",\"size\":1073741824}");
	mk("{\"name\":\"s1\",\"type\":\"null\",\"size\":1073741824}");
	b[1] = mk("{\"name\":\"mir\",\"type\":\"mirror\",\"legs\":[\"m0\",\"m1\"]}");
	b[2] = mk("{\"name\":\"st\",\"type\":\"stripe\",\"legs\":[\"s0\",\"s1\"]}");
	if (policy) {
		struct leap_bdev_err err = { { 0 } };
		json_t *p = json_pack("{s:s, s:s}", "name", "mir", "read_policy", policy),
		       *res = NULL;

		if (leap_bdev_method_call("bdev_mirror_set", p, &res, &err)) {
			fprintf(stderr, "composite-bench: %s\n", err.msg);
			return LEAP_EXIT_USAGE;
		}
		json_decref(p);
		json_decref(res);
	}
	if (ctrl_ios)
		return ctrl_mode(only_kind ? only_kind : "null", only_rw ? only_rw : "randread",
				 ctrl_ios);
	for (uint32_t r = 0; r < rounds; r++)
		for (int w = 0; w < 2; w++)
			for (int k = 0; k < 3; k++) {
				uint64_t n = 0;

				if ((only_kind && strcmp(only_kind, kinds[k])) ||
				    (only_rw && strcmp(only_rw, rws[w])))
					continue;
				cost[k][w][r] = run(
				    b[k], w ? LEAP_BDEV_OP_WRITE : LEAP_BDEV_OP_READ, qd, secs, &n);
				ios[k][w] += n;
			}
	for (int w = 0; w < 2; w++)
		for (int k = 0; k < 3; k++) {
			if (!ios[k][w])
				continue;
			qsort(cost[k][w], rounds, sizeof(double), cmp_double);
			printf("composite-bench kind=%s rw=%s qd=%u rounds=%u ios=%llu "
			       "cpu_ns_per_io=%.1f\n",
			       kinds[k], rws[w], qd, rounds, (unsigned long long)ios[k][w],
			       cost[k][w][rounds / 2]);
		}
	return B.errors ? 1 : 0;
}
