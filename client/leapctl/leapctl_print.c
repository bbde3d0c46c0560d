// SPDX-License-Identifier: BSD-3-Clause
/*
 * leapctl's output: JSON when asked (--json, for scripts), otherwise an
 * aligned table for list results and "key: value" lines for single
 * objects. Column widths follow the data; nothing is truncated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leapctl_internal.h"

void leapctl_fmt_size(char *buf, size_t len, unsigned long long bytes)
{
	static const char units[] = "BKMGTP";
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu", bytes);
	else
		snprintf(buf, len, "%.1f%c", v, units[u]);
}

/* Look up "a.b" inside `obj`. */
static json_t *get_path(json_t *obj, const char *path)
{
	char key[64];
	const char *dot;

	while ((dot = strchr(path, '.')) != NULL) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		obj = json_object_get(obj, key);
		path = dot + 1;
	}
	return json_object_get(obj, path);
}

static void fmt_cell(char *buf, size_t len, json_t *v, bool human_size)
{
	if (!v || json_is_null(v) || (json_is_string(v) && !json_string_length(v))) {
		snprintf(buf, len, "-");
	} else if (json_is_string(v)) {
		snprintf(buf, len, "%s", json_string_value(v));
	} else if (json_is_integer(v)) {
		if (human_size && json_integer_value(v) >= 0)
			leapctl_fmt_size(buf, len, (unsigned long long)json_integer_value(v));
		else
			snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	} else if (json_is_real(v)) {
		snprintf(buf, len, "%.1f", json_real_value(v));
	} else if (json_is_boolean(v)) {
		snprintf(buf, len, "%s", json_is_true(v) ? "yes" : "no");
	} else {
		char *s = json_dumps(v, JSON_COMPACT);

		snprintf(buf, len, "%s", s ? s : "?");
		free(s);
	}
}

void leapctl_print_table(FILE *f, const struct leapctl_column *cols, json_t *rows)
{
	size_t ncol = 0, nrow = json_array_size(rows);
	int width[LEAPCTL_MAX_COLS];
	char cell[256];

	while (ncol < LEAPCTL_MAX_COLS && cols[ncol].header)
		ncol++;
	for (size_t c = 0; c < ncol; c++)
		width[c] = (int)strlen(cols[c].header);
	for (size_t r = 0; r < nrow; r++)
		for (size_t c = 0; c < ncol; c++) {
			fmt_cell(cell, sizeof(cell), get_path(json_array_get(rows, r), cols[c].key),
				 cols[c].human_size);
			if ((int)strlen(cell) > width[c])
				width[c] = (int)strlen(cell);
		}
	for (size_t c = 0; c < ncol; c++)
		fprintf(f, "%-*s%s", c + 1 < ncol ? width[c] : 0, cols[c].header,
			c + 1 < ncol ? "  " : "\n");
	for (size_t r = 0; r < nrow; r++)
		for (size_t c = 0; c < ncol; c++) {
			fmt_cell(cell, sizeof(cell), get_path(json_array_get(rows, r), cols[c].key),
				 cols[c].human_size);
			fprintf(f, "%-*s%s", c + 1 < ncol ? width[c] : 0, cell,
				c + 1 < ncol ? "  " : "\n");
		}
}

void leapctl_print_result(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			  json_t *result)
{
	char cell[256];
	const char *k;
	json_t *v;

	if (o->json) {
		json_dumpf(result, stdout,
			   JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_REAL_PRECISION(12));
		fputc('\n', stdout);
		return;
	}
	if (json_is_array(result) && cmd->cols[0].header) {
		leapctl_print_table(stdout, cmd->cols, result);
		return;
	}
	if (json_is_object(result)) {
		json_object_foreach (result, k, v) {
			fmt_cell(cell, sizeof(cell), v, false);
			printf("%s: %s\n", k, cell);
		}
		return;
	}
	/* A bare `true` means "done": nothing to say. */
	if (json_is_true(result))
		return;
	fmt_cell(cell, sizeof(cell), result, false);
	printf("%s\n", cell);
}
