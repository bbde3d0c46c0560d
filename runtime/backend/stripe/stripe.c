// SPDX-License-Identifier: BSD-3-Clause
/*
 * The stripe backend (RAID-0): 2..16 legs of any type, named at creation,
 * addressed chunk by chunk in rotation -- chunk c of the stripe is chunk
 * c / n of leg c % n, so a leg's chunks of one I/O are contiguous on that
 * leg. A Read or Write is split at chunk boundaries, one child per piece
 * with its slice of the caller's iovec; Write Zeroes and Deallocate, which
 * carry no data, become one child per leg over that leg's contiguous range;
 * a Flush goes to every leg. Children come from the channel's pool
 * (bdev_child.c), the parent completes when its last child has, with the
 * first error any child met: there is no redundancy to hide one.
 *
 * Every channel opens one channel per leg; their wake fds nest in ours
 * (bdev_wake.c). Regions registered on a stripe channel are registered on
 * every leg channel, so a child whose slice lies in a registered region
 * keeps the fixed-buffer path of its leg.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "leapio/nvme_spec.h"
#include "backend/bdev_internal.h"
#include "backend/bdev_wake_internal.h"

#define STRIPE_MAX_LEGS	     16
#define STRIPE_POOL	     1024 /* children per channel */
#define STRIPE_MAX_IOV	     64	  /* iovecs in one piece's slice */
#define STRIPE_MAX_PIECES    256  /* children of one I/O */
#define STRIPE_MAX_REGIONS   16
#define STRIPE_CHUNK_MIN     4096u
#define STRIPE_CHUNK_MAX     (16u << 20)
#define STRIPE_CHUNK_DEFAULT (64u << 10)

/* The geometry, what the split math needs. */
struct stripe_geom {
	uint32_t n;	/* legs */
	uint32_t shift; /* log2(chunk size) */
};

struct stripe_bdev {
	struct leap_bdev base;
	struct stripe_geom g;
	struct leap_bdev *legs[STRIPE_MAX_LEGS];
};

struct stripe_channel {
	struct leap_bdev_channel base;
	struct leap_bdev_channel *leg_ch[STRIPE_MAX_LEGS];
	struct bdev_child_pool pool;
	struct bdev_wake wake;
	/* Our region index -> each leg channel's buf_index (-1: not registered there). */
	bool region_used[STRIPE_MAX_REGIONS];
	int32_t region_idx[STRIPE_MAX_REGIONS][STRIPE_MAX_LEGS];
};

extern const struct leap_bdev_ops leap_bdev_stripe_ops;

/* ---- split math ---------------------------------------------------------- */

/* Stripe byte offset -> (leg, byte offset on that leg). */
static inline uint32_t stripe_map(const struct stripe_geom *g, uint64_t off, uint64_t *leg_off)
{
	uint64_t chunk = off >> g->shift;

	*leg_off = ((chunk / g->n) << g->shift) | (off & ((1ull << g->shift) - 1));
	return (uint32_t)(chunk % g->n);
}

/* Pieces of [off, off + len) split at chunk boundaries. */
static inline uint32_t stripe_pieces(const struct stripe_geom *g, uint64_t off, uint64_t len)
{
	return (uint32_t)(((off + len - 1) >> g->shift) - (off >> g->shift) + 1);
}

/*
 * The contiguous range leg `leg` holds of [off, off + len): false when it
 * holds none of it.
 */
static bool stripe_leg_range(const struct stripe_geom *g, uint64_t off, uint64_t len, uint32_t leg,
			     uint64_t *leg_off, uint64_t *leg_len)
{
	uint64_t mask = (1ull << g->shift) - 1, last = off + len - 1;
	uint64_t c0 = off >> g->shift, c1 = last >> g->shift;
	uint64_t cf = c0 + (leg + g->n - c0 % g->n) % g->n;
	uint64_t cl, start, end;

	if (cf > c1)
		return false;
	cl = c1 - (c1 % g->n + g->n - leg) % g->n;
	start = ((cf / g->n) << g->shift) + (cf == c0 ? (off & mask) : 0);
	end = ((cl / g->n) << g->shift) + (cl == c1 ? (last & mask) + 1 : mask + 1);
	*leg_off = start;
	*leg_len = end - start;
	return true;
}

