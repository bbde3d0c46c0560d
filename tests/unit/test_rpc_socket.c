// SPDX-License-Identifier: BSD-3-Clause
/*
 * The JSON-RPC server over a real Unix socket (runtime/rpc_socket.c):
 * socket file mode and directory, several requests in one write, one
 * request split over writes, recovery after a malformed line, a truncated
 * request at end of stream, a client that disconnects while its answer is
 * pending, and stale socket files. Single-threaded: the test writes,
 * polls the server, then reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/rpc.h"
#include "leapio/log.h"
#include "tap.h"

static void m_echo(struct leap_rpc_call *call, json_t *params)
{
	leap_rpc_call_reply(call, params ? json_incref(params) : json_null());
}

static void *answer_later(void *arg)
{
	usleep(30000);
	leap_rpc_call_reply(arg, json_string("late"));
	return NULL;
}

static void m_slow(struct leap_rpc_call *call, json_t *params)
{
	pthread_t t;

	if (pthread_create(&t, NULL, answer_later, call) != 0) {
		leap_rpc_call_error(call, -EAGAIN, "no thread");
		return;
	}
	pthread_detach(t);
}

static const struct leap_rpc_method methods[] = { { "echo", m_echo }, { "slow", m_slow } };

static char dir[64];
static char path[128];

static struct leap_rpc_server *start(void)
{
	struct leap_rpc_server *srv = NULL;

	snprintf(dir, sizeof(dir), "/tmp/leap-rpc-XXXXXX");
	if (!mkdtemp(dir))
		return NULL;
	/* A directory that does not exist yet: listen creates it 0700. */
	snprintf(path, sizeof(path), "%s/sub/rpc.sock", dir);
	if (leap_rpc_server_create(NULL, &srv) || leap_rpc_server_register(srv, methods, 2) ||
	    leap_rpc_server_listen(srv, path)) {
		leap_rpc_server_destroy(srv);
		return NULL;
	}
	return srv;
}

static void stop(struct leap_rpc_server *srv)
{
	char sub[160];

	leap_rpc_server_destroy(srv);
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	rmdir(sub);
	rmdir(dir);
}

static int connect_to(const char *p)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", p);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void send_str(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		T_FAIL("short write");
}

/*
 * Poll the server and collect what the client receives until `lines`
 * newline-terminated responses arrived or ~2 s passed. Returns the
 * number of lines; buf holds them.
 */
static int collect(struct leap_rpc_server *srv, int fd, char *buf, size_t cap, int lines)
{
	size_t len = 0;
	int got = 0;

	buf[0] = '\0';
	for (int i = 0; i < 200 && got < lines; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		leap_rpc_server_poll(srv, 10);
		if (poll(&p, 1, 0) <= 0)
			continue;
		n = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		got = 0;
		for (size_t k = 0; k < len; k++)
			got += buf[k] == '\n';
	}
	return got;
}

