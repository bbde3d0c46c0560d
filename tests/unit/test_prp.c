// SPDX-License-Identifier: BSD-3-Clause
/*
 * PRP translation (runtime/prp.c): every rule of NVMe Base 2.0 4.1.1 that
 * leap_prp_to_iov() enforces, and the security property behind it — only
 * memory inside a tenant region is ever read. Tenant memory here is an mmap
 * whose neighbours are PROT_NONE guard pages, so a stray read of a list
 * entry outside a region crashes the test instead of passing silently.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "leapio/nvme_spec.h"
#include "nvme/mem_map.h"
#include "tap.h"

#define PG	  4096ull
#define TBASE	  0x7000000000ull /* tenant address of region 0 */
#define TBASE1	  0x9000000000ull /* tenant address of region 1 */
#define REG_PAGES 64
#define BIG_PAGES 600

#define E_OFFSET (-(int)NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_PRP_OFFSET))
#define E_FIELD	 (-(int)NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD))
#define E_XFER	 (-(int)NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_DATA_TRANSFER_ERROR))

static uint8_t *mem0, *mem1; /* local mappings of regions 0 and 1 */
static struct leap_mem_map mm;
static struct iovec iov[1024];

/* n usable pages with a PROT_NONE page on each side. */
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
		mem1 = guarded(BIG_PAGES);
	}
	if (!mem0 || !mem1)
		T_FAIL("mmap failed");
	memset(mem0, 0, REG_PAGES * PG);
	memset(&mm, 0, sizeof(mm));
	memset(iov, 0, sizeof(iov));
	mm.cnt = 2;
	mm.r[0] = (struct leap_mem_region){ .base = TBASE, .len = REG_PAGES * PG, .local = mem0 };
	mm.r[1] = (struct leap_mem_region){ .base = TBASE1, .len = BIG_PAGES * PG, .local = mem1 };
}

/* Tenant address of page p (+off) in region 0, and its local pointer. */
static uint64_t ta(uint64_t p, uint64_t off)
{
	return TBASE + p * PG + off;
}

static uint8_t *la(uint64_t p, uint64_t off)
{
	return mem0 + p * PG + off;
}

static uint64_t *list_at(uint64_t p, uint64_t off)
{
	return (uint64_t *)la(p, off);
}

static void test_one_full_page(void)
{
	int32_t region = 99;

	setup();
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(3, 0), 0, PG, iov, 8, &region), 1);
	T_ASSERT(iov[0].iov_base == la(3, 0));
	T_ASSERT_EQ(iov[0].iov_len, PG);
	T_ASSERT_EQ(region, 0);
}

static void test_partial_page_with_offset(void)
{
	setup();
	/* 512 bytes at a dword-aligned offset; PRP2 is ignored (garbage on purpose). */
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(2, 0x204), 0xdeadbeef, 512, iov, 8, NULL), 1);
	T_ASSERT(iov[0].iov_base == la(2, 0x204));
	T_ASSERT_EQ(iov[0].iov_len, 512);
}

static void test_two_pages_not_contiguous(void)
{
	setup();
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), ta(7, 0), 2 * PG, iov, 8, NULL), 2);
	T_ASSERT(iov[0].iov_base == la(1, 0));
	T_ASSERT_EQ(iov[0].iov_len, PG);
	T_ASSERT(iov[1].iov_base == la(7, 0));
	T_ASSERT_EQ(iov[1].iov_len, PG);
}

static void test_two_pages_contiguous_merge(void)
{
	setup();
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(4, 0), ta(5, 0), 2 * PG, iov, 8, NULL), 1);
	T_ASSERT(iov[0].iov_base == la(4, 0));
	T_ASSERT_EQ(iov[0].iov_len, 2 * PG);
}

static void test_offset_first_page_spills_into_prp2(void)
{
	setup();
	/* 4 KiB from offset 0x800: 2 KiB in PRP1's page, 2 KiB in PRP2's. */
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0x800), ta(9, 0), PG, iov, 8, NULL), 2);
	T_ASSERT(iov[0].iov_base == la(1, 0x800));
	T_ASSERT_EQ(iov[0].iov_len, 0x800);
	T_ASSERT(iov[1].iov_base == la(9, 0));
	T_ASSERT_EQ(iov[1].iov_len, 0x800);
}

static void test_prp1_not_dword_aligned(void)
{
	setup();
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 2), 0, 512, iov, 8, NULL), E_OFFSET);
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 1), 0, 512, iov, 8, NULL), E_OFFSET);
}

