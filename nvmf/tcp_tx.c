// SPDX-License-Identifier: BSD-3-Clause
/*
 * The send side of an NVMe/TCP queue pair: a ring of PDUs (header bytes
 * built in place, plus a slice of a request's iovecs and a data digest) that
 * one sendmsg() per poll drains, however many PDUs that is. Partial sends
 * just leave an offset into the head PDU. H2CData PDUs answering an R2T are
 * cut at the target's MAXH2CDATA; if the ring is short of room the request
 * waits on a FIFO and continues after the next send frees entries.
 *
 * Ring room: a command takes one entry and at most qdepth commands are in
 * flight, so H2CData PDUs may only use the ring while qdepth entries stay
 * free; a submission therefore never finds the ring full.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "leapio/common.h"
#include "leapio/crc32c.h"
#include "nvmf_internal.h"

void nvmf_put_digest(uint8_t *dst, uint32_t crc)
{
	/* Digests are little-endian on the wire, as is this host. */
	memcpy(dst, &crc, NVME_TCP_DIGEST_LEN);
}

uint32_t nvmf_get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* CRC32C of bytes [off, off + len) of an iovec array. */
uint32_t nvmf_iov_crc(uint32_t crc, const struct iovec *iov, int iovcnt, uint32_t off, uint32_t len)
{
	for (int i = 0; i < iovcnt && len; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= (uint32_t)l;
			continue;
		}
		l = LEAP_MIN(l - off, (size_t)len);
		crc = leap_crc32c(crc, (const uint8_t *)iov[i].iov_base + off, l);
		len -= (uint32_t)l;
		off = 0;
	}
	return crc;
}

struct nvmf_tx_ent *nvmf_tx_push(struct leap_nvmf_qpair *qp)
{
	if (qp->tx_tail - qp->tx_head == qp->tx_cap)
		return NULL;
	return &qp->tx[qp->tx_tail++ & (qp->tx_cap - 1)];
}

static bool h2c_has_room(const struct leap_nvmf_qpair *qp)
{
	return qp->tx_tail - qp->tx_head + 1u + qp->qdepth <= qp->tx_cap;
}

/* Queue H2CData PDUs for the request's current R2T; false if the ring ran out of room. */
static bool h2c_emit(struct leap_nvmf_qpair *qp, struct nvmf_req *req)
{
	uint32_t hd = qp->hdgst ? NVME_TCP_DIGEST_LEN : 0;
	uint32_t dd = qp->ddgst ? NVME_TCP_DIGEST_LEN : 0;
	uint32_t pdo =
	    (uint32_t)LEAP_ALIGN_UP(sizeof(struct nvme_tcp_h2c_data_pdu) + hd, qp->tx_align);

	while (req->h2c_next < req->r2t_end) {
		uint32_t chunk = LEAP_MIN(qp->maxh2cdata, req->r2t_end - req->h2c_next);
		struct nvme_tcp_h2c_data_pdu *h;
		struct nvmf_tx_ent *ent;

		if (!h2c_has_room(qp))
			return false;
		ent = nvmf_tx_push(qp);
		h = (struct nvme_tcp_h2c_data_pdu *)ent->hdr;
		memset(ent->hdr, 0, pdo);
		h->hdr.pdu_type = NVME_TCP_PDU_H2C_DATA;
		h->hdr.flags = (uint8_t)((hd ? NVME_TCP_F_HDGST : 0) | (dd ? NVME_TCP_F_DDGST : 0));
		/* LAST_PDU marks the end of this R2T's data, not of the command's. */
		if (req->h2c_next + chunk == req->r2t_end)
			h->hdr.flags |= NVME_TCP_F_DATA_LAST;
		h->hdr.hlen = sizeof(*h);
		h->hdr.pdo = (uint8_t)pdo;
		h->hdr.plen = pdo + chunk + dd;
		h->cccid = req->cid;
		h->ttag = req->ttag;
		h->datao = req->h2c_next;
		h->datal = chunk;
		if (hd)
			nvmf_put_digest(ent->hdr + sizeof(*h), leap_crc32c(0, h, sizeof(*h)));
		ent->hdr_len = pdo;
		ent->data_off = req->h2c_next;
		ent->data_len = chunk;
		ent->has_ddgst = dd != 0;
		if (dd)
			nvmf_put_digest(ent->ddgst, nvmf_iov_crc(0, req->iov, req->iovcnt,
								 req->h2c_next, chunk));
		ent->req = (uint16_t)(req - qp->reqs);
		req->tx_refs++;
		req->h2c_next += chunk;
	}
	return true;
}

