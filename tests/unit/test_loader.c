// SPDX-License-Identifier: BSD-3-Clause
/*
 * Loader against the real kernel: objects under tests/bpf/progs are verified
 * by the kernel, their maps are real kernel maps mmapped here, and the
 * programs run in our engine. Every rejection class is checked for its
 * message, and failed loads must not leak descriptors or mappings. Pins go
 * to a per-process bpffs directory removed at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "leapio/loader.h"
#include "leapio/log.h"
#include "tap.h"

/* test_loader_isolated.c includes this file with LOADER_ISOLATE true: every case again, forked. */
#ifndef LOADER_ISOLATE
#define LOADER_ISOLATE false
#endif

static char objdir[512];
static char pindir[256];
static char log_buf[8192];

static const struct leap_hook_def hooks[] = {
	{ "leap/submit", 64 },
	{ "leap/complete", 64 },
};

static const char *obj_path(const char *name)
{
	static char path[640];

	snprintf(path, sizeof(path), "%s/%s.bpf.o", objdir, name);
	return path;
}

static int load(const char *name, const char *pin, const struct leap_rodata_set *sets,
		uint32_t set_cnt, bool jit, struct leap_obj **obj)
{
	struct leap_obj_opts opts = {
		.sz = sizeof(opts),
		.hooks = hooks,
		.hook_cnt = 2,
		.pin_dir = pin,
		.sets = sets,
		.set_cnt = set_cnt,
		.log_buf = log_buf,
		.log_sz = sizeof(log_buf),
		.jit = jit,
		.isolate = LOADER_ISOLATE,
	};

	return leap_obj_load(obj_path(name), &opts, obj);
}

static void require_bpffs(void)
{
	struct stat st;

	if (geteuid() != 0)
		T_SKIP("needs root for BPF_PROG_LOAD");
	if (stat("/sys/fs/bpf", &st) != 0)
		T_SKIP("bpffs is not mounted at /sys/fs/bpf");
}

static void cleanup_pins(void)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pindir);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", pindir);
}

static uint64_t kernel_lookup_u64(int fd, uint32_t key)
{
	uint64_t v = 0xdeadbeef;

	if (bpf_map_lookup_elem(fd, &key, &v))
		return 0xffffffffffffffffull;
	return v;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

static int count_mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0, c;

	if (!f)
		return -1;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/*
 * `bpftool map dump pinned PATH -j` — a tool we did not write reading the
 * map through the kernel — must show the bytes we see through the mmap.
 * Returns the number of elements compared, or -1 after printing why.
 */
static int bpftool_matches_mmap(const char *path, const struct leap_map_info *mi)
{
	char cmd[600], *out = NULL;
	size_t cap = 0, len = 0, i;
	json_t *root, *elem;
	json_error_t jerr;
	FILE *p;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "bpftool map dump pinned '%s' -j 2>&1", path);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	for (;;) {
		if (len + 4096 > cap) {
			cap = cap ? cap * 2 : 65536;
			out = realloc(out, cap);
		}
		size_t got = fread(out + len, 1, cap - len - 1, p);
		if (!got)
			break;
		len += got;
	}
	pclose(p);
	out[len] = 0;
	root = json_loads(out, 0, &jerr);
	if (!json_is_array(root)) {
		printf("# bpftool said: %.300s\n", out);
		free(out);
		return -1;
	}
	free(out);
	json_array_foreach (root, i, elem) {
		json_t *key = json_object_get(elem, "key"), *val = json_object_get(elem, "value");
		uint32_t idx = 0;

		if (json_array_size(key) != 4 || json_array_size(val) != mi->value_size) {
			printf("# element %zu: key/value sizes differ from the map's\n", i);
			json_decref(root);
			return -1;
		}
		for (int b = 3; b >= 0; b--)
			idx = idx << 8 | (uint32_t)strtoul(
					     json_string_value(json_array_get(key, b)), NULL, 16);
		for (size_t b = 0; b < mi->value_size; b++) {
			uint8_t want = ((uint8_t *)mi->data)[idx * mi->stride + b];
			uint8_t got =
			    (uint8_t)strtoul(json_string_value(json_array_get(val, b)), NULL, 16);

			if (got != want) {
				printf("# element %u byte %zu: bpftool 0x%02x, mmap 0x%02x\n", idx,
				       b, got, want);
				json_decref(root);
				return -1;
			}
		}
		n++;
	}
	json_decref(root);
	return n;
}

