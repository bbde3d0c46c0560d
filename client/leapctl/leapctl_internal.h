/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * leapctl's pieces: a JSON-RPC client for leapd's control socket
 * (leapctl_client.c), the command table and its argument parser
 * (leapctl_cmds.c), and the human-readable printers (leapctl_print.c).
 * leapctl_main.c ties them together. Nothing here is used by leapd.
 *
 * Commands are data: one row per "<object> <verb>" naming the RPC method,
 * the arguments (positional or --options, each mapped to a params field)
 * and how to print the result. Adding a command is adding a row.
 */
#ifndef LEAPIO_LOADER_LEAPCTL_INTERNAL_H
#define LEAPIO_LOADER_LEAPCTL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#define LEAPCTL_DEFAULT_SOCKET "/run/leapio/leapd.sock"

/* ---- client ---------------------------------------------------------------- */

struct leapctl_opts {
	const char *sock;
	bool json;	/* print results as JSON */
	int timeout_ms; /* per request */
};

/*
 * Call `method` with `params` (borrowed, may be NULL). 0: *result set
 * (owned). Otherwise: the server's error code (never 0) with *errmsg
 * (malloc'ed), or -errno for a transport failure with *errmsg describing it.
 */
int leapctl_call(const struct leapctl_opts *o, const char *method, json_t *params, json_t **result,
		 char **errmsg);

/*
 * Send `text` exactly as given, half-close, and return in *out whatever
 * the server answered (malloc'ed, NUL-terminated) before closing or the
 * timeout. 0 or -errno.
 */
int leapctl_raw(const struct leapctl_opts *o, const char *text, char **out);

/* ---- commands --------------------------------------------------------------- */

enum leapctl_arg_type {
	LEAPCTL_ARG_STR,
	LEAPCTL_ARG_U64,  /* decimal or 0x */
	LEAPCTL_ARG_SIZE, /* bytes with optional K/M/G/T suffix (binary) */
	LEAPCTL_ARG_FLAG, /* --opt with no value: true */
	LEAPCTL_ARG_JSON, /* any JSON text */
	/*
	 * NAME=VALUE, repeatable, collected into an object under `key`; VALUE
	 * is an integer when it parses as one, else a string. A positional KV
	 * argument takes every remaining positional word.
	 */
	LEAPCTL_ARG_KV,
};

#define LEAPCTL_REQUIRED (1u << 0)
/* Optional value: "--watch" alone or "--watch 2" (value only if it parses). */
#define LEAPCTL_OPTVAL	 (1u << 1)

struct leapctl_arg {
	const char *opt; /* "--size", or NULL for a positional argument */
	const char *key; /* params field */
	enum leapctl_arg_type type;
	unsigned int flags;
	const char *metavar;
	const char *help;
};

/* How a list result (an array of objects) is shown as a table. */
struct leapctl_column {
	const char *header;
	const char *key; /* field, or "a.b" for a nested one */
	bool human_size; /* show bytes as 4.0G etc. */
};

struct leapctl_cmd;
/* A command with its own behaviour (stats --watch, config save, rpc). */
typedef int (*leapctl_run_fn)(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			      json_t *params);

#define LEAPCTL_MAX_ARGS 24
#define LEAPCTL_MAX_COLS 12

struct leapctl_cmd {
	const char *object;
	const char *verb; /* NULL: the object alone is the command ("leapctl info") */
	const char *method;
	const char *summary;
	struct leapctl_arg args[LEAPCTL_MAX_ARGS];
	struct leapctl_column cols[LEAPCTL_MAX_COLS]; /* empty: print as "key: value" */
	leapctl_run_fn run;			      /* NULL: call and print */
};

extern const struct leapctl_cmd leapctl_cmds[];
extern const size_t leapctl_ncmds;

/*
 * Parse argv (after object and verb) into a params object by cmd's spec.
 * Returns 0 and *params, 1 if help was asked for (printed), or -EINVAL
 * after printing why (usage error).
 */
int leapctl_parse_args(const struct leapctl_cmd *cmd, int argc, char **argv, json_t **params);

/* Help for one command ("leapctl bdev create --help"). */
void leapctl_cmd_help(const struct leapctl_cmd *cmd, FILE *f);

/* Run a command whose params are parsed: the default is call + print. Returns an exit code. */
int leapctl_cmd_run(const struct leapctl_opts *o, const struct leapctl_cmd *cmd, json_t *params);

/* ---- printing ---------------------------------------------------------------- */

/* Print `result` for `cmd`: JSON if o->json, a table for list results, else key: value. */
void leapctl_print_result(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			  json_t *result);
/* Print an array of objects as a table with these columns. */
void leapctl_print_table(FILE *f, const struct leapctl_column *cols, json_t *rows);

/* Make params' "path" absolute (leapd has its own working directory). 0 or -1 (said why). */
int leapctl_abs_path(json_t *params);
/* Policy commands with their own behaviour (leapctl_policy.c). */
int leapctl_run_abs_path(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			 json_t *params);
int leapctl_run_policy_stats(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			     json_t *params);
int leapctl_run_policy_list(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			    json_t *params);
/* XDP policies' views (leapctl_xdp.c): allow-list prefixes, fabric_acl counters. */
int leapctl_run_policy_prefixes(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
				json_t *params);
int leapctl_run_policy_acl(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			   json_t *params);
/* The XDP links of a policy_list or policy_show result, as a table. */
void leapctl_print_xdp_links(FILE *f, json_t *links);
/* "4096" -> "4.0K" style (binary units). */
void leapctl_fmt_size(char *buf, size_t len, unsigned long long bytes);

/* Report a failure on stderr ("leapctl: <method>: <message>") and return the exit code. */
int leapctl_fail(const char *what, int code, const char *msg);

#endif /* LEAPIO_LOADER_LEAPCTL_INTERNAL_H */
