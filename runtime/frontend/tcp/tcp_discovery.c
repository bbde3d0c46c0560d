// SPDX-License-Identifier: BSD-3-Clause
/*
 * The discovery controller (nqn.2014-08.org.nvmexpress.discovery), served
 * on the listener thread. Discovery is a handful of admin commands per
 * `nvme discover`; answering them where the connection was accepted keeps
 * them off the reactors, needs no controller of the model (whose
 * controllers are NVM subsystems with namespaces and backends), and the
 * listener's poll loop already bounds every peer with timeouts.
 *
 * What it answers (NVMe-oF 1.1, 5): Property Get/Set (CAP, VS, CC, CSTS:
 * enable and shutdown complete at once), Identify Controller (CNTRLTYPE 2),
 * Get Log Page 70h (one entry per subsystem this host NQN may connect to,
 * at this listener's address and port), Keep Alive, Set/Get Features
 * (Keep Alive Timer, Async Event Configuration), and it holds up to four
 * Async Event Requests (it raises no events). Anything else is Invalid
 * Command Opcode.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "frontend/tcp/tcp_internal.h"

#define DISC_AERL 4

struct tcp_disc {
	uint16_t cntlid;
	uint32_t cc, csts;
	uint32_t aec;
	uint32_t aers; /* held, never completed */
	uint8_t adrfam;
	char traddr[INET6_ADDRSTRLEN];
	char trsvcid[NVMF_TRSVCID_MAX_LEN];
	/* The log page being built (Get Log Page, cold path). */
	uint8_t *log;
	size_t log_len, log_cap;
	uint32_t numrec;
};

int tcp_disc_init(struct tcp_queue *q)
{
	struct tcp_disc *d = calloc(1, sizeof(*d));
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (!d)
		return -ENOMEM;
	d->cntlid = q->l->disc_cntlid;
	/* The address the host reached us at: right even on a wildcard listener. */
	if (getsockname(q->c.fd, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, d->traddr,
			  sizeof(d->traddr));
		d->adrfam = NVMF_ADRFAM_IPV6;
	} else if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, d->traddr,
			  sizeof(d->traddr));
		d->adrfam = NVMF_ADRFAM_IPV4;
	} else {
		snprintf(d->traddr, sizeof(d->traddr), "%s", q->l->o.addr);
		d->adrfam = q->l->family == AF_INET6 ? NVMF_ADRFAM_IPV6 : NVMF_ADRFAM_IPV4;
	}
	snprintf(d->trsvcid, sizeof(d->trsvcid), "%u", q->l->o.port);
	q->disc = d;
	return 0;
}

void tcp_disc_fini(struct tcp_queue *q)
{
	if (!q->disc)
		return;
	free(q->disc->log);
	free(q->disc);
	q->disc = NULL;
}

/* Space-padded, as Identify strings are. */
static void pad(char *dst, size_t n, const char *src)
{
	size_t l = strlen(src);

	memset(dst, ' ', n);
	memcpy(dst, src, l < n ? l : n);
}

static uint64_t disc_cap(void)
{
	/* MQES 0's based, contiguous queues, TO 500 ms, NVM command set. */
	return (uint64_t)(TCP_ADMIN_DEPTH - 1) | NVME_CAP_CQR | (1ull << NVME_CAP_TO_SHIFT) |
	       NVME_CAP_CSS_NVM;
}

static void identify(const struct tcp_disc *d, struct nvme_id_ctrl *id)
{
	memset(id, 0, sizeof(*id));
	pad(id->sn, sizeof(id->sn), "leapio-discovery");
	pad(id->mn, sizeof(id->mn), "leapio discovery controller");
	pad(id->fr, sizeof(id->fr), "0.1");
	id->mdts = LEAP_CTRL_MDTS;
	id->cntlid = d->cntlid;
	id->ver = NVME_VERSION(1, 4, 0);
	id->cntrltype = 2; /* discovery controller */
	id->aerl = DISC_AERL - 1;
	id->lpa = NVME_LPA_EXTENDED_DATA; /* Get Log Page offsets */
	id->kas = 10;			  /* 100 ms units */
	id->sqes = (NVME_SQES_LOG2 << 4) | NVME_SQES_LOG2;
	id->cqes = (NVME_CQES_LOG2 << 4) | NVME_CQES_LOG2;
	id->maxcmd = TCP_ADMIN_DEPTH;
	id->sgls = (1u << 0) | (1u << 18) | (1u << 20);
	id->ioccsz = TCP_IOCCSZ;
	id->iorcsz = TCP_IORCSZ;
	id->msdbd = 1;
	snprintf(id->subnqn, sizeof(id->subnqn), "%s", NVME_DISCOVERY_NQN);
}

