// SPDX-License-Identifier: BSD-3-Clause
/*
 * SGL translation for memory-sharing transports (NVMe Base 2.0, 4.1.2):
 * SGL1 in the command is a Data Block (the whole buffer), or a Segment /
 * Last Segment pointing to a list of descriptors in tenant memory; a
 * Segment's last descriptor may chain to the next segment, a Last Segment
 * holds data blocks only. Descriptor types a memory transport cannot mean
 * (offsets, keyed, transport-specific) are the transport's business and
 * never reach this file (leap_ctrl_map_data() routes them to map_data).
 *
 * As with PRP lists, every descriptor list is checked against one region
 * before it is read, each descriptor is read once (the tenant may rewrite
 * it concurrently), and the walk is bounded by the number of segments and
 * by max_iov, so a hostile list can neither loop nor touch memory outside
 * the tenant's regions. Nothing here allocates or logs.
 */
#include <stdbool.h>
#include <string.h>

#include "leapio/nvmf_spec.h"
#include "mem_map_internal.h"

#define ST_SEG	(-(int)NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_SGL_SEG_DESCRIPTOR))
#define ST_NUM	(-(int)NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_NUM_SGL_DESCIRPTORS))
#define ST_LEN	(-(int)NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID))
#define ST_TYPE (-(int)NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID))

static inline uint8_t desc_type(const struct nvme_sgl_desc *d)
{
	return d->type >> 4;
}

static inline uint8_t desc_subtype(const struct nvme_sgl_desc *d)
{
	return d->type & 0xf;
}

/* A data block: append what is left of the transfer; more data than the command moves is an error. */
static int data_block(struct iov_builder *b, const struct nvme_sgl_desc *d, uint64_t *left)
{
	int err;

	if (desc_subtype(d) != NVME_SGL_SUBTYPE_ADDRESS)
		return ST_TYPE;
	if (d->length == 0)
		return 0;
	if (d->length > *left)
		return ST_LEN;
	err = add(b, d->addr, d->length);
	if (err)
		return err;
	*left -= d->length;
	return 0;
}

int leap_sgl_to_iov(const struct leap_mem_map *mm, const struct nvme_sgl_desc *sgl1, uint64_t len,
		    struct iovec *iov, uint32_t max_iov, int32_t *region)
{
	struct iov_builder b = { .mm = mm, .iov = iov, .max = max_iov, .region = -1, .last = -1 };
	struct nvme_sgl_desc d = *sgl1;
	uint64_t left = len;
	uint32_t segments = 0;
	int err = 0;

	if (region)
		*region = -1;
	if (len == 0 || max_iov == 0)
		return -(int)NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	switch (desc_type(&d)) {
	case NVME_SGL_TYPE_DATA_BLOCK:
		err = data_block(&b, &d, &left);
		break;
	case NVME_SGL_TYPE_SEGMENT:
	case NVME_SGL_TYPE_LAST_SEGMENT:
		for (;;) {
			const struct nvme_sgl_desc *list;
			bool last = desc_type(&d) == NVME_SGL_TYPE_LAST_SEGMENT;
			uint32_t n;
			bool chained = false;

			if (desc_subtype(&d) != NVME_SGL_SUBTYPE_ADDRESS)
				return ST_TYPE;
			if (d.length == 0 || d.length % sizeof(d))
				return ST_SEG;
			if (++segments > LEAP_SGL_MAX_SEGMENTS)
				return ST_NUM;
			n = d.length / (uint32_t)sizeof(d);
			list = leap_mem_map_ptr(mm, d.addr, d.length);
			if (!list)
				return -(int)NVME_STATUS(NVME_SCT_GENERIC,
							 NVME_SC_DATA_TRANSFER_ERROR);
			for (uint32_t i = 0; i < n && !err; i++) {
				struct nvme_sgl_desc e;

				/* Read once: the tenant may be rewriting its list. */
				memcpy(&e, &list[i], sizeof(e));
				__atomic_signal_fence(__ATOMIC_SEQ_CST);
				switch (desc_type(&e)) {
				case NVME_SGL_TYPE_DATA_BLOCK:
					err = data_block(&b, &e, &left);
					break;
				case NVME_SGL_TYPE_SEGMENT:
				case NVME_SGL_TYPE_LAST_SEGMENT:
					/* Only a Segment's last descriptor may chain. */
					if (last || i != n - 1)
						return ST_SEG;
					d = e;
					chained = true;
					break;
				default:
					return ST_TYPE;
				}
			}
			if (err || !chained)
				break;
		}
		break;
	default:
		return ST_TYPE;
	}
	if (err)
		return err;
	if (left)
		return ST_LEN;
	if (region)
		*region = b.region >= 0 ? b.region : -1;
	return (int)b.cnt;
}
