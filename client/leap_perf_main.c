// SPDX-License-Identifier: BSD-3-Clause
/*
 * leap-perf: a load generator for leapd's virtual NVMe controllers, in the
 * spirit of SPDK's perf. One thread drives P queue pairs on each of one or
 * more controllers (-c a,b,c or -c repeated), each kept at queue depth Q,
 * for T seconds, polling every queue pair round-robin, and reports IOPS,
 * bandwidth and latency percentiles (log-linear histogram, 1/16 octave
 * resolution) over all of them. One thread for many controllers is what a
 * tenant with few cores does; one process per controller on a 2-core box
 * would measure oversubscription, not leapd.
 *
 * --irq creates the queue pairs with completion interrupts: after
 * --poll-us of polling with nothing to reap, the thread blocks in poll() on
 * the completion vectors instead of spinning (what fio's io_uring engine
 * does in io_uring_enter), leaving the CPU to leapd and the kernel.
 *
 * --verify writes a pattern that encodes (LBA, seed) over the working set
 * first, then runs the workload with writes re-writing the same pattern and
 * reads checking every byte; since the pattern is a function of the LBA
 * alone, any interleaving of reads and writes must read back exactly it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include "leapio/client.h"
#include "leapio/common.h"

#define SUB	  16 /* histogram sub-buckets per power of two */
#define NBUCKET	  (64 * SUB)
#define MAX_CTRLS 64

struct slot {
	uint8_t *buf;
	uint64_t lba;
	uint64_t start_ns;
	bool write;
	bool busy;
};

/* One attached controller and its namespace geometry. */
struct ctrl_state {
	const char *name;
	struct leap_client *client;
	uint64_t nlb, span_lbas;
	uint32_t lba_size;
	int fd; /* completion vector (--irq), shared by its queue pairs */
};

struct qp_state {
	struct leap_client_qpair *qp;
	struct ctrl_state *cs;
	struct slot *slots;
	uint16_t *free_cids; /* stack of idle slots: no scan of all QD slots per pass */
	uint32_t nfree, nslots;
};

