// SPDX-License-Identifier: BSD-3-Clause
/*
 * ctrl_create/ctrl_delete/ctrl_list and ns_add/ns_remove/ns_list: the
 * control plane's record of virtual NVMe controllers and their namespaces.
 *
 * This file validates requests (so errors name the field), resolves
 * defaults (NQN, serial, nsid, namespace size) and keeps the resolved
 * values, which config_save writes back out. A namespace is a byte range
 * of one bdev and holds a reference on it, so a bdev in use cannot be
 * deleted; ranges of one bdev never overlap, so tenants cannot see each
 * other's blocks.
 *
 * Every record mirrors a controller-model object (ctrl.h). Controllers are
 * created and destroyed here on the control thread (the model's registry is
 * locked, and an attached controller refuses to go); namespaces change on
 * the controller's reactor, which owns the controller once a tenant is
 * attached, and the call is answered when the reactor is done.
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "backend/bdev.h"
#include "nvme/ctrl.h"
#include "control/daemon.h"
#include "policy/policy.h"

#define CTRL_MAX_NS	    LEAP_CTRL_MAX_NS
#define CTRL_DEFAULT_QPAIRS LEAP_CTRL_DEFAULT_IO_QUEUES
#define CTRL_MAX_QPAIRS	    LEAP_SHM_MAX_QUEUES
#define CTRL_DEFAULT_QSIZE  LEAP_CTRL_DEFAULT_QSIZE
#define CTRL_MAX_QSIZE	    LEAP_CTRL_MAX_QSIZE
#define NVME_NQN_MAX	    223
#define NVME_SN_MAX	    20

static struct rpc_ctrl *ctrl_find(struct leap_daemon *d, const char *name)
{
	for (struct rpc_ctrl *c = d->ctrls; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

/* Names end up in NQNs, paths and logs: keep them to a safe alphabet. */
static bool name_is_valid(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

static bool printable_ascii(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

static json_t *ns_describe(const struct rpc_ctrl *c, const struct rpc_ns *ns)
{
	json_t *o = json_pack("{s:s, s:i, s:s, s:I, s:I, s:i, s:I}", "ctrl", c->name, "nsid",
			      (int)ns->nsid, "bdev", ns->bdev->name, "offset",
			      (json_int_t)ns->offset, "size", (json_int_t)ns->size, "lba_size",
			      (int)ns->lba_size, "blocks", (json_int_t)(ns->size / ns->lba_size));

	if (o && ns->shared)
		json_object_set_new(o, "shared", json_true());
	return o;
}

/* "1001,1002": the ids of an access list, as ctrl_create takes them back. */
static void ids_text(const uint32_t *ids, uint32_t n, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (uint32_t i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%u", i ? "," : "", ids[i]);
}

/* Add "owner"/"group" to a controller's description or saved params, when it has them. */
static void access_json(json_t *o, const struct leap_ctrl_access *a)
{
	char buf[LEAP_CTRL_MAX_OWNERS * 12];

	if (!o)
		return;
	if (a->nuids) {
		ids_text(a->uids, a->nuids, buf, sizeof(buf));
		json_object_set_new(o, "owner", json_string(buf));
	}
	if (a->ngids) {
		ids_text(a->gids, a->ngids, buf, sizeof(buf));
		json_object_set_new(o, "group", json_string(buf));
	}
}

/*
 * A comma-separated list of user (or group) names and numeric ids into
 * ids[], resolved now: the controller keeps numbers. 0, or -EINVAL with
 * the offending entry named in `why`.
 */
static int parse_ids(const char *list, bool groups, uint32_t *ids, uint32_t *n, char *why,
		     size_t whylen)
{
	char buf[4096], item[256];
	const char *p = list;

	*n = 0;
	while (*p) {
		size_t len = strcspn(p, ",");
		unsigned long v;
		char *end;

		if (!len || len >= sizeof(item) || *n >= LEAP_CTRL_MAX_OWNERS) {
			snprintf(why, whylen, "'%s' must be up to %d comma-separated %s",
				 groups ? "group" : "owner", LEAP_CTRL_MAX_OWNERS,
				 groups ? "groups" : "users");
			return -EINVAL;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		p += len + (p[len] == ',');
		v = strtoul(item, &end, 10);
		if (!*end && v <= UINT32_MAX - 1) {
			ids[(*n)++] = (uint32_t)v;
			continue;
		}
		if (groups) {
			struct group gr, *res = NULL;

			if (!getgrnam_r(item, &gr, buf, sizeof(buf), &res) && res) {
				ids[(*n)++] = res->gr_gid;
				continue;
			}
		} else {
			struct passwd pw, *res = NULL;

			if (!getpwnam_r(item, &pw, buf, sizeof(buf), &res) && res) {
				ids[(*n)++] = res->pw_uid;
				continue;
			}
		}
		snprintf(why, whylen, "no %s '%s'", groups ? "group" : "user", item);
		return -EINVAL;
	}
	return 0;
}

static json_t *ctrl_describe(const struct rpc_ctrl *c)
{
	json_t *nsids = json_array();

	uint32_t n = 0;

	for (uint32_t i = 0; nsids && i < c->nns; i++) {
		if (c->ns[i].pending)
			continue;
		json_array_append_new(nsids, json_integer(c->ns[i].nsid));
		n++;
	}
	/* cntlid: the tenant id policies see (struct leap_io_ctx.ctrl_id). */
	json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:i, s:i, s:i, s:o}", "name", c->name, "cntlid",
			      (int)c->dp->cntlid, "nqn", c->nqn, "serial", c->serial, "max_qpairs",
			      (int)c->max_qpairs, "max_queue_size", (int)c->max_queue_size,
			      "namespaces", (int)n, "nsids", nsids);

	access_json(o, &c->dp->access);
	return o;
}

/* ---- ctrl_* ----------------------------------------------------------------- */

struct ctrl_create_params {
	const char *name;
	const char *nqn;
	const char *serial;
	uint32_t max_qpairs;
	uint32_t max_queue_size;
	const char *owner; /* "alice,1001": who may attach besides root */
	const char *group;
};

static const struct leap_rpc_param ctrl_create_spec[] = {
	LEAP_RPC_PARAM("owner", LEAP_RPC_STR, false, struct ctrl_create_params, owner),
	LEAP_RPC_PARAM("group", LEAP_RPC_STR, false, struct ctrl_create_params, group),
	LEAP_RPC_PARAM("name", LEAP_RPC_STR, true, struct ctrl_create_params, name),
	LEAP_RPC_PARAM("nqn", LEAP_RPC_STR, false, struct ctrl_create_params, nqn),
	LEAP_RPC_PARAM("serial", LEAP_RPC_STR, false, struct ctrl_create_params, serial),
	LEAP_RPC_PARAM_RANGE("max_qpairs", LEAP_RPC_U32, false, struct ctrl_create_params,
			     max_qpairs, 1, CTRL_MAX_QPAIRS),
	LEAP_RPC_PARAM_RANGE("max_queue_size", LEAP_RPC_U32, false, struct ctrl_create_params,
			     max_queue_size, 2, CTRL_MAX_QSIZE),
};

static void ctrl_create(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	struct ctrl_create_params p = { .max_qpairs = CTRL_DEFAULT_QPAIRS,
					.max_queue_size = CTRL_DEFAULT_QSIZE };
	struct leap_ctrl_access access = { 0 };
	struct rpc_ctrl *c, **tail;
	char bad[320];
	int err;

	if (leap_rpc_params_decode(call, params, ctrl_create_spec,
				   LEAP_ARRAY_SIZE(ctrl_create_spec), &p))
		return;
	if ((p.owner && parse_ids(p.owner, false, access.uids, &access.nuids, bad, sizeof(bad))) ||
	    (p.group && parse_ids(p.group, true, access.gids, &access.ngids, bad, sizeof(bad)))) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS, "invalid params: %s", bad);
		return;
	}
	if (!name_is_valid(p.name, sizeof(c->name) - 1)) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: 'name' must be 1..63 of [A-Za-z0-9._-]");
		return;
	}
	if (p.nqn && (strncmp(p.nqn, "nqn.", 4) != 0 || strlen(p.nqn) > NVME_NQN_MAX ||
		      !printable_ascii(p.nqn))) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: 'nqn' must start with \"nqn.\" and be at most "
				    "%d printable characters",
				    NVME_NQN_MAX);
		return;
	}
	if (p.serial &&
	    (!p.serial[0] || strlen(p.serial) > NVME_SN_MAX || !printable_ascii(p.serial))) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: 'serial' must be 1..%d printable characters",
				    NVME_SN_MAX);
		return;
	}
	if (ctrl_find(d, p.name)) {
		leap_rpc_call_error(call, -EEXIST, "ctrl '%s' already exists", p.name);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		leap_rpc_call_error(call, -ENOMEM, "out of memory");
		return;
	}
	snprintf(c->name, sizeof(c->name), "%s", p.name);
	if (p.nqn)
		snprintf(c->nqn, sizeof(c->nqn), "%s", p.nqn);
	else
		snprintf(c->nqn, sizeof(c->nqn), LEAP_CTRL_NQN_PREFIX "%s", p.name);
	if (p.serial)
		snprintf(c->serial, sizeof(c->serial), "%s", p.serial);
	else
		leap_ctrl_default_serial(c->serial, sizeof(c->serial), p.name);
	c->max_qpairs = p.max_qpairs;
	c->max_queue_size = p.max_queue_size;
	for (struct rpc_ctrl *o = d->ctrls; o; o = o->next) {
		if (strcmp(o->nqn, c->nqn) == 0) {
			leap_rpc_call_error(call, -EEXIST, "nqn '%s' is already used by ctrl '%s'",
					    c->nqn, o->name);
			free(c);
			return;
		}
	}
	leap_daemon_error_clear();
	err = leap_ctrl_create(&(struct leap_ctrl_opts){ .name = c->name,
							 .nqn = c->nqn,
							 .serial = c->serial,
							 .max_io_queues = c->max_qpairs,
							 .max_qsize = c->max_queue_size,
							 .access = &access },
			       &c->dp);
	if (err) {
		const char *why = leap_daemon_last_error();

		leap_rpc_call_error(call, err, "ctrl '%s': cannot create: %s%s%s", c->name,
				    strerror(-err), why[0] ? ": " : "", why);
		free(c);
		return;
	}
	err = leap_policy_ctrl_add(c->dp, leap_ctrl_reactor_index(c->dp->cntlid, d->nreactors));
	if (err) {
		leap_ctrl_destroy(c->dp);
		leap_rpc_call_error(call, err, "ctrl '%s': cannot create: %s", c->name,
				    strerror(-err));
		free(c);
		return;
	}
	for (tail = &d->ctrls; *tail; tail = &(*tail)->next)
		;
	*tail = c;
	LEAP_INFO("rpc", "ctrl '%s' created (%s)", c->name, c->nqn);
	leap_rpc_call_reply(call, ctrl_describe(c));
}

