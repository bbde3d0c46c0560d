// SPDX-License-Identifier: BSD-3-Clause
/*
 * listener_add / listener_remove / listener_list: front-end listeners by
 * module type (frontend/frontend.h). The control plane keeps each
 * listener's id and type; everything else (its parameters, their
 * validation, its connections) is the module's. config_save writes
 * listeners after controllers and namespaces, so a host that connects
 * while a config replays finds what it asks for; the listener given on the
 * command line (leapd -s) is not saved, the command line recreates it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "control/daemon.h"
#include "frontend/frontend.h"

int leap_daemon_listener_add(struct leap_daemon *d, const json_t *params_in, bool saved,
			     uint32_t *id, char *err, size_t errlen)
{
	const struct leap_frontend_ops *ops;
	struct leap_frontend_env env = { d->reactors, d->nreactors };
	struct rpc_listener *l, **tail;
	const char *type = json_string_value(json_object_get(params_in, "type"));
	json_t *params;
	int rc;

	if (!type) {
		snprintf(err, errlen,
			 "invalid params: 'type' (a front-end module name) is required");
		return -EINVAL;
	}
	ops = leap_frontend_find(type);
	if (!ops) {
		size_t n = (size_t)snprintf(err, errlen,
					    "invalid params: unknown listener type '%s' (", type);

		for (const struct leap_frontend_ops *o = leap_frontend_next(NULL); o && n < errlen;
		     o = leap_frontend_next(o))
			n += (size_t)snprintf(err + n, errlen - n, "%s%s",
					      n && err[n - 1] != '(' ? ", " : "", o->type);
		if (n < errlen)
			snprintf(err + n, errlen - n, ")");
		return -ENOENT;
	}
	params = json_deep_copy(params_in);
	if (!params)
		return -ENOMEM;
	json_object_del(params, "type");
	for (l = d->listeners; l; l = l->next)
		if (l->ops == ops && ops->conflicts && ops->conflicts(l->impl, params)) {
			snprintf(err, errlen, "listener %u (%s) already serves these parameters",
				 l->id, type);
			json_decref(params);
			return -EEXIST;
		}
	l = calloc(1, sizeof(*l));
	if (!l) {
		json_decref(params);
		return -ENOMEM;
	}
	rc = ops->start(params, &env, &l->impl, err, errlen);
	json_decref(params);
	if (rc) {
		free(l);
		return rc;
	}
	l->ops = ops;
	l->id = ++d->listener_seq;
	l->saved = saved;
	for (tail = &d->listeners; *tail; tail = &(*tail)->next)
		;
	*tail = l;
	if (id)
		*id = l->id;
	LEAP_INFO("leapd", "listener %u (%s) started", l->id, type);
	return 0;
}

static void listener_free(struct rpc_listener *l)
{
	l->ops->stop(l->impl);
	free(l);
}

void leap_daemon_listeners_stop(struct leap_daemon *d)
{
	while (d->listeners) {
		struct rpc_listener *l = d->listeners;

		d->listeners = l->next;
		listener_free(l);
	}
}

static void listener_add(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	char err[256] = "";
	uint32_t id;
	int rc;

	if (!json_is_object(params)) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: expected an object with 'type'");
		return;
	}
	rc = leap_daemon_listener_add(d, params, true, &id, err, sizeof(err));
	if (rc) {
		leap_rpc_call_error(call,
				    rc == -EINVAL || rc == -ENOENT ? LEAP_RPC_INVALID_PARAMS : rc,
				    "%s", err[0] ? err : strerror(-rc));
		return;
	}
	leap_rpc_call_reply(call, json_pack("{s:i}", "id", (int)id));
}

struct remove_params {
	uint32_t id;
};

static const struct leap_rpc_param remove_spec[] = {
	LEAP_RPC_PARAM("id", LEAP_RPC_U32, true, struct remove_params, id),
};

static void listener_remove(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	struct remove_params p = { 0 };
	struct rpc_listener **pl, *l;

	if (leap_rpc_params_decode(call, params, remove_spec, 1, &p))
		return;
	for (pl = &d->listeners; *pl && (*pl)->id != p.id; pl = &(*pl)->next)
		;
	l = *pl;
	if (!l) {
		leap_rpc_call_error(call, -ENOENT, "no listener %u", p.id);
		return;
	}
	*pl = l->next;
	LEAP_INFO("leapd", "listener %u (%s) removed", l->id, l->ops->type);
	/* Detaches its connections; each drains its in-flight I/O on its reactor first. */
	listener_free(l);
	leap_rpc_call_reply(call, NULL);
}

static void listener_list(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	json_t *out;

	if (leap_rpc_params_decode(call, params, NULL, 0, NULL))
		return;
	out = json_array();
	for (struct rpc_listener *l = d->listeners; out && l; l = l->next) {
		json_t *e =
		    json_pack("{s:i, s:s, s:b, s:o, s:o}", "id", (int)l->id, "type", l->ops->type,
			      "saved", l->saved, "params", l->ops->write_config(l->impl), "state",
			      l->ops->info ? l->ops->info(l->impl) : json_object());

		if (e)
			json_array_append_new(out, e);
	}
	if (!out) {
		leap_rpc_call_error(call, -ENOMEM, "out of memory");
		return;
	}
	leap_rpc_call_reply(call, out);
}

int leap_rpc_listener_save(struct leap_daemon *d, json_t *calls)
{
	for (struct rpc_listener *l = d->listeners; l; l = l->next) {
		json_t *params, *call;

		if (!l->saved)
			continue;
		params = l->ops->write_config(l->impl);
		if (!params || json_object_set_new(params, "type", json_string(l->ops->type))) {
			json_decref(params);
			return -ENOMEM;
		}
		call = json_pack("{s:s, s:o}", "method", "listener_add", "params", params);
		if (!call || json_array_append_new(calls, call) < 0)
			return -ENOMEM;
	}
	return 0;
}

static const struct leap_rpc_method listener_methods[] = {
	{ "listener_add", listener_add },
	{ "listener_remove", listener_remove },
	{ "listener_list", listener_list },
};

int leap_rpc_listener_register(struct leap_rpc_server *srv)
{
	return leap_rpc_server_register(srv, listener_methods, LEAP_ARRAY_SIZE(listener_methods));
}
