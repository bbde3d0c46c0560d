// SPDX-License-Identifier: BSD-3-Clause
/*
 * Asynchronous bdev creation, with a test-only module ("later") whose
 * creation finishes when the test says so, from another thread: the name is
 * reserved meanwhile (a duplicate is refused, lookups do not see it), the
 * callback runs exactly once with the bdev or with the module's reason, a
 * failed creation frees the name, and bdev_create over JSON-RPC is answered
 * only when the module is done. Also the registry lock is not held while a
 * module works: "later" looks a child up in the registry from create().
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "backend/bdev_internal.h"
#include "control/daemon.h"
#include "test_bdev_helpers.h"

LEAP_BDEV_MODULE_USE(leap_bdev_mem_ops);

/* ---- the "later" module -------------------------------------------------- */

struct later_params {
	bool fail;
	const char *peek; /* a bdev to look up from create(): the registry must not be locked */
};

static const struct bdev_param later_spec[] = {
	BDEV_PARAM("fail", BDEV_PARAM_BOOL, false, struct later_params, fail),
	BDEV_PARAM("peek", BDEV_PARAM_STR, false, struct later_params, peek),
};

static struct {
	const struct leap_bdev_common_params *common;
	struct leap_bdev_err *err;
	leap_bdev_create_cb cb;
	void *cb_arg;
	bool fail;
	bool peeked;
} pending;

extern const struct leap_bdev_ops later_ops;

static int later_create(const struct leap_bdev_common_params *common, const json_t *params,
			struct leap_bdev_err *err, leap_bdev_create_cb cb, void *cb_arg)
{
	struct later_params p = { 0 };
	int rc = bdev_params_decode(params, later_spec, LEAP_ARRAY_SIZE(later_spec), &p, err);

	if (rc)
		return rc;
	if (p.peek) {
		struct leap_bdev *b = leap_bdev_get(p.peek); /* would deadlock under the lock */

		pending.peeked = b != NULL;
		leap_bdev_put(b);
	}
	pending.common = common;
	pending.err = err;
	pending.cb = cb;
	pending.cb_arg = cb_arg;
	pending.fail = p.fail;
	return 0;
}

static void later_destroy(struct leap_bdev *bdev)
{
	free(bdev);
}

