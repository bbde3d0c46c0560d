/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The shared-memory front-end (include/leapio/shm_abi.h is its wire ABI).
 *
 * A listener thread accepts tenants on a Unix socket and runs the attach
 * and region protocol; each attached controller gets a poller on the
 * controller's reactor (shm_queue.c) that fetches commands from its queue
 * rings, feeds them to the controller model (ctrl.h), and posts
 * completions. The listener talks to reactors only by message.
 */
#ifndef LEAPIO_RUNTIME_SHM_H
#define LEAPIO_RUNTIME_SHM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "leapio/shm_abi.h"
#include "nvme/ctrl.h"

struct leap_reactor;
struct leap_poller;
struct leap_shm_listener;

struct shm_cq {
	struct nvme_cqe *ring;
	uint32_t size;
	uint32_t tail;
	uint32_t head;	   /* last head doorbell value seen */
	uint32_t reserved; /* commands fetched for this CQ, not yet posted */
	uint16_t vector;
	uint8_t phase;
	bool ien;
	bool active;
	bool signal; /* posted entries this iteration: write the vector's eventfd */
	uint32_t sq_refs;
};

struct shm_sq {
	struct leap_qpair qp;
	struct nvme_sqe *ring;
	uint32_t size;
	uint32_t head;
	uint16_t cqid;
	bool active;
	struct leap_req *reqs; /* request pool */
	struct leap_req *free_reqs;
	uint32_t pool, busy;
};

/* Groups of a peer kept for controller access checks; a member of more is judged by these. */
#define LEAP_SHM_MAX_PEER_GROUPS 64

/* One attached tenant: owned by the listener, run by the controller's reactor. */
struct shm_conn {
	struct leap_ctrl *ctrl;
	struct leap_reactor *reactor;
	struct leap_poller *poller;
	int sock;
	int area_fd;
	int kick_fd;
	int vectors[LEAP_SHM_MAX_VECTORS];
	uint32_t nr_vectors;
	uint8_t *area;
	struct leap_shm_area_hdr *hdr;
	volatile uint32_t *db; /* MMIO doorbells (area page 1) */
	uint32_t *shadow;      /* Doorbell Buffer Config, or NULL */
	uint32_t *eventidx;
	int region_fds[LEAP_SHM_MAX_REGIONS];
	size_t region_maplen[LEAP_SHM_MAX_REGIONS];
	struct shm_sq sq[LEAP_SHM_MAX_QUEUES + 1]; /* [0] admin */
	struct shm_cq cq[LEAP_SHM_MAX_QUEUES + 1];
	/*
	 * Ids of the active SQs (admin first when enabled) and of the CQs with
	 * posted entries to signal: the per-iteration loops walk these, not
	 * all LEAP_SHM_MAX_QUEUES + 1 slots (cold cache lines per poll).
	 */
	uint16_t sq_ids[LEAP_SHM_MAX_QUEUES + 1];
	uint32_t nsq;
	uint16_t sig_cqs[LEAP_SHM_MAX_QUEUES + 1];
	uint32_t nsig;
	/* Backend channels armed for the current sleep (sleep_prepare .. sleep_done). */
	struct leap_bdev_channel *armed[LEAP_CTRL_MAX_NS + LEAP_CTRL_MAX_RCHAN];
	uint32_t narmed;
	uint32_t cc_seen;    /* the tenant's CC as last handed to the controller */
	uint32_t csts_seen;  /* the controller's CSTS as last published to the tenant */
	uint32_t reactor_on; /* what we last stored in the area's reactor_on */
	bool enabled;	     /* admin queue set up (transport enable op ran) */
	bool fatal;	     /* CSTS.CFS: stop processing */
	bool detaching;
	bool detached; /* reactor finished with it */
	void (*detach_done)(void *arg);
	void *detach_arg;
	/* Listener only: who connected (SO_PEERCRED at accept) and what leapd holds for it. */
	uid_t uid;
	gid_t gid;
	pid_t pid;
	uint32_t ngids; /* the peer's groups (SO_PEERGROUPS, primary first), for access checks */
	uint32_t gids[LEAP_SHM_MAX_PEER_GROUPS];
	uint64_t deadline_ms; /* CLOCK_MONOTONIC ms by which it must attach; 0 once attached */
	uint32_t nregions;    /* region memfds held (region_fds[0..nregions)) */
	bool zombie;	      /* detach sent to the reactor; freed when it reports back */
	bool parked;	      /* its attach waits for a detaching tenant to free the controller */
	struct leap_shm_attach parked_msg;
	struct leap_shm_listener *listener;
	struct shm_conn *reap_next; /* the listener's list of finished detaches */
	struct shm_conn *next;
};

