// SPDX-License-Identifier: BSD-3-Clause
/*
 * stats_get (runtime/rpc_stats.c) in-process, no reactors and no tenant:
 * the test plays the reactor and records completions into a namespace's
 * counters with leap_stats_record(), then checks totals, errors by NVMe
 * status, rates over "since the previous call" and over a window (answered
 * from a timer), and parameter errors.
 */
#include <errno.h>
#include <unistd.h>

#include "control/rpc_stats.c"
#include "leapio/log.h"
#include "tap.h"

LEAP_BDEV_MODULE_USE(leap_bdev_mem_ops);

static int up(struct leap_daemon *d)
{
	static const char *const calls[][2] = {
		{ "bdev_create", "{\"name\":\"sm\",\"type\":\"mem\",\"size\":1048576}" },
		{ "ctrl_create", "{\"name\":\"sc\"}" },
		{ "ctrl_create", "{\"name\":\"empty\"}" },
		{ "ns_add", "{\"ctrl\":\"sc\",\"bdev\":\"sm\"}" },
	};

	memset(d, 0, sizeof(*d));
	d->bdevs = json_array();
	if (leap_rpc_server_create(d, &d->rpc) || leap_rpc_bdev_register(d->rpc) ||
	    leap_rpc_ctrl_register(d->rpc) || leap_rpc_stats_register(d->rpc))
		return -1;
	for (size_t i = 0; i < TAP_N(calls); i++) {
		json_error_t e;
		json_t *p = json_loads(calls[i][1], 0, &e);
		int rc = leap_rpc_server_call(d->rpc, calls[i][0], p, NULL, NULL);

		json_decref(p);
		if (rc)
			return -1;
	}
	return 0;
}

static void down(struct leap_daemon *d)
{
	leap_rpc_ctrl_cleanup(d);
	leap_rpc_bdev_cleanup(d);
	leap_rpc_server_destroy(d->rpc);
	json_decref(d->bdevs);
}

static json_t *get(struct leap_daemon *d, const char *params, int *code, char **msg)
{
	json_t *p = params ? json_loads(params, 0, NULL) : NULL, *res = NULL;

	*code = leap_rpc_server_call(d->rpc, "stats_get", p, &res, msg);
	json_decref(p);
	return res;
}

static json_t *ns0(json_t *res)
{
	return json_array_get(
	    json_object_get(json_array_get(json_object_get(res, "controllers"), 0), "namespaces"),
	    0);
}

static long long ival(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void test_delta(void)
{
	struct leap_stats a = { 0 }, b = { 0 }, d;

	leap_stats_record(&b, LEAP_STATS_READ, 4096, 0, 1000);
	a = b;
	leap_stats_record(&a, LEAP_STATS_READ, 4096, 0, 3000);
	leap_stats_record(&a, LEAP_STATS_WRITE, 512, 0, 3000);
	stats_delta(&d, &a, &b);
	T_ASSERT_U64_EQ(d.ops[LEAP_STATS_READ], 1);
	T_ASSERT_U64_EQ(d.ops[LEAP_STATS_WRITE], 1);
	T_ASSERT_U64_EQ(d.bytes[0], 4096);
	T_ASSERT_U64_EQ(d.bytes[1], 512);
	T_ASSERT_U64_EQ(d.lat_sum_ns, 6000);
	/* Both 3000 ns samples sit in bucket 11 ([2048, 4096)); the 1000 ns one is gone. */
	T_ASSERT_U64_EQ(d.lat_hist[11], 2);
	T_ASSERT_U64_EQ(d.lat_hist[9], 0);
	/* Never negative, whatever order the snapshots come in. */
	stats_delta(&d, &b, &a);
	T_ASSERT_U64_EQ(d.ops[LEAP_STATS_READ], 0);
}

static void test_totals_errors_and_intervals(void)
{
	struct leap_daemon d;
	struct leap_stats *st;
	json_t *res, *ns, *errs;
	char *msg = NULL;
	int code;

	T_ASSERT_EQ(up(&d), 0);
	st = &leap_ctrl_ns(find_ctrl(&d, "sc")->dp, 1)->stats;
	for (int i = 0; i < 30; i++)
		leap_stats_record(st, LEAP_STATS_READ, 4096, 0, 10000);
	for (int i = 0; i < 10; i++)
		leap_stats_record(st, LEAP_STATS_WRITE, 8192, 0, 20000);
	/* Two LBA Out of Range, one Invalid Field: counted by status, no bytes. */
	leap_stats_record(st, LEAP_STATS_READ, 4096, NVME_STATUS(0, 0x80), 500);
	leap_stats_record(st, LEAP_STATS_READ, 4096, NVME_STATUS(0, 0x80), 500);
	leap_stats_record(st, LEAP_STATS_WRITE, 4096, NVME_STATUS(0, 0x02), 500);

	res = get(&d, "{\"ctrl\":\"sc\"}", &code, &msg);
	T_ASSERT_EQ(code, 0);
	ns = ns0(res);
	T_ASSERT_EQ(ival(ns, "nsid"), 1);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(ns, "bdev")), "sm");
	T_ASSERT_EQ(ival(ns, "reads"), 32);
	T_ASSERT_EQ(ival(ns, "writes"), 11);
	T_ASSERT_EQ(ival(ns, "read_bytes"), 30 * 4096);
	T_ASSERT_EQ(ival(ns, "write_bytes"), 10 * 8192);
	T_ASSERT_EQ(ival(ns, "error_count"), 3);
	errs = json_object_get(ns, "errors");
	T_ASSERT_EQ(json_object_size(errs), 2);
	T_ASSERT_EQ(ival(errs, "sct0_sc0x80"), 2);
	T_ASSERT_EQ(ival(errs, "sct0_sc0x02"), 1);
	T_ASSERT(json_real_value(json_object_get(ns, "iops")) > 0);
	/* Median of 30 x 10 us, 10 x 20 us, 3 x 0.5 us sits in the 10 us bucket [8.2, 16.4). */
	{
		double p50 =
		    json_real_value(json_object_get(json_object_get(ns, "latency_us"), "p50"));

		T_ASSERT(p50 >= 8.192 && p50 < 16.384);
	}
	json_decref(res);

	/* Nothing since: totals stay, the interval saw no I/O. */
	res = get(&d, "{\"ctrl\":\"sc\",\"ns\":1}", &code, &msg);
	ns = ns0(res);
	T_ASSERT_EQ(ival(ns, "reads"), 32);
	T_ASSERT(json_real_value(json_object_get(ns, "iops")) == 0);
	T_ASSERT(json_is_null(json_object_get(json_object_get(ns, "latency_us"), "p50")));
	json_decref(res);

	/* Exactly the I/O recorded in between shows up as the interval's. */
	for (int i = 0; i < 5; i++)
		leap_stats_record(st, LEAP_STATS_WRITE, 4096, 0, 1000);
	usleep(20000);
	res = get(&d, "{\"ctrl\":\"sc\",\"ns\":1}", &code, &msg);
	ns = ns0(res);
	{
		double w = json_real_value(json_object_get(ns, "write_iops"));
		double ms = json_real_value(json_object_get(ns, "interval_ms"));

		T_ASSERT(ms >= 20);
		/* 5 writes over `ms`: the rate is 5 / (ms / 1000) up to rounding. */
		T_ASSERT(w > 0 && w * ms / 1000.0 > 4.99 && w * ms / 1000.0 < 5.01);
		T_ASSERT(json_real_value(json_object_get(ns, "read_iops")) == 0);
	}
	json_decref(res);
	down(&d);
}

