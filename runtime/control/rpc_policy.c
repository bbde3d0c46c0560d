// SPDX-License-Identifier: BSD-3-Clause
/*
 * policy_* RPC methods: load, attach, detach, replace, unload, list, show,
 * set (runtime knobs), map_dump and map_clear; XDP links (attach --xdp) and the
 * prefix and per-source views of XDP policies' maps are in rpc_policy_xdp.c.
 * Every change to what runs
 * is answered only after the new chains are published and every reactor
 * has passed a quiescent point, so when `leapctl policy replace` returns,
 * no reactor can still be running the old program and it has been freed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "control/daemon.h"
#include "policy/policy.h"
#include "policy/xdp.h"
#include "rpc_policy_xdp.h"
#include "core/reactor.h"

#define ERRBUF 4096

static const char *const hook_names[LEAP_HOOK_CNT] = { "submit", "complete" };
static const char *const verdict_names[LEAP_LV_CNT] = { "pass",	 "complete", "redirect",
							"defer", "split",    "invalid" };

/* ---- publication and quiescence ------------------------------------------------------------ */

struct quiesce {
	struct leap_rpc_call *call;
	json_t *result;
	int64_t gen;
	uint32_t pending;
};

static void quiesce_work(void *arg)
{
	/* Being here means this reactor is between polls: not inside any chain run. */
	(void)arg;
}

static void quiesce_done(void *arg)
{
	struct quiesce *q = arg;

	if (--q->pending)
		return;
	leap_policy_reap(q->gen);
	leap_rpc_call_reply(q->call, q->result);
	free(q);
}

/* Publish the new chains, wait for every reactor, free what was retired, then reply. */
static void publish_and_reply(struct leap_rpc_call *call, json_t *result)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	int64_t gen = leap_policy_publish();
	struct quiesce *q;

	if (gen < 0) {
		json_decref(result);
		leap_rpc_call_error(call, (int)gen, "cannot publish chains: %s",
				    strerror((int)-gen));
		return;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		/* Without a quiescence record nothing is freed; the change itself stands. */
		leap_rpc_call_reply(call, result);
		return;
	}
	*q = (struct quiesce){ .call = call, .result = result, .gen = gen, .pending = 1 };
	for (uint32_t i = 0; i < d->nreactors; i++) {
		q->pending++;
		if (leap_daemon_run_on(d, d->reactors[i], quiesce_work, quiesce_done, q))
			q->pending--; /* a reactor that cannot take messages runs no chain either */
	}
	quiesce_done(q); /* drops the reference held while sending */
}

/* ---- parameters -------------------------------------------------------------------------------- */

/* "set": {"name": 5, "overlay": "bdev:snap0"} -> sets[] (names borrowed from params). */
static int decode_sets(struct leap_rpc_call *call, json_t *obj, struct leap_rodata_set *sets,
		       uint32_t *cnt)
{
	const char *key;
	json_t *v;

	*cnt = 0;
	if (!obj)
		return 0;
	if (!json_is_object(obj)) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "'set' must be an object of name: integer");
		return -EINVAL;
	}
	json_object_foreach (obj, key, v) {
		uint64_t val;

		if (*cnt == LEAP_POLICY_MAX_SETS) {
			leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS, "at most %d knobs",
					    LEAP_POLICY_MAX_SETS);
			return -EINVAL;
		}
		if (json_is_integer(v) && json_integer_value(v) >= 0) {
			val = (uint64_t)json_integer_value(v);
		} else if (json_is_string(v) && !strncmp(json_string_value(v), "bdev:", 5)) {
			struct leap_bdev *b = leap_bdev_find(json_string_value(v) + 5);

			if (!b) {
				leap_rpc_call_error(call, -ENOENT, "%s=%s: no such bdev", key,
						    json_string_value(v));
				return -ENOENT;
			}
			val = b->id;
		} else {
			leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
					    "%s: a non-negative integer or \"bdev:NAME\"", key);
			return -EINVAL;
		}
		sets[*cnt].name = key;
		sets[*cnt].value = val;
		(*cnt)++;
	}
	return 0;
}

