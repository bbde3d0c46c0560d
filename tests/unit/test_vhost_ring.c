// SPDX-License-Identifier: BSD-3-Clause
/*
 * The vhost-user-blk data path (runtime/frontend/vhost_blk/vhost_blk_queue.c,
 * included to reach its static functions) on the test thread playing the
 * reactor: a split virtqueue in a "guest memory" buffer, a real controller
 * over a `mem` backend (512-byte and 4 KiB namespaces). Chains are built by
 * hand; assertions are on status bytes, used elements, the backend's bytes,
 * the broken flag and the inflight region.
 */
#include "frontend/vhost_blk/vhost_blk_queue.c"
#include "tap.h"

LEAP_BDEV_MODULE_USE(leap_bdev_mem_ops);

#define GPA	       0x100000ull
#define GSIZE	       (8ull << 20)
#define QN	       64
#define MiB	       (1024ull * 1024)
#define NS1_END_SECTOR (16 * MiB / 512)

static struct leap_ctrl *ctrl;
static struct vb_conn conn;
static uint8_t *gmem;
static uint64_t gbrk;

static uint64_t galloc(uint64_t len, uint64_t align)
{
	gbrk = (gbrk + align - 1) & ~(align - 1);
	gbrk += len;
	if (gbrk > GSIZE)
		abort();
	return GPA + gbrk - len;
}

static void *gp(uint64_t gpa)
{
	return gmem + (gpa - GPA);
}

static struct vb_vq *vq0(void)
{
	return &conn.vq[0];
}

static void setup_once(void)
{
	json_t *bp = json_pack("{s:s, s:s, s:I, s:i}", "type", "mem", "name", "vm0", "size",
			       (json_int_t)(32 * MiB), "block_size", 512);
	struct leap_ctrl_opts co = { .name = "vt0" };
	struct leap_bdev *b;

	leap_log_set_level(LEAP_LOG_ERROR);
	if (leap_bdev_create_wait(bp, &b, NULL) || leap_ctrl_create(&co, &ctrl) ||
	    leap_ctrl_ns_add(ctrl, 1, "vm0", 0, 16 * MiB, 512) != 1 ||
	    leap_ctrl_ns_add(ctrl, 2, "vm0", 16 * MiB, 16 * MiB, 4096) != 2)
		abort();
	json_decref(bp);
	gmem = aligned_alloc(4096, GSIZE);
	if (!gmem)
		abort();
}

/* A fresh device on namespace nsid: one queue of QN entries, all features. */
static void reset_dev(uint32_t nsid)
{
	struct vb_vq *vq;

	if (conn.ctrl) {
		leap_ctrl_channels_close(ctrl);
		leap_qpair_fini(&conn.vq[0].qp);
		free(conn.vq[0].tasks);
		free(conn.vq[0].resubmit);
	}
	memset(&conn, 0, sizeof(conn));
	memset(gmem, 0, GSIZE);
	gbrk = 0;
	conn.ctrl = ctrl;
	conn.nsid = nsid;
	conn.lba_shift = ctrl->ns[nsid - 1].lba_shift;
	conn.nlb = ctrl->ns[nsid - 1].nlb;
	conn.nvq = 1;
	conn.features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
			(1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_BLK_F_FLUSH) |
			(1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	conn.mem.n = 1;
	conn.mem.r[0] = (struct vb_region){
		.gpa = GPA, .size = GSIZE, .uva = 0x7f0000000000ull, .local = gmem
	};
	vb_conn_mem_update(&conn);
	leap_ctrl_transport_bind(ctrl, &leap_vb_transport_ops, &conn);
	if (leap_ctrl_prop_set(ctrl, NVME_REG_CC, 4, NVME_CC_EN))
		abort();
	vq = vq0();
	vq->num = QN;
	vq->kick_fd = vq->call_fd = vq->err_fd = -1;
	vq->desc = gp(galloc(vring_desc_size(QN), 4096));
	vq->avail = gp(galloc(vring_avail_size(QN), 4096));
	vq->used = gp(galloc(vring_used_size(QN), 4096));
	if (leap_qpair_init(&vq->qp, ctrl, 1, 1, QN, QN))
		abort();
	vq->tasks = calloc(QN, sizeof(*vq->tasks));
	vq->running = true;
	vq->event_idx = true;
	rebuild_running(&conn);
}

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool w;
};

