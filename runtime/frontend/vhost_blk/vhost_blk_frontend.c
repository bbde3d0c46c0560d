// SPDX-License-Identifier: BSD-3-Clause
/*
 * The vhost-user-blk front-end as a module: listener_add {"type":
 * "vhost-user-blk", "socket": PATH, "ctrl": NAME, "nsid": N, "num_queues":
 * Q} serves namespace N of controller NAME to one vhost-user front-end
 * (QEMU's vhost-user-blk-pci) on PATH. Parameters are validated here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "frontend/frontend.h"
#include "frontend/vhost_blk/vhost_blk.h"

struct vb_frontend {
	struct vb_listener *l;
	char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char ctrl[64];
	uint32_t nsid;
	uint32_t num_queues;
};

static bool get_u32(json_t *v, uint32_t min, uint32_t max, uint32_t *out)
{
	json_int_t x;

	if (!json_is_integer(v))
		return false;
	x = json_integer_value(v);
	if (x < (json_int_t)min || x > (json_int_t)max)
		return false;
	*out = (uint32_t)x;
	return true;
}

static int vb_fe_start(const json_t *params, const struct leap_frontend_env *env, void **out,
		       char *err, size_t errlen)
{
	struct vb_listener_opts o = { .nsid = 1, .num_queues = 1 };
	struct leap_ctrl_access access;
	struct vb_frontend *fe;
	struct leap_ctrl *ctrl;
	const char *key;
	json_t *v;
	int rc;

	json_object_foreach ((json_t *)params, key, v) {
		if (strcmp(key, "socket") == 0 && json_is_string(v)) {
			o.path = json_string_value(v);
		} else if (strcmp(key, "ctrl") == 0 && json_is_string(v)) {
			o.ctrl = json_string_value(v);
		} else if (strcmp(key, "nsid") == 0) {
			if (!get_u32(v, 1, LEAP_CTRL_MAX_NS, &o.nsid)) {
				snprintf(err, errlen, "vhost-user-blk: 'nsid' must be 1..%u",
					 LEAP_CTRL_MAX_NS);
				return -EINVAL;
			}
		} else if (strcmp(key, "num_queues") == 0) {
			if (!get_u32(v, 1, VB_MAX_QUEUES, &o.num_queues)) {
				snprintf(err, errlen, "vhost-user-blk: 'num_queues' must be 1..%u",
					 VB_MAX_QUEUES);
				return -EINVAL;
			}
		} else {
			snprintf(err, errlen,
				 strcmp(key, "socket") && strcmp(key, "ctrl")
				     ? "vhost-user-blk: unknown parameter '%s'"
				     : "vhost-user-blk: '%s' must be a string",
				 key);
			return -EINVAL;
		}
	}
	if (!o.path || o.path[0] != '/') {
		snprintf(err, errlen, "vhost-user-blk: 'socket' (an absolute path) is required");
		return -EINVAL;
	}
	if (!o.ctrl || !o.ctrl[0]) {
		snprintf(err, errlen,
			 "vhost-user-blk: 'ctrl' (the controller to serve) is required");
		return -EINVAL;
	}
	fe = calloc(1, sizeof(*fe));
	if (!fe)
		return -ENOMEM;
	if (strlen(o.path) >= sizeof(fe->socket) || strlen(o.ctrl) >= sizeof(fe->ctrl)) {
		snprintf(err, errlen, "vhost-user-blk: 'socket' or 'ctrl' too long");
		free(fe);
		return -ENAMETOOLONG;
	}
	snprintf(fe->socket, sizeof(fe->socket), "%s", o.path);
	snprintf(fe->ctrl, sizeof(fe->ctrl), "%s", o.ctrl);
	fe->nsid = o.nsid;
	fe->num_queues = o.num_queues;
	o.reactors = env->reactors;
	o.nreactors = env->nreactors;
	/* The control thread owns the registry: the controller cannot go while we read it. */
	ctrl = leap_ctrl_find(o.ctrl);
	if (ctrl) {
		access = ctrl->access;
		o.access = &access;
	}
	rc = vb_listener_start(&o, &fe->l);
	if (rc) {
		snprintf(err, errlen, "vhost-user-blk: cannot listen on %s: %s", fe->socket,
			 strerror(-rc));
		free(fe);
		return rc;
	}
	*out = fe;
	return 0;
}

static void vb_fe_stop(void *arg)
{
	struct vb_frontend *fe = arg;

	if (!fe)
		return;
	vb_listener_stop(fe->l);
	free(fe);
}

static json_t *vb_fe_write_config(void *arg)
{
	struct vb_frontend *fe = arg;

	return json_pack("{s:s, s:s, s:i, s:i}", "socket", fe->socket, "ctrl", fe->ctrl, "nsid",
			 (int)fe->nsid, "num_queues", (int)fe->num_queues);
}

static json_t *vb_fe_info(void *arg)
{
	struct vb_frontend *fe = arg;

	return vb_listener_info(fe->l);
}

static bool vb_fe_conflicts(void *arg, const json_t *params)
{
	struct vb_frontend *fe = arg;
	const char *path = json_string_value(json_object_get(params, "socket"));

	return path && strcmp(path, fe->socket) == 0;
}

const struct leap_frontend_ops leap_vhost_blk_frontend_ops = {
	.type = "vhost-user-blk",
	.start = vb_fe_start,
	.stop = vb_fe_stop,
	.write_config = vb_fe_write_config,
	.info = vb_fe_info,
	.conflicts = vb_fe_conflicts,
};
LEAP_FRONTEND_REGISTER(leap_vhost_blk_frontend_ops)
