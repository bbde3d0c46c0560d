// SPDX-License-Identifier: BSD-3-Clause
/*
 * The XDP side of the policy methods (rpc_policy_xdp.h). XDP programs run
 * in the kernel, so unlike the queue hooks nothing here waits for reactors:
 * attach, detach and replace take effect when the kernel answers. The map
 * methods reach the maps only the kernel serves (LPM tries, per-CPU hashes)
 * through syscalls on leapd's descriptors — the same maps bpftool sees
 * pinned under /sys/fs/bpf/leapio/NAME — and take effect on the next packet.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "policy/xdp.h"
#include "rpc_policy_xdp.h"

/* Entries answered by policy_map_entries and policy_prefix_list at most. */
#define MAX_ENTRIES 65536

/* ---- links ------------------------------------------------------------------------------------- */

static json_t *xdp_link_describe(const struct leap_xdp_link *l)
{
	struct leap_xdp_link_stats st;

	leap_xdp_link_stats(l, &st);
	return json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:I, s:f, s:b, s:s?}", "id",
			 (int)l->id, "policy", l->pol->name, "hook", LEAP_SEC_XDP, "iface",
			 l->ifname, "mode", leap_xdp_mode_name(l->mode), "attached", st.attached,
			 "kernel_link_id", (int)l->kernel_id, "prog_id", (int)st.prog_id, "runs",
			 (json_int_t)st.run_cnt, "run_time_ns", (json_int_t)st.run_time_ns,
			 "ns_per_run",
			 st.run_cnt ? (double)st.run_time_ns / (double)st.run_cnt : 0.0, "stats_on",
			 st.stats_on, "pin", l->pin_path[0] ? l->pin_path : NULL);
}

void rpc_policy_xdp_attach(struct leap_rpc_call *call, struct leap_policy *p, const char *ifname,
			   const char *mode, bool pin)
{
	struct leap_xdp_link *l;
	char err[512] = "";
	int m = mode ? leap_xdp_mode_parse(mode) : LEAP_XDP_AUTO;
	int rc;

	if (m < 0) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "mode: 'native', 'generic' or 'auto'");
		return;
	}
	rc = leap_xdp_attach(p, ifname, (enum leap_xdp_mode)m, pin, err, sizeof(err), &l);
	if (rc) {
		leap_rpc_call_error(call, rc, "%s", err[0] ? err : strerror(-rc));
		return;
	}
	leap_rpc_call_reply(call, json_pack("{s:[o]}", "links", xdp_link_describe(l)));
}

int rpc_policy_xdp_detach(uint32_t link, const char *name, const char *ifname)
{
	struct leap_xdp_link *l, *next;
	int n = 0;

	for (l = leap_xdp_link_next(NULL); l; l = next) {
		next = leap_xdp_link_next(l);
		if ((link && l->id != link) || (name && strcmp(l->pol->name, name)) ||
		    (ifname && strcmp(l->ifname, ifname)))
			continue;
		leap_xdp_detach(l);
		n++;
	}
	return n;
}

json_t *rpc_policy_xdp_links(const struct leap_policy *p)
{
	json_t *a = json_array();

	for (const struct leap_xdp_link *l = leap_xdp_link_next(NULL); l; l = leap_xdp_link_next(l))
		if (!p || l->pol == p)
			json_array_append_new(a, xdp_link_describe(l));
	return a;
}

int rpc_policy_xdp_save(json_t *calls)
{
	for (const struct leap_xdp_link *l = leap_xdp_link_next(NULL); l;
	     l = leap_xdp_link_next(l)) {
		json_t *c = json_pack("{s:s, s:{s:s, s:s, s:s, s:b}}", "method", "policy_attach",
				      "params", "name", l->pol->name, "xdp", l->ifname, "mode",
				      leap_xdp_mode_name(l->mode), "pin", l->pin_path[0] != 0);

		if (!c || json_array_append_new(calls, c))
			return -ENOMEM;
	}
	return 0;
}

