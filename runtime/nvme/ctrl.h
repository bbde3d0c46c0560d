/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The virtual NVMe controller model, independent of how commands arrive.
 * A transport (shared memory today; NVMe/TCP and vhost-user-blk later)
 * fetches submission entries, hands each to leap_ctrl_submit() in a request
 * slot it owns, and posts the completion when the controller calls its
 * `complete` op. Queue memory and doorbells are the transport's business;
 * admin commands that touch them (create/delete queues, doorbell buffer
 * config) are checked here for what the spec fixes independently of the
 * transport (queue id and size limits, PC, alignment) and then forwarded
 * through the transport ops table, which owns queue existence.
 *
 * Threading: a controller and every one of its queues belong to one
 * reactor thread. Everything here runs on that thread, so nothing locks.
 * Control-plane changes reach it through leap_reactor_send_msg(); the
 * control thread may read statistics at any time (stats.h explains why
 * that is safe).
 *
 * The I/O path has two explicit hook points for policies: `submit` (after
 * validation, before the backend) and `complete` (after the backend, before
 * the completion is posted). Both are NULL until a policy is attached.
 *
 * Per I/O nothing is allocated, no syscall is made, no lock is taken and
 * nothing is logged: every per-command byte lives in a pre-allocated
 * struct leap_req, and the CID is only ever echoed, never used as an index.
 */
#ifndef LEAPIO_RUNTIME_CTRL_H
#define LEAPIO_RUNTIME_CTRL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "leapio/nvme_spec.h"
#include "backend/bdev.h"
#include "nvme/mem_map.h"
#include "core/stats.h"

#define LEAP_CTRL_MAX_NS       32
#define LEAP_CTRL_MDTS	       5 /* 2^5 pages = 128 KiB per command */
#define LEAP_CTRL_MAX_XFER     ((uint64_t)NVME_PAGE_SIZE << LEAP_CTRL_MDTS)
#define LEAP_REQ_MAX_IOV       ((1u << LEAP_CTRL_MDTS) + 1)
#define LEAP_CTRL_AERL	       3 /* 0's based: 4 outstanding Async Event Requests */
#define LEAP_CTRL_ERRLOG       64
/* Bounce buffers (Compare; I/O whose buffers a direct-I/O backend cannot use), per controller. */
#define LEAP_CTRL_BOUNCE_SLOTS 8
/* Asynchronous events remembered while no Async Event Request is outstanding. */
#define LEAP_CTRL_AEN_QUEUE    8
#define LEAP_CTRL_MAX_QSIZE    4096
/* Other backends a controller's policies may redirect to (channels cached per controller). */
#define LEAP_CTRL_MAX_RCHAN    8
/* Host NQNs a controller's allow-list holds (fabrics access control). */
#define LEAP_CTRL_MAX_HOSTS    64
#define LEAP_CTRL_NQN_LEN      224 /* 223 bytes + NUL (NVMe-oF 1.1, 7.9) */

struct leap_ctrl;
struct leap_qpair;
struct leap_req;
struct leap_reactor;
struct leap_arb;

/*
 * A backend as one controller uses it on its reactor: the channel, the
 * tenant regions registered on it, commands waiting for room, and the
 * reactor's arbiter for that backend (arb.h). A namespace has one for its
 * own backend; a controller caches a few more for policy redirects.
 */
struct leap_chan {
	struct leap_bdev *bdev; /* NULL: unused cache slot */
	struct leap_bdev_channel *ch;
	struct leap_arb *arb;
	bool failed;				      /* open failed: fail fast, log once */
	bool opening;				      /* open under way off the reactor */
	bool ref;				      /* holds a bdev reference (redirect cache) */
	int32_t buf_index[LEAP_SHM_MAX_REGIONS];      /* tenant region -> fixed buffer on ch */
	struct leap_req *pending_head, *pending_tail; /* waiting for backend room, or the open */
};

