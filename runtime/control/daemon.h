/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * leapd's daemon-wide state and control thread: the reactors, the RPC
 * server, the tenant listener, the records the control plane keeps of what
 * it created (the parameters config_save writes back out), logging, and
 * orderly shutdown. Everything here runs on the control thread unless
 * stated otherwise; reactors only ever see messages sent to them.
 */
#ifndef LEAPIO_RUNTIME_DAEMON_H
#define LEAPIO_RUNTIME_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "nvme/ctrl.h"
#include "control/rpc.h"
#include "core/stats.h"

struct leap_reactor;
struct leap_frontend_ops;

#define LEAPD_VERSION		    "0.1.0"
#define LEAPD_DEFAULT_RPC_SOCKET    "/run/leapio/leapd.sock"
#define LEAPD_DEFAULT_TENANT_SOCKET "/run/leapio/tenant.sock"
#define LEAPD_MAX_REACTORS	    64

/*
 * The control plane's record of one namespace / controller (rpc_ctrl.c):
 * resolved creation values (what config_save writes) plus the data-path
 * object they mirror, and the last statistics snapshot stats_get reported.
 */
struct rpc_ns {
	uint32_t nsid;
	struct leap_bdev *bdev; /* the data-path namespace holds the reference */
	uint64_t offset, size;	/* bytes within the bdev */
	uint32_t lba_size;
	bool pending; /* being added or removed on the reactor */
	bool shared;  /* may overlap other shared namespaces (policy-carved areas, snapshots) */
	struct leap_stats prev; /* counters at the previous stats_get */
	uint64_t prev_ns;	/* when they were taken (CLOCK_MONOTONIC ns) */
};

struct rpc_ctrl {
	char name[64];
	char nqn[224];
	char serial[21];
	uint32_t max_qpairs;
	uint32_t max_queue_size;
	struct rpc_ns ns[LEAP_CTRL_MAX_NS]; /* sorted by nsid */
	uint32_t nns;
	uint32_t busy; /* changes in flight on the reactor */
	struct leap_ctrl *dp;
	struct rpc_ctrl *next;
};

/* A running front-end listener (rpc_listener.c); the module owns `impl`. */
struct rpc_listener {
	uint32_t id;
	const struct leap_frontend_ops *ops;
	void *impl;
	bool saved; /* written by config_save (false: from the command line) */
	struct rpc_listener *next;
};

struct leap_daemon_opts {
	const char *config;	   /* startup config file, or NULL */
	const char *rpc_socket;	   /* NULL: no RPC socket (tests) */
	const char *tenant_socket; /* NULL: no tenant listener (tests) */
	const char *cpu_list;	   /* "0,2-3"; NULL: one unpinned reactor */
	const char *tenant_group;  /* group (name or gid) the tenant socket is opened to, or NULL */
};

struct leap_daemon {
	struct leap_daemon_opts opts;
	struct leap_rpc_server *rpc;
	struct leap_reactor *reactors[LEAPD_MAX_REACTORS];
	int reactor_cpu[LEAPD_MAX_REACTORS];
	uint32_t nreactors;
	struct rpc_listener *listeners; /* in creation order */
	uint32_t listener_seq;
	struct timespec started;
	bool locked[2]; /* leap_path_lock() held on opts.rpc_socket, opts.tenant_socket */
	int sigfd;
	bool stopping;
	/*
	 * The bdevs the control plane created, in creation order:
	 * [{"name": ...}] (each writes its own config, rpc_bdev.c).
	 */
	json_t *bdevs;
	/* Controllers and their namespaces, in creation order (rpc_ctrl.c). */
	struct rpc_ctrl *ctrls;
};

/*
 * Parse a CPU list ("0", "0,2", "1-3,5"). Fills cpus (at most max) and
 * returns the count, or -EINVAL with a message logged.
 */
int leap_daemon_parse_cpu_list(const char *list, int *cpus, int max);

/*
 * Bring the daemon up: signals blocked and routed to a signalfd, reactors
 * created and started, RPC methods registered, config applied, then the
 * RPC socket and tenant listener opened (so a client that can connect sees
 * the configured state). On failure everything is undone and -errno
 * returned; a config failure has been logged with the call index.
 */
int leap_daemon_start(struct leap_daemon *d, const struct leap_daemon_opts *opts);

/* Serve the control thread until SIGTERM/SIGINT or leap_daemon_request_stop(). */
int leap_daemon_run(struct leap_daemon *d);

/* Ask leap_daemon_run() to return (control thread only). */
void leap_daemon_request_stop(struct leap_daemon *d);

