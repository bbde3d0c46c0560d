// SPDX-License-Identifier: BSD-3-Clause
/*
 * I/O commands: validate, translate data pointers, run the submit hook and
 * hand the command to the namespace's backend channel; on completion map
 * the backend's errno to an NVMe status. Validation happens before any
 * byte moves: an out-of-range LBA never reaches the backend and a bad PRP
 * never touches memory. No allocation, syscall, lock or log per command
 * (a channel is opened once, on a namespace's first command).
 *
 * Bounce buffers: Compare reads the media into one and compares it with the
 * host's data; a Read or Write whose host buffers a direct-I/O backend
 * cannot use (bdev->mem_align) goes through one too. The controller has
 * LEAP_CTRL_BOUNCE_SLOTS of them; a command that finds none free waits in
 * FIFO order on the controller and is started from leap_ctrl_poll(), never
 * from a completion callback, so completions cannot recurse.
 */
#include <errno.h>
#include <string.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "ctrl_internal.h"
#include "reactor.h"

static void dsm_next(struct leap_ctrl *ctrl, struct leap_req *req);

static uint8_t *bounce_slot(struct leap_ctrl *ctrl, uint32_t slot)
{
	return ctrl->bounce + (size_t)slot * LEAP_CTRL_MAX_XFER;
}

static void bounce_put(struct leap_ctrl *ctrl, struct leap_req *req)
{
	ctrl->bounce_free |= 1u << (req->bounce - 1);
	req->bounce = 0;
}

static void finish(struct leap_ctrl *ctrl, struct leap_req *req, uint16_t status)
{
	if (req->bounce)
		bounce_put(ctrl, req);
	req->status = status;
	leap_ctrl_complete(ctrl, req);
}

/* Copy between the host's iovecs and a flat buffer (direction by `to_host`). */
static void copy_iov(struct leap_req *req, uint8_t *flat, bool to_host)
{
	for (uint32_t i = 0; i < req->iovcnt; i++) {
		if (to_host)
			memcpy(req->iov[i].iov_base, flat, req->iov[i].iov_len);
		else
			memcpy(flat, req->iov[i].iov_base, req->iov[i].iov_len);
		flat += req->iov[i].iov_len;
	}
}

static bool needs_bounce(const struct leap_req *req)
{
	return req->sqe.opc == NVME_OPC_COMPARE ||
	       (req->flags & (LEAP_REQ_F_BOUNCE_IN | LEAP_REQ_F_BOUNCE_OUT));
}

/* Take a free bounce slot and point the bdev I/O at it; false if none is free. */
static bool bounce_get(struct leap_ctrl *ctrl, struct leap_req *req)
{
	uint32_t slot;

	if (!ctrl->bounce_free)
		return false;
	slot = (uint32_t)__builtin_ctz(ctrl->bounce_free);
	ctrl->bounce_free &= ~(1u << slot);
	req->bounce = (uint8_t)(slot + 1);
	req->bounce_iov.iov_base = bounce_slot(ctrl, slot);
	req->bounce_iov.iov_len = req->bio.len;
	req->bio.iov = &req->bounce_iov;
	req->bio.iovcnt = 1;
	req->bio.buf_index = -1;
	if (req->flags & LEAP_REQ_F_BOUNCE_OUT)
		copy_iov(req, req->bounce_iov.iov_base, false);
	return true;
}

static int ns_channel(struct leap_ctrl *ctrl, struct leap_ns *ns)
{
	int err;

	if (leap_likely(ns->ch != NULL))
		return 0;
	/* Not retried per I/O (that would allocate and log per command) until channels close. */
	if (ns->ch_failed)
		return -EIO;
	err = leap_bdev_channel_open(ns->bdev, &ns->ch);
	if (err) {
		ns->ch_failed = true;
		LEAP_ERR("ctrl", "%s: nsid %u: cannot open a channel on bdev '%s': %s", ctrl->name,
			 ns->nsid, ns->bdev->name, strerror(-err));
		ns->ch = NULL;
		return err;
	}
	for (uint32_t r = 0; r < ctrl->mem.cnt; r++) {
		int idx =
		    leap_bdev_region_register(ns->ch, ctrl->mem.r[r].local, ctrl->mem.r[r].len);

		ns->buf_index[r] = idx >= 0 ? idx : -1;
	}
	return 0;
}

/* FIFO through next_free (free while the command is ours). */
static void fifo_push(struct leap_req **head, struct leap_req **tail, struct leap_req *req)
{
	req->next_free = NULL;
	if (*tail)
		(*tail)->next_free = req;
	else
		*head = req;
	*tail = req;
}