void nvmf_tx_queue_h2c(struct leap_nvmf_qpair *qp, struct nvmf_req *req)
{
	uint16_t idx = (uint16_t)(req - qp->reqs);

	/* Earlier waiters keep their order: only emit directly when nobody waits. */
	if (qp->pend_head == NVMF_NO_REQ && h2c_emit(qp, req))
		return;
	req->pending = true;
	req->pend_next = NVMF_NO_REQ;
	if (qp->pend_tail == NVMF_NO_REQ)
		qp->pend_head = idx;
	else
		qp->reqs[qp->pend_tail].pend_next = idx;
	qp->pend_tail = idx;
}

static void run_pending(struct leap_nvmf_qpair *qp)
{
	while (qp->pend_head != NVMF_NO_REQ) {
		struct nvmf_req *req = &qp->reqs[qp->pend_head];

		if (!h2c_emit(qp, req))
			return;
		req->pending = false;
		qp->pend_head = req->pend_next;
		if (qp->pend_head == NVMF_NO_REQ)
			qp->pend_tail = NVMF_NO_REQ;
	}
}

void nvmf_tx_reset(struct leap_nvmf_qpair *qp)
{
	for (uint32_t i = qp->tx_head; i != qp->tx_tail; i++) {
		struct nvmf_tx_ent *ent = &qp->tx[i & (qp->tx_cap - 1)];

		if (ent->req != NVMF_NO_REQ)
			qp->reqs[ent->req].tx_refs--;
	}
	qp->tx_head = qp->tx_tail = 0;
	qp->tx_head_off = 0;
	while (qp->pend_head != NVMF_NO_REQ) {
		qp->reqs[qp->pend_head].pending = false;
		qp->pend_head = qp->reqs[qp->pend_head].pend_next;
	}
	qp->pend_tail = NVMF_NO_REQ;
}

struct iov_builder {
	struct iovec *iov;
	int n;
	int max;
	size_t skip; /* bytes of the head PDU already sent */
};

/* Append a segment, dropping what was already sent; false once the array is full. */
static bool add_seg(struct iov_builder *b, const void *base, size_t len)
{
	if (b->skip >= len) {
		b->skip -= len;
		return true;
	}
	if (b->n == b->max)
		return false;
	b->iov[b->n].iov_base = (uint8_t *)base + b->skip;
	b->iov[b->n].iov_len = len - b->skip;
	b->n++;
	b->skip = 0;
	return true;
}

static bool add_data(struct iov_builder *b, const struct nvmf_req *req, uint32_t off, uint32_t len)
{
	for (int i = 0; i < req->iovcnt && len; i++) {
		size_t l = req->iov[i].iov_len;

		if (off >= l) {
			off -= (uint32_t)l;
			continue;
		}
		l = LEAP_MIN(l - off, (size_t)len);
		if (!add_seg(b, (const uint8_t *)req->iov[i].iov_base + off, l))
			return false;
		len -= (uint32_t)l;
		off = 0;
	}
	return true;
}

int nvmf_tx_flush(struct leap_nvmf_qpair *qp)
{
	struct iov_builder b = { qp->tx_iov, 0, NVMF_TX_IOV_MAX, qp->tx_head_off };
	struct msghdr msg = { 0 };
	size_t off;
	ssize_t n;

	if (qp->tx_head == qp->tx_tail || qp->state == LEAP_NVMF_QP_CONNECTING ||
	    qp->state == LEAP_NVMF_QP_FAILED)
		return 0;
	for (uint32_t i = qp->tx_head; i != qp->tx_tail; i++) {
		const struct nvmf_tx_ent *ent = &qp->tx[i & (qp->tx_cap - 1)];

		if (!add_seg(&b, ent->hdr, ent->hdr_len))
			break;
		if (ent->data_len &&
		    !add_data(&b, &qp->reqs[ent->req], ent->data_off, ent->data_len))
			break;
		if (ent->has_ddgst && !add_seg(&b, ent->ddgst, NVME_TCP_DIGEST_LEN))
			break;
	}
	msg.msg_iov = b.iov;
	msg.msg_iovlen = (size_t)b.n;
	n = sendmsg(qp->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0) {
		int err = errno;

		if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ENOBUFS)
			return 0;
		nvmf_qp_fail(qp, -err, 0, 0, NULL, 0, "send to %s: %s", qp->peer, strerror(err));
		return qp->err;
	}
	qp->stats.send_calls++;
	qp->stats.bytes_tx += (uint64_t)n;

	off = qp->tx_head_off + (size_t)n;
	while (qp->tx_head != qp->tx_tail) {
		const struct nvmf_tx_ent *ent = &qp->tx[qp->tx_head & (qp->tx_cap - 1)];
		size_t total =
		    ent->hdr_len + ent->data_len + (ent->has_ddgst ? NVME_TCP_DIGEST_LEN : 0);

		if (off < total)
			break;
		off -= total;
		if (ent->req != NVMF_NO_REQ)
			qp->reqs[ent->req].tx_refs--;
		qp->tx_head++;
		qp->stats.pdus_tx++;
	}
	qp->tx_head_off = (uint32_t)off;
	run_pending(qp);
	return 0;
}
