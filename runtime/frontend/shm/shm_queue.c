// SPDX-License-Identifier: BSD-3-Clause
/*
 * The shared-memory transport's data path, on the controller's reactor:
 * read doorbells (shadow doorbells once configured), fetch submission
 * entries, hand them to the controller model, post completions with the
 * right phase, SQ head and CID, and signal completion vectors once per
 * iteration (those the tenant has not masked). A doorbell value outside
 * its queue is a host bug that the spec answers with Controller Fatal
 * Status; it stops this controller and nothing else.
 *
 * Memory ordering with the tenant (the other side of every ring):
 *  - SQ: the tenant writes the entry, then (release) the tail doorbell; we
 *    load the doorbell with acquire before reading entries up to it.
 *  - CQ: we write the entry's other fields, then store the status word
 *    (which carries the phase bit) with release; the tenant loads the
 *    status with acquire before reading the rest.
 *  - Sleep: see sleep_prepare() and include/leapio/shm_abi.h, point 5.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "backend/bdev.h"
#include "core/reactor.h"
#include "frontend/shm/shm.h"

#define FETCH_BUDGET 64 /* commands per SQ per iteration: keeps queues fair */
#define REQ_POOL_MAX 256

#define ST(sct, sc) NVME_STATUS(NVME_SCT_##sct, NVME_SC_##sc)

static struct leap_shm_area_hdr *hdr_of(struct shm_conn *c)
{
	return c->hdr;
}

static uint32_t db_read(struct shm_conn *c, uint32_t idx)
{
	if (c->shadow && idx > 1) /* the admin queue always uses the MMIO doorbells */
		return __atomic_load_n(&c->shadow[idx], __ATOMIC_ACQUIRE);
	return __atomic_load_n(&c->db[idx], __ATOMIC_ACQUIRE);
}

static void set_fatal(struct shm_conn *c, const char *why, uint32_t qid, uint32_t value)
{
	if (c->fatal)
		return;
	c->fatal = true;
	leap_ctrl_fatal(c->ctrl);
	c->csts_seen = c->ctrl->regs.csts;
	__atomic_store_n(&hdr_of(c)->regs.csts, c->csts_seen, __ATOMIC_RELEASE);
	__atomic_store_n(&hdr_of(c)->fatal, 1, __ATOMIC_RELEASE);
	/* Rate-limited: a tenant can make this happen once per attach, as often as it likes. */
	LEAP_LOG_RATELIMITED(
	    LEAP_LOG_ERROR, "shm",
	    "%s: controller fatal: %s doorbell of queue %u = %u is outside the queue",
	    c->ctrl->name, why, qid, value);
}

static int pool_init(struct shm_sq *sq, uint32_t size)
{
	uint32_t n = LEAP_MIN(size, REQ_POOL_MAX);

	sq->reqs = calloc(n, sizeof(*sq->reqs));
	if (!sq->reqs)
		return -ENOMEM;
	sq->pool = n;
	sq->busy = 0;
	sq->free_reqs = NULL;
	for (uint32_t i = n; i-- > 0;) {
		sq->reqs[i].qp = &sq->qp;
		sq->reqs[i].slot = (uint16_t)i;
		sq->reqs[i].next_free = sq->free_reqs;
		sq->free_reqs = &sq->reqs[i];
	}
	return 0;
}

/* After any queue is created or deleted (admin path, rare): the list the hot loops walk. */
static void rebuild_sq_ids(struct shm_conn *c)
{
	c->nsq = 0;
	for (uint16_t q = 0; q <= LEAP_SHM_MAX_QUEUES; q++)
		if (c->sq[q].active)
			c->sq_ids[c->nsq++] = q;
}

static uint32_t cq_free(struct shm_conn *c, struct shm_cq *cq, uint16_t cqid)
{
	uint32_t head = db_read(c, leap_shm_cq_db(cqid));
	uint32_t used;

	if (head >= cq->size) {
		set_fatal(c, "CQ head", cqid, head);
		return 0;
	}
	cq->head = head;
	used = (cq->tail + cq->size - head) % cq->size;
	return cq->size - 1 - used;
}

