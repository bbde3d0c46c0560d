// SPDX-License-Identifier: BSD-3-Clause
/*
 * leap-perf's NVMe/TCP transport: each -r is one controller association made
 * with the host library (include/leapio/nvmf_host.h), -P I/O queues of
 * depth -q, each queue one TCP connection. One thread polls every queue in
 * turn; a poll is one recv() and one sendmsg() for the whole queue, however
 * many PDUs they carry. Completions arrive as callbacks inside the poll, and
 * each callback starts the slot's next I/O right there, so the new command
 * leaves in the same poll's sendmsg(): no extra pass, no extra syscall.
 *
 * When perf_idle() says so (--irq, or the default adaptive mode on a
 * shared CPU), after --poll-us of polling with nothing completing, the
 * thread sleeps in epoll_wait() on the queue sockets (EPOLLOUT too while a
 * queue has bytes the kernel would not take). Keep alives go out from the same
 * loop every ~100 ms check; a queue or controller that fails ends the run
 * with the library's reason.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "perf_internal.h"

#define KATO_MS	       10000
#define CHECK_NS       (100ull * 1000 * 1000)	    /* keep alive, liveness */
#define DRAIN_NS       (10ull * 1000 * 1000 * 1000) /* in-flight I/O after the deadline */
#define EPOLL_WAIT_MS  100
#define SHUTDOWN_MS    2000
#define MAX_EPOLL_EVTS 64

/* "127.0.0.1:4420 nqn...": how messages name a controller. */
static void ctrl_label(const struct perf_ctrl *cs, char *buf, size_t len)
{
	snprintf(buf, len, cs->trid.adrfam == NVMF_ADRFAM_IPV6 ? "[%s]:%s %s" : "%s:%s %s",
		 cs->trid.traddr, cs->trid.trsvcid, cs->trid.subnqn);
}

/*
 * The host library logs each failure where it happens and also hands the
 * reason back, which leap-perf prints with the controller's name: keep its
 * warnings (a clamped depth, fewer queues granted), drop its error lines.
 */
static void log_cb(enum leap_log_level level, const char *subsys, const char *fmt, va_list ap,
		   void *ctx)
{
	if (level != LEAP_LOG_WARN)
		return;
	fprintf(stderr, "leap-perf: %s: ", subsys);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static int tcp_attach(struct perf *p, struct perf_ctrl *cs)
{
	struct leap_nvmf_ctrl_opts o;
	char err[320] = "", label[400];
	uint32_t max_xfer;
	int rc;

	leap_log_set_callback(log_cb, NULL);
	ctrl_label(cs, label, sizeof(label));
	leap_nvmf_ctrl_opts_init(&o);
	o.nr_io_queues = (uint16_t)p->qpairs;
	o.io_qdepth = (uint16_t)p->qd;
	o.kato_ms = KATO_MS;
	o.timeout_ms = p->connect_timeout_ms;
	o.max_iov = 1;
	rc = leap_nvmf_host_connect_opts(&cs->trid, &o, &cs->nvmf, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "leap-perf: %s: %s%s\n", label, err[0] ? err : strerror(-rc),
			rc == -EBUSY ? " (another host holds this controller)" : "");
		return 1;
	}
	rc = leap_nvmf_host_ns_info(cs->nvmf, p->nsid, &cs->nlb, &cs->lba_size,
				    p->connect_timeout_ms);
	if (rc) {
		fprintf(stderr, "leap-perf: %s: namespace %u: %s\n", label, p->nsid,
			rc == -EIO || rc == -ENODEV ? "not found" : strerror(-rc));
		return 1;
	}
	max_xfer = leap_nvmf_ctrl_max_xfer(cs->nvmf);
	if (max_xfer && p->iosize > max_xfer) {
		fprintf(stderr,
			"leap-perf: %s: %u-byte I/O is over the controller's limit (MDTS) "
			"of %u bytes\n",
			label, p->iosize, max_xfer);
		return 1;
	}
	cs->max_qpairs = leap_nvmf_ctrl_nr_io_queues(cs->nvmf);
	cs->max_qd = leap_nvmf_ctrl_io_qdepth(cs->nvmf);
	return 0;
}

