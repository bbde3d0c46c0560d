// SPDX-License-Identifier: BSD-3-Clause
/*
 * Admin commands of the controller model: Identify data parsed at the
 * spec's byte offsets, queue creation/deletion statuses, features, log
 * pages whose counters follow real I/O, Async Event Requests (held, limit,
 * delivery, masking), Abort, Keep Alive, Doorbell Buffer Config, unknown
 * opcodes, and CID echo. The transport is the in-test fake from
 * test_ctrl_helpers.h; the backend is the real mem bdev.
 */
#include <stdio.h>

#include "test_ctrl_helpers.h"

static uint16_t u16at(const uint8_t *b, size_t off)
{
	uint16_t v;

	memcpy(&v, b + off, 2);
	return v;
}

static uint32_t u32at(const uint8_t *b, size_t off)
{
	uint32_t v;

	memcpy(&v, b + off, 4);
	return v;
}

static uint64_t u64at(const uint8_t *b, size_t off)
{
	uint64_t v;

	memcpy(&v, b + off, 8);
	return v;
}

/* Identify into a fresh page; returns its local pointer (NULL status checked by caller). */
static struct nvme_cqe *identify(uint8_t cns, uint32_t nsid, uint8_t **out)
{
	struct nvme_sqe s = { .opc = NVME_OPC_IDENTIFY, .cid = 7, .nsid = nsid, .cdw10 = cns };

	s.prp1 = talloc(1);
	memset(lp(s.prp1), 0xa5, PG);
	*out = lp(s.prp1);
	return run(0, &s);
}

static struct nvme_cqe *get_log(uint8_t lid, uint32_t len, uint64_t off, bool rae, uint8_t **out)
{
	struct nvme_sqe s = { .opc = NVME_OPC_GET_LOG_PAGE, .cid = 9 };
	uint32_t numd = len / 4 - 1;
	uint32_t pages = (len + PG - 1) / PG + 1;
	uint64_t buf = talloc(pages);

	s.cdw10 = lid | (rae ? 1u << 15 : 0) | (numd & 0xffff) << 16;
	s.cdw11 = numd >> 16;
	s.cdw12 = (uint32_t)off;
	s.cdw13 = (uint32_t)(off >> 32);
	prp_for(&s, buf, len);
	memset(lp(buf), 0xa5, pages * PG);
	*out = lp(buf);
	return run(0, &s);
}

static struct nvme_cqe *set_feat(uint8_t fid, uint32_t v)
{
	struct nvme_sqe s = { .opc = NVME_OPC_SET_FEATURES, .cid = 11, .cdw10 = fid, .cdw11 = v };

	return run(0, &s);
}

static struct nvme_cqe *get_feat(uint8_t fid, uint8_t sel)
{
	struct nvme_sqe s = { .opc = NVME_OPC_GET_FEATURES, .cid = 12 };

	s.cdw10 = fid | (uint32_t)sel << 8;
	return run(0, &s);
}

/* ---- Identify ----------------------------------------------------------------------- */

static void test_identify_controller(void)
{
	uint8_t *b;
	char str[64];

	setup();
	T_ASSERT_OK(identify(NVME_CNS_CTRL, 0, &b));
	T_ASSERT_EQ(u16at(b, 0), 0x1d0f); /* VID */
	memcpy(str, b + 4, 20);		  /* SN: 20 ASCII, space padded */
	str[20] = 0;
	for (int i = 19; i >= 0 && str[i] == ' '; i--)
		str[i] = 0;
	T_ASSERT_STR_EQ(str, ctrl->serial);
	T_ASSERT_MEM_EQ(b + 24, "leapio virtual NVMe", 19); /* MN, space padded to 40 */
	T_ASSERT(all_bytes(b + 24 + 19, 40 - 19, ' '));
	T_ASSERT(b[64] != ' ' && b[64] != 0); /* FR starts with a character */
	T_ASSERT_EQ(b[77], LEAP_CTRL_MDTS);
	T_ASSERT_EQ(u16at(b, 78), ctrl->cntlid);
	T_ASSERT(ctrl->cntlid != 0);
	T_ASSERT_EQ(u32at(b, 80), 0x00010400); /* VER 1.4.0 */
	T_ASSERT_EQ(b[111], 1);		       /* CNTRLTYPE: I/O controller */
	T_ASSERT(u16at(b, 256) & (1u << 8));   /* OACS: Doorbell Buffer Config */
	T_ASSERT_EQ(b[259], LEAP_CTRL_AERL);
	T_ASSERT_EQ(b[262], LEAP_CTRL_ERRLOG - 1); /* ELPE */
	T_ASSERT(b[261] & NVME_LPA_EXTENDED_DATA);
	T_ASSERT_EQ(b[512], 0x66); /* SQES */
	T_ASSERT_EQ(b[513], 0x44); /* CQES */
	T_ASSERT_EQ(u32at(b, 516), LEAP_CTRL_MAX_NS);
	T_ASSERT_EQ(u16at(b, 520), NVME_ONCS_COMPARE | NVME_ONCS_DSM | NVME_ONCS_WRITE_ZEROES);
	T_ASSERT_EQ(u16at(b, 522), 0); /* FUSES */
	T_ASSERT_EQ(b[525] & 1, 1);    /* VWC present */
	T_ASSERT_EQ(u32at(b, 536), 0); /* SGLS */
	T_ASSERT_STR_EQ((const char *)b + 768, "nqn.2026-11.io.leapio:test-c0");
	T_ASSERT(all_bytes(b + 768 + 29, 256 - 29, 0));
	/* Reserved areas are zero, not left over from the host's buffer. */
	T_ASSERT(all_bytes(b + 3072, 1024, 0));
}

