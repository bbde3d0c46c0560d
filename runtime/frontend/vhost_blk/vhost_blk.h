/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vhost-user-blk front-end (include/leapio/vhost_spec.h is its wire
 * format). A listener thread (vhost_blk_listener.c) accepts one vhost-user
 * front-end (QEMU) per listener, runs the vhost-user protocol, maps the
 * guest's memory and keeps the table every guest address is checked
 * against. The controller's reactor (vhost_blk_queue.c) processes the
 * virtqueues: each virtio-blk request becomes an NVMe command on the
 * listener's controller (nvme/ctrl.h), whose data pointer is a Transport
 * Data Block that map_data answers with the iovecs built from the
 * descriptor chain. The listener talks to the reactor only by message, and
 * changes nothing the reactor reads while a queue runs.
 */
#ifndef LEAPIO_RUNTIME_VHOST_BLK_H
#define LEAPIO_RUNTIME_VHOST_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <jansson.h>

#include "leapio/common.h"
#include "leapio/vhost_spec.h"
#include "nvme/ctrl.h"

struct leap_reactor;
struct leap_poller;
struct vb_listener;

#define VB_MAX_QUEUES	   16	/* virtqueues per device */
#define VB_MAX_QSIZE	   1024 /* entries per virtqueue (QEMU's VIRTQUEUE_MAX_SIZE) */
#define VB_SEG_MAX	   32	/* data descriptors per request (config seg_max) */
#define VB_SIZE_MAX	   4096 /* bytes per data descriptor (config size_max) */
#define VB_MAX_DISCARD_SEG 16	/* ranges per discard request */
#define VB_WALK_IOV	   64	/* translated pieces one chain may have */
/*
 * Poll a device only while its requests come closer together than this
 * (the moving average of its idle gaps); further apart, a wake-up on the
 * kick costs less than the polling between them (LEAP_POLL_NOTIFY).
 */
#define VB_POLL_GAP_NS	   50000

/* One guest memory region as mapped here. */
struct vb_region {
	uint64_t gpa;  /* guest physical address */
	uint64_t size; /* bytes */
	uint64_t uva;  /* the front-end's virtual address (vring addresses use it) */
	uint8_t *local;
	uint8_t *map; /* mmap base (local - mmap_offset) */
	size_t maplen;
};

struct vb_mem {
	uint32_t n;
	struct vb_region r[VHOST_USER_MAX_REGIONS];
};

/* Per request slot (indexed by leap_req.slot): what the completion needs. */
struct vb_task {
	uint16_t head;	   /* descriptor chain head: the used element's id */
	uint8_t *status;   /* the status byte, in guest memory */
	uint32_t used_len; /* bytes written to the guest, status byte included */
	uint32_t iovcnt;
	int32_t region; /* region holding all the data, or -1 */
	struct iovec iov[LEAP_REQ_MAX_IOV];
	struct nvme_dsm_range dsm[VB_MAX_DISCARD_SEG];
};

struct vb_vq {
	struct leap_qpair qp; /* sqid = index + 1; slot pool of `num` requests */
	struct vb_task *tasks;
	/* Configuration (listener thread while the queue is stopped). */
	uint32_t num;
	uint16_t base; /* SET_VRING_BASE */
	struct vhost_vring_addr addr;
	bool addr_set;
	bool enabled; /* SET_VRING_ENABLE 1 */
	bool kicked;  /* SET_VRING_KICK received since the last stop */
	int kick_fd;
	int call_fd; /* swapped on the reactor while running (do_set_call) */
	int err_fd;
	/* Ring pointers, local (validated by the listener before start). */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	struct vhost_inflight_queue *inflight; /* or NULL: no INFLIGHT_SHMFD */
	/* Reactor state. */
	bool running;
	bool stopping;
	bool event_idx;
	bool need_signal;
	bool signalled_valid;
	uint16_t last_avail;
	uint16_t used_idx;
	uint16_t signalled_used;
	uint64_t counter;   /* inflight fetch order */
	uint16_t *resubmit; /* heads to run again after a reconnect, oldest first */
	uint32_t nresubmit, resubmit_pos;
	uint64_t requests, errors; /* statistics: written by the reactor */
};