static int tcp_setup_qpairs(struct perf *p, struct perf_ctrl *cs, struct perf_qp *qs,
			    uint32_t nslots)
{
	if (perf_may_sleep(p) && p->epfd < 0) {
		p->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (p->epfd < 0) {
			perror("leap-perf: epoll_create1");
			return 1;
		}
	}
	for (uint32_t k = 0; k < p->qpairs; k++) {
		struct perf_qp *q = &qs[k];

		q->qp = leap_nvmf_ctrl_io_qpair(cs->nvmf, k);
		for (uint32_t s = 0; s < nslots; s++) {
			struct perf_slot *sl = &q->slots[s];

			sl->buf = aligned_alloc(4096, LEAP_ALIGN_UP(p->iosize, 4096u));
			if (!sl->buf) {
				fprintf(stderr, "leap-perf: out of memory\n");
				return 1;
			}
			sl->iov = (struct iovec){ sl->buf, p->iosize };
		}
		if (perf_may_sleep(p)) {
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = q };

			if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, leap_nvmf_qpair_fd(q->qp), &ev)) {
				perror("leap-perf: epoll_ctl");
				return 1;
			}
		}
	}
	return 0;
}

static void io_done(void *arg, const struct nvme_cqe *cqe);

/* Start the slot's next I/O; it leaves with the queue's next sendmsg(). */
static int submit(struct perf_qp *q, struct perf_slot *s, uint64_t now)
{
	struct perf *p = q->p;
	uint32_t nlb = p->iosize / q->cs->lba_size;
	int rc;

	perf_prepare(p, q, s, now);
	if (s->write)
		rc = leap_nvmf_io_write(q->qp, p->nsid, s->lba, nlb, &s->iov, 1, 0, io_done, s);
	else
		rc = leap_nvmf_io_read(q->qp, p->nsid, s->lba, nlb, &s->iov, 1, 0, io_done, s);
	if (rc)
		perf_cancel(p, s);
	return rc;
}

/*
 * Runs inside leap_nvmf_qpair_poll(). The first completion of a poll reads
 * the clock for all of them (the receive that brought them is over by now).
 */
static void io_done(void *arg, const struct nvme_cqe *cqe)
{
	struct perf_slot *s = arg;
	struct perf_qp *q = s->q;
	struct perf *p = q->p;

	if (!q->now)
		q->now = perf_now_ns();
	perf_complete(p, s, nvmf_cqe_status(cqe) & 0x7ff, q->now);
	/* A failed queue refuses the submit; its poll reports the failure. */
	if (perf_want_more(p) && !submit(q, s, q->now))
		return;
	q->free_cids[q->nfree++] = (uint16_t)(s - q->slots);
}

/* Idle slots (the run's start, or after a refused submit) get an I/O. */
static uint32_t start_idle(struct perf *p, struct perf_qp *q)
{
	uint64_t now = perf_now_ns();
	uint32_t n = 0;

	while (q->nfree && perf_want_more(p)) {
		if (submit(q, &q->slots[q->free_cids[q->nfree - 1]], now))
			break;
		q->nfree--;
		n++;
	}
	return n;
}

/* Keep alives and the admin queue: 0, or -EPIPE after printing why the controller failed. */
static int check_ctrls(struct perf *p)
{
	for (uint32_t i = 0; i < p->nctrls; i++) {
		struct perf_ctrl *cs = &p->ctrls[i];

		if (leap_nvmf_ctrl_poll(cs->nvmf) < 0) {
			char label[400];

			ctrl_label(cs, label, sizeof(label));
			fprintf(stderr,
				"leap-perf: %s: controller failed: %s (%u I/Os outstanding)\n",
				label, leap_nvmf_ctrl_reason(cs->nvmf), p->inflight);
			return -EPIPE;
		}
	}
	return 0;
}

/*
 * Sleep until a queue socket is readable (or writable, for a queue
 * whose sends the kernel refused), at most EPOLL_WAIT_MS so the checks still
 * run. EPOLLOUT is armed only while wanted: a writable socket would wake us
 * at once.
 */
