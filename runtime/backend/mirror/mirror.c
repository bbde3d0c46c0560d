// SPDX-License-Identifier: BSD-3-Clause
/*
 * The mirror backend's data path (RAID-1 over 2..4 legs of any type; see
 * mirror_internal.h for the leg state machine). A write goes to every
 * ACTIVE and RESYNCING leg and completes when all have: successfully if an
 * ACTIVE leg took it, the legs that failed it are marked FAULTY with the
 * write's regions in their bitmaps; a FAULTY or REMOVED leg misses the
 * write and has its regions marked right away. A read goes to one ACTIVE
 * leg, the least busy on this channel by default; a leg that fails it (or
 * times out) is marked FAULTY and the read is retried on the next ACTIVE
 * leg, so the tenant sees success while one leg can serve. A flush goes to
 * every live leg.
 *
 * Each channel opens one channel per leg and a context per parent I/O
 * (MIRROR_CTX, pre-allocated: nothing is allocated per I/O). Leg changes
 * made by the control plane (a leg added, removed) reach a channel through
 * m->gen, checked with one load per submit and poll: channels for new legs
 * arrive opened in pending_ch[], a removed leg's channel closes once idle.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "leapio/nvme_spec.h"
#include "mirror_internal.h"

#define ST_NO_LEG NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR)
#define ST_ABORT  NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_ABORTED_BY_REQUEST)

/* ---- legs as this channel sees them ---------------------------------------- */

static void leg_attach(struct mirror_channel *mc, uint32_t i, struct leap_bdev_channel *ch)
{
	mc->leg_ch[i] = ch;
	if (bdev_wake_add(&mc->wake, ch))
		LEAP_WARN("bdev", "%s: leg %u: no wake-up from it; polling", mc->base.bdev->name,
			  i);
	for (uint32_t r = 0; r < MIRROR_MAX_REGIONS; r++) {
		int idx;

		mc->region_idx[r][i] = -1;
		if (!mc->region_used[r])
			continue;
		idx = leap_bdev_region_register(ch, mc->region_addr[r], mc->region_len[r]);
		mc->region_idx[r][i] = idx >= 0 ? idx : -1;
	}
}

static void leg_detach(struct mirror_channel *mc, uint32_t i)
{
	struct mirror_bdev *m = (struct mirror_bdev *)mc->base.bdev;

	bdev_wake_del(&mc->wake, mc->leg_ch[i]);
	leap_bdev_channel_close(mc->leg_ch[i]);
	mc->leg_ch[i] = NULL;
	pthread_mutex_lock(&m->lock);
	mc->leg_has &= ~(1u << i);
	mirror_leg_chan_closed_locked(m, i);
	pthread_mutex_unlock(&m->lock);
}

static inline bool leg_usable(const struct mirror_channel *mc, uint32_t i)
{
	return mc->leg_ch[i] && !(mc->closing & (1u << i));
}

/* The legs changed (m->gen moved) or one is closing: catch up, on this channel's thread. */
static void refresh(struct mirror_channel *mc)
{
	struct mirror_bdev *m = (struct mirror_bdev *)mc->base.bdev;
	uint32_t g = __atomic_load_n(&m->gen, __ATOMIC_ACQUIRE);

	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++) {
		struct leap_bdev_channel *ch =
		    __atomic_exchange_n(&mc->pending_ch[i], NULL, __ATOMIC_ACQ_REL);
		uint32_t st = leg_state(m, i);

		if (ch)
			leg_attach(mc, i, ch);
		if (!mc->leg_ch[i])
			continue;
		if (st == LEG_EMPTY || st == LEG_REMOVED)
			mc->closing |= 1u << i;
		if ((mc->closing & (1u << i)) && !mc->leg_out[i] && !mc->leg_ch[i]->inflight) {
			leg_detach(mc, i);
			mc->closing &= ~(1u << i);
		}
	}
	mc->nread = 0;
	mc->slots = 0;
	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++) {
		uint32_t st = leg_state(m, i);

		/* A slot filled later (add-leg) bumps gen; its leg starts with all regions marked. */
		if (st != LEG_EMPTY)
			mc->slots |= 1u << i;
		if (leg_usable(mc, i) && st == LEG_ACTIVE)
			mc->read_legs[mc->nread++] = (uint8_t)i;
	}
	mc->seen_gen = g;
}

