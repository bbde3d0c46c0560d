// SPDX-License-Identifier: BSD-3-Clause
/*
 * xdp_acl_verdicts OBJ: policies/fabric_acl.bpf.o loaded through the loader
 * (opts.xdp, no pinning) and run by the kernel on crafted frames with
 * BPF_PROG_TEST_RUN: every parsing path (IPv4 with options, IPv6 and its
 * extension headers, one and two VLAN tags, fragments, truncated headers,
 * other ports and protocols), the SYN token bucket, live knobs and the
 * counters. TAP on stdout; exit 0 when every case passed, 77 when the
 * kernel cannot run it (not root, no bpffs is fine: nothing is pinned).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../../policies/leap_policies.h"
#include "leapio/loader.h"

static struct leap_obj *obj;
static int prog_fd, allow_fd, src_fd, totals_fd;
static int ncases, nfail;

static void ok(bool cond, const char *what)
{
	ncases++;
	if (!cond)
		nfail++;
	printf("%sok %d - %s\n", cond ? "" : "not ", ncases, what);
}

/* ---- frames ----------------------------------------------------------------- */

struct fr {
	uint8_t b[256];
	size_t len;
};

static void put(struct fr *f, const void *p, size_t n)
{
	memcpy(f->b + f->len, p, n);
	f->len += n;
}

static void put16(struct fr *f, uint16_t v)
{
	v = htons(v);
	put(f, &v, 2);
}

/* Ethernet with up to two tags: vlan[0] outer (0x88a8 when two), -1 = none. */
static void eth(struct fr *f, int outer, int inner, uint16_t type)
{
	static const uint8_t macs[12] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2 };

	f->len = 0;
	put(f, macs, 12);
	if (outer >= 0) {
		put16(f, inner >= 0 ? 0x88a8 : 0x8100);
		put16(f, (uint16_t)outer);
	}
	if (inner >= 0) {
		put16(f, 0x8100);
		put16(f, (uint16_t)inner);
	}
	put16(f, type);
}

#define F_SYN 0x02
#define F_ACK 0x10

static void tcp(struct fr *f, uint16_t dport, uint8_t flags, size_t cut)
{
	uint8_t th[20] = { 0 };

	th[0] = 0x30;
	th[1] = 0x39;
	th[2] = (uint8_t)(dport >> 8);
	th[3] = (uint8_t)dport;
	th[12] = 5 << 4;
	th[13] = flags;
	put(f, th, sizeof(th) - cut);
}

/* IPv4 [options words] TCP, or `proto` with 8 bytes of payload; frag: offset in 8-byte units. */
static void v4(struct fr *f, int outer, int inner, const char *src, uint8_t proto, uint16_t dport,
	       uint8_t flags, int opt_words, uint16_t frag, size_t cut)
{
	uint8_t ip[24] = { 0 };
	size_t hl = 20 + 4 * (size_t)opt_words;

	eth(f, outer, inner, 0x0800);
	ip[0] = (uint8_t)(0x40 | (hl / 4));
	ip[8] = 64;
	ip[9] = proto;
	ip[6] = (uint8_t)(frag >> 8);
	ip[7] = (uint8_t)frag;
	inet_pton(AF_INET, src, ip + 12);
	inet_pton(AF_INET, "198.18.0.1", ip + 16);
	put(f, ip, hl);
	if (proto == IPPROTO_TCP)
		tcp(f, dport, flags, cut);
	else
		put(f, "\0\x35\x11\x34\0\x08\0\0", 8);
}