static void test_counter_maps_mmapped_and_kernel_agree(void)
{
	struct leap_obj *obj = NULL;
	struct leap_map_info mi, bi;
	uint8_t ctx[64] = { 0 };
	int idx;

	require_bpffs();
	cleanup_pins();
	T_ASSERT_EQ(load("counter", pindir, NULL, 0, false, &obj), 0);
	idx = leap_obj_find_prog(obj, "leap/submit");
	T_ASSERT(idx >= 0);
	T_ASSERT(leap_obj_prog_kernel_fd(obj, (uint32_t)idx) >= 0);
	T_ASSERT(leap_obj_find_map(obj, "counters") != NULL);
	leap_map_get_info(leap_obj_find_map(obj, "counters"), &mi);
	T_ASSERT(mi.data != NULL);
	T_ASSERT(!mi.slow_path);
	T_ASSERT_EQ(mi.stride, 8);
	T_ASSERT(mi.pin_path && strstr(mi.pin_path, "counters"));

	*(uint32_t *)ctx = 5;
	for (int i = 0; i < 10; i++)
		T_ASSERT_EQ(
		    leap_bpf_prog_run_interp(leap_obj_prog(obj, (uint32_t)idx), ctx, sizeof(ctx)),
		    10); /* answer 7 + small_knob 3 */
	/* The mmapped bytes and the kernel's view of the same map agree. */
	T_ASSERT_EQ(((uint64_t *)mi.data)[0], 10);
	T_ASSERT_EQ(((uint64_t *)mi.data)[1], 50);
	T_ASSERT_EQ(kernel_lookup_u64(mi.fd, 0), 10);
	T_ASSERT_EQ(kernel_lookup_u64(mi.fd, 1), 50);
	/* .bss is mmapped too: bss_calls is its first variable. */
	T_ASSERT(leap_obj_find_map(obj, ".bss") != NULL);
	leap_map_get_info(leap_obj_find_map(obj, ".bss"), &bi);
	T_ASSERT_EQ(*(uint64_t *)bi.data, 10);
	T_ASSERT_EQ(kernel_lookup_u64(bi.fd, 0), 10);
	T_ASSERT(bi.pin_path && strstr(bi.pin_path, "/bss"));
	/* .rodata is mapped read-only and never pinned: it carries this load's knobs. */
	leap_map_get_info(leap_obj_find_map(obj, ".rodata"), &bi);
	T_ASSERT(bi.read_only && bi.data && !bi.pin_path);
	T_ASSERT_EQ(*(uint64_t *)bi.data, 7);
	leap_obj_close(obj);
}

static void test_bpftool_sees_the_mmapped_bytes(void)
{
	struct leap_obj *obj = NULL;
	struct leap_map_info mi, bi;
	uint8_t ctx[64] = { 0 };

	require_bpffs();
	if (system("bpftool version >/dev/null 2>&1") != 0)
		T_SKIP("bpftool is not installed");
	cleanup_pins();
	T_ASSERT_EQ(load("counter", pindir, NULL, 0, true, &obj), 0);
	*(uint32_t *)ctx = 0x01020304;
	for (int i = 0; i < 3; i++)
		leap_bpf_prog_jit_fn(leap_obj_prog(obj, 0))(ctx, sizeof(ctx));
	leap_map_get_info(leap_obj_find_map(obj, "counters"), &mi);
	leap_map_get_info(leap_obj_find_map(obj, ".bss"), &bi);
	T_ASSERT_EQ(((uint64_t *)mi.data)[1], 3ull * 0x01020304);
	T_ASSERT_EQ(bpftool_matches_mmap(mi.pin_path, &mi), 4);
	T_ASSERT_EQ(bpftool_matches_mmap(bi.pin_path, &bi), 1);
	/* Pins outlive the object: bpftool still reads the same state after close. */
	leap_obj_close(obj);
	T_ASSERT_EQ(load("counter", pindir, NULL, 0, false, &obj), 0);
	leap_map_get_info(leap_obj_find_map(obj, "counters"), &mi);
	T_ASSERT(mi.reused);
	T_ASSERT_EQ(((uint64_t *)mi.data)[0], 3);
	T_ASSERT_EQ(bpftool_matches_mmap(mi.pin_path, &mi), 4);
	leap_obj_close(obj);
}

