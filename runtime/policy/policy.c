// SPDX-License-Identifier: BSD-3-Clause
/*
 * The policy manager (policy.h): loaded policies, their links, the chains
 * built from them, and the graveyard that keeps retired chains, links and
 * objects alive until every reactor has passed a quiescent point. Control
 * thread only; the reactors see nothing but published chains.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "leapio/common.h"
#include "leapio/fsutil.h"
#include "leapio/log.h"
#include "policy_internal.h"
#include "xdp.h"

enum retired_kind { R_CHAIN, R_LINK, R_OBJ, R_PCTRL };

struct retired {
	int64_t gen; /* free once generation `gen` has been reaped */
	enum retired_kind kind;
	void *p;
	struct retired *next;
};

static struct leap_policy *policies;
static struct leap_policy_link *links;
static struct leap_policy_ctrl *pctrls;
static struct retired *graveyard;
static struct leap_chain *chain_build(const struct leap_policy_ctrl *pc, int hook, bool *empty);
static uint32_t next_link_id = 1;
static int64_t generation;

static const struct leap_hook_def hook_defs[LEAP_HOOK_CNT] = {
	[LEAP_HOOK_SUBMIT] = { LEAP_SEC_SUBMIT, sizeof(struct leap_io_ctx) },
	[LEAP_HOOK_COMPLETE] = { LEAP_SEC_COMPLETE, sizeof(struct leap_io_ctx) },
};

/* Keep p until the publication after this change has been quiesced. */
static int retire(enum retired_kind kind, void *p)
{
	struct retired *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->gen = generation + 1;
	r->kind = kind;
	r->p = p;
	r->next = graveyard;
	graveyard = r;
	return 0;
}

static void chain_free(struct leap_chain *ch)
{
	if (ch)
		leap_bpf_chain_free(ch->fused_code);
	free(ch);
}

static void free_retired(struct retired *r)
{
	switch (r->kind) {
	case R_CHAIN:
		chain_free(r->p);
		break;
	case R_LINK:
	case R_PCTRL:
		free(r->p);
		break;
	case R_OBJ:
		leap_obj_close(r->p);
		break;
	}
	free(r);
}

void leap_policy_reap(int64_t gen)
{
	struct retired **pp = &graveyard;

	while (*pp) {
		struct retired *r = *pp;

		if (r->gen <= gen) {
			*pp = r->next;
			free_retired(r);
		} else {
			pp = &r->next;
		}
	}
}

/* ---- policies ------------------------------------------------------------------------------ */

struct leap_policy *leap_policy_find(const char *name)
{
	struct leap_policy *p;

	for (p = policies; p && strcmp(p->name, name); p = p->next)
		;
	return p;
}

struct leap_policy *leap_policy_next(const struct leap_policy *prev)
{
	return prev ? prev->next : policies;
}