static void test_identify_controller_without_dbbuf(void)
{
	struct nvme_sqe s = { .opc = NVME_OPC_DOORBELL_BUFFER_CONFIG, .cid = 3 };
	uint8_t *b;

	setup();
	ft_ops.dbbuf_config = NULL;
	T_ASSERT_OK(identify(NVME_CNS_CTRL, 0, &b));
	T_ASSERT_EQ(u16at(b, 256) & (1u << 8), 0);
	s.prp1 = talloc(1);
	s.prp2 = talloc(1);
	T_ASSERT_STATUS(run(0, &s), NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE);
	ft_ops.dbbuf_config = ft_dbbuf;
}

static void test_identify_namespace(void)
{
	uint8_t *b1, *b2;

	setup();
	T_ASSERT_OK(identify(NVME_CNS_NS, 1, &b1));
	T_ASSERT_OK(identify(NVME_CNS_NS, 2, &b2));
	T_ASSERT_U64_EQ(u64at(b1, 0), NS1_BLOCKS); /* NSZE */
	T_ASSERT_U64_EQ(u64at(b1, 8), NS1_BLOCKS); /* NCAP */
	T_ASSERT_U64_EQ(u64at(b1, 16), NS1_BLOCKS);
	T_ASSERT_EQ(b1[25], 0);			  /* NLBAF: one format */
	T_ASSERT_EQ(b1[26] & 0xf, 0);		  /* FLBAS: format 0 */
	T_ASSERT_EQ(b1[33] & 0x7, 1);		  /* DLFEAT: deallocated reads zeroes */
	T_ASSERT_U64_EQ(u64at(b1, 48), 16 * MiB); /* NVMCAP (low half) */
	T_ASSERT_EQ(b1[128 + 2], 9);		  /* LBAF0.LBADS */
	T_ASSERT_U64_EQ(u64at(b2, 0), NS2_BLOCKS);
	T_ASSERT_EQ(b2[128 + 2], 12);
	/* NGUID (104) and EUI64 (120) are set and differ between namespaces. */
	T_ASSERT(!all_bytes(b1 + 104, 16, 0));
	T_ASSERT(!all_bytes(b1 + 120, 8, 0));
	T_ASSERT(memcmp(b1 + 104, b2 + 104, 16) != 0);
	T_ASSERT(memcmp(b1 + 120, b2 + 120, 8) != 0);
	T_ASSERT(all_bytes(b1 + 384, 4096 - 384, 0));
}

