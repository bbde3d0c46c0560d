// SPDX-License-Identifier: BSD-3-Clause
/*
 * leapctl's command table and argument parser (loader/leapctl_cmds.c):
 * sizes with suffixes, options with and without '=', flags, optional
 * values, usage errors, and the table's own consistency (every row
 * reachable, no duplicates, required positionals first) so that adding a
 * row cannot silently shadow another.
 */
#include <errno.h>
#include <fcntl.h>

#include "../../client/leapctl/leapctl_cmds.c"
#include "tap.h"

static const struct leapctl_cmd *cmd_of(const char *object, const char *verb)
{
	for (size_t i = 0; i < leapctl_ncmds; i++) {
		const struct leapctl_cmd *c = &leapctl_cmds[i];

		if (strcmp(c->object, object) == 0 &&
		    ((!c->verb && !verb) || (c->verb && verb && strcmp(c->verb, verb) == 0)))
			return c;
	}
	return NULL;
}

/* Parse a NULL-terminated argument list; usage text and help go to /dev/null. */
static int parse(const struct leapctl_cmd *c, json_t **params, ...)
{
	int argc = 0, rc, out, err, null;
	char *argv[16];
	va_list ap;

	va_start(ap, params);
	while (argc < 16 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	fflush(stdout);
	fflush(stderr);
	out = dup(1);
	err = dup(2);
	null = open("/dev/null", O_WRONLY);
	dup2(null, 1);
	dup2(null, 2);
	rc = leapctl_parse_args(c, argc, argv, params);
	fflush(stdout);
	fflush(stderr);
	dup2(out, 1);
	dup2(err, 2);
	close(out);
	close(err);
	close(null);
	return rc;
}

static void test_sizes(void)
{
	unsigned long long v;

	T_ASSERT_EQ(parse_size("4096", &v), 0);
	T_ASSERT_U64_EQ(v, 4096);
	T_ASSERT_EQ(parse_size("64M", &v), 0);
	T_ASSERT_U64_EQ(v, 64ull << 20);
	T_ASSERT_EQ(parse_size("1g", &v), 0);
	T_ASSERT_U64_EQ(v, 1ull << 30);
	T_ASSERT_EQ(parse_size("2KiB", &v), 0);
	T_ASSERT_U64_EQ(v, 2048);
	T_ASSERT_EQ(parse_size("3TB", &v), 0);
	T_ASSERT_U64_EQ(v, 3ull << 40);
	T_ASSERT_EQ(parse_size("0x1000", &v), 0);
	T_ASSERT_U64_EQ(v, 4096);
	T_ASSERT(parse_size("12Q", &v) < 0);
	T_ASSERT(parse_size("-1", &v) < 0);
	T_ASSERT(parse_size("", &v) < 0);
	T_ASSERT(parse_size("M", &v) < 0);
	T_ASSERT(parse_size("1Mx", &v) < 0);
	T_ASSERT(parse_size("99999999999T", &v) < 0);
	T_ASSERT(parse_u64("12", &v) == 0 && v == 12);
	T_ASSERT(parse_u64("12k", &v) < 0);
	T_ASSERT(parse_u64("+1", &v) < 0);
}

static void test_bdev_create_args(void)
{
	const struct leapctl_cmd *c = cmd_of("bdev", "create");
	json_t *p = NULL;

	T_ASSERT(c);
	T_ASSERT_EQ(parse(c, &p, "m0", "--type", "mem", "--size=8M", "--block-size", "4096",
			  "--buffered", NULL),
		    0);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(p, "name")), "m0");
	T_ASSERT_STR_EQ(json_string_value(json_object_get(p, "type")), "mem");
	T_ASSERT_EQ(json_integer_value(json_object_get(p, "size")), 8 << 20);
	T_ASSERT_EQ(json_integer_value(json_object_get(p, "block_size")), 4096);
	T_ASSERT(json_is_true(json_object_get(p, "buffered")));
	T_ASSERT(!json_object_get(p, "path"));
	json_decref(p);
	/* A backend's own parameters: --param, merged next to the common keys. */
	T_ASSERT_EQ(parse(c, &p, "f0", "--type", "uring", "--param", "path=/var/tmp/f0.img",
			  "--param=queue_depth=64", "--param", "buffered=true", NULL),
		    0);
	T_ASSERT_EQ(bdev_param_merge(p), 0);
	T_ASSERT(!json_object_get(p, "param"));
	T_ASSERT_STR_EQ(json_string_value(json_object_get(p, "path")), "/var/tmp/f0.img");
	T_ASSERT_EQ(json_integer_value(json_object_get(p, "queue_depth")), 64);
	T_ASSERT(json_is_true(json_object_get(p, "buffered")));
	json_decref(p);
	T_ASSERT_EQ(
	    parse(c, &p, "f0", "--type", "uring", "--path", "/a", "--param", "path=/b", NULL), 0);
	T_ASSERT_EQ(bdev_param_merge(p), -EINVAL);
	json_decref(p);
}

