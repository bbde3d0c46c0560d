// SPDX-License-Identifier: BSD-3-Clause
/*
 * The runtime's BPF helpers (loader/helpers.c), called directly the way
 * the engine calls them (r1..r5 -> r0): array maps on a fake mmapped
 * region, hash maps on a real kernel map (slow path), the kernel's answers
 * for update flags and delete, trace_printk's restricted printf and its
 * refusal of what the kernel refuses, per-thread CPU ids and random
 * numbers, and the spin lock under contention from several threads.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include "../../loader/helpers.c"
#include "tap.h"

#define CALL(id, a, b, c, d, e)                                                                    \
	leap_loader_helpers()->fn[id]((uint64_t)(uintptr_t)(a), (uint64_t)(uintptr_t)(b),          \
				      (uint64_t)(uintptr_t)(c), (uint64_t)(d), (uint64_t)(e))

/* An array map as the loader sets it up: values 12 bytes, stride 16. */
static uint8_t array_data[4 * 16];
static struct leap_map array_map = {
	.data = array_data,
	.stride = 16,
	.max_entries = 4,
	.key_size = 4,
	.value_size = 12,
	.type = BPF_MAP_TYPE_ARRAY,
	.fd = -1,
	.name = "arr",
};

static void test_array_lookup_is_base_plus_index_times_stride(void)
{
	uint32_t k;

	for (k = 0; k < 4; k++)
		T_ASSERT_U64_EQ(CALL(BPF_FUNC_map_lookup_elem, &array_map, &k, 0, 0, 0),
				(uintptr_t)(array_data + 16 * k));
	k = 4;
	T_ASSERT_U64_EQ(CALL(BPF_FUNC_map_lookup_elem, &array_map, &k, 0, 0, 0), 0);
	k = 0xffffffff;
	T_ASSERT_U64_EQ(CALL(BPF_FUNC_map_lookup_elem, &array_map, &k, 0, 0, 0), 0);
}

static void test_array_update_and_delete_answer_like_the_kernel(void)
{
	uint8_t val[12], want[16];
	uint32_t k = 2;

	memset(array_data, 0xee, sizeof(array_data));
	for (int i = 0; i < 12; i++)
		val[i] = (uint8_t)(i + 1);
	T_ASSERT_EQ((int64_t)CALL(BPF_FUNC_map_update_elem, &array_map, &k, val, BPF_ANY, 0), 0);
	/* value_size bytes are written; the padding up to the stride is not. */
	memcpy(want, val, 12);
	memset(want + 12, 0xee, 4);
	T_ASSERT_MEM_EQ(array_data + 32, want, 16);
	val[0] = 99;
	T_ASSERT_EQ((int64_t)CALL(BPF_FUNC_map_update_elem, &array_map, &k, val, BPF_EXIST, 0), 0);
	T_ASSERT_EQ(array_data[32], 99);
	/* Array elements always exist: NOEXIST fails and changes nothing. */
	val[0] = 7;
	T_ASSERT_EQ((int64_t)CALL(BPF_FUNC_map_update_elem, &array_map, &k, val, BPF_NOEXIST, 0),
		    -EEXIST);
	T_ASSERT_EQ(array_data[32], 99);
	T_ASSERT_EQ((int64_t)CALL(BPF_FUNC_map_update_elem, &array_map, &k, val, 4, 0), -EINVAL);
	k = 4;
	T_ASSERT_EQ((int64_t)CALL(BPF_FUNC_map_update_elem, &array_map, &k, val, BPF_ANY, 0),
		    -E2BIG);
	k = 1;
	T_ASSERT_EQ((int64_t)CALL(BPF_FUNC_map_delete_elem, &array_map, &k, 0, 0, 0), -EINVAL);
	/* .rodata is mapped read-only: refused before touching it. */
	array_map.read_only = true;
	T_ASSERT_EQ((int64_t)CALL(BPF_FUNC_map_update_elem, &array_map, &k, val, BPF_ANY, 0),
		    -EPERM);
	array_map.read_only = false;
}

