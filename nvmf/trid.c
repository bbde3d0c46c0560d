// SPDX-License-Identifier: BSD-3-Clause
/*
 * Transport IDs in SPDK's "key:value key:value" form, the one every NVMe-oF
 * tool user already knows (spdk_nvme_perf -r, the SPDK fio plugin), and the
 * host identity defaults: a random host ID per controller unless given, and
 * the standard uuid-form host NQN derived from it.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "leapio/common.h"
#include "nvmf_internal.h"

static int parse_err(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int parse_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errbuf && errlen) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* 8-4-4-4-12 hex digits. */
static int parse_uuid(const char *s, uint8_t out[16])
{
	int n = 0;

	for (int i = 0; s[i]; i++) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			continue;
		}
		if (n == 16)
			return -EINVAL;
		hi = hexval(s[i]);
		lo = s[i + 1] ? hexval(s[i + 1]) : -1;
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[n++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	return n == 16 && strlen(s) == 36 ? 0 : -EINVAL;
}

static bool nqn_ok(const char *v)
{
	size_t len = strlen(v);

	if (len == 0 || len > NVMF_NQN_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isprint((unsigned char)v[i]))
			return false;
	return true;
}

enum { K_TRTYPE, K_ADRFAM, K_TRADDR, K_TRSVCID, K_SUBNQN, K_HOSTNQN, K_HOSTID, K_HDGST, K_DDGST };
static const char *const keys[] = { "trtype",  "adrfam", "traddr", "trsvcid", "subnqn",
				    "hostnqn", "hostid", "hdgst",  "ddgst" };

static int set_key(struct leap_nvmf_trid *t, int k, const char *v, char *errbuf, size_t errlen)
{
	switch (k) {
	case K_TRTYPE:
		if (strcasecmp(v, "tcp"))
			return parse_err(errbuf, errlen, "trtype '%s': only tcp is supported", v);
		return 0;
	case K_ADRFAM:
		if (!strcasecmp(v, "ipv4"))
			t->adrfam = NVMF_ADRFAM_IPV4;
		else if (!strcasecmp(v, "ipv6"))
			t->adrfam = NVMF_ADRFAM_IPV6;
		else
			return parse_err(errbuf, errlen, "adrfam '%s': want ipv4 or ipv6", v);
		return 0;
	case K_TRADDR:
		if (strlen(v) >= sizeof(t->traddr))
			return parse_err(errbuf, errlen, "traddr too long");
		snprintf(t->traddr, sizeof(t->traddr), "%s", v);
		return 0;
	case K_TRSVCID: {
		char *end;
		unsigned long port = strtoul(v, &end, 10);

		if (!*v || *end || port == 0 || port > 65535)
			return parse_err(errbuf, errlen, "trsvcid '%s': want a TCP port 1-65535",
					 v);
		snprintf(t->trsvcid, sizeof(t->trsvcid), "%lu", port);
		return 0;
	}
	case K_SUBNQN:
	case K_HOSTNQN:
		if (!nqn_ok(v))
			return parse_err(errbuf, errlen, "%s '%s': want 1-%d printable bytes",
					 keys[k], v, NVMF_NQN_MAX_LEN);
		snprintf(k == K_SUBNQN ? t->subnqn : t->hostnqn, sizeof(t->subnqn), "%s", v);
		return 0;
	case K_HOSTID:
		if (parse_uuid(v, t->hostid))
			return parse_err(errbuf, errlen, "hostid '%s': want a UUID", v);
		t->hostid_set = true;
		return 0;
	case K_HDGST:
	case K_DDGST:
		if (parse_bool(v, k == K_HDGST ? &t->hdgst : &t->ddgst))
			return parse_err(errbuf, errlen, "%s '%s': want 0 or 1", keys[k], v);
		return 0;
	}
	return -EINVAL;
}

