// SPDX-License-Identifier: BSD-3-Clause
/*
 * JSON-RPC 2.0 layer of leapd (runtime/rpc.c): the error classes of the
 * spec (parse error, invalid request, method not found, invalid params),
 * batches, notifications, answers from other threads, in-order execution,
 * and parameter decoding. Driven in-process through
 * leap_rpc_server_submit(); no socket is involved (test_rpc_socket covers
 * the stream framing).
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <unistd.h>

#include "control/rpc.h"
#include "leapio/log.h"
#include "tap.h"

static int side_effects;
static char last_order[64];

static void m_echo(struct leap_rpc_call *call, json_t *params)
{
	leap_rpc_call_reply(call, params ? json_incref(params) : json_null());
}

struct add_params {
	uint64_t a;
	uint32_t b;
	const char *tag;
	bool neg;
};

static const struct leap_rpc_param add_spec[] = {
	LEAP_RPC_PARAM("a", LEAP_RPC_U64, true, struct add_params, a),
	LEAP_RPC_PARAM_RANGE("b", LEAP_RPC_U32, false, struct add_params, b, 1, 100),
	LEAP_RPC_PARAM("tag", LEAP_RPC_STR, false, struct add_params, tag),
	LEAP_RPC_PARAM("neg", LEAP_RPC_BOOL, false, struct add_params, neg),
};

static void m_add(struct leap_rpc_call *call, json_t *params)
{
	struct add_params p = { .b = 1, .tag = "none" };

	if (leap_rpc_params_decode(call, params, add_spec, TAP_N(add_spec), &p))
		return;
	leap_rpc_call_reply(call, json_pack("{s:I, s:s, s:b}", "sum", (json_int_t)(p.a + p.b),
					    "tag", p.tag, "neg", p.neg));
}

static void m_fail(struct leap_rpc_call *call, json_t *params)
{
	leap_rpc_call_error(call, -ENOENT, "bdev '%s' not found", "x");
}

static void m_touch(struct leap_rpc_call *call, json_t *params)
{
	side_effects++;
	leap_rpc_call_reply(call, json_integer(side_effects));
}

static void append_order(char c)
{
	size_t n = strlen(last_order);

	if (n + 1 < sizeof(last_order)) {
		last_order[n] = c;
		last_order[n + 1] = '\0';
	}
}

static void *answer_later(void *arg)
{
	struct leap_rpc_call *call = arg;

	usleep(20000);
	append_order('A');
	leap_rpc_call_reply(call, json_string("late"));
	return NULL;
}

/* Answers from another thread, as a reactor would. */
static void m_async(struct leap_rpc_call *call, json_t *params)
{
	pthread_t t;

	append_order('a');
	if (pthread_create(&t, NULL, answer_later, call) != 0) {
		leap_rpc_call_error(call, -EAGAIN, "no thread");
		return;
	}
	pthread_detach(t);
}

static void m_mark(struct leap_rpc_call *call, json_t *params)
{
	append_order('m');
	leap_rpc_call_reply(call, NULL);
}

static struct leap_rpc_server *timer_srv;

static void timer_answer(void *arg)
{
	append_order('T');
	leap_rpc_call_reply(arg, json_string("timed"));
}

/* Answers later from a timer on the control thread, without blocking it meanwhile. */
static void m_wait(struct leap_rpc_call *call, json_t *params)
{
	int err = leap_rpc_server_timer(timer_srv, 30, timer_answer, call);

	if (err)
		leap_rpc_call_error(call, err, "timer: %s", strerror(-err));
}

static pthread_t main_thread;
static bool posted_on_main;

static void posted_fn(void *arg)
{
	posted_on_main = pthread_equal(pthread_self(), main_thread);
	leap_rpc_call_reply(arg, json_string("posted"));
}

static void *post_later(void *arg)
{
	usleep(10000);
	if (leap_rpc_server_post(timer_srv, posted_fn, arg) != 0)
		leap_rpc_call_error(arg, -ENOMEM, "post failed");
	return NULL;
}

/* A worker thread hands its result back to the control thread, as a reactor does. */
static void m_posted(struct leap_rpc_call *call, json_t *params)
{
	pthread_t t;

	if (pthread_create(&t, NULL, post_later, call) != 0) {
		leap_rpc_call_error(call, -EAGAIN, "no thread");
		return;
	}
	pthread_detach(t);
}