static void post_cqe(struct shm_conn *c, struct leap_req *req)
{
	struct shm_sq *sq = leap_container_of(req->qp, struct shm_sq, qp);
	struct shm_cq *cq = &c->cq[sq->cqid];
	struct nvme_cqe *e = &cq->ring[cq->tail];

	e->dw0 = req->cdw0;
	e->dw1 = 0;
	e->sqhd = (uint16_t)sq->head;
	e->sqid = req->qp->sqid;
	e->cid = req->sqe.cid;
	/* Release: the entry is complete before the tenant can see the new phase. */
	__atomic_store_n(&e->status, nvme_cqe_status(req->status, cq->phase), __ATOMIC_RELEASE);
	if (++cq->tail == cq->size) {
		cq->tail = 0;
		cq->phase ^= 1;
	}
	cq->reserved--;
	if (cq->ien && !cq->signal) {
		cq->signal = true;
		c->sig_cqs[c->nsig++] = sq->cqid;
	}
}

static void shm_complete(void *t, struct leap_req *req)
{
	struct shm_conn *c = t;
	struct shm_sq *sq = leap_container_of(req->qp, struct shm_sq, qp);

	if (!c->fatal)
		post_cqe(c, req);
	else
		c->cq[sq->cqid].reserved--;
	req->in_use = false;
	req->next_free = sq->free_reqs;
	sq->free_reqs = req;
	sq->busy--;
}

/* Fetch and submit up to FETCH_BUDGET commands from one SQ. Returns how many. */
static uint32_t fetch_sq(struct shm_conn *c, uint16_t qid)
{
	struct shm_sq *sq = &c->sq[qid];
	struct shm_cq *cq = &c->cq[sq->cqid];
	uint32_t tail = db_read(c, leap_shm_sq_db(qid)), n = 0, room;

	if (tail >= sq->size) {
		set_fatal(c, "SQ tail", qid, tail);
		return 0;
	}
	/* With shadow doorbells the MMIO doorbell is only written to kick us; still a bug if out of range. */
	if (c->shadow && qid && c->db[leap_shm_sq_db(qid)] >= sq->size) {
		set_fatal(c, "SQ tail", qid, c->db[leap_shm_sq_db(qid)]);
		return 0;
	}
	if (tail == sq->head)
		return 0;
	/* Never fetch a command whose completion could not be posted. */
	room = cq_free(c, cq, sq->cqid);
	while (sq->head != tail && n < FETCH_BUDGET && cq->reserved < room && sq->free_reqs &&
	       !c->fatal) {
		struct leap_req *req = sq->free_reqs;

		sq->free_reqs = req->next_free;
		sq->busy++;
		req->in_use = true;
		memcpy(&req->sqe, &sq->ring[sq->head], sizeof(req->sqe));
		if (++sq->head == sq->size)
			sq->head = 0;
		cq->reserved++;
		n++;
		leap_ctrl_submit(c->ctrl, req, qid == 0);
	}
	return n;
}

static void reset_queues(struct shm_conn *c)
{
	for (uint32_t q = 1; q <= LEAP_SHM_MAX_QUEUES; q++) {
		if (c->sq[q].active) {
			free(c->sq[q].reqs);
			memset(&c->sq[q], 0, sizeof(c->sq[q]));
		}
		memset(&c->cq[q], 0, sizeof(c->cq[q]));
	}
	c->shadow = NULL;
	c->eventidx = NULL;
	c->nsig = 0;
	rebuild_sq_ids(c);
}

