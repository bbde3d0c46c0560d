// SPDX-License-Identifier: BSD-3-Clause
/*
 * leapctl's JSON-RPC 2.0 client: one connection per request, the request
 * written as one newline-terminated line, the answer read until it parses
 * as one JSON value. Every wait is bounded by the caller's timeout so a
 * stuck daemon never hangs a script.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "leapctl_internal.h"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_sock(const char *path, char **errmsg)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(a.sun_path)) {
		if (asprintf(errmsg, "socket path too long: %s", path) < 0)
			*errmsg = NULL;
		return -ENAMETOOLONG;
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		err = -errno;
		close(fd);
		if (asprintf(errmsg, "cannot connect to leapd at %s: %s", path, strerror(-err)) < 0)
			*errmsg = NULL;
		return err;
	}
	return fd;
}

static int write_all(int fd, const char *p, size_t len, long long deadline)
{
	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int left = (int)(deadline - now_ms());
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			return -errno;
		n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Read into *buf (grown as needed) until `done` says the content is
 * complete, the peer closes, or the deadline passes. Returns bytes read,
 * or -errno (-ETIMEDOUT).
 */
static ssize_t read_until(int fd, char **buf, size_t *cap, long long deadline,
			  bool (*done)(const char *buf, size_t len, void *arg), void *arg)
{
	size_t len = 0;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int left = (int)(deadline - now_ms());
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (len + 4097 > *cap) {
			size_t ncap = *cap ? *cap * 2 : 8192;
			char *p = realloc(*buf, ncap);

			if (!p)
				return -ENOMEM;
			*buf = p;
			*cap = ncap;
		}
		if (poll(&pfd, 1, left) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = recv(fd, *buf + len, *cap - len - 1, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		(*buf)[len + (size_t)n] = '\0';
		if (n == 0)
			return (ssize_t)len;
		len += (size_t)n;
		if (done && done(*buf, len, arg))
			return (ssize_t)len;
	}
}

static bool one_value_parsed(const char *buf, size_t len, void *arg)
{
	json_t **out = arg;
	json_error_t e;

	*out = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, &e);
	return *out != NULL;
}

int leapctl_call(const struct leapctl_opts *o, const char *method, json_t *params, json_t **result,
		 char **errmsg)
{
	long long deadline = now_ms() + o->timeout_ms;
	json_t *req, *resp = NULL, *err;
	char *text = NULL, *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	int fd, rc;

	*errmsg = NULL;
	*result = NULL;
	req = json_pack("{s:s, s:i, s:s}", "jsonrpc", "2.0", "id", 1, "method", method);
	if (!req || (params && json_object_set(req, "params", params) < 0)) {
		json_decref(req);
		return -ENOMEM;
	}
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!text)
		return -ENOMEM;
	fd = connect_sock(o->sock, errmsg);
	if (fd < 0) {
		free(text);
		return fd;
	}
	rc = write_all(fd, text, strlen(text), deadline);
	if (!rc)
		rc = write_all(fd, "\n", 1, deadline);
	free(text);
	/*
	 * A broken pipe may mean leapd refused the connection with a reason
	 * (too many clients, out of descriptors) before reading: read it.
	 */
	if (rc && rc != -EPIPE && rc != -ECONNRESET)
		goto out_close;
	n = read_until(fd, &buf, &cap, deadline, one_value_parsed, &resp);
	if (!resp && (rc || n < 0)) {
		if (!rc)
			rc = (int)n;
		goto out_close;
	}
	if (!resp) {
		rc = -EPROTO;
		if (asprintf(errmsg, "leapd closed the connection without a complete answer") < 0)
			*errmsg = NULL;
		goto out_close;
	}
	err = json_object_get(resp, "error");
	if (err) {
		const char *m = json_string_value(json_object_get(err, "message"));

		rc = (int)json_integer_value(json_object_get(err, "code"));
		if (!rc)
			rc = -EPROTO;
		*errmsg = strdup(m ? m : "unknown error");
	} else {
		*result = json_incref(json_object_get(resp, "result"));
		rc = 0;
	}
	json_decref(resp);
out_close:
	if (rc < 0 && rc > -4096 && !*errmsg && !*result) {
		/* Transport failures: say what failed, not just the errno. */
		if (asprintf(errmsg, "talking to leapd at %s: %s", o->sock, strerror(-rc)) < 0)
			*errmsg = NULL;
	}
	free(buf);
	close(fd);
	return rc;
}

int leapctl_raw(const struct leapctl_opts *o, const char *text, char **out)
{
	long long deadline = now_ms() + o->timeout_ms;
	char *errmsg = NULL, *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	int fd, rc;

	*out = NULL;
	fd = connect_sock(o->sock, &errmsg);
	if (fd < 0) {
		fprintf(stderr, "leapctl: %s\n", errmsg ? errmsg : strerror(-fd));
		free(errmsg);
		return fd;
	}
	rc = write_all(fd, text, strlen(text), deadline);
	if (rc)
		goto out_close;
	/* End of our input: lets leapd report a truncated request as a parse error. */
	shutdown(fd, SHUT_WR);
	n = read_until(fd, &buf, &cap, deadline, NULL, NULL);
	if (n < 0 && n != -ETIMEDOUT) {
		rc = (int)n;
		goto out_close;
	}
	if (!buf) {
		buf = strdup("");
		if (!buf) {
			rc = -ENOMEM;
			goto out_close;
		}
	}
	*out = buf;
	buf = NULL;
out_close:
	free(buf);
	close(fd);
	return rc;
}
