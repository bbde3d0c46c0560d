// SPDX-License-Identifier: BSD-3-Clause
/*
 * libFuzzer harness: the controller model's command path (nvme/ctrl*.c,
 * PRP and SGL translation, the mem backend) through the fake transport of
 * the controller unit tests, exactly as a tenant's queue entries reach it.
 *
 * Input: up to 16 KiB copied into the first tenant pages (where PRP lists,
 * SGL segments, DSM ranges and Identify buffers may be pointed at), then
 * 65-byte records: one byte choosing the queue (admin, I/O 1 or 2), one
 * 64-byte submission entry. Data pointers are folded into the tenant region
 * most of the time (bit 63 clear), left as they are otherwise, so both the
 * translation and its bounds checks are exercised. After the commands,
 * everything is drained and the queues and features restored, so each input
 * starts from the same controller.
 *
 * Findings are crashes, sanitizer reports, or a controller that does not
 * drain (abort()).
 */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_ctrl_helpers.h"

#define DATA_BYTES (4 * PG)
#define REC	   (1 + 64)
#define MAX_RECS   64

static uint32_t tmem_after_setup;

/*
 * The fake transport frees a queue's slots on delete; a real one (shm)
 * refuses to delete a queue with commands in flight, and so must this one,
 * or the harness would report its own use-after-free.
 */
static uint16_t guarded_sq_delete(void *t, uint16_t sqid)
{
	if (sqid <= MAX_QID && ft.sq_live[sqid] && ft.qp[sqid].busy)
		return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_COMMAND_SEQUENCE_ERROR);
	return ft_sq_delete(t, sqid);
}

static uint64_t fold(uint64_t raw)
{
	if (raw >> 63)
		return raw & ~(1ull << 63);
	return TBASE + raw % ((uint64_t)TMEM_PAGES * PG);
}

/* Queues 1 and 2 (64 entries), and nothing else, on a reset controller. */
static int restore(void)
{
	if (setjmp(tap_jmp))
		return -1;
	for (int i = 0; i < 100000 && leap_ctrl_inflight(ctrl); i++)
		leap_ctrl_poll(ctrl);
	leap_ctrl_abort_queued(ctrl);
	leap_ctrl_abort_aers(ctrl);
	if (leap_ctrl_inflight(ctrl)) {
		/* A command that never completes: a finding. */
		fprintf(stderr, "fuzz_ctrl: %u command(s) still in flight\n",
			leap_ctrl_inflight(ctrl));
		abort();
	}
	/* Every SQ first: an SQ may complete on any CQ, which cannot go while it is used. */
	for (uint16_t q = 1; q <= MAX_QID; q++)
		if (ft.sq_live[q])
			ft_ops.sq_delete(&ft, q);
	for (uint16_t q = 1; q <= MAX_QID; q++)
		if (ft.cq_live[q])
			ft_ops.cq_delete(&ft, q);
	leap_ctrl_reset(ctrl);
	tmem_next = tmem_after_setup;
	create_qpair(1);
	create_qpair(2);
	ft.ncqe = 0;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	size_t head;

	if (!ready) {
		if (setjmp(tap_jmp))
			abort();
		ft_ops.sq_delete = guarded_sq_delete;
		setup();
		leap_log_set_level(LEAP_LOG_ERROR);
		/* The first pages are the fuzzer's data area; queues come after. */
		talloc(DATA_BYTES / PG);
		tmem_after_setup = tmem_next;
		if (restore())
			abort();
		ready = 1;
	}
	head = size < DATA_BYTES ? size : DATA_BYTES;
	memcpy(tmem, data, head);
	data += head;
	size -= head;
	for (uint32_t n = 0; size >= REC && n < MAX_RECS; n++, data += REC, size -= REC) {
		uint16_t qid = data[0] % 3;
		struct nvme_sqe s;
		struct leap_req *req;

		memcpy(&s, data + 1, sizeof(s));
		s.prp1 = fold(s.prp1);
		/* With an SGL (PSDT != 0) the second half is the descriptor's length and type. */
		if (!(s.flags >> 6))
			s.prp2 = fold(s.prp2);
		if (!ft.sq_live[qid])
			continue;
		req = leap_qpair_req_get(&ft.qp[qid]);
		if (!req)
			break;
		req->sqe = s;
		leap_ctrl_submit(ctrl, req, qid == 0);
		leap_ctrl_poll(ctrl);
	}
	if (restore()) {
		fflush(stdout); /* the T_FAIL that says why */
		abort();
	}
	return 0;
}
