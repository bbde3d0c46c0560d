// SPDX-License-Identifier: BSD-3-Clause
/*
 * Maps: make array maps mmapable, pin and reuse them, and after the kernel
 * has created them, mmap their values into the process so the engine's
 * array lookups are plain loads (no syscall on the hot path).
 *
 * Reuse: libbpf reuses a pinned map whose type, key/value size, max_entries
 * and flags match, and fails with a generic message otherwise; we compare
 * the pinned map's bpf_map_info ourselves first so a conflict names the
 * field. .rodata is never pinned: it holds this load's knobs.
 *
 * Values holding a struct bpf_spin_lock (or another field the kernel
 * manages: timers, kptrs, lists) are refused before load. The kernel
 * accepts such an array with BPF_F_MMAPABLE and accepts bpf_spin_lock in
 * sleepable syscall programs, but bpf_map_mmap() answers -ENOTSUPP (524)
 * for any map whose value has such a field (measured on 6.18); and a
 * slow-path copy of a value cannot be locked. Policies use atomic
 * instructions (__sync_fetch_and_add) on mmapped values instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "leapio/common.h"
#include "leapio/fsutil.h"
#include "leapio/log.h"
#include "loader_internal.h"

static bool name_has_suffix(const char *name, const char *sfx)
{
	size_t n = strlen(name), s = strlen(sfx);

	return n >= s && strcmp(name + n - s, sfx) == 0;
}

static bool is_rodata(const struct bpf_map *map)
{
	return bpf_map__is_internal(map) && strstr(bpf_map__name(map), ".rodata");
}

/* Pin file name: user maps by name; ".data"/".bss" as "data"/"bss". */
static const char *pin_name(const struct bpf_map *map)
{
	const char *name = bpf_map__name(map), *dot;

	if (!bpf_map__is_internal(map))
		return name;
	dot = strrchr(name, '.');
	return dot ? dot + 1 : name;
}

/* The kernel's ENOTSUPP (524) has no libc name. */
#define LEAP_ENOTSUPP 524

/*
 * Name of the first kernel-managed field (spin lock, timer, kptr, list...)
 * inside BTF type `id`, or NULL. Walks structs, unions, arrays, typedefs,
 * qualifiers and global-data sections; `depth` bounds malformed (cyclic) BTF.
 */
static const char *special_field(const struct btf *btf, __u32 id, int depth)
{
	static const char *const kernel_structs[] = {
		"bpf_spin_lock", "bpf_res_spin_lock", "bpf_timer",
		"bpf_wq",	 "bpf_list_head",     "bpf_list_node",
		"bpf_rb_root",	 "bpf_rb_node",	      "bpf_refcount",
	};
	const struct btf_type *t;
	const char *name;

	while (depth-- > 0) {
		t = btf__type_by_id(btf, id);
		if (!t)
			return NULL;
		switch (btf_kind(t)) {
		case BTF_KIND_TYPEDEF:
		case BTF_KIND_CONST:
		case BTF_KIND_VOLATILE:
		case BTF_KIND_RESTRICT:
		case BTF_KIND_VAR:
			id = t->type;
			continue;
		case BTF_KIND_DATASEC: {
			/* .data/.bss: a global may itself be a lock (6.x allows it). */
			const struct btf_var_secinfo *vs = btf_var_secinfos(t);

			for (int i = 0; i < btf_vlen(t); i++, vs++) {
				const char *f = special_field(btf, vs->type, depth);

				if (f)
					return f;
			}
			return NULL;
		}
		case BTF_KIND_ARRAY:
			id = btf_array(t)->type;
			continue;
		case BTF_KIND_PTR: {
			const struct btf_type *tag = btf__type_by_id(btf, t->type);

			/* __kptr and friends: a pointer to a "kptr*" type tag. */
			if (tag && btf_is_type_tag(tag) &&
			    strncmp(btf__name_by_offset(btf, tag->name_off), "kptr", 4) == 0)
				return "kptr";
			return NULL;
		}
		case BTF_KIND_STRUCT:
		case BTF_KIND_UNION: {
			const struct btf_member *m = btf_members(t);

			name = btf__name_by_offset(btf, t->name_off);
			for (size_t i = 0; name && i < LEAP_ARRAY_SIZE(kernel_structs); i++)
				if (strcmp(name, kernel_structs[i]) == 0)
					return kernel_structs[i];
			for (int i = 0; i < btf_vlen(t); i++, m++) {
				const char *f = special_field(btf, m->type, depth);

				if (f)
					return f;
			}
			return NULL;
		}
		default:
			return NULL;
		}
	}
	return NULL;
}

