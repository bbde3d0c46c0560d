// SPDX-License-Identifier: BSD-3-Clause
/*
 * SGL translation (runtime/nvme/sgl.c) and the controller's dispatch by
 * PSDT (leap_ctrl_map_data): every descriptor type a memory transport
 * understands, each malformed case with its exact status, and the routing
 * of transport descriptors (in-capsule offsets, transport data blocks) to
 * the transport's map_data. Tenant memory has PROT_NONE guard pages on
 * each side, so a read of a descriptor outside a region crashes the test.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "leapio/nvme_spec.h"
#include "leapio/nvmf_spec.h"
#include "nvme/ctrl.h"
#include "nvme/mem_map.h"
#include "tap.h"

#define PG	  4096ull
#define TBASE	  0x7000000000ull
#define TBASE1	  0x9000000000ull
#define REG_PAGES 64

#define E(sc)	(-(int)NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_##sc))
#define E_SEG	E(INVALID_SGL_SEG_DESCRIPTOR)
#define E_NUM	E(INVALID_NUM_SGL_DESCIRPTORS)
#define E_LEN	E(DATA_SGL_LENGTH_INVALID)
#define E_TYPE	E(SGL_DESCRIPTOR_TYPE_INVALID)
#define E_XFER	E(DATA_TRANSFER_ERROR)
#define E_FIELD E(INVALID_FIELD)

static uint8_t *mem0, *mem1;
static struct leap_mem_map mm;
static struct iovec iov[64];

static uint8_t *guarded(size_t pages)
{
	uint8_t *p = mmap(NULL, (pages + 2) * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	mprotect(p, PG, PROT_NONE);
	mprotect(p + (pages + 1) * PG, PG, PROT_NONE);
	return p + PG;
}

static void setup(void)
{
	if (!mem0) {
		mem0 = guarded(REG_PAGES);
		mem1 = guarded(REG_PAGES);
	}
	if (!mem0 || !mem1)
		T_FAIL("mmap failed");
	memset(mem0, 0, REG_PAGES * PG);
	memset(&mm, 0, sizeof(mm));
	memset(iov, 0, sizeof(iov));
	mm.cnt = 2;
	mm.r[0] = (struct leap_mem_region){ .base = TBASE, .len = REG_PAGES * PG, .local = mem0 };
	mm.r[1] = (struct leap_mem_region){ .base = TBASE1, .len = REG_PAGES * PG, .local = mem1 };
}

static struct nvme_sgl_desc desc(uint8_t type, uint8_t sub, uint64_t addr, uint32_t len)
{
	struct nvme_sgl_desc d = { .addr = addr, .length = len, .type = NVME_SGL_ID(type, sub) };

	return d;
}

static struct nvme_sgl_desc data(uint64_t addr, uint32_t len)
{
	return desc(NVME_SGL_TYPE_DATA_BLOCK, NVME_SGL_SUBTYPE_ADDRESS, addr, len);
}

/* Write descriptors into tenant memory at page `pg` of region 0; returns the tenant address. */
static uint64_t put_list(uint32_t pg, const struct nvme_sgl_desc *d, uint32_t n)
{
	memcpy(mem0 + pg * PG, d, n * sizeof(*d));
	return TBASE + pg * PG;
}

static void test_single_data_block(void)
{
	struct nvme_sgl_desc d = data(TBASE + 100, 5000);
	int32_t region = 7;

	setup();
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 5000, iov, 64, &region), 1);
	T_ASSERT(iov[0].iov_base == mem0 + 100);
	T_ASSERT_EQ(iov[0].iov_len, 5000);
	T_ASSERT_EQ(region, 0);
}

static void test_data_block_length_must_match(void)
{
	struct nvme_sgl_desc d = data(TBASE, 4096);

	setup();
	/* Describes less than the command moves, or more. */
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 8192, iov, 64, NULL), E_LEN);
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 512, iov, 64, NULL), E_LEN);
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 0, iov, 64, NULL), E_FIELD);
}

static void test_data_block_outside_regions(void)
{
	struct nvme_sgl_desc d = data(TBASE + REG_PAGES * PG - 512, 1024);

	setup();
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 1024, iov, 64, NULL), E_XFER);
	d = data(0x1000, 512);
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 512, iov, 64, NULL), E_XFER);
}

static void test_last_segment_of_data_blocks(void)
{
	struct nvme_sgl_desc list[3] = { data(TBASE + 8 * PG, 4096), data(TBASE1 + 512, 1024),
					 data(TBASE + 9 * PG, 4096) };
	struct nvme_sgl_desc d;
	int32_t region = 7;

	setup();
	d = desc(NVME_SGL_TYPE_LAST_SEGMENT, 0, put_list(1, list, 3), sizeof(list));
	/* 8 + 9 are contiguous in region 0 but not adjacent in the list order: three iovecs. */
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 9216, iov, 64, &region), 3);
	T_ASSERT(iov[0].iov_base == mem0 + 8 * PG);
	T_ASSERT(iov[1].iov_base == mem1 + 512);
	T_ASSERT_EQ(iov[1].iov_len, 1024);
	T_ASSERT(iov[2].iov_base == mem0 + 9 * PG);
	T_ASSERT_EQ(region, -1); /* two regions */
}

