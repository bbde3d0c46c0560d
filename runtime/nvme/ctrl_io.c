// SPDX-License-Identifier: BSD-3-Clause
/*
 * I/O commands: validate, translate data pointers, run the submit hook and
 * hand the command to the namespace's backend channel; on completion post
 * the NVMe status the backend reported. Validation happens before any
 * byte moves: an out-of-range LBA never reaches the backend and a bad PRP
 * never touches memory. No allocation, syscall, lock or log per command:
 * a namespace's channel opens when the namespace is added, a policy
 * redirect target's on a helper thread (see chan_ready()).
 *
 * Bounce buffers: Compare reads the media into one and compares it with the
 * host's data; a Read or Write whose host buffers a direct-I/O backend
 * cannot use (bdev->mem_align) goes through one too. The controller has
 * LEAP_CTRL_BOUNCE_SLOTS of them; a command that finds none free waits in
 * FIFO order on the controller and is started from leap_ctrl_poll(), never
 * from a completion callback, so completions cannot recurse.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "ctrl_internal.h"
#include "nvme/arb.h"
#include "core/reactor.h"

static void dsm_next(struct leap_ctrl *ctrl, struct leap_req *req);
static void arb_release(struct leap_req *req);
static void arb_pump(struct leap_arb *a);
static void run_submit(struct leap_ctrl *ctrl, struct leap_req *req);

static uint8_t *bounce_slot(struct leap_ctrl *ctrl, uint32_t slot)
{
	return ctrl->bounce + (size_t)slot * LEAP_CTRL_MAX_XFER;
}

static void bounce_put(struct leap_ctrl *ctrl, struct leap_req *req)
{
	ctrl->bounce_free |= 1u << (req->bounce - 1);
	req->bounce = 0;
}

static void finish(struct leap_ctrl *ctrl, struct leap_req *req, uint16_t status)
{
	arb_release(req);
	if (req->bounce)
		bounce_put(ctrl, req);
	req->status = status;
	leap_ctrl_complete(ctrl, req);
}

/* Copy between the host's iovecs and a flat buffer (direction by `to_host`). */
static void copy_iov(struct leap_req *req, uint8_t *flat, bool to_host)
{
	for (uint32_t i = 0; i < req->iovcnt; i++) {
		if (to_host)
			memcpy(req->iov[i].iov_base, flat, req->iov[i].iov_len);
		else
			memcpy(flat, req->iov[i].iov_base, req->iov[i].iov_len);
		flat += req->iov[i].iov_len;
	}
}

static bool needs_bounce(const struct leap_req *req)
{
	return req->sqe.opc == NVME_OPC_COMPARE ||
	       (req->flags & (LEAP_REQ_F_BOUNCE_IN | LEAP_REQ_F_BOUNCE_OUT));
}

/* Take a free bounce slot and point the bdev I/O at it; false if none is free. */
static bool bounce_get(struct leap_ctrl *ctrl, struct leap_req *req)
{
	uint32_t slot;

	if (!ctrl->bounce_free)
		return false;
	slot = (uint32_t)__builtin_ctz(ctrl->bounce_free);
	ctrl->bounce_free &= ~(1u << slot);
	req->bounce = (uint8_t)(slot + 1);
	req->bounce_iov.iov_base = bounce_slot(ctrl, slot);
	/* The whole command, even when the current part is a split's first. */
	req->bounce_iov.iov_len = (uint64_t)((req->sqe.cdw12 & NVME_RW_NLB_MASK) + 1)
				  << req->ns->lba_shift;
	req->bio.iov = &req->bounce_iov;
	req->bio.iovcnt = 1;
	req->bio.buf_index = -1;
	if (req->flags & LEAP_REQ_F_BOUNCE_OUT)
		copy_iov(req, req->bounce_iov.iov_base, false);
	return true;
}

/* Register the tenant's regions on a channel just opened. */
static void chan_regions_register(struct leap_ctrl *ctrl, struct leap_chan *c)
{
	for (uint32_t r = 0; r < ctrl->mem.cnt; r++) {
		int idx =
		    leap_bdev_region_register(c->ch, ctrl->mem.r[r].local, ctrl->mem.r[r].len);

		c->buf_index[r] = idx >= 0 ? idx : -1;
	}
}