struct name_params {
	const char *name;
};

static const struct leap_rpc_param name_spec[] = {
	LEAP_RPC_PARAM("name", LEAP_RPC_STR, true, struct name_params, name),
};

static const struct leap_rpc_param name_opt_spec[] = {
	LEAP_RPC_PARAM("name", LEAP_RPC_STR, false, struct name_params, name),
};

/* Unlink and free a record whose controller-model object is already gone. */
static void ctrl_unlink(struct leap_daemon *d, struct rpc_ctrl *c)
{
	struct rpc_ctrl **pp;

	for (pp = &d->ctrls; *pp && *pp != c; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = c->next;
	free(c);
}

static void ctrl_delete(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	struct name_params p = { 0 };
	struct rpc_ctrl *c;
	int err;

	if (leap_rpc_params_decode(call, params, name_spec, 1, &p))
		return;
	c = ctrl_find(d, p.name);
	if (!c) {
		leap_rpc_call_error(call, -ENOENT, "ctrl '%s' not found", p.name);
		return;
	}
	if (c->busy) {
		leap_rpc_call_error(
		    call, -EBUSY, "ctrl '%s' has a namespace change or query in progress", p.name);
		return;
	}
	/* The model refuses (under its registry lock) while a tenant is attached. */
	if (c->dp->refs) {
		leap_rpc_call_error(call, -EBUSY, "ctrl '%s' has an attached tenant: %s", p.name,
				    strerror(EBUSY));
		return;
	}
	leap_policy_ctrl_remove(c->dp);
	err = leap_ctrl_destroy(c->dp);
	if (err) {
		leap_rpc_call_error(call, err, "ctrl '%s' has an attached tenant: %s", p.name,
				    strerror(-err));
		return;
	}
	ctrl_unlink(d, c);
	LEAP_INFO("rpc", "ctrl '%s' deleted", p.name);
	leap_rpc_call_reply(call, NULL);
}

static void ctrl_list(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	struct name_params p = { 0 };
	json_t *out;

	if (leap_rpc_params_decode(call, params, name_opt_spec, 1, &p))
		return;
	if (p.name && !ctrl_find(d, p.name)) {
		leap_rpc_call_error(call, -ENOENT, "ctrl '%s' not found", p.name);
		return;
	}
	out = json_array();
	for (struct rpc_ctrl *c = d->ctrls; c && out; c = c->next)
		if (!p.name || strcmp(p.name, c->name) == 0)
			json_array_append_new(out, ctrl_describe(c));
	if (!out) {
		leap_rpc_call_error(call, -ENOMEM, "out of memory");
		return;
	}
	leap_rpc_call_reply(call, out);
}

/* ---- ns_* ------------------------------------------------------------------- */

struct ns_add_params {
	const char *ctrl;
	const char *bdev;
	uint32_t nsid;
	uint64_t offset;
	uint64_t size;
	uint32_t lba_size;
	bool shared;
};

static const struct leap_rpc_param ns_add_spec[] = {
	LEAP_RPC_PARAM("ctrl", LEAP_RPC_STR, true, struct ns_add_params, ctrl),
	LEAP_RPC_PARAM("bdev", LEAP_RPC_STR, true, struct ns_add_params, bdev),
	LEAP_RPC_PARAM_RANGE("nsid", LEAP_RPC_U32, false, struct ns_add_params, nsid, 1,
			     CTRL_MAX_NS),
	LEAP_RPC_PARAM("offset", LEAP_RPC_U64, false, struct ns_add_params, offset),
	LEAP_RPC_PARAM("size", LEAP_RPC_U64, false, struct ns_add_params, size),
	LEAP_RPC_PARAM("lba_size", LEAP_RPC_U32, false, struct ns_add_params, lba_size),
	LEAP_RPC_PARAM("shared", LEAP_RPC_BOOL, false, struct ns_add_params, shared),
};

static int ns_index(const struct rpc_ctrl *c, uint32_t nsid)
{
	for (uint32_t i = 0; i < c->nns; i++)
		if (c->ns[i].nsid == nsid)
			return (int)i;
	return -1;
}

/* The lowest nsid not in use (namespaces are kept sorted by nsid). */
static uint32_t free_nsid(const struct rpc_ctrl *c)
{
	uint32_t want = 1;

	for (uint32_t i = 0; i < c->nns && c->ns[i].nsid == want; i++)
		want++;
	return want;
}

/* Another namespace already using part of [off, off+len) of `b`, if any. */
static bool range_taken(struct leap_daemon *d, const struct leap_bdev *b, uint64_t off,
			uint64_t len, bool shared, const struct rpc_ctrl **oc,
			const struct rpc_ns **ons)
{
	for (const struct rpc_ctrl *c = d->ctrls; c; c = c->next)
		for (uint32_t i = 0; i < c->nns; i++) {
			const struct rpc_ns *ns = &c->ns[i];

			if (ns->bdev == b && off < ns->offset + ns->size &&
			    ns->offset < off + len && !(shared && ns->shared)) {
				*oc = c;
				*ons = ns;
				return true;
			}
		}
	return false;
}

/* A namespace change travelling to the controller's reactor and back. */
struct ns_task {
	struct leap_rpc_call *call;
	struct leap_daemon *d;
	struct rpc_ctrl *c; /* cannot go while c->busy */
	uint32_t nsid;
	char bdev[64];
	uint64_t offset, size;
	uint32_t lba_size;
	int rc;
};

static struct rpc_ns *ns_record(struct rpc_ctrl *c, uint32_t nsid)
{
	int i = ns_index(c, nsid);

	return i < 0 ? NULL : &c->ns[i];
}

static void ns_record_remove(struct rpc_ctrl *c, uint32_t nsid)
{
	int i = ns_index(c, nsid);

	if (i < 0)
		return;
	memmove(&c->ns[i], &c->ns[i + 1], (c->nns - (uint32_t)i - 1) * sizeof(c->ns[0]));
	c->nns--;
}

/* Reactor: the controller is ours here whether or not a tenant is attached. */
static void ns_add_work(void *arg)
{
	struct ns_task *t = arg;

	t->rc = leap_ctrl_ns_add(t->c->dp, t->nsid, t->bdev, t->offset, t->size, t->lba_size);
}

static void ns_add_done(void *arg)
{
	struct ns_task *t = arg;
	struct rpc_ns *ns = ns_record(t->c, t->nsid);

	t->c->busy--;
	if (t->rc < 0) {
		ns_record_remove(t->c, t->nsid);
		leap_rpc_call_error(t->call, t->rc,
				    "ctrl '%s' nsid %u: cannot attach bdev '%s': %s", t->c->name,
				    t->nsid, t->bdev, strerror(-t->rc));
	} else {
		ns->pending = false;
		ns->prev_ns = leap_now_ns();
		LEAP_INFO("rpc", "ctrl '%s' nsid %u: bdev '%s' [%llu, +%llu), lba %u", t->c->name,
			  ns->nsid, ns->bdev->name, (unsigned long long)ns->offset,
			  (unsigned long long)ns->size, ns->lba_size);
		leap_rpc_call_reply(t->call, ns_describe(t->c, ns));
	}
	free(t);
}

static void ns_add(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	struct ns_add_params p = { 0 };
	const struct rpc_ctrl *oc;
	const struct rpc_ns *ons;
	struct rpc_ns ns = { 0 };
	struct ns_task *t;
	struct leap_bdev *b;
	struct rpc_ctrl *c;
	uint32_t pos;
	int err;

	if (leap_rpc_params_decode(call, params, ns_add_spec, LEAP_ARRAY_SIZE(ns_add_spec), &p))
		return;
	c = ctrl_find(d, p.ctrl);
	if (!c) {
		leap_rpc_call_error(call, -ENOENT, "ctrl '%s' not found", p.ctrl);
		return;
	}
	b = leap_bdev_find(p.bdev);
	if (!b) {
		leap_rpc_call_error(call, -ENOENT, "bdev '%s' not found", p.bdev);
		return;
	}
	if (c->nns >= CTRL_MAX_NS) {
		leap_rpc_call_error(call, -ENOSPC, "ctrl '%s' already has %d namespaces", c->name,
				    CTRL_MAX_NS);
		return;
	}
	if (p.nsid && ns_index(c, p.nsid) >= 0) {
		leap_rpc_call_error(call, -EEXIST, "ctrl '%s' already has nsid %u", c->name,
				    p.nsid);
		return;
	}
	ns.nsid = p.nsid ? p.nsid : free_nsid(c);
	ns.lba_size = p.lba_size ? p.lba_size : b->block_size;
	if ((ns.lba_size != 512 && ns.lba_size != 4096) || ns.lba_size < b->block_size) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: 'lba_size' must be 512 or 4096 and at least "
				    "bdev '%s''s block size %u, got %u",
				    b->name, b->block_size, ns.lba_size);
		return;
	}
	if (p.offset % ns.lba_size || p.offset >= b->size) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: 'offset' %llu must be a multiple of %u below "
				    "the bdev size %llu",
				    (unsigned long long)p.offset, ns.lba_size,
				    (unsigned long long)b->size);
		return;
	}
	ns.offset = p.offset;
	ns.shared = p.shared;
	ns.size = p.size ? p.size : (b->size - p.offset) / ns.lba_size * ns.lba_size;
	if (ns.size == 0 || ns.size % ns.lba_size || ns.size > b->size - ns.offset) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: 'size' %llu must be a non-zero multiple of %u "
				    "within bdev '%s' (%llu bytes from offset %llu)",
				    (unsigned long long)ns.size, ns.lba_size, b->name,
				    (unsigned long long)(b->size - ns.offset),
				    (unsigned long long)ns.offset);
		return;
	}
	if (range_taken(d, b, ns.offset, ns.size, p.shared, &oc, &ons)) {
		leap_rpc_call_error(call, -EBUSY,
				    "bdev '%s' bytes [%llu, %llu) overlap nsid %u of ctrl '%s' "
				    "(both need \"shared\": true to overlap)",
				    b->name, (unsigned long long)ns.offset,
				    (unsigned long long)(ns.offset + ns.size), ons->nsid, oc->name);
		return;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		leap_rpc_call_error(call, -ENOMEM, "out of memory");
		return;
	}
	*t = (struct ns_task){ .call = call,
			       .d = d,
			       .c = c,
			       .nsid = ns.nsid,
			       .offset = ns.offset,
			       .size = ns.size,
			       .lba_size = ns.lba_size };
	snprintf(t->bdev, sizeof(t->bdev), "%s", b->name);
	/*
	 * Recorded now, marked pending, so that concurrent requests see the
	 * nsid and the range as taken while the reactor does the work.
	 */
	ns.bdev = b;
	ns.pending = true;
	for (pos = 0; pos < c->nns && c->ns[pos].nsid < ns.nsid; pos++)
		;
	memmove(&c->ns[pos + 1], &c->ns[pos], (c->nns - pos) * sizeof(c->ns[0]));
	c->ns[pos] = ns;
	c->nns++;
	c->busy++;
	err = leap_daemon_run_on(d, leap_daemon_ctrl_reactor(d, c->dp->cntlid), ns_add_work,
				 ns_add_done, t);
	if (err) {
		c->busy--;
		ns_record_remove(c, ns.nsid);
		free(t);
		leap_rpc_call_error(call, err, "ctrl '%s': reactor unavailable: %s", c->name,
				    strerror(-err));
	}
}

