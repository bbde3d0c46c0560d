// SPDX-License-Identifier: BSD-3-Clause
/*
 * Admission control for the shared-memory front-end: what one tenant may
 * make leapd hold. Connections are counted per uid (SO_PEERCRED at accept)
 * and those that have not attached yet are limited and timed out, so no
 * one can hoard the listener. Every descriptor leapd keeps for a tenant
 * (socket, area, kick, vector pipes, region memfds) is charged to its uid
 * against a quota, and all tenants together against a budget that leaves
 * the rest of RLIMIT_NOFILE to leapd itself (control socket, backends,
 * policies). Everything is checked before a descriptor is created, and a
 * message can bring at most one descriptor in (shm_recv()), so a tenant
 * cannot push leapd into EMFILE.
 *
 * All of it runs on the listener thread, which owns the connection list;
 * counting walks that list (at most max_conns entries, control path only).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "leapio/common.h"
#include "frontend/shm/shm.h"

void leap_shm_limits_default(struct leap_shm_limits *lim)
{
	struct rlimit rl = { 0 };
	uint64_t soft = 1024, reserve;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		soft = rl.rlim_cur;
	/* A quarter for leapd's own use, within [64, 1024]. */
	reserve = LEAP_MIN(LEAP_MAX(soft / 4, 64), 1024);
	*lim = (struct leap_shm_limits){
		.max_conns = LEAP_SHM_MAX_CONNS,
		.pending_per_uid = 16,
		.conns_per_uid = 256,
		.handshake_ms = 5000,
		.fd_budget = soft > reserve ? (uint32_t)LEAP_MIN(soft - reserve, UINT32_MAX) : 0,
	};
	/*
	 * One uid gets a quarter of the budget, and at least what one attach
	 * with every vector and region needs at its peak (the vector pipes'
	 * read ends are ours until the reply is sent), so a lone tenant is
	 * never refused what the ABI promises.
	 */
	lim->fd_quota =
	    LEAP_MAX(lim->fd_budget / 4, 2 * LEAP_SHM_MAX_VECTORS + LEAP_SHM_MAX_REGIONS + 3);
}

uint32_t shm_conn_fds(const struct shm_conn *c)
{
	return (c->sock >= 0) + (c->area_fd >= 0) + (c->kick_fd >= 0) + c->nr_vectors + c->nregions;
}

int shm_admit_conn(const struct leap_shm_limits *lim, const struct shm_conn *conns, uint32_t nconns,
		   uid_t uid, char *why, size_t whysz)
{
	uint32_t pending = 0, mine = 0, fds_uid = 0, fds_all = 0;

	for (const struct shm_conn *c = conns; c; c = c->next) {
		uint32_t n = shm_conn_fds(c);

		fds_all += n;
		if (c->uid != uid)
			continue;
		mine++;
		fds_uid += n;
		if (!c->ctrl)
			pending++;
	}
	if (nconns >= lim->max_conns) {
		snprintf(why, whysz, "leapd serves %u tenant connections, its limit", nconns);
		return -EUSERS;
	}
	if (pending >= lim->pending_per_uid) {
		snprintf(why, whysz, "uid %u has %u connections that have not attached (limit %u)",
			 (unsigned)uid, pending, lim->pending_per_uid);
		return -EUSERS;
	}
	if (mine >= lim->conns_per_uid) {
		snprintf(why, whysz, "uid %u has %u connections (limit %u)", (unsigned)uid, mine,
			 lim->conns_per_uid);
		return -EUSERS;
	}
	if (fds_uid + 1 > lim->fd_quota || fds_all + 1 > lim->fd_budget) {
		snprintf(why, whysz,
			 "descriptor quota: uid %u holds %u of %u, all tenants %u of %u",
			 (unsigned)uid, fds_uid, lim->fd_quota, fds_all, lim->fd_budget);
		return -EMFILE;
	}
	return 0;
}

int shm_admit_fds(const struct leap_shm_limits *lim, const struct shm_conn *conns,
		  const struct shm_conn *self, uint32_t need, char *why, size_t whysz)
{
	uint32_t fds_uid = 0, fds_all = 0;

	for (const struct shm_conn *c = conns; c; c = c->next) {
		uint32_t n = shm_conn_fds(c);

		fds_all += n;
		if (c->uid == self->uid)
			fds_uid += n;
	}
	if (fds_uid + need > lim->fd_quota || fds_all + need > lim->fd_budget) {
		snprintf(why, whysz,
			 "descriptor quota: uid %u holds %u of %u (all tenants %u of %u), "
			 "this needs %u more",
			 (unsigned)self->uid, fds_uid, lim->fd_quota, fds_all, lim->fd_budget,
			 need);
		return -EMFILE;
	}
	return 0;
}

ssize_t shm_recv(int sock, void *buf, size_t len, int *fd, int *flags)
{
	/*
	 * Room for exactly one descriptor: the kernel closes any beyond it and
	 * sets MSG_CTRUNC. CMSG_LEN, not CMSG_SPACE: the kernel counts the
	 * padding of CMSG_SPACE as room for a second int.
	 */
	char cbuf[CMSG_SPACE(sizeof(int))] __attribute__((aligned(8)));
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = CMSG_LEN(sizeof(int)) };
	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

	*fd = -1;
	*flags = 0;
	if (n < 0)
		return -errno;
	*flags = mh.msg_flags;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
		    cm->cmsg_len < CMSG_LEN(0))
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int got;

			memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*fd < 0) {
				*fd = got;
				continue;
			}
			/* Cannot happen with this buffer; never leak one anyway. */
			close(got);
			*flags |= MSG_CTRUNC;
		}
	}
	return n;
}
