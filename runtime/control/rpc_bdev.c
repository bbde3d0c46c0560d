// SPDX-License-Identifier: BSD-3-Clause
/*
 * bdev_create, bdev_delete and bdev_list. Backends live in the bdev
 * registry (bdev.c); this file validates requests so that errors name the
 * bad field, and records the creation params of every bdev it made so
 * config_save can recreate them. Namespaces hold references on bdevs; a
 * bdev in use cannot be deleted.
 */
#include <errno.h>
#include <string.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "backend/bdev.h"
#include "control/daemon.h"

struct bdev_create_params {
	const char *name;
	const char *type;
	const char *path;
	uint64_t size;
	uint32_t block_size;
	bool buffered;
	uint32_t queue_depth;
};

static const struct leap_rpc_param bdev_create_spec[] = {
	LEAP_RPC_PARAM("name", LEAP_RPC_STR, true, struct bdev_create_params, name),
	LEAP_RPC_PARAM("type", LEAP_RPC_STR, true, struct bdev_create_params, type),
	LEAP_RPC_PARAM("path", LEAP_RPC_STR, false, struct bdev_create_params, path),
	LEAP_RPC_PARAM("size", LEAP_RPC_U64, false, struct bdev_create_params, size),
	LEAP_RPC_PARAM("block_size", LEAP_RPC_U32, false, struct bdev_create_params, block_size),
	LEAP_RPC_PARAM("buffered", LEAP_RPC_BOOL, false, struct bdev_create_params, buffered),
	LEAP_RPC_PARAM_RANGE("queue_depth", LEAP_RPC_U32, false, struct bdev_create_params,
			     queue_depth, 1, 4096),
};

/* The record config_save replays: resolved values, so a reload builds the same bdev. */
static json_t *bdev_record(const struct leap_bdev *b, const struct bdev_create_params *p)
{
	json_t *r = json_pack("{s:s, s:s, s:I, s:i}", "name", b->name, "type", b->type, "size",
			      (json_int_t)b->size, "block_size", (int)b->block_size);

	if (r && strcmp(b->type, "uring") == 0) {
		json_object_set_new(r, "path", json_string(b->path));
		json_object_set_new(r, "buffered", json_boolean(p->buffered));
		if (p->queue_depth)
			json_object_set_new(r, "queue_depth", json_integer(p->queue_depth));
	}
	return r;
}

static json_t *bdev_describe(struct leap_daemon *d, const struct leap_bdev *b)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:i, s:I, s:i}", "name", b->name, "type",
			      b->type, "path", b->path, "size", (json_int_t)b->size, "block_size",
			      (int)b->block_size, "blocks", (json_int_t)(b->size / b->block_size),
			      "namespaces", (int)b->refs);
	json_t *rec;

	json_object_set_new(o, "id", json_integer(b->id));
	json_object_set_new(o, "qos",
			    json_pack("{s:i, s:[i,i,i]}", "inflight", (int)b->qos_inflight,
				      "weights", b->qos_weight[0], b->qos_weight[1],
				      b->qos_weight[2]));
	size_t i;

	/* Creation options the registry does not keep come from our record. */
	json_array_foreach (d->bdevs, i, rec) {
		if (strcmp(json_string_value(json_object_get(rec, "name")), b->name) == 0) {
			json_t *v = json_object_get(json_object_get(rec, "params"), "buffered");

			json_object_set_new(o, "buffered", json_boolean(json_is_true(v)));
			break;
		}
	}
	return o;
}