static bool name_ok(const char *n)
{
	size_t len = strlen(n);

	if (!len || len >= 64)
		return false;
	for (const char *s = n; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return false;
	return true;
}

/* leap_policy_set_single_writer(): every hook runs on one thread. */
static bool single_writer;

void leap_policy_set_single_writer(bool on)
{
	single_writer = on;
}

static int obj_open(const char *path, const char *name, const char *pin_dir,
		    const struct leap_rodata_set *sets, uint32_t set_cnt, bool interp, char *err,
		    size_t errsz, struct leap_obj **out)
{
	struct leap_obj_opts oo = {
		.sz = sizeof(oo),
		.hooks = hook_defs,
		.hook_cnt = LEAP_HOOK_CNT,
		.pin_dir = pin_dir,
		.name = name,
		.sets = sets,
		.set_cnt = set_cnt,
		.log_buf = err,
		.log_sz = errsz,
		.jit = !interp,
		.xdp = true,
		/* A corrupt object must cost an error message, not the daemon. */
		.isolate = true,
		.single_writer = single_writer,
	};
	int rc;

	rc = leap_mkdir_p(pin_dir);
	if (rc) {
		snprintf(err, errsz, "cannot create %s: %s", pin_dir, strerror(-rc));
		return rc;
	}
	rc = leap_obj_load(path, &oo, out);
	if (rc)
		return rc;
	if (leap_obj_prog_cnt(*out) == 0) {
		snprintf(err, errsz, "%s: no program in leap/submit, leap/complete or xdp", path);
		leap_obj_close(*out);
		*out = NULL;
		return -ENOENT;
	}
	return 0;
}

static void copy_sets(struct leap_policy *p, const struct leap_rodata_set *sets, uint32_t cnt)
{
	p->set_cnt = cnt;
	for (uint32_t i = 0; i < cnt; i++) {
		snprintf(p->set_names[i], sizeof(p->set_names[i]), "%s", sets[i].name);
		p->sets[i].name = p->set_names[i];
		p->sets[i].value = sets[i].value;
	}
}

int leap_policy_load(const struct leap_policy_load_opts *o, char *err, size_t errsz,
		     struct leap_policy **out)
{
	struct leap_policy *p, **tail;
	char name[64];
	int rc;

	*out = NULL;
	if (o->name && o->name[0]) {
		snprintf(name, sizeof(name), "%s", o->name);
	} else {
		const char *base = strrchr(o->path, '/');

		snprintf(name, sizeof(name), "%s", base ? base + 1 : o->path);
		if (strstr(name, ".bpf.o"))
			*strstr(name, ".bpf.o") = 0;
		else if (strrchr(name, '.'))
			*strrchr(name, '.') = 0;
	}
	if (!name_ok(name)) {
		snprintf(err, errsz, "bad policy name '%s' (letters, digits, '_' and '-')", name);
		return -EINVAL;
	}
	if (leap_policy_find(name)) {
		snprintf(err, errsz, "policy '%s' is already loaded (replace it instead)", name);
		return -EEXIST;
	}
	if (o->set_cnt > LEAP_POLICY_MAX_SETS) {
		snprintf(err, errsz, "at most %d --set values", LEAP_POLICY_MAX_SETS);
		return -E2BIG;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->path, sizeof(p->path), "%s", o->path);
	snprintf(p->pin_dir, sizeof(p->pin_dir), "%s/%s",
		 o->pin_root ? o->pin_root : LEAP_POLICY_PIN_ROOT, name);
	p->interp = o->interp;
	copy_sets(p, o->sets, o->set_cnt);
	rc = obj_open(o->path, name, p->pin_dir, p->sets, p->set_cnt, p->interp, err, errsz,
		      &p->obj);
	if (rc) {
		free(p);
		return rc;
	}
	p->loaded_ns = leap_now_ns();
	for (tail = &policies; *tail; tail = &(*tail)->next)
		;
	*tail = p;
	LEAP_INFO("policy", "loaded '%s' from %s (%u program(s), maps under %s)", p->name, p->path,
		  leap_obj_prog_cnt(p->obj), p->pin_dir);
	*out = p;
	return 0;
}

int leap_policy_unload(struct leap_policy *p)
{
	struct leap_policy **pp;

	if (p->links)
		return -EBUSY;
	for (pp = &policies; *pp && *pp != p; pp = &(*pp)->next)
		;
	if (!*pp)
		return -ENOENT;
	/* Chains that ran it are already retired; the object follows them. */
	if (retire(R_OBJ, p->obj))
		return -ENOMEM;
	*pp = p->next;
	/* The state goes with the policy: unpin now (the kernel keeps maps while fds live). */
	for (uint32_t i = 0; i < leap_obj_map_cnt(p->obj); i++) {
		struct leap_map_info mi;

		leap_map_get_info(leap_obj_map(p->obj, i), &mi);
		if (mi.pin_path)
			unlink(mi.pin_path);
	}
	rmdir(p->pin_dir);
	LEAP_INFO("policy", "unloaded '%s'", p->name);
	free(p);
	return 0;
}

/* ---- links ----------------------------------------------------------------------------------- */

struct leap_policy_link *leap_policy_link_find(uint32_t id)
{
	struct leap_policy_link *l;

	for (l = links; l && l->id != id; l = l->next)
		;
	return l;
}

struct leap_policy_link *leap_policy_link_next(const struct leap_policy_link *prev)
{
	return prev ? prev->next : links;
}

uint32_t leap_policy_link_id_alloc(void)
{
	return next_link_id++;
}

int leap_policy_attach(struct leap_policy *p, enum leap_hook hook, const char *ctrl, uint32_t nsid,
		       int32_t order, char *err, size_t errsz, struct leap_policy_link **out)
{
	struct leap_policy_link *l, **tail;

	if (!ctrl)
		ctrl = "";
	if ((unsigned)hook >= LEAP_HOOK_CNT)
		return -EINVAL;
	if (leap_obj_find_prog(p->obj, hook_defs[hook].section) < 0) {
		snprintf(err, errsz, "policy '%s' has no program in %s", p->name,
			 hook_defs[hook].section);
		return -ENOENT;
	}
	if (nsid && !ctrl[0]) {
		snprintf(err, errsz, "a namespace attachment needs a controller");
		return -EINVAL;
	}
	for (l = links; l; l = l->next)
		if (l->pol == p && l->hook == hook && !strcmp(l->ctrl, ctrl) && l->nsid == nsid) {
			snprintf(err, errsz, "policy '%s' is already attached there (link %u)",
				 p->name, l->id);
			return -EEXIST;
		}
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->id = leap_policy_link_id_alloc();
	l->pol = p;
	l->hook = hook;
	snprintf(l->ctrl, sizeof(l->ctrl), "%s", ctrl);
	l->nsid = nsid;
	l->order = order;
	for (tail = &links; *tail; tail = &(*tail)->next)
		;
	*tail = l;
	p->links++;
	*out = l;
	return 0;
}

void leap_policy_detach(struct leap_policy_link *l)
{
	struct leap_policy_link **pp;

	for (pp = &links; *pp && *pp != l; pp = &(*pp)->next)
		;
	if (!*pp)
		return;
	*pp = l->next;
	l->pol->links--;
	/* Old chains still point at its counters until the next reap. */
	if (retire(R_LINK, l))
		LEAP_WARN("policy", "link %u: out of memory, leaking it", l->id);
}

void leap_policy_link_stats(const struct leap_policy_link *l, struct leap_link_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t r = 0; r < LEAP_POLICY_MAX_REACTORS; r++) {
		const struct leap_link_stats *s = &l->stats[r];

		/* Racy-but-monotonic reads of counters one reactor writes. */
		out->sampled += __atomic_load_n(&s->sampled, __ATOMIC_RELAXED);
		out->sampled_ns += __atomic_load_n(&s->sampled_ns, __ATOMIC_RELAXED);
		for (int v = 0; v < LEAP_LV_CNT; v++)
			out->verdicts[v] += __atomic_load_n(&s->verdicts[v], __ATOMIC_RELAXED);
	}
	/* Every run has a verdict: the reactors count only those. */
	for (int v = 0; v < LEAP_LV_CNT; v++)
		out->runs += out->verdicts[v];
}