static int check_value_type(struct bpf_object *bpf, const struct bpf_map *map,
			    const struct leap_obj_opts *opts)
{
	const struct btf *btf = bpf_object__btf(bpf);
	__u32 id = bpf_map__btf_value_type_id(map);
	const char *f;

	if (!btf || !id)
		return 0;
	f = special_field(btf, id, 32);
	if (!f)
		return 0;
	if (bpf_map__type(map) == BPF_MAP_TYPE_ARRAY)
		return leap_loader_fail(opts, -EOPNOTSUPP,
					"map '%s': its value holds a struct %s; the kernel refuses "
					"to mmap such a map (mmap: ENOTSUPP, 524) and leapio runs "
					"array maps in place through mmap; use atomic operations "
					"(__sync_fetch_and_add) instead",
					bpf_map__name(map), f);
	return leap_loader_fail(opts, -EOPNOTSUPP,
				"map '%s': its value holds a struct %s; this map is served "
				"through syscalls (a per-thread copy of the value), where a "
				"lock or kernel object cannot work",
				bpf_map__name(map), f);
}

/* A pinned path may hold a program or a link: only a map can be reused. */
static bool fd_is_map(int fd)
{
	char link[64], target[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return true; /* no /proc: let the kernel's own check answer */
	target[n] = 0;
	return strcmp(target, "anon_inode:bpf-map") == 0;
}

static bool type_is_slow_path(enum bpf_map_type type)
{
	/*
	 * Maps whose syscall lookup/update/delete see the same key and value
	 * layout as the helpers, among those the kernel lets sleepable
	 * programs use (LPM tries are refused: "Sleepable programs can only
	 * use array, hash, ringbuf and local storage maps"). Per-CPU maps do
	 * not qualify (the syscall moves one value per possible CPU), nor do
	 * ring buffers (their helpers are not in the whitelist).
	 */
	return type == BPF_MAP_TYPE_HASH || type == BPF_MAP_TYPE_LRU_HASH;
}

/*
 * Maps only the kernel can serve to a program, allowed when the object may
 * hold kernel (XDP) programs: the engine has no LPM lookup and no per-CPU
 * values. leapd still reaches them through syscalls (prefix lists, counters).
 */
bool leap_loader_map_type_kernel_only(enum bpf_map_type type)
{
	return type == BPF_MAP_TYPE_LPM_TRIE || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

static int check_pinned(const struct bpf_map *map, const char *path,
			const struct leap_obj_opts *opts)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	int fd, err;

	if (access(path, F_OK) != 0)
		return 0; /* nothing pinned: libbpf creates and pins */
	/* 1 below: the pinned map will be reused (its state is kept). */
	fd = bpf_obj_get(path);
	if (fd < 0)
		return leap_loader_fail(opts, -errno, "map '%s': cannot open pinned map at %s: %s",
					bpf_map__name(map), path, strerror(errno));
	if (!fd_is_map(fd)) {
		close(fd);
		return leap_loader_fail(opts, -EEXIST,
					"map '%s': %s is pinned but is not a BPF map",
					bpf_map__name(map), path);
	}
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	if (err)
		return leap_loader_fail(opts, -errno, "map '%s': cannot read the map pinned at %s",
					bpf_map__name(map), path);
#define SHAPE(field, want)                                                                         \
	if (info.field != (want))                                                                  \
		return leap_loader_fail(                                                           \
		    opts, -EEXIST,                                                                 \
		    "map '%s': pinned map at %s has a different shape (" #field                    \
		    " %u, this object wants %u)",                                                  \
		    bpf_map__name(map), path, info.field, (want));
	SHAPE(type, (__u32)bpf_map__type(map));
	SHAPE(key_size, bpf_map__key_size(map));
	SHAPE(value_size, bpf_map__value_size(map));
	SHAPE(max_entries, bpf_map__max_entries(map));
	SHAPE(map_flags, bpf_map__map_flags(map));
#undef SHAPE
	return 1;
}

int leap_loader_maps_prepare(struct leap_obj *obj, const struct leap_obj_opts *opts)
{
	struct bpf_object *bpf = obj->bpf;
	struct bpf_map *map;
	char path[512];
	uint32_t n = 0, idx = 0;
	int err;

	bpf_object__for_each_map (map, bpf)
		n++;
	obj->maps = calloc(n ? n : 1, sizeof(*obj->maps));
	if (!obj->maps)
		return -ENOMEM;
	obj->map_cnt = n;
	for (uint32_t i = 0; i < n; i++)
		obj->maps[i].fd = -1;

	{
		/* What the kernel would allocate: refuse a corrupt or greedy object first. */
		uint64_t bytes = 0;

		bpf_object__for_each_map (map, bpf) {
			uint64_t per =
			    bpf_map__type(map) == BPF_MAP_TYPE_ARRAY
				? LEAP_ALIGN_UP((uint64_t)bpf_map__value_size(map), 8u)
				: (uint64_t)bpf_map__key_size(map) + bpf_map__value_size(map);

			bytes += per * bpf_map__max_entries(map);
		}
		if (n > LEAP_OBJ_MAX_MAPS || bytes > LEAP_OBJ_MAX_MAP_BYTES)
			return leap_loader_fail(opts, -EFBIG,
						"%u maps asking for %llu MiB of keys and values "
						"(at most %u maps, %u MiB)",
						n, (unsigned long long)(bytes >> 20),
						LEAP_OBJ_MAX_MAPS, LEAP_OBJ_MAX_MAP_BYTES >> 20);
	}
	if (opts->pin_dir) {
		err = leap_mkdir_p(opts->pin_dir);
		if (err)
			return leap_loader_fail(opts, err, "cannot create pin directory %s: %s",
						opts->pin_dir, strerror(-err));
	}
	bpf_object__for_each_map (map, bpf) {
		enum bpf_map_type type = bpf_map__type(map);
		struct leap_map *m = &obj->maps[idx++];

		if (type == BPF_MAP_TYPE_ARRAY) {
			bpf_map__set_map_flags(map, bpf_map__map_flags(map) | BPF_F_MMAPABLE);
		} else if (opts->xdp && leap_loader_map_type_kernel_only(type)) {
			m->kernel_only = true;
		} else if (!type_is_slow_path(type)) {
			const char *tname = libbpf_bpf_map_type_str(type);

			return leap_loader_fail(opts, -EOPNOTSUPP,
						"map '%s': type %s is not supported (array, hash, "
						"lru_hash%s)",
						bpf_map__name(map), tname ? tname : "unknown",
						opts->xdp
						    ? "; for XDP programs also lpm_trie, "
						      "percpu_array, percpu_hash, lru_percpu_hash"
						    : "");
		}
		err = check_value_type(bpf, map, opts);
		if (err)
			return err;
		if (!opts->pin_dir || is_rodata(map) ||
		    (bpf_map__is_internal(map) && name_has_suffix(bpf_map__name(map), ".kconfig")))
			continue;
		snprintf(path, sizeof(path), "%s/%s", opts->pin_dir, pin_name(map));
		err = check_pinned(map, path, opts);
		if (err < 0)
			return err;
		m->reused = err == 1;
		err = bpf_map__set_pin_path(map, path);
		if (err)
			return leap_loader_fail(opts, err, "map '%s': cannot pin at %s: %s",
						bpf_map__name(map), path, strerror(-err));
	}
	return 0;
}

void leap_loader_maps_describe(struct leap_obj *obj)
{
	struct bpf_map *map;
	uint32_t idx = 0;

	bpf_object__for_each_map (map, obj->bpf) {
		struct leap_map *m = &obj->maps[idx++];
		const char *pin = bpf_map__pin_path(map);

		if (idx > obj->map_cnt)
			break;
		m->fd = bpf_map__fd(map);
		m->ref_fd = m->fd;
		snprintf(m->name, sizeof(m->name), "%s", bpf_map__name(map));
		if (pin)
			snprintf(m->pin_path, sizeof(m->pin_path), "%s", pin);
		m->read_only = is_rodata(map);
	}
}

/* Shape from the kernel (never from the object), then the mapping. */
static int bind_one(struct leap_map *m, const struct leap_obj_opts *opts)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	long page = sysconf(_SC_PAGESIZE);

	if (bpf_obj_get_info_by_fd(m->fd, &info, &len))
		return leap_loader_fail(opts, -errno, "map '%s': cannot read its info", m->name);
	m->type = info.type;
	m->key_size = info.key_size;
	m->value_size = info.value_size;
	m->max_entries = info.max_entries;
	m->flags = info.map_flags;
	m->stride = (uint32_t)LEAP_ALIGN_UP(info.value_size, 8u);
	if (info.type == BPF_MAP_TYPE_ARRAY && (info.map_flags & BPF_F_MMAPABLE)) {
		void *p;

		m->map_len = LEAP_ALIGN_UP((size_t)m->stride * m->max_entries, (size_t)page);
		p = mmap(NULL, m->map_len, m->read_only ? PROT_READ : PROT_READ | PROT_WRITE,
			 MAP_SHARED, m->fd, 0);
		if (p == MAP_FAILED) {
			int e = errno;

			return leap_loader_fail(opts, -e, "map '%s': mmap failed: %s", m->name,
						e == LEAP_ENOTSUPP ? "ENOTSUPP (524)"
								   : strerror(e));
		}
		m->data = p;
		return 0;
	}
	if (m->value_size > 4096)
		return leap_loader_fail(opts, -E2BIG,
					"map '%s': values of %u bytes are too large for the "
					"syscall path (max 4096)",
					m->name, m->value_size);
	m->slow_path = true;
	if (!m->kernel_only) /* only XDP programs use those: the kernel serves them */
		LEAP_INFO("loader",
			  "map '%s' (type %u) is on the slow path: one syscall per access", m->name,
			  m->type);
	return 0;
}

