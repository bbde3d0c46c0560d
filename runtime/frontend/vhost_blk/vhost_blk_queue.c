// SPDX-License-Identifier: BSD-3-Clause
/*
 * The vhost-user-blk data path, on the controller's reactor: fetch heads
 * from each running split virtqueue's avail ring, walk and check the
 * descriptor chain, turn the virtio-blk request into an NVMe command for
 * the controller model (data as a Transport Data Block that map_data
 * answers from the chain), and on completion write the status byte and the
 * used ring, then notify the guest when EVENT_IDX says it wants to know.
 *
 * Every descriptor is read once (the guest may rewrite its rings under us)
 * and every address is translated through the memory table; a chain is
 * bounded by its table's size, so a hostile chain can neither loop nor
 * reach outside the guest's regions. A request the device can still answer
 * (its status byte is writable guest memory) fails with IOERR or UNSUPP; a
 * ring that breaks the rules (a loop, an index past the queue, no status
 * byte) marks the device broken: nothing more is fetched until the
 * front-end resets it, other devices never notice.
 *
 * Memory ordering with the guest (the other side of every ring):
 *  - avail: the driver writes the ring entry, then (release) avail->idx;
 *    we load idx with acquire before reading entries up to it.
 *  - used: we write the element and the status byte, then store used->idx
 *    with release; the driver reads idx before the element.
 *  - notifications: a full fence between publishing used->idx and reading
 *    used_event (and, before sleeping, between publishing avail_event and
 *    re-reading avail->idx), the mirror of the driver's own barriers.
 *  - inflight (INFLIGHT_SHMFD): a head is marked in flight right after it
 *    is read from the avail ring and cleared after used->idx is published,
 *    with last_batch_head/used_idx telling a successor which one was being
 *    published if we died in between (vhost-user.rst, "Inflight I/O").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "leapio/nvmf_spec.h"
#include "backend/bdev.h"
#include "core/reactor.h"
#include "frontend/vhost_blk/vhost_blk.h"

#define FETCH_BUDGET 64 /* requests per queue per iteration: keeps queues fair */

struct walk {
	struct iovec rd[VB_WALK_IOV]; /* device-readable pieces (header, write data, ranges) */
	struct iovec wr[VB_WALK_IOV]; /* device-writable pieces (read data, status) */
	int8_t rd_reg[VB_WALK_IOV], wr_reg[VB_WALK_IOV];
	uint32_t nrd, nwr;
	uint64_t rd_bytes, wr_bytes;
	uint32_t ndesc;
	bool bad_addr; /* a data buffer outside every region */
	bool too_many; /* more pieces than one request may have */
};

static inline bool has_feature(const struct vb_conn *c, unsigned int bit)
{
	return (c->features >> bit) & 1;
}

static void set_broken(struct vb_conn *c, struct vb_vq *vq, const char *why)
{
	if (c->broken)
		return;
	c->broken = true;
	LEAP_WARN("vhost", "%s: queue %u: %s: device broken until the front-end resets it",
		  c->ctrl->name, (unsigned int)(vq->qp.sqid - 1), why);
}

/* Guest physical -> local with the region's index, or NULL. */
static uint8_t *gpa_ptr(const struct vb_mem *m, uint64_t gpa, uint64_t len, int8_t *reg)
{
	for (uint32_t i = 0; i < m->n; i++) {
		const struct vb_region *r = &m->r[i];

		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa)) {
			*reg = (int8_t)i;
			return r->local + (gpa - r->gpa);
		}
	}
	return NULL;
}

static void walk_add(struct iovec *v, int8_t *regs, uint32_t *n, uint64_t *bytes, bool *too_many,
		     uint8_t *p, uint32_t len, int8_t reg)
{
	uint32_t i = *n;

	if (i == VB_WALK_IOV) {
		/* Full: the request fails anyway; keep the last piece, the status lives there. */
		*too_many = true;
		i--;
	} else {
		(*n)++;
	}
	v[i].iov_base = p;
	v[i].iov_len = len;
	regs[i] = reg;
	*bytes += len;
}

/*
 * Walk the chain at `head`. Returns NULL when the chain is sound enough to
 * answer, else the rule it broke (the device is then broken).
 */
static const char *walk_chain(const struct vb_conn *c, const struct vb_vq *vq, uint16_t head,
			      struct walk *w)
{
	const struct vring_desc *table = vq->desc;
	uint32_t size = vq->num, idx = head;
	bool indirect = false;

