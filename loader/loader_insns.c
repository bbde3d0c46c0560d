// SPDX-License-Identifier: BSD-3-Clause
/*
 * Our checks on the instructions the kernel verified, and the rewrite that
 * makes them runnable in this process: every ld_imm64 map reference becomes
 * a plain 64-bit address (src_reg 0), so the engine never sees a file
 * descriptor. What the kernel accepts but this runtime cannot run — kfunc
 * calls, BTF-id loads, callbacks, failed CO-RE relocations — is rejected
 * here with the instruction index. The helper whitelist and the context
 * bounds are enforced by the engine's validation right after.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/bpf.h>

#include "loader_internal.h"

/* libbpf poisons a call whose CO-RE relocation failed with this helper id. */
#define LEAP_CORE_POISON_ID 0xbad2310

int leap_loader_insns_resolve(struct leap_obj *obj, const char *prog_name,
			      const struct bpf_insn *insns, uint32_t cnt,
			      const struct leap_obj_opts *opts, struct bpf_insn **out)
{
	struct bpf_insn *copy;
	int err = 0;

	*out = NULL;
	copy = malloc((size_t)cnt * sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	memcpy(copy, insns, (size_t)cnt * sizeof(*copy));

	for (uint32_t i = 0; i < cnt; i++) {
		struct bpf_insn *in = &copy[i];
		struct leap_map *m;
		uint64_t addr;

		if (in->code == (BPF_JMP | BPF_CALL)) {
			if (in->src_reg == BPF_PSEUDO_KFUNC_CALL) {
				err = leap_loader_fail(opts, -EINVAL,
						       "program '%s': insn %u: kfunc call not "
						       "supported",
						       prog_name, i);
				goto out;
			}
			if (in->src_reg == 0 && in->imm == LEAP_CORE_POISON_ID) {
				err = leap_loader_fail(opts, -EINVAL,
						       "program '%s': insn %u: a CO-RE relocation "
						       "failed (libbpf poisoned this call)",
						       prog_name, i);
				goto out;
			}
			continue;
		}
		if (in->code != (BPF_LD | BPF_IMM | BPF_DW))
			continue;
		if (i + 1 >= cnt) {
			err = leap_loader_fail(opts, -EINVAL,
					       "program '%s': insn %u: truncated ld_imm64",
					       prog_name, i);
			goto out;
		}
		switch (in->src_reg) {
		case 0:
			break;
		case BPF_PSEUDO_MAP_FD:
		case BPF_PSEUDO_MAP_VALUE:
			m = leap_loader_map_by_fd(obj, in->imm);
			if (!m) {
				err =
				    leap_loader_fail(opts, -EINVAL,
						     "program '%s': insn %u: map fd %d is not one "
						     "of this object's maps",
						     prog_name, i, in->imm);
				goto out;
			}
			if (m->kernel_only) {
				err = leap_loader_fail(opts, -EINVAL,
						       "program '%s': insn %u: map '%s' is a type "
						       "only the kernel runs (LPM trie, per-CPU): "
						       "only XDP programs may use it",
						       prog_name, i, m->name);
				goto out;
			}
			if (in->src_reg == BPF_PSEUDO_MAP_FD) {
				addr = (uint64_t)(uintptr_t)m;
			} else {
				uint32_t off = (uint32_t)copy[i + 1].imm;

				if (!m->data) {
					err =
					    leap_loader_fail(opts, -EINVAL,
							     "program '%s': insn %u: direct value "
							     "access to map '%s', which is not "
							     "mmapped",
							     prog_name, i, m->name);
					goto out;
				}
				if (off >= (uint64_t)m->stride * m->max_entries) {
					err = leap_loader_fail(
					    opts, -EINVAL,
					    "program '%s': insn %u: direct value access at offset "
					    "%u is outside map '%s' (%zu bytes)",
					    prog_name, i, off, m->name,
					    (size_t)m->stride * m->max_entries);
					goto out;
				}
				addr = (uint64_t)(uintptr_t)(m->data + off);
			}
			in->src_reg = 0;
			in->imm = (int32_t)(uint32_t)addr;
			copy[i + 1].imm = (int32_t)(uint32_t)(addr >> 32);
			break;
		case BPF_PSEUDO_BTF_ID:
			err = leap_loader_fail(opts, -EINVAL,
					       "program '%s': insn %u: BTF-id loads (kernel "
					       "variables) are not supported",
					       prog_name, i);
			goto out;
		case BPF_PSEUDO_FUNC:
			err = leap_loader_fail(opts, -EINVAL,
					       "program '%s': insn %u: callback function pointers "
					       "are not supported",
					       prog_name, i);
			goto out;
		default:
			err = leap_loader_fail(opts, -EINVAL,
					       "program '%s': insn %u: ld_imm64 with src_reg %u is "
					       "not supported",
					       prog_name, i, in->src_reg);
			goto out;
		}
		i++; /* skip the second half */
	}
out:
	if (err)
		free(copy);
	else
		*out = copy;
	return err;
}