static const struct leap_rpc_method methods[] = {
	{ "posted", m_posted }, { "wait", m_wait },   { "echo", m_echo },   { "add", m_add },
	{ "fail", m_fail },	{ "touch", m_touch }, { "async", m_async }, { "mark", m_mark },
};

struct capture {
	int calls;
	json_t *resp;
};

static void capture_fn(void *arg, const char *text, size_t len)
{
	struct capture *c = arg;
	json_error_t jerr;

	c->calls++;
	json_decref(c->resp);
	c->resp = json_loadb(text, len, 0, &jerr);
}

static struct leap_rpc_server *new_server(void)
{
	struct leap_rpc_server *srv = NULL;

	if (leap_rpc_server_create(NULL, &srv) != 0)
		return NULL;
	if (leap_rpc_server_register(srv, methods, TAP_N(methods)) != 0) {
		leap_rpc_server_destroy(srv);
		return NULL;
	}
	return srv;
}

/* Submit `text`, poll until answered (or 2 s), return the parsed response (owned) or NULL. */
static json_t *roundtrip(struct leap_rpc_server *srv, const char *text, int *calls)
{
	struct capture c = { 0 };
	json_t *resp;

	if (leap_rpc_server_submit(srv, text, strlen(text), capture_fn, &c) != 0)
		return NULL;
	for (int i = 0; i < 40 && c.calls == 0; i++)
		leap_rpc_server_poll(srv, 50);
	/* One more pass proves nothing else is answered afterwards. */
	leap_rpc_server_poll(srv, 0);
	if (calls)
		*calls = c.calls;
	resp = c.resp;
	return resp;
}

static long long err_code(const json_t *resp)
{
	return json_integer_value(json_object_get(json_object_get(resp, "error"), "code"));
}

static const char *err_msg(const json_t *resp)
{
	return json_string_value(json_object_get(json_object_get(resp, "error"), "message"));
}

static void test_success_echoes_id_and_result(void)
{
	struct leap_rpc_server *srv = new_server();
	json_t *r;
	int calls;

	T_ASSERT(srv);
	r = roundtrip(srv,
		      "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"add\",\"params\":{\"a\":40,"
		      "\"b\":2,\"tag\":\"t\",\"neg\":true}}",
		      &calls);
	T_ASSERT_EQ(calls, 1);
	T_ASSERT(r);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(r, "jsonrpc")), "2.0");
	T_ASSERT_STR_EQ(json_string_value(json_object_get(r, "id")), "abc");
	T_ASSERT_EQ(json_integer_value(json_object_get(json_object_get(r, "result"), "sum")), 42);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(r, "result"), "tag")),
			"t");
	T_ASSERT(json_is_true(json_object_get(json_object_get(r, "result"), "neg")));
	T_ASSERT(!json_object_get(r, "error"));
	json_decref(r);
	/* Defaults hold for absent optional fields; a numeric id comes back as a number. */
	r = roundtrip(srv, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"add\",\"params\":{\"a\":1}}",
		      NULL);
	T_ASSERT_EQ(json_integer_value(json_object_get(r, "id")), 7);
	T_ASSERT_EQ(json_integer_value(json_object_get(json_object_get(r, "result"), "sum")), 2);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(r, "result"), "tag")),
			"none");
	json_decref(r);
	leap_rpc_server_destroy(srv);
}

static void test_parse_error(void)
{
	struct leap_rpc_server *srv = new_server();
	json_t *r;

	T_ASSERT(srv);
	/* The spec's own example of invalid JSON. */
	r = roundtrip(
	    srv, "{\"jsonrpc\": \"2.0\", \"method\": \"foobar, \"params\": \"bar\", \"baz]", NULL);
	T_ASSERT(r);
	T_ASSERT_EQ(err_code(r), -32700);
	T_ASSERT(json_is_null(json_object_get(r, "id")));
	T_ASSERT(strstr(err_msg(r), "parse error") != NULL);
	json_decref(r);
	leap_rpc_server_destroy(srv);
}

