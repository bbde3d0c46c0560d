// SPDX-License-Identifier: BSD-3-Clause
/*
 * The blocking layer for tools and tests: the non-blocking controller and
 * queue pair objects driven by poll(2) with deadlines. leap-perf, the fio
 * engine's setup path, nvmf test tools and discovery use it; leapd's reactor
 * must not (it polls leap_nvmf_ctrl_poll() itself).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "leapio/common.h"
#include "nvmf_internal.h"

#define WAIT_SLICE_MS 10

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining_ms(int64_t deadline)
{
	int64_t left = deadline - now_ms();

	return left < 0 ? 0 : (int)LEAP_MIN(left, (int64_t)WAIT_SLICE_MS);
}

static void add_pfd(struct pollfd *pfds, int *n, struct leap_nvmf_qpair *qp)
{
	if (!qp || leap_nvmf_qpair_state(qp) == LEAP_NVMF_QP_FAILED)
		return;
	pfds[*n].fd = leap_nvmf_qpair_fd(qp);
	pfds[*n].events = (short)(POLLIN | (leap_nvmf_qpair_wants_pollout(qp) ? POLLOUT : 0));
	pfds[*n].revents = 0;
	(*n)++;
}

int leap_nvmf_host_connect_opts(const struct leap_nvmf_trid *trid,
				const struct leap_nvmf_ctrl_opts *opts,
				struct leap_nvmf_ctrl **ctrlp, char *errbuf, size_t errlen)
{
	struct leap_nvmf_ctrl *c;
	struct pollfd *pfds;
	int rc;

	*ctrlp = NULL;
	rc = leap_nvmf_ctrl_create(trid, opts, &c);
	if (rc) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "cannot start connecting to %s:%s: %s",
				 trid ? trid->traddr : "?", trid ? trid->trsvcid : "?",
				 strerror(-rc));
		return rc;
	}
	pfds = calloc((size_t)opts->nr_io_queues + 1, sizeof(*pfds));
	if (!pfds) {
		leap_nvmf_ctrl_destroy(c);
		return -ENOMEM;
	}
	/* The controller enforces its own bring-up deadline; we only sleep in between. */
	while ((rc = leap_nvmf_ctrl_poll(c)) == -EAGAIN) {
		int n = 0;

		add_pfd(pfds, &n, leap_nvmf_ctrl_admin_qpair(c));
		for (unsigned int i = 0; i < leap_nvmf_ctrl_nr_io_queues(c); i++)
			add_pfd(pfds, &n, leap_nvmf_ctrl_io_qpair(c, i));
		if (poll(pfds, (nfds_t)n, WAIT_SLICE_MS) < 0 && errno != EINTR) {
			rc = -errno;
			leap_nvmf_ctrl_fail(c, rc, "poll failed");
			break;
		}
	}
	free(pfds);
	if (rc) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "%s", leap_nvmf_ctrl_reason(c));
		leap_nvmf_ctrl_destroy(c);
		return rc;
	}
	*ctrlp = c;
	return 0;
}

int leap_nvmf_host_connect(const struct leap_nvmf_trid *trid, unsigned int nr_io_queues,
			   unsigned int qdepth, int timeout_ms, struct leap_nvmf_ctrl **ctrlp,
			   char *errbuf, size_t errlen)
{
	struct leap_nvmf_ctrl_opts opts;

	leap_nvmf_ctrl_opts_init(&opts);
	if (nr_io_queues > UINT16_MAX || qdepth == 0 || qdepth > NVMF_MAX_QDEPTH) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "bad queue count %u or depth %u", nr_io_queues,
				 qdepth);
		return -EINVAL;
	}
	opts.nr_io_queues = (uint16_t)nr_io_queues;
	opts.io_qdepth = (uint16_t)qdepth;
	opts.timeout_ms = timeout_ms;
	return leap_nvmf_host_connect_opts(trid, &opts, ctrlp, errbuf, errlen);
}

struct sync_wait {
	bool done;
	struct nvme_cqe cqe;
};

static void sync_cb(void *arg, const struct nvme_cqe *cqe)
{
	struct sync_wait *w = arg;

	w->cqe = *cqe;
	w->done = true;
}

