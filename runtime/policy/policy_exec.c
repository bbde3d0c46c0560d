// SPDX-License-Identifier: BSD-3-Clause
/*
 * The hook path: build the policy context for a command, run the
 * controller's chain for the hook, and turn the verdict into what the
 * controller model understands (ctrl.h: continue with a route, complete,
 * defer until a deadline). Runs on reactors, per I/O: no allocation, no
 * lock, no syscall (the clock is read only for at most one chain run per
 * LEAP_POLICY_SAMPLE_NS, to time links).
 *
 * Every chain runs on this thread's 64 KiB context buffer: the kernel
 * verifier admits any fixed context offset below 64 KiB for syscall
 * programs, so whatever our own load-time bound check might miss still
 * lands in memory that belongs to nobody else.
 *
 * What a run costs is mostly what surrounds the programs, so the path is
 * cut to what the chain needs: validation knows which context words each
 * program may read or write (leap_bpf_prog_ctx_reads()), the chain keeps
 * their union; the context is written in 8-byte stores, and the groups
 * that cost loads through other objects (namespace, cookies) only when
 * some link may read them: the others keep whatever an earlier run left,
 * which no link of this chain can observe. Writable words are read back
 * only when some link may have written them. Links count verdicts only
 * (runs are their sum), and the decision to time a run is one countdown
 * per chain run, not per link.
 */
#include <stddef.h>
#include <string.h>

#include "leapio/common.h"
#include "nvme/ctrl_internal.h"
#include "policy_internal.h"

#define CTX_BUF_SIZE 65536

static __thread uint8_t ctx_buf[CTX_BUF_SIZE] __attribute__((aligned(64)));

/* Context words, in the unit of the chain's masks. */
#define WORD(field) (1ull << (offsetof(struct leap_io_ctx, field) / 8))
#define W_SLBA	    WORD(slba)
#define W_SHIFT	    WORD(lba_shift) /* lba_shift, part */
#define W_TIMES	    (WORD(submit_ns) | WORD(now_ns))
#define W_NS	    (WORD(ns_bdev) | WORD(ns_nlb))
/* Writable words leapd never reads back after a complete chain. */
#define W_ROUTE	    (WORD(target_lba) | WORD(split_nlb) | WORD(defer_ns))
#define W_STATUS    WORD(status) /* status, prio, target_bdev */
#define W_COOKIE0   WORD(cookie[0])
#define W_COOKIE1   WORD(cookie[1])

_Static_assert(offsetof(struct leap_io_ctx, version) == 4 &&
		   offsetof(struct leap_io_ctx, hook) == 8 &&
		   offsetof(struct leap_io_ctx, ctrl_id) == 16 &&
		   offsetof(struct leap_io_ctx, qid) == 24 &&
		   offsetof(struct leap_io_ctx, lba_shift) == 48 &&
		   offsetof(struct leap_io_ctx, ns_bdev) == 80 &&
		   offsetof(struct leap_io_ctx, status) == 96 &&
		   offsetof(struct leap_io_ctx, split_nlb) == 112,
	       "the paired stores below follow the context's layout");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "paired stores put lo first");

/* Two 32-bit fields of one word (lo at the lower address) in one store. */
static inline void put2(void *p, uint32_t lo, uint32_t hi)
{
	uint64_t v = (uint64_t)hi << 32 | lo;

	memcpy(p, &v, sizeof(v));
}

/* Word 12: status, prio, target_bdev. */
static inline void put_status(struct leap_io_ctx *c, uint16_t status, uint16_t prio)
{
	put2(&c->status, (uint32_t)status | (uint32_t)prio << 16, 0);
}

/* The first four words: size, version, hook, opcode, ctrl_id, nsid, qid, nlb. */
static inline void put_head(struct leap_io_ctx *c, const struct leap_req *req, uint32_t cntlid,
			    uint32_t hook, uint32_t nlb)
{
	put2(&c->size, sizeof(*c), LEAP_POLICY_ABI_VERSION);
	put2(&c->hook, hook, req->sqe.opc);
	put2(&c->ctrl_id, cntlid, req->sqe.nsid);
	put2(&c->qid, req->qp->sqid, nlb);
}