static void chain(struct vring_desc *t, uint16_t first, const struct seg *s, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		t[first + i].addr = s[i].gpa;
		t[first + i].len = s[i].len;
		t[first + i].flags = (uint16_t)((s[i].w ? VRING_DESC_F_WRITE : 0) |
						(i + 1 < n ? VRING_DESC_F_NEXT : 0));
		t[first + i].next = (uint16_t)(first + i + 1);
	}
}

static void publish(uint16_t head)
{
	struct vb_vq *vq = vq0();
	uint16_t idx = vq->avail->idx;

	vq->avail->ring[idx % QN] = head;
	__atomic_store_n(&vq->avail->idx, (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

/* Process what is published and run the controller until every request completed. */
static void run(void)
{
	process_vq(&conn, vq0());
	for (int i = 0; i < 1000 && vq0()->qp.busy; i++)
		leap_ctrl_poll(ctrl);
}

static uint64_t hdr(uint32_t type, uint64_t sector)
{
	uint64_t g = galloc(16, 16);
	struct virtio_blk_outhdr *h = gp(g);

	h->type = type;
	h->sector = sector;
	return g;
}

/* One request as head 0: returns the status byte, or -1 when it was not answered. */
static int req3(uint32_t type, uint64_t sector, uint64_t data, uint32_t len, bool w)
{
	uint64_t st = galloc(1, 1);
	struct seg s[3] = { { hdr(type, sector), 16, false }, { data, len, w }, { st, 1, true } };
	uint16_t used = vq0()->used->idx;

	*(uint8_t *)gp(st) = 0xee;
	chain(vq0()->desc, 0, s, 3);
	publish(0);
	run();
	if (vq0()->used->idx == used)
		return -1;
	return *(uint8_t *)gp(st);
}

static void test_write_read_roundtrip(void)
{
	uint64_t w, r;
	struct vring_used_elem *e;

	reset_dev(1);
	w = galloc(8192, 4096);
	r = galloc(8192, 4096);
	for (int i = 0; i < 8192; i++)
		((uint8_t *)gp(w))[i] = (uint8_t)(i * 7 + 3);
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_OUT, 24, w, 8192, false), VIRTIO_BLK_S_OK);
	e = &vq0()->used->ring[0];
	T_ASSERT_EQ(e->id, 0);
	T_ASSERT_EQ(e->len, 1); /* a write puts only the status byte into the guest */
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_IN, 24, r, 8192, true), VIRTIO_BLK_S_OK);
	T_ASSERT_EQ(vq0()->used->ring[1].len, 8193);
	T_ASSERT(memcmp(gp(w), gp(r), 8192) == 0);
	T_ASSERT_EQ(vq0()->used->idx, 2);
	T_ASSERT(!conn.broken);
	/* The controller counted them like any tenant's commands. */
	T_ASSERT(ctrl->ns[0].stats.ops[LEAP_STATS_WRITE] >= 1);
}

static void test_indirect_and_split_buffers(void)
{
	uint64_t tbl, st = 0, a, b2, r = 0;
	struct vring_desc *t;

	reset_dev(1);
	a = galloc(4096, 4096);
	b2 = galloc(4096, 4096);
	memset(gp(a), 0x11, 4096);
	memset(gp(b2), 0x22, 4096);
	/* The header straddles two descriptors; the data is two pieces. */
	{
		uint64_t h = hdr(VIRTIO_BLK_T_OUT, 0);
		struct seg s[5] = { { h, 10, false },
				    { h + 10, 6, false },
				    { a, 4096, false },
				    { b2, 4096, false },
				    { 0, 1, true } };

		st = galloc(1, 1);
		s[4].gpa = st;
		tbl = galloc(5 * 16, 16);
		t = gp(tbl);
		chain(t, 0, s, 5);
	}
	vq0()->desc[3] = (struct vring_desc){ tbl, 5 * 16, VRING_DESC_F_INDIRECT, 0 };
	publish(3);
	run();
	T_ASSERT_EQ(*(uint8_t *)gp(st), VIRTIO_BLK_S_OK);
	T_ASSERT_EQ(vq0()->used->ring[0].id, 3);
	r = galloc(8192, 4096);
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_IN, 0, r, 8192, true), VIRTIO_BLK_S_OK);
	T_ASSERT_EQ(((uint8_t *)gp(r))[0], 0x11);
	T_ASSERT_EQ(((uint8_t *)gp(r))[8191], 0x22);
}