static void test_jit_matches_interpreter_on_real_maps(void)
{
	struct leap_obj *obj = NULL;
	struct leap_map_info mi;
	uint8_t ctx[64] = { 0 };
	leap_bpf_jit_fn fn;

	require_bpffs();
	cleanup_pins();
	T_ASSERT_EQ(load("counter", pindir, NULL, 0, true, &obj), 0);
	fn = leap_bpf_prog_jit_fn(leap_obj_prog(obj, 0));
	T_ASSERT(fn != NULL);
	T_ASSERT(leap_bpf_prog_jit_size(leap_obj_prog(obj, 0)) > 0);
	leap_map_get_info(leap_obj_find_map(obj, "counters"), &mi);
	*(uint32_t *)ctx = 3;
	for (int i = 0; i < 5; i++)
		T_ASSERT_EQ(fn(ctx, sizeof(ctx)), 10);
	for (int i = 0; i < 5; i++)
		T_ASSERT_EQ(leap_bpf_prog_run_interp(leap_obj_prog(obj, 0), ctx, sizeof(ctx)), 10);
	T_ASSERT_EQ(kernel_lookup_u64(mi.fd, 0), 10);
	T_ASSERT_EQ(kernel_lookup_u64(mi.fd, 1), 30);
	leap_obj_close(obj);
}

static void test_reload_reuses_pinned_state(void)
{
	struct leap_obj *obj = NULL;
	struct leap_map_info mi;
	uint8_t ctx[64] = { 0 };

	require_bpffs();
	cleanup_pins();
	T_ASSERT_EQ(load("counter", pindir, NULL, 0, false, &obj), 0);
	leap_bpf_prog_run_interp(leap_obj_prog(obj, 0), ctx, sizeof(ctx));
	leap_bpf_prog_run_interp(leap_obj_prog(obj, 0), ctx, sizeof(ctx));
	leap_obj_close(obj);

	T_ASSERT_EQ(load("counter", pindir, NULL, 0, false, &obj), 0);
	leap_map_get_info(leap_obj_find_map(obj, "counters"), &mi);
	T_ASSERT(mi.reused);
	T_ASSERT_EQ(((uint64_t *)mi.data)[0], 2);
	leap_bpf_prog_run_interp(leap_obj_prog(obj, 0), ctx, sizeof(ctx));
	T_ASSERT_EQ(((uint64_t *)mi.data)[0], 3);
	leap_obj_close(obj);
}

static void test_incompatible_pinned_map_is_rejected(void)
{
	struct leap_obj *obj = NULL;

	require_bpffs();
	cleanup_pins();
	T_ASSERT_EQ(load("counter", pindir, NULL, 0, false, &obj), 0);
	leap_obj_close(obj);
	obj = NULL;
	T_ASSERT_EQ(load("counter_v2", pindir, NULL, 0, false, &obj), -EEXIST);
	T_ASSERT(obj == NULL);
	printf("# %s\n", log_buf);
	T_ASSERT(strstr(log_buf, "map 'counters'") != NULL);
	T_ASSERT(strstr(log_buf, "value_size 8, this object wants 4") != NULL);
}

static void test_pinned_non_map_is_rejected(void)
{
	struct leap_obj *obj = NULL;
	char path[400];

	require_bpffs();
	cleanup_pins();
	T_ASSERT_EQ(load("counter", NULL, NULL, 0, false, &obj), 0);
	T_ASSERT_EQ(mkdir(pindir, 0700), 0);
	snprintf(path, sizeof(path), "%s/counters", pindir);
	/* A program, not a map, sits where the map would be pinned. */
	T_ASSERT_EQ(bpf_obj_pin(leap_obj_prog_kernel_fd(obj, 0), path), 0);
	leap_obj_close(obj);
	obj = NULL;
	T_ASSERT_EQ(load("counter", pindir, NULL, 0, false, &obj), -EEXIST);
	printf("# %s\n", log_buf);
	T_ASSERT(strstr(log_buf, "counters is pinned but is not a BPF map") != NULL);
	cleanup_pins();
}

