/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared scaffolding for the controller-model tests (test_ctrl_*.c): a
 * tiny in-test transport that keeps queue state the way the ops contract in
 * ctrl.h asks and records every completion; a tenant memory region with a
 * page allocator and a PRP builder; and a real `mem` backend under two
 * namespaces (512-byte and 4 KiB LBAs). Everything runs on the test thread,
 * which plays the reactor.
 */
#ifndef LEAPIO_TESTS_TEST_CTRL_HELPERS_H
#define LEAPIO_TESTS_TEST_CTRL_HELPERS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "leapio/log.h"
#include "leapio/nvme_spec.h"
#include "backend/bdev.h"
#include "nvme/ctrl.h"
#include "core/reactor.h"
#include "tap.h"

LEAP_BDEV_MODULE_USE(leap_bdev_mem_ops);

#define PG	   4096ull
#define MiB	   (1024ull * 1024)
#define TBASE	   0x40000000000ull /* tenant address of the region */
#define TMEM_PAGES 4096		    /* 16 MiB of tenant memory */
#define MAX_QID	   8
#define NS1_BLOCKS (16 * MiB / 512)  /* nsid 1: 512-byte LBAs at bdev offset 0 */
#define NS2_BLOCKS (16 * MiB / 4096) /* nsid 2: 4 KiB LBAs at bdev offset 16 MiB */
#define MAX_CQES   4096

#define SCT_OF(st) (((st) >> 9) & 0x7)
#define SC_OF(st)  (((st) >> 1) & 0xff)
#define DNR_OF(st) (((st) >> 15) & 0x1)

/* Expect a CQE with this SCT and SC (any DNR). */
#define T_ASSERT_STATUS(cqe, sct, sc)                                                              \
	do {                                                                                       \
		const struct nvme_cqe *_c = (cqe);                                                 \
		T_ASSERT(_c != NULL);                                                              \
		if (SCT_OF(_c->status) != (sct) || SC_OF(_c->status) != (sc))                      \
			T_FAIL("status: got SCT %u SC 0x%02x, want SCT %u SC 0x%02x",              \
			       SCT_OF(_c->status), SC_OF(_c->status), (unsigned)(sct),             \
			       (unsigned)(sc));                                                    \
	} while (0)
#define T_ASSERT_OK(cqe) T_ASSERT_STATUS(cqe, 0, 0)

struct fake_transport {
	struct leap_qpair qp[MAX_QID + 1]; /* [0] admin */
	bool sq_live[MAX_QID + 1], cq_live[MAX_QID + 1];
	uint32_t cq_sqs[MAX_QID + 1];
	uint32_t cq_size[MAX_QID + 1];
	uint32_t calls;	   /* queue-management ops that reached the transport */
	uint64_t dbbuf[2]; /* last Doorbell Buffer Config */
	struct nvme_cqe cqes[MAX_CQES];
	struct leap_req *reqs[MAX_CQES]; /* the slot each completion came from */
	uint32_t ncqe;
};

static struct fake_transport ft;
static struct leap_ctrl *ctrl;
static struct leap_bdev *mbdev;
static uint8_t *tmem;	   /* local mapping of the tenant region */
static uint32_t tmem_next; /* page allocator */

static uint16_t ft_cq_create(void *t, uint16_t cqid, uint64_t addr, uint32_t qsize, uint16_t iv,
			     bool ien)
{
	struct fake_transport *f = t;

	(void)iv;
	(void)ien;
	f->calls++;
	if (cqid > MAX_QID || f->cq_live[cqid])
		return NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER) |
		       NVME_CQE_DNR;
	if (!leap_mem_map_ptr(&ctrl->mem, addr, (uint64_t)qsize * NVME_CQE_SIZE))
		return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_DATA_TRANSFER_ERROR) | NVME_CQE_DNR;
	f->cq_live[cqid] = true;
	f->cq_size[cqid] = qsize;
	return 0;
}

static uint16_t ft_cq_delete(void *t, uint16_t cqid)
{
	struct fake_transport *f = t;

	f->calls++;
	if (cqid > MAX_QID || !f->cq_live[cqid])
		return NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER) |
		       NVME_CQE_DNR;
	if (f->cq_sqs[cqid])
		return NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_DELETION) |
		       NVME_CQE_DNR;
	f->cq_live[cqid] = false;
	return 0;
}

