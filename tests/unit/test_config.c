// SPDX-License-Identifier: BSD-3-Clause
/*
 * leapd's startup config and config_save (runtime/config.c) in-process:
 * calls run in order and stop at the first failure, malformed files are
 * refused, the saved list rebuilds the same state (round trip through a
 * file), and the file is replaced atomically. Uses real mem/null bdevs; no
 * reactors, no sockets.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/bdev.h"
#include "control/daemon.h"
#include "leapio/log.h"
#include "tap.h"

LEAP_BDEV_MODULE_USE(leap_bdev_mem_ops);
LEAP_BDEV_MODULE_USE(leap_bdev_null_ops);

static char dir[64];

static int daemon_up(struct leap_daemon *d)
{
	memset(d, 0, sizeof(*d));
	d->bdevs = json_array();
	if (leap_rpc_server_create(d, &d->rpc))
		return -1;
	if (leap_rpc_bdev_register(d->rpc) || leap_rpc_ctrl_register(d->rpc) ||
	    leap_rpc_misc_register(d->rpc))
		return -1;
	return 0;
}

static void daemon_down(struct leap_daemon *d)
{
	leap_rpc_ctrl_cleanup(d);
	leap_rpc_bdev_cleanup(d);
	leap_rpc_server_destroy(d->rpc);
	json_decref(d->bdevs);
}

static const char *file_with(const char *name, const char *text)
{
	static char p[128];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	if (!f)
		return NULL;
	fputs(text, f);
	fclose(f);
	return p;
}

static void test_calls_run_in_order(void)
{
	struct leap_daemon d;
	const char *p;

	T_ASSERT_EQ(daemon_up(&d), 0);
	p = file_with("ok.json",
		      "[{\"method\":\"bdev_create\",\"params\":{\"name\":\"a\",\"type\":\"mem\","
		      "\"size\":65536}},\n"
		      " {\"method\":\"bdev_create\",\"params\":{\"name\":\"b\",\"type\":\"null\","
		      "\"size\":1048576,\"block_size\":4096}},\n"
		      " {\"method\":\"log_set_level\",\"params\":{\"level\":\"warn\"}}]");
	T_ASSERT_EQ(leap_config_apply(&d, p), 0);
	T_ASSERT(leap_bdev_find("a") != NULL);
	T_ASSERT_EQ(leap_bdev_find("b")->block_size, 4096);
	T_ASSERT_EQ(leap_log_get_level(), LEAP_LOG_WARN);
	/* Creation order is kept: "a" comes first. */
	T_ASSERT_STR_EQ(leap_bdev_next(NULL)->name, "a");
	daemon_down(&d);
	T_ASSERT(leap_bdev_find("a") == NULL);
}

static void test_failure_stops_at_the_failing_call(void)
{
	struct leap_daemon d;
	const char *p;

	T_ASSERT_EQ(daemon_up(&d), 0);
	p = file_with("fail.json",
		      "[{\"method\":\"bdev_create\",\"params\":{\"name\":\"a\",\"type\":\"mem\","
		      "\"size\":4096}},\n"
		      " {\"method\":\"bdev_create\",\"params\":{\"name\":\"a\",\"type\":\"mem\","
		      "\"size\":4096}},\n"
		      " {\"method\":\"bdev_create\",\"params\":{\"name\":\"c\",\"type\":\"mem\","
		      "\"size\":4096}}]");
	T_ASSERT_EQ(leap_config_apply(&d, p), -EEXIST);
	T_ASSERT(leap_bdev_find("a") != NULL);
	T_ASSERT(leap_bdev_find("c") == NULL);
	daemon_down(&d);
}

static void test_malformed_files_are_refused(void)
{
	static const char *const bad[] = {
		"{\"method\":\"bdev_list\"}",		     /* not an array */
		"[\"bdev_list\"]",			     /* entry not an object */
		"[{\"params\":{}}]",			     /* no method */
		"[{\"method\":\"bdev_list\",\"params\":7}]", /* params not an object */
		"[{\"method\":\"bdev_list\",\"id\":1}]",     /* unknown key */
		"[{\"method\":\"bdev_list\"",		     /* broken JSON */
		"[{\"method\":\"no_such_method\"}]",	     /* method not found */
	};
	struct leap_daemon d;

	T_ASSERT_EQ(daemon_up(&d), 0);
	for (size_t i = 0; i < TAP_N(bad); i++) {
		const char *p = file_with("bad.json", bad[i]);
		int rc = leap_config_apply(&d, p);

		if (rc >= 0)
			T_FAIL("case %zu (%s) accepted", i, bad[i]);
	}
	T_ASSERT_EQ(leap_config_apply(&d, "/nonexistent/leapd.json"), -EINVAL);
	/* An empty list is a valid (empty) configuration. */
	T_ASSERT_EQ(leap_config_apply(&d, file_with("empty.json", "[]")), 0);
	daemon_down(&d);
}

