// SPDX-License-Identifier: BSD-3-Clause
/*
 * The hook path: build the policy context for a command, run the
 * controller's chain for the hook, and turn the verdict into what the
 * controller model understands (ctrl.h: continue with a route, complete,
 * defer until a deadline). Runs on reactors, per I/O: no allocation, no
 * lock, no syscall (the clock is read only for one run in
 * LEAP_POLICY_SAMPLE, to time links).
 *
 * Every chain runs on this thread's 64 KiB context buffer: the kernel
 * verifier admits any fixed context offset below 64 KiB for syscall
 * programs, so whatever our own load-time bound check might miss still
 * lands in memory that belongs to nobody else. Only the first
 * sizeof(struct leap_io_ctx) bytes are written per run.
 */
#include <string.h>

#include "leapio/common.h"
#include "nvme/ctrl_internal.h"
#include "policy_internal.h"

#define CTX_BUF_SIZE 65536

static __thread uint8_t ctx_buf[CTX_BUF_SIZE] __attribute__((aligned(64)));

/* Whole-command LBA range from the SQE (complete hook: the command as the host sent it). */
static void sqe_range(const struct leap_req *req, uint64_t *slba, uint32_t *nlb)
{
	if (nvme_opc_has_lba(req->sqe.opc)) {
		*slba = nvme_sqe_slba(&req->sqe);
		*nlb = nvme_sqe_nlb(&req->sqe);
	} else {
		*slba = 0;
		*nlb = 0;
	}
}

static struct leap_io_ctx *ctx_fill(const struct leap_req *req, uint32_t hook, uint64_t now)
{
	struct leap_io_ctx *c = (struct leap_io_ctx *)ctx_buf;
	const struct leap_ns *ns = req->ns;
	uint32_t shift = ns ? ns->lba_shift : 9;

	c->size = sizeof(*c);
	c->version = LEAP_POLICY_ABI_VERSION;
	c->hook = hook;
	c->opcode = req->sqe.opc;
	c->ctrl_id = req->qp->ctrl->cntlid;
	c->nsid = req->sqe.nsid;
	c->qid = req->qp->sqid;
	if (hook == LEAP_HOOK_SUBMIT) {
		c->slba = req->cur_slba;
		c->nlb = req->cur_nlb;
		c->latency_ns = 0;
		c->status = 0;
		c->target_lba = req->rt_offset >> shift;
	} else {
		uint64_t slba;
		uint32_t nlb;

		sqe_range(req, &slba, &nlb);
		c->slba = slba;
		c->nlb = nlb;
		c->latency_ns = now - req->submit_ns;
		c->status = req->status;
		c->target_lba = 0;
	}
	c->bytes = (uint64_t)c->nlb << shift;
	c->lba_shift = shift;
	c->part = req->part;
	c->submit_ns = req->submit_ns;
	c->now_ns = now;
	c->ns_bdev = ns ? ns->bdev->id : 0;
	c->reserved0 = 0;
	c->ns_nlb = ns ? ns->nlb : 0;
	c->prio = req->prio;
	c->target_bdev = 0;
	c->split_nlb = 0;
	c->split_verdict = 0;
	c->defer_ns = 0;
	c->cookie[0] = req->hook_data[0];
	c->cookie[1] = req->hook_data[1];
	return c;
}

/* Run the links that apply; the first verdict other than PASS ends the chain. */
static uint64_t run_chain(const struct leap_chain *ch, struct leap_io_ctx *ctx)
{
	for (uint32_t i = 0; i < ch->cnt; i++) {
		const struct leap_chain_entry *e = &ch->e[i];
		struct leap_link_stats *st = e->st;
		bool timed;
		uint64_t r0, t0 = 0;

		if (e->nsid && e->nsid != ctx->nsid)
			continue;
		timed = (st->runs++ % LEAP_POLICY_SAMPLE) == 0;
		if (timed)
			t0 = leap_now_ns();
		r0 = e->jit ? e->jit(ctx, CTX_BUF_SIZE)
			    : leap_bpf_prog_run_interp(e->prog, ctx, CTX_BUF_SIZE);
		if (timed) {
			st->sampled++;
			st->sampled_ns += leap_now_ns() - t0;
		}
		st->verdicts[r0 < LEAP_LV_INVALID ? r0 : LEAP_LV_INVALID]++;
		if (r0 != LEAP_PASS)
			return r0;
	}
	return LEAP_PASS;
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

uint16_t leap_policy_hook_submit(struct leap_req *req, void *arg)
{
	struct leap_policy_ctrl *pc = arg;
	const struct leap_chain *ch =
	    __atomic_load_n(&pc->chain[LEAP_HOOK_SUBMIT], __ATOMIC_ACQUIRE);
	struct leap_io_ctx *ctx;
	uint64_t v, now;

	if (!ch)
		return LEAP_HOOK_RET_CONTINUE;
	/* The first run uses the fetch time: no clock read on the common path. */
	now = (req->part || req->defer_until) ? leap_now_ns() : req->submit_ns;
	ctx = ctx_fill(req, LEAP_HOOK_SUBMIT, now);
	v = run_chain(ch, ctx);
	req->prio = ctx->prio < LEAP_PRIO_CNT ? (uint8_t)ctx->prio : LEAP_PRIO_MEDIUM;
	req->hook_data[0] = ctx->cookie[0];
	req->hook_data[1] = ctx->cookie[1];
	switch (v) {
	case LEAP_PASS:
		return LEAP_HOOK_RET_CONTINUE;
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

uint16_t leap_policy_hook_complete(struct leap_req *req, void *arg)
{
	struct leap_policy_ctrl *pc = arg;
	const struct leap_chain *ch =
	    __atomic_load_n(&pc->chain[LEAP_HOOK_COMPLETE], __ATOMIC_ACQUIRE);
	struct leap_io_ctx *ctx;
	uint64_t v;

	if (!ch)
		return LEAP_HOOK_RET_CONTINUE;
	ctx = ctx_fill(req, LEAP_HOOK_COMPLETE, req->done_ns);
	v = run_chain(ch, ctx);
	if (v == LEAP_PASS)
		return LEAP_HOOK_RET_CONTINUE;
	if (v != LEAP_COMPLETE || !status_ok(ctx->status))
		return invalid(pc);
	return ctx->status ? ctx->status : LEAP_HOOK_RET_SUCCESS;
}

uint64_t leap_policy_ctrl_invalid(const struct leap_ctrl *ctrl)
{
	const struct leap_policy_ctrl *pc = ctrl->hook_submit_arg;

	return pc ? __atomic_load_n(&pc->invalid, __ATOMIC_RELAXED) : 0;
}