static void test_identify_namespace_invalid_and_inactive(void)
{
	uint8_t *b;

	setup();
	/* A valid NSID with no namespace: success, all zeroes. */
	T_ASSERT_OK(identify(NVME_CNS_NS, 5, &b));
	T_ASSERT(all_bytes(b, 4096, 0));
	T_ASSERT_STATUS(identify(NVME_CNS_NS, 0, &b), NVME_SCT_GENERIC,
			NVME_SC_INVALID_NAMESPACE_OR_FORMAT);
	T_ASSERT_STATUS(identify(NVME_CNS_NS, LEAP_CTRL_MAX_NS + 1, &b), NVME_SCT_GENERIC,
			NVME_SC_INVALID_NAMESPACE_OR_FORMAT);
	T_ASSERT_STATUS(identify(NVME_CNS_NS, 0xffffffff, &b), NVME_SCT_GENERIC,
			NVME_SC_INVALID_NAMESPACE_OR_FORMAT);
	/* The host buffer is untouched on failure. */
	T_ASSERT(all_bytes(b, 4096, 0xa5));
	T_ASSERT_STATUS(identify(0x10, 0, &b), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
}

static void test_identify_active_ns_list(void)
{
	uint8_t *b;

	setup();
	T_ASSERT_EQ(leap_ctrl_ns_add(ctrl, 7, "m0", 0, 1 * MiB, 512), 7);
	T_ASSERT_OK(identify(NVME_CNS_ACTIVE_NS_LIST, 0, &b));
	T_ASSERT_EQ(u32at(b, 0), 1);
	T_ASSERT_EQ(u32at(b, 4), 2);
	T_ASSERT_EQ(u32at(b, 8), 7);
	T_ASSERT(all_bytes(b + 12, 4096 - 12, 0));
	/* Strictly greater than the given NSID. */
	T_ASSERT_OK(identify(NVME_CNS_ACTIVE_NS_LIST, 1, &b));
	T_ASSERT_EQ(u32at(b, 0), 2);
	T_ASSERT_EQ(u32at(b, 4), 7);
	T_ASSERT_EQ(u32at(b, 8), 0);
	T_ASSERT_OK(identify(NVME_CNS_ACTIVE_NS_LIST, 7, &b));
	T_ASSERT(all_bytes(b, 4096, 0));
	T_ASSERT_STATUS(identify(NVME_CNS_ACTIVE_NS_LIST, 0xfffffffe, &b), NVME_SCT_GENERIC,
			NVME_SC_INVALID_NAMESPACE_OR_FORMAT);
}

/* Find descriptor `nidt` in a CNS 03h list; returns its identifier or NULL. */
static const uint8_t *find_desc(const uint8_t *b, uint8_t nidt, uint8_t *nidl)
{
	size_t off = 0;

	while (off + 4 <= 4096 && b[off] != 0) {
		if (b[off] == nidt) {
			*nidl = b[off + 1];
			return b + off + 4;
		}
		off += 4 + b[off + 1];
	}
	return NULL;
}

static void test_identify_ns_descriptors(void)
{
	uint8_t *b1, *b2, *n1, l = 0;
	const uint8_t *d1, *d2;

	setup();
	T_ASSERT_OK(identify(NVME_CNS_NS_DESC_LIST, 1, &b1));
	T_ASSERT_OK(identify(NVME_CNS_NS, 1, &n1));
	T_ASSERT_OK(identify(NVME_CNS_NS_DESC_LIST, 2, &b2));
	/* Layout: EUI64 (1, 8), NGUID (2, 16), UUID (3, 16), CSI (4, 1), then zeroes. */
	T_ASSERT_EQ(b1[0], NVME_NIDT_EUI64);
	T_ASSERT_EQ(b1[1], 8);
	T_ASSERT_EQ(b1[12], NVME_NIDT_NGUID);
	T_ASSERT_EQ(b1[13], 16);
	T_ASSERT_EQ(b1[32], NVME_NIDT_UUID);
	T_ASSERT_EQ(b1[33], 16);
	T_ASSERT_EQ(b1[52], NVME_NIDT_CSI);
	T_ASSERT_EQ(b1[53], 1);
	T_ASSERT_EQ(b1[56], 0); /* NVM command set */
	T_ASSERT(all_bytes(b1 + 57, 4096 - 57, 0));
	/* The same identifiers as Identify Namespace reports. */
	T_ASSERT_MEM_EQ(b1 + 4, n1 + 120, 8);
	T_ASSERT_MEM_EQ(b1 + 16, n1 + 104, 16);
	/* Unique per namespace, every kind. */
	for (uint8_t t = NVME_NIDT_EUI64; t <= NVME_NIDT_UUID; t++) {
		d1 = find_desc(b1, t, &l);
		T_ASSERT(d1 != NULL);
		d2 = find_desc(b2, t, &l);
		T_ASSERT(d2 != NULL);
		T_ASSERT(memcmp(d1, d2, l) != 0);
		T_ASSERT(!all_bytes(d1, l, 0));
	}
	T_ASSERT_STATUS(identify(NVME_CNS_NS_DESC_LIST, 9, &b1), NVME_SCT_GENERIC,
			NVME_SC_INVALID_NAMESPACE_OR_FORMAT);
}

static void test_identify_bad_data_pointer(void)
{
	struct nvme_sqe s = { .opc = NVME_OPC_IDENTIFY, .cdw10 = NVME_CNS_CTRL };

	setup();
	s.prp1 = TBASE - PG; /* not tenant memory */
	T_ASSERT_STATUS(run(0, &s), NVME_SCT_GENERIC, NVME_SC_DATA_TRANSFER_ERROR);
	s.prp1 = talloc(1) + 2;
	T_ASSERT_STATUS(run(0, &s), NVME_SCT_GENERIC, NVME_SC_INVALID_PRP_OFFSET);
}

/* ---- queues ------------------------------------------------------------------------- */

static struct nvme_cqe *queue_cmd(uint8_t opc, uint16_t qid, uint32_t qsize, uint32_t cdw11,
				  uint64_t prp1)
{
	struct nvme_sqe s = { .opc = opc, .cid = 0x33, .prp1 = prp1 };

	s.cdw10 = ((qsize - 1) << 16) | qid;
	s.cdw11 = cdw11;
	return run(0, &s);
}

static void test_create_queue_statuses(void)
{
	uint64_t q = 0;
	uint32_t pc = NVME_QUEUE_PHYS_CONTIG;

	setup();
	q = talloc(16);
	/* Checked by the controller itself: the transport is never asked. */
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_CREATE_IO_CQ, 0, 16, pc, q), NVME_SCT_COMMAND_SPECIFIC,
			NVME_SC_INVALID_QUEUE_IDENTIFIER);
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_CREATE_IO_CQ, 9, 16, pc, q), NVME_SCT_COMMAND_SPECIFIC,
			NVME_SC_INVALID_QUEUE_IDENTIFIER);
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_CREATE_IO_CQ, 1, 1, pc, q), NVME_SCT_COMMAND_SPECIFIC,
			NVME_SC_INVALID_QUEUE_SIZE);
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_CREATE_IO_CQ, 1, 257, pc, q), NVME_SCT_COMMAND_SPECIFIC,
			NVME_SC_INVALID_QUEUE_SIZE);
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_CREATE_IO_CQ, 1, 16, 0, q), NVME_SCT_GENERIC,
			NVME_SC_INVALID_FIELD);
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_CREATE_IO_CQ, 1, 16, pc, q + 0x100), NVME_SCT_GENERIC,
			NVME_SC_INVALID_PRP_OFFSET);
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_CREATE_IO_SQ, 1, 16, pc, q), NVME_SCT_COMMAND_SPECIFIC,
			NVME_SC_COMPLETION_QUEUE_INVALID);
	T_ASSERT_EQ(ft.calls, 0);
	/* Every status carries DNR: retrying cannot help. */
	T_ASSERT_EQ(DNR_OF(ft.cqes[0].status), 1);

	/* Now through to the transport. */
	T_ASSERT_OK(queue_cmd(NVME_OPC_CREATE_IO_CQ, 1, 256, pc, q));
	T_ASSERT_EQ(ft.cq_size[1], 256);
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_CREATE_IO_CQ, 1, 16, pc, q), NVME_SCT_COMMAND_SPECIFIC,
			NVME_SC_INVALID_QUEUE_IDENTIFIER);
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_CREATE_IO_SQ, 1, 16, (2u << 16) | pc, talloc(1)),
			NVME_SCT_COMMAND_SPECIFIC, NVME_SC_COMPLETION_QUEUE_INVALID);
	T_ASSERT_OK(queue_cmd(NVME_OPC_CREATE_IO_SQ, 1, 64, (1u << 16) | pc, talloc(1)));
	T_ASSERT_OK(queue_cmd(NVME_OPC_CREATE_IO_SQ, 2, 64, (1u << 16) | pc, talloc(1)));
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_CREATE_IO_SQ, 2, 64, (1u << 16) | pc, talloc(1)),
			NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER);
	/* Queue memory outside the tenant's regions. */
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_CREATE_IO_CQ, 3, 16, pc, TBASE - 2 * PG),
			NVME_SCT_GENERIC, NVME_SC_DATA_TRANSFER_ERROR);
}