int leap_nvmf_host_admin_sync(struct leap_nvmf_ctrl *ctrl, const struct nvme_sqe *sqe, void *buf,
			      uint32_t len, struct nvme_cqe *cqe, int timeout_ms)
{
	struct leap_nvmf_qpair *qp = leap_nvmf_ctrl_admin_qpair(ctrl);
	struct iovec iov = { buf, len };
	struct sync_wait w = { 0 };
	int64_t deadline = now_ms() + (timeout_ms < 0 ? 3600000 : timeout_ms);
	int rc;

	rc = leap_nvmf_qpair_submit(qp, sqe, &iov, len ? 1 : 0, sync_cb, &w);
	if (rc)
		return rc;
	while (!w.done) {
		/* Keep alives and the admin queue's own state advance here too. */
		rc = leap_nvmf_qpair_wait(qp, remaining_ms(deadline));
		if (rc < 0 && !w.done)
			return rc;
		if (!w.done && now_ms() >= deadline) {
			/* The slot's buffer must not be written later: fail the queue. */
			leap_nvmf_ctrl_fail(ctrl, -ETIMEDOUT, "admin command timed out");
			return -ETIMEDOUT;
		}
	}
	if (cqe)
		*cqe = w.cqe;
	return (nvmf_cqe_status(&w.cqe) & 0x7ff) ? -EIO : 0;
}

int leap_nvmf_host_ns_info(struct leap_nvmf_ctrl *ctrl, uint32_t nsid, uint64_t *nlb,
			   uint32_t *lba_size, int timeout_ms)
{
	struct nvme_id_ns *ns = aligned_alloc(64, sizeof(*ns));
	struct nvme_sqe sqe;
	uint8_t fmt;
	int rc;

	if (!ns)
		return -ENOMEM;
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_OPC_IDENTIFY;
	sqe.nsid = nsid;
	sqe.cdw10 = NVME_CNS_NS;
	rc = leap_nvmf_host_admin_sync(ctrl, &sqe, ns, sizeof(*ns), NULL, timeout_ms);
	if (rc == 0) {
		fmt = ns->flbas & 0xf;
		if (ns->nsze == 0 || fmt > ns->nlbaf || ns->lbaf[fmt].lbads < 9 ||
		    ns->lbaf[fmt].lbads > 16) {
			rc = -ENODEV; /* inactive namespace or nonsense format */
		} else {
			*nlb = ns->nsze;
			*lba_size = 1u << ns->lbaf[fmt].lbads;
		}
	}
	free(ns);
	return rc;
}

static int get_log(struct leap_nvmf_ctrl *c, uint64_t off, void *buf, uint32_t len, int timeout)
{
	struct leap_nvmf_qpair *qp = leap_nvmf_ctrl_admin_qpair(c);
	struct sync_wait w = { 0 };
	int64_t deadline = now_ms() + timeout;
	int rc;

	rc = leap_nvmf_admin_get_log_page(qp, NVMF_LOG_DISCOVERY, 0, off, buf, len, sync_cb, &w);
	if (rc)
		return rc;
	while (!w.done) {
		rc = leap_nvmf_qpair_wait(qp, remaining_ms(deadline));
		if (rc < 0 && !w.done)
			return rc;
		if (!w.done && now_ms() >= deadline) {
			leap_nvmf_ctrl_fail(c, -ETIMEDOUT, "Get Log Page timed out");
			return -ETIMEDOUT;
		}
	}
	return (nvmf_cqe_status(&w.cqe) & 0x7ff) ? -EIO : 0;
}

#define DISC_MAX_RECORDS 1024 /* a target claiming more is not believed */

