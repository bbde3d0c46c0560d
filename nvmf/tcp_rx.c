// SPDX-License-Identifier: BSD-3-Clause
/*
 * The receive side of an NVMe/TCP queue pair. One recv() per poll pulls in
 * whatever the socket holds, often hundreds of PDUs, into a per-queue
 * buffer; a parser then walks every complete PDU in it. C2HData payload is
 * streamed into the request's iovecs as it arrives, so a PDU never has to
 * fit the buffer, and when a large payload is still due the recv becomes a
 * readv() straight into the caller's buffer (plus the receive buffer behind
 * it for whatever follows).
 *
 * Every field a target controls is checked before use: PDU type for the
 * queue's state, HLEN/PDO/PLEN for the type, digest flags against what was
 * negotiated, CIDs against in-flight slots and their generation, and data
 * offsets against the request's length *before* a byte is copied. A
 * violation fails the queue with the TermReq FES the spec names.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "leapio/common.h"
#include "leapio/crc32c.h"
#include "nvmf_internal.h"

#define RX_DIRECT_IOV 64

static const char *fes_str(uint16_t fes)
{
	switch (fes) {
	case NVME_TCP_FES_INVALID_HEADER_FIELD:
		return "invalid PDU header field";
	case NVME_TCP_FES_PDU_SEQUENCE_ERROR:
		return "PDU sequence error";
	case NVME_TCP_FES_HDGST_ERROR:
		return "header digest error";
	case NVME_TCP_FES_DATA_OUT_OF_RANGE:
		return "data transfer out of range";
	case NVME_TCP_FES_DATA_LIMIT_EXCEEDED:
		return "data transfer limit exceeded";
	case NVME_TCP_FES_UNSUPPORTED_PARAM:
		return "unsupported parameter";
	default:
		return "unknown";
	}
}

/* Copy `len` bytes to offset `off` of the request's data; the caller checked the bounds. */
static void copy_to_req(const struct nvmf_req *req, uint32_t off, const uint8_t *src, uint32_t len)
{
	for (int i = 0; i < req->iovcnt && len; i++) {
		size_t l = req->iov[i].iov_len;

		if (off >= l) {
			off -= (uint32_t)l;
			continue;
		}
		l = LEAP_MIN(l - off, (size_t)len);
		memcpy((uint8_t *)req->iov[i].iov_base + off, src, l);
		src += l;
		len -= (uint32_t)l;
		off = 0;
	}
}

/* The iovecs covering [off, off + len) of the request, at most `max`; returns the count. */
static int req_slice(const struct nvmf_req *req, uint32_t off, uint32_t len, struct iovec *out,
		     int max, uint32_t *covered)
{
	int n = 0;

	*covered = 0;
	for (int i = 0; i < req->iovcnt && len && n < max; i++) {
		size_t l = req->iov[i].iov_len;

		if (off >= l) {
			off -= (uint32_t)l;
			continue;
		}
		l = LEAP_MIN(l - off, (size_t)len);
		out[n].iov_base = (uint8_t *)req->iov[i].iov_base + off;
		out[n].iov_len = l;
		n++;
		*covered += (uint32_t)l;
		len -= (uint32_t)l;
		off = 0;
	}
	return n;
}

/* The whole C2HData payload is in (and its digest checked, if any). */
static void c2h_done(struct leap_nvmf_qpair *qp)
{
	struct nvmf_req *req = &qp->reqs[qp->rx_req];
	struct nvme_cqe cqe;

	qp->rx_state = NVMF_RX_HDR;
	if (!(qp->rx_flags & NVME_TCP_F_DATA_SUCCESS))
		return;
	/* SUCCESS: no CapsuleResp follows; this PDU is the completion (TP 8000 3.6.2.8). */
	memset(&cqe, 0, sizeof(cqe));
	cqe.cid = req->cid;
	cqe.sqid = qp->qid;
	cqe.sqhd = qp->sqhd;
	nvmf_qp_complete(qp, req, &cqe);
}

static void data_advance(struct leap_nvmf_qpair *qp, uint32_t n)
{
	qp->rx_off += n;
	qp->rx_left -= n;
	qp->reqs[qp->rx_req].xfer += n;
	if (qp->rx_left == 0) {
		if (qp->ddgst)
			qp->rx_state = NVMF_RX_DDGST;
		else
			c2h_done(qp);
	}
}

