// SPDX-License-Identifier: BSD-3-Clause
/*
 * The storage services in policies/ (prio, isolation, snapshot, stats),
 * loaded from build/policies/ through the kernel verifier exactly as leapd
 * loads them, and run on hand-built contexts on both the interpreter and
 * the JIT: verdicts, written context fields and map contents. Knobs are set
 * by writing the mmapped .data at the offset BTF gives each variable, the
 * way leapd's `policy set` does. The token bucket is checked for exact
 * defer times and, over 10 simulated seconds at twice the limit, for an
 * admitted rate within 1 % of the limit. Each object also runs once in the
 * kernel (BPF_PROG_TEST_RUN) and must agree with our engine.
 * Every load pins under its own directory in /sys/fs/bpf, removed at exit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "leapio/loader.h"
#include "leapio/log.h"
#include "leapio/policy.h"
#include "../../policies/leap_policies.h"
#include "tap.h"

static char objdir[512];
static char pinroot[256];
static char log_buf[16384];
static int pin_seq;

static const struct leap_hook_def hooks[] = {
	{ LEAP_SEC_SUBMIT, sizeof(struct leap_io_ctx) },
	{ LEAP_SEC_COMPLETE, sizeof(struct leap_io_ctx) },
};

enum mode { MODE_INTERP, MODE_JIT, MODE_KERNEL };
static const char *const mode_name[] = { "interp", "jit", "kernel" };

/* A loaded policy with its submit or complete program picked. */
struct pol {
	const char *name;
	struct leap_obj *obj;
	uint32_t prog;
	enum mode mode;
	uint8_t *data; /* mmapped .data */
	size_t data_sz;
};

static const char *obj_path(const char *name)
{
	static char path[640];

	snprintf(path, sizeof(path), "%s/%s.bpf.o", objdir, name);
	return path;
}

static void require_bpffs(void)
{
	struct stat st;

	if (geteuid() != 0)
		T_SKIP("needs root for BPF_PROG_LOAD");
	if (stat("/sys/fs/bpf", &st) != 0)
		T_SKIP("bpffs is not mounted at /sys/fs/bpf");
	if (stat(obj_path("prio"), &st) != 0)
		T_SKIP("build/policies/*.bpf.o not built (run make)");
}

/* Loads `name` with fresh pins (so fresh state) and picks the program in `section`. */
static int pol_open(struct pol *p, const char *name, const char *section, enum mode mode)
{
	char pin[400];
	struct leap_obj_opts opts = {
		.sz = sizeof(opts),
		.hooks = hooks,
		.hook_cnt = 2,
		.pin_dir = pin,
		.log_buf = log_buf,
		.log_sz = sizeof(log_buf),
		.jit = true,
	};
	struct leap_map_info mi;
	struct leap_map *m;
	int err, idx;

	memset(p, 0, sizeof(*p));
	snprintf(pin, sizeof(pin), "%s/%s-%d", pinroot, name, pin_seq++);
	err = leap_obj_load(obj_path(name), &opts, &p->obj);
	if (err) {
		printf("# load %s: %s\n", name, log_buf);
		return err;
	}
	idx = leap_obj_find_prog(p->obj, section);
	if (idx < 0)
		return idx;
	p->name = name;
	p->prog = (uint32_t)idx;
	p->mode = mode;
	m = leap_obj_find_map(p->obj, ".data");
	if (m) {
		leap_map_get_info(m, &mi);
		p->data = mi.data;
		p->data_sz = mi.value_size;
	}
	return 0;
}

static void pol_close(struct pol *p)
{
	leap_obj_close(p->obj);
	p->obj = NULL;
}

static uint32_t pol_run(struct pol *p, struct leap_io_ctx *ctx)
{
	struct leap_bpf_prog *prog = leap_obj_prog(p->obj, p->prog);

	switch (p->mode) {
	case MODE_INTERP:
		return (uint32_t)leap_bpf_prog_run_interp(prog, ctx, sizeof(*ctx));
	case MODE_JIT:
		return (uint32_t)leap_bpf_prog_jit_fn(prog)(ctx, sizeof(*ctx));
	case MODE_KERNEL: {
		LIBBPF_OPTS(bpf_test_run_opts, topts, .ctx_in = ctx, .ctx_size_in = sizeof(*ctx));

		if (bpf_prog_test_run_opts(leap_obj_prog_kernel_fd(p->obj, p->prog), &topts))
			return 0xdead;
		return topts.retval;
	}
	}
	return 0xdead;
}

/* Address of .data variable `var` in the mmapped .data, found through the object's BTF. */
static void *pol_var(struct pol *p, const char *var)
{
	struct bpf_object *o = bpf_object__open_file(obj_path(p->name), NULL);
	const struct btf_var_secinfo *vs;
	const struct btf_type *sec;
	struct btf *btf;
	void *addr = NULL;
	int id;

	if (!o)
		return NULL;
	btf = bpf_object__btf(o);
	id = btf__find_by_name_kind(btf, ".data", BTF_KIND_DATASEC);
	if (id > 0) {
		sec = btf__type_by_id(btf, (uint32_t)id);
		vs = btf_var_secinfos(sec);
		for (uint16_t i = 0; i < btf_vlen(sec); i++, vs++) {
			const struct btf_type *v = btf__type_by_id(btf, vs->type);

			if (strcmp(btf__name_by_offset(btf, v->name_off), var) == 0 &&
			    vs->offset + vs->size <= p->data_sz)
				addr = p->data + vs->offset;
		}
	}
	bpf_object__close(o);
	return addr;
}

static void set_u64(struct pol *p, const char *var, uint32_t idx, uint64_t v)
{
	uint64_t *a = pol_var(p, var);

	if (!a)
		T_FAIL("no .data variable %s in %s", var, p->name);
	a[idx] = v;
}

static void set_u32(struct pol *p, const char *var, uint32_t v)
{
	uint32_t *a = pol_var(p, var);

	if (!a)
		T_FAIL("no .data variable %s in %s", var, p->name);
	*a = v;
}

/* Element `idx` of array map `name`. */
static void *map_elem(struct pol *p, const char *name, uint32_t idx)
{
	struct leap_map *m = leap_obj_find_map(p->obj, name);
	struct leap_map_info mi;

	if (!m)
		return NULL;
	leap_map_get_info(m, &mi);
	if (!mi.data || idx >= mi.max_entries)
		return NULL;
	return (uint8_t *)mi.data + (size_t)idx * mi.stride;
}

