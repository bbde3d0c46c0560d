// SPDX-License-Identifier: BSD-3-Clause
/*
 * NVMe/TCP queue pair: one TCP connection from a non-blocking connect()
 * through ICReq/ICResp and the Fabrics Connect to LIVE, the request slots
 * (CID = slot index | generation << index bits, so a CID the target invents
 * or repeats after completion is caught), submission into the send ring,
 * and the one-way trip to FAILED. The byte-level receive parser is tcp_rx.c,
 * the send ring tcp_tx.c.
 *
 * The poll order is receive, then send: completions reaped by this poll can
 * submit new commands from their callbacks, and those go out in the same
 * poll's single sendmsg().
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/crc32c.h"
#include "leapio/log.h"
#include "nvmf_internal.h"

void leap_nvmf_qpair_opts_init(struct leap_nvmf_qpair_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->qid = NVME_ADMIN_QID;
	opts->qdepth = NVMF_DEF_QDEPTH;
	opts->cntlid = NVMF_CNTLID_DYNAMIC;
	opts->max_iov = NVMF_DEF_MAX_IOV;
	opts->icd_max = NVME_TCP_ADMIN_ICD_MAX;
	opts->rx_buf_size = NVMF_RX_BUF_DEF;
}

/* ---- failure ------------------------------------------------------------ */

static void fill_abort_cqe(struct nvme_cqe *cqe, const struct leap_nvmf_qpair *qp, uint16_t cid)
{
	memset(cqe, 0, sizeof(*cqe));
	cqe->cid = cid;
	cqe->sqid = qp->qid;
	cqe->sqhd = qp->sqhd;
	cqe->status = nvme_cqe_status(NVME_STATUS(NVME_SCT_PATH, NVME_SC_HOST_PATH_ERROR), 0);
}

/* End every in-flight request with a host path error; the ring no longer points at them. */
static void abort_all(struct leap_nvmf_qpair *qp)
{
	nvmf_tx_reset(qp);
	qp->rx_state = NVMF_RX_HDR;
	for (uint32_t i = 0; i < qp->qdepth; i++) {
		struct nvmf_req *req = &qp->reqs[i];
		struct nvme_cqe cqe;

		if (req->state != NVMF_REQ_INFLIGHT)
			continue;
		fill_abort_cqe(&cqe, qp, req->cid);
		nvmf_qp_complete(qp, req, &cqe);
	}
}

/*
 * An H2CTermReq tells the target why we hang up (TP 8000 section 3.6.2.x).
 * Best effort, one non-blocking send; never in the middle of a PDU already
 * partly on the wire, which would make the stream unparseable for the peer.
 */
