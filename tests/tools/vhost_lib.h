/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A small vhost-user front-end for tests and benchmarks (the role QEMU plays
 * for a real guest): "guest memory" is a sealed memfd this process maps,
 * split virtqueues live in it, requests are virtio-blk chains built by
 * hand. It speaks to any vhost-user-blk back-end (leapd, qemu-storage-daemon)
 * and can also break every rule on purpose (tests/tools/vhost_client.c).
 * Header-only so each tool is one file.
 */
#ifndef LEAPIO_TESTS_VHOST_LIB_H
#define LEAPIO_TESTS_VHOST_LIB_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "leapio/vhost_spec.h"

#define VL_GPA_BASE  0x100000ull /* guest physical address of the region */
#define VL_CANARY    (4u << 20)	 /* bytes after the region, mapped here, never offered */
#define VL_MAX_QUEUE 16

struct vl_vq {
	uint32_t num;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t avail_idx; /* next avail index to publish */
	uint16_t used_seen; /* used entries consumed */
	int kick, call;
	bool event_idx;
};

struct vl_dev {
	int sock;
	int memfd;
	uint8_t *mem; /* region bytes, then the canary */
	uint64_t size;
	uint64_t brk; /* bump allocator, offset into mem */
	uint64_t features, proto;
	struct virtio_blk_config cfg;
	uint32_t nq;
	struct vl_vq vq[VL_MAX_QUEUE];
	bool verbose;
};

static inline uint64_t vl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- messages ----------------------------------------------------------- */

/* Send one message: header, `size` payload bytes, fds. Returns 0 or -errno. */
static inline int vl_send(struct vl_dev *d, uint32_t req, uint32_t flags, const void *payload,
			  uint32_t size, const int *fds, int nfds)
{
	struct vhost_user_hdr h = { req, VHOST_USER_VERSION | flags, size };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)payload, size } };
	char cbuf[CMSG_SPACE(sizeof(int) * 8)];
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = size ? 2 : 1 };
	ssize_t n;

	if (nfds) {
		struct cmsghdr *cm;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	n = sendmsg(d->sock, &mh, MSG_NOSIGNAL);
	return n == (ssize_t)(sizeof(h) + size) ? 0 : -EPIPE;
}

/* Receive a reply to `req` into payload (at most max bytes); *fd gets one fd if sent. */
static inline int vl_recv(struct vl_dev *d, uint32_t req, void *payload, uint32_t max, int *fd)
{
	struct vhost_user_hdr h;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &h, sizeof(h) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(d->sock, &mh, MSG_WAITALL | MSG_CMSG_CLOEXEC);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	if (fd)
		*fd = -1;
	if (cm && cm->cmsg_type == SCM_RIGHTS) {
		int f;

		memcpy(&f, CMSG_DATA(cm), sizeof(f));
		if (fd)
			*fd = f;
		else
			close(f);
	}
	if (n != (ssize_t)sizeof(h))
		return -EPIPE;
	if (h.request != req || !(h.flags & VHOST_USER_REPLY_MASK) || h.size > max)
		return -EPROTO;
	if (h.size && recv(d->sock, payload, h.size, MSG_WAITALL) != (ssize_t)h.size)
		return -EPIPE;
	return (int)h.size;
}

static inline int vl_get_u64(struct vl_dev *d, uint32_t req, uint64_t *v)
{
	int rc = vl_send(d, req, 0, NULL, 0, NULL, 0);

	if (rc)
		return rc;
	rc = vl_recv(d, req, v, sizeof(*v), NULL);
	return rc == 8 ? 0 : rc < 0 ? rc : -EPROTO;
}

/*
 * Send a message that has no reply of its own; with REPLY_ACK negotiated
 * ask for the ack and return it (0 success, 1 refused, < 0 connection).
 */
static inline int vl_call(struct vl_dev *d, uint32_t req, const void *payload, uint32_t size,
			  const int *fds, int nfds)
{
	bool ack = d->proto & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK);
	uint64_t rc;
	int n = vl_send(d, req, ack ? VHOST_USER_NEED_REPLY : 0, payload, size, fds, nfds);

	if (n || !ack)
		return n;
	n = vl_recv(d, req, &rc, sizeof(rc), NULL);
	if (n != 8)
		return n < 0 ? n : -EPROTO;
	return rc ? 1 : 0;
}

static inline int vl_state(struct vl_dev *d, uint32_t req, uint32_t index, uint32_t num)
{
	struct vhost_vring_state s = { index, num };

	return vl_call(d, req, &s, sizeof(s), NULL, 0);
}

/* ---- memory ------------------------------------------------------------- */

