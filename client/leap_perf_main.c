// SPDX-License-Identifier: BSD-3-Clause
/*
 * leap-perf: a load generator for virtual NVMe controllers, in the spirit of
 * SPDK's perf. One thread drives P queue pairs on each of one or more
 * controllers, each kept at queue depth Q, for T seconds, polling every
 * queue pair round-robin, and reports IOPS, bandwidth and latency
 * percentiles (log-linear histogram, 1/16 octave resolution) over all of
 * them. One thread for many controllers is what a tenant with few cores
 * does; one process per controller on a 2-core box would measure
 * oversubscription, not the target.
 *
 * Two transports, one workload: leapd's controllers over shared memory
 * (-s SOCKET -c CTRL[,CTRL...], perf_shm.c) or any NVMe/TCP target
 * (-r 'trtype:tcp traddr:... trsvcid:... subnqn:...', repeatable;
 * perf_tcp.c). The same options, the same report and the same JSON fields,
 * so the two compare directly.
 *
 * Waiting for completions, three modes. --poll spins, always: right when
 * this thread has a CPU of its own. --irq stops spinning after --poll-us of
 * polling with nothing to reap and blocks instead (shm: on the completion
 * vectors; TCP: in epoll_wait() on the queue sockets), what fio's io_uring
 * engine does in io_uring_enter. The default, adaptive, spins while the
 * thread has its CPU to itself and behaves like --irq while it shares one
 * (see perf_idle()): a tenant spinning on a shared CPU takes the time the
 * target needs to complete what it waits for. Over shared memory the
 * completion vectors stay masked while the thread polls, so polling costs
 * leapd no signal (shm_abi.h, point 6).
 *
 * --verify writes a pattern that encodes (LBA, seed) over the working set
 * first, then runs the workload with writes re-writing the same pattern and
 * reads checking every byte; since the pattern is a function of the LBA
 * alone, any interleaving of reads and writes must read back exactly it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

#include "leapio/common.h"
#include "perf_internal.h"

uint64_t perf_now_ns(void)
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

	if (ns < PERF_SUB)
		return (unsigned int)ns;
	msb = 63u - (unsigned int)__builtin_clzll(ns);
	sub = (unsigned int)((ns >> (msb - 4)) & (PERF_SUB - 1));
	return msb * PERF_SUB + sub - 3 * PERF_SUB; /* msb >= 4 here */
}

static uint64_t bucket_value(unsigned int b)
{
	unsigned int msb, sub;

	if (b < PERF_SUB)
		return b;
	msb = b / PERF_SUB + 3;
	sub = b % PERF_SUB;
	return ((uint64_t)(PERF_SUB + sub) << (msb - 4)) + ((1ull << (msb - 4)) >> 1);
}