struct leap_ns {
	uint32_t nsid; /* 0 = slot unused */
	struct leap_bdev *bdev;
	struct leap_chan chan; /* opened by leap_ctrl_ns_add(), closed by _ns_remove() */
	uint64_t offset;       /* bytes into the bdev */
	uint64_t nlb;	       /* size in logical blocks */
	uint32_t lba_shift;    /* 9 or 12 */
	uint8_t nguid[16];
	uint8_t eui64[8];
	uint8_t uuid[16];
	struct leap_stats stats;
};

/*
 * The part of a transport's queue pair the controller model sees. A
 * transport embeds it (shm: struct shm_sq) and either manages its own
 * request slots or uses leap_qpair_init() for a pool.
 */
struct leap_qpair {
	struct leap_ctrl *ctrl;
	uint16_t sqid; /* 0: admin */
	uint16_t cqid;
	uint32_t size; /* SQ entries (informational; 0 if the transport does not say) */
	struct leap_reactor *reactor; /* owner; NULL before start and in unit tests */
	/* Optional slot pool (leap_qpair_init): nothing is allocated per command. */
	struct leap_req *reqs;
	struct leap_req *free_reqs;
	uint32_t nreqs, busy;
	struct leap_stats stats; /* written by the owning reactor only */
};

/*
 * Per-command state, pre-allocated per queue slot: nothing is allocated per
 * I/O. The transport fills `sqe` and `qp` (and owns `next_free`, `slot`,
 * `in_use` while the slot is free); leap_ctrl_submit() initialises the
 * rest; the transport's complete op reads `sqe.cid`, `status` and `cdw0`.
 */
struct leap_req {
	struct nvme_sqe sqe; /* a private copy: the tenant cannot change it under us */
	struct leap_qpair *qp;
	struct leap_ns *ns;
	uint16_t status; /* internal status: NVME_STATUS(sct, sc) | DNR */
	uint32_t cdw0;
	/* Reactor iteration clocks (leap_reactor_now_ns()): fetched, completion path started. */
	uint64_t submit_ns;
	uint64_t done_ns; /* the complete hook's now_ns; done_ns - submit_ns is the latency */
	uint32_t iovcnt;
	uint32_t dsm_done; /* DSM: ranges completed */
	uint32_t dsm_cnt;
	uint8_t bounce; /* bounce slot + 1, or 0 */
	uint8_t flags;	/* LEAP_REQ_F_* */
	struct iovec iov[LEAP_REQ_MAX_IOV];
	struct iovec bounce_iov; /* the controller's bounce buffer, when one is used */
	struct leap_bdev_io bio;
	/* Policy scratch: whatever the submit hook wants the complete hook to see. */
	uint64_t hook_data[2];
	/*
	 * Routing (set before each submit-hook run, changed by the hook):
	 * where the current part goes. cur_slba/cur_nlb is what is left of the
	 * command; rt_nlb < cur_nlb makes this part a split.
	 */
	struct leap_chan *chan;
	uint32_t rt_bdev_id; /* 0: the namespace's own backend */
	uint64_t rt_offset;  /* bytes into the target backend */
	uint64_t cur_slba;
	uint32_t cur_nlb;
	uint32_t rt_nlb;
	uint64_t byte_off;    /* bytes of the command handled by earlier parts */
	uint64_t defer_until; /* DEFER: CLOCK_MONOTONIC ns; 0: resumed by the hook's owner */
	uint16_t part;	      /* parts completed */
	uint8_t prio;	      /* enum leap_prio (include/leapio/policy.h) */
	int8_t region;	      /* tenant region holding all the data, or -1 */
	struct iovec part_iov[LEAP_REQ_MAX_IOV]; /* a split part's slice of the data */
	uint16_t part_iovcnt;
	struct leap_req *next_free; /* transport free list, or a controller wait list */
	uint16_t slot;
	bool in_use;
};

#define LEAP_REQ_F_BOUNCE_IN  (1u << 0) /* READ through bounce: copy out on completion */
#define LEAP_REQ_F_BOUNCE_OUT (1u << 1) /* WRITE through bounce: copied in before submit */
#define LEAP_REQ_F_ARB	      (1u << 2) /* counted in its arbiter's in-flight budget */

static inline uint16_t leap_req_sqid(const struct leap_req *req)
{
	return req->qp->sqid;
}

