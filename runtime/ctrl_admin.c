// SPDX-License-Identifier: BSD-3-Clause
/*
 * Admin commands: Identify, queue management (forwarded to the transport,
 * which owns queue memory), features, log pages, Abort, Async Event
 * Request, Keep Alive, Doorbell Buffer Config. Statuses are the ones the
 * NVMe Base Specification 2.0 gives for each failure.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "leapio/common.h"
#include "ctrl.h"

#define ST(sct, sc) NVME_STATUS(NVME_SCT_##sct, NVME_SC_##sc)
#define DNR	    NVME_CQE_DNR

static void done(struct leap_ctrl *ctrl, struct leap_req *req, uint16_t status)
{
	req->status = status;
	leap_ctrl_complete(ctrl, req);
}

/* Copy `len` bytes of `buf` to the command's data pointer. Returns a status. */
static uint16_t to_host(struct leap_ctrl *ctrl, const struct leap_req *req, const void *buf,
			size_t len)
{
	struct iovec iov[LEAP_REQ_MAX_IOV];
	const uint8_t *p = buf;
	int cnt;

	if (len == 0)
		return 0;
	cnt = leap_prp_to_iov(&ctrl->mem, req->sqe.prp1, req->sqe.prp2, len, iov, LEAP_REQ_MAX_IOV,
			      NULL);
	if (cnt < 0)
		return (uint16_t)-cnt;
	for (int i = 0; i < cnt; i++) {
		memcpy(iov[i].iov_base, p, iov[i].iov_len);
		p += iov[i].iov_len;
	}
	return 0;
}

/* Space-padded, not NUL-terminated, as Identify strings are. */
static void pad(char *dst, size_t n, const char *src)
{
	size_t l = strlen(src);

	memset(dst, ' ', n);
	memcpy(dst, src, l < n ? l : n);
}

static void identify_ctrl(const struct leap_ctrl *ctrl, struct nvme_id_ctrl *id)
{
	memset(id, 0, sizeof(*id));
	id->vid = 0x1d0f;
	id->ssvid = 0x1d0f;
	pad(id->sn, sizeof(id->sn), ctrl->serial);
	pad(id->mn, sizeof(id->mn), "leapio virtual NVMe");
	pad(id->fr, sizeof(id->fr), "0.1");
	id->rab = 6;
	id->mdts = LEAP_CTRL_MDTS;
	id->cntlid = ctrl->cntlid;
	id->ver = NVME_VERSION(1, 4, 0);
	id->cntrltype = 1; /* I/O controller */
	id->oacs = NVME_OACS_DOORBELL_BUFFER_CONFIG;
	id->acl = 3;
	id->aerl = LEAP_CTRL_AERL;
	id->frmw = 1 << 1 | 1; /* one slot, read-only */
	id->lpa = NVME_LPA_EXTENDED_DATA;
	id->elpe = LEAP_CTRL_ERRLOG - 1;
	id->wctemp = 343;
	id->cctemp = 373;
	id->sqes = (NVME_SQES_LOG2 << 4) | NVME_SQES_LOG2;
	id->cqes = (NVME_CQES_LOG2 << 4) | NVME_CQES_LOG2;
	id->nn = LEAP_CTRL_MAX_NS;
	id->oncs = NVME_ONCS_COMPARE | NVME_ONCS_DSM | NVME_ONCS_WRITE_ZEROES;
	id->vwc = 1;
	id->sgls = 0;
	snprintf(id->subnqn, sizeof(id->subnqn), "%s", ctrl->nqn);
	id->psd[0].mp = 2500; /* 25 W, centiwatts */
}

static void identify_ns(const struct leap_ns *ns, struct nvme_id_ns *id)
{
	memset(id, 0, sizeof(*id));
	id->nsze = ns->nlb;
	id->ncap = ns->nlb;
	id->nuse = ns->nlb;
	id->nsfeat = NVME_NSFEAT_THIN_PROVISIONING;
	id->nlbaf = 0;
	id->flbas = 0;
	id->dlfeat = NVME_DLFEAT_READ_ZEROES;
	id->lbaf[0].lbads = (uint8_t)ns->lba_shift;
	memcpy(id->nguid, ns->nguid, sizeof(id->nguid));
	memcpy(id->eui64, ns->eui64, sizeof(id->eui64));
}