struct log_build {
	struct tcp_queue *q;
	bool oom;
};

/* Registry lock held (leap_ctrl_for_each_allowed): copy, allocate, nothing else. */
static void add_entry(const struct leap_ctrl *ctrl, void *arg)
{
	struct log_build *b = arg;
	struct tcp_disc *d = b->q->disc;
	struct nvmf_disc_log_entry *e;

	if (b->oom || d->numrec >= TCP_DISC_MAX_RECS)
		return;
	if (d->log_len + sizeof(*e) > d->log_cap) {
		size_t cap = d->log_cap * 2;
		uint8_t *p = realloc(d->log, cap);

		if (!p) {
			b->oom = true;
			return;
		}
		d->log = p;
		d->log_cap = cap;
	}
	e = (struct nvmf_disc_log_entry *)(d->log + d->log_len);
	memset(e, 0, sizeof(*e));
	e->trtype = NVMF_TRTYPE_TCP;
	e->adrfam = d->adrfam;
	e->subtype = NVMF_SUBTYPE_NVME;
	/* Secure channel "not specified" (no TLS here), as Linux nvmet says it; SQ flow control may be off. */
	e->treq = NVMF_TREQ_SECURE_NOT_SPECIFIED | NVMF_TREQ_DISABLE_SQFLOW;
	e->portid = b->q->l->o.port;
	e->cntlid = ctrl->cntlid; /* static controller model */
	e->asqsz = TCP_ADMIN_DEPTH;
	snprintf(e->trsvcid, sizeof(e->trsvcid), "%s", d->trsvcid);
	snprintf(e->subnqn, sizeof(e->subnqn), "%s", ctrl->nqn);
	snprintf(e->traddr, sizeof(e->traddr), "%s", d->traddr);
	e->tsas.tcp.sectype = NVMF_TCP_SECTYPE_NONE;
	d->log_len += sizeof(*e);
	d->numrec++;
}

/* The whole page for this host, header first. 0 or -ENOMEM. */
static int build_log(struct tcp_queue *q)
{
	struct tcp_disc *d = q->disc;
	struct log_build b = { .q = q };
	struct nvmf_disc_log_hdr *h;
	uint64_t gen = 0xcbf29ce484222325ull;

	if (!d->log) {
		d->log_cap = 16 * sizeof(struct nvmf_disc_log_entry);
		d->log = malloc(d->log_cap);
		if (!d->log)
			return -ENOMEM;
	}
	d->log_len = sizeof(*h);
	d->numrec = 0;
	leap_ctrl_for_each_allowed(q->cdata.hostnqn, add_entry, &b);
	if (b.oom)
		return -ENOMEM;
	/* The generation counter follows the content, so a host reading in pieces sees changes. */
	for (size_t i = sizeof(*h); i < d->log_len; i++)
		gen = (gen ^ d->log[i]) * 0x100000001b3ull;
	h = (struct nvmf_disc_log_hdr *)d->log;
	memset(h, 0, sizeof(*h));
	h->genctr = gen;
	h->numrec = d->numrec;
	h->recfmt = 0;
	return 0;
}

/* Check the command's data descriptor for a `len`-byte controller-to-host transfer. */
static uint16_t c2h_check(const struct leap_req *req, uint64_t len)
{
	const struct nvme_sgl_desc *sgl = tcp_sgl(&req->sqe);

	if (((req->sqe.flags >> NVME_SQE_PSDT_SHIFT) & 3) != NVMF_SQE_PSDT_SGL ||
	    sgl->type != NVMF_TCP_SGL_TRANSPORT)
		return TCP_ST(GENERIC, SGL_DESCRIPTOR_TYPE_INVALID) | NVME_CQE_DNR;
	if (len > sgl->length || len > TCP_SLOT_BUF || len == 0)
		return TCP_ST(GENERIC, DATA_SGL_LENGTH_INVALID) | NVME_CQE_DNR;
	return 0;
}