static void mk_ctx(struct leap_io_ctx *c, uint32_t hook, uint32_t opc, uint32_t ctrl, uint32_t nsid,
		   uint64_t slba, uint32_t nlb, uint64_t now)
{
	memset(c, 0, sizeof(*c));
	c->size = sizeof(*c);
	c->version = LEAP_POLICY_ABI_VERSION;
	c->hook = hook;
	c->opcode = opc;
	c->ctrl_id = ctrl;
	c->nsid = nsid;
	c->qid = 1;
	c->nlb = nlb;
	c->slba = slba;
	c->lba_shift = 9;
	c->bytes = (uint64_t)nlb << 9;
	c->now_ns = now;
	c->submit_ns = now;
	c->ns_bdev = 1;
	c->ns_nlb = 1ull << 32;
	c->prio = LEAP_PRIO_MEDIUM;
	c->target_lba = slba; /* the namespace starts at block 0 of its backend */
}

#define FOR_EACH_ENGINE(m) for (enum mode m = MODE_INTERP; m <= MODE_JIT; m++)

/* ---- all ------------------------------------------------------------------ */

static void test_policies_load_with_expected_maps(void)
{
	static const struct {
		const char *name, *section, *maps[2];
		uint32_t value_size[2], entries[2];
	} want[] = {
		{ "prio",
		  LEAP_SEC_SUBMIT,
		  { "prio_counts", NULL },
		  { sizeof(struct leap_prio_count) },
		  { LEAP_PRIO_CNT } },
		{ "isolation",
		  LEAP_SEC_SUBMIT,
		  { "iso_bucket", "iso_counts" },
		  { sizeof(struct leap_iso_bucket), sizeof(struct leap_iso_count) },
		  { LEAP_TENANTS, LEAP_TENANTS } },
		{ "snapshot",
		  LEAP_SEC_SUBMIT,
		  { "snap_bitmap", "snap_counts" },
		  { 8, sizeof(struct leap_snap_count) },
		  { LEAP_SNAP_WORDS, 1 } },
		{ "stats",
		  LEAP_SEC_COMPLETE,
		  { "stats_io", "stats_lat" },
		  { sizeof(struct leap_stats_io), sizeof(struct leap_stats_lat) },
		  { LEAP_TENANTS, LEAP_TENANTS } },
	};
	struct leap_map_info mi;
	struct pol p;

	require_bpffs();
	for (size_t i = 0; i < TAP_N(want); i++) {
		T_ASSERT_EQ(pol_open(&p, want[i].name, want[i].section, MODE_JIT), 0);
		/* snapshot also marks at completion (issue 11, class 9). */
		T_ASSERT_EQ(leap_obj_prog_cnt(p.obj), strcmp(want[i].name, "snapshot") ? 1 : 2);
		T_ASSERT(leap_bpf_prog_jit_fn(leap_obj_prog(p.obj, p.prog)) != NULL);
		/* Live knobs must be in .data: nothing may land in .bss. */
		T_ASSERT(leap_obj_find_map(p.obj, ".bss") == NULL);
		for (int k = 0; k < 2 && want[i].maps[k]; k++) {
			struct leap_map *m = leap_obj_find_map(p.obj, want[i].maps[k]);

			T_ASSERT(m != NULL);
			leap_map_get_info(m, &mi);
			T_ASSERT_EQ(mi.type, BPF_MAP_TYPE_ARRAY);
			T_ASSERT(mi.data && !mi.slow_path && mi.pin_path);
			T_ASSERT_EQ(mi.value_size, want[i].value_size[k]);
			T_ASSERT_EQ(mi.max_entries, want[i].entries[k]);
		}
		pol_close(&p);
	}
}

/* ---- prio ----------------------------------------------------------------- */

static void set_u32_at(struct pol *p, const char *var, uint32_t idx, uint32_t v)
{
	uint32_t *a = pol_var(p, var);

	if (!a)
		T_FAIL("no .data variable %s in %s", var, p->name);
	a[idx] = v;
}

/* Rule i = {ctrl, qid, opcode, min, max, class}, enabled or not, field by field like leapctl. */
static void set_rule(struct pol *p, uint32_t i, uint32_t enabled, uint32_t ctrl, uint32_t qid,
		     uint32_t opc, uint64_t min, uint64_t max, uint32_t cls)
{
	set_u32_at(p, "rule_ctrl", i, ctrl);
	set_u32_at(p, "rule_qid", i, qid);
	set_u32_at(p, "rule_opcode", i, opc);
	set_u64(p, "rule_min_bytes", i, min);
	set_u64(p, "rule_max_bytes", i, max);
	set_u32_at(p, "rule_prio", i, cls);
	set_u32_at(p, "rule_enabled", i, enabled);
}

