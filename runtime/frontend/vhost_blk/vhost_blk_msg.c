// SPDX-License-Identifier: BSD-3-Clause
/*
 * The vhost-user messages of the vhost-user-blk front-end, on the listener
 * thread (vhost_blk_listener.c reads them whole and checks the version;
 * here every request's payload size and descriptor count is fixed, and each
 * request is carried out): features, protocol features, the memory table,
 * the rings, the device config, the inflight region. What the front-end
 * hands over is checked before it is used: regions must be sealed memfds
 * that hold what they claim and may not overlap, rings must lie inside
 * regions, ring fds must be eventfds. A ring starts (a message to the
 * reactor) once everything it needs has arrived, and is stopped (drained)
 * before anything it uses changes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "frontend/vhost_blk/vhost_blk.h"

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

void vb_mem_unmap(struct vb_mem *m)
{
	for (uint32_t i = 0; i < m->n; i++)
		if (m->r[i].map)
			munmap(m->r[i].map, m->r[i].maplen);
	memset(m, 0, sizeof(*m));
}

void vb_inflight_unmap(struct vb_conn *c)
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

void vb_vq_close_fds(struct vb_vq *vq)
{
	if (vq->kick_fd >= 0)
		close(vq->kick_fd);
	if (vq->call_fd >= 0)
		close(vq->call_fd);
	if (vq->err_fd >= 0)
		close(vq->err_fd);
	vq->kick_fd = vq->call_fd = vq->err_fd = -1;
}

void vb_vq_free(struct vb_vq *vq)
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
		vb_vq_free(vq);
		err = leap_qpair_init(&vq->qp, c->ctrl, (uint16_t)(q + 1), (uint16_t)(q + 1),
				      vq->num, vq->num);
		vq->tasks = err ? NULL : calloc(vq->num, sizeof(*vq->tasks));
		if (err || !vq->tasks) {
			vb_vq_free(vq);
			return -ENOMEM;
		}
	}
	vq->qp.reactor = c->reactor;
	err = vb_call_vq_start(c, q);
	if (err) {
		LEAP_WARN("vhost", "%s: queue %u: cannot start: %s", c->ctrl->name, q,
			  strerror(-err));
		return err;
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
	vb_close_fds(fds, nfds);
	/* The reactor reads the table while queues run: stop them, swap, start them again. */
	was = vb_running_mask(c);
	if (was)
		vb_drain(c, was, false);
	old = c->mem;
	vb_call_mem(c, &nm);
	vb_mem_unmap(&old);
	for (uint32_t q = 0; q < c->nvq; q++)
		if ((was >> q) & 1)
			try_start(c, q);
	LEAP_DEBUG("vhost", "%s: memory table: %u region(s)", c->ctrl->name, nm.n);
	return 0;

err:
	LEAP_WARN("vhost", "%s: memory table refused: %s", c->ctrl->name, why);
	vb_mem_unmap(&nm);
	vb_close_fds(fds, nfds);
	return err;
}

static int set_inflight(struct vb_conn *c, const struct vhost_user_inflight *in, int fd)
{
	uint64_t need = (uint64_t)in->num_queues * vb_inflight_queue_bytes(in->queue_size);
	const char *why = NULL;
	void *p;
	int err;

	if (vb_running_mask(c)) {
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
	vb_inflight_unmap(c);
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
	err = vb_send_reply(c, VHOST_USER_GET_INFLIGHT_FD, &out, sizeof(out), fd);
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
int vb_msg_expected_size(uint32_t request, const union vhost_user_payload *p, uint32_t size)
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
int vb_msg_expected_fds(uint32_t request, const union vhost_user_payload *p)
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
int vb_msg_handle(struct vb_conn *c, struct vhost_user_msg *m, int *fds, int nfds)
{
	union vhost_user_payload *p = &m->payload;
	bool perr = false;
	uint32_t q;
	int fd, err;

	switch (m->hdr.request) {
	case VHOST_USER_GET_FEATURES: {
		uint64_t f = VB_FEATURES;

		return vb_send_reply(c, m->hdr.request, &f, sizeof(f), -1) ? -EPIPE : 1;
	}
	case VHOST_USER_SET_FEATURES:
		if (p->u64 & ~VB_FEATURES || !(p->u64 & (1ull << VIRTIO_F_VERSION_1)))
			return -EINVAL;
		if (vb_running_mask(c) && p->u64 != c->features)
			return -EBUSY;
		c->features = p->u64;
		c->features_set = true;
		for (q = 0; q < c->nvq; q++)
			try_start(c, q);
		return 0;
	case VHOST_USER_SET_OWNER:
		return 0;
	case VHOST_USER_RESET_OWNER:
		if (vb_running_mask(c))
			vb_drain(c, vb_running_mask(c), false);
		c->features = 0;
		c->features_set = false;
		return 0;
	case VHOST_USER_GET_PROTOCOL_FEATURES: {
		uint64_t f = VB_PROTOCOL_FEATURES;

		return vb_send_reply(c, m->hdr.request, &f, sizeof(f), -1) ? -EPIPE : 1;
	}
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		if (p->u64 & ~VB_PROTOCOL_FEATURES)
			return -EINVAL;
		c->proto_features = p->u64;
		return 0;
	case VHOST_USER_GET_QUEUE_NUM: {
		uint64_t n = c->nvq;

		return vb_send_reply(c, m->hdr.request, &n, sizeof(n), -1) ? -EPIPE : 1;
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
			vb_drain(c, 1u << q, false);
			vq->base = vq->last_avail;
		}
		/* The ring is stopped: the next start brings a new kick fd. */
		vq->kicked = false;
		if (vq->kick_fd >= 0)
			close(vq->kick_fd);
		vq->kick_fd = -1;
		st.index = q;
		st.num = vq->base;
		return vb_send_reply(c, m->hdr.request, &st, sizeof(st), -1) ? -EPIPE : 1;
	}
	case VHOST_USER_SET_VRING_KICK:
		err = ring_fd(c, p->u64, fds, nfds, &q, &fd, &perr);
		if (err)
			return perr ? -EPROTO : err;
		if (c->vq[q].running)
			vb_drain(c, 1u << q, false);
		if (c->vq[q].kick_fd >= 0)
			close(c->vq[q].kick_fd);
		c->vq[q].kick_fd = fd;
		c->vq[q].kicked = true;
		return try_start(c, q);
	case VHOST_USER_SET_VRING_CALL: {
		err = ring_fd(c, p->u64, fds, nfds, &q, &fd, &perr);
		if (err)
			return perr ? -EPROTO : err;
		/* Never blocks the reactor: a full counter means a wake-up is pending anyway. */
		if (fd >= 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
			close(fd);
			return -EBADF;
		}
		if (c->vq[q].running) {
			fd = vb_call_set_call(c, q, fd); /* the old one */
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
			vb_drain(c, 1u << q, false);
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
		return vb_send_reply(c, m->hdr.request, &out,
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
		return -EPROTO;
	}
}
