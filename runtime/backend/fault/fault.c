// SPDX-License-Identifier: BSD-3-Clause
/*
 * The fault backend: wraps another bdev (its "base", by name) and, as told
 * at runtime through bdev_fault_set, fails I/O with a chosen NVMe status,
 * adds latency, or holds I/O forever (a hung device) -- SPDK's error bdev
 * and device-mapper's flakey and delay targets in one. It exists so that
 * the failure paths of everything above a backend (mirror legs, timeouts,
 * a tenant's error handling) are exercised for real.
 *
 * One rule at a time: the ops it applies to (reads, writes -- Write Zeroes
 * and Deallocate count as writes -- flushes), an LBA range, an action
 * (fail, hang, or none) taken on one matching I/O in `every`, and a delay
 * added to every matching I/O before it goes on. Setting a rule replaces
 * the previous one; the empty rule heals the device, and I/O it was holding
 * goes on to the base. The control thread publishes a rule under a
 * sequence count (a seqlock); each channel copies it when the count moved,
 * checked with one load per I/O. Injected completions, like every other,
 * come from poll(). Held and delayed I/O can be aborted (I/O timeouts).
 * I/O that goes on travels as a child from the channel's child pool with
 * the caller's iovec and fixed-buffer index (regions are registered on the
 * base channel itself).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "leapio/nvme_spec.h"
#include "backend/bdev_internal.h"
#include "backend/bdev_wake_internal.h"

#define FAULT_POOL 1024 /* I/Os in flight to the base per channel */

enum { FAULT_R = 1, FAULT_W = 2, FAULT_F = 4 };
enum fault_action { FAULT_NONE, FAULT_FAIL, FAULT_HANG };
static const char *const action_names[] = { "none", "fail", "hang" };

struct fault_rule {
	uint32_t ops;	    /* FAULT_R | FAULT_W | FAULT_F */
	uint32_t action;    /* enum fault_action */
	uint32_t status;    /* FAIL: internal NVMe status; 0: the media error for the op */
	uint32_t every;	    /* act on one matching I/O in this many (>= 1) */
	uint64_t lba;	    /* first block the rule covers */
	uint64_t lba_count; /* blocks; 0: to the end */
	uint32_t delay_us;  /* added to every matching I/O */
};

struct fault_bdev {
	struct leap_bdev base;
	struct leap_bdev *child;
	/* Seqlock: odd while the control thread writes `rule`. */
	uint32_t seq;
	struct fault_rule rule;
	/* Shared counters, updated only when something is injected (relaxed). */
	uint64_t failed, hung, delayed, aborted, held;
};

struct fault_channel {
	struct leap_bdev_channel base;
	struct leap_bdev_channel *child_ch;
	struct bdev_child_pool pool;
	struct bdev_wake wake;
	uint32_t seq_seen;
	struct fault_rule rule;
	uint64_t matches;
	struct bdev_io_fifo done;    /* finished here: status in priv[1] */
	struct bdev_io_fifo delayed; /* due time (ns) in priv[1] */
	struct bdev_io_fifo hung;    /* held until healed or aborted */
};

extern const struct leap_bdev_ops leap_bdev_fault_ops;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the rule ---------------------------------------------------------- */

/* Parameters of bdev_create and bdev_fault_set, as JSON gives them. */
struct fault_params {
	const char *base;
	const char *ops;
	const char *action;
	uint32_t status, every, delay_us;
	uint64_t lba, lba_count;
	bool clear;
};