static void test_usage_errors(void)
{
	const struct leapctl_cmd *c = cmd_of("bdev", "create");
	json_t *p = NULL;

	T_ASSERT_EQ(parse(c, &p, "--type", "mem", NULL), -EINVAL); /* no NAME */
	T_ASSERT_EQ(parse(c, &p, "m0", NULL), -EINVAL);		   /* no --type */
	T_ASSERT_EQ(parse(c, &p, "m0", "--type", NULL), -EINVAL);  /* value missing */
	T_ASSERT_EQ(parse(c, &p, "m0", "--type", "mem", "--sise", "1", NULL), -EINVAL);
	T_ASSERT_EQ(parse(c, &p, "m0", "extra", "--type", "mem", NULL), -EINVAL);
	T_ASSERT_EQ(parse(c, &p, "m0", "--type", "mem", "--buffered=yes", NULL), -EINVAL);
	T_ASSERT_EQ(parse(c, &p, "m0", "--type", "mem", "--block-size", "4k", NULL), -EINVAL);
	/* --help wins over anything else and is not an error. */
	T_ASSERT_EQ(parse(c, &p, "--help", NULL), 1);
}

static void test_optional_value_and_json(void)
{
	const struct leapctl_cmd *stats = cmd_of("stats", NULL);
	const struct leapctl_cmd *rpc = cmd_of("rpc", NULL);
	json_t *p = NULL;

	T_ASSERT(stats && rpc);
	T_ASSERT_EQ(parse(stats, &p, "--watch", "--ctrl", "c0", NULL), 0);
	T_ASSERT(json_is_true(json_object_get(p, "watch")));
	T_ASSERT_STR_EQ(json_string_value(json_object_get(p, "ctrl")), "c0");
	json_decref(p);
	T_ASSERT_EQ(parse(stats, &p, "--watch", "3", NULL), 0);
	T_ASSERT_EQ(json_integer_value(json_object_get(p, "watch")), 3);
	json_decref(p);
	T_ASSERT_EQ(parse(rpc, &p, "bdev_list", "{\"name\":\"x\"}", NULL), 0);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(p, "params"), "name")),
			"x");
	json_decref(p);
	T_ASSERT_EQ(parse(rpc, &p, "bdev_list", "{not json", NULL), -EINVAL);
}

static void test_ns_positional_integer(void)
{
	const struct leapctl_cmd *c = cmd_of("ns", "remove");
	json_t *p = NULL;

	T_ASSERT(c);
	T_ASSERT_EQ(parse(c, &p, "c0", "7", NULL), 0);
	T_ASSERT_EQ(json_integer_value(json_object_get(p, "nsid")), 7);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(p, "ctrl")), "c0");
	json_decref(p);
	T_ASSERT_EQ(parse(c, &p, "c0", "seven", NULL), -EINVAL);
}

static void test_table_is_consistent(void)
{
	for (size_t i = 0; i < leapctl_ncmds; i++) {
		const struct leapctl_cmd *c = &leapctl_cmds[i];
		bool optional_seen = false;

		if (!c->method && !c->run)
			T_FAIL("%s %s: neither a method nor a run function", c->object,
			       c->verb ? c->verb : "");
		if (!c->summary)
			T_FAIL("%s: no summary", c->object);
		for (size_t j = 0; j < i; j++) {
			const struct leapctl_cmd *o = &leapctl_cmds[j];

			if (strcmp(o->object, c->object) != 0)
				continue;
			/* A verb-less row takes the whole object: it must be alone. */
			if (!o->verb || !c->verb || strcmp(o->verb, c->verb) == 0)
				T_FAIL("%s: rows %zu and %zu collide", c->object, j, i);
		}
		for (size_t a = 0; a < LEAPCTL_MAX_ARGS && c->args[a].key; a++) {
			const struct leapctl_arg *arg = &c->args[a];

			if (!arg->help)
				T_FAIL("%s %s: argument %s has no help", c->object, c->verb,
				       arg->key);
			if (arg->opt)
				continue;
			if (!arg->metavar)
				T_FAIL("%s: positional %s has no metavar", c->object, arg->key);
			if ((arg->flags & LEAPCTL_REQUIRED) && optional_seen)
				T_FAIL("%s %s: required positional after an optional one",
				       c->object, c->verb);
			if (!(arg->flags & LEAPCTL_REQUIRED))
				optional_seen = true;
		}
	}
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_sizes),
		TAP_CASE(test_bdev_create_args),
		TAP_CASE(test_usage_errors),
		TAP_CASE(test_optional_value_and_json),
		TAP_CASE(test_ns_positional_integer),
		TAP_CASE(test_table_is_consistent),
	};

	return tap_run(cases, TAP_N(cases));
}
