/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the controller model's own files (ctrl.c, ctrl_admin.c, ctrl_io.c)
 * share and nobody else needs: the AER bookkeeping the admin path drives,
 * opening a backend channel, and the status shorthand.
 */
#ifndef LEAPIO_RUNTIME_CTRL_INTERNAL_H
#define LEAPIO_RUNTIME_CTRL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "leapio/common.h"
#include "nvme/ctrl.h"

#define ST(sct, sc) NVME_STATUS(NVME_SCT_##sct, NVME_SC_##sc)
#define DNR	    NVME_CQE_DNR

/* Hold an Async Event Request; false when AERL + 1 are already outstanding. */
bool ctrl_aer_hold(struct leap_ctrl *ctrl, struct leap_req *req);

/* Get Log Page `lid` with RAE = 0 was served: unmask the event types it clears. */
void ctrl_aen_log_read(struct leap_ctrl *ctrl, uint8_t lid);

/* regs.c: advance a reset or shutdown in progress (leap_ctrl_poll, regs_state != STEADY). */
void ctrl_regs_progress(struct leap_ctrl *ctrl);

/*
 * A command's flags byte the controller refuses before anything else
 * (Invalid Field): fused operations (FUSES = 0), the reserved PSDT 11b,
 * and SGLs on a transport that does not advertise them (SGLS = 0). Cheap:
 * one branch for the common PRP-or-SGL-allowed case.
 */
static inline bool ctrl_psdt_invalid(const struct leap_ctrl *ctrl, uint8_t flags)
{
	uint8_t psdt = (flags >> NVME_SQE_PSDT_SHIFT) & 3;

	if (leap_likely((flags & NVME_SQE_FUSE_MASK) == 0 && psdt == 0))
		return false;
	return (flags & NVME_SQE_FUSE_MASK) || psdt == 3 || !leap_ctrl_caps(ctrl)->sgls;
}

/*
 * Open c's channel on c->bdev here and now (take this thread's arbiter,
 * register the tenant's regions). 0 or -errno, logged.
 */
int ctrl_chan_open(struct leap_ctrl *ctrl, struct leap_chan *c);

#endif /* LEAPIO_RUNTIME_CTRL_INTERNAL_H */