/*
 * Orderly shutdown: stop accepting (close the listeners), drain in-flight
 * I/O, stop the reactors, flush every backend (fdatasync), free everything.
 * Returns 0, or -EIO if a flush failed. Safe on a half-started daemon.
 */
int leap_daemon_stop(struct leap_daemon *d);

/*
 * The reactor that owns controller `cntlid`: the same mapping the tenant
 * listener uses (reactors[cntlid % n]). NULL when there are no reactors
 * (unit tests): then nothing but the control thread touches controllers.
 */
struct leap_reactor *leap_daemon_ctrl_reactor(struct leap_daemon *d, uint16_t cntlid);

/*
 * Run work(arg) on reactor `r`, then done(arg) back on the control thread
 * (through leap_rpc_server_post()). With r NULL both run before this
 * returns. Returns 0, or -errno when the message could not be sent (then
 * neither runs).
 */
int leap_daemon_run_on(struct leap_daemon *d, struct leap_reactor *r, void (*work)(void *arg),
		       void (*done)(void *arg), void *arg);

/* Register every leapd method (bdev_*, ctrl_*, ns_*, stats_get, config_save, ...). */
int leap_daemon_register_rpcs(struct leap_daemon *d);

/* ---- per-object RPC modules (rpc_*.c) -------------------------------------- */

int leap_rpc_bdev_register(struct leap_rpc_server *srv);
int leap_rpc_ctrl_register(struct leap_rpc_server *srv);
int leap_rpc_stats_register(struct leap_rpc_server *srv);
int leap_rpc_misc_register(struct leap_rpc_server *srv);
int leap_rpc_policy_register(struct leap_rpc_server *srv);
int leap_rpc_listener_register(struct leap_rpc_server *srv);
int leap_rpc_subsys_register(struct leap_rpc_server *srv);

/*
 * Start a listener of params["type"] (a front-end module) with the rest of
 * params. `saved`: config_save writes it back. On failure -errno and the
 * reason in err. Control thread.
 */
int leap_daemon_listener_add(struct leap_daemon *d, const json_t *params, bool saved, uint32_t *id,
			     char *err, size_t errlen);
/* Stop every listener (each detaches and drains its connections). */
void leap_daemon_listeners_stop(struct leap_daemon *d);

/* Append the calls that recreate the current objects to `calls` (config_save). */
int leap_rpc_bdev_save(struct leap_daemon *d, json_t *calls);
int leap_rpc_ctrl_save(struct leap_daemon *d, json_t *calls);
int leap_rpc_policy_save(struct leap_daemon *d, json_t *calls);
int leap_rpc_listener_save(struct leap_daemon *d, json_t *calls);
/* Host allow-lists (rpc_subsys.c): after the controllers, before the listeners. */
int leap_rpc_subsys_save(struct leap_daemon *d, json_t *calls);

/* Drop every object the RPCs created (shutdown), controllers before bdevs. */
void leap_rpc_ctrl_cleanup(struct leap_daemon *d);
void leap_rpc_bdev_cleanup(struct leap_daemon *d);

/* ---- config.c --------------------------------------------------------------- */

/*
 * Run the calls in config file `path` (a JSON array of {"method", "params"})
 * in order through the RPC dispatcher. Stops at the first failure and
 * returns -EINVAL (malformed file) or the failing call's error, after
 * logging "config PATH: call #N (METHOD): message".
 */
int leap_config_apply(struct leap_daemon *d, const char *path);

/* The calls that recreate the running state, in dependency order. NULL on ENOMEM. */
json_t *leap_config_build(struct leap_daemon *d);

/*
 * Write `calls` to `path` atomically: a temporary file in the same
 * directory, fsync, rename. 0 or -errno.
 */
int leap_config_write(const char *path, const json_t *calls);

/* config_save RPC method (registered by leap_rpc_misc_register()). */
void leap_rpc_config_save(struct leap_rpc_call *call, json_t *params);

/* ---- logging ------------------------------------------------------------------ */

/*
 * Route leapio's log to `path` (appended) or stderr when NULL, one line per
 * message with a UTC timestamp, level and subsystem. 0 or -errno.
 */
int leap_daemon_log_open(const char *path);
void leap_daemon_log_close(void);

/*
 * The last error message logged by the calling thread since
 * leap_daemon_error_clear() (empty if none): lets an RPC answer with the
 * reason a component logged when it failed.
 */
const char *leap_daemon_last_error(void);
void leap_daemon_error_clear(void);

#endif /* LEAPIO_RUNTIME_DAEMON_H */