static inline struct leap_stats *leap_req_qp_stats(struct leap_req *req)
{
	return &req->qp->stats;
}

/*
 * Fill a completion entry for req except its status word, and return that
 * word (with the phase bit). The caller stores it last, with release
 * ordering, so a host polling the phase bit never sees a half-written entry.
 */
static inline uint16_t leap_req_cqe(const struct leap_req *req, uint16_t sqhd, unsigned int phase,
				    struct nvme_cqe *e)
{
	e->dw0 = req->cdw0;
	e->dw1 = 0;
	e->sqhd = sqhd;
	e->sqid = req->qp->sqid;
	e->cid = req->sqe.cid;
	return nvme_cqe_status(req->status, phase);
}

/*
 * Policy hook points. A submit hook returns LEAP_HOOK_RET_CONTINUE to go on
 * (to backend req->rt_bdev_id at rt_offset for req->rt_nlb blocks, which it may change:
 * a redirect, or a split when rt_nlb < cur_nlb: the rest runs the hook
 * again once this part completed), LEAP_HOOK_RET_SUCCESS to complete without
 * I/O, an internal NVMe status to complete with it, or LEAP_HOOK_RET_DEFER to
 * park the command: until req->defer_until (then the hook runs again), or,
 * with defer_until 0, until its owner calls leap_ctrl_resume(). A complete
 * hook returns LEAP_HOOK_RET_CONTINUE or the status to post instead.
 */
typedef uint16_t (*leap_ctrl_hook_fn)(struct leap_req *req, void *arg);

#define LEAP_HOOK_RET_CONTINUE 0
/* Bits 14:11 are never set in an internal status, so these cannot be one. */
#define LEAP_HOOK_RET_DEFER    0x7800u
#define LEAP_HOOK_RET_SUCCESS  0x7801u

/*
 * What a transport declares about itself. The controller model reflects it
 * in Identify (SGLS, IOCCSZ/IORCSZ, MSDBD, CNTRLTYPE) and in how it reads a
 * command's data pointer (PRP only where the transport shares memory).
 */
struct leap_transport_caps {
	bool fabrics;	   /* NVMe over Fabrics: Connect/Property commands, no PRP */
	bool prp;	   /* PRP entries through ctrl->mem (memory-sharing transports) */
	bool sgl_memory;   /* SGL data blocks with host addresses and segments via ctrl->mem */
	uint32_t sgls;	   /* Identify SGLS as advertised */
	uint32_t ioccsz;   /* fabrics: I/O command capsule size, 16-byte units */
	uint32_t iorcsz;   /* fabrics: I/O response capsule size, 16-byte units */
	uint8_t msdbd;	   /* fabrics: SGL data block descriptors per command (0: no limit) */
	uint8_t cntrltype; /* 1 I/O, 2 discovery */
};

