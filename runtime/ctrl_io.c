// SPDX-License-Identifier: BSD-3-Clause
/*
 * I/O commands: validate, translate data pointers, run the submit hook and
 * hand the command to the namespace's backend channel; on completion map
 * the backend's errno to an NVMe status. Validation happens before any
 * byte moves: an out-of-range LBA never reaches the backend and a bad PRP
 * never touches memory. No allocation, syscall, lock or log per command
 * (a channel is opened once, on a namespace's first command).
 */
#include <errno.h>
#include <string.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "ctrl.h"
#include "reactor.h"

#define ST(sct, sc) NVME_STATUS(NVME_SCT_##sct, NVME_SC_##sc)

static void io_done(struct leap_bdev_io *bio, int status);
static void dsm_next(struct leap_ctrl *ctrl, struct leap_req *req);

static void finish(struct leap_ctrl *ctrl, struct leap_req *req, uint16_t status)
{
	req->status = status;
	leap_ctrl_complete(ctrl, req);
}

static int ns_channel(struct leap_ctrl *ctrl, struct leap_ns *ns)
{
	int err;

	if (leap_likely(ns->ch != NULL))
		return 0;
	err = leap_bdev_channel_open(ns->bdev, &ns->ch);
	if (err) {
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

static void pending_push(struct leap_ns *ns, struct leap_req *req)
{
	req->next_free = NULL;
	if (ns->pending_tail)
		ns->pending_tail->next_free = req;
	else
		ns->pending_head = req;
	ns->pending_tail = req;
}

/* Submit req->bio; a full backend queues it for leap_ctrl_poll() to retry in order. */
static void dispatch(struct leap_ctrl *ctrl, struct leap_req *req)
{
	struct leap_ns *ns = req->ns;
	int rc;

	if (ns->pending_head) { /* keep order behind earlier waiters */
		pending_push(ns, req);
		return;
	}
	rc = leap_bdev_submit(ns->ch, &req->bio);
	if (leap_likely(rc == 0))
		return;
	if (rc == -EAGAIN) {
		pending_push(ns, req);
		return;
	}
	finish(ctrl, req, ST(GENERIC, INTERNAL_DEVICE_ERROR));
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
			struct leap_req *req = ns->pending_head;
			int rc;

			if (req->sqe.opc == NVME_OPC_COMPARE) {
				if (ctrl->bounce_owner && ctrl->bounce_owner != req)
					break;
				ctrl->bounce_owner = req;
			}
			rc = leap_bdev_submit(ns->ch, &req->bio);

			if (rc == -EAGAIN)
				break;
			ns->pending_head = req->next_free;
			if (!ns->pending_head)
				ns->pending_tail = NULL;
			busy = LEAP_POLL_BUSY;
			if (rc)
				finish(ctrl, req, ST(GENERIC, INTERNAL_DEVICE_ERROR));
		}
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
		return req->sqe.opc == NVME_OPC_WRITE
			   ? NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULTS)
			   : NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_UNRECOVERED_READ_ERROR);
	if (err == -ENOSPC)
		return ST(GENERIC, CAPACITY_EXCEEDED);
	return ST(GENERIC, INTERNAL_DEVICE_ERROR);
}

