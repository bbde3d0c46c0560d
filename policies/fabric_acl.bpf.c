// SPDX-License-Identifier: BSD-3-Clause
/*
 * fabric_acl — admission control for NVMe/TCP at the fabric port (XDP).
 *
 * Unlike the storage services beside it, this is a kernel program: leapd
 * loads it like any policy (maps pinned under /sys/fs/bpf/leapio/NAME) and
 * attaches it to the interface its NVMe/TCP listeners use with
 * `leapctl policy attach NAME --xdp IFACE`; the kernel runs it on every
 * received frame, before its TCP stack spends anything on the packet.
 *
 * For TCP to a guarded port (acl_ports[]), over IPv4 or IPv6, untagged or
 * behind up to two VLAN tags (802.1Q, 802.1ad):
 *  1. the source address must match a prefix of the allow-list acl_allow
 *     (LPM trie; IPv4 stored IPv4-mapped, so a.b.c.d/n is ::ffff:a.b.c.d
 *     /96+n); otherwise the frame is dropped (counted `dropped`);
 *  2. a connection request (SYN without ACK) from an allowed source takes
 *     a token from that source's bucket in acl_syn (LRU hash): at most
 *     syn_burst at once, refilled at syn_rate per second; beyond that it is
 *     dropped (counted `syn_dropped`). Established connections' segments
 *     are never rate limited;
 *  3. everything else to the port passes (counted `passed`).
 * Frames for other ports, other protocols, ARP, ICMP... pass untouched
 * (LEAP_ACL_OTHER). Non-first IPv4/IPv6 fragments pass (they carry no TCP
 * header and cannot be reassembled without the first, which is checked).
 * A TCP header cut short, or an IPv6 header chain longer than
 * ACL_V6_EXT_MAX extension headers, is dropped (LEAP_ACL_MALFORMED): the
 * filter fails closed rather than let an unparsed SYN through.
 *
 * The bucket is GCRA's form of a token bucket: one 64-bit theoretical
 * arrival time per source, advanced by 1e9 / syn_rate ns per admitted SYN
 * and updated with compare-and-swap, so SYNs from one source arriving on
 * several CPUs at once never admit more than the rate (a lost race is
 * retried once, then the SYN is dropped).
 *
 * Knobs (.data, live: `leapctl policy set NAME syn_rate=100`; they apply
 * from the next packet):
 *   acl_ports[LEAP_ACL_PORTS]  guarded TCP destination ports, 0 = unused
 *                              (default: 4420, the NVMe/TCP port)
 *   syn_rate                   SYNs per second per source (default 100;
 *                              0: no SYN limit)
 *   syn_burst                  SYNs a source may send at once (default 20;
 *                              0 counts as 1)
 *   acl_src_stats_on           1: per-source counters (default); 0: only
 *                              acl_totals (a spoofed-source flood then
 *                              costs no hash insert per packet)
 *
 * Maps (layouts in leap_policies.h):
 *   acl_allow      LPM trie, struct leap_acl_key -> struct leap_acl_rule;
 *                  edited live with `leapctl policy prefix-add/-remove` or
 *                  `bpftool map update pinned .../acl_allow key hex ...`
 *   acl_src_stats  LRU per-CPU hash, struct leap_acl_src ->
 *                  struct leap_acl_src_count {passed, dropped, syn_dropped, syns}
 *   acl_syn        LRU hash, struct leap_acl_src -> struct leap_acl_syn
 *   acl_totals     per-CPU array [LEAP_ACL_TOTALS] of __u64
 */
#include <stdbool.h>

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "leap_policies.h"

#define ACL_VLAN_MAX	2
#define ACL_V6_EXT_MAX	4
#define ACL_NS_PER_SEC	1000000000ull
#define ETH_P_8021AD_BE bpf_htons(0x88A8)
#define ETH_P_8021Q_BE	bpf_htons(0x8100)