static void send_term_req(struct leap_nvmf_qpair *qp, uint16_t fes, uint32_t fei, const void *pdu,
			  size_t pdu_len)
{
	uint8_t buf[NVME_TCP_TERM_REQ_PLEN_MAX];
	struct nvme_tcp_term_req t;
	size_t dlen = LEAP_MIN(pdu_len, (size_t)NVME_TCP_TERM_REQ_DATA_MAX);

	if (qp->tx_head_off != 0 || qp->fd < 0)
		return;
	memset(&t, 0, sizeof(t));
	t.hdr.pdu_type = NVME_TCP_PDU_H2C_TERM_REQ;
	t.hdr.hlen = sizeof(t);
	t.hdr.plen = (uint32_t)(sizeof(t) + dlen);
	t.fes = fes;
	t.fei = fei;
	memcpy(buf, &t, sizeof(t));
	if (dlen)
		memcpy(buf + sizeof(t), pdu, dlen);
	(void)send(qp->fd, buf, sizeof(t) + dlen, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void qp_vfail(struct leap_nvmf_qpair *qp, int err, uint16_t fes, uint32_t fei,
		     const void *pdu, size_t pdu_len, bool log, const char *fmt, va_list ap)
{
	if (qp->state == LEAP_NVMF_QP_FAILED)
		return;
	vsnprintf(qp->reason, sizeof(qp->reason), fmt, ap);
	if (log)
		LEAP_ERR("nvmf", "%s qid %u: %s", qp->peer, qp->qid, qp->reason);
	if (fes && qp->state != LEAP_NVMF_QP_CONNECTING)
		send_term_req(qp, fes, fei, pdu, pdu_len);
	if (qp->fd >= 0)
		shutdown(qp->fd, SHUT_RDWR);
	qp->state = LEAP_NVMF_QP_FAILED;
	qp->err = err < 0 ? err : -EIO;
	abort_all(qp);
}

void nvmf_qp_fail(struct leap_nvmf_qpair *qp, int err, uint16_t fes, uint32_t fei, const void *pdu,
		  size_t pdu_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	qp_vfail(qp, err, fes, fei, pdu, pdu_len, true, fmt, ap);
	va_end(ap);
}

static void qp_fail_quiet(struct leap_nvmf_qpair *qp, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	qp_vfail(qp, err, 0, 0, NULL, 0, false, fmt, ap);
	va_end(ap);
}

/* The caller decided and logs it; no second log line here. */
void leap_nvmf_qpair_fail(struct leap_nvmf_qpair *qp, int err, const char *reason)
{
	qp_fail_quiet(qp, err, "%s", reason ? reason : "failed by the caller");
}

/* ---- request slots ------------------------------------------------------ */

struct nvmf_req *nvmf_qp_req_lookup(struct leap_nvmf_qpair *qp, uint16_t cid)
{
	uint16_t idx = cid & qp->idx_mask;
	struct nvmf_req *req;

	if (idx >= qp->qdepth)
		return NULL;
	req = &qp->reqs[idx];
	if (req->state != NVMF_REQ_INFLIGHT || req->cid != cid)
		return NULL;
	return req;
}

/*
 * Free the slot before the callback so the callback can reuse it at once;
 * bump the generation so the old CID no longer matches.
 */
void nvmf_qp_complete(struct leap_nvmf_qpair *qp, struct nvmf_req *req, const struct nvme_cqe *cqe)
{
	leap_nvmf_cb cb = req->cb;
	void *arg = req->arg;
	struct nvme_cqe patched;
	uint16_t idx = (uint16_t)(req - qp->reqs);

	if (leap_unlikely(req->ddgst_err) && nvmf_cqe_status(cqe) == 0) {
		patched = *cqe;
		patched.status = nvme_cqe_status(
		    NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_TRANSIENT_TRANSPORT_ERROR), 0);
		cqe = &patched;
	}
	req->state = NVMF_REQ_FREE;
	req->gen = (uint16_t)((req->gen + 1) & qp->gen_mask);
	qp->free_stack[qp->nfree++] = idx;
	qp->outstanding--;
	qp->stats.completions++;
	qp->poll_completions++;
	if (cb)
		cb(arg, cqe);
}

/* ---- submission --------------------------------------------------------- */

static void put_sgl(struct nvme_sqe *sqe, uint32_t len, uint8_t type)
{
	struct nvme_sgl_desc sgl = { .addr = 0, .length = len, .type = type };

	memcpy((uint8_t *)sqe + NVME_SQE_SGL1_OFFSET, &sgl, sizeof(sgl));
}

/*
 * Queue a command. `internal` lets the Fabrics Connect through before LIVE.
 * The capsule header is built straight into the send-ring entry.
 */
static int submit(struct leap_nvmf_qpair *qp, const struct nvme_sqe *sqe, const struct iovec *iov,
		  int iovcnt, leap_nvmf_cb cb, void *arg, bool internal)
{
	struct nvme_tcp_cmd_pdu *pdu;
	struct nvmf_tx_ent *ent;
	struct nvmf_req *req;
	uint32_t hd = qp->hdgst ? NVME_TCP_DIGEST_LEN : 0;
	uint32_t dd = qp->ddgst ? NVME_TCP_DIGEST_LEN : 0;
	uint64_t len = 0;
	enum nvmf_data_dir dir;
	uint16_t idx;

	if (leap_unlikely(qp->state != LEAP_NVMF_QP_LIVE)) {
		if (qp->state == LEAP_NVMF_QP_FAILED)
			return qp->err;
		if (!internal)
			return -ENOTCONN;
	}
	if (leap_unlikely(iovcnt < 0 || iovcnt > qp->max_iov || (iovcnt && !iov)))
		return iovcnt > qp->max_iov ? -E2BIG : -EINVAL;
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	dir = nvmf_sqe_data_dir(sqe);
	if (leap_unlikely(len > UINT32_MAX || dir == NVMF_DIR_BIDI ||
			  (len && dir == NVMF_DIR_NONE)))
		return -EINVAL;
	if (leap_unlikely(qp->nfree == 0))
		return -EAGAIN;
	ent = nvmf_tx_push(qp);
	if (leap_unlikely(!ent))
		return -EAGAIN;

	idx = qp->free_stack[--qp->nfree];
	req = &qp->reqs[idx];
	req->cb = cb;
	req->arg = arg;
	req->len = (uint32_t)len;
	req->xfer = 0;
	req->h2c_next = 0;
	req->r2t_end = 0;
	req->iovcnt = (uint16_t)iovcnt;
	if (iovcnt)
		memcpy(req->iov, iov, (size_t)iovcnt * sizeof(*iov));
	req->cid = (uint16_t)((req->gen << qp->idx_bits) | idx);
	req->dir = len ? (uint8_t)dir : NVMF_DIR_NONE;
	/* The Connect (internal) always carries its data in the capsule. */
	req->icd = req->dir == NVMF_DIR_H2C && (len <= qp->icd_max || internal);
	req->ddgst_err = false;
	req->pending = false;
	req->tx_refs = 1;
	req->state = NVMF_REQ_INFLIGHT;
	qp->outstanding++;

	pdu = (struct nvme_tcp_cmd_pdu *)ent->hdr;
	memset(ent->hdr, 0, sizeof(ent->hdr));
	pdu->hdr.pdu_type = NVME_TCP_PDU_CAPSULE_CMD;
	pdu->hdr.flags = hd ? NVME_TCP_F_HDGST : 0;
	pdu->hdr.hlen = sizeof(*pdu);
	pdu->sqe = *sqe;
	pdu->sqe.cid = req->cid;
	pdu->sqe.flags = (uint8_t)((sqe->flags & NVME_SQE_FUSE_MASK) | NVMF_SQE_FLAGS_SGL);
	ent->req = idx;
	if (req->icd) {
		uint32_t pdo = (uint32_t)LEAP_ALIGN_UP(sizeof(*pdu) + hd, qp->tx_align);

		put_sgl(&pdu->sqe, req->len, NVMF_TCP_SGL_ICD);
		pdu->hdr.flags |= dd ? NVME_TCP_F_DDGST : 0;
		pdu->hdr.pdo = (uint8_t)pdo;
		pdu->hdr.plen = pdo + req->len + dd;
		ent->hdr_len = pdo;
		ent->data_off = 0;
		ent->data_len = req->len;
		ent->has_ddgst = dd != 0;
		if (dd)
			nvmf_put_digest(ent->ddgst,
					nvmf_iov_crc(0, req->iov, req->iovcnt, 0, req->len));
	} else {
		put_sgl(&pdu->sqe, req->len, NVMF_TCP_SGL_TRANSPORT);
		pdu->hdr.pdo = 0;
		pdu->hdr.plen = (uint32_t)sizeof(*pdu) + hd;
		ent->hdr_len = (uint32_t)sizeof(*pdu) + hd;
		ent->data_len = 0;
		ent->has_ddgst = 0;
	}
	if (hd)
		nvmf_put_digest(ent->hdr + sizeof(*pdu), leap_crc32c(0, pdu, sizeof(*pdu)));
	return 0;
}

int leap_nvmf_qpair_submit(struct leap_nvmf_qpair *qp, const struct nvme_sqe *sqe,
			   const struct iovec *iov, int iovcnt, leap_nvmf_cb cb, void *arg)
{
	return submit(qp, sqe, iov, iovcnt, cb, arg, false);
}

/* ---- connection bring-up ------------------------------------------------ */

int nvmf_connect_status_errno(uint16_t status)
{
	if (NVME_STATUS_SCT(status) == NVME_SCT_COMMAND_SPECIFIC) {
		switch (NVME_STATUS_SC(status)) {
		case NVMF_SC_CONNECT_INVALID_HOST:
		case NVMF_SC_AUTH_REQUIRED:
			return -EACCES;
		case NVMF_SC_CONNECT_CTRL_BUSY:
			return -EBUSY;
		case NVMF_SC_CONNECT_INVALID_PARAM:
			return -EINVAL;
		case NVMF_SC_CONNECT_INCOMPATIBLE_FORMAT:
			return -EPROTO;
		default:
			break;
		}
	}
	return -EIO;
}

static void connect_done(void *arg, const struct nvme_cqe *cqe)
{
	struct leap_nvmf_qpair *qp = arg;
	uint16_t st = nvmf_cqe_status(cqe);
	struct nvmf_connect_rsp rsp;

	if (qp->state != LEAP_NVMF_QP_CONNECT_SENT)
		return; /* aborted by a failure that already set the reason */
	memcpy(&rsp, cqe, sizeof(rsp));
	if (st & 0x7ff) {
		char extra[64] = "";

		if (NVME_STATUS_SCT(st) == NVME_SCT_COMMAND_SPECIFIC &&
		    NVME_STATUS_SC(st) == NVMF_SC_CONNECT_INVALID_PARAM)
			snprintf(extra, sizeof(extra), ", invalid parameter at byte %u of the %s",
				 rsp.dw0.invalid.ipo,
				 rsp.dw0.invalid.iattr ? "Connect data" : "Connect command");
		nvmf_qp_fail(qp, nvmf_connect_status_errno(st), 0, 0, NULL, 0,
			     "Fabrics Connect (qid %u) failed: status 0x%03x (%s)%s", qp->qid,
			     st & 0x7ff, leap_nvmf_status_str(st), extra);
		return;
	}
	qp->cntlid = rsp.dw0.success.cntlid;
	qp->state = LEAP_NVMF_QP_LIVE;
}

void nvmf_qp_icresp(struct leap_nvmf_qpair *qp, const struct nvme_tcp_icresp *r)
{
	struct nvmf_connect_cmd cmd;
	int rc;

	if (r->pfv != NVME_TCP_PFV_1_0) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_UNSUPPORTED_PARAM, 8, r, sizeof(*r),
			     "ICResp: unsupported PDU format version %u", r->pfv);
		return;
	}
	if (r->cpda > NVME_TCP_PDA_MAX) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_INVALID_HEADER_FIELD, 10, r, sizeof(*r),
			     "ICResp: invalid CPDA %u", r->cpda);
		return;
	}
	if ((r->dgst & ~(NVME_TCP_DGST_HDGST | NVME_TCP_DGST_DDGST)) ||
	    ((r->dgst & NVME_TCP_DGST_HDGST) && !qp->trid.hdgst) ||
	    ((r->dgst & NVME_TCP_DGST_DDGST) && !qp->trid.ddgst)) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_INVALID_HEADER_FIELD, 11, r, sizeof(*r),
			     "ICResp: digests 0x%x enabled that the host did not request", r->dgst);
		return;
	}
	if ((qp->trid.hdgst && !(r->dgst & NVME_TCP_DGST_HDGST)) ||
	    (qp->trid.ddgst && !(r->dgst & NVME_TCP_DGST_DDGST))) {
		nvmf_qp_fail(qp, -EOPNOTSUPP, 0, 0, NULL, 0,
			     "ICResp: the target declined the requested %s digest",
			     qp->trid.hdgst && !(r->dgst & NVME_TCP_DGST_HDGST) ? "header"
										: "data");
		return;
	}
	if (r->maxh2cdata < NVME_TCP_MIN_MAXH2CDATA || (r->maxh2cdata & 3)) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_INVALID_HEADER_FIELD, 12, r, sizeof(*r),
			     "ICResp: invalid MAXH2CDATA %u", r->maxh2cdata);
		return;
	}
	qp->hdgst = r->dgst & NVME_TCP_DGST_HDGST;
	qp->ddgst = r->dgst & NVME_TCP_DGST_DDGST;
	qp->tx_align = (r->cpda + 1u) * 4;
	qp->maxh2cdata = r->maxh2cdata;
	qp->state = LEAP_NVMF_QP_CONNECT_SENT;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVME_OPC_FABRIC;
	cmd.fctype = NVMF_FCTYPE_CONNECT;
	cmd.recfmt = 0;
	cmd.qid = qp->qid;
	cmd.sqsize = qp->qdepth; /* 0's based: qdepth + 1 entries hold qdepth commands */
	cmd.kato = qp->qid == NVME_ADMIN_QID ? qp->kato_ms : 0;
	/*
	 * Connect data always travels in the capsule: before Identify the host
	 * cannot know IOCCSZ, and TP 8000 lets every queue take 1 KiB here.
	 */
	rc = submit(qp, (const struct nvme_sqe *)&cmd, &qp->connect_iov, 1, connect_done, qp, true);
	if (rc)
		nvmf_qp_fail(qp, rc, 0, 0, NULL, 0, "cannot queue the Fabrics Connect: %s",
			     strerror(-rc));
}

