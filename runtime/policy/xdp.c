// SPDX-License-Identifier: BSD-3-Clause
/*
 * XDP links (xdp.h): a policy's kernel-run SEC("xdp") program on an
 * interface, through a BPF link leapd owns. The kernel does the work —
 * verification at load (loader/), execution per frame, the atomic program
 * swap on replace — so this file keeps the links, turns the kernel's
 * answers into reasons a user can act on, and holds BPF_ENABLE_STATS
 * while any link exists.
 */
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "policy/xdp.h"

static struct leap_xdp_link *xlinks;
static int stats_fd = -1;

static const char *const mode_names[] = {
	[LEAP_XDP_AUTO] = "auto",
	[LEAP_XDP_NATIVE] = "native",
	[LEAP_XDP_GENERIC] = "generic",
};

int leap_xdp_mode_parse(const char *s)
{
	for (int m = LEAP_XDP_AUTO; m <= LEAP_XDP_GENERIC; m++)
		if (!strcmp(s, mode_names[m]))
			return m;
	return -EINVAL;
}

const char *leap_xdp_mode_name(enum leap_xdp_mode mode)
{
	return mode <= LEAP_XDP_GENERIC ? mode_names[mode] : "?";
}

static uint32_t mode_flags(enum leap_xdp_mode mode)
{
	switch (mode) {
	case LEAP_XDP_NATIVE:
		return XDP_FLAGS_DRV_MODE;
	case LEAP_XDP_GENERIC:
		return XDP_FLAGS_SKB_MODE;
	default:
		return 0;
	}
}

static int prog_fd_of(const struct leap_obj *obj)
{
	int idx = leap_obj_find_prog(obj, LEAP_SEC_XDP);

	return idx < 0 ? idx : leap_obj_prog_kernel_fd(obj, (uint32_t)idx);
}

/* The interface's driver name (ethtool), or "" when it does not say. */
static void driver_name(const char *ifname, char *buf, size_t sz)
{
	struct ethtool_drvinfo di = { .cmd = ETHTOOL_GDRVINFO };
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	memset(buf, 0, sz);
	if (s < 0)
		return;
	memcpy(ifr.ifr_name, ifname, strnlen(ifname, sizeof(ifr.ifr_name) - 1));
	ifr.ifr_data = (void *)&di;
	if (ioctl(s, SIOCETHTOOL, &ifr) == 0)
		memcpy(buf, di.driver, strnlen(di.driver, LEAP_MIN(sz - 1, sizeof(di.driver))));
	close(s);
}

/* BPF_ENABLE_STATS is held while links exist: it costs every BPF program on the host. */
static void stats_hold(void)
{
	if (stats_fd >= 0)
		return;
	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats_fd < 0)
		LEAP_WARN("xdp", "cannot enable BPF run-time statistics: %s (run counts stay 0)",
			  strerror(errno));
}

static void stats_release(void)
{
	if (xlinks || stats_fd < 0)
		return;
	close(stats_fd);
	stats_fd = -1;
}

/* Why bpf_link_create() refused, in words the operator can act on. */
static int explain_attach(int rc, const char *ifname, uint32_t ifindex, enum leap_xdp_mode mode,
			  char *err, size_t errsz)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	char drv[32];

	switch (rc) {
	case -EOPNOTSUPP:
		driver_name(ifname, drv, sizeof(drv));
		if (mode == LEAP_XDP_NATIVE) {
			snprintf(err, errsz,
				 "interface %s: its driver%s%s%s has no native XDP support; attach "
				 "with --mode generic",
				 ifname, drv[0] ? " (" : "", drv, drv[0] ? ")" : "");
			break;
		}
		snprintf(err, errsz, "interface %s: the kernel cannot run XDP there (%s)", ifname,
			 strerror(-rc));
		break;
	case -EBUSY:
	case -EEXIST:
		if (!bpf_xdp_query(ifindex, 0, &q) && q.prog_id) {
			snprintf(err, errsz,
				 "interface %s already runs XDP program %u (%s), which leapd did "
				 "not attach; remove it first (ip link set dev %s xdp off, or for "
				 "a link, e.g. one pinned by an earlier leapd: bpftool link "
				 "detach)",
				 ifname, q.prog_id,
				 q.attach_mode == XDP_ATTACHED_SKB   ? "generic"
				 : q.attach_mode == XDP_ATTACHED_DRV ? "native"
								     : "several modes",
				 ifname);
			rc = -EBUSY;
			break;
		}
		/* fall through */
	default:
		snprintf(err, errsz, "interface %s: the kernel refused the XDP link (%s mode): %s",
			 ifname, leap_xdp_mode_name(mode), strerror(-rc));
	}
	return rc;
}