static void test_prio_first_matching_rule_wins(void)
{
	struct leap_io_ctx c;
	struct leap_prio_count *pc;
	struct pol p;

	require_bpffs();
	FOR_EACH_ENGINE(m)
	{
		printf("# %s\n", mode_name[m]);
		T_ASSERT_EQ(pol_open(&p, "prio", LEAP_SEC_SUBMIT, m), 0);
		/* Untouched rules match anything but are disabled. */
		T_ASSERT_EQ(((uint32_t *)pol_var(&p, "rule_opcode"))[15], LEAP_ANY);
		T_ASSERT_EQ(((uint32_t *)pol_var(&p, "rule_enabled"))[15], 0);

		/* No rules: the default class. */
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_READ, 3, 1, 0, 8, 1);
		c.prio = LEAP_PRIO_URGENT;
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		T_ASSERT_EQ(c.prio, LEAP_PRIO_MEDIUM);
		set_u32(&p, "prio_default", LEAP_PRIO_LOW);
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		T_ASSERT_EQ(c.prio, LEAP_PRIO_LOW);

		/* Rule 0 would match but is disabled. */
		set_rule(&p, 0, 0, LEAP_ANY, LEAP_ANY, LEAP_ANY, 0, 0, LEAP_PRIO_HIGH);
		/* Rule 1: small reads of any tenant are urgent. */
		set_rule(&p, 1, 1, LEAP_ANY, LEAP_ANY, LEAP_OPC_READ, 0, 4096, LEAP_PRIO_URGENT);
		/* Rule 2: everything of tenant 3 on queue 1 is high. */
		set_rule(&p, 2, 1, 3, 1, LEAP_ANY, 0, 0, LEAP_PRIO_HIGH);
		/* Rule 3: big I/O of anyone: an invalid class, read as low. */
		set_rule(&p, 3, 1, LEAP_ANY, LEAP_ANY, LEAP_ANY, 1 << 20, 0, 9);

		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS); /* read 4096 B: rule 1 before rule 2 */
		T_ASSERT_EQ(c.prio, LEAP_PRIO_URGENT);
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_READ, 3, 1, 0, 9, 1); /* 4608 B */
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		T_ASSERT_EQ(c.prio, LEAP_PRIO_HIGH);
		c.qid = 2; /* rule 2 wants queue 1 */
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		T_ASSERT_EQ(c.prio, LEAP_PRIO_LOW);				/* the default */
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_WRITE, 5, 1, 0, 2048, 1); /* 1 MiB */
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		T_ASSERT_EQ(c.prio, LEAP_PRIO_LOW); /* rule 3, class 9 clamped */
		set_u32_at(&p, "rule_prio", 3, LEAP_PRIO_HIGH);
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		T_ASSERT_EQ(c.prio, LEAP_PRIO_HIGH); /* a live change, next I/O */
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_FLUSH, 7, 1, 0, 0, 1);
		set_u32_at(&p, "rule_enabled", 0, 1); /* now rule 0 catches everything */
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		T_ASSERT_EQ(c.prio, LEAP_PRIO_HIGH);

		/* 7 runs: medium 1, low 3, urgent 1, high 3 - 1 (the flush) ... */
		pc = map_elem(&p, "prio_counts", LEAP_PRIO_URGENT);
		T_ASSERT_EQ(pc->ios, 1);
		T_ASSERT_EQ(pc->bytes, 4096);
		pc = map_elem(&p, "prio_counts", LEAP_PRIO_HIGH);
		T_ASSERT_EQ(pc->ios, 3);
		T_ASSERT_EQ(pc->bytes, 4608 + (1 << 20));
		pc = map_elem(&p, "prio_counts", LEAP_PRIO_MEDIUM);
		T_ASSERT_EQ(pc->ios, 1);
		pc = map_elem(&p, "prio_counts", LEAP_PRIO_LOW);
		T_ASSERT_EQ(pc->ios, 3);
		T_ASSERT_EQ(pc->bytes, 4096 + 4608 + (1 << 20));
		pol_close(&p);
	}
}

/* ---- isolation ------------------------------------------------------------ */

#define SEC_NS 1000000000ull

static void test_iso_defer_is_exact_and_does_not_consume(void)
{
	struct leap_iso_bucket *b;
	struct leap_iso_count *cnt;
	struct leap_io_ctx c;
	uint64_t t0 = 5 * SEC_NS, d;
	struct pol p;

	require_bpffs();
	FOR_EACH_ENGINE(m)
	{
		printf("# %s\n", mode_name[m]);
		T_ASSERT_EQ(pol_open(&p, "isolation", LEAP_SEC_SUBMIT, m), 0);
		/* 3000 IOPS, burst 1 ms: the bucket holds 3 I/Os. */
		set_u64(&p, "iops_limit", 4, 3000);
		set_u64(&p, "iso_burst_ms", 0, 1);
		b = map_elem(&p, "iso_bucket", 4);
		cnt = map_elem(&p, "iso_counts", 4);
		for (int i = 0; i < 3; i++) {
			mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_READ, 4, 1, 0, 8, t0);
			T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		}
		T_ASSERT_EQ(b->io_tokens, 0);
		T_ASSERT_EQ(b->last_ns, t0);
		/* Short: 1/3000 s = 333333.33 ns, rounded up. */
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_DEFER);
		T_ASSERT_EQ(c.defer_ns, 333334);
		T_ASSERT_EQ(b->io_tokens, 0);
		/* One ns early: still short by exactly 1 ns; the tokens so far are kept. */
		c.now_ns = t0 + 333333;
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_DEFER);
		T_ASSERT_EQ(c.defer_ns, 1);
		T_ASSERT_EQ(b->io_tokens, 333333ull * 3000);
		c.now_ns = t0 + 333334;
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		T_ASSERT_EQ(b->io_tokens, 333334ull * 3000 - SEC_NS);
		T_ASSERT_EQ(cnt->passed, 4);
		T_ASSERT_EQ(cnt->deferred, 2);
		/* A SPLIT remainder is not charged again. */
		c.part = 1;
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		T_ASSERT_EQ(b->io_tokens, 333334ull * 3000 - SEC_NS);

		/* Bytes: 1 MB/s on tenant 5; 4 KiB costs 4.096 ms. Refill caps at the burst. */
		set_u64(&p, "bps_limit", 5, 1000000);
		set_u64(&p, "iso_burst_ms", 0, 10); /* 10000 bytes */
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_WRITE, 5, 1, 0, 8, t0);
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		b = map_elem(&p, "iso_bucket", 5);
		T_ASSERT_EQ(b->byte_tokens, (10000ull - 8192) * SEC_NS);
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_DEFER);
		T_ASSERT_EQ(c.defer_ns, (4096 - 1808) * 1000ull); /* 1 us per byte */
		/*
		 * A command larger than the burst still goes, at the rate: the bucket
		 * may fill up to its cost. 20 ms later: 1808 + 20000 of 65536 bytes.
		 */
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_WRITE, 5, 1, 0, 128, t0 + 20000000);
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_DEFER);
		T_ASSERT_EQ(c.defer_ns, (65536 - 21808) * 1000ull);
		c.now_ns += c.defer_ns;
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		T_ASSERT_EQ(b->byte_tokens, 0);
		/* Both limits: the longer wait wins. 10 IOPS: 100 ms after the last I/O. */
		set_u64(&p, "iops_limit", 5, 10);
		d = c.now_ns;
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_WRITE, 5, 1, 0, 1, d + 1000);
		/*
		 * The iops bucket starts empty (the byte limit was in force): 1 us
		 * of 10 IOPS is far short; the byte bucket waits 511 us; 100 ms wins.
		 */
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_DEFER);
		T_ASSERT_EQ(c.defer_ns, (SEC_NS - 1000 * 10) / 10);
		pol_close(&p);
	}
}

/*
 * Open-loop arrivals at twice the limit into an unbounded queue, served in
 * order: the head runs the policy at max(its arrival, server time); a DEFER
 * moves server time by defer_ns, and the retry then must pass (defer_ns is
 * exact). Returns the commands admitted in [0, 10 s).
 */