static inline bool needs_refresh(const struct mirror_channel *mc)
{
	const struct mirror_bdev *m = (const struct mirror_bdev *)mc->base.bdev;

	return __atomic_load_n(&m->gen, __ATOMIC_ACQUIRE) != mc->seen_gen || mc->closing;
}

/*
 * The leg to read from among ACTIVE ones not in `exclude`, or -1. Least
 * outstanding: fewest I/Os in flight on this channel's leg channel, ties
 * broken by rotation; round robin: the next in rotation.
 */
static int pick_read_leg_slow(struct mirror_channel *mc, uint32_t exclude);

/*
 * The common case, a first try: among the legs refresh() found readable
 * (ACTIVE, with a channel here; m->gen moves whenever that changes and
 * every submit checks it first).
 */
static inline int pick_read_leg(struct mirror_channel *mc, uint32_t exclude)
{
	const struct mirror_bdev *m = (const struct mirror_bdev *)mc->base.bdev;
	uint32_t n = mc->nread, start, best;

	if (leap_unlikely(exclude || n < 2))
		return exclude || !n ? pick_read_leg_slow(mc, exclude) : mc->read_legs[0];
	start = ++mc->rr_idx % n;
	best = mc->read_legs[start];
	if (__atomic_load_n(&m->read_policy, __ATOMIC_RELAXED) == READ_LEAST_OUTSTANDING)
		for (uint32_t j = 1; j < n; j++) {
			uint32_t i = mc->read_legs[(start + j) % n];

			if (mc->leg_ch[i]->inflight < mc->leg_ch[best]->inflight)
				best = i;
		}
	return (int)best;
}

static int pick_read_leg_slow(struct mirror_channel *mc, uint32_t exclude)
{
	const struct mirror_bdev *m = (const struct mirror_bdev *)mc->base.bdev;
	bool rr = __atomic_load_n(&m->read_policy, __ATOMIC_RELAXED) == READ_ROUND_ROBIN;
	int best = -1;

	/* Start after the leg used last, so either policy rotates over the legs there are. */
	for (uint32_t j = 1; j <= MIRROR_MAX_LEGS; j++) {
		uint32_t i = (mc->rr + j) % MIRROR_MAX_LEGS;

		if ((exclude & (1u << i)) || !leg_usable(mc, i) || leg_state(m, i) != LEG_ACTIVE)
			continue;
		if (rr) {
			best = (int)i;
			break;
		}
		if (best < 0 || mc->leg_ch[i]->inflight < mc->leg_ch[best]->inflight)
			best = (int)i;
	}
	if (best >= 0)
		mc->rr = (uint32_t)best;
	return best;
}

/* ---- contexts ------------------------------------------------------------------- */

static struct mio *ctx_get(struct mirror_channel *mc)
{
	struct mio *x = mc->free_ctx;

	if (x)
		mc->free_ctx = x->next;
	return x;
}

static void ctx_put(struct mirror_channel *mc, struct mio *x)
{
	x->parent = NULL;
	x->next = mc->free_ctx;
	mc->free_ctx = x;
}

/* ---- region locks (see mirror_internal.h) --------------------------------------- */

static void io_regions(const struct mirror_bdev *m, const struct leap_bdev_io *io, uint64_t *r0,
		       uint64_t *r1)
{
	*r0 = region_of(m, io->offset);
	*r1 = region_of(m, io->offset + io->len - 1);
}