#define RULE_PARAMS                                                                                \
	BDEV_PARAM("ops", BDEV_PARAM_STR, false, struct fault_params, ops),                        \
	    BDEV_PARAM("action", BDEV_PARAM_STR, false, struct fault_params, action),              \
	    BDEV_PARAM_RANGE("status", BDEV_PARAM_U32, false, struct fault_params, status, 0,      \
			     0x7ff),                                                               \
	    BDEV_PARAM_RANGE("every", BDEV_PARAM_U32, false, struct fault_params, every, 1,        \
			     UINT32_MAX),                                                          \
	    BDEV_PARAM("lba", BDEV_PARAM_U64, false, struct fault_params, lba),                    \
	    BDEV_PARAM("lba_count", BDEV_PARAM_U64, false, struct fault_params, lba_count),        \
	    BDEV_PARAM_RANGE("delay_us", BDEV_PARAM_U32, false, struct fault_params, delay_us, 0,  \
			     60000000)

static const struct bdev_param create_spec[] = {
	BDEV_PARAM("base", BDEV_PARAM_STR, true, struct fault_params, base),
	RULE_PARAMS,
};

static const struct bdev_param set_spec[] = {
	BDEV_PARAM("name", BDEV_PARAM_STR, true, struct fault_params, base),
	BDEV_PARAM("clear", BDEV_PARAM_BOOL, false, struct fault_params, clear),
	RULE_PARAMS,
};

/* Decoded params -> rule, checked against the bdev's size. */
static int rule_from_params(const struct fault_params *p, const struct leap_bdev *b,
			    struct fault_rule *r, struct leap_bdev_err *err)
{
	uint64_t blocks = b->size / b->block_size;

	memset(r, 0, sizeof(*r));
	r->every = p->every ? p->every : 1;
	r->status = p->status;
	r->lba = p->lba;
	r->lba_count = p->lba_count;
	r->delay_us = p->delay_us;
	r->ops = FAULT_R | FAULT_W;
	if (p->ops) {
		r->ops = 0;
		for (const char *c = p->ops; *c; c++) {
			if (*c == 'r')
				r->ops |= FAULT_R;
			else if (*c == 'w')
				r->ops |= FAULT_W;
			else if (*c == 'f')
				r->ops |= FAULT_F;
			else
				return bdev_err(err, -EINVAL,
						"invalid params: 'ops' is a set of r (reads), w "
						"(writes), f (flushes), got '%s'",
						p->ops);
		}
	}
	r->action = FAULT_NONE;
	if (p->action) {
		uint32_t i;

		for (i = 0; i < LEAP_ARRAY_SIZE(action_names); i++)
			if (strcmp(p->action, action_names[i]) == 0)
				break;
		if (i == LEAP_ARRAY_SIZE(action_names))
			return bdev_err(err, -EINVAL,
					"invalid params: 'action' must be none, fail or hang, "
					"got '%s'",
					p->action);
		r->action = i;
	}
	if (r->status && r->action != FAULT_FAIL)
		return bdev_err(err, -EINVAL, "invalid params: 'status' needs action 'fail'");
	if (r->lba >= blocks || (r->lba_count && r->lba_count > blocks - r->lba))
		return bdev_err(err, -EINVAL,
				"invalid params: blocks [%llu, +%llu) are beyond the bdev's %llu",
				(unsigned long long)r->lba, (unsigned long long)r->lba_count,
				(unsigned long long)blocks);
	return 0;
}

/* Control thread (one writer): publish a rule. Pairs with rule_refresh(). */
static void rule_publish(struct fault_bdev *fb, const struct fault_rule *r)
{
	uint32_t s = __atomic_load_n(&fb->seq, __ATOMIC_RELAXED);

	__atomic_store_n(&fb->seq, s + 1, __ATOMIC_RELAXED);
	/* The odd count is visible before any field changes. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&fb->rule.ops, r->ops, __ATOMIC_RELAXED);
	__atomic_store_n(&fb->rule.action, r->action, __ATOMIC_RELAXED);
	__atomic_store_n(&fb->rule.status, r->status, __ATOMIC_RELAXED);
	__atomic_store_n(&fb->rule.every, r->every, __ATOMIC_RELAXED);
	__atomic_store_n(&fb->rule.lba, r->lba, __ATOMIC_RELAXED);
	__atomic_store_n(&fb->rule.lba_count, r->lba_count, __ATOMIC_RELAXED);
	__atomic_store_n(&fb->rule.delay_us, r->delay_us, __ATOMIC_RELAXED);
	/* Every field is visible before the even count that says it is whole. */
	__atomic_store_n(&fb->seq, s + 2, __ATOMIC_RELEASE);
}

