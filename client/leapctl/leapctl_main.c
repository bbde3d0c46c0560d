// SPDX-License-Identifier: BSD-3-Clause
/*
 * leapctl: the command-line client of leapd's JSON-RPC control socket.
 *
 *   leapctl [-r SOCK] [--json] [-t SEC] <object> [<verb>] [args]
 *
 * Global options come first; the command table (leapctl_cmds.c) does the
 * rest. Exit status: 0 on success, 1 when leapd reports an error or cannot
 * be reached (its message on stderr), 2 for a bad command line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leapio/common.h"
#include "leapctl_internal.h"

static void usage(FILE *f)
{
	const char *prev = NULL;

	fprintf(f,
		"usage: leapctl [-r SOCK] [--json] [-t SEC] <object> [<verb>] [args]\n"
		"       leapctl <object> [<verb>] --help\n\n"
		"options:\n"
		"  -r, --socket SOCK   leapd's RPC socket (default $LEAPCTL_SOCKET or %s)\n"
		"  -j, --json          print results as JSON\n"
		"  -t, --timeout SEC   give up on an answer after SEC seconds (default 30)\n"
		"  -h, --help          this help\n\ncommands:\n",
		LEAPCTL_DEFAULT_SOCKET);
	for (size_t i = 0; i < leapctl_ncmds; i++) {
		const struct leapctl_cmd *c = &leapctl_cmds[i];
		bool same = prev && strcmp(prev, c->object) == 0;

		fprintf(f, "  %-8s %-10s %s\n", same ? "" : c->object, c->verb ? c->verb : "",
			c->summary);
		prev = c->object;
	}
}

static void object_help(const char *object, FILE *f)
{
	fprintf(f,
		"usage: leapctl %s <verb> [args]   (leapctl %s <verb> --help for details)\n\n"
		"verbs:\n",
		object, object);
	for (size_t i = 0; i < leapctl_ncmds; i++)
		if (strcmp(leapctl_cmds[i].object, object) == 0)
			fprintf(f, "  %-10s %s\n", leapctl_cmds[i].verb, leapctl_cmds[i].summary);
}

static bool object_exists(const char *object)
{
	for (size_t i = 0; i < leapctl_ncmds; i++)
		if (strcmp(leapctl_cmds[i].object, object) == 0)
			return true;
	return false;
}

static const struct leapctl_cmd *find_cmd(const char *object, const char *verb)
{
	for (size_t i = 0; i < leapctl_ncmds; i++) {
		const struct leapctl_cmd *c = &leapctl_cmds[i];

		if (strcmp(c->object, object) != 0)
			continue;
		if (!c->verb || (verb && strcmp(c->verb, verb) == 0))
			return c;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct leapctl_opts o = { .sock = getenv("LEAPCTL_SOCKET"), .timeout_ms = 30000 };
	const struct leapctl_cmd *cmd;
	json_t *params = NULL;
	int i = 1, rc;

	if (!o.sock || !*o.sock)
		o.sock = LEAPCTL_DEFAULT_SOCKET;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return LEAP_EXIT_OK;
		} else if (strcmp(a, "-j") == 0 || strcmp(a, "--json") == 0) {
			o.json = true;
		} else if ((strcmp(a, "-r") == 0 || strcmp(a, "--socket") == 0) && i + 1 < argc) {
			o.sock = argv[++i];
		} else if ((strcmp(a, "-t") == 0 || strcmp(a, "--timeout") == 0) && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);

			if (*end || v <= 0 || v > 86400) {
				fprintf(stderr, "leapctl: bad timeout '%s'\n", argv[i]);
				return LEAP_EXIT_USAGE;
			}
			o.timeout_ms = (int)v * 1000;
		} else {
			fprintf(stderr, "leapctl: unknown or incomplete option '%s'\n\n", a);
			usage(stderr);
			return LEAP_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return LEAP_EXIT_USAGE;
	}
	if (!object_exists(argv[i])) {
		fprintf(stderr, "leapctl: unknown object '%s'\n\n", argv[i]);
		usage(stderr);
		return LEAP_EXIT_USAGE;
	}
	cmd = find_cmd(argv[i], i + 1 < argc ? argv[i + 1] : NULL);
	if (!cmd) {
		bool asked = i + 1 < argc &&
			     (strcmp(argv[i + 1], "--help") == 0 || strcmp(argv[i + 1], "-h") == 0);

		if (!asked)
			fprintf(stderr,
				i + 1 < argc ? "leapctl: %s: unknown verb '%s'\n\n"
					     : "leapctl: %s: verb missing\n\n",
				argv[i], i + 1 < argc ? argv[i + 1] : "");
		object_help(argv[i], asked ? stdout : stderr);
		return asked ? LEAP_EXIT_OK : LEAP_EXIT_USAGE;
	}
	i += cmd->verb ? 2 : 1;
	rc = leapctl_parse_args(cmd, argc - i, argv + i, &params);
	if (rc == 1)
		return LEAP_EXIT_OK;
	if (rc < 0)
		return LEAP_EXIT_USAGE;
	rc = leapctl_cmd_run(&o, cmd, params);
	json_decref(params);
	return rc;
}
