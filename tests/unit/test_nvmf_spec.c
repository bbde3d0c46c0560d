// SPDX-License-Identifier: BSD-3-Clause
/*
 * The NVMe-oF / NVMe/TCP spec header. Sizes and offsets are pinned at compile
 * time; these cases lay the structs over byte strings worked out by hand from
 * the specs (and over what Linux's nvmet-tcp was seen sending, NOTES.md), so
 * a wrong field width or a missing packed attribute shows up as wrong bytes.
 */
#include "leapio/nvmf_spec.h"
#include "tap.h"

static void test_icresp_as_linux_sends_it(void)
{
	/* Linux nvmet-tcp 6.1: 01 00 80 00 80 00 00 00, pfv 0, cpda 0, dgst 0, maxh2cdata 4 MiB. */
	uint8_t raw[128] = { 0x01, 0x00, 0x80, 0x00, 0x80, 0x00, 0x00, 0x00,
			     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00 };
	struct nvme_tcp_icresp r;

	memcpy(&r, raw, sizeof(r));
	T_ASSERT_EQ(r.hdr.pdu_type, NVME_TCP_PDU_ICRESP);
	T_ASSERT_EQ(r.hdr.hlen, 128);
	T_ASSERT_EQ(r.hdr.pdo, 0);
	T_ASSERT_EQ(r.hdr.plen, 128);
	T_ASSERT_EQ(r.pfv, NVME_TCP_PFV_1_0);
	T_ASSERT_EQ(r.cpda, 0);
	T_ASSERT_EQ(r.dgst, 0);
	T_ASSERT_EQ(r.maxh2cdata, 4194304);
}

static void test_icreq_bytes(void)
{
	struct nvme_tcp_icreq q;
	uint8_t raw[128];

	memset(&q, 0, sizeof(q));
	q.hdr.pdu_type = NVME_TCP_PDU_ICREQ;
	q.hdr.hlen = sizeof(q);
	q.hdr.plen = sizeof(q);
	q.hpda = 2;
	q.dgst = NVME_TCP_DGST_HDGST | NVME_TCP_DGST_DDGST;
	q.maxr2t = 0x01020304;
	memcpy(raw, &q, sizeof(raw));
	T_ASSERT_EQ(raw[0], 0x00);
	T_ASSERT_EQ(raw[2], 0x80);
	T_ASSERT_EQ(raw[4], 0x80);
	T_ASSERT_EQ(raw[5] | raw[6] | raw[7], 0);
	T_ASSERT_EQ(raw[10], 2);
	T_ASSERT_EQ(raw[11], 0x03);
	T_ASSERT_EQ(raw[12], 0x04);
	T_ASSERT_EQ(raw[15], 0x01);
}

static void test_term_req_fei_unaligned(void)
{
	struct nvme_tcp_term_req t;
	uint8_t raw[24];

	memset(&t, 0, sizeof(t));
	t.hdr.pdu_type = NVME_TCP_PDU_H2C_TERM_REQ;
	t.hdr.hlen = 24;
	t.hdr.plen = 24 + 8;
	t.fes = NVME_TCP_FES_HDGST_ERROR;
	t.fei = 0xa1b2c3d4;
	memcpy(raw, &t, sizeof(raw));
	T_ASSERT_EQ(raw[0], 0x02);
	T_ASSERT_EQ(raw[4], 32);
	T_ASSERT_EQ(raw[8], 0x03);
	T_ASSERT_EQ(raw[9], 0x00);
	T_ASSERT_EQ(raw[10], 0xd4);
	T_ASSERT_EQ(raw[13], 0xa1);
	T_ASSERT_EQ(raw[14], 0);
	T_ASSERT_EQ(NVME_TCP_TERM_REQ_PLEN_MAX, 152);
	T_ASSERT_EQ(NVME_TCP_FES_DATA_OUT_OF_RANGE, 4);
	T_ASSERT_EQ(NVME_TCP_FES_DATA_LIMIT_EXCEEDED, 5);
	T_ASSERT_EQ(NVME_TCP_FES_UNSUPPORTED_PARAM, 6);
}

static void test_data_pdus(void)
{
	uint8_t raw[24] = { 0x07, 0x0c, 24,   24,   0x18, 0x10, 0,    0,    0x34, 0x12,
			    0,	  0,	0x00, 0x10, 0,	  0,	0x00, 0x10, 0,	  0 };
	struct nvme_tcp_c2h_data_pdu c;
	struct nvme_tcp_r2t_pdu r;

	memcpy(&c, raw, sizeof(c));
	T_ASSERT_EQ(c.hdr.pdu_type, NVME_TCP_PDU_C2H_DATA);
	T_ASSERT(c.hdr.flags & NVME_TCP_F_DATA_LAST);
	T_ASSERT(c.hdr.flags & NVME_TCP_F_DATA_SUCCESS);
	T_ASSERT_EQ(c.hdr.plen, 24 + 4096);
	T_ASSERT_EQ(c.cccid, 0x1234);
	T_ASSERT_EQ(c.datao, 4096);
	T_ASSERT_EQ(c.datal, 4096);
	raw[0] = NVME_TCP_PDU_R2T;
	raw[10] = 0x77;
	memcpy(&r, raw, sizeof(r));
	T_ASSERT_EQ(r.ttag, 0x77);
	T_ASSERT_EQ(r.r2to, 4096);
	T_ASSERT_EQ(r.r2tl, 4096);
}

