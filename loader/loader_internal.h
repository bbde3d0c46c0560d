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
	struct leap_bpf_prog *prog; /* NULL: a kernel program (SEC("xdp")) */
	char *vlog;		    /* verifier log buffer, only during bpf_object__load() */
};

struct leap_obj {
	struct bpf_object *bpf;
	struct leap_map *maps;
	uint32_t map_cnt;
	struct leap_obj_prog *progs;
	uint32_t prog_cnt;
};

/* Write a message into the caller's log buffer (when given) and return err. */
int leap_loader_fail(const struct leap_obj_opts *opts, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Maps (loader_maps.c). */
int leap_loader_maps_prepare(struct leap_obj *obj, const struct leap_obj_opts *opts);
int leap_loader_maps_bind(struct leap_obj *obj, const struct leap_obj_opts *opts);
void leap_loader_maps_release(struct leap_obj *obj);
/* Unpin the maps this load pinned anew (not the reused ones). */
void leap_loader_maps_unpin_created(struct leap_obj *obj);
struct leap_map *leap_loader_map_by_fd(struct leap_obj *obj, int fd);

/* .rodata knobs (loader_rodata.c). */
int leap_loader_rodata_apply(struct bpf_object *bpf, const struct leap_obj_opts *opts);

/*
 * Check relocated instructions and rewrite map references into addresses
 * (loader_insns.c). `out` receives a malloc'ed copy the caller frees.
 */
int leap_loader_insns_resolve(struct leap_obj *obj, const char *prog_name,
			      const struct bpf_insn *insns, uint32_t cnt,
			      const struct leap_obj_opts *opts, struct bpf_insn **out);

#endif /* LEAPIO_LOADER_INTERNAL_H */