static void test_delete_queue_statuses(void)
{
	setup();
	create_qpair(1);
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_DELETE_IO_CQ, 1, 1, 0, 0), NVME_SCT_COMMAND_SPECIFIC,
			NVME_SC_INVALID_QUEUE_DELETION);
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_DELETE_IO_SQ, 0, 1, 0, 0), NVME_SCT_COMMAND_SPECIFIC,
			NVME_SC_INVALID_QUEUE_IDENTIFIER);
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_DELETE_IO_CQ, 0, 1, 0, 0), NVME_SCT_COMMAND_SPECIFIC,
			NVME_SC_INVALID_QUEUE_IDENTIFIER);
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_DELETE_IO_SQ, 3, 1, 0, 0), NVME_SCT_COMMAND_SPECIFIC,
			NVME_SC_INVALID_QUEUE_IDENTIFIER);
	T_ASSERT_OK(queue_cmd(NVME_OPC_DELETE_IO_SQ, 1, 1, 0, 0));
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_DELETE_IO_SQ, 1, 1, 0, 0), NVME_SCT_COMMAND_SPECIFIC,
			NVME_SC_INVALID_QUEUE_IDENTIFIER);
	T_ASSERT_OK(queue_cmd(NVME_OPC_DELETE_IO_CQ, 1, 1, 0, 0));
	T_ASSERT(!ft.cq_live[1] && !ft.sq_live[1]);
}

static void test_queue_limit_follows_number_of_queues(void)
{
	uint32_t pc = NVME_QUEUE_PHYS_CONTIG;

	setup();
	/* Ask for 2 SQs and 3 CQs (0's based 1 and 2). */
	T_ASSERT_OK(set_feat(NVME_FEAT_NUMBER_OF_QUEUES, (2u << 16) | 1));
	T_ASSERT_OK(queue_cmd(NVME_OPC_CREATE_IO_CQ, 3, 16, pc, talloc(1)));
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_CREATE_IO_CQ, 4, 16, pc, talloc(1)),
			NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER);
	T_ASSERT_OK(queue_cmd(NVME_OPC_CREATE_IO_SQ, 2, 16, (3u << 16) | pc, talloc(1)));
	T_ASSERT_STATUS(queue_cmd(NVME_OPC_CREATE_IO_SQ, 3, 16, (3u << 16) | pc, talloc(1)),
			NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER);
}

/* ---- features ----------------------------------------------------------------------- */

