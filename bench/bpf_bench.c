// SPDX-License-Identifier: BSD-3-Clause
/*
 * Engine benchmark: nanoseconds per call, in one process and one run, for
 *  (a) a minimal program (r0 = 0; exit) and
 *  (b) a realistic policy, tests/bpf/progs/bench_policy.bpf.c, loaded through
 *      the loader (kernel-verified): three array-map lookups, a few branches,
 *      a token bucket and counter updates,
 * on our interpreter, our JIT, the kernel (BPF_PROG_TEST_RUN: wall time per
 * call, and the kernel's own run_time_ns/run_cnt accounting from
 * BPF_ENABLE_STATS, because syscall programs refuse test.repeat/duration),
 * and a native C twin of the policy working on the same mmapped map memory
 * (noinline, called through a function pointer, as a hand-written service
 * would be). Before timing, every engine is checked to produce the same
 * verdicts and map contents as native C for the same input sequence.
 *
 *   bpf_bench [--quick] [--rounds R] [--obj PATH] [--profile ENGINE]
 *
 * --profile interp|jit|native skips the timing and makes 100000 policy calls
 * on one engine inside time_calls(), for instruction counts that do not
 * depend on machine noise:
 *   valgrind --tool=callgrind --toggle-collect=time_calls bpf_bench --profile interp
 * (instructions collected / 100000 = instructions per call, loop included).
 *
 * Prints a Markdown table of medians over R rounds, then the ratios against
 * the engine's targets. Exit: 0 measured (targets missed are reported, not
 * fatal), 1 error or engines disagree, 77 kernel BPF not available.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "leapio/bpf.h"
#include "leapio/common.h"
#include "leapio/loader.h"
#include "../tests/bpf/progs/bench_policy.h"

#define NCTX 64 /* inputs cycled through, one per tenant */

typedef uint64_t (*call_fn)(void *ctx, uint64_t len);

struct bench_maps {
	struct bench_cfg *cfg;
	struct bench_bucket *bucket;
	struct bench_stats *stats;
	uint32_t cfg_n, bucket_n, stats_n;
};

/* The native twin reads these, as the JIT has the map addresses baked in. */
static struct bench_maps native_maps;

/*
 * What a hand-written C service would do: direct indexing with bounds
 * checks on the same map memory. Keep in step with bench_policy.bpf.c.
 */
__attribute__((noinline)) static uint64_t native_policy(void *vctx, uint64_t len)
{
	struct bench_ctx *ctx = vctx;
	const struct bench_maps *m = &native_maps;
	uint32_t t = ctx->tenant;
	struct bench_cfg *cfg;
	struct bench_bucket *b;
	struct bench_stats *st;
	uint64_t tokens, cost, now;

	(void)len;
	if (t >= m->cfg_n || t >= m->bucket_n || t >= m->stats_n)
		return BENCH_REJECT;
	cfg = &m->cfg[t];
	b = &m->bucket[t];
	st = &m->stats[t];
	if (!(cfg->flags & BENCH_CFG_ENABLED) ||
	    ((cfg->flags & BENCH_CFG_READ_ONLY) && ctx->opcode == 1) ||
	    ctx->lba + (ctx->len >> 9) > cfg->lba_limit) {
		st->rejected++;
		return BENCH_REJECT;
	}
	now = ctx->now_ns;
	tokens = b->tokens;
	if (now > b->last_ns) {
		tokens += (now - b->last_ns) / 1000000 * cfg->rate_per_ms;
		if (tokens > cfg->burst)
			tokens = cfg->burst;
	}
	b->last_ns = now;
	cost = (uint32_t)(ctx->len + 4095) >> 12;
	if (tokens < cost) {
		b->tokens = tokens;
		st->throttled++;
		return BENCH_THROTTLE;
	}
	b->tokens = tokens - cost;
	ctx->prio = cfg->prio;
	st->ios++;
	st->bytes += ctx->len;
	return BENCH_PASS;
}

__attribute__((noinline)) static uint64_t native_minimal(void *ctx, uint64_t len)
{
	(void)ctx;
	(void)len;
	return 0;
}

/* The interpreter behind the same call shape as the JIT and native code. */
static const struct leap_bpf_prog *interp_prog;

static uint64_t interp_call(void *ctx, uint64_t len)
{
	return leap_bpf_prog_run_interp(interp_prog, ctx, len);
}