static void test_segment_chain(void)
{
	struct nvme_sgl_desc seg2[2] = { data(TBASE + 20 * PG, 4096), data(TBASE + 21 * PG, 4096) };
	struct nvme_sgl_desc seg1[2];
	struct nvme_sgl_desc d;
	int32_t region = 7;

	setup();
	seg1[0] = data(TBASE + 19 * PG, 4096);
	seg1[1] = desc(NVME_SGL_TYPE_LAST_SEGMENT, 0, put_list(3, seg2, 2), sizeof(seg2));
	d = desc(NVME_SGL_TYPE_SEGMENT, 0, put_list(2, seg1, 2), sizeof(seg1));
	/* 19, 20, 21 are contiguous in one region: merged into one iovec. */
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 3 * 4096, iov, 64, &region), 1);
	T_ASSERT(iov[0].iov_base == mem0 + 19 * PG);
	T_ASSERT_EQ(iov[0].iov_len, 3 * 4096);
	T_ASSERT_EQ(region, 0);
}

static void test_segment_errors(void)
{
	struct nvme_sgl_desc list[2], d;

	setup();
	/* Segment length 0, or not a multiple of 16. */
	d = desc(NVME_SGL_TYPE_LAST_SEGMENT, 0, TBASE, 0);
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 512, iov, 64, NULL), E_SEG);
	d = desc(NVME_SGL_TYPE_SEGMENT, 0, TBASE, 24);
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 512, iov, 64, NULL), E_SEG);
	/* A chain inside a Last Segment. */
	list[0] = data(TBASE + 8 * PG, 512);
	list[1] = desc(NVME_SGL_TYPE_SEGMENT, 0, TBASE + 5 * PG, 16);
	d = desc(NVME_SGL_TYPE_LAST_SEGMENT, 0, put_list(1, list, 2), sizeof(list));
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 1024, iov, 64, NULL), E_SEG);
	/* A chain that is not the segment's last descriptor. */
	list[0] = desc(NVME_SGL_TYPE_LAST_SEGMENT, 0, TBASE + 5 * PG, 16);
	list[1] = data(TBASE + 8 * PG, 512);
	d = desc(NVME_SGL_TYPE_SEGMENT, 0, put_list(1, list, 2), sizeof(list));
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 1024, iov, 64, NULL), E_SEG);
	/* A list outside the regions is never read. */
	d = desc(NVME_SGL_TYPE_LAST_SEGMENT, 0, TBASE + REG_PAGES * PG - 16, 32);
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 512, iov, 64, NULL), E_XFER);
	/* Too little data in the list. */
	list[0] = data(TBASE + 8 * PG, 512);
	d = desc(NVME_SGL_TYPE_LAST_SEGMENT, 0, put_list(1, list, 1), 16);
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 1024, iov, 64, NULL), E_LEN);
}

static void test_segment_loop_is_bounded(void)
{
	struct nvme_sgl_desc self[2], d;

	setup();
	/* A segment whose chain points to itself: stopped after LEAP_SGL_MAX_SEGMENTS. */
	self[0] = data(TBASE + 8 * PG, 16);
	self[1] = desc(NVME_SGL_TYPE_SEGMENT, 0, TBASE + 1 * PG, sizeof(self));
	d = desc(NVME_SGL_TYPE_SEGMENT, 0, put_list(1, self, 2), sizeof(self));
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 1ull << 30, iov, 64, NULL), E_NUM);
}

static void test_reserved_and_foreign_types(void)
{
	struct nvme_sgl_desc d, list[1];

	setup();
	/* Offset subtype, keyed, bit bucket, transport and reserved types: SGL Descriptor Type Invalid. */
	d = desc(NVME_SGL_TYPE_DATA_BLOCK, NVME_SGL_SUBTYPE_OFFSET, 0, 512);
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 512, iov, 64, NULL), E_TYPE);
	d = desc(NVME_SGL_TYPE_KEYED_DATA_BLOCK, 0, TBASE, 512);
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 512, iov, 64, NULL), E_TYPE);
	d = desc(NVME_SGL_TYPE_BIT_BUCKET, 0, TBASE, 512);
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 512, iov, 64, NULL), E_TYPE);
	d = desc(0x7, 0, TBASE, 512);
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 512, iov, 64, NULL), E_TYPE);
	d = desc(NVME_SGL_TYPE_SEGMENT, NVME_SGL_SUBTYPE_OFFSET, TBASE, 16);
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 512, iov, 64, NULL), E_TYPE);
	list[0] = desc(NVME_SGL_TYPE_TRANSPORT_DATA_BLOCK, NVME_SGL_SUBTYPE_TRANSPORT_A, 0, 512);
	d = desc(NVME_SGL_TYPE_LAST_SEGMENT, 0, put_list(1, list, 1), 16);
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 512, iov, 64, NULL), E_TYPE);
}