/* What a transport provides. All calls happen on the controller's reactor. */
struct leap_ctrl_transport_ops {
	/* Capabilities (static for the transport's lifetime); NULL: a PRP-only memory transport. */
	const struct leap_transport_caps *caps;
	/*
	 * CC.EN 0 -> 1: bring up the admin queue (shm: from the AQA/ASQ/ACQ
	 * it owns). 0, or -errno: the controller reports CSTS.CFS. Optional.
	 */
	int (*enable)(void *t);
	/*
	 * CC.EN 1 -> 0, after the controller drained every command and
	 * aborted held AERs: drop I/O queues. -EBUSY: a slot is still held,
	 * ask again at the next poll. Optional.
	 */
	int (*disable)(void *t);
	/*
	 * Create/delete I/O queues: return an internal NVMe status (0 = success).
	 * The controller has checked qid (1..granted count), qsize (2..MQES+1),
	 * PC = 1 and page alignment of addr; the transport checks existence
	 * (Invalid Queue Identifier), the CQ an SQ names (Completion Queue
	 * Invalid), CQs still in use (Invalid Queue Deletion) and the memory.
	 */
	uint16_t (*cq_create)(void *t, uint16_t cqid, uint64_t addr, uint32_t qsize, uint16_t iv,
			      bool ien);
	uint16_t (*cq_delete)(void *t, uint16_t cqid);
	uint16_t (*sq_create)(void *t, uint16_t sqid, uint64_t addr, uint32_t qsize, uint16_t cqid,
			      uint8_t qprio);
	uint16_t (*sq_delete)(void *t, uint16_t sqid);
	/* Doorbell Buffer Config (addresses page aligned, non-zero); NULL: Invalid Command Opcode. */
	uint16_t (*dbbuf_config)(void *t, uint64_t shadow, uint64_t eventidx);
	/*
	 * Post req's completion (status, cdw0, cid) on its queue's CQ and
	 * release the slot. Also how a held Async Event Request is delivered
	 * when an event occurs (the AER notification).
	 */
	void (*complete)(void *t, struct leap_req *req);
	/*
	 * Optional: describe the command's `len`-byte data buffer as at most
	 * max_iov iovecs, for the SGL descriptors only the transport can
	 * mean: Data Block with the Offset subtype (NVMe/TCP in-capsule data)
	 * and Transport Data Blocks. The data must be in place when this
	 * returns (a write's data received; a read's buffer ready to be sent
	 * after completion). *region as in leap_prp_to_iov() (-1: not a
	 * tenant region). Returns the count or a negated internal NVMe
	 * status. PRP entries and memory SGLs (address data blocks,
	 * segments) never come here: the controller translates those itself
	 * through ctrl->mem when the transport's caps allow them.
	 */
	int (*map_data)(void *t, struct leap_req *req, uint64_t len, struct iovec *iov,
			uint32_t max_iov, int32_t *region);
	/*
	 * Optional: the live queue pairs, admin first, at most max of them
	 * (statistics read them on the reactor). Returns how many were written.
	 */
	uint32_t (*qpairs)(void *t, struct leap_qpair **out, uint32_t max);
};

/* Defaults every creator of a controller shares (the RPC layer shows them). */
#define LEAP_CTRL_NQN_PREFIX	    "nqn.2024-01.io.leapio:"
#define LEAP_CTRL_DEFAULT_IO_QUEUES 4
#define LEAP_CTRL_DEFAULT_QSIZE	    256

/*
 * Who may attach to a controller as its tenant (checked by front-ends with
 * the peer's credentials, e.g. SO_PEERCRED): root, and the listed uids and
 * members of the listed groups. No uid and no group listed: root only.
 */
#define LEAP_CTRL_MAX_OWNERS 8
struct leap_ctrl_access {
	uint32_t nuids, ngids;
	uint32_t uids[LEAP_CTRL_MAX_OWNERS];
	uint32_t gids[LEAP_CTRL_MAX_OWNERS];
};

/* May a peer with `uid` and groups gids[0..ngids) attach? */
static inline bool leap_ctrl_access_allows(const struct leap_ctrl_access *a, uint32_t uid,
					   const uint32_t *gids, uint32_t ngids)
{
	if (uid == 0)
		return true;
	for (uint32_t i = 0; i < a->nuids; i++)
		if (a->uids[i] == uid)
			return true;
	for (uint32_t i = 0; i < a->ngids; i++)
		for (uint32_t k = 0; k < ngids; k++)
			if (a->gids[i] == gids[k])
				return true;
	return false;
}

struct leap_ctrl_opts {
	const char *name;	/* unique */
	const char *nqn;	/* NULL: LEAP_CTRL_NQN_PREFIX<name> */
	const char *serial;	/* NULL: leap_ctrl_default_serial(name) */
	uint32_t max_io_queues; /* I/O queue pairs (0: LEAP_CTRL_DEFAULT_IO_QUEUES, max 64) */
	uint32_t max_qsize;	/* entries per I/O queue (0: LEAP_CTRL_DEFAULT_QSIZE, max 4096) */
	const struct leap_ctrl_access *access; /* NULL: root only */
};

/* The serial a controller named `name` gets by default: stable across restarts. */
void leap_ctrl_default_serial(char *buf, size_t len, const char *name);

/* Controller properties (NVMe Base 2.0, 3.1.4): the register file every transport shares. */
struct leap_ctrl_regs {
	uint64_t cap;
	uint32_t vs;
	uint32_t cc;
	uint32_t csts;
	uint32_t aqa;
	uint64_t asq, acq;
};

