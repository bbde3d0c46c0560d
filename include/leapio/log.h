/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Levelled logging routed through one replaceable callback (libbpf's
 * libbpf_set_print() model). Components log at the failure site, once, with
 * a subsystem prefix; the daemon points the callback at its log file, tests
 * capture it, and the hot path never calls it.
 */
#ifndef LEAPIO_LOG_H
#define LEAPIO_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

enum leap_log_level {
	LEAP_LOG_ERROR = 0,
	LEAP_LOG_WARN = 1,
	LEAP_LOG_INFO = 2,
	LEAP_LOG_DEBUG = 3,
};

/*
 * Receives every message at or below the current level. `subsys` is a short
 * component name ("loader", "jit", ...); `fmt` carries no trailing newline.
 */
typedef void (*leap_log_fn)(enum leap_log_level level, const char *subsys, const char *fmt,
			    va_list ap, void *ctx);

/*
 * Replace the sink. NULL restores the default (stderr, "leapio: <level>: <subsys>: msg").
 * Returns the previous callback so tests can restore it. Not thread-safe:
 * call at startup, before other threads log.
 */
leap_log_fn leap_log_set_callback(leap_log_fn fn, void *ctx);

/* Messages above `level` are dropped before formatting. Default: LEAP_LOG_INFO. */
void leap_log_set_level(enum leap_log_level level);
enum leap_log_level leap_log_get_level(void);

/* Parse "error", "warn", "info", "debug". Returns the level or -EINVAL. */
int leap_log_level_parse(const char *name);
const char *leap_log_level_name(enum leap_log_level level);

__attribute__((format(printf, 3, 4))) void leap_log(enum leap_log_level level, const char *subsys,
						    const char *fmt, ...);

/*
 * Rate limiting for messages that an outsider can trigger at will (a tenant
 * reconnecting in a loop, a peer that keeps failing accept()): at most
 * `burst` messages per `interval_ms` from one call site, then one line
 * saying how many were dropped. Zero-initialised state; thread-safe.
 */
struct leap_log_ratelimit {
	uint64_t window_start_ms;
	uint32_t printed;
	uint32_t suppressed;
};

/*
 * True when the caller may log now. *suppressed (when true is returned)
 * gets the number of messages dropped since the last one that passed.
 */
bool leap_log_ratelimit_ok(struct leap_log_ratelimit *rl, uint32_t burst, uint32_t interval_ms,
			   uint32_t *suppressed);

/* Log through a static per-call-site limiter: 10 messages a second. */
#define LEAP_LOG_RATELIMITED(level, subsys, fmt, ...)                                              \
	do {                                                                                       \
		static struct leap_log_ratelimit _rl;                                              \
		uint32_t _sup;                                                                     \
		if (leap_log_ratelimit_ok(&_rl, 10, 1000, &_sup)) {                                \
			if (_sup)                                                                  \
				leap_log(level, subsys, "(%u similar messages suppressed)", _sup); \
			leap_log(level, subsys, fmt, ##__VA_ARGS__);                               \
		}                                                                                  \
	} while (0)
#define LEAP_WARN_RL(subsys, ...) LEAP_LOG_RATELIMITED(LEAP_LOG_WARN, subsys, __VA_ARGS__)
#define LEAP_INFO_RL(subsys, ...) LEAP_LOG_RATELIMITED(LEAP_LOG_INFO, subsys, __VA_ARGS__)

#define LEAP_ERR(subsys, ...)	leap_log(LEAP_LOG_ERROR, subsys, __VA_ARGS__)
#define LEAP_WARN(subsys, ...)	leap_log(LEAP_LOG_WARN, subsys, __VA_ARGS__)
#define LEAP_INFO(subsys, ...)	leap_log(LEAP_LOG_INFO, subsys, __VA_ARGS__)
#define LEAP_DEBUG(subsys, ...) leap_log(LEAP_LOG_DEBUG, subsys, __VA_ARGS__)

#endif /* LEAPIO_LOG_H */
