// SPDX-License-Identifier: BSD-3-Clause
/*
 * subsys_host_add / subsys_host_remove / subsys_host_list /
 * subsys_allow_any_host: which hosts (by host NQN) a network front-end
 * (NVMe/TCP) lets connect to a controller, which it serves as one NVM
 * subsystem. By default nobody: a controller is reachable over the network
 * only once a host is listed or allow_any_host was set explicitly. Tenants
 * of the shared-memory front-end are not concerned (they are local and
 * authenticated by the socket's permissions).
 *
 * The list lives in the controller model (nvme/ctrl.h, under its registry
 * lock, where listener threads read it); this file validates, answers with
 * the resulting state, and writes it back for config_save after the
 * controllers and before the listeners, so a replayed config never lets a
 * host in before its rules exist.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "nvme/ctrl.h"
#include "control/daemon.h"

static struct rpc_ctrl *ctrl_find(struct leap_daemon *d, const char *name)
{
	for (struct rpc_ctrl *c = d->ctrls; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

/* Control thread: the only writer of the list, so it reads it without the lock. */
static json_t *subsys_describe(const struct rpc_ctrl *c)
{
	const struct leap_ctrl *dp = c->dp;
	json_t *hosts = json_array();

	for (uint32_t i = 0; hosts && i < dp->nhosts; i++)
		json_array_append_new(hosts, json_string(dp->hosts[i]));
	return json_pack("{s:s, s:s, s:b, s:o}", "ctrl", c->name, "nqn", c->nqn, "allow_any_host",
			 dp->allow_any_host, "hosts", hosts ? hosts : json_array());
}

struct host_params {
	const char *ctrl;
	const char *host;
};

static const struct leap_rpc_param host_spec[] = {
	LEAP_RPC_PARAM("ctrl", LEAP_RPC_STR, true, struct host_params, ctrl),
	LEAP_RPC_PARAM("host", LEAP_RPC_STR, true, struct host_params, host),
};

static struct rpc_ctrl *decode_host(struct leap_rpc_call *call, json_t *params,
				    struct host_params *p)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	struct rpc_ctrl *c;

	if (leap_rpc_params_decode(call, params, host_spec, LEAP_ARRAY_SIZE(host_spec), p))
		return NULL;
	c = ctrl_find(d, p->ctrl);
	if (!c)
		leap_rpc_call_error(call, -ENOENT, "ctrl '%s' not found", p->ctrl);
	return c;
}

static void subsys_host_add(struct leap_rpc_call *call, json_t *params)
{
	struct host_params p = { 0 };
	struct rpc_ctrl *c = decode_host(call, params, &p);
	int err;

	if (!c)
		return;
	err = leap_ctrl_host_add(c->dp, p.host);
	switch (err) {
	case 0:
		LEAP_INFO("rpc", "ctrl '%s': host %s may connect", c->name, p.host);
		leap_rpc_call_reply(call, subsys_describe(c));
		return;
	case -EINVAL:
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: 'host' must be a host NQN: \"nqn.\" and up to "
				    "%d printable characters in all",
				    LEAP_CTRL_NQN_LEN - 1);
		return;
	case -EEXIST:
		leap_rpc_call_error(call, err, "host '%s' is already allowed on ctrl '%s'", p.host,
				    c->name);
		return;
	case -ENOSPC:
		leap_rpc_call_error(call, err, "ctrl '%s' already allows %d hosts", c->name,
				    LEAP_CTRL_MAX_HOSTS);
		return;
	default:
		leap_rpc_call_error(call, err, "ctrl '%s': %s", c->name, strerror(-err));
	}
}

static void subsys_host_remove(struct leap_rpc_call *call, json_t *params)
{
	struct host_params p = { 0 };
	struct rpc_ctrl *c = decode_host(call, params, &p);

	if (!c)
		return;
	if (leap_ctrl_host_remove(c->dp, p.host)) {
		leap_rpc_call_error(call, -ENOENT, "host '%s' is not on ctrl '%s''s allow-list",
				    p.host, c->name);
		return;
	}
	/* A host already connected stays connected; it cannot connect again. */
	LEAP_INFO("rpc", "ctrl '%s': host %s may no longer connect", c->name, p.host);
	leap_rpc_call_reply(call, subsys_describe(c));
}

struct list_params {
	const char *ctrl;
};

static const struct leap_rpc_param list_spec[] = {
	LEAP_RPC_PARAM("ctrl", LEAP_RPC_STR, false, struct list_params, ctrl),
};

static void subsys_host_list(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	struct list_params p = { 0 };
	json_t *out;

	if (leap_rpc_params_decode(call, params, list_spec, 1, &p))
		return;
	if (p.ctrl && !ctrl_find(d, p.ctrl)) {
		leap_rpc_call_error(call, -ENOENT, "ctrl '%s' not found", p.ctrl);
		return;
	}
	out = json_array();
	for (struct rpc_ctrl *c = d->ctrls; c && out; c = c->next)
		if (!p.ctrl || strcmp(p.ctrl, c->name) == 0)
			json_array_append_new(out, subsys_describe(c));
	if (!out) {
		leap_rpc_call_error(call, -ENOMEM, "out of memory");
		return;
	}
	leap_rpc_call_reply(call, out);
}

struct allow_params {
	const char *ctrl;
	bool allow;
};

static const struct leap_rpc_param allow_spec[] = {
	LEAP_RPC_PARAM("ctrl", LEAP_RPC_STR, true, struct allow_params, ctrl),
	LEAP_RPC_PARAM("allow", LEAP_RPC_BOOL, true, struct allow_params, allow),
};

static void subsys_allow_any_host(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	struct allow_params p = { 0 };
	struct rpc_ctrl *c;

	if (leap_rpc_params_decode(call, params, allow_spec, LEAP_ARRAY_SIZE(allow_spec), &p))
		return;
	c = ctrl_find(d, p.ctrl);
	if (!c) {
		leap_rpc_call_error(call, -ENOENT, "ctrl '%s' not found", p.ctrl);
		return;
	}
	leap_ctrl_set_allow_any_host(c->dp, p.allow);
	LEAP_INFO("rpc", "ctrl '%s': %s", c->name,
		  p.allow ? "any host may connect" : "only listed hosts may connect");
	leap_rpc_call_reply(call, subsys_describe(c));
}

static const struct leap_rpc_method subsys_methods[] = {
	{ "subsys_host_add", subsys_host_add },
	{ "subsys_host_remove", subsys_host_remove },
	{ "subsys_host_list", subsys_host_list },
	{ "subsys_allow_any_host", subsys_allow_any_host },
};

int leap_rpc_subsys_register(struct leap_rpc_server *srv)
{
	return leap_rpc_server_register(srv, subsys_methods, LEAP_ARRAY_SIZE(subsys_methods));
}

int leap_rpc_subsys_save(struct leap_daemon *d, json_t *calls)
{
	for (struct rpc_ctrl *c = d->ctrls; c; c = c->next) {
		const struct leap_ctrl *dp = c->dp;
		json_t *call;

		if (dp->allow_any_host) {
			call = json_pack("{s:s, s:{s:s, s:b}}", "method", "subsys_allow_any_host",
					 "params", "ctrl", c->name, "allow", 1);
			if (!call || json_array_append_new(calls, call) < 0)
				return -ENOMEM;
		}
		for (uint32_t i = 0; i < dp->nhosts; i++) {
			call = json_pack("{s:s, s:{s:s, s:s}}", "method", "subsys_host_add",
					 "params", "ctrl", c->name, "host", dp->hosts[i]);
			if (!call || json_array_append_new(calls, call) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}
