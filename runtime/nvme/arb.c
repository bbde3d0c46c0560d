// SPDX-License-Identifier: BSD-3-Clause
/*
 * Per-reactor, per-backend arbitration (see arb.h). The queue links reuse
 * leap_req.next_free, which is free while the command is the controller's.
 */
#include <pthread.h>
#include <stdlib.h>

#include "nvme/arb.h"
#include "nvme/ctrl.h"

/*
 * Arbiters of this reactor thread: a few dozen bytes per backend ever used,
 * never freed (controllers' channels keep pointing at them, whichever thread
 * opened the channel). Every one is also on a process-wide list, so they
 * stay reachable (LeakSanitizer) after the thread that made them is gone.
 */
static __thread struct leap_arb *arbs;
static struct leap_arb *all_arbs;
static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;

struct leap_arb *leap_arb_get(struct leap_bdev *bdev)
{
	struct leap_arb *a;

	for (a = arbs; a; a = a->next)
		if (a->bdev_id == bdev->id) {
			a->bdev = bdev;
			return a;
		}
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	pthread_mutex_lock(&all_lock);
	a->all_next = all_arbs;
	all_arbs = a;
	pthread_mutex_unlock(&all_lock);
	a->bdev_id = bdev->id;
	a->bdev = bdev;
	/* No credit yet: the first WRR decision moves on to high, where a round starts. */
	a->cur = LEAP_PRIO_LOW;
	a->next = arbs;
	arbs = a;
	return a;
}

bool leap_arb_admit(struct leap_arb *a, struct leap_req *req)
{
	/* Relaxed: a budget change may take effect a few commands late, that is all. */
	uint32_t budget = __atomic_load_n(&a->bdev->qos_inflight, __ATOMIC_RELAXED);
	uint8_t c = req->prio < LEAP_PRIO_CNT ? req->prio : LEAP_PRIO_MEDIUM;

	/*
	 * Urgent never waits for the budget (it still counts against it, so
	 * the other classes wait while it is at the device): what bounds an
	 * urgent command's latency is then the device's own queue, which the
	 * budget keeps short -- not a bulk command's whole service time.
	 */
	if (!budget || c == LEAP_PRIO_URGENT || (a->inflight < budget && !a->queued)) {
		a->inflight++;
		a->admitted[c]++;
		return true;
	}
	req->next_free = NULL;
	if (a->tail[c])
		a->tail[c]->next_free = req;
	else
		a->head[c] = req;
	a->tail[c] = req;
	a->queued++;
	a->waited[c]++;
	req->qp->ctrl->arb_queued++;
	return false;
}

static struct leap_req *pop(struct leap_arb *a, uint8_t c)
{
	struct leap_req *req = a->head[c];

	a->head[c] = req->next_free;
	if (!a->head[c])
		a->tail[c] = NULL;
	req->next_free = NULL;
	a->queued--;
	a->inflight++;
	a->admitted[c]++;
	req->qp->ctrl->arb_queued--;
	return req;
}

struct leap_req *leap_arb_next(struct leap_arb *a)
{
	uint32_t budget = __atomic_load_n(&a->bdev->qos_inflight, __ATOMIC_RELAXED);

	if (!a->queued || (budget && a->inflight >= budget))
		return NULL;
	if (a->head[LEAP_PRIO_URGENT])
		return pop(a, LEAP_PRIO_URGENT);
	/* Weighted round robin over high, medium, low: at most `weight` each per round. */
	for (int tries = 0; tries < 4; tries++) {
		if (a->credit && a->head[a->cur]) {
			a->credit--;
			return pop(a, a->cur);
		}
		a->cur = a->cur == LEAP_PRIO_LOW ? LEAP_PRIO_HIGH : (uint8_t)(a->cur + 1);
		a->credit = __atomic_load_n(&a->bdev->qos_weight[a->cur - 1], __ATOMIC_RELAXED);
		if (!a->credit)
			a->credit = 1;
	}
	return NULL; /* not reached: queued > 0 means some class has a head */
}

void leap_arb_drain(struct leap_arb *a, const void *ctrl, void (*fn)(struct leap_req *req))
{
	for (int c = 0; c < LEAP_PRIO_CNT; c++) {
		struct leap_req **pp = &a->head[c], *prev = NULL;

		while (*pp) {
			struct leap_req *req = *pp;

			if (ctrl && req->qp->ctrl != ctrl) {
				prev = req;
				pp = &req->next_free;
				continue;
			}
			*pp = req->next_free;
			if (a->tail[c] == req)
				a->tail[c] = prev;
			req->next_free = NULL;
			a->queued--;
			req->qp->ctrl->arb_queued--;
			fn(req);
		}
	}
}
