// SPDX-License-Identifier: BSD-3-Clause
/*
 * The vhost-user-blk front-end's control side: a thread that accepts a
 * vhost-user front-end (QEMU's vhost-user-blk device, qemu's test tools,
 * our own test client) on a Unix stream socket and runs the vhost-user
 * protocol as QEMU 7.2 uses it: features, protocol features (MQ, CONFIG,
 * REPLY_ACK, INFLIGHT_SHMFD), the memory table, per-ring num/addr/base/
 * kick/call/enable, the device config and the inflight region.
 *
 * The front-end is believed in nothing: every message's size and
 * descriptor count is checked against its type before it is read, every
 * region must be a memfd sealed against shrinking that holds what it
 * claims, regions may not overlap, rings must lie inside regions, every fd
 * on the data path must be an eventfd. A malformed message closes the
 * connection; a refused request is answered with REPLY_ACK when asked and
 * otherwise closes the connection too, since the front-end cannot learn of
 * it any other way. Either way only this guest's device is affected.
 *
 * The reactor owns a running ring; this thread changes ring state only
 * while the ring is stopped (after a drain it waits for), and talks to the
 * reactor only through messages, as the shm listener does.
 */
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

#include <jansson.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "core/reactor.h"
#include "frontend/vhost_blk/vhost_blk.h"

#define MAX_CONNS	 8    /* one device per listener; extras are turned away at once */
#define IO_TIMEOUT_MS	 2000 /* a message must arrive whole within this */
#define MAX_INFLIGHT_MAP (64u << 20)

#define VB_FEATURES                                                                                \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) |                        \
	 (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VIRTIO_BLK_F_SIZE_MAX) |                 \
	 (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |                        \
	 (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_MQ) |                                \
	 (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES) |                    \
	 (1ull << VHOST_USER_F_PROTOCOL_FEATURES))
