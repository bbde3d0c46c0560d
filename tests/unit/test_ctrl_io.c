// SPDX-License-Identifier: BSD-3-Clause
/*
 * I/O commands of the controller model on the real mem backend: data round
 * trips, every validation status (exact SCT/SC, and the backend never sees
 * a rejected command), Flush, Write Zeroes, Dataset Management, Compare,
 * CID echo, the policy hook points (reject, override, defer/resume), bounce
 * buffers for buffers a direct-I/O backend cannot take, a full backend
 * (-EAGAIN) keeping submission order, backend errors mapped to media
 * statuses, write-through when the volatile write cache is off, and the
 * statistics the control plane reads.
 *
 * The mem bdev's ops table is wrapped to count submissions, remember the
 * last one, refuse with -EAGAIN, or fail the next I/O with -EIO.
 */
#include <errno.h>

#include "leapio/nvmf_spec.h"
#include "test_ctrl_helpers.h"

/* ---- backend wrapper ------------------------------------------------------------------- */

static struct leap_bdev_ops wrap_ops;
static int (*real_submit)(struct leap_bdev_channel *ch, struct leap_bdev_io *io);
static uint32_t n_submitted, eagain_budget, fail_next;
static struct leap_bdev_io last_bio;
static leap_bdev_cb orig_cb;

static void fail_cb(struct leap_bdev_io *io, uint16_t status)
{
	(void)status;
	io->cb = orig_cb;
	orig_cb(io, leap_bdev_status_from_errno(-EIO, (enum leap_bdev_op)io->op));
}

static int wrap_submit(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	if (eagain_budget) {
		eagain_budget--;
		return -EAGAIN;
	}
	n_submitted++;
	last_bio = *io;
	if (fail_next) {
		fail_next--;
		orig_cb = io->cb;
		io->cb = fail_cb;
	}
	return real_submit(ch, io);
}

static void io_setup(void)
{
	setup();
	wrap_ops = *mbdev->ops;
	real_submit = mbdev->ops->submit;
	wrap_ops.submit = wrap_submit;
	mbdev->ops = &wrap_ops;
	n_submitted = eagain_budget = fail_next = 0;
	memset(&last_bio, 0, sizeof(last_bio));
	ctrl->hook_submit = NULL;
	ctrl->hook_complete = NULL;
	create_qpair(1);
}

/* ---- data round trips ------------------------------------------------------------------- */

static void test_write_read_roundtrip(void)
{
	uint64_t w, r;

	io_setup();
	w = talloc(33);
	r = talloc(33);
	/* 8 blocks from a buffer at a 512-byte offset: PRP1 + PRP2. */
	fill(w + 512, 8 * 512, 1);
	T_ASSERT_OK(io(NVME_OPC_WRITE, 1, 100, 8, w + 512));
	T_ASSERT_EQ(last_bio.op, LEAP_BDEV_OP_WRITE);
	T_ASSERT_U64_EQ(last_bio.offset, 100 * 512);
	T_ASSERT_EQ(last_bio.len, 8 * 512);
	T_ASSERT_OK(io(NVME_OPC_READ, 1, 100, 8, r));
	T_ASSERT_MEM_EQ(lp(r), lp(w + 512), 8 * 512);
	/* MDTS-sized (128 KiB) through a PRP list. */
	fill(w, 128 * 1024, 9);
	T_ASSERT_OK(io(NVME_OPC_WRITE, 1, 1000, 256, w));
	memset(lp(r), 0, 128 * 1024);
	T_ASSERT_OK(io(NVME_OPC_READ, 1, 1000, 256, r));
	T_ASSERT_MEM_EQ(lp(r), lp(w), 128 * 1024);
}