static void test_invalid_request(void)
{
	static const char *const bad[] = {
		"{\"jsonrpc\":\"2.0\",\"method\":1,\"params\":\"bar\",\"id\":1}",
		"{\"method\":\"echo\",\"id\":1}",
		"{\"jsonrpc\":\"1.0\",\"method\":\"echo\",\"id\":1}",
		"{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":5,\"id\":1}",
		"{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":{\"x\":1}}",
		"\"just a string\"",
		"[]",
	};
	struct leap_rpc_server *srv = new_server();

	T_ASSERT(srv);
	for (size_t i = 0; i < TAP_N(bad); i++) {
		json_t *r = roundtrip(srv, bad[i], NULL);

		if (!r || !json_is_object(r) || err_code(r) != -32600) {
			json_decref(r);
			T_FAIL("case %zu (%s): want one -32600 object", i, bad[i]);
		}
		/* An object id is not an id: the answer carries null. */
		if (i == 4)
			T_ASSERT(json_is_null(json_object_get(r, "id")));
		json_decref(r);
	}
	leap_rpc_server_destroy(srv);
}

static void test_method_not_found(void)
{
	struct leap_rpc_server *srv = new_server();
	json_t *r;

	T_ASSERT(srv);
	r = roundtrip(srv, "{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":3}", NULL);
	T_ASSERT_EQ(err_code(r), -32601);
	T_ASSERT_EQ(json_integer_value(json_object_get(r, "id")), 3);
	T_ASSERT(strstr(err_msg(r), "'nope'") != NULL);
	json_decref(r);
	leap_rpc_server_destroy(srv);
}

static void test_invalid_params_name_the_field(void)
{
	static const struct {
		const char *params;
		const char *needle;
	} cases[] = {
		{ "{}", "missing required field 'a'" },
		{ "{\"a\":\"1\"}", "'a' must be a non-negative integer" },
		{ "{\"a\":-1}", "'a' must be a non-negative integer" },
		{ "{\"a\":1,\"b\":101}", "'b' must be in [1, 100]" },
		{ "{\"a\":1,\"b\":0}", "'b' must be in [1, 100]" },
		{ "{\"a\":1,\"tag\":3}", "'tag' must be a string" },
		{ "{\"a\":1,\"neg\":1}", "'neg' must be a boolean" },
		{ "{\"a\":1,\"colour\":\"red\"}", "unknown field 'colour'" },
		{ "[1,2]", "expected an object" },
	};
	struct leap_rpc_server *srv = new_server();

	T_ASSERT(srv);
	for (size_t i = 0; i < TAP_N(cases); i++) {
		char req[256];
		json_t *r;

		snprintf(req, sizeof(req),
			 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"add\","
			 "\"params\":%s}",
			 cases[i].params);
		r = roundtrip(srv, req, NULL);
		if (err_code(r) != -32602 || !err_msg(r) || !strstr(err_msg(r), cases[i].needle)) {
			char *s = json_dumps(r, JSON_COMPACT);

			printf("# got %s\n", s ? s : "(nothing)");
			free(s);
			json_decref(r);
			T_FAIL("params %s: want -32602 mentioning \"%s\"", cases[i].params,
			       cases[i].needle);
		}
		json_decref(r);
	}
	leap_rpc_server_destroy(srv);
}

static void test_application_error_is_negative_errno(void)
{
	struct leap_rpc_server *srv = new_server();
	json_t *r;

	T_ASSERT(srv);
	r = roundtrip(srv, "{\"jsonrpc\":\"2.0\",\"method\":\"fail\",\"id\":\"q\"}", NULL);
	T_ASSERT_EQ(err_code(r), -ENOENT);
	T_ASSERT_STR_EQ(err_msg(r), "bdev 'x' not found");
	T_ASSERT_STR_EQ(json_string_value(json_object_get(r, "id")), "q");
	json_decref(r);
	leap_rpc_server_destroy(srv);
}

static void test_notification_runs_without_reply(void)
{
	struct leap_rpc_server *srv = new_server();
	int calls = -1;
	json_t *r;

	T_ASSERT(srv);
	side_effects = 0;
	r = roundtrip(srv, "{\"jsonrpc\":\"2.0\",\"method\":\"touch\"}", &calls);
	T_ASSERT(!r);
	T_ASSERT_EQ(calls, 0);
	T_ASSERT_EQ(side_effects, 1);
	/* Unknown method or failing handler: still silent. */
	r = roundtrip(srv, "{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}", &calls);
	T_ASSERT(!r);
	T_ASSERT_EQ(calls, 0);
	r = roundtrip(srv, "{\"jsonrpc\":\"2.0\",\"method\":\"fail\"}", &calls);
	T_ASSERT_EQ(calls, 0);
	/* A null id is a request, not a notification. */
	r = roundtrip(srv, "{\"jsonrpc\":\"2.0\",\"method\":\"touch\",\"id\":null}", &calls);
	T_ASSERT_EQ(calls, 1);
	T_ASSERT(json_is_null(json_object_get(r, "id")));
	T_ASSERT_EQ(json_integer_value(json_object_get(r, "result")), 2);
	json_decref(r);
	leap_rpc_server_destroy(srv);
}

static void test_batch_mixed(void)
{
	struct leap_rpc_server *srv = new_server();
	json_t *r, *e;

	T_ASSERT(srv);
	side_effects = 0;
	r = roundtrip(
	    srv,
	    "[{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":{\"a\":1,\"b\":2},\"id\":\"1\"},"
	    "{\"jsonrpc\":\"2.0\",\"method\":\"touch\"},"
	    "{\"foo\":\"boo\"},"
	    "{\"jsonrpc\":\"2.0\",\"method\":\"foo.get\",\"params\":{\"name\":\"myself\"},\"id\":"
	    "\"5\"},"
	    "{\"jsonrpc\":\"2.0\",\"method\":\"fail\",\"id\":\"9\"}]",
	    NULL);
	T_ASSERT(json_is_array(r));
	/* The notification is absent; the rest keep their order. */
	T_ASSERT_EQ(json_array_size(r), 4);
	e = json_array_get(r, 0);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(e, "id")), "1");
	T_ASSERT_EQ(json_integer_value(json_object_get(json_object_get(e, "result"), "sum")), 3);
	e = json_array_get(r, 1);
	T_ASSERT_EQ(err_code(e), -32600);
	T_ASSERT(json_is_null(json_object_get(e, "id")));
	e = json_array_get(r, 2);
	T_ASSERT_EQ(err_code(e), -32601);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(e, "id")), "5");
	e = json_array_get(r, 3);
	T_ASSERT_EQ(err_code(e), -ENOENT);
	T_ASSERT_EQ(side_effects, 1);
	json_decref(r);
	leap_rpc_server_destroy(srv);
}

