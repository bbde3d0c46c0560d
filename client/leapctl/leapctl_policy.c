// SPDX-License-Identifier: BSD-3-Clause
/*
 * leapctl's policy commands that need more than "call and print": paths
 * made absolute (leapd resolves them in its own working directory), and the
 * list view, which is two tables (policies, then their links with the
 * per-link counters).
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leapctl_internal.h"

static int call_print(const struct leapctl_opts *o, const struct leapctl_cmd *cmd, json_t *params,
		      json_t **keep)
{
	json_t *result = NULL;
	char *msg = NULL;
	int rc = leapctl_call(o, cmd->method, params, &result, &msg);

	if (rc) {
		rc = leapctl_fail(cmd->method, rc, msg);
		free(msg);
		return rc;
	}
	if (keep) {
		*keep = result;
		return 0;
	}
	leapctl_print_result(o, cmd, result);
	json_decref(result);
	return 0;
}

int leapctl_abs_path(json_t *params)
{
	const char *path = json_string_value(json_object_get(params, "path"));
	char cwd[PATH_MAX], *abs = NULL;

	/* leapd resolves paths against its own working directory, which is not ours. */
	if (!path || path[0] == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&abs, "%s/%s", cwd, path) < 0) {
		fprintf(stderr, "leapctl: cannot resolve %s\n", path);
		return -1;
	}
	json_object_set_new(params, "path", json_string(abs));
	free(abs);
	return 0;
}

int leapctl_run_abs_path(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			 json_t *params)
{
	if (leapctl_abs_path(params))
		return 1;
	return call_print(o, cmd, params, NULL);
}

static const struct leapctl_column policy_cols[] = {
	{ "NAME", "name", false },   { "ENGINE", "engine", false },
	{ "LINKS", "links", false }, { "REPLACED", "replaced", false },
	{ "PATH", "path", false },   { NULL, NULL, false },
};

static const struct leapctl_column link_cols[] = {
	{ "LINK", "id", false },
	{ "POLICY", "policy", false },
	{ "HOOK", "hook", false },
	{ "CTRL", "ctrl", false },
	{ "NSID", "nsid", false },
	{ "ORDER", "order", false },
	{ "RUNS", "runs", false },
	{ "NS/RUN", "ns_per_run", false },
	{ "PASS", "verdicts.pass", false },
	{ "DEFER", "verdicts.defer", false },
	{ "REDIRECT", "verdicts.redirect", false },
	{ "INVALID", "verdicts.invalid", false },
};

int leapctl_run_policy_list(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			    json_t *params)
{
	json_t *r = NULL, *c;
	size_t i;
	int rc;

	if (o->json)
		return call_print(o, cmd, params, NULL);
	rc = call_print(o, cmd, params, &r);
	if (rc)
		return rc;
	leapctl_print_table(stdout, policy_cols, json_object_get(r, "policies"));
	printf("\n");
	leapctl_print_table(stdout, link_cols, json_object_get(r, "links"));
	if (json_array_size(json_object_get(r, "xdp_links"))) {
		printf("\n");
		leapctl_print_xdp_links(stdout, json_object_get(r, "xdp_links"));
	}
	json_array_foreach (json_object_get(r, "controllers"), i, c) {
		json_int_t bad = json_integer_value(json_object_get(c, "invalid_verdicts"));
		json_int_t route = json_integer_value(json_object_get(c, "route_errors"));

		if (bad || route)
			printf(
			    "ctrl %s: %lld command(s) failed by an invalid verdict, %lld by a bad "
			    "redirect\n",
			    json_string_value(json_object_get(c, "ctrl")), (long long)bad,
			    (long long)route);
	}
	json_decref(r);
	return 0;
}

/* The value at quantile q of a log2 histogram: the upper edge of its bucket, in µs. */
static double hist_quantile(json_t *buckets, double q)
{
	uint64_t total = 0, seen = 0;
	size_t i;
	json_t *b;

	json_array_foreach (buckets, i, b)
		total += (uint64_t)json_integer_value(b);
	if (!total)
		return 0;
	json_array_foreach (buckets, i, b) {
		seen += (uint64_t)json_integer_value(b);
		if ((double)seen >= q * (double)total)
			return (double)(2ull << i) / 1000.0;
	}
	return 0;
}

static const struct leapctl_column stats_cols[] = {
	{ "TENANT", "tenant", false },	  { "READS", "reads", false },
	{ "WRITES", "writes", false },	  { "OTHER", "other", false },
	{ "READ", "read_bytes", true },	  { "WRITTEN", "write_bytes", true },
	{ "ERRORS", "errors", false },	  { "AVG_US", "avg_us", false },
	{ "P50_US", "p50_us", false },	  { "P99_US", "p99_us", false },
	{ "P99.9_US", "p999_us", false }, { NULL, NULL, false },
};

/*
 * The stats policy's maps (policies/stats.bpf.c: stats_io, stats_lat) as a
 * table per tenant, read through leapd from the same mmapped kernel maps
 * `bpftool map dump` shows.
 */
int leapctl_run_policy_stats(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			     json_t *params)
{
	static const char *const io_fields[] = { "reads",	"writes", "other",     "read_bytes",
						 "write_bytes", "errors", "lat_ns_sum" };
	const char *name = json_string_value(json_object_get(params, "name"));
	json_t *io = NULL, *lat = NULL, *rows = json_array(), *v;
	char *msg = NULL;
	size_t t;
	int rc;

	/* leapctl_call() takes its own reference on the params. */
	json_t *p_io = json_pack("{s:s, s:s}", "name", name, "map", "stats_io");
	json_t *p_lat = json_pack("{s:s, s:s}", "name", name, "map", "stats_lat");

	rc = leapctl_call(o, "policy_map_dump", p_io, &io, &msg);
	if (!rc)
		rc = leapctl_call(o, "policy_map_dump", p_lat, &lat, &msg);
	json_decref(p_io);
	json_decref(p_lat);
	if (rc) {
		rc = leapctl_fail(cmd->method, rc, msg);
		free(msg);
		json_decref(io);
		json_decref(rows);
		return rc;
	}
	json_array_foreach (json_object_get(io, "values"), t, v) {
		json_t *row = json_pack("{s:i}", "tenant", (int)t);
		json_t *hist = json_array_get(json_object_get(lat, "values"), t);
		uint64_t n = 0, sum;

		for (size_t f = 0; f < 7; f++)
			json_object_set(row, io_fields[f], json_array_get(v, f));
		for (size_t f = 0; f < 3; f++)
			n += (uint64_t)json_integer_value(json_array_get(v, f));
		if (!n) {
			json_decref(row);
			continue;
		}
		sum = (uint64_t)json_integer_value(json_array_get(v, 6));
		json_object_set_new(row, "avg_us", json_real((double)sum / (double)n / 1000.0));
		json_object_set_new(row, "p50_us", json_real(hist_quantile(hist, 0.5)));
		json_object_set_new(row, "p99_us", json_real(hist_quantile(hist, 0.99)));
		json_object_set_new(row, "p999_us", json_real(hist_quantile(hist, 0.999)));
		json_object_set(row, "histogram", hist);
		json_array_append_new(rows, row);
	}
	if (o->json) {
		json_dumpf(rows, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		leapctl_print_table(stdout, stats_cols, rows);
	}
	json_decref(io);
	json_decref(lat);
	json_decref(rows);
	return 0;
}
