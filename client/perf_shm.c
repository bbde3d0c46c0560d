// SPDX-License-Identifier: BSD-3-Clause
/*
 * leap-perf's shared-memory transport: attach to a leapd controller through
 * the tenant library (include/leapio/client.h), one queue pair per -P, I/O
 * buffers in the shared region, and the polling loop that reaps CQEs from
 * every queue pair round-robin and refills the slots they free, one
 * doorbell per queue pair per pass. When perf_idle() says so (--irq, or
 * the default adaptive mode on a shared CPU) it blocks on the completion
 * vectors, which stay masked while it polls.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leapio/common.h"
#include "perf_internal.h"

#define CHECK_NS 100000000ull /* liveness checks */
#define PLACE_NS 10000000ull  /* placement checks: a load and a compare */

static int shm_attach(struct perf *p, struct perf_ctrl *cs)
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
	if (rc) {
		fprintf(stderr, "leap-perf: namespace %u: not found\n", p->nsid);
		return 1;
	}
	cs->max_qpairs = leap_client_max_qpairs(cs->client);
	cs->max_qd = leap_client_max_qsize(cs->client) - 1; /* a full SQ keeps one entry empty */
	cs->fd = -1;
	return 0;
}

static int shm_setup_qpairs(struct perf *p, struct perf_ctrl *cs, struct perf_qp *qs,
			    uint32_t nslots)
{
	struct leap_client *c = cs->client;

	for (uint32_t k = 0; k < p->qpairs; k++) {
		struct leap_client_qpair *qp = NULL;
		int rc = leap_client_qpair_create(c, LEAP_MIN(nslots + 1, leap_client_max_qsize(c)),
						  perf_may_sleep(p), &qp);

		qs[k].qp = qp;
		for (uint32_t s = 0; !rc && s < nslots; s++) {
			qs[k].slots[s].buf = leap_client_alloc(c, p->iosize, 4096);
			if (!qs[k].slots[s].buf)
				rc = -ENOMEM;
		}
		if (rc) {
			fprintf(stderr, "leap-perf: queue pair %u: %s\n", k, strerror(-rc));
			return 1;
		}
		/* One completion vector per attach: every queue pair shares it. */
		cs->fd = leap_client_qpair_fd(qp);
		if (perf_may_sleep(p)) /* unmasked only to sleep (wait_irq()) */
			leap_client_irq_mask(qp);
	}
	return 0;
}

static bool all_alive(struct perf *p)
{
	for (uint32_t i = 0; i < p->nctrls; i++)
		if (!leap_client_alive(p->ctrls[i].client))
			return false;
	return true;
}

/*
 * Block until some controller signals a completion (or 100 ms pass, so the
 * liveness check still runs). Unmask every vector first, then look at every
 * CQ once more (shm_abi.h, point 6): a completion posted before the unmask
 * was not signalled, and is reaped now instead of slept on. The vectors are
 * drained before the caller looks at the CQs again: leapd posts a CQE and
 * then writes the vector, so one that lands after our last look leaves the
 * vector readable and poll() returns at once.
 */
static void wait_irq(struct perf *p, struct perf_qp *qs, uint32_t nq)
{
	struct pollfd pfd[PERF_MAX_CTRLS];
	bool pending = false;

	for (uint32_t k = 0; k < nq; k++)
		pending |= leap_client_irq_unmask(qs[k].qp);
	if (!pending) {
		for (uint32_t i = 0; i < p->nctrls; i++)
			pfd[i] = (struct pollfd){ .fd = p->ctrls[i].fd, .events = POLLIN };
		p->sleeps++;
		if (poll(pfd, p->nctrls, 100) > 0)
			for (uint32_t i = 0; i < p->nctrls; i++)
				if (pfd[i].revents & POLLIN)
					leap_client_vector_drain(pfd[i].fd);
	}
	for (uint32_t k = 0; k < nq; k++)
		leap_client_irq_mask(qs[k].qp);
}

/*
 * Adaptive mode: do not share a CPU with the reactor we drive. On one CPU
 * the two take turns, a sleep and a wake-up per batch (0.27x of the IOPS
 * on two CPUs with a CPU hog on the other: bench/contention.sh), and the
 * scheduler's wake-affine placement keeps putting a pair that wakes each
 * other there. Two checks in a row with the reactor on our CPU (shm_abi.h,
 * point 7): leave it, to any other CPU we were allowed at start. A pinned
 * run (one CPU allowed) stays where it is.
 */