int leap_loader_maps_bind(struct leap_obj *obj, const struct leap_obj_opts *opts)
{
	uint64_t bytes = 0;
	int err;

	for (uint32_t i = 0; i < obj->map_cnt; i++) {
		err = bind_one(&obj->maps[i], opts);
		if (err)
			return err;
		bytes += obj->maps[i].map_len;
	}
	/* Again from the kernel's own numbers (the object was parsed elsewhere, maybe). */
	if (bytes > LEAP_OBJ_MAX_MAP_BYTES)
		return leap_loader_fail(opts, -EFBIG, "maps take %llu MiB (at most %u MiB)",
					(unsigned long long)(bytes >> 20),
					LEAP_OBJ_MAX_MAP_BYTES >> 20);
	return 0;
}

void leap_loader_maps_unpin_created(struct leap_obj *obj)
{
	for (uint32_t i = 0; i < obj->map_cnt; i++) {
		struct leap_map *m = &obj->maps[i];

		if (!m->pin_path[0] || m->reused)
			continue;
		if (unlink(m->pin_path) < 0 && errno != ENOENT)
			LEAP_WARN("loader", "map '%s': cannot unpin %s: %s", m->name, m->pin_path,
				  strerror(errno));
	}
}

void leap_loader_maps_release(struct leap_obj *obj)
{
	for (uint32_t i = 0; i < obj->map_cnt; i++)
		if (obj->maps[i].data)
			munmap(obj->maps[i].data, obj->maps[i].map_len);
	free(obj->maps);
	obj->maps = NULL;
	obj->map_cnt = 0;
}