static void test_number_of_queues(void)
{
	struct nvme_cqe *c;

	setup();
	/* Before any Set Features: what we offer (8 pairs, 0's based 7). */
	c = get_feat(NVME_FEAT_NUMBER_OF_QUEUES, 0);
	T_ASSERT_OK(c);
	T_ASSERT_EQ(c->dw0, (7u << 16) | 7);
	/* Ask for 100/100: granted min(requested, max). */
	c = set_feat(NVME_FEAT_NUMBER_OF_QUEUES, (99u << 16) | 99);
	T_ASSERT_OK(c);
	T_ASSERT_EQ(c->dw0, (7u << 16) | 7);
	/* Asymmetric: 2 SQs, 4 CQs. */
	c = set_feat(NVME_FEAT_NUMBER_OF_QUEUES, (3u << 16) | 1);
	T_ASSERT_EQ(c->dw0, (3u << 16) | 1);
	c = get_feat(NVME_FEAT_NUMBER_OF_QUEUES, 0);
	T_ASSERT_EQ(c->dw0, (3u << 16) | 1);
	T_ASSERT_STATUS(set_feat(NVME_FEAT_NUMBER_OF_QUEUES, 0xffff), NVME_SCT_GENERIC,
			NVME_SC_INVALID_FIELD);
	T_ASSERT_STATUS(set_feat(NVME_FEAT_NUMBER_OF_QUEUES, 0xffffu << 16), NVME_SCT_GENERIC,
			NVME_SC_INVALID_FIELD);
}

static void test_features_roundtrip(void)
{
	static const struct {
		uint8_t fid;
		uint32_t v;
	} f[] = {
		{ NVME_FEAT_ARBITRATION, 0x03020100 | 3 },
		{ NVME_FEAT_VOLATILE_WRITE_CACHE, 0 },
		{ NVME_FEAT_ASYNC_EVENT_CONFIG, 0x100 | 0x2 },
		{ NVME_FEAT_KEEP_ALIVE_TIMER, 15000 },
		{ NVME_FEAT_TEMPERATURE_THRESHOLD, 350 },
	};

	setup();
	for (size_t i = 0; i < TAP_N(f); i++) {
		struct nvme_cqe *c;

		T_ASSERT_OK(set_feat(f[i].fid, f[i].v));
		c = get_feat(f[i].fid, 0);
		T_ASSERT_OK(c);
		T_ASSERT_EQ(c->dw0, f[i].v);
	}
	/* Defaults (SEL 1) and saved (SEL 2, nothing is saveable) ignore what was set. */
	T_ASSERT_EQ(get_feat(NVME_FEAT_VOLATILE_WRITE_CACHE, 1)->dw0, 1);
	T_ASSERT_EQ(get_feat(NVME_FEAT_KEEP_ALIVE_TIMER, 2)->dw0, 0);
	/* Supported capabilities: changeable, not saveable, not per namespace. */
	T_ASSERT_EQ(get_feat(NVME_FEAT_ARBITRATION, 3)->dw0, 1u << 2);
	T_ASSERT_STATUS(get_feat(NVME_FEAT_ARBITRATION, 4), NVME_SCT_GENERIC,
			NVME_SC_INVALID_FIELD);
	/* Reset restores every default. */
	leap_ctrl_reset(ctrl);
	T_ASSERT_EQ(get_feat(NVME_FEAT_VOLATILE_WRITE_CACHE, 0)->dw0, 1);
	T_ASSERT_EQ(get_feat(NVME_FEAT_ARBITRATION, 0)->dw0, 0);
}

