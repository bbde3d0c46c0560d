// SPDX-License-Identifier: BSD-3-Clause
/*
 * stats_get: I/O statistics per controller and namespace, from the
 * counters the reactors keep (runtime/stats.h). IOPS are computed over the
 * interval since the previous stats_get (or over `window_ms`, measured by
 * taking two snapshots). Runs on the control thread; snapshots are relaxed
 * reads of single-writer counters.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/nvme_spec.h"
#include "ctrl.h"
#include "daemon.h"

#define PREV_MAX 256

/* The previous snapshot of each (controller, namespace), for interval rates. */
static struct prev {
	char ctrl[64];
	uint32_t nsid;
	uint64_t ops[LEAP_STATS_KINDS];
} prev[PREV_MAX];
static uint64_t prev_ns;

static struct prev *prev_of(const char *ctrl, uint32_t nsid)
{
	struct prev *free_slot = NULL;

	for (int i = 0; i < PREV_MAX; i++) {
		if (prev[i].nsid == nsid && strcmp(prev[i].ctrl, ctrl) == 0)
			return &prev[i];
		if (!free_slot && prev[i].nsid == 0)
			free_slot = &prev[i];
	}
	if (free_slot) {
		snprintf(free_slot->ctrl, sizeof(free_slot->ctrl), "%s", ctrl);
		free_slot->nsid = nsid;
	}
	return free_slot;
}

static json_t *errors_json(const struct leap_stats *s)
{
	json_t *e = json_object();
	char key[32];

	for (int i = 0; i < LEAP_STATS_ERR_SLOTS && s->err_status[i]; i++) {
		snprintf(key, sizeof(key), "sct%u_sc0x%02x", NVME_STATUS_SCT(s->err_status[i]),
			 NVME_STATUS_SC(s->err_status[i]));
		json_object_set_new(e, key, json_integer((json_int_t)s->err_count[i]));
	}
	if (s->err_other)
		json_object_set_new(e, "other", json_integer((json_int_t)s->err_other));
	return e;
}

static json_t *stats_json(const struct leap_stats *s, const uint64_t *before, double secs)
{
	json_t *o = json_object(), *lat = json_object();
	uint64_t ios = leap_stats_total_ops(s);

	json_object_set_new(o, "reads", json_integer((json_int_t)s->ops[LEAP_STATS_READ]));
	json_object_set_new(o, "writes", json_integer((json_int_t)s->ops[LEAP_STATS_WRITE]));
	json_object_set_new(o, "flushes", json_integer((json_int_t)s->ops[LEAP_STATS_FLUSH]));
	json_object_set_new(o, "other", json_integer((json_int_t)s->ops[LEAP_STATS_OTHER]));
	json_object_set_new(o, "read_bytes", json_integer((json_int_t)s->bytes[0]));
	json_object_set_new(o, "write_bytes", json_integer((json_int_t)s->bytes[1]));
	json_object_set_new(o, "read_iops",
			    json_integer(before && secs > 0
					     ? (json_int_t)((double)(s->ops[LEAP_STATS_READ] -
								     before[LEAP_STATS_READ]) /
							    secs)
					     : 0));
	json_object_set_new(o, "write_iops",
			    json_integer(before && secs > 0
					     ? (json_int_t)((double)(s->ops[LEAP_STATS_WRITE] -
								     before[LEAP_STATS_WRITE]) /
							    secs)
					     : 0));
	json_object_set_new(o, "errors", errors_json(s));
	json_object_set_new(lat, "avg",
			    json_real(ios ? (double)s->lat_sum_ns / (double)ios / 1e3 : 0.0));
	json_object_set_new(lat, "p50", json_real((double)leap_stats_percentile(s, 50) / 1e3));
	json_object_set_new(lat, "p99", json_real((double)leap_stats_percentile(s, 99) / 1e3));
	json_object_set_new(lat, "p999", json_real((double)leap_stats_percentile(s, 99.9) / 1e3));
	json_object_set_new(o, "latency_us", lat);
	return o;
}

struct stats_params {
	const char *ctrl;
	uint64_t ns;
	bool qpairs;
	uint64_t window_ms;
};

