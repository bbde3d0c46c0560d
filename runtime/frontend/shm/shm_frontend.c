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
#include <grp.h>
#include <sys/un.h>

#include "frontend/frontend.h"
#include "frontend/shm/shm.h"

struct shm_frontend {
	struct leap_shm_listener *l;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	gid_t gid; /* the group the socket is open to, when shared */
	bool shared;
};

/* A group name or a decimal gid. 0, or -ENOENT. */
static int group_id(const char *g, gid_t *out)
{
	struct group gr, *res = NULL;
	char buf[4096], *end;
	unsigned long n = strtoul(g, &end, 10);

	if (g[0] && !*end) {
		*out = (gid_t)n;
		return 0;
	}
	if (getgrnam_r(g, &gr, buf, sizeof(buf), &res) || !res)
		return -ENOENT;
	*out = res->gr_gid;
	return 0;
}

static int shm_fe_start(const json_t *params, const struct leap_frontend_env *env, void **out,
			char *err, size_t errlen)
{
	struct shm_frontend *fe;
	const char *key, *path = NULL, *group = NULL;
	gid_t gid = 0;
	json_t *v;
	int rc;

	json_object_foreach ((json_t *)params, key, v) {
		if (strcmp(key, "path") == 0 && json_is_string(v)) {
			path = json_string_value(v);
			continue;
		}
		if (strcmp(key, "group") == 0 && json_is_string(v)) {
			group = json_string_value(v);
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
	if (group && group_id(group, &gid)) {
		snprintf(err, errlen, "shm: 'group': no group '%s'", group);
		return -EINVAL;
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
	if (group) {
		rc = leap_shm_listener_share(fe->l, gid);
		if (rc) {
			snprintf(err, errlen, "shm: cannot open %s to group '%s': %s", fe->path,
				 group, strerror(-rc));
			leap_shm_listener_stop(fe->l);
			free(fe);
			return rc;
		}
		fe->gid = gid;
		fe->shared = true;
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

	char gid[16];

	if (!fe->shared)
		return json_pack("{s:s}", "path", fe->path);
	/* The number: what the socket got, whatever the name maps to later. */
	snprintf(gid, sizeof(gid), "%u", (unsigned)fe->gid);
	return json_pack("{s:s, s:s}", "path", fe->path, "group", gid);
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