static void rule_read(const struct fault_bdev *fb, struct fault_rule *r)
{
	r->ops = __atomic_load_n(&fb->rule.ops, __ATOMIC_RELAXED);
	r->action = __atomic_load_n(&fb->rule.action, __ATOMIC_RELAXED);
	r->status = __atomic_load_n(&fb->rule.status, __ATOMIC_RELAXED);
	r->every = __atomic_load_n(&fb->rule.every, __ATOMIC_RELAXED);
	r->lba = __atomic_load_n(&fb->rule.lba, __ATOMIC_RELAXED);
	r->lba_count = __atomic_load_n(&fb->rule.lba_count, __ATOMIC_RELAXED);
	r->delay_us = __atomic_load_n(&fb->rule.delay_us, __ATOMIC_RELAXED);
}

static void release_hung(struct fault_channel *fc);

/* Channel thread: copy the rule if it changed. A rule that stops hanging releases held I/O. */
static void rule_refresh(struct fault_channel *fc)
{
	struct fault_bdev *fb = (struct fault_bdev *)fc->base.bdev;
	uint32_t s1, s2;

	do {
		s1 = __atomic_load_n(&fb->seq, __ATOMIC_ACQUIRE);
		if (s1 & 1)
			continue;
		rule_read(fb, &fc->rule);
		/* The field loads complete before the count is read again. */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&fb->seq, __ATOMIC_RELAXED);
	} while ((s1 & 1) || s1 != s2);
	fc->seq_seen = s1;
	fc->matches = 0;
	if (fc->rule.action != FAULT_HANG)
		release_hung(fc);
}

static bool rule_matches(const struct fault_rule *r, const struct leap_bdev *b,
			 const struct leap_bdev_io *io)
{
	uint32_t bit = io->op == LEAP_BDEV_OP_READ    ? FAULT_R
		       : io->op == LEAP_BDEV_OP_FLUSH ? FAULT_F
						      : FAULT_W;
	uint64_t first, end;

	if (!(r->ops & bit))
		return false;
	if (io->op == LEAP_BDEV_OP_FLUSH || (!r->lba && !r->lba_count))
		return true;
	first = io->offset / b->block_size;
	end = first + io->len / b->block_size;
	return end > r->lba && (!r->lba_count || first < r->lba + r->lba_count);
}

/* ---- I/O ----------------------------------------------------------------- */

static uint16_t fail_status(const struct fault_rule *r, const struct leap_bdev_io *io)
{
	if (r->status)
		return (uint16_t)r->status;
	return io->op == LEAP_BDEV_OP_READ
		   ? NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_UNRECOVERED_READ_ERROR)
		   : NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULTS);
}

/* Send io on to the base. -EAGAIN when the pool is empty (nothing changed). */
static int forward(struct fault_channel *fc, struct leap_bdev_io *io)
{
	struct bdev_child *c;

	if (bdev_child_get(&fc->pool, io, 1, &c))
		return -EAGAIN;
	c->io.op = io->op;
	c->io.flags = io->flags;
	c->io.offset = io->offset;
	c->io.len = io->len;
	c->io.iov = io->iov;
	c->io.iovcnt = io->iovcnt;
	c->io.buf_index = io->buf_index; /* regions live on the base channel itself */
	bdev_child_submit(&fc->pool, c, fc->child_ch);
	return 0;
}

static void finish_here(struct fault_channel *fc, struct leap_bdev_io *io, uint16_t status)
{
	io->priv[1] = status;
	bdev_fifo_push(&fc->done, io);
}