static int kernel_fd;

static uint64_t kernel_call(void *ctx, uint64_t len)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = ctx, .ctx_size_in = (uint32_t)len);

	if (bpf_prog_test_run_opts(kernel_fd, &o))
		abort(); /* verified and run before timing: cannot fail here */
	return o.retval;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct bench_ctx ctxs[NCTX];

static void init_inputs(void)
{
	for (uint32_t i = 0; i < NCTX; i++) {
		struct bench_ctx *c = &ctxs[i];

		memset(c, 0, sizeof(*c));
		c->tenant = (i * 7) % BENCH_TENANTS;
		c->opcode = (i % 3) ? 2 : 1;
		c->lba = (uint64_t)i * 4096;
		c->len = 4096u << (i % 4);
	}
	/* Tenant 5 reads only and tenant 9 is disabled: the reject branches run too. */
}

static void init_maps(const struct bench_maps *m)
{
	memset(m->bucket, 0, sizeof(*m->bucket) * m->bucket_n);
	memset(m->stats, 0, sizeof(*m->stats) * m->stats_n);
	for (uint32_t t = 0; t < m->cfg_n; t++) {
		struct bench_cfg *c = &m->cfg[t];

		c->rate_per_ms = 1 + t % 16;
		c->burst = 64 + t;
		c->lba_limit = 1ull << 40;
		c->prio = t % 4;
		c->flags = BENCH_CFG_ENABLED | (t == 5 ? BENCH_CFG_READ_ONLY : 0);
		if (t == 9)
			c->flags = 0;
	}
}

/*
 * `iters` calls cycling through the inputs, with a clock advancing 20 µs per
 * call (so buckets refill and sometimes throttle). Returns ns per call.
 */
