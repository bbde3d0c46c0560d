// SPDX-License-Identifier: BSD-3-Clause
/*
 * Priority arbitration (runtime/arb.c): no budget means no queueing; with a
 * budget the rest wait per class; urgent goes at once (counted in the
 * budget); high, medium and low share by weighted round robin with the
 * bdev's weights; a budget or weight
 * change takes effect at the next decision; drain removes one controller's
 * commands only, in order, and keeps the counts right.
 */
#include <string.h>

#include "nvme/arb.c"
#include "tap.h"

#define NREQ 64

static struct leap_bdev bdev;
static struct leap_ctrl ctrls[2];
static struct leap_qpair qps[2];
static struct leap_req reqs[NREQ];

static struct leap_arb *fresh(uint32_t budget, uint8_t wh, uint8_t wm, uint8_t wl)
{
	static uint32_t id = 100;

	memset(reqs, 0, sizeof(reqs));
	memset(ctrls, 0, sizeof(ctrls));
	for (int i = 0; i < 2; i++)
		qps[i].ctrl = &ctrls[i];
	bdev.id = id++; /* a new arbiter per case */
	bdev.qos_inflight = budget;
	bdev.qos_weight[0] = wh;
	bdev.qos_weight[1] = wm;
	bdev.qos_weight[2] = wl;
	return leap_arb_get(&bdev);
}

static struct leap_req *req(int i, uint8_t prio, int ctrl)
{
	reqs[i].prio = prio;
	reqs[i].qp = &qps[ctrl];
	return &reqs[i];
}

static void test_no_budget_never_queues(void)
{
	struct leap_arb *a = fresh(0, 1, 1, 1);

	for (int i = 0; i < 10; i++)
		T_ASSERT(leap_arb_admit(a, req(i, LEAP_PRIO_LOW, 0)));
	T_ASSERT_EQ(a->inflight, 10);
	T_ASSERT_EQ(a->queued, 0);
	T_ASSERT(leap_arb_next(a) == NULL);
}

static void test_budget_queues_and_urgent_is_strict(void)
{
	struct leap_arb *a = fresh(1, 1, 1, 1);

	T_ASSERT(leap_arb_admit(a, req(0, LEAP_PRIO_LOW, 0)));
	T_ASSERT(!leap_arb_admit(a, req(1, LEAP_PRIO_LOW, 0)));
	T_ASSERT(!leap_arb_admit(a, req(2, LEAP_PRIO_HIGH, 0)));
	/* Urgent goes at once, over the budget, and counts in it. */
	T_ASSERT(leap_arb_admit(a, req(3, LEAP_PRIO_URGENT, 1)));
	T_ASSERT_EQ(a->inflight, 2);
	T_ASSERT_EQ(a->queued, 2);
	T_ASSERT_EQ(ctrls[0].arb_queued, 2);
	T_ASSERT_EQ(ctrls[1].arb_queued, 0);
	/* Full: nothing goes until a place frees up -- and the urgent one holds one. */
	T_ASSERT(leap_arb_next(a) == NULL);
	leap_arb_done(a);
	T_ASSERT(leap_arb_next(a) == NULL);
	leap_arb_done(a);
	T_ASSERT(leap_arb_next(a) == &reqs[2]);
	T_ASSERT(leap_arb_next(a) == NULL);
	leap_arb_done(a);
	T_ASSERT(leap_arb_next(a) == &reqs[1]);
	T_ASSERT_EQ(a->queued, 0);
	T_ASSERT_EQ(ctrls[0].arb_queued, 0);
	T_ASSERT_EQ(a->admitted[LEAP_PRIO_URGENT], 1);
	T_ASSERT_EQ(a->waited[LEAP_PRIO_URGENT], 0);
	/* A newcomer does not overtake queued commands even when there is room; urgent does. */
	leap_arb_done(a);
	T_ASSERT_EQ(a->inflight, 0);
	T_ASSERT(leap_arb_admit(a, req(4, LEAP_PRIO_LOW, 0)));
	T_ASSERT(!leap_arb_admit(a, req(5, LEAP_PRIO_LOW, 0)));
	bdev.qos_inflight = 4;
	T_ASSERT(!leap_arb_admit(a, req(6, LEAP_PRIO_HIGH, 0)));
	T_ASSERT(leap_arb_admit(a, req(7, LEAP_PRIO_URGENT, 0)));
	T_ASSERT(leap_arb_next(a) == &reqs[6]);
	T_ASSERT(leap_arb_next(a) == &reqs[5]);
	T_ASSERT_EQ(a->inflight, 4);
}

