// SPDX-License-Identifier: BSD-3-Clause
/*
 * The mirror's control side: creation from bdev_create's params, config
 * and bdev_list descriptions, the leg state transitions that are not the
 * data path's (a failure is: mirror_leg_fail()), and the control methods
 * bdev_mirror_add_leg, bdev_mirror_remove_leg, bdev_mirror_resync and
 * bdev_mirror_set. Everything here runs on the control thread and changes
 * legs under m->lock; channels learn of it through m->gen.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "mirror_internal.h"

static const char *const state_names[] = { "empty", "active", "faulty", "resyncing", "removed" };
static const char *const policy_names[] = { "least_outstanding", "round_robin" };

const char *mirror_leg_state_name(uint32_t state)
{
	return state < LEAP_ARRAY_SIZE(state_names) ? state_names[state] : "?";
}

static uint32_t count_state(const struct mirror_bdev *m, uint32_t state)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++)
		n += leg_state(m, i) == state;
	return n;
}

void mirror_leg_fail(struct mirror_bdev *m, uint32_t i, const char *why, uint16_t status)
{
	struct mirror_leg *leg = &m->legs[i];
	uint32_t st = leg_state(m, i);

	/* The common case, a leg already out, costs no lock. */
	if (st != LEG_ACTIVE && st != LEG_RESYNCING)
		return;
	pthread_mutex_lock(&m->lock);
	st = leg_state(m, i);
	/* Two threads may each blame a different leg: the last in-sync one always stays. */
	if ((st == LEG_ACTIVE && count_state(m, LEG_ACTIVE) > 1) || st == LEG_RESYNCING) {
		__atomic_store_n(&leg->state, LEG_FAULTY, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&leg->faults, 1, __ATOMIC_RELAXED);
		mirror_gen_bump(m);
		pthread_mutex_unlock(&m->lock);
		LEAP_WARN("bdev",
			  "%s: leg '%s' is faulty (%s failed, status 0x%x); mirror degraded",
			  m->base.name, leg->name, why, status);
		return;
	}
	pthread_mutex_unlock(&m->lock);
}

void mirror_leg_chan_closed_locked(struct mirror_bdev *m, uint32_t i)
{
	struct mirror_leg *leg = &m->legs[i];

	if (leg->open_chans)
		leg->open_chans--;
	if (!leg->open_chans && leg_state(m, i) == LEG_REMOVED && leg->bdev) {
		leap_bdev_put(leg->bdev);
		leg->bdev = NULL;
	}
}

/* ---- creation ------------------------------------------------------------------- */

struct mirror_params {
	json_t *legs, *degraded;
	uint32_t region_size, resync_depth, resync_rate_mbps;
	const char *read_policy;
};

static const struct bdev_param mirror_spec[] = {
	BDEV_PARAM("legs", BDEV_PARAM_JSON, true, struct mirror_params, legs),
	BDEV_PARAM("degraded", BDEV_PARAM_JSON, false, struct mirror_params, degraded),
	BDEV_PARAM_RANGE("region_size", BDEV_PARAM_U32, false, struct mirror_params, region_size,
			 4096, 1u << 30),
	BDEV_PARAM("read_policy", BDEV_PARAM_STR, false, struct mirror_params, read_policy),
	BDEV_PARAM_RANGE("resync_depth", BDEV_PARAM_U32, false, struct mirror_params, resync_depth,
			 1, 64),
	BDEV_PARAM_RANGE("resync_rate_mbps", BDEV_PARAM_U32, false, struct mirror_params,
			 resync_rate_mbps, 0, 1000000),
};

static int parse_policy(const char *s, uint32_t *out, struct leap_bdev_err *err)
{
	for (uint32_t i = 0; i < LEAP_ARRAY_SIZE(policy_names); i++)
		if (strcmp(s, policy_names[i]) == 0) {
			*out = i;
			return 0;
		}
	return bdev_err(err, -EINVAL,
			"invalid params: 'read_policy' must be least_outstanding or round_robin, "
			"got '%s'",
			s);
}

static void free_mirror(struct mirror_bdev *m)
{
	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++) {
		leap_bdev_put(m->legs[i].bdev);
		free(m->legs[i].bitmap);
	}
	free(m->rl);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* A bdev that may become leg `i` of m (not m, not another leg, big enough, same blocks). */
