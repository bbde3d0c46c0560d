/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Arbitration in front of a backend: the runtime half of the priority
 * service. A policy classifies each command (req->prio, enum leap_prio);
 * the arbiter keeps at most bdev->qos_inflight of them in flight per
 * reactor and queues the rest per class. When room frees up it serves
 * urgent first (strict), then high, medium and low by weighted round robin
 * with bdev->qos_weight, as NVMe's WRR arbitration does for queues.
 * Urgent commands are admitted even over the budget (and count in it): the
 * budget exists to keep the device's queue short for them.
 *
 * One arbiter per (reactor thread, backend), shared by every controller on
 * that reactor, so two tenants of one backend really compete in it. Owned
 * by the reactor thread: no lock, nothing allocated per I/O. With
 * qos_inflight 0 (the default) nothing ever waits here.
 */
#ifndef LEAPIO_RUNTIME_ARB_H
#define LEAPIO_RUNTIME_ARB_H

#include <stdbool.h>
#include <stdint.h>

#include "leapio/policy.h"
#include "backend/bdev.h"

struct leap_req;

struct leap_arb {
	uint32_t bdev_id;
	struct leap_bdev *bdev; /* valid while a channel of it is open on this thread */
	uint32_t inflight;	/* admitted, not yet completed */
	uint32_t queued;
	uint8_t cur;	/* WRR class being served (1..3) */
	uint8_t credit; /* commands it may still take this round */
	struct leap_req *head[LEAP_PRIO_CNT], *tail[LEAP_PRIO_CNT];
	uint64_t admitted[LEAP_PRIO_CNT]; /* by class: went straight through or after waiting */
	uint64_t waited[LEAP_PRIO_CNT];	  /* by class: had to wait */
	struct leap_arb *next;
	struct leap_arb *all_next; /* every arbiter of the process (arb.c), never freed */
};

/* This thread's arbiter for `bdev`, created on first use (setup time). NULL on ENOMEM. */
struct leap_arb *leap_arb_get(struct leap_bdev *bdev);

/*
 * May req go to the backend now? true: counted in flight (the caller
 * submits it and calls leap_arb_done() when it completes). false: queued in
 * its class; leap_arb_next() hands it out later.
 */
bool leap_arb_admit(struct leap_arb *a, struct leap_req *req);

/* A counted command completed: release its place. */
static inline void leap_arb_done(struct leap_arb *a)
{
	a->inflight--;
}

/* The next queued command that may go now (counted in flight), or NULL. */
struct leap_req *leap_arb_next(struct leap_arb *a);

/* Remove every queued command of `ctrl` (NULL: all), calling fn on each. */
void leap_arb_drain(struct leap_arb *a, const void *ctrl, void (*fn)(struct leap_req *req));

#endif /* LEAPIO_RUNTIME_ARB_H */