int ctrl_chan_open(struct leap_ctrl *ctrl, struct leap_chan *c)
{
	int err;

	if (!c->arb)
		c->arb = leap_arb_get(c->bdev);
	err = c->arb ? leap_bdev_channel_open(c->bdev, &c->ch) : -ENOMEM;
	if (err) {
		c->ch = NULL;
		LEAP_ERR("ctrl", "%s: cannot open a channel on bdev '%s': %s", ctrl->name,
			 c->bdev->name, strerror(-err));
		return err;
	}
	chan_regions_register(ctrl, c);
	return 0;
}

/*
 * The channel for backend `id` (a policy redirect): the namespace's own, a
 * cached one, or a new cache entry holding a bdev reference (its channel
 * not open yet). NULL when the backend does not exist or the cache is full.
 * Only the first redirect to a backend takes the registry lock; a missing
 * id is answered lock-free.
 */
static struct leap_chan *route_chan(struct leap_ctrl *ctrl, struct leap_req *req)
{
	uint32_t id = req->rt_bdev_id;
	struct leap_chan *free_slot = NULL;
	struct leap_bdev *b;

	if (leap_likely(id == 0 || id == req->ns->bdev->id))
		return &req->ns->chan;
	for (uint32_t i = 0; i < LEAP_CTRL_MAX_RCHAN; i++) {
		struct leap_chan *c = &ctrl->rchan[i];

		if (c->bdev && c->bdev->id == id)
			return c;
		if (!c->bdev && !free_slot)
			free_slot = c;
	}
	if (!free_slot || !leap_bdev_id_live(id))
		return NULL;
	b = leap_bdev_get_id(id);
	if (!b)
		return NULL;
	free_slot->bdev = b;
	free_slot->ref = true;
	free_slot->arb = NULL;
	for (uint32_t r = 0; r < LEAP_SHM_MAX_REGIONS; r++)
		free_slot->buf_index[r] = -1;
	return free_slot;
}

static void start(struct leap_ctrl *ctrl, struct leap_req *req);
static void fifo_push(struct leap_req **head, struct leap_req **tail, struct leap_req *req);

/* A redirect target's channel, opened on the helper thread, on its way to the reactor. */
struct chan_open_msg {
	struct leap_ctrl *ctrl;
	struct leap_chan *c;
	struct leap_reactor *r;
	struct leap_bdev_channel *ch;
	int rc;
};

/*
 * Reactor: the open finished. Commands parked on the slot (counted in
 * leap_ctrl_inflight(), so the controller cannot go meanwhile) start now,
 * in arrival order, or fail; a failed slot keeps failing fast, without a
 * log line or another attempt, until the channels close.
 */
static void chan_opened(void *arg)
{
	struct chan_open_msg *m = arg;
	struct leap_ctrl *ctrl = m->ctrl;
	struct leap_chan *c = m->c;
	struct leap_req *req = c->pending_head, *next;

	c->opening = false;
	c->pending_head = c->pending_tail = NULL;
	if (!m->rc && !(c->arb = leap_arb_get(c->bdev))) {
		leap_bdev_channel_close(m->ch);
		m->rc = -ENOMEM;
	}
	if (m->rc) {
		c->failed = true;
		LEAP_ERR("ctrl", "%s: cannot open a channel on bdev '%s': %s", ctrl->name,
			 c->bdev->name, strerror(-m->rc));
	} else {
		c->ch = m->ch;
		chan_regions_register(ctrl, c);
	}
	free(m);
	for (; req; req = next) {
		next = req->next_free;
		req->next_free = NULL;
		if (c->failed)
			finish(ctrl, req, ST(GENERIC, INTERNAL_DEVICE_ERROR));
		else
			start(ctrl, req);
	}
}

