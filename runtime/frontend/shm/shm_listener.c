// SPDX-License-Identifier: BSD-3-Clause
/*
 * The shared-memory front-end's control side: a thread that accepts tenants
 * on a SOCK_SEQPACKET Unix socket and runs the attach / region protocol of
 * include/leapio/shm_abi.h. It never touches a controller's queues: every
 * change that the data path can see (starting the poller, adding a region,
 * detaching) is a message to the controller's reactor, and this thread
 * waits for the reactor to confirm it.
 *
 * Each malformed message gets an error reply naming what was wrong and the
 * connection is closed; other tenants never notice.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <linux/magic.h>

#include "leapio/common.h"
#include "leapio/fdpass.h"
#include "leapio/fsutil.h"
#include "leapio/log.h"
#include "core/reactor.h"
#include "frontend/shm/shm.h"

/* How long accept() rests when leapd is out of descriptors and the spare one did not help. */
#define ACCEPT_PAUSE_MS 100

struct leap_shm_listener {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd;
	int stop_fd;
	/*
	 * A descriptor held in reserve (/dev/null): when accept() fails with
	 * EMFILE it is closed to accept and refuse the waiting connection
	 * with a reason, instead of leaving it in the backlog, where it keeps
	 * the socket readable and poll() spinning.
	 */
	int spare_fd;
	uint64_t accept_paused_until; /* CLOCK_MONOTONIC ms */
	/*
	 * Detaches run on the reactors without this thread waiting (a tenant
	 * that leaves with I/O at a slow backend must not stall the next
	 * tenant's attach): finished ones are pushed here by detach_done()
	 * and reap_fd is written; this thread frees them.
	 */
	int reap_fd;
	pthread_mutex_t reap_mu;
	struct shm_conn *reaped;
	uint32_t zombies; /* detaches sent and not reaped yet */
	bool locked;	  /* leap_path_lock(path) held */
	pthread_t thread;
	struct leap_reactor **reactors;
	uint32_t nreactors;
	struct leap_shm_limits lim;
	struct shm_conn *conns;
	uint32_t conn_cnt;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A call into a reactor that the listener waits for. */
struct sync_call {
	sem_t done;
	struct shm_conn *conn;
	uint32_t region;
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

