// SPDX-License-Identifier: BSD-3-Clause
/*
 * snapshot — redirect-on-write snapshot routing (submit and complete hooks).
 *
 * While `active`, writes to the live namespace (live_ctrl, live_nsid) go to
 * an overlay backend (overlay_bdev, as large as the namespace, same block
 * numbers: target_lba = slba), and a bitmap remembers which blocks the
 * overlay holds. The base backend is then frozen, and a read-only snapshot
 * namespace (snap_ctrl, snap_nsid) over the same base serves the image as
 * it was at activation.
 *
 * Live namespace, active:
 *   Write, Write Zeroes  LEAP_REDIRECT to overlay_bdev at slba; when the
 *                        overlay write completes successfully (complete
 *                        hook), set bits [slba, slba + nlb). Blocks at or beyond
 *                        LEAP_SNAP_BLOCKS (2^24, the bitmap's capacity:
 *                        8 GiB of 512 B blocks, 64 GiB of 4 KiB blocks)
 *                        have no bit: a write touching one completes with
 *                        LEAP_ST_INTERNAL_ERROR and changes nothing. Use
 *                        the policy only on namespaces that fit.
 *   Read, Compare        whole range in the overlay: REDIRECT there; whole
 *                        range clean: PASS (base); mixed: LEAP_SPLIT with
 *                        split_nlb = the leading run of equal bits and
 *                        split_verdict REDIRECT or PASS; leapd runs the chain
 *                        again for the rest. Blocks beyond the bitmap read as
 *                        clean (no write can have reached the overlay there).
 *   DSM (deallocate)     LEAP_COMPLETE, status 0, no effect. Deviation: the
 *                        overlay has no "deallocated" state to record and
 *                        the base must stay frozen; deallocate is advisory
 *                        in NVMe, so dropping it is allowed, but the blocks
 *                        keep reading their old data rather than zeroes.
 *   Flush                PASS (it reaches the namespace's own backend only;
 *                        the overlay's volatile cache is leapd's to flush).
 * Live namespace, not active: everything passes.
 * Snapshot namespace (always, so an idle snapshot namespace cannot corrupt
 * the base): reads, compares and flushes pass; Write, Write Zeroes and DSM
 * complete with LEAP_ST_NAMESPACE_WRITE_PROTECTED.
 *
 * Bits are set when the overlay write has completed, never before: a read
 * that races an in-flight write of the same blocks goes to the base and
 * returns the old data, or, submitted after the write completed, the
 * overlay's new data; it can never see overlay blocks that were not
 * written yet (marking at submit did: a read then returned whatever the
 * overlay held before, neither old nor new). A failed overlay write sets
 * no bits: its blocks keep reading the old data. The submit hook tags the
 * commands it redirected (cookie[1] = LEAP_SNAP_COOKIE) so the complete
 * hook marks exactly those, and only while `active` (a rollback clears the
 * bitmap after setting active=0; a write completing after that must not
 * mark it again).
 *
 * Knobs (.data, live: `leapctl policy set snapshot active=1`):
 *   active        0/1
 *   overlay_bdev  backend id of the overlay (leapctl resolves `bdev:NAME`)
 *   live_ctrl, live_nsid  the namespace whose writes are redirected
 *                 (live_ctrl LEAP_ANY: through any controller; nsid 0: none)
 *   snap_ctrl, snap_nsid  the read-only snapshot namespace (same rules)
 *
 * Maps: snap_bitmap[LEAP_SNAP_WORDS] __u64: bit (b % 64) of word b / 64 set
 *   when block b of the live namespace is in the overlay;
 *   snap_counts[1] struct leap_snap_count.
 *
 * Taking a snapshot: clear snap_bitmap, set overlay_bdev, then active=1.
 * Rollback (discard the overlay, back to the snapshot): set active=0 and
 * clear snap_bitmap (`leapctl` map clear): reads then see the base again.
 * Merging the overlay back into the base is not this policy's job.
 *
 * Chain order: prio → isolation → snapshot (last: its REDIRECT and SPLIT
 * end the chain). It must not share a namespace with an isolation area.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "leapio/policy.h"
#include "leap_policies.h"

__u32 active SEC(".data") = 0;
__u32 overlay_bdev SEC(".data") = 0;
__u32 live_ctrl SEC(".data") = LEAP_ANY;
__u32 live_nsid SEC(".data") = 0;
__u32 snap_ctrl SEC(".data") = LEAP_ANY;
__u32 snap_nsid SEC(".data") = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LEAP_SNAP_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} snap_bitmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct leap_snap_count);
} snap_counts SEC(".maps");

/* A command spans at most 65536 blocks: at most 1024 whole words between its ends. */
#define MID_WORDS 1024