struct perf {
	const char *sock, *workload;
	uint32_t nsid, qd, iosize, qpairs, seconds, mix, poll_us;
	bool verify, json, random, rmix, irq;
	int wmode; /* WM_*: decided once, not by string compares per I/O */
	uint64_t span_bytes, seed;
	struct ctrl_state ctrls[MAX_CTRLS];
	uint32_t nctrls;
	uint64_t sleeps;
	double cpu_pct; /* this process's CPU time over the measured run, % of one CPU */
	uint64_t ios, reads, writes, errors, mismatches, bytes;
	uint64_t lat_sum;
	uint64_t lat_max; /* worst single I/O: the stall a live replace may cause */
	uint64_t hist[NBUCKET];
	uint64_t rng;
	uint64_t seq_next;
	uint16_t first_err_status;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(struct perf *p)
{
	p->rng ^= p->rng << 13;
	p->rng ^= p->rng >> 7;
	p->rng ^= p->rng << 17;
	return p->rng;
}

static unsigned int bucket(uint64_t ns)
{
	unsigned int msb, sub;

	if (ns < SUB)
		return (unsigned int)ns;
	msb = 63u - (unsigned int)__builtin_clzll(ns);
	sub = (unsigned int)((ns >> (msb - 4)) & (SUB - 1));
	return msb * SUB + sub - 3 * SUB; /* msb >= 4 here */
}

static uint64_t bucket_value(unsigned int b)
{
	unsigned int msb, sub;

	if (b < SUB)
		return b;
	msb = b / SUB + 3;
	sub = b % SUB;
	return ((uint64_t)(SUB + sub) << (msb - 4)) + ((1ull << (msb - 4)) >> 1);
}

static uint64_t percentile(const struct perf *p, double pct)
{
	uint64_t total = 0, seen = 0;

	for (unsigned int b = 0; b < NBUCKET; b++)
		total += p->hist[b];
	for (unsigned int b = 0; b < NBUCKET; b++) {
		seen += p->hist[b];
		if (total && (double)seen >= pct / 100.0 * (double)total)
			return bucket_value(b);
	}
	return 0;
}

/* The pattern: every 8-byte word names its LBA, the seed and its position. */
static void fill(const struct perf *p, uint32_t lba_size, uint8_t *buf, uint64_t lba)
{
	uint32_t words = lba_size / 8;

	for (uint32_t blk = 0; blk < p->iosize / lba_size; blk++) {
		uint64_t *w = (uint64_t *)(buf + (size_t)blk * lba_size);

		for (uint32_t i = 0; i < words; i++)
			w[i] = ((lba + blk) << 16 ^ p->seed) + i * 0x9e3779b97f4a7c15ull;
	}
}

static bool check(const struct perf *p, uint32_t lba_size, const uint8_t *buf, uint64_t lba)
{
	uint32_t words = lba_size / 8;

	for (uint32_t blk = 0; blk < p->iosize / lba_size; blk++) {
		const uint64_t *w = (const uint64_t *)(buf + (size_t)blk * lba_size);

		for (uint32_t i = 0; i < words; i++)
			if (w[i] != (((lba + blk) << 16 ^ p->seed) + i * 0x9e3779b97f4a7c15ull))
				return false;
	}
	return true;
}

static uint64_t next_lba(struct perf *p, const struct ctrl_state *cs)
{
	uint64_t units = cs->span_lbas / (p->iosize / cs->lba_size), u;

	if (p->random) {
		u = rnd(p) % units;
	} else {
		u = p->seq_next++ % units;
	}
	return u * (p->iosize / cs->lba_size);
}

enum { WM_READ, WM_WRITE, WM_MIX };

static bool pick_write(struct perf *p)
{
	if (p->wmode != WM_MIX)
		return p->wmode == WM_WRITE;
	return (rnd(p) % 100) >= p->mix;
}

/* Queue one I/O in slot cid; `now` is the batch's start (one clock read per batch). */
static int submit(struct perf *p, struct qp_state *q, uint16_t cid, bool write, uint64_t lba,
		  uint64_t now)
{
	struct slot *s = &q->slots[cid];
	struct nvme_sqe sqe = { 0 };

	sqe.opc = write ? NVME_OPC_WRITE : NVME_OPC_READ;
	sqe.nsid = p->nsid;
	sqe.cid = cid;
	sqe.cdw10 = (uint32_t)lba;
	sqe.cdw11 = (uint32_t)(lba >> 32);
	sqe.cdw12 = p->iosize / q->cs->lba_size - 1;
	if (write && p->verify)
		fill(p, q->cs->lba_size, s->buf, lba);
	if (leap_client_prp(q->qp, &sqe, cid, s->buf, p->iosize))
		return -E2BIG;
	s->lba = lba;
	s->write = write;
	s->busy = true;
	s->start_ns = now;
	return leap_client_submit(q->qp, &sqe);
}

/* `now`: when this batch of completions was found (one clock read per batch). */
static void reap(struct perf *p, struct qp_state *q, const struct nvme_cqe *e, bool count,
		 uint64_t now)
{
	struct slot *s = &q->slots[e->cid];
	uint64_t lat;

	if (e->cid >= q->nslots || !s->busy) { /* a CID we did not issue: leapd bug */
		p->errors++;
		if (!p->first_err_status)
			p->first_err_status = 0x6; /* internal error */
		return;
	}
	lat = now - s->start_ns;
	s->busy = false;
	q->free_cids[q->nfree++] = e->cid;
	if (e->status >> 1) {
		p->errors++;
		if (!p->first_err_status)
			p->first_err_status = e->status >> 1;
		return;
	}
	if (!s->write && p->verify && !check(p, q->cs->lba_size, s->buf, s->lba))
		p->mismatches++;
	if (!count)
		return;
	p->ios++;
	p->bytes += p->iosize;
	if (s->write)
		p->writes++;
	else
		p->reads++;
	p->lat_sum += lat;
	if (lat > p->lat_max)
		p->lat_max = lat;
	p->hist[LEAP_MIN(bucket(lat), NBUCKET - 1)]++;
}

static bool all_alive(struct perf *p)
{
	for (uint32_t i = 0; i < p->nctrls; i++)
		if (!leap_client_alive(p->ctrls[i].client))
			return false;
	return true;
}

/*
 * --irq: block until some controller signals a completion (or 100 ms pass,
 * so the liveness check still runs). The vectors are drained here, before
 * the caller looks at the CQs again: leapd posts a CQE and then writes the
 * vector, so a completion that lands after our last look at its CQ leaves
 * the vector readable and poll() returns at once. A stale byte (for a
 * completion we already reaped while polling) costs one extra pass.
 */
static void wait_irq(struct perf *p)
{
	struct pollfd pfd[MAX_CTRLS];

	for (uint32_t i = 0; i < p->nctrls; i++)
		pfd[i] = (struct pollfd){ .fd = p->ctrls[i].fd, .events = POLLIN };
	p->sleeps++;
	if (poll(pfd, p->nctrls, 100) <= 0)
		return;
	for (uint32_t i = 0; i < p->nctrls; i++)
		if (pfd[i].revents & POLLIN)
			leap_client_vector_drain(pfd[i].fd);
}

/*
 * Run queue pairs qs[0..nq) until deadline, polling them round-robin. For
 * the fill pass (all of one controller), until every unit was written once.
 */
static int run(struct perf *p, struct qp_state *qs, uint32_t nq, uint64_t deadline, bool fill_pass)
{
	const struct ctrl_state *cs0 = qs[0].cs;
	uint64_t units = cs0->span_lbas / (p->iosize / cs0->lba_size), issued = 0;
	uint64_t poll_ns = (uint64_t)p->poll_us * 1000, idle_since = 0;
	struct nvme_cqe cqe[64];
	bool stop = false;
	uint32_t inflight = 0, spins = 0;
	uint64_t last_check = now_ns();

	while (!stop || inflight) {
		uint32_t progress = 0;

		/* Every ~100 ms: is leapd still there? Outstanding I/O never completes otherwise. */
		if ((p->irq || ++spins % 4096 == 0) && now_ns() - last_check > 100000000ull) {
			last_check = now_ns();
			if (!all_alive(p)) {
				fprintf(stderr,
					"leap-perf: leapd went away or the controller failed "
					"(%u I/Os outstanding)\n",
					inflight);
				p->errors += inflight;
				return -EPIPE;
			}
		}
		for (uint32_t k = 0; k < nq; k++) {
			struct qp_state *q = &qs[k];
			int n = leap_client_poll(q->qp, cqe, 64);
			uint64_t now = n || q->nfree ? now_ns() : 0;

			for (int i = 0; i < n; i++)
				reap(p, q, &cqe[i], !fill_pass, now);
			inflight -= (uint32_t)n;
			progress += (uint32_t)n;
			if (stop)
				continue;
			while (q->nfree) {
				uint16_t cid = q->free_cids[q->nfree - 1];

				if (fill_pass) {
					if (issued == units) {
						stop = true;
						break;
					}
					if (submit(p, q, cid, true,
						   issued++ * (p->iosize / cs0->lba_size), now))
						return -EIO;
				} else if (submit(p, q, cid, pick_write(p), next_lba(p, q->cs),
						  now)) {
					return -EIO;
				}
				q->nfree--;
				inflight++;
				progress++;
			}
			leap_client_ring(q->qp);
		}
		if (!fill_pass && now_ns() >= deadline)
			stop = true;
		if (!p->irq || progress || !inflight) {
			idle_since = 0;
			continue;
		}
		/* Nothing reaped, nothing to submit: poll a little longer, then sleep. */
		if (!idle_since)
			idle_since = now_ns();
		if (now_ns() - idle_since >= poll_ns) {
			wait_irq(p);
			idle_since = 0;
		}
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: leap-perf -s SOCKET -c CTRL[,CTRL...] [-c CTRL...] [-n NSID] [-q QD]\n"
		   "       [-o IOSIZE] [-w read|write|randread|randwrite|rw|randrw] [-M READ_PCT]\n"
		   "       [-P QPAIRS] [-t SECONDS] [--span BYTES] [--seed N] [--verify] [--json]\n"
		   "       [--irq [--poll-us US]]\n"
		   "  -P is per controller; all queue pairs are driven by one thread.\n"
		   "  --irq waits on completion vectors after US microseconds of idle polling\n"
		   "  (default 0) instead of spinning.\n");
}

static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);

	switch (*end) {
	case 'k':
	case 'K':
		return v << 10;
	case 'm':
	case 'M':
		return v << 20;
	case 'g':
	case 'G':
		return v << 30;
	default:
		return *end ? 0 : v;
	}
}