static void test_too_many_iovecs(void)
{
	struct nvme_sgl_desc list[8], d;

	setup();
	/* Eight non-contiguous pages into room for four. */
	for (int i = 0; i < 8; i++)
		list[i] = data(TBASE + (uint64_t)(10 + 2 * i) * PG, 512);
	d = desc(NVME_SGL_TYPE_LAST_SEGMENT, 0, put_list(1, list, 8), sizeof(list));
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 4096, iov, 4, NULL), E_FIELD);
	T_ASSERT_EQ(leap_sgl_to_iov(&mm, &d, 4096, iov, 8, NULL), 8);
}

/* ---- the controller's dispatch by PSDT -------------------------------------------- */

static uint32_t map_data_calls;

static int fake_map_data(void *t, struct leap_req *req, uint64_t len, struct iovec *out,
			 uint32_t max_iov, int32_t *region)
{
	static uint8_t capsule[8192];

	map_data_calls++;
	out[0].iov_base = capsule;
	out[0].iov_len = len;
	if (region)
		*region = -1;
	return 1;
}

static const struct leap_transport_caps mem_sgl_caps = { .prp = true,
							 .sgl_memory = true,
							 .sgls = 1 };
static const struct leap_transport_caps fabric_caps = { .fabrics = true, .sgls = 1 | 1u << 20 };
static struct leap_ctrl_transport_ops dispatch_ops = { .map_data = fake_map_data };

static int map(struct leap_ctrl *c, uint8_t psdt, const struct nvme_sgl_desc *d, uint64_t len)
{
	struct leap_req req = { 0 };

	req.sqe.flags = (uint8_t)(psdt << NVME_SQE_PSDT_SHIFT);
	memcpy(&req.sqe.prp1, d, sizeof(*d));
	return leap_ctrl_map_data(c, &req, len, iov, 64, NULL);
}

static void test_ctrl_dispatch(void)
{
	struct leap_ctrl c;
	struct nvme_sgl_desc d = data(TBASE + 3 * PG, 4096);
	struct nvme_sgl_desc icd = desc(NVME_SGL_TYPE_DATA_BLOCK, NVME_SGL_SUBTYPE_OFFSET, 0, 4096);
	struct nvme_sgl_desc xport =
	    desc(NVME_SGL_TYPE_TRANSPORT_DATA_BLOCK, NVME_SGL_SUBTYPE_TRANSPORT_A, 0, 4096);

	setup();
	memset(&c, 0, sizeof(c));
	c.mem = mm;
	c.tops = &dispatch_ops;
	map_data_calls = 0;
	/* A memory transport with SGLs: the controller translates address SGLs itself. */
	dispatch_ops.caps = &mem_sgl_caps;
	T_ASSERT_EQ(map(&c, 1, &d, 4096), 1);
	T_ASSERT(iov[0].iov_base == mem0 + 3 * PG);
	T_ASSERT_EQ(map_data_calls, 0);
	/* PSDT 00b is PRP; 11b is reserved. */
	T_ASSERT_EQ(map(&c, 0, &(struct nvme_sgl_desc){ .addr = TBASE + 4 * PG }, 4096), 1);
	T_ASSERT(iov[0].iov_base == mem0 + 4 * PG);
	T_ASSERT_EQ(map(&c, 3, &d, 4096), E_FIELD);
	/* A fabrics transport: in-capsule and transport data blocks go to map_data. */
	dispatch_ops.caps = &fabric_caps;
	T_ASSERT_EQ(map(&c, 1, &icd, 4096), 1);
	T_ASSERT_EQ(map(&c, 1, &xport, 4096), 1);
	T_ASSERT_EQ(map_data_calls, 2);
	/* ... and it has neither PRPs nor memory SGLs. */
	T_ASSERT_EQ(map(&c, 0, &d, 4096), E_FIELD);
	T_ASSERT_EQ(map(&c, 1, &d, 4096), E_TYPE);
	d = desc(NVME_SGL_TYPE_LAST_SEGMENT, 0, TBASE, 16);
	T_ASSERT_EQ(map(&c, 1, &d, 4096), E_TYPE);
	T_ASSERT_EQ(map_data_calls, 2);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_single_data_block),
		TAP_CASE(test_data_block_length_must_match),
		TAP_CASE(test_data_block_outside_regions),
		TAP_CASE(test_last_segment_of_data_blocks),
		TAP_CASE(test_segment_chain),
		TAP_CASE(test_segment_errors),
		TAP_CASE(test_segment_loop_is_bounded),
		TAP_CASE(test_reserved_and_foreign_types),
		TAP_CASE(test_too_many_iovecs),
		TAP_CASE(test_ctrl_dispatch),
	};

	return tap_run(cases, TAP_N(cases));
}