static uint16_t get_log_page(struct tcp_queue *q, struct leap_req *req)
{
	struct tcp_disc *d = q->disc;
	struct tcp_slot *s = tcp_slot_of(q, req);
	uint64_t len = (uint64_t)NVME_LOG_NUMD(req->sqe.cdw10, req->sqe.cdw11) * 4;
	uint64_t off = (uint64_t)req->sqe.cdw12 | ((uint64_t)req->sqe.cdw13 << 32);
	uint16_t st;

	if ((req->sqe.cdw10 & 0xff) != NVMF_LOG_DISCOVERY)
		return TCP_ST(COMMAND_SPECIFIC, INVALID_LOG_PAGE) | NVME_CQE_DNR;
	st = c2h_check(req, len);
	if (st)
		return st;
	if (build_log(q))
		return TCP_ST(GENERIC, INTERNAL_DEVICE_ERROR);
	if ((off & 3) || off > d->log_len)
		return TCP_ST(GENERIC, INVALID_FIELD) | NVME_CQE_DNR;
	memset(s->buf, 0, len);
	memcpy(s->buf, d->log + off, LEAP_MIN(len, d->log_len - off));
	s->c2h_len = (uint32_t)len;
	return 0;
}

static uint16_t set_features(struct tcp_queue *q, struct leap_req *req)
{
	if (req->sqe.cdw10 >> 31) /* SV: nothing is saveable */
		return TCP_ST(COMMAND_SPECIFIC, FEATURE_ID_NOT_SAVEABLE) | NVME_CQE_DNR;
	switch (req->sqe.cdw10 & 0xff) {
	case NVME_FEAT_KEEP_ALIVE_TIMER:
		q->kato_ms = req->sqe.cdw11;
		return 0;
	case NVME_FEAT_ASYNC_EVENT_CONFIG:
		q->disc->aec = req->sqe.cdw11;
		return 0;
	default:
		return TCP_ST(GENERIC, INVALID_FIELD) | NVME_CQE_DNR;
	}
}

static uint16_t get_features(struct tcp_queue *q, struct leap_req *req, uint32_t *dw0)
{
	switch (req->sqe.cdw10 & 0xff) {
	case NVME_FEAT_KEEP_ALIVE_TIMER:
		*dw0 = q->kato_ms;
		return 0;
	case NVME_FEAT_ASYNC_EVENT_CONFIG:
		*dw0 = q->disc->aec;
		return 0;
	default:
		return TCP_ST(GENERIC, INVALID_FIELD) | NVME_CQE_DNR;
	}
}

/* Property Get/Set on the discovery controller's own registers. */
static uint16_t property(struct tcp_queue *q, struct leap_req *req, uint64_t *val)
{
	const struct nvmf_property_set_cmd *p = (const void *)&req->sqe;
	struct tcp_disc *d = q->disc;
	uint32_t size = (p->attrib & 7) == NVMF_PROP_SIZE_8 ? 8 : 4;

	if ((p->attrib & 7) > NVMF_PROP_SIZE_8)
		return TCP_ST(GENERIC, INVALID_FIELD) | NVME_CQE_DNR;
	if (p->fctype == NVMF_FCTYPE_PROPERTY_SET) {
		if (p->ofst != NVME_REG_CC || size != 4)
			return TCP_ST(GENERIC, INVALID_FIELD) | NVME_CQE_DNR;
		d->cc = (uint32_t)p->value;
		/* Nothing to bring up or drain: enable and shutdown complete at once. */
		d->csts = (d->cc & NVME_CC_EN) ? NVME_CSTS_RDY : 0;
		if (d->cc & NVME_CC_SHN_MASK)
			d->csts |= NVME_CSTS_SHST_COMPLETE;
		return 0;
	}
	switch (p->ofst) {
	case NVME_REG_CAP:
		*val = disc_cap();
		return size == 8 ? 0 : TCP_ST(GENERIC, INVALID_FIELD) | NVME_CQE_DNR;
	case NVME_REG_VS:
		*val = NVME_VERSION(1, 4, 0);
		break;
	case NVME_REG_CC:
		*val = d->cc;
		break;
	case NVME_REG_CSTS:
		*val = d->csts;
		break;
	default:
		return TCP_ST(GENERIC, INVALID_FIELD) | NVME_CQE_DNR;
	}
	return size == 4 ? 0 : TCP_ST(GENERIC, INVALID_FIELD) | NVME_CQE_DNR;
}