/* Helper thread: hand the result to the controller's reactor. */
static void chan_open_done(void *arg, int rc, struct leap_bdev_channel *ch)
{
	struct chan_open_msg *m = arg;
	int err;

	m->rc = rc;
	m->ch = ch;
	while ((err = leap_reactor_send_msg(m->r, chan_opened, m)) == -EAGAIN)
		usleep(100);
	if (err) { /* the reactor is going away; so is everything parked on it */
		leap_bdev_channel_close(ch);
		free(m);
	}
}

/*
 * Whether c's channel is open for req. A namespace's channel always is
 * (opened by ns add). A redirect target's opens at its first command, but
 * never on this thread when it is a reactor: a backend's open may block (a
 * network backend connects), and that must not stall every tenant here.
 * The command waits on the slot's pending list while a helper thread opens
 * the channel and a reactor message brings it back (chan_opened()); more
 * commands for the slot join the list. Without a reactor (unit tests,
 * tools) there is no data path to protect and the open happens here.
 */
static bool chan_ready(struct leap_ctrl *ctrl, struct leap_chan *c, struct leap_req *req)
{
	struct leap_reactor *r;
	struct chan_open_msg *m;

	if (leap_likely(c->ch != NULL))
		return true;
	if (c->failed) {
		finish(ctrl, req, ST(GENERIC, INTERNAL_DEVICE_ERROR));
		return false;
	}
	if (!c->opening) {
		r = leap_reactor_self();
		if (!r) {
			if (ctrl_chan_open(ctrl, c) == 0)
				return true;
			c->failed = true;
			finish(ctrl, req, ST(GENERIC, INTERNAL_DEVICE_ERROR));
			return false;
		}
		m = calloc(1, sizeof(*m));
		if (m)
			*m = (struct chan_open_msg){ .ctrl = ctrl, .c = c, .r = r };
		if (!m || leap_bdev_channel_open_async(c->bdev, chan_open_done, m)) {
			free(m);
			c->failed = true;
			LEAP_ERR("ctrl", "%s: cannot start opening a channel on bdev '%s'",
				 ctrl->name, c->bdev->name);
			finish(ctrl, req, ST(GENERIC, INTERNAL_DEVICE_ERROR));
			return false;
		}
		c->opening = true;
	}
	fifo_push(&c->pending_head, &c->pending_tail, req);
	return false;
}

/* FIFO through next_free (free while the command is ours). */
static void fifo_push(struct leap_req **head, struct leap_req **tail, struct leap_req *req)
{
	req->next_free = NULL;
	if (*tail)
		(*tail)->next_free = req;
	else
		*head = req;
	*tail = req;
}

static struct leap_req *fifo_pop(struct leap_req **head, struct leap_req **tail)
{
	struct leap_req *req = *head;

	*head = req->next_free;
	if (!*head)
		*tail = NULL;
	req->next_free = NULL;
	return req;
}

/* Give back req's place in its arbiter's budget (it completed or failed to submit). */
static void arb_release(struct leap_req *req)
{
	if (req->flags & LEAP_REQ_F_ARB) {
		req->flags &= (uint8_t)~LEAP_REQ_F_ARB;
		leap_arb_done(req->chan->arb);
	}
}

/* Submit req->bio on its channel; a full backend queues it for leap_ctrl_poll() to retry. */
static void chan_submit(struct leap_ctrl *ctrl, struct leap_req *req)
{
	struct leap_chan *c = req->chan;
	int rc;

	if (c->pending_head) { /* keep order behind earlier waiters */
		fifo_push(&c->pending_head, &c->pending_tail, req);
		return;
	}
	rc = leap_bdev_submit(c->ch, &req->bio);
	if (leap_likely(rc == 0))
		return;
	if (rc == -EAGAIN) {
		fifo_push(&c->pending_head, &c->pending_tail, req);
		return;
	}
	finish(ctrl, req, ST(GENERIC, INTERNAL_DEVICE_ERROR));
}

/* Hand out what the arbiter lets go now; the commands may belong to any controller here. */
static void arb_pump(struct leap_arb *a)
{
	struct leap_req *req;

	while ((req = leap_arb_next(a)) != NULL) {
		req->flags |= LEAP_REQ_F_ARB;
		chan_submit(req->qp->ctrl, req);
	}
}

