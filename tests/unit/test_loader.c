// SPDX-License-Identifier: BSD-3-Clause
/*
 * Loader against the real kernel: objects under tests/bpf/progs are verified
 * by the kernel, their maps are real kernel maps mmapped here, and the
 * programs run in our engine. Every rejection class is checked for its
 * message. Pins go to a per-process bpffs directory removed at the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <bpf/bpf.h>

#include "leapio/loader.h"
#include "leapio/log.h"
#include "tap.h"

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
	T_ASSERT(leap_obj_load(path, &opts, &obj) < 0);
	unlink(path);
	T_ASSERT(obj == NULL);
	T_ASSERT(strstr(log_buf, "not a valid BPF ELF object") != NULL);
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
	T_ASSERT(strstr(log_buf, "kernel rejected") != NULL);
	/* The verifier's own words: a NULL-able map value dereferenced. */
	T_ASSERT(strstr(log_buf, "map_value_or_null") != NULL);
}

static void test_reject_helper(void)
{
	struct leap_obj *obj = NULL;

	require_bpffs();
	T_ASSERT_EQ(load("bad_helper", NULL, NULL, 0, false, &obj), -EINVAL);
	printf("# %s\n", log_buf);
	T_ASSERT(strstr(log_buf, "helper #14 (get_current_pid_tgid) is not allowed") != NULL);
	T_ASSERT(strstr(log_buf, "insn ") != NULL);
}

static void test_reject_kfunc(void)
{
	struct leap_obj *obj = NULL;

	require_bpffs();
	T_ASSERT(load("bad_kfunc", NULL, NULL, 0, false, &obj) < 0);
	printf("# %s\n", log_buf);
	T_ASSERT(strstr(log_buf, "kfunc") != NULL);
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

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_counter_maps_mmapped_and_kernel_agree),
		TAP_CASE(test_jit_matches_interpreter_on_real_maps),
		TAP_CASE(test_reload_reuses_pinned_state),
		TAP_CASE(test_incompatible_pinned_map_is_rejected),
		TAP_CASE(test_rodata_knob),
		TAP_CASE(test_hash_map_slow_path),
		TAP_CASE(test_reject_not_elf),
		TAP_CASE(test_reject_unknown_section),
		TAP_CASE(test_reject_verifier),
		TAP_CASE(test_reject_helper),
		TAP_CASE(test_reject_kfunc),
		TAP_CASE(test_reject_ctx_out_of_bounds),
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