static void test_capsule_cmd_with_connect(void)
{
	struct nvme_tcp_cmd_pdu pdu;
	struct nvmf_connect_cmd *c = (struct nvmf_connect_cmd *)&pdu.sqe;
	uint8_t raw[72];

	memset(&pdu, 0, sizeof(pdu));
	c->opc = NVME_OPC_FABRIC;
	c->flags = NVMF_SQE_FLAGS_SGL;
	c->cid = 0xabcd;
	c->fctype = NVMF_FCTYPE_CONNECT;
	c->sgl1.length = 1024;
	c->sgl1.type = NVMF_TCP_SGL_ICD;
	c->qid = 3;
	c->sqsize = 127;
	c->kato = 120000;
	memcpy(raw, &pdu, sizeof(raw));
	/* Command bytes start after the 8-byte common header. */
	T_ASSERT_EQ(raw[8 + 0], 0x7f);
	T_ASSERT_EQ(raw[8 + 1], 0x40);
	T_ASSERT_EQ(raw[8 + 2], 0xcd);
	T_ASSERT_EQ(raw[8 + 4], 0x01);
	T_ASSERT_EQ(raw[8 + 32], 0x00); /* SGL length 1024 = 00 04 00 00 */
	T_ASSERT_EQ(raw[8 + 33], 0x04);
	T_ASSERT_EQ(raw[8 + 39], 0x01);
	T_ASSERT_EQ(raw[8 + 42], 3);
	T_ASSERT_EQ(raw[8 + 44], 127);
	T_ASSERT_EQ(raw[8 + 48] | raw[8 + 49] << 8 | raw[8 + 50] << 16, 120000);
	T_ASSERT_EQ(nvmf_sqe_data_dir(&pdu.sqe), NVMF_DIR_H2C);
}

static void test_connect_data_and_response(void)
{
	struct nvmf_connect_data d;
	struct nvmf_connect_rsp r;
	struct nvme_cqe cqe;
	uint8_t *raw = (uint8_t *)&d;

	memset(&d, 0, sizeof(d));
	d.cntlid = NVMF_CNTLID_DYNAMIC;
	memcpy(d.subnqn, "nqn.a", 5);
	memcpy(d.hostnqn, "nqn.b", 5);
	T_ASSERT_EQ(raw[16], 0xff);
	T_ASSERT_EQ(raw[17], 0xff);
	T_ASSERT_EQ(raw[256 + 4], 'a');
	T_ASSERT_EQ(raw[512 + 4], 'b');

	memset(&cqe, 0, sizeof(cqe));
	cqe.dw0 = 0x00000007; /* CNTLID 7, AUTHREQ 0 */
	cqe.cid = 9;
	memcpy(&r, &cqe, sizeof(r));
	T_ASSERT_EQ(r.dw0.success.cntlid, 7);
	T_ASSERT_EQ(r.cid, 9);

	/* Invalid host: SCT 1, SC 84h; in the CQE status field that is 0x184 << 1. */
	cqe.status =
	    (uint16_t)(NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVMF_SC_CONNECT_INVALID_HOST) << 1);
	T_ASSERT_EQ(nvmf_cqe_status(&cqe), 0x184);
	cqe.status |= NVME_CQE_DNR;
	T_ASSERT_EQ(nvmf_cqe_status(&cqe), 0x8184);
}

static void test_property_cmds(void)
{
	struct nvmf_property_set_cmd s;
	struct nvmf_property_get_cmd g;
	uint8_t raw[64];

	memset(&s, 0, sizeof(s));
	s.opc = NVME_OPC_FABRIC;
	s.fctype = NVMF_FCTYPE_PROPERTY_SET;
	s.attrib = NVMF_PROP_SIZE_4;
	s.ofst = NVMF_PROP_CC;
	s.value = 0x00460001;
	memcpy(raw, &s, sizeof(raw));
	T_ASSERT_EQ(raw[4], 0x00);
	T_ASSERT_EQ(raw[44], 0x14);
	T_ASSERT_EQ(raw[48], 0x01);
	T_ASSERT_EQ(raw[50], 0x46);
	T_ASSERT_EQ(nvmf_sqe_data_dir((const struct nvme_sqe *)&s), NVMF_DIR_NONE);

	memset(&g, 0, sizeof(g));
	g.opc = NVME_OPC_FABRIC;
	g.fctype = NVMF_FCTYPE_PROPERTY_GET;
	g.attrib = NVMF_PROP_SIZE_8;
	g.ofst = NVMF_PROP_CAP;
	memcpy(raw, &g, sizeof(raw));
	T_ASSERT_EQ(raw[4], 0x04);
	T_ASSERT_EQ(raw[40], 0x01);
	T_ASSERT_EQ(nvmf_sqe_data_dir((const struct nvme_sqe *)&g), NVMF_DIR_NONE);

	/* CC as the host writes it: EN, IOSQES 6, IOCQES 4. */
	T_ASSERT_EQ(NVME_CC_EN | 6u << NVME_CC_IOSQES_SHIFT | 4u << NVME_CC_IOCQES_SHIFT,
		    0x00460001);
	T_ASSERT_EQ(NVME_CAP_TO(0x000008200f0003ffull), 0x0f);
}