/* The rule's action for one matching I/O past its delay. -EAGAIN: pool empty. */
static int act(struct fault_channel *fc, struct leap_bdev_io *io)
{
	struct fault_bdev *fb = (struct fault_bdev *)fc->base.bdev;
	const struct fault_rule *r = &fc->rule;

	if (r->action != FAULT_NONE && ++fc->matches % r->every == 0) {
		if (r->action == FAULT_FAIL) {
			__atomic_fetch_add(&fb->failed, 1, __ATOMIC_RELAXED);
			finish_here(fc, io, fail_status(r, io));
		} else {
			__atomic_fetch_add(&fb->hung, 1, __ATOMIC_RELAXED);
			__atomic_fetch_add(&fb->held, 1, __ATOMIC_RELAXED);
			bdev_fifo_push(&fc->hung, io);
		}
		return 0;
	}
	return forward(fc, io);
}

static int fault_submit(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	struct fault_channel *fc = (struct fault_channel *)ch;
	struct fault_bdev *fb = (struct fault_bdev *)ch->bdev;
	int rc;

	bdev_assert_io(ch->bdev, io);
	if (leap_unlikely(__atomic_load_n(&fb->seq, __ATOMIC_ACQUIRE) != fc->seq_seen))
		rule_refresh(fc);
	if (leap_unlikely(rule_matches(&fc->rule, ch->bdev, io))) {
		if (fc->rule.delay_us) {
			__atomic_fetch_add(&fb->delayed, 1, __ATOMIC_RELAXED);
			io->priv[1] = now_ns() + (uint64_t)fc->rule.delay_us * 1000;
			bdev_fifo_push(&fc->delayed, io);
			rc = 0;
		} else {
			rc = act(fc, io);
		}
	} else {
		rc = forward(fc, io);
	}
	if (rc)
		return rc;
	ch->inflight++;
	ch->stats.submitted++;
	return 0;
}

/* Unlink io from a FIFO threaded through priv[0]; false if it is not there. */
static bool fifo_remove(struct bdev_io_fifo *f, struct leap_bdev_io *io)
{
	struct leap_bdev_io *prev = NULL;

	for (struct leap_bdev_io *it = f->head; it; prev = it, it = bdev_fifo_next(it)) {
		if (it != io)
			continue;
		if (prev)
			prev->priv[0] = it->priv[0];
		else
			f->head = bdev_fifo_next(it);
		if (f->tail == it)
			f->tail = prev;
		return true;
	}
	return false;
}

/* The device "recovers": what it held goes on to the base, in order. */
static void release_hung(struct fault_channel *fc)
{
	struct fault_bdev *fb = (struct fault_bdev *)fc->base.bdev;
	struct leap_bdev_io *io;

	while ((io = fc->hung.head)) {
		fc->hung.head = bdev_fifo_next(io);
		if (!fc->hung.head)
			fc->hung.tail = NULL;
		/* No child free: it waits with the delayed ones, due at once. */
		if (forward(fc, io)) {
			io->priv[1] = 0;
			bdev_fifo_push(&fc->delayed, io);
		}
		__atomic_fetch_sub(&fb->held, 1, __ATOMIC_RELAXED);
	}
}

static int fault_poll(struct leap_bdev_channel *ch)
{
	struct fault_channel *fc = (struct fault_channel *)ch;
	struct fault_bdev *fb = (struct fault_bdev *)ch->bdev;
	struct leap_bdev_io *io, *next;
	int n;

	if (leap_unlikely(__atomic_load_n(&fb->seq, __ATOMIC_ACQUIRE) != fc->seq_seen))
		rule_refresh(fc);
	n = leap_bdev_poll(fc->child_ch);
	if (n < 0)
		n = 0;
	n += bdev_child_pool_poll(&fc->pool);
	if (fc->delayed.head) {
		uint64_t now = now_ns();

		while ((io = fc->delayed.head) && io->priv[1] <= now) {
			fc->delayed.head = bdev_fifo_next(io);
			if (!fc->delayed.head)
				fc->delayed.tail = NULL;
			if (act(fc, io)) { /* pool empty: back to the front, next poll */
				io->priv[0] = (uint64_t)(uintptr_t)fc->delayed.head;
				fc->delayed.head = io;
				if (!fc->delayed.tail)
					fc->delayed.tail = io;
				break;
			}
			n++;
		}
	}
	for (io = bdev_fifo_take(&fc->done); io; io = next, n++) {
		/* Read the link first: the callback may resubmit io. */
		next = bdev_fifo_next(io);
		bdev_io_complete(ch, io, (uint16_t)io->priv[1]);
	}
	return n;
}