static struct leap_req *fifo_pop(struct leap_req **head, struct leap_req **tail)
{
	struct leap_req *req = *head;

	*head = req->next_free;
	if (!*head)
		*tail = NULL;
	req->next_free = NULL;
	return req;
}

/* Submit req->bio; a full backend queues it for leap_ctrl_poll() to retry in order. */
static void dispatch(struct leap_ctrl *ctrl, struct leap_req *req)
{
	struct leap_ns *ns = req->ns;
	int rc;

	if (ns->pending_head) { /* keep order behind earlier waiters */
		fifo_push(&ns->pending_head, &ns->pending_tail, req);
		return;
	}
	rc = leap_bdev_submit(ns->ch, &req->bio);
	if (leap_likely(rc == 0))
		return;
	if (rc == -EAGAIN) {
		fifo_push(&ns->pending_head, &ns->pending_tail, req);
		return;
	}
	finish(ctrl, req, ST(GENERIC, INTERNAL_DEVICE_ERROR));
}

/* Everything after validation and the submit hook: backend channel, bounce, submit. */
static void start(struct leap_ctrl *ctrl, struct leap_req *req)
{
	if (ns_channel(ctrl, req->ns)) {
		finish(ctrl, req, ST(GENERIC, INTERNAL_DEVICE_ERROR));
		return;
	}
	if (req->sqe.opc == NVME_OPC_DATASET_MANAGEMENT) {
		dsm_next(ctrl, req);
		return;
	}
	if (needs_bounce(req) && (ctrl->bounce_wait_head || !bounce_get(ctrl, req))) {
		fifo_push(&ctrl->bounce_wait_head, &ctrl->bounce_wait_tail, req);
		return;
	}
	dispatch(ctrl, req);
}

int leap_ctrl_poll(struct leap_ctrl *ctrl)
{
	int busy = LEAP_POLL_IDLE;

	for (uint32_t i = 0; i < LEAP_CTRL_MAX_NS; i++) {
		struct leap_ns *ns = &ctrl->ns[i];

		if (!ns->ch)
			continue;
		if (leap_bdev_poll(ns->ch) > 0)
			busy = LEAP_POLL_BUSY;
		while (ns->pending_head) {
			int rc = leap_bdev_submit(ns->ch, &ns->pending_head->bio);
			struct leap_req *req;

			if (rc == -EAGAIN)
				break;
			req = fifo_pop(&ns->pending_head, &ns->pending_tail);
			busy = LEAP_POLL_BUSY;
			if (rc)
				finish(ctrl, req, ST(GENERIC, INTERNAL_DEVICE_ERROR));
		}
	}
	while (ctrl->bounce_wait_head && ctrl->bounce_free) {
		struct leap_req *req = fifo_pop(&ctrl->bounce_wait_head, &ctrl->bounce_wait_tail);

		bounce_get(ctrl, req);
		dispatch(ctrl, req);
		busy = LEAP_POLL_BUSY;
	}
	return busy;
}

/* Validate an LBA range: slba + nlb within the namespace, no overflow. */
static bool range_ok(const struct leap_ns *ns, uint64_t slba, uint64_t nlb)
{
	return slba < ns->nlb && nlb <= ns->nlb - slba;
}

static uint16_t map_errno(const struct leap_req *req, int err)
{
	if (err == -EIO || err == -ENODATA)
		return req->sqe.opc == NVME_OPC_WRITE || req->sqe.opc == NVME_OPC_WRITE_ZEROES
			   ? NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULTS)
			   : NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_UNRECOVERED_READ_ERROR);
	if (err == -ENOSPC)
		return ST(GENERIC, CAPACITY_EXCEEDED);
	return ST(GENERIC, INTERNAL_DEVICE_ERROR);
}

static uint16_t compare_bounce(const struct leap_req *req)
{
	const uint8_t *b = req->bounce_iov.iov_base;

	for (uint32_t i = 0; i < req->iovcnt; i++) {
		if (memcmp(b, req->iov[i].iov_base, req->iov[i].iov_len))
			return NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILURE);
		b += req->iov[i].iov_len;
	}
	return 0;
}