static void test_request_errors_answered(void)
{
	uint64_t d;

	reset_dev(1);
	d = galloc(4096, 4096);
	/* Outside guest memory: IOERR, and the device goes on. */
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_IN, 0, GPA + GSIZE, 4096, true), VIRTIO_BLK_S_IOERR);
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_IN, 0, ~0ull - 100, 4096, true), VIRTIO_BLK_S_IOERR);
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_IN, 0, d, 100, true), VIRTIO_BLK_S_IOERR);
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_IN, NS1_END_SECTOR, d, 4096, true), VIRTIO_BLK_S_IOERR);
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_IN, ~0ull, d, 4096, true), VIRTIO_BLK_S_IOERR);
	T_ASSERT_EQ(req3(77, 0, d, 4096, true), VIRTIO_BLK_S_UNSUPP);
	/* A failed read tells the guest it wrote nothing but the status. */
	T_ASSERT_EQ(vq0()->used->ring[0].len, 1);
	T_ASSERT(!conn.broken);
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_IN, 0, d, 4096, true), VIRTIO_BLK_S_OK);
	/* Header in writable memory: the request is shorter than its header. */
	{
		uint64_t st = galloc(1, 1);
		struct seg s[2] = { { hdr(VIRTIO_BLK_T_IN, 0), 16, true }, { st, 1, true } };

		chain(vq0()->desc, 0, s, 2);
		publish(0);
		run();
		T_ASSERT_EQ(*(uint8_t *)gp(st), VIRTIO_BLK_S_IOERR);
	}
	T_ASSERT(!conn.broken);
}

static void expect_broken(void)
{
	uint16_t used = vq0()->used->idx;

	run();
	T_ASSERT(conn.broken);
	T_ASSERT_EQ(vq0()->used->idx, used);
	T_ASSERT_EQ(vq0()->qp.busy, 0);
	/* Broken: a valid request after it is not fetched either. */
	conn_poll(&conn);
	T_ASSERT_EQ(vq0()->used->idx, used);
}

static void test_chain_rules_break_the_device(void)
{
	uint64_t d, st;
	struct seg s[3];

	/* A loop. */
	reset_dev(1);
	d = galloc(4096, 4096);
	st = galloc(1, 1);
	s[0] = (struct seg){ hdr(VIRTIO_BLK_T_IN, 0), 16, false };
	s[1] = (struct seg){ d, 4096, true };
	s[2] = (struct seg){ st, 1, true };
	chain(vq0()->desc, 0, s, 3);
	vq0()->desc[2].flags |= VRING_DESC_F_NEXT;
	vq0()->desc[2].next = 1;
	publish(0);
	expect_broken();
	/* next past the queue */
	reset_dev(1);
	chain(vq0()->desc, 0, s, 3);
	vq0()->desc[0].next = QN + 1;
	publish(0);
	expect_broken();
	/* readable after writable */
	reset_dev(1);
	s[2].w = false;
	chain(vq0()->desc, 0, s, 3);
	publish(0);
	expect_broken();
	s[2].w = true;
	/* status outside guest memory */
	reset_dev(1);
	s[2].gpa = GPA + GSIZE + 5;
	chain(vq0()->desc, 0, s, 3);
	publish(0);
	expect_broken();
	s[2].gpa = st;
	/* nested indirect */
	reset_dev(1);
	{
		uint64_t tbl = galloc(48, 16);
		struct vring_desc *t = gp(tbl);

		chain(t, 0, s, 3);
		t[1].flags |= VRING_DESC_F_INDIRECT;
		vq0()->desc[0] = (struct vring_desc){ tbl, 48, VRING_DESC_F_INDIRECT, 0 };
	}
	publish(0);
	expect_broken();
	/* indirect without the feature */
	reset_dev(1);
	conn.features &= ~(1ull << VIRTIO_RING_F_INDIRECT_DESC);
	vq0()->desc[0] = (struct vring_desc){ galloc(48, 16), 48, VRING_DESC_F_INDIRECT, 0 };
	publish(0);
	expect_broken();
	/* avail index jumping past the queue, and a head past the queue */
	reset_dev(1);
	vq0()->avail->idx = QN + 1;
	expect_broken();
	reset_dev(1);
	publish(QN + 2);
	expect_broken();
	/* A new ring start (the driver's reset) clears it. */
	T_ASSERT_EQ(vb_vq_start(&conn, 0), 0);
	T_ASSERT(!conn.broken);
}

