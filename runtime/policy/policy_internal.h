/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the policy manager (policy.c, control thread) and the hook path
 * (policy_exec.c, reactors) share: the published chain and the
 * per-controller hook state.
 */
#ifndef LEAPIO_RUNTIME_POLICY_INTERNAL_H
#define LEAPIO_RUNTIME_POLICY_INTERNAL_H

#include "policy/policy.h"

struct leap_chain_entry {
	leap_bpf_jit_fn jit; /* NULL: interpret prog */
	const struct leap_bpf_prog *prog;
	uint32_t nsid;		    /* 0: every namespace */
	struct leap_link_stats *st; /* the link's counters for this controller's reactor */
};

/* Immutable once published; freed only after a quiescent period (policy.h). */
struct leap_chain {
	uint32_t cnt;
	bool plain; /* every link JITed and for every namespace: the loop tests neither */
	/*
	 * The controller's id, fixed for its life: a copy here spares each run
	 * the walk req->qp->ctrl->cntlid, whose last line nothing else on the
	 * I/O path reads (a cache miss per run in leapd's profile).
	 */
	uint16_t cntlid;
	/*
	 * Context words (bit i: bytes [8i, 8i + 8)) some link may read or
	 * write (`fill`: words outside it may be left unfilled, policy_exec.c
	 * says which), and those some link may write (read back after the run).
	 */
	uint64_t fill, wr;
	/*
	 * A plain chain's links compiled into one function (the loop without
	 * a call and frame per link, and the PASS counts in it), or NULL:
	 * then the loop runs (also for the sampled, timed runs).
	 */
	leap_bpf_chain_fn fused;
	struct leap_bpf_chain *fused_code;
	struct leap_chain_entry e[];
};

struct leap_policy_ctrl {
	struct leap_ctrl *ctrl;
	/* Written by the control thread (release), read once per run by the reactor (acquire). */
	struct leap_chain *chain[LEAP_HOOK_CNT];
	uint32_t rid;	  /* reactor index: which per-reactor counters the chain uses */
	uint64_t invalid; /* bad verdicts turned into Internal Error (reactor writes) */
	/* Per hook, the time from which the next chain run is timed (reactor writes). */
	uint64_t next_sample_ns[LEAP_HOOK_CNT];
	struct leap_policy_ctrl *next;
};

#endif /* LEAPIO_RUNTIME_POLICY_INTERNAL_H */