static uint64_t simulate(struct pol *p, uint32_t tenant, uint32_t nlb, double ios_per_s,
			 uint64_t t0, uint64_t *bad_retries)
{
	const uint64_t horizon = 10 * SEC_NS;
	double gap = 1e9 / ios_per_s;
	uint64_t admitted = 0, k = 0, now = t0;
	struct leap_io_ctx c;

	*bad_retries = 0;
	for (;;) {
		uint64_t arrival = t0 + (uint64_t)(gap * (double)k);

		if (arrival > now)
			now = arrival;
		if (now >= t0 + horizon)
			break;
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_READ, tenant, 1, k * 8, nlb, now);
		if (pol_run(p, &c) == LEAP_DEFER) {
			now += c.defer_ns;
			if (now >= t0 + horizon)
				break;
			mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_READ, tenant, 1, k * 8, nlb, now);
			if (pol_run(p, &c) != LEAP_PASS)
				(*bad_retries)++;
		}
		admitted++;
		k++;
	}
	return admitted;
}

static void test_iso_rate_within_1pct_over_10s(void)
{
	static const struct {
		uint64_t iops, bps;
		uint32_t nlb;
	} cases[] = {
		{ 1000, 0, 8 },
		{ 100000, 0, 8 },
		{ 0, 10ull << 20, 8 },	    /* 10 MiB/s of 4 KiB: 2560 IOPS */
		{ 0, 500ull << 20, 256 },   /* 500 MiB/s of 128 KiB: 4000 IOPS */
		{ 50000, 100ull << 20, 8 }, /* both; bytes bind (25600 IOPS) */
	};
	struct pol p;

	require_bpffs();
	FOR_EACH_ENGINE(m)
	{
		T_ASSERT_EQ(pol_open(&p, "isolation", LEAP_SEC_SUBMIT, m), 0);
		for (uint32_t i = 0; i < TAP_N(cases); i++) {
			double ios = cases[i].iops ? (double)cases[i].iops : 1e18, want;
			uint64_t got, bad;

			if (cases[i].bps && (double)cases[i].bps / (cases[i].nlb << 9) < ios)
				ios = (double)cases[i].bps / (cases[i].nlb << 9);
			want = ios * 10;
			set_u64(&p, "iops_limit", i, cases[i].iops);
			set_u64(&p, "bps_limit", i, cases[i].bps);
			got = simulate(&p, i, cases[i].nlb, 2 * ios, 1000 * SEC_NS, &bad);
			printf("# %s: iops %llu bps %llu: admitted %llu in 10 s, want %.0f (%+.3f "
			       "%%)\n",
			       mode_name[m], (unsigned long long)cases[i].iops,
			       (unsigned long long)cases[i].bps, (unsigned long long)got, want,
			       ((double)got - want) * 100 / want);
			T_ASSERT_EQ(bad, 0);
			T_ASSERT((double)got >= want * 0.99 && (double)got <= want * 1.01);
		}
		/* A limit change applies from the next command, no reload. */
		set_u64(&p, "iops_limit", 0, 2000);
		{
			uint64_t bad, got = simulate(&p, 0, 8, 4000, 2000 * SEC_NS, &bad);

			T_ASSERT_EQ(bad, 0);
			T_ASSERT(got >= 19800 && got <= 20200);
		}
		pol_close(&p);
	}
}

static void test_iso_area_remap_and_out_of_range(void)
{
	struct leap_iso_count *cnt;
	struct leap_io_ctx c, before;
	struct pol p;

	require_bpffs();
	FOR_EACH_ENGINE(m)
	{
		printf("# %s\n", mode_name[m]);
		T_ASSERT_EQ(pol_open(&p, "isolation", LEAP_SEC_SUBMIT, m), 0);
		set_u64(&p, "area_base", 2, 1000);
		set_u64(&p, "area_nlb", 2, 100);
		cnt = map_elem(&p, "iso_counts", 2);

		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_READ, 2, 1, 10, 8, 1);
		c.target_bdev = 9;
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_REDIRECT);
		T_ASSERT_EQ(c.target_bdev, 0);
		T_ASSERT_EQ(c.target_lba, 1010);
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_WRITE, 2, 1, 92, 8, 1); /* last 8 blocks */
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_REDIRECT);
		T_ASSERT_EQ(c.target_lba, 1092);
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_WRITE_ZEROES, 2, 1, 93, 8, 1);
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_COMPLETE);
		T_ASSERT_EQ(c.status, LEAP_ST_LBA_OUT_OF_RANGE);
		T_ASSERT_EQ(c.target_lba, 93); /* untouched */
		/* slba + nlb wraps around 2^64: still out of range. */
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_READ, 2, 1, ~0ull - 3, 8, 1);
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_COMPLETE);
		T_ASSERT_EQ(c.status, LEAP_ST_LBA_OUT_OF_RANGE);
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_DSM, 2, 1, 0, 0, 1);
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_COMPLETE);
		T_ASSERT_EQ(c.status, LEAP_ST_INVALID_FIELD);
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_FLUSH, 2, 1, 0, 0, 1);
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		T_ASSERT_EQ(cnt->passed, 6);
		T_ASSERT_EQ(cnt->out_of_range, 2);
		T_ASSERT_EQ(cnt->invalid, 1);

		/* No area: DSM and everything else pass. */
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_DSM, 3, 1, 0, 0, 1);
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_READ, 3, 1, 1ull << 40, 8, 1);
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		T_ASSERT_EQ(c.target_lba, 1ull << 40);

		/* A tenant beyond LEAP_TENANTS passes untouched, even with limits set. */
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_READ, LEAP_TENANTS, 1, 1ull << 40, 8, 1);
		before = c;
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		T_ASSERT_MEM_EQ(&c, &before, sizeof(c));

		/* The rate check comes first: a short bucket defers before the range check. */
		set_u64(&p, "iops_limit", 2, 1000);
		set_u64(&p, "iso_burst_ms", 0, 1);
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_READ, 2, 1, 99, 8, 10 * SEC_NS);
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_COMPLETE); /* the one token in the burst */
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_DEFER);
		T_ASSERT_EQ(c.defer_ns, 1000000);
		T_ASSERT_EQ(cnt->out_of_range, 3);
		pol_close(&p);
	}
}

/* ---- snapshot ------------------------------------------------------------- */

enum { OVERLAY = 7, LIVE_NS = 1, SNAP_NS = 2 };

static void snap_setup(struct pol *p)
{
	set_u32(p, "overlay_bdev", OVERLAY);
	set_u32(p, "live_nsid", LIVE_NS);
	set_u32(p, "snap_nsid", SNAP_NS);
	set_u32(p, "active", 1);
}

static uint64_t snap_word(struct pol *p, uint32_t w)
{
	return *(uint64_t *)map_elem(p, "snap_bitmap", w);
}