static void handle_rsp(struct leap_nvmf_qpair *qp, const uint8_t *p)
{
	struct nvme_cqe cqe;
	struct nvmf_req *req;

	memcpy(&cqe, p + sizeof(struct nvme_tcp_common_hdr), sizeof(cqe));
	req = nvmf_qp_req_lookup(qp, cqe.cid);
	if (!req) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_INVALID_HEADER_FIELD,
			     offsetof(struct nvme_tcp_rsp_pdu, cqe) +
				 offsetof(struct nvme_cqe, cid),
			     p, sizeof(struct nvme_tcp_rsp_pdu),
			     "CapsuleResp for CID 0x%04x, which is not in flight", cqe.cid);
		return;
	}
	/*
	 * A command cannot complete while its data is still leaving this host:
	 * the callback would let the caller reuse a buffer we are sending from.
	 */
	if (req->tx_refs || req->pending || req->h2c_next < req->r2t_end) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, p,
			     sizeof(struct nvme_tcp_rsp_pdu),
			     "CapsuleResp for CID 0x%04x before its data was sent", cqe.cid);
		return;
	}
	qp->sqhd = cqe.sqhd;
	nvmf_qp_complete(qp, req, &cqe);
}

static void handle_r2t(struct leap_nvmf_qpair *qp, const uint8_t *p)
{
	struct nvme_tcp_r2t_pdu r;
	struct nvmf_req *req;

	memcpy(&r, p, sizeof(r));
	req = nvmf_qp_req_lookup(qp, r.cccid);
	if (!req) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_INVALID_HEADER_FIELD,
			     offsetof(struct nvme_tcp_r2t_pdu, cccid), p, sizeof(r),
			     "R2T for CID 0x%04x, which is not in flight", r.cccid);
		return;
	}
	if (req->dir != NVMF_DIR_H2C || req->icd) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, p, sizeof(r),
			     "R2T for CID 0x%04x, which has no data to send by R2T", r.cccid);
		return;
	}
	if (r.r2tl == 0) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_INVALID_HEADER_FIELD,
			     offsetof(struct nvme_tcp_r2t_pdu, r2tl), p, sizeof(r),
			     "R2T with R2TL 0 for CID 0x%04x", r.cccid);
		return;
	}
	if ((uint64_t)r.r2to + r.r2tl > req->len) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_DATA_OUT_OF_RANGE, 0, p, sizeof(r),
			     "R2T [%u, +%u) outside the %u-byte buffer of CID 0x%04x", r.r2to,
			     r.r2tl, req->len, r.cccid);
		return;
	}
	/* MAXR2T 0: one R2T at a time, and its data must be all sent before the next. */
	if (req->tx_refs || req->pending || req->h2c_next < req->r2t_end) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_DATA_LIMIT_EXCEEDED, 0, p, sizeof(r),
			     "second R2T for CID 0x%04x while one is outstanding", r.cccid);
		return;
	}
	if (r.r2to != req->xfer) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, p, sizeof(r),
			     "R2T offset %u for CID 0x%04x, expected %u", r.r2to, r.cccid,
			     req->xfer);
		return;
	}
	req->ttag = r.ttag;
	req->h2c_next = r.r2to;
	req->r2t_end = r.r2to + r.r2tl;
	req->xfer = req->r2t_end;
	nvmf_tx_queue_h2c(qp, req);
}