static int leg_check(const struct mirror_bdev *m, uint32_t i, const struct leap_bdev *b,
		     struct leap_bdev_err *err)
{
	if (b == &m->base)
		return bdev_err(err, -EINVAL, "invalid params: a mirror cannot be its own leg");
	for (uint32_t j = 0; j < MIRROR_MAX_LEGS; j++)
		if (j != i && m->legs[j].bdev == b)
			return bdev_err(err, -EINVAL, "invalid params: leg '%s' given twice",
					b->name);
	if (m->base.size && b->size < m->base.size)
		return bdev_err(err, -EINVAL,
				"invalid params: leg '%s' (%llu bytes) is smaller than the mirror "
				"(%llu)",
				b->name, (unsigned long long)b->size,
				(unsigned long long)m->base.size);
	if (m->base.block_size && b->block_size != m->base.block_size)
		return bdev_err(err, -EINVAL,
				"invalid params: leg '%s' has %u-byte blocks, the mirror %u",
				b->name, b->block_size, m->base.block_size);
	return 0;
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
		       struct mirror_params p, struct leap_bdev_err *err, leap_bdev_create_cb cb,
		       void *cb_arg)
{
	uint64_t min_size = UINT64_MAX;
	struct mirror_bdev *m;
	size_t n, i;
	int rc;

	n = json_is_array(p.legs) ? json_array_size(p.legs) : 0;
	if (n < 1 || n > MIRROR_MAX_LEGS)
		return bdev_err(err, -EINVAL,
				"invalid params: 'legs' must be an array of 1 to %d bdev names "
				"(2 or more for redundancy)",
				MIRROR_MAX_LEGS);
	if (p.region_size & (p.region_size - 1))
		return bdev_err(err, -EINVAL,
				"invalid params: 'region_size' must be a power of two, got %u",
				p.region_size);
	if (p.degraded && !json_is_array(p.degraded))
		return bdev_err(err, -EINVAL,
				"invalid params: 'degraded' must be an array of leg names");
	m = calloc(1, sizeof(*m));
	if (!m)
		return bdev_err(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&m->lock, NULL);
	bdev_init_common(&m->base, &leap_bdev_mirror_ops, common);
	m->base.size = 0;
	m->base.block_size = 0;
	m->region_shift = (uint32_t)__builtin_ctz(p.region_size);
	m->resync_depth = p.resync_depth;
	m->resync_rate_mbps = p.resync_rate_mbps;
	rc = p.read_policy ? parse_policy(p.read_policy, &m->read_policy, err) : 0;
	if (rc)
		goto err_free;
	rc = -EINVAL;
	for (i = 0; i < n; i++) {
		const char *name = json_string_value(json_array_get(p.legs, i));
		struct leap_bdev *b;

		if (!name) {
			bdev_err(err, rc, "invalid params: 'legs' must be an array of bdev names");
			goto err_free;
		}
		b = leap_bdev_get(name);
		if (!b) {
			bdev_err(err, rc, "invalid params: leg bdev '%s' not found", name);
			goto err_free;
		}
		m->legs[i].bdev = b;
		if (leg_check(m, (uint32_t)i, b, err)) {
			goto err_free;
		}
		if (!m->base.block_size)
			m->base.block_size = b->block_size;
		snprintf(m->legs[i].name, sizeof(m->legs[i].name), "%s", name);
		m->legs[i].bdev_id = b->id;
		m->legs[i].state = LEG_ACTIVE;
		if (b->size < min_size)
			min_size = b->size;
		if (b->mem_align > m->base.mem_align)
			m->base.mem_align = b->mem_align;
	}
	if (json_object_get(params, "block_size") && common->block_size != m->base.block_size) {
		bdev_err(err, rc, "invalid params: 'block_size' %u differs from the legs' %u",
			 common->block_size, m->base.block_size);
		goto err_free;
	}
	if (common->size > min_size) {
		bdev_err(err, rc,
			 "invalid params: 'size' is larger than the smallest leg (%llu bytes)",
			 (unsigned long long)min_size);
		goto err_free;
	}
	m->base.size = common->size ? common->size : min_size - min_size % m->base.block_size;
	m->nregions = (m->base.size + p.region_size - 1) >> m->region_shift;
	m->bm_words = (m->nregions + 63) / 64;
	m->rl = calloc(MIRROR_LOCKS, sizeof(*m->rl));
	for (i = 0; i < MIRROR_MAX_LEGS; i++) {
		m->legs[i].bitmap = calloc(m->bm_words, sizeof(uint64_t));
		if (!m->legs[i].bitmap || !m->rl) {
			rc = bdev_err(err, -ENOMEM, "out of memory");
			goto err_free;
		}
	}
	/* Legs known to be stale (a saved degraded mirror): out, and everything to copy. */
	for (i = 0; p.degraded && i < json_array_size(p.degraded); i++) {
		const char *name = json_string_value(json_array_get(p.degraded, i));
		uint32_t j;

		for (j = 0; j < n && (!name || strcmp(m->legs[j].name, name) != 0); j++)
			;
		if (j == n) {
			bdev_err(err, rc, "invalid params: degraded leg '%s' is not in 'legs'",
				 name ? name : "?");
			goto err_free;
		}
		m->legs[j].state = LEG_FAULTY;
		bm_set_range(m->legs[j].bitmap, 0, m->nregions - 1);
	}
	if (!count_state(m, LEG_ACTIVE)) {
		bdev_err(err, rc, "invalid params: every leg is degraded");
		goto err_free;
	}
	cb(cb_arg, 0, &m->base);
	return 0;

err_free:
	free_mirror(m);
	return rc;
}