/* ---- shm_admit.c (listener thread) ----------------------------------------- */

#define LEAP_SHM_MAX_CONNS 1024 /* tenant connections in all (the listener's poll set) */

/* What tenants may make leapd hold (see shm_admit.c). */
struct leap_shm_limits {
	uint32_t max_conns;	  /* connections of all tenants */
	uint32_t pending_per_uid; /* connections of one uid that have not attached yet */
	uint32_t conns_per_uid;	  /* connections of one uid */
	uint32_t handshake_ms;	  /* time from connect to a completed attach */
	uint32_t fd_budget;	  /* descriptors all tenants together may make leapd hold */
	uint32_t fd_quota;	  /* ... one uid */
};

/*
 * Defaults, the descriptor budget derived from the current RLIMIT_NOFILE
 * (a quarter, 64..1024, stays for leapd itself; one uid gets a quarter of
 * the rest, never less than one attach with every vector and region).
 */
void leap_shm_limits_default(struct leap_shm_limits *lim);
/* Descriptors leapd holds for `c` (its socket included). */
uint32_t shm_conn_fds(const struct shm_conn *c);
/*
 * May a new connection from `uid` be served, given the list `conns`
 * (nconns long)? 0, or -EUSERS / -EMFILE with the reason in `why`.
 */
int shm_admit_conn(const struct leap_shm_limits *lim, const struct shm_conn *conns, uint32_t nconns,
		   uid_t uid, char *why, size_t whysz);
/* May `self` make leapd hold `need` more descriptors? 0, or -EMFILE with the reason. */
int shm_admit_fds(const struct leap_shm_limits *lim, const struct shm_conn *conns,
		  const struct shm_conn *self, uint32_t need, char *why, size_t whysz);
/*
 * Receive one message (non-blocking) with at most one descriptor: any more
 * are closed by the kernel and reported as MSG_CTRUNC in *flags, as is a
 * descriptor leapd had no room for. *fd gets it, or -1. Bytes, or -errno.
 */
ssize_t shm_recv(int sock, void *buf, size_t len, int *fd, int *flags);

/* ---- shm_queue.c (reactor side) ---------------------------------------- */

extern const struct leap_ctrl_transport_ops leap_shm_transport_ops;

/* Set up the area's registers; runs on the listener before the poller starts. */
void leap_shm_conn_init_area(struct shm_conn *c);
/* Register the connection's poller on its reactor (reactor thread). */
int leap_shm_conn_start(struct shm_conn *c);
/*
 * Begin detaching (reactor thread): stop fetching, let in-flight I/O drain,
 * then unregister and call c->detach_done(c->detach_arg) on the reactor.
 */
void leap_shm_conn_detach(struct shm_conn *c);

/* ---- shm_listener.c (control side) ---------------------------------------- */

/*
 * Listen for tenants on `path` (created 0600; an existing socket file is
 * replaced). Controllers are served by reactors[leap_ctrl_reactor_index()].
 */
int leap_shm_listener_start(const char *path, struct leap_reactor **reactors, uint32_t n,
			    struct leap_shm_listener **out);
/* Close the socket, detach every tenant (draining its I/O), join the thread. */
void leap_shm_listener_stop(struct leap_shm_listener *l);
/*
 * Open the tenant socket to group `gid` (tenants need not be root): the
 * socket becomes root:gid 0660 and its directory, when it is ours and does
 * not let the group through, gets that group and g+x. 0 or -errno.
 * Which tenant may use which controller is still each controller's
 * access list (struct leap_ctrl_access), checked at attach.
 */
int leap_shm_listener_share(struct leap_shm_listener *l, gid_t gid);
/* Tenants currently attached. */
uint32_t leap_shm_listener_conn_count(struct leap_shm_listener *l);

#endif /* LEAPIO_RUNTIME_SHM_H */