static void test_rodata_knob(void)
{
	struct leap_rodata_set sets[] = { { "answer", 40 }, { "small_knob", 2 } };
	struct leap_rodata_set bad[] = { { "nope", 1 } };
	struct leap_rodata_set too_big[] = { { "small_knob", 1ull << 32 } };
	struct leap_obj *obj = NULL;
	uint8_t ctx[64] = { 0 };

	require_bpffs();
	T_ASSERT_EQ(load("counter", NULL, sets, 2, false, &obj), 0);
	T_ASSERT_EQ(leap_bpf_prog_run_interp(leap_obj_prog(obj, 0), ctx, sizeof(ctx)), 42);
	leap_obj_close(obj);
	T_ASSERT_EQ(load("counter", NULL, bad, 1, false, &obj), -ENOENT);
	T_ASSERT(strstr(log_buf, "no such knob") && strstr(log_buf, "answer"));
	T_ASSERT_EQ(load("counter", NULL, too_big, 1, false, &obj), -ERANGE);
}

static void test_hash_map_slow_path(void)
{
	struct leap_obj *obj = NULL;
	struct leap_map_info mi;
	uint8_t ctx[64] = { 9 };
	uint32_t key = 9;
	uint64_t v = 0;

	require_bpffs();
	T_ASSERT_EQ(load("hashmap", NULL, NULL, 0, false, &obj), 0);
	leap_map_get_info(leap_obj_find_map(obj, "seen"), &mi);
	T_ASSERT(mi.slow_path);
	T_ASSERT(mi.data == NULL);
	T_ASSERT_EQ(leap_bpf_prog_run_interp(leap_obj_prog(obj, 0), ctx, sizeof(ctx)), 1);
	T_ASSERT_EQ(leap_bpf_prog_run_interp(leap_obj_prog(obj, 0), ctx, sizeof(ctx)), 2);
	T_ASSERT_EQ(leap_bpf_prog_run_interp(leap_obj_prog(obj, 0), ctx, sizeof(ctx)), 3);
	T_ASSERT_EQ(bpf_map_lookup_elem(mi.fd, &key, &v), 0);
	T_ASSERT_EQ(v, 3);
	leap_obj_close(obj);
}

static void test_reject_not_elf(void)
{
	struct leap_obj *obj = NULL;
	struct leap_obj_opts opts = { .sz = sizeof(opts),
				      .hooks = hooks,
				      .hook_cnt = 2,
				      .log_buf = log_buf,
				      .log_sz = sizeof(log_buf) };
	char path[] = "/tmp/leap-notelf-XXXXXX";
	int fd = mkstemp(path);

	T_ASSERT(fd >= 0);
	T_ASSERT_EQ(write(fd, "hello\n", 6), 6);
	close(fd);
	T_ASSERT_EQ(leap_obj_load(path, &opts, &obj), -EINVAL);
	unlink(path);
	T_ASSERT(obj == NULL);
	T_ASSERT(strstr(log_buf, "not a valid BPF ELF object") != NULL);
	/* An ELF, but not for BPF: libbpf's own error code must not leak out. */
	T_ASSERT_EQ(leap_obj_load("/proc/self/exe", &opts, &obj), -EINVAL);
	printf("# %s\n", log_buf);
	T_ASSERT(strstr(log_buf, "/proc/self/exe: not a valid BPF ELF object") == log_buf);
	T_ASSERT(strstr(log_buf, "Unknown error") == NULL);
	T_ASSERT(leap_obj_load("/nonexistent/x.bpf.o", &opts, &obj) == -ENOENT);
}

