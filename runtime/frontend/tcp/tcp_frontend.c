// SPDX-License-Identifier: BSD-3-Clause
/*
 * The NVMe/TCP target as a front-end module:
 *
 *   listener_add {"type": "tcp", "addr": "127.0.0.1", "port": 4420,
 *                 "handshake_timeout_ms": 10000, "idle_timeout_ms": 120000,
 *                 "max_connections": 256}
 *
 * "addr" (an IPv4 or IPv6 literal) is required; the rest have the defaults
 * shown. Parameters are checked here, each error naming the field and what
 * it must be; the listener itself is tcp_listener.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "frontend/frontend.h"
#include "frontend/tcp/tcp_internal.h"

struct tcp_frontend {
	struct tcp_listener *l;
	struct tcp_listener_opts o;
};

struct uint_param {
	const char *name;
	size_t off;
	uint32_t min, max;
};

static const struct uint_param uint_params[] = {
	{ "port", 0, 1, 65535 },
	{ "handshake_timeout_ms", offsetof(struct tcp_listener_opts, handshake_timeout_ms), 100,
	  600000 },
	{ "idle_timeout_ms", offsetof(struct tcp_listener_opts, idle_timeout_ms), 0, 86400000 },
	{ "max_connections", offsetof(struct tcp_listener_opts, max_connections), 1, 4096 },
};

#define PARAM_NAMES "addr, port, handshake_timeout_ms, idle_timeout_ms, max_connections"

/* The address in canonical text, and its family; 0 if it is not an IP literal. */
static int canon_addr(const char *in, char *out, size_t len)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, in, buf) == 1)
		return inet_ntop(AF_INET, buf, out, (socklen_t)len) ? AF_INET : 0;
	if (inet_pton(AF_INET6, in, buf) == 1)
		return inet_ntop(AF_INET6, buf, out, (socklen_t)len) ? AF_INET6 : 0;
	return 0;
}

static int parse(const json_t *params, struct tcp_listener_opts *o, char *err, size_t errlen)
{
	const char *key, *addr = NULL;
	json_t *v;

	memset(o, 0, sizeof(*o));
	o->port = NVME_TCP_PORT;
	o->handshake_timeout_ms = TCP_DEFAULT_HANDSHAKE_MS;
	o->idle_timeout_ms = TCP_DEFAULT_IDLE_MS;
	o->max_connections = TCP_DEFAULT_MAX_CONNS;
	json_object_foreach ((json_t *)params, key, v) {
		const struct uint_param *u = NULL;
		json_int_t n;

		if (strcmp(key, "addr") == 0) {
			if (!json_is_string(v)) {
				snprintf(err, errlen,
					 "tcp: 'addr' must be a string (an IPv4 or IPv6 "
					 "address)");
				return -EINVAL;
			}
			addr = json_string_value(v);
			continue;
		}
		for (size_t i = 0; i < sizeof(uint_params) / sizeof(uint_params[0]); i++)
			if (strcmp(key, uint_params[i].name) == 0)
				u = &uint_params[i];
		if (!u) {
			snprintf(err, errlen, "tcp: unknown parameter '%s' (known: %s)", key,
				 PARAM_NAMES);
			return -EINVAL;
		}
		n = json_is_integer(v) ? json_integer_value(v) : -1;
		if (!json_is_integer(v) || n < u->min || n > u->max) {
			snprintf(err, errlen, "tcp: '%s' must be an integer %u..%u", key, u->min,
				 u->max);
			return -EINVAL;
		}
		if (strcmp(key, "port") == 0)
			o->port = (uint16_t)n;
		else
			*(uint32_t *)((char *)o + u->off) = (uint32_t)n;
	}
	if (!addr) {
		snprintf(err, errlen,
			 "tcp: 'addr' (an IPv4 or IPv6 address to listen on) is "
			 "required");
		return -EINVAL;
	}
	if (!canon_addr(addr, o->addr, sizeof(o->addr))) {
		snprintf(err, errlen, "tcp: 'addr' '%.64s' is not an IPv4 or IPv6 address literal",
			 addr);
		return -EINVAL;
	}
	return 0;
}

static int tcp_fe_start(const json_t *params, const struct leap_frontend_env *env, void **out,
			char *err, size_t errlen)
{
	struct tcp_frontend *fe;
	int rc;

	fe = calloc(1, sizeof(*fe));
	if (!fe)
		return -ENOMEM;
	rc = parse(params, &fe->o, err, errlen);
	if (!rc)
		rc = tcp_listener_start(&fe->o, env->reactors, env->nreactors, &fe->l, err, errlen);
	if (rc) {
		free(fe);
		return rc;
	}
	*out = fe;
	return 0;
}

static void tcp_fe_stop(void *arg)
{
	struct tcp_frontend *fe = arg;

	if (!fe)
		return;
	tcp_listener_stop(fe->l);
	free(fe);
}

static json_t *tcp_fe_write_config(void *arg)
{
	struct tcp_frontend *fe = arg;

	return json_pack("{s:s, s:i, s:i, s:i, s:i}", "addr", fe->o.addr, "port", (int)fe->o.port,
			 "handshake_timeout_ms", (int)fe->o.handshake_timeout_ms, "idle_timeout_ms",
			 (int)fe->o.idle_timeout_ms, "max_connections", (int)fe->o.max_connections);
}

static json_t *tcp_fe_info(void *arg)
{
	struct tcp_frontend *fe = arg;
	struct tcp_listener *l = fe->l;
	uint32_t hosts;

	pthread_mutex_lock(&l->lock);
	hosts = l->nassocs;
	pthread_mutex_unlock(&l->lock);
	return json_pack("{s:s, s:i, s:i, s:i, s:i}", "addr", fe->o.addr, "port", (int)fe->o.port,
			 "connections", (int)__atomic_load_n(&l->nconns, __ATOMIC_RELAXED),
			 "controllers", (int)hosts, "discovery",
			 (int)__atomic_load_n(&l->ndisc, __ATOMIC_RELAXED));
}

/* Same address (as the kernel reads it) and port. */
static bool tcp_fe_conflicts(void *arg, const json_t *params)
{
	struct tcp_frontend *fe = arg;
	const char *addr = json_string_value(json_object_get(params, "addr"));
	json_t *port = json_object_get(params, "port");
	char canon[INET6_ADDRSTRLEN];

	if (!addr || !canon_addr(addr, canon, sizeof(canon)))
		return false;
	if (port && (!json_is_integer(port) || json_integer_value(port) != fe->o.port))
		return false;
	if (!port && fe->o.port != NVME_TCP_PORT)
		return false;
	return strcmp(canon, fe->o.addr) == 0;
}

const struct leap_frontend_ops leap_tcp_frontend_ops = {
	.type = "tcp",
	.start = tcp_fe_start,
	.stop = tcp_fe_stop,
	.write_config = tcp_fe_write_config,
	.info = tcp_fe_info,
	.conflicts = tcp_fe_conflicts,
};
LEAP_FRONTEND_REGISTER(leap_tcp_frontend_ops)
