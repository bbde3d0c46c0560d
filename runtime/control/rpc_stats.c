// SPDX-License-Identifier: BSD-3-Clause
/*
 * stats_get: I/O statistics per namespace (and per queue pair on request)
 * from the controller model's counters (stats.h).
 *
 * Counters (operations, bytes, errors by NVMe status) are totals since the
 * namespace was added. Rates (IOPS, MiB/s) and latency percentiles cover an
 * interval: by default the time since the previous stats_get that reported
 * the namespace, or, with window_ms, a window measured now — the call then
 * answers from a timer when the window closes, without holding up other
 * clients. Namespace counters are read with relaxed loads from the control
 * thread (stats.h allows that); queue pairs belong to the transport, so
 * their counters are read on the controller's reactor.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "leapio/nvme_spec.h"
#include "control/daemon.h"

struct stats_params {
	const char *ctrl;
	uint32_t ns;
	bool qpairs;
	uint32_t window_ms;
};

static const struct leap_rpc_param stats_spec[] = {
	LEAP_RPC_PARAM("ctrl", LEAP_RPC_STR, false, struct stats_params, ctrl),
	LEAP_RPC_PARAM_RANGE("ns", LEAP_RPC_U32, false, struct stats_params, ns, 1,
			     LEAP_CTRL_MAX_NS),
	LEAP_RPC_PARAM("qpairs", LEAP_RPC_BOOL, false, struct stats_params, qpairs),
	LEAP_RPC_PARAM_RANGE("window_ms", LEAP_RPC_U32, false, struct stats_params, window_ms, 1,
			     60000),
};

/* One namespace being reported; found again by name after a window (it may have gone). */
struct target {
	char ctrl[64];
	uint32_t nsid;
	struct leap_stats start; /* window start (window mode) */
};

/* Queue ids reported per controller (admin + I/O); front-ends offer at most 64 I/O queues. */
#define STATS_MAX_QPAIRS 65

struct stats_query {
	struct leap_rpc_call *call;
	struct leap_daemon *d;
	struct stats_params p;
	char ctrl_name[64];
	uint64_t t0;
	struct target *targets;
	uint32_t ntargets;
	json_t *out;		  /* the answer being built */
	json_t *qp_names;	  /* qpair pass: controllers still to visit */
	struct rpc_ctrl *qp_ctrl; /* qpair pass: the one on its reactor now (held busy) */
	struct leap_stats qp[STATS_MAX_QPAIRS];
	bool qp_active[STATS_MAX_QPAIRS];
};