enum leap_regs_state {
	LEAP_REGS_STEADY = 0,
	LEAP_REGS_RESETTING, /* CC.EN 1 -> 0: draining, then the transport drops queues */
	LEAP_REGS_SHN_DRAIN, /* CC.SHN: draining in-flight commands */
	LEAP_REGS_SHN_FLUSH, /* ... then flushing every namespace's backend */
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

	/* Features (reset by leap_ctrl_reset) */
	uint16_t nr_sq, nr_cq; /* granted by Set Features Number of Queues; 0 = not asked */
	uint32_t arbitration;
	uint32_t aec;
	uint32_t kato;
	uint16_t temp_thresh; /* kelvin */
	bool vwc;	      /* volatile write cache enabled; off: every write is FUA */

	/* Async events and logs */
	struct leap_req *aer[LEAP_CTRL_AERL + 1];
	uint32_t aer_cnt;
	uint32_t aen[LEAP_CTRL_AEN_QUEUE]; /* pending events, as AER completion dw0 */
	uint32_t aen_cnt;
	uint8_t aen_masked; /* event types raised and not yet cleared by their log page */
	uint8_t aen_lid[8]; /* per event type: the log page that clears it */
	/* Namespaces (bit nsid - 1) added since log page 04h was last read. */
	uint32_t changed_ns;
	struct nvme_error_log_entry errlog[LEAP_CTRL_ERRLOG];
	uint64_t error_count;
	struct leap_stats stats;
	uint64_t media_errors;
	uint64_t create_ns; /* for power-on hours */

	/* Bounce buffers: LEAP_CTRL_BOUNCE_SLOTS x LEAP_CTRL_MAX_XFER bytes, page aligned. */
	uint8_t *bounce;
	uint32_t bounce_free; /* bitmap of free slots */
	struct leap_req *bounce_wait_head, *bounce_wait_tail;
	uint32_t deferred;	     /* requests a submit hook parked */
	uint32_t deferred_untimed;   /* ... of which wait for leap_ctrl_resume(), not a time */
	struct leap_req *defer_head; /* timed deferrals, by defer_until */
	bool defer_rerun;	     /* leap_ctrl_poll is re-running a due deferral */
	bool defer_again;	     /* ... and it was deferred again */
	uint32_t arb_queued;	     /* requests waiting in an arbiter's class queues */
	struct leap_chan rchan[LEAP_CTRL_MAX_RCHAN]; /* redirect targets */
	uint64_t route_errors; /* redirects to missing backends or past their end */

	/* Hooks */
	leap_ctrl_hook_fn hook_submit;
	void *hook_submit_arg;
	leap_ctrl_hook_fn hook_complete;
	void *hook_complete_arg;

	/* Registers (nvme/regs.c); regs_state != STEADY makes leap_ctrl_poll() progress them. */
	struct leap_ctrl_regs regs;
	uint8_t regs_state;   /* enum leap_regs_state */
	uint32_t shn_pending; /* shutdown flushes outstanding */
	int shn_err;	      /* first failed flush */
	uint64_t shn_ios;     /* commands completed when the shutdown flush was issued */
	struct leap_bdev_io
	    shn_io[LEAP_CTRL_MAX_NS]; /* pre-allocated: shutdown allocates nothing */

	/* Transport */
	const struct leap_ctrl_transport_ops *tops;
	void *transport;
	struct leap_ctrl *next; /* registry */
	uint32_t refs;		/* attached transports */

	/*
	 * Fabrics access control: the hosts (by NQN) a network transport lets
	 * connect. Written by the control thread and read by listener threads,
	 * both under the registry lock. Memory transports (shm) ignore it.
	 */
	bool allow_any_host;
	uint32_t nhosts;
	char hosts[LEAP_CTRL_MAX_HOSTS][LEAP_CTRL_NQN_LEN];
	struct leap_ctrl_access access; /* fixed at creation; read by front-ends at attach */
};

/* ---- lifecycle and namespaces (control thread; see ctrl.c for locking) ---- */