int leap_nvmf_trid_parse(struct leap_nvmf_trid *trid, const char *str, char *errbuf, size_t errlen)
{
	struct leap_nvmf_trid t;
	unsigned int seen = 0;
	const char *p = str;
	uint8_t addr[16];

	memset(&t, 0, sizeof(t));
	if (!str)
		return parse_err(errbuf, errlen, "empty transport ID");
	for (;;) {
		char pair[NVMF_TRADDR_MAX_LEN + 32], *sep;
		size_t len;
		int k = -1, rc;

		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		for (len = 0; p[len] && !isspace((unsigned char)p[len]); len++)
			;
		if (len >= sizeof(pair))
			return parse_err(errbuf, errlen, "'%.20s...' is too long", p);
		memcpy(pair, p, len);
		pair[len] = '\0';
		p += len;
		sep = strpbrk(pair, ":=");
		if (!sep)
			return parse_err(errbuf, errlen, "'%s' is not key:value", pair);
		*sep = '\0';
		for (size_t i = 0; i < LEAP_ARRAY_SIZE(keys); i++)
			if (!strcasecmp(pair, keys[i]))
				k = (int)i;
		if (k < 0)
			return parse_err(errbuf, errlen,
					 "unknown key '%s' (known: trtype adrfam traddr trsvcid "
					 "subnqn hostnqn hostid hdgst ddgst)",
					 pair);
		if (seen & (1u << k))
			return parse_err(errbuf, errlen, "key '%s' given twice", pair);
		seen |= 1u << k;
		rc = set_key(&t, k, sep + 1, errbuf, errlen);
		if (rc)
			return rc;
	}
	if (!(seen & (1u << K_TRADDR)) || !t.traddr[0])
		return parse_err(errbuf, errlen, "traddr is required");
	if (!t.adrfam)
		t.adrfam = strchr(t.traddr, ':') ? NVMF_ADRFAM_IPV6 : NVMF_ADRFAM_IPV4;
	if (inet_pton(t.adrfam == NVMF_ADRFAM_IPV6 ? AF_INET6 : AF_INET, t.traddr, addr) != 1)
		return parse_err(errbuf, errlen, "traddr '%s' is not a numeric %s address",
				 t.traddr, t.adrfam == NVMF_ADRFAM_IPV6 ? "IPv6" : "IPv4");
	if (!t.trsvcid[0])
		snprintf(t.trsvcid, sizeof(t.trsvcid), "%d", NVME_TCP_PORT);
	if (!t.subnqn[0])
		snprintf(t.subnqn, sizeof(t.subnqn), "%s", NVME_DISCOVERY_NQN);
	*trid = t;
	return 0;
}

int leap_nvmf_trid_format(const struct leap_nvmf_trid *t, char *buf, size_t len)
{
	return snprintf(buf, len, "trtype:tcp adrfam:%s traddr:%s trsvcid:%s subnqn:%s%s%s%s%s",
			t->adrfam == NVMF_ADRFAM_IPV6 ? "ipv6" : "ipv4", t->traddr,
			t->trsvcid[0] ? t->trsvcid : "4420",
			t->subnqn[0] ? t->subnqn : NVME_DISCOVERY_NQN,
			t->hostnqn[0] ? " hostnqn:" : "", t->hostnqn, t->hdgst ? " hdgst:1" : "",
			t->ddgst ? " ddgst:1" : "");
}

/* Fill in what the host must send but the caller left to us: host ID, host NQN, defaults. */
int nvmf_trid_finalize(struct leap_nvmf_trid *t)
{
	if (!t->traddr[0])
		return -EINVAL;
	if (!t->adrfam)
		t->adrfam = strchr(t->traddr, ':') ? NVMF_ADRFAM_IPV6 : NVMF_ADRFAM_IPV4;
	if (!t->trsvcid[0])
		snprintf(t->trsvcid, sizeof(t->trsvcid), "%d", NVME_TCP_PORT);
	if (!t->subnqn[0])
		snprintf(t->subnqn, sizeof(t->subnqn), "%s", NVME_DISCOVERY_NQN);
	if (!t->hostid_set) {
		if (getrandom(t->hostid, sizeof(t->hostid), 0) != sizeof(t->hostid))
			return -EIO;
		/* RFC 4122 version 4, variant 1. */
		t->hostid[6] = (uint8_t)((t->hostid[6] & 0x0f) | 0x40);
		t->hostid[8] = (uint8_t)((t->hostid[8] & 0x3f) | 0x80);
		t->hostid_set = true;
	}
	if (!t->hostnqn[0]) {
		const uint8_t *u = t->hostid;

		snprintf(t->hostnqn, sizeof(t->hostnqn),
			 NVMF_NQN_UUID_PREFIX "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
					      "%02x%02x%02x%02x%02x%02x",
			 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
			 u[12], u[13], u[14], u[15]);
	}
	return 0;
}