static void test_seg_max_and_size(void)
{
	uint64_t st, d;
	struct seg s[VB_SEG_MAX + 4];

	reset_dev(1);
	st = galloc(1, 1);
	d = galloc((VB_SEG_MAX + 1) * 512ull, 4096);
	s[0] = (struct seg){ hdr(VIRTIO_BLK_T_IN, 0), 16, false };
	for (uint32_t i = 0; i < VB_SEG_MAX + 1; i++)
		s[1 + i] = (struct seg){ d + i * 512ull, 512, true };
	s[VB_SEG_MAX + 2] = (struct seg){ st, 1, true };
	chain(vq0()->desc, 0, s, VB_SEG_MAX + 3);
	publish(0);
	run();
	T_ASSERT_EQ(*(uint8_t *)gp(st), VIRTIO_BLK_S_IOERR);
	/* Exactly seg_max is fine; contiguous pieces merge into one iovec. */
	s[VB_SEG_MAX + 1] = (struct seg){ st, 1, true };
	chain(vq0()->desc, 0, s, VB_SEG_MAX + 2);
	publish(0);
	run();
	T_ASSERT_EQ(*(uint8_t *)gp(st), VIRTIO_BLK_S_OK);
	T_ASSERT_EQ(vq0()->tasks[0].iovcnt, 1);
	T_ASSERT(!conn.broken);
}

static void test_4k_namespace_alignment(void)
{
	uint64_t d;

	reset_dev(2);
	d = galloc(8192, 4096);
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_OUT, 8, d, 4096, false), VIRTIO_BLK_S_OK);
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_OUT, 4, d, 4096, false), VIRTIO_BLK_S_IOERR);
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_OUT, 8, d, 512, false), VIRTIO_BLK_S_IOERR);
}

static void test_flush_get_id_discard_write_zeroes(void)
{
	uint64_t d, seg, st;
	struct virtio_blk_discard_write_zeroes *z;

	reset_dev(1);
	d = galloc(8192, 4096);
	/* GET_ID: the serial, NUL padded. */
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_GET_ID, 0, d, 20, true), VIRTIO_BLK_S_OK);
	T_ASSERT(strncmp(gp(d), ctrl->serial, 20) == 0);
	/* FLUSH: header and status only. */
	st = galloc(1, 1);
	{
		struct seg s[2] = { { hdr(VIRTIO_BLK_T_FLUSH, 0), 16, false }, { st, 1, true } };

		chain(vq0()->desc, 0, s, 2);
		publish(0);
		run();
		T_ASSERT_EQ(*(uint8_t *)gp(st), VIRTIO_BLK_S_OK);
	}
	/* Write data, zero it, read zeroes. */
	memset(gp(d), 0xab, 8192);
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_OUT, 100, d, 8192, false), VIRTIO_BLK_S_OK);
	seg = galloc(32, 16);
	z = gp(seg);
	z[0] = (struct virtio_blk_discard_write_zeroes){ 100, 16, 0 };
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 16, false), VIRTIO_BLK_S_OK);
	memset(gp(d), 0xff, 8192);
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_IN, 100, d, 8192, true), VIRTIO_BLK_S_OK);
	for (int i = 0; i < 8192; i++)
		if (((uint8_t *)gp(d))[i])
			T_FAIL("byte %d not zero", i);
	/* Discard: two ranges become one DSM command with two ranges. */
	z[0] = (struct virtio_blk_discard_write_zeroes){ 0, 8, 0 };
	z[1] = (struct virtio_blk_discard_write_zeroes){ 64, 16, 0 };
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_DISCARD, 0, seg, 32, false), VIRTIO_BLK_S_OK);
	T_ASSERT_EQ(vq0()->tasks[0].dsm[1].slba, 64);
	T_ASSERT_EQ(vq0()->tasks[0].dsm[1].nlb, 16);
	/* The unmap flag is reserved for discard; a range past the end fails. */
	z[0].flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_DISCARD, 0, seg, 16, false), VIRTIO_BLK_S_UNSUPP);
	z[0] = (struct virtio_blk_discard_write_zeroes){ NS1_END_SECTOR - 4, 8, 0 };
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_DISCARD, 0, seg, 16, false), VIRTIO_BLK_S_IOERR);
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_DISCARD, 0, seg, 24, false), VIRTIO_BLK_S_IOERR);
	/* Not negotiated: UNSUPP. */
	conn.features &= ~(1ull << VIRTIO_BLK_F_DISCARD);
	z[0] = (struct virtio_blk_discard_write_zeroes){ 0, 8, 0 };
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_DISCARD, 0, seg, 16, false), VIRTIO_BLK_S_UNSUPP);
	T_ASSERT(!conn.broken);
}