static void test_reject_unknown_section(void)
{
	struct leap_obj *obj = NULL;

	require_bpffs();
	T_ASSERT_EQ(load("bad_section", NULL, NULL, 0, false, &obj), -EINVAL);
	T_ASSERT(strstr(log_buf, "program 'elsewhere': unknown section 'syscall'") != NULL);
	T_ASSERT(strstr(log_buf, "leap/submit, leap/complete") != NULL);
}

static void test_reject_verifier(void)
{
	struct leap_obj *obj = NULL;

	require_bpffs();
	T_ASSERT(load("bad_verifier", NULL, NULL, 0, false, &obj) < 0);
	printf("# %s\n", log_buf);
	T_ASSERT(strstr(log_buf, "program 'unchecked': rejected by the kernel verifier") ==
		 log_buf);
	/* The verifier's own words: a NULL-able map value dereferenced. */
	T_ASSERT(strstr(log_buf, "R0 invalid mem access 'map_value_or_null'") != NULL);
	/* Its tail, not the whole log: at most 15 lines after ours. */
	int lines = 0;
	for (const char *c = log_buf; *c; c++)
		lines += *c == '\n';
	T_ASSERT(lines >= 3 && lines <= 15);
}

static void test_reject_verifier_with_overflowing_log(void)
{
	struct leap_obj *obj = NULL;

	require_bpffs();
	/* The kernel said -ENOSPC (log full); the program was rejected all the same. */
	T_ASSERT_EQ(load("bad_verifier_long", NULL, NULL, 0, false, &obj), -EACCES);
	T_ASSERT(strstr(log_buf, "program 'long_walk': rejected by the kernel verifier") ==
		 log_buf);
	T_ASSERT(strstr(log_buf, "R0 invalid mem access 'map_value_or_null'") != NULL);
	T_ASSERT(strstr(log_buf, "processed ") != NULL);
}

static void test_reject_helper(void)
{
	struct leap_obj *obj = NULL;

	require_bpffs();
	T_ASSERT_EQ(load("bad_helper", NULL, NULL, 0, false, &obj), -EINVAL);
	printf("# %s\n", log_buf);
	T_ASSERT(strstr(log_buf, "program 'pid': insn ") == log_buf);
	T_ASSERT(strstr(log_buf, ": helper #14 (get_current_pid_tgid) is not allowed") != NULL);
}

static void test_reject_kfunc(void)
{
	struct leap_obj *obj = NULL;

	require_bpffs();
	/* The kernel accepts bpf_rcu_read_lock() in a sleepable syscall program; we do not. */
	T_ASSERT_EQ(load("bad_kfunc", NULL, NULL, 0, false, &obj), -EINVAL);
	printf("# %s\n", log_buf);
	T_ASSERT_STR_EQ(log_buf, "program 'kf': insn 0: kfunc call not supported");
}

static void test_reject_ksym_btf_id(void)
{
	struct leap_obj *obj = NULL;

	require_bpffs();
	/*
	 * A typed __ksym is ld_imm64 src_reg 3. This kernel has no
	 * CONFIG_KALLSYMS_ALL, so its verifier cannot find a data symbol's
	 * address and refuses first; our own src_reg 3 check is covered with
	 * synthetic instructions in test_loader_insns.c.
	 */
	T_ASSERT(load("bad_ksym", NULL, NULL, 0, false, &obj) < 0);
	printf("# %s\n", log_buf);
	T_ASSERT(strstr(log_buf, "program 'ksym': ") == log_buf);
	T_ASSERT(strstr(log_buf, "kernel symbol 'bpf_prog_active'") != NULL ||
		 strstr(log_buf, "BTF-id loads (kernel variables) are not supported") != NULL);
}

static void test_reject_callback(void)
{
	struct leap_obj *obj = NULL;

	require_bpffs();
	T_ASSERT_EQ(load("bad_callback", NULL, NULL, 0, false, &obj), -EINVAL);
	printf("# %s\n", log_buf);
	T_ASSERT_STR_EQ(log_buf,
			"program 'loop': insn 1: callback function pointers are not supported");
}

static void test_reject_failed_core_relocation(void)
{
	struct leap_obj *obj = NULL;

	require_bpffs();
	T_ASSERT_EQ(load("bad_core", NULL, NULL, 0, false, &obj), -EINVAL);
	printf("# %s\n", log_buf);
	T_ASSERT(strstr(log_buf, "program 'core': insn ") == log_buf);
	T_ASSERT(strstr(log_buf, "a CO-RE relocation failed") != NULL);
}