/* ---- maps -------------------------------------------------------------------------------------- */

struct map_params {
	const char *name, *map, *prefix;
};

/* The policy's map `name`, or with name NULL its first map of type `type`. */
static int find_map(struct leap_rpc_call *call, const struct map_params *mp, uint32_t type,
		    struct leap_map_info *mi)
{
	struct leap_policy *p = leap_policy_find(mp->name);

	if (!p) {
		leap_rpc_call_error(call, -ENOENT, "policy '%s' not loaded", mp->name);
		return -ENOENT;
	}
	for (uint32_t i = 0; i < leap_obj_map_cnt(p->obj); i++) {
		leap_map_get_info(leap_obj_map(p->obj, i), mi);
		if (mp->map ? !strcmp(mi->name, mp->map) : mi->type == type) {
			if (type && mi->type != type) {
				leap_rpc_call_error(call, -EINVAL,
						    "map '%s' of policy '%s' is not an LPM trie",
						    mi->name, p->name);
				return -EINVAL;
			}
			return 0;
		}
	}
	if (mp->map)
		leap_rpc_call_error(call, -ENOENT, "policy '%s' has no map '%s'", p->name, mp->map);
	else
		leap_rpc_call_error(call, -ENOENT, "policy '%s' has no LPM trie (prefix map)",
				    p->name);
	return -ENOENT;
}

/*
 * "198.18.0.0/24", "fd00::/64", or a bare address (a host) -> LPM key for a
 * trie of key_size 4 + 16 (IPv6, IPv4 as ::ffff:a.b.c.d) or 4 + 4 (IPv4).
 * Host bits are cleared, so add and remove name the same entry however
 * the prefix is written.
 */
static int prefix_key(const char *text, uint32_t key_size, uint8_t *key, char *err, size_t errsz)
{
	char addr[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(text, '/');
	uint8_t a[16] = { 0 };
	unsigned long len;
	uint32_t plen, max;
	bool v4;

	snprintf(addr, sizeof(addr), "%.*s", slash ? (int)(slash - text) : (int)strlen(text), text);
	if (inet_pton(AF_INET, addr, a + 12) == 1) {
		v4 = true;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, a) == 1) {
		v4 = false;
		max = 128;
	} else {
		snprintf(err, errsz, "'%s': not an IPv4 or IPv6 address or prefix", text);
		return -EINVAL;
	}
	plen = max;
	if (slash) {
		char *end;

		len = strtoul(slash + 1, &end, 10);
		if (end == slash + 1 || *end || len > max) {
			snprintf(err, errsz, "'%s': bad prefix length (0..%u)", text, max);
			return -EINVAL;
		}
		plen = (uint32_t)len;
	}
	if (key_size == 4 + 16) {
		if (v4) {
			a[10] = a[11] = 0xff;
			plen += 96;
		}
	} else if (key_size == 4 + 4) {
		if (!v4) {
			snprintf(err, errsz, "'%s': this trie holds IPv4 prefixes only", text);
			return -EINVAL;
		}
		memmove(a, a + 12, 4);
	} else {
		snprintf(err, errsz, "the trie's keys are %u bytes: not an address prefix trie",
			 key_size);
		return -EINVAL;
	}
	for (uint32_t bit = plen; bit < (key_size - 4) * 8; bit++)
		a[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
	memcpy(key, &plen, 4);
	memcpy(key + 4, a, key_size - 4);
	return 0;
}

static void key_text(const uint8_t *key, uint32_t key_size, char *buf, size_t sz)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char a[INET6_ADDRSTRLEN];
	uint32_t plen;

	memcpy(&plen, key, 4);
	if (key_size == 4 + 4) {
		inet_ntop(AF_INET, key + 4, a, sizeof(a));
	} else if (plen >= 96 && !memcmp(key + 4, mapped, 12)) {
		inet_ntop(AF_INET, key + 16, a, sizeof(a));
		plen -= 96;
	} else {
		inet_ntop(AF_INET6, key + 4, a, sizeof(a));
	}
	snprintf(buf, sz, "%s/%u", a, plen);
}