/* Through the backend's arbiter: now, or queued by priority class. */
static void dispatch(struct leap_ctrl *ctrl, struct leap_req *req)
{
	if (!leap_arb_admit(req->chan->arb, req))
		return;
	req->flags |= LEAP_REQ_F_ARB;
	chan_submit(ctrl, req);
}

/* Point a split part's bio at its slice of the data (host buffers or the bounce buffer). */
static void slice_data(struct leap_req *req)
{
	const struct iovec *src = req->bounce ? &req->bounce_iov : req->iov;
	uint32_t cnt = req->bounce ? 1 : req->iovcnt, n = 0;
	uint64_t skip = req->byte_off, left = req->bio.len;

	if (!req->iovcnt || (req->byte_off == 0 && req->rt_nlb == req->cur_nlb && req->part == 0))
		return; /* the whole command: bio already points at it */
	for (uint32_t i = 0; i < cnt && left; i++) {
		uint64_t len = src[i].iov_len;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		req->part_iov[n].iov_base = (uint8_t *)src[i].iov_base + skip;
		req->part_iov[n].iov_len = LEAP_MIN(len - skip, left);
		left -= req->part_iov[n].iov_len;
		skip = 0;
		n++;
	}
	req->part_iovcnt = (uint16_t)n;
	req->bio.iov = req->part_iov;
	req->bio.iovcnt = (uint16_t)n;
	if (req->bounce)
		req->bio.buf_index = -1;
}

/* Where the current part goes: byte range in the target backend, checked against it. */
static bool route_part(struct leap_req *req)
{
	const struct leap_bdev *b = req->chan->bdev;
	uint64_t len;

	if (req->sqe.opc == NVME_OPC_FLUSH)
		return true;
	if (req->sqe.opc == NVME_OPC_DATASET_MANAGEMENT)
		return req->chan == &req->ns->chan;
	if (req->rt_nlb == 0 || req->rt_nlb > req->cur_nlb)
		return false;
	len = (uint64_t)req->rt_nlb << req->ns->lba_shift;
	if (req->rt_offset % b->block_size || req->rt_offset > b->size ||
	    len > b->size - req->rt_offset)
		return false;
	req->bio.offset = req->rt_offset;
	req->bio.len = len;
	return true;
}

/* Everything after validation and the submit hook: route, channel, bounce, submit. */
static void start(struct leap_ctrl *ctrl, struct leap_req *req)
{
	struct leap_chan *c = route_chan(ctrl, req);

	if (!c) {
		ctrl->route_errors++;
		finish(ctrl, req, ST(GENERIC, INTERNAL_DEVICE_ERROR));
		return;
	}
	if (leap_unlikely(!chan_ready(ctrl, c, req)))
		return;
	req->chan = c;
	if (req->bio.iov == req->iov && req->region >= 0)
		req->bio.buf_index = c->buf_index[req->region];
	if (!route_part(req)) {
		ctrl->route_errors++;
		finish(ctrl, req, ST(GENERIC, INTERNAL_DEVICE_ERROR));
		return;
	}
	if (req->sqe.opc == NVME_OPC_DATASET_MANAGEMENT) {
		dsm_next(ctrl, req);
		return;
	}
	if (needs_bounce(req) && !req->bounce &&
	    (ctrl->bounce_wait_head || !bounce_get(ctrl, req))) {
		fifo_push(&ctrl->bounce_wait_head, &ctrl->bounce_wait_tail, req);
		return;
	}
	slice_data(req);
	dispatch(ctrl, req);
}

/* The default route for what is left of the command, before a submit-hook run. */
static void route_default(struct leap_req *req)
{
	req->rt_bdev_id = 0;
	req->rt_offset = req->ns->offset + (req->cur_slba << req->ns->lba_shift);
	req->rt_nlb = req->cur_nlb;
}