/*
 * What the kernel says about bpf_spin_lock here, checked with plain libbpf
 * so a kernel that changes its mind makes this fail: it creates the array
 * with BPF_F_MMAPABLE, verifies bpf_spin_lock in a sleepable syscall
 * program, and refuses to mmap the map (ENOTSUPP, 524). The loader then
 * refuses the object with that reason.
 */
static void test_spin_lock_map_is_refused_with_the_kernel_reason(void)
{
	struct bpf_program *prog;
	struct bpf_object *bpf;
	struct bpf_map *map;
	struct leap_obj *obj = NULL;
	void *p;
	int err;

	require_bpffs();
	bpf = bpf_object__open_file(obj_path("bad_spinlock"), NULL);
	T_ASSERT(bpf != NULL);
	bpf_object__for_each_program (prog, bpf) {
		bpf_program__set_type(prog, BPF_PROG_TYPE_SYSCALL);
		bpf_program__set_flags(prog, BPF_F_SLEEPABLE);
	}
	err = bpf_object__load(bpf);
	map = bpf_object__find_map_by_name(bpf, "locked");
	T_ASSERT_EQ(err, 0);
	T_ASSERT(bpf_map__map_flags(map) & BPF_F_MMAPABLE);
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(map), 0);
	err = p == MAP_FAILED ? errno : 0;
	if (p != MAP_FAILED)
		munmap(p, 4096);
	bpf_object__close(bpf);
	T_ASSERT_EQ(err, 524); /* ENOTSUPP */

	T_ASSERT_EQ(load("bad_spinlock", NULL, NULL, 0, false, &obj), -EOPNOTSUPP);
	printf("# %s\n", log_buf);
	T_ASSERT(strstr(log_buf, "map 'locked': its value holds a struct bpf_spin_lock") ==
		 log_buf);
	T_ASSERT(strstr(log_buf, "ENOTSUPP") != NULL);
}

static void test_hook_missing_from_opts_is_unknown_section(void)
{
	static const struct leap_hook_def only_complete[] = { { "leap/complete", 64 } };
	struct leap_obj_opts opts = { .sz = sizeof(opts),
				      .hooks = only_complete,
				      .hook_cnt = 1,
				      .log_buf = log_buf,
				      .log_sz = sizeof(log_buf) };
	struct leap_obj *obj = NULL;

	require_bpffs();
	T_ASSERT_EQ(leap_obj_load(obj_path("counter"), &opts, &obj), -EINVAL);
	T_ASSERT_STR_EQ(log_buf,
			"program 'count': unknown section 'leap/submit' (known: leap/complete)");
}

static void test_opts_size_and_tail(void)
{
	struct {
		struct leap_obj_opts o;
		uint64_t newer_field;
	} big = { .o = { .sz = sizeof(big), .hooks = hooks, .hook_cnt = 2 } };
	struct leap_obj_opts small = { .sz = sizeof(small) - 1, .hooks = hooks, .hook_cnt = 2 };
	struct leap_obj_opts no_hooks = { .sz = sizeof(no_hooks), .hook_cnt = 2 };
	struct leap_obj *obj = NULL;

	require_bpffs();
	T_ASSERT_EQ(leap_obj_load(obj_path("counter"), &small, &obj), -EINVAL);
	T_ASSERT_EQ(leap_obj_load(obj_path("counter"), &no_hooks, &obj), -EINVAL);
	big.newer_field = 1; /* a field this loader does not know: refused */
	T_ASSERT_EQ(leap_obj_load(obj_path("counter"), &big.o, &obj), -EINVAL);
	big.newer_field = 0; /* zero: the caller does not use it, accepted */
	T_ASSERT_EQ(leap_obj_load(obj_path("counter"), &big.o, &obj), 0);
	leap_obj_close(obj);
}

