// SPDX-License-Identifier: BSD-3-Clause
/*
 * bdev_create, bdev_delete, bdev_list, bdev_set_qos and bdev_types. The
 * bdev registry (backend/bdev.c) and its modules own everything about a
 * backend: this file knows no backend type. bdev_create hands the request's
 * params to the registry, which validates them (the module its own keys)
 * and creates the bdev, maybe later: the call is answered from the
 * creation's callback, on the control thread. d->bdevs lists the names this
 * file created, in order, for config_save (each bdev writes its own
 * config) and shutdown. Namespaces hold references on bdevs; a bdev in use
 * cannot be deleted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "backend/bdev.h"
#include "control/daemon.h"

/* One bdev_create between the request and its answer. */
struct create_call {
	struct leap_rpc_call *call;
	struct leap_daemon *d;
	json_t *params; /* our reference: the module reads it until it calls back */
	struct leap_bdev_err err;
	int rc;
	struct leap_bdev *bdev;
};

/* Creations started and not yet answered (shutdown waits for them). */
static uint32_t creations_pending;

/* Control thread: record the bdev and answer. */
static void create_finish(void *arg)
{
	struct create_call *cc = arg;
	json_t *rec;

	__atomic_fetch_sub(&creations_pending, 1, __ATOMIC_RELAXED);
	if (cc->rc) {
		leap_rpc_call_error(cc->call, cc->rc, "bdev '%s': cannot create: %s",
				    json_string_value(json_object_get(cc->params, "name")),
				    cc->err.msg);
		goto out;
	}
	rec = json_pack("{s:s}", "name", cc->bdev->name);
	if (!rec || json_array_append_new(cc->d->bdevs, rec) < 0) {
		leap_bdev_destroy(cc->bdev);
		leap_rpc_call_error(cc->call, -ENOMEM, "bdev '%s': out of memory", cc->bdev->name);
		goto out;
	}
	leap_rpc_call_reply(cc->call, leap_bdev_info(cc->bdev));
out:
	json_decref(cc->params);
	free(cc);
}

/* The registry's callback: any thread, maybe inside leap_bdev_create(). */
static void create_done(void *arg, int rc, struct leap_bdev *bdev)
{
	struct create_call *cc = arg;

	cc->rc = rc;
	cc->bdev = bdev;
	if (leap_rpc_server_post(cc->d->rpc, create_finish, cc) == 0)
		return;
	/* Cannot reach the control thread: answer from here (the call allows it), keep nothing. */
	if (bdev)
		leap_bdev_destroy(bdev);
	leap_rpc_call_error(cc->call, -ENOMEM, "bdev_create: out of memory");
	json_decref(cc->params);
	free(cc);
	__atomic_fetch_sub(&creations_pending, 1, __ATOMIC_RELAXED);
}