static uint64_t percentile(const struct perf *p, double pct)
{
	uint64_t total = 0, seen = 0;

	for (unsigned int b = 0; b < PERF_NBUCKET; b++)
		total += p->hist[b];
	for (unsigned int b = 0; b < PERF_NBUCKET; b++) {
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

static uint64_t next_lba(struct perf *p, const struct perf_ctrl *cs)
{
	uint64_t units = cs->span_lbas / (p->iosize / cs->lba_size), u;

	if (p->random) {
		u = rnd(p) % units;
	} else {
		u = p->seq_next++ % units;
	}
	return u * (p->iosize / cs->lba_size);
}

static bool pick_write(struct perf *p)
{
	if (p->wmode != PERF_WM_MIX)
		return p->wmode == PERF_WM_WRITE;
	return (rnd(p) % 100) >= p->mix;
}

bool perf_want_more(struct perf *p)
{
	if (p->stop)
		return false;
	if (p->fill_pass && p->fill_issued == p->fill_units) {
		p->stop = true;
		return false;
	}
	return true;
}

void perf_prepare(struct perf *p, struct perf_qp *q, struct perf_slot *s, uint64_t now)
{
	const struct perf_ctrl *cs = q->cs;

	if (p->fill_pass) {
		s->write = true;
		s->lba = p->fill_issued++ * (p->iosize / cs->lba_size);
	} else {
		s->write = pick_write(p);
		s->lba = next_lba(p, cs);
	}
	if (s->write && p->verify)
		fill(p, cs->lba_size, s->buf, s->lba);
	s->busy = true;
	s->start_ns = now;
	p->inflight++;
}

void perf_cancel(struct perf *p, struct perf_slot *s)
{
	s->busy = false;
	p->inflight--;
	if (p->fill_pass)
		p->fill_issued--; /* it was the last one issued: one thread, no interleaving */
}

void perf_complete(struct perf *p, struct perf_slot *s, uint16_t status, uint64_t now)
{
	const struct perf_ctrl *cs = s->q->cs;
	uint64_t lat = now - s->start_ns;

	s->busy = false;
	p->inflight--;
	if (status) {
		p->errors++;
		if (!p->first_err_status)
			p->first_err_status = status;
		return;
	}
	if (!s->write && p->verify && !check(p, cs->lba_size, s->buf, s->lba))
		p->mismatches++;
	if (p->fill_pass)
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
	p->hist[LEAP_MIN(bucket(lat), PERF_NBUCKET - 1)]++;
}

/*
 * The adaptive mode: spin while polling pays, sleep when it cannot.
 * - The target's thread runs on our CPU (peer_here, shm only: shm_abi.h,
 *   point 7): it cannot complete anything until we stop, so sleep as soon
 *   as a pass finds nothing.
 * - We share our CPU with something else: a pass that took longer than
 *   DESCHED_NS (a pass is a few microseconds: one poll of every queue and
 *   the refills) means the scheduler ran another task in the middle of it.
 *   For CONTENDED_NS after that, sleep after --poll-us (default
 *   CONTENDED_POLL_US) of idle polling: the target then waits for its CPU
 *   too, and the task we share ours with may as well run. Not sooner: on
 *   separate CPUs a sleep only gives our share away and adds a wake-up
 *   that may wait for that task's slice (bench/contention.sh, one paired
 *   run each: at 10 us writeback fell to 0.24x and membw to 0.39x of the
 *   quiet run before them, at 200 us or never 0.44-0.48x).
 * - Otherwise spin: the target has a CPU, we have ours.
 * The same rules as leapd's reactor (runtime/core/reactor.c).
 */
#define DESCHED_NS	  200000ull
#define CONTENDED_NS	  100000000ull
#define CONTENDED_POLL_US 200u

bool perf_idle(struct perf *p, bool progress, bool peer_here, uint64_t now)
{
	uint64_t last = p->last_pass_ns, window = (uint64_t)p->poll_us * 1000;

	p->last_pass_ns = now;
	if (p->wait == PERF_WAIT_POLL)
		return false;
	if (p->wait == PERF_WAIT_ADAPTIVE && last && now - last > DESCHED_NS)
		p->contended_until = now + CONTENDED_NS;
	if (p->wait == PERF_WAIT_ADAPTIVE && peer_here)
		window = 0;
	else if (p->wait == PERF_WAIT_ADAPTIVE && now >= p->contended_until)
		progress = true; /* spin */
	if (progress || !p->inflight) {
		p->idle_since = 0;
		return false;
	}
	/* Nothing reaped, nothing to start: poll a little longer, then sleep. */
	if (!p->idle_since)
		p->idle_since = now;
	if (now - p->idle_since < window)
		return false;
	p->idle_since = 0;
	p->last_pass_ns = 0; /* the sleep is not a preemption */
	return true;
}

static void usage(FILE *f)
{
	fputs("usage: leap-perf -s SOCKET -c CTRL[,CTRL...] [-c CTRL...] [options]\n"
	      "       leap-perf -r 'trtype:tcp traddr:ADDR trsvcid:PORT subnqn:NQN\n"
	      "                     [adrfam:ipv4|ipv6] [hostnqn:NQN] [hostid:UUID]\n"
	      "                     [hdgst:1] [ddgst:1]' [-r ...] [options]\n"
	      "options: [-n NSID] [-q QD] [-o IOSIZE] [-M READ_PCT] [-P QPAIRS]\n"
	      "         [-w read|write|randread|randwrite|rw|randrw] [-t SECONDS]\n"
	      "         [--span BYTES] [--seed N] [--verify] [--json]\n"
	      "         [--poll | --irq] [--poll-us US] [--connect-timeout MS]\n"
	      "  -s/-c drive leapd controllers over shared memory; -r drives an\n"
	      "  NVMe/TCP controller (one per -r). -P is per controller; all queue\n"
	      "  pairs are driven by one thread. --irq blocks (on completion\n"
	      "  vectors; for TCP, in epoll on the queue sockets) after US\n"
	      "  microseconds of idle polling (default 0) instead of spinning;\n"
	      "  --poll always spins. The default spins while the thread has a CPU\n"
	      "  to itself, blocks at once when leapd's reactor runs on its CPU and\n"
	      "  after US (default 200) idle while it shares one; it leaves the\n"
	      "  reactor's CPU if not pinned.\n",
	      f);
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
		       "\"controllers\": %u, \"irq\": %s, \"wait\": \"%s\", \"sleeps\": %" PRIu64
		       ", \"moves\": %" PRIu64 ", \"cpu_pct\": %.1f, \"transport\": \"%s\"",
		       iops, mibs, p->ios, p->reads, p->writes, p->errors, p->mismatches, secs, avg,
		       (double)percentile(p, 50) / 1000.0, (double)percentile(p, 99) / 1000.0,
		       (double)percentile(p, 99.9) / 1000.0, (double)p->lat_max / 1000.0, p->qd,
		       p->iosize, p->qpairs, p->workload, p->nctrls,
		       p->wait == PERF_WAIT_IRQ ? "true" : "false",
		       p->wait == PERF_WAIT_IRQ	   ? "irq"
		       : p->wait == PERF_WAIT_POLL ? "poll"
						   : "adaptive",
		       p->sleeps, p->moves, p->cpu_pct, p->tr->name);
		if (p->tr == &perf_tcp)
			printf(", \"tcp\": {\"recv_calls\": %" PRIu64 ", \"send_calls\": %" PRIu64
			       ", \"hdgst\": %s, \"ddgst\": %s}",
			       p->recv_calls, p->send_calls,
			       p->ctrls[0].trid.hdgst ? "true" : "false",
			       p->ctrls[0].trid.ddgst ? "true" : "false");
		printf("}\n");
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
	if (p->tr == &perf_tcp)
		printf("  tcp: %" PRIu64 " recv + %" PRIu64 " send syscalls (%.2f per I/O)%s%s\n",
		       p->recv_calls, p->send_calls,
		       p->ios ? (double)(p->recv_calls + p->send_calls) / (double)p->ios : 0.0,
		       p->ctrls[0].trid.hdgst ? ", header digests" : "",
		       p->ctrls[0].trid.ddgst ? ", data digests" : "");
}

/* Split "a,b,c" into the controller list (the string is argv's: edited in place). */
static int add_ctrls(struct perf *p, char *list)
{
	for (char *save = NULL, *name = strtok_r(list, ",", &save); name;
	     name = strtok_r(NULL, ",", &save)) {
		if (p->nctrls == PERF_MAX_CTRLS) {
			fprintf(stderr, "leap-perf: at most %u controllers\n", PERF_MAX_CTRLS);
			return -E2BIG;
		}
		p->ctrls[p->nctrls++].name = name;
	}
	return 0;
}

/* One -r: parse the transport ID now, so a typo is a usage error before anything connects. */
static int add_trid(struct perf *p, const char *str)
{
	struct perf_ctrl *cs;
	char err[256];

	if (p->nctrls == PERF_MAX_CTRLS) {
		fprintf(stderr, "leap-perf: at most %u controllers\n", PERF_MAX_CTRLS);
		return -E2BIG;
	}
	cs = &p->ctrls[p->nctrls];
	if (leap_nvmf_trid_parse(&cs->trid, str, err, sizeof(err))) {
		fprintf(stderr, "leap-perf: -r '%s': %s\n", str, err);
		return -EINVAL;
	}
	if (!strcmp(cs->trid.subnqn, NVME_DISCOVERY_NQN)) {
		fprintf(stderr,
			"leap-perf: -r '%s': subnqn is required (the discovery controller has "
			"no namespaces)\n",
			str);
		return -EINVAL;
	}
	cs->name = str;
	p->nctrls++;
	return 0;
}

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ull +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
}