static void unlock_regions(struct mirror_bdev *m, uint64_t r0, uint64_t r1)
{
	/* Release: the write's completion happens before a copy that takes the lock next. */
	for (uint64_t r = r0; r <= r1; r++)
		__atomic_fetch_sub(lock_word(m, r), 1, __ATOMIC_RELEASE);
}

/*
 * May this write go now? Outside a resync: count it in unlocked_writes,
 * then check rl_on again -- the resync thread stores rl_on, then waits for
 * every channel's count to drain, all four accesses sequentially
 * consistent, so either it sees this write counted or this write sees
 * rl_on (Dekker). During a resync:
 * a reference on every region's lock word, refused (false: defer) while the
 * resync thread copies one of them.
 */
static bool lock_regions(struct mirror_channel *mc, struct mio *x)
{
	struct mirror_bdev *m = (struct mirror_bdev *)mc->base.bdev;
	uint64_t r0, r1, r;

	if (!__atomic_load_n(&m->rl_on, __ATOMIC_ACQUIRE)) {
		/*
		 * A seq_cst read-modify-write, then a seq_cst load: one total
		 * order with the resync thread's seq_cst store of rl_on and load
		 * of this count (a locked add on x86, cheaper than a store and
		 * an mfence; the count has no other writer).
		 */
		__atomic_fetch_add(&mc->unlocked_writes, 1, __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&m->rl_on, __ATOMIC_SEQ_CST)) {
			x->counted = true;
			return true;
		}
		__atomic_store_n(&mc->unlocked_writes, mc->unlocked_writes - 1, __ATOMIC_RELEASE);
	}
	io_regions(m, x->parent, &r0, &r1);
	for (r = r0; r <= r1; r++) {
		uint32_t *w = lock_word(m, r), cur = __atomic_load_n(w, __ATOMIC_RELAXED);

		do {
			if (cur & MIRROR_LOCK_COPY)
				goto busy;
		} while (!__atomic_compare_exchange_n(w, &cur, cur + 1, true, __ATOMIC_ACQUIRE,
						      __ATOMIC_RELAXED));
	}
	x->locked = true;
	return true;
busy:
	if (r > r0)
		unlock_regions(m, r0, r - 1);
	return false;
}

static void release_write(struct mirror_channel *mc, struct mio *x)
{
	struct mirror_bdev *m = (struct mirror_bdev *)mc->base.bdev;
	uint64_t r0, r1;

	if (x->locked) {
		io_regions(m, x->parent, &r0, &r1);
		unlock_regions(m, r0, r1);
		x->locked = false;
	}
	if (x->counted) {
		/* Release: the bitmap marks made for this write are visible to the resync. */
		__atomic_store_n(&mc->unlocked_writes, mc->unlocked_writes - 1, __ATOMIC_RELEASE);
		x->counted = false;
	}
}

/* ---- completion ------------------------------------------------------------------ */

static bool is_write(uint8_t op)
{
	return op == LEAP_BDEV_OP_WRITE || op == LEAP_BDEV_OP_WRITE_ZEROES ||
	       op == LEAP_BDEV_OP_DEALLOCATE;
}

static void mark_missed(struct mirror_bdev *m, uint32_t leg, const struct leap_bdev_io *io)
{
	uint64_t r0, r1;

	if (!m->legs[leg].bitmap)
		return;
	if (io->op == LEAP_BDEV_OP_FLUSH) {
		/* What a failed flush lost is unknown: all of it. */
		r0 = 0;
		r1 = m->nregions - 1;
	} else {
		io_regions(m, io, &r0, &r1);
	}
	bm_set_range(m->legs[leg].bitmap, r0, r1);
}