static struct leap_policy *policy_arg(struct leap_rpc_call *call, const char *name)
{
	struct leap_policy *p = leap_policy_find(name);

	if (!p)
		leap_rpc_call_error(call, -ENOENT, "policy '%s' not loaded", name);
	return p;
}

static int hook_parse(const char *s)
{
	for (int h = 0; h < LEAP_HOOK_CNT; h++)
		if (!strcmp(s, hook_names[h]))
			return h;
	return -1;
}

/* ---- descriptions -------------------------------------------------------------------------------- */

static json_t *link_describe(const struct leap_policy_link *l)
{
	struct leap_link_stats st;
	json_t *v = json_object();

	leap_policy_link_stats(l, &st);
	for (int i = 0; i < LEAP_LV_CNT; i++)
		json_object_set_new(v, verdict_names[i], json_integer((json_int_t)st.verdicts[i]));
	return json_pack(
	    "{s:i, s:s, s:s, s:s, s:i, s:i, s:I, s:f, s:o}", "id", (int)l->id, "policy",
	    l->pol->name, "hook", hook_names[l->hook], "ctrl", l->ctrl[0] ? l->ctrl : "*", "nsid",
	    (int)l->nsid, "order", (int)l->order, "runs", (json_int_t)st.runs, "ns_per_run",
	    st.sampled ? (double)st.sampled_ns / (double)st.sampled : 0.0, "verdicts", v);
}

static json_t *sets_json(const struct leap_policy *p)
{
	json_t *o = json_object();

	for (uint32_t i = 0; i < p->set_cnt; i++)
		json_object_set_new(o, p->sets[i].name, json_integer((json_int_t)p->sets[i].value));
	return o;
}

static json_t *policy_brief(const struct leap_policy *p)
{
	json_t *hooks = json_array();

	for (int h = 0; h < LEAP_HOOK_CNT; h++)
		if (leap_obj_find_prog(p->obj, h == LEAP_HOOK_SUBMIT ? LEAP_SEC_SUBMIT
								     : LEAP_SEC_COMPLETE) >= 0)
			json_array_append_new(hooks, json_string(hook_names[h]));
	if (leap_obj_find_prog(p->obj, LEAP_SEC_XDP) >= 0)
		json_array_append_new(hooks, json_string(LEAP_SEC_XDP));
	return json_pack("{s:s, s:s, s:s, s:o, s:i, s:i, s:s, s:o}", "name", p->name, "path",
			 p->path, "pin_dir", p->pin_dir, "hooks", hooks, "links", (int)p->links,
			 "replaced", (int)p->replaced, "engine", p->interp ? "interp" : "jit",
			 "set", sets_json(p));
}

static uint64_t var_elem(const struct leap_var_info *vi, uint32_t i)
{
	uint64_t v = 0;

	if (vi->elem_size <= 8)
		memcpy(&v, vi->addr + (size_t)i * vi->elem_size, vi->elem_size);
	return v;
}

static json_t *vars_json(const struct leap_policy *p)
{
	json_t *a = json_array();
	struct leap_var_info vi;

	for (uint32_t i = 0; leap_obj_var_next(p->obj, i, &vi) == 0; i++) {
		json_t *val;

		if (vi.elem_size > 8)
			val = json_string("(not an integer)");
		else if (vi.nelems == 1)
			val = json_integer((json_int_t)var_elem(&vi, 0));
		else {
			val = json_array();
			for (uint32_t k = 0; k < vi.nelems; k++)
				json_array_append_new(val,
						      json_integer((json_int_t)var_elem(&vi, k)));
		}
		json_array_append_new(a, json_pack("{s:s, s:s, s:i, s:o}", "name", vi.name,
						   "section", vi.section, "size", (int)vi.elem_size,
						   "value", val));
	}
	return a;
}