/* The same data path with SGLs on a memory transport that offers them (SGLS = 1). */
static void test_sgl_write_read(void)
{
	static const struct leap_transport_caps sgl_caps = { .prp = true,
							     .sgl_memory = true,
							     .sgls = 1 };
	uint64_t w, r, list;
	struct nvme_sgl_desc *l;
	struct nvme_sqe s;
	struct nvme_cqe *c;

	io_setup();
	w = talloc(4);
	r = talloc(4);
	list = talloc(1);
	l = lp(list);
	ft_ops.caps = &sgl_caps;
	fill(w, 4 * 4096, 5);
	/* Write 16 blocks from one SGL data block. */
	s = rw_sqe(NVME_OPC_WRITE, 1, 64, 16, 0, 512);
	s.flags = 1u << NVME_SQE_PSDT_SHIFT;
	*(struct nvme_sgl_desc *)&s.prp1 = (struct nvme_sgl_desc){ .addr = w, .length = 8192 };
	T_ASSERT_OK(run(1, &s));
	T_ASSERT_EQ(last_bio.len, 8192);
	/* Read them back through a Last Segment of two data blocks, in reverse page order. */
	l[0] = (struct nvme_sgl_desc){ .addr = r + 4096, .length = 4096 };
	l[1] = (struct nvme_sgl_desc){ .addr = r, .length = 4096 };
	s = rw_sqe(NVME_OPC_READ, 1, 64, 16, 0, 512);
	s.flags = 1u << NVME_SQE_PSDT_SHIFT;
	*(struct nvme_sgl_desc *)&s.prp1 = (struct nvme_sgl_desc){
		.addr = list, .length = 32, .type = NVME_SGL_TYPE_LAST_SEGMENT << 4
	};
	T_ASSERT_OK(run(1, &s));
	T_ASSERT_MEM_EQ(lp(r + 4096), lp(w), 4096);
	T_ASSERT_MEM_EQ(lp(r), lp(w + 4096), 4096);
	/* An SGL that describes less than the command moves: Data SGL Length Invalid, no I/O. */
	n_submitted = 0;
	*(struct nvme_sgl_desc *)&s.prp1 = (struct nvme_sgl_desc){ .addr = r, .length = 4096 };
	c = run(1, &s);
	T_ASSERT_STATUS(c, NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
	T_ASSERT_EQ(n_submitted, 0);
	/* PSDT 11b is reserved. */
	s.flags = 3u << NVME_SQE_PSDT_SHIFT;
	T_ASSERT_STATUS(run(1, &s), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	ft_ops.caps = NULL;
	/* Without SGLS the same command is Invalid Field, as before. */
	s.flags = 1u << NVME_SQE_PSDT_SHIFT;
	T_ASSERT_STATUS(run(1, &s), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
}

static void test_namespaces_are_separate(void)
{
	uint64_t w, r;

	io_setup();
	w = talloc(4);
	r = talloc(4);
	fill(w, 3 * 4096, 3);
	T_ASSERT_OK(io(NVME_OPC_WRITE, 2, 0, 3, w));
	/* nsid 2 starts 16 MiB into the bdev. */
	T_ASSERT_U64_EQ(last_bio.offset, 16 * MiB);
	T_ASSERT_OK(io(NVME_OPC_READ, 2, 0, 3, r));
	T_ASSERT_MEM_EQ(lp(r), lp(w), 3 * 4096);
	/* The last blocks of nsid 1 (just below 16 MiB) are untouched. */
	T_ASSERT_OK(io(NVME_OPC_READ, 1, NS1_BLOCKS - 8, 8, r));
	T_ASSERT(all_bytes(lp(r), 8 * 512, 0));
	/* The last block of each namespace is addressable. */
	T_ASSERT_OK(io(NVME_OPC_READ, 2, NS2_BLOCKS - 1, 1, r));
	T_ASSERT_OK(io(NVME_OPC_READ, 1, NS1_BLOCKS - 1, 1, r));
}

/* ---- validation ---------------------------------------------------------------------------- */

static void test_io_validation_statuses(void)
{
	struct {
		const char *what;
		uint8_t opc, flags;
		uint32_t nsid;
		uint64_t slba;
		uint32_t nlb;
		int64_t prp1_delta; /* added to a valid PRP1 (INT64_MIN: point outside) */
		uint8_t sct, sc;
	} c[] = {
		{ "unknown opcode", 0x7f, 0, 1, 0, 1, 0, 0, 0x01 },
		{ "write uncorrectable", NVME_OPC_WRITE_UNCORRECTABLE, 0, 1, 0, 1, 0, 0, 0x01 },
		{ "nsid 0", NVME_OPC_READ, 0, 0, 0, 1, 0, 0, 0x0b },
		{ "inactive nsid", NVME_OPC_READ, 0, 3, 0, 1, 0, 0, 0x0b },
		{ "nsid past NN", NVME_OPC_READ, 0, LEAP_CTRL_MAX_NS + 1, 0, 1, 0, 0, 0x0b },
		{ "broadcast nsid", NVME_OPC_READ, 0, 0xffffffff, 0, 1, 0, 0, 0x0b },
		{ "broadcast flush", NVME_OPC_FLUSH, 0, 0xffffffff, 0, 1, 0, 0, 0x0b },
		{ "last block + 1", NVME_OPC_READ, 0, 1, NS1_BLOCKS - 1, 2, 0, 0, 0x80 },
		{ "slba past end", NVME_OPC_WRITE, 0, 1, NS1_BLOCKS, 1, 0, 0, 0x80 },
		{ "slba overflow", NVME_OPC_READ, 0, 1, UINT64_MAX, 2, 0, 0, 0x80 },
		{ "ns2 past end", NVME_OPC_READ, 0, 2, NS2_BLOCKS, 1, 0, 0, 0x80 },
		{ "compare past end", NVME_OPC_COMPARE, 0, 2, NS2_BLOCKS - 1, 2, 0, 0, 0x80 },
		{ "wz past end", NVME_OPC_WRITE_ZEROES, 0, 1, NS1_BLOCKS - 3, 4, 0, 0, 0x80 },
		{ "over MDTS 512", NVME_OPC_READ, 0, 1, 0, 257, 0, 0, 0x02 },
		{ "over MDTS 4K", NVME_OPC_WRITE, 0, 2, 0, 33, 0, 0, 0x02 },
		{ "PSDT SGL", NVME_OPC_READ, 1u << 6, 1, 0, 1, 0, 0, 0x02 },
		{ "PSDT reserved", NVME_OPC_READ, 3u << 6, 1, 0, 1, 0, 0, 0x02 },
		{ "fused first", NVME_OPC_COMPARE, 1, 1, 0, 1, 0, 0, 0x02 },
		{ "fused second", NVME_OPC_WRITE, 2, 1, 0, 1, 0, 0, 0x02 },
		{ "PRP1 not dword aligned", NVME_OPC_READ, 0, 1, 0, 1, 2, 0, 0x13 },
		{ "PRP1 outside region", NVME_OPC_READ, 0, 1, 0, 1, INT64_MIN, 0, 0x04 },
	};
	uint64_t buf;

	io_setup();
	buf = talloc(40);
	for (size_t i = 0; i < TAP_N(c); i++) {
		uint32_t lba = c[i].nsid == 2 ? 4096 : 512;
		struct nvme_sqe s = rw_sqe(c[i].opc, c[i].nsid, c[i].slba, c[i].nlb, buf, lba);
		struct nvme_cqe *cqe;

		s.flags = c[i].flags;
		s.cid = (uint16_t)(0x900 + i);
		if (c[i].prp1_delta == INT64_MIN)
			s.prp1 = TBASE - 64 * PG;
		else
			s.prp1 += (uint64_t)c[i].prp1_delta;
		memset(lp(buf), 0xa5, 40 * PG);
		cqe = run(1, &s);
		if (SCT_OF(cqe->status) != c[i].sct || SC_OF(cqe->status) != c[i].sc)
			T_FAIL("%s: got SCT %u SC 0x%02x, want SCT %u SC 0x%02x", c[i].what,
			       SCT_OF(cqe->status), SC_OF(cqe->status), c[i].sct, c[i].sc);
		T_ASSERT_EQ(DNR_OF(cqe->status), 1);
		T_ASSERT_EQ(cqe->cid, 0x900 + i);
		/* Rejected before anything moved: no backend I/O, host memory untouched. */
		T_ASSERT_EQ(n_submitted, 0);
		T_ASSERT(all_bytes(lp(buf), 40 * PG, 0xa5));
	}
}

static void test_prp_list_entry_errors(void)
{
	struct nvme_sqe s;
	uint64_t buf, *list;

	io_setup();
	buf = talloc(8);
	s = rw_sqe(NVME_OPC_READ, 1, 0, 24, buf, 512); /* 3 pages: PRP1 + a list of 2 */
	list = lp(s.prp2);
	list[1] |= 0x200;
	T_ASSERT_STATUS(run(1, &s), NVME_SCT_GENERIC, NVME_SC_INVALID_PRP_OFFSET);
	list[1] = TBASE + TMEM_PAGES * PG;
	T_ASSERT_STATUS(run(1, &s), NVME_SCT_GENERIC, NVME_SC_DATA_TRANSFER_ERROR);
	s.prp2 = TBASE - PG; /* the list itself is outside */
	T_ASSERT_STATUS(run(1, &s), NVME_SCT_GENERIC, NVME_SC_DATA_TRANSFER_ERROR);
	T_ASSERT_EQ(n_submitted, 0);
}

/* ---- Flush, Write Zeroes, DSM ---------------------------------------------------------------- */

static void test_flush(void)
{
	struct nvme_sqe s = { .opc = NVME_OPC_FLUSH, .nsid = 2, .cid = 5 };

	io_setup();
	T_ASSERT_OK(run(1, &s));
	T_ASSERT_EQ(n_submitted, 1);
	T_ASSERT_EQ(last_bio.op, LEAP_BDEV_OP_FLUSH);
}

static void test_write_zeroes(void)
{
	struct nvme_sqe s;
	uint64_t w, r;

	io_setup();
	w = talloc(4);
	r = talloc(4);
	fill(w, 16 * 512, 5);
	T_ASSERT_OK(io(NVME_OPC_WRITE, 1, 0, 16, w));
	s = rw_sqe(NVME_OPC_WRITE_ZEROES, 1, 4, 8, 0, 512);
	T_ASSERT_OK(run(1, &s));
	T_ASSERT_EQ(last_bio.op, LEAP_BDEV_OP_WRITE_ZEROES);
	T_ASSERT_U64_EQ(last_bio.offset, 4 * 512);
	T_ASSERT_EQ(last_bio.len, 8 * 512);
	T_ASSERT_OK(io(NVME_OPC_READ, 1, 0, 16, r));
	T_ASSERT_MEM_EQ(lp(r), lp(w), 4 * 512);
	T_ASSERT(all_bytes((uint8_t *)lp(r) + 4 * 512, 8 * 512, 0));
	T_ASSERT_MEM_EQ((uint8_t *)lp(r) + 12 * 512, (uint8_t *)lp(w) + 12 * 512, 4 * 512);
	/* DEAC: deallocate instead (reads zeroes too, DLFEAT). */
	T_ASSERT_OK(io(NVME_OPC_WRITE, 1, 0, 16, w));
	s.cdw12 |= NVME_WZ_DEAC;
	T_ASSERT_OK(run(1, &s));
	T_ASSERT_EQ(last_bio.op, LEAP_BDEV_OP_DEALLOCATE);
	T_ASSERT_OK(io(NVME_OPC_READ, 1, 0, 16, r));
	T_ASSERT(all_bytes((uint8_t *)lp(r) + 4 * 512, 8 * 512, 0));
	T_ASSERT_MEM_EQ(lp(r), lp(w), 4 * 512);
	/* No data transfer, so no MDTS limit: a large zeroing on nsid 2 works. */
	s = rw_sqe(NVME_OPC_WRITE_ZEROES, 2, 0, 4096, 0, 4096);
	T_ASSERT_OK(run(1, &s));
	T_ASSERT_EQ(last_bio.len, 16 * MiB);
}

static struct nvme_sqe dsm_sqe(uint64_t ranges_addr, uint32_t nr, bool ad)
{
	struct nvme_sqe s = { .opc = NVME_OPC_DATASET_MANAGEMENT, .nsid = 1, .cid = 0xd5 };

	s.cdw10 = nr - 1;
	s.cdw11 = ad ? NVME_DSM_ATTR_DEALLOCATE : 0;
	prp_for(&s, ranges_addr, nr * sizeof(struct nvme_dsm_range));
	return s;
}

static void test_dsm_deallocate(void)
{
	struct nvme_dsm_range *rg;
	struct nvme_sqe s;
	uint64_t w, r, ranges;
	uint8_t *rd;

	io_setup();
	w = talloc(8);
	r = talloc(8);
	ranges = talloc(1);
	fill(w, 64 * 512, 11);
	T_ASSERT_OK(io(NVME_OPC_WRITE, 1, 0, 64, w));
	rg = lp(ranges);
	rg[0] = (struct nvme_dsm_range){ .slba = 0, .nlb = 8 };
	rg[1] = (struct nvme_dsm_range){ .slba = 20, .nlb = 0 }; /* empty: skipped */
	rg[2] = (struct nvme_dsm_range){ .slba = 40, .nlb = 4 };
	s = dsm_sqe(ranges, 3, true);
	n_submitted = 0;
	T_ASSERT_OK(run(1, &s));
	T_ASSERT_EQ(n_submitted, 2);
	T_ASSERT_EQ(last_bio.op, LEAP_BDEV_OP_DEALLOCATE);
	T_ASSERT_OK(io(NVME_OPC_READ, 1, 0, 64, r));
	rd = lp(r);
	T_ASSERT(all_bytes(rd, 8 * 512, 0));
	T_ASSERT_MEM_EQ(rd + 8 * 512, (uint8_t *)lp(w) + 8 * 512, 32 * 512);
	T_ASSERT(all_bytes(rd + 40 * 512, 4 * 512, 0));
	T_ASSERT_MEM_EQ(rd + 44 * 512, (uint8_t *)lp(w) + 44 * 512, 20 * 512);
}

static void test_dsm_invalid_range_touches_nothing(void)
{
	struct nvme_dsm_range *rg;
	struct nvme_sqe s;
	uint64_t w, r, ranges;

	io_setup();
	w = talloc(2);
	r = talloc(2);
	ranges = talloc(1);
	fill(w, 8 * 512, 12);
	T_ASSERT_OK(io(NVME_OPC_WRITE, 1, 0, 8, w));
	rg = lp(ranges);
	rg[0] = (struct nvme_dsm_range){ .slba = 0, .nlb = 8 };
	rg[1] = (struct nvme_dsm_range){ .slba = NS1_BLOCKS - 2, .nlb = 4 };
	s = dsm_sqe(ranges, 2, true);
	n_submitted = 0;
	T_ASSERT_STATUS(run(1, &s), NVME_SCT_GENERIC, NVME_SC_LBA_OUT_OF_RANGE);
	T_ASSERT_EQ(n_submitted, 0);
	rg[1] = (struct nvme_dsm_range){ .slba = UINT64_MAX - 1, .nlb = 4 };
	T_ASSERT_STATUS(run(1, &s), NVME_SCT_GENERIC, NVME_SC_LBA_OUT_OF_RANGE);
	T_ASSERT_OK(io(NVME_OPC_READ, 1, 0, 8, r));
	T_ASSERT_MEM_EQ(lp(r), lp(w), 8 * 512);
	/* Without the deallocate attribute the ranges are hints: nothing happens. */
	rg[1] = (struct nvme_dsm_range){ .slba = 0, .nlb = 1 };
	s = dsm_sqe(ranges, 2, false);
	n_submitted = 0;
	T_ASSERT_OK(run(1, &s));
	T_ASSERT_EQ(n_submitted, 0);
	/* The range list must be readable tenant memory. */
	s = dsm_sqe(ranges, 2, true);
	s.prp1 = TBASE - PG;
	T_ASSERT_STATUS(run(1, &s), NVME_SCT_GENERIC, NVME_SC_DATA_TRANSFER_ERROR);
}

static void test_dsm_ranges_straddle_pages(void)
{
	struct nvme_dsm_range rg[2] = { { .slba = 2, .nlb = 2 }, { .slba = 10, .nlb = 3 } };
	struct nvme_sqe s = { .opc = NVME_OPC_DATASET_MANAGEMENT, .nsid = 1 };
	uint64_t w, r, a, c;
	uint8_t *rd;

	io_setup();
	w = talloc(4);
	r = talloc(4);
	a = talloc(2); /* first page of the list; a+PG is skipped */
	c = talloc(1); /* the second, not contiguous with the first */
	fill(w, 16 * 512, 13);
	T_ASSERT_OK(io(NVME_OPC_WRITE, 1, 0, 16, w));
	/* Range 0 at a+4072..4087, range 1 split: 8 bytes at a+4088, 8 at c. */
	memcpy((uint8_t *)lp(a) + 4072, &rg[0], 16);
	memcpy((uint8_t *)lp(a) + 4088, &rg[1], 8);
	memcpy(lp(c), (uint8_t *)&rg[1] + 8, 8);
	s.prp1 = a + 4072;
	s.prp2 = c;
	s.cdw10 = 1;
	s.cdw11 = NVME_DSM_ATTR_DEALLOCATE;
	T_ASSERT_OK(run(1, &s));
	T_ASSERT_OK(io(NVME_OPC_READ, 1, 0, 16, r));
	rd = lp(r);
	T_ASSERT_MEM_EQ(rd, lp(w), 2 * 512);
	T_ASSERT(all_bytes(rd + 2 * 512, 2 * 512, 0));
	T_ASSERT_MEM_EQ(rd + 4 * 512, (uint8_t *)lp(w) + 4 * 512, 6 * 512);
	T_ASSERT(all_bytes(rd + 10 * 512, 3 * 512, 0));
	T_ASSERT_MEM_EQ(rd + 13 * 512, (uint8_t *)lp(w) + 13 * 512, 3 * 512);
}

/* ---- Compare ------------------------------------------------------------------------------------ */

static void test_compare(void)
{
	uint64_t w, c;
	struct leap_stats st;

	io_setup();
	w = talloc(8);
	c = talloc(8);
	fill(w, 16 * 512, 21);
	T_ASSERT_OK(io(NVME_OPC_WRITE, 1, 50, 16, w));
	memcpy(lp(c + 100), lp(w), 16 * 512);
	/* Host buffer at an odd (dword) offset spanning three pages. */
	T_ASSERT_OK(io(NVME_OPC_COMPARE, 1, 50, 16, c + 100));
	/* The bounce buffer, not the host's, received the media data. */
	T_ASSERT_EQ(last_bio.op, LEAP_BDEV_OP_READ);
	T_ASSERT_EQ(last_bio.iovcnt, 1);
	T_ASSERT(last_bio.iov->iov_base < (void *)tmem ||
		 last_bio.iov->iov_base >= (void *)(tmem + TMEM_PAGES * PG));
	/* One byte different in the last block. */
	((uint8_t *)lp(c + 100))[16 * 512 - 1] ^= 1;
	T_ASSERT_STATUS(io(NVME_OPC_COMPARE, 1, 50, 16, c + 100), NVME_SCT_MEDIA,
			NVME_SC_COMPARE_FAILURE);
	/* A mismatch is not a media error, and the host's buffer is not modified. */
	T_ASSERT_EQ(ctrl->media_errors, 0);
	T_ASSERT_EQ(((uint8_t *)lp(c + 100))[16 * 512 - 1], ((uint8_t *)lp(w))[16 * 512 - 1] ^ 1);
	/* 4 KiB LBAs. */
	fill(w, 2 * 4096, 22);
	T_ASSERT_OK(io(NVME_OPC_WRITE, 2, 7, 2, w));
	T_ASSERT_OK(io(NVME_OPC_COMPARE, 2, 7, 2, w));
	T_ASSERT_EQ(leap_ctrl_stats_snapshot(ctrl, 0, &st), 0);
	T_ASSERT_EQ(st.ops[LEAP_STATS_READ], 3); /* Compare counts as a read command */
	T_ASSERT_EQ(st.bytes[0], 0);		 /* but transfers nothing to the host */
	T_ASSERT_EQ(
	    leap_stats_error_count(&st, NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILURE)), 1);
}

static void test_many_compares_share_bounce_buffers(void)
{
	enum { N = 3 * LEAP_CTRL_BOUNCE_SLOTS + 1 };
	uint64_t w, bufs[N];
	uint32_t base, mism = 0;

	io_setup();
	w = talloc(1);
	fill(w, 8 * 512, 31);
	T_ASSERT_OK(io(NVME_OPC_WRITE, 1, 0, 8, w));
	base = ft.ncqe;
	for (int i = 0; i < N; i++) {
		struct nvme_sqe s;

		bufs[i] = talloc(1);
		memcpy(lp(bufs[i]), lp(w), 8 * 512);
		if (i % 3 == 1)
			((uint8_t *)lp(bufs[i]))[i * 7] ^= 0x80;
		s = rw_sqe(NVME_OPC_COMPARE, 1, 0, 8, bufs[i], 512);
		s.cid = (uint16_t)i;
		submit(1, &s);
	}
	/* Only LEAP_CTRL_BOUNCE_SLOTS can be at the backend; the rest wait, counted in flight. */
	T_ASSERT_EQ(leap_ctrl_inflight(ctrl), N);
	T_ASSERT(wait_cqes(base, N));
	for (int i = 0; i < N; i++) {
		struct nvme_cqe *c = &ft.cqes[(base + i) % MAX_CQES];

		/* Completions in submission order, each with its own verdict. */
		T_ASSERT_EQ(c->cid, i);
		if (i % 3 == 1) {
			T_ASSERT_STATUS(c, NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILURE);
			mism++;
		} else {
			T_ASSERT_OK(c);
		}
	}
	T_ASSERT_EQ(mism, N / 3);
	T_ASSERT_EQ(ctrl->bounce_free, (1u << LEAP_CTRL_BOUNCE_SLOTS) - 1);
	T_ASSERT_EQ(leap_ctrl_inflight(ctrl), 0);
}

/* ---- CID echo ---------------------------------------------------------------------------------- */

static void test_cid_echo_and_duplicates(void)
{
	struct nvme_sqe s;
	uint64_t buf;
	uint32_t base;

	io_setup();
	buf = talloc(4);
	s = rw_sqe(NVME_OPC_READ, 1, 0, 1, buf, 512);
	s.cid = 0xffff;
	T_ASSERT_EQ(run(1, &s)->cid, 0xffff);
	T_ASSERT_EQ(ft.cqes[(ft.ncqe - 1) % MAX_CQES].sqid, 1);
	/* Three in flight with the same CID: three completions, all echoing it. */
	base = ft.ncqe;
	s.cid = 7;
	submit(1, &s);
	submit(1, &s);
	s.opc = NVME_OPC_WRITE;
	submit(1, &s);
	T_ASSERT(wait_cqes(base, 3));
	for (int i = 0; i < 3; i++) {
		T_ASSERT_OK(&ft.cqes[base + i]);
		T_ASSERT_EQ(ft.cqes[base + i].cid, 7);
	}
	/* Different slots served them: the CID is not an index. */
	T_ASSERT(ft.reqs[base] != ft.reqs[base + 1]);
	/* Errors echo too. */
	s.nsid = 99;
	s.cid = 0x8001;
	T_ASSERT_EQ(run(1, &s)->cid, 0x8001);
}

static void test_two_io_queues(void)
{
	uint64_t buf;
	struct nvme_sqe s;
	struct leap_stats st;

	io_setup();
	create_qpair(2);
	buf = talloc(1);
	s = rw_sqe(NVME_OPC_READ, 1, 0, 1, buf, 512);
	T_ASSERT_EQ(run(2, &s)->sqid, 2);
	T_ASSERT_EQ(run(1, &s)->sqid, 1);
	T_ASSERT_EQ(run(2, &s)->sqid, 2);
	/* Per-queue-pair statistics. */
	memset(&st, 0, sizeof(st));
	leap_stats_accumulate(&st, &ft.qp[2].stats);
	T_ASSERT_EQ(st.ops[LEAP_STATS_READ], 2);
	memset(&st, 0, sizeof(st));
	leap_stats_accumulate(&st, &ft.qp[1].stats);
	T_ASSERT_EQ(st.ops[LEAP_STATS_READ], 1);
}

/* ---- policy hooks ------------------------------------------------------------------------------ */

static uint32_t hook_calls, complete_calls;
static struct leap_req *deferred_req;
static uint64_t seen_hook_data;

static uint16_t deny_writes(struct leap_req *req, void *arg)
{
	(void)arg;
	hook_calls++;
	req->hook_data[0] = 0x5eed0000 | req->sqe.opc;
	if (req->sqe.opc == NVME_OPC_WRITE)
		return NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_ACCESS_DENIED) | NVME_CQE_DNR;
	return LEAP_HOOK_RET_CONTINUE;
}

static uint16_t on_complete(struct leap_req *req, void *arg)
{
	complete_calls++;
	seen_hook_data = req->hook_data[0];
	/* Turn a successful flush into an error, as a policy might. */
	if (req->sqe.opc == NVME_OPC_FLUSH && req->status == 0)
		return *(uint16_t *)arg;
	return LEAP_HOOK_RET_CONTINUE;
}

static uint16_t defer_all(struct leap_req *req, void *arg)
{
	(void)arg;
	hook_calls++;
	deferred_req = req;
	return LEAP_HOOK_RET_DEFER;
}

static void test_hook_submit_rejects(void)
{
	uint64_t buf;

	io_setup();
	buf = talloc(1);
	hook_calls = complete_calls = 0;
	ctrl->hook_submit = deny_writes;
	ctrl->hook_complete = on_complete;
	T_ASSERT_STATUS(io(NVME_OPC_WRITE, 1, 0, 1, buf), NVME_SCT_MEDIA, NVME_SC_ACCESS_DENIED);
	T_ASSERT_EQ(n_submitted, 0);
	T_ASSERT_OK(io(NVME_OPC_READ, 1, 0, 1, buf));
	T_ASSERT_EQ(n_submitted, 1);
	T_ASSERT_EQ(hook_calls, 2);
	/* Hook data set at submit is visible at complete. */
	T_ASSERT_U64_EQ(seen_hook_data, 0x5eed0000 | NVME_OPC_READ);
	/* Invalid commands never reach the submit hook (it runs after validation). */
	T_ASSERT_STATUS(io(NVME_OPC_READ, 1, NS1_BLOCKS, 1, buf), NVME_SCT_GENERIC,
			NVME_SC_LBA_OUT_OF_RANGE);
	T_ASSERT_EQ(hook_calls, 2);
	T_ASSERT_EQ(complete_calls, 3);
}

static void test_hook_complete_overrides(void)
{
	struct nvme_sqe s = { .opc = NVME_OPC_FLUSH, .nsid = 1 };
	uint16_t st = NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);

	io_setup();
	ctrl->hook_complete = on_complete;
	ctrl->hook_complete_arg = &st;
	T_ASSERT_STATUS(run(1, &s), NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
	T_ASSERT_EQ(n_submitted, 1); /* it did reach the backend */
	T_ASSERT_EQ(ctrl->error_count, 1);
}

static void test_hook_defer_and_resume(void)
{
	uint64_t w, r;
	uint32_t base;

	io_setup();
	w = talloc(1);
	r = talloc(1);
	fill(w, 512, 41);
	ctrl->hook_submit = defer_all;
	base = ft.ncqe;
	{
		struct nvme_sqe s = rw_sqe(NVME_OPC_WRITE, 1, 3, 1, w, 512);

		submit(1, &s);
	}
	for (int i = 0; i < 100; i++)
		leap_ctrl_poll(ctrl);
	T_ASSERT_EQ(ft.ncqe, base);
	T_ASSERT_EQ(n_submitted, 0);
	T_ASSERT_EQ(leap_ctrl_inflight(ctrl), 1);
	leap_ctrl_resume(ctrl, deferred_req, 0);
	T_ASSERT(wait_cqes(base, 1));
	T_ASSERT_OK(&ft.cqes[base % MAX_CQES]);
	T_ASSERT_EQ(n_submitted, 1);
	T_ASSERT_EQ(leap_ctrl_inflight(ctrl), 0);
	/* Resumed with a status: completes with it, no backend I/O. */
	base = ft.ncqe;
	{
		struct nvme_sqe s = rw_sqe(NVME_OPC_READ, 1, 3, 1, r, 512);

		submit(1, &s);
	}
	leap_ctrl_resume(ctrl, deferred_req, NVME_STATUS(NVME_SCT_PATH, 0x71));
	T_ASSERT_EQ(ft.ncqe, base + 1);
	T_ASSERT_STATUS(&ft.cqes[base % MAX_CQES], NVME_SCT_PATH, 0x71);
	T_ASSERT_EQ(n_submitted, 1);
	/* The deferred write did land. */
	ctrl->hook_submit = NULL;
	T_ASSERT_OK(io(NVME_OPC_READ, 1, 3, 1, r));
	T_ASSERT_MEM_EQ(lp(r), lp(w), 512);
}

static uint16_t defer_an_hour(struct leap_req *req, void *arg)
{
	(void)arg;
	req->defer_until = leap_now_ns() + 3600ull * 1000000000ull;
	return LEAP_HOOK_RET_DEFER;
}

/* A departing tenant (class 5): parked commands are aborted at once, not waited for. */
static void test_abort_queued_completes_timed_deferrals(void)
{
	uint64_t buf;
	uint32_t base;

	io_setup();
	buf = talloc(1);
	ctrl->hook_submit = defer_an_hour;
	base = ft.ncqe;
	for (uint16_t i = 0; i < 3; i++) {
		struct nvme_sqe s = rw_sqe(NVME_OPC_READ, 1, i, 1, buf, 512);

		s.cid = (uint16_t)(0x300 + i);
		submit(1, &s);
	}
	for (int i = 0; i < 10; i++)
		leap_ctrl_poll(ctrl);
	T_ASSERT_EQ(ft.ncqe, base);
	T_ASSERT_EQ(leap_ctrl_inflight(ctrl), 3);
	T_ASSERT_EQ(leap_ctrl_abort_queued(ctrl), 3);
	T_ASSERT_EQ(ft.ncqe, base + 3);
	for (uint32_t i = 0; i < 3; i++)
		T_ASSERT_STATUS(&ft.cqes[(base + i) % MAX_CQES], NVME_SCT_GENERIC,
				NVME_SC_ABORTED_SQ_DELETION);
	T_ASSERT_EQ(leap_ctrl_inflight(ctrl), 0);
	T_ASSERT_EQ(leap_ctrl_next_deadline(ctrl), 0);
	T_ASSERT_EQ(n_submitted, 0);
	/* Nothing left: a second call finds nothing. */
	T_ASSERT_EQ(leap_ctrl_abort_queued(ctrl), 0);
	ctrl->hook_submit = NULL;
}

/* ---- backend behaviour --------------------------------------------------------------------------- */

static void test_bounce_for_unaligned_direct_io(void)
{
	uint64_t w, r;
	uint32_t saved;

	io_setup();
	saved = mbdev->mem_align;
	mbdev->mem_align = 512; /* as an O_DIRECT uring bdev would say */
	w = talloc(4);
	r = talloc(4);
	fill(w + 4, 8 * 512, 51);
	T_ASSERT_OK(io(NVME_OPC_WRITE, 1, 200, 8, w + 4));
	/* The backend got one aligned buffer, not the host's. */
	T_ASSERT_EQ(last_bio.iovcnt, 1);
	T_ASSERT_EQ((uintptr_t)last_bio.iov->iov_base % 512, 0);
	T_ASSERT(last_bio.iov->iov_base < (void *)tmem ||
		 last_bio.iov->iov_base >= (void *)(tmem + TMEM_PAGES * PG));
	/* Read back into a misaligned buffer too. */
	T_ASSERT_OK(io(NVME_OPC_READ, 1, 200, 8, r + 8));
	T_ASSERT_MEM_EQ(lp(r + 8), lp(w + 4), 8 * 512);
	/* Aligned buffers go straight through. */
	T_ASSERT_OK(io(NVME_OPC_READ, 1, 200, 8, r));
	T_ASSERT(last_bio.iov->iov_base == lp(r));
	T_ASSERT_MEM_EQ(lp(r), lp(w + 4), 8 * 512);
	mbdev->mem_align = saved;
	T_ASSERT_EQ(ctrl->bounce_free, (1u << LEAP_CTRL_BOUNCE_SLOTS) - 1);
}

static void test_backend_full_keeps_order(void)
{
	uint64_t w[3], r;
	uint32_t base;

	io_setup();
	r = talloc(1);
	base = ft.ncqe;
	eagain_budget = 2;
	for (int i = 0; i < 3; i++) {
		struct nvme_sqe s;

		w[i] = talloc(1);
		fill(w[i], 512, (uint8_t)(60 + i));
		s = rw_sqe(NVME_OPC_WRITE, 1, 9, 1, w[i], 512);
		s.cid = (uint16_t)(0x60 + i);
		submit(1, &s);
	}
	/* The first found the backend full; the others queued behind it, not around it. */
	T_ASSERT_EQ(n_submitted, 0);
	T_ASSERT_EQ(leap_ctrl_inflight(ctrl), 3);
	T_ASSERT(wait_cqes(base, 3));
	for (int i = 0; i < 3; i++)
		T_ASSERT_EQ(ft.cqes[(base + i) % MAX_CQES].cid, 0x60 + i);
	T_ASSERT_OK(io(NVME_OPC_READ, 1, 9, 1, r));
	T_ASSERT_MEM_EQ(lp(r), lp(w[2]), 512);
}

static void test_backend_errors_are_media_errors(void)
{
	uint64_t buf;
	struct leap_stats st;

	io_setup();
	buf = talloc(1);
	fail_next = 1;
	T_ASSERT_STATUS(io(NVME_OPC_READ, 1, 0, 1, buf), NVME_SCT_MEDIA,
			NVME_SC_UNRECOVERED_READ_ERROR);
	fail_next = 1;
	T_ASSERT_STATUS(io(NVME_OPC_WRITE, 1, 0, 1, buf), NVME_SCT_MEDIA, NVME_SC_WRITE_FAULTS);
	T_ASSERT_EQ(ctrl->media_errors, 2);
	T_ASSERT_EQ(ctrl->error_count, 2);
	T_ASSERT_OK(io(NVME_OPC_READ, 1, 0, 1, buf));
	T_ASSERT_EQ(leap_ctrl_stats_snapshot(ctrl, 1, &st), 0);
	T_ASSERT_EQ(st.errors, 2);
	T_ASSERT_EQ(st.bytes[0], 512);
	T_ASSERT_EQ(st.bytes[1], 0);
}

static void test_write_cache_off_means_fua(void)
{
	struct nvme_sqe s = { .opc = NVME_OPC_SET_FEATURES,
			      .cdw10 = NVME_FEAT_VOLATILE_WRITE_CACHE };
	uint64_t buf;

	io_setup();
	buf = talloc(1);
	T_ASSERT_OK(io(NVME_OPC_WRITE, 1, 0, 1, buf));
	T_ASSERT_EQ(last_bio.flags & LEAP_BDEV_IO_FUA, 0);
	{
		struct nvme_sqe f = rw_sqe(NVME_OPC_WRITE, 1, 0, 1, buf, 512);

		f.cdw12 |= NVME_RW_FUA;
		T_ASSERT_OK(run(1, &f));
		T_ASSERT_EQ(last_bio.flags & LEAP_BDEV_IO_FUA, LEAP_BDEV_IO_FUA);
	}
	s.cdw11 = 0; /* WCE = 0 */
	T_ASSERT_OK(run(0, &s));
	T_ASSERT_OK(io(NVME_OPC_WRITE, 1, 0, 1, buf));
	T_ASSERT_EQ(last_bio.flags & LEAP_BDEV_IO_FUA, LEAP_BDEV_IO_FUA);
}

static uint32_t opens, open_failures, log_errors;
static int (*real_open)(struct leap_bdev *bdev, struct leap_bdev_channel **out);

static int failing_open(struct leap_bdev *bdev, struct leap_bdev_channel **out)
{
	opens++;
	if (open_failures) {
		open_failures--;
		return -ENOMEM;
	}
	return real_open(bdev, out);
}

static void count_log(enum leap_log_level level, const char *subsys, const char *fmt, va_list ap,
		      void *ctx)
{
	(void)subsys;
	(void)fmt;
	(void)ap;
	(void)ctx;
	if (level == LEAP_LOG_ERROR)
		log_errors++;
}

/* A namespace's channel opens when it is added: a failing open refuses the namespace. */
static void test_ns_add_opens_the_channel(void)
{
	leap_log_fn prev;
	uint64_t buf;

	io_setup();
	buf = talloc(1);
	real_open = wrap_ops.channel_open;
	wrap_ops.channel_open = failing_open;
	opens = log_errors = 0;
	open_failures = 1;
	prev = leap_log_set_callback(count_log, NULL);
	T_ASSERT_EQ(leap_ctrl_ns_add(ctrl, 3, "m0", 0, 4096, 512), -ENOMEM);
	leap_log_set_callback(prev, NULL);
	T_ASSERT_EQ(opens, 1);
	T_ASSERT_EQ(log_errors, 1);
	T_ASSERT(leap_ctrl_ns(ctrl, 3) == NULL);
	T_ASSERT_EQ(mbdev->refs, 2); /* nsid 1 and 2 only */
	T_ASSERT_STATUS(io(NVME_OPC_READ, 3, 0, 1, buf), NVME_SCT_GENERIC,
			NVME_SC_INVALID_NAMESPACE_OR_FORMAT);
	/* Added for real: opened there, and no command opens anything. */
	T_ASSERT_EQ(leap_ctrl_ns_add(ctrl, 3, "m0", 0, 4096, 512), 3);
	T_ASSERT_EQ(opens, 2);
	T_ASSERT(ctrl->ns[2].chan.ch != NULL);
	for (int i = 0; i < 3; i++)
		T_ASSERT_OK(io(NVME_OPC_READ, 3, 0, 1, buf));
	T_ASSERT_EQ(opens, 2);
	/* A tenant leaving keeps namespace channels open. */
	leap_ctrl_channels_close(ctrl);
	T_ASSERT(ctrl->ns[2].chan.ch != NULL);
	T_ASSERT_OK(io(NVME_OPC_READ, 3, 0, 1, buf));
	T_ASSERT_EQ(opens, 2);
	T_ASSERT_EQ(leap_ctrl_ns_remove(ctrl, 3), 0);
	wrap_ops.channel_open = real_open;
}

static uint32_t redirect_to;

static uint16_t redirect_all(struct leap_req *req, void *arg)
{
	(void)arg;
	req->rt_bdev_id = redirect_to;
	return LEAP_HOOK_RET_CONTINUE;
}

/*
 * A policy redirect target's channel opens at its first command (here, with
 * no reactor, on the spot); when that fails, its commands fail fast, with one
 * attempt and one log line, until the channels close (detach).
 */
static void test_redirect_open_failure_fails_fast_logs_once(void)
{
	static struct leap_bdev_ops m1_ops;
	struct leap_bdev *m1 = NULL;
	json_t *bp;
	leap_log_fn prev;
	uint64_t buf;

	io_setup();
	buf = talloc(1);
	bp = json_pack("{s:s, s:s, s:i}", "type", "mem", "name", "m1", "size", 1 << 20);
	T_ASSERT_EQ(leap_bdev_create_wait(bp, &m1, NULL), 0);
	json_decref(bp);
	m1_ops = *m1->ops;
	real_open = m1_ops.channel_open;
	m1_ops.channel_open = failing_open;
	m1->ops = &m1_ops;
	redirect_to = m1->id;
	ctrl->hook_submit = redirect_all;
	opens = log_errors = 0;
	open_failures = 1;
	prev = leap_log_set_callback(count_log, NULL);
	for (int i = 0; i < 5; i++)
		T_ASSERT_STATUS(io(NVME_OPC_READ, 1, 0, 1, buf), NVME_SCT_GENERIC,
				NVME_SC_INTERNAL_DEVICE_ERROR);
	leap_log_set_callback(prev, NULL);
	T_ASSERT_EQ(opens, 1);
	T_ASSERT_EQ(log_errors, 1);
	T_ASSERT_EQ(n_submitted, 0);
	/* Closing the channels (detach, reset) allows a new attempt. */
	leap_ctrl_channels_close(ctrl);
	T_ASSERT_EQ(m1->refs, 0);
	T_ASSERT_OK(io(NVME_OPC_READ, 1, 0, 1, buf));
	T_ASSERT_EQ(opens, 2);
	T_ASSERT_EQ(n_submitted, 0); /* m1 served it, not m0 */
	ctrl->hook_submit = NULL;
	leap_ctrl_channels_close(ctrl);
	T_ASSERT_EQ(leap_bdev_destroy(m1), 0);
}

/* ---- statistics ------------------------------------------------------------------------------- */

static void test_stats_snapshot(void)
{
	struct leap_stats c, n1, n2;
	struct leap_stats_summary sum;
	uint64_t buf;

	io_setup();
	buf = talloc(8);
	T_ASSERT_OK(io(NVME_OPC_WRITE, 1, 0, 8, buf));
	T_ASSERT_OK(io(NVME_OPC_READ, 1, 0, 4, buf));
	T_ASSERT_OK(io(NVME_OPC_WRITE, 2, 0, 2, buf));
	T_ASSERT_STATUS(io(NVME_OPC_READ, 2, NS2_BLOCKS, 1, buf), NVME_SCT_GENERIC,
			NVME_SC_LBA_OUT_OF_RANGE);
	T_ASSERT_STATUS(io(NVME_OPC_READ, 5, 0, 1, buf), NVME_SCT_GENERIC,
			NVME_SC_INVALID_NAMESPACE_OR_FORMAT);
	T_ASSERT_EQ(leap_ctrl_stats_snapshot(ctrl, 0, &c), 0);
	T_ASSERT_EQ(leap_ctrl_stats_snapshot(ctrl, 1, &n1), 0);
	T_ASSERT_EQ(leap_ctrl_stats_snapshot(ctrl, 2, &n2), 0);
	T_ASSERT_EQ(leap_ctrl_stats_snapshot(ctrl, 5, &n2), -ENOENT);
	T_ASSERT_EQ(leap_ctrl_stats_snapshot(ctrl, 2, &n2), 0);
	T_ASSERT_EQ(c.ops[LEAP_STATS_WRITE], 2);
	T_ASSERT_EQ(c.ops[LEAP_STATS_READ], 3);
	T_ASSERT_EQ(c.bytes[1], 8 * 512 + 2 * 4096);
	T_ASSERT_EQ(c.bytes[0], 4 * 512);
	T_ASSERT_EQ(c.errors, 2);
	T_ASSERT_EQ(n1.bytes[1], 8 * 512);
	T_ASSERT_EQ(n1.errors, 0);
	T_ASSERT_EQ(n2.bytes[1], 2 * 4096);
	T_ASSERT_EQ(n2.errors, 1);
	T_ASSERT_EQ(leap_stats_error_count(&c, NVME_STATUS(0, NVME_SC_LBA_OUT_OF_RANGE)), 1);
	T_ASSERT_EQ(leap_stats_error_count(&c, NVME_STATUS(0, NVME_SC_INVALID_NAMESPACE_OR_FORMAT)),
		    1);
	leap_stats_summarize(&c, &sum);
	T_ASSERT_EQ(sum.ops[LEAP_STATS_READ] + sum.ops[LEAP_STATS_WRITE], 5);
	T_ASSERT(sum.lat_p50_ns <= sum.lat_p99_ns && sum.lat_p99_ns <= sum.lat_p999_ns);
	T_ASSERT(sum.lat_p999_ns <= sum.lat_max_ns + 1);
}

static void test_final_teardown(void)
{
	teardown();
	T_ASSERT(leap_ctrl_find("c0") == NULL);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_write_read_roundtrip),
		TAP_CASE(test_sgl_write_read),
		TAP_CASE(test_namespaces_are_separate),
		TAP_CASE(test_io_validation_statuses),
		TAP_CASE(test_prp_list_entry_errors),
		TAP_CASE(test_flush),
		TAP_CASE(test_write_zeroes),
		TAP_CASE(test_dsm_deallocate),
		TAP_CASE(test_dsm_invalid_range_touches_nothing),
		TAP_CASE(test_dsm_ranges_straddle_pages),
		TAP_CASE(test_compare),
		TAP_CASE(test_many_compares_share_bounce_buffers),
		TAP_CASE(test_cid_echo_and_duplicates),
		TAP_CASE(test_two_io_queues),
		TAP_CASE(test_hook_submit_rejects),
		TAP_CASE(test_hook_complete_overrides),
		TAP_CASE(test_hook_defer_and_resume),
		TAP_CASE(test_abort_queued_completes_timed_deferrals),
		TAP_CASE(test_bounce_for_unaligned_direct_io),
		TAP_CASE(test_backend_full_keeps_order),
		TAP_CASE(test_backend_errors_are_media_errors),
		TAP_CASE(test_write_cache_off_means_fua),
		TAP_CASE(test_ns_add_opens_the_channel),
		TAP_CASE(test_redirect_open_failure_fails_fast_logs_once),
		TAP_CASE(test_stats_snapshot),
		TAP_CASE(test_final_teardown),
	};

	return tap_run(cases, TAP_N(cases));
}