static uint16_t ft_sq_create(void *t, uint16_t sqid, uint64_t addr, uint32_t qsize, uint16_t cqid,
			     uint8_t qprio)
{
	struct fake_transport *f = t;

	(void)qprio;
	f->calls++;
	if (sqid > MAX_QID || f->sq_live[sqid])
		return NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER) |
		       NVME_CQE_DNR;
	if (cqid > MAX_QID || !f->cq_live[cqid])
		return NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_COMPLETION_QUEUE_INVALID) |
		       NVME_CQE_DNR;
	if (!leap_mem_map_ptr(&ctrl->mem, addr, (uint64_t)qsize * NVME_SQE_SIZE))
		return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_DATA_TRANSFER_ERROR) | NVME_CQE_DNR;
	if (leap_qpair_init(&f->qp[sqid], ctrl, sqid, cqid, qsize, qsize))
		return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
	f->sq_live[sqid] = true;
	f->cq_sqs[cqid]++;
	return 0;
}

static uint16_t ft_sq_delete(void *t, uint16_t sqid)
{
	struct fake_transport *f = t;

	f->calls++;
	if (sqid > MAX_QID || !f->sq_live[sqid])
		return NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER) |
		       NVME_CQE_DNR;
	f->cq_sqs[f->qp[sqid].cqid]--;
	leap_qpair_fini(&f->qp[sqid]);
	f->sq_live[sqid] = false;
	return 0;
}

static uint16_t ft_dbbuf(void *t, uint64_t shadow, uint64_t eventidx)
{
	struct fake_transport *f = t;

	f->dbbuf[0] = shadow;
	f->dbbuf[1] = eventidx;
	return 0;
}

static void ft_complete(void *t, struct leap_req *req)
{
	struct fake_transport *f = t;
	struct nvme_cqe *e = &f->cqes[f->ncqe % MAX_CQES];

	/* Same protocol a real transport follows: everything, then the status word. */
	e->status = leap_req_cqe(req, 0, 1, e);
	f->reqs[f->ncqe % MAX_CQES] = req;
	f->ncqe++;
	leap_qpair_req_put(req->qp, req);
}

static struct leap_ctrl_transport_ops ft_ops = {
	.cq_create = ft_cq_create,
	.cq_delete = ft_cq_delete,
	.sq_create = ft_sq_create,
	.sq_delete = ft_sq_delete,
	.dbbuf_config = ft_dbbuf,
	.complete = ft_complete,
};

/* ---- tenant memory ------------------------------------------------------------ */

static uint64_t talloc(uint32_t pages)
{
	uint64_t a;

	if (tmem_next + pages > TMEM_PAGES)
		T_FAIL("tenant memory exhausted");
	a = TBASE + (uint64_t)tmem_next * PG;
	tmem_next += pages;
	return a;
}

static void *lp(uint64_t taddr)
{
	return tmem + (taddr - TBASE);
}

/*
 * PRP1/PRP2 for a tenant buffer at `addr` of `len` bytes (contiguous in the
 * tenant's space), building a PRP list in a fresh page when needed.
 */
static void prp_for(struct nvme_sqe *s, uint64_t addr, uint64_t len)
{
	uint64_t first = PG - (addr & (PG - 1)), left, page;

	s->prp1 = addr;
	s->prp2 = 0;
	if (len <= first)
		return;
	left = len - first;
	page = (addr & ~(PG - 1)) + PG;
	if (left <= PG) {
		s->prp2 = page;
		return;
	}
	{
		uint64_t list = talloc(1), *e = lp(list);

		for (uint32_t i = 0; left; i++, page += PG)
			e[i] = page, left -= left < PG ? left : PG;
		s->prp2 = list;
	}
}

/* ---- setup / teardown ------------------------------------------------------------ */

static void teardown(void)
{
	if (ctrl) {
		/* Complete whatever the test left held, then drop the controller. */
		leap_ctrl_reset(ctrl);
		for (int i = 0; i < 100 && leap_ctrl_inflight(ctrl); i++)
			leap_ctrl_poll(ctrl);
		leap_ctrl_channels_close(ctrl);
		ctrl->refs = 0;
		leap_ctrl_destroy(ctrl);
		ctrl = NULL;
	}
	for (int q = 0; q <= MAX_QID; q++)
		leap_qpair_fini(&ft.qp[q]);
	memset(&ft, 0, sizeof(ft));
	if (mbdev) {
		leap_bdev_destroy(mbdev);
		mbdev = NULL;
	}
}

