// SPDX-License-Identifier: BSD-3-Clause
/* Logging: level filter, callback replacement and restore, level parsing. */
#include <errno.h>
#include <stdarg.h>

#include "leapio/log.h"
#include "tap.h"

struct capture {
	int calls;
	enum leap_log_level level;
	char subsys[32];
	char msg[256];
};

static void capture_fn(enum leap_log_level level, const char *subsys, const char *fmt, va_list ap,
		       void *ctx)
{
	struct capture *c = ctx;

	c->calls++;
	c->level = level;
	snprintf(c->subsys, sizeof(c->subsys), "%s", subsys);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
}

static void test_callback_receives_formatted_message(void)
{
	struct capture c = { 0 };
	leap_log_fn old = leap_log_set_callback(capture_fn, &c);

	leap_log_set_level(LEAP_LOG_INFO);
	LEAP_ERR("loader", "map %s: %d", "stats", -22);
	leap_log_set_callback(old, NULL);
	T_ASSERT_EQ(c.calls, 1);
	T_ASSERT_EQ(c.level, LEAP_LOG_ERROR);
	T_ASSERT_STR_EQ(c.subsys, "loader");
	T_ASSERT_STR_EQ(c.msg, "map stats: -22");
}

static void test_level_filters_before_callback(void)
{
	struct capture c = { 0 };
	leap_log_fn old = leap_log_set_callback(capture_fn, &c);

	leap_log_set_level(LEAP_LOG_WARN);
	LEAP_INFO("x", "dropped");
	LEAP_DEBUG("x", "dropped");
	LEAP_WARN("x", "kept");
	leap_log_set_level(LEAP_LOG_INFO);
	leap_log_set_callback(old, NULL);
	T_ASSERT_EQ(c.calls, 1);
	T_ASSERT_STR_EQ(c.msg, "kept");
}

static void test_null_restores_default(void)
{
	struct capture c = { 0 };

	leap_log_set_callback(capture_fn, &c);
	T_ASSERT(leap_log_set_callback(NULL, NULL) == capture_fn);
	/* The default sink goes to stderr; the capture must not see this. */
	LEAP_DEBUG("x", "not captured");
	T_ASSERT_EQ(c.calls, 0);
}

static void test_level_parse(void)
{
	T_ASSERT_EQ(leap_log_level_parse("error"), LEAP_LOG_ERROR);
	T_ASSERT_EQ(leap_log_level_parse("debug"), LEAP_LOG_DEBUG);
	T_ASSERT_EQ(leap_log_level_parse("loud"), -EINVAL);
	T_ASSERT_EQ(leap_log_level_parse(NULL), -EINVAL);
	T_ASSERT_STR_EQ(leap_log_level_name(LEAP_LOG_WARN), "warn");
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_callback_receives_formatted_message),
		TAP_CASE(test_level_filters_before_callback),
		TAP_CASE(test_null_restores_default),
		TAP_CASE(test_level_parse),
	};
	return tap_run(cases, TAP_N(cases));
}
