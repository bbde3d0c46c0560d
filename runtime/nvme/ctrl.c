// SPDX-License-Identifier: BSD-3-Clause
/*
 * Controller lifecycle, namespaces and the shared completion path. The
 * registry is changed by the control thread under a mutex; everything a
 * command touches belongs to the controller's reactor (see ctrl.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

#include "leapio/log.h"
#include "leapio/nvmf_spec.h"
#include "ctrl_internal.h"
#include "core/reactor.h"

#define BOUNCE_BYTES ((size_t)LEAP_CTRL_BOUNCE_SLOTS * LEAP_CTRL_MAX_XFER)

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct leap_ctrl *reg_head;
static uint16_t next_cntlid = 1;

uint64_t leap_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* FNV-1a: stable, distinct identifiers per (controller, namespace). */
static uint64_t fnv1a(const char *s, uint64_t salt)
{
	uint64_t h = 0xcbf29ce484222325ull ^ salt;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 0x100000001b3ull;
	return h;
}

static void features_default(struct leap_ctrl *c)
{
	c->nr_sq = 0;
	c->nr_cq = 0;
	c->arbitration = 0;
	c->aec = 0;
	c->kato = 0;
	c->temp_thresh = 343; /* 70 C, as WCTEMP */
	c->vwc = true;
}

void leap_ctrl_default_serial(char *buf, size_t len, const char *name)
{
	uint32_t h = 2166136261u; /* FNV-1a, 32 bits: "LEAP" + 8 hex digits fit SN's 20 bytes */

	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	snprintf(buf, len, "LEAP%08X", h);
}

int leap_ctrl_create(const struct leap_ctrl_opts *opts, struct leap_ctrl **out)
{
	struct leap_ctrl *c;

	*out = NULL;
	if (!opts->name || !opts->name[0] || strlen(opts->name) >= sizeof(c->name))
		return -EINVAL;
	if (opts->max_io_queues > LEAP_SHM_MAX_QUEUES || opts->max_qsize > LEAP_CTRL_MAX_QSIZE ||
	    (opts->max_qsize && opts->max_qsize < 2))
		return -EINVAL;
	if (opts->access && (opts->access->nuids > LEAP_CTRL_MAX_OWNERS ||
			     opts->access->ngids > LEAP_CTRL_MAX_OWNERS))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	/* Page aligned for O_DIRECT backends; NORESERVE: untouched slots cost nothing. */
	c->bounce = mmap(NULL, BOUNCE_BYTES, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c->bounce == MAP_FAILED) {
		free(c);
		return -ENOMEM;
	}
	c->bounce_free = (1u << LEAP_CTRL_BOUNCE_SLOTS) - 1;
	snprintf(c->name, sizeof(c->name), "%s", opts->name);
	if (opts->nqn)
		snprintf(c->nqn, sizeof(c->nqn), "%s", opts->nqn);
	else
		snprintf(c->nqn, sizeof(c->nqn), LEAP_CTRL_NQN_PREFIX "%s", opts->name);
	if (opts->serial)
		snprintf(c->serial, sizeof(c->serial), "%s", opts->serial);
	else
		leap_ctrl_default_serial(c->serial, sizeof(c->serial), opts->name);
	c->max_io_queues = opts->max_io_queues ? opts->max_io_queues : LEAP_CTRL_DEFAULT_IO_QUEUES;
	c->max_qsize = opts->max_qsize ? opts->max_qsize : LEAP_CTRL_DEFAULT_QSIZE;
	if (opts->access)
		c->access = *opts->access;
	features_default(c);
	c->create_ns = leap_now_ns();

	pthread_mutex_lock(&reg_lock);
	for (struct leap_ctrl *o = reg_head; o; o = o->next) {
		if (strcmp(o->name, c->name) == 0) {
			pthread_mutex_unlock(&reg_lock);
			munmap(c->bounce, BOUNCE_BYTES);
			free(c);
			return -EEXIST;
		}
	}
	c->cntlid = next_cntlid++;
	if (next_cntlid >= 0xfff0)
		next_cntlid = 1;
	c->next = reg_head;
	reg_head = c;
	pthread_mutex_unlock(&reg_lock);
	*out = c;
	return 0;
}