static json_t *progs_json(const struct leap_policy *p)
{
	json_t *a = json_array();

	for (uint32_t i = 0; i < leap_obj_prog_cnt(p->obj); i++) {
		struct bpf_prog_info info = { 0 };
		__u32 len = sizeof(info);
		int fd = leap_obj_prog_kernel_fd(p->obj, i);
		struct leap_bpf_prog *bp = leap_obj_prog(p->obj, i);

		if (fd >= 0)
			bpf_obj_get_info_by_fd(fd, &info, &len);
		/* A kernel program (XDP): its size is the kernel's, it runs there. */
		json_array_append_new(a, json_pack("{s:s, s:s, s:i, s:i, s:I, s:s}", "name",
						   leap_obj_prog_name(p->obj, i), "section",
						   leap_obj_prog_section(p->obj, i), "kernel_id",
						   (int)info.id, "insns",
						   bp ? (int)leap_bpf_prog_insn_cnt(bp)
						      : (int)(info.xlated_prog_len / 8),
						   "jit_bytes",
						   bp ? (json_int_t)leap_bpf_prog_jit_size(bp)
						      : (json_int_t)info.jited_prog_len,
						   "runs_in", bp ? "leapd" : "kernel"));
	}
	return a;
}

static json_t *maps_json(const struct leap_policy *p)
{
	json_t *a = json_array();

	for (uint32_t i = 0; i < leap_obj_map_cnt(p->obj); i++) {
		struct leap_map_info mi;
		struct bpf_map_info info = { 0 };
		__u32 len = sizeof(info);

		leap_map_get_info(leap_obj_map(p->obj, i), &mi);
		bpf_obj_get_info_by_fd(mi.fd, &info, &len);
		json_array_append_new(
		    a, json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:s?, s:b, s:b}", "name", mi.name,
				 "kernel_id", (int)info.id, "type", (int)mi.type, "key_size",
				 (int)mi.key_size, "value_size", (int)mi.value_size, "max_entries",
				 (int)mi.max_entries, "pin", mi.pin_path, "slow_path", mi.slow_path,
				 "reused", mi.reused));
		if (mi.kernel_only)
			json_object_set_new(json_array_get(a, json_array_size(a) - 1),
					    "kernel_only", json_true());
	}
	return a;
}

static json_t *links_of(const struct leap_policy *p)
{
	json_t *a = json_array();

	for (const struct leap_policy_link *l = leap_policy_link_next(NULL); l;
	     l = leap_policy_link_next(l))
		if (!p || l->pol == p)
			json_array_append_new(a, link_describe(l));
	return a;
}

/* ---- methods ------------------------------------------------------------------------------------- */

struct load_params {
	const char *path, *name, *engine;
	json_t *set;
};

static const struct leap_rpc_param load_spec[] = {
	LEAP_RPC_PARAM("path", LEAP_RPC_STR, true, struct load_params, path),
	LEAP_RPC_PARAM("name", LEAP_RPC_STR, false, struct load_params, name),
	LEAP_RPC_PARAM("engine", LEAP_RPC_STR, false, struct load_params, engine),
	LEAP_RPC_PARAM("set", LEAP_RPC_JSON, false, struct load_params, set),
};

static void policy_load(struct leap_rpc_call *call, json_t *params)
{
	struct load_params lp = { 0 };
	struct leap_rodata_set sets[LEAP_POLICY_MAX_SETS];
	struct leap_policy_load_opts o = { 0 };
	struct leap_policy *p;
	char *err;
	int rc;

	if (leap_rpc_params_decode(call, params, load_spec, LEAP_ARRAY_SIZE(load_spec), &lp))
		return;
	if (lp.engine && strcmp(lp.engine, "jit") && strcmp(lp.engine, "interp")) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS, "engine: 'jit' or 'interp'");
		return;
	}
	if (decode_sets(call, lp.set, sets, &o.set_cnt))
		return;
	err = calloc(1, ERRBUF);
	if (!err) {
		leap_rpc_call_error(call, -ENOMEM, "out of memory");
		return;
	}
	o.name = lp.name;
	o.path = lp.path;
	o.sets = sets;
	o.interp = lp.engine && !strcmp(lp.engine, "interp");
	rc = leap_policy_load(&o, err, ERRBUF, &p);
	if (rc)
		leap_rpc_call_error(call, rc, "%s", err[0] ? err : strerror(-rc));
	else
		leap_rpc_call_reply(call, policy_brief(p));
	free(err);
}

