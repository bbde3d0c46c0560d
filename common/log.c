// SPDX-License-Identifier: BSD-3-Clause
/*
 * Default log sink and level filter behind include/leapio/log.h. The level
 * is read with relaxed atomics: a racing reader may see the old level for a
 * moment, which is harmless, and no lock is needed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "leapio/log.h"

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static void default_sink(enum leap_log_level level, const char *subsys, const char *fmt, va_list ap,
			 void *ctx)
{
	char buf[1024];

	(void)ctx;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* One fprintf per message so concurrent writers do not interleave lines. */
	fprintf(stderr, "leapio: %s: %s: %s\n", level_names[level], subsys, buf);
}

static leap_log_fn log_fn = default_sink;
static void *log_ctx;
static _Atomic int log_level = LEAP_LOG_INFO;

leap_log_fn leap_log_set_callback(leap_log_fn fn, void *ctx)
{
	leap_log_fn old = log_fn;

	log_fn = fn ? fn : default_sink;
	log_ctx = fn ? ctx : NULL;
	return old;
}

void leap_log_set_level(enum leap_log_level level)
{
	if (level > LEAP_LOG_DEBUG)
		level = LEAP_LOG_DEBUG;
	atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

enum leap_log_level leap_log_get_level(void)
{
	return (enum leap_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

int leap_log_level_parse(const char *name)
{
	for (unsigned int i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (name && strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

const char *leap_log_level_name(enum leap_log_level level)
{
	return (unsigned int)level <= LEAP_LOG_DEBUG ? level_names[level] : "?";
}

void leap_log(enum leap_log_level level, const char *subsys, const char *fmt, ...)
{
	va_list ap;

	if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	va_start(ap, fmt);
	log_fn(level, subsys ? subsys : "-", fmt, ap, log_ctx);
	va_end(ap);
}

bool leap_log_ratelimit_ok(struct leap_log_ratelimit *rl, uint32_t burst, uint32_t interval_ms,
			   uint32_t *suppressed)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct timespec ts;
	uint64_t now;
	bool ok;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	/* One lock for every limiter: only reached on paths that are about to log anyway. */
	pthread_mutex_lock(&lock);
	if (now - rl->window_start_ms >= interval_ms) {
		rl->window_start_ms = now;
		rl->printed = 0;
	}
	ok = rl->printed < burst;
	*suppressed = 0;
	if (ok) {
		rl->printed++;
		*suppressed = rl->suppressed;
		rl->suppressed = 0;
	} else {
		rl->suppressed++;
	}
	pthread_mutex_unlock(&lock);
	return ok;
}
