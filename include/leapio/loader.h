/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The loader: turns a clang-compiled BPF ELF object into programs the engine
 * (include/leapio/bpf.h) can run, with the Linux kernel verifier as the gate.
 *
 *  1. libbpf opens the object. Sections named in opts->hooks (for example
 *     "leap/submit") are BPF_PROG_TYPE_SYSCALL + BPF_F_SLEEPABLE; a program
 *     in any other section is rejected.
 *  2. Array maps (and .data/.bss) get BPF_F_MMAPABLE; maps are pinned under
 *     opts->pin_dir/<map name> and, when a compatible pinned map exists,
 *     reused (name, type, key/value size, max_entries and flags must match).
 *  3. The kernel verifies every program (BPF_PROG_LOAD). Its log tail is
 *     returned on rejection.
 *  4. Our checks on the relocated instructions (bpf_program__insns()):
 *     helper whitelist, no kfunc calls, no BTF-id loads, context bounds.
 *  5. Map references become addresses: ld_imm64 map-fd -> struct leap_map,
 *     map-value -> mmapped address + offset. The engine program is created.
 *
 * Every rejection is -EINVAL (or the kernel's -errno) with a one-line reason
 * naming the program, the instruction index where there is one, and for
 * verifier rejections the tail of the verifier log, in opts->log_buf.
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
	size_t sz; /* sizeof(struct leap_obj_opts) */
	const struct leap_hook_def *hooks;
	uint32_t hook_cnt;
	/* Pin maps here (created if missing); NULL: no pinning. */
	const char *pin_dir;
	/* Object name used in pins and messages; NULL: the file name without .bpf.o. */
	const char *name;
	const struct leap_rodata_set *sets;
	uint32_t set_cnt;
	/* Reason for a failure (one paragraph, verifier log tail included). */
	char *log_buf;
	size_t log_sz;
	/* Also JIT-compile every program (leap_prog_jit_fn() then non-NULL). */
	bool jit;
};

/*
 * Open, verify and prepare `path`. On success *out owns kernel programs and
 * maps (fds), mappings and engine programs until leap_obj_close().
 */
int leap_obj_load(const char *path, const struct leap_obj_opts *opts, struct leap_obj **out);

/* Release everything; pinned maps stay pinned (they are the policy's state). */
void leap_obj_close(struct leap_obj *obj);

/* Programs, in ELF order. */
uint32_t leap_obj_prog_cnt(const struct leap_obj *obj);
const char *leap_obj_prog_name(const struct leap_obj *obj, uint32_t idx);
const char *leap_obj_prog_section(const struct leap_obj *obj, uint32_t idx);
int leap_obj_prog_kernel_fd(const struct leap_obj *obj, uint32_t idx);
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
	void *data;	  /* mmapped values (array maps), else NULL */
	size_t stride;	  /* bytes between array elements: round_up(value_size, 8) */
	bool slow_path;	  /* lookups need a syscall (hash and other non-mmapped maps) */
	bool reused;	  /* an existing pinned map was reused */
	bool read_only;	  /* .rodata: mapped read-only */
	const char *pin_path; /* NULL when not pinned */
};
void leap_map_get_info(const struct leap_map *map, struct leap_map_info *info);

/*
 * The helpers the runtime implements (the whitelist), shared by all objects:
 * map_lookup_elem, map_update_elem, map_delete_elem, ktime_get_ns,
 * trace_printk (to the leapio log), get_prandom_u32, get_smp_processor_id,
 * spin_lock, spin_unlock. Lookups in hash maps return a per-thread copy:
 * writes through it are not persisted (use map_update_elem).
 */
const struct leap_bpf_helpers *leap_loader_helpers(void);

/* What bpf_get_smp_processor_id() returns on the calling thread (a reactor id). */
void leap_loader_set_thread_cpu(uint32_t id);

#endif /* LEAPIO_LOADER_H */