static void test_sgl_and_dirs(void)
{
	struct nvme_sqe sqe;
	struct nvme_sgl_desc sgl = { .addr = 0, .length = 8192, .type = NVMF_TCP_SGL_TRANSPORT };
	uint8_t raw[16];

	memcpy(raw, &sgl, sizeof(raw));
	T_ASSERT_EQ(raw[15], 0x5a);
	T_ASSERT_EQ(raw[9], 0x20);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_OPC_READ;
	T_ASSERT_EQ(nvmf_sqe_data_dir(&sqe), NVMF_DIR_C2H);
	sqe.opc = NVME_OPC_WRITE;
	T_ASSERT_EQ(nvmf_sqe_data_dir(&sqe), NVMF_DIR_H2C);
	sqe.opc = NVME_OPC_FLUSH;
	T_ASSERT_EQ(nvmf_sqe_data_dir(&sqe), NVMF_DIR_NONE);
	sqe.opc = NVME_OPC_IDENTIFY;
	T_ASSERT_EQ(nvmf_sqe_data_dir(&sqe), NVMF_DIR_C2H);
	sqe.opc = NVME_OPC_GET_LOG_PAGE;
	T_ASSERT_EQ(nvmf_sqe_data_dir(&sqe), NVMF_DIR_C2H);
	sqe.opc = NVME_OPC_DATASET_MANAGEMENT;
	T_ASSERT_EQ(nvmf_sqe_data_dir(&sqe), NVMF_DIR_H2C);
	sqe.opc = NVME_OPC_FABRIC;
	((struct nvmf_capsule_cmd *)&sqe)->fctype = NVMF_FCTYPE_DISCONNECT;
	T_ASSERT_EQ(nvmf_sqe_data_dir(&sqe), NVMF_DIR_NONE);
}

static void test_discovery_log(void)
{
	static uint8_t page[1024 + 1024];
	struct nvmf_disc_log_hdr *h = (struct nvmf_disc_log_hdr *)page;
	struct nvmf_disc_log_entry *e = (struct nvmf_disc_log_entry *)(page + 1024);

	memset(page, 0, sizeof(page));
	page[0] = 5;	    /* genctr */
	page[8] = 1;	    /* numrec */
	page[1024 + 0] = 3; /* trtype TCP */
	page[1024 + 1] = 1; /* IPv4 */
	page[1024 + 2] = 2; /* NVM subsystem */
	page[1024 + 4] = 1; /* portid */
	page[1024 + 6] = 0xff;
	page[1024 + 7] = 0xff;
	memcpy(page + 1024 + 32, "4420", 4);
	memcpy(page + 1024 + 256, "nqn.x", 5);
	memcpy(page + 1024 + 512, "10.0.2.15", 9);
	T_ASSERT_EQ(h->genctr, 5);
	T_ASSERT_EQ(h->numrec, 1);
	T_ASSERT_EQ(e->trtype, NVMF_TRTYPE_TCP);
	T_ASSERT_EQ(e->adrfam, NVMF_ADRFAM_IPV4);
	T_ASSERT_EQ(e->subtype, NVMF_SUBTYPE_NVME);
	T_ASSERT_EQ(e->portid, 1);
	T_ASSERT_EQ(e->cntlid, 0xffff);
	T_ASSERT_STR_EQ(e->trsvcid, "4420");
	T_ASSERT_STR_EQ(e->subnqn, "nqn.x");
	T_ASSERT_STR_EQ(e->traddr, "10.0.2.15");
	T_ASSERT_EQ(e->tsas.tcp.sectype, NVMF_TCP_SECTYPE_NONE);
	T_ASSERT_EQ(strlen(NVME_DISCOVERY_NQN), 36);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_icresp_as_linux_sends_it),
		TAP_CASE(test_icreq_bytes),
		TAP_CASE(test_term_req_fei_unaligned),
		TAP_CASE(test_data_pdus),
		TAP_CASE(test_capsule_cmd_with_connect),
		TAP_CASE(test_connect_data_and_response),
		TAP_CASE(test_property_cmds),
		TAP_CASE(test_sgl_and_dirs),
		TAP_CASE(test_discovery_log),
	};

	return tap_run(cases, TAP_N(cases));
}