/* The complete hook of the command in *c (as submitted), with `status`. */
static uint32_t snap_complete(struct pol *p, const struct leap_io_ctx *c, uint16_t status)
{
	struct leap_io_ctx cc = *c;
	uint32_t saved = p->prog, v;
	int idx = leap_obj_find_prog(p->obj, LEAP_SEC_COMPLETE);

	if (idx < 0)
		return 0xdead;
	cc.hook = LEAP_HOOK_COMPLETE;
	cc.status = status;
	p->prog = (uint32_t)idx;
	v = pol_run(p, &cc);
	p->prog = saved;
	return v;
}

/* Submit, and for a redirected write also its successful completion, as leapd would. */
static uint32_t snap_io(struct pol *p, struct leap_io_ctx *c, uint32_t opc, uint32_t nsid,
			uint64_t slba, uint32_t nlb)
{
	uint32_t v;

	mk_ctx(c, LEAP_HOOK_SUBMIT, opc, 0, nsid, slba, nlb, 1);
	v = pol_run(p, c);
	if (v == LEAP_REDIRECT && (opc == LEAP_OPC_WRITE || opc == LEAP_OPC_WRITE_ZEROES) &&
	    snap_complete(p, c, 0) != LEAP_PASS)
		return 0xdead;
	return v;
}

/*
 * Class 9: a write's blocks read from the overlay only once the overlay
 * write has completed; until then (or if it failed, or the snapshot was
 * rolled back meanwhile) they read from the base.
 */
static void test_snapshot_marks_at_completion_not_submission(void)
{
	struct leap_io_ctx w, r;
	struct pol p;

	require_bpffs();
	FOR_EACH_ENGINE(m)
	{
		printf("# %s\n", mode_name[m]);
		T_ASSERT_EQ(pol_open(&p, "snapshot", LEAP_SEC_SUBMIT, m), 0);
		snap_setup(&p);
		mk_ctx(&w, LEAP_HOOK_SUBMIT, LEAP_OPC_WRITE, 0, LIVE_NS, 64, 8, 1);
		T_ASSERT_EQ(pol_run(&p, &w), LEAP_REDIRECT);
		T_ASSERT_U64_EQ(w.cookie[1], LEAP_SNAP_COOKIE);
		/* In flight: no bit yet, a racing read goes to the base. */
		T_ASSERT_U64_EQ(snap_word(&p, 1), 0);
		mk_ctx(&r, LEAP_HOOK_SUBMIT, LEAP_OPC_READ, 0, LIVE_NS, 64, 8, 1);
		T_ASSERT_EQ(pol_run(&p, &r), LEAP_PASS);
		/* A failed overlay write marks nothing. */
		T_ASSERT_EQ(snap_complete(&p, &w, LEAP_ST_INTERNAL_ERROR), LEAP_PASS);
		T_ASSERT_U64_EQ(snap_word(&p, 1), 0);
		/* A completed one does: now reads go to the overlay. */
		T_ASSERT_EQ(snap_complete(&p, &w, 0), LEAP_PASS);
		T_ASSERT_U64_EQ(snap_word(&p, 1), 0xff);
		T_ASSERT_EQ(pol_run(&p, &r), LEAP_REDIRECT);
		/* Completions of commands the submit hook did not redirect mark nothing. */
		mk_ctx(&w, LEAP_HOOK_SUBMIT, LEAP_OPC_WRITE, 0, LIVE_NS, 256, 8, 1);
		T_ASSERT_EQ(snap_complete(&p, &w, 0), LEAP_PASS);
		T_ASSERT_U64_EQ(snap_word(&p, 4), 0);
		/* Rolled back while in flight: the late completion must not mark again. */
		T_ASSERT_EQ(pol_run(&p, &w), LEAP_REDIRECT);
		set_u32(&p, "active", 0);
		T_ASSERT_EQ(snap_complete(&p, &w, 0), LEAP_PASS);
		T_ASSERT_U64_EQ(snap_word(&p, 4), 0);
		pol_close(&p);
	}
}

static void test_snapshot_write_redirect_sets_bits(void)
{
	struct leap_snap_count *sc;
	struct leap_io_ctx c;
	struct pol p;

	require_bpffs();
	FOR_EACH_ENGINE(m)
	{
		printf("# %s\n", mode_name[m]);
		T_ASSERT_EQ(pol_open(&p, "snapshot", LEAP_SEC_SUBMIT, m), 0);
		/* Inactive: everything passes, nothing is marked. */
		set_u32(&p, "live_nsid", LIVE_NS);
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_WRITE, LIVE_NS, 60, 10), LEAP_PASS);
		T_ASSERT_EQ(c.target_bdev, 0);
		T_ASSERT_EQ(snap_word(&p, 0), 0);
		snap_setup(&p);

		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_WRITE, LIVE_NS, 60, 10), LEAP_REDIRECT);
		T_ASSERT_EQ(c.target_bdev, OVERLAY);
		T_ASSERT_EQ(c.target_lba, 60);
		T_ASSERT_U64_EQ(snap_word(&p, 0), 0xf000000000000000ull);
		T_ASSERT_U64_EQ(snap_word(&p, 1), 0x3f);
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_WRITE_ZEROES, LIVE_NS, 128, 64 * 3 + 1),
			    LEAP_REDIRECT);
		T_ASSERT_U64_EQ(snap_word(&p, 2), ~0ull);
		T_ASSERT_U64_EQ(snap_word(&p, 4), ~0ull);
		T_ASSERT_U64_EQ(snap_word(&p, 5), 1);
		T_ASSERT_U64_EQ(snap_word(&p, 6), 0);
		/* Other namespaces are not this policy's. */
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_WRITE, 3, 500, 1), LEAP_PASS);
		T_ASSERT_U64_EQ(snap_word(&p, 7), 0);
		/* Past the bitmap: Internal Error, no bit anywhere. */
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_WRITE, LIVE_NS, LEAP_SNAP_BLOCKS - 4, 8),
			    LEAP_COMPLETE);
		T_ASSERT_EQ(c.status, LEAP_ST_INTERNAL_ERROR);
		T_ASSERT_U64_EQ(snap_word(&p, LEAP_SNAP_WORDS - 1), 0);
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_WRITE, LIVE_NS, LEAP_SNAP_BLOCKS - 4, 4),
			    LEAP_REDIRECT);
		T_ASSERT_U64_EQ(snap_word(&p, LEAP_SNAP_WORDS - 1), 0xf000000000000000ull);
		/* The largest command: 65536 blocks from an odd start. */
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_WRITE, LIVE_NS, 100001, 65536), LEAP_REDIRECT);
		T_ASSERT_U64_EQ(snap_word(&p, 100001 / 64), ~0ull << (100001 % 64));
		T_ASSERT_U64_EQ(snap_word(&p, 100001 / 64 + 512), ~0ull);
		T_ASSERT_U64_EQ(snap_word(&p, (100001 + 65536) / 64),
				(1ull << ((100001 + 65536) % 64)) - 1);
		/* Deallocate: completed, no effect; Flush passes. */
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_DSM, LIVE_NS, 0, 0), LEAP_COMPLETE);
		T_ASSERT_EQ(c.status, 0);
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_FLUSH, LIVE_NS, 0, 0), LEAP_PASS);
		/* The snapshot namespace is write-protected, readable. */
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_WRITE, SNAP_NS, 60, 1), LEAP_COMPLETE);
		T_ASSERT_EQ(c.status, LEAP_ST_NAMESPACE_WRITE_PROTECTED);
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_WRITE_ZEROES, SNAP_NS, 60, 1), LEAP_COMPLETE);
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_DSM, SNAP_NS, 0, 0), LEAP_COMPLETE);
		T_ASSERT_EQ(c.status, LEAP_ST_NAMESPACE_WRITE_PROTECTED);
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_READ, SNAP_NS, 60, 10), LEAP_PASS);
		T_ASSERT_EQ(c.target_bdev, 0);
		/* Rollback: inactive, bitmap cleared: the live namespace reads the base. */
		set_u32(&p, "active", 0);
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_READ, LIVE_NS, 60, 10), LEAP_PASS);
		T_ASSERT_EQ(c.target_bdev, 0);

		/* A namespace named through one controller only. */
		set_u32(&p, "active", 1);
		set_u32(&p, "live_ctrl", 5);
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_WRITE, 4, LIVE_NS, 300, 1, 1);
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_PASS);
		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_WRITE, 5, LIVE_NS, 300, 1, 1);
		T_ASSERT_EQ(pol_run(&p, &c), LEAP_REDIRECT);
		T_ASSERT_EQ(c.target_bdev, OVERLAY);

		sc = map_elem(&p, "snap_counts", 0);
		T_ASSERT_EQ(sc->write_redirected, 5);
		T_ASSERT_EQ(sc->beyond_bitmap, 1);
		T_ASSERT_EQ(sc->dsm_dropped, 1);
		T_ASSERT_EQ(sc->write_protected, 3);
		pol_close(&p);
	}
}