static void test_inflight_marks_and_recovery(void)
{
	size_t bytes = vb_inflight_queue_bytes(QN);
	struct vhost_inflight_queue *q = calloc(1, bytes);
	uint64_t d;

	reset_dev(1);
	vq0()->inflight = q;
	T_ASSERT_EQ(vb_vq_start(&conn, 0), 0);
	T_ASSERT_EQ(q->version, VHOST_INFLIGHT_VERSION);
	T_ASSERT_EQ(q->desc_num, QN);
	d = galloc(4096, 4096);
	T_ASSERT_EQ(req3(VIRTIO_BLK_T_IN, 0, d, 4096, true), VIRTIO_BLK_S_OK);
	/* Completed: cleared, and the region knows the used index. */
	T_ASSERT_EQ(q->desc[0].inflight, 0);
	T_ASSERT_EQ(q->used_idx, 1);
	T_ASSERT_EQ(q->last_batch_head, 0);

	/*
	 * A predecessor died: heads 5 (counter 9) and 2 (counter 7) in flight,
	 * and it had published head 4's used element (used->idx 3) without
	 * clearing it (the region still says used_idx 2).
	 */
	q->desc[5] = (struct vhost_inflight_desc){ .inflight = 1, .counter = 9 };
	q->desc[2] = (struct vhost_inflight_desc){ .inflight = 1, .counter = 7 };
	q->desc[4] = (struct vhost_inflight_desc){ .inflight = 1, .counter = 8 };
	q->last_batch_head = 4;
	q->used_idx = 2;
	vq0()->used->idx = 3;
	T_ASSERT_EQ(vb_vq_start(&conn, 0), 0);
	T_ASSERT_EQ(q->desc[4].inflight, 0);
	T_ASSERT_EQ(q->used_idx, 3);
	T_ASSERT_EQ(vq0()->nresubmit, 2);
	T_ASSERT_EQ(vq0()->resubmit[0], 2);
	T_ASSERT_EQ(vq0()->resubmit[1], 5);
	T_ASSERT_EQ(vq0()->last_avail, 5);
	T_ASSERT_EQ(vq0()->counter, 10);
	/* A region laid out for another queue size is refused. */
	q->desc_num = QN / 2;
	T_ASSERT_EQ(vb_vq_start(&conn, 0), -EINVAL);
	vq0()->inflight = NULL;
	free(q);
}

static void test_event_idx_notification(void)
{
	struct vb_vq *vq;
	uint16_t *used_event;

	reset_dev(1);
	vq = vq0();
	used_event = &vq->avail->ring[QN];
	vq->used_idx = 1;
	T_ASSERT(needs_call(vq)); /* the first one always signals */
	*used_event = 10;
	vq->used_idx = 5;
	T_ASSERT(!needs_call(vq)); /* the driver asked for index 11 */
	vq->used_idx = 11;
	T_ASSERT(needs_call(vq)); /* crossed 10 -> 11 */
	vq->event_idx = false;
	vq->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	T_ASSERT(!needs_call(vq));
	vq->avail->flags = 0;
	T_ASSERT(needs_call(vq));
	/* Sleeping publishes avail_event = what was consumed. */
	vq->event_idx = true;
	vq->last_avail = 33;
	vq->avail->idx = 33;
	T_ASSERT(sleep_prepare(&conn));
	T_ASSERT_EQ(*(uint16_t *)&vq->used->ring[QN], 33);
	vq->avail->idx = 34;
	T_ASSERT(!sleep_prepare(&conn)); /* a request raced in: keep polling */
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_write_read_roundtrip),
		TAP_CASE(test_indirect_and_split_buffers),
		TAP_CASE(test_request_errors_answered),
		TAP_CASE(test_chain_rules_break_the_device),
		TAP_CASE(test_seg_max_and_size),
		TAP_CASE(test_4k_namespace_alignment),
		TAP_CASE(test_flush_get_id_discard_write_zeroes),
		TAP_CASE(test_inflight_marks_and_recovery),
		TAP_CASE(test_event_idx_notification),
	};

	setup_once();
	return tap_run(cases, TAP_N(cases));
}