static const struct leap_rpc_param prefix_spec[] = {
	LEAP_RPC_PARAM("name", LEAP_RPC_STR, true, struct map_params, name),
	LEAP_RPC_PARAM("prefix", LEAP_RPC_STR, true, struct map_params, prefix),
	LEAP_RPC_PARAM("map", LEAP_RPC_STR, false, struct map_params, map),
};

static void prefix_edit(struct leap_rpc_call *call, json_t *params, bool add)
{
	struct map_params mp = { 0 };
	struct leap_map_info mi;
	uint8_t key[4 + 16], *val;
	char err[256], text[64];
	int rc;

	if (leap_rpc_params_decode(call, params, prefix_spec, LEAP_ARRAY_SIZE(prefix_spec), &mp) ||
	    find_map(call, &mp, BPF_MAP_TYPE_LPM_TRIE, &mi))
		return;
	if (mi.key_size > sizeof(key)) {
		leap_rpc_call_error(call, -EINVAL,
				    "map '%s': %u-byte keys are not address prefixes", mi.name,
				    mi.key_size);
		return;
	}
	rc = prefix_key(mp.prefix, mi.key_size, key, err, sizeof(err));
	if (rc) {
		leap_rpc_call_error(call, rc, "%s", err);
		return;
	}
	key_text(key, mi.key_size, text, sizeof(text));
	if (!add) {
		if (bpf_map_delete_elem(mi.fd, key)) {
			rc = -errno;
			leap_rpc_call_error(call, rc, "%s: %s", text,
					    rc == -ENOENT ? "not in the list" : strerror(-rc));
			return;
		}
	} else {
		val = calloc(1, mi.value_size ? mi.value_size : 1);
		if (!val) {
			leap_rpc_call_error(call, -ENOMEM, "out of memory");
			return;
		}
		rc = bpf_map_update_elem(mi.fd, key, val, BPF_ANY) ? -errno : 0;
		free(val);
		if (rc) {
			leap_rpc_call_error(call, rc, "%s: %s%s", text, strerror(-rc),
					    rc == -ENOSPC ? " (the list is full)" : "");
			return;
		}
	}
	LEAP_INFO("xdp", "policy '%s': %s %s %s map '%s'", mp.name, add ? "added" : "removed", text,
		  add ? "to" : "from", mi.name);
	leap_rpc_call_reply(call, json_pack("{s:s, s:s}", "map", mi.name, "prefix", text));
}

static void policy_prefix_add(struct leap_rpc_call *call, json_t *params)
{
	prefix_edit(call, params, true);
}

static void policy_prefix_remove(struct leap_rpc_call *call, json_t *params)
{
	prefix_edit(call, params, false);
}

static const struct leap_rpc_param list_spec[] = {
	LEAP_RPC_PARAM("name", LEAP_RPC_STR, true, struct map_params, name),
	LEAP_RPC_PARAM("map", LEAP_RPC_STR, false, struct map_params, map),
};

static void policy_prefix_list(struct leap_rpc_call *call, json_t *params)
{
	struct map_params mp = { 0 };
	struct leap_map_info mi;
	uint8_t key[4 + 16], next[4 + 16];
	char text[64];
	json_t *a;
	void *prev = NULL;

	if (leap_rpc_params_decode(call, params, list_spec, LEAP_ARRAY_SIZE(list_spec), &mp) ||
	    find_map(call, &mp, BPF_MAP_TYPE_LPM_TRIE, &mi))
		return;
	if (mi.key_size > sizeof(key)) {
		leap_rpc_call_error(call, -EINVAL,
				    "map '%s': %u-byte keys are not address prefixes", mi.name,
				    mi.key_size);
		return;
	}
	a = json_array();
	for (int n = 0; n < MAX_ENTRIES && !bpf_map_get_next_key(mi.fd, prev, next); n++) {
		key_text(next, mi.key_size, text, sizeof(text));
		json_array_append_new(a, json_string(text));
		memcpy(key, next, mi.key_size);
		prev = key;
	}
	leap_rpc_call_reply(call, json_pack("{s:s, s:o}", "map", mi.name, "prefixes", a));
}