int leap_nvmf_host_discover(const struct leap_nvmf_trid *trid, int timeout_ms,
			    struct nvmf_disc_log_hdr **logp, size_t *lenp, char *errbuf,
			    size_t errlen)
{
	struct nvmf_disc_log_hdr *hdr = NULL, *log = NULL;
	struct leap_nvmf_ctrl_opts opts;
	struct leap_nvmf_ctrl *c;
	size_t len = 0;
	int rc;

	*logp = NULL;
	leap_nvmf_ctrl_opts_init(&opts);
	opts.nr_io_queues = 0;
	opts.timeout_ms = timeout_ms;
	rc = leap_nvmf_host_connect_opts(trid, &opts, &c, errbuf, errlen);
	if (rc)
		return rc;
	hdr = aligned_alloc(64, sizeof(*hdr));
	if (!hdr) {
		rc = -ENOMEM;
		goto out;
	}
	/* GENCTR changes if the log changed while we read it: read again (NVMe-oF 5.3). */
	for (int tries = 0; tries < 4; tries++) {
		uint64_t numrec;

		rc = get_log(c, 0, hdr, sizeof(*hdr), timeout_ms);
		if (rc)
			break;
		numrec = hdr->numrec;
		if (numrec > DISC_MAX_RECORDS) {
			rc = -EPROTO;
			break;
		}
		free(log);
		len = sizeof(*hdr) + numrec * sizeof(struct nvmf_disc_log_entry);
		log = aligned_alloc(64, len);
		if (!log) {
			rc = -ENOMEM;
			break;
		}
		rc = get_log(c, 0, log, (uint32_t)len, timeout_ms);
		if (rc)
			break;
		if (log->genctr == hdr->genctr && log->numrec == numrec)
			break;
		rc = -EAGAIN;
	}
	if (rc && errbuf && errlen)
		snprintf(errbuf, errlen, "discovery log: %s%s%s", strerror(-rc),
			 leap_nvmf_ctrl_reason(c)[0] ? ": " : "", leap_nvmf_ctrl_reason(c));
out:
	free(hdr);
	if (rc) {
		free(log);
		log = NULL;
	}
	leap_nvmf_host_disconnect(c, 1000);
	*logp = log;
	if (lenp)
		*lenp = rc ? 0 : len;
	return rc;
}

void leap_nvmf_host_disconnect(struct leap_nvmf_ctrl *ctrl, int timeout_ms)
{
	struct leap_nvmf_qpair *admin;
	struct nvme_cqe cqe;
	struct nvme_sqe sqe;
	int64_t deadline;

	if (!ctrl)
		return;
	admin = leap_nvmf_ctrl_admin_qpair(ctrl);
	if (leap_nvmf_qpair_state(admin) != LEAP_NVMF_QP_LIVE)
		goto out;
	deadline = now_ms() + timeout_ms;
	/* Normal shutdown notification (CC.SHN = 01b), then wait for SHST = complete. */
	memset(&sqe, 0, sizeof(sqe));
	{
		struct nvmf_property_set_cmd *ps = (struct nvmf_property_set_cmd *)&sqe;

		ps->opc = NVME_OPC_FABRIC;
		ps->fctype = NVMF_FCTYPE_PROPERTY_SET;
		ps->attrib = NVMF_PROP_SIZE_4;
		ps->ofst = NVMF_PROP_CC;
		ps->value = NVME_CC_EN | 6u << NVME_CC_IOSQES_SHIFT | 4u << NVME_CC_IOCQES_SHIFT |
			    1u << NVME_CC_SHN_SHIFT;
	}
	if (leap_nvmf_host_admin_sync(ctrl, &sqe, NULL, 0, NULL, timeout_ms))
		goto out;
	while (now_ms() < deadline) {
		struct nvmf_property_get_cmd *pg = (struct nvmf_property_get_cmd *)&sqe;

		memset(&sqe, 0, sizeof(sqe));
		pg->opc = NVME_OPC_FABRIC;
		pg->fctype = NVMF_FCTYPE_PROPERTY_GET;
		pg->attrib = NVMF_PROP_SIZE_4;
		pg->ofst = NVMF_PROP_CSTS;
		if (leap_nvmf_host_admin_sync(ctrl, &sqe, NULL, 0, &cqe,
					      (int)LEAP_MAX(deadline - now_ms(), (int64_t)1)))
			break;
		if ((cqe.dw0 & (3u << NVME_CSTS_SHST_SHIFT)) == NVME_CSTS_SHST_COMPLETE)
			break;
		poll(NULL, 0, 1);
	}
out:
	leap_nvmf_ctrl_destroy(ctrl);
}