/*
 * Create and register a controller. -EINVAL (bad name or limits), -EEXIST
 * (name taken), -ENOMEM. Allocates everything the data path will need.
 */
int leap_ctrl_create(const struct leap_ctrl_opts *opts, struct leap_ctrl **out);
/* Remove namespaces, unregister and free. -EBUSY while a tenant is attached. */
int leap_ctrl_destroy(struct leap_ctrl *ctrl);
/* Look up by name (no reference taken), or iterate (NULL starts). */
struct leap_ctrl *leap_ctrl_find(const char *name);
/*
 * Claim the controller for a tenant, under the registry lock so that a
 * concurrent leap_ctrl_destroy() either fails with -EBUSY or has already
 * removed it: -ENOENT, -EBUSY (another tenant holds it), or 0.
 */
int leap_ctrl_attach(const char *name, struct leap_ctrl **out);
void leap_ctrl_detach(struct leap_ctrl *ctrl);
struct leap_ctrl *leap_ctrl_next(struct leap_ctrl *prev);

/* ---- fabrics access control (any thread; the registry lock is taken inside) ---- */

/*
 * Allow host `hostnqn` to connect. -EINVAL (not "nqn." + printable, or
 * longer than 223 bytes), -EEXIST (listed already), -ENOSPC (list full).
 */
int leap_ctrl_host_add(struct leap_ctrl *ctrl, const char *hostnqn);
/* Take a host off the allow-list (existing connections stay). -ENOENT if not listed. */
int leap_ctrl_host_remove(struct leap_ctrl *ctrl, const char *hostnqn);
/* Let every host connect (true) or only listed ones (false, the default). */
void leap_ctrl_set_allow_any_host(struct leap_ctrl *ctrl, bool allow);
/* May `hostnqn` connect to ctrl? */
bool leap_ctrl_host_allowed(struct leap_ctrl *ctrl, const char *hostnqn);
/*
 * leap_ctrl_attach() for a network host: find the controller whose NQN is
 * `subnqn`, check that `hostnqn` may connect, and claim it, all under the
 * registry lock. -ENOENT (no such subsystem), -EACCES (host not allowed),
 * -EBUSY (another transport or host holds it), or 0 with *out set.
 */
int leap_ctrl_attach_nqn(const char *subnqn, const char *hostnqn, struct leap_ctrl **out);
/*
 * Call fn(ctrl, arg) for every controller `hostnqn` may connect to, in
 * registry order, under the registry lock (fn must not call back into the
 * registry; it may read the controller's name, NQN and cntlid). Returns
 * how many controllers were visited.
 */
uint32_t leap_ctrl_for_each_allowed(const char *hostnqn,
				    void (*fn)(const struct leap_ctrl *ctrl, void *arg), void *arg);

/*
 * Add namespace `nsid` (0: lowest free) backed by bdev[offset, offset+size)
 * with `lba_size` 512 or 4096. size 0: the rest of the bdev. Takes a bdev
 * reference. -ENOENT (no such bdev), -EEXIST, -ENOSPC, -ERANGE (past the
 * bdev's end), -EINVAL (alignment, lba size). Returns the nsid. NGUID,
 * EUI-64 and UUID are derived from (controller, nsid, bdev) so they are
 * unique per namespace and stable across restarts of the same config.
 * Opens the namespace's backend channel here, so that no command waits for
 * it (or the backend's -errno: the namespace is not added). Call before a
 * tenant attaches, or on the controller's reactor, which then owns the
 * channel.
 */
int leap_ctrl_ns_add(struct leap_ctrl *ctrl, uint32_t nsid, const char *bdev_name, uint64_t offset,
		     uint64_t size, uint32_t lba_size);
/* Drop a namespace and its bdev reference. -ENOENT, -EBUSY (I/O in flight). */
int leap_ctrl_ns_remove(struct leap_ctrl *ctrl, uint32_t nsid);
static inline struct leap_ns *leap_ctrl_ns(struct leap_ctrl *ctrl, uint32_t nsid)
{
	if (nsid == 0 || nsid > LEAP_CTRL_MAX_NS || ctrl->ns[nsid - 1].nsid == 0)
		return NULL;
	return &ctrl->ns[nsid - 1];
}

