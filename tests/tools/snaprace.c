// SPDX-License-Identifier: BSD-3-Clause
/*
 * snaprace: a reader racing writers on the same blocks of a namespace under
 * the snapshot policy (issue 11, class 9). Each round writes 8 blocks on one
 * queue pair and, right behind it on a second queue pair, reads the same 8
 * blocks, while the write is still in flight at the overlay backend. To
 * hold the write back deterministically, each round first writes 8 blocks
 * just past NBLOCKS (the "blocker"): with the overlay's in-flight budget at
 * 1 (bdev qos) and reads classed above writes (the prio policy), the write
 * then waits in the arbiter while the read may overtake it. Every
 * block read must hold the data before the write (the seed last written
 * there, or the base's seed 1) or after it (this round's seed): never
 * anything else, such as the overlay's content before any write (the test
 * prefills the overlay with seed 50). Patterns are blkio's: (lba, seed).
 *
 *   snaprace SOCKET CTRL NBLOCKS SECONDS
 *
 * Prints rounds, reads that saw old and new data, and violations (with the
 * first one described); exit 0 when it ran (the test judges), 1 on errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "leapio/client.h"

#define RUN 8 /* blocks per command */

static uint32_t lba_size;

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

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int rw(struct leap_client_qpair *qp, uint8_t opc, uint64_t slba, void *buf, uint16_t cid)
{
	struct nvme_sqe s = { .opc = opc, .nsid = 1, .cid = cid };

	s.cdw10 = (uint32_t)slba;
	s.cdw11 = (uint32_t)(slba >> 32);
	s.cdw12 = RUN - 1;
	if (leap_client_prp(qp, &s, 0, buf, (size_t)RUN * lba_size) || leap_client_submit(qp, &s))
		return -1;
	leap_client_ring(qp);
	return 0;
}

static int reap(struct leap_client_qpair *qp)
{
	struct nvme_cqe cqe;
	uint64_t deadline = now_ms() + 10000;

	while (leap_client_poll(qp, &cqe, 1) == 0)
		if (now_ms() > deadline)
			return -ETIMEDOUT;
	return (cqe.status >> 1) & 0x7ff;
}

int main(int argc, char **argv)
{
	struct leap_client_opts o = { 0 };
	struct leap_client_qpair *wq, *rq;
	struct leap_client *c;
	char err[256] = "", first[200] = "";
	uint64_t nlb_ns, nblocks, deadline, seedx = 0x5eed;
	long rounds = 0, old = 0, fresh = 0, bad = 0;
	uint8_t *wbuf, *bbuf, *rbuf, *last;

	if (argc != 5) {
		fprintf(stderr, "usage: snaprace SOCKET CTRL NBLOCKS SECONDS\n");
		return 2;
	}
	o.socket = argv[1];
	o.ctrl = argv[2];
	o.mem_size = 4u << 20;
	o.errbuf = err;
	o.errbuf_sz = sizeof(err);
	nblocks = strtoull(argv[3], NULL, 0) / RUN * RUN;
	deadline = now_ms() + strtoull(argv[4], NULL, 0) * 1000;
	if (leap_client_attach(&o, &c)) {
		fprintf(stderr, "snaprace: attach: %s\n", err);
		return 1;
	}
	wbuf = leap_client_alloc(c, 64 * 1024, 4096);
	bbuf = leap_client_alloc(c, 64 * 1024, 4096);
	rbuf = leap_client_alloc(c, 64 * 1024, 4096);
	last = calloc(nblocks ? nblocks : 1, 1);
	if (!wbuf || !bbuf || !rbuf || !last || nblocks < RUN ||
	    leap_client_qpair_create(c, 16, false, &wq) ||
	    leap_client_qpair_create(c, 16, false, &rq) ||
	    leap_client_ns_info(c, 1, &nlb_ns, &lba_size) || nblocks + RUN > nlb_ns) {
		fprintf(stderr, "snaprace: setup failed\n");
		return 1;
	}
	memset(last, 1, nblocks); /* the base holds seed 1 */
	while (now_ms() < deadline) {
		uint64_t slba, seed = 2 + (uint64_t)(rounds % 40);
		int ws, rs, bs;

		seedx ^= seedx << 13;
		seedx ^= seedx >> 7;
		seedx ^= seedx << 17;
		slba = (seedx % (nblocks / RUN)) * RUN;
		for (uint32_t i = 0; i < RUN; i++)
			fill(wbuf + (size_t)i * lba_size, slba + i, seed);
		for (uint32_t i = 0; i < RUN; i++)
			fill(bbuf + (size_t)i * lba_size, nblocks + i, seed);
		memset(rbuf, 0xee, (size_t)RUN * lba_size);
		/* Blocker, then the write, then the read of the same blocks right behind it. */
		if (rw(wq, 0x01, nblocks, bbuf, 3) || rw(wq, 0x01, slba, wbuf, 1) ||
		    rw(rq, 0x02, slba, rbuf, 2))
			return 1;
		rs = reap(rq);
		bs = reap(wq);
		ws = reap(wq);
		if (ws || rs || bs) {
			fprintf(stderr, "snaprace: write status 0x%x, read status 0x%x\n", ws, rs);
			return 1;
		}
		for (uint32_t i = 0; i < RUN; i++) {
			int s = seed_of(rbuf + (size_t)i * lba_size, slba + i);

			if (s == last[slba + i]) {
				old++;
			} else if (s == (int)seed) {
				fresh++;
			} else {
				if (!bad++)
					snprintf(
					    first, sizeof(first),
					    "block %llu read seed %d, want %d (old) or %d (new)",
					    (unsigned long long)(slba + i), s, last[slba + i],
					    (int)seed);
			}
			last[slba + i] = (uint8_t)seed;
		}
		rounds++;
	}
	printf("rounds=%ld\nold=%ld\nnew=%ld\nviolations=%ld\nfirst_violation=%s\n", rounds, old,
	       fresh, bad, first);
	leap_client_detach(c);
	free(last);
	return 0;
}