static void bdev_create(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	struct create_call *cc;
	int rc;

	cc = calloc(1, sizeof(*cc));
	if (!cc) {
		leap_rpc_call_error(call, -ENOMEM, "out of memory");
		return;
	}
	cc->call = call;
	cc->d = d;
	cc->params = json_incref(params);
	__atomic_fetch_add(&creations_pending, 1, __ATOMIC_RELAXED);
	rc = leap_bdev_create(params, &cc->err, create_done, cc);
	if (rc) {
		__atomic_fetch_sub(&creations_pending, 1, __ATOMIC_RELAXED);
		leap_rpc_call_error(call, rc == -EINVAL ? LEAP_RPC_INVALID_PARAMS : rc, "%s",
				    cc->err.msg);
		json_decref(cc->params);
		free(cc);
	}
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

static void record_remove(json_t *records, const char *name)
{
	json_t *rec;
	size_t i;

	json_array_foreach (records, i, rec) {
		if (strcmp(json_string_value(json_object_get(rec, "name")), name) == 0) {
			json_array_remove(records, i);
			return;
		}
	}
}

static void bdev_delete(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	struct name_params p = { 0 };
	struct leap_bdev *b;
	int err;

	if (leap_rpc_params_decode(call, params, name_spec, 1, &p))
		return;
	b = leap_bdev_find(p.name);
	if (!b) {
		leap_rpc_call_error(call, -ENOENT, "bdev '%s' not found", p.name);
		return;
	}
	if (b->refs) {
		leap_rpc_call_error(call, -EBUSY, "bdev '%s' is used by %u namespace(s)", p.name,
				    b->refs);
		return;
	}
	err = leap_bdev_destroy(b);
	if (err) {
		leap_rpc_call_error(call, err, "bdev '%s': cannot delete: %s", p.name,
				    strerror(-err));
		return;
	}
	record_remove(d->bdevs, p.name);
	leap_rpc_call_reply(call, NULL);
}

static void bdev_list(struct leap_rpc_call *call, json_t *params)
{
	struct name_params p = { 0 };
	json_t *out;

	if (leap_rpc_params_decode(call, params, name_opt_spec, 1, &p))
		return;
	if (p.name && !leap_bdev_find(p.name)) {
		leap_rpc_call_error(call, -ENOENT, "bdev '%s' not found", p.name);
		return;
	}
	out = json_array();
	for (struct leap_bdev *b = leap_bdev_next(NULL); b && out; b = leap_bdev_next(b))
		if (!p.name || strcmp(p.name, b->name) == 0)
			json_array_append_new(out, leap_bdev_info(b));
	if (!out) {
		leap_rpc_call_error(call, -ENOMEM, "out of memory");
		return;
	}
	leap_rpc_call_reply(call, out);
}

struct qos_params {
	const char *name;
	uint32_t inflight;
	json_t *weights;
};

static const struct leap_rpc_param qos_spec[] = {
	LEAP_RPC_PARAM("name", LEAP_RPC_STR, true, struct qos_params, name),
	LEAP_RPC_PARAM_RANGE("inflight", LEAP_RPC_U32, false, struct qos_params, inflight, 0,
			     65536),
	LEAP_RPC_PARAM("weights", LEAP_RPC_JSON, false, struct qos_params, weights),
};

/*
 * The arbitration in front of a backend (arb.h): in-flight budget per
 * reactor and WRR weights for high/medium/low. Takes effect at once.
 */
static void bdev_set_qos(struct leap_rpc_call *call, json_t *params)
{
	struct leap_bdev *b;
	struct qos_params p = { 0 };
	uint8_t w[3];

	if (leap_rpc_params_decode(call, params, qos_spec, LEAP_ARRAY_SIZE(qos_spec), &p))
		return;
	b = leap_bdev_find(p.name);
	if (!b) {
		leap_rpc_call_error(call, -ENOENT, "bdev '%s' not found", p.name);
		return;
	}
	memcpy(w, b->qos_weight, sizeof(w));
	if (p.weights) {
		if (!json_is_array(p.weights) || json_array_size(p.weights) != 3) {
			leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
					    "weights: [high, medium, low], each 1..255");
			return;
		}
		for (int i = 0; i < 3; i++) {
			json_t *v = json_array_get(p.weights, (size_t)i);

			if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			    json_integer_value(v) > 255) {
				leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
						    "weights: [high, medium, low], each 1..255");
				return;
			}
			w[i] = (uint8_t)json_integer_value(v);
		}
	}
	if (!json_object_get(params, "inflight"))
		p.inflight = b->qos_inflight;
	/* Relaxed stores: reactors pick them up at their next arbitration decision. */
	for (int i = 0; i < 3; i++)
		__atomic_store_n(&b->qos_weight[i], w[i], __ATOMIC_RELAXED);
	__atomic_store_n(&b->qos_inflight, p.inflight, __ATOMIC_RELAXED);
	leap_rpc_call_reply(call, leap_bdev_info(b));
}

/* The backend modules linked into this leapd: what "type" may be. */
static void bdev_types(struct leap_rpc_call *call, json_t *params)
{
	json_t *out;

	if (leap_rpc_params_decode(call, params, NULL, 0, NULL))
		return;
	out = json_array();
	for (const struct leap_bdev_ops *m = leap_bdev_module_next(NULL); m && out;
	     m = leap_bdev_module_next(m))
		json_array_append_new(out, json_string(m->type));
	if (!out) {
		leap_rpc_call_error(call, -ENOMEM, "out of memory");
		return;
	}
	leap_rpc_call_reply(call, out);
}