static struct rpc_ctrl *find_ctrl(struct leap_daemon *d, const char *name)
{
	for (struct rpc_ctrl *c = d->ctrls; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static struct rpc_ns *find_ns(struct rpc_ctrl *c, uint32_t nsid)
{
	for (uint32_t i = 0; i < c->nns; i++)
		if (c->ns[i].nsid == nsid && !c->ns[i].pending)
			return &c->ns[i];
	return NULL;
}

static void snapshot(const struct rpc_ctrl *c, uint32_t nsid, struct leap_stats *out)
{
	struct leap_ns *ns = leap_ctrl_ns(c->dp, nsid);

	memset(out, 0, sizeof(*out));
	if (ns)
		leap_stats_accumulate(out, &ns->stats);
}

static uint64_t sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* d = a - b: what happened between snapshot b and the later snapshot a. */
static void stats_delta(struct leap_stats *d, const struct leap_stats *a,
			const struct leap_stats *b)
{
	memset(d, 0, sizeof(*d));
	for (int k = 0; k < LEAP_STATS_KINDS; k++)
		d->ops[k] = sub(a->ops[k], b->ops[k]);
	d->bytes[0] = sub(a->bytes[0], b->bytes[0]);
	d->bytes[1] = sub(a->bytes[1], b->bytes[1]);
	d->errors = sub(a->errors, b->errors);
	d->lat_sum_ns = sub(a->lat_sum_ns, b->lat_sum_ns);
	for (int i = 0; i < LEAP_STATS_BUCKETS; i++)
		d->lat_hist[i] = sub(a->lat_hist[i], b->lat_hist[i]);
}

static json_t *latency_json(const struct leap_stats *s)
{
	uint64_t n = leap_stats_total_ops(s);

	/* No I/O, no latency: null rather than a misleading zero. */
	if (!n)
		return json_pack("{s:n, s:n, s:n, s:n}", "avg", "p50", "p99", "p999");
	return json_pack("{s:f, s:f, s:f, s:f}", "avg", (double)s->lat_sum_ns / (double)n / 1e3,
			 "p50", (double)leap_stats_percentile(s, 50) / 1e3, "p99",
			 (double)leap_stats_percentile(s, 99) / 1e3, "p999",
			 (double)leap_stats_percentile(s, 99.9) / 1e3);
}

/* {"sct0_sc0x80": 3, ...}: status code type and status code, as in the NVMe spec's tables. */
static json_t *errors_json(const struct leap_stats *s)
{
	json_t *o = json_object();

	for (int i = 0; o && i < LEAP_STATS_ERR_SLOTS && s->err_status[i]; i++) {
		char key[32];

		snprintf(key, sizeof(key), "sct%u_sc0x%02x", NVME_STATUS_SCT(s->err_status[i]),
			 NVME_STATUS_SC(s->err_status[i]));
		json_object_set_new(o, key, json_integer((json_int_t)s->err_count[i]));
	}
	if (o && s->err_other)
		json_object_set_new(o, "other", json_integer((json_int_t)s->err_other));
	return o;
}

/* Totals, then rates and latency over the interval (`delta` across `ns_elapsed`). */
static json_t *counters_json(const struct leap_stats *tot, const struct leap_stats *delta,
			     uint64_t ns_elapsed)
{
	double secs = ns_elapsed ? (double)ns_elapsed / 1e9 : 0;
	double r = secs > 0 ? (double)delta->ops[LEAP_STATS_READ] / secs : 0;
	double w = secs > 0 ? (double)delta->ops[LEAP_STATS_WRITE] / secs : 0;
	double all = secs > 0 ? (double)leap_stats_total_ops(delta) / secs : 0;

	return json_pack(
	    "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:f, s:f, s:f, s:f, s:f, s:f, "
	    "s:o}",
	    "reads", (json_int_t)tot->ops[LEAP_STATS_READ], "writes",
	    (json_int_t)tot->ops[LEAP_STATS_WRITE], "flushes",
	    (json_int_t)tot->ops[LEAP_STATS_FLUSH], "other", (json_int_t)tot->ops[LEAP_STATS_OTHER],
	    "read_bytes", (json_int_t)tot->bytes[0], "write_bytes", (json_int_t)tot->bytes[1],
	    "error_count", (json_int_t)tot->errors, "errors", errors_json(tot), "interval_ms",
	    (double)ns_elapsed / 1e6, "read_iops", r, "write_iops", w, "iops", all, "read_mibps",
	    secs > 0 ? (double)delta->bytes[0] / secs / 1048576.0 : 0.0, "write_mibps",
	    secs > 0 ? (double)delta->bytes[1] / secs / 1048576.0 : 0.0, "latency_us",
	    latency_json(delta));
}

static bool wanted(const struct stats_query *q, const struct rpc_ctrl *c)
{
	return !q->p.ctrl || strcmp(q->ctrl_name, c->name) == 0;
}

/* The namespaces this query covers, as they are right now. */
static int collect_targets(struct stats_query *q)
{
	uint32_t n = 0;

	for (struct rpc_ctrl *c = q->d->ctrls; c; c = c->next)
		if (wanted(q, c))
			n += c->nns;
	q->targets = calloc(n ? n : 1, sizeof(*q->targets));
	if (!q->targets)
		return -ENOMEM;
	for (struct rpc_ctrl *c = q->d->ctrls; c; c = c->next) {
		if (!wanted(q, c))
			continue;
		for (uint32_t i = 0; i < c->nns; i++) {
			struct target *t = &q->targets[q->ntargets];

			if (c->ns[i].pending || (q->p.ns && c->ns[i].nsid != q->p.ns))
				continue;
			snprintf(t->ctrl, sizeof(t->ctrl), "%s", c->name);
			t->nsid = c->ns[i].nsid;
			snapshot(c, t->nsid, &t->start);
			q->ntargets++;
		}
	}
	return 0;
}

static json_t *ctrl_entry(json_t *ctrls, const struct rpc_ctrl *c)
{
	struct leap_stats st = { 0 };
	json_t *e;
	size_t i;

	json_array_foreach (ctrls, i, e) {
		if (strcmp(json_string_value(json_object_get(e, "name")), c->name) == 0)
			return e;
	}
	leap_stats_accumulate(&st, &c->dp->stats);
	/* "total": the controller's own counters since it was created. */
	e = json_pack("{s:s, s:b, s:o, s:[]}", "name", c->name, "attached",
		      __atomic_load_n(&c->dp->refs, __ATOMIC_RELAXED) > 0, "total",
		      counters_json(&st, &st, 0), "namespaces");
	json_array_append_new(ctrls, e);
	return e;
}

static void query_free(struct stats_query *q)
{
	json_decref(q->out);
	json_decref(q->qp_names);
	free(q->targets);
	free(q);
}

static void qpair_pass(struct stats_query *q);

/* Every namespace measured: build the answer (window or since-last-call intervals). */
static void finish_namespaces(struct stats_query *q, bool window)
{
	uint64_t now = leap_now_ns();
	json_t *ctrls = json_array();
	double max_ms = 0;

	for (uint32_t i = 0; ctrls && i < q->ntargets; i++) {
		struct target *t = &q->targets[i];
		struct rpc_ctrl *c = find_ctrl(q->d, t->ctrl);
		struct rpc_ns *ns = c ? find_ns(c, t->nsid) : NULL;
		struct leap_stats cur, delta;
		uint64_t elapsed;
		json_t *e;

		if (!ns)
			continue; /* removed during the window */
		snapshot(c, t->nsid, &cur);
		if (window) {
			stats_delta(&delta, &cur, &t->start);
			elapsed = now - q->t0;
		} else {
			stats_delta(&delta, &cur, &ns->prev);
			elapsed = now - ns->prev_ns;
			ns->prev = cur;
			ns->prev_ns = now;
		}
		if ((double)elapsed / 1e6 > max_ms)
			max_ms = (double)elapsed / 1e6;
		e = counters_json(&cur, &delta, elapsed);
		json_object_set_new(e, "nsid", json_integer(ns->nsid));
		json_object_set_new(e, "bdev", json_string(ns->bdev->name));
		json_array_append_new(json_object_get(ctrl_entry(ctrls, c), "namespaces"), e);
	}
	/* Controllers without namespaces are still listed. */
	for (struct rpc_ctrl *c = q->d->ctrls; ctrls && c; c = c->next)
		if (wanted(q, c) && !q->p.ns)
			ctrl_entry(ctrls, c);
	q->out = json_pack("{s:f, s:b, s:o}", "interval_ms", max_ms, "window", window,
			   "controllers", ctrls);
	if (!q->out) {
		leap_rpc_call_error(q->call, -ENOMEM, "out of memory");
		query_free(q);
		return;
	}
	if (q->p.qpairs) {
		q->qp_names = json_array();
		for (struct rpc_ctrl *c = q->d->ctrls; q->qp_names && c; c = c->next)
			if (wanted(q, c))
				json_array_append_new(q->qp_names, json_string(c->name));
		qpair_pass(q);
		return;
	}
	leap_rpc_call_reply(q->call, json_incref(q->out));
	query_free(q);
}

static void window_closed(void *arg)
{
	finish_namespaces(arg, true);
}

/* Reactor: the transport's queues belong to this thread while a tenant is attached. */
static void qpair_read(void *arg)
{
	struct stats_query *q = arg;
	struct leap_ctrl *ctrl = q->qp_ctrl->dp;
	struct leap_qpair *qps[STATS_MAX_QPAIRS];
	uint32_t n = 0;

	memset(q->qp, 0, sizeof(q->qp));
	memset(q->qp_active, 0, sizeof(q->qp_active));
	if (ctrl->tops && ctrl->tops->qpairs)
		n = ctrl->tops->qpairs(ctrl->transport, qps, STATS_MAX_QPAIRS);
	for (uint32_t i = 0; i < n; i++) {
		uint16_t sqid = qps[i]->sqid;

		if (sqid >= STATS_MAX_QPAIRS)
			continue;
		q->qp_active[sqid] = true;
		leap_stats_accumulate(&q->qp[sqid], &qps[i]->stats);
	}
}

static void qpair_read_done(void *arg)
{
	struct stats_query *q = arg;
	json_t *list = json_array();

	for (uint32_t i = 0; list && i < STATS_MAX_QPAIRS; i++) {
		json_t *e;

		if (!q->qp_active[i])
			continue;
		/* Queue pairs report totals only: they come and go with the tenant. */
		e = counters_json(&q->qp[i], &q->qp[i], 0);
		json_object_set_new(e, "sqid", json_integer(i));
		json_object_set_new(e, "latency_us", latency_json(&q->qp[i]));
		json_array_append_new(list, e);
	}
	q->qp_ctrl->busy--;
	json_object_set_new(ctrl_entry(json_object_get(q->out, "controllers"), q->qp_ctrl),
			    "qpairs", list ? list : json_array());
	q->qp_ctrl = NULL;
	qpair_pass(q);
}

/*
 * Visit the wanted controllers one by one on their reactors, then answer.
 * Each is found again by name (it may have been deleted meanwhile) and
 * held busy while its reactor reads it, so ctrl_delete waits for us.
 */
static void qpair_pass(struct stats_query *q)
{
	while (json_array_size(q->qp_names)) {
		struct rpc_ctrl *c =
		    find_ctrl(q->d, json_string_value(json_array_get(q->qp_names, 0)));

		json_array_remove(q->qp_names, 0);
		if (!c)
			continue;
		q->qp_ctrl = c;
		c->busy++;
		if (leap_daemon_run_on(q->d, leap_daemon_ctrl_reactor(q->d, c->dp->cntlid),
				       qpair_read, qpair_read_done, q) < 0) {
			c->busy--;
			leap_rpc_call_error(q->call, -EAGAIN, "ctrl '%s': reactor unavailable",
					    c->name);
			query_free(q);
		}
		return;
	}
	leap_rpc_call_reply(q->call, json_incref(q->out));
	query_free(q);
}

static void stats_get(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	struct stats_query *q;
	struct rpc_ctrl *c = NULL;
	int err;

	q = calloc(1, sizeof(*q));
	if (!q) {
		leap_rpc_call_error(call, -ENOMEM, "out of memory");
		return;
	}
	if (leap_rpc_params_decode(call, params, stats_spec, LEAP_ARRAY_SIZE(stats_spec), &q->p))
		goto err_free;
	if (q->p.ns && !q->p.ctrl) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: 'ns' needs 'ctrl'");
		goto err_free;
	}
	if (q->p.ctrl) {
		c = find_ctrl(d, q->p.ctrl);
		if (!c) {
			leap_rpc_call_error(call, -ENOENT, "ctrl '%s' not found", q->p.ctrl);
			goto err_free;
		}
		snprintf(q->ctrl_name, sizeof(q->ctrl_name), "%s", q->p.ctrl);
		q->p.ctrl = q->ctrl_name; /* params die with the handler; the query may not */
	}
	if (q->p.ns && !find_ns(c, q->p.ns)) {
		leap_rpc_call_error(call, -ENOENT, "ctrl '%s' has no nsid %u", c->name, q->p.ns);
		goto err_free;
	}
	q->call = call;
	q->d = d;
	q->t0 = leap_now_ns();
	err = collect_targets(q);
	if (err) {
		leap_rpc_call_error(call, err, "out of memory");
		goto err_free;
	}
	if (!q->p.window_ms) {
		finish_namespaces(q, false);
		return;
	}
	err = leap_rpc_server_timer(d->rpc, q->p.window_ms, window_closed, q);
	if (err) {
		leap_rpc_call_error(call, err, "cannot start a %u ms window: %s", q->p.window_ms,
				    strerror(-err));
		goto err_free;
	}
	return;

err_free:
	free(q->targets);
	free(q);
}

static const struct leap_rpc_method stats_methods[] = {
	{ "stats_get", stats_get },
};

int leap_rpc_stats_register(struct leap_rpc_server *srv)
{
	return leap_rpc_server_register(srv, stats_methods, LEAP_ARRAY_SIZE(stats_methods));
}