/* IPv6 with the extension headers in `ext` (0 HOP, 60 DST, 44 FRAG; fragoff for FRAG). */
static void v6(struct fr *f, int outer, int inner, const char *src, const uint8_t *ext, int next,
	       uint16_t fragoff, uint16_t dport, uint8_t flags)
{
	uint8_t ip[40] = { 0x60 };

	eth(f, outer, inner, 0x86dd);
	ip[6] = next ? ext[0] : IPPROTO_TCP;
	ip[7] = 64;
	inet_pton(AF_INET6, src, ip + 8);
	inet_pton(AF_INET6, "fd00::1", ip + 24);
	put(f, ip, sizeof(ip));
	for (int i = 0; i < next; i++) {
		uint8_t h[8] = { (uint8_t)(i + 1 < next ? ext[i + 1] : IPPROTO_TCP) };

		if (ext[i] == 44) {
			h[2] = (uint8_t)((fragoff << 3) >> 8);
			h[3] = (uint8_t)(fragoff << 3);
		}
		put(f, h, sizeof(h));
	}
	tcp(f, dport, flags, 0);
}

static int run(const struct fr *f)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f->b, .data_size_in = (__u32)f->len,
		    .repeat = 1);

	if (bpf_prog_test_run_opts(prog_fd, &o))
		return -errno;
	return (int)o.retval;
}

/* ---- maps ------------------------------------------------------------------- */

static int map_fd(const char *name)
{
	struct leap_map_info mi;
	struct leap_map *m = leap_obj_find_map(obj, name);

	if (!m)
		return -1;
	leap_map_get_info(m, &mi);
	return mi.fd;
}

static void allow(const char *addr, uint32_t len)
{
	struct leap_acl_key k = { 0 };
	struct leap_acl_rule r = { 0 };

	if (inet_pton(AF_INET, addr, k.addr + 12) == 1) {
		k.addr[10] = k.addr[11] = 0xff;
		len += 96;
	} else {
		inet_pton(AF_INET6, addr, k.addr);
	}
	k.prefixlen = len;
	bpf_map_update_elem(allow_fd, &k, &r, BPF_ANY);
}

/* A source's counters summed over the CPUs; all 0 when the map has no entry. */
static struct leap_acl_src_count src_counts(const char *addr)
{
	int ncpu = libbpf_num_possible_cpus();
	struct leap_acl_src_count sum = { 0 }, *v = calloc((size_t)ncpu, sizeof(*v));
	struct leap_acl_src k = { 0 };

	if (inet_pton(AF_INET, addr, k.addr + 12) == 1)
		k.addr[10] = k.addr[11] = 0xff;
	else
		inet_pton(AF_INET6, addr, k.addr);
	if (v && !bpf_map_lookup_elem(src_fd, &k, v))
		for (int c = 0; c < ncpu; c++) {
			sum.passed += v[c].passed;
			sum.dropped += v[c].dropped;
			sum.syn_dropped += v[c].syn_dropped;
			sum.syns += v[c].syns;
		}
	free(v);
	return sum;
}

static uint64_t totals(uint32_t idx)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *v = calloc((size_t)ncpu, 8), sum = 0;

	if (v && !bpf_map_lookup_elem(totals_fd, &idx, v))
		for (int c = 0; c < ncpu; c++)
			sum += v[c];
	free(v);
	return sum;
}

static void set_var(const char *name, uint32_t idx, uint64_t val)
{
	struct leap_var_info vi;

	if (leap_obj_var_find(obj, name, &vi) || idx >= vi.nelems) {
		fprintf(stderr, "no knob %s[%u]\n", name, idx);
		exit(1);
	}
	memcpy(vi.addr + (size_t)idx * vi.elem_size, &val, vi.elem_size);
}