/*
 * Statistics for the control plane (any thread): a racy-but-monotonic
 * snapshot of the controller's I/O statistics (nsid 0) or one namespace's,
 * written to *out (overwritten). -ENOENT for an unknown namespace.
 */
int leap_ctrl_stats_snapshot(struct leap_ctrl *ctrl, uint32_t nsid, struct leap_stats *out);

/* ---- queue pair helpers (for transports that want a slot pool) ---------- */

/*
 * Set up qp for queue `sqid` completing on `cqid`, with `nreqs` request
 * slots (0: none; the transport manages its own). -ENOMEM.
 */
int leap_qpair_init(struct leap_qpair *qp, struct leap_ctrl *ctrl, uint16_t sqid, uint16_t cqid,
		    uint32_t size, uint32_t nreqs);
/* Free the slot pool. Accepts a zeroed or half-built qp. */
void leap_qpair_fini(struct leap_qpair *qp);

/* A free slot, or NULL when all are busy (the transport stops fetching). */
static inline struct leap_req *leap_qpair_req_get(struct leap_qpair *qp)
{
	struct leap_req *req = qp->free_reqs;

	if (!req)
		return NULL;
	qp->free_reqs = req->next_free;
	req->next_free = NULL;
	req->in_use = true;
	qp->busy++;
	return req;
}