static inline uint64_t vl_alloc(struct vl_dev *d, uint64_t len, uint64_t align)
{
	uint64_t off = (d->brk + align - 1) & ~(align - 1);

	if (off + len > d->size) {
		fprintf(stderr, "vhost_lib: guest memory exhausted\n");
		exit(1);
	}
	d->brk = off + len;
	return VL_GPA_BASE + off;
}

static inline void *vl_ptr(struct vl_dev *d, uint64_t gpa)
{
	return d->mem + (gpa - VL_GPA_BASE);
}

static inline int vl_mem_create(struct vl_dev *d, uint64_t size, bool seal)
{
	d->size = size;
	d->memfd = memfd_create("vhost-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (d->memfd < 0 || ftruncate(d->memfd, (off_t)(size + VL_CANARY)) < 0)
		return -errno;
	if (seal && fcntl(d->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		return -errno;
	d->mem = mmap(NULL, size + VL_CANARY, PROT_READ | PROT_WRITE, MAP_SHARED, d->memfd, 0);
	if (d->mem == MAP_FAILED)
		return -errno;
	memset(d->mem + size, 0xc5, VL_CANARY);
	return 0;
}

/* The canary after the region is untouched. */
static inline bool vl_canary_ok(struct vl_dev *d)
{
	for (uint64_t i = 0; i < VL_CANARY; i++)
		if (d->mem[d->size + i] != 0xc5)
			return false;
	return true;
}

static inline int vl_mem_table(struct vl_dev *d)
{
	struct vhost_user_memory m = { .nregions = 1 };

	m.regions[0].guest_phys_addr = VL_GPA_BASE;
	m.regions[0].memory_size = d->size;
	m.regions[0].userspace_addr = (uint64_t)(uintptr_t)d->mem;
	m.regions[0].mmap_offset = 0;
	return vl_call(d, VHOST_USER_SET_MEM_TABLE, &m, 8 + sizeof(m.regions[0]), &d->memfd, 1);
}

/* ---- setup ---------------------------------------------------------------- */

static inline int vl_connect(struct vl_dev *d, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	d->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (d->sock < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (int i = 0; i < 50; i++) {
		if (connect(d->sock, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return 0;
		usleep(100000);
	}
	return -errno;
}

/* Features, protocol features, config: what QEMU's vhost_dev_init does first. */
static inline int vl_negotiate(struct vl_dev *d, uint64_t want_proto)
{
	uint64_t f, p = 0, nq = 1;
	struct vhost_user_config cfg = { .offset = 0, .size = sizeof(d->cfg) };
	int rc;

	if ((rc = vl_get_u64(d, VHOST_USER_GET_FEATURES, &f)))
		return rc;
	if (f & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) {
		if ((rc = vl_get_u64(d, VHOST_USER_GET_PROTOCOL_FEATURES, &p)))
			return rc;
		p &= want_proto;
		if ((rc = vl_send(d, VHOST_USER_SET_PROTOCOL_FEATURES, 0, &p, 8, NULL, 0)))
			return rc;
		d->proto = p;
		if (p & (1ull << VHOST_USER_PROTOCOL_F_MQ))
			if ((rc = vl_get_u64(d, VHOST_USER_GET_QUEUE_NUM, &nq)))
				return rc;
	}
	if ((rc = vl_call(d, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0)))
		return rc;
	if (p & (1ull << VHOST_USER_PROTOCOL_F_CONFIG)) {
		if ((rc = vl_send(d, VHOST_USER_GET_CONFIG, 0, &cfg,
				  VHOST_USER_CONFIG_HDR_SIZE + cfg.size, NULL, 0)))
			return rc;
		rc = vl_recv(d, VHOST_USER_GET_CONFIG, &cfg, sizeof(cfg), NULL);
		if (rc != (int)(VHOST_USER_CONFIG_HDR_SIZE + sizeof(d->cfg)))
			return rc < 0 ? rc : -EPROTO;
		memcpy(&d->cfg, cfg.region, sizeof(d->cfg));
	}
	/* What a Linux guest would accept of it. */
	d->features = f & ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) |
			   (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
			   (1ull << VIRTIO_BLK_F_SIZE_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
			   (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_MQ) |
			   (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES) |
			   (1ull << VHOST_USER_F_PROTOCOL_FEATURES));
	d->nq = (uint32_t)nq;
	return 0;
}

/* Lay out queue q's rings in guest memory (not yet told to the back-end). */
static inline void vl_vq_alloc(struct vl_dev *d, uint32_t q, uint32_t num)
{
	struct vl_vq *vq = &d->vq[q];

	vq->num = num;
	vq->desc_gpa = vl_alloc(d, vring_desc_size(num), 4096);
	vq->avail_gpa = vl_alloc(d, vring_avail_size(num), 4096);
	vq->used_gpa = vl_alloc(d, vring_used_size(num), 4096);
	vq->desc = vl_ptr(d, vq->desc_gpa);
	vq->avail = vl_ptr(d, vq->avail_gpa);
	vq->used = vl_ptr(d, vq->used_gpa);
	vq->event_idx = d->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	vq->avail_idx = vq->used_seen = 0;
}

/* Tell the back-end about queue q (QEMU's vhost_virtqueue_start order) and enable it. */
static inline int vl_vq_start(struct vl_dev *d, uint32_t q, uint16_t base)
{
	struct vl_vq *vq = &d->vq[q];
	struct vhost_vring_addr a = { .index = q };
	uint64_t v;
	int rc;

	a.desc_user_addr = (uint64_t)(uintptr_t)vq->desc;
	a.avail_user_addr = (uint64_t)(uintptr_t)vq->avail;
	a.used_user_addr = (uint64_t)(uintptr_t)vq->used;
	if (vq->kick <= 0)
		vq->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vq->call <= 0)
		vq->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if ((rc = vl_state(d, VHOST_USER_SET_VRING_NUM, q, vq->num)) ||
	    (rc = vl_state(d, VHOST_USER_SET_VRING_BASE, q, base)) ||
	    (rc = vl_call(d, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0)))
		return rc;
	v = q;
	if ((rc = vl_call(d, VHOST_USER_SET_VRING_KICK, &v, 8, &vq->kick, 1)) ||
	    (rc = vl_call(d, VHOST_USER_SET_VRING_CALL, &v, 8, &vq->call, 1)))
		return rc;
	if (d->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES))
		return vl_state(d, VHOST_USER_SET_VRING_ENABLE, q, 1);
	return 0;
}

/* ---- requests --------------------------------------------------------------- */

struct vl_seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* Write a chain of n segments into descriptors first..first+n-1 (direct). */
static inline void vl_chain(struct vring_desc *table, uint16_t first, const struct vl_seg *s,
			    uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct vring_desc *dd = &table[first + i];

		dd->addr = s[i].gpa;
		dd->len = s[i].len;
		dd->flags = (uint16_t)((s[i].write ? VRING_DESC_F_WRITE : 0) |
				       (i + 1 < n ? VRING_DESC_F_NEXT : 0));
		dd->next = (uint16_t)(first + i + 1);
	}
}

/* Publish head on the avail ring and kick when the back-end asked for it. */
static inline void vl_publish(struct vl_vq *vq, const uint16_t *heads, uint32_t n)
{
	uint16_t old = vq->avail_idx, evt;
	uint64_t one = 1;

	for (uint32_t i = 0; i < n; i++)
		vq->avail->ring[(uint16_t)(vq->avail_idx + i) & (vq->num - 1)] = heads[i];
	vq->avail_idx = (uint16_t)(vq->avail_idx + n);
	/* Release: ring entries before the index. */
	__atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
	/* Full fence: the index is visible before we read whether a kick is wanted. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->event_idx) {
		evt = __atomic_load_n((uint16_t *)&vq->used->ring[vq->num], __ATOMIC_RELAXED);
		if (!vring_need_event(evt, vq->avail_idx, old))
			return;
	} else if (__atomic_load_n(&vq->used->flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY) {
		return;
	}
	if (write(vq->kick, &one, sizeof(one)) < 0)
		perror("kick");
}

/* Consume one used element if there is one: 1 (with id and len), or 0. */
static inline int vl_reap(struct vl_vq *vq, uint32_t *id, uint32_t *len)
{
	uint16_t idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
	struct vring_used_elem *e;

	if (idx == vq->used_seen)
		return 0;
	e = &vq->used->ring[vq->used_seen & (vq->num - 1)];
	*id = e->id;
	*len = e->len;
	vq->used_seen++;
	/* We poll: ask for interrupts only far ahead (the back-end need not call us). */
	if (vq->event_idx)
		__atomic_store_n(&vq->avail->ring[vq->num], (uint16_t)(vq->used_seen + 0x7fff),
				 __ATOMIC_RELAXED);
	return 1;
}

/* Wait for one completion up to timeout_ms: 1, or 0 on timeout. */
static inline int vl_wait(struct vl_vq *vq, uint32_t *id, uint32_t *len, uint32_t timeout_ms)
{
	uint64_t end = vl_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	while (!vl_reap(vq, id, len)) {
		if (vl_now_ns() > end)
			return 0;
		usleep(50);
	}
	return 1;
}

#endif /* LEAPIO_TESTS_VHOST_LIB_H */