/* Runs a read the way leapd does: SPLITs re-run on the remainder. Records the parts. */
struct part {
	uint64_t slba;
	uint32_t nlb, verdict;
};

static int read_parts(struct pol *p, uint64_t slba, uint32_t nlb, struct part *out, int max)
{
	struct leap_io_ctx c;
	int n = 0;

	while (n < max) {
		uint32_t v;

		mk_ctx(&c, LEAP_HOOK_SUBMIT, LEAP_OPC_READ, 0, LIVE_NS, slba, nlb, 1);
		c.part = (uint32_t)n;
		v = pol_run(p, &c);
		if (v == LEAP_SPLIT) {
			if (c.split_nlb < 1 || c.split_nlb >= nlb)
				return -1;
			if (c.split_verdict == LEAP_REDIRECT &&
			    (c.target_bdev != OVERLAY || c.target_lba != slba))
				return -2;
			out[n++] = (struct part){ slba, c.split_nlb, c.split_verdict };
			slba += c.split_nlb;
			nlb -= c.split_nlb;
			continue;
		}
		if (v == LEAP_REDIRECT && (c.target_bdev != OVERLAY || c.target_lba != slba))
			return -2;
		if (v == LEAP_PASS && (c.target_bdev != 0 || c.target_lba != slba))
			return -3;
		out[n++] = (struct part){ slba, nlb, v };
		return n;
	}
	return -4;
}

static int ref_bit(const uint64_t *bm, uint64_t b)
{
	return b < LEAP_SNAP_BLOCKS && (bm[b / 64] >> (b % 64)) & 1;
}