static size_t ns_desc_list(const struct leap_ns *ns, uint8_t *buf)
{
	struct nvme_ns_id_desc d = { 0 };
	size_t off = 0;

	d.nidt = NVME_NIDT_EUI64;
	d.nidl = 8;
	memcpy(buf + off, &d, sizeof(d));
	memcpy(buf + off + 4, ns->eui64, 8);
	off += 12;
	d.nidt = NVME_NIDT_NGUID;
	d.nidl = 16;
	memcpy(buf + off, &d, sizeof(d));
	memcpy(buf + off + 4, ns->nguid, 16);
	off += 20;
	d.nidt = NVME_NIDT_UUID;
	d.nidl = 16;
	memcpy(buf + off, &d, sizeof(d));
	memcpy(buf + off + 4, ns->uuid, 16);
	off += 20;
	d.nidt = NVME_NIDT_CSI;
	d.nidl = 1;
	memcpy(buf + off, &d, sizeof(d));
	buf[off + 4] = 0; /* NVM command set */
	return off + 5;
}

static uint16_t identify(struct leap_ctrl *ctrl, struct leap_req *req)
{
	uint8_t buf[NVME_IDENTIFY_SIZE] __attribute__((aligned(8)));
	uint32_t cns = req->sqe.cdw10 & 0xff, nsid = req->sqe.nsid;
	const struct leap_ns *ns;

	memset(buf, 0, sizeof(buf));
	switch (cns) {
	case NVME_CNS_CTRL:
		identify_ctrl(ctrl, (struct nvme_id_ctrl *)buf);
		break;
	case NVME_CNS_NS:
		ns = leap_ctrl_ns(ctrl, nsid);
		if (!ns) {
			/* An allocated-but-inactive NSID returns zeroes; others are invalid. */
			if (nsid == 0 || nsid > LEAP_CTRL_MAX_NS)
				return ST(GENERIC, INVALID_NAMESPACE_OR_FORMAT) | DNR;
			break;
		}
		identify_ns(ns, (struct nvme_id_ns *)buf);
		break;
	case NVME_CNS_ACTIVE_NS_LIST: {
		uint32_t *list = (uint32_t *)buf, n = 0;

		if (nsid >= 0xfffffffe)
			return ST(GENERIC, INVALID_NAMESPACE_OR_FORMAT) | DNR;
		for (uint32_t i = nsid + 1; i <= LEAP_CTRL_MAX_NS; i++)
			if (leap_ctrl_ns(ctrl, i))
				list[n++] = i;
		break;
	}
	case NVME_CNS_NS_DESC_LIST:
		ns = leap_ctrl_ns(ctrl, nsid);
		if (!ns)
			return ST(GENERIC, INVALID_NAMESPACE_OR_FORMAT) | DNR;
		ns_desc_list(ns, buf);
		break;
	default:
		return ST(GENERIC, INVALID_FIELD) | DNR;
	}
	return to_host(ctrl, req, buf, sizeof(buf));
}

/* 128-bit little-endian counter in a packed log page; the high half stays 0. */
#define PUT128(page, field, v)                                                                     \
	do {                                                                                       \
		uint64_t _v = (v);                                                                 \
		memcpy((uint8_t *)(page) + offsetof(struct nvme_health_log, field), &_v, 8);       \
	} while (0)

