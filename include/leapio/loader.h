/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The loader: turns a clang-compiled BPF ELF object into programs the engine
 * (include/leapio/bpf.h) can run, with the Linux kernel verifier as the gate.
 *
 *  1. libbpf opens the object. Sections named in opts->hooks (for example
 *     "leap/submit") are BPF_PROG_TYPE_SYSCALL + BPF_F_SLEEPABLE; a program
 *     in any other section is rejected ("program 'x': unknown section 'y'
 *     (known: leap/submit, leap/complete)"). With opts->xdp, SEC("xdp")
 *     programs are accepted too: BPF_PROG_TYPE_XDP, verified and run by the
 *     kernel (leapd attaches them to interfaces), never by the engine.
 *  2. Array maps (and .data/.bss/.rodata) get BPF_F_MMAPABLE; hash and
 *     LRU hash maps are allowed on the slow path (a syscall per access);
 *     other types are refused, as are values holding a bpf_spin_lock or
 *     another kernel-managed field (the kernel will not mmap those maps).
 *     Maps except .rodata are pinned under opts->pin_dir/<map name> (".bss"
 *     as "bss") and, when a compatible pinned map exists, reused (type,
 *     key/value size, max_entries and flags must match, or the error names
 *     the field that differs). .rodata knobs from opts->sets are written.
 *  3. The kernel verifies every program (BPF_PROG_LOAD). On rejection the
 *     message is "program 'x': rejected by the kernel verifier (...)"
 *     followed by the last 15 lines of the verifier log.
 *  4. Our checks on the relocated instructions (bpf_program__insns()): no
 *     kfunc calls, BTF-id loads, callback pointers or failed CO-RE
 *     relocations; then the engine's: helper whitelist, context bounds.
 *  5. Map references become addresses: ld_imm64 map-fd -> struct leap_map,
 *     map-value -> mmapped address + offset. The engine program is created
 *     (and JIT-compiled when opts->jit).
 *
 * The path must name a regular file of at most 16 MiB, and the maps may
 * ask for at most 256 MiB of keys and values in all (-EFBIG otherwise).
 *
 * Every rejection is -EINVAL (or the kernel's -errno, or -EEXIST for a
 * pinned-map conflict, -EOPNOTSUPP for an unsupported map) with a one-line
 * reason naming the program or map and the instruction index where there
 * is one, in opts->log_buf. Loads are serialised process-wide (libbpf's
 * print callback is global); the programs they produce run concurrently.
 */
#ifndef LEAPIO_LOADER_H
#define LEAPIO_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leapio/bpf.h"

struct leap_obj;
struct leap_map;

/* A hook a program may attach to: its ELF section name and context size. */
struct leap_hook_def {
	const char *section; /* e.g. "leap/submit" */
	uint32_t ctx_size;   /* bytes of context; accesses beyond are rejected */
};

/* A load-time knob: a .rodata variable set before the object is loaded. */
struct leap_rodata_set {
	const char *name;
	uint64_t value;
};

struct leap_obj_opts {
	/*
	 * sizeof(struct leap_obj_opts). Larger is accepted when the bytes
	 * beyond the fields known here are zero (a newer caller not using
	 * newer fields); smaller is -EINVAL.
	 */
	size_t sz;
	const struct leap_hook_def *hooks;
	uint32_t hook_cnt;
	/*
	 * Pin maps here (created if missing); NULL: no pinning. One directory
	 * per policy: .data/.bss pin as "data"/"bss", so two objects sharing
	 * a directory would share (or conflict on) their global data.
	 */
	const char *pin_dir;
	/* Object name used in pins and messages; NULL: the file name without .bpf.o. */
	const char *name;
	const struct leap_rodata_set *sets;
	uint32_t set_cnt;
	/* Reason for a failure (one paragraph, verifier log tail included). */
	char *log_buf;
	size_t log_sz;
	/* Also JIT-compile every program (leap_bpf_prog_jit_fn() then non-NULL). */
	bool jit;
	/*
	 * Also accept SEC("xdp") programs. They are kernel programs: verified
	 * and executed by the kernel once attached to an interface, so they
	 * get no engine program (leap_obj_prog() is NULL for them) and none
	 * of our instruction checks. Their maps may also be of the types only
	 * the kernel can run (LPM tries, per-CPU arrays and hashes); a leap/
	 * program that references such a map is refused.
	 */
	bool xdp;
	/*
	 * Parse the ELF and have the kernel verify it in a short-lived child
	 * process, which passes back the verified instructions, the program
	 * and map fds, and the variable table; this process never parses the
	 * file. A corrupt object that crashes libbpf's parser then costs the
	 * child, not the caller ("the object crashed the loader's helper
	 * process"). For long-running processes (leapd); it forks.
	 */
	bool isolate;
	/*
	 * Every engine program runs on one thread only, and only they write
	 * their maps' counters: see leap_bpf_prog_opts.single_writer.
	 */
	bool single_writer;
};

/*
 * Open, verify and prepare `path`. On success returns 0 and *out owns kernel
 * programs and maps (fds), mappings and engine programs until
 * leap_obj_close(). On failure returns -errno, *out is NULL, the reason is
 * in opts->log_buf, and nothing is left behind: maps this call pinned are
 * unpinned again (reused pinned maps stay, with their state).
 */
int leap_obj_load(const char *path, const struct leap_obj_opts *opts, struct leap_obj **out);

/* Release everything; pinned maps stay pinned (they are the policy's state). */
void leap_obj_close(struct leap_obj *obj);

/* Programs, in ELF order. */
uint32_t leap_obj_prog_cnt(const struct leap_obj *obj);
const char *leap_obj_prog_name(const struct leap_obj *obj, uint32_t idx);
const char *leap_obj_prog_section(const struct leap_obj *obj, uint32_t idx);
int leap_obj_prog_kernel_fd(const struct leap_obj *obj, uint32_t idx);
/* The engine program; NULL for a kernel program (SEC("xdp")). */
struct leap_bpf_prog *leap_obj_prog(const struct leap_obj *obj, uint32_t idx);
/* Index of the program in `section`, or -ENOENT. */
int leap_obj_find_prog(const struct leap_obj *obj, const char *section);

/* Maps, in libbpf order (including .data/.bss/.rodata). */
uint32_t leap_obj_map_cnt(const struct leap_obj *obj);
struct leap_map *leap_obj_map(const struct leap_obj *obj, uint32_t idx);
struct leap_map *leap_obj_find_map(const struct leap_obj *obj, const char *name);

struct leap_map_info {
	const char *name;
	uint32_t type; /* enum bpf_map_type */
	uint32_t key_size, value_size, max_entries, flags;
	int fd;
	void *data;	      /* mmapped values (array maps), else NULL */
	size_t stride;	      /* bytes between array elements: round_up(value_size, 8) */
	bool slow_path;	      /* lookups need a syscall (hash and other non-mmapped maps) */
	bool reused;	      /* an existing pinned map was reused */
	bool read_only;	      /* .rodata: mapped read-only */
	bool kernel_only;     /* a type only kernel (XDP) programs may use: LPM trie, per-CPU */
	const char *pin_path; /* NULL when not pinned */
};
void leap_map_get_info(const struct leap_map *map, struct leap_map_info *info);

/*
 * A global variable of the object (.data, .bss, .rodata) found by its C
 * name through BTF. addr points into the mmapped map: writing a .data/.bss
 * variable there is what the next program run reads (and what `bpftool map
 * dump` shows); .rodata is mapped read-only. Arrays of integers report
 * their element size and count.
 */
struct leap_var_info {
	const char *name;
	const char *section; /* "data", "bss" or "rodata" */
	uint8_t *addr;
	uint32_t size;	    /* bytes in all */
	uint32_t elem_size; /* == size unless an array */
	uint32_t nelems;    /* 1 unless an array */
	bool read_only;
	struct leap_map *map;
};
/* 0 and *out filled, or -ENOENT. Valid until leap_obj_close(). */
int leap_obj_var_find(const struct leap_obj *obj, const char *name, struct leap_var_info *out);
/* The idx-th variable over .data, .bss, .rodata in that order, or -ENOENT past the end. */
int leap_obj_var_next(const struct leap_obj *obj, uint32_t idx, struct leap_var_info *out);

/*
 * The helpers the runtime implements (the whitelist), shared by all objects:
 * map_lookup_elem, map_update_elem, map_delete_elem, ktime_get_ns
 * (CLOCK_MONOTONIC), trace_printk (the kernel's restricted format, to the
 * leapio log under "bpf"; formats the kernel refuses return -EINVAL),
 * get_prandom_u32 (per-thread xorshift), get_smp_processor_id, spin_lock,
 * spin_unlock. Array maps are served in place from their mapping. Lookups
 * in hash maps return a per-thread copy, valid until 8 further slow-path
 * lookups on that thread: writes through it are not persisted (use
 * map_update_elem).
 */
const struct leap_bpf_helpers *leap_loader_helpers(void);

/*
 * What bpf_get_smp_processor_id() returns on the calling thread (a reactor
 * id). Until set, the CPU the thread ran on at its first call (sched_getcpu()).
 */
void leap_loader_set_thread_cpu(uint32_t id);

#endif /* LEAPIO_LOADER_H */