static void test_window_and_listing(void)
{
	struct leap_daemon d;
	json_t *res, *ctrls;
	char *msg = NULL;
	int code;

	T_ASSERT_EQ(up(&d), 0);
	res = get(&d, "{\"window_ms\":50}", &code, &msg);
	T_ASSERT_EQ(code, 0);
	T_ASSERT(json_is_true(json_object_get(res, "window")));
	T_ASSERT(json_real_value(json_object_get(res, "interval_ms")) >= 50);
	/* Every controller is listed, the one without namespaces too. */
	ctrls = json_object_get(res, "controllers");
	T_ASSERT_EQ(json_array_size(ctrls), 2);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(ctrls, 1), "name")),
			"empty");
	T_ASSERT_EQ(json_array_size(json_object_get(json_array_get(ctrls, 1), "namespaces")), 0);
	T_ASSERT(!json_is_true(json_object_get(json_array_get(ctrls, 0), "attached")));
	json_decref(res);
	down(&d);
}

static void test_bad_params(void)
{
	static const struct {
		const char *params;
		int code;
		const char *needle;
	} cases[] = {
		{ "{\"ns\":1}", -32602, "'ns' needs 'ctrl'" },
		{ "{\"ctrl\":\"nope\"}", -ENOENT, "ctrl 'nope' not found" },
		{ "{\"ctrl\":\"sc\",\"ns\":7}", -ENOENT, "has no nsid 7" },
		{ "{\"ctrl\":\"sc\",\"ns\":0}", -32602, "'ns' must be in [1, 32]" },
		{ "{\"window_ms\":0}", -32602, "'window_ms'" },
		{ "{\"qpairs\":1}", -32602, "'qpairs' must be a boolean" },
	};
	struct leap_daemon d;

	T_ASSERT_EQ(up(&d), 0);
	for (size_t i = 0; i < TAP_N(cases); i++) {
		char *msg = NULL;
		int code;
		json_t *res = get(&d, cases[i].params, &code, &msg);

		json_decref(res);
		if (code != cases[i].code || !msg || !strstr(msg, cases[i].needle)) {
			printf("# got %d %s\n", code, msg ? msg : "(none)");
			free(msg);
			T_FAIL("%s: want %d mentioning %s", cases[i].params, cases[i].code,
			       cases[i].needle);
		}
		free(msg);
	}
	down(&d);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_delta),
		TAP_CASE(test_totals_errors_and_intervals),
		TAP_CASE(test_window_and_listing),
		TAP_CASE(test_bad_params),
	};

	leap_log_set_level(LEAP_LOG_ERROR);
	return tap_run(cases, TAP_N(cases));
}