static void test_batch_of_garbage_and_of_notifications(void)
{
	struct leap_rpc_server *srv = new_server();
	int calls = -1;
	json_t *r;

	T_ASSERT(srv);
	r = roundtrip(srv, "[1,2,3]", NULL);
	T_ASSERT(json_is_array(r));
	T_ASSERT_EQ(json_array_size(r), 3);
	for (size_t i = 0; i < 3; i++)
		T_ASSERT_EQ(err_code(json_array_get(r, i)), -32600);
	json_decref(r);
	side_effects = 0;
	r = roundtrip(srv,
		      "[{\"jsonrpc\":\"2.0\",\"method\":\"touch\"},{\"jsonrpc\":\"2.0\",\"method\":"
		      "\"touch\"}]",
		      &calls);
	T_ASSERT(!r);
	T_ASSERT_EQ(calls, 0);
	T_ASSERT_EQ(side_effects, 2);
	leap_rpc_server_destroy(srv);
}

static void test_async_answer_and_batch_order(void)
{
	struct leap_rpc_server *srv = new_server();
	json_t *r;

	T_ASSERT(srv);
	last_order[0] = '\0';
	/*
	 * "mark" must not start before "async" has answered: batch calls run
	 * one after the other even when an answer comes from another thread.
	 */
	r = roundtrip(srv,
		      "[{\"jsonrpc\":\"2.0\",\"method\":\"async\",\"id\":1},"
		      "{\"jsonrpc\":\"2.0\",\"method\":\"mark\",\"id\":2}]",
		      NULL);
	T_ASSERT(json_is_array(r));
	T_ASSERT_EQ(json_array_size(r), 2);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(r, 0), "result")), "late");
	T_ASSERT(json_is_true(json_object_get(json_array_get(r, 1), "result")));
	T_ASSERT_STR_EQ(last_order, "aAm");
	json_decref(r);
	leap_rpc_server_destroy(srv);
}