__attribute__((noipa)) /* keep `fn` an indirect call: no cloning per callee */
static double
time_calls(call_fn fn, uint64_t iters, bool policy, uint64_t *clock, uint64_t *sum)
{
	uint64_t t0, s = 0, c = *clock;

	t0 = now_ns();
	if (policy) {
		for (uint64_t i = 0; i < iters; i++) {
			struct bench_ctx *x = &ctxs[i % NCTX];

			c += 20000;
			x->now_ns = c;
			s += fn(x, sizeof(*x));
		}
	} else {
		for (uint64_t i = 0; i < iters; i++)
			s += fn(&ctxs[0], sizeof(ctxs[0]));
	}
	*clock = c;
	*sum += s;
	return (double)(now_ns() - t0) / (double)iters;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct measure {
	const char *prog, *engine;
	double median, min, max;
};

#define MAX_ROUNDS 64

static struct measure measures[16];
static unsigned int n_measures;

static double median_of(double *v, unsigned int n, struct measure *m)
{
	qsort(v, n, sizeof(v[0]), cmp_double);
	m->min = v[0];
	m->max = v[n - 1];
	m->median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return m->median;
}

static double measure(const char *prog, const char *engine, call_fn fn, uint64_t iters,
		      unsigned int rounds, bool policy)
{
	struct measure *m = &measures[n_measures++];
	double v[MAX_ROUNDS];
	uint64_t clock = 1000000000ull, sum = 0;

	m->prog = prog;
	m->engine = engine;
	time_calls(fn, iters / 10 + 1, policy, &clock,
		   &sum); /* warm caches and branch predictors */
	for (unsigned int r = 0; r < rounds; r++)
		v[r] = time_calls(fn, iters, policy, &clock, &sum);
	__asm__ volatile("" : : "r"(sum));
	return median_of(v, rounds, m);
}

/* Kernel-side time per run from BPF_ENABLE_STATS (run_time_ns / run_cnt). */
static int kernel_stats(int fd, uint64_t *ns, uint64_t *cnt)
{
	struct bpf_prog_info info;
	uint32_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*ns = info.run_time_ns;
	*cnt = info.run_cnt;
	return 0;
}

static double measure_kernel_stats(const char *prog, int fd, uint64_t iters, unsigned int rounds,
				   bool policy)
{
	struct measure *m = &measures[n_measures++];
	double v[MAX_ROUNDS];
	uint64_t clock = 1000000000ull, sum = 0;

	m->prog = prog;
	m->engine = "kernel (in-kernel run_time_ns)";
	kernel_fd = fd;
	for (unsigned int r = 0; r < rounds; r++) {
		uint64_t ns0 = 0, c0 = 0, ns1 = 0, c1 = 0;

		if (kernel_stats(fd, &ns0, &c0))
			goto err_drop;
		time_calls(kernel_call, iters, policy, &clock, &sum);
		if (kernel_stats(fd, &ns1, &c1) || c1 == c0)
			goto err_drop;
		v[r] = (double)(ns1 - ns0) / (double)(c1 - c0);
	}
	return median_of(v, rounds, m);
err_drop:
	fprintf(stderr, "bpf_bench: no kernel run statistics (run_cnt did not move)\n");
	n_measures--;
	return 0;
}

struct engines {
	call_fn interp, jit, native;
	const struct leap_bpf_prog *prog;
	int kernel_fd;
};

/* Runs `n` policy calls from a fresh state; returns a digest of verdicts and map state. */
static uint64_t policy_digest(call_fn fn, const struct bench_maps *m, uint64_t n)
{
	uint64_t clock = 1000000000ull, sum = 0, h = 1469598103934665603ull;
	const uint8_t *parts[3] = { (const uint8_t *)m->cfg, (const uint8_t *)m->bucket,
				    (const uint8_t *)m->stats };
	const size_t sizes[3] = { sizeof(*m->cfg) * m->cfg_n, sizeof(*m->bucket) * m->bucket_n,
				  sizeof(*m->stats) * m->stats_n };

	init_inputs();
	init_maps(m);
	for (uint64_t i = 0; i < n; i++) {
		struct bench_ctx *x = &ctxs[i % NCTX];

		clock += 20000;
		x->now_ns = clock;
		sum = sum * 31 + fn(x, sizeof(*x)) + x->prio;
	}
	/* FNV-1a over the maps, folded with the verdict sequence. */
	for (int p = 0; p < 3; p++)
		for (size_t i = 0; i < sizes[p]; i++)
			h = (h ^ parts[p][i]) * 1099511628211ull;
	return h ^ sum;
}

static int map_array(struct leap_obj *obj, const char *name, size_t elem, void **data, uint32_t *n)
{
	struct leap_map *map = leap_obj_find_map(obj, name);
	struct leap_map_info info;

	if (!map) {
		fprintf(stderr, "bpf_bench: map %s not found\n", name);
		return -ENOENT;
	}
	leap_map_get_info(map, &info);
	if (!info.data || info.stride != elem) {
		fprintf(stderr, "bpf_bench: map %s: not mmapped or stride %zu != %zu\n", name,
			info.stride, elem);
		return -EINVAL;
	}
	*data = info.data;
	*n = info.max_entries;
	return 0;
}

static int load_policy(const char *path, struct leap_obj **obj, struct engines *e)
{
	static const struct leap_hook_def hooks[] = {
		{ .section = "leap/submit", .ctx_size = sizeof(struct bench_ctx) },
	};
	struct leap_obj_opts opts = { .sz = sizeof(opts) };
	char log[4096] = "";
	int idx, err;

	opts.hooks = hooks;
	opts.hook_cnt = LEAP_ARRAY_SIZE(hooks);
	opts.log_buf = log;
	opts.log_sz = sizeof(log);
	opts.jit = true;
	err = leap_obj_load(path, &opts, obj);
	if (err) {
		fprintf(stderr, "bpf_bench: loading %s: %s\n%s\n", path, strerror(-err), log);
		return err;
	}
	idx = leap_obj_find_prog(*obj, "leap/submit");
	if (idx < 0)
		return idx;
	e->prog = leap_obj_prog(*obj, (uint32_t)idx);
	e->kernel_fd = leap_obj_prog_kernel_fd(*obj, (uint32_t)idx);
	e->jit = leap_bpf_prog_jit_fn(e->prog);
	if (!e->jit) {
		fprintf(stderr, "bpf_bench: the loader did not JIT the policy\n");
		return -ENOTSUP;
	}
	err = map_array(*obj, "bench_cfg", sizeof(struct bench_cfg), (void **)&native_maps.cfg,
			&native_maps.cfg_n);
	err = err
		  ?: map_array(*obj, "bench_bucket", sizeof(struct bench_bucket),
			       (void **)&native_maps.bucket, &native_maps.bucket_n);
	err = err
		  ?: map_array(*obj, "bench_stats", sizeof(struct bench_stats),
			       (void **)&native_maps.stats, &native_maps.stats_n);
	return err;
}

static int load_minimal(struct leap_bpf_prog **prog, int *kfd)
{
	static const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	struct leap_bpf_prog_opts opts = { .sz = sizeof(opts) };
	char err[256] = "";
	int ret;

	LIBBPF_OPTS(bpf_prog_load_opts, lopts, .prog_flags = BPF_F_SLEEPABLE);

	opts.errbuf = err;
	opts.errbuf_sz = sizeof(err);
	ret = leap_bpf_prog_create(insns, LEAP_ARRAY_SIZE(insns), &opts, prog);
	ret = ret ?: leap_bpf_prog_jit(*prog, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "bpf_bench: minimal program: %s %s\n", strerror(-ret), err);
		return ret;
	}
	*kfd = bpf_prog_load(BPF_PROG_TYPE_SYSCALL, "bench_min", "GPL", insns,
			     LEAP_ARRAY_SIZE(insns), &lopts);
	if (*kfd < 0) {
		ret = -errno;
		fprintf(stderr, "bpf_bench: kernel load: %s\n", strerror(-ret));
		return ret;
	}
	return 0;
}