/* One connected vhost-user front-end: owned by the listener, run by the controller's reactor. */
struct vb_conn {
	struct vb_listener *l;
	int sock;
	struct leap_ctrl *ctrl;
	struct leap_reactor *reactor;
	struct leap_poller *poller;
	uint32_t nsid;
	uint32_t lba_shift;
	uint64_t nlb;
	uint64_t features;	 /* acked (SET_FEATURES) */
	uint64_t proto_features; /* acked (SET_PROTOCOL_FEATURES) */
	bool features_set;
	struct vb_mem mem; /* listener's copy; the reactor reads it while queues run */
	int region_fds[VHOST_USER_MAX_REGIONS];
	int inflight_fd;
	uint8_t *inflight_map;
	size_t inflight_size;
	uint16_t inflight_queues, inflight_qsize;
	uint32_t nvq; /* virtqueues offered */
	struct vb_vq vq[VB_MAX_QUEUES];
	/* Reactor */
	uint16_t running_ids[VB_MAX_QUEUES];
	uint32_t nrunning;
	/*
	 * Adaptive polling (conn_poll): the clock is read only when the
	 * device turns idle and when work comes back, never per request.
	 */
	bool idle;	      /* the last poll fetched nothing */
	uint64_t idle_ns;     /* when the device last turned idle */
	uint64_t gap_avg_ns;  /* moving average of idle gaps (1/8 weight) */
	uint64_t notify_mode; /* statistics: idle periods spent asleep on kicks */
	uint64_t kicks;	      /* statistics: wake-ups with a kick counted */
	bool broken; /* the guest broke the virtio rules: nothing more is fetched until a reset */
	bool detaching;
	struct leap_bdev_channel *armed[LEAP_CTRL_MAX_NS + LEAP_CTRL_MAX_RCHAN];
	uint32_t narmed;
	/* Waiters for a drain (a queue stop or the detach): posted from the poller. */
	void (*drained)(void *arg);
	void *drained_arg;
	struct vb_conn *next;
};

/* ---- vhost_blk_queue.c (reactor side) ----------------------------------- */

extern const struct leap_ctrl_transport_ops leap_vb_transport_ops;

/* Bind the controller, enable it and register the poller (reactor thread). */
int vb_conn_start(struct vb_conn *c);
/* Start processing queue q (its configuration complete). 0 or -errno. Reactor thread. */
int vb_vq_start(struct vb_conn *c, uint32_t q);
/*
 * Stop fetching from the listed queues (bitmask; all with detach) and call
 * c->drained(c->drained_arg) on the reactor once none of their requests is
 * in flight; with detach, also unbind the controller and unregister.
 */
void vb_conn_drain(struct vb_conn *c, uint32_t qmask, bool detach);
/* Replace the controller's region table with c->mem (reactor; no queue running). */
void vb_conn_mem_update(struct vb_conn *c);
/* Swap queue q's call fd; returns the old one for the listener to close. */
int vb_vq_set_call(struct vb_conn *c, uint32_t q, int fd);

/* Guest physical -> local, or NULL unless one region holds all of [gpa, gpa + len). */
static inline uint8_t *vb_gpa_ptr(const struct vb_mem *m, uint64_t gpa, uint64_t len)
{
	for (uint32_t i = 0; i < m->n; i++) {
		const struct vb_region *r = &m->r[i];

		/* No overflow: gpa - base <= size - len. */
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->local + (gpa - r->gpa);
	}
	return NULL;
}

/* Front-end virtual -> local, the same way (vring addresses). */
static inline uint8_t *vb_uva_ptr(const struct vb_mem *m, uint64_t uva, uint64_t len)
{
	for (uint32_t i = 0; i < m->n; i++) {
		const struct vb_region *r = &m->r[i];

		if (uva >= r->uva && uva - r->uva <= r->size && len <= r->size - (uva - r->uva))
			return r->local + (uva - r->uva);
	}
	return NULL;
}