/* ---- replace --------------------------------------------------------------------------------- */

/*
 * A replacement loaded but refused here: take back the pins its load made
 * in p's directory (maps p does not have), so they do not outlive it.
 */
static void close_refused(struct leap_obj *obj)
{
	for (uint32_t i = 0; i < leap_obj_map_cnt(obj); i++) {
		struct leap_map_info mi;

		leap_map_get_info(leap_obj_map(obj, i), &mi);
		if (mi.pin_path && !mi.reused)
			unlink(mi.pin_path);
	}
	leap_obj_close(obj);
}

int leap_policy_replace(struct leap_policy *p, const char *path, const struct leap_rodata_set *sets,
			uint32_t set_cnt, char *err, size_t errsz)
{
	struct leap_rodata_set keep[LEAP_POLICY_MAX_SETS];
	struct leap_obj *obj;
	int rc;

	if (!sets) { /* the previous --set values, copied: p->sets is rewritten below */
		memcpy(keep, p->sets, sizeof(keep));
		sets = keep;
		set_cnt = p->set_cnt;
	}
	if (set_cnt > LEAP_POLICY_MAX_SETS) {
		snprintf(err, errsz, "at most %d --set values", LEAP_POLICY_MAX_SETS);
		return -E2BIG;
	}
	rc = obj_open(path, p->name, p->pin_dir, sets, set_cnt, p->interp, err, errsz, &obj);
	if (rc)
		return rc;
	for (struct leap_policy_link *l = links; l; l = l->next) {
		if (l->pol != p || leap_obj_find_prog(obj, hook_defs[l->hook].section) >= 0)
			continue;
		snprintf(err, errsz,
			 "%s has no program in %s, where policy '%s' is attached (link %u)", path,
			 hook_defs[l->hook].section, p->name, l->id);
		close_refused(obj);
		return -ENOENT;
	}
	/* XDP links move to the new program here, in the kernel: the commit point. */
	rc = leap_xdp_replace(p, p->obj, obj, err, errsz);
	if (rc) {
		close_refused(obj);
		return rc;
	}
	if (retire(R_OBJ, p->obj)) {
		leap_xdp_replace(p, obj, p->obj, err, errsz);
		leap_obj_close(obj);
		return -ENOMEM;
	}
	if (sets != p->sets)
		copy_sets(p, sets, set_cnt);
	p->obj = obj;
	snprintf(p->path, sizeof(p->path), "%s", path);
	p->replaced++;
	LEAP_INFO("policy", "replaced '%s' with %s", p->name, path);
	return 0;
}