static void wait_irq(struct perf *p, struct perf_qp *qs, uint32_t nq)
{
	struct epoll_event evs[MAX_EPOLL_EVTS];

	for (uint32_t k = 0; k < nq; k++) {
		struct perf_qp *q = &qs[k];
		bool want = leap_nvmf_qpair_wants_pollout(q->qp);
		struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0),
					  .data.ptr = q };

		if (want == q->pollout)
			continue;
		if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, leap_nvmf_qpair_fd(q->qp), &ev) == 0)
			q->pollout = want;
	}
	p->sleeps++;
	(void)epoll_wait(p->epfd, evs, MAX_EPOLL_EVTS, EPOLL_WAIT_MS);
}

static void add_syscalls(struct perf *p, struct perf_qp *qs, uint32_t nq, int sign)
{
	for (uint32_t k = 0; k < nq; k++) {
		struct leap_nvmf_qpair_stats st;

		leap_nvmf_qpair_get_stats(qs[k].qp, &st);
		p->recv_calls += (uint64_t)sign * st.recv_calls;
		p->send_calls += (uint64_t)sign * st.send_calls;
	}
}

/* Past the drain deadline: fail the queues so every request ends (as an error). */
static void abandon(struct perf *p, struct perf_qp *qs, uint32_t nq)
{
	fprintf(stderr, "leap-perf: %u I/Os still outstanding %llu s after the run ended\n",
		p->inflight, (unsigned long long)(DRAIN_NS / 1000000000ull));
	for (uint32_t k = 0; k < nq; k++)
		leap_nvmf_qpair_fail(qs[k].qp, -ETIMEDOUT, "I/O timed out");
}

static int tcp_run(struct perf *p, struct perf_qp *qs, uint32_t nq, uint64_t deadline)
{
	uint64_t stop_ns = 0;
	uint64_t last_check = perf_now_ns(), now;
	int rc = 0;

	if (!p->fill_pass)
		add_syscalls(p, qs, nq, -1);
	while (!p->stop || p->inflight) {
		uint32_t progress = 0;

		for (uint32_t k = 0; k < nq; k++) {
			struct perf_qp *q = &qs[k];
			int n;

			if (q->nfree)
				progress += start_idle(p, q);
			q->now = 0;
			n = leap_nvmf_qpair_poll(q->qp);
			if (n < 0) {
				char label[400];

				ctrl_label(q->cs, label, sizeof(label));
				fprintf(stderr, "leap-perf: %s: I/O queue %u failed: %s\n", label,
					leap_nvmf_qpair_qid(q->qp), leap_nvmf_qpair_reason(q->qp));
				rc = -EPIPE;
				goto out;
			}
			progress += (uint32_t)n;
		}
		now = perf_now_ns();
		if (!p->fill_pass && now >= deadline)
			p->stop = true;
		if (p->stop && !stop_ns)
			stop_ns = now;
		if (now - last_check >= CHECK_NS) {
			last_check = now;
			rc = check_ctrls(p);
			if (rc)
				goto out;
			if (stop_ns && p->inflight && now - stop_ns >= DRAIN_NS) {
				abandon(p, qs, nq);
				rc = -EPIPE;
				goto out;
			}
		}
		if (perf_idle(p, progress, false, now))
			wait_irq(p, qs, nq);
	}
out:
	if (!p->fill_pass)
		add_syscalls(p, qs, nq, 1);
	return rc;
}

static void tcp_teardown(struct perf *p, struct perf_qp *qs, uint32_t nq)
{
	/* Orderly: CC.SHN and SHST before the sockets close, as a kernel host does. */
	for (uint32_t i = 0; i < p->nctrls; i++) {
		leap_nvmf_host_disconnect(p->ctrls[i].nvmf, SHUTDOWN_MS);
		p->ctrls[i].nvmf = NULL;
	}
	for (uint32_t k = 0; qs && k < nq; k++)
		for (uint32_t s = 0; qs[k].slots && s < qs[k].nslots; s++)
			free(qs[k].slots[s].buf);
	if (p->epfd >= 0)
		close(p->epfd);
	p->epfd = -1;
}

const struct perf_transport perf_tcp = {
	.name = "tcp",
	.attach = tcp_attach,
	.setup_qpairs = tcp_setup_qpairs,
	.run = tcp_run,
	.teardown = tcp_teardown,
};
