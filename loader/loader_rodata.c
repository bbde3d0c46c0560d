// SPDX-License-Identifier: BSD-3-Clause
/*
 * Load-time knobs: `const volatile` globals land in .rodata, which the
 * kernel freezes after load; opts->sets writes them first. The variable's
 * offset and size come from the object's BTF (the .rodata DATASEC), so a
 * knob is addressed by its C name exactly as the policy author wrote it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "loader_internal.h"

static struct bpf_map *find_rodata(struct bpf_object *bpf)
{
	struct bpf_map *map;

	bpf_object__for_each_map (map, bpf) {
		if (bpf_map__is_internal(map) && strstr(bpf_map__name(map), ".rodata"))
			return map;
	}
	return NULL;
}

static void list_vars(const struct btf *btf, const struct btf_type *sec, char *buf, size_t sz)
{
	const struct btf_var_secinfo *vs = btf_var_secinfos(sec);
	size_t len = 0;

	buf[0] = 0;
	for (int i = 0; i < btf_vlen(sec) && len < sz; i++, vs++) {
		const struct btf_type *var = btf__type_by_id(btf, vs->type);

		len += (size_t)snprintf(buf + len, sz - len, "%s%s", i ? ", " : "",
					btf__name_by_offset(btf, var->name_off));
	}
}

int leap_loader_rodata_apply(struct bpf_object *bpf, const struct leap_obj_opts *opts)
{
	const struct btf_type *sec;
	struct bpf_map *map;
	const struct btf *btf;
	const void *init;
	uint8_t *data;
	size_t size;
	char known[512];
	int id, err;

	if (!opts->set_cnt)
		return 0;
	map = find_rodata(bpf);
	btf = bpf_object__btf(bpf);
	if (!map || !btf)
		return leap_loader_fail(opts, -ENOENT,
					"--set %s: the object has no load-time knobs (.rodata)",
					opts->sets[0].name);
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id < 0)
		return leap_loader_fail(opts, -ENOENT, "--set: no BTF for .rodata");
	sec = btf__type_by_id(btf, (__u32)id);
	init = bpf_map__initial_value(map, &size);
	if (!init)
		return leap_loader_fail(opts, -ENOENT, "--set: .rodata has no initial value");
	data = malloc(size);
	if (!data)
		return -ENOMEM;
	memcpy(data, init, size);

	for (uint32_t s = 0; s < opts->set_cnt; s++) {
		const struct btf_var_secinfo *vs = btf_var_secinfos(sec);
		bool found = false;

		for (int i = 0; i < btf_vlen(sec); i++, vs++) {
			const struct btf_type *var = btf__type_by_id(btf, vs->type);
			uint64_t v = opts->sets[s].value;

			if (strcmp(btf__name_by_offset(btf, var->name_off), opts->sets[s].name))
				continue;
			found = true;
			if ((vs->size != 1 && vs->size != 2 && vs->size != 4 && vs->size != 8) ||
			    vs->offset + vs->size > size) {
				free(data);
				return leap_loader_fail(opts, -EINVAL,
							"--set %s: a %u-byte variable is not an "
							"integer knob",
							opts->sets[s].name, vs->size);
			}
			if (vs->size < 8 && (v >> (vs->size * 8)) != 0) {
				free(data);
				return leap_loader_fail(
				    opts, -ERANGE, "--set %s=%llu: does not fit in %u bytes",
				    opts->sets[s].name, (unsigned long long)v, vs->size);
			}
			/* Little-endian host: the low bytes of v are the variable. */
			memcpy(data + vs->offset, &v, vs->size);
		}
		if (!found) {
			list_vars(btf, sec, known, sizeof(known));
			free(data);
			return leap_loader_fail(opts, -ENOENT, "--set %s: no such knob (known: %s)",
						opts->sets[s].name, known);
		}
	}
	err = bpf_map__set_initial_value(map, data, size);
	free(data);
	if (err)
		return leap_loader_fail(opts, err, "--set: cannot update .rodata: %s",
					strerror(-err));
	return 0;
}