int mirror_create(const struct leap_bdev_common_params *common, const json_t *params,
		  struct leap_bdev_err *err, leap_bdev_create_cb cb, void *cb_arg)
{
	struct mirror_params p = { .region_size = MIRROR_REGION_DEFAULT, .resync_depth = 4 };
	int rc;

	rc = bdev_params_decode(params, mirror_spec, LEAP_ARRAY_SIZE(mirror_spec), &p, err);
	if (rc)
		return rc;
	p.legs = names_array(p.legs);
	p.degraded = p.degraded ? names_array(p.degraded) : NULL;
	/* The callback runs inside (creation is synchronous): the names are ours until then. */
	rc = create_from(common, params, p, err, cb, cb_arg);
	json_decref(p.legs);
	json_decref(p.degraded);
	return rc;
}

void mirror_destroy(struct leap_bdev *bdev)
{
	struct mirror_bdev *m = (struct mirror_bdev *)bdev;

	mirror_resync_stop(m);
	free_mirror(m);
}

bool mirror_io_type_supported(const struct leap_bdev *bdev, enum leap_bdev_op op)
{
	const struct mirror_bdev *m = (const struct mirror_bdev *)bdev;
	bool any = false;

	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++) {
		const struct leap_bdev *b = m->legs[i].bdev;

		if (!b || leg_state(m, i) == LEG_REMOVED)
			continue;
		if (!leap_bdev_io_type_supported(b, op))
			return false;
		any = true;
	}
	return any;
}

/* ---- descriptions ----------------------------------------------------------------- */

static bool leg_present(const struct mirror_bdev *m, uint32_t i)
{
	uint32_t st = leg_state(m, i);

	return st != LEG_EMPTY && st != LEG_REMOVED;
}

int mirror_write_config(const struct leap_bdev *bdev, json_t *out)
{
	const struct mirror_bdev *m = (const struct mirror_bdev *)bdev;
	json_t *legs = json_array(), *degraded = json_array();

	if (!legs || !degraded) {
		json_decref(legs);
		json_decref(degraded);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++) {
		if (!leg_present(m, i))
			continue;
		json_array_append_new(legs, json_string(m->legs[i].name));
		/* A leg out of sync now needs all of it back after a restart (the bitmap is RAM). */
		if (leg_state(m, i) != LEG_ACTIVE)
			json_array_append_new(degraded, json_string(m->legs[i].name));
	}
	json_object_set_new(out, "legs", legs);
	if (json_array_size(degraded))
		json_object_set_new(out, "degraded", degraded);
	else
		json_decref(degraded);
	json_object_set_new(out, "region_size", json_integer(1ll << m->region_shift));
	json_object_set_new(out, "read_policy", json_string(policy_names[m->read_policy]));
	json_object_set_new(out, "resync_depth", json_integer(m->resync_depth));
	json_object_set_new(out, "resync_rate_mbps",
			    json_integer(__atomic_load_n(&m->resync_rate_mbps, __ATOMIC_RELAXED)));
	return 0;
}

