/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Front-end modules: how commands reach the controller model. A front-end
 * (shm today; NVMe/TCP and vhost-user-blk next) is a folder under
 * runtime/frontend/ that implements one ops table and registers it with
 * LEAP_FRONTEND_REGISTER(); the control plane starts listeners by type
 * name (listener_add {"type": ..., params}) and knows nothing else about
 * them. The SPDK pattern: lib/nvmf/transport.c + one file per transport.
 *
 * A module binds the controllers it serves with leap_ctrl_transport_bind()
 * (nvme/ctrl.h) on the controller's reactor, env->reactors[
 * leap_ctrl_reactor_index(cntlid, n)], and lists its queue pairs through
 * the transport op `qpairs` so statistics need no knowledge of it.
 *
 * Threading: every op runs on the control thread.
 */
#ifndef LEAPIO_RUNTIME_FRONTEND_H
#define LEAPIO_RUNTIME_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct leap_reactor;

/* What a listener may use: the daemon's reactors. */
struct leap_frontend_env {
	struct leap_reactor **reactors;
	uint32_t nreactors;
};

struct leap_frontend_ops {
	const char *type; /* "shm", "tcp", "vhost-user-blk" */
	/*
	 * Start a listener from its JSON parameters (everything but "type",
	 * which the registry consumed). The module validates its own
	 * parameters: on failure it returns -errno and writes the reason for
	 * the caller (an RPC error message) into err. *out is its handle.
	 */
	int (*start)(const json_t *params, const struct leap_frontend_env *env, void **out,
		     char *err, size_t errlen);
	/* Close the listener and detach every connection, draining its I/O. */
	void (*stop)(void *l);
	/*
	 * The parameters that recreate this listener (config_save), without
	 * "type". A new reference.
	 */
	json_t *(*write_config)(void *l);
	/* Live state for listener_list: connections (controller, peer), as a new object. */
	json_t *(*info)(void *l);
	/*
	 * Optional: another listener of this type with these parameters
	 * would collide with l (same socket path, same address and port).
	 */
	bool (*conflicts)(void *l, const json_t *params);
};

/* Register a module (at load: LEAP_FRONTEND_REGISTER). */
void leap_frontend_register(const struct leap_frontend_ops *ops);
/* Find a module by type name; NULL if none. */
const struct leap_frontend_ops *leap_frontend_find(const char *type);
/* Iterate the registered modules (NULL starts). */
const struct leap_frontend_ops *leap_frontend_next(const struct leap_frontend_ops *prev);

/*
 * Register `ops` when the program loads. The object that uses this must be
 * linked in: leapd links libleap_runtime.a whole (Makefile), tests name
 * the ops symbol.
 */
#define LEAP_FRONTEND_REGISTER(ops)                                                                \
	__attribute__((constructor)) static void leap_frontend_register_##ops(void)                \
	{                                                                                          \
		leap_frontend_register(&(ops));                                                    \
	}

#endif /* LEAPIO_RUNTIME_FRONTEND_H */