/* Every failure path, including after maps were created and mmapped, releases everything. */
static void test_failed_loads_release_everything(void)
{
	static const char *const objs[] = { "bad_section", "bad_verifier", "bad_helper",
					    "bad_ctx",	   "bad_spinlock", "counter_v2" };
	struct leap_obj *obj = NULL;
	int fds, maps;

	require_bpffs();
	cleanup_pins();
	/* Warm up (libbpf probes kernel features once per process), then count. */
	T_ASSERT_EQ(load("counter", pindir, NULL, 0, true, &obj), 0);
	leap_obj_close(obj);
	fds = count_fds();
	maps = count_mappings();
	T_ASSERT(fds > 0 && maps > 0);
	for (size_t i = 0; i < TAP_N(objs); i++) {
		obj = NULL;
		T_ASSERT(load(objs[i], pindir, NULL, 0, true, &obj) < 0);
		T_ASSERT(obj == NULL);
		if (count_fds() != fds || count_mappings() != maps)
			T_FAIL("%s: %d fds and %d mappings after a failed load, %d and %d before",
			       objs[i], count_fds(), count_mappings(), fds, maps);
	}
	T_ASSERT_EQ(load("counter", pindir, NULL, 0, true, &obj), 0);
	T_ASSERT(count_fds() > fds);
	leap_obj_close(obj);
	T_ASSERT_EQ(count_fds(), fds);
	T_ASSERT_EQ(count_mappings(), maps);
	leap_obj_close(NULL);
}

static bool pinned(const char *name)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/%s", pindir, name);
	return access(path, F_OK) == 0;
}

/*
 * bad_helper is refused by our checks after the kernel created and pinned
 * its maps: those new pins are taken back, so a corrected object with other
 * map shapes is not refused; a reused pinned map (with state) stays.
 */
static void test_rejected_load_takes_back_its_new_pins(void)
{
	struct leap_obj *obj = NULL;

	require_bpffs();
	cleanup_pins();
	T_ASSERT_EQ(load("counter", pindir, NULL, 0, false, &obj), 0);
	leap_obj_close(obj);
	T_ASSERT(pinned("counters") && pinned("bss") && pinned("data"));
	T_ASSERT_EQ(load("bad_helper", pindir, NULL, 0, false, &obj), -EINVAL);
	T_ASSERT(!pinned("last_pid"));
	T_ASSERT(pinned("counters"));
	/* bad_helper's .bss (one u64) reused counter's pinned .bss: it stays. */
	T_ASSERT(pinned("bss"));
	cleanup_pins();
}

static void test_reject_ctx_out_of_bounds(void)
{
	struct leap_obj *obj = NULL;

	require_bpffs();
	T_ASSERT_EQ(load("bad_ctx", NULL, NULL, 0, false, &obj), -EINVAL);
	printf("# %s\n", log_buf);
	T_ASSERT(strstr(log_buf, "offset 128") != NULL);
	T_ASSERT(strstr(log_buf, "64-byte context") != NULL);
}

#if LOADER_ISOLATE
/* objmutate's mutation (tests/tools/objmutate.c): seed -> the same mutant everywhere. */
static void mutate(uint8_t *b, size_t n, uint64_t seed)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
	int k;

#define XS() (s ^= s << 13, s ^= s >> 7, s ^= s << 17, s)
	k = 1 + (int)(XS() % 8);
	for (int i = 0; i < k; i++) {
		size_t at = (size_t)(XS() % n);

		b[at] = (uint8_t)XS();
	}
#undef XS
}

/*
 * Class 7: 300 byte-mutated copies of the stats policy, a few of which crash
 * libbpf's parser, are all answered (loaded or refused) in this process,
 * which stays up; the crashes are reported as such; nothing leaks.
 */