/* Off the hot path: legs that failed x are marked (and its regions, for a write). */
static __attribute__((noinline, cold)) void blame_legs(struct mirror_bdev *m, struct mio *x,
						       uint32_t blame, uint32_t ok)
{
	const struct leap_bdev_io *parent = x->parent;

	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++) {
		if (!(blame & (1u << i)))
			continue;
		if (parent->op != LEAP_BDEV_OP_READ)
			mark_missed(m, i, parent);
		mirror_leg_fail(m, i,
				parent->op == LEAP_BDEV_OP_READ	   ? "a read"
				: parent->op == LEAP_BDEV_OP_FLUSH ? "a flush"
								   : "a write",
				x->err);
	}
	if (parent->op == LEAP_BDEV_OP_READ && ok)
		__atomic_fetch_add(&m->read_retries, 1, __ATOMIC_RELAXED);
}

/* Every kid is back: decide the parent's status, mark failed legs, complete. */
static void finish(struct mio *x, bool in_submit)
{
	struct mirror_channel *mc = x->mc;
	struct mirror_bdev *m = (struct mirror_bdev *)mc->base.bdev;
	struct leap_bdev_io *parent = x->parent;
	uint32_t ok = x->ok, blame = 0;
	uint16_t status;

	if (is_write(parent->op))
		ok &= x->active; /* only an ACTIVE leg makes a write durable on the mirror */
	status = ok ? 0 : x->err ? x->err : ST_NO_LEG;
	if (leap_unlikely(x->failed)) {
		if (ok) {
			blame = x->failed;
		} else if (is_write(parent->op)) {
			/* Nothing in sync took it: keep the legs, fail the I/O; a RESYNCING leg can go. */
			blame = x->failed & ~x->active;
		}
		blame_legs(m, x, blame, ok);
	}
	if (x->locked | x->counted)
		release_write(mc, x);
	ctx_put(mc, x);
	if (in_submit) {
		/* Callbacks never run inside submit(): the next poll delivers it. */
		parent->priv[1] = status;
		bdev_fifo_push(&mc->done, parent);
	} else {
		bdev_io_complete(&mc->base, parent, status);
	}
}

static void kid_issue(struct mio *x, uint32_t leg, bool in_submit);
static void kid_setup(struct mio *x, uint32_t leg);

/* A leg failed its kid: count it; a read goes to the next leg (true: retried). */
static __attribute__((noinline, cold)) bool kid_failed(struct mirror_bdev *m, struct mkid *k,
						       uint16_t status, bool in_submit)
{
	struct mio *x = k->m;
	int next;

	x->failed |= (uint8_t)(1u << k->leg);
	if (!x->err)
		x->err = status;
	__atomic_fetch_add(k->io.op == LEAP_BDEV_OP_READ ? &m->legs[k->leg].read_errors
							 : &m->legs[k->leg].write_errors,
			   1, __ATOMIC_RELAXED);
	if (k->io.op != LEAP_BDEV_OP_READ)
		return false;
	next = pick_read_leg(x->mc, x->tried);
	if (next < 0)
		return false;
	x->tried |= (uint8_t)(1u << next);
	kid_setup(x, (uint32_t)next);
	kid_issue(x, (uint32_t)next, in_submit);
	return true;
}

static void kid_done(struct mkid *k, uint16_t status, bool in_submit)
{
	struct mio *x = k->m;
	struct mirror_channel *mc = x->mc;
	struct mirror_bdev *m = (struct mirror_bdev *)mc->base.bdev;
	uint32_t bit = 1u << k->leg;

	x->pending &= (uint8_t)~bit;
	mc->leg_out[k->leg]--;
	if (leap_likely(!status))
		x->ok |= (uint8_t)bit;
	else if (kid_failed(m, k, status, in_submit))
		return;
	if (!x->pending)
		finish(x, in_submit);
}

static void kid_cb(struct leap_bdev_io *io, uint16_t status)
{
	kid_done(leap_container_of(io, struct mkid, io), status, false);
}