static inline void put_ns(struct leap_io_ctx *c, const struct leap_ns *ns)
{
	put2(&c->ns_bdev, ns ? ns->bdev->id : 0, 0);
	c->ns_nlb = ns ? ns->nlb : 0;
}

/*
 * The submit context: what is left of the command (cur_*), routed by
 * default. Words that cost a store or two are written whatever the chain
 * needs (a test and a branch would cost as much); the masks skip the
 * groups that cost loads through other objects.
 */
static struct leap_io_ctx *fill_submit(const struct leap_req *req, uint32_t cntlid, uint64_t need,
				       uint64_t now)
{
	struct leap_io_ctx *c = (struct leap_io_ctx *)ctx_buf;
	const struct leap_ns *ns = req->ns; /* set for every command that reaches the hook */
	uint32_t shift = ns->lba_shift;

	put_head(c, req, cntlid, LEAP_HOOK_SUBMIT, req->cur_nlb);
	c->slba = req->cur_slba;
	c->bytes = (uint64_t)req->cur_nlb << shift;
	put2(&c->lba_shift, shift, req->part);
	c->submit_ns = req->submit_ns;
	c->now_ns = now;
	c->latency_ns = 0;
	if (need & W_NS)
		put_ns(c, ns);
	put_status(c, 0, req->prio);
	c->target_lba = req->rt_offset >> shift;
	put2(&c->split_nlb, 0, 0);
	c->defer_ns = 0;
	if (need & (W_COOKIE0 | W_COOKIE1)) {
		c->cookie[0] = req->hook_data[0];
		c->cookie[1] = req->hook_data[1];
	}
	return c;
}

/*
 * The complete context: the whole command as the host sent it. Here a few
 * more words are left out when no link reads them (stats, the usual
 * complete link, reads five), and the routing words are never read back.
 */
static struct leap_io_ctx *fill_complete(const struct leap_req *req, uint32_t cntlid, uint64_t need,
					 uint64_t done_ns)
{
	struct leap_io_ctx *c = (struct leap_io_ctx *)ctx_buf;
	const struct leap_ns *ns = req->ns;
	uint32_t shift = ns ? ns->lba_shift : 9;
	bool lba = nvme_opc_has_lba(req->sqe.opc);
	uint32_t nlb = lba ? nvme_sqe_nlb(&req->sqe) : 0;
	/* One 8-byte load, as for done_ns in complete_run(). */
	uint64_t submit_ns = __atomic_load_n(&req->submit_ns, __ATOMIC_RELAXED);

	put_head(c, req, cntlid, LEAP_HOOK_COMPLETE, nlb);
	if (need & W_SLBA)
		c->slba = lba ? nvme_sqe_slba(&req->sqe) : 0;
	c->bytes = (uint64_t)nlb << shift;
	if (need & W_SHIFT)
		put2(&c->lba_shift, shift, req->part);
	if (need & W_TIMES) {
		c->submit_ns = submit_ns;
		c->now_ns = done_ns;
	}
	c->latency_ns = done_ns - submit_ns;
	if (need & W_NS)
		put_ns(c, ns);
	put_status(c, req->status, req->prio);
	if (need & W_ROUTE) {
		c->target_lba = 0;
		put2(&c->split_nlb, 0, 0);
		c->defer_ns = 0;
	}
	if (need & (W_COOKIE0 | W_COOKIE1)) {
		c->cookie[0] = req->hook_data[0];
		c->cookie[1] = req->hook_data[1];
	}
	return c;
}

static inline uint64_t run_link(const struct leap_chain_entry *e, struct leap_io_ctx *ctx)
{
	return e->jit ? e->jit(ctx, CTX_BUF_SIZE)
		      : leap_bpf_prog_run_interp(e->prog, ctx, CTX_BUF_SIZE);
}

static inline void count(const struct leap_chain_entry *e, uint64_t r0)
{
	e->st->verdicts[r0 < LEAP_LV_INVALID ? r0 : LEAP_LV_INVALID]++;
}