static void test_prp2_data_pointer_with_offset(void)
{
	setup();
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), ta(2, 0x200), 2 * PG, iov, 8, NULL), E_OFFSET);
}

static void test_list_three_entries(void)
{
	uint64_t *l = list_at(20, 0);

	setup();
	l[0] = ta(8, 0);
	l[1] = ta(3, 0);
	l[2] = ta(11, 0);
	l[3] = 0xbad; /* beyond the transfer: never looked at */
	/* 4 pages minus 1 KiB: PRP1 page + 3 list entries, the last one partial. */
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), ta(20, 0), 4 * PG - 1024, iov, 8, NULL), 4);
	T_ASSERT(iov[0].iov_base == la(1, 0));
	T_ASSERT(iov[1].iov_base == la(8, 0));
	T_ASSERT(iov[2].iov_base == la(3, 0));
	T_ASSERT(iov[3].iov_base == la(11, 0));
	T_ASSERT_EQ(iov[3].iov_len, PG - 1024);
}

static void test_list_merges_contiguous_entries(void)
{
	uint64_t *l = list_at(30, 0);
	int32_t region = 99;

	setup();
	l[0] = ta(2, 0);
	l[1] = ta(3, 0);
	l[2] = ta(4, 0);
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), ta(30, 0), 4 * PG, iov, 8, &region), 1);
	T_ASSERT(iov[0].iov_base == la(1, 0));
	T_ASSERT_EQ(iov[0].iov_len, 4 * PG);
	T_ASSERT_EQ(region, 0);
}

static void test_list_pointer_with_qword_offset(void)
{
	uint64_t *l = list_at(30, 0x100);

	setup();
	l[0] = ta(5, 0);
	l[1] = ta(6, 0);
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), ta(30, 0x100), 3 * PG, iov, 8, NULL), 2);
	T_ASSERT(iov[1].iov_base == la(5, 0));
	T_ASSERT_EQ(iov[1].iov_len, 2 * PG);
	/* A list pointer must be qword aligned. */
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), ta(30, 0x104), 3 * PG, iov, 8, NULL), E_OFFSET);
}

static void test_list_entry_misaligned(void)
{
	uint64_t *l = list_at(20, 0);

	setup();
	l[0] = ta(8, 0);
	l[1] = ta(9, 0x10);
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), ta(20, 0), 3 * PG, iov, 8, NULL), E_OFFSET);
}

static void test_list_entry_outside_regions(void)
{
	uint64_t *l = list_at(20, 0);

	setup();
	l[0] = ta(8, 0);
	l[1] = TBASE + REG_PAGES * PG; /* the first page after region 0 */
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), ta(20, 0), 3 * PG, iov, 8, NULL), E_XFER);
	l[1] = 0;
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), ta(20, 0), 3 * PG, iov, 8, NULL), E_XFER);
}

static void test_list_pointer_outside_regions(void)
{
	setup();
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), 0x1000, 3 * PG, iov, 8, NULL), E_XFER);
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), TBASE - PG, 3 * PG, iov, 8, NULL), E_XFER);
}

static void test_prp1_and_prp2_outside_regions(void)
{
	setup();
	T_ASSERT_EQ(leap_prp_to_iov(&mm, TBASE - PG, 0, PG, iov, 8, NULL), E_XFER);
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), TBASE + REG_PAGES * PG, 2 * PG, iov, 8, NULL),
		    E_XFER);
	/* The last page of the region is fine; one byte more is not. */
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(REG_PAGES - 1, 0), 0, PG, iov, 8, NULL), 1);
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(REG_PAGES - 1, 4), 0, PG, iov, 8, NULL), E_XFER);
}

static void test_page_straddling_region_end(void)
{
	setup();
	/* Region 0 shrunk to end mid-page, region 2 continues the tenant range right after. */
	mm.r[0].len = 10 * PG + 0x800;
	mm.r[2] = (struct leap_mem_region){ .base = ta(10, 0x800), .len = PG, .local = la(40, 0) };
	mm.cnt = 3;
	/* The page [10*PG, 11*PG) lies in two regions: neither holds all of it. */
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(10, 0), 0, PG, iov, 8, NULL), E_XFER);
	/* Its first half alone is fine. */
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(10, 0), 0, 0x800, iov, 8, NULL), 1);
}

