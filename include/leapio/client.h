/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The tenant-side library for leapd's shared-memory NVMe controllers
 * (ABI: include/leapio/shm_abi.h). It attaches, shares one memory region,
 * enables the controller, configures shadow doorbells, creates I/O queue
 * pairs and submits/reaps commands. Used by leap-perf and the fio engine.
 *
 * Threading: a client's admin calls are not thread-safe; each queue pair
 * must be used by one thread at a time. Nothing here allocates per I/O.
 */
#ifndef LEAPIO_CLIENT_H
#define LEAPIO_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leapio/nvme_spec.h"

struct leap_client;
struct leap_client_qpair;

struct leap_client_opts {
	const char *socket;  /* leapd's tenant socket */
	const char *ctrl;    /* controller name */
	size_t mem_size;     /* bytes of shared memory for queues and buffers (default 64 MiB) */
	uint32_t nr_vectors; /* completion vectors to ask leapd for (default 1) */
	/* Error text on failure (e.g. leapd's reason for refusing the attach). */
	char *errbuf;
	size_t errbuf_sz;
};

/*
 * Attach and bring the controller up: CC.EN, wait for CSTS.RDY, Set
 * Features Number of Queues, Doorbell Buffer Config. 0 or -errno
 * (-ECONNREFUSED/-ENOENT no leapd, -ENOENT unknown controller, -EBUSY taken).
 */
int leap_client_attach(const struct leap_client_opts *opts, struct leap_client **out);
/* Detach: disables the controller, closes everything (queue pairs not destroyed too). NULL-safe. */
void leap_client_detach(struct leap_client *c);

/* I/O queue pairs granted by Set Features Number of Queues. */
uint32_t leap_client_max_qpairs(const struct leap_client *c);
uint32_t leap_client_max_qsize(const struct leap_client *c);

/* Allocate from the shared region (never freed before detach). NULL when full. */
void *leap_client_alloc(struct leap_client *c, size_t len, size_t align);

/*
 * Run one admin command synchronously (cid is assigned here). Fills *cqe.
 * Returns 0 when the command completed (check cqe->status), -ETIMEDOUT,
 * -EIO if the controller reported a fatal status.
 */
int leap_client_admin(struct leap_client *c, struct nvme_sqe *sqe, struct nvme_cqe *cqe);

/* Identify namespace helper: size in blocks and LBA size (0 / -errno). */
int leap_client_ns_info(struct leap_client *c, uint32_t nsid, uint64_t *nlb, uint32_t *lba_size);

/*
 * Create an I/O queue pair with `qsize` entries (CQ id == SQ id). With
 * `irq`, completions also make leap_client_qpair_fd() readable.
 */
int leap_client_qpair_create(struct leap_client *c, uint32_t qsize, bool irq,
			     struct leap_client_qpair **out);
/* Delete the queues (must have nothing outstanding). NULL-safe. */
int leap_client_qpair_destroy(struct leap_client_qpair *qp);

/*
 * Fill the data pointer of `sqe` for `len` bytes at `buf` (inside the shared
 * region), using this slot's PRP list page when needed. `slot` < qsize.
 */
int leap_client_prp(struct leap_client_qpair *qp, struct nvme_sqe *sqe, uint16_t slot,
		    const void *buf, size_t len);

/* Queue one command (the caller chose sqe->cid); -EBUSY if the SQ is full. Doorbell not rung. */
int leap_client_submit(struct leap_client_qpair *qp, const struct nvme_sqe *sqe);
/* Ring the SQ doorbell for everything queued since the last ring (batching). */
void leap_client_ring(struct leap_client_qpair *qp);

/* Copy up to `max` completions into `out`; frees their CQ slots. Returns the count. */
int leap_client_poll(struct leap_client_qpair *qp, struct nvme_cqe *out, int max);
/*
 * Block until the completion vector fires or timeout_ms passes (irq qpairs),
 * then drain it; returns at once (1) if a completion is already in the CQ.
 * A masked vector is unmasked for the wait and masked again after it.
 */
int leap_client_wait(struct leap_client_qpair *qp, int timeout_ms);
/* True if the CQ holds a completion leap_client_poll() would return. No syscall. */
bool leap_client_pending(const struct leap_client_qpair *qp);
/*
 * Interrupt masking for irq qpairs (shm_abi.h, point 6; NVMe's INTMS/INTMC):
 * while the qpair's vector is masked, leapd posts completions without
 * signalling it, so a thread that polls costs leapd no syscall per batch.
 * The mask is per vector: it covers every qpair on the same vector.
 * Vectors start unmasked. To sleep: leap_client_irq_unmask(), which returns
 * true if this qpair's CQ already holds a completion (then poll instead;
 * check other qpairs on the vector with leap_client_pending()), block on
 * the fd, drain it, mask again.
 */
void leap_client_irq_mask(struct leap_client_qpair *qp);
bool leap_client_irq_unmask(struct leap_client_qpair *qp);
/*
 * True when leapd's reactor for this controller runs on the CPU where
 * leap_client_poll() last ran for this qpair (shm_abi.h, point 7):
 * it cannot complete anything while we poll, so an idle thread should sleep
 * now rather than spin. No syscall.
 */
bool leap_client_reactor_here(const struct leap_client_qpair *qp);
/*
 * The completion vector of an irq qpair (-1 otherwise): the read end of a
 * pipe leapd writes to, readable after completions were posted. Shared by
 * the qpairs on the same vector. Poll it yourself and empty it with
 * leap_client_vector_drain() before looking at the CQs.
 */
int leap_client_qpair_fd(const struct leap_client_qpair *qp);
void leap_client_vector_drain(int fd);
uint16_t leap_client_qpair_id(const struct leap_client_qpair *qp);

/*
 * False once leapd has gone away (its end of the socket closed) or declared
 * the controller fatal: pending commands will never complete. One poll()
 * syscall: call it now and then while waiting, not per completion.
 */
bool leap_client_alive(struct leap_client *c);

/*
 * Shut the controller down (CC.SHN = normal) and wait for CSTS.SHST to read
 * "complete": leapd reports it only after every command in flight finished
 * and every namespace's backend was flushed. 0, -ETIMEDOUT or -EIO
 * (controller fatal). The queues stay usable for reaping completions.
 */
int leap_client_shutdown(struct leap_client *c, int timeout_ms);

/* Raw access for tests that craft bad input. */
volatile uint32_t *leap_client_doorbells(struct leap_client *c);
uint32_t leap_client_csts(const struct leap_client *c);
void leap_client_kick(struct leap_client *c);

enum leap_client_fd {
	LEAP_CLIENT_FD_SOCKET, /* the attach socket */
	LEAP_CLIENT_FD_AREA,   /* the controller area memfd leapd handed out */
	LEAP_CLIENT_FD_KICK,   /* the kick eventfd leapd handed out */
	LEAP_CLIENT_FD_MEM,    /* the client's shared region memfd */
};
/* One of the descriptors behind `c` (still owned by it), or -1. For hostile-tenant tests. */
int leap_client_raw_fd(const struct leap_client *c, enum leap_client_fd which);

#endif /* LEAPIO_CLIENT_H */
