// SPDX-License-Identifier: BSD-3-Clause
/*
 * A controller queue of the NVMe/TCP target (runtime/frontend/tcp/
 * tcp_queue.c), included to reach its static parts, without a reactor or a
 * socket: the PDUs a command produces sit in the queue's send ring where
 * the test reads them. C2HData framing (HPDA padding, digests, the SUCCESS
 * flag only without SQ flow control), the checks a capsule's data
 * descriptor gets before anything is submitted, the R2T for a write, and
 * map_data's answers to the controller.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/tcp/tcp_queue.c"
#include "tap.h"

static struct leap_ctrl *ctrl;
static struct tcp_assoc assoc;

/* A queue of 4 slots on a fake controller that is ready (no socket: -1). */
static struct tcp_queue *queue(bool hdgst, bool ddgst, uint8_t hpda, bool sqflow_off)
{
	struct tcp_queue *q = calloc(1, sizeof(*q));

	if (!ctrl)
		ctrl = calloc(1, sizeof(*ctrl));
	if (!q || !ctrl || tcp_conn_init(&q->c, -1, 4))
		abort();
	ctrl->regs.csts = NVME_CSTS_RDY;
	assoc.ctrl = ctrl;
	q->assoc = &assoc;
	q->qid = 1;
	q->c.hdgst = hdgst;
	q->c.ddgst = ddgst;
	q->c.hpda = hpda;
	q->sqflow_off = sqflow_off;
	q->c.ops = &tcp_live_ops;
	if (tcp_queue_slots_init(q, ctrl, 4))
		abort();
	return q;
}

static const struct tcp_tx *tx(const struct tcp_queue *q, uint32_t i)
{
	return &q->c.tx[(q->c.tx_head + i) & q->c.tx_mask];
}

static struct nvme_tcp_cmd_pdu cmd(uint8_t opc, uint16_t cid, uint8_t sgl_type, uint32_t len)
{
	struct nvme_tcp_cmd_pdu p = { 0 };
	struct nvme_sgl_desc *d = (struct nvme_sgl_desc *)&p.sqe.prp1;

	p.sqe.opc = opc;
	p.sqe.cid = cid;
	p.sqe.nsid = 1;
	p.sqe.flags = NVMF_SQE_FLAGS_SGL;
	d->type = sgl_type;
	d->length = len;
	return p;
}

