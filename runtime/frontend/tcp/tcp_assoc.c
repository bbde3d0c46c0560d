// SPDX-License-Identifier: BSD-3-Clause
/*
 * An association: one host attached to one controller, on the
 * controller's reactor. Its admin queue and every I/O queue (each its own
 * TCP connection) are polled by one poller, which owns the controller's
 * transport binding: one recv() per queue per iteration (the PDU engine
 * parses everything it brought), leap_ctrl_poll() once, one sendmsg() per
 * queue with something to send. The sockets are the poller's wake fds, so
 * an idle association lets the reactor sleep in epoll; commands out at a
 * backend arm its channels the way the shm front-end does.
 *
 * A timed poller (every 100 ms, which also bounds the reactor's sleep)
 * enforces the keep-alive timeout and catches a peer that stopped half-way
 * through a PDU. Teardown (KATO expiry, a fatal transport error, the admin
 * connection closing, Disconnect, the listener going away) closes every
 * socket at once, so the host sees it, drops the responses of commands
 * still at the backend as they complete, and releases the controller once
 * nothing refers to it any more.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "backend/bdev.h"
#include "core/reactor.h"
#include "frontend/tcp/tcp_internal.h"

struct tcp_assoc *tcp_assoc_new(struct tcp_listener *l, struct leap_ctrl *ctrl,
				struct tcp_queue *admin)
{
	struct tcp_assoc *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->l = l;
	a->ctrl = ctrl;
	a->cntlid = ctrl->cntlid;
	a->reactor = l->reactors[leap_ctrl_reactor_index(ctrl->cntlid, l->nreactors)];
	memcpy(a->hostnqn, admin->cdata.hostnqn, sizeof(a->hostnqn));
	memcpy(a->hostid, admin->cdata.hostid, sizeof(a->hostid));
	a->kato_ms = admin->kato_ms;
	a->q[0] = admin;
	admin->assoc = a;
	a->refs = 1; /* the association's own, dropped when it is released */
	pthread_mutex_lock(&l->lock);
	a->next = l->assocs;
	l->assocs = a;
	l->nassocs++;
	pthread_mutex_unlock(&l->lock);
	return a;
}

void tcp_assoc_put(struct tcp_assoc *a)
{
	struct tcp_listener *l = a->l;
	bool last;

	pthread_mutex_lock(&l->lock);
	last = --a->refs == 0;
	if (last) {
		struct tcp_assoc **pp;

		for (pp = &l->assocs; *pp && *pp != a; pp = &(*pp)->next)
			;
		if (*pp)
			*pp = a->next;
		l->nassocs--;
		pthread_cond_broadcast(&l->cond);
	}
	pthread_mutex_unlock(&l->lock);
	if (last)
		free(a);
}

/* After a queue joins or leaves (rare): the ids the hot loops walk. */
static void rebuild_qids(struct tcp_assoc *a)
{
	a->nq = 0;
	for (uint32_t i = 0; i <= LEAP_SHM_MAX_QUEUES; i++)
		if (a->q[i] && a->q[i]->c.fd >= 0)
			a->qids[a->nq++] = (uint16_t)i;
}

static void connect_reply(struct tcp_queue *q, uint16_t status, uint32_t dw0)
{
	uint32_t len;

	q->sqhd = (uint16_t)(1 % q->depth); /* the Connect was the first entry */
	len = tcp_resp_fill(q, q->cresp, q->connect.cid, status, dw0, 0);
	tcp_conn_send(&q->c, q->cresp, len, NULL, 0, NULL, NULL);
	tcp_conn_flush(&q->c);
}

static void queue_release(struct tcp_assoc *a, struct tcp_queue *q)
{
	struct tcp_listener *l = a->l;

	tcp_queue_free(q);
	tcp_listener_conn_closed(l);
}

/* An I/O queue goes (the host closed it, Disconnect, or a controller reset). */
static void queue_close(struct tcp_assoc *a, struct tcp_queue *q, const char *why)
{
	LEAP_DEBUG("tcp", "%s: queue %u from %s closed: %s", a->ctrl->name, q->qid, q->c.peer, why);
	leap_poller_unwatch_fd(a->poller, q->c.fd);
	tcp_conn_close(&q->c);
	if (tcp_queue_drop(q)) {
		a->nzombie++; /* freed once the controller gave every slot back */
	} else {
		a->q[q->qid] = NULL;
		queue_release(a, q);
	}
	rebuild_qids(a);
}