struct attach_params {
	const char *name, *hook, *ctrl;
	uint32_t nsid, order;
	const char *xdp, *mode;
	bool pin;
};

static const struct leap_rpc_param attach_spec[] = {
	LEAP_RPC_PARAM("name", LEAP_RPC_STR, true, struct attach_params, name),
	LEAP_RPC_PARAM("hook", LEAP_RPC_STR, false, struct attach_params, hook),
	LEAP_RPC_PARAM("ctrl", LEAP_RPC_STR, false, struct attach_params, ctrl),
	LEAP_RPC_PARAM_RANGE("nsid", LEAP_RPC_U32, false, struct attach_params, nsid, 0,
			     LEAP_CTRL_MAX_NS),
	LEAP_RPC_PARAM_RANGE("order", LEAP_RPC_U32, false, struct attach_params, order, 0, 1000000),
	LEAP_RPC_PARAM("xdp", LEAP_RPC_STR, false, struct attach_params, xdp),
	LEAP_RPC_PARAM("mode", LEAP_RPC_STR, false, struct attach_params, mode),
	LEAP_RPC_PARAM("pin", LEAP_RPC_BOOL, false, struct attach_params, pin),
};

static bool ctrl_exists(struct leap_daemon *d, const char *name)
{
	for (const struct rpc_ctrl *c = d->ctrls; c; c = c->next)
		if (!strcmp(c->name, name))
			return true;
	return false;
}

static void policy_attach(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	struct attach_params ap = { .ctrl = "" };
	char err[512] = "";
	struct leap_policy_link *made[LEAP_HOOK_CNT];
	struct leap_policy *p;
	json_t *out;
	int first, last, rc, nmade = 0;

	if (leap_rpc_params_decode(call, params, attach_spec, LEAP_ARRAY_SIZE(attach_spec), &ap))
		return;
	p = policy_arg(call, ap.name);
	if (!p)
		return;
	if (ap.xdp || ap.mode || ap.pin) {
		if (!ap.xdp || ap.hook || ap.ctrl[0] || ap.nsid || ap.order) {
			leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
					    ap.xdp
						? "'xdp' attaches to an interface: no hook, ctrl, "
						  "nsid or order"
						: "'mode' and 'pin' go with 'xdp'");
			return;
		}
		rpc_policy_xdp_attach(call, p, ap.xdp, ap.mode, ap.pin);
		return;
	}
	if (!strcmp(ap.ctrl, "*"))
		ap.ctrl = "";
	if (ap.ctrl[0] && !ctrl_exists(d, ap.ctrl)) {
		leap_rpc_call_error(call, -ENOENT, "ctrl '%s' not found", ap.ctrl);
		return;
	}
	first = 0;
	last = LEAP_HOOK_CNT - 1;
	if (ap.hook && strcmp(ap.hook, "all")) {
		first = last = hook_parse(ap.hook);
		if (first < 0) {
			leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
					    "hook: 'submit', 'complete' or 'all'");
			return;
		}
	}
	for (int h = first; h <= last; h++) {
		rc = leap_policy_attach(p, (enum leap_hook)h, ap.ctrl, ap.nsid, (int32_t)ap.order,
					err, sizeof(err), &made[nmade]);
		if (rc == -ENOENT && first != last)
			continue; /* "all": only the hooks it has a program for */
		if (rc) {
			/* Nothing attached yet by this call is published: undo it. */
			while (nmade)
				leap_policy_detach(made[--nmade]);
			leap_rpc_call_error(call, rc, "%s", err[0] ? err : strerror(-rc));
			return;
		}
		nmade++;
	}
	out = json_array();
	for (int i = 0; i < nmade; i++)
		json_array_append_new(out, link_describe(made[i]));
	LEAP_INFO("policy", "attached '%s' to %s (%d link(s))", p->name,
		  ap.ctrl[0] ? ap.ctrl : "every controller", nmade);
	publish_and_reply(call, json_pack("{s:o}", "links", out));
}