/* Timed deferrals, kept sorted; arrivals are nearly in order, so look at the tail first. */
static void defer_insert(struct leap_ctrl *ctrl, struct leap_req *req)
{
	struct leap_req **pp = &ctrl->defer_head;

	while (*pp && (*pp)->defer_until <= req->defer_until)
		pp = &(*pp)->next_free;
	req->next_free = *pp;
	*pp = req;
}

/* Run the submit hook on what is left of the command and act on its answer. */
static void run_submit(struct leap_ctrl *ctrl, struct leap_req *req)
{
	uint16_t st;

	route_default(req);
	if (!ctrl->hook_submit) {
		start(ctrl, req);
		return;
	}
	st = ctrl->hook_submit(req, ctrl->hook_submit_arg);
	switch (st) {
	case LEAP_HOOK_RET_CONTINUE:
		start(ctrl, req);
		return;
	case LEAP_HOOK_RET_DEFER:
		ctrl->deferred++;
		if (!req->defer_until) {
			ctrl->deferred_untimed++;
			return;
		}
		if (ctrl->defer_rerun) {
			/*
			 * Deferred again when its time came: it keeps the head, and
			 * the poll stops re-running the others behind it, which wait
			 * for the same tokens (one rerun per refill, FIFO per tenant).
			 */
			req->next_free = ctrl->defer_head;
			ctrl->defer_head = req;
			ctrl->defer_rerun = false;
			ctrl->defer_again = true;
			return;
		}
		defer_insert(ctrl, req);
		return;
	case LEAP_HOOK_RET_SUCCESS:
		finish(ctrl, req, 0);
		return;
	default:
		finish(ctrl, req, st);
		return;
	}
}

static int poll_chan(struct leap_chan *c)
{
	int busy = LEAP_POLL_IDLE;

	if (!c->ch)
		return busy;
	if (leap_bdev_poll(c->ch) > 0)
		busy = LEAP_POLL_BUSY;
	while (c->pending_head) {
		int rc = leap_bdev_submit(c->ch, &c->pending_head->bio);
		struct leap_req *req;

		if (rc == -EAGAIN)
			break;
		req = fifo_pop(&c->pending_head, &c->pending_tail);
		busy = LEAP_POLL_BUSY;
		if (rc)
			finish(req->qp->ctrl, req, ST(GENERIC, INTERNAL_DEVICE_ERROR));
	}
	if (c->arb->queued)
		arb_pump(c->arb);
	return busy;
}

int leap_ctrl_poll(struct leap_ctrl *ctrl)
{
	int busy = LEAP_POLL_IDLE;

	for (uint32_t i = 0; i < LEAP_CTRL_MAX_NS; i++)
		busy |= poll_chan(&ctrl->ns[i].chan);
	for (uint32_t i = 0; i < LEAP_CTRL_MAX_RCHAN; i++)
		busy |= poll_chan(&ctrl->rchan[i]);
	while (ctrl->bounce_wait_head && ctrl->bounce_free) {
		struct leap_req *req = fifo_pop(&ctrl->bounce_wait_head, &ctrl->bounce_wait_tail);

		bounce_get(ctrl, req);
		slice_data(req);
		dispatch(ctrl, req);
		busy = LEAP_POLL_BUSY;
	}
	if (ctrl->defer_head) {
		uint64_t now = leap_now_ns();

		ctrl->defer_again = false;
		while (ctrl->defer_head && ctrl->defer_head->defer_until <= now &&
		       !ctrl->defer_again) {
			struct leap_req *req = ctrl->defer_head;

			ctrl->defer_head = req->next_free;
			req->next_free = NULL;
			ctrl->deferred--;
			ctrl->defer_rerun = true;
			run_submit(ctrl, req);
			ctrl->defer_rerun = false;
			busy = LEAP_POLL_BUSY;
		}
		/*
		 * Nothing due: idle. The front-end's sleep_prepare hands
		 * leap_ctrl_next_deadline() to the reactor, which sleeps until
		 * then rather than spinning for a rate-limited tenant.
		 */
	}
	if (leap_unlikely(ctrl->regs_state != LEAP_REGS_STEADY)) {
		ctrl_regs_progress(ctrl);
		busy = LEAP_POLL_BUSY; /* a reset or shutdown waits for completions */
	}
	return busy;
}

