// SPDX-License-Identifier: BSD-3-Clause
/*
 * One NVMe/TCP queue's commands. The shared part (slots, responses,
 * C2HData) serves both the listener thread's discovery queues and the
 * reactors' controller queues; the rest is a controller queue on its
 * reactor and the transport ops the controller model calls there.
 *
 * A command arrives as a CapsuleCmd and takes one pre-allocated slot (a
 * leap_req plus a TCP_SLOT_BUF data buffer). Fabrics commands (Property
 * Get/Set, Disconnect) are answered here; everything else goes to
 * leap_ctrl_submit(), with its data already in place when the controller
 * asks for it through map_data: in-capsule data is copied to the slot as
 * the capsule arrives; a write with a Transport Data Block gets one R2T for
 * its whole length and is submitted only once every H2CData byte has
 * landed in the slot; a read's buffer is the slot, sent as C2HData when
 * the command completes (with the SUCCESS flag and no CapsuleResp when the
 * host disabled SQ flow control, the only case where the spec lets the
 * response go). Each slot sends from its own header and response buffers,
 * so nothing is allocated per command, and a slot is released only once
 * the last byte that refers to it has left.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "leapio/common.h"
#include "leapio/crc32c.h"
#include "leapio/log.h"
#include "backend/bdev.h"
#include "core/reactor.h"
#include "frontend/tcp/tcp_internal.h"

/* ---- shared: queue memory, responses, C2HData ------------------------------- */

struct tcp_queue *tcp_queue_new(struct tcp_listener *l, int fd, const char *peer)
{
	struct tcp_queue *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	/* Before the Connect: an ICResp and one response at most. */
	if (tcp_conn_init(&q->c, fd, 4)) {
		q->c.fd = -1;
		tcp_conn_fini(&q->c);
		free(q);
		return NULL;
	}
	q->l = l;
	q->stage = TCP_Q_ICREQ;
	snprintf(q->c.peer, sizeof(q->c.peer), "%s", peer);
	return q;
}