struct detach_params {
	uint32_t link;
	const char *name, *hook, *ctrl;
	uint32_t nsid;
	const char *xdp;
};

static const struct leap_rpc_param detach_spec[] = {
	LEAP_RPC_PARAM("link", LEAP_RPC_U32, false, struct detach_params, link),
	LEAP_RPC_PARAM("name", LEAP_RPC_STR, false, struct detach_params, name),
	LEAP_RPC_PARAM("hook", LEAP_RPC_STR, false, struct detach_params, hook),
	LEAP_RPC_PARAM("ctrl", LEAP_RPC_STR, false, struct detach_params, ctrl),
	LEAP_RPC_PARAM("nsid", LEAP_RPC_U32, false, struct detach_params, nsid),
	LEAP_RPC_PARAM("xdp", LEAP_RPC_STR, false, struct detach_params, xdp),
};

static void policy_detach(struct leap_rpc_call *call, json_t *params)
{
	struct detach_params dp = { 0 };
	struct leap_policy_link *l, *next;
	int hook = -1, n = 0;

	if (leap_rpc_params_decode(call, params, detach_spec, LEAP_ARRAY_SIZE(detach_spec), &dp))
		return;
	if (!dp.link && !dp.name && !dp.xdp) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS, "give 'link', 'name' or 'xdp'");
		return;
	}
	if (dp.hook && strcmp(dp.hook, "all") && strcmp(dp.hook, LEAP_SEC_XDP) &&
	    (hook = hook_parse(dp.hook)) < 0) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "hook: 'submit', 'complete', 'xdp' or 'all'");
		return;
	}
	/* XDP links: matched by link id, policy, interface; no ctrl or namespace. */
	if (!dp.ctrl && !dp.nsid && hook < 0)
		n = rpc_policy_xdp_detach(dp.link, dp.name, dp.xdp);
	if (dp.xdp || (dp.hook && !strcmp(dp.hook, LEAP_SEC_XDP))) {
		if (!n) {
			leap_rpc_call_error(call, -ENOENT, "no such XDP attachment");
			return;
		}
		leap_rpc_call_reply(call, json_pack("{s:i}", "detached", n));
		return;
	}
	if (dp.ctrl && !strcmp(dp.ctrl, "*"))
		dp.ctrl = "";
	for (l = leap_policy_link_next(NULL); l; l = next) {
		next = leap_policy_link_next(l);
		if (dp.link && l->id != dp.link)
			continue;
		if (dp.name && strcmp(l->pol->name, dp.name))
			continue;
		if (hook >= 0 && (int)l->hook != hook)
			continue;
		if (dp.ctrl && strcmp(l->ctrl, dp.ctrl))
			continue;
		if (dp.nsid && l->nsid != dp.nsid)
			continue;
		leap_policy_detach(l);
		n++;
	}
	if (!n) {
		leap_rpc_call_error(call, -ENOENT, "no such attachment");
		return;
	}
	publish_and_reply(call, json_pack("{s:i}", "detached", n));
}

struct replace_params {
	const char *name, *path;
	json_t *set;
};

static const struct leap_rpc_param replace_spec[] = {
	LEAP_RPC_PARAM("name", LEAP_RPC_STR, true, struct replace_params, name),
	LEAP_RPC_PARAM("path", LEAP_RPC_STR, true, struct replace_params, path),
	LEAP_RPC_PARAM("set", LEAP_RPC_JSON, false, struct replace_params, set),
};