static json_t *line_json(const char *buf, int idx)
{
	const char *p = buf;
	json_error_t e;

	for (int i = 0; i < idx && p; i++) {
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	if (!p)
		return NULL;
	return json_loadb(p, strcspn(p, "\n"), 0, &e);
}

static long long code_of(const json_t *r)
{
	return json_integer_value(json_object_get(json_object_get(r, "error"), "code"));
}

static void test_socket_and_directory_modes(void)
{
	struct leap_rpc_server *srv = start();
	char sub[160];
	struct stat st;

	T_ASSERT(srv);
	T_ASSERT_EQ(stat(path, &st), 0);
	T_ASSERT(S_ISSOCK(st.st_mode));
	T_ASSERT_EQ(st.st_mode & 0777, 0600);
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	T_ASSERT_EQ(stat(sub, &st), 0);
	T_ASSERT_EQ(st.st_mode & 0777, 0700);
	/* A second server on the same live path is refused; the file survives. */
	{
		struct leap_rpc_server *two = NULL;

		T_ASSERT_EQ(leap_rpc_server_create(NULL, &two), 0);
		T_ASSERT_EQ(leap_rpc_server_listen(two, path), -EADDRINUSE);
		leap_rpc_server_destroy(two);
	}
	T_ASSERT_EQ(stat(path, &st), 0);
	stop(srv);
	/* Closing the listener removed the socket file. */
	T_ASSERT(stat(path, &st) < 0);
}

static void test_pipelined_and_split_requests(void)
{
	struct leap_rpc_server *srv = start();
	char buf[4096];
	json_t *r;
	int fd;

	T_ASSERT(srv);
	fd = connect_to(path);
	T_ASSERT(fd >= 0);
	/* Two requests in one write, no newline between them. */
	send_str(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":[1]}"
		     "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\",\"params\":[2]}");
	T_ASSERT_EQ(collect(srv, fd, buf, sizeof(buf), 2), 2);
	r = line_json(buf, 0);
	T_ASSERT_EQ(json_integer_value(json_object_get(r, "id")), 1);
	json_decref(r);
	r = line_json(buf, 1);
	T_ASSERT_EQ(json_integer_value(json_object_get(r, "id")), 2);
	T_ASSERT_EQ(json_integer_value(json_array_get(json_object_get(r, "result"), 0)), 2);
	json_decref(r);
	/* One request split in the middle of a token. */
	send_str(fd, "{\"jsonrpc\":\"2.0\",\"id\":3,\"meth");
	T_ASSERT_EQ(collect(srv, fd, buf, sizeof(buf), 1), 0);
	send_str(fd, "od\":\"echo\",\"params\":{\"k\":tr");
	T_ASSERT_EQ(collect(srv, fd, buf, sizeof(buf), 1), 0);
	send_str(fd, "ue}}\n");
	T_ASSERT_EQ(collect(srv, fd, buf, sizeof(buf), 1), 1);
	r = line_json(buf, 0);
	T_ASSERT_EQ(json_integer_value(json_object_get(r, "id")), 3);
	T_ASSERT(json_is_true(json_object_get(json_object_get(r, "result"), "k")));
	json_decref(r);
	close(fd);
	stop(srv);
}

static void test_malformed_line_then_good_line(void)
{
	struct leap_rpc_server *srv = start();
	char buf[4096];
	json_t *r;
	int fd, other;

	T_ASSERT(srv);
	fd = connect_to(path);
	other = connect_to(path);
	T_ASSERT(fd >= 0 && other >= 0);
	send_str(fd, "{\"jsonrpc\":\"2.0\", garbage here}\n"
		     "{\"jsonrpc\":\"2.0\",\"id\":\"ok\",\"method\":\"echo\"}\n");
	T_ASSERT_EQ(collect(srv, fd, buf, sizeof(buf), 2), 2);
	r = line_json(buf, 0);
	T_ASSERT_EQ(code_of(r), -32700);
	T_ASSERT(json_is_null(json_object_get(r, "id")));
	json_decref(r);
	r = line_json(buf, 1);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(r, "id")), "ok");
	json_decref(r);
	/* Binary junk, then another client is served normally. */
	send_str(fd, "\x01\x02\xff\xfe}}]]\n");
	T_ASSERT_EQ(collect(srv, fd, buf, sizeof(buf), 1), 1);
	r = line_json(buf, 0);
	T_ASSERT_EQ(code_of(r), -32700);
	json_decref(r);
	send_str(other, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"echo\"}\n");
	T_ASSERT_EQ(collect(srv, other, buf, sizeof(buf), 1), 1);
	r = line_json(buf, 0);
	T_ASSERT_EQ(json_integer_value(json_object_get(r, "id")), 9);
	json_decref(r);
	close(fd);
	close(other);
	stop(srv);
}

static void test_framing_of_strings_and_pretty_json(void)
{
	struct leap_rpc_server *srv = start();
	char buf[4096];
	json_t *r;
	int fd;

	T_ASSERT(srv);
	fd = connect_to(path);
	T_ASSERT(fd >= 0);
	/* Brackets and an escaped quote inside strings do not end the value. */
	send_str(fd, "{\"jsonrpc\":\"2.0\",\"id\":\"a]}\\\"{\",\"method\":\"echo\"}");
	T_ASSERT_EQ(collect(srv, fd, buf, sizeof(buf), 1), 1);
	r = line_json(buf, 0);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(r, "id")), "a]}\"{");
	json_decref(r);
	/* Pretty-printed over several lines. */
	send_str(fd, "{\n  \"jsonrpc\": \"2.0\",\n  \"id\": 4,\n  \"method\": \"echo\",\n"
		     "  \"params\": [\n    1\n  ]\n}\n");
	T_ASSERT_EQ(collect(srv, fd, buf, sizeof(buf), 1), 1);
	r = line_json(buf, 0);
	T_ASSERT_EQ(json_integer_value(json_object_get(r, "id")), 4);
	json_decref(r);
	/* An unterminated string ends at the newline; the next line is served. */
	send_str(fd, "{\"jsonrpc\":\"2.0\",\"id\":\"oops\n"
		     "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"echo\"}\n");
	T_ASSERT_EQ(collect(srv, fd, buf, sizeof(buf), 2), 2);
	r = line_json(buf, 0);
	T_ASSERT_EQ(code_of(r), -32700);
	json_decref(r);
	r = line_json(buf, 1);
	T_ASSERT_EQ(json_integer_value(json_object_get(r, "id")), 5);
	json_decref(r);
	close(fd);
	stop(srv);
}

