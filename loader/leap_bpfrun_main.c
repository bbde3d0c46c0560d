// SPDX-License-Identifier: BSD-3-Clause
/*
 * leap-bpfrun: run one raw BPF program on our interpreter, our JIT or the
 * real kernel, and print r0. It is the engine's command-line face for tests
 * and a bpf_conformance plugin (program as hex on stdin, memory as a hex
 * argument, r0 as hex on stdout):
 *
 *   leap-bpfrun [--engine interp|jit|kernel] [--repeat N] [MEMORY_HEX] < PROGRAM_HEX
 *
 * Program hex: 16 digits per instruction, its 8 bytes in memory order;
 * whitespace is ignored. At entry r1 = the memory, r2 = its length (the
 * kernel sets only r1: a syscall program's context). The kernel engine loads
 * the program as BPF_PROG_TYPE_SYSCALL (sleepable) and runs it with
 * BPF_PROG_TEST_RUN; it reports only the low 32 bits of r0.
 *
 * Exit: 0 ran; 1 error or rejected by our validator; 2 usage or bad hex;
 * 77 engine unavailable here or the kernel verifier rejected the program.
 *
 * On interp/jit the program is trusted like any raw bytecode: our validator
 * checks its structure, not its pointers (that is the kernel verifier's job
 * for real policies), so a wild load can crash this process.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "leapio/bpf.h"
#include "leapio/common.h"
#include "leapio/loader.h"

enum engine { ENGINE_INTERP, ENGINE_JIT, ENGINE_KERNEL };

struct run_args {
	enum engine engine;
	uint64_t repeat; /* 0: run once, print no timing */
	const struct bpf_insn *insns;
	uint32_t insn_cnt;
	uint8_t *mem;
	size_t mem_len;
	uint64_t r0;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: leap-bpfrun [--engine interp|jit|kernel] [--repeat N] [MEMORY_HEX]"
		   " < PROGRAM_HEX\n"
		   "  Runs the program (16 hex digits per instruction, bytes in memory order)\n"
		   "  with r1 = memory, r2 = its length; prints r0 in hex.\n"
		   "  --repeat N  run N times, print the mean ns per call on stderr\n"
		   "  exit: 0 ran, 1 error/rejected, 2 usage, 77 engine unavailable or\n"
		   "        rejected by the kernel verifier\n");
}