int leap_xdp_attach(struct leap_policy *p, const char *ifname, enum leap_xdp_mode mode, bool pin,
		    char *err, size_t errsz, struct leap_xdp_link **out)
{
	LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = mode_flags(mode));
	struct bpf_link_info info = { 0 };
	__u32 len = sizeof(info);
	struct leap_xdp_link *l, **tail;
	uint32_t ifindex;
	int prog_fd, fd, rc;

	*out = NULL;
	prog_fd = prog_fd_of(p->obj);
	if (prog_fd < 0) {
		snprintf(err, errsz, "policy '%s' has no SEC(\"%s\") program", p->name,
			 LEAP_SEC_XDP);
		return -ENOENT;
	}
	if (!ifname[0] || strlen(ifname) >= IF_NAMESIZE) {
		snprintf(err, errsz, "bad interface name '%s'", ifname);
		return -EINVAL;
	}
	ifindex = if_nametoindex(ifname);
	if (!ifindex) {
		snprintf(err, errsz, "interface %s does not exist (in leapd's network namespace)",
			 ifname);
		return -ENODEV;
	}
	for (l = xlinks; l; l = l->next)
		if (l->ifindex == ifindex) {
			snprintf(err, errsz,
				 "interface %s already has policy '%s' attached (link %u); replace "
				 "that policy or detach it first",
				 ifname, l->pol->name, l->id);
			return -EEXIST;
		}
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	fd = bpf_link_create(prog_fd, (int)ifindex, BPF_XDP, &lo);
	if (fd < 0) {
		rc = explain_attach(-errno, ifname, ifindex, mode, err, errsz);
		free(l);
		return rc;
	}
	if (pin) {
		int n = snprintf(l->pin_path, sizeof(l->pin_path), "%s/xdp_link_%s", p->pin_dir,
				 ifname);

		if (n < 0 || (size_t)n >= sizeof(l->pin_path))
			errno = ENAMETOOLONG;
		if (n < 0 || (size_t)n >= sizeof(l->pin_path) || bpf_obj_pin(fd, l->pin_path)) {
			rc = -errno;
			snprintf(err, errsz, "cannot pin the link at %s: %s", l->pin_path,
				 strerror(-rc));
			close(fd); /* the last reference: the kernel detaches */
			free(l);
			return rc;
		}
	}
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		l->kernel_id = info.id;
	l->id = leap_policy_link_id_alloc();
	l->pol = p;
	snprintf(l->ifname, sizeof(l->ifname), "%s", ifname);
	l->ifindex = ifindex;
	l->mode = mode;
	l->fd = fd;
	for (tail = &xlinks; *tail; tail = &(*tail)->next)
		;
	*tail = l;
	p->links++;
	stats_hold();
	LEAP_INFO("xdp", "policy '%s' attached to %s (%s mode, kernel link %u%s%s)", p->name,
		  ifname, leap_xdp_mode_name(mode), l->kernel_id, pin ? ", pinned at " : "",
		  pin ? l->pin_path : "");
	*out = l;
	return 0;
}

