// SPDX-License-Identifier: BSD-3-Clause
/*
 * blkio: precise block I/O through a leapd controller, for end-to-end
 * tests that must know what every block holds (snapshot routing, LBA
 * remapping, verdicts). Each block is filled with a pattern derived from
 * (lba, seed), so a read can tell, block by block, which write it sees.
 *
 *   blkio SOCKET CTRL NSID write SLBA NLB SEED
 *   blkio SOCKET CTRL NSID read  SLBA NLB            (prints "seeds: ..." per block run)
 *   blkio SOCKET CTRL NSID check SLBA:NLB:SEED[:PATLBA] ...
 *         (one read per spec; PATLBA: the blocks hold the pattern written for
 *          these LBAs instead, e.g. after a redirect to another place)
 *   blkio SOCKET CTRL NSID status OPC SLBA NLB       (prints the completion status only)
 *
 * A command covers at most 128 KiB. Exit 0 when every command succeeded
 * (and every check matched), 1 otherwise, with the first difference on
 * stderr. Seed 0 means zeroes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leapio/client.h"

static uint32_t lba_size;
static uint8_t *buf;

static uint64_t pat(uint64_t lba, uint64_t seed, uint32_t i)
{
	uint64_t x = (lba * 0x9e3779b97f4a7c15ull) ^ (seed * 0xbf58476d1ce4e5b9ull) ^ i;

	x ^= x >> 31;
	return seed ? x * 0x94d049bb133111ebull : 0;
}

static void fill(uint8_t *p, uint64_t lba, uint64_t seed)
{
	for (uint32_t i = 0; i < lba_size / 8; i++) {
		uint64_t v = pat(lba, seed, i);

		memcpy(p + i * 8, &v, 8);
	}
}

/* Which seed (of the ones we use: 0..64) produced this block, or -1. */
static int seed_of(const uint8_t *p, uint64_t lba)
{
	for (int s = 0; s <= 64; s++) {
		uint64_t a, b;

		memcpy(&a, p, 8);
		memcpy(&b, p + lba_size - 8, 8);
		if (a == pat(lba, (uint64_t)s, 0) && b == pat(lba, (uint64_t)s, lba_size / 8 - 1))
			return s;
	}
	return -1;
}

static int run(struct leap_client_qpair *qp, uint8_t opc, uint32_t nsid, uint64_t slba,
	       uint32_t nlb, uint16_t *status)
{
	struct nvme_sqe s = { .opc = opc, .nsid = nsid };
	struct nvme_cqe cqe;

	s.cdw10 = (uint32_t)slba;
	s.cdw11 = (uint32_t)(slba >> 32);
	s.cdw12 = nlb - 1;
	if ((opc == 0x01 || opc == 0x02 || opc == 0x05) &&
	    leap_client_prp(qp, &s, 0, buf, (size_t)nlb * lba_size))
		return -EINVAL;
	s.cid = 0x4242;
	if (leap_client_submit(qp, &s))
		return -EBUSY;
	leap_client_ring(qp);
	for (long spins = 0; leap_client_poll(qp, &cqe, 1) == 0; spins++)
		if (spins > 2000000000L)
			return -ETIMEDOUT;
	*status = (cqe.status >> 1) & 0x7ff;
	return 0;
}

int main(int argc, char **argv)
{
	struct leap_client_opts o = { 0 };
	struct leap_client_qpair *qp = NULL;
	struct leap_client *c = NULL;
	char err[256] = "";
	uint64_t nlb_ns;
	uint32_t nsid;
	uint16_t st;
	int rc = 1;

	if (argc < 6) {
		fprintf(stderr, "usage: blkio SOCKET CTRL NSID write|read|check|status ...\n");
		return 2;
	}
	o.socket = argv[1];
	o.ctrl = argv[2];
	o.mem_size = 4u << 20;
	o.errbuf = err;
	o.errbuf_sz = sizeof(err);
	nsid = (uint32_t)strtoul(argv[3], NULL, 0);
	if (leap_client_attach(&o, &c)) {
		fprintf(stderr, "blkio: attach: %s\n", err);
		return 1;
	}
	buf = leap_client_alloc(c, 128 * 1024, 4096);
	if (!buf || leap_client_qpair_create(c, 16, false, &qp) ||
	    leap_client_ns_info(c, nsid, &nlb_ns, &lba_size)) {
		fprintf(stderr, "blkio: setup failed\n");
		goto out;
	}
	if (!strcmp(argv[4], "write") && argc == 8) {
		uint64_t slba = strtoull(argv[5], NULL, 0), seed = strtoull(argv[7], NULL, 0);
		uint32_t nlb = (uint32_t)strtoul(argv[6], NULL, 0);

		for (uint32_t i = 0; i < nlb; i++)
			fill(buf + (size_t)i * lba_size, slba + i, seed);
		if (run(qp, 0x01, nsid, slba, nlb, &st) || st) {
			fprintf(stderr, "blkio: write %lu+%u: status 0x%x\n", (unsigned long)slba,
				nlb, st);
			goto out;
		}
		rc = 0;
	} else if (!strcmp(argv[4], "status") && argc == 8) {
		uint8_t opc = (uint8_t)strtoul(argv[5], NULL, 0);
		uint64_t slba = strtoull(argv[6], NULL, 0);
		uint32_t nlb = (uint32_t)strtoul(argv[7], NULL, 0);

		memset(buf, 0, (size_t)nlb * lba_size);
		if (run(qp, opc, nsid, slba, nlb, &st))
			goto out;
		printf("status sct=%u sc=0x%02x\n", (st >> 8) & 7, st & 0xff);
		rc = 0;
	} else if (!strcmp(argv[4], "read") && argc == 7) {
		uint64_t slba = strtoull(argv[5], NULL, 0);
		uint32_t nlb = (uint32_t)strtoul(argv[6], NULL, 0);
		int prev = -2;

		if (run(qp, 0x02, nsid, slba, nlb, &st) || st) {
			fprintf(stderr, "blkio: read: status 0x%x\n", st);
			goto out;
		}
		printf("seeds:");
		for (uint32_t i = 0; i < nlb; i++) {
			int s = seed_of(buf + (size_t)i * lba_size, slba + i);

			if (s != prev)
				printf(" %lu:%d", (unsigned long)(slba + i), s);
			prev = s;
		}
		printf("\n");
		rc = 0;
	} else if (!strcmp(argv[4], "check")) {
		rc = 0;
		for (int a = 5; a < argc && !rc; a++) {
			unsigned long long slba, seed, plba;
			unsigned int nlb;
			int n = sscanf(argv[a], "%llu:%u:%llu:%llu", &slba, &nlb, &seed, &plba);

			if (n == 3)
				plba = slba;
			if (n < 3 || !nlb) {
				fprintf(stderr, "blkio: bad check spec '%s'\n", argv[a]);
				rc = 1;
				break;
			}
			if (run(qp, 0x02, nsid, slba, nlb, &st) || st) {
				fprintf(stderr, "blkio: read %llu+%u: status 0x%x\n", slba, nlb,
					st);
				rc = 1;
				break;
			}
			for (uint32_t i = 0; i < nlb; i++) {
				int s = seed_of(buf + (size_t)i * lba_size, plba + i);

				if (s != (int)seed) {
					fprintf(stderr,
						"blkio: lba %llu holds seed %d, want %llu\n",
						slba + i, s, seed);
					rc = 1;
					break;
				}
			}
		}
	} else {
		fprintf(stderr, "blkio: bad command\n");
		rc = 2;
	}
out:
	leap_client_qpair_destroy(qp);
	leap_client_detach(c);
	return rc;
}