static void reap_zombies(struct tcp_assoc *a)
{
	for (uint32_t i = 1; i <= LEAP_SHM_MAX_QUEUES && a->nzombie; i++) {
		struct tcp_queue *q = a->q[i];

		if (q && q->c.fd < 0 && q->qp.busy == 0) {
			a->q[i] = NULL;
			a->nzombie--;
			queue_release(a, q);
		}
	}
}

void tcp_assoc_teardown(struct tcp_assoc *a, const char *why)
{
	const char *peer = a->q[0] ? a->q[0]->c.peer : "?";

	if (a->dying)
		return;
	a->dying = true;
	snprintf(a->why, sizeof(a->why), "%s", why);
	LEAP_INFO("tcp", "%s: host %s (%s): association ended: %s", a->ctrl->name, a->hostnqn, peer,
		  why);
	for (uint32_t i = 0; i <= LEAP_SHM_MAX_QUEUES; i++) {
		struct tcp_queue *q = a->q[i];

		if (!q)
			continue;
		if (q->c.fd >= 0) {
			if (q->c.fatal)
				tcp_conn_flush(&q->c); /* the C2HTermReq, best effort */
			leap_poller_unwatch_fd(a->poller, q->c.fd);
			tcp_conn_close(&q->c);
		}
		tcp_queue_drop(q);
	}
	a->nq = 0;
}

/* Nothing refers to the controller any more: give it back. */
static void assoc_release(struct tcp_assoc *a)
{
	struct leap_ctrl *ctrl = a->ctrl;

	leap_ctrl_channels_close(ctrl);
	leap_ctrl_transport_unbind(ctrl);
	leap_poller_unregister(a->poller);
	leap_poller_unregister(a->timer);
	a->poller = NULL;
	a->timer = NULL;
	for (uint32_t i = 0; i <= LEAP_SHM_MAX_QUEUES; i++)
		if (a->q[i]) {
			queue_release(a, a->q[i]);
			a->q[i] = NULL;
		}
	LEAP_DEBUG("tcp", "%s: released by host %s", ctrl->name, a->hostnqn);
	leap_ctrl_detach(ctrl);
	tcp_assoc_put(a);
}

static int dying_poll(struct tcp_assoc *a)
{
	uint32_t held = 0;

	leap_ctrl_poll(a->ctrl);
	/* Held AERs never complete on their own. */
	leap_ctrl_abort_aers(a->ctrl);
	for (uint32_t i = 0; i <= LEAP_SHM_MAX_QUEUES; i++)
		if (a->q[i])
			held += a->q[i]->qp.busy;
	if (held || leap_ctrl_inflight(a->ctrl) || a->ctrl->shn_pending)
		return LEAP_POLL_BUSY;
	assoc_release(a);
	return LEAP_POLL_BUSY;
}

/* Slots the controller holds (commands at a backend, held AERs), not waiting for the host. */
static uint32_t at_ctrl(const struct tcp_assoc *a)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < a->nq; i++) {
		const struct tcp_queue *q = a->q[a->qids[i]];

		n += q->qp.busy - q->n_h2c;
	}
	return n;
}

/* Queues that ended this iteration: a fatal error ends the association, a closed I/O queue itself. */
static bool reap(struct tcp_assoc *a)
{
	for (uint32_t i = 0; i < a->nq; i++) {
		struct tcp_queue *q = a->q[a->qids[i]];
		char why[160];

		if (!q->c.fatal && !q->c.eof && !(q->c.closing && !tcp_conn_tx_pending(&q->c)))
			continue;
		if (q->c.fatal || q->qid == 0) {
			snprintf(why, sizeof(why), "queue %u: %s", q->qid,
				 q->c.why[0] ? q->c.why : "closed");
			tcp_assoc_teardown(a, why);
			return true;
		}
		queue_close(a, q, q->c.why[0] ? q->c.why : "closed");
		i--; /* qids was rebuilt without it */
	}
	return false;
}