static uint16_t get_log_page(struct leap_ctrl *ctrl, struct leap_req *req)
{
	uint8_t buf[LEAP_CTRL_ERRLOG * sizeof(struct nvme_error_log_entry)]
	    __attribute__((aligned(8)));
	uint32_t lid = req->sqe.cdw10 & 0xff;
	uint64_t len = (uint64_t)NVME_LOG_NUMD(req->sqe.cdw10, req->sqe.cdw11) * 4;
	uint64_t off = (uint64_t)req->sqe.cdw12 | ((uint64_t)req->sqe.cdw13 << 32);
	size_t page_len;
	uint8_t out[LEAP_CTRL_MAX_XFER > 8192 ? 8192 : LEAP_CTRL_MAX_XFER];

	memset(buf, 0, sizeof(buf));
	switch (lid) {
	case NVME_LOG_ERROR: {
		struct nvme_error_log_entry *e = (struct nvme_error_log_entry *)buf;
		uint64_t n =
		    ctrl->error_count < LEAP_CTRL_ERRLOG ? ctrl->error_count : LEAP_CTRL_ERRLOG;

		/* Newest first. */
		for (uint64_t i = 0; i < n; i++)
			e[i] = ctrl->errlog[(ctrl->error_count - 1 - i) % LEAP_CTRL_ERRLOG];
		page_len = sizeof(buf);
		break;
	}
	case NVME_LOG_HEALTH: {
		struct nvme_health_log *h = (struct nvme_health_log *)buf;
		struct leap_stats s = { 0 };
		uint64_t now = leap_now_ns();

		leap_stats_accumulate(&s, &ctrl->stats);
		h->temperature = 313; /* kelvin: a virtual device is always comfortable */
		h->available_spare = 100;
		h->available_spare_threshold = 10;
		/* Data units are thousands of 512-byte units, rounded up. */
		PUT128(h, data_units_read, (s.bytes[0] + 512000 - 1) / 512000);
		PUT128(h, data_units_written, (s.bytes[1] + 512000 - 1) / 512000);
		PUT128(h, host_read_commands, s.ops[LEAP_STATS_READ]);
		PUT128(h, host_write_commands, s.ops[LEAP_STATS_WRITE]);
		PUT128(h, controller_busy_time, s.lat_sum_ns / 60000000000ull);
		PUT128(h, power_cycles, 1);
		PUT128(h, power_on_hours, (now - ctrl->create_ns) / 3600000000000ull);
		PUT128(h, media_errors, ctrl->media_errors);
		PUT128(h, num_error_info_log_entries, ctrl->error_count);
		page_len = sizeof(*h);
		break;
	}
	case NVME_LOG_FIRMWARE_SLOT:
		buf[0] = 1;
		memcpy(buf + 8, "0.1     ", 8);
		page_len = 512;
		break;
	default:
		return ST(COMMAND_SPECIFIC, INVALID_LOG_PAGE) | DNR;
	}
	if (off & 3)
		return ST(GENERIC, INVALID_FIELD) | DNR;
	if (len > sizeof(out))
		return ST(GENERIC, INVALID_FIELD) | DNR;
	/* Past the end of the page reads as zeroes; an offset beyond it is invalid. */
	if (off > page_len)
		return ST(GENERIC, INVALID_FIELD) | DNR;
	memset(out, 0, len);
	memcpy(out, buf + off, LEAP_MIN(len, page_len - off));
	return to_host(ctrl, req, out, len);
}

static uint16_t set_features(struct leap_ctrl *ctrl, struct leap_req *req)
{
	uint32_t fid = req->sqe.cdw10 & 0xff, v = req->sqe.cdw11;

	switch (fid) {
	case NVME_FEAT_NUMBER_OF_QUEUES: {
		uint32_t nsq = (v & 0xffff) + 1, ncq = (v >> 16) + 1, n;

		if ((v & 0xffff) == 0xffff || (v >> 16) == 0xffff)
			return ST(GENERIC, INVALID_FIELD) | DNR;
		n = LEAP_MIN(LEAP_MAX(nsq, ncq), ctrl->max_io_queues);
		ctrl->nr_io_queues = n;
		req->cdw0 = ((n - 1) << 16) | (n - 1);
		return 0;
	}
	case NVME_FEAT_ARBITRATION:
		ctrl->arbitration = v;
		return 0;
	case NVME_FEAT_VOLATILE_WRITE_CACHE:
		ctrl->vwc = v & 1;
		return 0;
	case NVME_FEAT_ASYNC_EVENT_CONFIG:
		ctrl->aec = v;
		return 0;
	case NVME_FEAT_KEEP_ALIVE_TIMER:
		ctrl->kato = v;
		return 0;
	case NVME_FEAT_INTERRUPT_COALESCING:
	case NVME_FEAT_POWER_MANAGEMENT:
	case NVME_FEAT_TEMPERATURE_THRESHOLD:
		return 0;
	default:
		return ST(GENERIC, INVALID_FIELD) | DNR;
	}
}

static uint16_t get_features(struct leap_ctrl *ctrl, struct leap_req *req)
{
	uint32_t fid = req->sqe.cdw10 & 0xff, n;

	switch (fid) {
	case NVME_FEAT_NUMBER_OF_QUEUES:
		n = ctrl->nr_io_queues ? ctrl->nr_io_queues : ctrl->max_io_queues;
		req->cdw0 = ((n - 1) << 16) | (n - 1);
		return 0;
	case NVME_FEAT_ARBITRATION:
		req->cdw0 = ctrl->arbitration;
		return 0;
	case NVME_FEAT_VOLATILE_WRITE_CACHE:
		req->cdw0 = ctrl->vwc;
		return 0;
	case NVME_FEAT_ASYNC_EVENT_CONFIG:
		req->cdw0 = ctrl->aec;
		return 0;
	case NVME_FEAT_KEEP_ALIVE_TIMER:
		req->cdw0 = ctrl->kato;
		return 0;
	case NVME_FEAT_TEMPERATURE_THRESHOLD:
		req->cdw0 = 343;
		return 0;
	case NVME_FEAT_INTERRUPT_COALESCING:
	case NVME_FEAT_POWER_MANAGEMENT:
		req->cdw0 = 0;
		return 0;
	default:
		return ST(GENERIC, INVALID_FIELD) | DNR;
	}
}

