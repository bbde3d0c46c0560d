// SPDX-License-Identifier: BSD-3-Clause
/*
 * The vhost-user-blk front-end's control side: a thread that accepts a
 * vhost-user front-end (QEMU's vhost-user-blk device, qemu's test tools,
 * our own test client) on a Unix stream socket, claims the listener's
 * controller for it, reads its messages whole (vhost_blk_msg.c carries them
 * out) and answers them.
 *
 * The front-end is believed in nothing: a message must arrive whole within
 * a timeout, with the version, payload size and descriptor count its type
 * fixes (vhost_blk_msg.c checks what it carries). A malformed message closes the
 * connection; a refused request is answered with REPLY_ACK when asked and
 * otherwise closes the connection too, since the front-end cannot learn of
 * it any other way. Either way only this guest's device is affected.
 *
 * The reactor owns a running ring; this thread changes ring state only
 * while the ring is stopped (after a drain it waits for), and talks to the
 * reactor only through messages, as the shm listener does.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <linux/posix_acl.h>
#include <linux/posix_acl_xattr.h>

#include <jansson.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "core/reactor.h"
#include "frontend/vhost_blk/vhost_blk.h"

#define MAX_CONNS	8    /* one device per listener; extras are turned away at once */
#define IO_TIMEOUT_MS	2000 /* a message must arrive whole within this */
#define MAX_PEER_GROUPS 64   /* supplementary groups of a peer that count for access */

struct vb_listener {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char ctrl[64];
	uint32_t nsid;
	uint32_t num_queues;
	int lfd;
	int stop_fd;
	pthread_t thread;
	struct leap_reactor **reactors;
	uint32_t nreactors;
	struct vb_conn *conns;
	uint32_t nconns;
	/* For info (any thread): the attached device's state, updated by this thread. */
	struct vb_conn *attached;
	pthread_mutex_t info_lock;
	uint64_t connections, refused, protocol_errors, denied;
	/* Devices that left, summed (the attached one's live counters are added in info). */
	uint64_t past_requests, past_kicks, past_notify_idles;
};

/* ---- calls into the reactor --------------------------------------------- */

struct sync_call {
	sem_t done;
	struct vb_conn *c;
	uint32_t q;
	uint32_t mask;
	bool detach;
	int fd;
	struct vb_mem *mem;
	int rc;
};

static void call_sync(struct leap_reactor *r, void (*fn)(void *), struct sync_call *sc)
{
	int rc;

	sem_init(&sc->done, 0, 0);
	while ((rc = leap_reactor_send_msg(r, fn, sc)) == -EAGAIN)
		usleep(100);
	if (rc) {
		sc->rc = rc;
		sem_destroy(&sc->done);
		return;
	}
	while (sem_wait(&sc->done) && errno == EINTR)
		;
	sem_destroy(&sc->done);
}

static void do_start(void *arg)
{
	struct sync_call *sc = arg;

	vb_conn_mem_update(sc->c);
	sc->rc = vb_conn_start(sc->c);
	sem_post(&sc->done);
}

static void do_vq_start(void *arg)
{
	struct sync_call *sc = arg;

	sc->rc = vb_vq_start(sc->c, sc->q);
	sem_post(&sc->done);
}

static void drained(void *arg)
{
	sem_post(&((struct sync_call *)arg)->done);
}

static void do_drain(void *arg)
{
	struct sync_call *sc = arg;

	sc->c->drained = drained;
	sc->c->drained_arg = sc;
	vb_conn_drain(sc->c, sc->mask, sc->detach);
}

static void do_mem(void *arg)
{
	struct sync_call *sc = arg;

	sc->c->mem = *sc->mem;
	vb_conn_mem_update(sc->c);
	sem_post(&sc->done);
}

static void do_set_call(void *arg)
{
	struct sync_call *sc = arg;

	sc->fd = vb_vq_set_call(sc->c, sc->q, sc->fd);
	sem_post(&sc->done);
}

/* Stop the queues in mask (every one with detach) once their requests completed. */
void vb_drain(struct vb_conn *c, uint32_t mask, bool detach)
{
	struct sync_call sc = { .c = c, .mask = mask, .detach = detach };

	call_sync(c->reactor, do_drain, &sc);
}