static void io_done(struct leap_bdev_io *bio, int status)
{
	struct leap_req *req = bio->cb_arg;
	struct leap_ctrl *ctrl = req->qp->ctrl;
	uint16_t st = 0;

	if (status < 0) {
		st = map_errno(req, status);
		if (NVME_STATUS_SCT(st) == NVME_SCT_MEDIA)
			ctrl->media_errors++;
	}
	switch (req->sqe.opc) {
	case NVME_OPC_COMPARE:
		if (!st)
			st = compare_bounce(req);
		break;
	case NVME_OPC_READ:
		if (!st && (req->flags & LEAP_REQ_F_BOUNCE_IN))
			copy_iov(req, req->bounce_iov.iov_base, true);
		break;
	case NVME_OPC_DATASET_MANAGEMENT:
		if (!st && ++req->dsm_done < req->dsm_cnt) {
			dsm_next(ctrl, req);
			return;
		}
		break;
	default:
		break;
	}
	finish(ctrl, req, st);
}

/* Range i of a DSM command, gathered from the host's iovecs (a range may straddle two pages). */
static void dsm_range(const struct leap_req *req, uint32_t i, struct nvme_dsm_range *r)
{
	size_t off = (size_t)i * sizeof(*r), got = 0;

	for (uint32_t k = 0; k < req->iovcnt && got < sizeof(*r); k++) {
		size_t n;

		if (off >= req->iov[k].iov_len) {
			off -= req->iov[k].iov_len;
			continue;
		}
		n = LEAP_MIN(req->iov[k].iov_len - off, sizeof(*r) - got);
		memcpy((uint8_t *)r + got, (const uint8_t *)req->iov[k].iov_base + off, n);
		got += n;
		off = 0;
	}
}

/*
 * Submit the next non-empty deallocate range. Each range is copied once and
 * validated again: the tenant may have rewritten its buffer since prep_dsm().
 */
static void dsm_next(struct leap_ctrl *ctrl, struct leap_req *req)
{
	struct leap_ns *ns = req->ns;

	while (req->dsm_done < req->dsm_cnt) {
		struct nvme_dsm_range r;

		dsm_range(req, req->dsm_done, &r);
		if (r.nlb == 0) {
			req->dsm_done++;
			continue;
		}
		if (!range_ok(ns, r.slba, r.nlb)) {
			finish(ctrl, req, ST(GENERIC, LBA_OUT_OF_RANGE) | DNR);
			return;
		}
		req->bio.op = LEAP_BDEV_OP_DEALLOCATE;
		req->bio.offset = ns->offset + (r.slba << ns->lba_shift);
		req->bio.len = (uint64_t)r.nlb << ns->lba_shift;
		dispatch(ctrl, req);
		return;
	}
	finish(ctrl, req, 0);
}

static uint16_t prep_dsm(struct leap_ctrl *ctrl, struct leap_req *req)
{
	const struct nvme_sqe *sqe = &req->sqe;
	uint32_t nr = (sqe->cdw10 & 0xff) + 1;
	int cnt;

	cnt = leap_ctrl_map_data(ctrl, req, nr * sizeof(struct nvme_dsm_range), req->iov,
				 LEAP_REQ_MAX_IOV, NULL);
	if (cnt < 0)
		return (uint16_t)-cnt;
	req->iovcnt = (uint32_t)cnt;
	/* All ranges are checked before any is deallocated. */
	for (uint32_t i = 0; i < nr; i++) {
		struct nvme_dsm_range r;

		dsm_range(req, i, &r);
		if (r.nlb && !range_ok(req->ns, r.slba, r.nlb))
			return ST(GENERIC, LBA_OUT_OF_RANGE);
	}
	/* Without Attribute - Deallocate the ranges are only hints, and we keep none. */
	req->dsm_cnt = (sqe->cdw11 & NVME_DSM_ATTR_DEALLOCATE) ? nr : 0;
	req->dsm_done = 0;
	return 0;
}