static void avoid_reactor_cpu(struct perf *p, struct perf_qp *qs)
{
	cpu_set_t set;
	int cpu;

	if (p->wait != PERF_WAIT_ADAPTIVE || CPU_COUNT(&p->cpus) < 2 ||
	    !leap_client_reactor_here(qs[0].qp)) {
		p->shared_checks = 0;
		return;
	}
	cpu = sched_getcpu();
	if (++p->shared_checks < 2 || cpu < 0 || !CPU_ISSET(cpu, &p->cpus))
		return;
	p->shared_checks = 0;
	set = p->cpus;
	CPU_CLR(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) == 0)
		p->moves++;
}

/* Queue one I/O in slot cid; `now` is the batch's start (one clock read per batch). */
static int submit(struct perf *p, struct perf_qp *q, uint16_t cid, uint64_t now)
{
	struct perf_slot *s = &q->slots[cid];
	struct nvme_sqe sqe = { 0 };

	perf_prepare(p, q, s, now);
	sqe.opc = s->write ? NVME_OPC_WRITE : NVME_OPC_READ;
	sqe.nsid = p->nsid;
	sqe.cid = cid;
	sqe.cdw10 = (uint32_t)s->lba;
	sqe.cdw11 = (uint32_t)(s->lba >> 32);
	sqe.cdw12 = p->iosize / q->cs->lba_size - 1;
	if (leap_client_prp(q->qp, &sqe, cid, s->buf, p->iosize))
		return -E2BIG;
	return leap_client_submit(q->qp, &sqe);
}

static void reap(struct perf *p, struct perf_qp *q, const struct nvme_cqe *e, uint64_t now)
{
	if (e->cid >= q->nslots || !q->slots[e->cid].busy) { /* a CID we did not issue: leapd bug */
		p->errors++;
		if (!p->first_err_status)
			p->first_err_status = 0x6; /* internal error */
		return;
	}
	q->free_cids[q->nfree++] = e->cid;
	perf_complete(p, &q->slots[e->cid], e->status >> 1, now);
}

static int shm_run(struct perf *p, struct perf_qp *qs, uint32_t nq, uint64_t deadline)
{
	struct nvme_cqe cqe[64];
	uint64_t last_check = perf_now_ns(), last_place = last_check;

	while (!p->stop || p->inflight) {
		uint32_t progress = 0;
		uint64_t t = 0;

		for (uint32_t k = 0; k < nq; k++) {
			struct perf_qp *q = &qs[k];
			int n = leap_client_poll(q->qp, cqe, 64);
			uint64_t now = n || q->nfree ? (t = perf_now_ns()) : 0;

			for (int i = 0; i < n; i++)
				reap(p, q, &cqe[i], now);
			progress += (uint32_t)n;
			while (q->nfree && perf_want_more(p)) {
				if (submit(p, q, q->free_cids[q->nfree - 1], now))
					return -EIO;
				q->nfree--;
				progress++;
			}
			leap_client_ring(q->qp);
		}
		/* One clock read a pass (~20 ns here, a third of this loop's time when read twice). */
		if (!t)
			t = perf_now_ns();
		if (!p->fill_pass && t >= deadline)
			p->stop = true;
		if (t - last_place > PLACE_NS) {
			last_place = t;
			avoid_reactor_cpu(p, qs);
		}
		/* Every ~100 ms: is leapd still there? Outstanding I/O never completes otherwise. */
		if (t - last_check > CHECK_NS) {
			last_check = t;
			if (!all_alive(p)) {
				fprintf(stderr,
					"leap-perf: leapd went away or the controller failed "
					"(%u I/Os outstanding)\n",
					p->inflight);
				p->errors += p->inflight;
				return -EPIPE;
			}
		}
		if (perf_idle(p, progress, !progress && leap_client_reactor_here(qs[0].qp), t))
			wait_irq(p, qs, nq);
	}
	return 0;
}

static void shm_teardown(struct perf *p, struct perf_qp *qs, uint32_t nq)
{
	for (uint32_t k = 0; qs && k < nq; k++)
		if (qs[k].qp && leap_client_alive(qs[k].cs->client))
			leap_client_qpair_destroy(qs[k].qp);
	for (uint32_t i = 0; i < p->nctrls; i++) {
		leap_client_detach(p->ctrls[i].client);
		p->ctrls[i].client = NULL;
	}
}

const struct perf_transport perf_shm = {
	.name = "shm",
	.attach = shm_attach,
	.setup_qpairs = shm_setup_qpairs,
	.run = shm_run,
	.teardown = shm_teardown,
};
