// SPDX-License-Identifier: BSD-3-Clause
/*
 * The helpers policies may call — the whitelist. IDs are the kernel's, so
 * the kernel verifier checks each call's argument types against the real
 * helper prototype; these are userspace implementations with the same
 * contracts. Array maps are served from their mmapped values (no syscall);
 * hash maps go through the bpf() syscall, which is why the loader calls
 * them slow-path maps.
 */
#include <ctype.h>
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/uio.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "loader_internal.h"

/*
 * Slow-path lookups return a copy: a pointer into one of a few per-thread
 * buffers, used in rotation so that the last SLOW_BUFS lookups (in any
 * maps) stay valid at once — a per-map buffer would break the common
 * "look up two keys of one map" pattern. Writes through the pointer are
 * not persisted; a policy must call map_update_elem.
 */
#define SLOW_BUFS 8
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
		/* .rodata is mapped read-only; the verifier forbids this anyway. */
		if (m->read_only)
			return (uint64_t)-EPERM;
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
 * Read up to `n` bytes at `addr` without trusting it: the verifier does not
 * type the arguments of bpf_trace_printk, so "%s" may receive any scalar.
 * process_vm_readv() on ourselves returns what is readable instead of
 * faulting (the kernel uses copy_from_kernel_nofault for the same reason).
 * Returns the number of bytes read.
 */
static size_t read_nofault(void *dst, uint64_t addr, size_t n)
{
	struct iovec local = { .iov_base = dst, .iov_len = n };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = n };
	ssize_t got;

	if (!addr)
		return 0;
	got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	return got > 0 ? (size_t)got : 0;
}

/* A NUL-terminated string at `addr`, at most sz - 1 bytes; "" when unreadable. */
static void read_str_nofault(char *dst, size_t sz, uint64_t addr)
{
	size_t len = 0;

	while (len < sz - 1) {
		/* Stop each read at a page end: the next page may be unmapped. */
		size_t chunk = 4096 - ((addr + len) & 4095), got;

		chunk = LEAP_MIN(chunk, sz - 1 - len);
		got = read_nofault(dst + len, addr + len, chunk);
		if (memchr(dst + len, 0, got) || got < chunk) {
			len += got;
			break;
		}
		len += got;
	}
	dst[len] = 0;
}

struct out_buf {
	char *s;
	size_t len, sz;
};

__attribute__((format(printf, 2, 3))) static void out_add(struct out_buf *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->s + o->len, o->sz - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len = LEAP_MIN(o->len + (size_t)n, o->sz - 1);
}

/* %p and its kernel extensions: K x s S B (printed as an address), i4 I4 i6 I6. */
static int format_pointer(struct out_buf *o, const char *fmt, size_t *i, uint64_t arg)
{
	uint8_t ip[16];
	char c = fmt[*i + 1];

	if (c == 'K' || c == 'x' || c == 's' || c == 'S' || c == 'B') {
		(*i)++;
	} else if ((c == 'i' || c == 'I') && (fmt[*i + 2] == '4' || fmt[*i + 2] == '6')) {
		size_t n = fmt[*i + 2] == '4' ? 4 : 16;

		*i += 2;
		memset(ip, 0, sizeof(ip));
		read_nofault(ip, arg, n);
		for (size_t k = 0; n == 4 && k < 4; k++)
			out_add(o, c == 'i' ? "%s%03u" : "%s%u", k ? "." : "", ip[k]);
		for (size_t k = 0; n == 16 && k < 16; k += 2)
			out_add(o, "%s%02x%02x", k && c == 'I' ? ":" : "", ip[k], ip[k + 1]);
		return 0;
	} else if (isalnum((unsigned char)c)) {
		return -EINVAL; /* an extension the kernel does not allow either */
	}
	out_add(o, "0x%llx", (unsigned long long)arg);
	return 0;
}

/*
 * The kernel's restricted printf (bpf_bprintf_prepare()): at most three
 * arguments; conversions %d %i %u %x %X with up to two 'l', %c, %s, %p
 * and its extensions; flags [0 +-] and a width. Anything else, a missing
 * NUL within fmt_size, or a non-printable byte makes the helper return
 * -EINVAL without printing, as the kernel does.
 */