/* Count of trailing zero bits of x != 0, by halving (no loop, no table). */
static __always_inline __u32 ctz64(__u64 x)
{
	__u32 n = 0;

	if (!(x & 0xffffffffull)) {
		n += 32;
		x >>= 32;
	}
	if (!(x & 0xffff)) {
		n += 16;
		x >>= 16;
	}
	if (!(x & 0xff)) {
		n += 8;
		x >>= 8;
	}
	if (!(x & 0xf)) {
		n += 4;
		x >>= 4;
	}
	if (!(x & 0x3)) {
		n += 2;
		x >>= 2;
	}
	if (!(x & 0x1))
		n += 1;
	return n;
}

static __always_inline int is_ns(__u32 want_ctrl, __u32 want_nsid, __u32 ctrl, __u32 nsid)
{
	return want_nsid && want_nsid == nsid && (want_ctrl == LEAP_ANY || want_ctrl == ctrl);
}

static __always_inline __u64 word_at(__u32 w)
{
	__u64 *p = bpf_map_lookup_elem(&snap_bitmap, &w);

	return p ? *p : 0;
}

static __always_inline int or_word(__u32 w, __u64 mask)
{
	__u64 *p = bpf_map_lookup_elem(&snap_bitmap, &w);

	if (!p)
		return -1;
	/* Atomic: other reactors may set other bits of the same word. */
	if ((*p & mask) != mask)
		__sync_fetch_and_or(p, mask);
	return 0;
}

/*
 * Set bits [slba, slba + nlb), all below LEAP_SNAP_BLOCKS. The two end
 * words are done outside the loop so that its body stays branch-poor: the
 * kernel verifier walks every iteration.
 */
static int mark(__u64 slba, __u32 nlb)
{
	__u64 end = slba + nlb, lo = slba & 63, hi = ((end - 1) & 63) + 1;
	__u64 lo_mask = ~0ull << lo, hi_mask = hi == 64 ? ~0ull : (1ull << hi) - 1;
	__u32 fw = (__u32)(slba >> 6), lw = (__u32)((end - 1) >> 6), w = fw + 1;

	if (fw == lw)
		return or_word(fw, lo_mask & hi_mask);
	if (or_word(fw, lo_mask) < 0 || or_word(lw, hi_mask) < 0)
		return -1;
	for (__u32 i = 0; i < MID_WORDS && w < lw; i++, w++) {
		__u64 *p = bpf_map_lookup_elem(&snap_bitmap, &w);

		if (!p)
			return -1;
		/* All ones: a plain store cannot lose a concurrent OR. */
		*p = ~0ull;
	}
	return w < lw ? -1 : 0;
}

/*
 * Length of the run of blocks from slba whose bit equals slba's (capped at
 * nlb); *first is that bit. Blocks at or past LEAP_SNAP_BLOCKS are clean.
 */
