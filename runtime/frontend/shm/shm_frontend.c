// SPDX-License-Identifier: BSD-3-Clause
/*
 * The shared-memory front-end as a module: listener_add {"type": "shm",
 * "path": SOCKET} starts a tenant listener (shm_listener.c) on the daemon's
 * reactors. Parameters are validated here, where they are understood.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "frontend/frontend.h"
#include "frontend/shm/shm.h"

struct shm_frontend {
	struct leap_shm_listener *l;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static int shm_fe_start(const json_t *params, const struct leap_frontend_env *env, void **out,
			char *err, size_t errlen)
{
	struct shm_frontend *fe;
	const char *key, *path = NULL;
	json_t *v;
	int rc;

	json_object_foreach ((json_t *)params, key, v) {
		if (strcmp(key, "path") == 0 && json_is_string(v)) {
			path = json_string_value(v);
			continue;
		}
		snprintf(err, errlen,
			 strcmp(key, "path") ? "shm: unknown parameter '%s'"
					     : "shm: '%s' must be a string",
			 key);
		return -EINVAL;
	}
	if (!path || path[0] != '/') {
		snprintf(err, errlen, "shm: 'path' (an absolute socket path) is required");
		return -EINVAL;
	}
	if (strlen(path) >= sizeof(fe->path)) {
		snprintf(err, errlen, "shm: 'path' longer than %zu bytes", sizeof(fe->path) - 1);
		return -ENAMETOOLONG;
	}
	fe = calloc(1, sizeof(*fe));
	if (!fe)
		return -ENOMEM;
	snprintf(fe->path, sizeof(fe->path), "%s", path);
	rc = leap_shm_listener_start(fe->path, env->reactors, env->nreactors, &fe->l);
	if (rc) {
		snprintf(err, errlen, "shm: cannot listen on %s: %s", fe->path, strerror(-rc));
		free(fe);
		return rc;
	}
	*out = fe;
	return 0;
}

static void shm_fe_stop(void *arg)
{
	struct shm_frontend *fe = arg;

	if (!fe)
		return;
	leap_shm_listener_stop(fe->l);
	free(fe);
}

static json_t *shm_fe_write_config(void *arg)
{
	struct shm_frontend *fe = arg;

	return json_pack("{s:s}", "path", fe->path);
}

static json_t *shm_fe_info(void *arg)
{
	struct shm_frontend *fe = arg;

	return json_pack("{s:s, s:i}", "path", fe->path, "tenants",
			 (int)leap_shm_listener_conn_count(fe->l));
}

static bool shm_fe_conflicts(void *arg, const json_t *params)
{
	struct shm_frontend *fe = arg;
	const char *path = json_string_value(json_object_get(params, "path"));

	return path && strcmp(path, fe->path) == 0;
}

const struct leap_frontend_ops leap_shm_frontend_ops = {
	.type = "shm",
	.start = shm_fe_start,
	.stop = shm_fe_stop,
	.write_config = shm_fe_write_config,
	.info = shm_fe_info,
	.conflicts = shm_fe_conflicts,
};
LEAP_FRONTEND_REGISTER(leap_shm_frontend_ops)