static int assoc_poll(void *arg)
{
	struct tcp_assoc *a = arg;
	int busy = LEAP_POLL_IDLE;
	bool ended = false;

	if (leap_unlikely(a->dying))
		return dying_poll(a);
	for (uint32_t i = 0; i < a->nq; i++) {
		int rc = tcp_conn_rx(a->q[a->qids[i]]);

		if (rc == 1)
			busy = LEAP_POLL_BUSY;
		else if (rc < 0)
			ended = true;
	}
	if (leap_ctrl_poll(a->ctrl) == LEAP_POLL_BUSY)
		busy = LEAP_POLL_BUSY;
	for (uint32_t i = 0; i < a->nq; i++) {
		struct tcp_queue *q = a->q[a->qids[i]];

		if (tcp_conn_tx_pending(&q->c)) {
			uint64_t before = q->c.tx_bytes;

			tcp_conn_flush(&q->c);
			if (q->c.tx_bytes != before)
				busy = LEAP_POLL_BUSY;
		}
		if (q->c.closing || q->c.eof)
			ended = true;
	}
	if (leap_unlikely(ended) && reap(a))
		return LEAP_POLL_BUSY;
	if (leap_unlikely(a->io_reset)) {
		/* CC.EN cleared: the I/O queues go; the controller finishes the reset. */
		for (uint32_t i = a->nq; i-- > 0;)
			if (a->qids[i])
				queue_close(a, a->q[a->qids[i]],
					    "controller reset (CC.EN cleared)");
	}
	if (leap_unlikely(a->nzombie))
		reap_zombies(a);
	/* Commands out at the backend: the reactor may sleep on their completion. */
	if (busy == LEAP_POLL_IDLE && at_ctrl(a))
		return LEAP_POLL_WAIT;
	return busy;
}

/* Arm the backend channels with I/O in flight (see shm_queue.c's arm_channels). */
static bool arm_channels(struct tcp_assoc *a)
{
	struct leap_ctrl *ctrl = a->ctrl;
	uint32_t in_channels = 0;

	/* Timed deferrals are fine: sleep_prepare bounds the sleep by the earliest one. */
	if (ctrl->deferred_untimed || ctrl->bounce_wait_head || ctrl->arb_queued ||
	    ctrl->regs_state != LEAP_REGS_STEADY)
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
		fd = leap_bdev_channel_wake_fd(ch);
		if (fd < 0 || leap_poller_watch_fd(a->poller, fd))
			return false;
		a->armed[a->narmed++] = ch;
		if (!leap_bdev_channel_sleep_prepare(ch))
			return false;
		in_channels += ch->inflight;
	}
	return at_ctrl(a) == in_channels + ctrl->aer_cnt + ctrl->deferred;
}

/*
 * The sockets wake the reactor when the host sends; nothing may be left
 * to send (a full socket buffer: keep polling), and whatever the
 * controller holds must be able to wake us too.
 */
static bool assoc_sleep_prepare(void *arg)
{
	struct tcp_assoc *a = arg;

	a->narmed = 0;
	if (a->dying || a->io_reset || a->nzombie)
		return false;
	for (uint32_t i = 0; i < a->nq; i++) {
		const struct tcp_conn *c = &a->q[a->qids[i]]->c;

		if (tcp_conn_tx_pending(c) || c->closing || c->eof)
			return false;
	}
	if (!arm_channels(a))
		return false;
	if (a->ctrl->defer_head)
		leap_poller_wake_at(a->poller, leap_ctrl_next_deadline(a->ctrl));
	return true;
}

static void assoc_sleep_done(void *arg)
{
	struct tcp_assoc *a = arg;

	for (uint32_t i = 0; i < a->narmed; i++)
		leap_bdev_channel_sleep_done(a->armed[i]);
	a->narmed = 0;
}

static const struct leap_poller_ops assoc_poller_ops = {
	.poll = assoc_poll,
	.sleep_prepare = assoc_sleep_prepare,
	.sleep_done = assoc_sleep_done,
};

/* Keep-alive (any PDU counts, as with traffic-based keep alive) and stalled PDUs. */
static int assoc_timer(void *arg)
{
	struct tcp_assoc *a = arg;
	const struct tcp_listener_opts *o = &a->l->o;
	uint64_t now = leap_now_ns(), stall = (uint64_t)o->handshake_timeout_ms * 1000000;
	uint32_t to_ms = a->kato_ms ? a->kato_ms : o->idle_timeout_ms;
	char why[128];

	if (a->dying)
		return LEAP_POLL_IDLE;
	for (uint32_t i = 0; i < a->nq; i++) {
		struct tcp_queue *q = a->q[a->qids[i]];

		if (q->c.rx_seen) {
			q->c.rx_seen = false;
			q->last_rx_ns = now;
			a->last_rx_ns = now;
		} else if ((q->c.rx_tail != q->c.rx_head || q->c.rx_state != TCP_RX_HDR) &&
			   now - q->last_rx_ns > stall) {
			snprintf(why, sizeof(why), "queue %u: a partial PDU stalled for %u ms",
				 q->qid, o->handshake_timeout_ms);
			tcp_assoc_teardown(a, why);
			return LEAP_POLL_IDLE;
		}
	}
	if (to_ms && now - a->last_rx_ns > (uint64_t)to_ms * 1000000) {
		snprintf(why, sizeof(why), "keep-alive timeout: nothing received for %u ms (%s)",
			 to_ms, a->kato_ms ? "KATO" : "idle timeout, KATO 0");
		tcp_assoc_teardown(a, why);
	}
	return LEAP_POLL_IDLE;
}

