// SPDX-License-Identifier: BSD-3-Clause
/*
 * leapctl's policy commands that need more than "call and print": paths
 * made absolute (leapd resolves them in its own working directory), and the
 * list view, which is two tables (policies, then their links with the
 * per-link counters).
 */
#include <limits.h>
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

int leapctl_run_abs_path(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			 json_t *params)
{
	const char *path = json_string_value(json_object_get(params, "path"));

	if (path && path[0] != '/') {
		char cwd[PATH_MAX], *abs = NULL;

		if (!getcwd(cwd, sizeof(cwd)) || asprintf(&abs, "%s/%s", cwd, path) < 0) {
			fprintf(stderr, "leapctl: cannot resolve %s\n", path);
			return 1;
		}
		json_object_set_new(params, "path", json_string(abs));
		free(abs);
	}
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
