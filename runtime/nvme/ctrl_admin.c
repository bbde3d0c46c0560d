// SPDX-License-Identifier: BSD-3-Clause
/*
 * Admin commands: Identify, queue management (checked here, then forwarded
 * to the transport, which owns queue memory), features, log pages, Abort,
 * Async Event Request, Keep Alive, Doorbell Buffer Config. Statuses are the
 * ones the NVMe Base Specification 2.0 gives for each failure. Admin
 * commands are rare, so buffers here live on the reactor's stack.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "leapio/common.h"
#include "ctrl_internal.h"

#define LOG_PAGE_MAX (LEAP_CTRL_ERRLOG * sizeof(struct nvme_error_log_entry))

/* Get/Set Features fields (Base 2.0, figures 192 and 317). */
#define FEAT_FID(cdw10)	    ((cdw10)&0xff)
#define FEAT_SEL(cdw10)	    (((cdw10) >> 8) & 0x7)
#define FEAT_SAVE(cdw10)    ((cdw10) >> 31)
#define FEAT_SEL_CURRENT    0
#define FEAT_SEL_DEFAULT    1
#define FEAT_SEL_SAVED	    2
#define FEAT_SEL_SUPPORTED  3
#define FEAT_CAP_CHANGEABLE (1u << 2)

#define LOG_RAE (1u << 15)

static void done(struct leap_ctrl *ctrl, struct leap_req *req, uint16_t status)
{
	req->status = status;
	leap_ctrl_complete(ctrl, req);
}

/*
 * Copy `len` bytes of `buf` to the command's data buffer, which is `xfer`
 * bytes long (xfer >= len): the rest reads as zeroes. Returns a status.
 */