static void kid_setup(struct mio *x, uint32_t leg)
{
	const struct leap_bdev_io *p = x->parent;
	const struct mirror_channel *mc = x->mc;
	struct mkid *k = &x->kids[leg];

	/* Every field the leg reads; priv is its own, the timeout fields leap_bdev_submit()'s. */
	k->io.op = p->op;
	k->io.flags = p->flags;
	k->io.offset = p->offset;
	k->io.len = p->len;
	k->io.iov = p->iov;
	k->io.iovcnt = p->iovcnt;
	k->io.buf_index = -1;
	if (p->buf_index >= 0 && p->buf_index < MIRROR_MAX_REGIONS && mc->region_used[p->buf_index])
		k->io.buf_index = mc->region_idx[p->buf_index][leg];
}

/*
 * Send x's kid for `leg` (io filled, counted in x->pending and leg_out: a
 * kid that fails right here must not find its siblings uncounted and
 * finish the parent under them); a full leg channel keeps it for the next
 * poll.
 */
static void kid_send(struct mio *x, uint32_t leg, bool in_submit)
{
	struct mirror_channel *mc = x->mc;
	struct mkid *k = &x->kids[leg];
	int rc;

	/* Behind kids already waiting, so one leg sees a channel's I/O in order. */
	rc = mc->retry_head ? -EAGAIN : leap_bdev_submit(mc->leg_ch[leg], &k->io);
	if (leap_likely(rc == 0))
		return;
	if (rc == -EAGAIN) {
		k->next = NULL;
		if (mc->retry_tail)
			mc->retry_tail->next = k;
		else
			mc->retry_head = k;
		mc->retry_tail = k;
		return;
	}
	kid_done(k, leap_bdev_status_from_errno(rc, (enum leap_bdev_op)k->io.op), in_submit);
}

/* One kid: count it, send it. */
static void kid_issue(struct mio *x, uint32_t leg, bool in_submit)
{
	x->pending |= (uint8_t)(1u << leg);
	x->mc->leg_out[leg]++;
	kid_send(x, leg, in_submit);
}

/* ---- submission ------------------------------------------------------------------- */

/* A write (or flush) to every live leg; missed regions marked for the rest. */
static void issue_all(struct mio *x, bool in_submit)
{
	struct mirror_channel *mc = x->mc;
	struct mirror_bdev *m = (struct mirror_bdev *)mc->base.bdev;
	uint32_t targets = 0;

	x->active = 0;
	/* Current states, loaded after the region locks were taken (mirror_internal.h). */
	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++) {
		uint32_t st;

		if (!(mc->slots & (1u << i)))
			continue;
		st = leg_state(m, i);

		if ((st == LEG_ACTIVE || st == LEG_RESYNCING) && leg_usable(mc, i)) {
			targets |= 1u << i;
			if (st == LEG_ACTIVE)
				x->active |= (uint8_t)(1u << i);
		} else if (st != LEG_EMPTY && x->parent->op != LEAP_BDEV_OP_FLUSH) {
			mark_missed(m, i, x->parent);
		}
	}
	if (!targets) {
		finish(x, in_submit);
		return;
	}
	x->pending = (uint8_t)targets;
	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++)
		if (targets & (1u << i)) {
			mc->leg_out[i]++;
			kid_setup(x, i);
		}
	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++)
		if (targets & (1u << i))
			kid_send(x, i, in_submit);
}

/*
 * Whether a write waiting for a region lock touches io's regions: then io
 * waits behind it, so overlapping writes leave this channel in order, and
 * writes elsewhere do not queue behind a region being copied.
 */
static bool overlaps_deferred(const struct mirror_channel *mc, const struct leap_bdev_io *io)
{
	const struct mirror_bdev *m = (const struct mirror_bdev *)mc->base.bdev;
	uint64_t r0, r1, d0, d1;

	if (leap_likely(!mc->deferred_head))
		return false;
	io_regions(m, io, &r0, &r1);
	for (const struct mio *d = mc->deferred_head; d; d = d->next) {
		io_regions(m, d->parent, &d0, &d1);
		if (d0 <= r1 && r0 <= d1)
			return true;
	}
	return false;
}