static void test_save_round_trip(void)
{
	struct leap_daemon d;
	json_t *first, *second;
	char saved[128];
	const char *p;

	T_ASSERT_EQ(daemon_up(&d), 0);
	p = file_with("rt.json",
		      "[{\"method\":\"bdev_create\",\"params\":{\"name\":\"m\",\"type\":\"mem\","
		      "\"size\":1048576,\"block_size\":4096}},\n"
		      " {\"method\":\"bdev_create\",\"params\":{\"name\":\"n\",\"type\":\"null\","
		      "\"size\":8192}},\n"
		      " {\"method\":\"ctrl_create\",\"params\":{\"name\":\"c\"}},\n"
		      " {\"method\":\"ns_add\",\"params\":{\"ctrl\":\"c\",\"bdev\":\"m\"}}]");
	T_ASSERT_EQ(leap_config_apply(&d, p), 0);
	first = leap_config_build(&d);
	T_ASSERT(first);
	/*
	 * Log level first, then bdevs, controllers and namespaces in creation
	 * order, with resolved values (block size, NQN, nsid, size).
	 */
	T_ASSERT_EQ(json_array_size(first), 5);
	{
		json_t *ctrl = json_object_get(json_array_get(first, 3), "params");
		json_t *ns = json_object_get(json_array_get(first, 4), "params");

		T_ASSERT_STR_EQ(json_string_value(json_object_get(ctrl, "nqn")),
				"nqn.2024-01.io.leapio:c");
		T_ASSERT(json_string_length(json_object_get(ctrl, "serial")) > 0);
		T_ASSERT_EQ(json_integer_value(json_object_get(ns, "nsid")), 1);
		T_ASSERT_EQ(json_integer_value(json_object_get(ns, "size")), 1048576);
		T_ASSERT_EQ(json_integer_value(json_object_get(ns, "lba_size")), 4096);
	}
	T_ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(first, 0), "method")),
			"log_set_level");
	T_ASSERT_EQ(json_integer_value(json_object_get(
			json_object_get(json_array_get(first, 2), "params"), "block_size")),
		    512);
	snprintf(saved, sizeof(saved), "%s/saved.json", dir);
	T_ASSERT_EQ(leap_config_write(saved, first), 0);
	daemon_down(&d);

	T_ASSERT_EQ(daemon_up(&d), 0);
	T_ASSERT_EQ(leap_config_apply(&d, saved), 0);
	second = leap_config_build(&d);
	T_ASSERT(json_equal(first, second));
	json_decref(first);
	json_decref(second);
	daemon_down(&d);
}

static void test_write_is_atomic_and_reports_errors(void)
{
	json_t *calls = json_pack("[{s:s}]", "method", "bdev_list"), *back;
	char p[128], tmp[160];
	json_error_t e;
	struct stat st;

	snprintf(p, sizeof(p), "%s/atomic.json", dir);
	T_ASSERT(file_with("atomic.json", "old contents") != NULL);
	T_ASSERT_EQ(leap_config_write(p, calls), 0);
	back = json_load_file(p, 0, &e);
	T_ASSERT(json_equal(back, calls));
	json_decref(back);
	T_ASSERT_EQ(stat(p, &st), 0);
	T_ASSERT_EQ(st.st_mode & 0777, 0600);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", p, (int)getpid());
	T_ASSERT(stat(tmp, &st) < 0);
	T_ASSERT_EQ(leap_config_write("/nonexistent-dir/x.json", calls), -ENOENT);
	json_decref(calls);
	unlink(p);
}

static void test_config_save_rpc_wants_absolute_path(void)
{
	struct leap_daemon d;
	json_t *params, *res = NULL;
	char *msg = NULL;
	int rc;

	T_ASSERT_EQ(daemon_up(&d), 0);
	params = json_pack("{s:s}", "path", "relative.json");
	rc = leap_rpc_server_call(d.rpc, "config_save", params, &res, &msg);
	json_decref(params);
	T_ASSERT_EQ(rc, LEAP_RPC_INVALID_PARAMS);
	T_ASSERT(strstr(msg, "'path' must be absolute") != NULL);
	free(msg);
	/* Without a path the list itself is the answer. */
	rc = leap_rpc_server_call(d.rpc, "config_save", NULL, &res, NULL);
	T_ASSERT_EQ(rc, 0);
	T_ASSERT(json_is_array(res));
	json_decref(res);
	daemon_down(&d);
}

int main(void)
{
	static const char *const files[] = { "ok.json", "fail.json",  "bad.json",   "empty.json",
					     "rt.json", "saved.json", "atomic.json" };
	static const struct tap_case cases[] = {
		TAP_CASE(test_calls_run_in_order),
		TAP_CASE(test_failure_stops_at_the_failing_call),
		TAP_CASE(test_malformed_files_are_refused),
		TAP_CASE(test_save_round_trip),
		TAP_CASE(test_write_is_atomic_and_reports_errors),
		TAP_CASE(test_config_save_rpc_wants_absolute_path),
	};
	int rc;

	snprintf(dir, sizeof(dir), "/tmp/leap-config-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	leap_log_set_level(LEAP_LOG_ERROR);
	rc = tap_run(cases, TAP_N(cases));
	for (size_t i = 0; i < TAP_N(files); i++) {
		char p[128];

		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
	return rc;
}
