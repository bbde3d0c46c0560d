// SPDX-License-Identifier: BSD-3-Clause
/*
 * The controller's register file (CAP, VS, CC, CSTS, AQA/ASQ/ACQ) and the
 * enable, reset and shutdown sequences behind CC. Every transport reaches
 * the same state machine: the shm front-end mirrors the tenant's register
 * page into leap_ctrl_prop_set() and copies CSTS back; NVMe/TCP calls it
 * from Fabrics Property Get/Set; vhost-user-blk has no registers and binds
 * with the controller enabled by its own front-end.
 *
 * CSTS only ever says what is true: RDY drops once every command has
 * drained and the transport dropped its queues; SHST reads "complete" once
 * in-flight commands drained and every namespace's backend was flushed.
 * Both waits are driven from leap_ctrl_poll() (regs_state != STEADY), so
 * the hot path pays one predictable branch.
 */
#include <errno.h>
#include <string.h>

#include "leapio/log.h"
#include "ctrl_internal.h"

#define ST(sct, sc) NVME_STATUS(NVME_SCT_##sct, NVME_SC_##sc)

/* PRP through ctrl->mem, no SGL: what a transport that declares nothing gets. */
static const struct leap_transport_caps prp_caps = {
	.prp = true,
	.cntrltype = 1,
};

const struct leap_transport_caps *leap_ctrl_caps(const struct leap_ctrl *ctrl)
{
	if (ctrl->tops && ctrl->tops->caps)
		return ctrl->tops->caps;
	return &prp_caps;
}

static void regs_reset_values(struct leap_ctrl *ctrl)
{
	memset(&ctrl->regs, 0, sizeof(ctrl->regs));
	/* MQES 0's based; CQR: queues physically contiguous; TO in 500 ms units; NVM command set. */
	ctrl->regs.cap = (uint64_t)(ctrl->max_qsize - 1) | NVME_CAP_CQR |
			 (1ull << NVME_CAP_TO_SHIFT) | NVME_CAP_CSS_NVM;
	ctrl->regs.vs = NVME_VERSION(1, 4, 0);
	ctrl->regs_state = LEAP_REGS_STEADY;
}

void leap_ctrl_transport_bind(struct leap_ctrl *ctrl, const struct leap_ctrl_transport_ops *tops,
			      void *t)
{
	ctrl->tops = tops;
	ctrl->transport = t;
	regs_reset_values(ctrl);
}

void leap_ctrl_transport_unbind(struct leap_ctrl *ctrl)
{
	ctrl->tops = NULL;
	ctrl->transport = NULL;
	ctrl->regs_state = LEAP_REGS_STEADY;
}

void leap_ctrl_fatal(struct leap_ctrl *ctrl)
{
	ctrl->regs.csts |= NVME_CSTS_CFS;
}

static void enable(struct leap_ctrl *ctrl)
{
	int err;

	/* A new host or a re-enable starts from default features and no pending events. */
	leap_ctrl_reset(ctrl);
	err = ctrl->tops && ctrl->tops->enable ? ctrl->tops->enable(ctrl->transport) : 0;
	if (err) {
		LEAP_WARN("nvme", "%s: enable failed: %s", ctrl->name, strerror(-err));
		leap_ctrl_fatal(ctrl);
		return;
	}
	ctrl->regs.csts |= NVME_CSTS_RDY;
}

static void shn_flush_done(struct leap_bdev_io *io, uint16_t status)
{
	struct leap_ctrl *ctrl = io->cb_arg;

	if (status && !ctrl->shn_err)
		ctrl->shn_err = status;
	ctrl->shn_pending--;
}

/* Commands this controller completed so far (its statistics count every one). */
static uint64_t ios_completed(const struct leap_ctrl *ctrl)
{
	uint64_t n = 0;

	for (uint32_t k = 0; k < LEAP_STATS_KINDS; k++)
		n += ctrl->stats.ops[k];
	return n;
}

/* Flush every namespace (each has its channel open from leap_ctrl_ns_add() on). */
static void shn_flush_start(struct leap_ctrl *ctrl)
{
	ctrl->shn_ios = ios_completed(ctrl);
	ctrl->shn_pending = 0;
	ctrl->shn_err = 0;
	for (uint32_t i = 0; i < LEAP_CTRL_MAX_NS; i++) {
		struct leap_ns *ns = &ctrl->ns[i];
		struct leap_bdev_io *io = &ctrl->shn_io[i];

		if (!ns->nsid || !ns->chan.ch)
			continue;
		memset(io, 0, sizeof(*io));
		io->op = LEAP_BDEV_OP_FLUSH;
		io->buf_index = -1;
		io->cb = shn_flush_done;
		io->cb_arg = ctrl;
		/* A full backend queue: try again at the next poll (the count stays 0). */
		if (leap_bdev_submit(ns->chan.ch, io) == 0)
			ctrl->shn_pending++;
		else
			ctrl->shn_err = -EAGAIN;
	}
}