static int hex_val(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * Decode hex digits from `s` (len bytes), skipping whitespace, into a new
 * buffer. Returns the byte count, or -EINVAL with the offending position in
 * *bad_pos (odd digit count: position len).
 */
static long hex_decode(const char *s, size_t len, uint8_t **out, size_t *bad_pos)
{
	uint8_t *buf = malloc(len / 2 + 1);
	size_t n = 0;
	int hi = -1;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int v;

		if (is_space((unsigned char)s[i]))
			continue;
		v = hex_val((unsigned char)s[i]);
		if (v < 0) {
			*bad_pos = i;
			free(buf);
			return -EINVAL;
		}
		if (hi < 0) {
			hi = v;
		} else {
			buf[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	if (hi >= 0) {
		*bad_pos = len;
		free(buf);
		return -EINVAL;
	}
	*out = buf;
	return (long)n;
}

static int read_all(FILE *f, char **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		size_t got;

		if (n == cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	*len = n;
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void print_ns_per_call(uint64_t total_ns, uint64_t calls)
{
	fprintf(stderr, "ns/call: %.1f\n", (double)total_ns / (double)calls);
}

/*
 * The runtime's helper whitelist minus the map helpers: a raw program has no
 * maps (it cannot name one), so a map argument could only be a bad pointer.
 * Such calls are rejected by the validator instead of crashing.
 */
static const struct leap_bpf_helpers *raw_helpers(void)
{
	static struct leap_bpf_helpers h;

	h = *leap_loader_helpers();
	h.fn[BPF_FUNC_map_lookup_elem] = NULL;
	h.fn[BPF_FUNC_map_update_elem] = NULL;
	h.fn[BPF_FUNC_map_delete_elem] = NULL;
	return &h;
}

static int run_ours(struct run_args *a)
{
	struct leap_bpf_prog_opts opts = { .sz = sizeof(opts) };
	struct leap_bpf_prog *prog = NULL;
	char errbuf[512] = "";
	leap_bpf_jit_fn fn = NULL;
	uint64_t t0, r0;
	int err;

	opts.helpers = raw_helpers();
	opts.ctx_size = 0; /* raw programs: the memory length is not a context contract */
	opts.errbuf = errbuf;
	opts.errbuf_sz = sizeof(errbuf);
	err = leap_bpf_prog_create(a->insns, a->insn_cnt, &opts, &prog);
	if (err) {
		fprintf(stderr, "leap-bpfrun: program rejected: %s\n",
			errbuf[0] ? errbuf : strerror(-err));
		return LEAP_EXIT_FAILURE;
	}
	if (a->engine == ENGINE_JIT) {
		errbuf[0] = '\0';
		err = leap_bpf_prog_jit(prog, errbuf, sizeof(errbuf));
		if (err) {
			fprintf(stderr, "leap-bpfrun: jit: %s\n",
				errbuf[0] ? errbuf : strerror(-err));
			leap_bpf_prog_free(prog);
			return err == -ENOTSUP ? LEAP_EXIT_SKIP : LEAP_EXIT_FAILURE;
		}
		fn = leap_bpf_prog_jit_fn(prog);
		if (!fn) {
			fprintf(stderr, "leap-bpfrun: jit: no entry point\n");
			leap_bpf_prog_free(prog);
			return LEAP_EXIT_FAILURE;
		}
	}

	/* The first call's r0 is the answer; later repeats only time the engine. */
	if (fn)
		a->r0 = fn(a->mem, a->mem_len);
	else
		a->r0 = leap_bpf_prog_run_interp(prog, a->mem, a->mem_len);
	if (a->repeat) {
		t0 = now_ns();
		r0 = 0;
		for (uint64_t i = 0; i < a->repeat; i++) {
			if (fn)
				r0 += fn(a->mem, a->mem_len);
			else
				r0 += leap_bpf_prog_run_interp(prog, a->mem, a->mem_len);
		}
		print_ns_per_call(now_ns() - t0, a->repeat);
		/* Keeps the loop from being optimised away. */
		__asm__ volatile("" : : "r"(r0));
	}
	leap_bpf_prog_free(prog);
	return LEAP_EXIT_OK;
}

/* Print the last `max` bytes of the verifier log, starting at a line boundary. */
static void print_log_tail(const char *log, size_t max)
{
	size_t len = strlen(log);
	const char *p = log;

	if (len > max) {
		p = log + len - max;
		while (*p && *p != '\n')
			p++;
		if (*p)
			p++;
	}
	fprintf(stderr, "%s%s", p, len && log[len - 1] != '\n' ? "\n" : "");
}

/*
 * The verifier's reason: the last log line that is not a statistic. It goes
 * on the first stderr line, which test runners show as the skip reason.
 */
static void verifier_reason(const char *log, char *out, size_t out_sz)
{
	const char *p = log, *best = NULL, *best_end = NULL;

	while (*p) {
		const char *end = strchr(p, '\n');

		if (!end)
			end = p + strlen(p);
		if (end > p && strncmp(p, "processed ", 10) != 0 &&
		    strncmp(p, "verification time", 17) != 0 &&
		    strncmp(p, "stack depth", 11) != 0) {
			best = p;
			best_end = end;
		}
		p = *end ? end + 1 : end;
	}
	if (best)
		snprintf(out, out_sz, "%.*s", (int)(best_end - best), best);
	else
		snprintf(out, out_sz, "no verifier log");
}

static int kernel_load(const struct run_args *a, int *fd_out)
{
	const size_t log_sz = 1 << 20;
	char reason[256];
	char *log;
	int fd, err;

	LIBBPF_OPTS(bpf_prog_load_opts, opts, .prog_flags = BPF_F_SLEEPABLE);

	fd = bpf_prog_load(BPF_PROG_TYPE_SYSCALL, "leap_bpfrun", "GPL", a->insns, a->insn_cnt,
			   &opts);
	if (fd >= 0) {
		*fd_out = fd;
		return 0;
	}
	err = -errno;
	if (err == -EPERM) {
		fprintf(stderr, "leap-bpfrun: kernel: BPF_PROG_LOAD not permitted (need root)\n");
		return LEAP_EXIT_SKIP;
	}
	/* Load again with the verifier log on: only failures pay for it. */
	log = calloc(1, log_sz);
	if (!log) {
		fprintf(stderr, "leap-bpfrun: kernel: %s\n", strerror(ENOMEM));
		return LEAP_EXIT_FAILURE;
	}
	opts.log_buf = log;
	opts.log_size = log_sz;
	opts.log_level = 1;
	fd = bpf_prog_load(BPF_PROG_TYPE_SYSCALL, "leap_bpfrun", "GPL", a->insns, a->insn_cnt,
			   &opts);
	if (fd >= 0) {
		/* Loaded on the second try: the first failure was transient. */
		free(log);
		*fd_out = fd;
		return 0;
	}
	err = errno;
	verifier_reason(log, reason, sizeof(reason));
	fprintf(stderr, "leap-bpfrun: kernel verifier rejected the program (%s): %s\n",
		strerror(err), reason);
	print_log_tail(log, 2048);
	free(log);
	return LEAP_EXIT_SKIP;
}

static int run_kernel(struct run_args *a)
{
	int fd, err, ret;
	uint64_t t0;

	LIBBPF_OPTS(bpf_test_run_opts, topts);

	ret = kernel_load(a, &fd);
	if (ret)
		return ret;
	/* A syscall program's context is copied in and back out; none when empty. */
	if (a->mem_len) {
		topts.ctx_in = a->mem;
		topts.ctx_size_in = (uint32_t)a->mem_len;
	}
	ret = LEAP_EXIT_FAILURE;
	err = bpf_prog_test_run_opts(fd, &topts);
	if (err) {
		fprintf(stderr, "leap-bpfrun: kernel: BPF_PROG_TEST_RUN: %s\n", strerror(-err));
		goto out_close;
	}
	a->r0 = topts.retval;
	if (a->repeat) {
		/* Syscall programs refuse test.repeat: one syscall per call is the real cost. */
		t0 = now_ns();
		for (uint64_t i = 0; i < a->repeat; i++) {
			err = bpf_prog_test_run_opts(fd, &topts);
			if (err) {
				fprintf(stderr, "leap-bpfrun: kernel: BPF_PROG_TEST_RUN: %s\n",
					strerror(-err));
				goto out_close;
			}
		}
		print_ns_per_call(now_ns() - t0, a->repeat);
	}
	ret = LEAP_EXIT_OK;
out_close:
	close(fd);
	return ret;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "engine", required_argument, NULL, 'e' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct run_args a = { .engine = ENGINE_INTERP };
	uint8_t *prog_bytes = NULL;
	char *text = NULL;
	size_t text_len, bad;
	long n;
	int c, ret;

	while ((c = getopt_long(argc, argv, "e:r:h", long_opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			if (strcmp(optarg, "interp") == 0) {
				a.engine = ENGINE_INTERP;
			} else if (strcmp(optarg, "jit") == 0) {
				a.engine = ENGINE_JIT;
			} else if (strcmp(optarg, "kernel") == 0) {
				a.engine = ENGINE_KERNEL;
			} else {
				fprintf(stderr, "leap-bpfrun: unknown engine '%s'\n", optarg);
				usage(stderr);
				return LEAP_EXIT_USAGE;
			}
			break;
		case 'r':
			if (parse_u64(optarg, &a.repeat) || a.repeat == 0) {
				fprintf(stderr, "leap-bpfrun: --repeat wants a positive count\n");
				return LEAP_EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return LEAP_EXIT_OK;
		default:
			usage(stderr);
			return LEAP_EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		usage(stderr);
		return LEAP_EXIT_USAGE;
	}
	if (optind < argc) {
		const char *m = argv[optind];

		n = hex_decode(m, strlen(m), &a.mem, &bad);
		if (n < 0) {
			fprintf(stderr, "leap-bpfrun: bad hex in memory argument at offset %zu\n",
				bad);
			return LEAP_EXIT_USAGE;
		}
		a.mem_len = (size_t)n;
	}

	ret = read_all(stdin, &text, &text_len);
	if (ret) {
		fprintf(stderr, "leap-bpfrun: reading stdin: %s\n", strerror(-ret));
		ret = LEAP_EXIT_FAILURE;
		goto out;
	}
	n = hex_decode(text, text_len, &prog_bytes, &bad);
	if (n < 0) {
		fprintf(stderr, "leap-bpfrun: bad hex in program at offset %zu\n", bad);
		ret = LEAP_EXIT_USAGE;
		goto out;
	}
	if (n == 0 || n % 8) {
		fprintf(stderr,
			"leap-bpfrun: program is %ld bytes; want a non-zero multiple of 8"
			" (16 hex digits per instruction)\n",
			n);
		ret = LEAP_EXIT_USAGE;
		goto out;
	}
	if (n / 8 > LEAP_BPF_MAX_INSNS) {
		fprintf(stderr, "leap-bpfrun: program has %ld instructions; the limit is %d\n",
			n / 8, LEAP_BPF_MAX_INSNS);
		ret = LEAP_EXIT_FAILURE;
		goto out;
	}
	a.insns = (const struct bpf_insn *)prog_bytes; /* malloc'd: suitably aligned */
	a.insn_cnt = (uint32_t)(n / 8);

	ret = a.engine == ENGINE_KERNEL ? run_kernel(&a) : run_ours(&a);
	if (ret == LEAP_EXIT_OK)
		printf("%" PRIx64 "\n", a.engine == ENGINE_KERNEL ? (uint32_t)a.r0 : a.r0);
out:
	free(text);
	free(prog_bytes);
	free(a.mem);
	return ret;
}