static const struct leap_rpc_method bdev_methods[] = {
	{ "bdev_set_qos", bdev_set_qos }, { "bdev_create", bdev_create },
	{ "bdev_delete", bdev_delete },	  { "bdev_list", bdev_list },
	{ "bdev_types", bdev_types },
};

/* A backend module's own method (bdev_fault_set, bdev_mirror_add_leg, ...): the registry routes it. */
static void bdev_module_method(struct leap_rpc_call *call, json_t *params)
{
	struct leap_bdev_err err;
	json_t *result = NULL;
	int rc = leap_bdev_method_call(leap_rpc_call_method(call), params, &result, &err);

	if (rc)
		leap_rpc_call_error(call, rc == -EINVAL ? LEAP_RPC_INVALID_PARAMS : rc, "%s",
				    err.msg);
	else
		leap_rpc_call_reply(call, result);
}

int leap_rpc_bdev_register(struct leap_rpc_server *srv)
{
	/* Referenced by the server for its lifetime; modules are fixed after main() starts. */
	static struct leap_rpc_method module_methods[64];
	size_t n = 0;
	int rc;

	rc = leap_rpc_server_register(srv, bdev_methods, LEAP_ARRAY_SIZE(bdev_methods));
	if (rc)
		return rc;
	for (const struct leap_bdev_method *m = leap_bdev_method_next(NULL); m;
	     m = leap_bdev_method_next(m)) {
		if (n == LEAP_ARRAY_SIZE(module_methods)) {
			LEAP_ERR("rpc", "too many backend module methods; '%s' left out", m->name);
			break;
		}
		module_methods[n++] =
		    (struct leap_rpc_method){ .name = m->name, .fn = bdev_module_method };
	}
	return n ? leap_rpc_server_register(srv, module_methods, n) : 0;
}

int leap_rpc_bdev_save(struct leap_daemon *d, json_t *calls)
{
	json_t *rec;
	size_t i;

	json_array_foreach (d->bdevs, i, rec) {
		struct leap_bdev *b =
		    leap_bdev_find(json_string_value(json_object_get(rec, "name")));
		json_t *c;

		if (!b)
			continue;
		/* What the module says recreates it: resolved values (a uring size from the file). */
		c = json_pack("{s:s, s:o}", "method", "bdev_create", "params", leap_bdev_config(b));
		if (!c || json_array_append_new(calls, c) < 0)
			return -ENOMEM;
		if ((b->qos_inflight || b->qos_weight[0] != 1 || b->qos_weight[1] != 1 ||
		     b->qos_weight[2] != 1)) {
			c = json_pack("{s:s, s:{s:s, s:i, s:[i,i,i]}}", "method", "bdev_set_qos",
				      "params", "name", b->name, "inflight", (int)b->qos_inflight,
				      "weights", b->qos_weight[0], b->qos_weight[1],
				      b->qos_weight[2]);
			if (!c || json_array_append_new(calls, c) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

void leap_rpc_bdev_cleanup(struct leap_daemon *d)
{
	size_t i;

	/* A module still creating would call back into a server about to go: wait (bounded). */
	for (int n = 0; n < 1000 && __atomic_load_n(&creations_pending, __ATOMIC_RELAXED); n++)
		leap_rpc_server_poll(d->rpc, 10);
	if (__atomic_load_n(&creations_pending, __ATOMIC_RELAXED))
		LEAP_WARN("rpc", "%u bdev creation(s) still running at shutdown",
			  creations_pending);

	/* Newest first: a composite (mirror, stripe) holds the bdevs created before it. */
	for (i = json_array_size(d->bdevs); i-- > 0;) {
		struct leap_bdev *b = leap_bdev_find(
		    json_string_value(json_object_get(json_array_get(d->bdevs, i), "name")));
		int err = b ? leap_bdev_destroy(b) : 0;

		if (err)
			LEAP_WARN("rpc", "bdev '%s' left behind at shutdown: %s", b->name,
				  strerror(-err));
	}
	json_array_clear(d->bdevs);
}
