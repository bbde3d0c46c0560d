// SPDX-License-Identifier: BSD-3-Clause
/*
 * leapctl's views of XDP policies: their links (run by the kernel, with the
 * kernel's run counters), the prefixes of an allow-list, and a fabric_acl
 * policy's counters (policies/fabric_acl.bpf.c: acl_src_stats, acl_totals),
 * read through leapd from the maps bpftool sees pinned under
 * /sys/fs/bpf/leapio/NAME. Addresses are shown as written: IPv4 sources
 * live IPv4-mapped (::ffff:a.b.c.d) in the maps and print as a.b.c.d.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leapctl_internal.h"

static const struct leapctl_column xdp_link_cols[] = {
	{ "LINK", "id", false },      { "POLICY", "policy", false },
	{ "IFACE", "iface", false },  { "MODE", "attached", false },
	{ "PROG", "prog_id", false }, { "KLINK", "kernel_link_id", false },
	{ "RUNS", "runs", false },    { "NS/RUN", "ns_per_run", false },
	{ "PIN", "pin", false },      { NULL, NULL, false },
};

void leapctl_print_xdp_links(FILE *f, json_t *links)
{
	leapctl_print_table(f, xdp_link_cols, links);
}

static int call(const struct leapctl_opts *o, const char *method, json_t *params, json_t **out)
{
	char *msg = NULL;
	int rc = leapctl_call(o, method, params, out, &msg);

	json_decref(params);
	if (rc) {
		rc = leapctl_fail(method, rc, msg);
		free(msg);
	}
	return rc;
}

int leapctl_run_policy_prefixes(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
				json_t *params)
{
	json_t *r = NULL, *v;
	size_t i;
	int rc = call(o, cmd->method, json_incref(params), &r);

	if (rc)
		return rc;
	if (o->json) {
		leapctl_print_result(o, cmd, r);
	} else {
		json_array_foreach (json_object_get(r, "prefixes"), i, v)
			printf("%s\n", json_string_value(v));
	}
	json_decref(r);
	return 0;
}

/* A 16-byte source key in hex -> its address (IPv4-mapped shown as IPv4). */
static void source_text(const char *hexkey, char *buf, size_t sz)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	uint8_t a[16];

	if (!hexkey || strlen(hexkey) != 32) {
		snprintf(buf, sz, "?");
		return;
	}
	for (int i = 0; i < 16; i++) {
		unsigned int b;

		sscanf(hexkey + 2 * i, "%2x", &b);
		a[i] = (uint8_t)b;
	}
	if (!memcmp(a, mapped, 12))
		inet_ntop(AF_INET, a + 12, buf, (socklen_t)sz);
	else
		inet_ntop(AF_INET6, a, buf, (socklen_t)sz);
}

static const struct leapctl_column src_cols[] = {
	{ "SOURCE", "source", false },	 { "PASSED", "passed", false },
	{ "DROPPED", "dropped", false }, { "SYN_DROPPED", "syn_dropped", false },
	{ "SYNS", "syns", false },	 { NULL, NULL, false },
};

/* In the order of enum leap_acl_total and struct leap_acl_src_count (leap_policies.h). */
static const char *const total_names[] = { "passed", "dropped", "syn_dropped", "malformed",
					   "other" };
static const char *const src_fields[] = { "passed", "dropped", "syn_dropped", "syns" };

int leapctl_run_policy_acl(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			   json_t *params)
{
	const char *name = json_string_value(json_object_get(params, "name"));
	json_t *allow = NULL, *src = NULL, *tot = NULL, *rows, *totals, *e, *out;
	char addr[64];
	size_t i;
	int rc;

	(void)cmd;
	rc = call(o, "policy_prefix_list", json_pack("{s:s}", "name", name), &allow);
	if (!rc)
		rc = call(o, "policy_map_entries",
			  json_pack("{s:s, s:s}", "name", name, "map", "acl_src_stats"), &src);
	if (!rc)
		rc = call(o, "policy_map_entries",
			  json_pack("{s:s, s:s}", "name", name, "map", "acl_totals"), &tot);
	if (rc) {
		json_decref(allow);
		json_decref(src);
		return rc;
	}
	rows = json_array();
	json_array_foreach (json_object_get(src, "entries"), i, e) {
		json_t *vals = json_object_get(e, "values");
		json_t *row;

		source_text(json_string_value(json_object_get(e, "key")), addr, sizeof(addr));
		row = json_pack("{s:s}", "source", addr);
		for (size_t f = 0; f < sizeof(src_fields) / sizeof(src_fields[0]); f++)
			json_object_set(row, src_fields[f], json_array_get(vals, f));
		json_array_append_new(rows, row);
	}
	totals = json_object();
	json_array_foreach (json_object_get(tot, "entries"), i, e)
		if (i < sizeof(total_names) / sizeof(total_names[0]))
			json_object_set(totals, total_names[i],
					json_array_get(json_object_get(e, "values"), 0));
	out = json_pack("{s:O, s:o, s:o}", "allow", json_object_get(allow, "prefixes"), "sources",
			rows, "totals", totals);
	if (o->json) {
		json_dumpf(out, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		printf("allow-list (%s):", json_string_value(json_object_get(allow, "map")));
		json_array_foreach (json_object_get(allow, "prefixes"), i, e)
			printf(" %s", json_string_value(e));
		printf("%s\n\n",
		       json_array_size(json_object_get(allow, "prefixes")) ? "" : " (empty)");
		leapctl_print_table(stdout, src_cols, rows);
		printf("\ntotals:");
		for (size_t t = 0; t < sizeof(total_names) / sizeof(total_names[0]); t++)
			printf(
			    " %s %lld", total_names[t],
			    (long long)json_integer_value(json_object_get(totals, total_names[t])));
		printf("\n");
	}
	json_decref(out);
	json_decref(allow);
	json_decref(src);
	json_decref(tot);
	return 0;
}