#define VB_PROTOCOL_FEATURES                                                                       \
	((1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |          \
	 (1ull << VHOST_USER_PROTOCOL_F_CONFIG) | (1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))

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
	uint64_t connections, refused, protocol_errors;
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
static void drain(struct vb_conn *c, uint32_t mask, bool detach)
{
	struct sync_call sc = { .c = c, .mask = mask, .detach = detach };

	call_sync(c->reactor, do_drain, &sc);
}

static uint32_t running_mask(const struct vb_conn *c)
{
	uint32_t m = 0;

	/* `running` is written by the reactor only while this thread waits for it. */
	for (uint32_t q = 0; q < c->nvq; q++)
		if (c->vq[q].running)
			m |= 1u << q;
	return m;
}

/* ---- socket I/O ------------------------------------------------------------- */

static void close_fds(int *fds, int n)
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

static int send_reply(struct vb_conn *c, uint32_t request, const void *payload, uint32_t size,
		      int fd)
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

/* ---- checks on what the front-end hands us -------------------------------- */

/* Is fd an eventfd? (Kick and call fds are read and written on the reactor.) */
static bool is_eventfd(int fd)
{
	char path[64], buf[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return strcmp(buf, "anon_inode:[eventfd]") == 0;
}

/* Is fd a file we can map without it shrinking under us (a memfd sealed against it)? */
static int check_mem_fd(int fd, uint64_t need, const char **why)
{
	struct stat st;
	int seals;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*why = "region fd is not a regular file or memfd";
		return -EINVAL;
	}
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
		*why =
		    "region fd is not sealed against shrinking (use memory-backend-memfd, seal=on)";
		return -EPERM;
	}
	if ((uint64_t)st.st_size < need) {
		*why = "region fd is smaller than the region it claims";
		return -ERANGE;
	}
	return 0;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* ---- the device's state ---------------------------------------------------- */

static void unmap_mem(struct vb_mem *m)
{
	for (uint32_t i = 0; i < m->n; i++)
		if (m->r[i].map)
			munmap(m->r[i].map, m->r[i].maplen);
	memset(m, 0, sizeof(*m));
}

static void unmap_inflight(struct vb_conn *c)
{
	if (c->inflight_map)
		munmap(c->inflight_map, c->inflight_size);
	c->inflight_map = NULL;
	c->inflight_size = 0;
	c->inflight_queues = c->inflight_qsize = 0;
	if (c->inflight_fd >= 0)
		close(c->inflight_fd);
	c->inflight_fd = -1;
}

static void vq_close_fds(struct vb_vq *vq)
{
	if (vq->kick_fd >= 0)
		close(vq->kick_fd);
	if (vq->call_fd >= 0)
		close(vq->call_fd);
	if (vq->err_fd >= 0)
		close(vq->err_fd);
	vq->kick_fd = vq->call_fd = vq->err_fd = -1;
}

static void vq_free(struct vb_vq *vq)
{
	leap_qpair_fini(&vq->qp);
	free(vq->tasks);
	vq->tasks = NULL;
}

/* Start queue q if everything it needs has arrived. 0, or -errno when it cannot start. */
static int try_start(struct vb_conn *c, uint32_t q)
{
	struct vb_vq *vq = &c->vq[q];
	bool need_enable = (c->features >> VHOST_USER_F_PROTOCOL_FEATURES) & 1;
	struct sync_call sc = { .c = c, .q = q };
	int err;

	if (vq->running || !vq->kicked || !vq->addr_set || !vq->num || !c->mem.n ||
	    (need_enable && !vq->enabled) || !c->features_set)
		return 0;
	vq->desc = (struct vring_desc *)vb_uva_ptr(&c->mem, vq->addr.desc_user_addr,
						   vring_desc_size(vq->num));
	vq->avail = (struct vring_avail *)vb_uva_ptr(&c->mem, vq->addr.avail_user_addr,
						     vring_avail_size(vq->num));
	vq->used = (struct vring_used *)vb_uva_ptr(&c->mem, vq->addr.used_user_addr,
						   vring_used_size(vq->num));
	if (!vq->desc || !vq->avail || !vq->used) {
		LEAP_WARN("vhost", "%s: queue %u: ring outside guest memory", c->ctrl->name, q);
		return -EFAULT;
	}
	if (((uintptr_t)vq->desc & 15) || ((uintptr_t)vq->avail & 1) || ((uintptr_t)vq->used & 3)) {
		LEAP_WARN("vhost", "%s: queue %u: misaligned ring", c->ctrl->name, q);
		return -EINVAL;
	}
	vq->inflight = NULL;
	if (c->inflight_map && q < c->inflight_queues) {
		if (vq->num > c->inflight_qsize) {
			LEAP_WARN("vhost", "%s: queue %u: %u entries, inflight region has %u",
				  c->ctrl->name, q, vq->num, c->inflight_qsize);
			return -EINVAL;
		}
		vq->inflight =
		    (struct vhost_inflight_queue *)(c->inflight_map +
						    q * vb_inflight_queue_bytes(c->inflight_qsize));
	}
	if (vq->qp.nreqs != vq->num) {
		vq_free(vq);
		err = leap_qpair_init(&vq->qp, c->ctrl, (uint16_t)(q + 1), (uint16_t)(q + 1),
				      vq->num, vq->num);
		vq->tasks = err ? NULL : calloc(vq->num, sizeof(*vq->tasks));
		if (err || !vq->tasks) {
			vq_free(vq);
			return -ENOMEM;
		}
	}
	vq->qp.reactor = c->reactor;
	call_sync(c->reactor, do_vq_start, &sc);
	if (sc.rc) {
		LEAP_WARN("vhost", "%s: queue %u: cannot start: %s", c->ctrl->name, q,
			  strerror(-sc.rc));
		return sc.rc;
	}
	LEAP_DEBUG("vhost", "%s: queue %u running (%u entries)", c->ctrl->name, q, vq->num);
	return 0;
}

static void fill_config(const struct vb_conn *c, struct virtio_blk_config *cfg)
{
	uint32_t blk = 1u << c->lba_shift;

	memset(cfg, 0, sizeof(*cfg));
	cfg->capacity = (c->nlb << c->lba_shift) >> VIRTIO_BLK_SECTOR_SHIFT;
	cfg->size_max = VB_SIZE_MAX;
	cfg->seg_max = VB_SEG_MAX;
	cfg->blk_size = blk;
	cfg->num_queues = (uint16_t)c->nvq;
	cfg->max_discard_sectors = 1u << 21; /* 1 GiB per range */
	cfg->max_discard_seg = VB_MAX_DISCARD_SEG;
	cfg->discard_sector_alignment = blk >> VIRTIO_BLK_SECTOR_SHIFT;
	/* One NVMe Write Zeroes: 65536 blocks. */
	cfg->max_write_zeroes_sectors = (uint32_t)((65536ull << c->lba_shift) >> 9);
	cfg->max_write_zeroes_seg = 1;
	cfg->write_zeroes_may_unmap = 1;
}

/* ---- messages ---------------------------------------------------------------- */

static int set_mem_table(struct vb_conn *c, const struct vhost_user_memory *m, int *fds, int nfds)
{
	struct vb_mem nm = { 0 }, old;
	struct sync_call sc = { .c = c, .mem = &nm };
	const char *why = NULL;
	uint32_t was;
	long page = sysconf(_SC_PAGESIZE);
	int err;

	for (uint32_t i = 0; i < m->nregions; i++) {
		const struct vhost_user_mem_region *r = &m->regions[i];
		uint64_t off = r->mmap_offset & ~(uint64_t)(page - 1), lead = r->mmap_offset - off;
		void *p;

		if (!r->memory_size || r->guest_phys_addr + r->memory_size < r->guest_phys_addr ||
		    r->userspace_addr + r->memory_size < r->userspace_addr ||
		    r->mmap_offset + r->memory_size < r->mmap_offset ||
		    r->memory_size + lead > SIZE_MAX / 2) {
			why = "absurd region (empty or wrapping)";
			err = -EINVAL;
			goto err;
		}
		for (uint32_t k = 0; k < i; k++) {
			if (ranges_overlap(r->guest_phys_addr, r->memory_size, nm.r[k].gpa,
					   nm.r[k].size) ||
			    ranges_overlap(r->userspace_addr, r->memory_size, nm.r[k].uva,
					   nm.r[k].size)) {
				why = "regions overlap";
				err = -EINVAL;
				goto err;
			}
		}
		err = check_mem_fd(fds[i], r->mmap_offset + r->memory_size, &why);
		if (err)
			goto err;
		p = mmap(NULL, r->memory_size + lead, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_NORESERVE, fds[i], (off_t)off);
		if (p == MAP_FAILED) {
			err = -errno;
			why = "cannot map a region";
			goto err;
		}
		nm.r[i].gpa = r->guest_phys_addr;
		nm.r[i].size = r->memory_size;
		nm.r[i].uva = r->userspace_addr;
		nm.r[i].map = p;
		nm.r[i].maplen = r->memory_size + lead;
		nm.r[i].local = (uint8_t *)p + lead;
		nm.n = i + 1;
	}
	close_fds(fds, nfds);
	/* The reactor reads the table while queues run: stop them, swap, start them again. */
	was = running_mask(c);
	if (was)
		drain(c, was, false);
	old = c->mem;
	call_sync(c->reactor, do_mem, &sc);
	unmap_mem(&old);
	for (uint32_t q = 0; q < c->nvq; q++)
		if ((was >> q) & 1)
			try_start(c, q);
	LEAP_DEBUG("vhost", "%s: memory table: %u region(s)", c->ctrl->name, nm.n);
	return 0;

err:
	LEAP_WARN("vhost", "%s: memory table refused: %s", c->ctrl->name, why);
	unmap_mem(&nm);
	close_fds(fds, nfds);
	return err;
}

static int set_inflight(struct vb_conn *c, const struct vhost_user_inflight *in, int fd)
{
	uint64_t need = (uint64_t)in->num_queues * vb_inflight_queue_bytes(in->queue_size);
	const char *why = NULL;
	void *p;
	int err;

	if (running_mask(c)) {
		why = "queues are running";
		err = -EBUSY;
		goto err;
	}
	if (!in->num_queues || in->num_queues > VB_MAX_QUEUES || !in->queue_size ||
	    in->queue_size > VB_MAX_QSIZE || in->mmap_size < need ||
	    in->mmap_size > MAX_INFLIGHT_MAP || in->mmap_offset % (uint64_t)sysconf(_SC_PAGESIZE)) {
		why = "bad inflight geometry";
		err = -EINVAL;
		goto err;
	}
	err = check_mem_fd(fd, in->mmap_offset + in->mmap_size, &why);
	if (err)
		goto err;
	p = mmap(NULL, in->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)in->mmap_offset);
	if (p == MAP_FAILED) {
		err = -errno;
		why = "cannot map";
		goto err;
	}
	unmap_inflight(c);
	c->inflight_fd = fd;
	c->inflight_map = p;
	c->inflight_size = in->mmap_size;
	c->inflight_queues = in->num_queues;
	c->inflight_qsize = in->queue_size;
	return 0;

err:
	LEAP_WARN("vhost", "%s: inflight region refused: %s", c->ctrl->name, why);
	close(fd);
	return err;
}

