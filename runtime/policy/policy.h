/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * leapd's policy manager: storage services as verified BPF objects
 * (include/leapio/policy.h is their ABI), attached to hook points in
 * chains, replaced live.
 *
 *  - A policy is a loaded object (loader.h), named, with its maps pinned
 *    under <pin root>/<name>/ (default /sys/fs/bpf/leapio).
 *  - A link attaches a policy's program for one hook, globally, to one
 *    controller, or to one namespace of it, with an order (lower first;
 *    ties by attach time). Links keep counters per reactor.
 *  - Every controller has, per hook, an immutable chain: the links that
 *    apply to it, in order, with their engine entry points. Reactors load
 *    the chain pointer once per run (acquire), so a run sees one chain
 *    whole; the control thread builds a new chain and publishes it
 *    (release) after every change.
 *  - Old chains and replaced objects are not freed until every reactor has
 *    passed a quiescent point after the publication: leap_policy_publish()
 *    returns a generation, the caller makes each reactor run a message
 *    (reactors run messages between polls, never inside a chain run) and
 *    then calls leap_policy_reap() with it.
 *
 * Everything here runs on the control thread except the two hook
 * functions, which run on reactors and touch only chains and counters.
 */
#ifndef LEAPIO_RUNTIME_POLICY_H
#define LEAPIO_RUNTIME_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "leapio/loader.h"
#include "leapio/policy.h"
#include "nvme/ctrl.h"

#define LEAP_POLICY_PIN_ROOT	 "/sys/fs/bpf/leapio"
#define LEAP_POLICY_MAX_REACTORS 64
#define LEAP_POLICY_MAX_SETS	 32

/*
 * Counted per link and reactor. At most one chain run per controller and
 * hook in every LEAP_POLICY_SAMPLE_NS is timed, link by link (a clock
 * read per link boundary), the first that comes after it by the I/O's own
 * timestamp; the others read no clock. Time, not a count: at 10-30 M runs
 * a second, one timed run in 64 cost ~2.5 ns per I/O (eight reads of a
 * ~20 ns clock per 64 I/Os); a slow controller is still timed on every run.
 */
#define LEAP_POLICY_SAMPLE_NS 1000000ull
enum leap_link_verdict_idx {
	LEAP_LV_PASS,
	LEAP_LV_COMPLETE,
	LEAP_LV_REDIRECT,
	LEAP_LV_DEFER,
	LEAP_LV_SPLIT,
	LEAP_LV_INVALID, /* unknown verdict, or one this hook may not return */
	LEAP_LV_CNT,
};

struct leap_link_stats {
	uint64_t runs;	  /* leap_policy_link_stats(): the sum of verdicts[] (not kept per run) */
	uint64_t sampled; /* runs that were timed */
	uint64_t sampled_ns; /* their total time */
	uint64_t verdicts[LEAP_LV_CNT];
} __attribute__((aligned(64)));

struct leap_policy {
	char name[64];
	char path[512];
	char pin_dir[512];
	struct leap_obj *obj;
	struct leap_rodata_set sets[LEAP_POLICY_MAX_SETS];
	char set_names[LEAP_POLICY_MAX_SETS][64];
	uint32_t set_cnt;
	bool interp;	   /* run in the interpreter instead of the JIT */
	uint32_t links;	   /* attachments: queue-hook links and XDP links (xdp.h) */
	uint32_t replaced; /* times replaced live */
	uint64_t loaded_ns;
	struct leap_policy *next;
};

struct leap_policy_link {
	uint32_t id;
	struct leap_policy *pol;
	enum leap_hook hook;
	char ctrl[64]; /* "" : every controller */
	uint32_t nsid; /* 0: every namespace */
	int32_t order;
	struct leap_link_stats stats[LEAP_POLICY_MAX_REACTORS];
	struct leap_policy_link *next;
};

struct leap_policy_load_opts {
	const char *name; /* NULL: the file name without .bpf.o */
	const char *path;
	const struct leap_rodata_set *sets;
	uint32_t set_cnt;
	bool interp;
	const char *pin_root; /* NULL: LEAP_POLICY_PIN_ROOT */
};

/* Load, verify and pin a policy. -EEXIST (name taken) or the loader's error, reason in err. */
int leap_policy_load(const struct leap_policy_load_opts *o, char *err, size_t errsz,
		     struct leap_policy **out);
/* Drop an unattached policy and its pinned maps (its state). -EBUSY while attached. */
int leap_policy_unload(struct leap_policy *p);
struct leap_policy *leap_policy_find(const char *name);
struct leap_policy *leap_policy_next(const struct leap_policy *prev);

/*
 * Attach p's program for `hook` to every controller (ctrl NULL or ""), one
 * controller, or one namespace of it. -ENOENT (no program for that hook,
 * reason in err), -EEXIST (the same attachment exists). Publish afterwards.
 */
int leap_policy_attach(struct leap_policy *p, enum leap_hook hook, const char *ctrl, uint32_t nsid,
		       int32_t order, char *err, size_t errsz, struct leap_policy_link **out);
/* Remove a link. Publish afterwards; the link's memory goes with the next reap. */
void leap_policy_detach(struct leap_policy_link *l);
struct leap_policy_link *leap_policy_link_find(uint32_t id);
struct leap_policy_link *leap_policy_link_next(const struct leap_policy_link *prev);
/* A fresh link id; XDP links (xdp.h) take theirs from the same space. */
uint32_t leap_policy_link_id_alloc(void);

/*
 * Replace p's object by the one at `path` (same name, same pin directory):
 * verified first, its maps reuse the pinned ones that match by name and
 * shape (a conflicting shape is refused, naming the field), and it must
 * have a program for every hook p is attached to. On any failure p is
 * untouched. Publish afterwards; the old object goes with the next reap.
 * sets NULL: reuse the previous load's --set values.
 */
int leap_policy_replace(struct leap_policy *p, const char *path, const struct leap_rodata_set *sets,
			uint32_t set_cnt, char *err, size_t errsz);

/* Controllers: give each a chain (ctrl_create) and take it back (before ctrl_destroy). */
int leap_policy_ctrl_add(struct leap_ctrl *ctrl, uint32_t reactor_idx);
void leap_policy_ctrl_remove(struct leap_ctrl *ctrl);

/*
 * Build and publish every controller's chains from the current links.
 * Returns the generation to pass to leap_policy_reap() once every reactor
 * passed a quiescent point, or -ENOMEM (nothing changed then).
 */
int64_t leap_policy_publish(void);
/* Free chains, links and objects retired at or before generation `gen`. */
void leap_policy_reap(int64_t gen);
/* Unload everything (shutdown, no reactor running). */
void leap_policy_cleanup(void);

/*
 * Every hook runs on one thread (leapd with one reactor): programs loaded
 * from now on are JIT-compiled with counters' atomic adds unlocked
 * (leap_bpf_prog_opts.single_writer) -- a locked add is most of a simple
 * policy's cost. Control thread, before the first load; programs already
 * loaded keep how they were compiled.
 */
void leap_policy_set_single_writer(bool on);

/* Commands that got an internal error from a bad verdict, per controller. */
uint64_t leap_policy_ctrl_invalid(const struct leap_ctrl *ctrl);

/* Sum a link's per-reactor counters. */
void leap_policy_link_stats(const struct leap_policy_link *l, struct leap_link_stats *out);

/* The hook functions (reactor). */
uint16_t leap_policy_hook_submit(struct leap_req *req, void *arg);
uint16_t leap_policy_hook_complete(struct leap_req *req, void *arg);

#endif /* LEAPIO_RUNTIME_POLICY_H */