	sc->rc = leap_shm_conn_start(sc->conn);
	sem_post(&sc->done);
}

static void do_region(void *arg)
{
	struct sync_call *sc = arg;
	struct leap_ctrl *ctrl = sc->conn->ctrl;

	/* The reactor is the only reader of the map: writing it here needs no ordering. */
	ctrl->mem.cnt = sc->region + 1;
	leap_ctrl_region_added(ctrl, sc->region);
	sc->rc = 0;
	sem_post(&sc->done);
}

/*
 * Reactor side of a detach that finished (its backend I/O drained): hand
 * the connection back to the listener thread, which frees it.
 */
static void detach_done(void *arg)
{
	struct shm_conn *c = arg;
	struct leap_shm_listener *l = c->listener;
	uint64_t one = 1;

	pthread_mutex_lock(&l->reap_mu);
	c->reap_next = l->reaped;
	l->reaped = c;
	pthread_mutex_unlock(&l->reap_mu);
	/* Our own eventfd, never shared: it cannot block. */
	if (write(l->reap_fd, &one, sizeof(one)) < 0)
		LEAP_ERR("shm", "cannot wake the listener: %s", strerror(errno));
}

static void do_detach(void *arg)
{
	leap_shm_conn_detach(arg);
	/* detach_done() runs on this reactor once in-flight backend I/O has drained. */
}

static void send_fds(int sock, const void *msg, size_t len, const int *fds, int nfds)
{
	int err = leap_fd_send(sock, msg, len, fds, nfds);

	if (err)
		LEAP_DEBUG("shm", "reply: %s", strerror(-err));
}

/* Answer a connection that will not be served with an attach reply saying why, then close it. */
static void refuse(int sock, int status, const char *msg)
{
	struct leap_shm_attach_reply r = { 0 };

	r.hdr.size = sizeof(r);
	r.hdr.type = LEAP_SHM_MSG_ATTACH_REPLY;
	r.hdr.version = LEAP_SHM_ABI_VERSION;
	r.status = status;
	snprintf(r.message, sizeof(r.message), "%s", msg);
	/* Non-blocking socket, MSG_NOSIGNAL: a peer that is gone or full costs nothing. */
	send_fds(sock, &r, sizeof(r), NULL, 0);
	close(sock);
}

static void attach_reply(struct shm_conn *c, int status, const char *msg, const int *fds, int nfds)
{
	struct leap_shm_attach_reply r = { 0 };

	r.hdr.size = sizeof(r);
	r.hdr.type = LEAP_SHM_MSG_ATTACH_REPLY;
	r.hdr.version = LEAP_SHM_ABI_VERSION;
	r.status = status;
	if (!status) {
		r.area_size = LEAP_SHM_AREA_SIZE;
		r.max_io_queues = c->ctrl->max_io_queues;
		r.max_qsize = c->ctrl->max_qsize;
	}
	snprintf(r.message, sizeof(r.message), "%s", msg ? msg : "");
	send_fds(c->sock, &r, sizeof(r), fds, status ? 0 : nfds);
}

static void region_reply(struct shm_conn *c, int status, uint32_t id, const char *msg)
{
	struct leap_shm_region_reply r = { 0 };

	r.hdr.size = sizeof(r);
	r.hdr.type = LEAP_SHM_MSG_REGION_REPLY;
	r.hdr.version = LEAP_SHM_ABI_VERSION;
	r.status = status;
	r.region_id = id;
	snprintf(r.message, sizeof(r.message), "%s", msg ? msg : "");
	send_fds(c->sock, &r, sizeof(r), NULL, 0);
}

static void close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/*
 * The completion vectors: pipes whose write ends stay here (non-blocking on
 * an open file description no tenant holds, so a full or abandoned pipe
 * costs one EAGAIN/EPIPE, never a blocked reactor) and whose read ends go
 * to the tenant (out[], closed by the caller once sent).
 */
static int make_vectors(struct shm_conn *c, uint32_t n, int *out)
{
	for (uint32_t i = 0; i < n; i++) {
		int p[2];

		if (pipe2(p, O_CLOEXEC) < 0)
			return -errno;
		if (fcntl(p[1], F_SETFL, O_NONBLOCK) < 0) {
			int err = -errno;

			close(p[0]);
			close(p[1]);
			return err;
		}
		out[i] = p[0];
		c->vectors[i] = p[1];
		c->nr_vectors++;
	}
	return 0;
}

static int handle_attach(struct leap_shm_listener *l, struct shm_conn *c,
			 const struct leap_shm_attach *m, int nfds)
{
	char err[128];
	struct leap_ctrl *ctrl;
	struct sync_call sc = { .conn = c };
	int out[2 + LEAP_SHM_MAX_VECTORS], rc;

	if (c->ctrl) {
		attach_reply(c, -EALREADY, "already attached", NULL, 0);
		return -EALREADY;
	}
	if (nfds) {
		attach_reply(c, -EINVAL,
			     "attach carries no descriptors (leapd creates the vectors, ABI 2)",
			     NULL, 0);
		return -EINVAL;
	}
	if (memchr(m->ctrl, 0, sizeof(m->ctrl)) == NULL || m->flags ||
	    m->nr_vectors > LEAP_SHM_MAX_VECTORS) {
		attach_reply(c, -EINVAL, "malformed attach (name, flags or vector count)", NULL, 0);
		return -EINVAL;
	}
	/* Area, kick, and both ends of every vector pipe until the reply is sent. */
	rc = shm_admit_fds(&l->lim, l->conns, c, 2 + 2 * m->nr_vectors, err, sizeof(err));
	if (rc) {
		LEAP_WARN_RL("shm", "attach to '%s' refused: %s", m->ctrl, err);
		attach_reply(c, rc, err, NULL, 0);
		return rc;
	}
	rc = leap_ctrl_attach(m->ctrl, &ctrl);
	if (rc == -ENOENT) {
		snprintf(err, sizeof(err), "controller '%s' not found", m->ctrl);
		attach_reply(c, -ENOENT, err, NULL, 0);
		return -ENOENT;
	}
	if (rc) {
		/*
		 * Held by a tenant that left and is still draining its backend
		 * I/O: wait for that (reap() retries), as a re-attach right
		 * after a detach always could, instead of answering EBUSY.
		 */
		for (struct shm_conn *z = l->conns; z; z = z->next) {
			if (z->zombie && z->ctrl && strcmp(z->ctrl->name, m->ctrl) == 0) {
				c->parked = true;
				c->parked_msg = *m;
				return 0;
			}
		}
		snprintf(err, sizeof(err), "controller '%s' already has a tenant", m->ctrl);
		attach_reply(c, -EBUSY, err, NULL, 0);
		return -EBUSY;
	}
	/* The controller's owners only (root always): nobody else may use or squat on it. */
	if (!leap_ctrl_access_allows(&ctrl->access, c->uid, c->gids, c->ngids)) {
		leap_ctrl_detach(ctrl);
		snprintf(err, sizeof(err),
			 "uid %u may not attach to controller '%s' (not an owner)",
			 (unsigned)c->uid, m->ctrl);
		LEAP_WARN_RL("shm", "%s", err);
		attach_reply(c, -EACCES, err, NULL, 0);
		return -EACCES;
	}
	c->ctrl = ctrl; /* holds the claim from here on; conn_free() releases it */
	/*
	 * Sealed at its final size: the tenant gets this memfd too, and a
	 * shrink would turn every doorbell read on the reactor into SIGBUS.
	 */
	c->area_fd = memfd_create("leapio-ctrl", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (c->area_fd < 0 || ftruncate(c->area_fd, LEAP_SHM_AREA_SIZE) < 0 ||
	    fcntl(c->area_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto err_sys;
	c->area = mmap(NULL, LEAP_SHM_AREA_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, c->area_fd, 0);
	if (c->area == MAP_FAILED) {
		c->area = NULL;
		goto err_sys;
	}
	c->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->kick_fd < 0)
		goto err_sys;
	rc = make_vectors(c, m->nr_vectors, out + 2);
	if (rc) {
		errno = -rc;
		close_fds(out + 2, (int)c->nr_vectors);
		goto err_sys;
	}
	memset(&ctrl->mem, 0, sizeof(ctrl->mem));
	c->reactor = l->reactors[leap_ctrl_reactor_index(ctrl->cntlid, l->nreactors)];
	leap_shm_conn_init_area(c);
	call_sync(c->reactor, do_start, &sc);
	if (sc.rc) {
		leap_ctrl_detach(ctrl);
		c->ctrl = NULL;
		close_fds(out + 2, (int)c->nr_vectors);
		snprintf(err, sizeof(err), "cannot start the queue poller: %s", strerror(-sc.rc));
		attach_reply(c, sc.rc, err, NULL, 0);
		return sc.rc;
	}
	out[0] = c->area_fd;
	out[1] = c->kick_fd;
	attach_reply(c, 0, NULL, out, 2 + (int)c->nr_vectors);
	/* The tenant has its read ends now; ours would only keep its pipes from reporting EPIPE. */
	close_fds(out + 2, (int)c->nr_vectors);
	c->deadline_ms = 0;
	LEAP_INFO_RL("shm", "tenant attached to controller '%s' (%u vectors, uid %u, pid %d)",
		     ctrl->name, c->nr_vectors, (unsigned)c->uid, (int)c->pid);
	return 0;

err_sys:
	rc = -errno;
	leap_ctrl_detach(ctrl); /* no poller started: nothing to drain */
	c->ctrl = NULL;
	snprintf(err, sizeof(err), "%s", strerror(-rc));
	attach_reply(c, rc, err, NULL, 0);
	return rc;
}

/*
 * A region is only mapped when nothing the tenant does later can make our
 * mapping fault: a memfd on shmem (hugetlbfs can fail a fault when its pool
 * runs dry, a disk file on I/O errors), sealed against shrinking (truncate
 * would leave our mapping pointing past the end: SIGBUS), and at least as
 * large as the range it claims. 0, or -errno with the reason in `err`.
 */
static int region_fd_check(int fd, const struct leap_shm_region_add *m, char *err, size_t errsz)
{
	struct statfs sfs;
	struct stat st;
	int seals;

	if (fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0) {
		snprintf(err, errsz, "cannot inspect the region fd: %s", strerror(errno));
		return -EBADF;
	}
	if (!S_ISREG(st.st_mode) || sfs.f_type != TMPFS_MAGIC) {
		snprintf(err, errsz, "region fd must be a memfd (file type 0%o, fs 0x%lx)",
			 (unsigned)(st.st_mode & S_IFMT), (unsigned long)sfs.f_type);
		return -EBADF;
	}
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
		snprintf(err, errsz,
			 "region memfd must be sealed with F_SEAL_SHRINK "
			 "(memfd_create(MFD_ALLOW_SEALING), then F_ADD_SEALS)");
		return -EPERM;
	}
	if (m->offset > (uint64_t)st.st_size || m->len > (uint64_t)st.st_size - m->offset) {
		snprintf(err, errsz, "region [%llu, +%llu) runs past the memfd's %lld bytes",
			 (unsigned long long)m->offset, (unsigned long long)m->len,
			 (long long)st.st_size);
		return -EINVAL;
	}
	return 0;
}

static int handle_region(struct leap_shm_listener *l, struct shm_conn *c,
			 const struct leap_shm_region_add *m, int fd)
{
	struct leap_mem_map *mm;
	struct sync_call sc = { .conn = c };
	char err[128];
	uint32_t id;
	void *p;
	int rc;

	if (!c->ctrl) {
		region_reply(c, -EPERM, 0, "attach first");
		return -EPERM;
	}
	mm = &c->ctrl->mem;
	if (fd < 0 || (m->base | m->len | m->offset) & (NVME_PAGE_SIZE - 1) || !m->len ||
	    m->base + m->len < m->base) {
		region_reply(c, -EINVAL, 0,
			     "region base, length and offset must be page multiples");
		return -EINVAL;
	}
	if (mm->cnt >= LEAP_SHM_MAX_REGIONS) {
		region_reply(c, -ENOSPC, 0, "too many regions");
		return -ENOSPC;
	}
	/* The memfd is in our table already (one, at most, per message): charge it or drop it. */
	rc = shm_admit_fds(&l->lim, l->conns, c, 1, err, sizeof(err));
	if (rc) {
		LEAP_WARN_RL("shm", "region for '%s' refused: %s", c->ctrl->name, err);
		region_reply(c, rc, 0, err);
		return rc;
	}
	rc = region_fd_check(fd, m, err, sizeof(err));
	if (rc) {
		region_reply(c, rc, 0, err);
		return rc;
	}
	for (uint32_t i = 0; i < mm->cnt; i++) {
		if (m->base < mm->r[i].base + mm->r[i].len && mm->r[i].base < m->base + m->len) {
			region_reply(c, -EEXIST, 0, "region overlaps an existing one");
			return -EEXIST;
		}
	}
	p = mmap(NULL, m->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)m->offset);
	if (p == MAP_FAILED) {
		int e = errno;

		region_reply(c, -e, 0, "cannot map the region (is the fd large enough?)");
		return -e;
	}
	id = mm->cnt;
	mm->r[id].base = m->base;
	mm->r[id].len = m->len;
	mm->r[id].local = p;
	c->region_fds[id] = fd;
	c->region_maplen[id] = m->len;
	c->nregions = id + 1;
	sc.region = id;
	call_sync(c->reactor, do_region, &sc);
	region_reply(c, 0, id, NULL);
	return 0;
}

/* Free a connection the reactor no longer uses (never attached, or its detach finished). */
static void conn_finish(struct leap_shm_listener *l, struct shm_conn *c)
{
	struct shm_conn **pp;

	if (c->ctrl) {
		for (uint32_t i = 0; i < c->nregions; i++) {
			munmap(c->ctrl->mem.r[i].local, c->region_maplen[i]);
			close(c->region_fds[i]);
		}
		memset(&c->ctrl->mem, 0, sizeof(c->ctrl->mem));
		leap_ctrl_detach(c->ctrl);
		LEAP_INFO_RL("shm", "tenant detached from controller '%s' (uid %u)", c->ctrl->name,
			     (unsigned)c->uid);
	}
	close_fds(c->vectors, (int)c->nr_vectors);
	if (c->area)
		munmap(c->area, LEAP_SHM_AREA_SIZE);
	if (c->area_fd >= 0)
		close(c->area_fd);
	if (c->kick_fd >= 0)
		close(c->kick_fd);
	if (c->sock >= 0)
		close(c->sock);
	for (pp = &l->conns; *pp && *pp != c; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = c->next;
	__atomic_fetch_sub(&l->conn_cnt, 1, __ATOMIC_RELAXED);
	free(c);
}

/*
 * Drop a connection. An attached one is detached on its reactor without
 * waiting here: its socket closes now (the tenant sees EOF), its memory
 * and controller claim stay until the reactor reports its backend I/O
 * drained (reap()), so another tenant's attach is never held up.
 */
static void conn_free(struct leap_shm_listener *l, struct shm_conn *c)
{
	int rc;

	if (!c->ctrl) {
		conn_finish(l, c);
		return;
	}
	if (c->zombie)
		return;
	c->zombie = true;
	close(c->sock);
	c->sock = -1;
	c->listener = l;
	c->detach_done = detach_done;
	c->detach_arg = c;
	l->zombies++;
	/* The ring is sized for thousands of messages; a full one drains in microseconds. */
	while ((rc = leap_reactor_send_msg(c->reactor, do_detach, c)) == -EAGAIN)
		usleep(100);
	if (rc) {
		LEAP_ERR("shm", "cannot detach from controller '%s': %s", c->ctrl->name,
			 strerror(-rc));
		l->zombies--;
	}
}

/* Free the connections whose detach finished on their reactor. */
static void reap(struct leap_shm_listener *l)
{
	struct shm_conn *c, *next_parked;
	uint64_t v;

	if (read(l->reap_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		LEAP_WARN("shm", "reap: %s", strerror(errno));
	pthread_mutex_lock(&l->reap_mu);
	c = l->reaped;
	l->reaped = NULL;
	pthread_mutex_unlock(&l->reap_mu);
	while (c) {
		struct shm_conn *next = c->reap_next;

		l->zombies--;
		conn_finish(l, c);
		c = next;
	}
	/* Attaches that waited for a controller to be free again: try them now. */
	for (c = l->conns; c; c = next_parked) {
		next_parked = c->next;
		if (!c->parked)
			continue;
		c->parked = false;
		if (handle_attach(l, c, &c->parked_msg, 0) < 0)
			conn_free(l, c);
	}
}

/* One message from a tenant. Returns 0 to keep the connection, < 0 to drop it. */
static int conn_recv(struct leap_shm_listener *l, struct shm_conn *c)
{
	union {
		struct leap_shm_msg_hdr hdr;
		struct leap_shm_attach attach;
		struct leap_shm_region_add region;
		uint8_t raw[512];
	} m;
	int fd = -1, flags = 0;
	bool ctrunc;
	ssize_t n;

	memset(&m, 0, sizeof(m));
	n = shm_recv(c->sock, &m, sizeof(m), &fd, &flags);
	if (n == -EAGAIN || n == -EINTR)
		return 0;
	if (n <= 0) {
		if (fd >= 0)
			close(fd);
		return -EPIPE;
	}
	ctrunc = flags & MSG_CTRUNC;
	if (!(flags & MSG_TRUNC) && (size_t)n >= sizeof(m.hdr) &&
	    m.hdr.type == LEAP_SHM_MSG_ATTACH && m.hdr.version != LEAP_SHM_ABI_VERSION) {
		char err[128];

		snprintf(err, sizeof(err), "shm ABI version %u not supported (leapd speaks %u)",
			 (unsigned)m.hdr.version, LEAP_SHM_ABI_VERSION);
		attach_reply(c, -EPROTO, err, NULL, 0);
		goto drop;
	}
	if ((flags & MSG_TRUNC) || (size_t)n < sizeof(m.hdr) || m.hdr.size != (uint32_t)n ||
	    m.hdr.version != LEAP_SHM_ABI_VERSION)
		goto bad;
	switch (m.hdr.type) {
	case LEAP_SHM_MSG_ATTACH:
		if (n != sizeof(m.attach))
			goto bad;
		if (fd >= 0)
			close(fd);
		if (handle_attach(l, c, &m.attach, fd >= 0 || ctrunc) == 0)
			return 0;
		return -EINVAL;
	case LEAP_SHM_MSG_REGION_ADD:
		if (n != sizeof(m.region))
			goto bad;
		if (ctrunc && fd < 0) {
			/* Sent with its one descriptor, but the kernel could not install it here. */
			LEAP_WARN_RL("shm", "a region's descriptor was lost in transit: "
					    "leapd is out of file descriptors");
			region_reply(c, -EMFILE, 0,
				     "leapd could not receive the region's descriptor "
				     "(out of file descriptors): try again later");
			return 0;
		}
		if (ctrunc || fd < 0) {
			if (fd >= 0)
				close(fd);
			region_reply(c, -EINVAL, 0, "region add carries exactly one descriptor");
			return 0;
		}
		if (handle_region(l, c, &m.region, fd) < 0)
			close(fd);
		return 0;
	default:
		break;
	}
bad:
	LEAP_WARN_RL("shm",
		     "malformed message from a tenant (uid %u, type %u, %zd bytes): disconnecting",
		     (unsigned)c->uid, (unsigned)m.hdr.type, n);
drop:
	if (fd >= 0)
		close(fd);
	return -EPROTO;
}

/*
 * accept() found no free descriptor. Spend the spare one on the waiting
 * connection, to tell it why, so it leaves the backlog; if even that fails
 * (another thread took the slot), stop polling the socket for a while.
 * Either way poll() does not spin, and the log says so at most 10 times a second.
 */
static void accept_out_of_fds(struct leap_shm_listener *l, int err)
{
	int fd;

	LEAP_WARN_RL("shm", "accept: %s: refusing tenants until descriptors are free",
		     strerror(err));
	if (l->spare_fd >= 0) {
		close(l->spare_fd);
		l->spare_fd = -1;
	}
	fd = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd >= 0)
		refuse(fd, -EMFILE, "leapd is out of file descriptors: try again later");
	l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || l->spare_fd < 0)
		l->accept_paused_until = now_ms() + ACCEPT_PAUSE_MS;
}

/* The peer's groups: its primary gid, then what SO_PEERGROUPS reports (up to the array). */
static void peer_groups(struct shm_conn *c)
{
	gid_t g[LEAP_SHM_MAX_PEER_GROUPS];
	socklen_t len = sizeof(g);

	c->gids[0] = c->gid;
	c->ngids = 1;
	/* ERANGE: more groups than we keep; then none but the primary is trusted. */
	if (getsockopt(c->sock, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0)
		return;
	for (uint32_t i = 0; i < len / sizeof(gid_t) && c->ngids < LEAP_SHM_MAX_PEER_GROUPS; i++)
		c->gids[c->ngids++] = g[i];
}

static void accept_one(struct leap_shm_listener *l)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct shm_conn *c;
	char why[128];
	int fd, rc;

	fd = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE)
			accept_out_of_fds(l, errno);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
		refuse(fd, -errno, "cannot tell who connected (SO_PEERCRED)");
		return;
	}
	rc = shm_admit_conn(&l->lim, l->conns, l->conn_cnt, cred.uid, why, sizeof(why));
	if (rc) {
		LEAP_WARN_RL("shm", "connection from pid %d refused: %s", (int)cred.pid, why);
		refuse(fd, rc, why);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		refuse(fd, -ENOMEM, "leapd is out of memory");
		return;
	}
	c->sock = fd;
	c->area_fd = -1;
	c->kick_fd = -1;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pid = cred.pid;
	peer_groups(c);
	c->deadline_ms = now_ms() + l->lim.handshake_ms;
	c->next = l->conns;
	l->conns = c;
	__atomic_fetch_add(&l->conn_cnt, 1, __ATOMIC_RELAXED);
}