static const struct leap_rpc_param stats_spec[] = {
	LEAP_RPC_PARAM("ctrl", LEAP_RPC_STR, false, struct stats_params, ctrl),
	LEAP_RPC_PARAM_RANGE("ns", LEAP_RPC_U64, false, struct stats_params, ns, 1, 0xfffffffe),
	LEAP_RPC_PARAM("qpairs", LEAP_RPC_BOOL, false, struct stats_params, qpairs),
	LEAP_RPC_PARAM_RANGE("window_ms", LEAP_RPC_U64, false, struct stats_params, window_ms, 1,
			     10000),
};

static void stats_get(struct leap_rpc_call *call, json_t *params)
{
	struct stats_params p = { 0 };
	json_t *out, *ctrls;
	uint64_t now;
	double secs;
	bool found = false;

	if (leap_rpc_params_decode(call, params, stats_spec, LEAP_ARRAY_SIZE(stats_spec), &p))
		return;
	if (p.window_ms) {
		/* Take the "previous" snapshot now, then measure over the window. */
		for (struct leap_ctrl *c = leap_ctrl_next(NULL); c; c = leap_ctrl_next(c)) {
			for (uint32_t i = 0; i < LEAP_CTRL_MAX_NS; i++) {
				struct leap_stats s = { 0 };
				struct prev *pv;

				if (!c->ns[i].nsid || !(pv = prev_of(c->name, c->ns[i].nsid)))
					continue;
				leap_stats_accumulate(&s, &c->ns[i].stats);
				memcpy(pv->ops, s.ops, sizeof(pv->ops));
			}
		}
		prev_ns = leap_now_ns();
		usleep((useconds_t)p.window_ms * 1000);
	}
	now = leap_now_ns();
	secs = prev_ns ? (double)(now - prev_ns) / 1e9 : 0;
	out = json_object();
	ctrls = json_array();
	for (struct leap_ctrl *c = leap_ctrl_next(NULL); c; c = leap_ctrl_next(c)) {
		struct leap_stats total = { 0 };
		json_t *cj, *nss;

		if (p.ctrl && strcmp(p.ctrl, c->name))
			continue;
		found = true;
		cj = json_object();
		nss = json_array();
		json_object_set_new(cj, "name", json_string(c->name));
		json_object_set_new(cj, "attached", json_boolean(c->refs > 0));
		for (uint32_t i = 0; i < LEAP_CTRL_MAX_NS; i++) {
			struct leap_stats s = { 0 };
			struct prev *pv;
			json_t *nj;

			if (!c->ns[i].nsid || (p.ns && c->ns[i].nsid != p.ns))
				continue;
			leap_stats_accumulate(&s, &c->ns[i].stats);
			pv = prev_of(c->name, c->ns[i].nsid);
			nj = stats_json(&s, pv && prev_ns ? pv->ops : NULL, secs);
			json_object_set_new(nj, "nsid", json_integer(c->ns[i].nsid));
			json_array_append_new(nss, nj);
			if (pv)
				memcpy(pv->ops, s.ops, sizeof(pv->ops));
		}
		leap_stats_accumulate(&total, &c->stats);
		json_object_set_new(cj, "total", stats_json(&total, NULL, 0));
		json_object_set_new(cj, "namespaces", nss);
		json_array_append_new(ctrls, cj);
	}
	if (p.ctrl && !found) {
		json_decref(ctrls);
		json_decref(out);
		leap_rpc_call_error(call, -ENOENT, "ctrl '%s' not found", p.ctrl);
		return;
	}
	json_object_set_new(out, "interval_ms", json_real(secs * 1000.0));
	json_object_set_new(out, "controllers", ctrls);
	prev_ns = now;
	leap_rpc_call_reply(call, out);
}

static const struct leap_rpc_method stats_methods[] = {
	{ "stats_get", stats_get },
};

int leap_rpc_stats_register(struct leap_rpc_server *srv)
{
	return leap_rpc_server_register(srv, stats_methods, LEAP_ARRAY_SIZE(stats_methods));
}
