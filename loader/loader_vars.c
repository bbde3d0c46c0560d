// SPDX-License-Identifier: BSD-3-Clause
/*
 * Global variables by C name: a policy's runtime knobs are its .data/.bss
 * globals, which live in mmapped kernel array maps, so writing one through
 * the mapping changes what the next run sees — no reload, and the same
 * bytes `bpftool map dump` shows. The offset, size and element layout come
 * from the object's BTF (its DATASECs), as for .rodata knobs, collected
 * once at load into a table (where the ELF was parsed: maybe the helper
 * process), so lookups need no BTF.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

int leap_loader_vars_collect(struct leap_obj *obj, const struct leap_obj_opts *opts)
{
	const struct btf *btf = bpf_object__btf(obj->bpf);
	uint32_t n = 0;

	if (!btf)
		return 0;
	for (int pass = 0; pass < 2; pass++) {
		for (uint8_t s = 0; s < LEAP_ARRAY_SIZE(sections); s++) {
			int id = btf__find_by_name_kind(btf, sections[s], BTF_KIND_DATASEC);
			const struct btf_var_secinfo *vs;
			const struct btf_type *sec;

			if (!section_map(obj, sections[s]) || id < 0)
				continue;
			sec = btf__type_by_id(btf, (__u32)id);
			vs = btf_var_secinfos(sec);
			for (int i = 0; i < btf_vlen(sec); i++, vs++) {
				const struct btf_type *var = btf__type_by_id(btf, vs->type);
				const struct btf_type *t;
				struct leap_obj_var *v;

				if (pass == 0) {
					n++;
					continue;
				}
				v = &obj->vars[obj->var_cnt++];
				t = btf__type_by_id(btf, btf__resolve_type(btf, var->type));
				snprintf(v->name, sizeof(v->name), "%s",
					 btf__name_by_offset(btf, var->name_off));
				v->sec = s;
				v->offset = vs->offset;
				v->size = vs->size;
				v->elem_size = vs->size;
				v->nelems = 1;
				if (t && btf_is_array(t)) {
					const struct btf_array *a = btf_array(t);
					__s64 esz = btf__resolve_size(btf, a->type);

					if (esz > 0 && a->nelems &&
					    (uint64_t)esz * a->nelems == vs->size) {
						v->elem_size = (uint32_t)esz;
						v->nelems = a->nelems;
					}
				}
			}
		}
		if (pass == 0) {
			if (n > LEAP_OBJ_MAX_VARS)
				return leap_loader_fail(opts, -EFBIG,
							"%u global variables (at most %u)", n,
							LEAP_OBJ_MAX_VARS);
			obj->vars = calloc(n ? n : 1, sizeof(*obj->vars));
			if (!obj->vars)
				return -ENOMEM;
		}
	}
	return 0;
}

/* Fill *out for variable v, against the mapping of its section; -ENOENT if it does not fit. */
static int describe(const struct leap_obj *obj, const struct leap_obj_var *v,
		    struct leap_var_info *out)
{
	struct leap_map *m;

	if (v->sec >= LEAP_ARRAY_SIZE(sections))
		return -ENOENT;
	m = section_map(obj, sections[v->sec]);
	if (!m || !m->data || v->offset > m->value_size || v->size > m->value_size - v->offset)
		return -ENOENT;
	out->name = v->name;
	out->section = sections[v->sec] + 1;
	out->addr = m->data + v->offset;
	out->size = v->size;
	out->elem_size = v->elem_size;
	out->nelems = v->nelems;
	if (!v->elem_size || (uint64_t)v->elem_size * v->nelems != v->size) {
		out->elem_size = v->size;
		out->nelems = 1;
	}
	out->read_only = m->read_only;
	out->map = m;
	return 0;
}

int leap_obj_var_find(const struct leap_obj *obj, const char *name, struct leap_var_info *out)
{
	if (!obj || !name)
		return -ENOENT;
	for (uint32_t i = 0; i < obj->var_cnt; i++)
		if (strcmp(obj->vars[i].name, name) == 0)
			return describe(obj, &obj->vars[i], out);
	return -ENOENT;
}

int leap_obj_var_next(const struct leap_obj *obj, uint32_t idx, struct leap_var_info *out)
{
	if (!obj || idx >= obj->var_cnt)
		return -ENOENT;
	return describe(obj, &obj->vars[idx], out);
}
