// SPDX-License-Identifier: BSD-3-Clause
/*
 * Daemon-wide RPC methods: leapd_info, reactor_list, log_set_level and
 * config_save (implemented in config.c). None of them touches the data
 * path; reactor counters are read without stopping the reactors, so they
 * are approximate by a few iterations.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "control/daemon.h"
#include "core/reactor.h"

static double uptime_s(const struct leap_daemon *d)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - d->started.tv_sec) +
	       (double)(now.tv_nsec - d->started.tv_nsec) / 1e9;
}

static void leapd_info(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);

	if (leap_rpc_params_decode(call, params, NULL, 0, NULL))
		return;
	leap_rpc_call_reply(call,
			    json_pack("{s:s, s:i, s:i, s:f, s:s, s:s?, s:s?}", "version",
				      LEAPD_VERSION, "pid", (int)getpid(), "reactors",
				      (int)d->nreactors, "uptime_s", uptime_s(d), "log_level",
				      leap_log_level_name(leap_log_get_level()), "rpc_socket",
				      d->opts.rpc_socket, "tenant_socket", d->opts.tenant_socket));
}

static void reactor_list(struct leap_rpc_call *call, json_t *params)
{
	struct leap_daemon *d = leap_rpc_call_ctx(call);
	json_t *out;

	if (leap_rpc_params_decode(call, params, NULL, 0, NULL))
		return;
	out = json_array();
	for (uint32_t i = 0; out && i < d->nreactors; i++) {
		struct leap_reactor_stats st = { 0 };

		leap_reactor_get_stats(d->reactors[i], &st);
		json_array_append_new(
		    out, json_pack("{s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I}", "id",
				   (int)leap_reactor_id(d->reactors[i]), "cpu", d->reactor_cpu[i],
				   "settled_cpu", st.settled_cpu, "iterations",
				   (json_int_t)st.iterations, "busy", (json_int_t)st.busy, "sleeps",
				   (json_int_t)st.sleeps, "wakeups", (json_int_t)st.wakeups,
				   "preempted", (json_int_t)st.preempted));
	}
	if (!out) {
		leap_rpc_call_error(call, -ENOMEM, "out of memory");
		return;
	}
	leap_rpc_call_reply(call, out);
}

struct level_params {
	const char *level;
};

static const struct leap_rpc_param level_spec[] = {
	LEAP_RPC_PARAM("level", LEAP_RPC_STR, true, struct level_params, level),
};

static void log_set_level(struct leap_rpc_call *call, json_t *params)
{
	struct level_params p = { 0 };
	int level;

	if (leap_rpc_params_decode(call, params, level_spec, 1, &p))
		return;
	level = leap_log_level_parse(p.level);
	if (level < 0) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: 'level' must be error, warn, info or debug, "
				    "got '%s'",
				    p.level);
		return;
	}
	leap_log_set_level((enum leap_log_level)level);
	LEAP_INFO("rpc", "log level set to %s", p.level);
	leap_rpc_call_reply(call, NULL);
}

static const struct leap_rpc_method misc_methods[] = {
	{ "leapd_info", leapd_info },
	{ "reactor_list", reactor_list },
	{ "log_set_level", log_set_level },
	{ "config_save", leap_rpc_config_save },
};

int leap_rpc_misc_register(struct leap_rpc_server *srv)
{
	return leap_rpc_server_register(srv, misc_methods, LEAP_ARRAY_SIZE(misc_methods));
}