static void start_icreq(struct leap_nvmf_qpair *qp)
{
	struct nvmf_tx_ent *ent = nvmf_tx_push(qp);
	struct nvme_tcp_icreq *q = (struct nvme_tcp_icreq *)ent->hdr;

	memset(ent->hdr, 0, sizeof(ent->hdr));
	q->hdr.pdu_type = NVME_TCP_PDU_ICREQ;
	q->hdr.hlen = sizeof(*q);
	q->hdr.plen = sizeof(*q);
	q->pfv = NVME_TCP_PFV_1_0;
	q->hpda = 0; /* C2HData payload right after its header: no padding to skip */
	q->dgst = (uint8_t)((qp->trid.hdgst ? NVME_TCP_DGST_HDGST : 0) |
			    (qp->trid.ddgst ? NVME_TCP_DGST_DDGST : 0));
	q->maxr2t = 0; /* one outstanding R2T per command */
	ent->hdr_len = sizeof(*q);
	ent->data_len = 0;
	ent->has_ddgst = 0;
	ent->req = NVMF_NO_REQ;
	qp->state = LEAP_NVMF_QP_ICREQ_SENT;
}

/* CONNECTING: a zero-timeout poll() tells whether connect() finished, SO_ERROR how. */
static void check_connected(struct leap_nvmf_qpair *qp)
{
	struct pollfd pfd = { .fd = qp->fd, .events = POLLOUT };
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (poll(&pfd, 1, 0) <= 0)
		return;
	if (getsockopt(qp->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		soerr = errno;
	if (soerr) {
		nvmf_qp_fail(qp, -soerr, 0, 0, NULL, 0, "connect to %s: %s", qp->peer,
			     strerror(soerr));
		return;
	}
	start_icreq(qp);
}

int leap_nvmf_qpair_poll(struct leap_nvmf_qpair *qp)
{
	int rc;

	if (leap_unlikely(qp->state != LEAP_NVMF_QP_LIVE)) {
		if (qp->state == LEAP_NVMF_QP_FAILED)
			return qp->err;
		if (qp->state == LEAP_NVMF_QP_CONNECTING) {
			check_connected(qp);
			if (qp->state != LEAP_NVMF_QP_ICREQ_SENT)
				return qp->state == LEAP_NVMF_QP_FAILED ? qp->err : 0;
		}
	}
	qp->poll_completions = 0;
	/* A live queue with nothing in flight expects nothing: skip the syscall. */
	if (qp->outstanding || qp->state != LEAP_NVMF_QP_LIVE) {
		rc = nvmf_rx_process(qp);
		if (rc < 0)
			return rc;
	}
	rc = nvmf_tx_flush(qp);
	if (rc < 0)
		return rc;
	return (int)qp->poll_completions;
}

int leap_nvmf_qpair_wait(struct leap_nvmf_qpair *qp, int timeout_ms)
{
	struct pollfd pfd = { .fd = qp->fd, .events = POLLIN };

	if (qp->state == LEAP_NVMF_QP_FAILED)
		return qp->err;
	if (leap_nvmf_qpair_wants_pollout(qp))
		pfd.events |= POLLOUT;
	if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR)
		return -errno;
	return leap_nvmf_qpair_poll(qp);
}

/* ---- create / destroy --------------------------------------------------- */

static int resolve(const struct leap_nvmf_trid *trid, struct sockaddr_storage *ss, socklen_t *sl)
{
	struct addrinfo hints = { 0 }, *ai = NULL;
	const char *port = trid->trsvcid[0] ? trid->trsvcid : "4420";
	int rc;

	hints.ai_family = trid->adrfam == NVMF_ADRFAM_IPV6 ? AF_INET6 : AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	/* Numeric only: name resolution can block, and the reactor must not. */
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	rc = getaddrinfo(trid->traddr, port, &hints, &ai);
	if (rc || !ai)
		return -EINVAL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sl = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static int open_socket(struct leap_nvmf_qpair *qp)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, rc;

	rc = resolve(&qp->trid, &ss, &sl);
	if (rc) {
		LEAP_ERR("nvmf", "%s: not a numeric %s address and port", qp->peer,
			 qp->trid.adrfam == NVMF_ADRFAM_IPV6 ? "IPv6" : "IPv4");
		return rc;
	}
	qp->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (qp->fd < 0) {
		rc = -errno;
		LEAP_ERR("nvmf", "socket: %s", strerror(-rc));
		return rc;
	}
	/* Capsules are small and latency-bound; batching is done by sendmsg(), not Nagle. */
	setsockopt(qp->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(qp->fd, (struct sockaddr *)&ss, sl) == 0) {
		start_icreq(qp);
	} else if (errno == EINPROGRESS) {
		qp->state = LEAP_NVMF_QP_CONNECTING;
	} else {
		/* Refused at once (loopback): same path as an asynchronous refusal. */
		rc = errno;
		qp->state = LEAP_NVMF_QP_CONNECTING;
		nvmf_qp_fail(qp, -rc, 0, 0, NULL, 0, "connect to %s: %s", qp->peer, strerror(rc));
	}
	return 0;
}

int leap_nvmf_qpair_create(const struct leap_nvmf_trid *trid,
			   const struct leap_nvmf_qpair_opts *opts, struct leap_nvmf_qpair **qpp)
{
	struct leap_nvmf_qpair *qp;
	uint32_t cap;
	int rc;

	*qpp = NULL;
	if (!trid || !opts || opts->qdepth == 0 || opts->qdepth > NVMF_MAX_QDEPTH ||
	    opts->max_iov == 0 || opts->max_iov > NVMF_MAX_IOV ||
	    (opts->rx_buf_size && opts->rx_buf_size < NVMF_RX_BUF_MIN))
		return -EINVAL;
	qp = calloc(1, sizeof(*qp));
	if (!qp)
		return -ENOMEM;
	qp->fd = -1;
	qp->trid = *trid;
	rc = nvmf_trid_finalize(&qp->trid);
	if (rc)
		goto err_free;
	snprintf(qp->peer, sizeof(qp->peer),
		 qp->trid.adrfam == NVMF_ADRFAM_IPV6 ? "[%s]:%s" : "%s:%s", qp->trid.traddr,
		 qp->trid.trsvcid[0] ? qp->trid.trsvcid : "4420");
	qp->qid = opts->qid;
	qp->qdepth = opts->qdepth;
	qp->max_iov = opts->max_iov;
	qp->kato_ms = opts->kato_ms;
	qp->icd_max = opts->icd_max;
	qp->tx_align = 4;
	while ((1u << qp->idx_bits) < qp->qdepth)
		qp->idx_bits++;
	qp->idx_mask = (uint16_t)((1u << qp->idx_bits) - 1);
	qp->gen_mask = (uint16_t)((1u << (16 - qp->idx_bits)) - 1);

	qp->reqs = calloc(qp->qdepth, sizeof(*qp->reqs));
	qp->iov_pool = calloc((size_t)qp->qdepth * qp->max_iov, sizeof(*qp->iov_pool));
	qp->free_stack = calloc(qp->qdepth, sizeof(*qp->free_stack));
	/* Room for every command plus as many H2CData PDUs again (tcp_tx.c keeps that split). */
	for (cap = 16; cap < 2u * qp->qdepth + 8; cap <<= 1)
		;
	qp->tx_cap = cap;
	qp->tx = calloc(cap, sizeof(*qp->tx));
	qp->tx_iov = calloc(NVMF_TX_IOV_MAX, sizeof(*qp->tx_iov));
	qp->rx_cap = opts->rx_buf_size ? opts->rx_buf_size : NVMF_RX_BUF_DEF;
	qp->rx_buf = malloc(qp->rx_cap);
	if (!qp->reqs || !qp->iov_pool || !qp->free_stack || !qp->tx || !qp->tx_iov ||
	    !qp->rx_buf) {
		rc = -ENOMEM;
		goto err_free;
	}
	for (uint32_t i = 0; i < qp->qdepth; i++) {
		qp->reqs[i].iov = qp->iov_pool + (size_t)i * qp->max_iov;
		/* Hand out low indexes first. */
		qp->free_stack[i] = (uint16_t)(qp->qdepth - 1 - i);
	}
	qp->nfree = qp->qdepth;
	qp->pend_head = qp->pend_tail = NVMF_NO_REQ;

	memcpy(qp->connect_data.hostid, qp->trid.hostid, sizeof(qp->connect_data.hostid));
	qp->connect_data.cntlid = opts->cntlid;
	snprintf(qp->connect_data.subnqn, sizeof(qp->connect_data.subnqn), "%s", qp->trid.subnqn);
	snprintf(qp->connect_data.hostnqn, sizeof(qp->connect_data.hostnqn), "%s",
		 qp->trid.hostnqn);
	qp->connect_iov.iov_base = &qp->connect_data;
	qp->connect_iov.iov_len = sizeof(qp->connect_data);

	rc = open_socket(qp);
	if (rc)
		goto err_free;
	*qpp = qp;
	return 0;

err_free:
	leap_nvmf_qpair_destroy(qp);
	return rc;
}

void leap_nvmf_qpair_destroy(struct leap_nvmf_qpair *qp)
{
	if (!qp)
		return;
	if (qp->reqs && qp->free_stack)
		qp_fail_quiet(qp, -ESHUTDOWN, "queue pair destroyed");
	if (qp->fd >= 0)
		close(qp->fd);
	free(qp->reqs);
	free(qp->iov_pool);
	free(qp->free_stack);
	free(qp->tx);
	free(qp->tx_iov);
	free(qp->rx_buf);
	free(qp);
}

/* ---- accessors ---------------------------------------------------------- */

enum leap_nvmf_qpair_state leap_nvmf_qpair_state(const struct leap_nvmf_qpair *qp)
{
	return qp->state;
}

int leap_nvmf_qpair_error(const struct leap_nvmf_qpair *qp)
{
	return qp->state == LEAP_NVMF_QP_FAILED ? qp->err : 0;
}

const char *leap_nvmf_qpair_reason(const struct leap_nvmf_qpair *qp)
{
	return qp->reason;
}

int leap_nvmf_qpair_fd(const struct leap_nvmf_qpair *qp)
{
	return qp->fd;
}

bool leap_nvmf_qpair_wants_pollout(const struct leap_nvmf_qpair *qp)
{
	return qp->state == LEAP_NVMF_QP_CONNECTING ||
	       (qp->state != LEAP_NVMF_QP_FAILED && qp->tx_head != qp->tx_tail);
}

unsigned int leap_nvmf_qpair_outstanding(const struct leap_nvmf_qpair *qp)
{
	return qp->outstanding;
}

uint16_t leap_nvmf_qpair_qid(const struct leap_nvmf_qpair *qp)
{
	return qp->qid;
}

uint16_t leap_nvmf_qpair_qdepth(const struct leap_nvmf_qpair *qp)
{
	return qp->qdepth;
}

uint16_t leap_nvmf_qpair_cntlid(const struct leap_nvmf_qpair *qp)
{
	return qp->cntlid;
}

void leap_nvmf_qpair_get_stats(const struct leap_nvmf_qpair *qp, struct leap_nvmf_qpair_stats *st)
{
	*st = qp->stats;
}