/*
 * The slice [skip, skip + len) of iov[0..cnt) into out[0..max): the entry
 * count, or 0 if it needs more than max entries.
 */
static uint32_t iov_slice(const struct iovec *iov, uint32_t cnt, uint64_t skip, uint64_t len,
			  struct iovec *out, uint32_t max)
{
	uint32_t i = 0, n = 0;

	while (i < cnt && skip >= iov[i].iov_len)
		skip -= iov[i++].iov_len;
	for (; i < cnt && len; i++) {
		uint64_t take = iov[i].iov_len - skip;

		if (take > len)
			take = len;
		if (n == max)
			return 0;
		out[n].iov_base = (char *)iov[i].iov_base + skip;
		out[n++].iov_len = take;
		len -= take;
		skip = 0;
	}
	return len ? 0 : n;
}

/* ---- I/O ------------------------------------------------------------------- */

static int32_t child_buf_index(const struct stripe_channel *sc, const struct leap_bdev_io *io,
			       uint32_t leg)
{
	if (io->buf_index < 0 || io->buf_index >= STRIPE_MAX_REGIONS || io->iovcnt != 1 ||
	    !sc->region_used[io->buf_index])
		return -1;
	return sc->region_idx[io->buf_index][leg];
}

static int stripe_submit(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	struct stripe_channel *sc = (struct stripe_channel *)ch;
	const struct stripe_bdev *sb = (const struct stripe_bdev *)ch->bdev;
	const struct stripe_geom *g = &sb->g;
	struct bdev_child *kids[STRIPE_MAX_PIECES];
	uint32_t k, i;

	bdev_assert_io(ch->bdev, io);
	switch (io->op) {
	case LEAP_BDEV_OP_FLUSH:
		k = g->n;
		break;
	case LEAP_BDEV_OP_WRITE_ZEROES:
	case LEAP_BDEV_OP_DEALLOCATE:
		k = stripe_pieces(g, io->offset, io->len);
		if (k > g->n)
			k = g->n;
		break;
	default:
		k = stripe_pieces(g, io->offset, io->len);
		/* Beyond any MDTS: refused, not split. A slice never has more entries than this. */
		if (leap_unlikely(k > STRIPE_MAX_PIECES || io->iovcnt > STRIPE_MAX_IOV))
			return -EINVAL;
		break;
	}
	if (bdev_child_get(&sc->pool, io, k, kids))
		return -EAGAIN;
	ch->inflight++;
	ch->stats.submitted++;

	if (io->op == LEAP_BDEV_OP_FLUSH) {
		for (i = 0; i < k; i++) {
			kids[i]->io.op = LEAP_BDEV_OP_FLUSH;
			bdev_child_submit(&sc->pool, kids[i], sc->leg_ch[i]);
		}
		return 0;
	}
	if (io->op == LEAP_BDEV_OP_WRITE_ZEROES || io->op == LEAP_BDEV_OP_DEALLOCATE) {
		uint32_t used = 0;

		/* k legs hold a part; with fewer chunks than legs, only those. */
		for (uint32_t leg = 0; leg < g->n && used < k; leg++) {
			uint64_t lo, ll;

			if (!stripe_leg_range(g, io->offset, io->len, leg, &lo, &ll))
				continue;
			kids[used]->io.op = io->op;
			kids[used]->io.offset = lo;
			kids[used]->io.len = ll;
			bdev_child_submit(&sc->pool, kids[used++], sc->leg_ch[leg]);
		}
		return 0;
	}
	/* Read, Write: one piece per chunk touched, each its slice of the data. */
	{
		uint64_t pos = io->offset, end = io->offset + io->len;
		uint64_t chunk = 1ull << g->shift;

		for (i = 0; i < k; i++) {
			struct bdev_child *c = kids[i];
			uint64_t next = (pos & ~(chunk - 1)) + chunk, lo;
			uint64_t plen = (next < end ? next : end) - pos;
			uint32_t leg = stripe_map(g, pos, &lo);

			c->io.op = io->op;
			c->io.flags = io->flags;
			c->io.offset = lo;
			c->io.len = plen;
			c->io.iovcnt = (uint16_t)iov_slice(io->iov, io->iovcnt, pos - io->offset,
							   plen, c->iov, STRIPE_MAX_IOV);
			c->io.buf_index = child_buf_index(sc, io, leg);
			bdev_child_submit(&sc->pool, c, sc->leg_ch[leg]);
			pos += plen;
		}
	}
	return 0;
}

