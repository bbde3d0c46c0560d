// SPDX-License-Identifier: BSD-3-Clause
/*
 * The helpers policies may call — the whitelist. IDs are the kernel's, so
 * the kernel verifier checks each call's argument types against the real
 * helper prototype; these are userspace implementations with the same
 * contracts. Array maps are served from their mmapped values (no syscall);
 * hash maps go through the bpf() syscall, which is why the loader calls
 * them slow-path maps.
 */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "loader_internal.h"

/*
 * Slow-path lookups return a copy: a pointer into one of a few per-thread
 * buffers, rotated so that up to four lookups can be live at once. Writes
 * through it are not persisted; a policy must call map_update_elem.
 */
#define SLOW_BUFS 4
static __thread uint8_t slow_buf[SLOW_BUFS][4096] __attribute__((aligned(8)));
static __thread unsigned int slow_next;

static __thread uint64_t prandom_state;
static __thread int32_t thread_cpu = -1;

void leap_loader_set_thread_cpu(uint32_t id)
{
	thread_cpu = (int32_t)id;
}

static uint64_t map_lookup_elem(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	struct leap_map *m = (struct leap_map *)(uintptr_t)r1;
	const void *key = (const void *)(uintptr_t)r2;
	uint8_t *buf;

	if (__builtin_expect(m->data != NULL, 1)) {
		uint32_t idx = *(const uint32_t *)key;

		if (idx >= m->max_entries)
			return 0;
		return (uint64_t)(uintptr_t)(m->data + (size_t)idx * m->stride);
	}
	buf = slow_buf[slow_next++ % SLOW_BUFS];
	if (bpf_map_lookup_elem(m->fd, key, buf))
		return 0;
	return (uint64_t)(uintptr_t)buf;
}

static uint64_t map_update_elem(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	struct leap_map *m = (struct leap_map *)(uintptr_t)r1;
	const void *key = (const void *)(uintptr_t)r2;
	const void *value = (const void *)(uintptr_t)r3;

	if (m->data) {
		uint32_t idx = *(const uint32_t *)key;

		/* Same answers as the kernel's array_map_update_elem(). */
		if (r4 > BPF_EXIST)
			return (uint64_t)-EINVAL;
		if (idx >= m->max_entries)
			return (uint64_t)-E2BIG;
		if (r4 == BPF_NOEXIST)
			return (uint64_t)-EEXIST;
		memcpy(m->data + (size_t)idx * m->stride, value, m->value_size);
		return 0;
	}
	if (m->read_only)
		return (uint64_t)-EPERM;
	return bpf_map_update_elem(m->fd, key, value, r4) ? (uint64_t)-errno : 0;
}

static uint64_t map_delete_elem(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	struct leap_map *m = (struct leap_map *)(uintptr_t)r1;

	if (m->data)
		return (uint64_t)-EINVAL; /* array elements cannot be deleted */
	return bpf_map_delete_elem(m->fd, (const void *)(uintptr_t)r2) ? (uint64_t)-errno : 0;
}

static uint64_t ktime_get_ns(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	struct timespec ts;

	/* vDSO: no syscall. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t get_prandom_u32(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	uint64_t x = prandom_state;

	if (__builtin_expect(x == 0, 0)) {
		if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != sizeof(x) || x == 0)
			x = (uint64_t)time(NULL) ^ ((uint64_t)gettid() << 32) ^
			    0x9e3779b97f4a7c15ull;
	}
	/* xorshift64*: fast, per thread, no lock. */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	prandom_state = x;
	return (uint32_t)((x * 0x2545f4914f6cdd1dull) >> 32);
}

static uint64_t get_smp_processor_id(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
				     uint64_t r5)
{
	if (__builtin_expect(thread_cpu < 0, 0)) {
		int cpu = sched_getcpu();

		thread_cpu = cpu < 0 ? 0 : cpu;
	}
	return (uint32_t)thread_cpu;
}

/*
 * bpf_trace_printk(fmt, fmt_size, a, b, c): the kernel's restricted printf
 * (at most three arguments, %d %i %u %x %X %p %s %c with h/l/ll modifiers),
 * routed to the runtime log rather than the kernel trace pipe.
 */