uint32_t vb_running_mask(const struct vb_conn *c)
{
	uint32_t m = 0;

	/* `running` is written by the reactor only while this thread waits for it. */
	for (uint32_t q = 0; q < c->nvq; q++)
		if (c->vq[q].running)
			m |= 1u << q;
	return m;
}

int vb_call_vq_start(struct vb_conn *c, uint32_t q)
{
	struct sync_call sc = { .c = c, .q = q };

	call_sync(c->reactor, do_vq_start, &sc);
	return sc.rc;
}

void vb_call_mem(struct vb_conn *c, struct vb_mem *mem)
{
	struct sync_call sc = { .c = c, .mem = mem };

	call_sync(c->reactor, do_mem, &sc);
}

int vb_call_set_call(struct vb_conn *c, uint32_t q, int fd)
{
	struct sync_call sc = { .c = c, .q = q, .fd = fd };

	call_sync(c->reactor, do_set_call, &sc);
	return sc.fd;
}

/* ---- socket I/O ------------------------------------------------------------- */

void vb_close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

/* One whole message (header, payload, descriptors). 0, -EPIPE (peer gone) or -EPROTO. */
static int read_msg(int sock, struct vhost_user_msg *m, int *fds, int *nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_REGIONS)];
	struct iovec iov = { &m->hdr, sizeof(m->hdr) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	ssize_t n;

	*nfds = 0;
	n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		int k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*nfds < VHOST_USER_MAX_REGIONS)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	if (n == 0)
		return -EPIPE;
	if (n < 0)
		return errno == ECONNRESET ? -EPIPE : -EPROTO;
	if ((size_t)n != sizeof(m->hdr) || (mh.msg_flags & MSG_CTRUNC))
		return -EPROTO;
	if (m->hdr.size > sizeof(m->payload))
		return -EPROTO;
	if (m->hdr.size &&
	    recv(sock, &m->payload, m->hdr.size, MSG_WAITALL) != (ssize_t)m->hdr.size)
		return -EPROTO;
	return 0;
}

