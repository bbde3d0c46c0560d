// SPDX-License-Identifier: BSD-3-Clause
/*
 * nvme_badclient: attaches to a leapd controller like a tenant and commits
 * one named kind of bad input, then prints what the controller answered:
 * "status sct=S sc=0xNN" for a completed command, or "csts=0x.." when the
 * controller went fatal. Used by tests/e2e/datapath.bats.
 *
 *   nvme_badclient SOCKET CTRL CASE
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leapio/client.h"
#include "leapio/shm_abi.h"

static int io(struct leap_client_qpair *qp, struct nvme_sqe *s)
{
	struct nvme_cqe cqe;

	if (leap_client_submit(qp, s))
		return -1;
	leap_client_ring(qp);
	for (long spins = 0; leap_client_poll(qp, &cqe, 1) == 0; spins++)
		if (spins > 200000000L)
			return -1;
	printf("status sct=%u sc=0x%02x cid=0x%04x\n", (cqe.status >> 9) & 7,
	       (cqe.status >> 1) & 0xff, cqe.cid);
	return 0;
}

static int admin(struct leap_client *c, struct nvme_sqe *s)
{
	struct nvme_cqe cqe;
	int rc = leap_client_admin(c, s, &cqe);

	if (rc)
		return rc;
	printf("status sct=%u sc=0x%02x\n", (cqe.status >> 9) & 7, (cqe.status >> 1) & 0xff);
	return 0;
}

int main(int argc, char **argv)
{
	struct leap_client_opts o = { 0 };
	struct leap_client_qpair *qp = NULL;
	struct leap_client *c;
	struct nvme_sqe s = { 0 };
	char err[256] = "";
	const char *kase;
	uint8_t *buf;
	int rc = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: nvme_badclient SOCKET CTRL CASE\n");
		return 2;
	}
	kase = argv[3];
	o.socket = argv[1];
	o.ctrl = argv[2];
	o.mem_size = 4 << 20;
	o.errbuf = err;
	o.errbuf_sz = sizeof(err);
	rc = leap_client_attach(&o, &c);
	if (rc) {
		fprintf(stderr, "nvme_badclient: %s\n", err);
		return 1;
	}
	buf = leap_client_alloc(c, 16384, 4096);
	if (strcmp(kase, "bad-queue-size") && strcmp(kase, "bad-queue-id") &&
	    (rc = leap_client_qpair_create(c, 16, false, &qp))) {
		fprintf(stderr, "nvme_badclient: qpair: %s\n", strerror(-rc));
		return 1;
	}
	s.cid = 0x4242;
	s.nsid = 1;
	s.opc = NVME_OPC_READ;
	s.prp1 = (uint64_t)(uintptr_t)buf;
	if (!strcmp(kase, "invalid-opcode")) {
		s.opc = 0x7e;
		rc = io(qp, &s);
	} else if (!strcmp(kase, "bad-nsid")) {
		s.nsid = 77;
		rc = io(qp, &s);
	} else if (!strcmp(kase, "lba-range")) {
		uint64_t nlb;
		uint32_t lba;

		leap_client_ns_info(c, 1, &nlb, &lba);
		s.cdw10 = (uint32_t)(nlb - 1);
		s.cdw11 = (uint32_t)((nlb - 1) >> 32);
		s.cdw12 = 1; /* two blocks: the second is past the end */
		s.opc = NVME_OPC_WRITE;
		rc = io(qp, &s);
	} else if (!strcmp(kase, "prp-outside")) {
		s.prp1 = 0x10000; /* not in any region we shared */
		rc = io(qp, &s);
	} else if (!strcmp(kase, "prp-misaligned")) {
		s.prp1 = (uint64_t)(uintptr_t)buf + 1;
		rc = io(qp, &s);
	} else if (!strcmp(kase, "prp-list-off-page")) {
		/* 3 pages: PRP2 is a list; put the list in the last 8 bytes of a page. */
		uint64_t *list = (uint64_t *)(buf + 8192 - 8);

		list[0] = (uint64_t)(uintptr_t)buf + 4096;
		s.prp1 = (uint64_t)(uintptr_t)buf;
		s.prp2 = (uint64_t)(uintptr_t)list;
		s.cdw12 = 23; /* 24 x 512 = 12 KiB with 512-byte blocks */
		rc = io(qp, &s);
	} else if (!strcmp(kase, "sq-doorbell-overflow")) {
		leap_client_doorbells(c)[leap_shm_sq_db(leap_client_qpair_id(qp))] = 1000;
		leap_client_kick(c);
		for (int i = 0; i < 5000 && !(leap_client_csts(c) & NVME_CSTS_CFS); i++)
			usleep(1000);
		printf("csts=0x%x\n", leap_client_csts(c));
	} else if (!strcmp(kase, "bad-queue-size")) {
		s.opc = NVME_OPC_CREATE_IO_CQ;
		s.prp1 = (uint64_t)(uintptr_t)buf;
		s.cdw10 = (0xffffu << 16) | 1;
		s.cdw11 = 1;
		rc = admin(c, &s);
	} else if (!strcmp(kase, "bad-queue-id")) {
		s.opc = NVME_OPC_CREATE_IO_CQ;
		s.prp1 = (uint64_t)(uintptr_t)buf;
		s.cdw10 = (15u << 16) | 0xfff;
		s.cdw11 = 1;
		rc = admin(c, &s);
	} else {
		fprintf(stderr, "nvme_badclient: unknown case '%s'\n", kase);
		rc = 2;
	}
	leap_client_detach(c);
	return rc ? 1 : 0;
}
