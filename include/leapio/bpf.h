/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The userspace eBPF engine: validates an instruction array once, then runs
 * it either in the reference interpreter or as x86-64 code from the JIT.
 * Both follow the BPF ISA (RFC 9669) exactly, including v4 additions.
 *
 * The engine knows nothing about ELF, libbpf or the kernel: the loader
 * (include/leapio/loader.h) hands it instructions the kernel verifier has
 * already accepted, with every map reference rewritten into a plain 64-bit
 * address (ld_imm64 src_reg 0). Our own validation (this file) re-checks
 * structure and enforces what the kernel cannot know: which helpers this
 * runtime implements and how large each hook's context really is. After
 * validation the execution paths carry no checks.
 *
 * Threading: a leap_bpf_prog is immutable after leap_bpf_prog_create() (and
 * leap_bpf_prog_jit()), so any number of threads may run it concurrently.
 * Each run uses the calling thread's native stack for the BPF stack; every
 * function zeroes the part of its frame it may touch (measured at
 * validation) on entry, on both engines, so a program that reads stack it
 * never wrote sees zeros, never a previous run's data.
 */
#ifndef LEAPIO_BPF_H
#define LEAPIO_BPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/bpf.h> /* struct bpf_insn and the opcode constants */

#define LEAP_BPF_STACK_SIZE	512 /* bytes per frame, as in the kernel */
#define LEAP_BPF_MAX_CALL_DEPTH 8   /* frames, as the kernel's MAX_CALL_FRAMES */
#define LEAP_BPF_MAX_HELPERS	256 /* helper ids are the kernel's enum bpf_func_id */
#define LEAP_BPF_MAX_INSNS	65536

/* Helpers take r1..r5 and return r0, like the kernel's BPF_CALL_x helpers. */
typedef uint64_t (*leap_bpf_helper_fn)(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
				       uint64_t r5);

/*
 * The helpers a program may call, indexed by kernel helper id. A call to an
 * id whose entry is NULL is rejected at validation with the helper's name.
 * The table must outlive every program created with it (the JIT bakes the
 * function addresses into code).
 */
struct leap_bpf_helpers {
	leap_bpf_helper_fn fn[LEAP_BPF_MAX_HELPERS];
};

struct leap_bpf_prog;

/*
 * An array map whose values are plain memory (mmapped): what an inlined
 * map_lookup_elem needs. r0 = key < max_entries ? data + key * stride : 0.
 */
struct leap_bpf_array {
	uint8_t *data;
	uint32_t stride;
	uint32_t max_entries;
};

struct leap_bpf_prog_opts {
	size_t sz; /* sizeof(struct leap_bpf_prog_opts): lets the struct grow */
	const struct leap_bpf_helpers *helpers; /* NULL: no helper calls allowed */
	/*
	 * Bytes of context r1 points to at entry. When non-zero, every load or
	 * store through a register derived from r1 (copied, spilled to the
	 * stack and reloaded, passed to a bpf-to-bpf call) must fall inside
	 * [0, ctx_size), or the program is rejected naming the instruction.
	 * Offsets are followed through constant arithmetic (also via scalar
	 * registers); an access through a maybe-context pointer whose offset
	 * cannot be followed is rejected, and so is an r10 access outside the
	 * 512-byte frame.
	 * 0 disables the check (raw programs from leap-bpfrun).
	 */
	uint32_t ctx_size;
	/* Validation failures are described here ("insn 12: ...") when non-NULL. */
	char *errbuf;
	size_t errbuf_sz;
	/*
	 * Array maps the JIT may inline lookups for: `ld_imm64 r1, A` followed
	 * by `call 1` (map_lookup_elem) with only instructions between that
	 * leave r1 alone and no jump into them, A one of these addresses,
	 * becomes a bounds check and an address computation — no call. The
	 * helper at id 1 must implement exactly that for these maps. Entries
	 * must stay valid and unchanged for the program's life. May be NULL.
	 */
	const struct leap_bpf_array *const *arrays;
	uint32_t array_cnt;
	/*
	 * One thread runs this program at a time and nothing else writes the
	 * memory it updates atomically: the JIT emits the read-modify-writes
	 * that return nothing (atomic add, or, and, xor: counters) without the
	 * lock prefix, a plain `add [mem], reg` (one instruction: readers never
	 * see a torn value; a concurrent writer elsewhere could lose an
	 * update). Fetching atomics, xchg and cmpxchg stay locked.
	 */
	bool single_writer;
};