static void defer(struct mirror_channel *mc, struct mio *x)
{
	__atomic_fetch_add(&((struct mirror_bdev *)mc->base.bdev)->deferred_writes, 1,
			   __ATOMIC_RELAXED);
	x->next = NULL;
	if (mc->deferred_tail)
		mc->deferred_tail->next = x;
	else
		mc->deferred_head = x;
	mc->deferred_tail = x;
}

static int mirror_submit(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	struct mirror_channel *mc = (struct mirror_channel *)ch;
	struct mio *x;
	int leg;

	/* No bdev_assert_io() here: each leg checks the same offset and length. */
	if (leap_unlikely(needs_refresh(mc)))
		refresh(mc);
	x = ctx_get(mc);
	if (!x)
		return -EAGAIN;
	x->parent = io;
	x->state = 0;
	x->err = 0;
	ch->inflight++;
	ch->stats.submitted++;

	switch (io->op) {
	case LEAP_BDEV_OP_READ:
		leg = pick_read_leg(mc, 0);
		if (leg < 0) {
			finish(x, true);
			break;
		}
		x->tried = (uint8_t)(1u << leg);
		kid_setup(x, (uint32_t)leg);
		kid_issue(x, (uint32_t)leg, true);
		break;
	case LEAP_BDEV_OP_FLUSH:
		issue_all(x, true);
		break;
	default:
		if (overlaps_deferred(mc, io) || !lock_regions(mc, x))
			defer(mc, x);
		else
			issue_all(x, true);
		break;
	}
	return 0;
}

/*
 * Deferred writes whose regions are free now go; one that still waits
 * keeps every later write that overlaps it waiting too (in order).
 */
static int retry_deferred(struct mirror_channel *mc)
{
	const struct mirror_bdev *m = (const struct mirror_bdev *)mc->base.bdev;
	struct mio *x = mc->deferred_head, *prev = NULL, *next;
	uint64_t r0, r1, w0, w1;
	int n = 0;

	for (; x; x = next) {
		bool blocked = false;

		next = x->next;
		io_regions(m, x->parent, &r0, &r1);
		for (struct mio *w = mc->deferred_head; w != x && !blocked; w = w->next) {
			io_regions(m, w->parent, &w0, &w1);
			blocked = w0 <= r1 && r0 <= w1;
		}
		if (blocked || !lock_regions(mc, x)) {
			prev = x;
			continue;
		}
		if (prev)
			prev->next = next;
		else
			mc->deferred_head = next;
		if (mc->deferred_tail == x)
			mc->deferred_tail = prev;
		issue_all(x, false);
		n++;
	}
	return n;
}

static int mirror_poll(struct leap_bdev_channel *ch)
{
	struct mirror_channel *mc = (struct mirror_channel *)ch;
	struct leap_bdev_io *io, *next;
	int n = 0;

	if (leap_unlikely(needs_refresh(mc)))
		refresh(mc);
	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++) {
		int r;

		if (!mc->leg_ch[i])
			continue;
		r = leap_bdev_poll(mc->leg_ch[i]);
		if (r > 0)
			n += r;
	}
	while (mc->retry_head) {
		struct mkid *k = mc->retry_head;
		int rc = leap_bdev_submit(mc->leg_ch[k->leg], &k->io);

		if (rc == -EAGAIN)
			break;
		mc->retry_head = k->next;
		if (!mc->retry_head)
			mc->retry_tail = NULL;
		n++;
		if (rc)
			kid_done(k, leap_bdev_status_from_errno(rc, (enum leap_bdev_op)k->io.op),
				 false);
	}
	if (mc->deferred_head)
		n += retry_deferred(mc);
	for (io = bdev_fifo_take(&mc->done); io; io = next, n++) {
		/* Read the link first: the callback may resubmit io. */
		next = bdev_fifo_next(io);
		bdev_io_complete(ch, io, (uint16_t)io->priv[1]);
	}
	return n;
}

