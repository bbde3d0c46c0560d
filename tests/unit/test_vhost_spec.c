// SPDX-License-Identifier: BSD-3-Clause
/*
 * include/leapio/vhost_spec.h against bytes worked out by hand from
 * vhost-user.rst and the virtio 1.1 spec: a wrong field width or a missing
 * packed attribute shows up as a wrong value, not only as a size.
 */
#include <string.h>

#include "leapio/vhost_spec.h"
#include "tap.h"

static void test_vring_addr_bytes(void)
{
	/* SET_VRING_ADDR payload: index 1, flags 0, desc/used/avail/log addresses. */
	uint8_t raw[40] = { 1,	  0,	0, 0, 0, 0, 0, 0, 0x00, 0x10, 0, 0, 0, 0, 0, 0,
			    0x00, 0x30, 0, 0, 0, 0, 0, 0, 0x00, 0x20, 0, 0, 0, 0, 0, 0 };
	struct vhost_vring_addr a;

	memcpy(&a, raw, sizeof(a));
	T_ASSERT_EQ(a.index, 1);
	T_ASSERT_EQ(a.desc_user_addr, 0x1000);
	T_ASSERT_EQ(a.used_user_addr, 0x3000);
	T_ASSERT_EQ(a.avail_user_addr, 0x2000);
}

static void test_memory_table_bytes(void)
{
	/* nregions 1, padding, then {gpa, size, uva, mmap_offset}. */
	uint8_t raw[8 + 32] = { 1 };
	struct vhost_user_memory m;

	raw[8 + 2] = 0x10;  /* guest_phys_addr 0x100000 */
	raw[16 + 3] = 0x01; /* memory_size 0x1000000 */
	raw[24 + 5] = 0x7f; /* userspace_addr 0x7f0000000000 */
	raw[32 + 1] = 0x20; /* mmap_offset 0x2000 */
	memcpy(&m, raw, sizeof(raw));
	T_ASSERT_EQ(m.nregions, 1);
	T_ASSERT_EQ(m.regions[0].guest_phys_addr, 0x100000);
	T_ASSERT_EQ(m.regions[0].memory_size, 0x1000000);
	T_ASSERT_EQ(m.regions[0].userspace_addr, 0x7f0000000000ull);
	T_ASSERT_EQ(m.regions[0].mmap_offset, 0x2000);
}

static void test_blk_config_as_linux_reads_it(void)
{
	struct virtio_blk_config c;
	uint8_t *b = (uint8_t *)&c;

	memset(&c, 0, sizeof(c));
	c.capacity = 524288;
	c.seg_max = 32;
	c.blk_size = 4096;
	c.num_queues = 2;
	c.max_discard_seg = 16;
	c.write_zeroes_may_unmap = 1;
	T_ASSERT_EQ(b[2], 0x08); /* 524288 = 0x80000, little endian */
	T_ASSERT_EQ(b[12], 32);
	T_ASSERT_EQ(b[21], 0x10); /* 4096 */
	T_ASSERT_EQ(b[34], 2);
	T_ASSERT_EQ(b[40], 16);
	T_ASSERT_EQ(b[56], 1);
}

static void test_inflight_layout(void)
{
	uint8_t raw[16 + 2 * 16] = { 0 };
	struct vhost_inflight_queue *q = (struct vhost_inflight_queue *)raw;

	raw[8] = 1;	       /* version */
	raw[10] = 128;	       /* desc_num */
	raw[12] = 5;	       /* last_batch_head */
	raw[14] = 7;	       /* used_idx */
	raw[16 + 16] = 1;      /* desc[1].inflight */
	raw[16 + 16 + 8] = 42; /* desc[1].counter */
	T_ASSERT_EQ(q->version, 1);
	T_ASSERT_EQ(q->desc_num, 128);
	T_ASSERT_EQ(q->last_batch_head, 5);
	T_ASSERT_EQ(q->used_idx, 7);
	T_ASSERT_EQ(q->desc[1].inflight, 1);
	T_ASSERT_EQ(q->desc[1].counter, 42);
}

static void test_need_event(void)
{
	/* Notify iff event lies in [old, new), modulo 2^16. */
	T_ASSERT(vring_need_event(5, 6, 5));
	T_ASSERT(!vring_need_event(6, 6, 5));
	T_ASSERT(vring_need_event(0xffff, 2, 0xfffe));
	T_ASSERT(!vring_need_event(3, 2, 0xfffe));
	T_ASSERT_EQ(vring_avail_size(128), 4 + 256 + 2);
	T_ASSERT_EQ(vring_used_size(128), 4 + 1024 + 2);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_vring_addr_bytes),
		TAP_CASE(test_memory_table_bytes),
		TAP_CASE(test_blk_config_as_linux_reads_it),
		TAP_CASE(test_inflight_layout),
		TAP_CASE(test_need_event),
	};

	return tap_run(cases, TAP_N(cases));
}