	w->nrd = w->nwr = 0;
	w->rd_bytes = w->wr_bytes = 0;
	w->ndesc = 0;
	w->bad_addr = w->too_many = false;
	for (;;) {
		struct vring_desc d;

		/* Read once: the guest may be rewriting its table. */
		memcpy(&d, &table[idx], sizeof(d));
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!has_feature(c, VIRTIO_RING_F_INDIRECT_DESC))
				return "indirect descriptor without INDIRECT_DESC";
			if (indirect || w->ndesc || (d.flags & VRING_DESC_F_NEXT))
				return "indirect descriptor inside a chain";
			if (d.len == 0 || d.len % sizeof(struct vring_desc) ||
			    d.len / sizeof(struct vring_desc) > VIRTQUEUE_MAX_SIZE)
				return "indirect table of a bad size";
			table = (const struct vring_desc *)vb_gpa_ptr(&c->mem, d.addr, d.len);
			if (!table)
				return "indirect table outside guest memory";
			size = d.len / (uint32_t)sizeof(struct vring_desc);
			idx = 0;
			indirect = true;
			continue;
		}
		/* Each entry of a table can appear once in a chain: any more is a loop. */
		if (++w->ndesc > size)
			return "descriptor chain loops or is longer than its table";
		if (d.flags & VRING_DESC_F_WRITE) {
			if (d.len) {
				int8_t reg = -1;
				uint8_t *p = gpa_ptr(&c->mem, d.addr, d.len, &reg);

				if (!p)
					w->bad_addr = true;
				walk_add(w->wr, w->wr_reg, &w->nwr, &w->wr_bytes, &w->too_many, p,
					 d.len, reg);
			}
		} else {
			if (w->nwr)
				return "device-readable descriptor after a device-writable one";
			if (d.len) {
				int8_t reg = -1;
				uint8_t *p = gpa_ptr(&c->mem, d.addr, d.len, &reg);

				if (!p)
					w->bad_addr = true;
				walk_add(w->rd, w->rd_reg, &w->nrd, &w->rd_bytes, &w->too_many, p,
					 d.len, reg);
			}
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			return NULL;
		idx = d.next;
		if (idx >= size)
			return "next descriptor index outside the table";
	}
}

/* ---- completion ----------------------------------------------------------- */

static void push_used(struct vb_vq *vq, uint16_t head, uint32_t len)
{
	uint16_t idx = vq->used_idx;
	struct vring_used_elem *e = &vq->used->ring[idx & (vq->num - 1)];

	e->id = head;
	e->len = len;
	if (vq->inflight)
		vq->inflight->last_batch_head = head;
	/* Release: the element and the status byte are visible before the new index. */
	__atomic_store_n(&vq->used->idx, (uint16_t)(idx + 1), __ATOMIC_RELEASE);
	vq->used_idx = (uint16_t)(idx + 1);
	if (vq->inflight) {
		vq->inflight->desc[head].inflight = 0;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		vq->inflight->used_idx = vq->used_idx;
	}
	vq->need_signal = true;
}

/* Answer a request: status byte, used element, slot back to the pool. */
static void task_done(struct vb_vq *vq, struct leap_req *req, uint8_t status)
{
	struct vb_task *t = &vq->tasks[req->slot];

	*t->status = status;
	if (status != VIRTIO_BLK_S_OK) {
		vq->errors++;
		/* Nothing of a failed read reaches the guest but the status byte. */
		t->used_len = 1;
	}
	push_used(vq, t->head, t->used_len);
	leap_qpair_req_put(&vq->qp, req);
}

static uint8_t virtio_status(uint16_t st)
{
	if ((st & 0x7ff) == 0)
		return VIRTIO_BLK_S_OK;
	if (NVME_STATUS_SCT(st) == NVME_SCT_GENERIC && NVME_STATUS_SC(st) == NVME_SC_INVALID_OPCODE)
		return VIRTIO_BLK_S_UNSUPP;
	return VIRTIO_BLK_S_IOERR;
}

static void vb_complete(void *t, struct leap_req *req)
{
	struct vb_vq *vq = leap_container_of(req->qp, struct vb_vq, qp);

	(void)t;
	task_done(vq, req, virtio_status(req->status));
}

static int vb_map_data(void *arg, struct leap_req *req, uint64_t len, struct iovec *iov,
		       uint32_t max_iov, int32_t *region)
{
	struct vb_vq *vq = leap_container_of(req->qp, struct vb_vq, qp);
	struct vb_task *t = &vq->tasks[req->slot];
	uint64_t have = 0;

	(void)arg;
	if (t->iovcnt > max_iov)
		return -(int)NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	for (uint32_t i = 0; i < t->iovcnt; i++)
		have += t->iov[i].iov_len;
	/* We built both the command and the data: a mismatch is our bug, never the guest's. */
	if (have != len)
		return -(int)NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
	if (iov != t->iov)
		memcpy(iov, t->iov, sizeof(*iov) * t->iovcnt);
	if (region)
		*region = t->region;
	return (int)t->iovcnt;
}