void ctrl_regs_progress(struct leap_ctrl *ctrl)
{
	switch (ctrl->regs_state) {
	case LEAP_REGS_RESETTING:
		if (leap_ctrl_inflight(ctrl))
			return;
		leap_ctrl_abort_aers(ctrl);
		if (ctrl->tops && ctrl->tops->disable &&
		    ctrl->tops->disable(ctrl->transport) == -EBUSY)
			return;
		/* RDY, SHST and CFS all clear: the host may enable again. */
		ctrl->regs.csts = 0;
		ctrl->regs_state = LEAP_REGS_STEADY;
		return;
	case LEAP_REGS_SHN_DRAIN:
		if (leap_ctrl_inflight(ctrl))
			return;
		shn_flush_start(ctrl);
		ctrl->regs_state = LEAP_REGS_SHN_FLUSH;
		return;
	case LEAP_REGS_SHN_FLUSH:
		if (ctrl->shn_pending)
			return;
		/*
		 * A command that reached the controller after the drain began
		 * (in flight now, or completed since the flush was issued) is
		 * not covered by that flush: drain and flush again.
		 */
		if (leap_ctrl_inflight(ctrl) || ios_completed(ctrl) != ctrl->shn_ios) {
			ctrl->regs_state = LEAP_REGS_SHN_DRAIN;
			return;
		}
		if (ctrl->shn_err == -EAGAIN) {
			shn_flush_start(ctrl);
			return;
		}
		if (ctrl->shn_err)
			LEAP_WARN("nvme", "%s: shutdown flush failed (status %#x)", ctrl->name,
				  (unsigned int)ctrl->shn_err);
		ctrl->regs.csts =
		    (ctrl->regs.csts & ~NVME_CSTS_SHST_MASK) | NVME_CSTS_SHST_COMPLETE;
		ctrl->regs_state = LEAP_REGS_STEADY;
		return;
	default:
		return;
	}
}

static uint16_t cc_write(struct leap_ctrl *ctrl, uint32_t cc)
{
	uint32_t old = ctrl->regs.cc;

	ctrl->regs.cc = cc;
	/* Shutdown first: a host may set SHN and clear EN in one write. */
	if ((cc & NVME_CC_SHN_MASK) && !(old & NVME_CC_SHN_MASK) &&
	    !(ctrl->regs.csts & NVME_CSTS_SHST_MASK)) {
		ctrl->regs.csts |= NVME_CSTS_SHST_OCCURRING;
		ctrl->regs_state = LEAP_REGS_SHN_DRAIN;
		ctrl_regs_progress(ctrl);
	}
	if ((cc & NVME_CC_EN) && !(old & NVME_CC_EN)) {
		if (!(ctrl->regs.csts & (NVME_CSTS_RDY | NVME_CSTS_CFS)) &&
		    ctrl->regs_state == LEAP_REGS_STEADY)
			enable(ctrl);
	} else if (!(cc & NVME_CC_EN) && (old & NVME_CC_EN)) {
		/* Reset wins over a shutdown in progress: the host gave up on it. */
		ctrl->regs_state = LEAP_REGS_RESETTING;
		ctrl_regs_progress(ctrl);
	}
	return 0;
}

uint16_t leap_ctrl_prop_get(struct leap_ctrl *ctrl, uint32_t ofst, uint32_t size, uint64_t *val)
{
	const struct leap_ctrl_regs *r = &ctrl->regs;
	bool fabrics = leap_ctrl_caps(ctrl)->fabrics;

	switch (ofst) {
	case NVME_REG_CAP:
		*val = r->cap;
		return size == 8 ? 0 : ST(GENERIC, INVALID_FIELD) | NVME_CQE_DNR;
	case NVME_REG_VS:
		*val = r->vs;
		break;
	case NVME_REG_CC:
		*val = r->cc;
		break;
	case NVME_REG_CSTS:
		*val = r->csts;
		break;
	case NVME_REG_NSSR:
		*val = 0; /* reads as zero (Base 2.0, 3.1.4.6) */
		break;
	case NVME_REG_AQA:
		if (fabrics)
			goto bad;
		*val = r->aqa;
		break;
	case NVME_REG_ASQ:
	case NVME_REG_ACQ:
		if (fabrics || size != 8)
			goto bad;
		*val = ofst == NVME_REG_ASQ ? r->asq : r->acq;
		return 0;
	default:
		goto bad;
	}
	return size == 4 ? 0 : ST(GENERIC, INVALID_FIELD) | NVME_CQE_DNR;
bad:
	*val = 0;
	return ST(GENERIC, INVALID_FIELD) | NVME_CQE_DNR;
}

uint16_t leap_ctrl_prop_set(struct leap_ctrl *ctrl, uint32_t ofst, uint32_t size, uint64_t val)
{
	bool fabrics = leap_ctrl_caps(ctrl)->fabrics;

	switch (ofst) {
	case NVME_REG_CC:
		if (size != 4)
			break;
		return cc_write(ctrl, (uint32_t)val);
	case NVME_REG_NSSR:
		/* NSSR is optional (CAP.NSSRS = 0): writes are ignored. */
		return size == 4 ? 0 : ST(GENERIC, INVALID_FIELD) | NVME_CQE_DNR;
	case NVME_REG_AQA:
		if (fabrics || size != 4)
			break;
		ctrl->regs.aqa = (uint32_t)val;
		return 0;
	case NVME_REG_ASQ:
	case NVME_REG_ACQ:
		if (fabrics || size != 8)
			break;
		*(ofst == NVME_REG_ASQ ? &ctrl->regs.asq : &ctrl->regs.acq) = val;
		return 0;
	default:
		break;
	}
	return ST(GENERIC, INVALID_FIELD) | NVME_CQE_DNR;
}
