/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared layouts of the storage services in policies/: the value structs of
 * their maps and of their table knobs, and the sizes those are built with.
 * Struct definitions and constants only, so it compiles both into the
 * policies (clang -target bpf) and into leapd, leapctl and the tests that
 * render the maps. Every struct is made of naturally aligned fixed-width
 * fields with explicit padding, so the BPF and the host layouts agree.
 *
 * Changing a layout or a size here changes a pinned map's shape: leapd then
 * refuses to reuse the old pin on a live replace (by design), so bump with
 * care and say so in the commit.
 */
#ifndef LEAPIO_POLICIES_H
#define LEAPIO_POLICIES_H

#include <linux/types.h>

#include "leapio/policy.h"

/* Tenants are controllers: ctx->ctrl_id indexes every per-tenant array. */
#define LEAP_TENANTS 64
/* "Any" in a match field. */
#define LEAP_ANY     0xffffffffu

/* ---- prio.bpf.c --------------------------------------------------------- */
/* Rules in the table (the rule_*[] knobs of prio.bpf.c). */
#define LEAP_PRIO_RULES 16

/* prio_counts[class]: chain runs classified into the class. */
struct leap_prio_count {
	__u64 ios;
	__u64 bytes;
};

/* ---- isolation.bpf.c ---------------------------------------------------- */
/* Token scale: tokens are in units of 1e-9 I/O and 1e-9 byte. */
#define LEAP_ISO_SCALE	      1000000000ull
/* Rates above this are clamped to it (keeps the fixed-point sums in 64 bits). */
#define LEAP_ISO_RATE_MAX     (1ull << 33)
/* Burst bounds, in ms. */
#define LEAP_ISO_BURST_MS_MAX 1000

/* iso_bucket[tenant]: both buckets, refilled up to last_ns. */
struct leap_iso_bucket {
	__u64 io_tokens;   /* 1e-9 I/O */
	__u64 byte_tokens; /* 1e-9 byte */
	__u64 last_ns;	   /* ctx->now_ns of the last refill */
};

/* iso_counts[tenant] */
struct leap_iso_count {
	__u64 passed;	    /* admitted by the rate check (then passed or remapped) */
	__u64 deferred;	    /* DEFER verdicts (a command deferred twice counts twice) */
	__u64 out_of_range; /* completed with LBA Out of Range by the area check */
	__u64 invalid;	    /* DSM completed with Invalid Field because an area is set */
};

/* ---- snapshot.bpf.c ----------------------------------------------------- */
/*
 * The block bitmap covers blocks [0, LEAP_SNAP_BLOCKS) of the live namespace
 * (2^24: 8 GiB of 512 B blocks, 64 GiB of 4 KiB blocks; a 2 MiB map).
 */
#define LEAP_SNAP_BLOCKS (1u << 24)
#define LEAP_SNAP_WORDS	 (LEAP_SNAP_BLOCKS / 64)

/* snap_counts[0] */
/* cookie[1] of a write the submit hook sent to the overlay ("SNAPOVLY"); marked at completion. */
#define LEAP_SNAP_COOKIE 0x534e41504f564c59ull

struct leap_snap_count {
	__u64 write_redirected; /* live writes / write zeroes sent to the overlay */
	__u64 read_redirected;	/* live reads wholly served by the overlay */
	__u64 read_passed;	/* live reads wholly served by the base */
	__u64 read_split;	/* SPLIT verdicts (one per run boundary) */
	__u64 dsm_dropped;	/* live deallocates completed without effect */
	__u64 write_protected;	/* snapshot-namespace writes refused */
	__u64 beyond_bitmap;	/* live writes past LEAP_SNAP_BLOCKS failed */
};

/* ---- stats.bpf.c -------------------------------------------------------- */
#define LEAP_STATS_LAT_BUCKETS 64

/* stats_io[tenant] */
struct leap_stats_io {
	__u64 reads;  /* Read */
	__u64 writes; /* Write */
	__u64 other;  /* everything else: Flush, DSM, Write Zeroes, Compare, ... */
	__u64 read_bytes;
	__u64 write_bytes;
	__u64 errors; /* completions with status != 0 */
	__u64 lat_ns_sum;
};

/*
 * stats_lat[tenant]: bucket[i] counts completions with latency in
 * [2^i, 2^(i+1)) ns; bucket[0] also takes 0 and 1 ns.
 */
struct leap_stats_lat {
	__u64 bucket[LEAP_STATS_LAT_BUCKETS];
};

/* ---- fabric_acl.bpf.c (XDP) --------------------------------------------- */
/* Destination ports the ACL guards (the acl_ports[] knob; 0 = unused slot). */
#define LEAP_ACL_PORTS 8

/*
 * acl_allow (LPM trie) key: prefixlen + a 16-byte address. IPv4 is stored
 * IPv4-mapped (::ffff:a.b.c.d), so a.b.c.d/n is prefixlen 96 + n and one
 * trie serves both families.
 */
struct leap_acl_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* acl_allow value: reserved, 0. */
struct leap_acl_rule {
	__u32 flags;
	__u32 pad;
};

/* acl_src_stats / acl_syn key: a source address (IPv4-mapped for IPv4). */
struct leap_acl_src {
	__u8 addr[16];
};

/* acl_src_stats[source] (per CPU): packets to a guarded port, by outcome. */
struct leap_acl_src_count {
	__u64 passed;	   /* allowed and within the SYN rate */
	__u64 dropped;	   /* source not in the allow-list */
	__u64 syn_dropped; /* allowed source, SYN beyond its rate */
	__u64 syns;	   /* SYNs seen (passed or not) */
};

/* acl_syn[source]: the SYN token bucket, as GCRA's theoretical arrival time. */
struct leap_acl_syn {
	__u64 tat_ns; /* bpf_ktime_get_ns() time at which the bucket is full again */
};

/* acl_totals[i] (per CPU) */
enum leap_acl_total {
	LEAP_ACL_PASSED,      /* to a guarded port, passed */
	LEAP_ACL_DROPPED,     /* to a guarded port, source not allowed */
	LEAP_ACL_SYN_DROPPED, /* to a guarded port, SYN beyond the rate */
	LEAP_ACL_MALFORMED,   /* dropped: TCP or IPv6 header chain that cannot be parsed */
	LEAP_ACL_OTHER,	      /* not for a guarded port: passed untouched */
	LEAP_ACL_TOTALS,
};

#endif /* LEAPIO_POLICIES_H */
