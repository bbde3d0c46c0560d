/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Small definitions every leapio component shares: the error and exit-code
 * convention, and a handful of macros. Nothing here allocates or logs.
 *
 * Error convention: functions return 0 (or a non-negative count) on success
 * and -errno on failure; errno is never the channel. Functions returning a
 * pointer return NULL and store -errno in an `int *err` out-parameter when
 * the caller needs to know why.
 */
#ifndef LEAPIO_COMMON_H
#define LEAPIO_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Process exit codes used by every leapio tool and test. */
enum leap_exit {
	LEAP_EXIT_OK = 0,
	LEAP_EXIT_FAILURE = 1, /* the operation failed; stderr says why */
	LEAP_EXIT_USAGE = 2,   /* bad command line */
	LEAP_EXIT_SKIP = 77,   /* a test could not run here (automake/liburing convention) */
};

#define LEAP_ARRAY_SIZE(a)  (sizeof(a) / sizeof((a)[0]))
#define LEAP_MIN(a, b)	    ((a) < (b) ? (a) : (b))
#define LEAP_MAX(a, b)	    ((a) > (b) ? (a) : (b))
#define LEAP_ALIGN_UP(x, a) (((x) + (a)-1) & ~((__typeof__(x))(a)-1))
#define LEAP_IS_POW2(x)	    ((x) != 0 && ((x) & ((x)-1)) == 0)

#define leap_likely(x)	 __builtin_expect(!!(x), 1)
#define leap_unlikely(x) __builtin_expect(!!(x), 0)

#define leap_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif /* LEAPIO_COMMON_H */
