/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The policy ABI: what a storage service written in restricted C (policies/
 * *.bpf.c) sees and returns, and what leapd promises about it. Included by
 * policies (clang -target bpf) and by leapd itself, so it uses only
 * fixed-width kernel types.
 *
 * A policy is one BPF object with a program in SEC("leap/submit") and/or
 * SEC("leap/complete"). Each program takes `struct leap_io_ctx *` and
 * returns a verdict (enum leap_verdict). Programs attached to a hook form a
 * chain, run in their declared order; the first verdict other than
 * LEAP_PASS ends the chain. One context is built per chain run, so a link
 * sees what earlier links wrote into the writable fields (the priority
 * policy sets `prio`, an isolation policy after it still sees it).
 *
 * Read-only fields: writes to them are ignored by construction. leapd fills
 * the context from its own copy of the command before every chain run and
 * reads back only the writable fields the verdict uses, never the others;
 * the command itself lives outside the program's reach.
 *
 * Context memory: the kernel verifier lets a syscall program touch any
 * fixed offset in [0, 65535) of its context. leapd both checks every
 * context access against sizeof(struct leap_io_ctx) at load (a rejection
 * names the instruction) and runs every chain on a 64 KiB per-reactor
 * buffer whose tail is scratch, so even an access our check missed cannot
 * leave that buffer.
 *
 * ABI rules: the struct starts with size and version; fields are only ever
 * appended. A policy built against an older header reads only the prefix it
 * knows; one built against a newer header can test ctx->size.
 */
#ifndef LEAPIO_POLICY_H
#define LEAPIO_POLICY_H

#include <linux/types.h>

#define LEAP_POLICY_ABI_VERSION 1

#define LEAP_SEC_SUBMIT	  "leap/submit"
#define LEAP_SEC_COMPLETE "leap/complete"

enum leap_hook {
	LEAP_HOOK_SUBMIT = 0,	/* validated, before the backend */
	LEAP_HOOK_COMPLETE = 1, /* after the backend, before the completion is posted */
	LEAP_HOOK_CNT = 2,
};

enum leap_verdict {
	/* Go on: next link, then the backend (submit) or the host (complete). */
	LEAP_PASS = 0,
	/*
	 * Complete the command now with ctx->status (0: success). At submit no
	 * byte moves; at complete it replaces the backend's status.
	 */
	LEAP_COMPLETE = 1,
	/*
	 * Submit only: send the command to backend ctx->target_bdev (0: the
	 * namespace's own) at block ctx->target_lba of that backend, in this
	 * namespace's LBA size. A target that does not exist or a range past
	 * its end fails the command with Internal Error and counts it.
	 */
	LEAP_REDIRECT = 2,
	/*
	 * Submit only: hold the command for ctx->defer_ns nanoseconds, then
	 * run the chain again from its first link (a token bucket re-checks).
	 */
	LEAP_DEFER = 3,
	/*
	 * Submit only, Read/Write/Compare/Write Zeroes: handle the first
	 * ctx->split_nlb blocks (1 <= split_nlb < nlb) as if the verdict had
	 * been ctx->split_verdict (PASS or REDIRECT, with the target fields),
	 * then run the chain again for the remaining blocks. The host sees one
	 * completion.
	 */
	LEAP_SPLIT = 4,
};

/* Priority classes, as NVMe's arbitration: urgent is strict, the rest weighted round robin. */
enum leap_prio {
	LEAP_PRIO_URGENT = 0,
	LEAP_PRIO_HIGH = 1,
	LEAP_PRIO_MEDIUM = 2,
	LEAP_PRIO_LOW = 3,
	LEAP_PRIO_CNT = 4,
};

/*
 * NVMe status as policies read and write it: SC in bits 7:0, SCT in 10:8,
 * DNR in bit 15 (the CQE status field shifted right by one, DNR kept).
 */
#define LEAP_STATUS(sct, sc)		  ((__u16)(((sct) << 8) | (sc)))
#define LEAP_STATUS_DNR			  0x8000
#define LEAP_ST_INTERNAL_ERROR		  LEAP_STATUS(0, 0x06)
#define LEAP_ST_LBA_OUT_OF_RANGE	  (LEAP_STATUS(0, 0x80) | LEAP_STATUS_DNR)
#define LEAP_ST_INVALID_FIELD		  (LEAP_STATUS(0, 0x02) | LEAP_STATUS_DNR)
#define LEAP_ST_NAMESPACE_WRITE_PROTECTED (LEAP_STATUS(0, 0x20) | LEAP_STATUS_DNR)
#define LEAP_ST_ACCESS_DENIED		  (LEAP_STATUS(2, 0x86) | LEAP_STATUS_DNR)

/* NVMe I/O opcodes a policy sees. */
#define LEAP_OPC_FLUSH	      0x00
#define LEAP_OPC_WRITE	      0x01
#define LEAP_OPC_READ	      0x02
#define LEAP_OPC_COMPARE      0x05
#define LEAP_OPC_WRITE_ZEROES 0x08
#define LEAP_OPC_DSM	      0x09

struct leap_io_ctx {
	/* ---- read-only ---------------------------------------------------- */
	__u32 size;    /* sizeof(struct leap_io_ctx) as leapd knows it */
	__u32 version; /* LEAP_POLICY_ABI_VERSION */
	__u32 hook;    /* enum leap_hook */
	__u32 opcode;  /* LEAP_OPC_* */
	__u32 ctrl_id; /* the tenant: its controller's id (cntlid) */
	__u32 nsid;
	__u32 qid;	  /* submission queue */
	__u32 nlb;	  /* blocks in this run (a SPLIT remainder is smaller); 0: Flush, DSM */
	__u64 slba;	  /* first block of this run, in the namespace */
	__u64 bytes;	  /* nlb << lba_shift */
	__u32 lba_shift;  /* 9 or 12 */
	__u32 part;	  /* 0, or how many SPLITs came before this run */
	__u64 submit_ns;  /* CLOCK_MONOTONIC when leapd fetched the command */
	__u64 now_ns;	  /* when this chain run started */
	__u64 latency_ns; /* complete hook: now_ns - submit_ns; 0 at submit */
	__u32 ns_bdev;	  /* id of the namespace's own backend */
	__u32 reserved0;
	__u64 ns_nlb; /* namespace size in blocks */
	/* ---- writable ----------------------------------------------------- */
	/* Complete hook: the status so far. LEAP_COMPLETE: the status to post. */
	__u16 status;
	__u16 prio;	     /* submit: enum leap_prio; starts as LEAP_PRIO_MEDIUM */
	__u32 target_bdev;   /* REDIRECT: backend id; starts as 0 (the namespace's own) */
	__u64 target_lba;    /* REDIRECT: block in the target; starts where the I/O would go */
	__u32 split_nlb;     /* SPLIT: blocks in the first part */
	__u32 split_verdict; /* SPLIT: LEAP_PASS or LEAP_REDIRECT for the first part */
	__u64 defer_ns;	     /* DEFER: how long */
	/* Carried from the submit chain to the complete chain of the same command. */
	__u64 cookie[2];
};

#ifndef __bpf__
_Static_assert(sizeof(struct leap_io_ctx) == 144, "leap_io_ctx is an ABI: append only");
#endif

#endif /* LEAPIO_POLICY_H */