static void test_oversized_request_is_refused(void)
{
	struct leap_rpc_server *srv = start();
	static char chunk[65536];
	size_t sent = 0;
	char buf[4096];
	json_t *r;
	int fd;

	T_ASSERT(srv);
	fd = connect_to(path);
	T_ASSERT(fd >= 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	memset(chunk, '[', sizeof(chunk));
	/* Never closes a bracket: only the size limit can end it. */
	for (int i = 0; i < 4000 && sent <= LEAP_RPC_MAX_REQUEST; i++) {
		ssize_t n = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);

		if (n > 0)
			sent += (size_t)n;
		leap_rpc_server_poll(srv, 1);
	}
	T_ASSERT(sent > LEAP_RPC_MAX_REQUEST);
	T_ASSERT_EQ(collect(srv, fd, buf, sizeof(buf), 1), 1);
	r = line_json(buf, 0);
	T_ASSERT_EQ(code_of(r), -32700);
	json_decref(r);
	close(fd);
	stop(srv);
}

static void test_truncated_request_at_eof(void)
{
	struct leap_rpc_server *srv = start();
	char buf[4096];
	json_t *r;
	int fd;

	T_ASSERT(srv);
	fd = connect_to(path);
	T_ASSERT(fd >= 0);
	send_str(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ec");
	shutdown(fd, SHUT_WR);
	T_ASSERT_EQ(collect(srv, fd, buf, sizeof(buf), 1), 1);
	r = line_json(buf, 0);
	T_ASSERT_EQ(code_of(r), -32700);
	json_decref(r);
	close(fd);
	stop(srv);
}

static void test_disconnect_while_pending(void)
{
	struct leap_rpc_server *srv = start();
	char buf[4096];
	json_t *r;
	int fd;

	T_ASSERT(srv);
	fd = connect_to(path);
	T_ASSERT(fd >= 0);
	send_str(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"slow\"}\n");
	leap_rpc_server_poll(srv, 0);
	close(fd);
	/* The late answer must land nowhere harmful; the server keeps serving. */
	for (int i = 0; i < 10; i++)
		leap_rpc_server_poll(srv, 10);
	fd = connect_to(path);
	T_ASSERT(fd >= 0);
	send_str(fd, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"slow\"}\n");
	T_ASSERT_EQ(collect(srv, fd, buf, sizeof(buf), 1), 1);
	r = line_json(buf, 0);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(r, "result")), "late");
	json_decref(r);
	close(fd);
	stop(srv);
}

static void test_stale_socket_file_is_replaced(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct leap_rpc_server *srv = NULL;
	char p[96];
	int fd;

	snprintf(dir, sizeof(dir), "/tmp/leap-rpc-XXXXXX");
	T_ASSERT(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/stale.sock", dir);
	/* Bound and closed without unlink: what a crashed daemon leaves behind. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", p);
	T_ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);
	T_ASSERT_EQ(leap_rpc_server_create(NULL, &srv), 0);
	T_ASSERT_EQ(leap_rpc_server_listen(srv, p), 0);
	fd = connect_to(p);
	T_ASSERT(fd >= 0);
	close(fd);
	leap_rpc_server_destroy(srv);
	rmdir(dir);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_socket_and_directory_modes),
		TAP_CASE(test_pipelined_and_split_requests),
		TAP_CASE(test_malformed_line_then_good_line),
		TAP_CASE(test_framing_of_strings_and_pretty_json),
		TAP_CASE(test_oversized_request_is_refused),
		TAP_CASE(test_truncated_request_at_eof),
		TAP_CASE(test_disconnect_while_pending),
		TAP_CASE(test_stale_socket_file_is_replaced),
	};

	leap_log_set_level(LEAP_LOG_ERROR);
	return tap_run(cases, TAP_N(cases));
}