static int disc_capsule(struct tcp_queue *q, const struct nvme_tcp_cmd_pdu *pdu, const uint8_t *icd,
			uint32_t icd_len, bool ddgst_bad)
{
	struct tcp_disc *d = q->disc;
	struct leap_req *req = tcp_queue_slot_get(q, pdu);
	const struct nvmf_capsule_cmd *fc;
	struct tcp_slot *s;
	uint64_t val = 0;
	uint32_t dw0 = 0;
	uint16_t st;

	if (!req)
		return -EPROTO;
	s = tcp_slot_of(q, req);
	fc = (const void *)&req->sqe;
	if (ddgst_bad) {
		st = TCP_ST(GENERIC, TRANSIENT_TRANSPORT_ERROR);
	} else if (req->sqe.opc == NVME_OPC_FABRIC) {
		switch (fc->fctype) {
		case NVMF_FCTYPE_PROPERTY_GET:
		case NVMF_FCTYPE_PROPERTY_SET:
			st = property(q, req, &val);
			break;
		case NVMF_FCTYPE_DISCONNECT:
			st = 0;
			q->c.closing = true;
			snprintf(q->c.why, sizeof(q->c.why), "discovery: Disconnect");
			break;
		case NVMF_FCTYPE_CONNECT:
			st = TCP_ST(GENERIC, COMMAND_SEQUENCE_ERROR) | NVME_CQE_DNR;
			break;
		default:
			st = TCP_ST(GENERIC, INVALID_OPCODE) | NVME_CQE_DNR;
			break;
		}
	} else if (!(d->csts & NVME_CSTS_RDY)) {
		st = TCP_ST(GENERIC, COMMAND_SEQUENCE_ERROR);
	} else {
		switch (req->sqe.opc) {
		case NVME_OPC_IDENTIFY:
			if ((req->sqe.cdw10 & 0xff) != NVME_CNS_CTRL) {
				st = TCP_ST(GENERIC, INVALID_FIELD) | NVME_CQE_DNR;
				break;
			}
			st = c2h_check(req, NVME_IDENTIFY_SIZE);
			if (!st) {
				identify(d, (struct nvme_id_ctrl *)s->buf);
				s->c2h_len = NVME_IDENTIFY_SIZE;
			}
			break;
		case NVME_OPC_GET_LOG_PAGE:
			st = get_log_page(q, req);
			break;
		case NVME_OPC_SET_FEATURES:
			st = set_features(q, req);
			break;
		case NVME_OPC_GET_FEATURES:
			st = get_features(q, req, &dw0);
			break;
		case NVME_OPC_KEEP_ALIVE:
			st = 0;
			break;
		case NVME_OPC_ASYNC_EVENT_REQUEST:
			if (d->aers < DISC_AERL) {
				d->aers++; /* held until the connection goes */
				return 0;
			}
			st = TCP_ST(COMMAND_SPECIFIC, ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED) |
			     NVME_CQE_DNR;
			break;
		default:
			st = TCP_ST(GENERIC, INVALID_OPCODE) | NVME_CQE_DNR;
			break;
		}
	}
	if (!st && s->c2h_len)
		return tcp_queue_c2h(q, req, 0, dw0) ? -ENOSPC : 0;
	if (val)
		dw0 = (uint32_t)val;
	return tcp_queue_respond(q, req, st, dw0, (uint32_t)(val >> 32)) ? -ENOSPC : 0;
}

static uint8_t *disc_h2c(struct tcp_queue *q, const struct nvme_tcp_h2c_data_pdu *h)
{
	tcp_conn_fatal(&q->c, NVME_TCP_FES_INVALID_HEADER_FIELD,
		       offsetof(struct nvme_tcp_h2c_data_pdu, ttag), h, sizeof(*h),
		       "discovery: H2CData with no R2T outstanding");
	return NULL;
}

static int disc_h2c_done(struct tcp_queue *q, bool ddgst_bad)
{
	return -EPROTO; /* unreachable: disc_h2c never accepts data */
}

static int disc_icreq(struct tcp_queue *q, const struct nvme_tcp_icreq *req)
{
	return tcp_conn_fatal(&q->c, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, req, sizeof(*req),
			      "second ICReq");
}

const struct tcp_conn_ops tcp_disc_ops = {
	.icreq = disc_icreq,
	.capsule = disc_capsule,
	.h2c = disc_h2c,
	.h2c_done = disc_h2c_done,
};