/* The links that apply, in order; the first verdict other than PASS ends the chain. */
static inline uint64_t run_links(const struct leap_chain *ch, struct leap_io_ctx *ctx,
				 uint32_t nsid)
{
	const struct leap_chain_entry *e = ch->e, *end = ch->e + ch->cnt;

	if (leap_likely(ch->fused != NULL)) {
		struct leap_bpf_chain_ret r = ch->fused(ctx, CTX_BUF_SIZE);

		/* The fused code counted the PASSes; the verdict that stopped it is counted here. */
		if (leap_unlikely(r.r0 != LEAP_PASS))
			count(&ch->e[r.link], r.r0);
		return r.r0;
	}
	if (ch->plain) {
		for (; e < end; e++) {
			uint64_t r0 = e->jit(ctx, CTX_BUF_SIZE);

			/* PASS, by far the most common verdict, needs no clamping. */
			if (leap_unlikely(r0 != LEAP_PASS)) {
				count(e, r0);
				return r0;
			}
			e->st->verdicts[LEAP_LV_PASS]++;
		}
		return LEAP_PASS;
	}
	for (; e < end; e++) {
		uint64_t r0;

		if (e->nsid && e->nsid != nsid)
			continue;
		r0 = run_link(e, ctx);
		count(e, r0);
		if (r0 != LEAP_PASS)
			return r0;
	}
	return LEAP_PASS;
}

/* The same, timing each link: one clock read per link boundary. */
static __attribute__((noinline)) uint64_t run_links_timed(const struct leap_chain *ch,
							  struct leap_io_ctx *ctx, uint32_t nsid)
{
	uint64_t t = leap_now_ns();

	for (uint32_t i = 0; i < ch->cnt; i++) {
		const struct leap_chain_entry *e = &ch->e[i];
		uint64_t r0, t1;

		if (e->nsid && e->nsid != nsid)
			continue;
		r0 = run_link(e, ctx);
		t1 = leap_now_ns();
		e->st->sampled++;
		e->st->sampled_ns += t1 - t;
		t = t1;
		count(e, r0);
		if (r0 != LEAP_PASS)
			return r0;
	}
	return LEAP_PASS;
}

/* now: the I/O's own timestamp (no clock read to decide). */
static inline uint64_t run_chain(struct leap_policy_ctrl *pc, uint32_t hook,
				 const struct leap_chain *ch, struct leap_io_ctx *ctx,
				 uint32_t nsid, uint64_t now)
{
	if (leap_likely(now < pc->next_sample_ns[hook]))
		return run_links(ch, ctx, nsid);
	pc->next_sample_ns[hook] = now + LEAP_POLICY_SAMPLE_NS;
	return run_links_timed(ch, ctx, nsid);
}

static uint16_t invalid(struct leap_policy_ctrl *pc)
{
	pc->invalid++;
	return ST(GENERIC, INTERNAL_DEVICE_ERROR);
}

/* A status a policy may post: bits 14:11 are ours (hook codes), never NVMe's. */
static bool status_ok(uint16_t st)
{
	return (st & 0x7800) == 0;
}

static bool splittable(const struct leap_req *req)
{
	return req->sqe.opc == NVME_OPC_READ || req->sqe.opc == NVME_OPC_WRITE ||
	       req->sqe.opc == NVME_OPC_COMPARE || req->sqe.opc == NVME_OPC_WRITE_ZEROES;
}

static bool set_target(struct leap_req *req, const struct leap_io_ctx *ctx)
{
	uint32_t shift = req->ns->lba_shift;

	if (ctx->target_lba >> (64 - shift))
		return false;
	req->rt_bdev_id = ctx->target_bdev;
	req->rt_offset = ctx->target_lba << shift;
	return true;
}

/* A submit verdict other than PASS. */
static __attribute__((noinline)) uint16_t submit_verdict(struct leap_policy_ctrl *pc,
							 struct leap_req *req,
							 const struct leap_io_ctx *ctx, uint64_t v,
							 uint64_t now)
{
	switch (v) {
	case LEAP_COMPLETE:
		if (!status_ok(ctx->status))
			return invalid(pc);
		return ctx->status ? ctx->status : LEAP_HOOK_RET_SUCCESS;
	case LEAP_REDIRECT:
		return set_target(req, ctx) ? LEAP_HOOK_RET_CONTINUE : invalid(pc);
	case LEAP_DEFER:
		req->defer_until = now + (ctx->defer_ns ? ctx->defer_ns : 1);
		return LEAP_HOOK_RET_DEFER;
	case LEAP_SPLIT:
		if (!splittable(req) || ctx->split_nlb == 0 || ctx->split_nlb >= req->cur_nlb)
			return invalid(pc);
		if (ctx->split_verdict == LEAP_REDIRECT) {
			if (!set_target(req, ctx))
				return invalid(pc);
		} else if (ctx->split_verdict != LEAP_PASS) {
			return invalid(pc);
		}
		req->rt_nlb = ctx->split_nlb;
		return LEAP_HOOK_RET_CONTINUE;
	default:
		return invalid(pc);
	}
}