int leap_ctrl_destroy(struct leap_ctrl *ctrl)
{
	struct leap_ctrl **pp;

	pthread_mutex_lock(&reg_lock);
	if (ctrl->refs) {
		pthread_mutex_unlock(&reg_lock);
		return -EBUSY;
	}
	for (pp = &reg_head; *pp && *pp != ctrl; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = ctrl->next;
	pthread_mutex_unlock(&reg_lock);
	leap_ctrl_channels_close(ctrl);
	for (uint32_t i = 0; i < LEAP_CTRL_MAX_NS; i++)
		if (ctrl->ns[i].nsid)
			leap_ctrl_ns_remove(ctrl, ctrl->ns[i].nsid);
	munmap(ctrl->bounce, BOUNCE_BYTES);
	free(ctrl);
	return 0;
}

struct leap_ctrl *leap_ctrl_find(const char *name)
{
	struct leap_ctrl *c;

	pthread_mutex_lock(&reg_lock);
	for (c = reg_head; c && strcmp(c->name, name); c = c->next)
		;
	pthread_mutex_unlock(&reg_lock);
	return c;
}

struct leap_ctrl *leap_ctrl_next(struct leap_ctrl *prev)
{
	struct leap_ctrl *c;

	pthread_mutex_lock(&reg_lock);
	c = prev ? prev->next : reg_head;
	pthread_mutex_unlock(&reg_lock);
	return c;
}

static int ns_check(struct leap_ctrl *ctrl, uint32_t *nsid, const struct leap_bdev *bdev,
		    uint64_t offset, uint64_t *size, uint32_t lba_size)
{
	if (lba_size != 512 && lba_size != 4096)
		return -EINVAL;
	if (lba_size < bdev->block_size || offset % lba_size || offset > bdev->size)
		return -EINVAL;
	if (*size == 0)
		*size = (bdev->size - offset) / lba_size * lba_size;
	if (*size == 0 || *size % lba_size || *size > bdev->size - offset)
		return -ERANGE;
	if (*nsid == 0) {
		for (*nsid = 1; *nsid <= LEAP_CTRL_MAX_NS && ctrl->ns[*nsid - 1].nsid; (*nsid)++)
			;
		if (*nsid > LEAP_CTRL_MAX_NS)
			return -ENOSPC;
	}
	if (*nsid > LEAP_CTRL_MAX_NS)
		return -EINVAL;
	return ctrl->ns[*nsid - 1].nsid ? -EEXIST : 0;
}

int leap_ctrl_ns_add(struct leap_ctrl *ctrl, uint32_t nsid, const char *bdev_name, uint64_t offset,
		     uint64_t size, uint32_t lba_size)
{
	struct leap_bdev *bdev = leap_bdev_get(bdev_name);
	struct leap_ns *ns;
	uint64_t h;
	int err;

	if (!bdev)
		return -ENOENT;
	err = ns_check(ctrl, &nsid, bdev, offset, &size, lba_size);
	if (err) {
		leap_bdev_put(bdev);
		return err;
	}
	ns = &ctrl->ns[nsid - 1];
	memset(ns, 0, sizeof(*ns));
	ns->bdev = bdev;
	ns->offset = offset;
	ns->lba_shift = lba_size == 512 ? 9 : 12;
	ns->nlb = size >> ns->lba_shift;
	ns->chan.bdev = bdev;
	for (uint32_t r = 0; r < LEAP_SHM_MAX_REGIONS; r++)
		ns->chan.buf_index[r] = -1;
	/* Here, not at the first command: a backend's open may block (connect). */
	err = ctrl_chan_open(ctrl, &ns->chan);
	if (err) {
		memset(ns, 0, sizeof(*ns));
		leap_bdev_put(bdev);
		return err;
	}
	/* Unique per namespace and stable across restarts of the same config. */
	h = fnv1a(ctrl->name, nsid);
	memcpy(ns->nguid, &h, 8);
	h = fnv1a(bdev->name, nsid ^ 0x5a5a);
	memcpy(ns->nguid + 8, &h, 8);
	memcpy(ns->uuid, ns->nguid, 16);
	ns->uuid[6] = (uint8_t)((ns->uuid[6] & 0x0f) | 0x40); /* RFC 4122 version 4 */
	ns->uuid[8] = (uint8_t)((ns->uuid[8] & 0x3f) | 0x80);
	h = fnv1a(ctrl->nqn, nsid);
	memcpy(ns->eui64, &h, 8);
	/* Publish last: a reader that sees nsid sees a complete namespace. */
	__atomic_store_n(&ns->nsid, nsid, __ATOMIC_RELEASE);
	/* An attached host hears of it (Namespace Attribute Changed; log page 04h lists it). */
	if (ctrl->tops) {
		ctrl->changed_ns |= 1u << (nsid - 1);
		leap_ctrl_aen(ctrl, 2, 0, NVME_LOG_CHANGED_NS_LIST);
	}
	return (int)nsid;
}

int leap_ctrl_ns_remove(struct leap_ctrl *ctrl, uint32_t nsid)
{
	struct leap_ns *ns = leap_ctrl_ns(ctrl, nsid);

	if (!ns)
		return -ENOENT;
	if (ns->chan.ch && (ns->chan.ch->inflight || ns->chan.pending_head))
		return -EBUSY;
	__atomic_store_n(&ns->nsid, 0, __ATOMIC_RELEASE);
	leap_bdev_channel_close(ns->chan.ch);
	ns->chan.ch = NULL;
	ns->chan.bdev = NULL;
	leap_bdev_put(ns->bdev);
	ns->bdev = NULL;
	return 0;
}

/* Every channel slot of the controller: namespaces' own, then redirect targets. */
static struct leap_chan *chan_at(struct leap_ctrl *ctrl, uint32_t i)
{
	if (i < LEAP_CTRL_MAX_NS)
		return ctrl->ns[i].nsid ? &ctrl->ns[i].chan : NULL;
	return ctrl->rchan[i - LEAP_CTRL_MAX_NS].bdev ? &ctrl->rchan[i - LEAP_CTRL_MAX_NS] : NULL;
}

#define CHAN_SLOTS (LEAP_CTRL_MAX_NS + LEAP_CTRL_MAX_RCHAN)

void leap_ctrl_region_added(struct leap_ctrl *ctrl, uint32_t region)
{
	const struct leap_mem_region *r = &ctrl->mem.r[region];

	for (uint32_t i = 0; i < CHAN_SLOTS; i++) {
		struct leap_chan *c = chan_at(ctrl, i);
		int idx;

		if (!c || !c->ch)
			continue;
		idx = leap_bdev_region_register(c->ch, r->local, r->len);
		c->buf_index[region] = idx >= 0 ? idx : -1;
	}
}

void leap_ctrl_channels_close(struct leap_ctrl *ctrl)
{
	for (uint32_t i = 0; i < CHAN_SLOTS; i++) {
		struct leap_chan *c = chan_at(ctrl, i);

		if (!c)
			continue;
		if (!c->ref) {
			/* A namespace's: open until the namespace goes; the tenant's regions go now. */
			for (uint32_t r = 0; r < LEAP_SHM_MAX_REGIONS; r++) {
				if (c->ch)
					leap_bdev_region_unregister(c->ch, c->buf_index[r]);
				c->buf_index[r] = -1;
			}
			continue;
		}
		/* A redirect target: forget it with its reference. */
		leap_bdev_channel_close(c->ch);
		c->ch = NULL;
		c->failed = false;
		for (uint32_t r = 0; r < LEAP_SHM_MAX_REGIONS; r++)
			c->buf_index[r] = -1;
		leap_bdev_put(c->bdev);
		c->bdev = NULL;
		c->ref = false;
	}
}

uint32_t leap_ctrl_inflight(const struct leap_ctrl *ctrl)
{
	uint32_t n = ctrl->deferred + ctrl->arb_queued;

	for (uint32_t i = 0; i < CHAN_SLOTS; i++) {
		const struct leap_chan *c = chan_at((struct leap_ctrl *)ctrl, i);

		if (!c)
			continue;
		if (c->ch)
			n += c->ch->inflight;
		for (struct leap_req *r = c->pending_head; r; r = r->next_free)
			n++;
	}
	for (struct leap_req *r = ctrl->bounce_wait_head; r; r = r->next_free)
		n++;
	return n;
}

static bool has_lba(const struct leap_req *req)
{
	return req->qp && req->qp->sqid != 0 && nvme_opc_has_lba(req->sqe.opc);
}

void leap_ctrl_log_error(struct leap_ctrl *ctrl, const struct leap_req *req)
{
	struct nvme_error_log_entry *e = &ctrl->errlog[ctrl->error_count % LEAP_CTRL_ERRLOG];

	memset(e, 0, sizeof(*e));
	e->error_count = ++ctrl->error_count;
	e->sqid = req->qp ? leap_req_sqid(req) : 0;
	e->cid = req->sqe.cid;
	/* CQE status field layout; the phase bit is not meaningful here. */
	e->status = nvme_cqe_status(req->status, 0);
	e->error_location = 0xffff; /* not reported */
	e->nsid = req->sqe.nsid;
	if (has_lba(req))
		e->lba = nvme_sqe_slba(&req->sqe);
}

static enum leap_stats_kind kind_of(const struct leap_req *req)
{
	switch (req->sqe.opc) {
	case NVME_OPC_READ:
	case NVME_OPC_COMPARE:
		return LEAP_STATS_READ;
	case NVME_OPC_WRITE:
		return LEAP_STATS_WRITE;
	case NVME_OPC_FLUSH:
		return LEAP_STATS_FLUSH;
	default:
		return LEAP_STATS_OTHER;
	}
}

void leap_ctrl_complete(struct leap_ctrl *ctrl, struct leap_req *req)
{
	bool admin = leap_req_sqid(req) == 0;

	if (!admin) {
		enum leap_stats_kind kind = kind_of(req);
		uint64_t bytes = 0, lat;

		/* Iteration clocks at both ends: latency to the reactor's iteration, no clock read. */
		req->done_ns = leap_reactor_now_ns();
		lat = req->done_ns - req->submit_ns;
		if (ctrl->hook_complete) {
			uint16_t st = ctrl->hook_complete(req, ctrl->hook_complete_arg);

			if (st == LEAP_HOOK_RET_SUCCESS)
				req->status = 0;
			else if (st != LEAP_HOOK_RET_CONTINUE && st != LEAP_HOOK_RET_DEFER)
				req->status = st;
		}
		/* Bytes moved between host and media; Compare moves none to the host. */
		if (req->ns && (req->sqe.opc == NVME_OPC_READ || req->sqe.opc == NVME_OPC_WRITE))
			bytes = (uint64_t)((req->sqe.cdw12 & NVME_RW_NLB_MASK) + 1)
				<< req->ns->lba_shift;
		leap_stats_record(&ctrl->stats, kind, bytes, req->status, lat);
		if (req->ns)
			leap_stats_record(&req->ns->stats, kind, bytes, req->status, lat);
		leap_stats_record(leap_req_qp_stats(req), kind, bytes, req->status, lat);
	}
	if (req->status & 0x7ff)
		leap_ctrl_log_error(ctrl, req);
	ctrl->tops->complete(ctrl->transport, req);
}

void leap_ctrl_submit(struct leap_ctrl *ctrl, struct leap_req *req, bool admin)
{
	req->status = 0;
	req->cdw0 = 0;
	req->ns = NULL;
	req->iovcnt = 0;
	req->bounce = 0;
	req->flags = 0;
	req->hook_data[0] = 0;
	req->hook_data[1] = 0;
	req->region = -1;
	req->cur_nlb = 0;
	req->rt_nlb = 0;
	req->chan = NULL;
	req->submit_ns = leap_reactor_now_ns();
	if (admin)
		leap_ctrl_admin(ctrl, req);
	else
		leap_ctrl_io(ctrl, req);
}

int leap_ctrl_map_data(struct leap_ctrl *ctrl, struct leap_req *req, uint64_t len,
		       struct iovec *iov, uint32_t max_iov, int32_t *region)
{
	const struct leap_transport_caps *caps = leap_ctrl_caps(ctrl);
	const struct nvme_sgl_desc *sgl1;

	switch ((req->sqe.flags >> NVME_SQE_PSDT_SHIFT) & 3) {
	case NVME_SQE_PSDT_PRP:
		if (leap_unlikely(!caps->prp))
			return -(int)(ST(GENERIC, INVALID_FIELD));
		return leap_prp_to_iov(&ctrl->mem, req->sqe.prp1, req->sqe.prp2, len, iov, max_iov,
				       region);
	case 1: /* SGL, MPTR a contiguous buffer */
	case 2: /* SGL, MPTR an SGL (no metadata here: it is never read) */
		break;
	default:
		return -(int)(ST(GENERIC, INVALID_FIELD));
	}
	/* SGL1 sits where PRP1/PRP2 are (SQE bytes 24..39). */
	sgl1 = (const struct nvme_sgl_desc *)&req->sqe.prp1;
	switch (sgl1->type >> 4) {
	case NVME_SGL_TYPE_DATA_BLOCK:
		if ((sgl1->type & 0xf) != NVME_SGL_SUBTYPE_ADDRESS)
			break; /* an offset: in-capsule data */
		if (caps->sgl_memory)
			return leap_sgl_to_iov(&ctrl->mem, sgl1, len, iov, max_iov, region);
		return -(int)(ST(GENERIC, SGL_DESCRIPTOR_TYPE_INVALID));
	case NVME_SGL_TYPE_SEGMENT:
	case NVME_SGL_TYPE_LAST_SEGMENT:
		if (caps->sgl_memory)
			return leap_sgl_to_iov(&ctrl->mem, sgl1, len, iov, max_iov, region);
		return -(int)(ST(GENERIC, SGL_DESCRIPTOR_TYPE_INVALID));
	default:
		break;
	}
	/* Offsets (in-capsule data) and transport data blocks: the transport holds the data. */
	if (ctrl->tops && ctrl->tops->map_data)
		return ctrl->tops->map_data(ctrl->transport, req, len, iov, max_iov, region);
	return -(int)(ST(GENERIC, SGL_DESCRIPTOR_TYPE_INVALID));
}

/* ---- asynchronous events ------------------------------------------------- */

#define AEN_DW0(type, info, lid) ((uint32_t)(type) | (uint32_t)(info) << 8 | (uint32_t)(lid) << 16)
#define AEN_TYPE(dw0)		 ((dw0)&0x7)

/* Post a pending event on a held AER when both exist; the event type stays masked until cleared. */
static void aen_deliver(struct leap_ctrl *ctrl)
{
	while (ctrl->aer_cnt && ctrl->aen_cnt) {
		struct leap_req *req = ctrl->aer[0];
		uint32_t dw0 = ctrl->aen[0];

		memmove(ctrl->aer, ctrl->aer + 1, --ctrl->aer_cnt * sizeof(ctrl->aer[0]));
		memmove(ctrl->aen, ctrl->aen + 1, --ctrl->aen_cnt * sizeof(ctrl->aen[0]));
		req->cdw0 = dw0;
		req->status = 0;
		ctrl->tops->complete(ctrl->transport, req);
	}
}

int leap_ctrl_aen(struct leap_ctrl *ctrl, uint8_t type, uint8_t info, uint8_t lid)
{
	/* SMART info 0/1/2 (reliability, temperature, spare) report through Critical Warning bits 2/1/0. */
	static const uint8_t smart_cw_bit[3] = { 2, 1, 0 };

	type &= 7;
	/* Notices are opt-in through Async Event Config bit 8 + info (Base 2.0, 5.27.1.7). */
	if (type == 2 && (info > 23 || !(ctrl->aec & (1u << (8 + info)))))
		return 0;
	/* SMART / health events: AEC bits 7:0 mirror the Critical Warning bits. */
	if (type == 1 && info < 3 && !(ctrl->aec & (1u << smart_cw_bit[info])))
		return 0;
	/* One event per type until the host clears it by reading the log page. */
	if (ctrl->aen_masked & (1u << type))
		return 0;
	if (ctrl->aen_cnt == LEAP_CTRL_AEN_QUEUE)
		return -ENOSPC;
	ctrl->aen_masked |= (uint8_t)(1u << type);
	ctrl->aen_lid[type] = lid;
	ctrl->aen[ctrl->aen_cnt++] = AEN_DW0(type, info, lid);
	if (ctrl->tops)
		aen_deliver(ctrl);
	return 0;
}

void ctrl_aen_log_read(struct leap_ctrl *ctrl, uint8_t lid)
{
	for (uint32_t t = 0; t < 8; t++) {
		bool queued = false;

		for (uint32_t i = 0; i < ctrl->aen_cnt; i++)
			if (AEN_TYPE(ctrl->aen[i]) == t)
				queued = true;
		/* An event the host has not been told about yet is not cleared by reading its page. */
		if (!queued && ctrl->aen_lid[t] == lid)
			ctrl->aen_masked &= (uint8_t) ~(1u << t);
	}
}

bool ctrl_aer_hold(struct leap_ctrl *ctrl, struct leap_req *req)
{
	if (ctrl->aer_cnt > LEAP_CTRL_AERL)
		return false;
	ctrl->aer[ctrl->aer_cnt++] = req;
	aen_deliver(ctrl);
	return true;
}

void leap_ctrl_abort_aers(struct leap_ctrl *ctrl)
{
	while (ctrl->aer_cnt) {
		struct leap_req *req = ctrl->aer[--ctrl->aer_cnt];

		req->status = NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_ABORTED_SQ_DELETION);
		ctrl->tops->complete(ctrl->transport, req);
	}
}

