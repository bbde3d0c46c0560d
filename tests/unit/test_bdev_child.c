// SPDX-License-Identifier: BSD-3-Clause
/*
 * The child-I/O pool (backend/bdev_child.c) under a test-only fan-out
 * backend, "mirror": writes, zeroes, deallocations and flushes go to both
 * legs, reads to the first. Checked: data lands on both legs, a parent
 * completes once and only after all its children, never inside submit();
 * the pool is fixed (a full pool is -EAGAIN, and every child comes back); a
 * leg's error reaches the parent as its NVMe status; a leg that is full
 * gets its child later, in order; a leg that refuses outright fails the
 * parent from the next poll; and no I/O allocates (malloc is counted). The
 * mirror takes references on its legs from create(), which
 * the registry runs without its lock.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "backend/bdev_internal.h"
#include "test_bdev_helpers.h"

/* Count allocations while `counting` (the process's malloc, glibc's underneath). */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
static _Atomic int counting, mallocs;

void *malloc(size_t n)
{
	if (atomic_load_explicit(&counting, memory_order_relaxed))
		atomic_fetch_add(&mallocs, 1);
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
	if (atomic_load_explicit(&counting, memory_order_relaxed))
		atomic_fetch_add(&mallocs, 1);
	return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
	if (atomic_load_explicit(&counting, memory_order_relaxed))
		atomic_fetch_add(&mallocs, 1);
	return __libc_realloc(p, n);
}

LEAP_BDEV_MODULE_USE(leap_bdev_mem_ops);

/* ---- the "mirror" module ------------------------------------------------------ */

#define POOL 8

struct mirror_bdev {
	struct leap_bdev base;
	struct leap_bdev *leg[2];
};

struct mirror_channel {
	struct leap_bdev_channel base;
	struct leap_bdev_channel *leg[2];
	struct bdev_child_pool pool;
};

struct mirror_params {
	const char *leg0, *leg1;
};

static const struct bdev_param mirror_spec[] = {
	BDEV_PARAM("leg0", BDEV_PARAM_STR, true, struct mirror_params, leg0),
	BDEV_PARAM("leg1", BDEV_PARAM_STR, true, struct mirror_params, leg1),
};

extern const struct leap_bdev_ops mirror_ops;

static void mirror_destroy(struct leap_bdev *bdev)
{
	struct mirror_bdev *m = (struct mirror_bdev *)bdev;

	leap_bdev_put(m->leg[0]);
	leap_bdev_put(m->leg[1]);
	free(m);
}

static int mirror_create(const struct leap_bdev_common_params *common, const json_t *params,
			 struct leap_bdev_err *err, leap_bdev_create_cb cb, void *cb_arg)
{
	struct mirror_params p = { 0 };
	struct mirror_bdev *m;
	int rc = bdev_params_decode(params, mirror_spec, LEAP_ARRAY_SIZE(mirror_spec), &p, err);

	if (rc)
		return rc;
	m = calloc(1, sizeof(*m));
	bdev_init_common(&m->base, &mirror_ops, common);
	m->leg[0] = leap_bdev_get(p.leg0);
	m->leg[1] = leap_bdev_get(p.leg1);
	if (!m->leg[0] || !m->leg[1]) {
		rc = bdev_err(err, -ENOENT, "leg '%s' not found", m->leg[0] ? p.leg1 : p.leg0);
		mirror_destroy(&m->base);
		cb(cb_arg, rc, NULL);
		return 0;
	}
	m->base.size = LEAP_MIN(m->leg[0]->size, m->leg[1]->size);
	cb(cb_arg, 0, &m->base);
	return 0;
}

static void mirror_channel_close(struct leap_bdev_channel *ch)
{
	struct mirror_channel *mc = (struct mirror_channel *)ch;

	leap_bdev_channel_close(mc->leg[0]);
	leap_bdev_channel_close(mc->leg[1]);
	bdev_child_pool_fini(&mc->pool);
	free(mc);
}

static int mirror_channel_open(struct leap_bdev *bdev, struct leap_bdev_channel **out)
{
	struct mirror_bdev *m = (struct mirror_bdev *)bdev;
	struct mirror_channel *mc = calloc(1, sizeof(*mc));
	int rc;

	if (!mc)
		return -ENOMEM;
	mc->base.bdev = bdev;
	rc = leap_bdev_channel_open(m->leg[0], &mc->leg[0]);
	if (!rc)
		rc = leap_bdev_channel_open(m->leg[1], &mc->leg[1]);
	if (!rc)
		rc = bdev_child_pool_init(&mc->pool, &mc->base, POOL, 0);
	if (rc) {
		mirror_channel_close(&mc->base);
		return rc;
	}
	*out = &mc->base;
	return 0;
}