/* With weights 4:2:1 and every class backlogged, a round serves 4 high, 2 medium, 1 low, in that order. */
static void test_weighted_round_robin(void)
{
	struct leap_arb *a = fresh(1, 4, 2, 1);
	int served[LEAP_PRIO_CNT] = { 0 }, n = 0;

	T_ASSERT(leap_arb_admit(a, req(0, LEAP_PRIO_MEDIUM, 0)));
	for (int i = 1; i <= 21; i++)
		T_ASSERT(!leap_arb_admit(a, req(i, (uint8_t)(1 + (i - 1) % 3), 0)));
	for (;;) {
		struct leap_req *r;

		leap_arb_done(a);
		r = leap_arb_next(a);
		if (!r)
			break;
		served[r->prio]++;
		if (++n <= 7) /* the first round: H H H H M M L */
			T_ASSERT_EQ(r->prio, n <= 4   ? LEAP_PRIO_HIGH
					     : n <= 6 ? LEAP_PRIO_MEDIUM
						      : LEAP_PRIO_LOW);
	}
	T_ASSERT_EQ(n, 21);
	T_ASSERT_EQ(served[LEAP_PRIO_HIGH], 7);
	T_ASSERT_EQ(served[LEAP_PRIO_MEDIUM], 7);
	T_ASSERT_EQ(served[LEAP_PRIO_LOW], 7);
	T_ASSERT_EQ(a->waited[LEAP_PRIO_HIGH], 7);
}

static struct leap_req *drained[NREQ];
static int ndrained;

static void on_drain(struct leap_req *r)
{
	drained[ndrained++] = r;
}

static void test_drain_one_controller(void)
{
	struct leap_arb *a = fresh(1, 1, 1, 1);

	T_ASSERT(leap_arb_admit(a, req(0, LEAP_PRIO_LOW, 0)));
	T_ASSERT(!leap_arb_admit(a, req(1, LEAP_PRIO_LOW, 0)));
	T_ASSERT(!leap_arb_admit(a, req(2, LEAP_PRIO_LOW, 1)));
	T_ASSERT(!leap_arb_admit(a, req(3, LEAP_PRIO_LOW, 0)));
	T_ASSERT(!leap_arb_admit(a, req(4, LEAP_PRIO_HIGH, 1)));
	ndrained = 0;
	leap_arb_drain(a, &ctrls[0], on_drain);
	T_ASSERT_EQ(ndrained, 2);
	T_ASSERT(drained[0] == &reqs[1] && drained[1] == &reqs[3]);
	T_ASSERT_EQ(a->queued, 2);
	T_ASSERT_EQ(ctrls[0].arb_queued, 0);
	T_ASSERT_EQ(ctrls[1].arb_queued, 2);
	/* The queue is intact behind the removed entries. */
	leap_arb_done(a);
	T_ASSERT(leap_arb_next(a) == &reqs[4]);
	leap_arb_done(a);
	T_ASSERT(leap_arb_next(a) == &reqs[2]);
	T_ASSERT(!leap_arb_admit(a, req(5, LEAP_PRIO_LOW, 1)));
	leap_arb_done(a);
	T_ASSERT(leap_arb_next(a) == &reqs[5]);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_no_budget_never_queues),
		TAP_CASE(test_budget_queues_and_urgent_is_strict),
		TAP_CASE(test_weighted_round_robin),
		TAP_CASE(test_drain_one_controller),
	};

	return tap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
