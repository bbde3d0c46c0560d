// SPDX-License-Identifier: BSD-3-Clause
/*
 * Controller bring-up as a non-blocking state machine, so leapd's reactor
 * can attach an NVMe/TCP backend without stalling other work: admin queue
 * connect, Property Get CAP and VS, Property Set CC (EN, IOSQES 6, IOCQES 4),
 * Property Get CSTS until RDY, Identify Controller, Set Features Number of
 * Queues, then every I/O queue connected in parallel. Each step is one
 * admin command whose callback only records the CQE; leap_nvmf_ctrl_poll()
 * looks at it and issues the next. Once ready, the same poll sends Keep
 * Alive every KATO/2 when a KATO was asked for.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "nvmf_internal.h"

#define CSTS_RETRY_NS 1000000ull /* re-read CSTS every 1 ms while waiting for RDY */

enum ctrl_state {
	CTRL_ADMIN_CONNECT,
	CTRL_GET_CAP,
	CTRL_GET_VS,
	CTRL_SET_CC,
	CTRL_WAIT_RDY,
	CTRL_IDENTIFY,
	CTRL_SET_NUM_QUEUES,
	CTRL_IO_CONNECT,
	CTRL_READY,
	CTRL_FAILED,
};

static const char *const state_names[] = {
	"connecting the admin queue",
	"reading CAP",
	"reading VS",
	"writing CC.EN",
	"waiting for CSTS.RDY",
	"identifying the controller",
	"setting the number of queues",
	"connecting I/O queues",
	"ready",
	"failed",
};