/* Namespace geometry and limits, checked once per controller: 0, or 1 after printing why. */
static int check_ctrl(struct perf *p, struct perf_ctrl *cs)
{
	if (p->iosize % cs->lba_size) {
		fprintf(stderr,
			"leap-perf: namespace %u: I/O size is not a multiple of the LBA size\n",
			p->nsid);
		return 1;
	}
	cs->span_lbas = p->span_bytes ? LEAP_MIN(p->span_bytes / cs->lba_size, cs->nlb) : cs->nlb;
	if (p->verify && !p->span_bytes)
		cs->span_lbas = LEAP_MIN(cs->nlb, (64ull << 20) / cs->lba_size);
	if (cs->span_lbas < p->iosize / cs->lba_size) {
		fprintf(stderr, "leap-perf: namespace smaller than one I/O\n");
		return 1;
	}
	if (p->qpairs > cs->max_qpairs) {
		fprintf(stderr, "leap-perf: %u queue pairs requested, the controller allows %u\n",
			p->qpairs, cs->max_qpairs);
		return 1;
	}
	return 0;
}

static void free_qps(struct perf_qp *qs, uint32_t nq)
{
	for (uint32_t k = 0; qs && k < nq; k++) {
		free(qs[k].slots);
		free(qs[k].free_cids);
	}
	free(qs);
}