static void report(const struct perf *p, double secs)
{
	double iops = (double)p->ios / secs, mibs = (double)p->bytes / secs / (1 << 20);
	double avg = p->ios ? (double)p->lat_sum / (double)p->ios / 1000.0 : 0;

	if (p->json) {
		printf("{\"iops\": %.0f, \"mibps\": %.2f, \"ios\": %" PRIu64 ", \"reads\": %" PRIu64
		       ", \"writes\": %" PRIu64 ", \"errors\": %" PRIu64
		       ", \"verify_mismatches\": %" PRIu64 ", \"seconds\": %.3f, \"latency_us\": "
		       "{\"avg\": %.2f, \"p50\": %.2f, \"p99\": %.2f, \"p99_9\": %.2f, \"max\": "
		       "%.2f}, "
		       "\"qd\": %u, \"io_size\": %u, \"qpairs\": %u, \"workload\": \"%s\", "
		       "\"controllers\": %u, \"irq\": %s, \"sleeps\": %" PRIu64
		       ", \"cpu_pct\": %.1f}\n",
		       iops, mibs, p->ios, p->reads, p->writes, p->errors, p->mismatches, secs, avg,
		       (double)percentile(p, 50) / 1000.0, (double)percentile(p, 99) / 1000.0,
		       (double)percentile(p, 99.9) / 1000.0, (double)p->lat_max / 1000.0, p->qd,
		       p->iosize, p->qpairs, p->workload, p->nctrls, p->irq ? "true" : "false",
		       p->sleeps, p->cpu_pct);
		return;
	}
	if (p->nctrls == 1)
		printf("leap-perf: %s %s, %u qpair(s) x QD %u, %u-byte I/O, %.1f s\n",
		       p->ctrls[0].name, p->workload, p->qpairs, p->qd, p->iosize, secs);
	else
		printf(
		    "leap-perf: %u controllers %s, %u qpair(s) each x QD %u, %u-byte I/O, %.1f s\n",
		    p->nctrls, p->workload, p->qpairs, p->qd, p->iosize, secs);
	printf("  IOPS %12.0f   MiB/s %10.2f   I/Os %" PRIu64 " (read %" PRIu64 ", write %" PRIu64
	       ")\n",
	       iops, mibs, p->ios, p->reads, p->writes);
	printf("  latency us: avg %.2f  p50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n", avg,
	       (double)percentile(p, 50) / 1000.0, (double)percentile(p, 99) / 1000.0,
	       (double)percentile(p, 99.9) / 1000.0, (double)p->lat_max / 1000.0);
	printf("  errors %" PRIu64 "   verify mismatches %" PRIu64 "%s\n", p->errors, p->mismatches,
	       p->verify ? "" : " (not verifying)");
}

