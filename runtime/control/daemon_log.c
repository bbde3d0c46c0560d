// SPDX-License-Identifier: BSD-3-Clause
/*
 * leapd's log sink behind include/leapio/log.h: one line per message,
 * "2026-01-02T03:04:05.678901Z leapd[pid] level: subsys: message", written
 * with a single write() so lines from reactors and the control thread never
 * interleave (O_APPEND makes that hold for a shared log file too).
 *
 * It also remembers, per thread, the last error logged: a component that
 * fails logs why once, and the RPC that called it can quote that reason to
 * the client instead of a bare errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "leapio/log.h"
#include "control/daemon.h"

static int log_fd = STDERR_FILENO;
static __thread char last_error[256];

static void sink(enum leap_log_level level, const char *subsys, const char *fmt, va_list ap,
		 void *ctx)
{
	char line[1280], msg[1024];
	struct timeval tv;
	struct tm tm;
	int n;

	(void)ctx;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (level == LEAP_LOG_ERROR) {
		size_t len = strnlen(msg, sizeof(last_error) - 1);

		memcpy(last_error, msg, len);
		last_error[len] = '\0';
	}
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
		     "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ leapd[%d] %s: %s: %s\n",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     (long)tv.tv_usec, (int)getpid(), leap_log_level_name(level), subsys, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* Nothing sensible to do if the log itself fails. */
	if (write(log_fd, line, (size_t)n) < 0)
		return;
}

int leap_daemon_log_open(const char *path)
{
	int fd = STDERR_FILENO;

	if (path) {
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd < 0) {
			int err = -errno;

			fprintf(stderr, "leapd: cannot open log file %s: %s\n", path,
				strerror(errno));
			return err;
		}
	}
	log_fd = fd;
	leap_log_set_callback(sink, NULL);
	return 0;
}

void leap_daemon_log_close(void)
{
	leap_log_set_callback(NULL, NULL);
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = STDERR_FILENO;
}

const char *leap_daemon_last_error(void)
{
	return last_error;
}

void leap_daemon_error_clear(void)
{
	last_error[0] = '\0';
}
