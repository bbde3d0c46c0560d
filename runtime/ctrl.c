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
#include "ctrl.h"
#include "reactor.h"

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

int leap_ctrl_create(const struct leap_ctrl_opts *opts, struct leap_ctrl **out)
{
	struct leap_ctrl *c;

	*out = NULL;
	if (!opts->name || !opts->name[0] || strlen(opts->name) >= sizeof(c->name))
		return -EINVAL;
	if (opts->max_io_queues > LEAP_SHM_MAX_QUEUES || opts->max_qsize > 4096 ||
	    (opts->max_qsize && opts->max_qsize < 2))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	/* Aligned for O_DIRECT backends. */
	c->bounce = mmap(NULL, LEAP_CTRL_MAX_XFER, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c->bounce == MAP_FAILED) {
		free(c);
		return -ENOMEM;
	}
	snprintf(c->name, sizeof(c->name), "%s", opts->name);
	if (opts->nqn)
		snprintf(c->nqn, sizeof(c->nqn), "%s", opts->nqn);
	else
		snprintf(c->nqn, sizeof(c->nqn), "nqn.2026-11.io.leapio:%s", opts->name);
	if (opts->serial)
		snprintf(c->serial, sizeof(c->serial), "%s", opts->serial);
	else
		snprintf(c->serial, sizeof(c->serial), "LEAP%016llx",
			 (unsigned long long)fnv1a(opts->name, 0));
	c->max_io_queues = opts->max_io_queues ? opts->max_io_queues : 16;
	c->max_qsize = opts->max_qsize ? opts->max_qsize : 1024;
	c->vwc = true;
	c->create_ns = leap_now_ns();

	pthread_mutex_lock(&reg_lock);
	for (struct leap_ctrl *o = reg_head; o; o = o->next) {
		if (strcmp(o->name, c->name) == 0) {
			pthread_mutex_unlock(&reg_lock);
			munmap(c->bounce, LEAP_CTRL_MAX_XFER);
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
	for (uint32_t i = 0; i < LEAP_CTRL_MAX_NS; i++)
		if (ctrl->ns[i].nsid)
			leap_ctrl_ns_remove(ctrl, ctrl->ns[i].nsid);
	munmap(ctrl->bounce, LEAP_CTRL_MAX_XFER);
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
	for (uint32_t r = 0; r < LEAP_SHM_MAX_REGIONS; r++)
		ns->buf_index[r] = -1;
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
	return (int)nsid;
}

int leap_ctrl_ns_remove(struct leap_ctrl *ctrl, uint32_t nsid)
{
	struct leap_ns *ns = leap_ctrl_ns(ctrl, nsid);

	if (!ns)
		return -ENOENT;
	if (ns->ch && ns->ch->inflight)
		return -EBUSY;
	__atomic_store_n(&ns->nsid, 0, __ATOMIC_RELEASE);
	if (ns->ch)
		leap_bdev_channel_close(ns->ch);
	ns->ch = NULL;
	leap_bdev_put(ns->bdev);
	ns->bdev = NULL;
	return 0;
}

void leap_ctrl_region_added(struct leap_ctrl *ctrl, uint32_t region)
{
	const struct leap_mem_region *r = &ctrl->mem.r[region];

	for (uint32_t i = 0; i < LEAP_CTRL_MAX_NS; i++) {
		struct leap_ns *ns = &ctrl->ns[i];
		int idx;

		if (!ns->nsid || !ns->ch)
			continue;
		idx = leap_bdev_region_register(ns->ch, r->local, r->len);
		ns->buf_index[region] = idx >= 0 ? idx : -1;
	}
}

void leap_ctrl_channels_close(struct leap_ctrl *ctrl)
{
	for (uint32_t i = 0; i < LEAP_CTRL_MAX_NS; i++) {
		struct leap_ns *ns = &ctrl->ns[i];

		if (!ns->ch)
			continue;
		leap_bdev_channel_close(ns->ch);
		ns->ch = NULL;
		for (uint32_t r = 0; r < LEAP_SHM_MAX_REGIONS; r++)
			ns->buf_index[r] = -1;
	}
}

uint32_t leap_ctrl_inflight(const struct leap_ctrl *ctrl)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < LEAP_CTRL_MAX_NS; i++) {
		const struct leap_ns *ns = &ctrl->ns[i];

		if (ns->ch)
			n += ns->ch->inflight;
		for (struct leap_req *r = ns->pending_head; r; r = r->next_free)
			n++;
	}
	return n;
}

void leap_ctrl_log_error(struct leap_ctrl *ctrl, const struct leap_req *req)
{
	struct nvme_error_log_entry *e = &ctrl->errlog[ctrl->error_count % LEAP_CTRL_ERRLOG];

	memset(e, 0, sizeof(*e));
	e->error_count = ++ctrl->error_count;
	e->sqid = req->qp ? leap_req_sqid(req) : 0;
	e->cid = req->sqe.cid;
	e->status = nvme_cqe_status(req->status, 0);
	e->error_location = 0xffff;
	e->nsid = req->sqe.nsid;
	e->lba = (uint64_t)req->sqe.cdw10 | ((uint64_t)req->sqe.cdw11 << 32);
}

static enum leap_stats_kind kind_of(const struct leap_req *req, bool admin)
{
	if (admin)
		return LEAP_STATS_OTHER;
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
	uint64_t lat = leap_now_ns() - req->submit_ns;
	enum leap_stats_kind kind = kind_of(req, admin);
	uint64_t bytes = 0;

	if (!admin && req->ns && kind <= LEAP_STATS_WRITE && req->sqe.opc != NVME_OPC_COMPARE)
		bytes = (uint64_t)((req->sqe.cdw12 & NVME_RW_NLB_MASK) + 1) << req->ns->lba_shift;
	if (!admin && ctrl->hook_complete) {
		uint16_t st = ctrl->hook_complete(req, ctrl->hook_complete_arg);

		if (st)
			req->status = st;
	}
	if (!admin) {
		leap_stats_record(&ctrl->stats, kind, bytes, req->status & 0x7ff, lat);
		if (req->ns)
			leap_stats_record(&req->ns->stats, kind, bytes, req->status & 0x7ff, lat);
		leap_stats_record(leap_req_qp_stats(req), kind, bytes, req->status & 0x7ff, lat);
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
	req->submit_ns = leap_now_ns();
	if (admin)
		leap_ctrl_admin(ctrl, req);
	else
		leap_ctrl_io(ctrl, req);
}

void leap_ctrl_abort_aers(struct leap_ctrl *ctrl)
{
	while (ctrl->aer_cnt) {
		struct leap_req *req = ctrl->aer[--ctrl->aer_cnt];

		req->status = NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_ABORTED_SQ_DELETION);
		ctrl->tops->complete(ctrl->transport, req);
	}
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