/*
 * Copy and validate `insns`. Rejects: unknown opcodes or fields that must be
 * zero, jumps outside the program or into the middle of an ld_imm64, a last
 * instruction that can fall off the end, ld_imm64 with a non-zero src_reg
 * (map references must already be resolved to addresses by the loader),
 * kfunc calls, helpers not in opts->helpers, bpf-to-bpf calls out of range,
 * recursive or deeper than LEAP_BPF_MAX_CALL_DEPTH, writes to r10, and
 * context accesses out of bounds (see ctx_size).
 * Returns 0 and stores the program in *out, or -EINVAL (validation, message
 * in errbuf), -E2BIG (too many instructions) or -ENOMEM.
 */
int leap_bpf_prog_create(const struct bpf_insn *insns, uint32_t insn_cnt,
			 const struct leap_bpf_prog_opts *opts, struct leap_bpf_prog **out);

/*
 * Compile the program to x86-64. The code is written into an anonymous
 * mapping, then made read+execute (never writable and executable at once).
 * Idempotent. Returns 0, -ENOMEM, or -ENOTSUP when not running on x86-64.
 */
int leap_bpf_prog_jit(struct leap_bpf_prog *prog, char *errbuf, size_t errbuf_sz);

/*
 * Run in the interpreter with r1 = ctx, r2 = ctx_len. Returns r0. prog must
 * not be NULL (NULL is the engine asking itself for its handler table).
 */
uint64_t leap_bpf_prog_run_interp(const struct leap_bpf_prog *prog, void *ctx, uint64_t ctx_len);

/* JIT entry: r1 = ctx, r2 = ctx_len, returns r0. NULL until leap_bpf_prog_jit() succeeded. */
typedef uint64_t (*leap_bpf_jit_fn)(void *ctx, uint64_t ctx_len);
leap_bpf_jit_fn leap_bpf_prog_jit_fn(const struct leap_bpf_prog *prog);

/*
 * A chain: one native function running JITed programs in order on one
 * context, as a loop calling each leap_bpf_prog_jit_fn() would, without
 * the call and frame per program. A run ends at the first program whose
 * r0 is not 0 and returns that r0 with the program's index (link); when
 * every program returned 0, r0 0 and link n. Before going on from program
 * k (r0 0), adds 1 to *pass_count[k] with a plain add: one thread at a
 * time may run a given chain. The programs and counters must outlive the
 * chain; the programs must have been JITed.
 */
#define LEAP_BPF_CHAIN_MAX 256
struct leap_bpf_chain;
struct leap_bpf_chain_ret {
	uint64_t r0;
	uint64_t link;
};
typedef struct leap_bpf_chain_ret (*leap_bpf_chain_fn)(void *ctx, uint64_t ctx_len);
/* 0, -EINVAL (n 0 or above the maximum, a program not JITed), -ENOMEM, -ENOTSUP (not x86-64). */
int leap_bpf_chain_jit(const struct leap_bpf_prog *const *progs, uint64_t *const *pass_count,
		       uint32_t n, struct leap_bpf_chain **out);
leap_bpf_chain_fn leap_bpf_chain_fn_of(const struct leap_bpf_chain *ch);
size_t leap_bpf_chain_size(const struct leap_bpf_chain *ch); /* bytes of code; 0 for NULL */
void leap_bpf_chain_free(struct leap_bpf_chain *ch);	     /* NULL-safe */

/* Number of (validated) instructions, and of bytes of generated code (0 before JIT). */
uint32_t leap_bpf_prog_insn_cnt(const struct leap_bpf_prog *prog);
size_t leap_bpf_prog_jit_size(const struct leap_bpf_prog *prog);

/*
 * The 8-byte words of the context (bit i: bytes [8i, 8i + 8)) that some
 * path of the program may read, or write (atomics do both), as validation
 * found them: complete, so a word outside `reads` never influences a run.
 * All bits when the program was created with ctx_size 0 (unchecked) or
 * hands the context pointer to a helper; bit 63 also stands for every word
 * beyond it.
 */
uint64_t leap_bpf_prog_ctx_reads(const struct leap_bpf_prog *prog);
uint64_t leap_bpf_prog_ctx_writes(const struct leap_bpf_prog *prog);

/* Free the program and its JIT code. Accepts NULL. */
void leap_bpf_prog_free(struct leap_bpf_prog *prog);

/* The kernel's name for a helper id ("map_lookup_elem"), or NULL if unknown. */
const char *leap_bpf_helper_name(uint32_t id);

#endif /* LEAPIO_BPF_H */