static void test_hash_slow_path_uses_the_kernel_map(void)
{
	struct leap_map h = { .key_size = 4, .value_size = 8, .type = BPF_MAP_TYPE_HASH };
	uint64_t v, *p1, *p2, got = 0;
	uint32_t k1 = 1, k2 = 2;

	if (geteuid() != 0)
		T_SKIP("needs root for BPF_MAP_CREATE");
	h.fd = bpf_map_create(BPF_MAP_TYPE_HASH, "leap_t_hash", 4, 8, 8, NULL);
	T_ASSERT(h.fd >= 0);
	h.slow_path = true;
	T_ASSERT_U64_EQ(CALL(BPF_FUNC_map_lookup_elem, &h, &k1, 0, 0, 0), 0);
	v = 10;
	T_ASSERT_EQ((int64_t)CALL(BPF_FUNC_map_update_elem, &h, &k1, &v, BPF_EXIST, 0), -ENOENT);
	T_ASSERT_EQ((int64_t)CALL(BPF_FUNC_map_update_elem, &h, &k1, &v, BPF_NOEXIST, 0), 0);
	T_ASSERT_EQ((int64_t)CALL(BPF_FUNC_map_update_elem, &h, &k1, &v, BPF_NOEXIST, 0), -EEXIST);
	v = 20;
	T_ASSERT_EQ((int64_t)CALL(BPF_FUNC_map_update_elem, &h, &k2, &v, BPF_ANY, 0), 0);
	/* Two lookups stay valid at once (separate per-thread buffers). */
	p1 = (uint64_t *)(uintptr_t)CALL(BPF_FUNC_map_lookup_elem, &h, &k1, 0, 0, 0);
	p2 = (uint64_t *)(uintptr_t)CALL(BPF_FUNC_map_lookup_elem, &h, &k2, 0, 0, 0);
	T_ASSERT(p1 && p2 && p1 != p2);
	T_ASSERT_EQ(*p1, 10);
	T_ASSERT_EQ(*p2, 20);
	/* A copy: writing through it does not reach the kernel map (documented). */
	*p1 = 11;
	T_ASSERT_EQ(bpf_map_lookup_elem(h.fd, &k1, &got), 0);
	T_ASSERT_EQ(got, 10);
	T_ASSERT_EQ((int64_t)CALL(BPF_FUNC_map_delete_elem, &h, &k1, 0, 0, 0), 0);
	T_ASSERT_EQ((int64_t)CALL(BPF_FUNC_map_delete_elem, &h, &k1, 0, 0, 0), -ENOENT);
	T_ASSERT(bpf_map_lookup_elem(h.fd, &k1, &got) != 0);
	close(h.fd);
}