__u16 acl_ports[LEAP_ACL_PORTS] SEC(".data") = { 4420 };
__u64 syn_rate SEC(".data") = 100;
__u64 syn_burst SEC(".data") = 20;
__u64 acl_src_stats_on SEC(".data") = 1;

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct leap_acl_key);
	__type(value, struct leap_acl_rule);
} acl_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct leap_acl_src);
	__type(value, struct leap_acl_src_count);
} acl_src_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct leap_acl_src);
	__type(value, struct leap_acl_syn);
} acl_syn SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LEAP_ACL_TOTALS);
	__type(key, __u32);
	__type(value, __u64);
} acl_totals SEC(".maps");

struct vlan_hdr_ {
	__be16 tci;
	__be16 proto;
};

struct ipv6_ext_ {
	__u8 nexthdr;
	__u8 len; /* 8-byte units beyond the first 8 (fragment header: reserved) */
	__be16 frag_off;
};

static __always_inline int total(__u32 idx, int verdict)
{
	__u64 *c = bpf_map_lookup_elem(&acl_totals, &idx);

	if (c)
		*c += 1; /* this CPU's slot: no other writer */
	return verdict;
}

static __always_inline bool port_guarded(__u16 port)
{
	if (!port)
		return false;
#pragma unroll
	for (int i = 0; i < LEAP_ACL_PORTS; i++)
		if (acl_ports[i] == port)
			return true;
	return false;
}

/* This CPU's counters for src, created on first sight (NULL if the map refuses). */
static __always_inline struct leap_acl_src_count *src_count(const struct leap_acl_src *src)
{
	struct leap_acl_src_count zero = {}, *c;

	if (!acl_src_stats_on)
		return NULL;
	c = bpf_map_lookup_elem(&acl_src_stats, src);
	if (c)
		return c;
	bpf_map_update_elem(&acl_src_stats, src, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&acl_src_stats, src);
}

/* GCRA: 1 admits the SYN (and charges it), 0 drops it. */
static __always_inline int syn_admit(const struct leap_acl_src *src)
{
	__u64 rate = syn_rate, burst = syn_burst, now, interval, tau, old, tat;
	struct leap_acl_syn *b;

	if (!rate)
		return 1;
	if (rate > ACL_NS_PER_SEC)
		rate = ACL_NS_PER_SEC;
	if (!burst)
		burst = 1;
	interval = ACL_NS_PER_SEC / rate;
	tau = interval * (burst - 1);
	now = bpf_ktime_get_ns();
	b = bpf_map_lookup_elem(&acl_syn, src);
	if (!b) {
		struct leap_acl_syn fresh = { .tat_ns = now + interval };

		/* First SYN of this source: admitted; a racing first SYN falls through. */
		if (!bpf_map_update_elem(&acl_syn, src, &fresh, BPF_NOEXIST))
			return 1;
		b = bpf_map_lookup_elem(&acl_syn, src);
		if (!b)
			return 0;
	}
#pragma unroll
	for (int i = 0; i < 2; i++) {
		old = b->tat_ns;
		tat = old > now ? old : now;
		if (tat - now > tau)
			return 0;
		if (__sync_val_compare_and_swap(&b->tat_ns, old, tat + interval) == old)
			return 1;
	}
	return 0;
}

/* The decision for a TCP segment from src to a guarded port. */
static __always_inline int check(const struct leap_acl_src *src, const struct tcphdr *th)
{
	struct leap_acl_key key = { .prefixlen = 128 };
	struct leap_acl_src_count *c = src_count(src);
	bool syn = th->syn && !th->ack;

	__builtin_memcpy(key.addr, src->addr, sizeof(key.addr));
	if (c && syn)
		c->syns++;
	if (!bpf_map_lookup_elem(&acl_allow, &key)) {
		if (c)
			c->dropped++;
		return total(LEAP_ACL_DROPPED, XDP_DROP);
	}
	if (syn && !syn_admit(src)) {
		if (c)
			c->syn_dropped++;
		return total(LEAP_ACL_SYN_DROPPED, XDP_DROP);
	}
	if (c)
		c->passed++;
	return total(LEAP_ACL_PASSED, XDP_PASS);
}