/* A fresh controller "c0" (max 8 queue pairs, 256 entries) with nsid 1 and 2 on bdev "m0". */
static void setup_opts(uint32_t max_q)
{
	json_t *bp = json_pack("{s:s, s:s, s:I, s:i}", "type", "mem", "name", "m0", "size",
			       (json_int_t)(32 * MiB), "block_size", 512);
	struct leap_ctrl_opts co = { .name = "c0",
				     .nqn = "nqn.2026-11.io.leapio:test-c0",
				     .max_io_queues = max_q,
				     .max_qsize = 256 };

	teardown();
	leap_log_set_level(LEAP_LOG_WARN); /* bdev creation is chatty at info */
	if (!tmem) {
		tmem = mmap(NULL, TMEM_PAGES * PG, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (tmem == MAP_FAILED)
			T_FAIL("mmap tenant memory");
	}
	memset(tmem, 0, TMEM_PAGES * PG);
	tmem_next = 0;
	T_ASSERT_EQ(leap_bdev_create_wait(bp, &mbdev, NULL), 0);
	json_decref(bp);
	T_ASSERT_EQ(leap_ctrl_create(&co, &ctrl), 0);
	T_ASSERT_EQ(leap_ctrl_ns_add(ctrl, 1, "m0", 0, 16 * MiB, 512), 1);
	T_ASSERT_EQ(leap_ctrl_ns_add(ctrl, 2, "m0", 16 * MiB, 16 * MiB, 4096), 2);
	ctrl->mem.cnt = 1;
	ctrl->mem.r[0] =
	    (struct leap_mem_region){ .base = TBASE, .len = TMEM_PAGES * PG, .local = tmem };
	ctrl->tops = &ft_ops;
	ctrl->transport = &ft;
	ctrl->refs = 1;
	T_ASSERT_EQ(leap_qpair_init(&ft.qp[0], ctrl, 0, 0, 32, 32), 0);
	ft.sq_live[0] = ft.cq_live[0] = true;
	ft.cq_sqs[0] = 1;
}

static void setup(void)
{
	setup_opts(8);
}

/* ---- commands -------------------------------------------------------------------- */

/* Submit without waiting: returns the slot (for tests that hold or defer commands). */
static struct leap_req *submit(uint16_t qid, const struct nvme_sqe *sqe)
{
	struct leap_req *req;

	if (!ft.sq_live[qid])
		T_FAIL("queue %u does not exist", qid);
	req = leap_qpair_req_get(&ft.qp[qid]);
	if (!req)
		T_FAIL("queue %u has no free slot", qid);
	req->sqe = *sqe;
	leap_ctrl_submit(ctrl, req, qid == 0);
	return req;
}

/* Poll until `n` more completions than `base` have arrived (bounded). */
static bool wait_cqes(uint32_t base, uint32_t n)
{
	for (int i = 0; i < 10000 && ft.ncqe < base + n; i++)
		leap_ctrl_poll(ctrl);
	return ft.ncqe >= base + n;
}

/* Submit one command and return its completion (the test fails if none arrives). */
static struct nvme_cqe *run(uint16_t qid, const struct nvme_sqe *sqe)
{
	uint32_t base = ft.ncqe;

	submit(qid, sqe);
	if (!wait_cqes(base, 1))
		T_FAIL("no completion for opcode 0x%02x on queue %u", sqe->opc, qid);
	return &ft.cqes[base % MAX_CQES];
}

/* Create I/O CQ+SQ pair `qid` through admin commands. */
static void create_qpair(uint16_t qid)
{
	struct nvme_sqe s = { .opc = NVME_OPC_CREATE_IO_CQ, .cid = 0x100 + qid };

	s.prp1 = talloc(1);
	s.cdw10 = (63u << 16) | qid;
	s.cdw11 = NVME_QUEUE_PHYS_CONTIG;
	T_ASSERT_OK(run(0, &s));
	s.opc = NVME_OPC_CREATE_IO_SQ;
	s.prp1 = talloc(4);
	s.cdw11 = ((uint32_t)qid << 16) | NVME_QUEUE_PHYS_CONTIG;
	T_ASSERT_OK(run(0, &s));
}

static struct nvme_sqe rw_sqe(uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb, uint64_t buf,
			      uint32_t lba_size)
{
	struct nvme_sqe s = { .opc = opc, .nsid = nsid, .cid = 0x42 };

	s.cdw10 = (uint32_t)slba;
	s.cdw11 = (uint32_t)(slba >> 32);
	s.cdw12 = nlb - 1;
	if (buf)
		prp_for(&s, buf, (uint64_t)nlb * lba_size);
	return s;
}

/* Read/Write nlb blocks at slba of nsid through I/O queue 1. Returns the completion. */
static __attribute__((unused)) struct nvme_cqe *io(uint8_t opc, uint32_t nsid, uint64_t slba,
						   uint32_t nlb, uint64_t buf)
{
	uint32_t lba = nsid == 2 ? 4096 : 512;
	struct nvme_sqe s = rw_sqe(opc, nsid, slba, nlb, buf, lba);

	return run(1, &s);
}

static __attribute__((unused)) void fill(uint64_t taddr, size_t len, uint8_t seed)
{
	uint8_t *p = lp(taddr);

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7 + (i >> 9));
}

static __attribute__((unused)) bool all_bytes(const void *p, size_t len, uint8_t v)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i] != v)
			return false;
	return true;
}

#endif /* LEAPIO_TESTS_TEST_CTRL_HELPERS_H */