/* ---- requests --------------------------------------------------------------- */

/* Copy `len` bytes from the front of a piece list, consuming them. */
static bool take_front(struct iovec *v, uint32_t *n, uint32_t *first, void *out, size_t len)
{
	uint8_t *o = out;

	while (len) {
		size_t k;

		if (*first >= *n)
			return false;
		k = LEAP_MIN(len, v[*first].iov_len);
		memcpy(o, v[*first].iov_base, k);
		o += k;
		len -= k;
		v[*first].iov_base = (uint8_t *)v[*first].iov_base + k;
		v[*first].iov_len -= k;
		if (v[*first].iov_len == 0)
			(*first)++;
	}
	return true;
}

/*
 * The data pieces [first, n) become the task's iovecs, neighbours that are
 * contiguous here merged. False when they need more than one request may
 * carry.
 */
static bool set_data(struct vb_task *t, const struct iovec *v, const int8_t *regs, uint32_t first,
		     uint32_t n)
{
	t->iovcnt = 0;
	t->region = -1;
	for (uint32_t i = first; i < n; i++) {
		struct iovec *last = t->iovcnt ? &t->iov[t->iovcnt - 1] : NULL;

		if (!v[i].iov_len)
			continue;
		if (t->iovcnt == 0)
			t->region = regs[i];
		else if (t->region != regs[i])
			t->region = -1;
		if (last && (uint8_t *)last->iov_base + last->iov_len == v[i].iov_base &&
		    t->region >= 0) {
			last->iov_len += v[i].iov_len;
			continue;
		}
		if (t->iovcnt == LEAP_REQ_MAX_IOV)
			return false;
		t->iov[t->iovcnt++] = v[i];
	}
	return true;
}

static uint64_t iov_bytes(const struct vb_task *t)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < t->iovcnt; i++)
		n += t->iov[i].iov_len;
	return n;
}

static void sqe_rw(struct vb_conn *c, struct nvme_sqe *sqe, uint8_t opc, uint64_t slba,
		   uint32_t nlb, uint64_t len)
{
	struct nvme_sgl_desc *sgl = (struct nvme_sgl_desc *)&sqe->prp1;

	sqe->opc = opc;
	sqe->nsid = c->nsid;
	sqe->cdw10 = (uint32_t)slba;
	sqe->cdw11 = (uint32_t)(slba >> 32);
	sqe->cdw12 = nlb - 1;
	if (len) {
		sqe->flags = NVMF_SQE_FLAGS_SGL;
		sgl->addr = 0;
		sgl->length = (uint32_t)len;
		sgl->type = NVMF_TCP_SGL_TRANSPORT;
	}
}

/* A byte range in 512-byte sectors as whole blocks of the namespace, or false. */
static bool to_blocks(const struct vb_conn *c, uint64_t sector, uint64_t bytes, uint64_t *slba,
		      uint64_t *nlb)
{
	uint64_t mask = (1ull << c->lba_shift) - 1;

	if (sector > (UINT64_MAX >> VIRTIO_BLK_SECTOR_SHIFT))
		return false;
	if ((sector << VIRTIO_BLK_SECTOR_SHIFT) & mask || bytes & mask || !bytes)
		return false;
	*slba = (sector << VIRTIO_BLK_SECTOR_SHIFT) >> c->lba_shift;
	*nlb = bytes >> c->lba_shift;
	return true;
}