static void bdev_create(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	struct bdev_create_params p = { 0 };
	struct leap_bdev_params bp;
	struct leap_bdev *b;
	json_t *rec;
	int err;

	if (leap_rpc_params_decode(call, params, bdev_create_spec,
				   LEAP_ARRAY_SIZE(bdev_create_spec), &p))
		return;
	if (!p.name[0] || strlen(p.name) >= sizeof(b->name)) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: 'name' must be 1..%zu characters",
				    sizeof(b->name) - 1);
		return;
	}
	if (strcmp(p.type, "uring") != 0 && strcmp(p.type, "mem") != 0 &&
	    strcmp(p.type, "null") != 0) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: 'type' must be uring, mem or null, got '%s'",
				    p.type);
		return;
	}
	if (strcmp(p.type, "uring") == 0 && (!p.path || !p.path[0])) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: 'path' is required for a uring bdev");
		return;
	}
	if (strcmp(p.type, "uring") != 0 && p.path) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: 'path' only applies to a uring bdev");
		return;
	}
	if (strcmp(p.type, "uring") != 0 && !p.size) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: 'size' is required for a %s bdev", p.type);
		return;
	}
	if (p.block_size && p.block_size != 512 && p.block_size != 4096) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: 'block_size' must be 512 or 4096, got %u",
				    p.block_size);
		return;
	}
	if (p.size % (p.block_size ? p.block_size : 512)) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: 'size' %llu is not a multiple of the block "
				    "size %u",
				    (unsigned long long)p.size, p.block_size ? p.block_size : 512);
		return;
	}
	if (leap_bdev_find(p.name)) {
		leap_rpc_call_error(call, -EEXIST, "bdev '%s' already exists", p.name);
		return;
	}
	bp = (struct leap_bdev_params){
		.type = p.type,
		.name = p.name,
		.path = p.path,
		.size = p.size,
		.block_size = p.block_size,
		.buffered = p.buffered,
		.queue_depth = p.queue_depth,
	};
	leap_daemon_error_clear();
	err = leap_bdev_create(&bp, &b);
	if (err) {
		const char *why = leap_daemon_last_error();

		leap_rpc_call_error(call, err, "bdev '%s': cannot create: %s%s%s", p.name,
				    strerror(-err), why[0] ? ": " : "", why);
		return;
	}
	rec = json_pack("{s:s, s:o}", "name", b->name, "params", bdev_record(b, &p));
	if (!rec || json_array_append_new(d->bdevs, rec) < 0) {
		leap_bdev_destroy(b);
		leap_rpc_call_error(call, -ENOMEM, "bdev '%s': out of memory", p.name);
		return;
	}
	leap_rpc_call_reply(call, bdev_describe(d, b));
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
	struct leap_daemon *d = leap_rpc_call_ctx(call);
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
			json_array_append_new(out, bdev_describe(d, b));
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
	struct leap_daemon *d = leap_rpc_call_ctx(call);
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
	leap_rpc_call_reply(call, bdev_describe(d, b));
}

static const struct leap_rpc_method bdev_methods[] = {
	{ "bdev_set_qos", bdev_set_qos },
	{ "bdev_create", bdev_create },
	{ "bdev_delete", bdev_delete },
	{ "bdev_list", bdev_list },
};

int leap_rpc_bdev_register(struct leap_rpc_server *srv)
{
	return leap_rpc_server_register(srv, bdev_methods, LEAP_ARRAY_SIZE(bdev_methods));
}

int leap_rpc_bdev_save(struct leap_daemon *d, json_t *calls)
{
	json_t *rec;
	size_t i;

	json_array_foreach (d->bdevs, i, rec) {
		json_t *c = json_pack("{s:s, s:O}", "method", "bdev_create", "params",
				      json_object_get(rec, "params"));
		struct leap_bdev *b =
		    leap_bdev_find(json_string_value(json_object_get(rec, "name")));

		if (!c || json_array_append_new(calls, c) < 0)
			return -ENOMEM;
		if (b && (b->qos_inflight || b->qos_weight[0] != 1 || b->qos_weight[1] != 1 ||
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
	json_t *rec;
	size_t i;

	json_array_foreach (d->bdevs, i, rec) {
		struct leap_bdev *b =
		    leap_bdev_find(json_string_value(json_object_get(rec, "name")));
		int err = b ? leap_bdev_destroy(b) : 0;

		if (err)
			LEAP_WARN("rpc", "bdev '%s' left behind at shutdown: %s", b->name,
				  strerror(-err));
	}
	json_array_clear(d->bdevs);
}