static int stripe_poll(struct leap_bdev_channel *ch)
{
	struct stripe_channel *sc = (struct stripe_channel *)ch;
	const struct stripe_bdev *sb = (const struct stripe_bdev *)ch->bdev;
	int n = 0;

	for (uint32_t i = 0; i < sb->g.n; i++) {
		int r = leap_bdev_poll(sc->leg_ch[i]);

		if (r > 0)
			n += r;
	}
	return n + bdev_child_pool_poll(&sc->pool);
}

static int stripe_abort(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	struct stripe_channel *sc = (struct stripe_channel *)ch;
	int rc = -EBUSY;

	for (uint32_t i = 0; i < sc->pool.size; i++) {
		struct bdev_child *c = &sc->pool.children[i];

		if (c->parent == io && c->target && leap_bdev_abort(c->target, &c->io) == 0)
			rc = 0;
	}
	return rc;
}

/* ---- channels ------------------------------------------------------------- */

static void stripe_channel_close(struct leap_bdev_channel *ch)
{
	struct stripe_channel *sc = (struct stripe_channel *)ch;

	if (!sc)
		return;
	for (uint32_t i = 0; i < STRIPE_MAX_LEGS; i++) {
		if (!sc->leg_ch[i])
			continue;
		bdev_wake_del(&sc->wake, sc->leg_ch[i]);
		leap_bdev_channel_close(sc->leg_ch[i]);
	}
	bdev_child_pool_fini(&sc->pool);
	bdev_wake_fini(&sc->wake);
	free(sc);
}

static int stripe_channel_open(struct leap_bdev *bdev, struct leap_bdev_channel **out)
{
	struct stripe_bdev *sb = (struct stripe_bdev *)bdev;
	struct stripe_channel *sc = calloc(1, sizeof(*sc));
	int rc;

	if (!sc)
		return -ENOMEM;
	sc->base.bdev = bdev;
	sc->wake.epfd = sc->wake.tfd = -1;
	rc = bdev_wake_init(&sc->wake, false);
	if (!rc)
		rc = bdev_child_pool_init(&sc->pool, &sc->base, STRIPE_POOL, STRIPE_MAX_IOV);
	for (uint32_t i = 0; !rc && i < sb->g.n; i++) {
		rc = leap_bdev_channel_open(sb->legs[i], &sc->leg_ch[i]);
		if (rc)
			sc->leg_ch[i] = NULL;
		else
			rc = bdev_wake_add(&sc->wake, sc->leg_ch[i]);
	}
	if (rc) {
		LEAP_ERR("bdev", "%s: cannot open a channel: %s", bdev->name, strerror(-rc));
		stripe_channel_close(&sc->base);
		return rc;
	}
	*out = &sc->base;
	return 0;
}

static int stripe_wake_fd(struct leap_bdev_channel *ch)
{
	return ((struct stripe_channel *)ch)->wake.epfd;
}

static bool stripe_sleep_prepare(struct leap_bdev_channel *ch)
{
	struct stripe_channel *sc = (struct stripe_channel *)ch;

	if (sc->pool.retry_head || sc->pool.done.head)
		return false;
	return bdev_wake_prepare(&sc->wake, sc->leg_ch, ((struct stripe_bdev *)ch->bdev)->g.n, 0);
}

static void stripe_sleep_done(struct leap_bdev_channel *ch)
{
	bdev_wake_done(&((struct stripe_channel *)ch)->wake);
}