static uint32_t le32_at(const void *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void test_c2h_hpda_and_digests(void)
{
	struct tcp_queue *q = queue(true, true, 7, false); /* data at 32-byte alignment */
	struct nvme_tcp_cmd_pdu p = cmd(NVME_OPC_READ, 0x1234, NVMF_TCP_SGL_TRANSPORT, 1000);
	struct leap_req *req = tcp_queue_slot_get(q, &p);
	struct tcp_slot *s = tcp_slot_of(q, req);
	const struct nvme_tcp_c2h_data_pdu *d;
	const struct nvme_tcp_rsp_pdu *r;

	for (int i = 0; i < 1000; i++)
		s->buf[i] = (uint8_t)i;
	s->c2h_len = 1000;
	T_ASSERT_EQ(tcp_queue_c2h(q, req, 0, 0), 0);
	T_ASSERT_EQ(q->c.tx_tail - q->c.tx_head, 2);
	d = tx(q, 0)->hdr;
	T_ASSERT_EQ(d->hdr.pdu_type, NVME_TCP_PDU_C2H_DATA);
	T_ASSERT_EQ(d->hdr.flags, NVME_TCP_F_DATA_LAST | NVME_TCP_F_HDGST | NVME_TCP_F_DDGST);
	T_ASSERT_EQ(d->hdr.hlen, 24);
	T_ASSERT_EQ(d->hdr.pdo, 32);
	T_ASSERT_EQ(d->hdr.plen, 32 + 1000 + 4);
	T_ASSERT_EQ(d->cccid, 0x1234);
	T_ASSERT_EQ(d->datal, 1000);
	T_ASSERT_EQ(tx(q, 0)->hlen, 32);
	T_ASSERT_U64_EQ(le32_at((const uint8_t *)d + 24), leap_crc32c(0, d, 24));
	T_ASSERT_EQ(le32_at((const uint8_t *)d + 28), 0); /* padding */
	T_ASSERT(tx(q, 0)->data == s->buf && tx(q, 0)->dlen == 1000);
	T_ASSERT_U64_EQ(le32_at(tx(q, 0)->ddgst), leap_crc32c(0, s->buf, 1000));
	T_ASSERT(tx(q, 0)->put == NULL);
	/* Then the response, which releases the slot. */
	r = tx(q, 1)->hdr;
	T_ASSERT_EQ(r->hdr.pdu_type, NVME_TCP_PDU_CAPSULE_RESP);
	T_ASSERT_EQ(tx(q, 1)->hlen, 28);
	T_ASSERT_EQ(r->cqe.cid, 0x1234);
	T_ASSERT_EQ(r->cqe.sqid, 1);
	T_ASSERT_EQ(r->cqe.sqhd, 1);
	T_ASSERT_EQ(r->cqe.status, 0);
	T_ASSERT(tx(q, 1)->put == req);
	tcp_queue_free(q);
}

static void test_c2h_success_flag_only_without_sq_flow_control(void)
{
	struct tcp_queue *q = queue(false, false, 0, true);
	struct nvme_tcp_cmd_pdu p = cmd(NVME_OPC_READ, 7, NVMF_TCP_SGL_TRANSPORT, 512);
	struct leap_req *req = tcp_queue_slot_get(q, &p);
	const struct nvme_tcp_c2h_data_pdu *d;

	tcp_slot_of(q, req)->c2h_len = 512;
	T_ASSERT_EQ(tcp_queue_c2h(q, req, 0, 0), 0);
	T_ASSERT_EQ(q->c.tx_tail - q->c.tx_head, 1); /* no CapsuleResp */
	d = tx(q, 0)->hdr;
	T_ASSERT_EQ(d->hdr.flags, NVME_TCP_F_DATA_LAST | NVME_TCP_F_DATA_SUCCESS);
	T_ASSERT_EQ(d->hdr.pdo, 24);
	T_ASSERT(tx(q, 0)->put == req);
	tcp_queue_free(q);
}

/* The status of the response a capsule got (the last PDU queued), or -1. */
static int answered(struct tcp_queue *q)
{
	const struct nvme_tcp_rsp_pdu *r;

	if (q->c.tx_tail == q->c.tx_head)
		return -1;
	r = tx(q, q->c.tx_tail - q->c.tx_head - 1)->hdr;
	if (r->hdr.pdu_type != NVME_TCP_PDU_CAPSULE_RESP)
		return -1;
	return (r->cqe.status >> 1) & 0x7ff;
}

static void test_capsule_data_checks(void)
{
	static uint8_t icd[TCP_ICD_MAX];
	struct tcp_queue *q = queue(false, false, 0, false);
	struct nvme_tcp_cmd_pdu p;
	struct nvme_sgl_desc *d = (struct nvme_sgl_desc *)&p.sqe.prp1;

	/* In-capsule data with a transport SGL. */
	p = cmd(NVME_OPC_WRITE, 1, NVMF_TCP_SGL_TRANSPORT, 512);
	T_ASSERT_EQ(tcp_queue_capsule(q, &p, icd, 512, false), 0);
	T_ASSERT_EQ(answered(q), NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
	/* Offset past the in-capsule data. */
	p = cmd(NVME_OPC_WRITE, 2, NVMF_TCP_SGL_ICD, 16);
	d->addr = 600;
	T_ASSERT_EQ(tcp_queue_capsule(q, &p, icd, 512, false), 0);
	T_ASSERT_EQ(answered(q), NVME_SC_SGL_OFFSET_INVALID);
	/* Length past it. */
	p = cmd(NVME_OPC_WRITE, 3, NVMF_TCP_SGL_ICD, 1024);
	T_ASSERT_EQ(tcp_queue_capsule(q, &p, icd, 512, false), 0);
	T_ASSERT_EQ(answered(q), NVME_SC_DATA_SGL_LENGTH_INVALID);
	/* A bad data digest: Transient Transport Error, nothing submitted. */
	p = cmd(NVME_OPC_WRITE, 4, NVMF_TCP_SGL_ICD, 512);
	T_ASSERT_EQ(tcp_queue_capsule(q, &p, icd, 512, true), 0);
	T_ASSERT_EQ(answered(q), NVME_SC_TRANSIENT_TRANSPORT_ERROR);
	/* Every slot is now answered but not sent: the host may not have more out. */
	T_ASSERT_EQ(q->qp.busy, 4);
	p = cmd(NVME_OPC_WRITE, 5, NVMF_TCP_SGL_ICD, 512);
	T_ASSERT_EQ(tcp_queue_capsule(q, &p, icd, 512, false), -EPROTO);
	T_ASSERT(q->c.fatal);
	tcp_queue_free(q);

	/* Before CSTS.RDY only fabrics commands. */
	q = queue(false, false, 0, false);
	ctrl->regs.csts = 0;
	p = cmd(NVME_OPC_READ, 6, NVMF_TCP_SGL_TRANSPORT, 512);
	T_ASSERT_EQ(tcp_queue_capsule(q, &p, NULL, 0, false), 0);
	T_ASSERT_EQ(answered(q), NVME_SC_COMMAND_SEQUENCE_ERROR);
	tcp_queue_free(q);
}

static void test_write_gets_one_r2t_for_its_length(void)
{
	struct tcp_queue *q = queue(true, false, 0, false);
	struct nvme_tcp_cmd_pdu p = cmd(NVME_OPC_WRITE, 0x42, NVMF_TCP_SGL_TRANSPORT, 65536);
	const struct nvme_tcp_r2t_pdu *r;

	T_ASSERT_EQ(tcp_queue_capsule(q, &p, NULL, 0, false), 0);
	T_ASSERT_EQ(q->c.tx_tail - q->c.tx_head, 1);
	r = tx(q, 0)->hdr;
	T_ASSERT_EQ(r->hdr.pdu_type, NVME_TCP_PDU_R2T);
	T_ASSERT_EQ(r->hdr.flags, NVME_TCP_F_HDGST);
	T_ASSERT_EQ(r->hdr.plen, 28);
	T_ASSERT_EQ(r->cccid, 0x42);
	T_ASSERT_EQ(r->r2to, 0);
	T_ASSERT_EQ(r->r2tl, 65536);
	T_ASSERT_EQ(q->slots[r->ttag].state, TCP_SLOT_H2C);
	T_ASSERT_EQ(q->n_h2c, 1);
	/* Past MDTS: refused before any R2T. */
	p = cmd(NVME_OPC_WRITE, 0x43, NVMF_TCP_SGL_TRANSPORT, TCP_SLOT_BUF + 512);
	T_ASSERT_EQ(tcp_queue_capsule(q, &p, NULL, 0, false), 0);
	T_ASSERT_EQ(answered(q), NVME_SC_DATA_SGL_LENGTH_INVALID);
	/* Teardown releases the slot waiting for data and what the ring held. */
	T_ASSERT_EQ(tcp_queue_drop(q), 0);
	T_ASSERT_EQ(q->qp.busy, 0);
	tcp_queue_free(q);
}

static void test_map_data(void)
{
	struct tcp_queue *q = queue(false, false, 0, false);
	struct nvme_tcp_cmd_pdu p = cmd(NVME_OPC_READ, 1, NVMF_TCP_SGL_TRANSPORT, 4096);
	struct leap_req *req = tcp_queue_slot_get(q, &p);
	struct tcp_slot *s = tcp_slot_of(q, req);
	struct nvme_sgl_desc *d = (struct nvme_sgl_desc *)&req->sqe.prp1;
	struct iovec iov[2];
	int32_t region = 5;

	T_ASSERT_EQ(tcp_map_data(NULL, req, 4096, iov, 2, &region), 1);
	T_ASSERT(iov[0].iov_base == s->buf && iov[0].iov_len == 4096);
	T_ASSERT_EQ(region, -1);
	T_ASSERT_EQ(s->c2h_len, 4096);
	/* A longer SGL than the command reads is fine; what it reads is what is sent. */
	T_ASSERT_EQ(tcp_map_data(NULL, req, 512, iov, 2, &region), 1);
	T_ASSERT_EQ(s->c2h_len, 512);
	T_ASSERT_EQ(tcp_map_data(NULL, req, 8192, iov, 2, &region),
		    -(int)TCP_ST(GENERIC, DATA_SGL_LENGTH_INVALID));
	d->type = NVMF_TCP_SGL_ICD;
	T_ASSERT_EQ(tcp_map_data(NULL, req, 4096, iov, 2, &region),
		    -(int)TCP_ST(GENERIC, SGL_DESCRIPTOR_TYPE_INVALID));
	d->type = NVME_SGL_ID(NVME_SGL_TYPE_KEYED_DATA_BLOCK, 0);
	T_ASSERT_EQ(tcp_map_data(NULL, req, 4096, iov, 2, &region),
		    -(int)TCP_ST(GENERIC, SGL_DESCRIPTOR_TYPE_INVALID));
	/* A write whose data has not all arrived is never handed to the controller. */
	req->sqe.opc = NVME_OPC_WRITE;
	d->type = NVMF_TCP_SGL_TRANSPORT;
	s->done = 1024;
	T_ASSERT_EQ(tcp_map_data(NULL, req, 4096, iov, 2, &region),
		    -(int)TCP_ST(GENERIC, SGL_DESCRIPTOR_TYPE_INVALID));
	s->done = 4096;
	T_ASSERT_EQ(tcp_map_data(NULL, req, 16, iov, 2, &region), 1);
	T_ASSERT_EQ(iov[0].iov_len, 16);
	tcp_queue_free(q);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_c2h_hpda_and_digests),
		TAP_CASE(test_c2h_success_flag_only_without_sq_flow_control),
		TAP_CASE(test_capsule_data_checks),
		TAP_CASE(test_write_gets_one_r2t_for_its_length),
		TAP_CASE(test_map_data),
	};

	return tap_run(cases, TAP_N(cases));
}