static void default_obj_path(char *buf, size_t sz)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	snprintf(buf, sz, "build/tests/bpf/progs/bench_policy.bpf.o");
	if (n <= 0)
		return;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return;
	*slash = '\0'; /* build/bench */
	snprintf(buf, sz, "%s/../tests/bpf/progs/bench_policy.bpf.o", exe);
}

struct target {
	const char *what;
	double value, limit;
	bool at_least; /* value must be >= limit (else <=) */
	const char *unit;
};

static void print_results(unsigned int rounds, const struct target *t, unsigned int nt)
{
	unsigned int met = 0;

	printf("| program | engine | ns/call (median of %u) | min | max |\n", rounds);
	printf("|---|---|---:|---:|---:|\n");
	for (unsigned int i = 0; i < n_measures; i++)
		printf("| %s | %s | %.1f | %.1f | %.1f |\n", measures[i].prog, measures[i].engine,
		       measures[i].median, measures[i].min, measures[i].max);
	printf("\n| ratio (policy) | measured | target | met |\n|---|---:|---:|---|\n");
	for (unsigned int i = 0; i < nt; i++) {
		bool ok = t[i].at_least ? t[i].value >= t[i].limit : t[i].value <= t[i].limit;

		met += ok;
		printf("| %s | %.1f%s | %s %.1f%s | %s |\n", t[i].what, t[i].value, t[i].unit,
		       t[i].at_least ? "≥" : "≤", t[i].limit, t[i].unit, ok ? "yes" : "**no**");
	}
	printf("\ntargets met: %u/%u\n", met, nt);
}