static int stripe_region_register(struct leap_bdev_channel *ch, void *addr, size_t len)
{
	struct stripe_channel *sc = (struct stripe_channel *)ch;
	uint32_t n = ((struct stripe_bdev *)ch->bdev)->g.n, r, ok = 0;

	for (r = 0; r < STRIPE_MAX_REGIONS && sc->region_used[r]; r++)
		;
	if (r == STRIPE_MAX_REGIONS)
		return -ENOSPC;
	for (uint32_t i = 0; i < n; i++) {
		int idx = leap_bdev_region_register(sc->leg_ch[i], addr, len);

		sc->region_idx[r][i] = idx >= 0 ? idx : -1;
		ok += idx >= 0;
	}
	if (!ok)
		return -EOPNOTSUPP;
	sc->region_used[r] = true;
	return (int)r;
}

static void stripe_region_unregister(struct leap_bdev_channel *ch, int buf_index)
{
	struct stripe_channel *sc = (struct stripe_channel *)ch;
	uint32_t n = ((struct stripe_bdev *)ch->bdev)->g.n;

	if (buf_index < 0 || buf_index >= STRIPE_MAX_REGIONS || !sc->region_used[buf_index])
		return;
	for (uint32_t i = 0; i < n; i++)
		leap_bdev_region_unregister(sc->leg_ch[i], sc->region_idx[buf_index][i]);
	sc->region_used[buf_index] = false;
}

/* ---- control -------------------------------------------------------------------- */

struct stripe_params {
	json_t *legs;
	uint32_t chunk_size;
};

static const struct bdev_param stripe_spec[] = {
	BDEV_PARAM("legs", BDEV_PARAM_JSON, true, struct stripe_params, legs),
	BDEV_PARAM_RANGE("chunk_size", BDEV_PARAM_U32, false, struct stripe_params, chunk_size,
			 STRIPE_CHUNK_MIN, STRIPE_CHUNK_MAX),
};

static void put_legs(struct stripe_bdev *sb)
{
	for (uint32_t i = 0; i < STRIPE_MAX_LEGS; i++)
		leap_bdev_put(sb->legs[i]);
}

/* "a,b" (what leapctl --param gives) as ["a", "b"]; anything else as is. New reference. */
static json_t *names_array(json_t *v)
{
	const char *s = json_string_value(v);
	json_t *a;

	if (!s)
		return json_incref(v);
	a = json_array();
	while (a && *s) {
		const char *c = strchr(s, ',');
		size_t n = c ? (size_t)(c - s) : strlen(s);

		json_array_append_new(a, json_stringn(s, n));
		s += n + (c != NULL);
	}
	return a;
}

static int create_from(const struct leap_bdev_common_params *common, const json_t *params,
		       struct stripe_params p, struct leap_bdev_err *err, leap_bdev_create_cb cb,
		       void *cb_arg)
{
	struct stripe_bdev *sb;
	uint64_t per_leg = UINT64_MAX, size;
	size_t n;
	int rc;

	n = json_is_array(p.legs) ? json_array_size(p.legs) : 0;
	if (n < 2 || n > STRIPE_MAX_LEGS)
		return bdev_err(err, -EINVAL,
				"invalid params: 'legs' must be an array of 2 to %d bdev names",
				STRIPE_MAX_LEGS);
	if (p.chunk_size & (p.chunk_size - 1))
		return bdev_err(err, -EINVAL,
				"invalid params: 'chunk_size' must be a power of two, got %u",
				p.chunk_size);
	sb = calloc(1, sizeof(*sb));
	if (!sb)
		return bdev_err(err, -ENOMEM, "out of memory");
	bdev_init_common(&sb->base, &leap_bdev_stripe_ops, common);
	sb->g.n = (uint32_t)n;
	sb->g.shift = (uint32_t)__builtin_ctz(p.chunk_size);
	rc = -EINVAL;
	for (size_t i = 0; i < n; i++) {
		const char *name = json_string_value(json_array_get(p.legs, i));
		struct leap_bdev *leg;

		if (!name) {
			bdev_err(err, rc, "invalid params: 'legs' must be an array of bdev names");
			goto err_put;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(sb->legs[j]->name, name) == 0) {
				bdev_err(err, rc, "invalid params: leg '%s' given twice", name);
				goto err_put;
			}
		leg = sb->legs[i] = leap_bdev_get(name);
		if (!leg) {
			bdev_err(err, rc, "invalid params: leg bdev '%s' not found", name);
			goto err_put;
		}
		if (leg->block_size != sb->legs[0]->block_size) {
			bdev_err(err, rc, "invalid params: legs '%s' and '%s' differ in block size",
				 sb->legs[0]->name, name);
			goto err_put;
		}
		if (leg->size < per_leg)
			per_leg = leg->size;
		if (leg->mem_align > sb->base.mem_align)
			sb->base.mem_align = leg->mem_align;
	}
	if (json_object_get(params, "block_size") &&
	    common->block_size != sb->legs[0]->block_size) {
		bdev_err(err, rc, "invalid params: 'block_size' %u differs from the legs' %u",
			 common->block_size, sb->legs[0]->block_size);
		goto err_put;
	}
	sb->base.block_size = sb->legs[0]->block_size;
	size = (per_leg >> sb->g.shift << sb->g.shift) * n;
	if (!size) {
		bdev_err(err, rc, "invalid params: a leg is smaller than one chunk (%u bytes)",
			 p.chunk_size);
		goto err_put;
	}
	if (common->size > size) {
		bdev_err(err, rc,
			 "invalid params: 'size' is larger than the legs hold (%llu bytes)",
			 (unsigned long long)size);
		goto err_put;
	}
	if (!sb->base.size)
		sb->base.size = size;
	cb(cb_arg, 0, &sb->base);
	return 0;

err_put:
	put_legs(sb);
	free(sb);
	return rc;
}