/* Transport op: CC.EN 0 -> 1 (the controller reset its features first). */
static int shm_enable(void *t)
{
	struct shm_conn *c = t;
	struct leap_shm_area_hdr *h = hdr_of(c);
	uint32_t aqa = __atomic_load_n(&h->regs.aqa, __ATOMIC_RELAXED);
	uint32_t asqs = (aqa & 0xfff) + 1, acqs = ((aqa >> 16) & 0xfff) + 1;
	struct shm_sq *sq = &c->sq[0];
	struct shm_cq *cq = &c->cq[0];

	if (asqs < 2 || asqs > LEAP_SHM_ADMIN_QSIZE || acqs < 2 || acqs > LEAP_SHM_ADMIN_QSIZE) {
		set_fatal(c, "AQA", 0, aqa);
		return -EINVAL;
	}
	free(sq->reqs);
	memset(sq, 0, sizeof(*sq));
	memset(cq, 0, sizeof(*cq));
	sq->ring = (struct nvme_sqe *)(c->area + LEAP_SHM_AREA_ASQ_OFF);
	sq->size = asqs;
	sq->active = true;
	sq->qp.ctrl = c->ctrl;
	sq->qp.sqid = 0;
	sq->qp.cqid = 0;
	cq->ring = (struct nvme_cqe *)(c->area + LEAP_SHM_AREA_ACQ_OFF);
	cq->size = acqs;
	cq->phase = 1;
	cq->active = true;
	cq->sq_refs = 1;
	if (pool_init(sq, asqs))
		return -ENOMEM;
	c->db[0] = 0;
	c->db[1] = 0;
	c->enabled = true;
	rebuild_sq_ids(c);
	return 0;
}

/* Transport op: CC.EN 1 -> 0 once the controller drained: drop every queue. */
static int shm_disable(void *t)
{
	struct shm_conn *c = t;

	for (uint32_t q = 0; q <= LEAP_SHM_MAX_QUEUES; q++)
		if (c->sq[q].busy)
			return -EBUSY;
	reset_queues(c);
	c->enabled = false;
	return 0;
}

/*
 * The tenant writes CC in its register page; the controller model owns
 * what that means (nvme/regs.c). CSTS flows back the other way, with
 * release ordering so a tenant that sees RDY also sees the queues set up.
 */
static void sync_regs(struct shm_conn *c)
{
	struct leap_shm_area_hdr *h = hdr_of(c);
	uint32_t cc = __atomic_load_n(&h->regs.cc, __ATOMIC_ACQUIRE);

	if (cc != c->cc_seen) {
		c->cc_seen = cc;
		leap_ctrl_prop_set(c->ctrl, NVME_REG_CC, 4, cc);
	}
	if (c->ctrl->regs.csts != c->csts_seen) {
		c->csts_seen = c->ctrl->regs.csts;
		__atomic_store_n(&h->regs.csts, c->csts_seen, __ATOMIC_RELEASE);
	}
}

static void signal_vectors(struct shm_conn *c)
{
	uint64_t mask;

	if (!c->nsig)
		return;
	/*
	 * Dekker with a tenant about to sleep (shm_abi.h, point 6): our CQE
	 * status stores, a full fence, then its mask; it clears its bit with a
	 * full barrier, then looks at the CQ. One fence per batch, and only
	 * for CQs that asked for interrupts.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	mask = __atomic_load_n(&hdr_of(c)->vector_mask, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < c->nsig; i++) {
		struct shm_cq *cq = &c->cq[c->sig_cqs[i]];
		static const char one = 1;

		if (!cq->signal) /* deleted or reset since it was listed */
			continue;
		cq->signal = false;
		if (mask & (1ull << cq->vector)) /* polling tenant: it looks at the CQ anyway */
			continue;
		/*
		 * Our own write end of the vector's pipe, O_NONBLOCK on a file
		 * no tenant holds: a full pipe (EAGAIN: a wake-up is pending
		 * anyway) or a closed read end (EPIPE; SIGPIPE is blocked on
		 * this thread, see leap_shm_conn_start())
		 * is the tenant's problem, never a blocked reactor.
		 */
		if (cq->vector < c->nr_vectors && write(c->vectors[cq->vector], &one, 1) < 0 &&
		    errno != EAGAIN)
			LEAP_DEBUG("shm", "%s: vector %u: %s", c->ctrl->name, cq->vector,
				   strerror(errno));
	}
	c->nsig = 0;
}