/* A counter another thread bumps: one relaxed load. */
#define RD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static const char *mirror_state(const struct mirror_bdev *m)
{
	uint32_t present = 0, active = count_state(m, LEG_ACTIVE);

	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++)
		present += leg_present(m, i);
	if (!active)
		return "failed";
	if (count_state(m, LEG_RESYNCING))
		return "resyncing";
	return active == present && active > 1 ? "optimal" : "degraded";
}

int mirror_dump_info(const struct leap_bdev *bdev, json_t *out)
{
	const struct mirror_bdev *m = (const struct mirror_bdev *)bdev;
	json_t *legs = json_array();
	char legs_line[512] = "";
	size_t off = 0;

	if (!legs)
		return -ENOMEM;
	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++) {
		const struct mirror_leg *leg = &m->legs[i];
		uint32_t st = leg_state(m, i);
		uint64_t total = __atomic_load_n(&leg->resync_total, __ATOMIC_RELAXED);
		uint64_t done = __atomic_load_n(&leg->resync_done, __ATOMIC_RELAXED);
		json_t *l;

		if (st == LEG_EMPTY)
			continue;
		l = json_pack("{s:i, s:s, s:s, s:I, s:I, s:I, s:I}", "slot", (int)i, "name",
			      leg->name, "state", mirror_leg_state_name(st), "dirty_regions",
			      (json_int_t)bm_count(leg->bitmap, m->bm_words), "read_errors",
			      (json_int_t)RD(leg->read_errors), "write_errors",
			      (json_int_t)RD(leg->write_errors), "faults",
			      (json_int_t)RD(leg->faults));
		if (!l)
			continue;
		json_object_set_new(
		    l, "resync",
		    json_pack("{s:I, s:I, s:i, s:I, s:I, s:I, s:I, s:I}", "regions_total",
			      (json_int_t)total, "regions_done", (json_int_t)done, "percent",
			      st == LEG_RESYNCING ? (int)(total ? done * 100 / total : 0)
						  : (int)100,
			      "regions_copied", (json_int_t)RD(leg->resync_regions), "bytes_copied",
			      (json_int_t)RD(leg->resync_bytes), "last_bytes",
			      (json_int_t)RD(leg->last_bytes), "last_us",
			      (json_int_t)(RD(leg->last_ns) / 1000), "last_cpu_us",
			      (json_int_t)(RD(leg->last_cpu_ns) / 1000)));
		json_array_append_new(legs, l);
		/* One line for a table: "m0 active, f1 resyncing 45%" */
		if (off < sizeof(legs_line))
			off +=
			    (size_t)snprintf(legs_line + off, sizeof(legs_line) - off, "%s%s %s",
					     off ? ", " : "", leg->name, mirror_leg_state_name(st));
		if (st == LEG_RESYNCING && off < sizeof(legs_line))
			off += (size_t)snprintf(legs_line + off, sizeof(legs_line) - off, " %d%%",
						(int)(total ? done * 100 / total : 0));
	}
	json_object_set_new(out, "state", json_string(mirror_state(m)));
	json_object_set_new(out, "legs_state", json_string(legs_line));
	json_object_set_new(out, "legs", legs);
	json_object_set_new(out, "region_size", json_integer(1ll << m->region_shift));
	json_object_set_new(out, "regions", json_integer((json_int_t)m->nregions));
	json_object_set_new(out, "read_policy", json_string(policy_names[m->read_policy]));
	json_object_set_new(out, "read_retries", json_integer((json_int_t)RD(m->read_retries)));
	json_object_set_new(out, "deferred_writes",
			    json_integer((json_int_t)RD(m->deferred_writes)));
	json_object_set_new(out, "resync_rate_mbps",
			    json_integer(__atomic_load_n(&m->resync_rate_mbps, __ATOMIC_RELAXED)));
	return 0;
}