static void policy_replace(struct leap_rpc_call *call, json_t *params)
{
	struct replace_params rp = { 0 };
	struct leap_rodata_set sets[LEAP_POLICY_MAX_SETS];
	uint32_t cnt = 0;
	struct leap_policy *p;
	char *err;
	int rc;

	if (leap_rpc_params_decode(call, params, replace_spec, LEAP_ARRAY_SIZE(replace_spec), &rp))
		return;
	p = policy_arg(call, rp.name);
	if (!p || decode_sets(call, rp.set, sets, &cnt))
		return;
	err = calloc(1, ERRBUF);
	if (!err) {
		leap_rpc_call_error(call, -ENOMEM, "out of memory");
		return;
	}
	rc = leap_policy_replace(p, rp.path, rp.set ? sets : NULL, cnt, err, ERRBUF);
	if (rc) {
		leap_rpc_call_error(call, rc, "%s", err[0] ? err : strerror(-rc));
		free(err);
		return;
	}
	free(err);
	publish_and_reply(call, policy_brief(p));
}

struct name_params {
	const char *name;
};

static const struct leap_rpc_param name_spec[] = {
	LEAP_RPC_PARAM("name", LEAP_RPC_STR, true, struct name_params, name),
};

static void policy_unload(struct leap_rpc_call *call, json_t *params)
{
	struct name_params np = { 0 };
	struct leap_policy *p;
	int rc;

	if (leap_rpc_params_decode(call, params, name_spec, 1, &np))
		return;
	p = policy_arg(call, np.name);
	if (!p)
		return;
	rc = leap_policy_unload(p);
	if (rc == -EBUSY) {
		leap_rpc_call_error(call, rc,
				    "policy '%s' is attached (%u link(s)): detach it first",
				    np.name, p->links);
		return;
	}
	if (rc) {
		leap_rpc_call_error(call, rc, "policy '%s': %s", np.name, strerror(-rc));
		return;
	}
	publish_and_reply(call, NULL);
}

static void policy_list(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	json_t *a = json_array(), *ctrls = json_array();

	if (params && json_object_size(params)) {
		json_decref(a);
		json_decref(ctrls);
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "policy_list takes no parameters");
		return;
	}
	for (const struct leap_policy *p = leap_policy_next(NULL); p; p = leap_policy_next(p))
		json_array_append_new(a, policy_brief(p));
	for (const struct rpc_ctrl *c = d->ctrls; c; c = c->next)
		json_array_append_new(
		    ctrls,
		    json_pack("{s:s, s:I, s:I}", "ctrl", c->name, "invalid_verdicts",
			      (json_int_t)leap_policy_ctrl_invalid(c->dp), "route_errors",
			      (json_int_t)__atomic_load_n(&c->dp->route_errors, __ATOMIC_RELAXED)));
	leap_rpc_call_reply(call, json_pack("{s:o, s:o, s:o, s:o}", "policies", a, "links",
					    links_of(NULL), "xdp_links", rpc_policy_xdp_links(NULL),
					    "controllers", ctrls));
}

static void policy_show(struct leap_rpc_call *call, json_t *params)
{
	struct name_params np = { 0 };
	struct leap_policy *p;
	json_t *r;

	if (leap_rpc_params_decode(call, params, name_spec, 1, &np))
		return;
	p = policy_arg(call, np.name);
	if (!p)
		return;
	r = policy_brief(p);
	json_object_set_new(r, "programs", progs_json(p));
	json_object_set_new(r, "maps", maps_json(p));
	json_object_set_new(r, "vars", vars_json(p));
	json_object_set_new(r, "links", links_of(p));
	json_object_set_new(r, "xdp_links", rpc_policy_xdp_links(p));
	leap_rpc_call_reply(call, r);
}

struct set_params {
	const char *name;
	json_t *set;
};

static const struct leap_rpc_param set_spec[] = {
	LEAP_RPC_PARAM("name", LEAP_RPC_STR, true, struct set_params, name),
	LEAP_RPC_PARAM("set", LEAP_RPC_JSON, true, struct set_params, set),
};

