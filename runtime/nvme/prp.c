// SPDX-License-Identifier: BSD-3-Clause
/*
 * PRP translation (see mem_map.h for the rules). Each data page is checked
 * against the tenant's regions before its address goes into an iovec; the
 * entries of a PRP list page are checked (only as many as the transfer
 * needs) before they are read, and each entry is read exactly once, so a
 * tenant rewriting its list concurrently can change what we translate but
 * never make us touch memory outside its regions. Nothing here allocates
 * or logs: it runs for every I/O.
 */
#include "leapio/nvme_spec.h"
#include "mem_map_internal.h"

#define PAGE	  NVME_PAGE_SIZE
#define PAGE_MASK ((uint64_t)PAGE - 1)

/* Walk a PRP list starting at `list` for `left` bytes (more than one page). */
static int walk_list(struct iov_builder *b, uint64_t list, uint64_t left)
{
	while (left) {
		uint64_t slots = (PAGE - (list & PAGE_MASK)) / 8;
		uint64_t pages = (left + PAGE - 1) / PAGE;
		/* Every remaining page fits in this list page, or all slots are used and the last chains. */
		uint64_t need = pages <= slots ? pages : slots;
		const uint64_t *e = leap_mem_map_ptr(b->mm, list, need * 8);

		if (!e)
			return ST_XFER;
		/*
		 * A list page with one usable slot and pages still to come could
		 * only chain, consuming nothing: a list that runs off its page.
		 */
		if (slots == 1 && pages > 1)
			return ST_FIELD;
		for (uint64_t k = 0; k < need; k++) {
			/* Read once: the tenant may be rewriting its list. */
			uint64_t pa = __atomic_load_n(&e[k], __ATOMIC_RELAXED), n;
			int err;

			if (pages > slots && k == need - 1) {
				/* The last slot of a full list page chains to the next list page. */
				if (pa & PAGE_MASK)
					return ST_PRP_OFFSET;
				list = pa;
				break;
			}
			if (pa & PAGE_MASK)
				return ST_PRP_OFFSET;
			n = left < PAGE ? left : PAGE;
			err = add(b, pa, n);
			if (err)
				return err;
			left -= n;
		}
	}
	return 0;
}

int leap_prp_to_iov(const struct leap_mem_map *mm, uint64_t prp1, uint64_t prp2, uint64_t len,
		    struct iovec *iov, uint32_t max_iov, int32_t *region)
{
	struct iov_builder b = { .mm = mm, .iov = iov, .max = max_iov, .region = -1, .last = -1 };
	uint64_t first, left;
	int err;

	if (region)
		*region = -1;
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
	if (left > PAGE) {
		/* PRP2 is a list pointer: qword aligned, may start mid-page. */
		if (prp2 & 7)
			return ST_PRP_OFFSET;
		err = walk_list(&b, prp2, left);
	} else if (left) {
		/* PRP2 is the second (and last) data page. */
		if (prp2 & PAGE_MASK)
			return ST_PRP_OFFSET;
		err = add(&b, prp2, left);
	}
	if (err)
		return err;
	if (region)
		*region = b.region >= 0 ? b.region : -1;
	return (int)b.cnt;
}