static void test_chained_list_from_offset_pointer(void)
{
	/* PRP2 points at the last two slots of a list page: one data entry, one chain. */
	uint64_t *l = list_at(20, PG - 16), *next = list_at(21, 0);

	setup();
	l[0] = ta(2, 0);
	l[1] = ta(21, 0); /* chain */
	next[0] = ta(5, 0);
	next[1] = ta(7, 0);
	next[2] = ta(9, 0);
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), ta(20, PG - 16), 5 * PG, iov, 8, NULL), 4);
	T_ASSERT(iov[0].iov_base == la(1, 0));
	T_ASSERT_EQ(iov[0].iov_len, 2 * PG); /* pages 1 and 2 merge */
	T_ASSERT(iov[1].iov_base == la(5, 0));
	T_ASSERT(iov[2].iov_base == la(7, 0));
	T_ASSERT(iov[3].iov_base == la(9, 0));
	/* A chain pointer must be page aligned. */
	l[1] = ta(21, 8);
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), ta(20, PG - 16), 5 * PG, iov, 8, NULL),
		    E_OFFSET);
}

static void test_exact_fit_last_entry_is_data(void)
{
	/* Two slots left in the list page and exactly two pages left: no chaining. */
	uint64_t *l = list_at(20, PG - 16);

	setup();
	l[0] = ta(4, 0);
	l[1] = ta(6, 0);
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), ta(20, PG - 16), 3 * PG, iov, 8, NULL), 3);
	T_ASSERT(iov[2].iov_base == la(6, 0));
}

static void test_list_does_not_run_off_its_page(void)
{
	/*
	 * One slot left at the end of the list page and two pages to go. A
	 * reader that ran off the page would take the entries at PG-8 and PG
	 * as two data pages (and succeed); that slot could only chain, so the
	 * list is refused as running off its page.
	 */
	uint64_t *l = list_at(20, PG - 8);

	setup();
	l[0] = ta(4, 0);
	l[1] = ta(6, 0); /* first entry of page 21: must never be used as data */
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), ta(20, PG - 8), 3 * PG, iov, 8, NULL), E_FIELD);
	/* Two slots and three pages to go: data, then a legitimate chain. */
	*list_at(22, 0) = ta(9, 0);
	*list_at(22, 8) = ta(10, 0);
	l[-1] = ta(8, 0);
	l[0] = ta(22, 0);
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), ta(20, PG - 16), 4 * PG, iov, 8, NULL), 2);
	T_ASSERT(iov[1].iov_base == la(8, 0));
	T_ASSERT_EQ(iov[1].iov_len, 3 * PG);
}

static void test_list_at_region_end_reads_only_needed_entries(void)
{
	/*
	 * The list holds two entries in the last 16 bytes of the region; the
	 * page after it is PROT_NONE. Only the needed entries may be read.
	 */
	uint64_t *l = list_at(REG_PAGES - 1, PG - 16);

	setup();
	l[0] = ta(3, 0);
	l[1] = ta(5, 0);
	T_ASSERT_EQ(
	    leap_prp_to_iov(&mm, ta(1, 0), ta(REG_PAGES - 1, PG - 16), 3 * PG, iov, 8, NULL), 3);
	/*
	 * Three more pages do not fit in two slots: the second slot (page 5,
	 * zeroed) becomes the chain, whose entry 0 is address 0. Nothing past
	 * the region is read either way.
	 */
	T_ASSERT_EQ(
	    leap_prp_to_iov(&mm, ta(1, 0), ta(REG_PAGES - 1, PG - 16), 4 * PG, iov, 8, NULL),
	    E_XFER);
	/* A list pointer whose needed entries run past the region end is a transfer error. */
	mm.r[0].len = (REG_PAGES - 1) * PG + PG - 8;
	T_ASSERT_EQ(
	    leap_prp_to_iov(&mm, ta(1, 0), ta(REG_PAGES - 1, PG - 16), 3 * PG, iov, 8, NULL),
	    E_XFER);
}

