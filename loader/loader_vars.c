// SPDX-License-Identifier: BSD-3-Clause
/*
 * Global variables by C name: a policy's runtime knobs are its .data/.bss
 * globals, which live in mmapped kernel array maps, so writing one through
 * the mapping changes what the next run sees — no reload, and the same
 * bytes `bpftool map dump` shows. The offset, size and element layout come
 * from the object's BTF (its DATASECs), as for .rodata knobs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "leapio/common.h"
#include "loader_internal.h"

static const char *const sections[] = { ".data", ".bss", ".rodata" };

static struct leap_map *section_map(const struct leap_obj *obj, const char *sec)
{
	for (uint32_t i = 0; i < obj->map_cnt; i++) {
		const char *dot = strrchr(obj->maps[i].name, '.');

		if (dot && strcmp(dot, sec) == 0)
			return &obj->maps[i];
	}
	return NULL;
}

/* Fill *out for variable `vs` of DATASEC `sec` mapped by m. */
static int describe(const struct btf *btf, const struct btf_var_secinfo *vs, const char *sec,
		    struct leap_map *m, struct leap_var_info *out)
{
	const struct btf_type *var = btf__type_by_id(btf, vs->type);
	const struct btf_type *t = btf__type_by_id(btf, btf__resolve_type(btf, var->type));

	if (!m->data || vs->offset + vs->size > m->value_size)
		return -ENOENT;
	out->name = btf__name_by_offset(btf, var->name_off);
	out->section = sec + 1;
	out->addr = m->data + vs->offset;
	out->size = vs->size;
	out->elem_size = vs->size;
	out->nelems = 1;
	out->read_only = m->read_only;
	out->map = m;
	if (t && btf_is_array(t)) {
		const struct btf_array *a = btf_array(t);
		__s64 esz = btf__resolve_size(btf, a->type);

		if (esz > 0 && a->nelems && (uint64_t)esz * a->nelems == vs->size) {
			out->elem_size = (uint32_t)esz;
			out->nelems = a->nelems;
		}
	}
	return 0;
}

int leap_obj_var_find(const struct leap_obj *obj, const char *name, struct leap_var_info *out)
{
	const struct btf *btf = obj ? bpf_object__btf(obj->bpf) : NULL;

	if (!btf || !name)
		return -ENOENT;
	for (size_t s = 0; s < LEAP_ARRAY_SIZE(sections); s++) {
		struct leap_map *m = section_map(obj, sections[s]);
		const struct btf_var_secinfo *vs;
		const struct btf_type *sec;
		int id;

		id = btf__find_by_name_kind(btf, sections[s], BTF_KIND_DATASEC);
		if (!m || id < 0)
			continue;
		sec = btf__type_by_id(btf, (__u32)id);
		vs = btf_var_secinfos(sec);
		for (int i = 0; i < btf_vlen(sec); i++, vs++) {
			const struct btf_type *var = btf__type_by_id(btf, vs->type);

			if (strcmp(btf__name_by_offset(btf, var->name_off), name) == 0)
				return describe(btf, vs, sections[s], m, out);
		}
	}
	return -ENOENT;
}

int leap_obj_var_next(const struct leap_obj *obj, uint32_t idx, struct leap_var_info *out)
{
	const struct btf *btf = obj ? bpf_object__btf(obj->bpf) : NULL;

	if (!btf)
		return -ENOENT;
	for (size_t s = 0; s < LEAP_ARRAY_SIZE(sections); s++) {
		struct leap_map *m = section_map(obj, sections[s]);
		const struct btf_type *sec;
		int id = btf__find_by_name_kind(btf, sections[s], BTF_KIND_DATASEC);

		if (!m || id < 0)
			continue;
		sec = btf__type_by_id(btf, (__u32)id);
		if (idx < (uint32_t)btf_vlen(sec))
			return describe(btf, btf_var_secinfos(sec) + idx, sections[s], m, out);
		idx -= (uint32_t)btf_vlen(sec);
	}
	return -ENOENT;
}