static int mirror_submit(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	struct mirror_channel *mc = (struct mirror_channel *)ch;
	uint32_t k = io->op == LEAP_BDEV_OP_READ ? 1 : 2;
	struct bdev_child *kids[2];

	if (bdev_child_get(&mc->pool, io, k, kids)) {
		ch->stats.eagain++;
		return -EAGAIN;
	}
	ch->inflight++;
	ch->stats.submitted++;
	for (uint32_t i = 0; i < k; i++) {
		kids[i]->io.op = io->op;
		kids[i]->io.flags = io->flags;
		kids[i]->io.offset = io->offset;
		kids[i]->io.len = io->len;
		kids[i]->io.iov = io->iov; /* a mirror's child moves the parent's data as is */
		kids[i]->io.iovcnt = io->iovcnt;
	}
	for (uint32_t i = 0; i < k; i++)
		bdev_child_submit(&mc->pool, kids[i], mc->leg[i]);
	return 0;
}

static int mirror_poll(struct leap_bdev_channel *ch)
{
	struct mirror_channel *mc = (struct mirror_channel *)ch;
	int n = leap_bdev_poll(mc->leg[0]) + leap_bdev_poll(mc->leg[1]);

	return n + bdev_child_pool_poll(&mc->pool);
}

const struct leap_bdev_ops mirror_ops = {
	.type = "mirror",
	.create = mirror_create,
	.destroy = mirror_destroy,
	.channel_open = mirror_channel_open,
	.channel_close = mirror_channel_close,
	.submit = mirror_submit,
	.poll = mirror_poll,
};

LEAP_BDEV_MODULE_REGISTER(mirror_ops)

/* ---- leg wrapper: full once, refuse once, fail once ------------------------------- */

static struct leap_bdev_ops leg1_ops;
static int (*leg1_real_submit)(struct leap_bdev_channel *ch, struct leap_bdev_io *io);
static int leg1_eagain, leg1_refuse, leg1_fail;
static leap_bdev_cb leg1_orig_cb;

static void leg1_fail_cb(struct leap_bdev_io *io, uint16_t status)
{
	(void)status;
	io->cb = leg1_orig_cb;
	leg1_orig_cb(io, leap_bdev_status_from_errno(-ENOSPC, (enum leap_bdev_op)io->op));
}

static int leg1_submit(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	if (leg1_eagain) {
		leg1_eagain--;
		return -EAGAIN;
	}
	if (leg1_refuse) {
		leg1_refuse--;
		return -EIO;
	}
	if (leg1_fail) {
		leg1_fail--;
		leg1_orig_cb = io->cb;
		io->cb = leg1_fail_cb;
	}
	return leg1_real_submit(ch, io);
}

static struct leap_bdev *leg[2], *mir;
static struct leap_bdev_channel *ch, *lch[2];

static void setup(void)
{
	for (int i = 0; i < 2; i++) {
		T_ASSERT_EQ(t_create(json_pack("{s:s, s:s, s:i}", "type", "mem", "name",
					       i ? "leg1" : "leg0", "size", 1 << 20),
				     &leg[i]),
			    0);
		T_ASSERT_EQ(leap_bdev_channel_open(leg[i], &lch[i]), 0);
	}
	leg1_ops = *leg[1]->ops;
	leg1_real_submit = leg1_ops.submit;
	leg1_ops.submit = leg1_submit;
	leg[1]->ops = &leg1_ops;
	leg1_eagain = leg1_refuse = leg1_fail = 0;
	T_ASSERT_EQ(t_create(json_pack("{s:s, s:s, s:s, s:s}", "type", "mirror", "name", "mir",
				       "leg0", "leg0", "leg1", "leg1"),
			     &mir),
		    0);
	T_ASSERT_U64_EQ(mir->size, 1 << 20);
	T_ASSERT_EQ(leg[0]->refs, 1);
	T_ASSERT_EQ(leap_bdev_channel_open(mir, &ch), 0);
}