static int fault_abort(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	struct fault_channel *fc = (struct fault_channel *)ch;
	struct fault_bdev *fb = (struct fault_bdev *)ch->bdev;
	uint16_t aborted = NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_ABORTED_BY_REQUEST);

	if (fifo_remove(&fc->hung, io)) {
		__atomic_fetch_sub(&fb->held, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&fb->aborted, 1, __ATOMIC_RELAXED);
		finish_here(fc, io, aborted);
		return 0;
	}
	if (fifo_remove(&fc->delayed, io)) {
		__atomic_fetch_add(&fb->aborted, 1, __ATOMIC_RELAXED);
		finish_here(fc, io, aborted);
		return 0;
	}
	for (struct leap_bdev_io *it = fc->done.head; it; it = bdev_fifo_next(it))
		if (it == io)
			return 0; /* finishing at the next poll anyway */
	for (uint32_t i = 0; i < fc->pool.size; i++) {
		struct bdev_child *c = &fc->pool.children[i];

		if (c->parent == io && c->target)
			return leap_bdev_abort(c->target, &c->io);
	}
	return -EBUSY;
}

/* ---- channels -------------------------------------------------------------- */

static void fault_channel_close(struct leap_bdev_channel *ch)
{
	struct fault_channel *fc = (struct fault_channel *)ch;

	if (!fc)
		return;
	if (fc->child_ch)
		bdev_wake_del(&fc->wake, fc->child_ch);
	leap_bdev_channel_close(fc->child_ch);
	bdev_child_pool_fini(&fc->pool);
	bdev_wake_fini(&fc->wake);
	free(fc);
}

static int fault_channel_open(struct leap_bdev *bdev, struct leap_bdev_channel **out)
{
	struct fault_bdev *fb = (struct fault_bdev *)bdev;
	struct fault_channel *fc = calloc(1, sizeof(*fc));
	int rc;

	if (!fc)
		return -ENOMEM;
	fc->base.bdev = bdev;
	fc->wake.epfd = fc->wake.tfd = -1;
	fc->seq_seen = 1; /* odd: never a published count, so the first I/O reads the rule */
	rc = bdev_wake_init(&fc->wake, true);
	if (!rc)
		rc = bdev_child_pool_init(&fc->pool, &fc->base, FAULT_POOL, 0);
	if (!rc)
		rc = leap_bdev_channel_open(fb->child, &fc->child_ch);
	if (!rc)
		rc = bdev_wake_add(&fc->wake, fc->child_ch);
	if (rc) {
		LEAP_ERR("bdev", "%s: cannot open a channel: %s", bdev->name, strerror(-rc));
		fault_channel_close(&fc->base);
		return rc;
	}
	*out = &fc->base;
	return 0;
}

static int fault_wake_fd(struct leap_bdev_channel *ch)
{
	return ((struct fault_channel *)ch)->wake.epfd;
}

static bool fault_sleep_prepare(struct leap_bdev_channel *ch)
{
	struct fault_channel *fc = (struct fault_channel *)ch;
	uint64_t due = fc->delayed.head ? fc->delayed.head->priv[1] : 0;
	uint64_t tmo = leap_bdev_tmo_deadline(ch);

	if (fc->done.head || fc->pool.retry_head || fc->pool.done.head)
		return false;
	if (tmo && (!due || tmo < due))
		due = tmo;
	/* An I/O held by a hang needs nothing but a timeout or a new rule (next poll). */
	return bdev_wake_prepare(&fc->wake, &fc->child_ch, 1, due);
}

