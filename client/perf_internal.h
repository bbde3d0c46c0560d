/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to leap-perf: the workload and statistics core (leap_perf_main.c)
 * and the transports that carry its I/O behind one ops table, shared memory
 * to leapd (perf_shm.c) and NVMe/TCP to any target (perf_tcp.c). The core
 * decides what each I/O is (LBA, direction, pattern) and accounts for its
 * completion; a transport connects, owns the queues and runs the polling
 * loop, because the two libraries reap in opposite ways (the shm client
 * hands back CQEs, the NVMe/TCP host calls back from inside its poll).
 */
#ifndef LEAPIO_PERF_INTERNAL_H
#define LEAPIO_PERF_INTERNAL_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "leapio/client.h"
#include "leapio/nvmf_host.h"

#define PERF_SUB       16 /* histogram sub-buckets per power of two */
#define PERF_NBUCKET   (64 * PERF_SUB)
#define PERF_MAX_CTRLS 64

struct perf_qp;

/* One I/O buffer and what is in flight in it. */
struct perf_slot {
	uint8_t *buf;
	struct perf_qp *q;
	struct iovec iov; /* TCP: {buf, iosize}, set once */
	uint64_t lba;
	uint64_t start_ns;
	bool write;
	bool busy;
};

/* One controller (shm attach or NVMe/TCP association) and its namespace geometry. */
struct perf_ctrl {
	const char *name; /* shm: the controller's name; TCP: the transport ID as given */
	uint64_t nlb, span_lbas;
	uint32_t lba_size;
	uint32_t max_qpairs; /* what the controller grants */
	uint32_t max_qd;     /* deepest queue it allows */
	/* shm */
	struct leap_client *client;
	int fd; /* completion eventfd (--irq), shared by its queue pairs */
	/* NVMe/TCP */
	struct leap_nvmf_trid trid;
	struct leap_nvmf_ctrl *nvmf;
};

struct perf_qp {
	struct perf *p;
	struct perf_ctrl *cs;
	void *qp; /* struct leap_client_qpair or struct leap_nvmf_qpair */
	struct perf_slot *slots;
	uint16_t *free_cids; /* stack of idle slots: no scan of all QD slots per pass */
	uint32_t nfree, nslots;
	uint64_t now; /* TCP: the clock read once per poll by the first completion */
	bool pollout; /* TCP --irq: EPOLLOUT is armed for this queue */
};

struct perf_transport;

struct perf {
	const char *sock, *workload;
	const struct perf_transport *tr;
	uint32_t nsid, qd, iosize, qpairs, seconds, mix, poll_us;
	int connect_timeout_ms;
	bool verify, json, random;
	int wait; /* how the thread waits for completions (PERF_WAIT_*) */
	uint64_t last_pass_ns, idle_since, contended_until; /* perf_idle()'s state */
	cpu_set_t cpus;					    /* the CPUs we were allowed at start */
	uint32_t shared_checks; /* consecutive checks that found the reactor on our CPU */
	uint64_t moves;		/* times we left the reactor's CPU */
	int wmode;		/* PERF_WM_*: decided once, not by string compares per I/O */
	uint64_t span_bytes, seed;
	struct perf_ctrl ctrls[PERF_MAX_CTRLS];
	uint32_t nctrls;
	uint64_t sleeps;
	double cpu_pct; /* this process's CPU time over the measured run, % of one CPU */
	uint64_t ios, reads, writes, errors, mismatches, bytes;
	uint64_t lat_sum;
	uint64_t lat_max; /* worst single I/O: the stall a live replace may cause */
	uint64_t hist[PERF_NBUCKET];
	uint64_t rng;
	uint64_t seq_next;
	uint16_t first_err_status;
	/* The current run (one fill pass or the measured one). */
	bool fill_pass, stop;
	uint32_t inflight;
	uint64_t fill_issued, fill_units;
	/* NVMe/TCP: syscall counters over the measured run, for the report; --irq's epoll. */
	uint64_t recv_calls, send_calls;
	int epfd;
};

enum { PERF_WM_READ, PERF_WM_WRITE, PERF_WM_MIX };
enum { PERF_WAIT_ADAPTIVE, PERF_WAIT_POLL, PERF_WAIT_IRQ };

/* Every mode but --poll may sleep: the queues must be able to wake the thread. */
static inline bool perf_may_sleep(const struct perf *p)
{
	return p->wait != PERF_WAIT_POLL;
}

/*
 * Once per pass of a transport's loop, with that pass's clock read, whether
 * it reaped or started anything and whether the target's thread runs on
 * this CPU (if the transport can tell): true when the thread should sleep
 * on its queues now (see leap_perf_main.c).
 */
bool perf_idle(struct perf *p, bool progress, bool peer_here, uint64_t now);

struct perf_transport {
	const char *name; /* "shm" or "tcp", as in the JSON report */
	/*
	 * Reach the controller and read namespace p->nsid: fills nlb, lba_size,
	 * max_qpairs, max_qd. Returns 0, or 1 after printing why.
	 */
	int (*attach)(struct perf *p, struct perf_ctrl *cs);
	/* p->qpairs queue pairs with `nslots` I/O slots each: 0, or 1 after printing why. */
	int (*setup_qpairs)(struct perf *p, struct perf_ctrl *cs, struct perf_qp *qs,
			    uint32_t nslots);
	/*
	 * Drive qs[0..nq) until `deadline` (or, in a fill pass, until every
	 * unit was written once), then wait for what is in flight. Returns 0,
	 * -EPIPE when the peer went away (printed), -EIO on a submit failure.
	 */
	int (*run)(struct perf *p, struct perf_qp *qs, uint32_t nq, uint64_t deadline);
	/* Release the queues (nothing is in flight) and the controller. NULL-safe. */
	void (*teardown)(struct perf *p, struct perf_qp *qs, uint32_t nq);
};

extern const struct perf_transport perf_shm;
extern const struct perf_transport perf_tcp;

/* ---- the core, for the transports (leap_perf_main.c) ---- */

uint64_t perf_now_ns(void);
/* The next I/O of the run for slot `s` of `q`: its LBA and direction, the pattern written. */
void perf_prepare(struct perf *p, struct perf_qp *q, struct perf_slot *s, uint64_t now);
/* Ask whether another I/O may start (false once stopping or the fill pass is complete). */
bool perf_want_more(struct perf *p);
/*
 * Account one completion of slot `s` (`status` as in the CQE without the
 * phase bit: 0 is success), `now` the batch's clock. Clears s->busy.
 */
void perf_complete(struct perf *p, struct perf_slot *s, uint16_t status, uint64_t now);
/* Undo perf_prepare() for an I/O that could not be submitted after all. */
void perf_cancel(struct perf *p, struct perf_slot *s);

#endif /* LEAPIO_PERF_INTERNAL_H */