struct leap_map *leap_loader_map_by_fd(struct leap_obj *obj, int fd)
{
	for (uint32_t i = 0; i < obj->map_cnt; i++)
		if (obj->maps[i].ref_fd == fd)
			return &obj->maps[i];
	return NULL;
}

uint32_t leap_obj_map_cnt(const struct leap_obj *obj)
{
	return obj->map_cnt;
}

struct leap_map *leap_obj_map(const struct leap_obj *obj, uint32_t idx)
{
	return idx < obj->map_cnt ? &obj->maps[idx] : NULL;
}

struct leap_map *leap_obj_find_map(const struct leap_obj *obj, const char *name)
{
	for (uint32_t i = 0; i < obj->map_cnt; i++) {
		const char *n = obj->maps[i].name, *dot = strrchr(n, '.');

		/* Internal maps answer to ".bss" as well as "<obj>.bss". */
		if (strcmp(n, name) == 0 || (dot && name[0] == '.' && strcmp(dot, name) == 0))
			return &obj->maps[i];
	}
	return NULL;
}

void leap_map_get_info(const struct leap_map *m, struct leap_map_info *info)
{
	info->name = m->name;
	info->type = m->type;
	info->key_size = m->key_size;
	info->value_size = m->value_size;
	info->max_entries = m->max_entries;
	info->flags = m->flags;
	info->fd = m->fd;
	info->data = m->data;
	info->stride = m->stride;
	info->slow_path = m->slow_path;
	info->reused = m->reused;
	info->read_only = m->read_only;
	info->kernel_only = m->kernel_only;
	info->pin_path = m->pin_path[0] ? m->pin_path : NULL;
}