/* Slot arrays for every queue pair; the transport fills in buffers and queues. */
static struct perf_qp *alloc_qps(struct perf *p, uint32_t nslots)
{
	uint32_t nq = p->nctrls * p->qpairs;
	struct perf_qp *qs = calloc(nq, sizeof(*qs));

	for (uint32_t k = 0; qs && k < nq; k++) {
		struct perf_qp *q = &qs[k];

		q->p = p;
		q->cs = &p->ctrls[k / p->qpairs];
		q->nslots = nslots;
		q->slots = calloc(nslots, sizeof(*q->slots));
		q->free_cids = calloc(nslots, sizeof(*q->free_cids));
		if (!q->slots || !q->free_cids) {
			fprintf(stderr, "leap-perf: out of memory\n");
			free_qps(qs, nq);
			return NULL;
		}
		for (uint32_t s = 0; s < nslots; s++)
			q->slots[s].q = q;
	}
	return qs;
}

static int parse_workload(struct perf *p)
{
	if (strcmp(p->workload, "read") && strcmp(p->workload, "write") &&
	    strcmp(p->workload, "randread") && strcmp(p->workload, "randwrite") &&
	    strcmp(p->workload, "rw") && strcmp(p->workload, "randrw")) {
		fprintf(stderr, "leap-perf: unknown workload '%s'\n", p->workload);
		return -EINVAL;
	}
	p->random = !strncmp(p->workload, "rand", 4);
	if (!strcmp(p->workload, "write") || !strcmp(p->workload, "randwrite"))
		p->wmode = PERF_WM_WRITE;
	else if (!strcmp(p->workload, "read") || !strcmp(p->workload, "randread"))
		p->wmode = PERF_WM_READ;
	else
		p->wmode = PERF_WM_MIX;
	p->rng = p->seed | 1;
	return 0;
}