static void unlink_from_list(struct leap_xdp_link *l)
{
	struct leap_xdp_link **pp;

	for (pp = &xlinks; *pp && *pp != l; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = l->next;
}

void leap_xdp_detach(struct leap_xdp_link *l)
{
	unlink_from_list(l);
	if (l->pin_path[0] && unlink(l->pin_path))
		LEAP_WARN("xdp", "link %u: cannot unpin %s: %s", l->id, l->pin_path,
			  strerror(errno));
	/* Detach now, even if another process (bpftool) holds a reference to the link. */
	if (bpf_link_detach(l->fd))
		LEAP_WARN("xdp", "link %u on %s: detach failed: %s", l->id, l->ifname,
			  strerror(errno));
	close(l->fd);
	l->pol->links--;
	LEAP_INFO("xdp", "policy '%s' detached from %s", l->pol->name, l->ifname);
	free(l);
	stats_release();
}

struct leap_xdp_link *leap_xdp_link_find(uint32_t id)
{
	struct leap_xdp_link *l;

	for (l = xlinks; l && l->id != id; l = l->next)
		;
	return l;
}

struct leap_xdp_link *leap_xdp_link_next(const struct leap_xdp_link *prev)
{
	return prev ? prev->next : xlinks;
}

int leap_xdp_link_stats(const struct leap_xdp_link *l, struct leap_xdp_link_stats *out)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct bpf_link_info li = { 0 };
	struct bpf_prog_info pi = { 0 };
	__u32 len = sizeof(li);
	int fd;

	memset(out, 0, sizeof(*out));
	out->attached = "unknown";
	out->stats_on = stats_fd >= 0;
	if (bpf_obj_get_info_by_fd(l->fd, &li, &len))
		return -errno;
	out->prog_id = li.prog_id;
	if (!bpf_xdp_query((int)l->ifindex, 0, &q)) {
		if (q.drv_prog_id == li.prog_id)
			out->attached = "native";
		else if (q.skb_prog_id == li.prog_id)
			out->attached = "generic";
	}
	fd = bpf_prog_get_fd_by_id(li.prog_id);
	if (fd < 0)
		return -errno;
	len = sizeof(pi);
	if (!bpf_obj_get_info_by_fd(fd, &pi, &len)) {
		out->run_cnt = pi.run_cnt;
		out->run_time_ns = pi.run_time_ns;
	}
	close(fd);
	return 0;
}

int leap_xdp_replace(struct leap_policy *p, struct leap_obj *from, struct leap_obj *to, char *err,
		     size_t errsz)
{
	struct leap_xdp_link *l, *failed = NULL;
	int old_fd = -1, new_fd = -1, rc = 0;

	for (l = xlinks; l; l = l->next) {
		if (l->pol != p)
			continue;
		if (old_fd < 0) {
			old_fd = prog_fd_of(from);
			new_fd = prog_fd_of(to);
		}
		if (new_fd < 0) {
			snprintf(err, errsz,
				 "the new object has no SEC(\"%s\") program, and policy '%s' is "
				 "attached to %s (link %u)",
				 LEAP_SEC_XDP, p->name, l->ifname, l->id);
			return -ENOENT;
		}
	}
	if (old_fd < 0)
		return 0; /* no XDP link */
	for (l = xlinks; l; l = l->next) {
		LIBBPF_OPTS(bpf_link_update_opts, uo, .flags = BPF_F_REPLACE,
			    .old_prog_fd = (__u32)old_fd);

		if (l->pol != p)
			continue;
		/* One pointer swap in the kernel: each frame meets the old or the new program. */
		if (bpf_link_update(l->fd, new_fd, &uo)) {
			rc = -errno;
			snprintf(err, errsz,
				 "link %u on %s: the kernel refused the program swap: %s", l->id,
				 l->ifname, strerror(-rc));
			failed = l;
			break;
		}
	}
	if (!failed)
		return 0;
	for (l = xlinks; l != failed; l = l->next) {
		LIBBPF_OPTS(bpf_link_update_opts, uo, .flags = BPF_F_REPLACE,
			    .old_prog_fd = (__u32)new_fd);

		if (l->pol == p && bpf_link_update(l->fd, old_fd, &uo))
			LEAP_ERR("xdp", "link %u on %s: cannot swap back to the old program: %s",
				 l->id, l->ifname, strerror(errno));
	}
	return rc;
}

void leap_xdp_cleanup(void)
{
	while (xlinks) {
		struct leap_xdp_link *l = xlinks;

		xlinks = l->next;
		/*
		 * Closing the last descriptor of an unpinned link detaches it;
		 * a pinned link stays attached, as the operator asked.
		 */
		close(l->fd);
		l->pol->links--;
		free(l);
	}
	stats_release();
}