static void test_features_invalid(void)
{
	struct nvme_sqe s = { .opc = NVME_OPC_SET_FEATURES, .cdw10 = NVME_FEAT_ARBITRATION };

	setup();
	T_ASSERT_STATUS(set_feat(0x7e, 1), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	T_ASSERT_STATUS(get_feat(0x7e, 0), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	T_ASSERT_STATUS(set_feat(0, 0), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	/* SV = 1: nothing survives a power cycle here. */
	s.cdw10 |= 1u << 31;
	T_ASSERT_STATUS(run(0, &s), NVME_SCT_COMMAND_SPECIFIC, NVME_SC_FEATURE_ID_NOT_SAVEABLE);
}

/* ---- log pages ---------------------------------------------------------------------- */

static uint64_t health_u64(const uint8_t *b, size_t off)
{
	T_ASSERT_EQ(u64at(b, off + 8), 0); /* 128-bit counters: high half 0 here */
	return u64at(b, off);
}

static void test_health_log_counts_io(void)
{
	uint64_t buf;
	uint8_t *h;

	setup();
	create_qpair(1);
	T_ASSERT_OK(get_log(NVME_LOG_HEALTH, 512, 0, false, &h));
	T_ASSERT_EQ(health_u64(h, 32), 0);  /* data units read */
	T_ASSERT_EQ(health_u64(h, 48), 0);  /* data units written */
	T_ASSERT_EQ(health_u64(h, 64), 0);  /* host read commands */
	T_ASSERT_EQ(health_u64(h, 80), 0);  /* host write commands */
	T_ASSERT_EQ(u16at(h, 1), 313);	    /* temperature, kelvin */
	T_ASSERT_EQ(h[3], 100);		    /* available spare */
	T_ASSERT_EQ(health_u64(h, 112), 1); /* power cycles */

	buf = talloc(64);
	/* One 512-byte write: one data unit (rounded up). Three 4 KiB-LBA reads of 32 blocks. */
	T_ASSERT_OK(io(NVME_OPC_WRITE, 1, 0, 1, buf));
	for (int i = 0; i < 3; i++)
		T_ASSERT_OK(io(NVME_OPC_READ, 2, 0, 32, buf));
	/* 1000 x 512 bytes written exactly: 1 + 1 = 2 units total. */
	T_ASSERT_OK(io(NVME_OPC_WRITE, 1, 0, 256, buf));
	for (int i = 0; i < 2; i++)
		T_ASSERT_OK(io(NVME_OPC_WRITE, 1, 0, 256, buf));
	T_ASSERT_OK(io(NVME_OPC_WRITE, 1, 0, 232, buf));
	/* A failing read counts as a command but moves nothing. */
	T_ASSERT_STATUS(io(NVME_OPC_READ, 1, NS1_BLOCKS, 1, buf), NVME_SCT_GENERIC,
			NVME_SC_LBA_OUT_OF_RANGE);
	T_ASSERT_OK(get_log(NVME_LOG_HEALTH, 512, 0, false, &h));
	/* 3 x 128 KiB = 768 x 512-byte units: 1 data unit (rounded up). */
	T_ASSERT_EQ(health_u64(h, 32), 1);
	/* 512 + 1000 x 512: 1001 units -> 2 data units. */
	T_ASSERT_EQ(health_u64(h, 48), 2);
	T_ASSERT_EQ(health_u64(h, 64), 4);
	T_ASSERT_EQ(health_u64(h, 80), 5);
	T_ASSERT_EQ(health_u64(h, 160), 0); /* media errors */
	T_ASSERT_EQ(health_u64(h, 176), 1); /* error information log entries */
	/* Offset and length are honoured: 16 bytes from offset 48 = data units written. */
	T_ASSERT_OK(get_log(NVME_LOG_HEALTH, 16, 48, false, &h));
	T_ASSERT_EQ(u64at(h, 0), 2);
	T_ASSERT_EQ(u64at(h, 8), 0);
	T_ASSERT_EQ(h[16], 0xa5); /* nothing written past the requested length */
}

static void test_error_log_entries(void)
{
	struct nvme_sqe s;
	uint64_t buf;
	uint8_t *e;

	setup();
	create_qpair(1);
	buf = talloc(2);
	T_ASSERT_OK(get_log(NVME_LOG_ERROR, 4096, 0, false, &e));
	T_ASSERT(all_bytes(e, 4096, 0));
	/* Failure 1: LBA out of range on nsid 2, cid 0x1234. */
	s = rw_sqe(NVME_OPC_READ, 2, NS2_BLOCKS + 5, 1, buf, 4096);
	s.cid = 0x1234;
	T_ASSERT_STATUS(run(1, &s), NVME_SCT_GENERIC, NVME_SC_LBA_OUT_OF_RANGE);
	/* Failure 2: unknown admin opcode, cid 0xbeef. */
	s = (struct nvme_sqe){ .opc = 0x7e, .cid = 0xbeef };
	T_ASSERT_STATUS(run(0, &s), NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE);
	T_ASSERT_OK(get_log(NVME_LOG_ERROR, 4096, 0, false, &e));
	/* Newest first. */
	T_ASSERT_EQ(u64at(e, 0), 2);	   /* error count */
	T_ASSERT_EQ(u16at(e, 8), 0);	   /* SQID */
	T_ASSERT_EQ(u16at(e, 10), 0xbeef); /* CID */
	T_ASSERT_EQ(u16at(e, 12) >> 1 & 0xff, NVME_SC_INVALID_OPCODE);
	T_ASSERT_EQ(u64at(e, 16), 0); /* no LBA for an admin command */
	T_ASSERT_EQ(u64at(e + 64, 0), 1);
	T_ASSERT_EQ(u16at(e + 64, 8), 1);
	T_ASSERT_EQ(u16at(e + 64, 10), 0x1234);
	T_ASSERT_EQ(u16at(e + 64, 12) >> 1 & 0x7ff, NVME_SC_LBA_OUT_OF_RANGE);
	T_ASSERT_EQ(u16at(e + 64, 12) >> 15, 1); /* DNR */
	T_ASSERT_U64_EQ(u64at(e + 64, 16), NS2_BLOCKS + 5);
	T_ASSERT_EQ(u32at(e + 64, 24), 2);
	T_ASSERT(all_bytes(e + 128, 4096 - 128, 0));
}

static void test_error_log_ring_wraps(void)
{
	struct nvme_sqe s = { .opc = 0x7e };
	uint8_t *e;

	setup();
	for (int i = 0; i < LEAP_CTRL_ERRLOG + 10; i++) {
		s.cid = (uint16_t)i;
		T_ASSERT_STATUS(run(0, &s), NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE);
	}
	T_ASSERT_OK(get_log(NVME_LOG_ERROR, 4096, 0, false, &e));
	T_ASSERT_EQ(u64at(e, 0), LEAP_CTRL_ERRLOG + 10);
	T_ASSERT_EQ(u16at(e, 10), LEAP_CTRL_ERRLOG + 9);
	T_ASSERT_EQ(u64at(e + 63 * 64, 0), 11); /* the oldest kept */
	T_ASSERT_EQ(u16at(e + 63 * 64, 10), 10);
}

static void test_log_page_offsets_and_ids(void)
{
	uint8_t *b;

	setup();
	T_ASSERT_STATUS(get_log(0x7f, 512, 0, false, &b), NVME_SCT_COMMAND_SPECIFIC,
			NVME_SC_INVALID_LOG_PAGE);
	T_ASSERT_STATUS(get_log(NVME_LOG_HEALTH, 512, 2, false, &b), NVME_SCT_GENERIC,
			NVME_SC_INVALID_FIELD);
	T_ASSERT_STATUS(get_log(NVME_LOG_HEALTH, 4, 512, false, &b), NVME_SCT_GENERIC,
			NVME_SC_INVALID_FIELD);
	T_ASSERT_STATUS(get_log(NVME_LOG_HEALTH, 4, 1ull << 32, false, &b), NVME_SCT_GENERIC,
			NVME_SC_INVALID_FIELD);
	/* Longer than the page: the rest reads as zeroes. */
	T_ASSERT_OK(get_log(NVME_LOG_HEALTH, 8192, 0, false, &b));
	T_ASSERT_EQ(u16at(b, 1), 313);
	T_ASSERT(all_bytes(b + 512, 8192 - 512, 0));
	/* More than MDTS allows. */
	T_ASSERT_STATUS(get_log(NVME_LOG_HEALTH, (uint32_t)LEAP_CTRL_MAX_XFER + 4096, 0, false, &b),
			NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	T_ASSERT_OK(get_log(NVME_LOG_FIRMWARE_SLOT, 512, 0, false, &b));
	T_ASSERT_EQ(b[0] & 7, 1);
}

/* ---- async events --------------------------------------------------------------------- */

static void test_aer_held_and_limit(void)
{
	struct nvme_sqe s = { .opc = NVME_OPC_ASYNC_EVENT_REQUEST };
	uint32_t base;

	setup();
	base = ft.ncqe;
	for (int i = 0; i <= LEAP_CTRL_AERL; i++) {
		s.cid = (uint16_t)(0x500 + i);
		submit(0, &s);
	}
	T_ASSERT_EQ(ft.ncqe, base); /* all held */
	s.cid = 0x5ff;
	T_ASSERT_STATUS(run(0, &s), NVME_SCT_COMMAND_SPECIFIC,
			NVME_SC_ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED);
	T_ASSERT_EQ(ft.cqes[base % MAX_CQES].cid, 0x5ff);
	/* An error event completes the oldest AER: type 0, info 1, log page 01h. */
	T_ASSERT_EQ(leap_ctrl_aen(ctrl, 0, 1, NVME_LOG_ERROR), 0);
	T_ASSERT_EQ(ft.ncqe, base + 2);
	T_ASSERT_OK(&ft.cqes[(base + 1) % MAX_CQES]);
	T_ASSERT_EQ(ft.cqes[(base + 1) % MAX_CQES].cid, 0x500);
	T_ASSERT_EQ(ft.cqes[(base + 1) % MAX_CQES].dw0, 0x010100);
	/* The same type stays masked until the host reads the page with RAE = 0. */
	T_ASSERT_EQ(leap_ctrl_aen(ctrl, 0, 2, NVME_LOG_ERROR), 0);
	T_ASSERT_EQ(ft.ncqe, base + 2);
	{
		uint8_t *b;

		T_ASSERT_OK(get_log(NVME_LOG_ERROR, 64, 0, true, &b)); /* RAE = 1: still masked */
		T_ASSERT_EQ(leap_ctrl_aen(ctrl, 0, 2, NVME_LOG_ERROR), 0);
		T_ASSERT_EQ(ft.ncqe, base + 3);
		T_ASSERT_OK(get_log(NVME_LOG_ERROR, 64, 0, false, &b));
	}
	base = ft.ncqe;
	T_ASSERT_EQ(leap_ctrl_aen(ctrl, 0, 2, NVME_LOG_ERROR), 0);
	T_ASSERT_EQ(ft.ncqe, base + 1);
	T_ASSERT_EQ(ft.cqes[base % MAX_CQES].cid, 0x501);
	T_ASSERT_EQ(ft.cqes[base % MAX_CQES].dw0, 0x010200);
	/* Reset: the two still held complete as aborted. */
	base = ft.ncqe;
	leap_ctrl_reset(ctrl);
	T_ASSERT_EQ(ft.ncqe, base + 2);
	T_ASSERT_STATUS(&ft.cqes[base % MAX_CQES], NVME_SCT_GENERIC, NVME_SC_ABORTED_SQ_DELETION);
	T_ASSERT_EQ(ctrl->aer_cnt, 0);
}

static void test_aer_event_queued_and_notice_config(void)
{
	struct nvme_sqe s = { .opc = NVME_OPC_ASYNC_EVENT_REQUEST, .cid = 0x77 };
	uint32_t base;

	setup();
	/* Notices are off until Async Event Config enables them. */
	T_ASSERT_EQ(leap_ctrl_aen(ctrl, 2, 0, 0x04), 0);
	T_ASSERT_EQ(ctrl->aen_cnt, 0);
	T_ASSERT_OK(set_feat(NVME_FEAT_ASYNC_EVENT_CONFIG, 1u << 8));
	T_ASSERT_EQ(leap_ctrl_aen(ctrl, 2, 0, 0x04), 0);
	T_ASSERT_EQ(ctrl->aen_cnt, 1);
	/* The next AER completes at once with the remembered event. */
	base = ft.ncqe;
	submit(0, &s);
	T_ASSERT_EQ(ft.ncqe, base + 1);
	T_ASSERT_EQ(ft.cqes[base % MAX_CQES].cid, 0x77);
	T_ASSERT_EQ(ft.cqes[base % MAX_CQES].dw0, (0x04u << 16) | 2);
}

/* ---- miscellaneous admin ----------------------------------------------------------------- */

static void test_abort_keepalive_unknown(void)
{
	struct nvme_sqe s = { .opc = NVME_OPC_ABORT, .cid = 1, .cdw10 = (5u << 16) | 1 };
	struct nvme_cqe *c;

	setup();
	c = run(0, &s);
	T_ASSERT_OK(c);
	T_ASSERT_EQ(c->dw0 & 1, 1); /* not aborted */
	s = (struct nvme_sqe){ .opc = NVME_OPC_KEEP_ALIVE, .cid = 2 };
	T_ASSERT_OK(run(0, &s));
	for (uint8_t opc = 0x80; opc < 0x90; opc++) {
		s = (struct nvme_sqe){ .opc = opc, .cid = opc };
		c = run(0, &s);
		T_ASSERT_STATUS(c, NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE);
		T_ASSERT_EQ(DNR_OF(c->status), 1);
	}
	/* Namespace management and firmware commands are not offered. */
	s = (struct nvme_sqe){ .opc = NVME_OPC_NS_MANAGEMENT };
	T_ASSERT_STATUS(run(0, &s), NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE);
	/* Fused or SGL admin commands: Invalid Field. */
	s = (struct nvme_sqe){ .opc = NVME_OPC_KEEP_ALIVE, .flags = 1 };
	T_ASSERT_STATUS(run(0, &s), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	s = (struct nvme_sqe){ .opc = NVME_OPC_KEEP_ALIVE, .flags = 1u << 6 };
	T_ASSERT_STATUS(run(0, &s), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
}

static void test_doorbell_buffer_config(void)
{
	struct nvme_sqe s = { .opc = NVME_OPC_DOORBELL_BUFFER_CONFIG };

	setup();
	s.prp1 = talloc(1);
	s.prp2 = talloc(1);
	T_ASSERT_OK(run(0, &s));
	T_ASSERT_U64_EQ(ft.dbbuf[0], s.prp1);
	T_ASSERT_U64_EQ(ft.dbbuf[1], s.prp2);
	s.prp2 += 8;
	T_ASSERT_STATUS(run(0, &s), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	s.prp2 = 0;
	T_ASSERT_STATUS(run(0, &s), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
}

static void test_admin_cid_echo(void)
{
	struct nvme_sqe s = { .opc = NVME_OPC_KEEP_ALIVE, .cid = 0xffff };
	struct nvme_cqe *c;

	setup();
	c = run(0, &s);
	T_ASSERT_EQ(c->cid, 0xffff);
	T_ASSERT_EQ(c->sqid, 0);
	/* Duplicate CIDs are the host's business: both complete, both echoed. */
	s.cid = 0;
	T_ASSERT_EQ(run(0, &s)->cid, 0);
	T_ASSERT_EQ(run(0, &s)->cid, 0);
	T_ASSERT_EQ(ft.cqes[(ft.ncqe - 2) % MAX_CQES].status & 1, 1); /* phase from the transport */
}

static void test_final_teardown(void)
{
	teardown();
	T_ASSERT(leap_ctrl_find("c0") == NULL);
	T_ASSERT(leap_bdev_find("m0") == NULL);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_identify_controller),
		TAP_CASE(test_identify_controller_without_dbbuf),
		TAP_CASE(test_identify_namespace),
		TAP_CASE(test_identify_namespace_invalid_and_inactive),
		TAP_CASE(test_identify_active_ns_list),
		TAP_CASE(test_identify_ns_descriptors),
		TAP_CASE(test_identify_bad_data_pointer),
		TAP_CASE(test_create_queue_statuses),
		TAP_CASE(test_delete_queue_statuses),
		TAP_CASE(test_queue_limit_follows_number_of_queues),
		TAP_CASE(test_number_of_queues),
		TAP_CASE(test_features_roundtrip),
		TAP_CASE(test_features_invalid),
		TAP_CASE(test_health_log_counts_io),
		TAP_CASE(test_error_log_entries),
		TAP_CASE(test_error_log_ring_wraps),
		TAP_CASE(test_log_page_offsets_and_ids),
		TAP_CASE(test_aer_held_and_limit),
		TAP_CASE(test_aer_event_queued_and_notice_config),
		TAP_CASE(test_abort_keepalive_unknown),
		TAP_CASE(test_doorbell_buffer_config),
		TAP_CASE(test_admin_cid_echo),
		TAP_CASE(test_final_teardown),
	};

	return tap_run(cases, TAP_N(cases));
}