/* One run over qs: the fill pass of one controller, or the measured run of all. */
static int run(struct perf *p, struct perf_qp *qs, uint32_t nq, uint64_t deadline, bool fill_pass)
{
	p->fill_pass = fill_pass;
	p->stop = false;
	p->fill_issued = 0;
	if (fill_pass)
		p->fill_units = qs[0].cs->span_lbas / (p->iosize / qs[0].cs->lba_size);
	return p->tr->run(p, qs, nq, deadline);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = { { "verify", no_argument, 0, 'V' },
					    { "json", no_argument, 0, 'J' },
					    { "span", required_argument, 0, 'S' },
					    { "seed", required_argument, 0, 'E' },
					    { "irq", no_argument, 0, 'I' },
					    { "poll", no_argument, 0, 'L' },
					    { "poll-us", required_argument, 0, 'U' },
					    { "connect-timeout", required_argument, 0, 'T' },
					    { "help", no_argument, 0, 'h' },
					    { 0, 0, 0, 0 } };
	static struct perf p = { .nsid = 1,
				 .qd = 32,
				 .iosize = 4096,
				 .qpairs = 1,
				 .seconds = 5,
				 .mix = 50,
				 .workload = "randread",
				 .seed = 0x1eaf10,
				 .connect_timeout_ms = 10000,
				 .epfd = -1 };
	struct perf_qp *qs = NULL;
	bool shm = false, tcp = false, poll_us_set = false;
	uint32_t nq, qd;
	uint64_t t0, t1, c0;
	int opt, rc = 0;

	while ((opt = getopt_long(argc, argv, "s:c:r:n:q:o:w:M:P:t:h", lo, NULL)) != -1) {
		switch (opt) {
		case 's':
			p.sock = optarg;
			shm = true;
			break;
		case 'c':
			shm = true;
			if (add_ctrls(&p, optarg))
				return LEAP_EXIT_USAGE;
			break;
		case 'r':
			tcp = true;
			if (add_trid(&p, optarg))
				return LEAP_EXIT_USAGE;
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
			p.wait = PERF_WAIT_IRQ;
			break;
		case 'L':
			p.wait = PERF_WAIT_POLL;
			break;
		case 'U':
			p.poll_us = (uint32_t)strtoul(optarg, NULL, 0);
			poll_us_set = true;
			break;
		case 'T':
			p.connect_timeout_ms = (int)strtol(optarg, NULL, 0);
			break;
		case 'h':
			usage(stdout);
			return LEAP_EXIT_OK;
		default:
			goto usage;
		}
	}
	if (shm && tcp) {
		fprintf(stderr, "leap-perf: -s/-c (shared memory) and -r (NVMe/TCP) do not mix\n");
		goto usage;
	}
	if (optind != argc || (shm && !p.sock) || !p.nctrls || !p.qd || p.qd > 1024 || !p.qpairs ||
	    p.qpairs > 1024 || !p.iosize || p.iosize > (128u << 10) || p.mix > 100 ||
	    p.connect_timeout_ms <= 0)
		goto usage;
	if (parse_workload(&p))
		return LEAP_EXIT_USAGE;
	if (sched_getaffinity(0, sizeof(p.cpus), &p.cpus))
		CPU_ZERO(&p.cpus);
	if (p.wait == PERF_WAIT_ADAPTIVE && !poll_us_set)
		p.poll_us = CONTENDED_POLL_US;
	p.tr = tcp ? &perf_tcp : &perf_shm;

	for (uint32_t i = 0; i < p.nctrls; i++) {
		if (p.tr->attach(&p, &p.ctrls[i]) || check_ctrl(&p, &p.ctrls[i])) {
			p.tr->teardown(&p, NULL, 0);
			return LEAP_EXIT_FAILURE;
		}
	}
	nq = p.nctrls * p.qpairs;
	/* Every controller runs at the same depth: the smallest any of them allows. */
	qd = p.qd;
	for (uint32_t i = 0; i < p.nctrls; i++)
		qd = LEAP_MIN(qd, p.ctrls[i].max_qd);
	/* Slots for the asked depth (shm cids index them), driven at qd. */
	qs = alloc_qps(&p, p.qd);
	for (uint32_t i = 0; qs && i < p.nctrls; i++)
		if (p.tr->setup_qpairs(&p, &p.ctrls[i], &qs[i * p.qpairs], p.qd))
			goto err_teardown;
	if (!qs)
		goto err_teardown;
	p.qd = qd;
	/* Driven depth: slots 0..qd-1 start idle (pushed so that slot 0 is used first). */
	for (uint32_t k = 0; k < nq; k++)
		for (uint32_t cid = qd; cid-- > 0;)
			qs[k].free_cids[qs[k].nfree++] = (uint16_t)cid;

	for (uint32_t i = 0; p.verify && i < p.nctrls; i++) {
		if (run(&p, &qs[i * p.qpairs], p.qpairs, 0, true)) {
			fprintf(stderr, "leap-perf: fill pass failed\n");
			goto err_teardown;
		}
	}
	p.recv_calls = p.send_calls = 0;
	c0 = cpu_ns();
	t0 = perf_now_ns();
	rc = run(&p, qs, nq, t0 + (uint64_t)p.seconds * 1000000000ull, false);
	t1 = perf_now_ns();
	p.cpu_pct = 100.0 * (double)(cpu_ns() - c0) / (double)(t1 - t0);
	report(&p, (double)(t1 - t0) / 1e9);
	p.tr->teardown(&p, qs, nq);
	free_qps(qs, nq);
	if (p.errors)
		fprintf(stderr,
			"leap-perf: %" PRIu64 " I/O errors (first status sct %u sc 0x%02x)\n",
			p.errors, (p.first_err_status >> 8) & 7, p.first_err_status & 0xff);
	if (p.mismatches)
		fprintf(stderr, "leap-perf: %" PRIu64 " verify mismatches\n", p.mismatches);
	return rc || p.errors || p.mismatches ? LEAP_EXIT_FAILURE : LEAP_EXIT_OK;

err_teardown:
	p.tr->teardown(&p, qs, qs ? nq : 0);
	free_qps(qs, nq);
	return LEAP_EXIT_FAILURE;
usage:
	usage(stderr);
	return LEAP_EXIT_USAGE;
}