static uint16_t compare_bounce(const struct leap_req *req)
{
	const uint8_t *b = req->bounce_iov.iov_base;
	size_t off = 0;

	for (uint32_t i = 0; i < req->iovcnt; i++) {
		if (memcmp(b + off, req->iov[i].iov_base, req->iov[i].iov_len))
			return NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILURE);
		off += req->iov[i].iov_len;
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
		ctrl->bounce_owner = NULL;
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

/* Submit the next non-empty deallocate range, re-validating what we read from tenant memory. */
static void dsm_next(struct leap_ctrl *ctrl, struct leap_req *req)
{
	const struct nvme_dsm_range *ranges = req->iov[0].iov_base;
	struct leap_ns *ns = req->ns;

	while (req->dsm_done < req->dsm_cnt) {
		struct nvme_dsm_range r;

		/* One copy: the tenant may scribble on its buffer meanwhile. */
		memcpy(&r, &ranges[req->dsm_done], sizeof(r));
		if (r.nlb == 0) {
			req->dsm_done++;
			continue;
		}
		if (!range_ok(ns, r.slba, r.nlb)) {
			finish(ctrl, req, ST(GENERIC, LBA_OUT_OF_RANGE));
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
	const struct nvme_dsm_range *ranges;
	int cnt;

	cnt = leap_prp_to_iov(&ctrl->mem, sqe->prp1, sqe->prp2, nr * sizeof(*ranges), req->iov, 1,
			      NULL);
	if (cnt < 0)
		return (uint16_t)-cnt;
	ranges = req->iov[0].iov_base;
	for (uint32_t i = 0; i < nr; i++)
		if (ranges[i].nlb && !range_ok(req->ns, ranges[i].slba, ranges[i].nlb))
			return ST(GENERIC, LBA_OUT_OF_RANGE);
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
	int32_t region = -1;
	int cnt;

	if (!range_ok(ns, slba, nlb))
		return ST(GENERIC, LBA_OUT_OF_RANGE);
	req->bio.offset = ns->offset + (slba << ns->lba_shift);
	req->bio.len = len;
	req->bio.flags = 0;
	req->bio.iovcnt = 0;
	req->bio.buf_index = -1;
	if (sqe->opc == NVME_OPC_WRITE_ZEROES) {
		req->bio.op = LEAP_BDEV_OP_WRITE_ZEROES;
		return 0;
	}
	if (len > LEAP_CTRL_MAX_XFER)
		return ST(GENERIC, INVALID_FIELD);
	cnt = leap_prp_to_iov(&ctrl->mem, sqe->prp1, sqe->prp2, len, req->iov, LEAP_REQ_MAX_IOV,
			      &region);
	if (cnt < 0)
		return (uint16_t)-cnt;
	req->iovcnt = (uint32_t)cnt;
	for (int i = 0; i < cnt; i++)
		if (((uintptr_t)req->iov[i].iov_base | req->iov[i].iov_len) &
		    (ns->bdev->mem_align - 1))
			return ST(GENERIC, INVALID_FIELD); /* direct I/O cannot use this buffer */
	if (sqe->opc == NVME_OPC_COMPARE) {
		req->bounce_iov.iov_base = ctrl->bounce;
		req->bounce_iov.iov_len = len;
		req->bio.op = LEAP_BDEV_OP_READ;
		req->bio.iov = &req->bounce_iov;
		req->bio.iovcnt = 1;
		return 0;
	}
	req->bio.op = sqe->opc == NVME_OPC_READ ? LEAP_BDEV_OP_READ : LEAP_BDEV_OP_WRITE;
	if (sqe->opc == NVME_OPC_WRITE && (sqe->cdw12 & NVME_RW_FUA))
		req->bio.flags = LEAP_BDEV_IO_FUA;
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

	req->iovcnt = 0;
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
		finish(ctrl, req, ST(GENERIC, INVALID_OPCODE) | NVME_CQE_DNR);
		return;
	}
	if (sqe->flags & (NVME_SQE_FUSE_MASK | (3u << NVME_SQE_PSDT_SHIFT))) {
		finish(ctrl, req, ST(GENERIC, INVALID_FIELD) | NVME_CQE_DNR);
		return;
	}
	ns = leap_ctrl_ns(ctrl, sqe->nsid);
	if (!ns) {
		finish(ctrl, req, ST(GENERIC, INVALID_NAMESPACE_OR_FORMAT) | NVME_CQE_DNR);
		return;
	}
	req->ns = ns;
	switch (sqe->opc) {
	case NVME_OPC_FLUSH:
		req->bio.op = LEAP_BDEV_OP_FLUSH;
		req->bio.offset = 0;
		req->bio.len = 0;
		req->bio.iovcnt = 0;
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
		finish(ctrl, req, st | NVME_CQE_DNR);
		return;
	}
	if (ctrl->hook_submit) {
		st = ctrl->hook_submit(req, ctrl->hook_submit_arg);
		if (st) {
			finish(ctrl, req, st);
			return;
		}
	}
	if (ns_channel(ctrl, ns)) {
		finish(ctrl, req, ST(GENERIC, INTERNAL_DEVICE_ERROR));
		return;
	}
	if (sqe->opc == NVME_OPC_DATASET_MANAGEMENT) {
		dsm_next(ctrl, req);
		return;
	}
	if (sqe->opc == NVME_OPC_COMPARE) {
		/* One bounce buffer per controller: Compare is rare; a second one waits. */
		if (ctrl->bounce_owner) {
			pending_push(ns, req);
			return;
		}
		ctrl->bounce_owner = req;
	}
	dispatch(ctrl, req);
}
