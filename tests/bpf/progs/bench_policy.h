/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared between the benchmark policy (bench_policy.bpf.c) and bench/bpf_bench.c:
 * the context the policy sees and the values of its three array maps. The
 * benchmark's native-C baseline implements the same logic on the same
 * mmapped map memory, so both sides must agree on these layouts.
 */
#ifndef LEAPIO_BENCH_POLICY_H
#define LEAPIO_BENCH_POLICY_H

#include <linux/types.h>

#define BENCH_TENANTS 64

/* Verdicts the policy returns. */
#define BENCH_PASS     0
#define BENCH_THROTTLE 1
#define BENCH_REJECT   2

/* A submitted I/O as the policy sees it (the hook's context). */
struct bench_ctx {
	__u32 tenant;
	__u32 opcode; /* 1 write, 2 read (NVMe) */
	__u64 lba;
	__u32 len;    /* bytes */
	__u32 prio;   /* filled in by the policy */
	__u64 now_ns; /* the runtime's clock, read once per poll */
};

/* Per-tenant configuration (map "bench_cfg"). */
struct bench_cfg {
	__u64 rate_per_ms; /* tokens (4 KiB units) added per millisecond */
	__u64 burst;	   /* bucket capacity in tokens */
	__u64 lba_limit;   /* first LBA the tenant may not touch */
	__u32 prio;
	__u32 flags; /* BENCH_CFG_* */
};
#define BENCH_CFG_ENABLED   1u
#define BENCH_CFG_READ_ONLY 2u

/* Token bucket state (map "bench_bucket"). */
struct bench_bucket {
	__u64 tokens;
	__u64 last_ns;
};

/* Counters (map "bench_stats"). */
struct bench_stats {
	__u64 ios;
	__u64 bytes;
	__u64 throttled;
	__u64 rejected;
};

#endif /* LEAPIO_BENCH_POLICY_H */