static int get_inflight(struct vb_conn *c, const struct vhost_user_inflight *in)
{
	struct vhost_user_inflight out = *in;
	uint64_t size = (uint64_t)in->num_queues * vb_inflight_queue_bytes(in->queue_size);
	int fd, err;

	if (!in->num_queues || in->num_queues > VB_MAX_QUEUES || !in->queue_size ||
	    in->queue_size > VB_MAX_QSIZE)
		return -EINVAL;
	/* Sealed like the guest's memory: a successor leapd maps it without fear of SIGBUS. */
	fd = memfd_create("leapio-vhost-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	out.mmap_size = size;
	out.mmap_offset = 0;
	err = send_reply(c, VHOST_USER_GET_INFLIGHT_FD, &out, sizeof(out), fd);
	close(fd);
	return err ? -EPIPE : 1;
}

/* A ring fd message: index and "no fd" bit checked against the descriptors that came. */
static int ring_fd(struct vb_conn *c, uint64_t v, int *fds, int nfds, uint32_t *q, int *fd,
		   bool *protocol_error)
{
	bool nofd = v & VHOST_USER_VRING_NOFD;

	*q = (uint32_t)(v & VHOST_USER_VRING_IDX_MASK);
	*fd = -1;
	if (nfds != (nofd ? 0 : 1) || (v & ~(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD))) {
		*protocol_error = true;
		return -EPROTO;
	}
	if (*q >= c->nvq)
		return -ERANGE;
	if (!nofd) {
		if (!is_eventfd(fds[0])) {
			LEAP_WARN("vhost", "%s: queue %u: ring fd is not an eventfd", c->ctrl->name,
				  *q);
			return -EBADF;
		}
		*fd = fds[0];
		fds[0] = -1;
	}
	return 0;
}

/* The payload size each request must carry (-1: variable, checked by its handler). */
static int expected_size(uint32_t request, const union vhost_user_payload *p, uint32_t size)
{
	switch (request) {
	case VHOST_USER_GET_FEATURES:
	case VHOST_USER_SET_OWNER:
	case VHOST_USER_RESET_OWNER:
	case VHOST_USER_GET_PROTOCOL_FEATURES:
	case VHOST_USER_GET_QUEUE_NUM:
		return 0;
	case VHOST_USER_SET_FEATURES:
	case VHOST_USER_SET_PROTOCOL_FEATURES:
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		return 8;
	case VHOST_USER_SET_VRING_NUM:
	case VHOST_USER_SET_VRING_BASE:
	case VHOST_USER_GET_VRING_BASE:
	case VHOST_USER_SET_VRING_ENABLE:
		return sizeof(struct vhost_vring_state);
	case VHOST_USER_SET_VRING_ADDR:
		return sizeof(struct vhost_vring_addr);
	case VHOST_USER_SET_MEM_TABLE:
		if (size < 8 || p->memory.nregions == 0 ||
		    p->memory.nregions > VHOST_USER_MAX_REGIONS)
			return -2;
		return (int)(8 + p->memory.nregions * sizeof(struct vhost_user_mem_region));
	case VHOST_USER_GET_CONFIG:
	case VHOST_USER_SET_CONFIG:
		if (size < VHOST_USER_CONFIG_HDR_SIZE || p->config.size > VHOST_USER_MAX_CONFIG)
			return -2;
		return (int)(VHOST_USER_CONFIG_HDR_SIZE + p->config.size);
	case VHOST_USER_GET_INFLIGHT_FD:
	case VHOST_USER_SET_INFLIGHT_FD:
		return sizeof(struct vhost_user_inflight);
	default:
		return -2;
	}
}

/* Descriptors each request must carry. */
static int expected_fds(uint32_t request, const union vhost_user_payload *p)
{
	switch (request) {
	case VHOST_USER_SET_MEM_TABLE:
		return (int)p->memory.nregions;
	case VHOST_USER_SET_INFLIGHT_FD:
		return 1;
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		return (p->u64 & VHOST_USER_VRING_NOFD) ? 0 : 1;
	default:
		return 0;
	}
}

/*
 * Handle one well-formed message. Returns 0 (done; an ack says success),
 * 1 (done, it sent its own reply), -EPROTO/-EPIPE (close the connection) or
 * another -errno (refused: the ack says so, or the connection closes).
 */
static int handle(struct vb_listener *l, struct vb_conn *c, struct vhost_user_msg *m, int *fds,
		  int nfds)
{
	union vhost_user_payload *p = &m->payload;
	bool perr = false;
	uint32_t q;
	int fd, err;

	switch (m->hdr.request) {
	case VHOST_USER_GET_FEATURES: {
		uint64_t f = VB_FEATURES;

		return send_reply(c, m->hdr.request, &f, sizeof(f), -1) ? -EPIPE : 1;
	}
	case VHOST_USER_SET_FEATURES:
		if (p->u64 & ~VB_FEATURES || !(p->u64 & (1ull << VIRTIO_F_VERSION_1)))
			return -EINVAL;
		if (running_mask(c) && p->u64 != c->features)
			return -EBUSY;
		c->features = p->u64;
		c->features_set = true;
		for (q = 0; q < c->nvq; q++)
			try_start(c, q);
		return 0;
	case VHOST_USER_SET_OWNER:
		return 0;
	case VHOST_USER_RESET_OWNER:
		if (running_mask(c))
			drain(c, running_mask(c), false);
		c->features = 0;
		c->features_set = false;
		return 0;
	case VHOST_USER_GET_PROTOCOL_FEATURES: {
		uint64_t f = VB_PROTOCOL_FEATURES;

		return send_reply(c, m->hdr.request, &f, sizeof(f), -1) ? -EPIPE : 1;
	}
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		if (p->u64 & ~VB_PROTOCOL_FEATURES)
			return -EINVAL;
		c->proto_features = p->u64;
		return 0;
	case VHOST_USER_GET_QUEUE_NUM: {
		uint64_t n = c->nvq;

		return send_reply(c, m->hdr.request, &n, sizeof(n), -1) ? -EPIPE : 1;
	}
	case VHOST_USER_SET_MEM_TABLE:
		return set_mem_table(c, &p->memory, fds, nfds);
	case VHOST_USER_SET_VRING_NUM:
		q = p->state.index;
		if (q >= c->nvq || c->vq[q].running || !LEAP_IS_POW2(p->state.num) ||
		    p->state.num > VB_MAX_QSIZE)
			return -EINVAL;
		c->vq[q].num = p->state.num;
		return 0;
	case VHOST_USER_SET_VRING_ADDR:
		q = p->addr.index;
		if (q >= c->nvq || c->vq[q].running || p->addr.flags)
			return -EINVAL;
		c->vq[q].addr = p->addr;
		c->vq[q].addr_set = true;
		return 0;
	case VHOST_USER_SET_VRING_BASE:
		q = p->state.index;
		if (q >= c->nvq || c->vq[q].running || p->state.num > 0xffff)
			return -EINVAL;
		c->vq[q].base = (uint16_t)p->state.num;
		return 0;
	case VHOST_USER_GET_VRING_BASE: {
		struct vhost_vring_state st;
		struct vb_vq *vq;

		q = p->state.index;
		if (q >= c->nvq)
			return -EINVAL;
		vq = &c->vq[q];
		if (vq->running) {
			drain(c, 1u << q, false);
			vq->base = vq->last_avail;
		}
		/* The ring is stopped: the next start brings a new kick fd. */
		vq->kicked = false;
		if (vq->kick_fd >= 0)
			close(vq->kick_fd);
		vq->kick_fd = -1;
		st.index = q;
		st.num = vq->base;
		return send_reply(c, m->hdr.request, &st, sizeof(st), -1) ? -EPIPE : 1;
	}
	case VHOST_USER_SET_VRING_KICK:
		err = ring_fd(c, p->u64, fds, nfds, &q, &fd, &perr);
		if (err)
			return perr ? -EPROTO : err;
		if (c->vq[q].running)
			drain(c, 1u << q, false);
		if (c->vq[q].kick_fd >= 0)
			close(c->vq[q].kick_fd);
		c->vq[q].kick_fd = fd;
		c->vq[q].kicked = true;
		return try_start(c, q);
	case VHOST_USER_SET_VRING_CALL: {
		struct sync_call sc = { .c = c };

		err = ring_fd(c, p->u64, fds, nfds, &q, &fd, &perr);
		if (err)
			return perr ? -EPROTO : err;
		/* Never blocks the reactor: a full counter means a wake-up is pending anyway. */
		if (fd >= 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
			close(fd);
			return -EBADF;
		}
		if (c->vq[q].running) {
			sc.q = q;
			sc.fd = fd;
			call_sync(c->reactor, do_set_call, &sc);
			fd = sc.fd; /* the old one */
		} else {
			int old = c->vq[q].call_fd;

			c->vq[q].call_fd = fd;
			fd = old;
		}
		if (fd >= 0)
			close(fd);
		return 0;
	}
	case VHOST_USER_SET_VRING_ERR:
		err = ring_fd(c, p->u64, fds, nfds, &q, &fd, &perr);
		if (err)
			return perr ? -EPROTO : err;
		if (c->vq[q].err_fd >= 0)
			close(c->vq[q].err_fd);
		c->vq[q].err_fd = fd;
		return 0;
	case VHOST_USER_SET_VRING_ENABLE:
		q = p->state.index;
		if (q >= c->nvq || p->state.num > 1)
			return -EINVAL;
		c->vq[q].enabled = p->state.num;
		if (p->state.num)
			return try_start(c, q);
		if (c->vq[q].running) {
			drain(c, 1u << q, false);
			c->vq[q].base = c->vq[q].last_avail;
		}
		return 0;
	case VHOST_USER_GET_CONFIG: {
		uint8_t space[VHOST_USER_MAX_CONFIG] = { 0 };
		struct vhost_user_config out;

		if (p->config.offset > VHOST_USER_MAX_CONFIG ||
		    p->config.size > VHOST_USER_MAX_CONFIG - p->config.offset)
			return -EINVAL;
		fill_config(c, (struct virtio_blk_config *)space);
		out.offset = p->config.offset;
		out.size = p->config.size;
		out.flags = 0;
		memcpy(out.region, space + p->config.offset, p->config.size);
		return send_reply(c, m->hdr.request, &out,
				  VHOST_USER_CONFIG_HDR_SIZE + p->config.size, -1)
			   ? -EPIPE
			   : 1;
	}
	case VHOST_USER_SET_CONFIG:
		return -EPERM; /* nothing in our config is writable (no CONFIG_WCE) */
	case VHOST_USER_GET_INFLIGHT_FD:
		return get_inflight(c, &p->inflight);
	case VHOST_USER_SET_INFLIGHT_FD:
		fd = fds[0];
		fds[0] = -1;
		return set_inflight(c, &p->inflight, fd);
	default:
		(void)l;
		return -EPROTO;
	}
}

/* ---- connections ------------------------------------------------------------- */

static void conn_free(struct vb_listener *l, struct vb_conn *c)
{
	struct vb_conn **pp;

	if (c->ctrl) {
		if (c->poller)
			drain(c, ~0u, true);
		for (uint32_t q = 0; q < VB_MAX_QUEUES; q++) {
			vq_close_fds(&c->vq[q]);
			vq_free(&c->vq[q]);
		}
		unmap_mem(&c->mem);
		unmap_inflight(c);
		memset(&c->ctrl->mem, 0, sizeof(c->ctrl->mem));
		LEAP_INFO("vhost", "front-end left controller '%s'", c->ctrl->name);
		leap_ctrl_detach(c->ctrl);
	}
	pthread_mutex_lock(&l->info_lock);
	if (l->attached == c)
		l->attached = NULL;
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
		close_fds(fds, nfds);
		return err;
	}
	if (err)
		goto bad;
	if ((m.hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
	    (m.hdr.flags & VHOST_USER_REPLY_MASK))
		goto bad;
	want = expected_size(m.hdr.request, &m.payload, m.hdr.size);
	if (want < 0 || (uint32_t)want != m.hdr.size ||
	    expected_fds(m.hdr.request, &m.payload) != nfds)
		goto bad;
	ack = (c->proto_features & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK)) &&
	      (m.hdr.flags & VHOST_USER_NEED_REPLY);
	err = handle(l, c, &m, fds, nfds);
	close_fds(fds, nfds);
	if (err == -EPROTO || err == -EPIPE)
		goto bad_closed;
	if (err == 1)
		return 0;
	if (ack) {
		uint64_t rc = err ? 1 : 0;

		return send_reply(c, m.hdr.request, &rc, sizeof(rc), -1);
	}
	if (err) {
		LEAP_WARN("vhost", "%s: request %u refused (%s) and no ack asked: disconnecting",
			  c->ctrl->name, m.hdr.request, strerror(-err));
		return err;
	}
	return 0;

bad:
	close_fds(fds, nfds);
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

static void accept_one(struct vb_listener *l)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_MS / 1000,
			      .tv_usec = (IO_TIMEOUT_MS % 1000) * 1000 };
	struct sync_call sc = { 0 };
	struct leap_ctrl *ctrl;
	struct leap_ns *ns;
	struct vb_conn *c;
	int fd = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC);
	int err;

	if (fd < 0)
		return;
	l->connections++;
	if (l->nconns >= MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
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
	LEAP_INFO("vhost", "front-end attached to controller '%s' namespace %u", ctrl->name,
		  l->nsid);
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
	if (bind(l->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(o->path, 0600) < 0 ||
	    listen(l->lfd, 16) < 0)
		goto err_errno;
	err = pthread_create(&l->thread, NULL, listener_main, l);
	if (err) {
		errno = err;
		goto err_errno;
	}
	LEAP_INFO("vhost", "vhost-user-blk for controller '%s' namespace %u at %s", l->ctrl,
		  l->nsid, l->path);
	*out = l;
	return 0;

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
	struct vb_conn *c;

	if (!o)
		return NULL;
	pthread_mutex_lock(&l->info_lock);
	c = l->attached;
	if (c) {
		uint64_t req = 0, err = 0;
		uint32_t running = 0;

		/* Counters the reactor writes: a racy but monotonic view. */
		for (uint32_t q = 0; q < c->nvq; q++) {
			req += __atomic_load_n(&c->vq[q].requests, __ATOMIC_RELAXED);
			err += __atomic_load_n(&c->vq[q].errors, __ATOMIC_RELAXED);
			running += __atomic_load_n(&c->vq[q].running, __ATOMIC_RELAXED);
		}
		json_object_set_new(o, "connected", json_true());
		json_object_set_new(o, "broken",
				    json_boolean(__atomic_load_n(&c->broken, __ATOMIC_RELAXED)));
		json_object_set_new(o, "queues_running", json_integer(running));
		json_object_set_new(o, "requests", json_integer((json_int_t)req));
		json_object_set_new(o, "errors", json_integer((json_int_t)err));
	}
	pthread_mutex_unlock(&l->info_lock);
	return o;
}