static void teardown(void)
{
	leap_bdev_channel_close(ch);
	T_ASSERT_EQ(leap_bdev_destroy(mir), 0);
	for (int i = 0; i < 2; i++) {
		leap_bdev_channel_close(lch[i]);
		T_ASSERT_EQ(leg[i]->refs, 0);
		T_ASSERT_EQ(leap_bdev_destroy(leg[i]), 0);
	}
}

static struct bdev_child_pool *pool(void)
{
	return &((struct mirror_channel *)ch)->pool;
}

static void test_fan_out_data_and_completion(void)
{
	uint8_t *w = abuf(8192), *r = abuf(8192);
	struct tio t[2];

	setup();
	pattern_fill(w, 8192, 4096, 5);
	/* Written through the mirror: on both legs. */
	tio_init(&t[0], LEAP_BDEV_OP_WRITE, 4096, w, 8192, 2);
	T_ASSERT_EQ(leap_bdev_submit(ch, &t[0].io), 0);
	T_ASSERT_EQ(t[0].calls, 0); /* never from submit() */
	T_ASSERT_EQ(bdev_child_avail(pool()), POOL - 2);
	T_ASSERT_EQ(t_wait(ch, &t[0].calls, 1), 1);
	T_ASSERT_EQ(t[0].status, 0);
	T_ASSERT_EQ(bdev_child_avail(pool()), POOL);
	for (int i = 0; i < 2; i++) {
		memset(r, 0, 8192);
		T_ASSERT_EQ(t_io(lch[i], LEAP_BDEV_OP_READ, 4096, r, 8192, 1), 0);
		T_ASSERT(pattern_check(r, 8192, 4096, 5));
	}
	/* Read back through it (one child), flushed, zeroed on both legs. */
	memset(r, 0, 8192);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 4096, r, 8192, 4), 0);
	T_ASSERT(pattern_check(r, 8192, 4096, 5));
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_FLUSH, 0, NULL, 0, 0), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE_ZEROES, 4096, NULL, 4096, 0), 0);
	for (int i = 0; i < 2; i++) {
		T_ASSERT_EQ(t_io(lch[i], LEAP_BDEV_OP_READ, 4096, r, 8192, 1), 0);
		T_ASSERT(all_zero(r, 4096));
		T_ASSERT(pattern_check(r + 4096, 4096, 8192, 5));
	}
	T_ASSERT_U64_EQ(ch->stats.completed, 4);
	T_ASSERT_U64_EQ(ch->stats.errors, 0);
	T_ASSERT_EQ(ch->inflight, 0);
	/* The pool is the only memory the fan-out uses: no allocation per I/O. */
	atomic_store(&mallocs, 0);
	atomic_store(&counting, 1);
	for (int i = 0; i < 1000; i++) {
		tio_init(&t[1], i % 2 ? LEAP_BDEV_OP_READ : LEAP_BDEV_OP_WRITE,
			 (uint64_t)(i % 64) * 4096, w, 4096, 1);
		if (t_submit(ch, &t[1]) || t_wait(ch, &t[1].calls, 1) != 1 || t[1].status)
			break;
	}
	atomic_store(&counting, 0);
	T_ASSERT_EQ(atomic_load(&mallocs), 0);
	T_ASSERT_U64_EQ(ch->stats.completed, 1004);
	teardown();
	free(w);
	free(r);
}

/* POOL children: 4 writes in flight take them all; the 5th is -EAGAIN until some come back. */
static void test_pool_exhaustion(void)
{
	uint8_t *w = abuf(5 * 4096);
	struct tio t[5];

	setup();
	for (int i = 0; i < 4; i++) {
		tio_init(&t[i], LEAP_BDEV_OP_WRITE, (uint64_t)i * 4096, w + i * 4096, 4096, 1);
		T_ASSERT_EQ(leap_bdev_submit(ch, &t[i].io), 0);
	}
	T_ASSERT_EQ(bdev_child_avail(pool()), 0);
	tio_init(&t[4], LEAP_BDEV_OP_WRITE, 4 * 4096, w + 4 * 4096, 4096, 1);
	T_ASSERT_EQ(leap_bdev_submit(ch, &t[4].io), -EAGAIN);
	T_ASSERT_U64_EQ(ch->stats.eagain, 1);
	leap_bdev_poll(ch);
	for (int i = 0; i < 4; i++)
		T_ASSERT_EQ(t[i].calls, 1);
	T_ASSERT_EQ(bdev_child_avail(pool()), POOL);
	T_ASSERT_EQ(t_submit(ch, &t[4]), 0);
	T_ASSERT_EQ(t_wait(ch, &t[4].calls, 1), 1);
	T_ASSERT_EQ(t[4].status, 0);
	T_ASSERT_EQ(bdev_child_avail(pool()), POOL);
	teardown();
	free(w);
}