static void test_snapshot_read_routing_and_split(void)
{
	static uint64_t ref[LEAP_SNAP_WORDS];
	struct part parts[64];
	struct leap_io_ctx c;
	struct pol p;
	int n;

	require_bpffs();
	FOR_EACH_ENGINE(m)
	{
		printf("# %s\n", mode_name[m]);
		T_ASSERT_EQ(pol_open(&p, "snapshot", LEAP_SEC_SUBMIT, m), 0);
		snap_setup(&p);
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_WRITE, LIVE_NS, 60, 10), LEAP_REDIRECT);

		/* Whole range in the overlay, whole range clean. */
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_READ, LIVE_NS, 62, 8), LEAP_REDIRECT);
		T_ASSERT_EQ(c.target_bdev, OVERLAY);
		T_ASSERT_EQ(c.target_lba, 62);
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_COMPARE, LIVE_NS, 60, 10), LEAP_REDIRECT);
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_READ, LIVE_NS, 70, 100), LEAP_PASS);
		T_ASSERT_EQ(c.target_bdev, 0);
		T_ASSERT_EQ(c.target_lba, 70);
		/* Mixed: clean 50..59, overlay 60..69, clean 70..79. */
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_READ, LIVE_NS, 50, 30), LEAP_SPLIT);
		T_ASSERT_EQ(c.split_nlb, 10);
		T_ASSERT_EQ(c.split_verdict, LEAP_PASS);
		T_ASSERT_EQ(c.target_bdev, 0);
		T_ASSERT_EQ(c.target_lba, 50);
		n = read_parts(&p, 50, 30, parts, 64);
		T_ASSERT_EQ(n, 3);
		T_ASSERT(parts[1].slba == 60 && parts[1].nlb == 10 &&
			 parts[1].verdict == LEAP_REDIRECT);
		T_ASSERT(parts[2].slba == 70 && parts[2].nlb == 10 &&
			 parts[2].verdict == LEAP_PASS);
		/* Across the end of the bitmap: blocks past it read as clean. */
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_WRITE, LIVE_NS, LEAP_SNAP_BLOCKS - 4, 4),
			    LEAP_REDIRECT);
		n = read_parts(&p, LEAP_SNAP_BLOCKS - 4, 8, parts, 64);
		T_ASSERT_EQ(n, 2);
		T_ASSERT(parts[0].nlb == 4 && parts[0].verdict == LEAP_REDIRECT);
		T_ASSERT(parts[1].slba == LEAP_SNAP_BLOCKS && parts[1].verdict == LEAP_PASS);
		T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_READ, LIVE_NS, 1ull << 40, 8), LEAP_PASS);
		pol_close(&p);

		/*
		 * Random writes, then random reads up to 65536 blocks checked against a
		 * reference bitmap: every part is one maximal run of equal bits.
		 */
		T_ASSERT_EQ(pol_open(&p, "snapshot", LEAP_SEC_SUBMIT, m), 0);
		snap_setup(&p);
		memset(ref, 0, sizeof(ref));
		srand(42);
		for (int i = 0; i < 300; i++) {
			uint64_t s = (uint64_t)rand() % (1 << 18);
			uint32_t len = 1 + (uint32_t)rand() % (i % 10 == 0 ? 4096 : 70);

			T_ASSERT_EQ(snap_io(&p, &c, LEAP_OPC_WRITE, LIVE_NS, s, len),
				    LEAP_REDIRECT);
			for (uint64_t b = s; b < s + len; b++)
				ref[b / 64] |= 1ull << (b % 64);
		}
		for (uint32_t w = 0; w < (1 << 18) / 64 + 64; w++)
			if (snap_word(&p, w) != ref[w])
				T_FAIL("bitmap word %u: 0x%llx, want 0x%llx", w,
				       (unsigned long long)snap_word(&p, w),
				       (unsigned long long)ref[w]);
		for (int i = 0; i < 300; i++) {
			uint64_t s = (uint64_t)rand() % (1 << 18);
			uint32_t len = 1 + (uint32_t)rand() % (i % 3 ? 300 : 65536);
			uint64_t b = s;

			n = read_parts(&p, s, len, parts, 64);
			if (n == -4)
				continue; /* more than 64 runs: not checked here */
			T_ASSERT(n > 0);
			for (int k = 0; k < n; k++) {
				int bit = ref_bit(ref, parts[k].slba);

				T_ASSERT_EQ(parts[k].slba, b);
				T_ASSERT_EQ(parts[k].verdict, bit ? LEAP_REDIRECT : LEAP_PASS);
				for (uint64_t x = b; x < b + parts[k].nlb; x++)
					T_ASSERT_EQ(ref_bit(ref, x), bit);
				b += parts[k].nlb;
				if (k + 1 < n)
					T_ASSERT(ref_bit(ref, b) != bit); /* maximal */
			}
			T_ASSERT_EQ(b, s + len);
		}
		pol_close(&p);
	}
}

/* ---- stats ---------------------------------------------------------------- */

static void complete_io(struct pol *p, uint32_t ctrl, uint32_t opc, uint32_t nlb, uint64_t lat,
			uint16_t status)
{
	struct leap_io_ctx c;

	mk_ctx(&c, LEAP_HOOK_COMPLETE, opc, ctrl, 1, 0, nlb, 1000000 + lat);
	c.submit_ns = 1000000;
	c.latency_ns = lat;
	c.status = status;
	T_ASSERT_EQ(pol_run(p, &c), LEAP_PASS);
	T_ASSERT_EQ(c.status, status);
}

static void test_stats_counters_and_histogram(void)
{
	static const struct {
		uint64_t lat;
		uint32_t bucket;
	} lats[] = {
		{ 0, 0 },	    { 1, 0 },	   { 2, 1 },	       { 3, 1 },
		{ 4, 2 },	    { 1000, 9 },   { 1023, 9 },	       { 1024, 10 },
		{ 65535, 15 },	    { 65536, 16 }, { 1ull << 32, 32 }, { (1ull << 32) - 1, 31 },
		{ 1ull << 63, 63 }, { ~0ull, 63 },
	};
	struct leap_stats_io *s;
	struct leap_stats_lat *h;
	uint64_t want[64] = { 0 }, sum = 0;
	struct pol p;

	require_bpffs();
	FOR_EACH_ENGINE(m)
	{
		printf("# %s\n", mode_name[m]);
		T_ASSERT_EQ(pol_open(&p, "stats", LEAP_SEC_COMPLETE, m), 0);
		memset(want, 0, sizeof(want));
		sum = 0;
		for (uint32_t i = 0; i < TAP_N(lats); i++) {
			complete_io(&p, 6, LEAP_OPC_FLUSH, 0, lats[i].lat, 0);
			want[lats[i].bucket]++;
			sum += lats[i].lat;
		}
		complete_io(&p, 6, LEAP_OPC_READ, 8, 1000, 0);
		complete_io(&p, 6, LEAP_OPC_READ, 16, 1000, LEAP_ST_INTERNAL_ERROR);
		complete_io(&p, 6, LEAP_OPC_WRITE, 256, 5000, 0);
		complete_io(&p, 6, LEAP_OPC_WRITE_ZEROES, 256, 5000, LEAP_ST_LBA_OUT_OF_RANGE);
		complete_io(&p, 6, LEAP_OPC_COMPARE, 1, 5000, 0);
		complete_io(&p, LEAP_TENANTS, LEAP_OPC_READ, 8, 1000, 0); /* not counted */
		want[9] += 2;
		want[12] += 3;
		sum += 2000 + 15000;

		s = map_elem(&p, "stats_io", 6);
		T_ASSERT_EQ(s->reads, 2);
		T_ASSERT_EQ(s->read_bytes, 24 * 512);
		T_ASSERT_EQ(s->writes, 1);
		T_ASSERT_EQ(s->write_bytes, 256 * 512);
		T_ASSERT_EQ(s->other, TAP_N(lats) + 2);
		T_ASSERT_EQ(s->errors, 2);
		T_ASSERT_U64_EQ(s->lat_ns_sum, sum);
		h = map_elem(&p, "stats_lat", 6);
		for (int b = 0; b < 64; b++)
			if (h->bucket[b] != want[b])
				T_FAIL("bucket %d: %llu, want %llu", b,
				       (unsigned long long)h->bucket[b],
				       (unsigned long long)want[b]);
		for (uint32_t t = 0; t < LEAP_TENANTS; t++)
			if (t != 6)
				T_ASSERT_EQ(
				    ((struct leap_stats_io *)map_elem(&p, "stats_io", t))->reads,
				    0);
		pol_close(&p);
	}
}

/* ---- the kernel agrees ------------------------------------------------------ */

struct kcase {
	const char *name, *section;
	void (*setup)(struct pol *p);
	struct leap_io_ctx ctx;
	const char *map; /* compared byte for byte after the run */
	uint32_t map_idx;
};