static uint16_t queue_cmd(struct leap_ctrl *ctrl, struct leap_req *req)
{
	const struct nvme_sqe *s = &req->sqe;
	uint16_t qid = s->cdw10 & 0xffff;
	uint32_t qsize = (s->cdw10 >> 16) + 1;
	uint32_t limit = ctrl->nr_io_queues ? ctrl->nr_io_queues : ctrl->max_io_queues;

	if (qid == 0 || qid > limit)
		return ST(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER) | DNR;
	switch (s->opc) {
	case NVME_OPC_CREATE_IO_CQ:
	case NVME_OPC_CREATE_IO_SQ:
		if (qsize < 2 || qsize > ctrl->max_qsize)
			return ST(COMMAND_SPECIFIC, INVALID_QUEUE_SIZE) | DNR;
		if (!(s->cdw11 & NVME_QUEUE_PHYS_CONTIG))
			return ST(GENERIC, INVALID_FIELD) | DNR;
		if (s->prp1 & (NVME_PAGE_SIZE - 1))
			return ST(GENERIC, INVALID_PRP_OFFSET) | DNR;
		if (s->opc == NVME_OPC_CREATE_IO_CQ)
			return ctrl->tops->cq_create(ctrl->transport, qid, s->prp1, qsize,
						     (uint16_t)(s->cdw11 >> 16),
						     s->cdw11 & NVME_CQ_IRQ_ENABLED);
		if ((s->cdw11 >> 16) == 0)
			return ST(COMMAND_SPECIFIC, COMPLETION_QUEUE_INVALID) | DNR;
		return ctrl->tops->sq_create(ctrl->transport, qid, s->prp1, qsize,
					     (uint16_t)(s->cdw11 >> 16),
					     (uint8_t)NVME_SQ_QPRIO(s->cdw11));
	case NVME_OPC_DELETE_IO_CQ:
		return ctrl->tops->cq_delete(ctrl->transport, qid);
	default:
		return ctrl->tops->sq_delete(ctrl->transport, qid);
	}
}

void leap_ctrl_admin(struct leap_ctrl *ctrl, struct leap_req *req)
{
	const struct nvme_sqe *s = &req->sqe;
	uint16_t st;

	if (s->flags & (NVME_SQE_FUSE_MASK | (3u << NVME_SQE_PSDT_SHIFT))) {
		done(ctrl, req, ST(GENERIC, INVALID_FIELD) | DNR);
		return;
	}
	switch (s->opc) {
	case NVME_OPC_IDENTIFY:
		st = identify(ctrl, req);
		break;
	case NVME_OPC_GET_LOG_PAGE:
		st = get_log_page(ctrl, req);
		break;
	case NVME_OPC_SET_FEATURES:
		st = set_features(ctrl, req);
		break;
	case NVME_OPC_GET_FEATURES:
		st = get_features(ctrl, req);
		break;
	case NVME_OPC_CREATE_IO_CQ:
	case NVME_OPC_CREATE_IO_SQ:
	case NVME_OPC_DELETE_IO_CQ:
	case NVME_OPC_DELETE_IO_SQ:
		st = queue_cmd(ctrl, req);
		break;
	case NVME_OPC_ABORT:
		req->cdw0 = 1; /* not aborted: commands here complete quickly */
		st = 0;
		break;
	case NVME_OPC_ASYNC_EVENT_REQUEST:
		if (ctrl->aer_cnt > LEAP_CTRL_AERL) {
			st = ST(COMMAND_SPECIFIC, ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED) | DNR;
			break;
		}
		ctrl->aer[ctrl->aer_cnt++] = req; /* held until an event or teardown */
		return;
	case NVME_OPC_KEEP_ALIVE:
		st = 0;
		break;
	case NVME_OPC_DOORBELL_BUFFER_CONFIG:
		if (!ctrl->tops->dbbuf_config) {
			st = ST(GENERIC, INVALID_OPCODE) | DNR;
			break;
		}
		if ((s->prp1 | s->prp2) & (NVME_PAGE_SIZE - 1) || !s->prp1 || !s->prp2) {
			st = ST(GENERIC, INVALID_FIELD) | DNR;
			break;
		}
		st = ctrl->tops->dbbuf_config(ctrl->transport, s->prp1, s->prp2);
		break;
	default:
		st = ST(GENERIC, INVALID_OPCODE) | DNR;
		break;
	}
	done(ctrl, req, st);
}
