// SPDX-License-Identifier: BSD-3-Clause
/*
 * leapd's configuration is a list of RPC calls, SPDK's save_config model:
 *
 *   [ {"method": "bdev_create", "params": {"name": "m0", "type": "mem", ...}},
 *     {"method": "ctrl_create", "params": {...}}, ... ]
 *
 * At startup (leapd -c FILE) the calls run in order through the same
 * dispatcher the socket uses, so a config can do nothing a client could
 * not. config_save produces the list that rebuilds the running state: the
 * log level, then bdevs, controllers and namespaces, each with the
 * resolved values (nsid, nqn, sizes) so that a reload is identical.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leapio/log.h"
#include "control/daemon.h"

int leap_config_apply(struct leap_daemon *d, const char *path)
{
	json_error_t jerr;
	json_t *cfg, *c;
	size_t i;
	int ret = 0;

	cfg = json_load_file(path, 0, &jerr);
	if (!cfg) {
		if (jerr.line > 0)
			LEAP_ERR("config", "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		else
			LEAP_ERR("config", "%s: %s", path, jerr.text);
		return -EINVAL;
	}
	if (!json_is_array(cfg)) {
		LEAP_ERR("config", "%s: must be a JSON array of {\"method\", \"params\"} calls",
			 path);
		ret = -EINVAL;
		goto out;
	}
	json_array_foreach (cfg, i, c) {
		json_t *method = json_object_get(c, "method");
		json_t *params = json_object_get(c, "params");
		char *msg = NULL;
		int code;

		if (!json_is_object(c) || !json_is_string(method) ||
		    (params && !json_is_object(params) && !json_is_null(params))) {
			LEAP_ERR("config",
				 "%s: call #%zu: want {\"method\": string, \"params\": "
				 "object}",
				 path, i);
			ret = -EINVAL;
			goto out;
		}
		if (json_object_size(c) > (params ? 2u : 1u)) {
			LEAP_ERR("config",
				 "%s: call #%zu: only \"method\" and \"params\" are allowed", path,
				 i);
			ret = -EINVAL;
			goto out;
		}
		code = leap_rpc_server_call(d->rpc, json_string_value(method),
					    json_is_null(params) ? NULL : params, NULL, &msg);
		if (code) {
			LEAP_ERR("config", "%s: call #%zu (%s) failed: %s", path, i,
				 json_string_value(method), msg ? msg : "unknown error");
			free(msg);
			ret = code < 0 && code > -4096 ? code : -EINVAL;
			goto out;
		}
	}
	LEAP_INFO("config", "%s: %zu call(s) applied", path, json_array_size(cfg));
out:
	json_decref(cfg);
	return ret;
}

json_t *leap_config_build(struct leap_daemon *d)
{
	json_t *calls = json_array();
	json_t *lvl;

	if (!calls)
		return NULL;
	lvl = json_pack("{s:s, s:{s:s}}", "method", "log_set_level", "params", "level",
			leap_log_level_name(leap_log_get_level()));
	if (!lvl || json_array_append_new(calls, lvl) < 0)
		goto err;
	/* Dependency order: namespaces need both their bdev and their controller. */
	if (leap_rpc_bdev_save(d, calls) || leap_rpc_ctrl_save(d, calls) ||
	    leap_rpc_subsys_save(d, calls) || leap_rpc_policy_save(d, calls) ||
	    leap_rpc_listener_save(d, calls))
		goto err;
	return calls;
err:
	json_decref(calls);
	return NULL;
}

int leap_config_write(const char *path, const json_t *calls)
{
	char tmp[PATH_MAX];
	int fd, err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (json_dumpfd(calls, fd, JSON_INDENT(2)) < 0 || write(fd, "\n", 1) != 1) {
		err = -EIO;
		goto err_unlink;
	}
	/* Data durable before the name points at it: a crash leaves old or new, never half. */
	if (fsync(fd) < 0) {
		err = -errno;
		goto err_unlink;
	}
	if (close(fd) < 0) {
		fd = -1;
		err = -errno;
		goto err_unlink;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		err = -errno;
		goto err_unlink;
	}
	return 0;

err_unlink:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return err;
}

struct save_params {
	const char *path;
};

static const struct leap_rpc_param save_spec[] = {
	LEAP_RPC_PARAM("path", LEAP_RPC_STR, false, struct save_params, path),
};

void leap_rpc_config_save(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	struct save_params p = { 0 };
	json_t *calls;
	int err;

	if (leap_rpc_params_decode(call, params, save_spec, 1, &p))
		return;
	if (p.path && p.path[0] != '/') {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: 'path' must be absolute, got '%s'", p.path);
		return;
	}
	calls = leap_config_build(d);
	if (!calls) {
		leap_rpc_call_error(call, -ENOMEM, "out of memory");
		return;
	}
	if (p.path) {
		err = leap_config_write(p.path, calls);
		if (err) {
			json_decref(calls);
			leap_rpc_call_error(call, err, "config_save: cannot write %s: %s", p.path,
					    strerror(-err));
			return;
		}
		LEAP_INFO("config", "saved %zu call(s) to %s", json_array_size(calls), p.path);
	}
	leap_rpc_call_reply(call, calls);
}