/* Drop connections that did not attach in time; returns ms until the next deadline (-1: none). */
static int expire_pending(struct leap_shm_listener *l)
{
	uint64_t now = now_ms(), next = UINT64_MAX;
	struct shm_conn *c = l->conns, *nx;

	for (; c; c = nx) {
		nx = c->next;
		if (!c->deadline_ms)
			continue;
		if (c->deadline_ms <= now) {
			char why[128];

			if (c->parked)
				snprintf(why, sizeof(why),
					 "controller '%s' was still detaching its previous tenant "
					 "after %u ms",
					 c->parked_msg.ctrl, l->lim.handshake_ms);
			else
				snprintf(why, sizeof(why), "no attach within %u ms of connecting",
					 l->lim.handshake_ms);
			LEAP_WARN_RL("shm", "tenant connection (uid %u, pid %d): %s",
				     (unsigned)c->uid, (int)c->pid, why);
			attach_reply(c, -ETIMEDOUT, why, NULL, 0);
			conn_free(l, c);
			continue;
		}
		next = LEAP_MIN(next, c->deadline_ms);
	}
	if (l->accept_paused_until > now)
		next = LEAP_MIN(next, l->accept_paused_until);
	return next == UINT64_MAX ? -1 : (int)(next - now);
}

static void *listener_main(void *arg)
{
	struct leap_shm_listener *l = arg;
	struct pollfd pfd[LEAP_SHM_MAX_CONNS + 3];
	struct shm_conn *idx[LEAP_SHM_MAX_CONNS];

	for (;;) {
		int timeout = expire_pending(l);
		nfds_t n = 3;

		pfd[0] = (struct pollfd){ .fd = l->stop_fd, .events = POLLIN };
		/* Resting after EMFILE: fd -1 makes poll() skip the socket. */
		pfd[1] = (struct pollfd){ .fd = l->accept_paused_until > now_ms() ? -1 : l->lfd,
					  .events = POLLIN };
		pfd[2] = (struct pollfd){ .fd = l->reap_fd, .events = POLLIN };
		for (struct shm_conn *c = l->conns; c && n < LEAP_SHM_MAX_CONNS + 3; c = c->next) {
			if (c->zombie)
				continue;
			idx[n - 3] = c;
			pfd[n++] = (struct pollfd){ .fd = c->sock, .events = POLLIN };
		}
		if (poll(pfd, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents)
			break;
		if (pfd[2].revents & POLLIN)
			reap(l);
		if (pfd[1].revents & POLLIN)
			accept_one(l);
		for (nfds_t i = 3; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			if ((pfd[i].revents & POLLIN) && conn_recv(l, idx[i - 3]) == 0)
				continue;
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
				conn_free(l, idx[i - 3]);
		}
	}
	/* Stopping: detach everyone, then wait for every reactor to report its drain. */
	for (struct shm_conn *c = l->conns, *next; c; c = next) {
		next = c->next;
		conn_free(l, c);
	}
	while (l->zombies) {
		struct pollfd p = { .fd = l->reap_fd, .events = POLLIN };

		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			break;
		reap(l);
	}
	return NULL;
}

int leap_shm_listener_start(const char *path, struct leap_reactor **reactors, uint32_t n,
			    struct leap_shm_listener **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct leap_shm_listener *l;
	struct stat st;
	int err;

	*out = NULL;
	if (!n || strlen(path) >= sizeof(sa.sun_path))
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	snprintf(l->path, sizeof(l->path), "%s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	l->reactors = reactors;
	l->nreactors = n;
	leap_shm_limits_default(&l->lim);
	pthread_mutex_init(&l->reap_mu, NULL);
	l->reap_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	l->stop_fd = eventfd(0, EFD_CLOEXEC);
	l->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (l->stop_fd < 0 || l->lfd < 0 || l->reap_fd < 0)
		goto err_errno;
	/* Ours once locked: a socket left there is a dead owner's, anything else is not ours. */
	err = leap_path_lock(path);
	if (err) {
		errno = -err;
		goto err_errno;
	}
	l->locked = true;
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		goto err_errno;
	}
	unlink(path);
	if (bind(l->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(l->lfd, 64) < 0)
		goto err_errno;
	err = pthread_create(&l->thread, NULL, listener_main, l);
	if (err) {
		errno = err;
		goto err_errno;
	}
	LEAP_INFO("shm",
		  "tenants attach at %s (per uid: %u pending, %u connections, %u descriptors; "
		  "%u descriptors for all tenants)",
		  path, l->lim.pending_per_uid, l->lim.conns_per_uid, l->lim.fd_quota,
		  l->lim.fd_budget);
	*out = l;
	return 0;

err_errno:
	err = -errno;
	LEAP_ERR("shm", "tenant socket %s: %s", path, strerror(errno));
	if (l->lfd >= 0)
		close(l->lfd);
	if (l->stop_fd >= 0)
		close(l->stop_fd);
	if (l->spare_fd >= 0)
		close(l->spare_fd);
	if (l->reap_fd >= 0)
		close(l->reap_fd);
	if (l->locked)
		leap_path_unlock(path);
	free(l);
	return err;
}

void leap_shm_listener_stop(struct leap_shm_listener *l)
{
	uint64_t one = 1;

	if (!l)
		return;
	if (write(l->stop_fd, &one, sizeof(one)) < 0)
		LEAP_WARN("shm", "stop: %s", strerror(errno));
	pthread_join(l->thread, NULL);
	close(l->lfd);
	close(l->stop_fd);
	if (l->spare_fd >= 0)
		close(l->spare_fd);
	close(l->reap_fd);
	unlink(l->path);
	leap_path_unlock(l->path);
	free(l);
}

int leap_shm_listener_share(struct leap_shm_listener *l, gid_t gid)
{
	char dir[sizeof(l->path)], *slash;
	struct stat st;

	/* The socket: owner and group may connect, nobody else. */
	if (chown(l->path, (uid_t)-1, gid) < 0 || chmod(l->path, 0660) < 0) {
		int err = -errno;

		LEAP_ERR("shm", "tenant socket %s for group %u: %s", l->path, (unsigned)gid,
			 strerror(-err));
		return err;
	}
	/*
	 * Its directory must let the group through. Only a directory of ours
	 * that does not already is changed (group set, g+x: traverse, not list).
	 */
	snprintf(dir, sizeof(dir), "%s", l->path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (stat(dir, &st) < 0)
		return -errno;
	if ((st.st_mode & S_IXOTH) || ((st.st_mode & S_IXGRP) && st.st_gid == gid))
		return 0;
	if (st.st_uid != geteuid()) {
		LEAP_WARN("shm", "%s: group %u cannot traverse it and it is not ours to change",
			  dir, (unsigned)gid);
		return 0;
	}
	if (chown(dir, (uid_t)-1, gid) < 0 || chmod(dir, (st.st_mode & 07777) | S_IXGRP) < 0) {
		int err = -errno;

		LEAP_ERR("shm", "directory %s for group %u: %s", dir, (unsigned)gid,
			 strerror(-err));
		return err;
	}
	return 0;
}

uint32_t leap_shm_listener_conn_count(struct leap_shm_listener *l)
{
	return __atomic_load_n(&l->conn_cnt, __ATOMIC_RELAXED);
}
