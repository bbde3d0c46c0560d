// SPDX-License-Identifier: BSD-3-Clause
/*
 * Differential fuzzer for the userspace eBPF engine. It generates random
 * programs that the kernel verifier accepts, runs each on our interpreter,
 * our JIT and the kernel itself (BPF_PROG_TEST_RUN of a sleepable syscall
 * program), and compares r0 and every byte the program can write.
 *
 *   bpf_fuzz [--seed S] [--count N] [--first I] [--no-kernel] [--no-jit] [--verbose]
 *            [--inject-fault I]
 *
 * A program (bpf_fuzz_gen.h): r9 = the value of a real mmapable array map
 * (ld_imm64 BPF_PSEUDO_MAP_VALUE for the kernel, rewritten to the mmapped
 * address for our engines), r1 = a 64-byte context, every scalar register
 * and 8 stack slots initialised, then a random body — ALU32/ALU64 including
 * the v4 additions (sdiv, smod, movsx, bswap), ld_imm64, loads (also
 * sign-extending) and stores on context, map and stack, atomics on map and
 * stack, forward JMP/JMP32 conditional jumps, ja and gotol, bpf-to-bpf calls
 * — and an epilogue that stores every register and stack slot into the map,
 * so the map compare sees all 64-bit state although the kernel returns only
 * the low 32 bits of r0.
 *
 * Before each engine runs, the map value and the context are reset to the
 * same initial bytes. Compared: r0 (low 32 bits against the kernel, all 64
 * between interpreter and JIT), the map value and the context after the run.
 * On mismatch it prints the seed, the program index, the program as hex (the
 * kernel's form, leap-bpfrun input) and both results, and exits 1.
 * Program i depends only on (seed, i): `--first i --count 1` replays it.
 * --inject-fault I flips one bit of the interpreter's map state for program
 * I, to show that the comparison catches a wrong engine.
 *
 * Last line: "programs: N, kernel-rejected: K, mismatches: M".
 * Exit: 0 no mismatch, 1 mismatch, 2 usage, 77 kernel or JIT unavailable.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "leapio/bpf.h"
#include "leapio/common.h"

#include "bpf_fuzz_gen.h"

struct result {
	uint64_t r0;
	uint8_t map[VAL_SIZE];
	uint8_t ctx[CTX_SIZE];
};

struct fuzz {
	uint64_t seed;
	bool kernel, jit, verbose;
	int64_t fault_at; /* program index whose interpreter result is corrupted, or -1 */
	int map_fd;
	uint8_t *map_mem; /* the map value, mmapped (or malloc'd with --no-kernel) */
	size_t map_len;
	uint8_t init_map[VAL_SIZE];
	uint8_t init_ctx[CTX_SIZE];
	char *log;
	uint64_t programs, rejected, mismatches;
};

#define LOG_SZ (1u << 20)

static void reset_state(struct fuzz *f, uint8_t *ctx)
{
	memcpy(f->map_mem, f->init_map, VAL_SIZE);
	memcpy(ctx, f->init_ctx, CTX_SIZE);
}

static void save_state(const struct fuzz *f, const uint8_t *ctx, struct result *res)
{
	memcpy(res->map, f->map_mem, VAL_SIZE);
	memcpy(res->ctx, ctx, CTX_SIZE);
}

