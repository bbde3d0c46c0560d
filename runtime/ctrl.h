/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The virtual NVMe controller model, independent of how commands arrive.
 * A transport (shared memory today; NVMe/TCP and vhost-user-blk later)
 * fetches submission entries, hands each to leap_ctrl_submit() in a request
 * slot it owns, and posts the completion when the controller calls its
 * `complete` op. Queue memory and doorbells are the transport's business;
 * admin commands that touch them (create/delete queues, doorbell buffer
 * config) are forwarded through the transport ops table.
 *
 * Threading: a controller and every one of its queues belong to one
 * reactor thread. Everything here runs on that thread, so nothing locks.
 * Control-plane changes reach it through leap_reactor_send_msg().
 *
 * The I/O path has two explicit hook points for policies: `submit` (after
 * validation, before the backend) and `complete` (after the backend, before
 * the completion is posted). Both are NULL until a policy is attached.
 */
#ifndef LEAPIO_RUNTIME_CTRL_H
#define LEAPIO_RUNTIME_CTRL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "leapio/nvme_spec.h"
#include "bdev.h"
#include "mem_map.h"
#include "stats.h"

#define LEAP_CTRL_MAX_NS   32
#define LEAP_CTRL_MDTS	   5 /* 2^5 pages = 128 KiB per command */
#define LEAP_CTRL_MAX_XFER ((uint64_t)NVME_PAGE_SIZE << LEAP_CTRL_MDTS)
#define LEAP_REQ_MAX_IOV   ((1u << LEAP_CTRL_MDTS) + 1)
#define LEAP_CTRL_AERL	   3 /* 0's based: 4 outstanding Async Event Requests */
#define LEAP_CTRL_ERRLOG   64

struct leap_ctrl;
struct leap_qpair;
struct leap_req;

struct leap_ns {
	uint32_t nsid; /* 0 = slot unused */
	struct leap_bdev *bdev;
	struct leap_bdev_channel *ch;		      /* opened on the controller's reactor */
	int32_t buf_index[LEAP_SHM_MAX_REGIONS];      /* tenant region -> fixed buffer on ch */
	struct leap_req *pending_head, *pending_tail; /* waiting for backend room */
	uint64_t offset;			      /* bytes into the bdev */
	uint64_t nlb;				      /* size in logical blocks */
	uint32_t lba_shift;			      /* 9 or 12 */
	uint8_t nguid[16];
	uint8_t eui64[8];
	uint8_t uuid[16];
	struct leap_stats stats;
};

/* The part of a transport's submission queue the controller model sees. */
struct leap_qpair {
	struct leap_ctrl *ctrl;
	uint16_t sqid; /* 0: admin */
	uint16_t cqid;
	struct leap_stats stats;
};

/* Per-command state, pre-allocated per queue slot: nothing is allocated per I/O. */
struct leap_req {
	struct nvme_sqe sqe;
	struct leap_qpair *qp;
	struct leap_ns *ns;
	uint16_t status; /* internal status: NVME_STATUS(sct, sc) | DNR */
	uint32_t cdw0;
	uint64_t submit_ns;
	uint32_t iovcnt;
	uint32_t dsm_done; /* DSM: ranges completed */
	uint32_t dsm_cnt;
	struct iovec iov[LEAP_REQ_MAX_IOV];
	struct iovec bounce_iov; /* Compare: the controller's bounce buffer */
	struct leap_bdev_io bio;
	struct leap_req *next_free;
	uint16_t slot;
	bool in_use;
};

static inline uint16_t leap_req_sqid(const struct leap_req *req)
{
	return req->qp->sqid;
}

static inline struct leap_stats *leap_req_qp_stats(struct leap_req *req)
{
	return &req->qp->stats;
}

/* Policy hook points: return 0 to continue, or an internal NVMe status to complete with. */
typedef uint16_t (*leap_ctrl_hook_fn)(struct leap_req *req, void *arg);

/* What a transport provides. All calls happen on the controller's reactor. */
struct leap_ctrl_transport_ops {
	/* Create/delete I/O queues: return an internal NVMe status (0 = success). */
	uint16_t (*cq_create)(void *t, uint16_t cqid, uint64_t addr, uint32_t qsize, uint16_t iv,
			      bool ien);
	uint16_t (*cq_delete)(void *t, uint16_t cqid);
	uint16_t (*sq_create)(void *t, uint16_t sqid, uint64_t addr, uint32_t qsize, uint16_t cqid,
			      uint8_t qprio);
	uint16_t (*sq_delete)(void *t, uint16_t sqid);
	/* Doorbell Buffer Config; NULL: Invalid Command Opcode. */
	uint16_t (*dbbuf_config)(void *t, uint64_t shadow, uint64_t eventidx);
	/* Post req's completion (status, cdw0, cid) on its queue's CQ and release the slot. */
	void (*complete)(void *t, struct leap_req *req);
};

struct leap_ctrl_opts {
	const char *name;	/* unique */
	const char *nqn;	/* NULL: nqn.2026-11.io.leapio:<name> */
	const char *serial;	/* NULL: derived from the name */
	uint32_t max_io_queues; /* I/O queue pairs (default 16, max 64) */
	uint32_t max_qsize;	/* entries per I/O queue (default 1024, max 4096) */
};