/*
 * shm_abi.h, point 7: publish our CPU when it changed. Every pass, busy or
 * not: a reactor that always finds work (its tenant submits while it
 * waits for the CPU they share) must still tell the tenant where it is.
 */
static void publish_cpu(struct shm_conn *c)
{
	uint32_t on = (uint32_t)(leap_reactor_cpu_now() + 1);

	if (on != c->reactor_on) {
		c->reactor_on = on;
		__atomic_store_n(&hdr_of(c)->reactor_on, on, __ATOMIC_RELAXED);
	}
}

/*
 * Idle: did the tenant last poll on our CPU? Then it cannot submit until we
 * stop running: sleep at once (its doorbell kicks us awake).
 */
static bool peer_here(struct shm_conn *c)
{
	if (!c->reactor_on ||
	    __atomic_load_n(&hdr_of(c)->tenant_on, __ATOMIC_RELAXED) != c->reactor_on)
		return false;
	leap_reactor_settle();
	return true;
}

static uint32_t busy_total(const struct shm_conn *c)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < c->nsq; i++)
		n += c->sq[c->sq_ids[i]].busy;
	return n;
}

static int conn_poll(void *arg)
{
	struct shm_conn *c = arg;
	int busy = LEAP_POLL_IDLE;

	if (c->detaching) {
		/*
		 * The tenant is gone: what has not reached a backend is aborted
		 * now (a rate-limited tenant's deferrals could take forever);
		 * only I/O a backend has is waited for. Every pass, since a
		 * split's next part may queue again when its first completes.
		 */
		leap_ctrl_abort_queued(c->ctrl);
		leap_ctrl_poll(c->ctrl);
		/* Held AERs never complete on their own. */
		leap_ctrl_abort_aers(c->ctrl);
		if (busy_total(c) == 0 && leap_ctrl_inflight(c->ctrl) == 0) {
			leap_ctrl_channels_close(c->ctrl);
			leap_poller_unregister(c->poller);
			c->poller = NULL;
			reset_queues(c);
			free(c->sq[0].reqs);
			c->sq[0].reqs = NULL;
			c->detached = true;
			/* On the reactor, so no stats reader here can see a dangling transport. */
			leap_ctrl_transport_unbind(c->ctrl);
			c->detach_done(c->detach_arg);
		}
		return LEAP_POLL_BUSY;
	}
	/*
	 * Fetch before looking at CC: a tenant rings its doorbells before it
	 * writes CC.SHN, so what it submitted is in flight when the shutdown
	 * drain starts.
	 */
	publish_cpu(c);
	if (c->enabled && !c->fatal) {
		for (uint32_t i = 0; i < c->nsq; i++)
			if (fetch_sq(c, c->sq_ids[i]))
				busy = LEAP_POLL_BUSY;
	}
	sync_regs(c);
	if (leap_ctrl_poll(c->ctrl) == LEAP_POLL_BUSY)
		busy = LEAP_POLL_BUSY;
	/* A reset or shutdown may have finished in that poll: show it now, not next time. */
	if (leap_unlikely(c->ctrl->regs.csts != c->csts_seen))
		sync_regs(c);
	signal_vectors(c);
	if (busy != LEAP_POLL_IDLE)
		return busy;
	/* Commands out at the backend: tell the reactor it may sleep on their completion. */
	if (busy_total(c))
		return LEAP_POLL_WAIT;
	return peer_here(c) ? LEAP_POLL_NOTIFY : LEAP_POLL_IDLE;
}

/*
 * Arm every backend channel that has I/O in flight (its wake fd in the
 * reactor's epoll set, its completion signal on). True when that I/O is
 * everything the tenant waits for, besides held AERs (which complete from
 * a message or a poll that follows a wake-up anyway): then a completion
 * will wake the reactor and sleeping loses nothing. False when some
 * command waits on something else (a backend queue that was full, a bounce
 * buffer, a parked hook, a channel that cannot signal): keep polling.
 */