static int mirror_abort(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	struct mirror_channel *mc = (struct mirror_channel *)ch;
	struct mio *x = NULL, *prev = NULL;
	int rc = -EBUSY;

	for (uint32_t i = 0; i < MIRROR_CTX && !x; i++)
		if (mc->ctx[i].parent == io)
			x = &mc->ctx[i];
	if (!x)
		return -EBUSY;
	for (struct mio *it = mc->deferred_head; it; prev = it, it = it->next) {
		if (it != x)
			continue;
		if (prev)
			prev->next = it->next;
		else
			mc->deferred_head = it->next;
		if (mc->deferred_tail == it)
			mc->deferred_tail = prev;
		x->err = ST_ABORT;
		finish(x, true);
		return 0;
	}
	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++)
		if ((x->pending & (1u << i)) && mc->leg_ch[i] &&
		    leap_bdev_abort(mc->leg_ch[i], &x->kids[i].io) == 0)
			rc = 0;
	return rc;
}

/* ---- channels --------------------------------------------------------------------- */

static void mirror_channel_close(struct leap_bdev_channel *ch)
{
	struct mirror_channel *mc = (struct mirror_channel *)ch;
	struct mirror_bdev *m;

	if (!mc)
		return;
	m = (struct mirror_bdev *)ch->bdev;
	pthread_mutex_lock(&m->lock);
	for (struct mirror_channel **pp = &m->chans; *pp; pp = &(*pp)->next)
		if (*pp == mc) {
			*pp = mc->next;
			break;
		}
	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++) {
		struct leap_bdev_channel *lc[2] = { mc->leg_ch[i],
						    __atomic_exchange_n(&mc->pending_ch[i], NULL,
									__ATOMIC_ACQ_REL) };

		for (int j = 0; j < 2; j++) {
			if (!lc[j])
				continue;
			bdev_wake_del(&mc->wake, lc[j]);
			leap_bdev_channel_close(lc[j]);
			mirror_leg_chan_closed_locked(m, i);
		}
	}
	pthread_mutex_unlock(&m->lock);
	bdev_wake_fini(&mc->wake);
	free(mc->ctx);
	free(mc);
}

static int mirror_channel_open(struct leap_bdev *bdev, struct leap_bdev_channel **out)
{
	struct mirror_bdev *m = (struct mirror_bdev *)bdev;
	struct mirror_channel *mc = calloc(1, sizeof(*mc));
	uint32_t active = 0;
	int rc;

	if (!mc)
		return -ENOMEM;
	mc->base.bdev = bdev;
	mc->wake.epfd = mc->wake.tfd = -1;
	mc->ctx = calloc(MIRROR_CTX, sizeof(*mc->ctx));
	rc = mc->ctx ? bdev_wake_init(&mc->wake, false) : -ENOMEM;
	if (rc) {
		bdev_wake_fini(&mc->wake);
		free(mc->ctx);
		free(mc);
		return rc;
	}
	for (uint32_t i = MIRROR_CTX; i-- > 0;) {
		struct mio *x = &mc->ctx[i];

		x->mc = mc;
		for (uint32_t l = 0; l < MIRROR_MAX_LEGS; l++) {
			x->kids[l].m = x;
			x->kids[l].leg = (uint8_t)l;
			x->kids[l].io.cb = kid_cb;
		}
		ctx_put(mc, x);
	}

	pthread_mutex_lock(&m->lock);
	mc->next = m->chans;
	m->chans = mc;
	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++) {
		struct mirror_leg *leg = &m->legs[i];
		uint32_t st = leg_state(m, i);
		struct leap_bdev_channel *lc;

		if (st == LEG_EMPTY || st == LEG_REMOVED || !leg->bdev)
			continue;
		rc = leap_bdev_channel_open(leg->bdev, &lc);
		if (rc) {
			/* Serve from the others; this leg has missed everything from now on. */
			LEAP_ERR("bdev", "%s: cannot open a channel on leg '%s': %s", bdev->name,
				 leg->name, strerror(-rc));
			bm_set_range(leg->bitmap, 0, m->nregions - 1);
			mirror_leg_fail(m, i, "a channel open", ST_NO_LEG);
			continue;
		}
		leg->open_chans++;
		mc->leg_has |= 1u << i;
		leg_attach(mc, i, lc);
		active += st == LEG_ACTIVE;
	}
	/* Not the current count: the first submit or poll refreshes (and lists the readable legs). */
	mc->seen_gen = __atomic_load_n(&m->gen, __ATOMIC_ACQUIRE) - 1;
	pthread_mutex_unlock(&m->lock);
	if (!active) {
		LEAP_ERR("bdev", "%s: no in-sync leg could be opened", bdev->name);
		mirror_channel_close(&mc->base);
		return -EIO;
	}
	*out = &mc->base;
	return 0;
}