/* ---- control methods ------------------------------------------------------------------ */

struct leg_params {
	const char *name, *leg;
	bool full;
};

static const struct bdev_param leg_spec[] = {
	BDEV_PARAM("name", BDEV_PARAM_STR, true, struct leg_params, name),
	BDEV_PARAM("leg", BDEV_PARAM_STR, true, struct leg_params, leg),
	BDEV_PARAM("full", BDEV_PARAM_BOOL, false, struct leg_params, full),
};

static const struct bdev_param resync_spec[] = {
	BDEV_PARAM("name", BDEV_PARAM_STR, true, struct leg_params, name),
	BDEV_PARAM("leg", BDEV_PARAM_STR, false, struct leg_params, leg),
	BDEV_PARAM("full", BDEV_PARAM_BOOL, false, struct leg_params, full),
};

static int find_leg(const struct mirror_bdev *m, const char *name)
{
	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++)
		if (leg_state(m, i) != LEG_EMPTY && strcmp(m->legs[i].name, name) == 0)
			return (int)i;
	return -1;
}

/*
 * Give every channel of m a channel on leg i (m->lock held): opened here,
 * handed over through pending_ch, picked up at the channel's next I/O or
 * poll. All or nothing.
 */
static int open_leg_everywhere_locked(struct mirror_bdev *m, uint32_t i, struct leap_bdev_err *err)
{
	struct mirror_leg *leg = &m->legs[i];
	struct mirror_channel *mc;
	int rc = 0;

	for (mc = m->chans; mc; mc = mc->next) {
		struct leap_bdev_channel *ch;

		if (mc->leg_has & (1u << i))
			continue;
		rc = leap_bdev_channel_open(leg->bdev, &ch);
		if (rc)
			break;
		leg->open_chans++;
		mc->leg_has |= 1u << i;
		/* Release: the channel is whole before its owner picks it up. */
		__atomic_store_n(&mc->pending_ch[i], ch, __ATOMIC_RELEASE);
	}
	if (!rc)
		return 0;
	/* Undo what no channel has picked up yet (it cannot: the state did not change). */
	for (struct mirror_channel *u = m->chans; u != mc; u = u->next) {
		struct leap_bdev_channel *ch =
		    __atomic_exchange_n(&u->pending_ch[i], NULL, __ATOMIC_ACQ_REL);

		if (!ch)
			continue;
		leap_bdev_channel_close(ch);
		u->leg_has &= ~(1u << i);
		leg->open_chans--;
	}
	return bdev_err(err, rc, "cannot open a channel on leg '%s': %s", leg->name, strerror(-rc));
}

/* Leg i starts resyncing: its bitmap (all of it when `full`), the thread started. */
static void begin_resync_locked(struct mirror_bdev *m, uint32_t i, bool full)
{
	if (full)
		bm_set_range(m->legs[i].bitmap, 0, m->nregions - 1);
	__atomic_store_n(&m->legs[i].resync_total, bm_count(m->legs[i].bitmap, m->bm_words),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&m->legs[i].resync_done, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&m->legs[i].state, LEG_RESYNCING, __ATOMIC_SEQ_CST);
	mirror_gen_bump(m);
	mirror_resync_start_locked(m);
}

static int add_leg(struct leap_bdev *bdev, const json_t *params, json_t **result,
		   struct leap_bdev_err *err)
{
	struct mirror_bdev *m = (struct mirror_bdev *)bdev;
	struct leg_params p = { 0 };
	struct leap_bdev *b = NULL;
	struct mirror_leg *leg;
	bool full;
	int i, rc;