/* A C2HData header; on success the parser continues with its payload. */
static void handle_c2h(struct leap_nvmf_qpair *qp, const uint8_t *p)
{
	struct nvme_tcp_c2h_data_pdu c;
	uint32_t dd = qp->ddgst ? NVME_TCP_DIGEST_LEN : 0;
	struct nvmf_req *req;

	memcpy(&c, p, sizeof(c));
	req = nvmf_qp_req_lookup(qp, c.cccid);
	if (!req) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_INVALID_HEADER_FIELD,
			     offsetof(struct nvme_tcp_c2h_data_pdu, cccid), p, sizeof(c),
			     "C2HData for CID 0x%04x, which is not in flight", c.cccid);
		return;
	}
	if (req->dir != NVMF_DIR_C2H) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_INVALID_HEADER_FIELD,
			     offsetof(struct nvme_tcp_c2h_data_pdu, cccid), p, sizeof(c),
			     "C2HData for CID 0x%04x, which reads no data", c.cccid);
		return;
	}
	if (c.datal == 0 || (uint64_t)c.hdr.pdo + c.datal + dd != c.hdr.plen) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_INVALID_HEADER_FIELD,
			     offsetof(struct nvme_tcp_c2h_data_pdu, datal), p, sizeof(c),
			     "C2HData DATAL %u does not match PLEN %u", c.datal, c.hdr.plen);
		return;
	}
	/* The one check that keeps a target from writing outside the caller's buffer. */
	if ((uint64_t)c.datao + c.datal > req->len) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_DATA_OUT_OF_RANGE, 0, p, sizeof(c),
			     "C2HData [%u, +%u) outside the %u-byte buffer of CID 0x%04x", c.datao,
			     c.datal, req->len, c.cccid);
		return;
	}
	if (c.datao != req->xfer) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, p, sizeof(c),
			     "C2HData offset %u for CID 0x%04x, expected %u (data out of order)",
			     c.datao, c.cccid, req->xfer);
		return;
	}
	if ((c.hdr.flags & NVME_TCP_F_DATA_SUCCESS) &&
	    (!(c.hdr.flags & NVME_TCP_F_DATA_LAST) || c.datao + c.datal != req->len)) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_INVALID_HEADER_FIELD,
			     offsetof(struct nvme_tcp_common_hdr, flags), p, sizeof(c),
			     "C2HData SUCCESS for CID 0x%04x before the last byte of data",
			     c.cccid);
		return;
	}
	if (req->tx_refs) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, p, sizeof(c),
			     "C2HData for CID 0x%04x before its command was sent", c.cccid);
		return;
	}
	qp->rx_req = (uint16_t)(req - qp->reqs);
	qp->rx_flags = c.hdr.flags;
	qp->rx_off = c.datao;
	qp->rx_left = c.datal;
	qp->rx_datal = c.datal;
	qp->rx_crc = 0;
	qp->rx_state = NVMF_RX_DATA;
}

static void handle_term(struct leap_nvmf_qpair *qp, const uint8_t *p)
{
	struct nvme_tcp_term_req t;

	memcpy(&t, p, sizeof(t));
	/* The target is hanging up: no TermReq back. */
	nvmf_qp_fail(qp, -ECONNRESET, 0, 0, NULL, 0,
		     "target sent C2HTermReq: FES %u (%s), FEI 0x%x", t.fes, fes_str(t.fes), t.fei);
}

/*
 * Validate the common header against the queue's state and return how many
 * bytes of the PDU must be buffered before it can be handled: the header
 * and its digest (C2HData: up to PDO), or the whole PDU for ICResp and
 * TermReq. 0 means the queue has failed.
 */