/* One leg's error is the parent's status, delivered once, after both legs. */
static void test_child_error_reaches_parent(void)
{
	uint8_t *w = abuf(4096);
	struct tio t;

	setup();
	leg1_fail = 1;
	tio_init(&t, LEAP_BDEV_OP_WRITE, 0, w, 4096, 1);
	T_ASSERT_EQ(leap_bdev_submit(ch, &t.io), 0);
	T_ASSERT_EQ(t_wait(ch, &t.calls, 1), 1);
	leap_bdev_poll(ch);
	T_ASSERT_EQ(t.calls, 1);
	T_ASSERT_EQ(t.status, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_CAPACITY_EXCEEDED));
	T_ASSERT_U64_EQ(ch->stats.errors, 1);
	T_ASSERT_EQ(bdev_child_avail(pool()), POOL);
	teardown();
	free(w);
}

/* A full leg takes its child at a later poll; the parent waits for it. */
static void test_child_retried_when_leg_full(void)
{
	uint8_t *w = abuf(4096), *r = abuf(4096);
	struct tio t;

	setup();
	leg1_eagain = 2;
	pattern_fill(w, 4096, 0, 9);
	tio_init(&t, LEAP_BDEV_OP_WRITE, 0, w, 4096, 1);
	T_ASSERT_EQ(leap_bdev_submit(ch, &t.io), 0);
	leap_bdev_poll(ch); /* leg0 done; leg1 still refuses once */
	T_ASSERT_EQ(t.calls, 0);
	T_ASSERT_EQ(t_wait(ch, &t.calls, 1), 1);
	T_ASSERT_EQ(t.status, 0);
	T_ASSERT_EQ(leg1_eagain, 0);
	T_ASSERT_EQ(t_io(lch[1], LEAP_BDEV_OP_READ, 0, r, 4096, 1), 0);
	T_ASSERT(pattern_check(r, 4096, 0, 9));
	T_ASSERT_EQ(bdev_child_avail(pool()), POOL);
	teardown();
	free(w);
	free(r);
}

/* A leg refusing outright inside submit(): the parent fails from the next poll, not before. */
static void test_child_refused_fails_parent_from_poll(void)
{
	uint8_t *w = abuf(4096);
	struct tio t;

	setup();
	leg1_refuse = 1;
	tio_init(&t, LEAP_BDEV_OP_WRITE, 0, w, 4096, 1);
	T_ASSERT_EQ(leap_bdev_submit(ch, &t.io), 0);
	T_ASSERT_EQ(t.calls, 0);
	T_ASSERT_EQ(t_wait(ch, &t.calls, 1), 1);
	T_ASSERT_EQ(t.status, NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULTS));
	T_ASSERT_EQ(ch->inflight, 0);
	T_ASSERT_EQ(bdev_child_avail(pool()), POOL);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 0, w, 4096, 1), 0);
	teardown();
	free(w);
}

static void test_mirror_needs_its_legs(void)
{
	struct leap_bdev *b = NULL;

	T_ASSERT_EQ(
	    t_create(json_pack("{s:s, s:s, s:s}", "type", "mirror", "name", "m", "leg0", "x"), &b),
	    -EINVAL);
	T_ASSERT_STR_EQ(t_err.msg, "invalid params: missing required field 'leg1'");
	T_ASSERT_EQ(t_create(json_pack("{s:s, s:s, s:s, s:s}", "type", "mirror", "name", "m",
				       "leg0", "x", "leg1", "y"),
			     &b),
		    -ENOENT);
	T_ASSERT_STR_EQ(t_err.msg, "leg 'x' not found");
}

static void quiet(enum leap_log_level l, const char *s, const char *f, va_list ap, void *c)
{
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_fan_out_data_and_completion),
		TAP_CASE(test_pool_exhaustion),
		TAP_CASE(test_child_error_reaches_parent),
		TAP_CASE(test_child_retried_when_leg_full),
		TAP_CASE(test_child_refused_fails_parent_from_poll),
		TAP_CASE(test_mirror_needs_its_legs),
	};

	leap_log_set_callback(quiet, NULL);
	return tap_run(cases, TAP_N(cases));
}