static bool arm_channels(struct shm_conn *c)
{
	struct leap_ctrl *ctrl = c->ctrl;
	uint32_t in_channels = 0;

	/* Timed deferrals are fine: sleep_prepare bounds the sleep by the earliest one. */
	if (ctrl->deferred_untimed || ctrl->bounce_wait_head || ctrl->arb_queued)
		return false;
	for (uint32_t i = 0; i < LEAP_CTRL_MAX_NS + LEAP_CTRL_MAX_RCHAN; i++) {
		struct leap_chan *chan =
		    i < LEAP_CTRL_MAX_NS ? &ctrl->ns[i].chan : &ctrl->rchan[i - LEAP_CTRL_MAX_NS];
		struct leap_bdev_channel *ch = chan->ch;
		int fd;

		if (!ch)
			continue;
		if (chan->pending_head)
			return false;
		if (!ch->inflight)
			continue;
		/*
		 * Re-added every time (EEXIST when already there): a channel
		 * closed and reopened may reuse the fd number, and closing
		 * the fd dropped the old registration.
		 */
		fd = leap_bdev_channel_wake_fd(ch);
		if (fd < 0 || leap_poller_watch_fd(c->poller, fd))
			return false;
		c->armed[c->narmed++] = ch;
		if (!leap_bdev_channel_sleep_prepare(ch))
			return false;
		in_channels += ch->inflight;
	}
	return busy_total(c) == in_channels + ctrl->aer_cnt + ctrl->deferred;
}

/*
 * Before the reactor blocks: publish EventIdx = the tail we consumed for
 * every SQ (so the tenant's next doorbell write asks for a kick) and set
 * `sleeping`, then a full fence, then look at every doorbell again. The
 * tenant does the mirror image (doorbell write, full fence, read EventIdx
 * and `sleeping`), so either we see its doorbell here or it sees our flag.
 */