int main(int argc, char **argv)
{
	static const uint8_t hop_dst[] = { 0, 60 }, frag[] = { 44 }, five[] = { 0, 60, 60, 60, 60 };
	char log[4096] = "";
	struct leap_obj_opts oo = {
		.sz = sizeof(oo), .log_buf = log, .log_sz = sizeof(log), .xdp = true
	};
	struct leap_acl_src_count c;
	struct fr f;
	int pass = 0, drop = 0, rc;

	if (argc != 2) {
		fprintf(stderr, "usage: xdp_acl_verdicts fabric_acl.bpf.o\n");
		return 2;
	}
	rc = leap_obj_load(argv[1], &oo, &obj);
	if (rc) {
		printf("1..0 # SKIP cannot load %s: %s\n", argv[1], log);
		return rc == -EPERM ? 77 : 1;
	}
	prog_fd = leap_obj_prog_kernel_fd(obj, (uint32_t)leap_obj_find_prog(obj, "xdp"));
	allow_fd = map_fd("acl_allow");
	src_fd = map_fd("acl_src_stats");
	totals_fd = map_fd("acl_totals");
	ok(leap_obj_prog(obj, 0) == NULL, "an XDP program gets no engine program");
	allow("198.18.1.0", 24);
	allow("fd00:1::", 64);

	v4(&f, -1, -1, "198.18.1.2", IPPROTO_TCP, 4420, F_SYN, 0, 0, 0);
	ok(run(&f) == XDP_PASS, "IPv4 SYN from an allowed /24 passes");
	v4(&f, -1, -1, "198.18.2.2", IPPROTO_TCP, 4420, F_SYN, 0, 0, 0);
	ok(run(&f) == XDP_DROP, "IPv4 SYN from outside the list is dropped");
	v4(&f, -1, -1, "198.18.2.2", IPPROTO_TCP, 4420, F_ACK, 0, 0, 0);
	ok(run(&f) == XDP_DROP, "IPv4 ACK from outside the list is dropped (not only SYNs)");
	v4(&f, -1, -1, "198.18.2.2", IPPROTO_TCP, 22, F_SYN, 0, 0, 0);
	ok(run(&f) == XDP_PASS, "TCP to an unguarded port passes");
	v4(&f, -1, -1, "198.18.2.2", IPPROTO_UDP, 4420, 0, 0, 0, 0);
	ok(run(&f) == XDP_PASS, "UDP to the port passes");
	v4(&f, -1, -1, "198.18.2.2", IPPROTO_TCP, 4420, F_SYN, 2, 0, 0);
	ok(run(&f) == XDP_DROP, "IPv4 with options: the TCP header is found and the SYN dropped");
	v4(&f, -1, -1, "198.18.1.9", IPPROTO_TCP, 4420, F_SYN, 2, 0, 0);
	ok(run(&f) == XDP_PASS, "IPv4 with options from an allowed source passes");
	v4(&f, -1, -1, "198.18.2.2", IPPROTO_TCP, 4420, F_SYN, 0, 185, 0);
	ok(run(&f) == XDP_PASS, "a non-first IPv4 fragment passes (no TCP header in it)");
	v4(&f, -1, -1, "198.18.2.2", IPPROTO_TCP, 4420, F_SYN, 0, 0x2000, 0);
	ok(run(&f) == XDP_DROP, "a first IPv4 fragment (MF) is checked");
	v4(&f, -1, -1, "198.18.1.2", IPPROTO_TCP, 4420, F_SYN, 0, 0, 10);
	ok(run(&f) == XDP_DROP, "a truncated TCP header is dropped, even from an allowed source");
	v4(&f, 7, -1, "198.18.2.2", IPPROTO_TCP, 4420, F_SYN, 0, 0, 0);
	ok(run(&f) == XDP_DROP, "802.1Q-tagged SYN from outside the list is dropped");
	v4(&f, 3, 7, "198.18.2.2", IPPROTO_TCP, 4420, F_SYN, 0, 0, 0);
	ok(run(&f) == XDP_DROP, "QinQ-tagged SYN from outside the list is dropped");
	v4(&f, 3, 7, "198.18.1.2", IPPROTO_TCP, 4420, F_SYN, 0, 0, 0);
	ok(run(&f) == XDP_PASS, "QinQ-tagged SYN from an allowed source passes");

	v6(&f, -1, -1, "fd00:1::2", NULL, 0, 0, 4420, F_SYN);
	ok(run(&f) == XDP_PASS, "IPv6 SYN from an allowed /64 passes");
	v6(&f, -1, -1, "fd00:2::2", NULL, 0, 0, 4420, F_SYN);
	ok(run(&f) == XDP_DROP, "IPv6 SYN from outside the list is dropped");
	v6(&f, -1, -1, "fd00:2::2", hop_dst, 2, 0, 4420, F_SYN);
	ok(run(&f) == XDP_DROP, "IPv6 hop-by-hop + destination options: TCP found, dropped");
	v6(&f, 9, -1, "fd00:1::3", hop_dst, 2, 0, 4420, F_SYN);
	ok(run(&f) == XDP_PASS, "tagged IPv6 with extension headers from an allowed source passes");
	v6(&f, -1, -1, "fd00:2::2", frag, 1, 0, 4420, F_SYN);
	ok(run(&f) == XDP_DROP, "a first IPv6 fragment is checked");
	v6(&f, -1, -1, "fd00:2::2", frag, 1, 100, 4420, F_SYN);
	ok(run(&f) == XDP_PASS, "a non-first IPv6 fragment passes");
	v6(&f, -1, -1, "fd00:1::2", five, 5, 0, 4420, F_SYN);
	ok(run(&f) == XDP_DROP,
	   "five extension headers: beyond what is parsed, dropped (fail closed)");
	eth(&f, -1, -1, 0x0806);
	put(&f, "\0\1\x08\0\6\4\0\1", 8);
	ok(run(&f) == XDP_PASS, "ARP passes");

	/* The SYN bucket: burst 3, 1 per second; ACKs are never limited. */
	set_var("syn_rate", 0, 1);
	set_var("syn_burst", 0, 3);
	v4(&f, -1, -1, "198.18.1.50", IPPROTO_TCP, 4420, F_SYN, 0, 0, 0);
	for (int i = 0; i < 10; i++) {
		rc = run(&f);
		pass += rc == XDP_PASS;
		drop += rc == XDP_DROP;
	}
	ok(pass == 3 && drop == 7, "10 SYNs at once, burst 3: 3 pass, 7 dropped");
	v4(&f, -1, -1, "198.18.1.50", IPPROTO_TCP, 4420, F_ACK, 0, 0, 0);
	ok(run(&f) == XDP_PASS, "an ACK from the same source still passes");
	c = src_counts("198.18.1.50");
	ok(c.syns == 10 && c.syn_dropped == 7 && c.passed == 4 && c.dropped == 0,
	   "its counters: 10 SYNs, 7 over the rate, 4 passed");
	set_var("syn_rate", 0, 0);
	v4(&f, -1, -1, "198.18.1.50", IPPROTO_TCP, 4420, F_SYN, 0, 0, 0);
	ok(run(&f) == XDP_PASS, "syn_rate=0 lifts the limit, live");
	c = src_counts("198.18.2.2");
	ok(c.dropped == 6 && c.syns == 5 && c.passed == 0,
	   "the denied IPv4 source: 6 dropped, 5 of them SYNs");
	c = src_counts("fd00:2::2");
	ok(c.dropped == 3, "the denied IPv6 source: 3 dropped (the non-first fragment uncounted)");
	ok(totals(LEAP_ACL_MALFORMED) == 2 && totals(LEAP_ACL_OTHER) == 5,
	   "totals: 2 malformed, 5 other");

	/* Ports are live knobs. */
	set_var("acl_ports", 0, 0);
	set_var("acl_ports", 3, 4421);
	v4(&f, -1, -1, "198.18.2.2", IPPROTO_TCP, 4420, F_SYN, 0, 0, 0);
	ok(run(&f) == XDP_PASS, "4420 no longer guarded: passes");
	v4(&f, -1, -1, "198.18.2.2", IPPROTO_TCP, 4421, F_SYN, 0, 0, 0);
	ok(run(&f) == XDP_DROP, "4421 guarded: dropped");
	set_var("acl_src_stats_on", 0, 0);
	v4(&f, -1, -1, "198.18.3.3", IPPROTO_TCP, 4421, F_SYN, 0, 0, 0);
	ok(run(&f) == XDP_DROP && src_counts("198.18.3.3").dropped == 0,
	   "acl_src_stats_on=0: dropped, no per-source entry");

	leap_obj_close(obj);
	printf("1..%d\n", ncases);
	return nfail ? 1 : 0;
}