/* What the module's connection thread would do when the target answers. */
static void *later_finish(void *arg)
{
	struct leap_bdev *b;

	(void)arg;
	if (pending.fail) {
		pending.cb(pending.cb_arg,
			   bdev_err(pending.err, -ECONNREFUSED, "connect: Connection refused"),
			   NULL);
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	bdev_init_common(b, &later_ops, pending.common);
	pending.cb(pending.cb_arg, 0, b);
	return NULL;
}

static void later_finish_elsewhere(void)
{
	pthread_t t;

	T_ASSERT_EQ(pthread_create(&t, NULL, later_finish, NULL), 0);
	pthread_join(t, NULL);
}

const struct leap_bdev_ops later_ops = {
	.type = "later",
	.create = later_create,
	.destroy = later_destroy,
};

LEAP_BDEV_MODULE_REGISTER(later_ops)

/* ---- the registry --------------------------------------------------------- */

struct done {
	int calls, rc;
	struct leap_bdev *bdev;
};

static void done_cb(void *arg, int rc, struct leap_bdev *bdev)
{
	struct done *d = arg;

	d->calls++;
	d->rc = rc;
	d->bdev = bdev;
}

static json_t *later(const char *name, bool fail)
{
	return json_pack("{s:s, s:s, s:i, s:b}", "type", "later", "name", name, "size", 1 << 20,
			 "fail", fail);
}

static void test_async_create(void)
{
	struct leap_bdev_err err = { { 0 } }, err2;
	struct done d = { 0 }, d2 = { 0 };
	json_t *p = later("a0", false), *p2 = later("a0", false);

	T_ASSERT_EQ(leap_bdev_create(p, &err, done_cb, &d), 0);
	T_ASSERT_EQ(d.calls, 0);
	/* Reserved, not visible. */
	T_ASSERT(leap_bdev_find("a0") == NULL);
	T_ASSERT(leap_bdev_get("a0") == NULL);
	T_ASSERT_EQ(leap_bdev_create(p2, &err2, done_cb, &d2), -EEXIST);
	T_ASSERT_STR_EQ(err2.msg, "bdev 'a0' already exists");
	T_ASSERT_EQ(d2.calls, 0);
	/* Other names go on meanwhile. */
	T_ASSERT_EQ(
	    t_create(json_pack("{s:s, s:s, s:i}", "type", "mem", "name", "a1", "size", 4096), NULL),
	    0);
	later_finish_elsewhere();
	T_ASSERT_EQ(d.calls, 1);
	T_ASSERT_EQ(d.rc, 0);
	T_ASSERT(d.bdev && leap_bdev_find("a0") == d.bdev);
	T_ASSERT_STR_EQ(d.bdev->type, "later");
	T_ASSERT_U64_EQ(d.bdev->size, 1 << 20);
	T_ASSERT(d.bdev->id > 0 && leap_bdev_id_live(d.bdev->id));
	/* Modules without write_config/dump_info/io_type_supported: the defaults. */
	{
		json_t *cfg = leap_bdev_config(d.bdev);

		T_ASSERT_EQ(json_object_size(cfg), 4);
		json_decref(cfg);
		T_ASSERT(leap_bdev_io_type_supported(d.bdev, LEAP_BDEV_OP_FLUSH));
		T_ASSERT(!leap_bdev_io_type_supported(d.bdev, LEAP_BDEV_OP_WRITE_ZEROES));
	}
	T_ASSERT_EQ(leap_bdev_destroy(d.bdev), 0);
	T_ASSERT_EQ(leap_bdev_destroy(leap_bdev_find("a1")), 0);
	json_decref(p);
	json_decref(p2);
}

static void test_async_create_failure_frees_the_name(void)
{
	struct leap_bdev_err err = { { 0 } };
	struct done d = { 0 };
	json_t *p = later("f0", true);

	T_ASSERT_EQ(leap_bdev_create(p, &err, done_cb, &d), 0);
	later_finish_elsewhere();
	T_ASSERT_EQ(d.calls, 1);
	T_ASSERT_EQ(d.rc, -ECONNREFUSED);
	T_ASSERT(d.bdev == NULL);
	T_ASSERT_STR_EQ(err.msg, "connect: Connection refused");
	T_ASSERT(leap_bdev_find("f0") == NULL);
	json_decref(p);
	/* Free again. */
	T_ASSERT_EQ(
	    t_create(json_pack("{s:s, s:s, s:i}", "type", "mem", "name", "f0", "size", 4096), NULL),
	    0);
	T_ASSERT_EQ(leap_bdev_destroy(leap_bdev_find("f0")), 0);
}

static void test_module_uses_registry_unlocked(void)
{
	struct leap_bdev_err err = { { 0 } };
	struct done d = { 0 };
	json_t *p = json_pack("{s:s, s:s, s:i, s:s}", "type", "later", "name", "pk", "size", 4096,
			      "peek", "child");

	T_ASSERT_EQ(
	    t_create(json_pack("{s:s, s:s, s:i}", "type", "mem", "name", "child", "size", 4096),
		     NULL),
	    0);
	pending.peeked = false;
	T_ASSERT_EQ(leap_bdev_create(p, &err, done_cb, &d), 0);
	T_ASSERT(pending.peeked);
	later_finish(NULL); /* synchronously, on this thread */
	T_ASSERT_EQ(d.calls, 1);
	T_ASSERT_EQ(d.rc, 0);
	T_ASSERT_EQ(leap_bdev_destroy(d.bdev), 0);
	T_ASSERT_EQ(leap_bdev_destroy(leap_bdev_find("child")), 0);
	json_decref(p);
}

/* ---- bdev_create over JSON-RPC ------------------------------------------------ */

static char *reply_text;
static int replies;

static void on_reply(void *arg, const char *text, size_t len)
{
	(void)arg;
	free(reply_text);
	reply_text = strndup(text, len);
	replies++;
}

static void test_rpc_answers_when_created(void)
{
	static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"bdev_create\","
				  "\"params\":{\"name\":\"r0\",\"type\":\"later\",\"size\":8192}}";
	static const char bad[] = "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"bdev_create\","
				  "\"params\":{\"name\":\"r1\",\"type\":\"later\",\"fast\":true}}";
	struct leap_daemon d;
	json_t *res, *calls;

	memset(&d, 0, sizeof(d));
	d.bdevs = json_array();
	T_ASSERT_EQ(leap_rpc_server_create(&d, &d.rpc), 0);
	T_ASSERT_EQ(leap_rpc_bdev_register(d.rpc), 0);
	/* Refused now, with the module's own message and the JSON-RPC code for params. */
	replies = 0;
	T_ASSERT_EQ(leap_rpc_server_submit(d.rpc, bad, sizeof(bad) - 1, on_reply, NULL), 0);
	for (int i = 0; i < 10 && !replies; i++)
		leap_rpc_server_poll(d.rpc, 10);
	T_ASSERT_EQ(replies, 1);
	res = json_loads(reply_text, 0, NULL);
	T_ASSERT_EQ(json_integer_value(json_object_get(json_object_get(res, "error"), "code")),
		    -32602);
	T_ASSERT_STR_EQ(
	    json_string_value(json_object_get(json_object_get(res, "error"), "message")),
	    "invalid params: unknown field 'fast'");
	json_decref(res);

	replies = 0;
	T_ASSERT_EQ(leap_rpc_server_submit(d.rpc, req, sizeof(req) - 1, on_reply, NULL), 0);
	for (int i = 0; i < 5; i++)
		leap_rpc_server_poll(d.rpc, 10);
	T_ASSERT_EQ(replies, 0); /* the module is still working */
	later_finish_elsewhere();
	for (int i = 0; i < 100 && !replies; i++)
		leap_rpc_server_poll(d.rpc, 10);
	T_ASSERT_EQ(replies, 1);
	res = json_loads(reply_text, 0, NULL);
	T_ASSERT_EQ(json_integer_value(json_object_get(res, "id")), 7);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(res, "result"), "name")),
			"r0");
	T_ASSERT_EQ(json_integer_value(json_object_get(json_object_get(res, "result"), "blocks")),
		    16);
	json_decref(res);
	/* config_save has it, as the registry describes it. */
	calls = json_array();
	T_ASSERT_EQ(leap_rpc_bdev_save(&d, calls), 0);
	T_ASSERT_EQ(json_array_size(calls), 1);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(
			    json_object_get(json_array_get(calls, 0), "params"), "type")),
			"later");
	json_decref(calls);
	leap_rpc_bdev_cleanup(&d);
	T_ASSERT(leap_bdev_find("r0") == NULL);
	leap_rpc_server_destroy(d.rpc);
	json_decref(d.bdevs);
	free(reply_text);
	reply_text = NULL;
}

static void quiet(enum leap_log_level l, const char *s, const char *f, va_list ap, void *c)
{
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_async_create),
		TAP_CASE(test_async_create_failure_frees_the_name),
		TAP_CASE(test_module_uses_registry_unlocked),
		TAP_CASE(test_rpc_answers_when_created),
	};

	leap_log_set_callback(quiet, NULL);
	return tap_run(cases, TAP_N(cases));
}