int vb_send_reply(struct vb_conn *c, uint32_t request, const void *payload, uint32_t size, int fd)
{
	struct vhost_user_hdr hdr = {
		.request = request,
		.flags = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK,
		.size = size,
	};
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov[2] = { { &hdr, sizeof(hdr) }, { (void *)payload, size } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	n = sendmsg(c->sock, &mh, MSG_NOSIGNAL);
	return n == (ssize_t)(sizeof(hdr) + size) ? 0 : -EPIPE;
}

/* ---- connections ------------------------------------------------------------- */

static void conn_free(struct vb_listener *l, struct vb_conn *c)
{
	struct vb_conn **pp;

	if (c->ctrl) {
		if (c->poller)
			vb_drain(c, ~0u, true);
		for (uint32_t q = 0; q < VB_MAX_QUEUES; q++) {
			vb_vq_close_fds(&c->vq[q]);
			vb_vq_free(&c->vq[q]);
		}
		vb_mem_unmap(&c->mem);
		vb_inflight_unmap(c);
		memset(&c->ctrl->mem, 0, sizeof(c->ctrl->mem));
		LEAP_INFO("vhost", "front-end left controller '%s'", c->ctrl->name);
		leap_ctrl_detach(c->ctrl);
	}
	pthread_mutex_lock(&l->info_lock);
	if (l->attached == c) {
		l->attached = NULL;
		/* The reactor let go of the device (drained above): its counters are final. */
		for (uint32_t q = 0; q < c->nvq; q++)
			l->past_requests += c->vq[q].requests;
		l->past_kicks += c->kicks;
		l->past_notify_idles += c->notify_mode;
	}
	pthread_mutex_unlock(&l->info_lock);
	close(c->sock);
	for (pp = &l->conns; *pp && *pp != c; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = c->next;
	l->nconns--;
	free(c);
}

/* One message. 0 keeps the connection; < 0 drops it. */
static int conn_recv(struct vb_listener *l, struct vb_conn *c)
{
	struct vhost_user_msg m;
	int fds[VHOST_USER_MAX_REGIONS], nfds = 0, want, err;
	bool ack;

	memset(&m, 0, sizeof(m));
	err = read_msg(c->sock, &m, fds, &nfds);
	if (err == -EPIPE) {
		vb_close_fds(fds, nfds);
		return err;
	}
	if (err)
		goto bad;
	if ((m.hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
	    (m.hdr.flags & VHOST_USER_REPLY_MASK))
		goto bad;
	want = vb_msg_expected_size(m.hdr.request, &m.payload, m.hdr.size);
	if (want < 0 || (uint32_t)want != m.hdr.size ||
	    vb_msg_expected_fds(m.hdr.request, &m.payload) != nfds)
		goto bad;
	ack = (c->proto_features & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK)) &&
	      (m.hdr.flags & VHOST_USER_NEED_REPLY);
	err = vb_msg_handle(c, &m, fds, nfds);
	vb_close_fds(fds, nfds);
	if (err == -EPROTO || err == -EPIPE)
		goto bad_closed;
	if (err == 1)
		return 0;
	if (ack) {
		uint64_t rc = err ? 1 : 0;

		return vb_send_reply(c, m.hdr.request, &rc, sizeof(rc), -1);
	}
	if (err) {
		LEAP_WARN("vhost", "%s: request %u refused (%s) and no ack asked: disconnecting",
			  c->ctrl->name, m.hdr.request, strerror(-err));
		return err;
	}
	return 0;

bad:
	vb_close_fds(fds, nfds);
bad_closed:
	if (err == -EPIPE)
		return err;
	l->protocol_errors++;
	LEAP_WARN("vhost",
		  "%s: malformed message from the front-end (request %u, %u bytes, %d fds): "
		  "disconnecting",
		  c->ctrl ? c->ctrl->name : "-", m.hdr.request, m.hdr.size, nfds);
	return -EPROTO;
}

/*
 * Who connected: uid and pid from SO_PEERCRED, the primary gid and what
 * SO_PEERGROUPS reports (ERANGE, more than we keep: the primary alone
 * counts). 0 or -errno.
 */
static int peer_creds(int fd, struct ucred *cred, uint32_t *gids, uint32_t *ngids)
{
	gid_t g[MAX_PEER_GROUPS];
	socklen_t len = sizeof(*cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0)
		return -errno;
	gids[0] = cred->gid;
	*ngids = 1;
	len = sizeof(g);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0)
		return 0;
	for (uint32_t i = 0; i < len / sizeof(gid_t) && *ngids < MAX_PEER_GROUPS + 1; i++)
		gids[(*ngids)++] = g[i];
	return 0;
}

static void accept_one(struct vb_listener *l)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_MS / 1000,
			      .tv_usec = (IO_TIMEOUT_MS % 1000) * 1000 };
	uint32_t gids[MAX_PEER_GROUPS + 1], ngids = 0;
	struct sync_call sc = { 0 };
	struct leap_ctrl *ctrl;
	struct ucred cred;
	struct leap_ns *ns;
	struct vb_conn *c;
	int fd = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC);
	int err;

	if (fd < 0)
		return;
	l->connections++;
	err = peer_creds(fd, &cred, gids, &ngids);
	if (err)
		LEAP_WARN_RL("vhost", "%s: front-end refused: cannot tell who connected: %s",
			     l->path, strerror(-err));
	if (err || l->nconns >= MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
		l->refused++;
		close(fd);
		return;
	}
	/* A front-end that stops mid-message cannot hold this thread for longer than this. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	c->l = l;
	c->sock = fd;
	c->inflight_fd = -1;
	c->nvq = l->num_queues;
	c->nsid = l->nsid;
	for (uint32_t q = 0; q < VB_MAX_QUEUES; q++)
		c->vq[q].kick_fd = c->vq[q].call_fd = c->vq[q].err_fd = -1;
	c->next = l->conns;
	l->conns = c;
	l->nconns++;
	err = leap_ctrl_attach(l->ctrl, &ctrl);
	if (err) {
		LEAP_WARN("vhost", "%s: front-end refused: controller '%s' %s", l->path, l->ctrl,
			  err == -ENOENT ? "does not exist" : "is in use");
		goto refuse;
	}
	c->ctrl = ctrl;
	/*
	 * The controller's owners only (root always), as at an shm attach: a
	 * peer that is not one may neither use the device nor hold the claim.
	 */
	if (!leap_ctrl_access_allows(&ctrl->access, cred.uid, gids, ngids)) {
		l->denied++;
		LEAP_WARN_RL("vhost",
			     "%s: front-end refused: uid %u (pid %d) may not use controller "
			     "'%s' (not an owner)",
			     l->path, (unsigned)cred.uid, (int)cred.pid, l->ctrl);
		goto refuse;
	}
	ns = leap_ctrl_ns(ctrl, l->nsid);
	if (!ns) {
		LEAP_WARN("vhost", "%s: front-end refused: controller '%s' has no namespace %u",
			  l->path, l->ctrl, l->nsid);
		goto refuse;
	}
	c->lba_shift = ns->lba_shift;
	c->nlb = ns->nlb;
	c->reactor = l->reactors[leap_ctrl_reactor_index(ctrl->cntlid, l->nreactors)];
	sc.c = c;
	call_sync(c->reactor, do_start, &sc);
	if (sc.rc) {
		LEAP_WARN("vhost", "%s: cannot start on controller '%s': %s", l->path, l->ctrl,
			  strerror(-sc.rc));
		goto refuse;
	}
	pthread_mutex_lock(&l->info_lock);
	l->attached = c;
	pthread_mutex_unlock(&l->info_lock);
	LEAP_INFO("vhost", "front-end attached to controller '%s' namespace %u (uid %u, pid %d)",
		  ctrl->name, l->nsid, (unsigned)cred.uid, (int)cred.pid);
	return;