struct ns_ref_params {
	const char *ctrl;
	uint32_t nsid;
};

static const struct leap_rpc_param ns_ref_spec[] = {
	LEAP_RPC_PARAM("ctrl", LEAP_RPC_STR, true, struct ns_ref_params, ctrl),
	LEAP_RPC_PARAM_RANGE("nsid", LEAP_RPC_U32, true, struct ns_ref_params, nsid, 1,
			     0xFFFFFFFEu),
};

/* Reactor: a tenant's queues are polled here, so this sees the attachment state exactly. */
static void ns_remove_work(void *arg)
{
	struct ns_task *t = arg;

	if (t->c->dp->transport)
		t->rc = -EBUSY;
	else
		t->rc = leap_ctrl_ns_remove(t->c->dp, t->nsid);
}

static void ns_remove_done(void *arg)
{
	struct ns_task *t = arg;
	struct rpc_ns *ns = ns_record(t->c, t->nsid);

	t->c->busy--;
	if (t->rc < 0) {
		ns->pending = false;
		if (t->rc == -EBUSY)
			leap_rpc_call_error(t->call, -EBUSY,
					    "ctrl '%s' has an attached tenant: detach it before "
					    "removing namespaces",
					    t->c->name);
		else
			leap_rpc_call_error(t->call, t->rc, "ctrl '%s' nsid %u: cannot remove: %s",
					    t->c->name, t->nsid, strerror(-t->rc));
	} else {
		ns_record_remove(t->c, t->nsid);
		LEAP_INFO("rpc", "ctrl '%s' nsid %u removed", t->c->name, t->nsid);
		leap_rpc_call_reply(t->call, NULL);
	}
	free(t);
}