static uint32_t hdr_need(struct leap_nvmf_qpair *qp, const struct nvme_tcp_common_hdr *ch)
{
	uint32_t hd = qp->hdgst ? NVME_TCP_DIGEST_LEN : 0;
	uint32_t dd = qp->ddgst ? NVME_TCP_DIGEST_LEN : 0;
	uint8_t want_flags = hd ? NVME_TCP_F_HDGST : 0;
	uint32_t hlen = 0;
	const char *name = NULL;

	if (qp->state == LEAP_NVMF_QP_ICREQ_SENT && ch->pdu_type != NVME_TCP_PDU_ICRESP &&
	    ch->pdu_type != NVME_TCP_PDU_C2H_TERM_REQ) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, ch, sizeof(*ch),
			     "PDU type 0x%02x before ICResp", ch->pdu_type);
		return 0;
	}
	switch (ch->pdu_type) {
	case NVME_TCP_PDU_ICRESP:
		if (qp->state != LEAP_NVMF_QP_ICREQ_SENT) {
			nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, ch,
				     sizeof(*ch), "a second ICResp");
			return 0;
		}
		if (ch->hlen != sizeof(struct nvme_tcp_icresp) || ch->pdo != 0 ||
		    ch->plen != sizeof(struct nvme_tcp_icresp) || ch->flags != 0) {
			nvmf_qp_fail(
			    qp, -EPROTO, NVME_TCP_FES_INVALID_HEADER_FIELD, 2, ch, sizeof(*ch),
			    "ICResp with flags 0x%x HLEN %u PDO %u PLEN %u (want 0/128/0/128)",
			    ch->flags, ch->hlen, ch->pdo, ch->plen);
			return 0;
		}
		return ch->plen;
	case NVME_TCP_PDU_C2H_TERM_REQ:
		if (ch->hlen != sizeof(struct nvme_tcp_term_req) ||
		    ch->plen < sizeof(struct nvme_tcp_term_req) ||
		    ch->plen > NVME_TCP_TERM_REQ_PLEN_MAX) {
			/* Even a malformed TermReq ends the connection; say what we saw. */
			nvmf_qp_fail(qp, -ECONNRESET, 0, 0, NULL, 0,
				     "target sent a malformed C2HTermReq (HLEN %u PLEN %u)",
				     ch->hlen, ch->plen);
			return 0;
		}
		return ch->plen;
	case NVME_TCP_PDU_CAPSULE_RESP:
		hlen = sizeof(struct nvme_tcp_rsp_pdu);
		name = "CapsuleResp";
		break;
	case NVME_TCP_PDU_R2T:
		hlen = sizeof(struct nvme_tcp_r2t_pdu);
		name = "R2T";
		break;
	case NVME_TCP_PDU_C2H_DATA:
		hlen = sizeof(struct nvme_tcp_c2h_data_pdu);
		want_flags |= dd ? NVME_TCP_F_DDGST : 0;
		if (ch->hlen != hlen || ch->pdo != hlen + hd || ch->plen <= hlen + hd + dd ||
		    (ch->flags & (NVME_TCP_F_HDGST | NVME_TCP_F_DDGST)) != want_flags) {
			nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_INVALID_HEADER_FIELD, 1, ch,
				     sizeof(*ch),
				     "C2HData with flags 0x%x HLEN %u PDO %u PLEN %u "
				     "(digests: header %d data %d)",
				     ch->flags, ch->hlen, ch->pdo, ch->plen, qp->hdgst, qp->ddgst);
			return 0;
		}
		return hlen + hd;
	default:
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_INVALID_HEADER_FIELD, 0, ch, sizeof(*ch),
			     "unexpected PDU type 0x%02x from the target", ch->pdu_type);
		return 0;
	}
	/* CapsuleResp and R2T: a fixed header, its digest, nothing else. */
	if (ch->hlen != hlen || ch->pdo != 0 || ch->plen != hlen + hd || ch->flags != want_flags) {
		nvmf_qp_fail(qp, -EPROTO, NVME_TCP_FES_INVALID_HEADER_FIELD, 1, ch, sizeof(*ch),
			     "%s with flags 0x%x HLEN %u PDO %u PLEN %u (header digest %d)", name,
			     ch->flags, ch->hlen, ch->pdo, ch->plen, qp->hdgst);
		return 0;
	}
	return hlen + hd;
}

/* Handle one complete header at p (`need` bytes buffered); returns bytes consumed or 0. */
static uint32_t handle_pdu(struct leap_nvmf_qpair *qp, const uint8_t *p,
			   const struct nvme_tcp_common_hdr *ch, uint32_t need)
{
	if (qp->hdgst && ch->pdu_type != NVME_TCP_PDU_ICRESP &&
	    ch->pdu_type != NVME_TCP_PDU_C2H_TERM_REQ) {
		uint32_t want = leap_crc32c(0, p, ch->hlen), got = nvmf_get_le32(p + ch->hlen);

		if (want != got) {
			nvmf_qp_fail(qp, -EBADMSG, NVME_TCP_FES_HDGST_ERROR, 0, p, ch->hlen,
				     "header digest mismatch on PDU type 0x%02x: got 0x%08x, "
				     "computed 0x%08x",
				     ch->pdu_type, got, want);
			return 0;
		}
	}
	qp->stats.pdus_rx++;
	switch (ch->pdu_type) {
	case NVME_TCP_PDU_ICRESP: {
		struct nvme_tcp_icresp r;

		memcpy(&r, p, sizeof(r));
		nvmf_qp_icresp(qp, &r);
		break;
	}
	case NVME_TCP_PDU_C2H_TERM_REQ:
		handle_term(qp, p);
		break;
	case NVME_TCP_PDU_CAPSULE_RESP:
		handle_rsp(qp, p);
		break;
	case NVME_TCP_PDU_R2T:
		handle_r2t(qp, p);
		break;
	case NVME_TCP_PDU_C2H_DATA:
		handle_c2h(qp, p);
		break;
	}
	return qp->state == LEAP_NVMF_QP_FAILED ? 0 : need;
}