refuse:
	l->refused++;
	if (c->ctrl && !c->poller) {
		leap_ctrl_detach(c->ctrl);
		c->ctrl = NULL;
	}
	conn_free(l, c);
}

static void *listener_main(void *arg)
{
	struct vb_listener *l = arg;
	struct pollfd pfd[MAX_CONNS + 2];
	struct vb_conn *idx[MAX_CONNS];

	for (;;) {
		nfds_t n = 2;

		pfd[0] = (struct pollfd){ .fd = l->stop_fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = l->lfd, .events = POLLIN };
		for (struct vb_conn *c = l->conns; c && n < MAX_CONNS + 2; c = c->next) {
			idx[n - 2] = c;
			pfd[n++] = (struct pollfd){ .fd = c->sock, .events = POLLIN };
		}
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents)
			break;
		for (nfds_t i = 2; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			if ((pfd[i].revents & POLLIN) && conn_recv(l, idx[i - 2]) == 0)
				continue;
			conn_free(l, idx[i - 2]);
		}
		if (pfd[1].revents & POLLIN)
			accept_one(l);
	}
	while (l->conns)
		conn_free(l, l->conns);
	return NULL;
}

/* ids[0..n) sorted, without duplicates and without `skip`, into out; returns how many. */
static uint32_t sorted_ids(const uint32_t *ids, uint32_t n, uint32_t skip, uint32_t *out)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t j = k;

		if (ids[i] == skip)
			continue;
		while (j && out[j - 1] > ids[i])
			j--;
		if (j && out[j - 1] == ids[i])
			continue;
		memmove(&out[j + 1], &out[j], (k - j) * sizeof(*out));
		out[j] = ids[i];
		k++;
	}
	return k;
}

/*
 * Owners the mode bits cannot name (a second uid, a second group) as a
 * POSIX access ACL: user::rw, user:U:rw each, group::rw when the file has
 * a group (else ---), group:G:rw each, mask::rw, other::---. Entries sorted
 * by tag then id, as the kernel requires. 0 or -errno (-EOPNOTSUPP: the
 * file system keeps no ACLs).
 */