static void kset_prio(struct pol *p)
{
	set_rule(p, 2, 1, 3, LEAP_ANY, LEAP_OPC_WRITE, 4096, 0, LEAP_PRIO_HIGH);
}

static void kset_iso(struct pol *p)
{
	set_u64(p, "iops_limit", 3, 1000);
	set_u64(p, "iso_burst_ms", 0, 1); /* one token: run 0 passes, run 1 defers */
	set_u64(p, "area_base", 3, 1 << 20);
	set_u64(p, "area_nlb", 3, 1 << 16);
}

static void kset_snap(struct pol *p)
{
	snap_setup(p);
}

/* Blocks 4..7 and 64..127 in the overlay: a read from 0 splits 4 PASS, then 4 REDIRECT, ... */
static void kset_snap_mixed(struct pol *p)
{
	snap_setup(p);
	*(uint64_t *)map_elem(p, "snap_bitmap", 0) = 0xf0;
	*(uint64_t *)map_elem(p, "snap_bitmap", 1) = ~0ull;
}

static void test_kernel_agrees_with_engine(void)
{
	struct kcase cases[5];
	struct leap_map_info mi[3];
	struct pol a, b, j;

	require_bpffs();
	cases[0] = (struct kcase){ "prio", LEAP_SEC_SUBMIT, kset_prio,
				   { 0 },  "prio_counts",   LEAP_PRIO_HIGH };
	mk_ctx(&cases[0].ctx, LEAP_HOOK_SUBMIT, LEAP_OPC_WRITE, 3, 1, 10, 16, 5);
	cases[1] = (struct kcase){ "isolation", LEAP_SEC_SUBMIT, kset_iso, { 0 }, "iso_bucket", 3 };
	mk_ctx(&cases[1].ctx, LEAP_HOOK_SUBMIT, LEAP_OPC_READ, 3, 1, 100, 8, 5 * SEC_NS);
	cases[2] =
	    (struct kcase){ "snapshot", LEAP_SEC_COMPLETE, kset_snap, { 0 }, "snap_bitmap", 0 };
	mk_ctx(&cases[2].ctx, LEAP_HOOK_COMPLETE, LEAP_OPC_WRITE, 0, LIVE_NS, 62, 4, 5);
	cases[2].ctx.cookie[1] = LEAP_SNAP_COOKIE; /* a write the submit hook redirected */
	cases[3] = (struct kcase){ "stats", LEAP_SEC_COMPLETE, NULL, { 0 }, "stats_lat", 3 };
	mk_ctx(&cases[3].ctx, LEAP_HOOK_COMPLETE, LEAP_OPC_READ, 3, 1, 0, 8, 5);
	cases[3].ctx.latency_ns = 1000;
	cases[4] =
	    (struct kcase){ "snapshot", LEAP_SEC_SUBMIT, kset_snap_mixed, { 0 }, "snap_counts", 0 };
	mk_ctx(&cases[4].ctx, LEAP_HOOK_SUBMIT, LEAP_OPC_READ, 0, LIVE_NS, 0, 200, 5);

	for (int i = 0; i < 5; i++) {
		struct leap_io_ctx ck = cases[i].ctx, ce = cases[i].ctx, cj = cases[i].ctx;
		static const uint8_t zero[sizeof(struct leap_stats_lat)];
		uint32_t vk, ve, vj;

		/* Three fresh objects, so each engine starts from the same state. */
		T_ASSERT_EQ(pol_open(&a, cases[i].name, cases[i].section, MODE_KERNEL), 0);
		T_ASSERT_EQ(pol_open(&b, cases[i].name, cases[i].section, MODE_INTERP), 0);
		T_ASSERT_EQ(pol_open(&j, cases[i].name, cases[i].section, MODE_JIT), 0);
		if (cases[i].setup) {
			cases[i].setup(&a);
			cases[i].setup(&b);
			cases[i].setup(&j);
		}
		/* Twice: the second run sees the state the first one left. */
		for (int r = 0; r < 2; r++) {
			vk = pol_run(&a, &ck);
			ve = pol_run(&b, &ce);
			vj = pol_run(&j, &cj);
			printf("# %s run %d: kernel %u, interp %u, jit %u (split_nlb %u)\n",
			       cases[i].name, r, vk, ve, vj, ck.split_nlb);
			T_ASSERT_EQ(vk, ve);
			T_ASSERT_EQ(vj, ve);
			T_ASSERT_MEM_EQ(&ck, &ce, sizeof(ck));
			T_ASSERT_MEM_EQ(&cj, &ce, sizeof(cj));
		}
		leap_map_get_info(leap_obj_find_map(a.obj, cases[i].map), &mi[0]);
		leap_map_get_info(leap_obj_find_map(b.obj, cases[i].map), &mi[1]);
		leap_map_get_info(leap_obj_find_map(j.obj, cases[i].map), &mi[2]);
		for (int k = 1; k < 3; k++)
			T_ASSERT_MEM_EQ((uint8_t *)mi[0].data + cases[i].map_idx * mi[0].stride,
					(uint8_t *)mi[k].data + cases[i].map_idx * mi[k].stride,
					mi[0].value_size);
		/* The state changed at all (not two untouched maps compared). */
		T_ASSERT(memcmp((uint8_t *)mi[0].data + cases[i].map_idx * mi[0].stride, zero,
				mi[0].value_size) != 0);
		pol_close(&a);
		pol_close(&b);
		pol_close(&j);
	}
}

static void cleanup_pins(void)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pinroot);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", pinroot);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_policies_load_with_expected_maps),
		TAP_CASE(test_prio_first_matching_rule_wins),
		TAP_CASE(test_iso_defer_is_exact_and_does_not_consume),
		TAP_CASE(test_iso_rate_within_1pct_over_10s),
		TAP_CASE(test_iso_area_remap_and_out_of_range),
		TAP_CASE(test_snapshot_write_redirect_sets_bits),
		TAP_CASE(test_snapshot_marks_at_completion_not_submission),
		TAP_CASE(test_snapshot_read_routing_and_split),
		TAP_CASE(test_stats_counters_and_histogram),
		TAP_CASE(test_kernel_agrees_with_engine),
	};
	const char *build = getenv("BUILD");
	int rc;

	snprintf(objdir, sizeof(objdir), "%s/policies", build ? build : "build");
	snprintf(pinroot, sizeof(pinroot), "/sys/fs/bpf/leapio-poltest-%d", (int)getpid());
	leap_log_set_level(LEAP_LOG_WARN);
	rc = tap_run(cases, TAP_N(cases));
	cleanup_pins();
	return rc;
}