struct leap_ctrl {
	char name[64];
	char nqn[224];
	char serial[21];
	uint16_t cntlid;
	uint32_t max_io_queues;
	uint32_t max_qsize;
	struct leap_ns ns[LEAP_CTRL_MAX_NS];
	struct leap_mem_map mem;

	/* Features */
	uint32_t nr_io_queues; /* granted by Set Features Number of Queues */
	uint32_t arbitration;
	uint32_t aec;
	uint32_t kato;
	bool vwc;

	/* Async events and logs */
	struct leap_req *aer[LEAP_CTRL_AERL + 1];
	uint32_t aer_cnt;
	struct nvme_error_log_entry errlog[LEAP_CTRL_ERRLOG];
	uint64_t error_count;
	struct leap_stats stats;
	uint64_t media_errors;
	uint64_t create_ns; /* for power-on hours */
	uint8_t *bounce;    /* LEAP_CTRL_MAX_XFER bytes, for Compare (one at a time) */
	struct leap_req *bounce_owner;

	/* Hooks */
	leap_ctrl_hook_fn hook_submit;
	void *hook_submit_arg;
	leap_ctrl_hook_fn hook_complete;
	void *hook_complete_arg;

	/* Transport */
	const struct leap_ctrl_transport_ops *tops;
	void *transport;
	struct leap_ctrl *next; /* registry */
	uint32_t refs;		/* attached transports */
};

/* ---- lifecycle and namespaces (control thread; see ctrl.c for locking) ---- */

int leap_ctrl_create(const struct leap_ctrl_opts *opts, struct leap_ctrl **out);
/* -EBUSY while a tenant is attached. */
int leap_ctrl_destroy(struct leap_ctrl *ctrl);
struct leap_ctrl *leap_ctrl_find(const char *name);
/*
 * Claim the controller for a tenant, under the registry lock so that a
 * concurrent leap_ctrl_destroy() either fails with -EBUSY or has already
 * removed it: -ENOENT, -EBUSY (another tenant holds it), or 0.
 */
int leap_ctrl_attach(const char *name, struct leap_ctrl **out);
void leap_ctrl_detach(struct leap_ctrl *ctrl);
struct leap_ctrl *leap_ctrl_next(struct leap_ctrl *prev);

/*
 * Add namespace `nsid` (0: lowest free) backed by bdev[offset, offset+size)
 * with `lba_size` 512 or 4096. size 0: the rest of the bdev. Takes a bdev
 * reference. -ENOENT (no such bdev), -EEXIST, -ENOSPC, -ERANGE (past the
 * bdev's end), -EINVAL (alignment, lba size). Returns the nsid.
 * Call before a tenant attaches, or on the controller's reactor.
 */
int leap_ctrl_ns_add(struct leap_ctrl *ctrl, uint32_t nsid, const char *bdev_name, uint64_t offset,
		     uint64_t size, uint32_t lba_size);
int leap_ctrl_ns_remove(struct leap_ctrl *ctrl, uint32_t nsid);
static inline struct leap_ns *leap_ctrl_ns(struct leap_ctrl *ctrl, uint32_t nsid)
{
	if (nsid == 0 || nsid > LEAP_CTRL_MAX_NS || ctrl->ns[nsid - 1].nsid == 0)
		return NULL;
	return &ctrl->ns[nsid - 1];
}

/* ---- command processing (the controller's reactor thread) --------------- */

/*
 * Process one command already copied into req->sqe (req->qp set). Admin
 * commands (qid 0) complete synchronously or are held (AER); I/O commands
 * are validated, translated and submitted to the backend. Either way the
 * completion arrives later through tops->complete(), exactly once.
 */
void leap_ctrl_submit(struct leap_ctrl *ctrl, struct leap_req *req, bool admin);

/*
 * Poll the controller's backend channels and resubmit commands that found
 * the backend full. Returns LEAP_POLL_BUSY/IDLE (reactor.h).
 */
int leap_ctrl_poll(struct leap_ctrl *ctrl);
/* Commands submitted to backends and not yet completed, across namespaces. */
uint32_t leap_ctrl_inflight(const struct leap_ctrl *ctrl);
/* Register a new tenant region on every open channel (reactor thread). */
void leap_ctrl_region_added(struct leap_ctrl *ctrl, uint32_t region);
/* Close the backend channels (reactor thread, nothing in flight). */
void leap_ctrl_channels_close(struct leap_ctrl *ctrl);

/* Complete every held Async Event Request with Aborted (SQ deletion), e.g. on detach. */
void leap_ctrl_abort_aers(struct leap_ctrl *ctrl);

/* Record a failed command in the error log (used by transports for their own errors). */
void leap_ctrl_log_error(struct leap_ctrl *ctrl, const struct leap_req *req);

/* Finish a request: update statistics and the error log, run the complete hook, post it. */
void leap_ctrl_complete(struct leap_ctrl *ctrl, struct leap_req *req);

/* Admin half (ctrl_admin.c) and I/O half (ctrl_io.c) of leap_ctrl_submit. */
void leap_ctrl_admin(struct leap_ctrl *ctrl, struct leap_req *req);
void leap_ctrl_io(struct leap_ctrl *ctrl, struct leap_req *req);

uint64_t leap_now_ns(void);

#endif /* LEAPIO_RUNTIME_CTRL_H */