/* Returns 0 ran, 1 rejected by the verifier, -errno on other failures. */
static int run_kernel(struct fuzz *f, const struct prog *p, uint64_t idx, struct result *res)
{
	struct bpf_insn insns[MAX_INSNS];
	uint8_t ctx[CTX_SIZE];
	int fd, err;

	LIBBPF_OPTS(bpf_prog_load_opts, lopts, .prog_flags = BPF_F_SLEEPABLE);
	LIBBPF_OPTS(bpf_test_run_opts, topts, .ctx_in = ctx, .ctx_size_in = CTX_SIZE);

	memcpy(insns, p->insns, p->cnt * sizeof(insns[0]));
	for (uint32_t i = 0; i < p->map_ref_cnt; i++)
		insns[p->map_refs[i]].imm = f->map_fd;
	fd = bpf_prog_load(BPF_PROG_TYPE_SYSCALL, "leap_fuzz", "GPL", insns, p->cnt, &lopts);
	if (fd < 0) {
		err = -errno;
		if (err == -EPERM)
			return err;
		if (f->verbose) {
			lopts.log_buf = f->log;
			lopts.log_size = LOG_SZ;
			lopts.log_level = 1;
			f->log[0] = '\0';
			bpf_prog_load(BPF_PROG_TYPE_SYSCALL, "leap_fuzz", "GPL", insns, p->cnt,
				      &lopts);
			size_t len = strlen(f->log);
			fprintf(stderr, "program %" PRIu64 ": kernel rejected (%s):\n%s\n", idx,
				strerror(-err), f->log + (len > 600 ? len - 600 : 0));
		}
		return 1;
	}
	reset_state(f, ctx);
	err = bpf_prog_test_run_opts(fd, &topts);
	close(fd);
	if (err) {
		fprintf(stderr, "program %" PRIu64 ": BPF_PROG_TEST_RUN: %s\n", idx,
			strerror(-err));
		return err;
	}
	res->r0 = topts.retval;
	save_state(f, ctx, res);
	return 0;
}

/*
 * Runs our interpreter (and JIT when enabled). Returns 0, 1 when our
 * validator rejected the program (err holds why), -ENOTSUP when the JIT is
 * not available, or another -errno.
 */
static int run_ours(struct fuzz *f, const struct prog *p, struct result *ri, struct result *rj,
		    char *err, size_t err_sz)
{
	struct leap_bpf_prog_opts opts = { .sz = sizeof(opts) };
	struct bpf_insn insns[MAX_INSNS];
	struct leap_bpf_prog *prog;
	uint8_t ctx[CTX_SIZE];
	leap_bpf_jit_fn fn;
	int ret;

	memcpy(insns, p->insns, p->cnt * sizeof(insns[0]));
	for (uint32_t i = 0; i < p->map_ref_cnt; i++) {
		struct bpf_insn *ld = &insns[p->map_refs[i]];
		uint64_t addr = (uint64_t)(uintptr_t)f->map_mem + (uint32_t)ld[1].imm;

		/* What the loader does: a map value reference becomes its address. */
		ld[0].src_reg = 0;
		ld[0].imm = (int32_t)(uint32_t)addr;
		ld[1].imm = (int32_t)(uint32_t)(addr >> 32);
	}
	opts.ctx_size = CTX_SIZE;
	opts.errbuf = err;
	opts.errbuf_sz = err_sz;
	err[0] = '\0';
	ret = leap_bpf_prog_create(insns, p->cnt, &opts, &prog);
	if (ret)
		return ret == -EINVAL ? 1 : ret;

	reset_state(f, ctx);
	ri->r0 = leap_bpf_prog_run_interp(prog, ctx, CTX_SIZE);
	save_state(f, ctx, ri);

	if (f->jit) {
		ret = leap_bpf_prog_jit(prog, err, err_sz);
		if (ret)
			goto out;
		fn = leap_bpf_prog_jit_fn(prog);
		if (!fn) {
			ret = -EFAULT;
			goto out;
		}
		reset_state(f, ctx);
		rj->r0 = fn(ctx, CTX_SIZE);
		save_state(f, ctx, rj);
	}
out:
	leap_bpf_prog_free(prog);
	return ret;
}

static void print_hex(const char *label, const uint8_t *b, size_t n)
{
	fprintf(stderr, "%s", label);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "%02x", b[i]);
	fprintf(stderr, "\n");
}

static void print_prog(const struct prog *p)
{
	fprintf(stderr, "program (kernel form; ld_imm64 src 2 = map value, imm = map fd):\n");
	for (uint32_t i = 0; i < p->cnt; i++) {
		const uint8_t *b = (const uint8_t *)&p->insns[i];

		fprintf(stderr, "  %4u: ", i);
		for (int k = 0; k < 8; k++)
			fprintf(stderr, "%02x", b[k]);
		fprintf(stderr, "\n");
	}
}