/* ---- controllers and chains -------------------------------------------------------------------- */

int leap_policy_ctrl_add(struct leap_ctrl *ctrl, uint32_t reactor_idx)
{
	struct leap_policy_ctrl *pc = calloc(1, sizeof(*pc));

	if (!pc)
		return -ENOMEM;
	pc->ctrl = ctrl;
	pc->rid = reactor_idx % LEAP_POLICY_MAX_REACTORS;
	/* next_sample_ns[] = 0: the first run of each hook is timed. */
	for (int h = 0; h < LEAP_HOOK_CNT; h++) {
		bool empty;

		pc->chain[h] = chain_build(pc, h, &empty);
		if (!pc->chain[h] && !empty) {
			chain_free(pc->chain[0]);
			free(pc);
			return -ENOMEM;
		}
	}
	pc->next = pctrls;
	pctrls = pc;
	/* No tenant is attached yet: nothing runs these before they are set. */
	ctrl->hook_submit = leap_policy_hook_submit;
	ctrl->hook_submit_arg = pc;
	ctrl->hook_complete = leap_policy_hook_complete;
	ctrl->hook_complete_arg = pc;
	return 0;
}

void leap_policy_ctrl_remove(struct leap_ctrl *ctrl)
{
	struct leap_policy_ctrl **pp;

	for (pp = &pctrls; *pp && (*pp)->ctrl != ctrl; pp = &(*pp)->next)
		;
	if (!*pp)
		return;
	{
		struct leap_policy_ctrl *pc = *pp;

		*pp = pc->next;
		ctrl->hook_submit = NULL;
		ctrl->hook_complete = NULL;
		for (int h = 0; h < LEAP_HOOK_CNT; h++)
			if (pc->chain[h])
				retire(R_CHAIN, pc->chain[h]);
		retire(R_PCTRL, pc);
	}
}

static bool link_applies(const struct leap_policy_link *l, const struct leap_policy_ctrl *pc,
			 int hook)
{
	return l->hook == (enum leap_hook)hook && (!l->ctrl[0] || !strcmp(l->ctrl, pc->ctrl->name));
}