/* Walk everything buffered; stop at an incomplete PDU part or a failure. */
static void parse(struct leap_nvmf_qpair *qp)
{
	while (qp->state != LEAP_NVMF_QP_FAILED) {
		const uint8_t *p = qp->rx_buf + qp->rx_rd;
		uint32_t avail = qp->rx_wr - qp->rx_rd, need, n;

		switch (qp->rx_state) {
		case NVMF_RX_HDR: {
			/* The buffer has no alignment to offer: read fields from copies. */
			struct nvme_tcp_common_hdr ch;

			if (avail < sizeof(ch))
				return;
			memcpy(&ch, p, sizeof(ch));
			need = hdr_need(qp, &ch);
			if (!need || avail < need)
				return;
			n = handle_pdu(qp, p, &ch, need);
			if (!n)
				return;
			qp->rx_rd += n;
			break;
		}
		case NVMF_RX_DATA:
			n = LEAP_MIN(avail, qp->rx_left);
			if (!n)
				return;
			copy_to_req(&qp->reqs[qp->rx_req], qp->rx_off, p, n);
			if (qp->ddgst)
				qp->rx_crc = leap_crc32c(qp->rx_crc, p, n);
			qp->rx_rd += n;
			data_advance(qp, n);
			break;
		case NVMF_RX_DDGST:
			if (avail < NVME_TCP_DIGEST_LEN)
				return;
			qp->rx_rd += NVME_TCP_DIGEST_LEN;
			if (nvmf_get_le32(p) != qp->rx_crc) {
				/*
				 * Not fatal (TP 8000 7.4.6.2): the PDU framing is intact; the
				 * command completes with a transient transport error.
				 */
				qp->reqs[qp->rx_req].ddgst_err = true;
				qp->stats.ddgst_errors++;
			}
			c2h_done(qp);
			break;
		}
	}
}

int nvmf_rx_process(struct leap_nvmf_qpair *qp)
{
	struct iovec v[RX_DIRECT_IOV + 1];
	uint32_t direct = 0;
	int n = 0;
	ssize_t r;

	/* Unparsed bytes are always a partial PDU part; move them to the front. */
	if (qp->rx_rd) {
		memmove(qp->rx_buf, qp->rx_buf + qp->rx_rd, qp->rx_wr - qp->rx_rd);
		qp->rx_wr -= qp->rx_rd;
		qp->rx_rd = 0;
	}
	if (qp->rx_state == NVMF_RX_DATA && qp->rx_wr == 0 && qp->rx_left >= NVMF_DIRECT_MIN)
		n = req_slice(&qp->reqs[qp->rx_req], qp->rx_off, qp->rx_left, v, RX_DIRECT_IOV,
			      &direct);
	/*
	 * After parse() at most a partial header (< 152 bytes) is left, so the
	 * buffer always has room; a zero-length read would look like EOF.
	 */
	if (leap_unlikely(qp->rx_wr == qp->rx_cap))
		return 0;
	v[n].iov_base = qp->rx_buf + qp->rx_wr;
	v[n].iov_len = qp->rx_cap - qp->rx_wr;
	n++;
	r = n == 1 ? recv(qp->fd, v[0].iov_base, v[0].iov_len, MSG_DONTWAIT) : readv(qp->fd, v, n);
	if (r < 0) {
		int err = errno;

		if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
			return 0;
		nvmf_qp_fail(qp, -err, 0, 0, NULL, 0, "receive from %s: %s", qp->peer,
			     strerror(err));
		return qp->err;
	}
	if (r == 0) {
		nvmf_qp_fail(qp, -ECONNRESET, 0, 0, NULL, 0, "connection closed by the target");
		return qp->err;
	}
	qp->stats.recv_calls++;
	qp->stats.bytes_rx += (uint64_t)r;
	if (direct) {
		/* Bytes that landed in the caller's buffer: digest them, then move on. */
		uint32_t d = (uint32_t)LEAP_MIN((size_t)r, (size_t)direct);
		struct nvmf_req *req = &qp->reqs[qp->rx_req];

		if (qp->ddgst)
			qp->rx_crc = nvmf_iov_crc(qp->rx_crc, req->iov, req->iovcnt, qp->rx_off, d);
		r -= d;
		data_advance(qp, d);
	}
	qp->rx_wr += (uint32_t)r;
	parse(qp);
	return qp->state == LEAP_NVMF_QP_FAILED ? qp->err : 0;
}