/* Discard / Write Zeroes: segments in the readable data. Returns a virtio status or 0xff (submitted). */
static uint8_t prep_ranges(struct vb_conn *c, struct vb_task *t, struct nvme_sqe *sqe,
			   uint32_t type, struct iovec *rd, uint32_t nrd, uint32_t first)
{
	struct virtio_blk_discard_write_zeroes seg[VB_MAX_DISCARD_SEG];
	uint32_t nseg, max = type == VIRTIO_BLK_T_DISCARD ? VB_MAX_DISCARD_SEG : 1;
	uint64_t bytes = 0;

	for (uint32_t i = first; i < nrd; i++)
		bytes += rd[i].iov_len;
	if (!bytes || bytes % sizeof(seg[0]) || bytes / sizeof(seg[0]) > max)
		return VIRTIO_BLK_S_IOERR;
	nseg = (uint32_t)(bytes / sizeof(seg[0]));
	if (!take_front(rd, &nrd, &first, seg, bytes))
		return VIRTIO_BLK_S_IOERR;
	if (type == VIRTIO_BLK_T_WRITE_ZEROES) {
		uint64_t slba, nlb;

		if (seg[0].flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
			return VIRTIO_BLK_S_UNSUPP;
		if (!to_blocks(c, seg[0].sector, (uint64_t)seg[0].num_sectors << 9, &slba, &nlb) ||
		    nlb > 65536)
			return VIRTIO_BLK_S_IOERR;
		sqe_rw(c, sqe, NVME_OPC_WRITE_ZEROES, slba, (uint32_t)nlb, 0);
		if (seg[0].flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
			sqe->cdw12 |= NVME_WZ_DEAC;
		return 0xff;
	}
	for (uint32_t i = 0; i < nseg; i++) {
		uint64_t slba, nlb;

		/* The unmap flag is reserved for discard (virtio 1.1, 5.2.6.2). */
		if (seg[i].flags)
			return VIRTIO_BLK_S_UNSUPP;
		if (!to_blocks(c, seg[i].sector, (uint64_t)seg[i].num_sectors << 9, &slba, &nlb) ||
		    nlb > UINT32_MAX)
			return VIRTIO_BLK_S_IOERR;
		t->dsm[i].cattr = 0;
		t->dsm[i].nlb = (uint32_t)nlb;
		t->dsm[i].slba = slba;
	}
	t->iov[0].iov_base = t->dsm;
	t->iov[0].iov_len = nseg * sizeof(t->dsm[0]);
	t->iovcnt = 1;
	t->region = -1;
	sqe_rw(c, sqe, NVME_OPC_DATASET_MANAGEMENT, 0, 1, t->iov[0].iov_len);
	sqe->cdw10 = nseg - 1;
	sqe->cdw11 = NVME_DSM_ATTR_DEALLOCATE;
	sqe->cdw12 = 0;
	return 0xff;
}

/* One request at `head` in a fresh slot. False when the device broke on it. */
static bool handle_request(struct vb_conn *c, struct vb_vq *vq, uint16_t head)
{
	struct leap_req *req = leap_qpair_req_get(&vq->qp);
	struct vb_task *t = &vq->tasks[req->slot];
	struct virtio_blk_outhdr hdr;
	struct walk w;
	const char *why;
	uint32_t rfirst = 0;
	uint64_t slba, nlb, len;
	uint8_t st;

	t->head = head;
	vq->requests++;
	why = walk_chain(c, vq, head, &w);
	if (!why && !w.nwr)
		why = "no device-writable status byte";
	if (!why && !w.wr[w.nwr - 1].iov_base)
		why = "status byte outside guest memory";
	if (why) {
		leap_qpair_req_put(&vq->qp, req);
		set_broken(c, vq, why);
		return false;
	}
	t->status = (uint8_t *)w.wr[w.nwr - 1].iov_base + w.wr[w.nwr - 1].iov_len - 1;
	t->used_len = 1;
	/* The status byte is not data: drop it from the writable pieces. */
	if (--w.wr[w.nwr - 1].iov_len == 0)
		w.nwr--;
	w.wr_bytes--;
	if (w.bad_addr || w.too_many || w.ndesc > VB_SEG_MAX + 2) {
		task_done(vq, req, VIRTIO_BLK_S_IOERR);
		return true;
	}
	/* A request shorter than its header (or a header in writable memory). */
	if (w.rd_bytes < sizeof(hdr) || !take_front(w.rd, &w.nrd, &rfirst, &hdr, sizeof(hdr))) {
		task_done(vq, req, VIRTIO_BLK_S_IOERR);
		return true;
	}
	memset(&req->sqe, 0, sizeof(req->sqe));
	req->sqe.cid = req->slot;
	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		bool in = hdr.type == VIRTIO_BLK_T_IN;

		if (in ? !set_data(t, w.wr, w.wr_reg, 0, w.nwr)
		       : !set_data(t, w.rd, w.rd_reg, rfirst, w.nrd)) {
			st = VIRTIO_BLK_S_IOERR;
			break;
		}
		len = iov_bytes(t);
		if (len > LEAP_CTRL_MAX_XFER || !to_blocks(c, hdr.sector, len, &slba, &nlb)) {
			st = VIRTIO_BLK_S_IOERR;
			break;
		}
		if (in)
			t->used_len = (uint32_t)len + 1;
		sqe_rw(c, &req->sqe, in ? NVME_OPC_READ : NVME_OPC_WRITE, slba, (uint32_t)nlb, len);
		leap_ctrl_submit(c->ctrl, req, false);
		return true;
	}
	case VIRTIO_BLK_T_FLUSH:
		if (!has_feature(c, VIRTIO_BLK_F_FLUSH)) {
			st = VIRTIO_BLK_S_UNSUPP;
			break;
		}
		t->iovcnt = 0;
		req->sqe.opc = NVME_OPC_FLUSH;
		req->sqe.nsid = c->nsid;
		leap_ctrl_submit(c->ctrl, req, false);
		return true;
	case VIRTIO_BLK_T_GET_ID: {
		/* The controller's serial, NUL-padded to 20 bytes (not terminated when full). */
		uint8_t id[VIRTIO_BLK_ID_BYTES] = { 0 };
		uint32_t done = 0;

		memcpy(id, c->ctrl->serial, strnlen(c->ctrl->serial, sizeof(id)));
		for (uint32_t i = 0; i < w.nwr && done < sizeof(id); i++) {
			size_t k = LEAP_MIN(w.wr[i].iov_len, sizeof(id) - done);

			memcpy(w.wr[i].iov_base, id + done, k);
			done += (uint32_t)k;
		}
		t->used_len = done + 1;
		st = VIRTIO_BLK_S_OK;
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (!has_feature(c, hdr.type == VIRTIO_BLK_T_DISCARD ? VIRTIO_BLK_F_DISCARD
								     : VIRTIO_BLK_F_WRITE_ZEROES)) {
			st = VIRTIO_BLK_S_UNSUPP;
			break;
		}
		t->iovcnt = 0;
		st = prep_ranges(c, t, &req->sqe, hdr.type, w.rd, w.nrd, rfirst);
		if (st == 0xff) {
			leap_ctrl_submit(c->ctrl, req, false);
			return true;
		}
		break;
	default:
		st = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	task_done(vq, req, st);
	return true;
}

static void inflight_get(struct vb_vq *vq, uint16_t head)
{
	if (!vq->inflight)
		return;
	vq->inflight->desc[head].counter = vq->counter++;
	vq->inflight->desc[head].inflight = 1;
}

/* Fetch and start up to FETCH_BUDGET requests. Returns how many. */
static uint32_t process_vq(struct vb_conn *c, struct vb_vq *vq)
{
	uint32_t n = 0;
	uint16_t avail_idx;

	/* Heads that were in flight when the previous back-end went away, oldest first. */
	while (vq->resubmit_pos < vq->nresubmit && vq->qp.free_reqs && !c->broken) {
		uint16_t head = vq->resubmit[vq->resubmit_pos++];

		if (!handle_request(c, vq, head))
			return n;
		n++;
	}
	avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->num) {
		set_broken(c, vq, "avail index moved by more than the queue size");
		return n;
	}
	while (vq->last_avail != avail_idx && n < FETCH_BUDGET && vq->qp.free_reqs && !c->broken) {
		uint16_t head = __atomic_load_n(&vq->avail->ring[vq->last_avail & (vq->num - 1)],
						__ATOMIC_RELAXED);

		if (head >= vq->num) {
			set_broken(c, vq, "avail ring names a head outside the queue");
			return n;
		}
		vq->last_avail++;
		inflight_get(vq, head);
		n++;
		if (!handle_request(c, vq, head))
			return n;
	}
	return n;
}

/* Does the driver want an interrupt for what we published since the last one? */
static bool needs_call(struct vb_vq *vq)
{
	uint16_t old, new_idx;
	bool valid;

	/* Pairs with the driver's barrier between updating used_event and reading used->idx. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(__atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED) &
			 VRING_AVAIL_F_NO_INTERRUPT);
	old = vq->signalled_used;
	valid = vq->signalled_valid;
	new_idx = vq->signalled_used = vq->used_idx;
	vq->signalled_valid = true;
	if (!valid)
		return true;
	return vring_need_event(__atomic_load_n(&vq->avail->ring[vq->num], __ATOMIC_RELAXED),
				new_idx, old);
}

static void signal_vq(struct vb_conn *c, struct vb_vq *vq)
{
	uint64_t one = 1;

	vq->need_signal = false;
	if (vq->call_fd < 0 || !needs_call(vq))
		return;
	/* Non-blocking (set by the listener): a full counter only means the guest has a wake-up queued. */
	if (write(vq->call_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		LEAP_DEBUG("vhost", "%s: call fd: %s", c->ctrl->name, strerror(errno));
}

static uint32_t busy_total(const struct vb_conn *c)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < c->nvq; i++)
		n += c->vq[i].qp.busy;
	return n;
}

static void rebuild_running(struct vb_conn *c)
{
	c->nrunning = 0;
	for (uint32_t q = 0; q < c->nvq; q++)
		if (c->vq[q].running)
			c->running_ids[c->nrunning++] = (uint16_t)q;
}

static void vq_halt(struct vb_conn *c, struct vb_vq *vq)
{
	if (vq->kick_fd >= 0)
		leap_poller_unwatch_fd(c->poller, vq->kick_fd);
	free(vq->resubmit);
	vq->resubmit = NULL;
	vq->nresubmit = vq->resubmit_pos = 0;
	vq->running = false;
	vq->stopping = false;
	rebuild_running(c);
}

/* Queues asked to stop whose requests all completed stop now; then the waiter hears of it. */
static void check_drained(struct vb_conn *c)
{
	bool waiting = false;

	for (uint32_t q = 0; q < c->nvq; q++) {
		struct vb_vq *vq = &c->vq[q];

		if (!vq->stopping)
			continue;
		if (vq->qp.busy)
			waiting = true;
		else
			vq_halt(c, vq);
	}
	if (waiting || !c->drained)
		return;
	if (c->detaching) {
		if (leap_ctrl_inflight(c->ctrl) || busy_total(c))
			return;
		leap_ctrl_channels_close(c->ctrl);
		leap_poller_unregister(c->poller);
		c->poller = NULL;
		/* On the reactor, so no stats reader here can see a dangling transport. */
		leap_ctrl_transport_unbind(c->ctrl);
	}
	void (*fn)(void *) = c->drained;
	c->drained = NULL;
	fn(c->drained_arg);
}

/*
 * Adaptive polling: how far apart does this guest's work come? Measured
 * from the poll that found the device idle to the one that found work
 * again (two clock reads per idle period; none while requests stream).
 * Returns what an idle poll tells the reactor: IDLE (keep polling for its
 * idle window) while the gaps are short, NOTIFY (sleep on the kick fds
 * at once) when they are long — a TCG guest's batches come hundreds of
 * microseconds apart, and a reactor spinning between them only takes a
 * CPU that the guest's own threads need on a small machine.
 */
static int poll_policy(struct vb_conn *c, uint32_t fetched)
{
	if (fetched) {
		if (c->idle) {
			/*
			 * Clamped, so that one long gap (the reactor preempted,
			 * the guest paused) cannot flip the mode: six in a row
			 * from polling switch to notifications, six short ones
			 * switch back.
			 */
			uint64_t gap = LEAP_MIN(leap_now_ns() - c->idle_ns, 2 * VB_POLL_GAP_NS);

			c->gap_avg_ns = c->gap_avg_ns - c->gap_avg_ns / 8 + gap / 8;
			c->idle = false;
		}
		return LEAP_POLL_BUSY;
	}
	if (!c->idle) {
		c->idle = true;
		c->idle_ns = leap_now_ns();
		if (c->gap_avg_ns > VB_POLL_GAP_NS)
			c->notify_mode++;
	}
	return c->gap_avg_ns > VB_POLL_GAP_NS ? LEAP_POLL_NOTIFY : LEAP_POLL_IDLE;
}

static int conn_poll(void *arg)
{
	struct vb_conn *c = arg;
	uint32_t fetched = 0;
	int busy;

	if (!c->broken && !c->detaching)
		for (uint32_t i = 0; i < c->nrunning; i++) {
			struct vb_vq *vq = &c->vq[c->running_ids[i]];

			if (!vq->stopping)
				fetched += process_vq(c, vq);
		}
	busy = poll_policy(c, fetched);
	if (leap_ctrl_poll(c->ctrl) == LEAP_POLL_BUSY)
		busy = LEAP_POLL_BUSY;
	for (uint32_t i = 0; i < c->nrunning; i++) {
		struct vb_vq *vq = &c->vq[c->running_ids[i]];

		if (vq->need_signal)
			signal_vq(c, vq);
	}
	if (leap_unlikely(c->drained != NULL)) {
		check_drained(c);
		return LEAP_POLL_BUSY;
	}
	if (busy != LEAP_POLL_BUSY && busy_total(c))
		return LEAP_POLL_WAIT;
	return busy;
}

/* As in the shm front-end: sleep only when every request waits on a channel that can wake us. */
static bool arm_channels(struct vb_conn *c)
{
	struct leap_ctrl *ctrl = c->ctrl;
	uint32_t in_channels = 0;

	/* Timed deferrals are fine: sleep_prepare bounds the sleep by the earliest one. */
	if (ctrl->deferred_untimed || ctrl->bounce_wait_head || ctrl->arb_queued)
		return false;
	for (uint32_t i = 0; i < LEAP_CTRL_MAX_NS + LEAP_CTRL_MAX_RCHAN; i++) {
		struct leap_chan *chan =
		    i < LEAP_CTRL_MAX_NS ? &ctrl->ns[i].chan : &ctrl->rchan[i - LEAP_CTRL_MAX_NS];
		struct leap_bdev_channel *ch = chan->ch;
		int fd;

		if (!ch)
			continue;
		if (chan->pending_head)
			return false;
		if (!ch->inflight)
			continue;
		fd = leap_bdev_channel_wake_fd(ch);
		if (fd < 0 || leap_poller_watch_fd(c->poller, fd))
			return false;
		c->armed[c->narmed++] = ch;
		if (!leap_bdev_channel_sleep_prepare(ch))
			return false;
		in_channels += ch->inflight;
	}
	return busy_total(c) == in_channels + ctrl->deferred;
}

/*
 * Before the reactor blocks: ask the driver for a kick at the next request
 * (avail_event = what we consumed, or clear NO_NOTIFY), a full fence, then
 * look at every avail index again. The driver publishes avail->idx, fences,
 * then reads avail_event: either we see its request here or it kicks.
 */
static bool sleep_prepare(void *arg)
{
	struct vb_conn *c = arg;

	c->narmed = 0;
	if (c->detaching || c->drained || !arm_channels(c))
		return false;
	/* A rate-limited request parked by a policy: sleep until it is due, not past it. */
	if (c->ctrl->defer_head)
		leap_poller_wake_at(c->poller, leap_ctrl_next_deadline(c->ctrl));
	if (c->broken)
		return true;
	for (uint32_t i = 0; i < c->nrunning; i++) {
		struct vb_vq *vq = &c->vq[c->running_ids[i]];

		if (vq->resubmit_pos < vq->nresubmit)
			return false;
		if (vq->event_idx)
			__atomic_store_n((uint16_t *)&vq->used->ring[vq->num], vq->last_avail,
					 __ATOMIC_RELAXED);
		else
			__atomic_store_n(&vq->used->flags, 0, __ATOMIC_RELAXED);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (uint32_t i = 0; i < c->nrunning; i++) {
		struct vb_vq *vq = &c->vq[c->running_ids[i]];

		if (__atomic_load_n(&vq->avail->idx, __ATOMIC_RELAXED) != vq->last_avail)
			return false;
	}
	return true;
}

static void sleep_done(void *arg)
{
	struct vb_conn *c = arg;

	for (uint32_t i = 0; i < c->narmed; i++)
		leap_bdev_channel_sleep_done(c->armed[i]);
	c->narmed = 0;
	for (uint32_t i = 0; i < c->nrunning; i++) {
		struct vb_vq *vq = &c->vq[c->running_ids[i]];
		uint64_t v;
		struct iovec iov = { &v, sizeof(v) };

		/* While we poll, kicks are noise: ask the driver not to send them. */
		if (!vq->event_idx)
			__atomic_store_n(&vq->used->flags, VRING_USED_F_NO_NOTIFY,
					 __ATOMIC_RELAXED);
		/*
		 * Reset the kick counter. RWF_NOWAIT: the front-end shares this
		 * eventfd's file description and could have made it blocking.
		 */
		if (vq->kick_fd < 0)
			continue;
		if (preadv2(vq->kick_fd, &iov, 1, -1, RWF_NOWAIT) == sizeof(v))
			c->kicks++;
		else if (errno != EAGAIN)
			LEAP_DEBUG("vhost", "%s: kick fd: %s", c->ctrl->name, strerror(errno));
	}
}

static const struct leap_poller_ops conn_poller_ops = {
	.poll = conn_poll,
	.sleep_prepare = sleep_prepare,
	.sleep_done = sleep_done,
};

/* ---- control (messages from the listener) --------------------------------- */

static uint32_t vb_qpairs(void *t, struct leap_qpair **out, uint32_t max)
{
	struct vb_conn *c = t;
	uint32_t n = 0;

	for (uint32_t i = 0; i < c->nrunning && n < max; i++)
		out[n++] = &c->vq[c->running_ids[i]].qp;
	return n;
}

/* Transport Data Blocks only: the data is wherever the descriptor chain put it. */
static const struct leap_transport_caps vb_caps = {
	.sgls = 1,
	.cntrltype = 1,
};

const struct leap_ctrl_transport_ops leap_vb_transport_ops = {
	.caps = &vb_caps,
	.complete = vb_complete,
	.map_data = vb_map_data,
	.qpairs = vb_qpairs,
};

int vb_conn_start(struct vb_conn *c)
{
	uint16_t st;
	int err;

	leap_ctrl_transport_bind(c->ctrl, &leap_vb_transport_ops, c);
	/* vhost has no registers: the controller is enabled for as long as the front-end is here. */
	st = leap_ctrl_prop_set(c->ctrl, NVME_REG_CC, 4, NVME_CC_EN);
	if (st || !leap_ctrl_ready(c->ctrl)) {
		leap_ctrl_transport_unbind(c->ctrl);
		return -EIO;
	}
	err = leap_poller_register(c->reactor, &conn_poller_ops, c, -1, &c->poller);
	if (err)
		leap_ctrl_transport_unbind(c->ctrl);
	return err;
}

static int cmp_counter(const void *a, const void *b, void *arg)
{
	const struct vhost_inflight_queue *q = arg;
	uint64_t x = q->desc[*(const uint16_t *)a].counter,
		 y = q->desc[*(const uint16_t *)b].counter;

	return x < y ? -1 : x > y;
}

/*
 * A queue that starts over inflight memory used before: complete the
 * publication a dead back-end may have left half done, then resubmit what
 * was in flight in fetch order, and continue fetching after it.
 */
static int inflight_recover(struct vb_vq *vq)
{
	struct vhost_inflight_queue *q = vq->inflight;
	uint16_t used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
	uint32_t n = 0;
	uint64_t top = 0;

	vq->counter = 0;
	if (q->version == 0) {
		/* Fresh memory: nothing to recover; it starts where the ring is. */
		q->desc_num = (uint16_t)vq->num;
		q->used_idx = used_idx;
		q->version = VHOST_INFLIGHT_VERSION;
		return 0;
	}
	if (q->version != VHOST_INFLIGHT_VERSION || q->desc_num != vq->num)
		return -EINVAL;
	if (q->used_idx != used_idx) {
		/* We died between publishing the used index and clearing its head. */
		if (q->last_batch_head < vq->num)
			q->desc[q->last_batch_head].inflight = 0;
		q->used_idx = used_idx;
	}
	vq->resubmit = calloc(vq->num, sizeof(*vq->resubmit));
	if (!vq->resubmit)
		return -ENOMEM;
	for (uint32_t i = 0; i < vq->num; i++) {
		if (q->desc[i].inflight != 1)
			continue;
		vq->resubmit[n++] = (uint16_t)i;
		top = LEAP_MAX(top, q->desc[i].counter + 1);
	}
	qsort_r(vq->resubmit, n, sizeof(*vq->resubmit), cmp_counter, q);
	vq->nresubmit = n;
	vq->resubmit_pos = 0;
	vq->counter = top;
	vq->last_avail = (uint16_t)(used_idx + n);
	if (n)
		LEAP_INFO("vhost", "queue %u: resubmitting %u request(s) in flight before",
			  (unsigned int)(vq->qp.sqid - 1), n);
	return 0;
}

int vb_vq_start(struct vb_conn *c, uint32_t q)
{
	struct vb_vq *vq = &c->vq[q];
	int err;

	vq->last_avail = vq->base;
	vq->used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
	vq->event_idx = has_feature(c, VIRTIO_RING_F_EVENT_IDX);
	vq->signalled_valid = false;
	vq->need_signal = false;
	vq->stopping = false;
	if (vq->inflight) {
		err = inflight_recover(vq);
		if (err)
			return err;
	}
	if (!vq->event_idx)
		__atomic_store_n(&vq->used->flags, VRING_USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
	if (vq->kick_fd >= 0) {
		err = leap_poller_watch_fd(c->poller, vq->kick_fd);
		if (err)
			return err;
	}
	/* A new start is the front-end's reset: a broken device gets its chance again. */
	c->broken = false;
	vq->running = true;
	rebuild_running(c);
	return 0;
}

void vb_conn_drain(struct vb_conn *c, uint32_t qmask, bool detach)
{
	for (uint32_t q = 0; q < c->nvq; q++)
		if (c->vq[q].running && (detach || (qmask >> q) & 1))
			c->vq[q].stopping = true;
	c->detaching = detach;
	/* c->drained was set by the caller; conn_poll calls it once the queues are idle. */
	check_drained(c);
}

void vb_conn_mem_update(struct vb_conn *c)
{
	struct leap_ctrl *ctrl = c->ctrl;

	/*
	 * The namespaces' channels registered the old regions as fixed buffers:
	 * drop those, then register the new ones (the channels stay open).
	 */
	leap_ctrl_channels_close(ctrl);
	memset(&ctrl->mem, 0, sizeof(ctrl->mem));
	for (uint32_t i = 0; i < c->mem.n && i < LEAP_SHM_MAX_REGIONS; i++) {
		ctrl->mem.r[i].base = c->mem.r[i].gpa;
		ctrl->mem.r[i].len = c->mem.r[i].size;
		ctrl->mem.r[i].local = c->mem.r[i].local;
		ctrl->mem.cnt = i + 1;
		leap_ctrl_region_added(ctrl, i);
	}
}

int vb_vq_set_call(struct vb_conn *c, uint32_t q, int fd)
{
	int old = c->vq[q].call_fd;

	c->vq[q].call_fd = fd;
	/* Whatever was published under the old fd may not have been signalled. */
	if (c->vq[q].running)
		c->vq[q].need_signal = true;
	return old;
}