void leap_ctrl_reset(struct leap_ctrl *ctrl)
{
	if (ctrl->tops)
		leap_ctrl_abort_aers(ctrl);
	ctrl->aer_cnt = 0;
	ctrl->aen_cnt = 0;
	ctrl->aen_masked = 0;
	features_default(ctrl);
}

/* ---- statistics and queue-pair helpers -------------------------------------- */

int leap_ctrl_stats_snapshot(struct leap_ctrl *ctrl, uint32_t nsid, struct leap_stats *out)
{
	const struct leap_stats *src;

	memset(out, 0, sizeof(*out));
	if (nsid == 0) {
		src = &ctrl->stats;
	} else {
		/* Acquire pairs with ns_add's release: a published namespace is complete. */
		if (nsid > LEAP_CTRL_MAX_NS ||
		    !__atomic_load_n(&ctrl->ns[nsid - 1].nsid, __ATOMIC_ACQUIRE))
			return -ENOENT;
		src = &ctrl->ns[nsid - 1].stats;
	}
	leap_stats_accumulate(out, src);
	return 0;
}

int leap_qpair_init(struct leap_qpair *qp, struct leap_ctrl *ctrl, uint16_t sqid, uint16_t cqid,
		    uint32_t size, uint32_t nreqs)
{
	memset(qp, 0, sizeof(*qp));
	qp->ctrl = ctrl;
	qp->sqid = sqid;
	qp->cqid = cqid;
	qp->size = size;
	if (!nreqs)
		return 0;
	qp->reqs = calloc(nreqs, sizeof(*qp->reqs));
	if (!qp->reqs)
		return -ENOMEM;
	qp->nreqs = nreqs;
	for (uint32_t i = nreqs; i-- > 0;) {
		qp->reqs[i].qp = qp;
		qp->reqs[i].slot = (uint16_t)i;
		qp->reqs[i].next_free = qp->free_reqs;
		qp->free_reqs = &qp->reqs[i];
	}
	return 0;
}