static void ns_remove(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	struct ns_ref_params p = { 0 };
	struct ns_task *t;
	struct rpc_ns *ns;
	struct rpc_ctrl *c;
	int err;

	if (leap_rpc_params_decode(call, params, ns_ref_spec, LEAP_ARRAY_SIZE(ns_ref_spec), &p))
		return;
	c = ctrl_find(d, p.ctrl);
	if (!c) {
		leap_rpc_call_error(call, -ENOENT, "ctrl '%s' not found", p.ctrl);
		return;
	}
	ns = ns_record(c, p.nsid);
	if (!ns) {
		leap_rpc_call_error(call, -ENOENT, "ctrl '%s' has no nsid %u", c->name, p.nsid);
		return;
	}
	if (ns->pending) {
		leap_rpc_call_error(call, -EBUSY, "ctrl '%s' nsid %u is being changed", c->name,
				    p.nsid);
		return;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		leap_rpc_call_error(call, -ENOMEM, "out of memory");
		return;
	}
	*t = (struct ns_task){ .call = call, .d = d, .c = c, .nsid = p.nsid };
	ns->pending = true;
	c->busy++;
	err = leap_daemon_run_on(d, leap_daemon_ctrl_reactor(d, c->dp->cntlid), ns_remove_work,
				 ns_remove_done, t);
	if (err) {
		c->busy--;
		ns->pending = false;
		free(t);
		leap_rpc_call_error(call, err, "ctrl '%s': reactor unavailable: %s", c->name,
				    strerror(-err));
	}
}