static int format_printk(char *dst, size_t dst_sz, const char *fmt, size_t fmt_size,
			 const uint64_t args[3])
{
	struct out_buf o = { .s = dst, .len = 0, .sz = dst_sz };
	char spec[24], str[256];
	unsigned int argi = 0;

	dst[0] = 0;
	if (!fmt_size || !memchr(fmt, 0, fmt_size))
		return -EINVAL;
	for (size_t i = 0; fmt[i]; i++) {
		size_t start = i, lcount = 0, spec_len;
		uint64_t v;
		char conv;

		if (!isprint((unsigned char)fmt[i]) && !isspace((unsigned char)fmt[i]))
			return -EINVAL;
		if (fmt[i] != '%') {
			out_add(&o, "%c", fmt[i]);
			continue;
		}
		if (fmt[i + 1] == '%') {
			out_add(&o, "%%");
			i++;
			continue;
		}
		if (argi >= 3)
			return -EINVAL;
		i++;
		while (fmt[i] == '0' || fmt[i] == '+' || fmt[i] == '-' || fmt[i] == ' ')
			i++;
		while (fmt[i] >= '0' && fmt[i] <= '9')
			i++;
		if (i - start > 12)
			return -EINVAL;
		conv = fmt[i];
		if (conv == 'p') {
			if (format_pointer(&o, fmt, &i, args[argi++]))
				return -EINVAL;
			continue;
		}
		/* The flags and width as written, then a conversion we choose. */
		if (conv == 'c') {
			snprintf(spec, sizeof(spec), "%.*sc", (int)(i - start), fmt + start);
			out_add(&o, spec, (int)(unsigned char)args[argi++]);
			continue;
		}
		if (conv == 's') {
			read_str_nofault(str, sizeof(str), args[argi++]);
			snprintf(spec, sizeof(spec), "%.*ss", (int)(i - start), fmt + start);
			out_add(&o, spec, str);
			continue;
		}
		spec_len = i - start;
		while (fmt[i] == 'l' && lcount < 2) {
			lcount++;
			conv = fmt[++i];
		}
		if (!conv || !strchr("diuxX", conv))
			return -EINVAL;
		v = args[argi++];
		if (lcount == 0) /* int-sized: the kernel truncates too */
			v = strchr("di", conv) ? (uint64_t)(int64_t)(int32_t)v : (uint32_t)v;
		/* One 64-bit vararg type for every length modifier. */
		snprintf(spec, sizeof(spec), "%.*sll%c", (int)spec_len, fmt + start,
			 conv == 'i' ? 'd' : conv);
		out_add(&o, spec, (unsigned long long)v);
	}
	return (int)o.len;
}

/* bpf_trace_printk(fmt, fmt_size, a, b, c), routed to the leapio log. */
static uint64_t trace_printk(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	const uint64_t args[3] = { r3, r4, r5 };
	char out[512];
	int n = format_printk(out, sizeof(out), (const char *)(uintptr_t)r1, (size_t)r2, args);

	if (n < 0)
		return (uint64_t)(int64_t)n;
	/* The kernel's trace pipe adds the line break; our log does too. */
	while (n > 0 && out[n - 1] == '\n')
		out[--n] = 0;
	LEAP_INFO("bpf", "%s", out);
	return (uint64_t)n;
}

/*
 * struct bpf_spin_lock is one 32-bit word inside a map value: a
 * test-and-test-and-set lock. The acquire exchange pairs with the release
 * store in spin_unlock(), so writes made under the lock are visible to the
 * next holder. (The loader refuses maps holding a lock, because the kernel
 * will not mmap them; these stay correct for any lock word they are given.)
 */
static uint64_t spin_lock(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	_Atomic uint32_t *lock = (_Atomic uint32_t *)(uintptr_t)r1;

	while (atomic_exchange_explicit(lock, 1, memory_order_acquire))
		while (atomic_load_explicit(lock, memory_order_relaxed))
			__builtin_ia32_pause();
	return 0;
}

static uint64_t spin_unlock(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	atomic_store_explicit((_Atomic uint32_t *)(uintptr_t)r1, 0, memory_order_release);
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