/* Split "a,b,c" into the controller list (the string is argv's: edited in place). */
static int add_ctrls(struct perf *p, char *list)
{
	for (char *save = NULL, *name = strtok_r(list, ",", &save); name;
	     name = strtok_r(NULL, ",", &save)) {
		if (p->nctrls == MAX_CTRLS) {
			fprintf(stderr, "leap-perf: at most %u controllers\n", MAX_CTRLS);
			return -E2BIG;
		}
		p->ctrls[p->nctrls++].name = name;
	}
	return 0;
}

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ull +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
}

static void detach_all(struct perf *p)
{
	for (uint32_t i = 0; i < p->nctrls; i++) {
		leap_client_detach(p->ctrls[i].client);
		p->ctrls[i].client = NULL;
	}
}

/* Attach to one controller and read its namespace: 0, or 1 after printing why. */
static int attach_one(struct perf *p, struct ctrl_state *cs)
{
	struct leap_client_opts o = { 0 };
	char err[256] = "";
	int rc;

	o.socket = p->sock;
	o.ctrl = cs->name;
	o.errbuf = err;
	o.errbuf_sz = sizeof(err);
	o.mem_size = (size_t)p->qpairs * (p->qd + 1) * (p->iosize + 4096 + 4096 + 128) + (8u << 20);
	rc = leap_client_attach(&o, &cs->client);
	if (rc) {
		if (p->nctrls > 1)
			fprintf(stderr, "leap-perf: %s: %s\n", cs->name,
				err[0] ? err : strerror(-rc));
		else
			fprintf(stderr, "leap-perf: %s\n", err[0] ? err : strerror(-rc));
		return 1;
	}
	rc = leap_client_ns_info(cs->client, p->nsid, &cs->nlb, &cs->lba_size);
	if (rc || p->iosize % cs->lba_size) {
		fprintf(stderr, "leap-perf: namespace %u: %s\n", p->nsid,
			rc ? "not found" : "I/O size is not a multiple of the LBA size");
		return 1;
	}
	cs->span_lbas = p->span_bytes ? LEAP_MIN(p->span_bytes / cs->lba_size, cs->nlb) : cs->nlb;
	if (p->verify && !p->span_bytes)
		cs->span_lbas = LEAP_MIN(cs->nlb, (64ull << 20) / cs->lba_size);
	if (cs->span_lbas < p->iosize / cs->lba_size) {
		fprintf(stderr, "leap-perf: namespace smaller than one I/O\n");
		return 1;
	}
	if (p->qpairs > leap_client_max_qpairs(cs->client)) {
		fprintf(stderr, "leap-perf: %u queue pairs requested, the controller allows %u\n",
			p->qpairs, leap_client_max_qpairs(cs->client));
		return 1;
	}
	return 0;
}