static const struct leap_poller_ops timer_ops = {
	.poll = assoc_timer,
};

/* ---- messages from the listener ------------------------------------------------ */

void tcp_assoc_start(void *arg)
{
	struct tcp_assoc *a = arg;
	struct tcp_queue *q = a->q[0];
	int err;

	leap_ctrl_transport_bind(a->ctrl, &tcp_transport_ops, a);
	err = leap_poller_register(a->reactor, &assoc_poller_ops, a, -1, &a->poller);
	if (!err)
		err = leap_poller_watch_fd(a->poller, q->c.fd);
	if (!err)
		err = leap_poller_register(a->reactor, &timer_ops, a, -1, &a->timer);
	if (err) {
		LEAP_ERR("tcp", "%s: cannot start serving host %s: %s", a->ctrl->name, a->hostnqn,
			 strerror(-err));
		connect_reply(q, TCP_ST(GENERIC, INTERNAL_DEVICE_ERROR), 0);
		if (a->poller) {
			tcp_assoc_teardown(a, "no poller");
			return;
		}
		a->dying = true;
		assoc_release(a);
		return;
	}
	leap_poller_set_period(a->timer, TCP_TIMER_US);
	a->last_rx_ns = leap_now_ns();
	q->last_rx_ns = a->last_rx_ns;
	q->stage = TCP_Q_LIVE;
	rebuild_qids(a);
	connect_reply(q, 0, a->cntlid);
	LEAP_INFO("tcp", "%s: host %s connected from %s (cntlid %u, KATO %u ms%s%s)", a->ctrl->name,
		  a->hostnqn, q->c.peer, a->cntlid, a->kato_ms, q->c.hdgst ? ", header digest" : "",
		  q->c.ddgst ? ", data digest" : "");
}

void tcp_assoc_add_io(void *arg)
{
	struct tcp_queue *q = arg;
	struct tcp_assoc *a = q->assoc;
	struct leap_ctrl *ctrl = a->ctrl;
	uint32_t granted = ctrl->nr_sq ? ctrl->nr_sq : ctrl->max_io_queues, dw0 = 0;
	uint16_t st = 0;

	if (a->dying) {
		st = TCP_FABRICS_ST(CONNECT_INVALID_PARAM) | NVME_CQE_DNR;
		dw0 = TCP_CONNECT_IPO(offsetof(struct nvmf_connect_data, cntlid), 1);
	} else if (!leap_ctrl_ready(ctrl) || a->io_reset) {
		st = TCP_ST(GENERIC, COMMAND_SEQUENCE_ERROR);
	} else if (q->qid > granted || a->q[q->qid]) {
		/* Beyond the queues Set Features granted, or a qid already connected. */
		st = TCP_FABRICS_ST(CONNECT_INVALID_PARAM) | NVME_CQE_DNR;
		dw0 = TCP_CONNECT_IPO(offsetof(struct nvmf_connect_cmd, qid), 0);
	} else if (leap_poller_watch_fd(a->poller, q->c.fd)) {
		st = TCP_ST(GENERIC, INTERNAL_DEVICE_ERROR);
	}
	if (st) {
		LEAP_DEBUG("tcp", "%s: I/O queue %u Connect from %s refused (status %#x)",
			   ctrl->name, q->qid, q->c.peer, st);
		connect_reply(q, st, dw0);
		queue_release(a, q);
		tcp_assoc_put(a);
		return;
	}
	a->q[q->qid] = q;
	q->stage = TCP_Q_LIVE;
	q->last_rx_ns = leap_now_ns();
	rebuild_qids(a);
	connect_reply(q, 0, a->cntlid);
	tcp_assoc_put(a);
}

void tcp_assoc_kill(void *arg)
{
	struct tcp_assoc *a = arg;

	tcp_assoc_teardown(a, "the listener was removed");
	tcp_assoc_put(a);
}