/* ---- vhost_blk_msg.c (listener thread) ----------------------------------- */

/* The payload size a request must carry (< 0: none is right), and its fd count. */
int vb_msg_expected_size(uint32_t request, const union vhost_user_payload *p, uint32_t size);
int vb_msg_expected_fds(uint32_t request, const union vhost_user_payload *p);
/*
 * Carry out one well-formed message (fds it keeps are set to -1 in fds).
 * Returns 0 (done; an ack says success), 1 (done, it sent its own reply),
 * -EPROTO/-EPIPE (close the connection) or another -errno (refused).
 */
int vb_msg_handle(struct vb_conn *c, struct vhost_user_msg *m, int *fds, int nfds);
/* Release what a connection holds (no queue running): maps, fds, request pools. */
void vb_mem_unmap(struct vb_mem *m);
void vb_inflight_unmap(struct vb_conn *c);
void vb_vq_close_fds(struct vb_vq *vq);
void vb_vq_free(struct vb_vq *vq);

/* ---- vhost_blk_listener.c: what the message handlers use ------------------ */

/* Stop the queues in mask (all with detach) once their requests completed; waits. */
void vb_drain(struct vb_conn *c, uint32_t mask, bool detach);
/* Queues running now (bit q). */
uint32_t vb_running_mask(const struct vb_conn *c);
/* vb_vq_start / the memory table swap / a call fd swap, on the reactor; each waits. */
int vb_call_vq_start(struct vb_conn *c, uint32_t q);
void vb_call_mem(struct vb_conn *c, struct vb_mem *mem);
int vb_call_set_call(struct vb_conn *c, uint32_t q, int fd);
/* Send a reply (with one fd, or -1). 0 or -EPIPE. */
int vb_send_reply(struct vb_conn *c, uint32_t request, const void *payload, uint32_t size, int fd);
/* Close fds[0..n) that are not -1, and mark them -1. */
void vb_close_fds(int *fds, int n);

/* Bytes of inflight memory per queue of `qsize` entries. */
static inline uint64_t vb_inflight_queue_bytes(uint32_t qsize)
{
	return LEAP_ALIGN_UP(sizeof(struct vhost_inflight_queue) +
				 (uint64_t)qsize * sizeof(struct vhost_inflight_desc),
			     (uint64_t)VHOST_INFLIGHT_ALIGN);
}

/* ---- vhost_blk_listener.c (control side) --------------------------------- */

struct vb_listener_opts {
	const char *path;
	const char *ctrl;
	uint32_t nsid;
	uint32_t num_queues;
	/* The controller's owners (copied from it now), or NULL: it does not exist yet. */
	const struct leap_ctrl_access *access;
	struct leap_reactor **reactors;
	uint32_t nreactors;
};

/*
 * Listen on o->path (an existing socket file is replaced) for the
 * front-end of controller o->ctrl's namespace o->nsid, offering
 * o->num_queues virtqueues. The socket file is made the controller's
 * before anyone can connect: owner o->access's first uid, group its first
 * gid, mode 0660 with a group and 0600 without (root:root 0600 when
 * access is NULL). The controller need not exist yet: it is claimed when
 * a front-end connects, and only a peer its access list allows
 * (SO_PEERCRED; root always) may claim it. -EINVAL, -ENOMEM or a socket
 * error.
 */
int vb_listener_start(const struct vb_listener_opts *o, struct vb_listener **out);
/* Close the socket, drain and detach the device, join the thread. NULL-safe. */
void vb_listener_stop(struct vb_listener *l);
/* Live state for listener_list: a new JSON object (the device, its queues and counters). */
json_t *vb_listener_info(struct vb_listener *l);

#endif /* LEAPIO_RUNTIME_VHOST_BLK_H */