static int socket_acl(const char *path, const struct leap_ctrl_access *a, uid_t uid, gid_t gid)
{
	uint8_t buf[sizeof(struct posix_acl_xattr_header) +
		    (4 + 2 * LEAP_CTRL_MAX_OWNERS) * sizeof(struct posix_acl_xattr_entry)];
	struct posix_acl_xattr_header *h = (struct posix_acl_xattr_header *)buf;
	struct posix_acl_xattr_entry *e = (struct posix_acl_xattr_entry *)(h + 1);
	uint32_t uids[LEAP_CTRL_MAX_OWNERS], gids[LEAP_CTRL_MAX_OWNERS], nu, ng, n = 0;
	const uint16_t rw = ACL_READ | ACL_WRITE;

	nu = sorted_ids(a->uids, a->nuids, uid, uids);
	ng = sorted_ids(a->gids, a->ngids, a->ngids ? gid : UINT32_MAX, gids);
	h->a_version = htole32(POSIX_ACL_XATTR_VERSION);
	e[n++] = (struct posix_acl_xattr_entry){ htole16(ACL_USER_OBJ), htole16(rw),
						 htole32(ACL_UNDEFINED_ID) };
	for (uint32_t i = 0; i < nu; i++)
		e[n++] = (struct posix_acl_xattr_entry){ htole16(ACL_USER), htole16(rw),
							 htole32(uids[i]) };
	e[n++] = (struct posix_acl_xattr_entry){ htole16(ACL_GROUP_OBJ), htole16(a->ngids ? rw : 0),
						 htole32(ACL_UNDEFINED_ID) };
	for (uint32_t i = 0; i < ng; i++)
		e[n++] = (struct posix_acl_xattr_entry){ htole16(ACL_GROUP), htole16(rw),
							 htole32(gids[i]) };
	e[n++] = (struct posix_acl_xattr_entry){ htole16(ACL_MASK), htole16(rw),
						 htole32(ACL_UNDEFINED_ID) };
	e[n++] = (struct posix_acl_xattr_entry){ htole16(ACL_OTHER), 0, htole32(ACL_UNDEFINED_ID) };
	if (setxattr(path, "system.posix_acl_access", buf, sizeof(*h) + n * sizeof(*e), 0) < 0)
		return -errno;
	return 0;
}

/*
 * The socket file for the controller's owners (before listen(), so no one
 * else can ever connect): its first owner uid (else root) and first group
 * (else root's), 0660 with a group, 0600 without; further owners get ACL
 * entries. SO_PEERCRED at accept decides in every case: the file only
 * keeps everyone else from connecting at all.
 */
static int socket_own(const char *path, const char *ctrl, const struct leap_ctrl_access *a)
{
	uid_t uid = a && a->nuids ? a->uids[0] : geteuid();
	gid_t gid = a && a->ngids ? a->gids[0] : getegid();
	mode_t mode = a && a->ngids ? 0660 : 0600;
	int err;

	if (chown(path, uid, gid) < 0 || chmod(path, mode) < 0)
		return -errno;
	if (!a) {
		LEAP_INFO("vhost", "%s: controller '%s' does not exist yet: the socket is root's",
			  path, ctrl);
		return 0;
	}
	if (a->nuids <= 1 && a->ngids <= 1)
		return 0;
	err = socket_acl(path, a, uid, gid);
	if (err)
		LEAP_WARN("vhost",
			  "%s: no ACL for the other owners of controller '%s' (%s): only uid %u "
			  "and group %u can connect",
			  path, ctrl, strerror(-err), (unsigned)uid, (unsigned)gid);
	return 0;
}