static void pin_cpu(void)
{
	cpu_set_t set;
	int cpu = sched_getcpu();

	/* Stay on one core: migrations would land in the measurement. */
	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "obj", required_argument, NULL, 'o' },
		{ "profile", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t fast_iters = 1000000, interp_iters = 500000, kernel_iters = 50000;
	unsigned int rounds = 11;
	bool quick = false;
	char obj_path[4200] = "";
	const char *profile = NULL;
	struct leap_bpf_prog *min_prog = NULL;
	struct leap_obj *obj = NULL;
	struct engines pol = { 0 };
	double jit_ns, native_ns, interp_ns, kwall_ns, kstat_ns = 0;
	int min_kfd = -1, stats_fd, c, ret = LEAP_EXIT_FAILURE;
	uint64_t want, got;

	while ((c = getopt_long(argc, argv, "qr:o:p:", long_opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quick = true;
			break;
		case 'r':
			rounds = (unsigned int)strtoul(optarg, NULL, 10);
			if (rounds == 0 || rounds > MAX_ROUNDS)
				goto usage;
			break;
		case 'o':
			snprintf(obj_path, sizeof(obj_path), "%s", optarg);
			break;
		case 'p':
			profile = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (quick) {
		fast_iters /= 10;
		interp_iters /= 10;
		kernel_iters /= 10;
		if (rounds == 11)
			rounds = 5;
	}
	if (!obj_path[0])
		default_obj_path(obj_path, sizeof(obj_path));
	pin_cpu();

	c = load_minimal(&min_prog, &min_kfd);
	if (c) {
		leap_bpf_prog_free(min_prog);
		/* No JIT on this CPU, or no BPF for this user: nothing to compare. */
		return c == -ENOTSUP || c == -EPERM ? LEAP_EXIT_SKIP : LEAP_EXIT_FAILURE;
	}
	if (load_policy(obj_path, &obj, &pol))
		goto out;

	/* Same inputs, same map state, same answers — or the timings mean nothing. */
	want = policy_digest(native_policy, &native_maps, 4096);
	interp_prog = pol.prog;
	kernel_fd = pol.kernel_fd;
	const struct {
		const char *name;
		call_fn fn;
	} check[] = { { "interp", interp_call }, { "jit", pol.jit }, { "kernel", kernel_call } };
	for (unsigned int i = 0; i < LEAP_ARRAY_SIZE(check); i++) {
		got = policy_digest(check[i].fn, &native_maps, 4096);
		if (got != want) {
			fprintf(stderr,
				"bpf_bench: %s disagrees with native C (%#" PRIx64 " vs %#" PRIx64
				")\n",
				check[i].name, got, want);
			goto out;
		}
	}
	init_inputs();
	init_maps(&native_maps);
	if (profile) {
		call_fn fn = !strcmp(profile, "interp")	  ? interp_call
			     : !strcmp(profile, "jit")	  ? pol.jit
			     : !strcmp(profile, "native") ? native_policy
							  : NULL;
		uint64_t clock = 1000000000ull, sum = 0;

		if (!fn)
			goto usage;
		printf("%s: %.1f ns/call (profiling run, 100000 calls)\n", profile,
		       time_calls(fn, 100000, true, &clock, &sum));
		ret = LEAP_EXIT_OK;
		goto out;
	}

	interp_prog = min_prog;
	measure("minimal", "native C", native_minimal, fast_iters, rounds, false);
	measure("minimal", "jit", leap_bpf_prog_jit_fn(min_prog), fast_iters, rounds, false);
	measure("minimal", "interp", interp_call, interp_iters, rounds, false);
	kernel_fd = min_kfd;
	measure("minimal", "kernel (prog_run, wall)", kernel_call, kernel_iters, rounds, false);

	interp_prog = pol.prog;
	native_ns = measure("policy", "native C", native_policy, fast_iters, rounds, true);
	jit_ns = measure("policy", "jit", pol.jit, fast_iters, rounds, true);
	interp_ns = measure("policy", "interp", interp_call, interp_iters, rounds, true);
	kernel_fd = pol.kernel_fd;
	kwall_ns =
	    measure("policy", "kernel (prog_run, wall)", kernel_call, kernel_iters, rounds, true);
	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats_fd >= 0) {
		kstat_ns =
		    measure_kernel_stats("policy", pol.kernel_fd, kernel_iters, rounds, true);
		close(stats_fd);
	} else {
		fprintf(stderr, "bpf_bench: BPF_ENABLE_STATS: %s (kernel-side time not shown)\n",
			strerror(errno));
	}

	const struct target targets[] = {
		{ "kernel prog_run (wall) / JIT", kwall_ns / jit_ns, 60, true, "×" },
		{ "JIT / native C", jit_ns / native_ns, 1.5, false, "×" },
		{ "interp / JIT", interp_ns / jit_ns, 8, false, "×" },
		{ "JIT per call", jit_ns, 20, false, " ns" },
	};
	print_results(rounds, targets, LEAP_ARRAY_SIZE(targets));
	if (kstat_ns > 0)
		printf("kernel-side time per run (run_time_ns/run_cnt) / JIT: %.1f×\n",
		       kstat_ns / jit_ns);
	ret = LEAP_EXIT_OK;
out:
	leap_obj_close(obj);
	leap_bpf_prog_free(min_prog);
	if (min_kfd >= 0)
		close(min_kfd);
	return ret;
usage:
	fprintf(stderr,
		"usage: bpf_bench [--quick] [--rounds R (1..%d)] [--obj PATH] "
		"[--profile interp|jit|native]\n",
		MAX_ROUNDS);
	leap_obj_close(obj);
	leap_bpf_prog_free(min_prog);
	return LEAP_EXIT_USAGE;
}