static __attribute__((noinline)) uint16_t
submit_run(struct leap_req *req, struct leap_policy_ctrl *pc, const struct leap_chain *ch)
{
	struct leap_io_ctx *ctx;
	uint64_t v, now, wr;

	/* The first run uses the fetch time: no clock read on the common path. */
	now = (req->part || req->defer_until) ? leap_now_ns() : req->submit_ns;
	ctx = fill_submit(req, ch->cntlid, ch->fill, now);
	v = run_chain(pc, LEAP_HOOK_SUBMIT, ch, ctx, req->sqe.nsid, now);
	/* Words no link may write still hold what was filled from req. */
	wr = ch->wr; /* once: the stores below may alias it as far as the compiler knows */
	if (wr & W_STATUS)
		req->prio = ctx->prio < LEAP_PRIO_CNT ? (uint8_t)ctx->prio : LEAP_PRIO_MEDIUM;
	if (wr & W_COOKIE0)
		req->hook_data[0] = ctx->cookie[0];
	if (wr & W_COOKIE1)
		req->hook_data[1] = ctx->cookie[1];
	if (leap_likely(v == LEAP_PASS))
		return LEAP_HOOK_RET_CONTINUE;
	return submit_verdict(pc, req, ctx, v, now);
}

static __attribute__((noinline)) uint16_t
complete_run(struct leap_req *req, struct leap_policy_ctrl *pc, const struct leap_chain *ch)
{
	/*
	 * One 8-byte load each of done_ns and submit_ns: done_ns was stored a
	 * moment ago, and a 16-byte load of both (gcc pairs them) cannot be
	 * forwarded from two stores still in the store buffer: it waits for
	 * them to retire (~5 ns a completion in chain_bench).
	 */
	uint64_t done_ns = __atomic_load_n(&req->done_ns, __ATOMIC_RELAXED);
	struct leap_io_ctx *ctx;
	uint64_t v;

	ctx = fill_complete(req, ch->cntlid, ch->fill, done_ns);
	v = run_chain(pc, LEAP_HOOK_COMPLETE, ch, ctx, req->sqe.nsid, done_ns);
	if (leap_likely(v == LEAP_PASS))
		return LEAP_HOOK_RET_CONTINUE;
	if (v != LEAP_COMPLETE || !status_ok(ctx->status))
		return invalid(pc);
	return ctx->status ? ctx->status : LEAP_HOOK_RET_SUCCESS;
}

/* Controllers without links pay a load and a branch: no frame is set up for them. */
uint16_t leap_policy_hook_submit(struct leap_req *req, void *arg)
{
	struct leap_policy_ctrl *pc = arg;
	const struct leap_chain *ch =
	    __atomic_load_n(&pc->chain[LEAP_HOOK_SUBMIT], __ATOMIC_ACQUIRE);

	return ch ? submit_run(req, pc, ch) : LEAP_HOOK_RET_CONTINUE;
}

uint16_t leap_policy_hook_complete(struct leap_req *req, void *arg)
{
	struct leap_policy_ctrl *pc = arg;
	const struct leap_chain *ch =
	    __atomic_load_n(&pc->chain[LEAP_HOOK_COMPLETE], __ATOMIC_ACQUIRE);

	return ch ? complete_run(req, pc, ch) : LEAP_HOOK_RET_CONTINUE;
}

uint64_t leap_policy_ctrl_invalid(const struct leap_ctrl *ctrl)
{
	const struct leap_policy_ctrl *pc = ctrl->hook_submit_arg;

	return pc ? __atomic_load_n(&pc->invalid, __ATOMIC_RELAXED) : 0;
}
