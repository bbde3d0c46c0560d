/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Loader internals: the per-map and per-object state behind
 * include/leapio/loader.h, shared by the files of loader/.
 */
#ifndef LEAPIO_LOADER_INTERNAL_H
#define LEAPIO_LOADER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leapio/loader.h"

struct bpf_object;
struct bpf_map;

/*
 * What a program's ld_imm64 map reference points to after rewriting, and
 * what the map helpers receive in r1. The first three fields are the array
 * fast path and stay first: a JIT may inline lookups from them.
 */
struct leap_map {
	uint8_t *data;	 /* mmapped values, or NULL (slow path) */
	uint32_t stride; /* round_up(value_size, 8) */
	uint32_t max_entries;
	uint32_t key_size;
	uint32_t value_size;
	uint32_t type;
	uint32_t flags;
	int fd;
	/*
	 * The number the program's ld_imm64 map references use: fd itself,
	 * or, for an object loaded in the helper process, the helper's
	 * number for the map (the instructions were relocated there).
	 */
	int ref_fd;
	size_t map_len; /* bytes mmapped */
	bool slow_path;
	bool reused;
	bool read_only;
	bool kernel_only; /* LPM trie, per-CPU: XDP programs only (opts->xdp) */
	char name[64];
	char pin_path[512];
};

/* The first fields of struct leap_map are a struct leap_bpf_array: the JIT inlines lookups. */
_Static_assert(offsetof(struct leap_map, data) == offsetof(struct leap_bpf_array, data), "data");
_Static_assert(offsetof(struct leap_map, stride) == offsetof(struct leap_bpf_array, stride),
	       "stride");
_Static_assert(offsetof(struct leap_map, max_entries) ==
		   offsetof(struct leap_bpf_array, max_entries),
	       "max_entries");

struct leap_obj_prog {
	char name[64];
	char section[64];
	int kernel_fd;
	struct bpf_insn *insns; /* the relocated instructions the kernel verified (a copy) */
	uint32_t insn_cnt;
	struct leap_bpf_prog *prog; /* NULL: a kernel program (SEC("xdp")) */
	char *vlog;		    /* verifier log buffer, only during bpf_object__load() */
};

/* A global variable (.data, .bss, .rodata), from the object's BTF at load. */
struct leap_obj_var {
	char name[64];
	uint8_t sec; /* index into "data", "bss", "rodata" */
	uint32_t offset, size, elem_size, nelems;
};

struct leap_obj {
	struct bpf_object *bpf; /* NULL when loaded in the helper process */
	struct leap_map *maps;
	uint32_t map_cnt;
	struct leap_obj_prog *progs;
	uint32_t prog_cnt;
	struct leap_obj_var *vars;
	uint32_t var_cnt;
	bool own_fds; /* map and program fds are ours to close (no bpf_object owns them) */
};

/* Limits on what an object may make the loader read or the kernel allocate. */
#define LEAP_OBJ_MAX_BYTES     (16u << 20)  /* the ELF file */
#define LEAP_OBJ_MAX_MAP_BYTES (256u << 20) /* keys and values of all its maps */
#define LEAP_OBJ_MAX_MAPS      64
#define LEAP_OBJ_MAX_PROGS     16
#define LEAP_OBJ_MAX_VARS      1024
#define LEAP_OBJ_MAX_INSNS     (1u << 20) /* per program (the kernel's own limit) */

/* Write a message into the caller's log buffer (when given) and return err. */
int leap_loader_fail(const struct leap_obj_opts *opts, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Maps (loader_maps.c). */
int leap_loader_maps_prepare(struct leap_obj *obj, const struct leap_obj_opts *opts);
/* After bpf_object__load(): name, fd, pin path, .rodata-ness of every map. */
void leap_loader_maps_describe(struct leap_obj *obj);
/* mmap every map from its fd (shape from the kernel's bpf_map_info). */
int leap_loader_maps_bind(struct leap_obj *obj, const struct leap_obj_opts *opts);
void leap_loader_maps_release(struct leap_obj *obj);
/* Unpin the maps this load pinned anew (not the reused ones). */
void leap_loader_maps_unpin_created(struct leap_obj *obj);
/* The map whose ld_imm64 references carry `fd` (struct leap_map.ref_fd). */
struct leap_map *leap_loader_map_by_fd(struct leap_obj *obj, int fd);

/* Global variables from BTF into obj->vars (loader_vars.c); after load. */
int leap_loader_vars_collect(struct leap_obj *obj, const struct leap_obj_opts *opts);

/*
 * The part of a load that parses the ELF (loader.c): open the object from
 * memory, check it, create and pin its maps, have the kernel verify its
 * programs, and copy out what the rest needs (instructions, fds, map names,
 * variables). obj->bpf stays open. `take_lock`: serialise with other loads
 * of this process (false in the helper process, which has no other).
 */
int leap_loader_parse_verify(const void *buf, size_t len, const char *path,
			     const struct leap_obj_opts *opts, bool take_lock,
			     struct leap_obj **out);
/* The rest (loader.c): mmap the maps, resolve and check the instructions, build the engine programs. */
int leap_loader_finish(struct leap_obj *obj, const struct leap_obj_opts *opts);
/*
 * Read a policy object file: a regular file (a FIFO or device would block
 * or never end) of at most LEAP_OBJ_MAX_BYTES. *buf is malloc'ed.
 */
int leap_loader_read_file(const char *path, const struct leap_obj_opts *opts, void **buf,
			  size_t *len);
/* opts->isolate: the ELF is parsed and verified in a child process (loader_isolate.c). */
int leap_loader_load_isolated(const char *path, const struct leap_obj_opts *opts,
			      struct leap_obj **out);

/* .rodata knobs (loader_rodata.c). */
int leap_loader_rodata_apply(struct bpf_object *bpf, const struct leap_obj_opts *opts);

/*
 * Check relocated instructions and rewrite map references into addresses
 * (loader_insns.c). `out` receives a malloc'ed copy the caller frees.
 */
int leap_loader_insns_resolve(struct leap_obj *obj, const char *prog_name,
			      const struct bpf_insn *insns, uint32_t cnt,
			      const struct leap_obj_opts *opts, struct bpf_insn **out);

/*
 * Map types only the kernel serves to a program (LPM trie, per-CPU), allowed
 * when the object may hold XDP programs; a leap/ program may not use them.
 */
bool leap_loader_map_type_kernel_only(enum bpf_map_type type);

#endif /* LEAPIO_LOADER_INTERNAL_H */