int tcp_queue_slots_init(struct tcp_queue *q, struct leap_ctrl *ctrl, uint32_t depth)
{
	uint32_t ring = 8;
	int err;

	err = leap_qpair_init(&q->qp, ctrl, q->qid, q->qid, depth, depth);
	if (err)
		return err;
	q->slots = calloc(depth, sizeof(*q->slots));
	if (!q->slots)
		return -ENOMEM;
	/* Page aligned (direct-I/O backends use it as is); only touched pages become memory. */
	q->data_len = (size_t)depth * TCP_SLOT_BUF;
	q->data = mmap(NULL, q->data_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (q->data == MAP_FAILED) {
		q->data = NULL;
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < depth; i++)
		q->slots[i].buf = q->data + (size_t)i * TCP_SLOT_BUF;
	/* Per slot at most an R2T, a C2HData and a response queued at once, plus our own PDUs. */
	while (ring < 4 * depth + 8)
		ring <<= 1;
	q->depth = depth;
	return tcp_conn_tx_resize(&q->c, ring);
}

void tcp_queue_free(struct tcp_queue *q)
{
	if (!q)
		return;
	tcp_disc_fini(q);
	leap_qpair_fini(&q->qp);
	if (q->data)
		munmap(q->data, q->data_len);
	free(q->slots);
	tcp_conn_fini(&q->c);
	free(q);
}

uint32_t tcp_resp_fill(const struct tcp_queue *q, uint8_t *buf, uint16_t cid, uint16_t status,
		       uint32_t dw0, uint32_t dw1)
{
	struct nvme_tcp_rsp_pdu *r = (struct nvme_tcp_rsp_pdu *)buf;

	memset(r, 0, sizeof(*r));
	r->hdr.pdu_type = NVME_TCP_PDU_CAPSULE_RESP;
	r->hdr.flags = q->c.hdgst ? NVME_TCP_F_HDGST : 0;
	r->hdr.hlen = sizeof(*r);
	r->hdr.plen = sizeof(*r) + (q->c.hdgst ? NVME_TCP_DIGEST_LEN : 0);
	r->cqe.dw0 = dw0;
	r->cqe.dw1 = dw1;
	/* With SQ flow control disabled SQHD is reserved. */
	r->cqe.sqhd = q->sqflow_off ? 0 : q->sqhd;
	r->cqe.sqid = q->qid;
	r->cqe.cid = cid;
	/* Fabrics CQEs carry no phase tag. */
	r->cqe.status = nvme_cqe_status(status, 0);
	return tcp_hdr_finish(&q->c, r, sizeof(*r));
}

int tcp_queue_respond(struct tcp_queue *q, struct leap_req *req, uint16_t status, uint32_t dw0,
		      uint32_t dw1)
{
	struct tcp_slot *s = tcp_slot_of(q, req);
	uint32_t len = tcp_resp_fill(q, s->resp, req->sqe.cid, status, dw0, dw1);

	return tcp_conn_send(&q->c, s->resp, len, NULL, 0, NULL, req);
}

int tcp_queue_c2h(struct tcp_queue *q, struct leap_req *req, uint16_t status, uint32_t dw0)
{
	struct tcp_slot *s = tcp_slot_of(q, req);
	struct nvme_tcp_c2h_data_pdu *d = (struct nvme_tcp_c2h_data_pdu *)s->hdr;
	uint32_t align = ((uint32_t)q->c.hpda + 1) * 4, hlen, pdo;
	bool success = q->sqflow_off && status == 0;
	int err;

	memset(d, 0, sizeof(*d));
	d->hdr.pdu_type = NVME_TCP_PDU_C2H_DATA;
	d->hdr.flags = NVME_TCP_F_DATA_LAST | (success ? NVME_TCP_F_DATA_SUCCESS : 0) |
		       (q->c.hdgst ? NVME_TCP_F_HDGST : 0) | (q->c.ddgst ? NVME_TCP_F_DDGST : 0);
	d->hdr.hlen = sizeof(*d);
	hlen = sizeof(*d) + (q->c.hdgst ? NVME_TCP_DIGEST_LEN : 0);
	/* The host asked (HPDA) for its data at this alignment: pad after the header. */
	pdo = LEAP_ALIGN_UP(hlen, align);
	d->hdr.pdo = (uint8_t)pdo;
	d->hdr.plen = pdo + s->c2h_len + (q->c.ddgst ? NVME_TCP_DIGEST_LEN : 0);
	d->cccid = req->sqe.cid;
	d->datao = 0;
	d->datal = s->c2h_len;
	tcp_hdr_finish(&q->c, d, sizeof(*d));
	memset(s->hdr + hlen, 0, pdo - hlen);
	if (q->c.ddgst) {
		uint32_t crc = leap_crc32c(0, s->buf, s->c2h_len);

		memcpy(&s->ddgst, &crc, sizeof(crc));
	}
	err = tcp_conn_send(&q->c, s->hdr, pdo, s->buf, s->c2h_len, q->c.ddgst ? &s->ddgst : NULL,
			    success ? req : NULL);
	if (err || success)
		return err;
	return tcp_queue_respond(q, req, status, dw0, 0);
}

struct leap_req *tcp_queue_slot_get(struct tcp_queue *q, const struct nvme_tcp_cmd_pdu *pdu)
{
	struct leap_req *req = leap_qpair_req_get(&q->qp);
	struct tcp_slot *s;

	if (leap_unlikely(!req)) {
		/* The host has more commands out than the SQ it asked for holds. */
		tcp_conn_fatal(&q->c, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, pdu, sizeof(*pdu),
			       "more than %u commands outstanding on queue %u", q->depth, q->qid);
		return NULL;
	}
	s = tcp_slot_of(q, req);
	s->state = TCP_SLOT_EXEC;
	s->ddgst_bad = false;
	s->len = 0;
	s->done = 0;
	s->c2h_len = 0;
	s->icd_len = 0;
	memcpy(&req->sqe, &pdu->sqe, sizeof(req->sqe));
	if (++q->sqhd == q->depth)
		q->sqhd = 0;
	return req;
}

uint32_t tcp_queue_drop(struct tcp_queue *q)
{
	struct tcp_conn *c = &q->c;

	/* Nothing more will be sent: release what queued PDUs held. */
	for (uint32_t i = c->tx_head; i != c->tx_tail; i++) {
		struct tcp_tx *e = &c->tx[i & c->tx_mask];

		if (e->put)
			leap_qpair_req_put(e->put->qp, e->put);
		e->put = NULL;
	}
	c->tx_head = c->tx_tail;
	c->tx_off = 0;
	for (uint32_t i = 0; i < q->depth; i++)
		if (q->slots[i].state == TCP_SLOT_H2C && q->qp.reqs[i].in_use) {
			q->slots[i].state = TCP_SLOT_FREE;
			leap_qpair_req_put(&q->qp, &q->qp.reqs[i]);
		}
	q->n_h2c = 0;
	return q->qp.busy;
}

/* ---- a controller's queue: commands ------------------------------------------ */

static int fail(struct tcp_queue *q, struct leap_req *req, uint16_t status)
{
	int err = tcp_queue_respond(q, req, status, 0, 0);

	if (err)
		return tcp_conn_fatal(&q->c, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, NULL, 0,
				      "send queue full");
	return 0;
}

static int fabrics(struct tcp_queue *q, struct leap_req *req)
{
	const struct nvmf_property_set_cmd *p = (const void *)&req->sqe;
	struct leap_ctrl *ctrl = q->assoc->ctrl;
	uint32_t size = (p->attrib & 7) == NVMF_PROP_SIZE_8 ? 8 : 4;
	uint64_t val = 0;
	uint16_t st;
	int err;

	switch (p->fctype) {
	case NVMF_FCTYPE_PROPERTY_GET:
	case NVMF_FCTYPE_PROPERTY_SET:
		/* Properties live on the admin queue (NVMe-oF 1.1, figure 12). */
		if (q->qid)
			return fail(q, req, TCP_FABRICS_ST(INVALID_QUEUE_TYPE) | NVME_CQE_DNR);
		if ((p->attrib & 7) > NVMF_PROP_SIZE_8)
			return fail(q, req, TCP_ST(GENERIC, INVALID_FIELD) | NVME_CQE_DNR);
		if (p->fctype == NVMF_FCTYPE_PROPERTY_SET)
			st = leap_ctrl_prop_set(ctrl, p->ofst, size, p->value);
		else
			st = leap_ctrl_prop_get(ctrl, p->ofst, size, &val);
		err = tcp_queue_respond(q, req, st, (uint32_t)val, (uint32_t)(val >> 32));
		break;
	case NVMF_FCTYPE_DISCONNECT:
		/* Answered, then the queue goes (the admin queue: the association). */
		err = tcp_queue_respond(q, req, 0, 0, 0);
		q->c.closing = true;
		snprintf(q->c.why, sizeof(q->c.why), "Disconnect");
		break;
	case NVMF_FCTYPE_CONNECT:
		return fail(q, req, TCP_ST(GENERIC, COMMAND_SEQUENCE_ERROR) | NVME_CQE_DNR);
	default:
		return fail(q, req, TCP_ST(GENERIC, INVALID_OPCODE) | NVME_CQE_DNR);
	}
	if (err)
		return tcp_conn_fatal(&q->c, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, NULL, 0,
				      "send queue full");
	return 0;
}

/* R2T for the write's whole length: MAXR2T (one per command) is always respected. */
static int send_r2t(struct tcp_queue *q, struct leap_req *req, struct tcp_slot *s)
{
	struct nvme_tcp_r2t_pdu *r = (struct nvme_tcp_r2t_pdu *)s->hdr;

	memset(r, 0, sizeof(*r));
	r->hdr.pdu_type = NVME_TCP_PDU_R2T;
	r->hdr.flags = q->c.hdgst ? NVME_TCP_F_HDGST : 0;
	r->hdr.hlen = sizeof(*r);
	r->hdr.plen = sizeof(*r) + (q->c.hdgst ? NVME_TCP_DIGEST_LEN : 0);
	r->cccid = req->sqe.cid;
	r->ttag = req->slot;
	r->r2to = 0;
	r->r2tl = s->len;
	s->state = TCP_SLOT_H2C;
	s->cid = req->sqe.cid;
	q->n_h2c++;
	if (tcp_conn_send(&q->c, s->hdr, tcp_hdr_finish(&q->c, r, sizeof(*r)), NULL, 0, NULL, NULL))
		return tcp_conn_fatal(&q->c, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, NULL, 0,
				      "send queue full");
	return 0;
}

int tcp_queue_capsule(struct tcp_queue *q, const struct nvme_tcp_cmd_pdu *pdu, const uint8_t *icd,
		      uint32_t icd_len, bool ddgst_bad)
{
	struct leap_ctrl *ctrl = q->assoc->ctrl;
	const struct nvme_sgl_desc *sgl;
	struct leap_req *req;
	struct tcp_slot *s;
	bool sgl_psdt;

	req = tcp_queue_slot_get(q, pdu);
	if (!req)
		return -EPROTO;
	s = tcp_slot_of(q, req);
	/* The capsule's data was damaged in flight: the host may retry (TP 8000 7.4.6.2). */
	if (ddgst_bad)
		return fail(q, req, TCP_ST(GENERIC, TRANSIENT_TRANSPORT_ERROR));
	if (req->sqe.opc == NVME_OPC_FABRIC)
		return fabrics(q, req);
	/* Queues come and go by Connect on fabrics; these admin opcodes do not exist here. */
	if (q->qid == 0 &&
	    (req->sqe.opc == NVME_OPC_CREATE_IO_SQ || req->sqe.opc == NVME_OPC_CREATE_IO_CQ ||
	     req->sqe.opc == NVME_OPC_DELETE_IO_SQ || req->sqe.opc == NVME_OPC_DELETE_IO_CQ))
		return fail(q, req, TCP_ST(GENERIC, INVALID_OPCODE) | NVME_CQE_DNR);
	/* Only Fabrics commands before CC.EN = 1 and CSTS.RDY = 1. */
	if (leap_unlikely(!leap_ctrl_ready(ctrl) || q->assoc->io_reset))
		return fail(q, req, TCP_ST(GENERIC, COMMAND_SEQUENCE_ERROR));
	sgl = tcp_sgl(&req->sqe);
	sgl_psdt = ((req->sqe.flags >> NVME_SQE_PSDT_SHIFT) & 3) == NVMF_SQE_PSDT_SGL;
	if (icd_len) {
		if (!sgl_psdt || sgl->type != NVMF_TCP_SGL_ICD)
			return fail(q, req,
				    TCP_ST(GENERIC, SGL_DESCRIPTOR_TYPE_INVALID) | NVME_CQE_DNR);
		if (sgl->addr > icd_len)
			return fail(q, req, TCP_ST(GENERIC, SGL_OFFSET_INVALID) | NVME_CQE_DNR);
		if (sgl->length > icd_len - sgl->addr)
			return fail(q, req,
				    TCP_ST(GENERIC, DATA_SGL_LENGTH_INVALID) | NVME_CQE_DNR);
		memcpy(s->buf, icd + sgl->addr, sgl->length);
		s->len = sgl->length;
		s->icd_len = sgl->length;
		s->done = sgl->length;
	} else if (sgl_psdt && sgl->type == NVMF_TCP_SGL_TRANSPORT && sgl->length &&
		   nvmf_sqe_data_dir(&req->sqe) == NVMF_DIR_H2C) {
		if (sgl->length > TCP_SLOT_BUF)
			return fail(q, req,
				    TCP_ST(GENERIC, DATA_SGL_LENGTH_INVALID) | NVME_CQE_DNR);
		s->len = sgl->length;
		return send_r2t(q, req, s);
	}
	leap_ctrl_submit(ctrl, req, q->qid == 0);
	return 0;
}

/* The H2CData header names an R2T we sent: which slot, and where its data goes. */
static uint8_t *live_h2c(struct tcp_queue *q, const struct nvme_tcp_h2c_data_pdu *h)
{
	struct tcp_slot *s;

	if (h->ttag >= q->depth || q->slots[h->ttag].state != TCP_SLOT_H2C) {
		tcp_conn_fatal(&q->c, NVME_TCP_FES_INVALID_HEADER_FIELD,
			       offsetof(struct nvme_tcp_h2c_data_pdu, ttag), h, sizeof(*h),
			       "H2CData with TTAG %u: no R2T outstanding", h->ttag);
		return NULL;
	}
	s = &q->slots[h->ttag];
	if (h->cccid != s->cid) {
		tcp_conn_fatal(&q->c, NVME_TCP_FES_INVALID_HEADER_FIELD,
			       offsetof(struct nvme_tcp_h2c_data_pdu, cccid), h, sizeof(*h),
			       "H2CData CCCID %#x for TTAG %u, whose command is %#x", h->cccid,
			       h->ttag, s->cid);
		return NULL;
	}
	if (h->datao > s->len || h->datal > s->len - h->datao) {
		tcp_conn_fatal(&q->c, NVME_TCP_FES_DATA_OUT_OF_RANGE, 0, h, sizeof(*h),
			       "H2CData [%u, +%u) outside the R2T's %u bytes", h->datao, h->datal,
			       s->len);
		return NULL;
	}
	if (h->datao != s->done ||
	    !!(h->hdr.flags & NVME_TCP_F_DATA_LAST) != (h->datao + h->datal == s->len)) {
		tcp_conn_fatal(&q->c, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, h, sizeof(*h),
			       "H2CData at offset %u (expected %u) or LAST flag out of order",
			       h->datao, s->done);
		return NULL;
	}
	q->h2c_slot = h->ttag;
	q->h2c_len = h->datal;
	return s->buf + h->datao;
}

static int live_h2c_done(struct tcp_queue *q, bool ddgst_bad)
{
	struct tcp_slot *s = &q->slots[q->h2c_slot];
	struct leap_req *req = &q->qp.reqs[q->h2c_slot];

	s->done += q->h2c_len;
	s->ddgst_bad |= ddgst_bad;
	if (s->done < s->len)
		return 0;
	s->state = TCP_SLOT_EXEC;
	q->n_h2c--;
	if (s->ddgst_bad)
		return fail(q, req, TCP_ST(GENERIC, TRANSIENT_TRANSPORT_ERROR));
	leap_ctrl_submit(q->assoc->ctrl, req, q->qid == 0);
	return 0;
}

static int live_icreq(struct tcp_queue *q, const struct nvme_tcp_icreq *req)
{
	/* tcp_pdu_check() refuses ICReq after the first; this is unreachable. */
	return tcp_conn_fatal(&q->c, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, req, sizeof(*req),
			      "second ICReq");
}

const struct tcp_conn_ops tcp_live_ops = {
	.icreq = live_icreq,
	.capsule = tcp_queue_capsule,
	.h2c = live_h2c,
	.h2c_done = live_h2c_done,
};

/* ---- transport ops (the controller's reactor) ---------------------------------- */

static struct tcp_queue *queue_of(struct leap_req *req)
{
	return leap_container_of(req->qp, struct tcp_queue, qp);
}

static void tcp_complete(void *t, struct leap_req *req)
{
	struct tcp_assoc *a = t;
	struct tcp_queue *q = queue_of(req);
	struct tcp_slot *s = tcp_slot_of(q, req);
	int err;

	/* Torn down, or the queue is going: the host will not hear of it. */
	if (leap_unlikely(a->dying || q->c.closing || q->c.fd < 0)) {
		leap_qpair_req_put(req->qp, req);
		return;
	}
	/* Keep-alive timeout as the host set it (the controller resets features on enable). */
	if (leap_unlikely(q->qid == 0 && req->sqe.opc == NVME_OPC_SET_FEATURES &&
			  (req->sqe.cdw10 & 0xff) == NVME_FEAT_KEEP_ALIVE_TIMER && !req->status))
		a->kato_ms = req->sqe.cdw11;
	if (req->status == 0 && s->c2h_len)
		err = tcp_queue_c2h(q, req, 0, req->cdw0);
	else
		err = tcp_queue_respond(q, req, req->status, req->cdw0, 0);
	if (leap_unlikely(err))
		tcp_conn_fatal(&q->c, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, NULL, 0,
			       "send queue full");
}

#define MAP_ST(sc) (-(int)TCP_ST(GENERIC, sc))

static int tcp_map_data(void *t, struct leap_req *req, uint64_t len, struct iovec *iov,
			uint32_t max_iov, int32_t *region)
{
	struct tcp_queue *q = queue_of(req);
	struct tcp_slot *s = tcp_slot_of(q, req);
	const struct nvme_sgl_desc *sgl = tcp_sgl(&req->sqe);
	enum nvmf_data_dir dir = nvmf_sqe_data_dir(&req->sqe);

	if (region)
		*region = -1;
	if (!max_iov || len == 0)
		return MAP_ST(INVALID_FIELD);
	switch (sgl->type) {
	case NVMF_TCP_SGL_ICD:
		if (dir != NVMF_DIR_H2C || !s->icd_len)
			return MAP_ST(SGL_DESCRIPTOR_TYPE_INVALID);
		/* An SGL longer than the command needs is fine (SGLS bit 18): Linux's DSM sends 4 KiB. */
		if (len > s->len)
			return MAP_ST(DATA_SGL_LENGTH_INVALID);
		break;
	case NVMF_TCP_SGL_TRANSPORT:
		if (len > sgl->length || sgl->length > TCP_SLOT_BUF)
			return MAP_ST(DATA_SGL_LENGTH_INVALID);
		if (dir == NVMF_DIR_C2H)
			s->c2h_len = (uint32_t)len; /* what the command produced is what is sent */
		else if (dir != NVMF_DIR_H2C || s->done != sgl->length)
			return MAP_ST(SGL_DESCRIPTOR_TYPE_INVALID);
		break;
	default:
		return MAP_ST(SGL_DESCRIPTOR_TYPE_INVALID);
	}
	iov[0].iov_base = s->buf;
	iov[0].iov_len = len;
	return 1;
}

static int tcp_enable(void *t)
{
	return 0; /* the admin queue exists since its Connect */
}

/* CC.EN 1 -> 0: I/O queues are deleted (NVMe-oF 1.1, 3.3); the host connects them again. */
static int tcp_disable(void *t)
{
	struct tcp_assoc *a = t;

	for (uint32_t i = 1; i <= LEAP_SHM_MAX_QUEUES; i++)
		if (a->q[i]) {
			a->io_reset = true;
			return -EBUSY;
		}
	a->io_reset = false;
	return 0;
}

/* Never reached (tcp_queue_capsule refuses these opcodes); here so no op is NULL. */
static uint16_t no_cq_create(void *t, uint16_t cqid, uint64_t addr, uint32_t qsize, uint16_t iv,
			     bool ien)
{
	return TCP_ST(GENERIC, INVALID_OPCODE) | NVME_CQE_DNR;
}

static uint16_t no_sq_create(void *t, uint16_t sqid, uint64_t addr, uint32_t qsize, uint16_t cqid,
			     uint8_t qprio)
{
	return TCP_ST(GENERIC, INVALID_OPCODE) | NVME_CQE_DNR;
}

static uint16_t no_q_delete(void *t, uint16_t qid)
{
	return TCP_ST(GENERIC, INVALID_OPCODE) | NVME_CQE_DNR;
}

static uint32_t tcp_qpairs(void *t, struct leap_qpair **out, uint32_t max)
{
	struct tcp_assoc *a = t;
	uint32_t n = 0;

	if (a->dying)
		return 0;
	for (uint32_t i = 0; i < a->nq && n < max; i++)
		out[n++] = &a->q[a->qids[i]]->qp;
	return n;
}

/*
 * NVMe/TCP: fabrics, SGLs only — bit 0 (SGLs supported, no alignment
 * requirement), bit 18 (an SGL may be longer than the data the command
 * moves: Linux sends Dataset Management with a 4 KiB range buffer whatever
 * the range count) and bit 20 (the Offset subtype of in-capsule data) —
 * one data descriptor per command, capsules of 8 KiB in-capsule data.
 */
static const struct leap_transport_caps tcp_caps = {
	.fabrics = true,
	.prp = false,
	.sgl_memory = false,
	.sgls = (1u << 0) | (1u << 18) | (1u << 20),
	.ioccsz = TCP_IOCCSZ,
	.iorcsz = TCP_IORCSZ,
	.msdbd = 1,
	.cntrltype = 1,
};

const struct leap_ctrl_transport_ops tcp_transport_ops = {
	.caps = &tcp_caps,
	.enable = tcp_enable,
	.disable = tcp_disable,
	.cq_create = no_cq_create,
	.cq_delete = no_q_delete,
	.sq_create = no_sq_create,
	.sq_delete = no_q_delete,
	.complete = tcp_complete,
	.map_data = tcp_map_data,
	.qpairs = tcp_qpairs,
};