static inline void leap_qpair_req_put(struct leap_qpair *qp, struct leap_req *req)
{
	req->in_use = false;
	req->next_free = qp->free_reqs;
	qp->free_reqs = req;
	qp->busy--;
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
 * Continue a request a submit hook deferred (LEAP_HOOK_RET_DEFER), with
 * `status` 0 to send it to the backend or an internal status to fail it.
 */
void leap_ctrl_resume(struct leap_ctrl *ctrl, struct leap_req *req, uint16_t status);

/*
 * Poll the controller's backend channels and resubmit commands that found
 * the backend full. Returns LEAP_POLL_BUSY/IDLE (reactor.h).
 */
int leap_ctrl_poll(struct leap_ctrl *ctrl);
/*
 * When the earliest timed deferral is due (CLOCK_MONOTONIC ns), or 0 when
 * none is parked: a front-end hands it to leap_poller_wake_at() so the
 * reactor sleeps until then instead of spinning for a rate-limited tenant.
 */
static inline uint64_t leap_ctrl_next_deadline(const struct leap_ctrl *ctrl)
{
	return ctrl->defer_head ? ctrl->defer_head->defer_until : 0;
}

/* Commands accepted for I/O and not yet completed (backend, waiting, deferred). */
uint32_t leap_ctrl_inflight(const struct leap_ctrl *ctrl);
/* Register a new tenant region on every open channel (reactor thread). */
void leap_ctrl_region_added(struct leap_ctrl *ctrl, uint32_t region);
/*
 * The tenant is gone (reactor thread, nothing in flight): unregister its
 * regions from the namespaces' channels, which stay open until their
 * namespace goes, and close the policy redirect targets' channels.
 */
void leap_ctrl_channels_close(struct leap_ctrl *ctrl);

/* Complete every held Async Event Request with Aborted (SQ deletion), e.g. on detach. */
void leap_ctrl_abort_aers(struct leap_ctrl *ctrl);

/*
 * A departing tenant: complete with Aborted (SQ deletion) every command
 * that has not reached a backend — parked by a submit hook until a time
 * (a rate limit could hold them indefinitely), waiting for a bounce buffer,
 * queued in an arbiter, or waiting for room in a backend queue — so that
 * detaching waits only for I/O a backend really has. Commands parked
 * until leap_ctrl_resume() stay with their owner. Reactor thread; returns
 * how many were aborted.
 */
uint32_t leap_ctrl_abort_queued(struct leap_ctrl *ctrl);

/*
 * Controller reset (CC.EN 1 -> 0) or a new tenant: abort held AERs, forget
 * pending events, return every feature to its default. Reactor thread, no
 * I/O in flight. Statistics, logs and namespaces survive.
 */
void leap_ctrl_reset(struct leap_ctrl *ctrl);

/*
 * Raise an asynchronous event (NVMe Base 2.0, 5.2): `type` (0 error,
 * 1 SMART/health, 2 notice), `info` and the log page that clears it.
 * Completes a held AER now or remembers the event for the next one. Events
 * of a type already posted and not yet cleared (Get Log Page with RAE = 0)
 * are dropped, as are notices the host did not enable (Async Event Config).
 * Returns 0, or -ENOSPC when the event queue is full (event dropped).
 * On the controller's reactor (post a message from elsewhere).
 */
int leap_ctrl_aen(struct leap_ctrl *ctrl, uint8_t type, uint8_t info, uint8_t lid);

/* Record a failed command in the error log (used by transports for their own errors). */
void leap_ctrl_log_error(struct leap_ctrl *ctrl, const struct leap_req *req);

/* Finish a request: update statistics and the error log, run the complete hook, post it. */
void leap_ctrl_complete(struct leap_ctrl *ctrl, struct leap_req *req);

/* Admin half (ctrl_admin.c) and I/O half (ctrl_io.c) of leap_ctrl_submit. */
void leap_ctrl_admin(struct leap_ctrl *ctrl, struct leap_req *req);
void leap_ctrl_io(struct leap_ctrl *ctrl, struct leap_req *req);

/*
 * Map the command's data buffer by its PSDT: PRPs and memory SGLs through
 * ctrl->mem (where the transport's caps allow them), transport SGL
 * descriptors through the transport's map_data. Returns the iovec count
 * or a negated internal status.
 */
int leap_ctrl_map_data(struct leap_ctrl *ctrl, struct leap_req *req, uint64_t len,
		       struct iovec *iov, uint32_t max_iov, int32_t *region);

/* ---- transport binding and registers (nvme/regs.c; reactor thread) ----------- */

/*
 * Bind a transport to the controller (a tenant or host attached) and set
 * the registers to their reset values: CAP from the controller's limits,
 * VS 1.4, CC = CSTS = 0. leap_ctrl_transport_unbind() forgets it.
 */
void leap_ctrl_transport_bind(struct leap_ctrl *ctrl, const struct leap_ctrl_transport_ops *tops,
			      void *t);
void leap_ctrl_transport_unbind(struct leap_ctrl *ctrl);

/* The transport's capabilities (a PRP-only default when it declares none). */
const struct leap_transport_caps *leap_ctrl_caps(const struct leap_ctrl *ctrl);

/*
 * Property Get/Set (Fabrics) and the shm front-end's register writes.
 * `ofst` is the register offset (NVME_REG_*), `size` 4 or 8 bytes as the
 * register is wide. Returns 0 or an internal NVMe status (Invalid Field
 * for an unknown offset, a wrong size or a read-only register). Setting
 * CC starts the enable, reset or shutdown sequence: enable is immediate;
 * reset and shutdown complete from leap_ctrl_poll() once in-flight
 * commands have drained (and, for shutdown, every backend is flushed), so
 * CSTS.RDY / CSTS.SHST report only what is really true.
 */
uint16_t leap_ctrl_prop_get(struct leap_ctrl *ctrl, uint32_t ofst, uint32_t size, uint64_t *val);
uint16_t leap_ctrl_prop_set(struct leap_ctrl *ctrl, uint32_t ofst, uint32_t size, uint64_t val);

/* Controller Fatal Status (a transport saw a host bug it cannot recover from). */
void leap_ctrl_fatal(struct leap_ctrl *ctrl);

/* CSTS.RDY: the controller processes commands. */
static inline bool leap_ctrl_ready(const struct leap_ctrl *ctrl)
{
	return (ctrl->regs.csts & (NVME_CSTS_RDY | NVME_CSTS_CFS)) == NVME_CSTS_RDY;
}

/* The reactor that serves controller `ctrl` among n: one mapping for every front-end. */
static inline uint32_t leap_ctrl_reactor_index(uint16_t cntlid, uint32_t n)
{
	return n ? cntlid % n : 0;
}

/* CLOCK_MONOTONIC in ns (vDSO: no syscall). */
uint64_t leap_now_ns(void);

#endif /* LEAPIO_RUNTIME_CTRL_H */