	rc = bdev_params_decode(params, leg_spec, LEAP_ARRAY_SIZE(leg_spec), &p, err);
	if (rc)
		return rc;
	full = p.full;
	pthread_mutex_lock(&m->lock);
	i = find_leg(m, p.leg);
	if (i >= 0) {
		uint32_t st = leg_state(m, (uint32_t)i);

		if (st == LEG_ACTIVE || st == LEG_RESYNCING) {
			rc = bdev_err(err, -EEXIST, "leg '%s' is already %s", p.leg,
				      mirror_leg_state_name(st));
			goto out;
		}
		if (st == LEG_REMOVED && m->legs[i].open_chans) {
			rc = bdev_err(err, -EBUSY,
				      "leg '%s' is still closing on %u channel(s); try again",
				      p.leg, m->legs[i].open_chans);
			goto out;
		}
	} else {
		/* A new leg: a free slot, else the slot of a removed leg that let go. */
		for (uint32_t j = 0; j < MIRROR_MAX_LEGS && i < 0; j++)
			if (leg_state(m, j) == LEG_EMPTY)
				i = (int)j;
		for (uint32_t j = 0; j < MIRROR_MAX_LEGS && i < 0; j++)
			if (leg_state(m, j) == LEG_REMOVED && !m->legs[j].open_chans)
				i = (int)j;
		if (i < 0) {
			rc = bdev_err(err, -ENOSPC, "the mirror has %d legs already",
				      MIRROR_MAX_LEGS);
			goto out;
		}
		full = true;
	}
	leg = &m->legs[i];
	if (!leg->bdev) {
		b = leap_bdev_get(p.leg);
		if (!b) {
			rc = bdev_err(err, -ENOENT, "bdev '%s' not found", p.leg);
			goto out;
		}
		rc = leg_check(m, (uint32_t)i, b, err);
		for (int op = 0; !rc && op < LEAP_BDEV_OP_CNT; op++)
			if (leap_bdev_io_type_supported(bdev, op) &&
			    !leap_bdev_io_type_supported(b, op))
				rc = bdev_err(err, -EINVAL,
					      "invalid params: leg '%s' does not do what the "
					      "mirror offers (op %d)",
					      p.leg, op);
		if (rc) {
			leap_bdev_put(b);
			goto out;
		}
		/* Another bdev under the old name: the bitmap says nothing about it. */
		if (b->id != leg->bdev_id)
			full = true;
		leg->bdev = b;
		leg->bdev_id = b->id;
		snprintf(leg->name, sizeof(leg->name), "%s", p.leg);
	}
	rc = open_leg_everywhere_locked(m, (uint32_t)i, err);
	if (rc) {
		if (b) {
			leg->bdev = NULL;
			leap_bdev_put(b);
		}
		goto out;
	}
	begin_resync_locked(m, (uint32_t)i, full);
	LEAP_INFO("bdev", "%s: leg '%s' added back (%s resync)", bdev->name, p.leg,
		  full ? "full" : "bitmap");
out:
	pthread_mutex_unlock(&m->lock);
	if (!rc)
		*result = leap_bdev_info(bdev);
	return rc;
}

static int remove_leg(struct leap_bdev *bdev, const json_t *params, json_t **result,
		      struct leap_bdev_err *err)
{
	struct mirror_bdev *m = (struct mirror_bdev *)bdev;
	struct leg_params p = { 0 };
	uint32_t st;
	int i, rc;

	rc = bdev_params_decode(params, leg_spec, LEAP_ARRAY_SIZE(leg_spec), &p, err);
	if (rc)
		return rc;
	if (p.full)
		return bdev_err(err, -EINVAL, "invalid params: 'full' is for add and resync");
	pthread_mutex_lock(&m->lock);
	i = find_leg(m, p.leg);
	st = i >= 0 ? leg_state(m, (uint32_t)i) : LEG_EMPTY;
	if (i < 0 || st == LEG_REMOVED) {
		rc = bdev_err(err, -ENOENT, "'%s' is not a leg of mirror '%s'", p.leg, bdev->name);
	} else if (st == LEG_ACTIVE && count_state(m, LEG_ACTIVE) == 1) {
		rc = bdev_err(err, -EBUSY, "leg '%s' is the mirror's last in-sync leg", p.leg);
	} else {
		__atomic_store_n(&m->legs[i].state, LEG_REMOVED, __ATOMIC_SEQ_CST);
		mirror_gen_bump(m);
		/* No channel holds it: let go now; else the last channel to close it does. */
		if (!m->legs[i].open_chans) {
			leap_bdev_put(m->legs[i].bdev);
			m->legs[i].bdev = NULL;
		}
		LEAP_INFO("bdev", "%s: leg '%s' removed", bdev->name, p.leg);
	}
	pthread_mutex_unlock(&m->lock);
	if (!rc)
		*result = leap_bdev_info(bdev);
	return rc;
}