static int mirror_wake_fd(struct leap_bdev_channel *ch)
{
	return ((struct mirror_channel *)ch)->wake.epfd;
}

static bool mirror_sleep_prepare(struct leap_bdev_channel *ch)
{
	struct mirror_channel *mc = (struct mirror_channel *)ch;

	/* Deferred writes wait for the resync thread, which does not wake us: keep polling. */
	if (mc->done.head || mc->retry_head || mc->deferred_head || needs_refresh(mc))
		return false;
	return bdev_wake_prepare(&mc->wake, mc->leg_ch, MIRROR_MAX_LEGS, 0);
}

static void mirror_sleep_done(struct leap_bdev_channel *ch)
{
	bdev_wake_done(&((struct mirror_channel *)ch)->wake);
}

static int mirror_region_register(struct leap_bdev_channel *ch, void *addr, size_t len)
{
	struct mirror_channel *mc = (struct mirror_channel *)ch;
	uint32_t r, ok = 0;

	for (r = 0; r < MIRROR_MAX_REGIONS && mc->region_used[r]; r++)
		;
	if (r == MIRROR_MAX_REGIONS)
		return -ENOSPC;
	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++) {
		int idx = mc->leg_ch[i] ? leap_bdev_region_register(mc->leg_ch[i], addr, len) : -1;

		mc->region_idx[r][i] = idx >= 0 ? idx : -1;
		ok += idx >= 0;
	}
	if (!ok)
		return -EOPNOTSUPP;
	mc->region_used[r] = true;
	mc->region_addr[r] = addr;
	mc->region_len[r] = len;
	return (int)r;
}

static void mirror_region_unregister(struct leap_bdev_channel *ch, int buf_index)
{
	struct mirror_channel *mc = (struct mirror_channel *)ch;

	if (buf_index < 0 || buf_index >= MIRROR_MAX_REGIONS || !mc->region_used[buf_index])
		return;
	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++)
		if (mc->leg_ch[i])
			leap_bdev_region_unregister(mc->leg_ch[i], mc->region_idx[buf_index][i]);
	mc->region_used[buf_index] = false;
}

/* ---- the module --------------------------------------------------------------------- */

const struct leap_bdev_ops leap_bdev_mirror_ops = {
	.type = "mirror",
	.create = mirror_create,
	.destroy = mirror_destroy,
	.write_config = mirror_write_config,
	.dump_info = mirror_dump_info,
	.io_type_supported = mirror_io_type_supported,
	.channel_open = mirror_channel_open,
	.channel_close = mirror_channel_close,
	.submit = mirror_submit,
	.poll = mirror_poll,
	.region_register = mirror_region_register,
	.region_unregister = mirror_region_unregister,
	.channel_wake_fd = mirror_wake_fd,
	.sleep_prepare = mirror_sleep_prepare,
	.sleep_done = mirror_sleep_done,
	.abort = mirror_abort,
	.methods = mirror_methods,
};

LEAP_BDEV_MODULE_REGISTER(leap_bdev_mirror_ops)
