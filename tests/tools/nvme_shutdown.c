// SPDX-License-Identifier: BSD-3-Clause
/*
 * nvme_shutdown: attaches like a tenant, submits N writes (without waiting
 * for them), then shuts the controller down (CC.SHN) and, the moment
 * CSTS.SHST reads complete, counts the completions already posted without
 * waiting for any more. A controller that drains before it reports
 * shutdown complete shows all N; one that answers at once shows fewer.
 * Prints "submitted=N completed_at_shst=M errors=E".
 *
 *   nvme_shutdown SOCKET CTRL N
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leapio/client.h"

int main(int argc, char **argv)
{
	struct leap_client_opts o = { 0 };
	struct leap_client_qpair *qp;
	struct leap_client *c;
	struct nvme_cqe cqe[256];
	char err[256] = "";
	uint32_t n, done = 0, errors = 0;
	uint8_t *buf;
	int rc;

	if (argc != 4 || (n = (uint32_t)strtoul(argv[3], NULL, 0)) == 0 || n > 255) {
		fprintf(stderr, "usage: nvme_shutdown SOCKET CTRL N (1..255)\n");
		return 2;
	}
	o.socket = argv[1];
	o.ctrl = argv[2];
	o.mem_size = 8 << 20;
	o.errbuf = err;
	o.errbuf_sz = sizeof(err);
	if (leap_client_attach(&o, &c)) {
		fprintf(stderr, "nvme_shutdown: %s\n", err);
		return 1;
	}
	buf = leap_client_alloc(c, (size_t)n * 4096, 4096);
	rc = leap_client_qpair_create(c, 256, false, &qp);
	if (!buf || rc) {
		fprintf(stderr, "nvme_shutdown: setup failed\n");
		return 1;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct nvme_sqe s = { .opc = NVME_OPC_WRITE, .nsid = 1, .cid = (uint16_t)i };

		memset(buf + (size_t)i * 4096, (int)i, 4096);
		s.prp1 = (uint64_t)(uintptr_t)(buf + (size_t)i * 4096);
		s.cdw10 = i * 8;
		s.cdw12 = 7; /* 8 x 512 B */
		if (leap_client_submit(qp, &s)) {
			fprintf(stderr, "nvme_shutdown: submit failed\n");
			return 1;
		}
	}
	leap_client_ring(qp);
	rc = leap_client_shutdown(c, 10000);
	if (rc) {
		fprintf(stderr, "nvme_shutdown: shutdown: %s\n", strerror(-rc));
		return 1;
	}
	/* What was posted by the time SHST said complete: no waiting from here on. */
	for (int got; (got = leap_client_poll(qp, cqe, 256)) > 0;)
		for (int i = 0; i < got; i++, done++)
			if (cqe[i].status >> 1)
				errors++;
	printf("submitted=%u completed_at_shst=%u errors=%u\n", n, done, errors);
	leap_client_detach(c);
	return 0;
}