static void test_full_list_page_chains(void)
{
	/* 514 data pages in region 1: PRP1 + 511 from the first list page + 2 from the next. */
	uint64_t lbase = TBASE1 + 520 * PG;
	uint64_t *l = (uint64_t *)(mem1 + 520 * PG), *l2 = (uint64_t *)(mem1 + 521 * PG);
	int32_t region = 99;

	setup();
	for (int i = 0; i < 511; i++)
		l[i] = TBASE1 + (uint64_t)(1 + i) * PG;
	l[511] = lbase + PG;
	l2[0] = TBASE1 + 512 * PG;
	l2[1] = TBASE1 + 513 * PG;
	T_ASSERT_EQ(leap_prp_to_iov(&mm, TBASE1, lbase, 514 * PG, iov, 1024, &region), 1);
	T_ASSERT(iov[0].iov_base == mem1);
	T_ASSERT_EQ(iov[0].iov_len, 514 * PG);
	T_ASSERT_EQ(region, 1);
	/* Scatter them (reverse order) to see every entry land in its own iovec. */
	for (int i = 0; i < 511; i++)
		l[i] = TBASE1 + (uint64_t)(511 - i) * PG;
	/* Page 0, then 511 down to 1 (none adjacent in order), then 512-513 merged. */
	T_ASSERT_EQ(leap_prp_to_iov(&mm, TBASE1, lbase, 514 * PG, iov, 1024, NULL), 513);
	T_ASSERT(iov[1].iov_base == mem1 + 511 * PG);
	T_ASSERT(iov[511].iov_base == mem1 + 1 * PG);
	T_ASSERT_EQ(iov[511].iov_len, PG);
	T_ASSERT(iov[512].iov_base == mem1 + 512 * PG);
	T_ASSERT_EQ(iov[512].iov_len, 2 * PG);
}

static void test_zero_length(void)
{
	setup();
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), 0, 0, iov, 8, NULL), E_FIELD);
}

static void test_too_many_iovecs(void)
{
	uint64_t *l = list_at(20, 0);

	setup();
	l[0] = ta(3, 0);
	l[1] = ta(5, 0);
	/* Three discontiguous pieces into two iovecs. */
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), ta(20, 0), 3 * PG, iov, 2, NULL), E_FIELD);
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), ta(20, 0), 3 * PG, iov, 3, NULL), 3);
}

static void test_region_mixed_reports_none(void)
{
	int32_t region = 99;

	setup();
	T_ASSERT_EQ(leap_prp_to_iov(&mm, ta(1, 0), TBASE1, 2 * PG, iov, 8, &region), 2);
	T_ASSERT_EQ(region, -1);
	T_ASSERT(iov[1].iov_base == mem1);
	T_ASSERT_EQ(leap_prp_to_iov(&mm, TBASE1 + 3 * PG, 0, PG, iov, 8, &region), 1);
	T_ASSERT_EQ(region, 1);
}

static void test_mem_map_ptr_bounds(void)
{
	setup();
	T_ASSERT(leap_mem_map_ptr(&mm, TBASE, REG_PAGES * PG) == mem0);
	T_ASSERT(leap_mem_map_ptr(&mm, TBASE, REG_PAGES * PG + 1) == NULL);
	T_ASSERT(leap_mem_map_ptr(&mm, TBASE + REG_PAGES * PG, 1) == NULL);
	T_ASSERT(leap_mem_map_ptr(&mm, TBASE - 1, 2) == NULL);
	/* Wrap-around attempts. */
	T_ASSERT(leap_mem_map_ptr(&mm, TBASE + 8, UINT64_MAX) == NULL);
	T_ASSERT(leap_mem_map_ptr(&mm, UINT64_MAX, 2) == NULL);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_one_full_page),
		TAP_CASE(test_partial_page_with_offset),
		TAP_CASE(test_two_pages_not_contiguous),
		TAP_CASE(test_two_pages_contiguous_merge),
		TAP_CASE(test_offset_first_page_spills_into_prp2),
		TAP_CASE(test_prp1_not_dword_aligned),
		TAP_CASE(test_prp2_data_pointer_with_offset),
		TAP_CASE(test_list_three_entries),
		TAP_CASE(test_list_merges_contiguous_entries),
		TAP_CASE(test_list_pointer_with_qword_offset),
		TAP_CASE(test_list_entry_misaligned),
		TAP_CASE(test_list_entry_outside_regions),
		TAP_CASE(test_list_pointer_outside_regions),
		TAP_CASE(test_prp1_and_prp2_outside_regions),
		TAP_CASE(test_page_straddling_region_end),
		TAP_CASE(test_chained_list_from_offset_pointer),
		TAP_CASE(test_exact_fit_last_entry_is_data),
		TAP_CASE(test_list_does_not_run_off_its_page),
		TAP_CASE(test_list_at_region_end_reads_only_needed_entries),
		TAP_CASE(test_full_list_page_chains),
		TAP_CASE(test_zero_length),
		TAP_CASE(test_too_many_iovecs),
		TAP_CASE(test_region_mixed_reports_none),
		TAP_CASE(test_mem_map_ptr_bounds),
	};

	return tap_run(cases, TAP_N(cases));
}
