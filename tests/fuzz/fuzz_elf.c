// SPDX-License-Identifier: BSD-3-Clause
/*
 * libFuzzer harness: the policy loader as leapd runs it (leap_obj_opts.
 * isolate): the input is written as a .bpf.o and loaded; the helper process
 * parses and verifies it, this process rebuilds the object from the
 * helper's answer (loader_isolate.c), checks and resolves the instructions
 * and builds the engine programs. A crash of libbpf's parser is the
 * helper's (and an error here); a crash, sanitizer report, leaked
 * descriptor or leftover pin in this process is a finding. Loaded objects
 * are closed and their pins removed, so inputs do not see each other.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sanitizer/common_interface_defs.h>

#include "leapio/loader.h"
#include "leapio/log.h"
#include "leapio/policy.h"

static const struct leap_hook_def hooks[] = {
	{ "leap/submit", sizeof(struct leap_io_ctx) },
	{ "leap/complete", sizeof(struct leap_io_ctx) },
};

/*
 * Descriptors a load could leak: BPF objects, memfds (the helper's answer),
 * sockets (its channel). Not all of them: libFuzzer itself opens pipes to a
 * symbolizer the first time it reports a new function.
 */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char link[64], target[128];
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		ssize_t k;

		if (e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		k = readlink(link, target, sizeof(target) - 1);
		if (k < 0)
			continue;
		target[k] = 0;
		n += !strncmp(target, "anon_inode:bpf", 14) || !strncmp(target, "/memfd:", 7) ||
		     !strncmp(target, "socket:", 7);
	}
	closedir(d);
	return n;
}

/*
 * The helper is a fork of this process, and libbpf 1.1's ELF parser, which
 * it runs, crashes on some corrupt objects (a third-party bug: issue 11,
 * class 7; the reason the helper exists). The child inherits libFuzzer's
 * death callback, which would save each such input as a crash artifact of
 * the harness although this process only gets the helper's error. Children
 * drop it: ASan still reports the helper's fault and the helper still dies,
 * which the loader answers as an error.
 */
static void child_keeps_no_death_callback(void)
{
	__sanitizer_set_death_callback(NULL);
}

static void rm_pins(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64], pins[64], log[8192];
	static int ready, fds, runs;
	struct leap_obj_opts o = { .sz = sizeof(o),
				   .hooks = hooks,
				   .hook_cnt = 2,
				   .pin_dir = pins,
				   .name = "fz",
				   .log_buf = log,
				   .log_sz = sizeof(log),
				   .jit = true,
				   .isolate = true };
	struct leap_obj *obj = NULL;
	FILE *f;

	if (!ready) {
		leap_log_set_level(LEAP_LOG_ERROR);
		pthread_atfork(NULL, NULL, child_keeps_no_death_callback);
		snprintf(path, sizeof(path), "/tmp/leap-fuzz-elf-%d.bpf.o", (int)getpid());
		snprintf(pins, sizeof(pins), "/sys/fs/bpf/leap-fuzz-elf-%d", (int)getpid());
		ready = 1;
	}
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f))
		abort();
	if (leap_obj_load(path, &o, &obj) == 0)
		leap_obj_close(obj);
	rm_pins(pins);
	/* Warm-up runs may open what stays open (libbpf, caches); after that, nothing may leak. */
	if (++runs == 64)
		fds = count_fds();
	else if (runs > 64 && runs % 64 == 0 && count_fds() != fds) {
		fprintf(stderr, "fuzz_elf: %d descriptors, %d after the first runs\n", count_fds(),
			fds);
		if (system("ls -l /proc/$PPID/fd >&2") < 0)
			fprintf(stderr, "(cannot list them)\n");
		abort();
	}
	return 0;
}