static uint16_t to_host(struct leap_ctrl *ctrl, struct leap_req *req, const void *buf, size_t len,
			uint64_t xfer)
{
	const uint8_t *p = buf;
	int cnt;

	if (xfer == 0)
		return 0;
	if (xfer > LEAP_CTRL_MAX_XFER)
		return ST(GENERIC, INVALID_FIELD) | DNR;
	cnt = leap_ctrl_map_data(ctrl, req, xfer, req->iov, LEAP_REQ_MAX_IOV, NULL);
	if (cnt < 0)
		return (uint16_t)-cnt | DNR;
	for (int i = 0; i < cnt; i++) {
		size_t n = req->iov[i].iov_len, c = LEAP_MIN(n, len);

		memcpy(req->iov[i].iov_base, p, c);
		memset((uint8_t *)req->iov[i].iov_base + c, 0, n - c);
		p += c;
		len -= c;
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
	const struct leap_transport_caps *caps = leap_ctrl_caps(ctrl);

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
	id->oaes = 1u << 8;				       /* Namespace Attribute Notices */
	id->cntrltype = caps->cntrltype ? caps->cntrltype : 1; /* I/O controller */
	/* Shadow doorbells only where the transport has doorbells to shadow. */
	if (ctrl->tops && ctrl->tops->dbbuf_config)
		id->oacs = NVME_OACS_DOORBELL_BUFFER_CONFIG;
	id->acl = 3;
	id->aerl = LEAP_CTRL_AERL;
	id->frmw = 1 << 1 | 1; /* one slot, read-only */
	id->lpa = NVME_LPA_EXTENDED_DATA;
	id->elpe = LEAP_CTRL_ERRLOG - 1;
	id->wctemp = 343;
	id->cctemp = 373;
	id->kas = 10; /* 100 ms units: 1 s granularity */
	id->sqes = (NVME_SQES_LOG2 << 4) | NVME_SQES_LOG2;
	id->cqes = (NVME_CQES_LOG2 << 4) | NVME_CQES_LOG2;
	id->nn = LEAP_CTRL_MAX_NS;
	id->oncs = NVME_ONCS_COMPARE | NVME_ONCS_DSM | NVME_ONCS_WRITE_ZEROES;
	/* Present; bits 2:1 = 10b: Flush with NSID FFFFFFFFh is not supported. */
	id->vwc = 0x5;
	id->sgls = caps->sgls;
	snprintf(id->subnqn, sizeof(id->subnqn), "%s", ctrl->nqn);
	if (caps->fabrics) {
		/* Capsule sizes in 16-byte units; in-capsule data starts right after the SQE. */
		id->ioccsz = caps->ioccsz;
		id->iorcsz = caps->iorcsz;
		id->icdoff = 0;
		/* Static controller model: one controller per subsystem. */
		id->fcatt = 1;
		id->msdbd = caps->msdbd;
		id->maxcmd = (uint16_t)ctrl->max_qsize;
	}
	id->psd[0].mp = 2500; /* 25 W, centiwatts */
}

static void identify_ns(const struct leap_ns *ns, struct nvme_id_ns *id)
{
	uint64_t bytes = ns->nlb << ns->lba_shift;

	memset(id, 0, sizeof(*id));
	id->nsze = ns->nlb;
	id->ncap = ns->nlb;
	id->nuse = ns->nlb;
	id->nsfeat = NVME_NSFEAT_THIN_PROVISIONING;
	id->nlbaf = 0; /* 0's based: one format */
	id->flbas = 0;
	id->dlfeat = NVME_DLFEAT_READ_ZEROES;
	memcpy(id->nvmcap, &bytes, sizeof(bytes));
	id->lbaf[0].lbads = (uint8_t)ns->lba_shift;
	memcpy(id->nguid, ns->nguid, sizeof(id->nguid));
	memcpy(id->eui64, ns->eui64, sizeof(id->eui64));
}

static size_t put_desc(uint8_t *buf, size_t off, uint8_t nidt, const void *id, uint8_t nidl)
{
	struct nvme_ns_id_desc d = { .nidt = nidt, .nidl = nidl };

	memcpy(buf + off, &d, sizeof(d));
	memcpy(buf + off + sizeof(d), id, nidl);
	return off + sizeof(d) + nidl;
}

static void ns_desc_list(const struct leap_ns *ns, uint8_t *buf)
{
	static const uint8_t csi_nvm = 0;
	size_t off = 0;

	off = put_desc(buf, off, NVME_NIDT_EUI64, ns->eui64, 8);
	off = put_desc(buf, off, NVME_NIDT_NGUID, ns->nguid, 16);
	off = put_desc(buf, off, NVME_NIDT_UUID, ns->uuid, 16);
	put_desc(buf, off, NVME_NIDT_CSI, &csi_nvm, 1);
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
			/* A valid but inactive NSID returns zeroes; others are invalid. */
			if (nsid == 0 || nsid > LEAP_CTRL_MAX_NS)
				return ST(GENERIC, INVALID_NAMESPACE_OR_FORMAT) | DNR;
			break;
		}
		identify_ns(ns, (struct nvme_id_ns *)buf);
		break;
	case NVME_CNS_ACTIVE_NS_LIST: {
		uint32_t *list = (uint32_t *)buf, n = 0;

		/* Active NSIDs greater than nsid, ascending; FFFFFFFEh and FFFFFFFFh are invalid. */
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
	return to_host(ctrl, req, buf, sizeof(buf), sizeof(buf));
}

/* 128-bit little-endian counter in the packed health page; the high half stays 0. */
static void put128(struct nvme_health_log *h, size_t off, uint64_t v)
{
	memset((uint8_t *)h + off, 0, 16);
	memcpy((uint8_t *)h + off, &v, sizeof(v));
}

#define PUT128(h, field, v) put128((h), offsetof(struct nvme_health_log, field), (v))

/* Thousands of 512-byte units, rounded up (Base 2.0, figure 207). */
static uint64_t data_units(uint64_t bytes)
{
	return (bytes + 512000 - 1) / 512000;
}

static size_t health_log(struct leap_ctrl *ctrl, struct nvme_health_log *h)
{
	struct leap_stats s;
	uint64_t now = leap_now_ns();

	leap_ctrl_stats_snapshot(ctrl, 0, &s);
	h->temperature = 313; /* kelvin: a virtual device is always comfortable */
	h->available_spare = 100;
	h->available_spare_threshold = 10;
	PUT128(h, data_units_read, data_units(s.bytes[0]));
	PUT128(h, data_units_written, data_units(s.bytes[1]));
	PUT128(h, host_read_commands, s.ops[LEAP_STATS_READ]);
	PUT128(h, host_write_commands, s.ops[LEAP_STATS_WRITE]);
	PUT128(h, controller_busy_time, s.lat_sum_ns / 60000000000ull); /* minutes */
	PUT128(h, power_cycles, 1);
	PUT128(h, power_on_hours, (now - ctrl->create_ns) / 3600000000000ull);
	PUT128(h, unsafe_shutdowns, 0);
	PUT128(h, media_errors, ctrl->media_errors);
	PUT128(h, num_error_info_log_entries, ctrl->error_count);
	return sizeof(*h);
}

static uint16_t get_log_page(struct leap_ctrl *ctrl, struct leap_req *req)
{
	uint8_t buf[LOG_PAGE_MAX] __attribute__((aligned(8)));
	uint32_t lid = req->sqe.cdw10 & 0xff;
	uint64_t len = (uint64_t)NVME_LOG_NUMD(req->sqe.cdw10, req->sqe.cdw11) * 4;
	uint64_t off = (uint64_t)req->sqe.cdw12 | ((uint64_t)req->sqe.cdw13 << 32);
	size_t page_len;
	uint16_t st;

	memset(buf, 0, sizeof(buf));
	switch (lid) {
	case NVME_LOG_ERROR: {
		struct nvme_error_log_entry *e = (struct nvme_error_log_entry *)buf;
		uint64_t n = LEAP_MIN(ctrl->error_count, (uint64_t)LEAP_CTRL_ERRLOG);

		/* Newest first; unused entries read as zeroes (error count 0). */
		for (uint64_t i = 0; i < n; i++)
			e[i] = ctrl->errlog[(ctrl->error_count - 1 - i) % LEAP_CTRL_ERRLOG];
		page_len = LOG_PAGE_MAX;
		break;
	}
	case NVME_LOG_HEALTH:
		page_len = health_log(ctrl, (struct nvme_health_log *)buf);
		break;
	case NVME_LOG_FIRMWARE_SLOT:
		buf[0] = 1; /* active slot 1 */
		memcpy(buf + 8, "0.1     ", 8);
		page_len = 512;
		break;
	case NVME_LOG_CHANGED_NS_LIST: {
		uint32_t *list = (uint32_t *)buf, n = 0;

		for (uint32_t i = 0; i < LEAP_CTRL_MAX_NS; i++)
			if (ctrl->changed_ns & (1u << i))
				list[n++] = i + 1;
		page_len = 4096;
		break;
	}
	default:
		return ST(COMMAND_SPECIFIC, INVALID_LOG_PAGE) | DNR;
	}
	/* The offset is dword aligned and inside the page; reading past the end gives zeroes. */
	if ((off & 3) || off >= page_len)
		return ST(GENERIC, INVALID_FIELD) | DNR;
	st = to_host(ctrl, req, buf + off, LEAP_MIN(len, page_len - off), len);
	if (!st && !(req->sqe.cdw10 & LOG_RAE)) {
		ctrl_aen_log_read(ctrl, (uint8_t)lid);
		if (lid == NVME_LOG_CHANGED_NS_LIST)
			ctrl->changed_ns = 0;
	}
	return st;
}

static uint32_t noq_dw0(uint16_t nsq, uint16_t ncq)
{
	return ((uint32_t)(ncq - 1) << 16) | (uint32_t)(nsq - 1);
}

static uint16_t set_features(struct leap_ctrl *ctrl, struct leap_req *req)
{
	uint32_t fid = FEAT_FID(req->sqe.cdw10), v = req->sqe.cdw11;

	switch (fid) {
	case NVME_FEAT_NUMBER_OF_QUEUES:
	case NVME_FEAT_ARBITRATION:
	case NVME_FEAT_VOLATILE_WRITE_CACHE:
	case NVME_FEAT_ASYNC_EVENT_CONFIG:
	case NVME_FEAT_KEEP_ALIVE_TIMER:
	case NVME_FEAT_TEMPERATURE_THRESHOLD:
	case NVME_FEAT_POWER_MANAGEMENT:
	case NVME_FEAT_INTERRUPT_COALESCING:
		break;
	default:
		return ST(GENERIC, INVALID_FIELD) | DNR;
	}
	/* Nothing here is persistent across power cycles. */
	if (FEAT_SAVE(req->sqe.cdw10))
		return ST(COMMAND_SPECIFIC, FEATURE_ID_NOT_SAVEABLE) | DNR;
	switch (fid) {
	case NVME_FEAT_NUMBER_OF_QUEUES: {
		uint32_t nsqr = v & 0xffff, ncqr = v >> 16;

		/* 0's based counts; 65535 (65536 queues) is invalid by definition. */
		if (nsqr == 0xffff || ncqr == 0xffff)
			return ST(GENERIC, INVALID_FIELD) | DNR;
		ctrl->nr_sq = (uint16_t)LEAP_MIN(nsqr + 1, ctrl->max_io_queues);
		ctrl->nr_cq = (uint16_t)LEAP_MIN(ncqr + 1, ctrl->max_io_queues);
		req->cdw0 = noq_dw0(ctrl->nr_sq, ctrl->nr_cq);
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
	case NVME_FEAT_TEMPERATURE_THRESHOLD:
		/* TMPSEL 0 (composite), THSEL 0 (over) is the only threshold kept. */
		if ((v >> 16) & 0x3f)
			return ST(GENERIC, INVALID_FIELD) | DNR;
		ctrl->temp_thresh = (uint16_t)v;
		return 0;
	default:
		return 0; /* power state 0 only; no interrupts to coalesce */
	}
}

/* The current value of feature fid, or its default when `dflt`. */
static uint16_t feature_value(struct leap_ctrl *ctrl, uint32_t fid, bool dflt, uint32_t *out)
{
	uint16_t nsq, ncq;

	switch (fid) {
	case NVME_FEAT_NUMBER_OF_QUEUES:
		nsq = dflt || !ctrl->nr_sq ? (uint16_t)ctrl->max_io_queues : ctrl->nr_sq;
		ncq = dflt || !ctrl->nr_cq ? (uint16_t)ctrl->max_io_queues : ctrl->nr_cq;
		*out = noq_dw0(nsq, ncq);
		return 0;
	case NVME_FEAT_ARBITRATION:
		*out = dflt ? 0 : ctrl->arbitration;
		return 0;
	case NVME_FEAT_VOLATILE_WRITE_CACHE:
		*out = dflt ? 1 : ctrl->vwc;
		return 0;
	case NVME_FEAT_ASYNC_EVENT_CONFIG:
		*out = dflt ? 0 : ctrl->aec;
		return 0;
	case NVME_FEAT_KEEP_ALIVE_TIMER:
		*out = dflt ? 0 : ctrl->kato;
		return 0;
	case NVME_FEAT_TEMPERATURE_THRESHOLD:
		*out = dflt ? 343 : ctrl->temp_thresh;
		return 0;
	case NVME_FEAT_INTERRUPT_COALESCING:
	case NVME_FEAT_POWER_MANAGEMENT:
		*out = 0;
		return 0;
	default:
		return ST(GENERIC, INVALID_FIELD) | DNR;
	}
}

static uint16_t get_features(struct leap_ctrl *ctrl, struct leap_req *req)
{
	uint32_t fid = FEAT_FID(req->sqe.cdw10), v;
	uint16_t st;

	switch (FEAT_SEL(req->sqe.cdw10)) {
	case FEAT_SEL_CURRENT:
		return feature_value(ctrl, fid, false, &req->cdw0);
	case FEAT_SEL_DEFAULT:
	case FEAT_SEL_SAVED: /* nothing is saveable: saved reads as default */
		return feature_value(ctrl, fid, true, &req->cdw0);
	case FEAT_SEL_SUPPORTED:
		st = feature_value(ctrl, fid, true, &v);
		if (st)
			return st;
		req->cdw0 = FEAT_CAP_CHANGEABLE;
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
	bool cq = s->opc == NVME_OPC_CREATE_IO_CQ || s->opc == NVME_OPC_DELETE_IO_CQ;
	/* Before Set Features Number of Queues the host may use every queue we offer. */
	uint32_t nsq = ctrl->nr_sq ? ctrl->nr_sq : ctrl->max_io_queues;
	uint32_t ncq = ctrl->nr_cq ? ctrl->nr_cq : ctrl->max_io_queues;
	uint16_t cqid;

	if (qid == 0 || qid > (cq ? ncq : nsq))
		return ST(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER) | DNR;
	switch (s->opc) {
	case NVME_OPC_CREATE_IO_CQ:
	case NVME_OPC_CREATE_IO_SQ:
		if (qsize < 2 || qsize > ctrl->max_qsize)
			return ST(COMMAND_SPECIFIC, INVALID_QUEUE_SIZE) | DNR;
		/* CAP.CQR = 1: queues must be physically contiguous. */
		if (!(s->cdw11 & NVME_QUEUE_PHYS_CONTIG))
			return ST(GENERIC, INVALID_FIELD) | DNR;
		if (s->prp1 & (NVME_PAGE_SIZE - 1))
			return ST(GENERIC, INVALID_PRP_OFFSET) | DNR;
		if (s->opc == NVME_OPC_CREATE_IO_CQ)
			return ctrl->tops->cq_create(ctrl->transport, qid, s->prp1, qsize,
						     (uint16_t)(s->cdw11 >> 16),
						     s->cdw11 & NVME_CQ_IRQ_ENABLED);
		cqid = (uint16_t)(s->cdw11 >> 16);
		if (cqid == 0 || cqid > ncq)
			return ST(COMMAND_SPECIFIC, COMPLETION_QUEUE_INVALID) | DNR;
		return ctrl->tops->sq_create(ctrl->transport, qid, s->prp1, qsize, cqid,
					     (uint8_t)NVME_SQ_QPRIO(s->cdw11));
	case NVME_OPC_DELETE_IO_CQ:
		return ctrl->tops->cq_delete(ctrl->transport, qid);
	default:
		return ctrl->tops->sq_delete(ctrl->transport, qid);
	}
}

static uint16_t dbbuf_config(struct leap_ctrl *ctrl, const struct nvme_sqe *s)
{
	if (!ctrl->tops->dbbuf_config)
		return ST(GENERIC, INVALID_OPCODE) | DNR;
	/* PRP1: shadow doorbells, PRP2: EventIdx; each one page aligned page. */
	if (!s->prp1 || !s->prp2 || ((s->prp1 | s->prp2) & (NVME_PAGE_SIZE - 1)))
		return ST(GENERIC, INVALID_FIELD) | DNR;
	return ctrl->tops->dbbuf_config(ctrl->transport, s->prp1, s->prp2);
}

void leap_ctrl_admin(struct leap_ctrl *ctrl, struct leap_req *req)
{
	const struct nvme_sqe *s = &req->sqe;
	uint16_t st;

	/* No fused admin commands; SGLs only where the transport offers them. */
	if (leap_unlikely(ctrl_psdt_invalid(ctrl, s->flags))) {
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
		/* Best effort, as the spec allows: dw0 bit 0 = 1, the command was not aborted. */
		req->cdw0 = 1;
		st = 0;
		break;
	case NVME_OPC_ASYNC_EVENT_REQUEST:
		if (ctrl_aer_hold(ctrl, req))
			return; /* completes when an event occurs, or on reset/teardown */
		st = ST(COMMAND_SPECIFIC, ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED) | DNR;
		break;
	case NVME_OPC_KEEP_ALIVE:
		st = 0;
		break;
	case NVME_OPC_DOORBELL_BUFFER_CONFIG:
		st = dbbuf_config(ctrl, s);
		break;
	default:
		st = ST(GENERIC, INVALID_OPCODE) | DNR;
		break;
	}
	done(ctrl, req, st);
}