static void fault_sleep_done(struct leap_bdev_channel *ch)
{
	bdev_wake_done(&((struct fault_channel *)ch)->wake);
}

static int fault_region_register(struct leap_bdev_channel *ch, void *addr, size_t len)
{
	return leap_bdev_region_register(((struct fault_channel *)ch)->child_ch, addr, len);
}

static void fault_region_unregister(struct leap_bdev_channel *ch, int buf_index)
{
	leap_bdev_region_unregister(((struct fault_channel *)ch)->child_ch, buf_index);
}

/* ---- control ------------------------------------------------------------------ */

static void rule_json(const struct fault_rule *r, json_t *o)
{
	char ops[4];
	int n = 0;

	if (r->ops & FAULT_R)
		ops[n++] = 'r';
	if (r->ops & FAULT_W)
		ops[n++] = 'w';
	if (r->ops & FAULT_F)
		ops[n++] = 'f';
	ops[n] = 0;
	json_object_set_new(o, "ops", json_string(ops));
	json_object_set_new(o, "action", json_string(action_names[r->action]));
	json_object_set_new(o, "every", json_integer(r->every));
	json_object_set_new(o, "status", json_integer(r->status));
	json_object_set_new(o, "lba", json_integer((json_int_t)r->lba));
	json_object_set_new(o, "lba_count", json_integer((json_int_t)r->lba_count));
	json_object_set_new(o, "delay_us", json_integer(r->delay_us));
}

static int fault_create(const struct leap_bdev_common_params *common, const json_t *params,
			struct leap_bdev_err *err, leap_bdev_create_cb cb, void *cb_arg)
{
	struct fault_params p = { 0 };
	struct leap_bdev *child;
	struct fault_bdev *fb;
	struct fault_rule r;
	int rc;

	rc = bdev_params_decode(params, create_spec, LEAP_ARRAY_SIZE(create_spec), &p, err);
	if (rc)
		return rc;
	if (strcmp(p.base, common->name) == 0)
		return bdev_err(err, -EINVAL, "invalid params: a fault bdev cannot wrap itself");
	child = leap_bdev_get(p.base);
	if (!child)
		return bdev_err(err, -EINVAL, "invalid params: 'base' bdev '%s' not found", p.base);
	rc = -EINVAL;
	if (json_object_get(params, "block_size") && common->block_size != child->block_size) {
		bdev_err(err, rc, "invalid params: 'block_size' %u differs from base '%s' (%u)",
			 common->block_size, child->name, child->block_size);
		goto err_put;
	}
	if (common->size > child->size) {
		bdev_err(err, rc, "invalid params: 'size' is larger than base '%s' (%llu bytes)",
			 child->name, (unsigned long long)child->size);
		goto err_put;
	}
	fb = calloc(1, sizeof(*fb));
	if (!fb) {
		rc = bdev_err(err, -ENOMEM, "out of memory");
		goto err_put;
	}
	bdev_init_common(&fb->base, &leap_bdev_fault_ops, common);
	fb->base.block_size = child->block_size;
	if (!fb->base.size)
		fb->base.size = child->size;
	fb->base.size -= fb->base.size % fb->base.block_size;
	fb->base.mem_align = child->mem_align;
	fb->child = child;
	rc = rule_from_params(&p, &fb->base, &r, err);
	if (rc) {
		free(fb);
		goto err_put;
	}
	rule_publish(fb, &r);
	cb(cb_arg, 0, &fb->base);
	return 0;

err_put:
	leap_bdev_put(child);
	return rc;
}

static void fault_destroy(struct leap_bdev *bdev)
{
	struct fault_bdev *fb = (struct fault_bdev *)bdev;

	leap_bdev_put(fb->child);
	free(fb);
}

