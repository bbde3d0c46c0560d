/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The iovec builder PRP (prp.c) and SGL (sgl.c) translation share: every
 * tenant range is checked against one region before its local address
 * goes into an iovec, contiguous ranges of one region merge, and the
 * builder remembers whether every iovec lies in the same region (backends
 * use that to pick a registered buffer).
 */
#ifndef LEAPIO_RUNTIME_NVME_MEM_MAP_INTERNAL_H
#define LEAPIO_RUNTIME_NVME_MEM_MAP_INTERNAL_H

#include "leapio/nvme_spec.h"
#include "nvme/mem_map.h"

#define ST_PRP_OFFSET (-(int)NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_PRP_OFFSET))
#define ST_FIELD      (-(int)NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD))
#define ST_XFER	      (-(int)NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_DATA_TRANSFER_ERROR))

struct iov_builder {
	const struct leap_mem_map *mm;
	struct iovec *iov;
	uint32_t cnt, max;
	int32_t region; /* region of every iovec so far, or -2 when mixed */
	int32_t last;	/* region of the last iovec */
};

static inline int region_of(const struct leap_mem_map *mm, uint64_t addr, uint64_t len)
{
	for (uint32_t i = 0; i < mm->cnt; i++) {
		const struct leap_mem_region *r = &mm->r[i];

		/* Written so that nothing can overflow: addr - base <= len - n. */
		if (addr >= r->base && addr - r->base <= r->len && len <= r->len - (addr - r->base))
			return (int)i;
	}
	return -1;
}

/* Append tenant range [addr, addr + len), which must lie inside one region. */
static inline int add(struct iov_builder *b, uint64_t addr, uint64_t len)
{
	int reg = region_of(b->mm, addr, len);
	uint8_t *p;

	if (reg < 0)
		return ST_XFER;
	p = b->mm->r[reg].local + (addr - b->mm->r[reg].base);
	/* Contiguous with the previous entry in the same region: extend it. */
	if (b->cnt && b->last == reg &&
	    (uint8_t *)b->iov[b->cnt - 1].iov_base + b->iov[b->cnt - 1].iov_len == p) {
		b->iov[b->cnt - 1].iov_len += len;
		return 0;
	}
	if (b->cnt == b->max)
		return ST_FIELD;
	b->iov[b->cnt].iov_base = p;
	b->iov[b->cnt].iov_len = len;
	b->region = b->cnt == 0 ? reg : (b->region == reg ? reg : -2);
	b->last = reg;
	b->cnt++;
	return 0;
}

#endif /* LEAPIO_RUNTIME_NVME_MEM_MAP_INTERNAL_H */
