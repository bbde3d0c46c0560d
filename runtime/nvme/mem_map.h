/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A tenant's memory as leapd sees it: a few regions the tenant shared
 * (memfds), each {tenant address, length, local mapping}. Every address a
 * tenant puts in a command is translated here, and only a range that lies
 * entirely inside one region is ever dereferenced — the security boundary
 * LeapIO drew with /dev/mem, drawn per tenant.
 */
#ifndef LEAPIO_RUNTIME_MEM_MAP_H
#define LEAPIO_RUNTIME_MEM_MAP_H

#include <stdint.h>
#include <sys/uio.h>

#include "leapio/shm_abi.h"

struct leap_mem_region {
	uint64_t base; /* tenant virtual address */
	uint64_t len;
	uint8_t *local; /* our mapping of the same bytes */
};

struct leap_mem_map {
	uint32_t cnt;
	struct leap_mem_region r[LEAP_SHM_MAX_REGIONS];
};

/* Local pointer for [addr, addr + len), or NULL unless one region holds all of it. */
static inline void *leap_mem_map_ptr(const struct leap_mem_map *mm, uint64_t addr, uint64_t len)
{
	for (uint32_t i = 0; i < mm->cnt; i++) {
		const struct leap_mem_region *r = &mm->r[i];

		/* Written so that nothing can overflow: addr - base <= len - n. */
		if (addr >= r->base && addr - r->base <= r->len && len <= r->len - (addr - r->base))
			return r->local + (addr - r->base);
	}
	return NULL;
}

/*
 * Translate a PRP pair describing `len` bytes into an iovec array; pages
 * that are contiguous in one region are merged. Rules (NVMe Base 2.0,
 * 4.1.1): PRP1 may carry a dword-aligned offset; if the rest fits in one
 * page PRP2 is that page (page aligned); otherwise PRP2 is a qword-aligned
 * pointer to a PRP list, whose entries are page aligned, and whose last
 * slot in a page chains to the next (page-aligned) list page when more
 * entries remain. Every data page and every list entry read must lie inside
 * one region. Returns the number of iovecs (>= 1), or a negated internal
 * NVMe status: Invalid PRP Offset for misaligned pointers or entries, Data
 * Transfer Error for anything (data or list) outside the tenant's regions,
 * Invalid Field for len 0, for a list whose only slot in its page would
 * have to chain (a list running off its page), or when more than max_iov
 * iovecs would be needed.
 * *region (when non-NULL) gets the region index when every iovec lies in
 * the same region, else -1: backends use it to pick a registered (fixed)
 * buffer. Never dereferences anything but list entries inside a region.
 */
int leap_prp_to_iov(const struct leap_mem_map *mm, uint64_t prp1, uint64_t prp2, uint64_t len,
		    struct iovec *iov, uint32_t max_iov, int32_t *region);

struct nvme_sgl_desc;

/* Segments a command's SGL may chain through (a hostile list cannot loop). */
#define LEAP_SGL_MAX_SEGMENTS 16

/*
 * Translate an SGL whose first descriptor is sgl1 (SQE bytes 24..39) and
 * which describes exactly `len` bytes into iovecs, for a memory-sharing
 * transport: Data Block (address), Segment and Last Segment descriptors,
 * every list and data range inside one tenant region. Returns the iovec
 * count or a negated internal NVMe status: SGL Descriptor Type Invalid
 * (offset, keyed, bit bucket, transport or reserved types), Invalid SGL
 * Segment Descriptor (a segment of length 0 or not a multiple of 16, a
 * chain that is not a Segment's last descriptor, or a chain in a Last
 * Segment), Invalid Number of SGL Descriptors (more than
 * LEAP_SGL_MAX_SEGMENTS segments), Data SGL Length Invalid (the SGL
 * describes more or less than len), Data Transfer Error (outside the
 * regions), Invalid Field (len 0, or more than max_iov iovecs).
 * *region as in leap_prp_to_iov().
 */
int leap_sgl_to_iov(const struct leap_mem_map *mm, const struct nvme_sgl_desc *sgl1, uint64_t len,
		    struct iovec *iov, uint32_t max_iov, int32_t *region);

#endif /* LEAPIO_RUNTIME_MEM_MAP_H */