struct leap_nvmf_ctrl {
	struct leap_nvmf_trid trid;
	struct leap_nvmf_ctrl_opts opts;
	struct leap_nvmf_qpair *admin;
	struct leap_nvmf_qpair **io;
	unsigned int nr_io;
	enum ctrl_state state;
	int err;
	char reason[320];
	uint64_t cap;
	uint32_t vs;
	uint16_t io_qdepth;
	struct nvme_id_ctrl *id;
	uint64_t deadline_ns;
	uint64_t rdy_deadline_ns;
	uint64_t next_try_ns;
	/* The admin step in flight: its callback fills these. */
	bool step_busy;
	bool step_done;
	struct nvme_cqe step_cqe;
	/* Keep alive. */
	uint64_t next_ka_ns;
	bool ka_busy;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void leap_nvmf_ctrl_opts_init(struct leap_nvmf_ctrl_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->nr_io_queues = 1;
	opts->io_qdepth = 128;
	opts->admin_qdepth = NVMF_DEF_QDEPTH;
	opts->max_iov = NVMF_DEF_MAX_IOV;
	opts->timeout_ms = 10000;
}

static void ctrl_vfail(struct leap_nvmf_ctrl *c, int err, bool log, const char *fmt, va_list ap)
{
	bool was_ready;

	if (c->state == CTRL_FAILED)
		return;
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	if (log)
		LEAP_ERR("nvmf", "controller %s:%s %s: %s", c->trid.traddr, c->trid.trsvcid,
			 c->trid.subnqn, c->reason);
	/*
	 * Once ready, the I/O queue pairs may belong to other threads: leave
	 * them to their owners (the target drops them with the controller, and
	 * leap_nvmf_ctrl_destroy() ends them). During bring-up they are ours.
	 */
	was_ready = c->state == CTRL_READY;
	c->state = CTRL_FAILED;
	c->err = err < 0 ? err : -EIO;
	if (c->admin)
		leap_nvmf_qpair_fail(c->admin, c->err, c->reason);
	for (unsigned int i = 0; !was_ready && c->io && i < c->nr_io; i++)
		if (c->io[i])
			leap_nvmf_qpair_fail(c->io[i], c->err, c->reason);
}

static void ctrl_fail(struct leap_nvmf_ctrl *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void ctrl_fail(struct leap_nvmf_ctrl *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctrl_vfail(c, err, true, fmt, ap);
	va_end(ap);
}

/* A queue pair failed and logged why: the controller takes over the reason, no second log. */
static void ctrl_fail_from_qpair(struct leap_nvmf_ctrl *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void ctrl_fail_from_qpair(struct leap_nvmf_ctrl *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctrl_vfail(c, err, false, fmt, ap);
	va_end(ap);
}

void leap_nvmf_ctrl_fail(struct leap_nvmf_ctrl *ctrl, int err, const char *reason)
{
	ctrl_fail(ctrl, err, "%s", reason ? reason : "failed by the caller");
}

static void step_cb(void *arg, const struct nvme_cqe *cqe)
{
	struct leap_nvmf_ctrl *c = arg;

	c->step_cqe = *cqe;
	c->step_done = true;
	c->step_busy = false;
}

/* Issue the command for the current state. */
static void step_submit(struct leap_nvmf_ctrl *c)
{
	uint32_t cc;
	int rc = 0;

	c->step_done = false;
	switch (c->state) {
	case CTRL_GET_CAP:
		rc = leap_nvmf_admin_prop_get(c->admin, NVMF_PROP_CAP, true, step_cb, c);
		break;
	case CTRL_GET_VS:
		rc = leap_nvmf_admin_prop_get(c->admin, NVMF_PROP_VS, false, step_cb, c);
		break;
	case CTRL_SET_CC:
		/* NVM command set, 4 KiB pages, round robin; 64 B SQEs, 16 B CQEs. */
		cc = NVME_CC_EN | 6u << NVME_CC_IOSQES_SHIFT | 4u << NVME_CC_IOCQES_SHIFT;
		rc = leap_nvmf_admin_prop_set(c->admin, NVMF_PROP_CC, false, cc, step_cb, c);
		break;
	case CTRL_WAIT_RDY:
		rc = leap_nvmf_admin_prop_get(c->admin, NVMF_PROP_CSTS, false, step_cb, c);
		break;
	case CTRL_IDENTIFY:
		rc = leap_nvmf_admin_identify(c->admin, NVME_CNS_CTRL, 0, c->id, step_cb, c);
		break;
	case CTRL_SET_NUM_QUEUES:
		rc = leap_nvmf_admin_set_num_queues(c->admin, c->opts.nr_io_queues, step_cb, c);
		break;
	default:
		return;
	}
	if (rc) {
		ctrl_fail(c, rc, "cannot submit while %s: %s", state_names[c->state],
			  strerror(-rc));
		return;
	}
	c->step_busy = true;
}

static int start_io_queues(struct leap_nvmf_ctrl *c)
{
	struct leap_nvmf_qpair_opts qo;
	uint32_t ioccsz = c->id->ioccsz;

	c->io = calloc(c->nr_io, sizeof(*c->io));
	if (!c->io)
		return -ENOMEM;
	leap_nvmf_qpair_opts_init(&qo);
	qo.qdepth = c->io_qdepth;
	qo.cntlid = leap_nvmf_qpair_cntlid(c->admin);
	qo.max_iov = c->opts.max_iov;
	/* IOCCSZ counts 16-byte units including the 64-byte SQE. */
	qo.icd_max = ioccsz > 4 ? (ioccsz - 4) * 16 : 0;
	if (c->opts.rx_buf_size)
		qo.rx_buf_size = c->opts.rx_buf_size;
	for (unsigned int i = 0; i < c->nr_io; i++) {
		int rc;

		qo.qid = (uint16_t)(i + 1);
		rc = leap_nvmf_qpair_create(&c->trid, &qo, &c->io[i]);
		if (rc)
			return rc;
	}
	return 0;
}

/* The admin step finished: check it, record what it returned, move on. */
static void step_advance(struct leap_nvmf_ctrl *c)
{
	const struct nvme_cqe *cqe = &c->step_cqe;
	uint16_t st = nvmf_cqe_status(cqe);
	uint64_t now;

	if (c->state == CTRL_FAILED)
		return;
	if (st & 0x7ff) {
		ctrl_fail(c, -EIO, "%s failed: status 0x%03x (%s)", state_names[c->state],
			  st & 0x7ff, leap_nvmf_status_str(st));
		return;
	}
	switch (c->state) {
	case CTRL_GET_CAP:
		c->cap = (uint64_t)cqe->dw1 << 32 | cqe->dw0;
		c->state = CTRL_GET_VS;
		break;
	case CTRL_GET_VS:
		c->vs = cqe->dw0;
		c->state = CTRL_SET_CC;
		break;
	case CTRL_SET_CC:
		now = now_ns();
		/* CAP.TO is the worst case for RDY in 500 ms units; 0 means "soon". */
		c->rdy_deadline_ns =
		    now + (NVME_CAP_TO(c->cap) ? NVME_CAP_TO(c->cap) : 1) * 500000000ull;
		c->state = CTRL_WAIT_RDY;
		break;
	case CTRL_WAIT_RDY:
		if (cqe->dw0 & NVME_CSTS_CFS) {
			ctrl_fail(c, -EIO, "controller fatal status (CSTS 0x%x)", cqe->dw0);
			return;
		}
		if (!(cqe->dw0 & NVME_CSTS_RDY)) {
			now = now_ns();
			if (now > c->rdy_deadline_ns) {
				ctrl_fail(c, -ETIMEDOUT, "CSTS.RDY not set within CAP.TO");
				return;
			}
			c->next_try_ns = now + CSTS_RETRY_NS;
			return; /* re-read later */
		}
		c->state = CTRL_IDENTIFY;
		break;
	case CTRL_IDENTIFY: {
		uint32_t mqes = (uint32_t)NVME_CAP_MQES(c->cap); /* 0's based */
		uint32_t qd = c->opts.io_qdepth;

		/* Fabrics data is described by SGLs; a controller without them cannot work. */
		if ((c->id->sgls & 3) == 0) {
			ctrl_fail(c, -EOPNOTSUPP, "controller does not support SGLs (SGLS 0x%x)",
				  c->id->sgls);
			return;
		}
		if (c->id->icdoff != 0) {
			ctrl_fail(c, -EOPNOTSUPP, "in-capsule data offset %u is not supported",
				  c->id->icdoff);
			return;
		}
		/* SQSIZE is sent as qdepth (0's based) and must not exceed MQES or MAXCMD - 1. */
		if (qd > mqes)
			qd = mqes;
		if (c->id->maxcmd && qd > c->id->maxcmd - 1u)
			qd = c->id->maxcmd - 1u;
		if (qd == 0)
			qd = 1;
		if (qd != c->opts.io_qdepth)
			LEAP_WARN("nvmf",
				  "%s: I/O queue depth %u clamped to %u (MQES %u, MAXCMD %u)",
				  c->trid.subnqn, c->opts.io_qdepth, qd, mqes, c->id->maxcmd);
		c->io_qdepth = (uint16_t)qd;
		c->state = c->opts.nr_io_queues ? CTRL_SET_NUM_QUEUES : CTRL_READY;
		break;
	}
	case CTRL_SET_NUM_QUEUES: {
		uint32_t nsqa = (cqe->dw0 & 0xffff) + 1, ncqa = (cqe->dw0 >> 16) + 1;
		uint32_t granted = LEAP_MIN(nsqa, ncqa);
		int rc;

		c->nr_io = LEAP_MIN((uint32_t)c->opts.nr_io_queues, granted);
		if (c->nr_io < c->opts.nr_io_queues)
			LEAP_WARN("nvmf", "%s: asked for %u I/O queues, granted %u", c->trid.subnqn,
				  c->opts.nr_io_queues, c->nr_io);
		rc = start_io_queues(c);
		if (rc) {
			ctrl_fail(c, rc, "cannot create I/O queues: %s", strerror(-rc));
			return;
		}
		c->state = CTRL_IO_CONNECT;
		return;
	}
	default:
		return;
	}
	if (c->state != CTRL_READY)
		step_submit(c);
}

static void ka_cb(void *arg, const struct nvme_cqe *cqe)
{
	struct leap_nvmf_ctrl *c = arg;
	uint16_t st = nvmf_cqe_status(cqe);

	c->ka_busy = false;
	if ((st & 0x7ff) && c->state == CTRL_READY)
		LEAP_WARN("nvmf", "%s: Keep Alive failed: status 0x%03x (%s)", c->trid.subnqn,
			  st & 0x7ff, leap_nvmf_status_str(st));
}

static void keep_alive(struct leap_nvmf_ctrl *c)
{
	uint64_t now;

	if (!c->opts.kato_ms || c->ka_busy)
		return;
	now = now_ns();
	if (now < c->next_ka_ns)
		return;
	/* Half the timeout leaves room for one lost or slow round trip. */
	c->next_ka_ns = now + (uint64_t)c->opts.kato_ms * 500000ull;
	if (leap_nvmf_admin_keep_alive(c->admin, ka_cb, c) == 0)
		c->ka_busy = true;
}

int leap_nvmf_ctrl_poll(struct leap_nvmf_ctrl *c)
{
	int rc;

	if (c->state == CTRL_FAILED)
		return c->err;
	rc = leap_nvmf_qpair_poll(c->admin);
	if (rc < 0) {
		ctrl_fail_from_qpair(c, rc, "admin queue: %s", leap_nvmf_qpair_reason(c->admin));
		return c->err;
	}
	if (c->state == CTRL_READY) {
		keep_alive(c);
		return 0;
	}
	if (now_ns() > c->deadline_ns) {
		ctrl_fail(c, -ETIMEDOUT, "timed out after %d ms while %s", c->opts.timeout_ms,
			  state_names[c->state]);
		return c->err;
	}
	switch (c->state) {
	case CTRL_ADMIN_CONNECT:
		if (leap_nvmf_qpair_state(c->admin) == LEAP_NVMF_QP_LIVE) {
			c->state = CTRL_GET_CAP;
			step_submit(c);
		}
		break;
	case CTRL_IO_CONNECT: {
		unsigned int live = 0;

		for (unsigned int i = 0; i < c->nr_io; i++) {
			rc = leap_nvmf_qpair_poll(c->io[i]);
			if (rc < 0) {
				ctrl_fail_from_qpair(c, rc, "I/O queue %u: %s", i + 1,
						     leap_nvmf_qpair_reason(c->io[i]));
				return c->err;
			}
			live += leap_nvmf_qpair_state(c->io[i]) == LEAP_NVMF_QP_LIVE;
		}
		if (live == c->nr_io) {
			c->state = CTRL_READY;
			c->next_ka_ns = now_ns() + (uint64_t)c->opts.kato_ms * 500000ull;
		}
		break;
	}
	default:
		if (c->step_done) {
			c->step_done = false;
			step_advance(c);
		} else if (!c->step_busy && c->state == CTRL_WAIT_RDY &&
			   now_ns() >= c->next_try_ns) {
			step_submit(c);
		}
		break;
	}
	if (c->state == CTRL_FAILED)
		return c->err;
	return c->state == CTRL_READY ? 0 : -EAGAIN;
}

int leap_nvmf_ctrl_create(const struct leap_nvmf_trid *trid, const struct leap_nvmf_ctrl_opts *opts,
			  struct leap_nvmf_ctrl **ctrlp)
{
	struct leap_nvmf_qpair_opts qo;
	struct leap_nvmf_ctrl *c;
	int rc;

	*ctrlp = NULL;
	if (!trid || !opts || opts->io_qdepth == 0 || opts->admin_qdepth == 0)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->trid = *trid;
	c->opts = *opts;
	if (c->opts.timeout_ms <= 0)
		c->opts.timeout_ms = 10000;
	rc = nvmf_trid_finalize(&c->trid); /* every queue must present the same host ID */
	if (rc)
		goto err_free;
	c->id = aligned_alloc(64, sizeof(*c->id));
	if (!c->id) {
		rc = -ENOMEM;
		goto err_free;
	}
	memset(c->id, 0, sizeof(*c->id));
	c->deadline_ns = now_ns() + (uint64_t)c->opts.timeout_ms * 1000000ull;
	leap_nvmf_qpair_opts_init(&qo);
	qo.qdepth = opts->admin_qdepth;
	qo.kato_ms = opts->kato_ms;
	qo.max_iov = opts->max_iov ? opts->max_iov : NVMF_DEF_MAX_IOV;
	qo.rx_buf_size = 64u << 10;
	c->opts.max_iov = qo.max_iov;
	rc = leap_nvmf_qpair_create(&c->trid, &qo, &c->admin);
	if (rc)
		goto err_free;
	c->state = CTRL_ADMIN_CONNECT;
	*ctrlp = c;
	return 0;

err_free:
	leap_nvmf_ctrl_destroy(c);
	return rc;
}

void leap_nvmf_ctrl_destroy(struct leap_nvmf_ctrl *c)
{
	if (!c)
		return;
	for (unsigned int i = 0; c->io && i < c->nr_io; i++)
		leap_nvmf_qpair_destroy(c->io[i]);
	free(c->io);
	leap_nvmf_qpair_destroy(c->admin);
	free(c->id);
	free(c);
}

const char *leap_nvmf_ctrl_reason(const struct leap_nvmf_ctrl *c)
{
	return c->reason;
}

struct leap_nvmf_qpair *leap_nvmf_ctrl_admin_qpair(struct leap_nvmf_ctrl *c)
{
	return c->admin;
}

unsigned int leap_nvmf_ctrl_nr_io_queues(const struct leap_nvmf_ctrl *c)
{
	return c->nr_io;
}

struct leap_nvmf_qpair *leap_nvmf_ctrl_io_qpair(struct leap_nvmf_ctrl *c, unsigned int idx)
{
	return c->io && idx < c->nr_io ? c->io[idx] : NULL;
}

uint16_t leap_nvmf_ctrl_io_qdepth(const struct leap_nvmf_ctrl *c)
{
	return c->io_qdepth;
}

const struct nvme_id_ctrl *leap_nvmf_ctrl_id(const struct leap_nvmf_ctrl *c)
{
	return c->id;
}

uint64_t leap_nvmf_ctrl_cap(const struct leap_nvmf_ctrl *c)
{
	return c->cap;
}

uint32_t leap_nvmf_ctrl_vs(const struct leap_nvmf_ctrl *c)
{
	return c->vs;
}

uint16_t leap_nvmf_ctrl_cntlid(const struct leap_nvmf_ctrl *c)
{
	return leap_nvmf_qpair_cntlid(c->admin);
}

uint32_t leap_nvmf_ctrl_max_xfer(const struct leap_nvmf_ctrl *c)
{
	/* MDTS is a power of two in units of CAP.MPSMIN pages. */
	uint32_t mpsmin = (uint32_t)((c->cap >> 48) & 0xf);
	uint32_t mdts = c->id->mdts;

	if (mdts == 0)
		return 0;
	if (mdts + 12 + mpsmin >= 32)
		return 0x80000000u;
	return 1u << (mdts + 12 + mpsmin);
}

const struct leap_nvmf_trid *leap_nvmf_ctrl_trid(const struct leap_nvmf_ctrl *c)
{
	return &c->trid;
}
