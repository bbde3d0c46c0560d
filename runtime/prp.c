// SPDX-License-Identifier: BSD-3-Clause
/*
 * PRP translation (see mem_map.h). Each page is checked against the
 * tenant's regions before its address goes into an iovec; list pages are
 * checked before they are read. Nothing here allocates or logs: it runs
 * for every I/O.
 */
#include "leapio/nvme_spec.h"
#include "mem_map.h"

#define PAGE	  NVME_PAGE_SIZE
#define PAGE_MASK ((uint64_t)PAGE - 1)

#define ST_PRP_OFFSET (-(int)NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_PRP_OFFSET))
#define ST_FIELD      (-(int)NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD))
#define ST_XFER	      (-(int)NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_DATA_TRANSFER_ERROR))

struct iov_builder {
	const struct leap_mem_map *mm;
	struct iovec *iov;
	uint32_t cnt, max;
	uint64_t next_addr; /* tenant address right after the last iovec */
	int32_t region;	    /* region of every iovec so far, or -2 when mixed */
};

static int region_of(const struct leap_mem_map *mm, uint64_t addr, uint64_t len)
{
	for (uint32_t i = 0; i < mm->cnt; i++) {
		const struct leap_mem_region *r = &mm->r[i];

		if (addr >= r->base && addr - r->base <= r->len && len <= r->len - (addr - r->base))
			return (int)i;
	}
	return -1;
}

static int add(struct iov_builder *b, uint64_t addr, uint64_t len)
{
	int reg = region_of(b->mm, addr, len);
	uint8_t *p;

	if (reg < 0)
		return ST_XFER;
	p = b->mm->r[reg].local + (addr - b->mm->r[reg].base);
	/* Contiguous with the previous entry in the same region: extend it. */
	if (b->cnt && b->next_addr == addr && b->region == reg &&
	    (uint8_t *)b->iov[b->cnt - 1].iov_base + b->iov[b->cnt - 1].iov_len == p) {
		b->iov[b->cnt - 1].iov_len += len;
	} else {
		if (b->cnt == b->max)
			return ST_FIELD;
		b->iov[b->cnt].iov_base = p;
		b->iov[b->cnt].iov_len = len;
		b->cnt++;
		b->region = b->cnt == 1 ? reg : (b->region == reg ? reg : -2);
	}
	b->next_addr = addr + len;
	return 0;
}

int leap_prp_to_iov(const struct leap_mem_map *mm, uint64_t prp1, uint64_t prp2, uint64_t len,
		    struct iovec *iov, uint32_t max_iov, int32_t *region)
{
	struct iov_builder b = { .mm = mm, .iov = iov, .max = max_iov, .region = -1 };
	uint64_t first, left;
	int err;

	if (len == 0 || max_iov == 0)
		return ST_FIELD;
	if (prp1 & 3)
		return ST_PRP_OFFSET;
	first = PAGE - (prp1 & PAGE_MASK);
	if (first > len)
		first = len;
	err = add(&b, prp1, first);
	if (err)
		return err;
	left = len - first;
	if (left == 0)
		goto done;
	if (prp2 & PAGE_MASK) {
		/* A list pointer may carry an offset (entries start mid-page); a data pointer may not. */
		if (left <= PAGE || (prp2 & 7))
			return ST_PRP_OFFSET;
	}
	if (left <= PAGE) {
		err = add(&b, prp2, left);
		if (err)
			return err;
		goto done;
	}

	/* PRP list: entries from prp2 to the end of its page; the last one chains. */
	{
		uint64_t list = prp2;

		while (left) {
			uint64_t entries = (PAGE - (list & PAGE_MASK)) / 8;
			const uint64_t *e = leap_mem_map_ptr(mm, list, entries * 8);

			if (!e)
				return ST_XFER;
			/* A one-entry page would only chain: a loop that consumes nothing. */
			if (entries < 2 && left > PAGE)
				return ST_FIELD;
			for (uint64_t k = 0; k < entries && left; k++) {
				uint64_t pa = e[k], n;

				if (k == entries - 1 && left > PAGE) {
					/* Last slot and more than one page left: it is the next list. */
					if (pa & 7)
						return ST_PRP_OFFSET;
					list = pa;
					break;
				}
				if (pa & PAGE_MASK)
					return ST_PRP_OFFSET;
				n = left < PAGE ? left : PAGE;
				err = add(&b, pa, n);
				if (err)
					return err;
				left -= n;
			}
		}
	}
done:
	if (region)
		*region = b.region >= 0 && b.cnt == 1 ? b.region : -1;
	return (int)b.cnt;
}