struct ns_list_params {
	const char *ctrl;
};

static const struct leap_rpc_param ns_list_spec[] = {
	LEAP_RPC_PARAM("ctrl", LEAP_RPC_STR, false, struct ns_list_params, ctrl),
};

static void ns_list(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	struct ns_list_params p = { 0 };
	json_t *out;

	if (leap_rpc_params_decode(call, params, ns_list_spec, 1, &p))
		return;
	if (p.ctrl && !ctrl_find(d, p.ctrl)) {
		leap_rpc_call_error(call, -ENOENT, "ctrl '%s' not found", p.ctrl);
		return;
	}
	out = json_array();
	for (struct rpc_ctrl *c = d->ctrls; c && out; c = c->next) {
		if (p.ctrl && strcmp(p.ctrl, c->name) != 0)
			continue;
		for (uint32_t i = 0; i < c->nns; i++)
			if (!c->ns[i].pending)
				json_array_append_new(out, ns_describe(c, &c->ns[i]));
	}
	if (!out) {
		leap_rpc_call_error(call, -ENOMEM, "out of memory");
		return;
	}
	leap_rpc_call_reply(call, out);
}

static const struct leap_rpc_method ctrl_methods[] = {
	{ "ctrl_create", ctrl_create }, { "ctrl_delete", ctrl_delete }, { "ctrl_list", ctrl_list },
	{ "ns_add", ns_add },		{ "ns_remove", ns_remove },	{ "ns_list", ns_list },
};