static int resync(struct leap_bdev *bdev, const json_t *params, json_t **result,
		  struct leap_bdev_err *err)
{
	struct mirror_bdev *m = (struct mirror_bdev *)bdev;
	struct leg_params p = { 0 };
	uint32_t started = 0;
	int rc = 0;

	rc = bdev_params_decode(params, resync_spec, LEAP_ARRAY_SIZE(resync_spec), &p, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&m->lock);
	for (uint32_t i = 0; i < MIRROR_MAX_LEGS && !rc; i++) {
		uint32_t st = leg_state(m, i);

		if (st == LEG_EMPTY || (p.leg && strcmp(p.leg, m->legs[i].name) != 0))
			continue;
		if (st == LEG_REMOVED) {
			if (p.leg)
				rc = bdev_err(err, -ENOENT, "leg '%s' was removed: add it", p.leg);
			continue;
		}
		if (st == LEG_RESYNCING) {
			if (p.full)
				bm_set_range(m->legs[i].bitmap, 0, m->nregions - 1);
			started++;
			continue;
		}
		if (st == LEG_ACTIVE) {
			/* A full rebuild of an in-sync leg, from another in-sync one. */
			if (!p.leg || !p.full)
				continue;
			if (count_state(m, LEG_ACTIVE) == 1) {
				rc = bdev_err(err, -EBUSY,
					      "leg '%s' is the only in-sync leg: nothing to copy "
					      "from",
					      p.leg);
				continue;
			}
		}
		rc = open_leg_everywhere_locked(m, i, err);
		if (!rc) {
			begin_resync_locked(m, i, p.full);
			started++;
		}
	}
	if (!rc && p.leg && find_leg(m, p.leg) < 0)
		rc = bdev_err(err, -ENOENT, "'%s' is not a leg of mirror '%s'", p.leg, bdev->name);
	else if (!rc && !started)
		rc = bdev_err(err, -EALREADY, "nothing to resync: %s",
			      p.leg ? "the leg is in sync (full: true rebuilds it)"
				    : "no leg is out of sync");
	pthread_mutex_unlock(&m->lock);
	if (!rc)
		*result = leap_bdev_info(bdev);
	return rc;
}

struct set_params {
	const char *name, *read_policy;
	uint32_t resync_rate_mbps;
};

static const struct bdev_param set_spec[] = {
	BDEV_PARAM("name", BDEV_PARAM_STR, true, struct set_params, name),
	BDEV_PARAM("read_policy", BDEV_PARAM_STR, false, struct set_params, read_policy),
	BDEV_PARAM_RANGE("resync_rate_mbps", BDEV_PARAM_U32, false, struct set_params,
			 resync_rate_mbps, 0, 1000000),
};

/* Knobs that may change while tenants run: the read policy, the resync rate. */
static int set(struct leap_bdev *bdev, const json_t *params, json_t **result,
	       struct leap_bdev_err *err)
{
	struct mirror_bdev *m = (struct mirror_bdev *)bdev;
	struct set_params p = { 0 };
	uint32_t policy = m->read_policy;
	int rc;

	rc = bdev_params_decode(params, set_spec, LEAP_ARRAY_SIZE(set_spec), &p, err);
	if (!rc && p.read_policy)
		rc = parse_policy(p.read_policy, &policy, err);
	if (rc)
		return rc;
	/* Read per I/O with plain loads: a word-sized store, picked up at the next read. */
	__atomic_store_n(&m->read_policy, policy, __ATOMIC_RELAXED);
	if (json_object_get(params, "resync_rate_mbps"))
		__atomic_store_n(&m->resync_rate_mbps, p.resync_rate_mbps, __ATOMIC_RELAXED);
	*result = leap_bdev_info(bdev);
	return 0;
}

const struct leap_bdev_method mirror_methods[] = {
	{ "bdev_mirror_add_leg", add_leg },
	{ "bdev_mirror_remove_leg", remove_leg },
	{ "bdev_mirror_resync", resync },
	{ "bdev_mirror_set", set },
	{ NULL, NULL },
};