/* True when a and b disagree; with `print`, says where. */
static bool differ(const char *an, const struct result *a, const char *bn, const struct result *b,
		   bool r0_low32_only, bool print)
{
	uint64_t mask = r0_low32_only ? 0xffffffffull : ~0ull;
	bool bad = false;

	if (!print)
		return (a->r0 & mask) != (b->r0 & mask) || memcmp(a->map, b->map, VAL_SIZE) ||
		       memcmp(a->ctx, b->ctx, CTX_SIZE);

	if ((a->r0 & mask) != (b->r0 & mask)) {
		fprintf(stderr, "r0: %s %#" PRIx64 ", %s %#" PRIx64 "%s\n", an, a->r0, bn, b->r0,
			r0_low32_only ? " (low 32 bits compared)" : "");
		bad = true;
	}
	for (size_t i = 0; i < VAL_SIZE; i++)
		if (a->map[i] != b->map[i]) {
			size_t s = i & ~(size_t)7;

			fprintf(stderr, "map value differs at byte %zu (%s):\n", i,
				i >= STACKDUMP_OFF ? "stack dump"
				: i >= REGDUMP_OFF ? "register dump"
						   : "data");
			fprintf(stderr, "  %s: ", an);
			print_hex("", a->map + s, 8);
			fprintf(stderr, "  %s: ", bn);
			print_hex("", b->map + s, 8);
			bad = true;
			break;
		}
	if (memcmp(a->ctx, b->ctx, CTX_SIZE)) {
		fprintf(stderr, "context differs:\n");
		print_hex("  ", a->ctx, CTX_SIZE);
		print_hex("  ", b->ctx, CTX_SIZE);
		bad = true;
	}
	return bad;
}

static void report(const struct fuzz *f, uint64_t idx, const struct prog *p, const char *what)
{
	fprintf(stderr, "MISMATCH seed %" PRIu64 " program %" PRIu64 ": %s\n", f->seed, idx, what);
	fprintf(stderr, "replay: bpf_fuzz --seed %" PRIu64 " --first %" PRIu64 " --count 1\n",
		f->seed, idx);
	print_prog(p);
	print_hex("context: ", f->init_ctx, CTX_SIZE);
	print_hex("map value: ", f->init_map, VAL_SIZE);
}

/* Returns 0 on agreement, 1 on mismatch, -errno when an engine is unavailable. */
static int fuzz_one(struct fuzz *f, uint64_t idx)
{
	static struct prog p;
	static struct result rk, ri, rj;
	struct rng r = { .s = f->seed * 0x2545f4914f6cdd1dull + idx };
	char err[512];
	int ret;

	rnd(&r); /* decorrelate neighbouring indexes */
	gen_prog(&r, &p);
	for (size_t i = 0; i < VAL_SIZE; i++)
		f->init_map[i] = (uint8_t)rnd(&r);
	for (size_t i = 0; i < CTX_SIZE; i++)
		f->init_ctx[i] = (uint8_t)rnd(&r);
	f->programs++;

	if (f->kernel) {
		ret = run_kernel(f, &p, idx, &rk);
		if (ret == 1) {
			f->rejected++;
			return 0;
		}
		if (ret)
			return ret;
	}
	ret = run_ours(f, &p, &ri, &rj, err, sizeof(err));
	if (ret == 0 && (int64_t)idx == f->fault_at)
		ri.map[rnd_below(&r, VAL_SIZE)] ^= 0x10;
	if (ret == 1) {
		char what[600];

		snprintf(what, sizeof(what), "our validator rejected it%s: %s",
			 f->kernel ? " (the kernel accepted it)" : "", err);
		report(f, idx, &p, what);
		return 1;
	}
	if (ret == -ENOTSUP && f->jit) {
		fprintf(stderr, "bpf_fuzz: JIT not available (%s); use --no-jit\n",
			err[0] ? err : "-ENOTSUP");
		return ret;
	}
	if (ret) {
		fprintf(stderr, "program %" PRIu64 ": engine error: %s %s\n", idx, strerror(-ret),
			err);
		report(f, idx, &p, "engine error");
		return 1;
	}
	if (f->kernel && differ("kernel", &rk, "interp", &ri, true, false)) {
		report(f, idx, &p, "kernel and interpreter disagree");
		differ("kernel", &rk, "interp", &ri, true, true);
		return 1;
	}
	if (f->jit && differ("interp", &ri, "jit", &rj, false, false)) {
		report(f, idx, &p, "interpreter and JIT disagree");
		differ("interp", &ri, "jit", &rj, false, true);
		return 1;
	}
	return 0;
}