static void test_sync_call(void)
{
	struct leap_rpc_server *srv = new_server();
	json_t *params, *res = NULL;
	char *msg = NULL;
	int rc;

	T_ASSERT(srv);
	params = json_pack("{s:i}", "a", 5);
	rc = leap_rpc_server_call(srv, "add", params, &res, &msg);
	json_decref(params);
	T_ASSERT_EQ(rc, 0);
	T_ASSERT_EQ(json_integer_value(json_object_get(res, "sum")), 6);
	json_decref(res);
	res = NULL;
	rc = leap_rpc_server_call(srv, "async", NULL, &res, &msg);
	T_ASSERT_EQ(rc, 0);
	T_ASSERT_STR_EQ(json_string_value(res), "late");
	json_decref(res);
	rc = leap_rpc_server_call(srv, "fail", NULL, NULL, &msg);
	T_ASSERT_EQ(rc, -ENOENT);
	T_ASSERT_STR_EQ(msg, "bdev 'x' not found");
	free(msg);
	rc = leap_rpc_server_call(srv, "missing", NULL, NULL, &msg);
	T_ASSERT_EQ(rc, -32601);
	free(msg);
	leap_rpc_server_destroy(srv);
}

static void test_timer_answers_later_without_blocking(void)
{
	struct leap_rpc_server *srv = new_server();
	struct capture slow = { 0 };
	const char *req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"wait\"}";
	json_t *r;

	T_ASSERT(srv);
	timer_srv = srv;
	last_order[0] = '\0';
	T_ASSERT_EQ(leap_rpc_server_submit(srv, req, strlen(req), capture_fn, &slow), 0);
	T_ASSERT_EQ(slow.calls, 0);
	/* Another request is served while the first one waits for its timer. */
	r = roundtrip(srv, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"mark\"}", NULL);
	T_ASSERT(json_is_true(json_object_get(r, "result")));
	json_decref(r);
	for (int i = 0; i < 40 && slow.calls == 0; i++)
		leap_rpc_server_poll(srv, 50);
	T_ASSERT_EQ(slow.calls, 1);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(slow.resp, "result")), "timed");
	T_ASSERT_STR_EQ(last_order, "mT");
	json_decref(slow.resp);
	/* A timer still pending at destroy is dropped, not run. */
	T_ASSERT_EQ(leap_rpc_server_timer(srv, 60000, timer_answer, NULL), 0);
	leap_rpc_server_destroy(srv);
}

static void test_post_runs_on_the_polling_thread(void)
{
	struct leap_rpc_server *srv = new_server();
	json_t *r;

	T_ASSERT(srv);
	timer_srv = srv;
	main_thread = pthread_self();
	posted_on_main = false;
	r = roundtrip(srv, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"posted\"}", NULL);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(r, "result")), "posted");
	T_ASSERT(posted_on_main);
	json_decref(r);
	leap_rpc_server_destroy(srv);
}

static void test_register_refuses_duplicates(void)
{
	static const struct leap_rpc_method dup[] = { { "echo", m_echo } };
	struct leap_rpc_server *srv = new_server();

	T_ASSERT(srv);
	T_ASSERT_EQ(leap_rpc_server_register(srv, dup, 1), -EEXIST);
	leap_rpc_server_destroy(srv);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_success_echoes_id_and_result),
		TAP_CASE(test_parse_error),
		TAP_CASE(test_invalid_request),
		TAP_CASE(test_method_not_found),
		TAP_CASE(test_invalid_params_name_the_field),
		TAP_CASE(test_application_error_is_negative_errno),
		TAP_CASE(test_notification_runs_without_reply),
		TAP_CASE(test_batch_mixed),
		TAP_CASE(test_batch_of_garbage_and_of_notifications),
		TAP_CASE(test_async_answer_and_batch_order),
		TAP_CASE(test_sync_call),
		TAP_CASE(test_timer_answers_later_without_blocking),
		TAP_CASE(test_post_runs_on_the_polling_thread),
		TAP_CASE(test_register_refuses_duplicates),
	};

	leap_log_set_level(LEAP_LOG_WARN);
	return tap_run(cases, TAP_N(cases));
}