static bool sleep_prepare(void *arg)
{
	struct shm_conn *c = arg;

	c->narmed = 0;
	if (c->detaching || !arm_channels(c))
		return false;
	if (c->ctrl->defer_head)
		leap_poller_wake_at(c->poller, leap_ctrl_next_deadline(c->ctrl));
	if (c->eventidx)
		for (uint32_t i = 0; i < c->nsq; i++) {
			uint16_t q = c->sq_ids[i];

			if (q)
				__atomic_store_n(&c->eventidx[leap_shm_sq_db(q)], c->sq[q].head,
						 __ATOMIC_RELAXED);
		}
	__atomic_store_n(&hdr_of(c)->sleeping, 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (c->fatal)
		return true;
	if (__atomic_load_n(&hdr_of(c)->regs.cc, __ATOMIC_RELAXED) != c->cc_seen)
		return false;
	for (uint32_t i = 0; i < c->nsq; i++) {
		uint16_t q = c->sq_ids[i];

		if (db_read(c, leap_shm_sq_db(q)) != c->sq[q].head)
			return false;
	}
	return true;
}

static void sleep_done(void *arg)
{
	struct shm_conn *c = arg;
	uint64_t v;

	__atomic_store_n(&hdr_of(c)->sleeping, 0, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < c->narmed; i++)
		leap_bdev_channel_sleep_done(c->armed[i]);
	c->narmed = 0;
	/*
	 * Reset the kick counter; a kick that races this is harmless (we poll
	 * next). RWF_NOWAIT, not the fd's O_NONBLOCK: the tenant holds the same
	 * open file description and may clear that flag, and a read of an
	 * empty eventfd would then block the reactor for good.
	 */
	if (preadv2(c->kick_fd, &(struct iovec){ &v, sizeof(v) }, 1, -1, RWF_NOWAIT) < 0 &&
	    errno != EAGAIN)
		LEAP_DEBUG("shm", "%s: kick eventfd: %s", c->ctrl->name, strerror(errno));
}

static const struct leap_poller_ops conn_poller_ops = {
	.poll = conn_poll,
	.sleep_prepare = sleep_prepare,
	.sleep_done = sleep_done,
};

/* ---- transport ops: queue management from admin commands ---------------- */

static uint16_t shm_cq_create(void *t, uint16_t cqid, uint64_t addr, uint32_t qsize, uint16_t iv,
			      bool ien)
{
	struct shm_conn *c = t;
	struct shm_cq *cq = &c->cq[cqid];
	void *ring;

	if (cq->active)
		return ST(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER) | NVME_CQE_DNR;
	if (ien && iv >= c->nr_vectors)
		return ST(COMMAND_SPECIFIC, INVALID_INTERRUPT_VECTOR) | NVME_CQE_DNR;
	ring = leap_mem_map_ptr(&c->ctrl->mem, addr, (uint64_t)qsize * NVME_CQE_SIZE);
	if (!ring)
		return ST(GENERIC, DATA_TRANSFER_ERROR) | NVME_CQE_DNR;
	memset(cq, 0, sizeof(*cq));
	cq->ring = ring;
	cq->size = qsize;
	cq->phase = 1;
	cq->ien = ien;
	cq->vector = iv;
	/*
	 * Start from an empty queue whatever the doorbells held before: a
	 * re-created qid would otherwise inherit the old head and look full.
	 */
	c->db[leap_shm_cq_db(cqid)] = 0;
	if (c->shadow)
		c->shadow[leap_shm_cq_db(cqid)] = 0;
	cq->active = true;
	return 0;
}

static uint16_t shm_cq_delete(void *t, uint16_t cqid)
{
	struct shm_conn *c = t;
	struct shm_cq *cq = &c->cq[cqid];

	if (!cq->active)
		return ST(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER) | NVME_CQE_DNR;
	if (cq->sq_refs)
		return ST(COMMAND_SPECIFIC, INVALID_QUEUE_DELETION) | NVME_CQE_DNR;
	memset(cq, 0, sizeof(*cq));
	return 0;
}

static uint16_t shm_sq_create(void *t, uint16_t sqid, uint64_t addr, uint32_t qsize, uint16_t cqid,
			      uint8_t qprio)
{
	struct shm_conn *c = t;
	struct shm_sq *sq = &c->sq[sqid];
	void *ring;

	(void)qprio;
	if (sq->active)
		return ST(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER) | NVME_CQE_DNR;
	if (cqid > LEAP_SHM_MAX_QUEUES || !c->cq[cqid].active || cqid == 0)
		return ST(COMMAND_SPECIFIC, COMPLETION_QUEUE_INVALID) | NVME_CQE_DNR;
	ring = leap_mem_map_ptr(&c->ctrl->mem, addr, (uint64_t)qsize * NVME_SQE_SIZE);
	if (!ring)
		return ST(GENERIC, DATA_TRANSFER_ERROR) | NVME_CQE_DNR;
	memset(sq, 0, sizeof(*sq));
	if (pool_init(sq, qsize))
		return ST(GENERIC, INTERNAL_DEVICE_ERROR);
	sq->ring = ring;
	sq->size = qsize;
	sq->cqid = cqid;
	sq->qp.ctrl = c->ctrl;
	sq->qp.sqid = sqid;
	sq->qp.cqid = cqid;
	c->cq[cqid].sq_refs++;
	/* Start from an empty queue whatever the doorbells held before. */
	c->db[leap_shm_sq_db(sqid)] = 0;
	if (c->shadow)
		c->shadow[leap_shm_sq_db(sqid)] = 0;
	__atomic_store_n(&sq->active, true, __ATOMIC_RELEASE);
	rebuild_sq_ids(c);
	return 0;
}

static uint16_t shm_sq_delete(void *t, uint16_t sqid)
{
	struct shm_conn *c = t;
	struct shm_sq *sq = &c->sq[sqid];

	if (!sq->active)
		return ST(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER) | NVME_CQE_DNR;
	if (sq->busy) /* commands in flight: the host must wait for them (simplification) */
		return ST(GENERIC, COMMAND_SEQUENCE_ERROR);
	c->cq[sq->cqid].sq_refs--;
	free(sq->reqs);
	memset(sq, 0, sizeof(*sq));
	rebuild_sq_ids(c);
	return 0;
}

static uint16_t shm_dbbuf_config(void *t, uint64_t shadow, uint64_t eventidx)
{
	struct shm_conn *c = t;
	uint32_t *s = leap_mem_map_ptr(&c->ctrl->mem, shadow, NVME_PAGE_SIZE);
	uint32_t *e = leap_mem_map_ptr(&c->ctrl->mem, eventidx, NVME_PAGE_SIZE);

	if (!s || !e)
		return ST(GENERIC, INVALID_FIELD) | NVME_CQE_DNR;
	/* The shadow starts from the current MMIO values, as Linux expects. */
	for (uint16_t q = 1; q <= LEAP_SHM_MAX_QUEUES; q++) {
		s[leap_shm_sq_db(q)] = c->db[leap_shm_sq_db(q)];
		s[leap_shm_cq_db(q)] = c->db[leap_shm_cq_db(q)];
	}
	c->eventidx = e;
	__atomic_store_n(&c->shadow, s, __ATOMIC_RELEASE);
	return 0;
}

static uint32_t shm_qpairs(void *t, struct leap_qpair **out, uint32_t max)
{
	struct shm_conn *c = t;
	uint32_t n = 0;

	if (c->detaching)
		return 0;
	for (uint32_t q = 0; q <= LEAP_SHM_MAX_QUEUES && n < max; q++)
		if (c->sq[q].active)
			out[n++] = &c->sq[q].qp;
	return n;
}

/* Memory-sharing: PRP and SGL with host addresses, both through the tenant's regions. */
static const struct leap_transport_caps shm_caps = {
	.prp = true,
	.cntrltype = 1,
};

const struct leap_ctrl_transport_ops leap_shm_transport_ops = {
	.caps = &shm_caps,
	.enable = shm_enable,
	.disable = shm_disable,
	.cq_create = shm_cq_create,
	.cq_delete = shm_cq_delete,
	.sq_create = shm_sq_create,
	.sq_delete = shm_sq_delete,
	.dbbuf_config = shm_dbbuf_config,
	.complete = shm_complete,
	.qpairs = shm_qpairs,
};

void leap_shm_conn_init_area(struct shm_conn *c)
{
	struct leap_shm_area_hdr *h = (struct leap_shm_area_hdr *)c->area;

	memset(c->area, 0, LEAP_SHM_AREA_SIZE);
	c->hdr = h;
	c->db = (volatile uint32_t *)(c->area + LEAP_SHM_AREA_DB_OFF);
	h->magic = LEAP_SHM_MAGIC;
	h->version = LEAP_SHM_ABI_VERSION;
	h->area_size = LEAP_SHM_AREA_SIZE;
	h->regs.aqa = ((LEAP_SHM_ADMIN_QSIZE - 1) << 16) | (LEAP_SHM_ADMIN_QSIZE - 1);
}

int leap_shm_conn_start(struct shm_conn *c)
{
	struct leap_shm_area_hdr *h = hdr_of(c);
	sigset_t pipe_sig;

	/*
	 * This reactor writes the vectors: a tenant that closes a read end
	 * must cost an EPIPE, not the process, whether or not the embedding
	 * program ignores SIGPIPE (leapd does). A write's SIGPIPE is directed
	 * at the writing thread, so blocking it here is enough.
	 */
	sigemptyset(&pipe_sig);
	sigaddset(&pipe_sig, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_sig, NULL);
	/* On the reactor: from here on the controller's register values are the tenant's view. */
	leap_ctrl_transport_bind(c->ctrl, &leap_shm_transport_ops, c);
	h->regs.cap = c->ctrl->regs.cap;
	h->regs.vs = c->ctrl->regs.vs;
	c->cc_seen = 0;
	c->csts_seen = 0;
	return leap_poller_register(c->reactor, &conn_poller_ops, c, c->kick_fd, &c->poller);
}

void leap_shm_conn_detach(struct shm_conn *c)
{
	c->detaching = true;
}