static void free_qs(struct qp_state *qs, uint32_t nq)
{
	for (uint32_t k = 0; qs && k < nq; k++) {
		free(qs[k].slots);
		free(qs[k].free_cids);
	}
	free(qs);
}

/* The controller's queue pairs and their buffers: 0, or 1 after printing why. */
static int setup_qpairs(struct perf *p, struct ctrl_state *cs, struct qp_state *qs, uint32_t qd)
{
	struct leap_client *c = cs->client;

	for (uint32_t k = 0; k < p->qpairs; k++) {
		int rc = leap_client_qpair_create(c, LEAP_MIN(qd + 1, leap_client_max_qsize(c)),
						  p->irq, &qs[k].qp);

		qs[k].cs = cs;
		qs[k].slots = calloc(qd, sizeof(struct slot));
		qs[k].free_cids = calloc(qd, sizeof(uint16_t));
		qs[k].nslots = qd;
		if (!rc && (!qs[k].slots || !qs[k].free_cids))
			rc = -ENOMEM;
		for (uint32_t s = 0; !rc && s < qd; s++) {
			qs[k].slots[s].buf = leap_client_alloc(c, p->iosize, 4096);
			if (!qs[k].slots[s].buf)
				rc = -ENOMEM;
		}
		if (rc) {
			fprintf(stderr, "leap-perf: queue pair %u: %s\n", k, strerror(-rc));
			return 1;
		}
		/* One completion vector per attach: every queue pair shares it. */
		cs->fd = leap_client_qpair_fd(qs[k].qp);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "verify", no_argument, 0, 'V' },     { "json", no_argument, 0, 'J' },
		{ "span", required_argument, 0, 'S' }, { "seed", required_argument, 0, 'E' },
		{ "irq", no_argument, 0, 'I' },	       { "poll-us", required_argument, 0, 'U' },
		{ "help", no_argument, 0, 'h' },       { 0, 0, 0, 0 }
	};
	static struct perf p = { .nsid = 1,
				 .qd = 32,
				 .iosize = 4096,
				 .qpairs = 1,
				 .seconds = 5,
				 .mix = 50,
				 .workload = "randread",
				 .seed = 0x1eaf10 };
	struct qp_state *qs;
	uint32_t nq, qd;
	uint64_t t0, t1, c0;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "s:c:n:q:o:w:M:P:t:h", lo, NULL)) != -1) {
		switch (opt) {
		case 's':
			p.sock = optarg;
			break;
		case 'c':
			if (add_ctrls(&p, optarg))
				return 2;
			break;
		case 'n':
			p.nsid = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'q':
			p.qd = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'o':
			p.iosize = (uint32_t)parse_size(optarg);
			break;
		case 'w':
			p.workload = optarg;
			break;
		case 'M':
			p.mix = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'P':
			p.qpairs = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 't':
			p.seconds = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'V':
			p.verify = true;
			break;
		case 'J':
			p.json = true;
			break;
		case 'S':
			p.span_bytes = parse_size(optarg);
			break;
		case 'E':
			p.seed = strtoull(optarg, NULL, 0);
			break;
		case 'I':
			p.irq = true;
			break;
		case 'U':
			p.poll_us = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!p.sock || !p.nctrls || !p.qd || p.qd > 1024 || !p.qpairs || !p.iosize ||
	    p.iosize > (128u << 10) || p.mix > 100) {
		usage(stderr);
		return 2;
	}
	if (strcmp(p.workload, "read") && strcmp(p.workload, "write") &&
	    strcmp(p.workload, "randread") && strcmp(p.workload, "randwrite") &&
	    strcmp(p.workload, "rw") && strcmp(p.workload, "randrw")) {
		fprintf(stderr, "leap-perf: unknown workload '%s'\n", p.workload);
		return 2;
	}
	p.random = !strncmp(p.workload, "rand", 4);
	if (!strcmp(p.workload, "write") || !strcmp(p.workload, "randwrite"))
		p.wmode = WM_WRITE;
	else if (!strcmp(p.workload, "read") || !strcmp(p.workload, "randread"))
		p.wmode = WM_READ;
	else
		p.wmode = WM_MIX;
	p.rng = p.seed | 1;

	for (uint32_t i = 0; i < p.nctrls; i++) {
		if (attach_one(&p, &p.ctrls[i])) {
			detach_all(&p);
			return 1;
		}
	}
	nq = p.nctrls * p.qpairs;
	qs = calloc(nq, sizeof(*qs));
	if (!qs) {
		detach_all(&p);
		return 1;
	}
	/* Every controller runs at the same depth: the smallest any of them allows. */
	qd = p.qd;
	for (uint32_t i = 0; i < p.nctrls; i++)
		qd = LEAP_MIN(qd, leap_client_max_qsize(p.ctrls[i].client) - 1);
	for (uint32_t i = 0; i < p.nctrls; i++) {
		/* Slots for the asked depth (cids index them), driven at qd. */
		if (setup_qpairs(&p, &p.ctrls[i], &qs[i * p.qpairs], p.qd)) {
			free_qs(qs, nq);
			detach_all(&p);
			return 1;
		}
	}
	p.qd = qd;
	/* Driven depth: cids 0..qd-1 start idle (pushed so that cid 0 is used first). */
	for (uint32_t k = 0; k < nq; k++)
		for (uint32_t cid = qd; cid-- > 0;)
			qs[k].free_cids[qs[k].nfree++] = (uint16_t)cid;

	for (uint32_t i = 0; p.verify && i < p.nctrls; i++) {
		if (run(&p, &qs[i * p.qpairs], p.qpairs, 0, true)) {
			fprintf(stderr, "leap-perf: fill pass failed\n");
			free_qs(qs, nq);
			detach_all(&p);
			return 1;
		}
	}
	c0 = cpu_ns();
	t0 = now_ns();
	rc = run(&p, qs, nq, t0 + (uint64_t)p.seconds * 1000000000ull, false);
	t1 = now_ns();
	p.cpu_pct = 100.0 * (double)(cpu_ns() - c0) / (double)(t1 - t0);
	report(&p, (double)(t1 - t0) / 1e9);
	if (rc == -EPIPE) {
		free_qs(qs, nq);
		detach_all(&p);
		return 1;
	}
	for (uint32_t k = 0; k < nq; k++)
		leap_client_qpair_destroy(qs[k].qp);
	free_qs(qs, nq);
	detach_all(&p);
	if (p.errors)
		fprintf(stderr,
			"leap-perf: %" PRIu64 " I/O errors (first status sct %u sc 0x%02x)\n",
			p.errors, (p.first_err_status >> 8) & 7, p.first_err_status & 0xff);
	if (p.mismatches)
		fprintf(stderr, "leap-perf: %" PRIu64 " verify mismatches\n", p.mismatches);
	return rc || p.errors || p.mismatches ? 1 : 0;
}