int leap_rpc_ctrl_register(struct leap_rpc_server *srv)
{
	return leap_rpc_server_register(srv, ctrl_methods, LEAP_ARRAY_SIZE(ctrl_methods));
}

int leap_rpc_ctrl_save(struct leap_daemon *d, json_t *calls)
{
	/* All controllers first, then all namespaces: each ns_add needs its ctrl. */
	for (struct rpc_ctrl *c = d->ctrls; c; c = c->next) {
		json_t *call = json_pack("{s:s, s:{s:s, s:s, s:s, s:i, s:i}}", "method",
					 "ctrl_create", "params", "name", c->name, "nqn", c->nqn,
					 "serial", c->serial, "max_qpairs", (int)c->max_qpairs,
					 "max_queue_size", (int)c->max_queue_size);

		if (call)
			access_json(json_object_get(call, "params"), &c->dp->access);
		if (!call || json_array_append_new(calls, call) < 0)
			return -ENOMEM;
	}
	for (struct rpc_ctrl *c = d->ctrls; c; c = c->next)
		for (uint32_t i = 0; i < c->nns; i++) {
			const struct rpc_ns *ns = &c->ns[i];
			json_t *call;

			if (ns->pending)
				continue;
			call =
			    json_pack("{s:s, s:{s:s, s:i, s:s, s:I, s:I, s:i}}", "method", "ns_add",
				      "params", "ctrl", c->name, "nsid", (int)ns->nsid, "bdev",
				      ns->bdev->name, "offset", (json_int_t)ns->offset, "size",
				      (json_int_t)ns->size, "lba_size", (int)ns->lba_size);

			if (call && ns->shared)
				json_object_set_new(json_object_get(call, "params"), "shared",
						    json_true());
			if (!call || json_array_append_new(calls, call) < 0)
				return -ENOMEM;
		}
	return 0;
}

/* Namespace changes and queries still travelling to or from a reactor. */
static bool any_busy(const struct leap_daemon *d)
{
	for (const struct rpc_ctrl *c = d->ctrls; c; c = c->next)
		if (c->busy)
			return true;
	return false;
}

void leap_rpc_ctrl_cleanup(struct leap_daemon *d)
{
	/*
	 * A reactor may still hold a message that touches a controller:
	 * let those come back (bounded) before the controllers are freed.
	 */
	for (int i = 0; i < 500 && any_busy(d) && d->rpc; i++)
		leap_rpc_server_poll(d->rpc, 10);
	if (any_busy(d))
		LEAP_ERR("rpc", "namespace changes still in flight at shutdown");
	/* Tenants are gone by now (listener stopped): the model lets every controller go. */
	while (d->ctrls) {
		struct rpc_ctrl *c = d->ctrls;
		int err;

		leap_policy_ctrl_remove(c->dp);
		err = leap_ctrl_destroy(c->dp);

		if (err)
			LEAP_ERR("rpc", "ctrl '%s' left behind at shutdown: %s", c->name,
				 strerror(-err));
		ctrl_unlink(d, c);
	}
}