static int stripe_create(const struct leap_bdev_common_params *common, const json_t *params,
			 struct leap_bdev_err *err, leap_bdev_create_cb cb, void *cb_arg)
{
	struct stripe_params p = { .chunk_size = STRIPE_CHUNK_DEFAULT };
	int rc;

	rc = bdev_params_decode(params, stripe_spec, LEAP_ARRAY_SIZE(stripe_spec), &p, err);
	if (rc)
		return rc;
	p.legs = names_array(p.legs);
	/* The callback runs inside (creation is synchronous): the names are ours until then. */
	rc = create_from(common, params, p, err, cb, cb_arg);
	json_decref(p.legs);
	return rc;
}

static void stripe_destroy(struct leap_bdev *bdev)
{
	put_legs((struct stripe_bdev *)bdev);
	free(bdev);
}

static json_t *leg_names(const struct stripe_bdev *sb)
{
	json_t *a = json_array();

	for (uint32_t i = 0; a && i < sb->g.n; i++)
		json_array_append_new(a, json_string(sb->legs[i]->name));
	return a;
}

static int stripe_write_config(const struct leap_bdev *bdev, json_t *out)
{
	const struct stripe_bdev *sb = (const struct stripe_bdev *)bdev;

	json_object_set_new(out, "legs", leg_names(sb));
	json_object_set_new(out, "chunk_size", json_integer(1ll << sb->g.shift));
	return 0;
}

static int stripe_dump_info(const struct leap_bdev *bdev, json_t *out)
{
	return stripe_write_config(bdev, out);
}

static bool stripe_io_type_supported(const struct leap_bdev *bdev, enum leap_bdev_op op)
{
	const struct stripe_bdev *sb = (const struct stripe_bdev *)bdev;

	for (uint32_t i = 0; i < sb->g.n; i++)
		if (!leap_bdev_io_type_supported(sb->legs[i], op))
			return false;
	return true;
}

const struct leap_bdev_ops leap_bdev_stripe_ops = {
	.type = "stripe",
	.create = stripe_create,
	.destroy = stripe_destroy,
	.write_config = stripe_write_config,
	.dump_info = stripe_dump_info,
	.io_type_supported = stripe_io_type_supported,
	.channel_open = stripe_channel_open,
	.channel_close = stripe_channel_close,
	.submit = stripe_submit,
	.poll = stripe_poll,
	.region_register = stripe_region_register,
	.region_unregister = stripe_region_unregister,
	.channel_wake_fd = stripe_wake_fd,
	.sleep_prepare = stripe_sleep_prepare,
	.sleep_done = stripe_sleep_done,
	.abort = stripe_abort,
};

LEAP_BDEV_MODULE_REGISTER(leap_bdev_stripe_ops)