void leap_qpair_fini(struct leap_qpair *qp)
{
	if (!qp)
		return;
	free(qp->reqs);
	qp->reqs = NULL;
	qp->free_reqs = NULL;
	qp->nreqs = 0;
	qp->busy = 0;
}

int leap_ctrl_attach(const char *name, struct leap_ctrl **out)
{
	struct leap_ctrl *c;
	int err = 0;

	*out = NULL;
	pthread_mutex_lock(&reg_lock);
	for (c = reg_head; c && strcmp(c->name, name); c = c->next)
		;
	if (!c)
		err = -ENOENT;
	else if (c->refs)
		err = -EBUSY;
	else
		c->refs++;
	pthread_mutex_unlock(&reg_lock);
	if (!err)
		*out = c;
	return err;
}

void leap_ctrl_detach(struct leap_ctrl *ctrl)
{
	pthread_mutex_lock(&reg_lock);
	ctrl->refs--;
	pthread_mutex_unlock(&reg_lock);
}

/* ---- fabrics access control ------------------------------------------------ */

static bool nqn_is_valid(const char *nqn)
{
	size_t n = strnlen(nqn, LEAP_CTRL_NQN_LEN);

	if (n < 5 || n >= LEAP_CTRL_NQN_LEN || strncmp(nqn, "nqn.", 4) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (nqn[i] < 0x20 || nqn[i] > 0x7e)
			return false;
	return true;
}

/* Registry lock held. */
static int host_index(const struct leap_ctrl *ctrl, const char *hostnqn)
{
	for (uint32_t i = 0; i < ctrl->nhosts; i++)
		if (strcmp(ctrl->hosts[i], hostnqn) == 0)
			return (int)i;
	return -1;
}

/* Registry lock held. */
static bool host_allowed(const struct leap_ctrl *ctrl, const char *hostnqn)
{
	return ctrl->allow_any_host || host_index(ctrl, hostnqn) >= 0;
}

int leap_ctrl_host_add(struct leap_ctrl *ctrl, const char *hostnqn)
{
	int err = 0;

	if (!nqn_is_valid(hostnqn))
		return -EINVAL;
	pthread_mutex_lock(&reg_lock);
	if (host_index(ctrl, hostnqn) >= 0)
		err = -EEXIST;
	else if (ctrl->nhosts == LEAP_CTRL_MAX_HOSTS)
		err = -ENOSPC;
	else
		snprintf(ctrl->hosts[ctrl->nhosts++], LEAP_CTRL_NQN_LEN, "%s", hostnqn);
	pthread_mutex_unlock(&reg_lock);
	return err;
}

int leap_ctrl_host_remove(struct leap_ctrl *ctrl, const char *hostnqn)
{
	int i;

	pthread_mutex_lock(&reg_lock);
	i = host_index(ctrl, hostnqn);
	if (i >= 0) {
		/* Keep the order hosts were added in: config_save writes it back. */
		memmove(ctrl->hosts[i], ctrl->hosts[i + 1],
			(ctrl->nhosts - (uint32_t)i - 1) * sizeof(ctrl->hosts[0]));
		ctrl->nhosts--;
	}
	pthread_mutex_unlock(&reg_lock);
	return i >= 0 ? 0 : -ENOENT;
}

void leap_ctrl_set_allow_any_host(struct leap_ctrl *ctrl, bool allow)
{
	pthread_mutex_lock(&reg_lock);
	ctrl->allow_any_host = allow;
	pthread_mutex_unlock(&reg_lock);
}

bool leap_ctrl_host_allowed(struct leap_ctrl *ctrl, const char *hostnqn)
{
	bool ok;

	pthread_mutex_lock(&reg_lock);
	ok = host_allowed(ctrl, hostnqn);
	pthread_mutex_unlock(&reg_lock);
	return ok;
}

int leap_ctrl_attach_nqn(const char *subnqn, const char *hostnqn, struct leap_ctrl **out)
{
	struct leap_ctrl *c;
	int err = 0;

	*out = NULL;
	pthread_mutex_lock(&reg_lock);
	for (c = reg_head; c && strcmp(c->nqn, subnqn); c = c->next)
		;
	if (!c)
		err = -ENOENT;
	else if (!host_allowed(c, hostnqn))
		err = -EACCES;
	else if (c->refs)
		err = -EBUSY;
	else
		c->refs++;
	pthread_mutex_unlock(&reg_lock);
	if (!err)
		*out = c;
	return err;
}

uint32_t leap_ctrl_for_each_allowed(const char *hostnqn,
				    void (*fn)(const struct leap_ctrl *ctrl, void *arg), void *arg)
{
	uint32_t n = 0;

	pthread_mutex_lock(&reg_lock);
	for (struct leap_ctrl *c = reg_head; c; c = c->next)
		if (host_allowed(c, hostnqn)) {
			fn(c, arg);
			n++;
		}
	pthread_mutex_unlock(&reg_lock);
	return n;
}