static bool is_percpu(uint32_t type)
{
	return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

static json_t *hex(const uint8_t *b, uint32_t n)
{
	char *s = malloc((size_t)n * 2 + 1);
	json_t *j;

	if (!s)
		return json_null();
	for (uint32_t i = 0; i < n; i++)
		snprintf(s + 2 * i, 3, "%02x", b[i]);
	s[2 * n] = 0;
	j = json_string(s);
	free(s);
	return j;
}

/* Values as 64-bit words, per-CPU maps summed over the CPUs (what the counters add up to). */
static json_t *words(const uint8_t *v, uint32_t value_size, int ncpu)
{
	uint32_t stride = LEAP_ALIGN_UP(value_size, 8u);
	json_t *w = json_array();

	for (uint32_t off = 0; off + 8 <= value_size; off += 8) {
		uint64_t sum = 0, x;

		for (int c = 0; c < ncpu; c++) {
			memcpy(&x, v + (size_t)c * stride + off, 8);
			sum += x;
		}
		json_array_append_new(w, json_integer((json_int_t)sum));
	}
	return w;
}

/*
 * Any map's entries (hash, LRU, LPM, per-CPU, array): keys as hex, values
 * as 64-bit words. For the maps policy_map_dump (mmapped arrays) cannot read.
 */
static void policy_map_entries(struct leap_rpc_call *call, json_t *params)
{
	struct map_params mp = { 0 };
	struct leap_map_info mi;
	int ncpu = 1;
	uint8_t *key, *next, *val;
	void *prev = NULL;
	json_t *a;

	if (leap_rpc_params_decode(call, params, list_spec, LEAP_ARRAY_SIZE(list_spec), &mp))
		return;
	if (!mp.map) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS, "'map' is required");
		return;
	}
	if (find_map(call, &mp, 0, &mi))
		return;
	if (is_percpu(mi.type)) {
		ncpu = libbpf_num_possible_cpus();
		if (ncpu < 1) {
			leap_rpc_call_error(call, ncpu ? ncpu : -EINVAL, "cannot count the CPUs");
			return;
		}
	}
	key = calloc(2, mi.key_size);
	val = calloc((size_t)ncpu, LEAP_ALIGN_UP(mi.value_size, 8u));
	if (!key || !val) {
		free(key);
		free(val);
		leap_rpc_call_error(call, -ENOMEM, "out of memory");
		return;
	}
	next = key + mi.key_size;
	a = json_array();
	for (int n = 0; n < MAX_ENTRIES && !bpf_map_get_next_key(mi.fd, prev, next); n++) {
		memcpy(key, next, mi.key_size);
		prev = key;
		if (bpf_map_lookup_elem(mi.fd, key, val))
			continue; /* gone meanwhile (LRU eviction) */
		json_array_append_new(a, json_pack("{s:o, s:o}", "key", hex(key, mi.key_size),
						   "values", words(val, mi.value_size, ncpu)));
	}
	free(key);
	free(val);
	leap_rpc_call_reply(call, json_pack("{s:s, s:i, s:i, s:b, s:o}", "map", mi.name, "key_size",
					    (int)mi.key_size, "value_size", (int)mi.value_size,
					    "percpu_summed", is_percpu(mi.type), "entries", a));
}

static const struct leap_rpc_method xdp_methods[] = {
	{ "policy_prefix_add", policy_prefix_add },
	{ "policy_prefix_remove", policy_prefix_remove },
	{ "policy_prefix_list", policy_prefix_list },
	{ "policy_map_entries", policy_map_entries },
};

int rpc_policy_xdp_register(struct leap_rpc_server *srv)
{
	return leap_rpc_server_register(srv, xdp_methods, LEAP_ARRAY_SIZE(xdp_methods));
}