/* "var" or "var[3]" -> the element's address and size, checked. */
static int knob_resolve(struct leap_rpc_call *call, struct leap_policy *p, const char *spec,
			uint8_t **addr, uint32_t *size)
{
	char name[64];
	const char *br = strchr(spec, '[');
	struct leap_var_info vi;
	uint64_t idx = 0;

	snprintf(name, sizeof(name), "%.*s", br ? (int)(br - spec) : (int)strlen(spec), spec);
	if (leap_obj_var_find(p->obj, name, &vi)) {
		leap_rpc_call_error(call, -ENOENT, "policy '%s' has no variable '%s'", p->name,
				    name);
		return -ENOENT;
	}
	if (vi.read_only) {
		leap_rpc_call_error(call, -EPERM,
				    "'%s' is a load-time knob (.rodata): set it with policy load "
				    "or replace --set",
				    name);
		return -EPERM;
	}
	if (br) {
		char *end;

		idx = strtoull(br + 1, &end, 10);
		if (end == br + 1 || strcmp(end, "]")) {
			leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS, "'%s': bad index", spec);
			return -EINVAL;
		}
	}
	if (idx >= vi.nelems ||
	    (vi.elem_size != 1 && vi.elem_size != 2 && vi.elem_size != 4 && vi.elem_size != 8)) {
		leap_rpc_call_error(call, -ERANGE, "'%s': %s", spec,
				    idx >= vi.nelems ? "index out of range" : "not an integer");
		return -ERANGE;
	}
	*addr = vi.addr + idx * vi.elem_size;
	*size = vi.elem_size;
	return 0;
}

static void policy_set(struct leap_rpc_call *call, json_t *params)
{
	struct set_params sp = { 0 };
	struct leap_rodata_set sets[LEAP_POLICY_MAX_SETS];
	uint8_t *addr[LEAP_POLICY_MAX_SETS];
	uint32_t size[LEAP_POLICY_MAX_SETS], cnt;
	struct leap_policy *p;

	if (leap_rpc_params_decode(call, params, set_spec, LEAP_ARRAY_SIZE(set_spec), &sp))
		return;
	p = policy_arg(call, sp.name);
	if (!p || decode_sets(call, sp.set, sets, &cnt))
		return;
	/* All checked before any is written: a bad knob changes nothing. */
	for (uint32_t i = 0; i < cnt; i++) {
		if (knob_resolve(call, p, sets[i].name, &addr[i], &size[i]))
			return;
		if (size[i] < 8 && sets[i].value >> (size[i] * 8)) {
			leap_rpc_call_error(call, -ERANGE, "%s=%llu does not fit in %u bytes",
					    sets[i].name, (unsigned long long)sets[i].value,
					    size[i]);
			return;
		}
	}
	/*
	 * Each knob is one aligned store the reactors see at their next run
	 * (relaxed: a policy reading a knob mid-change sees old or new).
	 */
	for (uint32_t i = 0; i < cnt; i++) {
		switch (size[i]) {
		case 1:
			__atomic_store_n(addr[i], (uint8_t)sets[i].value, __ATOMIC_RELAXED);
			break;
		case 2:
			__atomic_store_n((uint16_t *)addr[i], (uint16_t)sets[i].value,
					 __ATOMIC_RELAXED);
			break;
		case 4:
			__atomic_store_n((uint32_t *)addr[i], (uint32_t)sets[i].value,
					 __ATOMIC_RELAXED);
			break;
		default:
			__atomic_store_n((uint64_t *)addr[i], sets[i].value, __ATOMIC_RELAXED);
		}
	}
	leap_rpc_call_reply(call, json_pack("{s:i}", "set", (int)cnt));
}

struct map_params {
	const char *name, *map;
};

static const struct leap_rpc_param map_spec[] = {
	LEAP_RPC_PARAM("name", LEAP_RPC_STR, true, struct map_params, name),
	LEAP_RPC_PARAM("map", LEAP_RPC_STR, true, struct map_params, map),
};