/* Validate an LBA range: slba + nlb within the namespace, no overflow. */
static bool range_ok(const struct leap_ns *ns, uint64_t slba, uint64_t nlb)
{
	return slba < ns->nlb && nlb <= ns->nlb - slba;
}

static uint16_t compare_bounce(const struct leap_req *req)
{
	const uint8_t *b = req->bounce_iov.iov_base;

	for (uint32_t i = 0; i < req->iovcnt; i++) {
		if (memcmp(b, req->iov[i].iov_base, req->iov[i].iov_len))
			return NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILURE);
		b += req->iov[i].iov_len;
	}
	return 0;
}

/*
 * A Flush also reaches every backend this controller's policies redirected
 * commands to (a snapshot overlay holds the tenant's newest writes), one
 * after the other; dsm_done walks the redirect channels.
 */
static bool flush_next(struct leap_ctrl *ctrl, struct leap_req *req)
{
	while (req->dsm_done < LEAP_CTRL_MAX_RCHAN) {
		struct leap_chan *c = &ctrl->rchan[req->dsm_done++];

		if (!c->ch || c == req->chan)
			continue;
		req->chan = c;
		dispatch(ctrl, req);
		return true;
	}
	return false;
}

/* The backend's completion: its status is what the host sees (or a split goes on). */
static void io_done(struct leap_bdev_io *bio, uint16_t st)
{
	struct leap_req *req = bio->cb_arg;
	struct leap_ctrl *ctrl = req->qp->ctrl;
	struct leap_arb *arb = req->chan->arb;
	bool more = req->rt_nlb < req->cur_nlb;

	arb_release(req);
	if (arb->queued)
		arb_pump(arb);
	if (leap_unlikely(st) && NVME_STATUS_SCT(st) == NVME_SCT_MEDIA)
		ctrl->media_errors++;
	if (!st && more && req->sqe.opc != NVME_OPC_DATASET_MANAGEMENT) {
		/* A split: the next part runs the submit hook again on what is left. */
		req->cur_slba += req->rt_nlb;
		req->cur_nlb -= req->rt_nlb;
		req->byte_off += (uint64_t)req->rt_nlb << req->ns->lba_shift;
		req->part++;
		run_submit(ctrl, req);
		return;
	}
	if (!st && req->sqe.opc == NVME_OPC_FLUSH && flush_next(ctrl, req))
		return;
	switch (req->sqe.opc) {
	case NVME_OPC_COMPARE:
		if (!st)
			st = compare_bounce(req);
		break;
	case NVME_OPC_READ:
		if (!st && (req->flags & LEAP_REQ_F_BOUNCE_IN))
			copy_iov(req, req->bounce_iov.iov_base, true);
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

/* Range i of a DSM command, gathered from the host's iovecs (a range may straddle two pages). */
static void dsm_range(const struct leap_req *req, uint32_t i, struct nvme_dsm_range *r)
{
	size_t off = (size_t)i * sizeof(*r), got = 0;

	for (uint32_t k = 0; k < req->iovcnt && got < sizeof(*r); k++) {
		size_t n;

		if (off >= req->iov[k].iov_len) {
			off -= req->iov[k].iov_len;
			continue;
		}
		n = LEAP_MIN(req->iov[k].iov_len - off, sizeof(*r) - got);
		memcpy((uint8_t *)r + got, (const uint8_t *)req->iov[k].iov_base + off, n);
		got += n;
		off = 0;
	}
}

/*
 * Submit the next non-empty deallocate range. Each range is copied once and
 * validated again: the tenant may have rewritten its buffer since prep_dsm().
 */
static void dsm_next(struct leap_ctrl *ctrl, struct leap_req *req)
{
	struct leap_ns *ns = req->ns;

	while (req->dsm_done < req->dsm_cnt) {
		struct nvme_dsm_range r;

		dsm_range(req, req->dsm_done, &r);
		if (r.nlb == 0) {
			req->dsm_done++;
			continue;
		}
		if (!range_ok(ns, r.slba, r.nlb)) {
			finish(ctrl, req, ST(GENERIC, LBA_OUT_OF_RANGE) | DNR);
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
	int cnt;

	cnt = leap_ctrl_map_data(ctrl, req, nr * sizeof(struct nvme_dsm_range), req->iov,
				 LEAP_REQ_MAX_IOV, NULL);
	if (cnt < 0)
		return (uint16_t)-cnt;
	req->iovcnt = (uint32_t)cnt;
	/* All ranges are checked before any is deallocated. */
	for (uint32_t i = 0; i < nr; i++) {
		struct nvme_dsm_range r;

		dsm_range(req, i, &r);
		if (r.nlb && !range_ok(req->ns, r.slba, r.nlb))
			return ST(GENERIC, LBA_OUT_OF_RANGE);
	}
	/* Without Attribute - Deallocate the ranges are only hints, and we keep none. */
	req->dsm_cnt = (sqe->cdw11 & NVME_DSM_ATTR_DEALLOCATE) ? nr : 0;
	req->dsm_done = 0;
	return 0;
}

static uint16_t prep_rw(struct leap_ctrl *ctrl, struct leap_req *req)
{
	const struct nvme_sqe *sqe = &req->sqe;
	struct leap_ns *ns = req->ns;
	uint64_t slba = nvme_sqe_slba(sqe);
	uint64_t nlb = nvme_sqe_nlb(sqe);
	uint64_t len = nlb << ns->lba_shift;
	uint32_t align = ns->bdev->mem_align ? ns->bdev->mem_align : 1;
	int32_t region = -1;
	int cnt;

	if (!range_ok(ns, slba, nlb))
		return ST(GENERIC, LBA_OUT_OF_RANGE);
	req->bio.offset = ns->offset + (slba << ns->lba_shift);
	req->bio.len = len;
	req->bio.flags = 0;
	req->bio.iovcnt = 0;
	req->bio.iov = NULL;
	req->bio.buf_index = -1;
	req->region = -1;
	if (sqe->opc == NVME_OPC_WRITE_ZEROES) {
		/* Deallocated blocks read as zeroes (DLFEAT), so DEAC may punch a hole. */
		req->bio.op = (sqe->cdw12 & NVME_WZ_DEAC) ? LEAP_BDEV_OP_DEALLOCATE
							  : LEAP_BDEV_OP_WRITE_ZEROES;
		return 0;
	}
	if (len > LEAP_CTRL_MAX_XFER)
		return ST(GENERIC, INVALID_FIELD);
	cnt = leap_ctrl_map_data(ctrl, req, len, req->iov, LEAP_REQ_MAX_IOV, &region);
	if (cnt < 0)
		return (uint16_t)-cnt;
	req->iovcnt = (uint32_t)cnt;
	if (sqe->opc == NVME_OPC_COMPARE) {
		req->bio.op = LEAP_BDEV_OP_READ; /* into a bounce buffer, see start() */
		return 0;
	}
	req->bio.op = sqe->opc == NVME_OPC_READ ? LEAP_BDEV_OP_READ : LEAP_BDEV_OP_WRITE;
	/* With the volatile write cache disabled every write is write-through. */
	if (sqe->opc == NVME_OPC_WRITE && ((sqe->cdw12 & NVME_RW_FUA) || !ctrl->vwc))
		req->bio.flags = LEAP_BDEV_IO_FUA;
	for (int i = 0; i < cnt; i++) {
		if (((uintptr_t)req->iov[i].iov_base | req->iov[i].iov_len) & (align - 1)) {
			/* Direct I/O cannot use this buffer: go through a bounce buffer. */
			req->flags |= sqe->opc == NVME_OPC_READ ? LEAP_REQ_F_BOUNCE_IN
								: LEAP_REQ_F_BOUNCE_OUT;
			return 0;
		}
	}
	req->bio.iov = req->iov;
	req->bio.iovcnt = (uint16_t)cnt;
	req->region = (int8_t)region; /* the fixed buffer is the target channel's: see start() */
	return 0;
}

void leap_ctrl_io(struct leap_ctrl *ctrl, struct leap_req *req)
{
	const struct nvme_sqe *sqe = &req->sqe;
	struct leap_ns *ns;
	uint16_t st;

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
		finish(ctrl, req, ST(GENERIC, INVALID_OPCODE) | DNR);
		return;
	}
	/* No fused operations (FUSES = 0); SGLs only where the transport offers them. */
	if (leap_unlikely(ctrl_psdt_invalid(ctrl, sqe->flags))) {
		finish(ctrl, req, ST(GENERIC, INVALID_FIELD) | DNR);
		return;
	}
	/* FFFFFFFFh (broadcast) is not valid for any I/O command here (VWC bits 2:1 = 10b). */
	ns = leap_ctrl_ns(ctrl, sqe->nsid);
	if (!ns) {
		finish(ctrl, req, ST(GENERIC, INVALID_NAMESPACE_OR_FORMAT) | DNR);
		return;
	}
	req->ns = ns;
	switch (sqe->opc) {
	case NVME_OPC_FLUSH:
		req->bio.op = LEAP_BDEV_OP_FLUSH;
		req->bio.flags = 0;
		req->bio.offset = 0;
		req->bio.len = 0;
		req->bio.iov = NULL;
		req->bio.iovcnt = 0;
		req->bio.buf_index = -1;
		req->dsm_done = 0; /* flush_next(): the redirect channels to flush after */
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
		finish(ctrl, req, st | DNR);
		return;
	}
	req->cur_slba = 0;
	req->cur_nlb = 0;
	if (sqe->opc != NVME_OPC_FLUSH && sqe->opc != NVME_OPC_DATASET_MANAGEMENT) {
		req->cur_slba = nvme_sqe_slba(sqe);
		req->cur_nlb = nvme_sqe_nlb(sqe);
	}
	req->byte_off = 0;
	req->part = 0;
	req->prio = LEAP_PRIO_MEDIUM;
	req->defer_until = 0;
	req->chan = &ns->chan;
	run_submit(ctrl, req);
}

void leap_ctrl_resume(struct leap_ctrl *ctrl, struct leap_req *req, uint16_t status)
{
	ctrl->deferred--;
	ctrl->deferred_untimed--;
	if (status)
		finish(ctrl, req, status);
	else
		start(ctrl, req);
}

/* ---- abort what never reached a backend (a departing tenant) ------------ */

static void abort_one(struct leap_req *req)
{
	finish(req->qp->ctrl, req, ST(GENERIC, ABORTED_SQ_DELETION));
}

uint32_t leap_ctrl_abort_queued(struct leap_ctrl *ctrl)
{
	uint32_t n = 0;

	/* Parked by a submit hook until a time: a rate limit may keep them there for good. */
	while (ctrl->defer_head) {
		struct leap_req *req = ctrl->defer_head;

		ctrl->defer_head = req->next_free;
		req->next_free = NULL;
		ctrl->deferred--;
		abort_one(req);
		n++;
	}
	while (ctrl->bounce_wait_head) {
		abort_one(fifo_pop(&ctrl->bounce_wait_head, &ctrl->bounce_wait_tail));
		n++;
	}
	for (uint32_t i = 0; i < LEAP_CTRL_MAX_NS + LEAP_CTRL_MAX_RCHAN; i++) {
		struct leap_chan *c =
		    i < LEAP_CTRL_MAX_NS ? &ctrl->ns[i].chan : &ctrl->rchan[i - LEAP_CTRL_MAX_NS];
		uint32_t before = ctrl->arb_queued;

		/* Only this controller's entries: the arbiter is the reactor's, per backend. */
		if (c->arb && ctrl->arb_queued)
			leap_arb_drain(c->arb, ctrl, abort_one);
		n += before - ctrl->arb_queued;
		while (c->pending_head) {
			abort_one(fifo_pop(&c->pending_head, &c->pending_tail));
			n++;
		}
	}
	return n;
}