static void test_isolated_mutants_cannot_crash_the_caller(void)
{
	char src[600], dst[600];
	struct leap_obj *obj = NULL;
	uint8_t *orig, *m;
	int crashed = 0, parser_crashes = 0, fds, maps;
	FILE *f;
	long n;

	require_bpffs();
	cleanup_pins();
	snprintf(src, sizeof(src), "%s/../../../policies/stats.bpf.o", objdir);
	snprintf(dst, sizeof(dst), "/tmp/leap-mutant-%d.bpf.o", (int)getpid());
	f = fopen(src, "rb");
	T_ASSERT(f != NULL);
	T_ASSERT(fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0);
	orig = malloc((size_t)n);
	m = malloc((size_t)n);
	T_ASSERT(orig && m && fread(orig, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	T_ASSERT_EQ(load("counter", pindir, NULL, 0, true, &obj), 0);
	leap_obj_close(obj);
	fds = count_fds();
	maps = count_mappings();
	for (uint64_t seed = 0; seed < 300; seed++) {
		struct leap_obj_opts opts = { .sz = sizeof(opts),
					      .hooks = hooks,
					      .hook_cnt = 2,
					      .log_buf = log_buf,
					      .log_sz = sizeof(log_buf),
					      .isolate = true };

		pid_t pid;
		int st;

		memcpy(m, orig, (size_t)n);
		mutate(m, (size_t)n, seed);
		/* Would this mutant crash libbpf's parser in the calling process? */
		pid = fork();
		if (pid == 0) {
			bpf_object__close(bpf_object__open_mem(m, (size_t)n, NULL));
			_exit(0);
		}
		T_ASSERT(pid > 0 && waitpid(pid, &st, 0) == pid);
		parser_crashes += WIFSIGNALED(st);
		f = fopen(dst, "wb");
		T_ASSERT(f && fwrite(m, 1, (size_t)n, f) == (size_t)n && fclose(f) == 0);
		obj = NULL;
		if (leap_obj_load(dst, &opts, &obj) == 0)
			leap_obj_close(obj);
		else if (strstr(log_buf, "crashed the loader's helper process"))
			crashed++;
	}
	unlink(dst);
	free(orig);
	free(m);
	printf("# %d of 300 mutants crash libbpf's parser, %d crashed the helper\n", parser_crashes,
	       crashed);
	T_ASSERT(crashed >= parser_crashes);
	T_ASSERT_EQ(count_fds(), fds);
#ifndef __SANITIZE_ADDRESS__ /* ASan's allocator maps memory as it goes */
	T_ASSERT_EQ(count_mappings(), maps);
#else
	(void)maps;
#endif
}
#endif

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_counter_maps_mmapped_and_kernel_agree),
		TAP_CASE(test_bpftool_sees_the_mmapped_bytes),
		TAP_CASE(test_jit_matches_interpreter_on_real_maps),
		TAP_CASE(test_reload_reuses_pinned_state),
		TAP_CASE(test_incompatible_pinned_map_is_rejected),
		TAP_CASE(test_pinned_non_map_is_rejected),
		TAP_CASE(test_rodata_knob),
		TAP_CASE(test_hash_map_slow_path),
		TAP_CASE(test_reject_not_elf),
		TAP_CASE(test_reject_unknown_section),
		TAP_CASE(test_reject_verifier),
		TAP_CASE(test_reject_verifier_with_overflowing_log),
		TAP_CASE(test_reject_helper),
		TAP_CASE(test_reject_kfunc),
		TAP_CASE(test_reject_ksym_btf_id),
		TAP_CASE(test_reject_callback),
		TAP_CASE(test_reject_failed_core_relocation),
		TAP_CASE(test_spin_lock_map_is_refused_with_the_kernel_reason),
		TAP_CASE(test_reject_ctx_out_of_bounds),
		TAP_CASE(test_hook_missing_from_opts_is_unknown_section),
		TAP_CASE(test_opts_size_and_tail),
		TAP_CASE(test_failed_loads_release_everything),
		TAP_CASE(test_rejected_load_takes_back_its_new_pins),
#if LOADER_ISOLATE
		TAP_CASE(test_isolated_mutants_cannot_crash_the_caller),
#endif
	};
	const char *build = getenv("BUILD");
	int rc;

	snprintf(objdir, sizeof(objdir), "%s/tests/bpf/progs", build ? build : "build");
	snprintf(pindir, sizeof(pindir), "/sys/fs/bpf/leapio-test-%d", (int)getpid());
	leap_log_set_level(LEAP_LOG_WARN);
	rc = tap_run(cases, TAP_N(cases));
	cleanup_pins();
	return rc;
}
