// SPDX-License-Identifier: BSD-3-Clause
/*
 * The NVMe/TCP listener thread. It accepts connections, runs each one's
 * ICReq/ICResp exchange and reads its Connect, all with non-blocking
 * sockets in one poll() loop so that no peer can hold up another, and
 * every connection has until the handshake deadline to get there. Then:
 *
 *  - a Connect to the discovery NQN makes the connection a discovery
 *    controller's admin queue, served here (tcp_discovery.c);
 *  - an admin Connect claims the controller whose NQN it names, if the
 *    host NQN is on its allow-list (leap_ctrl_attach_nqn()), and hands the
 *    connection, with its Connect, to the controller's reactor inside a
 *    new association, which answers it;
 *  - an I/O queue Connect joins the association of the controller ID it
 *    names if the host NQN and host ID match, on that same reactor.
 *
 * Every refusal is the Connect status the spec gives, logged with the
 * peer's address (rate limited: a flood of refused Connects cannot flood
 * the log). The number of connections (all stages, all controllers) is
 * capped; past the cap connections are closed as they are accepted, with
 * one log line for the episode. The thread talks to reactors only through
 * messages; associations it shares with them sit on a mutex-protected
 * list with reference counts.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "core/reactor.h"
#include "frontend/tcp/tcp_internal.h"

#define ACCEPT_BURST	      64
#define BUSY_RETRY_MS	      2000 /* a reconnecting host may find its old association still going */
#define CLOSE_GRACE_MS	      1000 /* a closing connection's last PDUs get this long to leave */
#define REFUSED_LOG_WINDOW_MS 10000
#define REFUSED_LOG_MAX	      10 /* refused-Connect lines per window */

#define IPO(type, field, in_data) TCP_CONNECT_IPO(offsetof(type, field), in_data)

static const char *listen_name(const struct tcp_listener *l, char *buf, size_t len)
{
	snprintf(buf, len, l->family == AF_INET6 ? "[%s]:%u" : "%s:%u", l->o.addr, l->o.port);
	return buf;
}