static int fault_write_config(const struct leap_bdev *bdev, json_t *out)
{
	const struct fault_bdev *fb = (const struct fault_bdev *)bdev;
	struct fault_rule r;

	rule_read(fb, &r);
	json_object_set_new(out, "base", json_string(fb->child->name));
	rule_json(&r, out);
	return 0;
}

static int fault_dump_info(const struct leap_bdev *bdev, json_t *out)
{
	const struct fault_bdev *fb = (const struct fault_bdev *)bdev;
	json_t *f = json_object();
	struct fault_rule r;

	if (!f)
		return -ENOMEM;
	rule_read(fb, &r);
	rule_json(&r, f);
	json_object_set_new(f, "failed", json_integer((json_int_t)fb->failed));
	json_object_set_new(f, "hung", json_integer((json_int_t)fb->hung));
	json_object_set_new(f, "held", json_integer((json_int_t)fb->held));
	json_object_set_new(f, "delayed", json_integer((json_int_t)fb->delayed));
	json_object_set_new(f, "aborted", json_integer((json_int_t)fb->aborted));
	json_object_set_new(out, "base", json_string(fb->child->name));
	json_object_set_new(out, "state",
			    json_string(r.action == FAULT_NONE && !r.delay_us ? "healthy"
					: r.action == FAULT_NONE	      ? "slow"
					: r.action == FAULT_FAIL	      ? "failing"
									      : "hanging"));
	json_object_set_new(out, "fault", f);
	return 0;
}

static bool fault_io_type_supported(const struct leap_bdev *bdev, enum leap_bdev_op op)
{
	return leap_bdev_io_type_supported(((const struct fault_bdev *)bdev)->child, op);
}

/* bdev_fault_set: replace the rule ("clear": true, or no rule keys, heals). */
static int fault_set(struct leap_bdev *bdev, const json_t *params, json_t **result,
		     struct leap_bdev_err *err)
{
	struct fault_bdev *fb = (struct fault_bdev *)bdev;
	struct fault_params p = { 0 };
	struct fault_rule r;
	int rc;

	rc = bdev_params_decode(params, set_spec, LEAP_ARRAY_SIZE(set_spec), &p, err);
	if (rc)
		return rc;
	if (p.clear &&
	    (p.ops || p.action || p.status || p.every || p.lba || p.lba_count || p.delay_us))
		return bdev_err(err, -EINVAL, "invalid params: 'clear' takes no other rule key");
	rc = rule_from_params(&p, bdev, &r, err);
	if (rc)
		return rc;
	rule_publish(fb, &r);
	LEAP_INFO("bdev", "%s: fault rule: %s on %s%s%s, one in %u, blocks %llu+%llu, +%u us",
		  bdev->name, action_names[r.action], r.ops & FAULT_R ? "r" : "",
		  r.ops & FAULT_W ? "w" : "", r.ops & FAULT_F ? "f" : "", r.every,
		  (unsigned long long)r.lba, (unsigned long long)r.lba_count, r.delay_us);
	*result = leap_bdev_info(bdev);
	return *result ? 0 : -ENOMEM;
}

static const struct leap_bdev_method fault_methods[] = {
	{ "bdev_fault_set", fault_set },
	{ NULL, NULL },
};

const struct leap_bdev_ops leap_bdev_fault_ops = {
	.type = "fault",
	.create = fault_create,
	.destroy = fault_destroy,
	.write_config = fault_write_config,
	.dump_info = fault_dump_info,
	.io_type_supported = fault_io_type_supported,
	.channel_open = fault_channel_open,
	.channel_close = fault_channel_close,
	.submit = fault_submit,
	.poll = fault_poll,
	.region_register = fault_region_register,
	.region_unregister = fault_region_unregister,
	.channel_wake_fd = fault_wake_fd,
	.sleep_prepare = fault_sleep_prepare,
	.sleep_done = fault_sleep_done,
	.abort = fault_abort,
	.methods = fault_methods,
};

LEAP_BDEV_MODULE_REGISTER(leap_bdev_fault_ops)