static int setup_map(struct fuzz *f)
{
	long page = sysconf(_SC_PAGESIZE);

	LIBBPF_OPTS(bpf_map_create_opts, mopts, .map_flags = BPF_F_MMAPABLE);

	f->map_len = LEAP_ALIGN_UP((size_t)VAL_SIZE, (size_t)page);
	if (!f->kernel) {
		f->map_mem = aligned_alloc((size_t)page, f->map_len);
		return f->map_mem ? 0 : -ENOMEM;
	}
	/* One entry: the verifier only allows direct value access (ld_imm64 src 2) then. */
	f->map_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "leap_fuzz", 4, VAL_SIZE, 1, &mopts);
	if (f->map_fd < 0)
		return -errno;
	f->map_mem = mmap(NULL, f->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, f->map_fd, 0);
	if (f->map_mem == MAP_FAILED) {
		int err = -errno;

		close(f->map_fd);
		return err;
	}
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno || end == s || *end || s[0] == '-' ? -EINVAL : 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "first", required_argument, NULL, 'f' },
		{ "no-kernel", no_argument, NULL, 'K' },
		{ "no-jit", no_argument, NULL, 'J' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "inject-fault", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	struct fuzz f = { .seed = 1, .kernel = true, .jit = true, .fault_at = -1, .map_fd = -1 };
	uint64_t fault;
	uint64_t count = 1000, first = 0, t0, i;
	double secs;
	int c, ret = 0;

	while ((c = getopt_long(argc, argv, "s:n:f:KJvF:", long_opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_u64(optarg, &f.seed))
				goto usage;
			break;
		case 'n':
			if (parse_u64(optarg, &count))
				goto usage;
			break;
		case 'f':
			if (parse_u64(optarg, &first))
				goto usage;
			break;
		case 'K':
			f.kernel = false;
			break;
		case 'J':
			f.jit = false;
			break;
		case 'v':
			f.verbose = true;
			break;
		case 'F':
			if (parse_u64(optarg, &fault))
				goto usage;
			f.fault_at = (int64_t)fault;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc)
		goto usage;

	f.log = malloc(LOG_SZ);
	if (!f.log)
		return LEAP_EXIT_FAILURE;
	ret = setup_map(&f);
	if (ret) {
		fprintf(stderr, "bpf_fuzz: kernel map: %s%s\n", strerror(-ret),
			ret == -EPERM ? " (need root; or --no-kernel)" : "");
		free(f.log);
		return ret == -EPERM ? LEAP_EXIT_SKIP : LEAP_EXIT_FAILURE;
	}

	t0 = now_ns();
	for (i = first; i < first + count; i++) {
		ret = fuzz_one(&f, i);
		if (ret)
			break;
		if (count >= 200000 && (i - first + 1) % 100000 == 0)
			fprintf(stderr, "... %" PRIu64 " programs, %.0f s\n", i - first + 1,
				(double)(now_ns() - t0) / 1e9);
	}
	secs = (double)(now_ns() - t0) / 1e9;
	if (ret == 1)
		f.mismatches++;
	printf("seed: %" PRIu64 ", engines: interp%s%s, time: %.2f s (%.0f programs/s)\n", f.seed,
	       f.jit ? " jit" : "", f.kernel ? " kernel" : "", secs,
	       secs > 0 ? (double)f.programs / secs : 0.0);
	printf("programs: %" PRIu64 ", kernel-rejected: %" PRIu64 ", mismatches: %" PRIu64 "\n",
	       f.programs, f.rejected, f.mismatches);

	if (f.kernel) {
		munmap(f.map_mem, f.map_len);
		close(f.map_fd);
	} else {
		free(f.map_mem);
	}
	free(f.log);
	if (ret == 1)
		return LEAP_EXIT_FAILURE;
	if (ret == -ENOTSUP || ret == -EPERM)
		return LEAP_EXIT_SKIP;
	return ret ? LEAP_EXIT_FAILURE : LEAP_EXIT_OK;
usage:
	fprintf(stderr, "usage: bpf_fuzz [--seed S] [--count N] [--first I] [--no-kernel]"
			" [--no-jit] [--verbose] [--inject-fault I]\n");
	return LEAP_EXIT_USAGE;
}