static int map_arg(struct leap_rpc_call *call, json_t *params, struct leap_map_info *mi)
{
	struct map_params mp = { 0 };
	struct leap_policy *p;
	struct leap_map *m;

	if (leap_rpc_params_decode(call, params, map_spec, LEAP_ARRAY_SIZE(map_spec), &mp))
		return -EINVAL;
	p = policy_arg(call, mp.name);
	if (!p)
		return -ENOENT;
	m = leap_obj_find_map(p->obj, mp.map);
	if (!m) {
		leap_rpc_call_error(call, -ENOENT, "policy '%s' has no map '%s'", mp.name, mp.map);
		return -ENOENT;
	}
	leap_map_get_info(m, mi);
	if (!mi->data || mi->read_only) {
		leap_rpc_call_error(call, -EOPNOTSUPP,
				    "map '%s' is not a writable mmapped array (use bpftool)",
				    mp.map);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* Array map contents as words: what `bpftool map dump` shows, as 64-bit little-endian words. */
static void policy_map_dump(struct leap_rpc_call *call, json_t *params)
{
	struct leap_map_info mi;
	json_t *a;

	if (map_arg(call, params, &mi))
		return;
	a = json_array();
	for (uint32_t k = 0; k < mi.max_entries; k++) {
		const uint8_t *v = (const uint8_t *)mi.data + (size_t)k * mi.stride;
		json_t *w = json_array();

		for (uint32_t off = 0; off + 8 <= mi.value_size; off += 8) {
			uint64_t x;

			memcpy(&x, v + off, 8);
			json_array_append_new(w, json_integer((json_int_t)x));
		}
		json_array_append_new(a, w);
	}
	leap_rpc_call_reply(call, json_pack("{s:s, s:i, s:o}", "map", mi.name, "value_size",
					    (int)mi.value_size, "values", a));
}

static void policy_map_clear(struct leap_rpc_call *call, json_t *params)
{
	struct leap_map_info mi;

	if (map_arg(call, params, &mi))
		return;
	/* Word stores: a reactor reading concurrently sees each word old or zero. */
	for (size_t off = 0; off + 8 <= (size_t)mi.max_entries * mi.stride; off += 8)
		__atomic_store_n((uint64_t *)((uint8_t *)mi.data + off), 0, __ATOMIC_RELAXED);
	leap_rpc_call_reply(
	    call, json_pack("{s:s, s:i}", "map", mi.name, "cleared", (int)mi.max_entries));
}

static const struct leap_rpc_method policy_methods[] = {
	{ "policy_load", policy_load },		{ "policy_attach", policy_attach },
	{ "policy_detach", policy_detach },	{ "policy_replace", policy_replace },
	{ "policy_unload", policy_unload },	{ "policy_list", policy_list },
	{ "policy_show", policy_show },		{ "policy_set", policy_set },
	{ "policy_map_dump", policy_map_dump }, { "policy_map_clear", policy_map_clear },
};

int leap_rpc_policy_register(struct leap_rpc_server *srv)
{
	int rc = leap_rpc_server_register(srv, policy_methods, LEAP_ARRAY_SIZE(policy_methods));

	return rc ? rc : rpc_policy_xdp_register(srv);
}

int leap_rpc_policy_save(struct leap_daemon *d, json_t *calls)
{
	(void)d;
	for (const struct leap_policy *p = leap_policy_next(NULL); p; p = leap_policy_next(p)) {
		json_t *c = json_pack("{s:s, s:{s:s, s:s, s:s, s:o}}", "method", "policy_load",
				      "params", "name", p->name, "path", p->path, "engine",
				      p->interp ? "interp" : "jit", "set", sets_json(p));

		if (!c || json_array_append_new(calls, c))
			return -ENOMEM;
	}
	for (const struct leap_policy_link *l = leap_policy_link_next(NULL); l;
	     l = leap_policy_link_next(l)) {
		json_t *c = json_pack("{s:s, s:{s:s, s:s, s:s, s:i, s:i}}", "method",
				      "policy_attach", "params", "name", l->pol->name, "hook",
				      hook_names[l->hook], "ctrl", l->ctrl[0] ? l->ctrl : "*",
				      "nsid", (int)l->nsid, "order", (int)l->order);

		if (!c || json_array_append_new(calls, c))
			return -ENOMEM;
	}
	return rpc_policy_xdp_save(calls);
}