static uint16_t prep_rw(struct leap_ctrl *ctrl, struct leap_req *req)
{
	const struct nvme_sqe *sqe = &req->sqe;
	struct leap_ns *ns = req->ns;
	uint64_t slba = (uint64_t)sqe->cdw10 | ((uint64_t)sqe->cdw11 << 32);
	uint64_t nlb = (uint64_t)(sqe->cdw12 & NVME_RW_NLB_MASK) + 1;
	uint64_t len = nlb << ns->lba_shift;
	uint32_t align = ns->bdev->mem_align ? ns->bdev->mem_align : 1;
	int32_t region = -1;
	int cnt;

	if (!range_ok(ns, slba, nlb))
		return ST(GENERIC, LBA_OUT_OF_RANGE);
	req->bio.offset = ns->offset + (slba << ns->lba_shift);
	req->bio.len = len;
	req->bio.flags = 0;
	req->bio.iovcnt = 0;
	req->bio.iov = NULL;
	req->bio.buf_index = -1;
	if (sqe->opc == NVME_OPC_WRITE_ZEROES) {
		/* Deallocated blocks read as zeroes (DLFEAT), so DEAC may punch a hole. */
		req->bio.op = (sqe->cdw12 & NVME_WZ_DEAC) ? LEAP_BDEV_OP_DEALLOCATE
							  : LEAP_BDEV_OP_WRITE_ZEROES;
		return 0;
	}
	if (len > LEAP_CTRL_MAX_XFER)
		return ST(GENERIC, INVALID_FIELD);
	cnt = leap_ctrl_map_data(ctrl, req, len, req->iov, LEAP_REQ_MAX_IOV, &region);
	if (cnt < 0)
		return (uint16_t)-cnt;
	req->iovcnt = (uint32_t)cnt;
	if (sqe->opc == NVME_OPC_COMPARE) {
		req->bio.op = LEAP_BDEV_OP_READ; /* into a bounce buffer, see start() */
		return 0;
	}
	req->bio.op = sqe->opc == NVME_OPC_READ ? LEAP_BDEV_OP_READ : LEAP_BDEV_OP_WRITE;
	/* With the volatile write cache disabled every write is write-through. */
	if (sqe->opc == NVME_OPC_WRITE && ((sqe->cdw12 & NVME_RW_FUA) || !ctrl->vwc))
		req->bio.flags = LEAP_BDEV_IO_FUA;
	for (int i = 0; i < cnt; i++) {
		if (((uintptr_t)req->iov[i].iov_base | req->iov[i].iov_len) & (align - 1)) {
			/* Direct I/O cannot use this buffer: go through a bounce buffer. */
			req->flags |= sqe->opc == NVME_OPC_READ ? LEAP_REQ_F_BOUNCE_IN
								: LEAP_REQ_F_BOUNCE_OUT;
			return 0;
		}
	}
	req->bio.iov = req->iov;
	req->bio.iovcnt = (uint16_t)cnt;
	req->bio.buf_index = region >= 0 ? ns->buf_index[region] : -1;
	return 0;
}

void leap_ctrl_io(struct leap_ctrl *ctrl, struct leap_req *req)
{
	const struct nvme_sqe *sqe = &req->sqe;
	struct leap_ns *ns;
	uint16_t st;

	req->bio.cb = io_done;
	req->bio.cb_arg = req;
	switch (sqe->opc) {
	case NVME_OPC_READ:
	case NVME_OPC_WRITE:
	case NVME_OPC_COMPARE:
	case NVME_OPC_WRITE_ZEROES:
	case NVME_OPC_FLUSH:
	case NVME_OPC_DATASET_MANAGEMENT:
		break;
	default:
		finish(ctrl, req, ST(GENERIC, INVALID_OPCODE) | DNR);
		return;
	}
	/* No fused operations (FUSES = 0) and PRPs only (SGLS = 0). */
	if (sqe->flags & (NVME_SQE_FUSE_MASK | (3u << NVME_SQE_PSDT_SHIFT))) {
		finish(ctrl, req, ST(GENERIC, INVALID_FIELD) | DNR);
		return;
	}
	/* FFFFFFFFh (broadcast) is not valid for any I/O command here (VWC bits 2:1 = 10b). */
	ns = leap_ctrl_ns(ctrl, sqe->nsid);
	if (!ns) {
		finish(ctrl, req, ST(GENERIC, INVALID_NAMESPACE_OR_FORMAT) | DNR);
		return;
	}
	req->ns = ns;
	switch (sqe->opc) {
	case NVME_OPC_FLUSH:
		req->bio.op = LEAP_BDEV_OP_FLUSH;
		req->bio.flags = 0;
		req->bio.offset = 0;
		req->bio.len = 0;
		req->bio.iov = NULL;
		req->bio.iovcnt = 0;
		req->bio.buf_index = -1;
		st = 0;
		break;
	case NVME_OPC_DATASET_MANAGEMENT:
		st = prep_dsm(ctrl, req);
		break;
	default:
		st = prep_rw(ctrl, req);
		break;
	}
	if (st) {
		finish(ctrl, req, st | DNR);
		return;
	}
	if (ctrl->hook_submit) {
		st = ctrl->hook_submit(req, ctrl->hook_submit_arg);
		if (st == LEAP_HOOK_DEFER) {
			ctrl->deferred++;
			return;
		}
		if (st) {
			finish(ctrl, req, st);
			return;
		}
	}
	start(ctrl, req);
}

void leap_ctrl_resume(struct leap_ctrl *ctrl, struct leap_req *req, uint16_t status)
{
	ctrl->deferred--;
	if (status)
		finish(ctrl, req, status);
	else
		start(ctrl, req);
}