/* TCP at l4 (from src): guarded port -> check(), else pass. */
static __always_inline int tcp(void *l4, void *end, const struct leap_acl_src *src)
{
	struct tcphdr *th = l4;

	if ((void *)(th + 1) > end)
		return total(LEAP_ACL_MALFORMED, XDP_DROP);
	if (!port_guarded(bpf_ntohs(th->dest)))
		return total(LEAP_ACL_OTHER, XDP_PASS);
	return check(src, th);
}

static __always_inline int ipv4(void *p, void *end)
{
	struct iphdr *ip = p;
	struct leap_acl_src src = {};
	__u32 hl;

	if ((void *)(ip + 1) > end)
		return total(LEAP_ACL_OTHER,
			     XDP_PASS); /* not even an IP header: the stack's call */
	if (ip->protocol != IPPROTO_TCP)
		return total(LEAP_ACL_OTHER, XDP_PASS);
	if (ip->frag_off & bpf_htons(0x1fff))
		return total(LEAP_ACL_OTHER, XDP_PASS); /* a non-first fragment */
	hl = ip->ihl * 4;
	if (hl < sizeof(*ip))
		return total(LEAP_ACL_MALFORMED, XDP_DROP);
	src.addr[10] = 0xff;
	src.addr[11] = 0xff;
	__builtin_memcpy(&src.addr[12], &ip->saddr, 4);
	return tcp(p + hl, end, &src);
}

static __always_inline bool is_v6_ext(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
	       nh == IPPROTO_FRAGMENT;
}

static __always_inline int ipv6(void *p, void *end)
{
	struct ipv6hdr *ip6 = p;
	struct leap_acl_src src;
	__u8 nh;

	if ((void *)(ip6 + 1) > end)
		return total(LEAP_ACL_OTHER, XDP_PASS);
	__builtin_memcpy(src.addr, &ip6->saddr, sizeof(src.addr));
	nh = ip6->nexthdr;
	p = ip6 + 1;
#pragma unroll
	for (int i = 0; i < ACL_V6_EXT_MAX; i++) {
		struct ipv6_ext_ *ext = p;

		if (!is_v6_ext(nh))
			break;
		if ((void *)(ext + 1) > end)
			return total(LEAP_ACL_MALFORMED, XDP_DROP);
		if (nh == IPPROTO_FRAGMENT) {
			if (ext->frag_off & bpf_htons(0xfff8))
				return total(LEAP_ACL_OTHER, XDP_PASS); /* a non-first fragment */
			p += 8;
		} else {
			p += ((__u32)ext->len + 1) * 8;
		}
		nh = ext->nexthdr;
	}
	if (nh == IPPROTO_TCP)
		return tcp(p, end, &src);
	if (is_v6_ext(nh))
		return total(LEAP_ACL_MALFORMED, XDP_DROP); /* a longer chain than we parse */
	return total(LEAP_ACL_OTHER, XDP_PASS);
}

SEC("xdp")
int fabric_acl(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *p = eth + 1;
	__be16 proto;

	if (p > end)
		return total(LEAP_ACL_OTHER, XDP_PASS);
	proto = eth->h_proto;
#pragma unroll
	for (int i = 0; i < ACL_VLAN_MAX; i++) {
		struct vlan_hdr_ *vh = p;

		if (proto != ETH_P_8021Q_BE && proto != ETH_P_8021AD_BE)
			break;
		if ((void *)(vh + 1) > end)
			return total(LEAP_ACL_OTHER, XDP_PASS);
		proto = vh->proto;
		p = vh + 1;
	}
	if (proto == bpf_htons(ETH_P_IP))
		return ipv4(p, end);
	if (proto == bpf_htons(ETH_P_IPV6))
		return ipv6(p, end);
	return total(LEAP_ACL_OTHER, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