int vb_listener_start(const struct vb_listener_opts *o, struct vb_listener **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vb_listener *l;
	int err;

	*out = NULL;
	if (!o->nreactors || strlen(o->path) >= sizeof(sa.sun_path) ||
	    strlen(o->ctrl) >= sizeof(l->ctrl) || !o->num_queues || o->num_queues > VB_MAX_QUEUES)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	snprintf(l->path, sizeof(l->path), "%s", o->path);
	snprintf(l->ctrl, sizeof(l->ctrl), "%s", o->ctrl);
	l->nsid = o->nsid;
	l->num_queues = o->num_queues;
	l->reactors = o->reactors;
	l->nreactors = o->nreactors;
	pthread_mutex_init(&l->info_lock, NULL);
	memcpy(sa.sun_path, o->path, strlen(o->path) + 1);
	l->stop_fd = eventfd(0, EFD_CLOEXEC);
	l->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->stop_fd < 0 || l->lfd < 0)
		goto err_errno;
	unlink(o->path);
	if (bind(l->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto err_errno;
	err = socket_own(o->path, o->ctrl, o->access);
	if (err) {
		errno = -err;
		goto err_unlink;
	}
	if (listen(l->lfd, 16) < 0)
		goto err_unlink;
	err = pthread_create(&l->thread, NULL, listener_main, l);
	if (err) {
		errno = err;
		goto err_errno;
	}
	LEAP_INFO("vhost", "vhost-user-blk for controller '%s' namespace %u at %s", l->ctrl,
		  l->nsid, l->path);
	*out = l;
	return 0;

err_unlink:
	err = errno;
	unlink(o->path);
	errno = err;
err_errno:
	err = -errno;
	LEAP_ERR("vhost", "vhost-user socket %s: %s", o->path, strerror(errno));
	if (l->lfd >= 0)
		close(l->lfd);
	if (l->stop_fd >= 0)
		close(l->stop_fd);
	pthread_mutex_destroy(&l->info_lock);
	free(l);
	return err;
}

void vb_listener_stop(struct vb_listener *l)
{
	uint64_t one = 1;

	if (!l)
		return;
	if (write(l->stop_fd, &one, sizeof(one)) < 0)
		LEAP_WARN("vhost", "stop: %s", strerror(errno));
	pthread_join(l->thread, NULL);
	close(l->lfd);
	close(l->stop_fd);
	unlink(l->path);
	pthread_mutex_destroy(&l->info_lock);
	free(l);
}

json_t *vb_listener_info(struct vb_listener *l)
{
	json_t *o = json_pack(
	    "{s:s, s:s, s:i, s:i, s:b, s:I, s:I}", "socket", l->path, "ctrl", l->ctrl, "nsid",
	    (int)l->nsid, "num_queues", (int)l->num_queues, "connected", 0, "connections",
	    (json_int_t)__atomic_load_n(&l->connections, __ATOMIC_RELAXED), "protocol_errors",
	    (json_int_t)__atomic_load_n(&l->protocol_errors, __ATOMIC_RELAXED));
	uint64_t denied = __atomic_load_n(&l->denied, __ATOMIC_RELAXED);
	uint64_t total_req = 0, kicks = 0, notify = 0;
	struct vb_conn *c;

	if (!o)
		return NULL;
	/* Front-ends turned away because their peer is not an owner of the controller. */
	json_object_set_new(o, "denied", json_integer((json_int_t)denied));
	pthread_mutex_lock(&l->info_lock);
	c = l->attached;
	if (c) {
		uint64_t req = 0, err = 0;
		uint32_t running = 0, in_flight = 0;

		/* Counters the reactor writes: a racy but monotonic view. */
		for (uint32_t q = 0; q < c->nvq; q++) {
			req += __atomic_load_n(&c->vq[q].requests, __ATOMIC_RELAXED);
			err += __atomic_load_n(&c->vq[q].errors, __ATOMIC_RELAXED);
			running += __atomic_load_n(&c->vq[q].running, __ATOMIC_RELAXED);
			in_flight += __atomic_load_n(&c->vq[q].qp.busy, __ATOMIC_RELAXED);
		}
		/* Fetched from the rings and not answered yet (in the controller, a policy, a backend). */
		json_object_set_new(o, "in_flight", json_integer(in_flight));
		json_object_set_new(o, "connected", json_true());
		json_object_set_new(o, "broken",
				    json_boolean(__atomic_load_n(&c->broken, __ATOMIC_RELAXED)));
		json_object_set_new(o, "queues_running", json_integer(running));
		json_object_set_new(o, "requests", json_integer((json_int_t)req));
		json_object_set_new(o, "errors", json_integer((json_int_t)err));
		/* Adaptive polling: kicks that woke the reactor, idle periods slept through. */
		kicks = __atomic_load_n(&c->kicks, __ATOMIC_RELAXED);
		notify = __atomic_load_n(&c->notify_mode, __ATOMIC_RELAXED);
		json_object_set_new(o, "kicks", json_integer((json_int_t)kicks));
		json_object_set_new(o, "notify_idles", json_integer((json_int_t)notify));
		json_object_set_new(
		    o, "poll_gap_us",
		    json_integer(
			(json_int_t)(__atomic_load_n(&c->gap_avg_ns, __ATOMIC_RELAXED) / 1000)));
		total_req = req;
	}
	/* Every front-end since the listener started, the attached one included. */
	json_object_set_new(o, "totals",
			    json_pack("{s:I, s:I, s:I}", "requests",
				      (json_int_t)(l->past_requests + total_req), "kicks",
				      (json_int_t)(l->past_kicks + kicks), "notify_idles",
				      (json_int_t)(l->past_notify_idles + notify)));
	pthread_mutex_unlock(&l->info_lock);
	return o;
}