/* One line per refused Connect, at most REFUSED_LOG_MAX per window, then a count. */
static __attribute__((format(printf, 2, 3))) void log_refused(struct tcp_listener *l,
							      const char *fmt, ...)
{
	uint64_t now = leap_now_ns();
	char msg[512];
	va_list ap;

	if (now - l->denied_window_ns > (uint64_t)REFUSED_LOG_WINDOW_MS * 1000000) {
		if (l->denied_suppressed)
			LEAP_WARN("tcp", "%u more refused Connects were not logged",
				  l->denied_suppressed);
		l->denied_window_ns = now;
		l->denied_in_window = 0;
		l->denied_suppressed = 0;
	}
	if (++l->denied_in_window > REFUSED_LOG_MAX) {
		l->denied_suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	LEAP_WARN("tcp", "%s", msg);
}

void tcp_listener_conn_closed(struct tcp_listener *l)
{
	__atomic_fetch_sub(&l->nconns, 1, __ATOMIC_RELAXED);
}

/* Answer the Connect (or the command in its place) and close once it is sent. */
static int reply_close(struct tcp_queue *q, uint16_t cid, uint16_t status, uint32_t dw0)
{
	uint32_t len = tcp_resp_fill(q, q->cresp, cid, status, dw0, 0);

	tcp_conn_send(&q->c, q->cresp, len, NULL, 0, NULL, NULL);
	q->c.closing = true;
	return 0;
}

/* ---- before the Connect ------------------------------------------------------- */

static int pre_icreq(struct tcp_queue *q, const struct nvme_tcp_icreq *req)
{
	struct nvme_tcp_icresp *r = (struct nvme_tcp_icresp *)q->icresp;

	if (req->pfv != NVME_TCP_PFV_1_0)
		return tcp_conn_fatal(&q->c, NVME_TCP_FES_UNSUPPORTED_PARAM,
				      offsetof(struct nvme_tcp_icreq, pfv), req, sizeof(*req),
				      "ICReq PFV %u is not 0", req->pfv);
	if (req->hpda > NVME_TCP_PDA_MAX)
		return tcp_conn_fatal(&q->c, NVME_TCP_FES_UNSUPPORTED_PARAM,
				      offsetof(struct nvme_tcp_icreq, hpda), req, sizeof(*req),
				      "ICReq HPDA %u is above 31", req->hpda);
	/* Whatever digests the host asks for, it gets (echoed in ICResp). */
	q->c.hdgst = req->dgst & NVME_TCP_DGST_HDGST;
	q->c.ddgst = req->dgst & NVME_TCP_DGST_DDGST;
	q->c.hpda = req->hpda;
	memset(r, 0, sizeof(*r));
	r->hdr.pdu_type = NVME_TCP_PDU_ICRESP;
	r->hdr.hlen = sizeof(*r);
	r->hdr.plen = sizeof(*r);
	r->pfv = NVME_TCP_PFV_1_0;
	r->cpda = 0;
	r->dgst = (q->c.hdgst ? NVME_TCP_DGST_HDGST : 0) | (q->c.ddgst ? NVME_TCP_DGST_DDGST : 0);
	r->maxh2cdata = TCP_MAXH2CDATA;
	tcp_conn_send(&q->c, r, sizeof(*r), NULL, 0, NULL, NULL);
	q->c.ic_done = true;
	q->stage = TCP_Q_CONNECT;
	return 0;
}

static int disc_connect(struct tcp_queue *q)
{
	struct tcp_listener *l = q->l;
	uint16_t cid = q->connect.cid;
	uint32_t depth = (uint32_t)q->connect.sqsize + 1;

	if (q->qid != 0)
		return reply_close(q, cid, TCP_FABRICS_ST(CONNECT_INVALID_PARAM) | NVME_CQE_DNR,
				   IPO(struct nvmf_connect_cmd, qid, 0));
	/* A discovery controller is dynamic: any controller, chosen by us. */
	if (q->cdata.cntlid != NVMF_CNTLID_DYNAMIC && q->cdata.cntlid != NVMF_CNTLID_STATIC_ANY)
		return reply_close(q, cid, TCP_FABRICS_ST(CONNECT_INVALID_PARAM) | NVME_CQE_DNR,
				   IPO(struct nvmf_connect_data, cntlid, 1));
	if (depth > TCP_ADMIN_DEPTH)
		return reply_close(q, cid, TCP_FABRICS_ST(CONNECT_INVALID_PARAM) | NVME_CQE_DNR,
				   IPO(struct nvmf_connect_cmd, sqsize, 0));
	if (++l->disc_cntlid >= 0xfff0)
		l->disc_cntlid = 1;
	if (tcp_queue_slots_init(q, NULL, depth) || tcp_disc_init(q))
		return reply_close(q, cid, TCP_ST(GENERIC, INTERNAL_DEVICE_ERROR), 0);
	q->stage = TCP_Q_DISCOVERY;
	q->c.ops = &tcp_disc_ops;
	q->last_rx_ns = leap_now_ns();
	q->sqhd = (uint16_t)(1 % depth);
	__atomic_fetch_add(&l->ndisc, 1, __ATOMIC_RELAXED);
	LEAP_DEBUG("tcp", "discovery: host %s connected from %s", q->cdata.hostnqn, q->c.peer);
	tcp_conn_send(&q->c, q->cresp, tcp_resp_fill(q, q->cresp, cid, 0, l->disc_cntlid, 0), NULL,
		      0, NULL, NULL);
	return 0;
}

/* The admin Connect (also retried from the loop while the controller is busy). */
static int admin_connect(struct tcp_queue *q)
{
	struct tcp_listener *l = q->l;
	const char *sub = q->cdata.subnqn, *host = q->cdata.hostnqn;
	uint16_t cid = q->connect.cid;
	uint32_t depth = (uint32_t)q->connect.sqsize + 1;
	struct leap_ctrl *ctrl;
	int rc = leap_ctrl_attach_nqn(sub, host, &ctrl);

	switch (rc) {
	case 0:
		break;
	case -ENOENT:
		log_refused(l, "Connect from %s (host %s) refused: no subsystem %s", q->c.peer,
			    host, sub);
		return reply_close(q, cid, TCP_FABRICS_ST(CONNECT_INVALID_PARAM) | NVME_CQE_DNR,
				   IPO(struct nvmf_connect_data, subnqn, 1));
	case -EACCES:
		log_refused(l, "Connect from %s refused: host %s is not allowed on %s", q->c.peer,
			    host, sub);
		return reply_close(q, cid, TCP_FABRICS_ST(CONNECT_INVALID_HOST) | NVME_CQE_DNR,
				   IPO(struct nvmf_connect_data, hostnqn, 1));
	default: /* -EBUSY */
		if (q->stage != TCP_Q_RETRY) {
			q->stage = TCP_Q_RETRY;
			q->retry_until_ns = leap_now_ns() + (uint64_t)BUSY_RETRY_MS * 1000000;
			return TCP_STOP;
		}
		if (leap_now_ns() < q->retry_until_ns)
			return TCP_STOP;
		log_refused(l, "Connect from %s (host %s) refused: %s already has a host",
			    q->c.peer, host, sub);
		return reply_close(q, cid, TCP_FABRICS_ST(CONNECT_CTRL_BUSY), 0);
	}
	/* Static controller model: "any" or this controller's own ID. */
	if (q->cdata.cntlid != NVMF_CNTLID_DYNAMIC && q->cdata.cntlid != NVMF_CNTLID_STATIC_ANY &&
	    q->cdata.cntlid != ctrl->cntlid) {
		leap_ctrl_detach(ctrl);
		log_refused(l, "Connect from %s (host %s) refused: %s has no controller %u",
			    q->c.peer, host, sub, q->cdata.cntlid);
		return reply_close(q, cid, TCP_FABRICS_ST(CONNECT_INVALID_PARAM) | NVME_CQE_DNR,
				   IPO(struct nvmf_connect_data, cntlid, 1));
	}
	if (depth > TCP_ADMIN_DEPTH) {
		leap_ctrl_detach(ctrl);
		return reply_close(q, cid, TCP_FABRICS_ST(CONNECT_INVALID_PARAM) | NVME_CQE_DNR,
				   IPO(struct nvmf_connect_cmd, sqsize, 0));
	}
	if (tcp_queue_slots_init(q, ctrl, depth) || !tcp_assoc_new(l, ctrl, q)) {
		leap_ctrl_detach(ctrl);
		return reply_close(q, cid, TCP_ST(GENERIC, INTERNAL_DEVICE_ERROR), 0);
	}
	q->stage = TCP_Q_HANDOFF;
	q->c.ops = &tcp_live_ops;
	return TCP_STOP;
}

static int io_connect(struct tcp_queue *q)
{
	struct tcp_listener *l = q->l;
	uint16_t cid = q->connect.cid;
	uint32_t depth = (uint32_t)q->connect.sqsize + 1;
	struct tcp_assoc *a;

	pthread_mutex_lock(&l->lock);
	for (a = l->assocs; a && a->cntlid != q->cdata.cntlid; a = a->next)
		;
	/* The controller ID must be one this very host (NQN and host ID) holds. */
	if (!a || strcmp(a->hostnqn, q->cdata.hostnqn) ||
	    memcmp(a->hostid, q->cdata.hostid, sizeof(a->hostid))) {
		pthread_mutex_unlock(&l->lock);
		log_refused(l,
			    "I/O queue Connect from %s (host %s) refused: controller %u is not "
			    "this host's",
			    q->c.peer, q->cdata.hostnqn, q->cdata.cntlid);
		return reply_close(q, cid, TCP_FABRICS_ST(CONNECT_INVALID_PARAM) | NVME_CQE_DNR,
				   IPO(struct nvmf_connect_data, cntlid, 1));
	}
	if (q->qid > a->ctrl->max_io_queues || depth > a->ctrl->max_qsize) {
		pthread_mutex_unlock(&l->lock);
		return reply_close(q, cid, TCP_FABRICS_ST(CONNECT_INVALID_PARAM) | NVME_CQE_DNR,
				   q->qid > a->ctrl->max_io_queues
				       ? IPO(struct nvmf_connect_cmd, qid, 0)
				       : IPO(struct nvmf_connect_cmd, sqsize, 0));
	}
	a->refs++; /* until the reactor has taken the queue in */
	pthread_mutex_unlock(&l->lock);
	if (tcp_queue_slots_init(q, a->ctrl, depth)) {
		tcp_assoc_put(a);
		return reply_close(q, cid, TCP_ST(GENERIC, INTERNAL_DEVICE_ERROR), 0);
	}
	q->assoc = a;
	q->stage = TCP_Q_HANDOFF;
	q->c.ops = &tcp_live_ops;
	return TCP_STOP;
}

static int pre_capsule(struct tcp_queue *q, const struct nvme_tcp_cmd_pdu *pdu, const uint8_t *icd,
		       uint32_t icd_len, bool ddgst_bad)
{
	const struct nvmf_connect_cmd *cc = (const void *)&pdu->sqe;

	if (pdu->sqe.opc != NVME_OPC_FABRIC || cc->fctype != NVMF_FCTYPE_CONNECT) {
		LEAP_DEBUG("tcp", "%s: command %#x before Connect", q->c.peer, pdu->sqe.opc);
		return reply_close(q, pdu->sqe.cid, TCP_ST(GENERIC, COMMAND_SEQUENCE_ERROR), 0);
	}
	if (ddgst_bad)
		return reply_close(q, cc->cid, TCP_ST(GENERIC, TRANSIENT_TRANSPORT_ERROR), 0);
	if (cc->recfmt != 0)
		return reply_close(q, cc->cid,
				   TCP_FABRICS_ST(CONNECT_INCOMPATIBLE_FORMAT) | NVME_CQE_DNR, 0);
	/* The Connect data travels in the capsule (R2T for it is not offered). */
	if (cc->sgl1.type != NVMF_TCP_SGL_ICD || !icd_len)
		return reply_close(q, cc->cid,
				   TCP_ST(GENERIC, SGL_DESCRIPTOR_TYPE_INVALID) | NVME_CQE_DNR, 0);
	if (cc->sgl1.length != sizeof(q->cdata) || cc->sgl1.addr > icd_len ||
	    icd_len - cc->sgl1.addr < sizeof(q->cdata))
		return reply_close(q, cc->cid,
				   TCP_ST(GENERIC, DATA_SGL_LENGTH_INVALID) | NVME_CQE_DNR, 0);
	memcpy(&q->connect, cc, sizeof(q->connect));
	memcpy(&q->cdata, icd + cc->sgl1.addr, sizeof(q->cdata));
	if (!memchr(q->cdata.subnqn, 0, sizeof(q->cdata.subnqn)))
		return reply_close(q, cc->cid, TCP_FABRICS_ST(CONNECT_INVALID_PARAM) | NVME_CQE_DNR,
				   IPO(struct nvmf_connect_data, subnqn, 1));
	if (!memchr(q->cdata.hostnqn, 0, sizeof(q->cdata.hostnqn)))
		return reply_close(q, cc->cid, TCP_FABRICS_ST(CONNECT_INVALID_PARAM) | NVME_CQE_DNR,
				   IPO(struct nvmf_connect_data, hostnqn, 1));
	if (cc->sqsize == 0)
		return reply_close(q, cc->cid, TCP_FABRICS_ST(CONNECT_INVALID_PARAM) | NVME_CQE_DNR,
				   IPO(struct nvmf_connect_cmd, sqsize, 0));
	q->qid = cc->qid;
	q->kato_ms = cc->kato;
	q->sqflow_off = cc->cattr & NVMF_CONNECT_CATTR_DISABLE_SQFLOW;
	if (strcmp(q->cdata.subnqn, NVME_DISCOVERY_NQN) == 0)
		return disc_connect(q);
	return q->qid == 0 ? admin_connect(q) : io_connect(q);
}

static uint8_t *pre_h2c(struct tcp_queue *q, const struct nvme_tcp_h2c_data_pdu *h)
{
	tcp_conn_fatal(&q->c, NVME_TCP_FES_INVALID_HEADER_FIELD,
		       offsetof(struct nvme_tcp_h2c_data_pdu, ttag), h, sizeof(*h),
		       "H2CData before Connect: no R2T outstanding");
	return NULL;
}

static int pre_h2c_done(struct tcp_queue *q, bool ddgst_bad)
{
	return -EPROTO; /* unreachable: pre_h2c never accepts data */
}

static const struct tcp_conn_ops pre_ops = {
	.icreq = pre_icreq,
	.capsule = pre_capsule,
	.h2c = pre_h2c,
	.h2c_done = pre_h2c_done,
};

/* ---- the loop ------------------------------------------------------------------- */

static void pending_unlink(struct tcp_listener *l, struct tcp_queue *q)
{
	struct tcp_queue **pp;

	for (pp = &l->pending; *pp && *pp != q; pp = &(*pp)->next)
		;
	if (*pp) {
		*pp = q->next;
		l->npending--;
	}
}

static void pending_close(struct tcp_listener *l, struct tcp_queue *q, const char *why)
{
	LEAP_DEBUG("tcp", "%s: connection closed (%s)", q->c.peer, why);
	pending_unlink(l, q);
	if (q->stage == TCP_Q_DISCOVERY)
		__atomic_fetch_sub(&l->ndisc, 1, __ATOMIC_RELAXED);
	tcp_conn_close(&q->c);
	tcp_queue_free(q);
	tcp_listener_conn_closed(l);
}

static int send_msg(struct leap_reactor *r, void (*fn)(void *), void *arg)
{
	int rc;

	/* The ring is full only for an instant: the reactor drains it every iteration. */
	while ((rc = leap_reactor_send_msg(r, fn, arg)) == -EAGAIN)
		usleep(100);
	return rc;
}

static void handoff(struct tcp_listener *l, struct tcp_queue *q)
{
	struct tcp_assoc *a = q->assoc;
	int rc;

	pending_unlink(l, q);
	if (q->qid == 0) {
		rc = send_msg(a->reactor, tcp_assoc_start, a);
		if (rc) {
			LEAP_ERR("tcp", "%s: reactor unavailable: %s", a->ctrl->name,
				 strerror(-rc));
			leap_ctrl_detach(a->ctrl);
			a->q[0] = NULL;
			tcp_assoc_put(a);
		}
	} else {
		rc = send_msg(a->reactor, tcp_assoc_add_io, q);
		if (rc)
			tcp_assoc_put(a);
	}
	if (rc) {
		tcp_queue_free(q);
		tcp_listener_conn_closed(l);
	}
}

static void accept_some(struct tcp_listener *l)
{
	char name[64];

	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char host[INET6_ADDRSTRLEN] = "?", peer[64];
		struct tcp_queue *q;
		int one = 1, fd;

		fd = accept4(l->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (__atomic_load_n(&l->nconns, __ATOMIC_RELAXED) >= l->o.max_connections) {
			close(fd);
			if (!l->at_limit)
				LEAP_WARN("tcp",
					  "%s: %u connections open, the listener's limit "
					  "(max_connections): refusing new ones until some close",
					  listen_name(l, name, sizeof(name)), l->o.max_connections);
			l->at_limit = true;
			continue;
		}
		if (l->at_limit) {
			LEAP_INFO("tcp", "%s: below the connection limit again",
				  listen_name(l, name, sizeof(name)));
			l->at_limit = false;
		}
		if (ss.ss_family == AF_INET) {
			const struct sockaddr_in *s4 = (const void *)&ss;

			inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
			snprintf(peer, sizeof(peer), "%s:%u", host, ntohs(s4->sin_port));
		} else {
			const struct sockaddr_in6 *s6 = (const void *)&ss;

			inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
			snprintf(peer, sizeof(peer), "[%s]:%u", host, ntohs(s6->sin6_port));
		}
		/* Capsules are latency-bound: no Nagle delay on responses. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		q = tcp_queue_new(l, fd, peer);
		if (!q) {
			close(fd);
			continue;
		}
		q->c.ops = &pre_ops;
		q->deadline_ns = leap_now_ns() + (uint64_t)l->o.handshake_timeout_ms * 1000000;
		q->next = l->pending;
		l->pending = q;
		l->npending++;
		__atomic_fetch_add(&l->nconns, 1, __ATOMIC_RELAXED);
	}
}

/* After a queue's events: close it, hand it off, or time it out. */
static void sweep(struct tcp_listener *l, struct tcp_queue *q, uint64_t now)
{
	uint64_t stall = (uint64_t)l->o.handshake_timeout_ms * 1000000;

	if (q->stage == TCP_Q_HANDOFF) {
		handoff(l, q);
		return;
	}
	if (q->c.closing || q->c.fatal) {
		if (!q->close_by_ns)
			q->close_by_ns = now + (uint64_t)CLOSE_GRACE_MS * 1000000;
		if (!tcp_conn_tx_pending(&q->c) || q->c.eof || now > q->close_by_ns)
			pending_close(l, q, q->c.why[0] ? q->c.why : "answered and closed");
		return;
	}
	if (q->c.eof) {
		pending_close(l, q, q->c.why[0] ? q->c.why : "closed by the host");
		return;
	}
	if (q->stage == TCP_Q_ICREQ || q->stage == TCP_Q_CONNECT) {
		if (now > q->deadline_ns)
			pending_close(l, q, "no ICReq and Connect within the handshake timeout");
		return;
	}
	if (q->stage == TCP_Q_DISCOVERY) {
		uint32_t to = q->kato_ms ? q->kato_ms : l->o.idle_timeout_ms;

		if (q->c.rx_seen) {
			q->c.rx_seen = false;
			q->last_rx_ns = now;
		}
		if (to && now - q->last_rx_ns > (uint64_t)to * 1000000)
			pending_close(l, q, "discovery: keep-alive timeout");
		else if ((q->c.rx_tail != q->c.rx_head || q->c.rx_state != TCP_RX_HDR) &&
			 now - q->last_rx_ns > stall)
			pending_close(l, q, "discovery: a partial PDU stalled");
	}
}

/* Milliseconds until the nearest deadline among the pending queues (at most 1 s). */
static int next_timeout(const struct tcp_listener *l, uint64_t now)
{
	uint64_t ms = 1000;

	for (const struct tcp_queue *q = l->pending; q; q = q->next) {
		if (q->stage == TCP_Q_RETRY || q->c.closing)
			return 10;
		if ((q->stage == TCP_Q_ICREQ || q->stage == TCP_Q_CONNECT)) {
			uint64_t left = q->deadline_ns > now ? (q->deadline_ns - now) / 1000000 : 0;

			ms = LEAP_MIN(ms, left + 1);
		}
	}
	return (int)ms;
}

static void *listener_main(void *arg)
{
	struct tcp_listener *l = arg;
	uint32_t cap = l->o.max_connections + 2;
	struct pollfd *pfd = calloc(cap, sizeof(*pfd));
	struct tcp_queue **idx = calloc(cap, sizeof(*idx));

	if (!pfd || !idx) {
		LEAP_ERR("tcp", "listener thread: out of memory");
		goto out;
	}
	for (;;) {
		uint64_t now = leap_now_ns();
		nfds_t n = 2;
		struct tcp_queue *q, *next;
		int rc;

		pfd[0] = (struct pollfd){ .fd = l->stop_fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = l->lfd, .events = POLLIN };
		for (q = l->pending; q && n < cap; q = q->next) {
			short ev = 0;

			if (q->stage != TCP_Q_RETRY && !q->c.closing)
				ev |= POLLIN;
			if (tcp_conn_tx_pending(&q->c))
				ev |= POLLOUT;
			idx[n] = q;
			pfd[n++] = (struct pollfd){ .fd = q->c.fd, .events = ev };
		}
		if (poll(pfd, n, next_timeout(l, now)) < 0 && errno != EINTR) {
			LEAP_ERR("tcp", "listener poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents)
			break;
		for (nfds_t i = 2; i < n; i++) {
			q = idx[i];
			if (q->stage == TCP_Q_RETRY) {
				admin_connect(q);
			} else if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				rc = tcp_conn_rx(q);
				(void)
				    rc; /* the queue's state says what happened; sweep() acts on it */
			}
			if (tcp_conn_tx_pending(&q->c))
				tcp_conn_flush(&q->c);
		}
		now = leap_now_ns();
		for (q = l->pending; q; q = next) {
			next = q->next;
			sweep(l, q, now);
		}
		if (pfd[1].revents & POLLIN)
			accept_some(l);
	}
out:
	while (l->pending)
		pending_close(l, l->pending, "the listener stopped");
	free(pfd);
	free(idx);
	return NULL;
}

/* ---- start / stop ------------------------------------------------------------- */

int tcp_listener_start(const struct tcp_listener_opts *o, struct leap_reactor **reactors,
		       uint32_t n, struct tcp_listener **out, char *err, size_t errlen)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct tcp_listener *l;
	char name[64];
	int one = 1, rc;

	*out = NULL;
	if (!n)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->o = *o;
	l->reactors = reactors;
	l->nreactors = n;
	l->lfd = -1;
	l->stop_fd = -1;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	if (inet_pton(AF_INET, o->addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(o->port);
	} else if (inet_pton(AF_INET6, o->addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(o->port);
	} else {
		snprintf(err, errlen, "tcp: 'addr' '%s' is not an IPv4 or IPv6 address", o->addr);
		rc = -EINVAL;
		goto err_free;
	}
	l->family = ss.ss_family;
	listen_name(l, name, sizeof(name));
	l->lfd = socket(l->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->lfd < 0)
		goto err_errno;
	setsockopt(l->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* An IPv6 listener serves IPv6 only: IPv4 has listeners of its own. */
	if (l->family == AF_INET6)
		setsockopt(l->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(l->lfd, (struct sockaddr *)&ss, l->family == AF_INET ? sizeof(*s4) : sizeof(*s6)) <
		0 ||
	    listen(l->lfd, 128) < 0)
		goto err_errno;
	l->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (l->stop_fd < 0)
		goto err_errno;
	rc = pthread_create(&l->thread, NULL, listener_main, l);
	if (rc) {
		errno = rc;
		goto err_errno;
	}
	l->thread_started = true;
	LEAP_INFO("tcp", "NVMe/TCP target listening on %s", name);
	*out = l;
	return 0;

err_errno:
	rc = -errno;
	snprintf(err, errlen, "tcp: cannot listen on %s: %s", name, strerror(errno));
err_free:
	if (l->lfd >= 0)
		close(l->lfd);
	if (l->stop_fd >= 0)
		close(l->stop_fd);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
	free(l);
	return rc;
}

void tcp_listener_stop(struct tcp_listener *l)
{
	struct tcp_assoc **kill = NULL;
	uint32_t nkill = 0;
	uint64_t one = 1;
	char name[64];

	if (!l)
		return;
	if (l->thread_started) {
		if (write(l->stop_fd, &one, sizeof(one)) < 0)
			LEAP_WARN("tcp", "stop: %s", strerror(errno));
		pthread_join(l->thread, NULL);
	}
	close(l->lfd);
	/* Every association ends; the last reference to each wakes us. */
	pthread_mutex_lock(&l->lock);
	kill = calloc(l->nassocs ? l->nassocs : 1, sizeof(*kill));
	for (struct tcp_assoc *a = l->assocs; a && kill; a = a->next) {
		a->refs++;
		kill[nkill++] = a;
	}
	pthread_mutex_unlock(&l->lock);
	for (uint32_t i = 0; i < nkill; i++)
		if (send_msg(kill[i]->reactor, tcp_assoc_kill, kill[i]))
			tcp_assoc_put(kill[i]);
	free(kill);
	pthread_mutex_lock(&l->lock);
	while (l->nassocs) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 5;
		if (pthread_cond_timedwait(&l->cond, &l->lock, &ts) == ETIMEDOUT)
			LEAP_WARN("tcp", "%s: still waiting for %u host(s) to drain",
				  listen_name(l, name, sizeof(name)), l->nassocs);
	}
	pthread_mutex_unlock(&l->lock);
	close(l->stop_fd);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
	LEAP_INFO("tcp", "%s: stopped", listen_name(l, name, sizeof(name)));
	free(l);
}
