// SPDX-License-Identifier: BSD-3-Clause
/*
 * libFuzzer harness: leapd's JSON-RPC parsing and dispatch, through the
 * real daemon (reactors, every registered method, parameter decoding) with
 * the input as the text of one request or batch, as if read from the
 * control socket (leap_rpc_server_submit()).
 *
 * Methods that would reach outside the process — write files (config_save),
 * create file or huge memory backends (bdev_create), listen on sockets or
 * ports (listener_*), load objects from paths (policy_load/replace) — are
 * left out: inputs naming them are skipped before the server sees them. The
 * harness's own parse for that check uses the server's library (jansson),
 * so a value it cannot parse is still handed over (the parse-error path).
 * Controllers an input created are removed after it, so every input starts
 * from one mem backend and no controller.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "leapio/log.h"
#include "backend/bdev.h"
#include "control/daemon.h"
#include "control/rpc.h"
#include "control/rpc_internal.h"

LEAP_BDEV_MODULE_USE(leap_bdev_mem_ops);

static const char *const denied[] = {
	"config_save",	   "bdev_create", "bdev_delete",    "listener_add",
	"listener_remove", "policy_load", "policy_replace", "log_set_level",
};

static bool names_denied(json_t *req)
{
	const char *m = json_string_value(json_object_get(req, "method"));

	if (!m)
		return false;
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++)
		if (strcmp(m, denied[i]) == 0)
			return true;
	return false;
}

static bool skip_input(const uint8_t *data, size_t size)
{
	json_t *v = json_loadb((const char *)data, size, JSON_DISABLE_EOF_CHECK, NULL);
	bool skip = false;
	size_t i;
	json_t *e;

	if (!v)
		return false;
	if (json_is_array(v)) {
		json_array_foreach (v, i, e)
			skip |= names_denied(e);
	} else {
		skip = names_denied(v);
	}
	json_decref(v);
	return skip;
}

static void on_reply(void *arg, const char *text, size_t len)
{
	(void)text;
	(void)len;
	*(int *)arg = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct leap_daemon d;
	static int ready;
	int got = 0;

	if (!ready) {
		struct leap_daemon_opts o = { 0 };
		json_t *bp = json_pack("{s:s, s:s, s:I}", "name", "m0", "type", "mem", "size",
				       (json_int_t)(64 << 20));

		char *msg = NULL;
		int rc;

		leap_log_set_level(LEAP_LOG_ERROR);
		rc = leap_daemon_start(&d, &o);
		if (!rc)
			rc = leap_rpc_server_call(d.rpc, "bdev_create", bp, NULL, &msg);
		if (rc) {
			fprintf(stderr, "fuzz_rpc: setup: %d %s\n", rc, msg ? msg : "");
			abort();
		}
		json_decref(bp);
		ready = 1;
	}
	if (skip_input(data, size))
		return 0;
	if (leap_rpc_server_submit(d.rpc, (const char *)data, size, on_reply, &got))
		return 0;
	/* Until every call of the input has finished (notifications are never answered). */
	for (int i = 0; i < 5000 && d.rpc->live_msgs; i++)
		leap_rpc_server_poll(d.rpc, i < 100 ? 0 : 1);
	if (d.rpc->live_msgs)
		abort(); /* a call that never finishes: a finding */
	leap_rpc_ctrl_cleanup(&d);
	return 0;
}