static uint64_t trace_printk(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	const char *fmt = (const char *)(uintptr_t)r1;
	uint64_t args[3] = { r3, r4, r5 };
	char out[256], spec[32];
	size_t len = 0, fmt_len = r2;
	unsigned int argi = 0;

	for (size_t i = 0; i < fmt_len && fmt[i] && len < sizeof(out) - 1; i++) {
		size_t s = 0, start = i;
		int lcount = 0, n;
		char conv;

		if (fmt[i] != '%' || i + 1 >= fmt_len) {
			out[len++] = fmt[i];
			continue;
		}
		if (fmt[i + 1] == '%') {
			out[len++] = '%';
			i++;
			continue;
		}
		i++;
		while (i < fmt_len && strchr("-+ #0123456789", fmt[i]))
			i++;
		while (i < fmt_len && (fmt[i] == 'l' || fmt[i] == 'h'))
			lcount += fmt[i++] == 'l';
		conv = i < fmt_len ? fmt[i] : 0;
		if (!strchr("diuxXpsc", conv) || argi >= 3 || i - start > 16) {
			out[len++] = '?';
			continue;
		}
		/* Rebuild the spec with a 64-bit length so one vararg type fits all. */
		memcpy(spec, fmt + start, i - start);
		s = i - start;
		while (s > 0 && (spec[s - 1] == 'l' || spec[s - 1] == 'h'))
			s--;
		if (conv == 's') {
			spec[s++] = '.';
			spec[s++] = '1';
			spec[s++] = '2';
			spec[s++] = '8';
			spec[s++] = 's';
			spec[s] = 0;
			n = snprintf(out + len, sizeof(out) - len, spec,
				     (const char *)(uintptr_t)args[argi++]);
		} else if (conv == 'p' || conv == 'c') {
			spec[s++] = conv;
			spec[s] = 0;
			if (conv == 'p')
				n = snprintf(out + len, sizeof(out) - len, spec,
					     (void *)(uintptr_t)args[argi++]);
			else
				n = snprintf(out + len, sizeof(out) - len, spec,
					     (int)(char)args[argi++]);
		} else {
			uint64_t v = args[argi++];

			if (lcount == 0) /* int-sized: the kernel truncates too */
				v = strchr("di", conv) ? (uint64_t)(int64_t)(int32_t)v
						       : (uint32_t)v;
			spec[s++] = 'l';
			spec[s++] = 'l';
			spec[s++] = conv == 'i' ? 'd' : conv;
			spec[s] = 0;
			n = snprintf(out + len, sizeof(out) - len, spec, (unsigned long long)v);
		}
		if (n > 0)
			len = LEAP_MIN(len + (size_t)n, sizeof(out) - 1);
	}
	out[len] = 0;
	while (len && out[len - 1] == '\n')
		out[--len] = 0;
	LEAP_INFO("bpf", "%s", out);
	return len;
}

/* struct bpf_spin_lock is one 32-bit word inside a map value. */
static uint64_t spin_lock(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	uint32_t *lock = (uint32_t *)(uintptr_t)r1;

	/* Acquire pairs with the release store in spin_unlock(). */
	while (__atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(lock, __ATOMIC_RELAXED))
			__builtin_ia32_pause();
	return 0;
}

static uint64_t spin_unlock(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	__atomic_store_n((uint32_t *)(uintptr_t)r1, 0, __ATOMIC_RELEASE);
	return 0;
}

static const struct leap_bpf_helpers helpers = {
	.fn = {
		[BPF_FUNC_map_lookup_elem] = map_lookup_elem,
		[BPF_FUNC_map_update_elem] = map_update_elem,
		[BPF_FUNC_map_delete_elem] = map_delete_elem,
		[BPF_FUNC_ktime_get_ns] = ktime_get_ns,
		[BPF_FUNC_trace_printk] = trace_printk,
		[BPF_FUNC_get_prandom_u32] = get_prandom_u32,
		[BPF_FUNC_get_smp_processor_id] = get_smp_processor_id,
		[BPF_FUNC_spin_lock] = spin_lock,
		[BPF_FUNC_spin_unlock] = spin_unlock,
	},
};

const struct leap_bpf_helpers *leap_loader_helpers(void)
{
	return &helpers;
}
