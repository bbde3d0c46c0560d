/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * XDP links: a policy's SEC("xdp") program attached to a network interface
 * through a BPF link that leapd owns. The kernel verifies and runs these
 * programs (the queue hooks' programs run in leapd); leapd only holds the
 * link, swaps its program on replace and reads the kernel's counters.
 *
 *  - Attach creates the link with bpf_link_create(BPF_XDP) in the mode
 *    asked for (auto: the driver's if it has one, else generic). The link
 *    lives as long as leapd holds its descriptor: detach, and leapd's exit
 *    or crash, take the program off the interface. Only a link attached
 *    with `pin` is pinned (<policy pin dir>/xdp_link_<iface>) and outlives
 *    leapd; detach unpins it.
 *  - Replace moves every link of a policy to the new object's program with
 *    bpf_link_update(BPF_F_REPLACE): the kernel swaps one program pointer
 *    for the other, so every packet meets either the old or the new
 *    program, never none. The new object reuses the policy's pinned maps
 *    (loader), so allow-lists and counters carry over.
 *  - While any XDP link exists leapd holds BPF_ENABLE_STATS(RUN_TIME), so
 *    the kernel counts run_cnt and run_time_ns of every BPF program on the
 *    host (two clock reads per run, for all programs) — which list and
 *    show report per link.
 *
 * Control thread only, like policy.h.
 */
#ifndef LEAPIO_RUNTIME_POLICY_XDP_H
#define LEAPIO_RUNTIME_POLICY_XDP_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "policy/policy.h"

/* The section of a policy's kernel-run XDP program. */
#define LEAP_SEC_XDP "xdp"

enum leap_xdp_mode {
	LEAP_XDP_AUTO,	  /* the driver's native XDP if it has one, else generic */
	LEAP_XDP_NATIVE,  /* XDP_FLAGS_DRV_MODE: fails on a driver without native XDP */
	LEAP_XDP_GENERIC, /* XDP_FLAGS_SKB_MODE: after the skb is built, any driver */
};

struct leap_xdp_link {
	uint32_t id; /* from the policy links' id space (leapctl policy detach --link) */
	struct leap_policy *pol;
	char ifname[IF_NAMESIZE];
	uint32_t ifindex;
	enum leap_xdp_mode mode; /* as asked */
	int fd;			 /* the BPF link */
	uint32_t kernel_id;	 /* `bpftool link show id N` */
	char pin_path[512];	 /* "" unless pinned */
	struct leap_xdp_link *next;
};

struct leap_xdp_link_stats {
	uint32_t prog_id; /* the program the link runs now */
	uint64_t run_cnt; /* kernel counters of that program (BPF_ENABLE_STATS) */
	uint64_t run_time_ns;
	const char *attached; /* "native", "generic" or "unknown": what the kernel reports */
	bool stats_on;	      /* leapd holds BPF_ENABLE_STATS (else the counters stand still) */
};

/* "auto", "native", "generic" -> mode, or -EINVAL. */
int leap_xdp_mode_parse(const char *s);
const char *leap_xdp_mode_name(enum leap_xdp_mode mode);

/*
 * Attach p's SEC("xdp") program to interface `ifname` (in leapd's network
 * namespace). Errors, with the reason in err: -ENOENT (no XDP program),
 * -ENODEV (no such interface), -EEXIST (leapd already has a link there),
 * -EOPNOTSUPP (native mode on a driver without it), -EBUSY (the interface
 * runs an XDP program leapd did not attach), or the kernel's -errno. On
 * failure nothing is attached or pinned.
 */
int leap_xdp_attach(struct leap_policy *p, const char *ifname, enum leap_xdp_mode mode, bool pin,
		    char *err, size_t errsz, struct leap_xdp_link **out);
/* Take the program off the interface (unpinning a pinned link) and free l. */
void leap_xdp_detach(struct leap_xdp_link *l);
struct leap_xdp_link *leap_xdp_link_find(uint32_t id);
struct leap_xdp_link *leap_xdp_link_next(const struct leap_xdp_link *prev);
/* The kernel's view of the link: program id, mode, run count and time. 0 or -errno. */
int leap_xdp_link_stats(const struct leap_xdp_link *l, struct leap_xdp_link_stats *out);

/*
 * Move every XDP link of p from `from`'s program to `to`'s, atomically per
 * link (bpf_link_update with BPF_F_REPLACE). -ENOENT when p has XDP links
 * and `to` has no XDP program. On failure the links already moved are
 * moved back, and the reason is in err.
 */
int leap_xdp_replace(struct leap_policy *p, struct leap_obj *from, struct leap_obj *to, char *err,
		     size_t errsz);

/* leapd exits: close every link (pinned ones stay attached) and the stats descriptor. */
void leap_xdp_cleanup(void);

#endif /* LEAPIO_RUNTIME_POLICY_XDP_H */