static __u32 leading_run(__u64 slba, __u32 nlb, __u32 *first)
{
	__u32 off, avail, run, bit, w;
	__u64 x, flip, tail = 0;

	*first = 0;
	if (slba >= LEAP_SNAP_BLOCKS)
		return nlb;
	w = (__u32)(slba >> 6);
	off = (__u32)(slba & 63);
	avail = 64 - off;
	x = word_at(w) >> off;
	bit = (__u32)(x & 1);
	*first = bit;
	flip = bit ? ~0ull : 0;
	/* Now the run is the trailing zeros; a one at `avail` ends the word. */
	x ^= flip;
	if (avail < 64)
		x |= 1ull << avail;
	run = x ? ctz64(x) : 64;
	if (run < avail || run >= nlb)
		return run < nlb ? run : nlb;
	/* Whole words: the loop only compares; the final partial word is counted after. */
	for (__u32 i = 0; i < MID_WORDS && run < nlb; i++) {
		w++;
		if (w >= LEAP_SNAP_WORDS) {
			if (!bit)
				run = nlb; /* past the bitmap: clean, like the run */
			break;
		}
		x = word_at(w) ^ flip;
		if (x) {
			tail = x;
			break;
		}
		run += 64;
	}
	if (tail)
		run += ctz64(tail);
	return run < nlb ? run : nlb;
}

static __always_inline struct leap_snap_count *counts(void)
{
	__u32 k = 0;

	return bpf_map_lookup_elem(&snap_counts, &k);
}

static __always_inline void count(__u64 *field)
{
	__sync_fetch_and_add(field, 1);
}

SEC("leap/submit")
int snapshot_submit(struct leap_io_ctx *ctx)
{
	__u32 ctrl = ctx->ctrl_id, nsid = ctx->nsid, opc = ctx->opcode, nlb, first, run;
	struct leap_snap_count *c = counts();
	__u64 slba;

	if (!c)
		return LEAP_PASS;
	if (is_ns(snap_ctrl, snap_nsid, ctrl, nsid)) {
		if (opc == LEAP_OPC_WRITE || opc == LEAP_OPC_WRITE_ZEROES || opc == LEAP_OPC_DSM) {
			ctx->status = LEAP_ST_NAMESPACE_WRITE_PROTECTED;
			count(&c->write_protected);
			return LEAP_COMPLETE;
		}
		return LEAP_PASS;
	}
	if (!active || !is_ns(live_ctrl, live_nsid, ctrl, nsid))
		return LEAP_PASS;

	slba = ctx->slba;
	nlb = ctx->nlb;
	switch (opc) {
	case LEAP_OPC_WRITE:
	case LEAP_OPC_WRITE_ZEROES:
		if (!nlb)
			return LEAP_PASS;
		if (slba >= LEAP_SNAP_BLOCKS || nlb > LEAP_SNAP_BLOCKS - slba) {
			ctx->status = LEAP_ST_INTERNAL_ERROR;
			count(&c->beyond_bitmap);
			return LEAP_COMPLETE;
		}
		/* Marked when it has landed (snapshot_complete), not now. */
		ctx->cookie[1] = LEAP_SNAP_COOKIE;
		ctx->target_bdev = overlay_bdev;
		ctx->target_lba = slba;
		count(&c->write_redirected);
		return LEAP_REDIRECT;
	case LEAP_OPC_READ:
	case LEAP_OPC_COMPARE:
		if (!nlb)
			return LEAP_PASS;
		run = leading_run(slba, nlb, &first);
		if (first) {
			ctx->target_bdev = overlay_bdev;
			ctx->target_lba = slba;
		}
		if (run >= nlb) {
			count(first ? &c->read_redirected : &c->read_passed);
			return first ? LEAP_REDIRECT : LEAP_PASS;
		}
		ctx->split_nlb = run;
		ctx->split_verdict = first ? LEAP_REDIRECT : LEAP_PASS;
		count(&c->read_split);
		return LEAP_SPLIT;
	case LEAP_OPC_DSM:
		ctx->status = 0;
		count(&c->dsm_dropped);
		return LEAP_COMPLETE;
	default:
		return LEAP_PASS;
	}
}

/*
 * An overlay write completed: from now on its blocks read from the overlay.
 * Before this point a read of them went to the base (old data), which is
 * what a read racing a write may return.
 */
SEC("leap/complete")
int snapshot_complete(struct leap_io_ctx *ctx)
{
	if (ctx->cookie[1] != LEAP_SNAP_COOKIE)
		return LEAP_PASS;
	if (ctx->status == 0 && active && ctx->nlb &&
	    is_ns(live_ctrl, live_nsid, ctx->ctrl_id, ctx->nsid))
		mark(ctx->slba, ctx->nlb);
	return LEAP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