static int link_cmp(const void *a, const void *b)
{
	const struct leap_policy_link *x = *(const struct leap_policy_link *const *)a;
	const struct leap_policy_link *y = *(const struct leap_policy_link *const *)b;

	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * Compile a plain chain's links into one function. Failing that (memory)
 * is not an error: the chain runs its loop, as before chains were fused.
 */
static void fuse(struct leap_chain *ch)
{
	const struct leap_bpf_prog *progs[LEAP_BPF_CHAIN_MAX];
	uint64_t *pass[LEAP_BPF_CHAIN_MAX];

	if (ch->cnt > LEAP_BPF_CHAIN_MAX)
		return;
	for (uint32_t i = 0; i < ch->cnt; i++) {
		progs[i] = ch->e[i].prog;
		pass[i] = &ch->e[i].st->verdicts[LEAP_LV_PASS];
	}
	if (leap_bpf_chain_jit(progs, pass, ch->cnt, &ch->fused_code) == 0)
		ch->fused = leap_bpf_chain_fn_of(ch->fused_code);
	else
		LEAP_WARN("policy", "a chain of %u links runs as a loop (not fused)", ch->cnt);
}

/* The chain for one controller and hook, or NULL with *empty when no link applies. */
static struct leap_chain *chain_build(const struct leap_policy_ctrl *pc, int hook, bool *empty)
{
	struct leap_policy_link *sel[256];
	struct leap_chain *ch;
	uint32_t n = 0;

	*empty = false;
	for (struct leap_policy_link *l = links; l && n < LEAP_ARRAY_SIZE(sel); l = l->next)
		if (link_applies(l, pc, hook))
			sel[n++] = l;
	if (!n) {
		*empty = true;
		return NULL;
	}
	qsort(sel, n, sizeof(sel[0]), link_cmp);
	ch = calloc(1, sizeof(*ch) + n * sizeof(ch->e[0]));
	if (!ch)
		return NULL;
	ch->cnt = n;
	ch->plain = true;
	ch->cntlid = pc->ctrl->cntlid;
	ch->fill = 0;
	ch->wr = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct leap_obj *obj = sel[i]->pol->obj;
		struct leap_bpf_prog *prog =
		    leap_obj_prog(obj, (uint32_t)leap_obj_find_prog(obj, hook_defs[hook].section));

		ch->e[i].prog = prog;
		ch->e[i].jit = sel[i]->pol->interp ? NULL : leap_bpf_prog_jit_fn(prog);
		ch->e[i].nsid = sel[i]->nsid;
		ch->e[i].st = &sel[i]->stats[pc->rid];
		ch->plain &= ch->e[i].jit && !ch->e[i].nsid;
		ch->fill |= leap_bpf_prog_ctx_reads(prog) | leap_bpf_prog_ctx_writes(prog);
		ch->wr |= leap_bpf_prog_ctx_writes(prog);
	}
	if (ch->plain)
		fuse(ch);
	return ch;
}

int64_t leap_policy_publish(void)
{
	struct leap_chain **built;
	size_t n = 0, k = 0;

	/* Build every chain first, publish only when all exist: -ENOMEM changes nothing. */
	for (struct leap_policy_ctrl *pc = pctrls; pc; pc = pc->next)
		n += LEAP_HOOK_CNT;
	built = calloc(n ? n : 1, sizeof(*built));
	if (!built)
		return -ENOMEM;
	for (struct leap_policy_ctrl *pc = pctrls; pc; pc = pc->next)
		for (int h = 0; h < LEAP_HOOK_CNT; h++, k++) {
			bool empty;

			built[k] = chain_build(pc, h, &empty);
			if (!built[k] && !empty) {
				while (k--)
					chain_free(built[k]);
				free(built);
				return -ENOMEM;
			}
		}
	k = 0;
	for (struct leap_policy_ctrl *pc = pctrls; pc; pc = pc->next)
		for (int h = 0; h < LEAP_HOOK_CNT; h++, k++) {
			struct leap_chain *old = pc->chain[h];

			/* Pairs with the acquire load in the hook functions. */
			__atomic_store_n(&pc->chain[h], built[k], __ATOMIC_RELEASE);
			if (old && retire(R_CHAIN, old))
				LEAP_WARN("policy", "out of memory: leaking a chain");
		}
	free(built);
	return ++generation;
}

void leap_policy_cleanup(void)
{
	leap_xdp_cleanup();
	while (links)
		leap_policy_detach(links);
	while (pctrls)
		leap_policy_ctrl_remove(pctrls->ctrl);
	while (policies) {
		struct leap_policy *p = policies;

		policies = p->next;
		/* Shutdown keeps the pinned state (as a restart would want it). */
		retire(R_OBJ, p->obj);
		free(p);
	}
	generation++;
	leap_policy_reap(generation);
}