static void test_ktime_is_clock_monotonic(void)
{
	struct timespec a, b;
	uint64_t t, lo, hi;

	clock_gettime(CLOCK_MONOTONIC, &a);
	t = CALL(BPF_FUNC_ktime_get_ns, 0, 0, 0, 0, 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	lo = (uint64_t)a.tv_sec * 1000000000ull + (uint64_t)a.tv_nsec;
	hi = (uint64_t)b.tv_sec * 1000000000ull + (uint64_t)b.tv_nsec;
	T_ASSERT(lo <= t && t <= hi);
}

struct thread_out {
	uint32_t cpu_default, cpu_set, cpu_pinned;
	uint32_t rnd[64];
};

static void *thread_main(void *arg)
{
	struct thread_out *o = arg;

	o->cpu_default = (uint32_t)CALL(BPF_FUNC_get_smp_processor_id, 0, 0, 0, 0, 0);
	o->cpu_pinned = (uint32_t)sched_getcpu();
	leap_loader_set_thread_cpu(40);
	o->cpu_set = (uint32_t)CALL(BPF_FUNC_get_smp_processor_id, 0, 0, 0, 0, 0);
	for (int i = 0; i < 64; i++)
		o->rnd[i] = (uint32_t)CALL(BPF_FUNC_get_prandom_u32, 0, 0, 0, 0, 0);
	return NULL;
}

static void test_cpu_id_and_prandom_are_per_thread(void)
{
	struct thread_out a = { 0 }, b = { 0 };
	pthread_attr_t attr;
	cpu_set_t one;
	pthread_t ta, tb;
	uint32_t or = 0, and = ~0u;
	int same = 0;

	/* Pin thread a so its default CPU id is known without racing a migration. */
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	pthread_attr_init(&attr);
	pthread_attr_setaffinity_np(&attr, sizeof(one), &one);
	T_ASSERT_EQ(pthread_create(&ta, &attr, thread_main, &a), 0);
	pthread_join(ta, NULL);
	pthread_attr_destroy(&attr);
	T_ASSERT_EQ(pthread_create(&tb, NULL, thread_main, &b), 0);
	pthread_join(tb, NULL);

	T_ASSERT_EQ(a.cpu_pinned, 0);
	T_ASSERT_EQ(a.cpu_default, 0);
	T_ASSERT_EQ(a.cpu_set, 40);
	T_ASSERT_EQ(b.cpu_set, 40);
	/* Setting it on those threads did not change ours. */
	leap_loader_set_thread_cpu(3);
	T_ASSERT_EQ(CALL(BPF_FUNC_get_smp_processor_id, 0, 0, 0, 0, 0), 3);

	for (int i = 0; i < 64; i++) {
		or |= a.rnd[i];
		and &= a.rnd[i];
		same += a.rnd[i] == b.rnd[i];
	}
	/* Independently seeded streams; every bit both set and clear somewhere. */
	T_ASSERT(same < 4);
	T_ASSERT_U64_EQ(or, 0xffffffffu);
	T_ASSERT_U64_EQ(and, 0);
}

static int printk(char *out, size_t sz, const char *fmt, uint64_t a, uint64_t b, uint64_t c)
{
	const uint64_t args[3] = { a, b, c };

	return format_printk(out, sz, fmt, strlen(fmt) + 1, args);
}

static void test_printk_formats_like_the_kernel(void)
{
	char out[512];
	uint8_t ip4[4] = { 10, 0, 2, 15 };
	uint8_t ip6[16] = { 0xfe, 0x80, [15] = 1 };

	T_ASSERT_EQ(printk(out, sizeof(out), "x=%d u=%u h=%x", 0xffffffffu, 0xffffffffu, 255), 22);
	T_ASSERT_STR_EQ(out, "x=-1 u=4294967295 h=ff");
	printk(out, sizeof(out), "%lld %llu %lx", (uint64_t)-5, 1ull << 40, 1ull << 33);
	T_ASSERT_STR_EQ(out, "-5 1099511627776 200000000");
	printk(out, sizeof(out), "%llX %ld", 0xabcdefull, (uint64_t)-2, 0);
	T_ASSERT_STR_EQ(out, "ABCDEF -2");
	T_ASSERT_EQ(printk(out, sizeof(out), "[%5d|%-4u|%03x] %%", 42, 7, 10), 18);
	T_ASSERT_STR_EQ(out, "[   42|7   |00a] %");
	T_ASSERT_EQ(printk(out, sizeof(out), "%i%+d% d", (uint64_t)-3, 4, 5), 6);
	T_ASSERT_STR_EQ(out, "-3+4 5");
	printk(out, sizeof(out), "%s:%c:%s", (uintptr_t) "leap", 'Z', (uintptr_t) "io");
	T_ASSERT_STR_EQ(out, "leap:Z:io");
	printk(out, sizeof(out), "%pI4 %pi4", (uintptr_t)ip4, (uintptr_t)ip4, 0);
	T_ASSERT_STR_EQ(out, "10.0.2.15 010.000.002.015");
	printk(out, sizeof(out), "%pI6", (uintptr_t)ip6, 0, 0);
	T_ASSERT_STR_EQ(out, "fe80:0000:0000:0000:0000:0000:0000:0001");
	printk(out, sizeof(out), "%p %pK", 0x1234, 0xff, 0);
	T_ASSERT_STR_EQ(out, "0x1234 0xff");
}

static void test_printk_survives_bad_string_pointers(void)
{
	char out[512];
	long page = sysconf(_SC_PAGESIZE);
	char *two = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	/* The verifier does not type "%s" arguments: any scalar may arrive. */
	printk(out, sizeof(out), "<%s><%s>", 0x10, 0xdead00000000ull, 0);
	T_ASSERT_STR_EQ(out, "<><>");
	T_ASSERT(two != MAP_FAILED);
	/* A string crossing into a mapped page is read across it. */
	memcpy(two + page - 2, "ab", 2);
	memcpy(two + page, "cd", 3);
	printk(out, sizeof(out), "<%s>", (uintptr_t)(two + page - 2), 0, 0);
	T_ASSERT_STR_EQ(out, "<abcd>");
	/* A string running into an unmapped page is cut there, without a fault. */
	munmap(two + page, (size_t)page);
	memset(two + page - 3, 'a', 3);
	printk(out, sizeof(out), "<%s>", (uintptr_t)(two + page - 3), 0, 0);
	T_ASSERT_STR_EQ(out, "<aaa>");
	munmap(two, (size_t)page);
}

static void test_printk_refuses_what_the_kernel_refuses(void)
{
	char out[512];
	const uint64_t args[3] = { 1, 2, 3 };

	T_ASSERT_EQ(printk(out, sizeof(out), "%d %d %d %d", 1, 2, 3), -EINVAL);
	T_ASSERT_EQ(printk(out, sizeof(out), "%f", 1, 0, 0), -EINVAL);
	T_ASSERT_EQ(printk(out, sizeof(out), "%.2d", 1, 0, 0), -EINVAL);
	T_ASSERT_EQ(printk(out, sizeof(out), "%lllu", 1, 0, 0), -EINVAL);
	T_ASSERT_EQ(printk(out, sizeof(out), "%pZ", 1, 0, 0), -EINVAL);
	T_ASSERT_EQ(printk(out, sizeof(out), "bell\a", 0, 0, 0), -EINVAL);
	T_ASSERT_EQ(printk(out, sizeof(out), "trailing %", 0, 0, 0), -EINVAL);
	/* No NUL within fmt_size. */
	T_ASSERT_EQ(format_printk(out, sizeof(out), "abc", 3, args), -EINVAL);
	T_ASSERT_EQ(format_printk(out, sizeof(out), "abc", 0, args), -EINVAL);
}

struct capture {
	int calls;
	char subsys[16];
	char msg[512];
};

static void capture_fn(enum leap_log_level level, const char *subsys, const char *fmt, va_list ap,
		       void *ctx)
{
	struct capture *c = ctx;

	c->calls++;
	snprintf(c->subsys, sizeof(c->subsys), "%s", subsys);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
}

static void test_trace_printk_logs_under_bpf(void)
{
	static const char fmt[] = "io %u to lba %llx\n";
	static const char bad[] = "%f\n";
	struct capture c = { 0 };
	leap_log_fn old = leap_log_set_callback(capture_fn, &c);
	enum leap_log_level lvl = leap_log_get_level();
	int64_t ret, ret_bad;

	leap_log_set_level(LEAP_LOG_INFO);
	ret = (int64_t)CALL(BPF_FUNC_trace_printk, fmt, sizeof(fmt), 9, 0x1000, 0);
	ret_bad = (int64_t)CALL(BPF_FUNC_trace_printk, bad, sizeof(bad), 1, 0, 0);
	leap_log_set_level(lvl);
	leap_log_set_callback(old, NULL);
	T_ASSERT_EQ(ret, (int64_t)strlen("io 9 to lba 1000"));
	T_ASSERT_EQ(ret_bad, -EINVAL);
	T_ASSERT_EQ(c.calls, 1); /* nothing printed for the refused format */
	T_ASSERT_STR_EQ(c.subsys, "bpf");
	T_ASSERT_STR_EQ(c.msg, "io 9 to lba 1000");
}

/* A lock word and a plain counter in one "map value", as struct bpf_spin_lock sits. */
static struct {
	uint32_t lock;
	uint32_t pad;
	uint64_t n;
} locked_val;

#define LOCK_THREADS 4
#define LOCK_ITERS   1000000

static pthread_barrier_t lock_start;

static void *locker(void *arg)
{
	/* Start together, so the threads really contend. */
	pthread_barrier_wait(&lock_start);
	for (int i = 0; i < LOCK_ITERS; i++) {
		CALL(BPF_FUNC_spin_lock, &locked_val.lock, 0, 0, 0, 0);
		/* A non-atomic read-modify-write: only mutual exclusion keeps it exact. */
		uint64_t v = *(volatile uint64_t *)&locked_val.n;
		*(volatile uint64_t *)&locked_val.n = v + 1;
		CALL(BPF_FUNC_spin_unlock, &locked_val.lock, 0, 0, 0, 0);
	}
	return NULL;
}

static void test_spin_lock_excludes_under_contention(void)
{
	pthread_t t[LOCK_THREADS];

	pthread_barrier_init(&lock_start, NULL, LOCK_THREADS);
	for (int i = 0; i < LOCK_THREADS; i++)
		T_ASSERT_EQ(pthread_create(&t[i], NULL, locker, NULL), 0);
	for (int i = 0; i < LOCK_THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&lock_start);
	T_ASSERT_EQ(locked_val.n, (uint64_t)LOCK_THREADS * LOCK_ITERS);
	T_ASSERT_EQ(locked_val.lock, 0);
}

static void test_whitelist_is_exactly_the_documented_helpers(void)
{
	static const int ids[] = { BPF_FUNC_map_lookup_elem,	  BPF_FUNC_map_update_elem,
				   BPF_FUNC_map_delete_elem,	  BPF_FUNC_ktime_get_ns,
				   BPF_FUNC_trace_printk,	  BPF_FUNC_get_prandom_u32,
				   BPF_FUNC_get_smp_processor_id, BPF_FUNC_spin_lock,
				   BPF_FUNC_spin_unlock };
	const struct leap_bpf_helpers *h = leap_loader_helpers();
	int n = 0;

	for (int i = 0; i < LEAP_BPF_MAX_HELPERS; i++)
		n += h->fn[i] != NULL;
	T_ASSERT_EQ(n, (int)TAP_N(ids));
	for (size_t i = 0; i < TAP_N(ids); i++)
		T_ASSERT(h->fn[ids[i]] != NULL);
	T_ASSERT(h->fn[BPF_FUNC_get_current_pid_tgid] == NULL);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_array_lookup_is_base_plus_index_times_stride),
		TAP_CASE(test_array_update_and_delete_answer_like_the_kernel),
		TAP_CASE(test_hash_slow_path_uses_the_kernel_map),
		TAP_CASE(test_ktime_is_clock_monotonic),
		TAP_CASE(test_cpu_id_and_prandom_are_per_thread),
		TAP_CASE(test_printk_formats_like_the_kernel),
		TAP_CASE(test_printk_survives_bad_string_pointers),
		TAP_CASE(test_printk_refuses_what_the_kernel_refuses),
		TAP_CASE(test_trace_printk_logs_under_bpf),
		TAP_CASE(test_spin_lock_excludes_under_contention),
		TAP_CASE(test_whitelist_is_exactly_the_documented_helpers),
	};

	return tap_run(cases, TAP_N(cases));
}
