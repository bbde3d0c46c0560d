/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A very small unit-test harness that speaks TAP (Test Anything Protocol),
 * the same protocol bats emits, so tests/run.sh counts C unit tests, BPF
 * data tests and end-to-end scripts with one parser. Header-only: a test file
 * may #include the .c under test to reach its static functions (SPDK style).
 *
 *   static void test_x(void) { T_ASSERT_EQ(1 + 1, 2); }
 *   int main(void) { static const struct tap_case c[] = { TAP_CASE(test_x) };
 *                    return tap_run(c, TAP_N(c)); }
 *
 * A failed assertion ends the current case (it returns from the function),
 * prints the file, line and values as TAP diagnostics, and marks it not ok.
 */
#ifndef LEAPIO_TESTS_TAP_H
#define LEAPIO_TESTS_TAP_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tap_case {
	const char *name;
	void (*fn)(void);
};

#define TAP_CASE(fn)                                                                               \
	{                                                                                          \
#fn, fn                                                                            \
	}
#define TAP_N(a) (sizeof(a) / sizeof((a)[0]))

static int tap_case_failed;
static const char *tap_skip_reason;
static jmp_buf tap_jmp;

#define T_FAIL(...)                                                                                \
	do {                                                                                       \
		printf("# %s:%d: ", __FILE__, __LINE__);                                           \
		printf(__VA_ARGS__);                                                               \
		printf("\n");                                                                      \
		tap_case_failed = 1;                                                               \
		longjmp(tap_jmp, 1);                                                               \
	} while (0)

#define T_ASSERT(cond)                                                                             \
	do {                                                                                       \
		if (!(cond))                                                                       \
			T_FAIL("assertion failed: %s", #cond);                                     \
	} while (0)

#define T_ASSERT_EQ(a, b)                                                                          \
	do {                                                                                       \
		long long _a = (long long)(a), _b = (long long)(b);                                \
		if (_a != _b)                                                                      \
			T_FAIL("%s == %s: got %lld (0x%llx), want %lld (0x%llx)", #a, #b, _a,      \
			       (unsigned long long)_a, _b, (unsigned long long)_b);                \
	} while (0)

#define T_ASSERT_U64_EQ(a, b)                                                                      \
	do {                                                                                       \
		uint64_t _a = (uint64_t)(a), _b = (uint64_t)(b);                                   \
		if (_a != _b)                                                                      \
			T_FAIL("%s == %s: got 0x%" PRIx64 ", want 0x%" PRIx64, #a, #b, _a, _b);    \
	} while (0)

#define T_ASSERT_STR_EQ(a, b)                                                                      \
	do {                                                                                       \
		const char *_a = (a), *_b = (b);                                                   \
		if (!_a || !_b || strcmp(_a, _b) != 0)                                             \
			T_FAIL("%s == %s: got \"%s\", want \"%s\"", #a, #b, _a ? _a : "(null)",    \
			       _b ? _b : "(null)");                                                \
	} while (0)

#define T_ASSERT_MEM_EQ(a, b, n)                                                                   \
	do {                                                                                       \
		if (memcmp((a), (b), (n)) != 0)                                                    \
			T_FAIL("%s and %s differ in their first %zu bytes", #a, #b, (size_t)(n));  \
	} while (0)

/* Skip the current case; it is reported as "ok ... # SKIP reason" and never counted as passed. */
#define T_SKIP(reason)                                                                             \
	do {                                                                                       \
		tap_skip_reason = (reason);                                                        \
		longjmp(tap_jmp, 2);                                                               \
	} while (0)

static inline int tap_run(const struct tap_case *cases, size_t n)
{
	volatile int failed = 0; /* volatile: live across setjmp/longjmp */

	printf("1..%zu\n", n);
	fflush(stdout);
	for (volatile size_t i = 0; i < n; i++) {
		tap_case_failed = 0;
		tap_skip_reason = NULL;
		if (setjmp(tap_jmp) == 0)
			cases[i].fn();
		if (tap_skip_reason)
			printf("ok %zu %s # SKIP %s\n", i + 1, cases[i].name, tap_skip_reason);
		else if (tap_case_failed)
			printf("not ok %zu %s\n", i + 1, cases[i].name);
		else
			printf("ok %zu %s\n", i + 1, cases[i].name);
		failed += tap_case_failed;
		fflush(stdout);
	}
	return failed ? 1 : 0;
}

#endif /* LEAPIO_TESTS_TAP_H */
