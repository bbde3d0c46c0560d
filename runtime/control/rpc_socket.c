// SPDX-License-Identifier: BSD-3-Clause
/*
 * The Unix-socket side of the JSON-RPC server: the listener, and for each
 * connection an input buffer parsed as a stream of JSON values (newline
 * separated or not) and an output buffer of newline-terminated responses.
 *
 * A connection runs one message at a time: while its message is unanswered
 * or its response is not fully written, it reads nothing more. That keeps
 * requests in order, bounds every buffer, and means a client that never
 * reads its answers only ever stalls itself. Values are delimited by a
 * small incremental scanner before jansson parses them, so a malformed
 * value is answered with a parse error and skipped on its own, and a large
 * one is scanned once, not re-parsed on every read.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "rpc_internal.h"

#define RPC_MAX_CLIENTS 128
#define RPC_READ_CHUNK	65536

struct rpc_client {
	struct rpc_ep ep; /* first: epoll data points here */
	struct leap_rpc_server *srv;
	struct rpc_client *prev, *next;
	int fd;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off;
	struct rpc_msg *active; /* the message being run, not yet answered */
	uint32_t interest;	/* epoll events currently registered */
	bool eof;		/* peer finished sending */
	/* Framing state of the value being received (see frame_next()). */
	size_t scan;
	int depth;
	bool in_str, esc, container;
	bool closing; /* close once the output is flushed */
	bool dead;    /* closed; freed after the current poll */
	bool in_pump;
};

static void client_pump(struct rpc_client *c);
static void client_update(struct rpc_client *c);

static void client_close(struct rpc_client *c)
{
	if (c->dead)
		return;
	c->dead = true;
	if (c->active) {
		rpc_msg_orphan(c->active);
		c->active = NULL;
	}
	epoll_ctl(c->srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	/* Unlink now, free later: an event for it may still sit in this poll's batch. */
	if (c->prev)
		c->prev->next = c->next;
	else
		c->srv->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->srv->nclients--;
	c->prev = NULL;
	c->next = c->srv->grave;
	c->srv->grave = c;
	free(c->in);
	free(c->out);
	c->in = NULL;
	c->out = NULL;
}

static int out_append(struct rpc_client *c, const char *text, size_t len)
{
	char *p;

	/* The previous response is always fully written before a new one is queued. */
	p = malloc(len + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p, text, len);
	p[len] = '\n';
	free(c->out);
	c->out = p;
	c->out_len = len + 1;
	c->out_off = 0;
	return 0;
}

static void send_json(struct rpc_client *c, json_t *resp)
{
	char *text = json_dumps(resp, JSON_COMPACT | JSON_REAL_PRECISION(12));

	if (!text || out_append(c, text, strlen(text)) < 0) {
		LEAP_ERR("rpc", "client %d: out of memory for a response", c->fd);
		c->closing = true;
	}
	free(text);
}

static void send_error(struct rpc_client *c, int code, const char *fmt, const char *detail)
{
	char buf[256];
	json_t *resp;

	snprintf(buf, sizeof(buf), fmt, detail);
	resp = rpc_error_response(NULL, code, buf);
	if (resp)
		send_json(c, resp);
	else
		c->closing = true;
	json_decref(resp);
}

static void msg_done(void *arg, json_t *resp)
{
	struct rpc_client *c = arg;

	c->active = NULL;
	if (resp)
		send_json(c, resp);
	/* Answered from a later poll (not inside client_pump): resume this connection. */
	if (!c->in_pump) {
		client_pump(c);
		client_update(c);
	}
}

static void in_consume(struct rpc_client *c, size_t n)
{
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
}

static size_t skip_space(const char *p, size_t len)
{
	size_t i = 0;

	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	return i;
}

/*
 * Find where the value at the start of the input ends, scanning only bytes
 * not seen before (the state persists across reads), so a huge request
 * costs one pass rather than a re-parse per read. An object or array ends
 * at its matching bracket (brackets inside strings do not count); anything
 * else — a scalar, or junk — ends at the next newline. A raw newline
 * inside a string is never valid JSON, so it ends that value too: a broken
 * line costs only itself on a newline-delimited stream.
 *
 * Returns true with *span (bytes to parse) and *consume (bytes to drop,
 * which may include a newline) when a value is delimited.
 */
static bool frame_next(struct rpc_client *c, size_t *span, size_t *consume)
{
	for (; c->scan < c->in_len; c->scan++) {
		char ch = c->in[c->scan];

		if (c->scan == 0)
			c->container = ch == '{' || ch == '[';
		if (!c->container || (c->in_str && ch == '\n')) {
			if (ch == '\n') {
				*span = c->scan;
				*consume = c->scan + 1;
				return true;
			}
			continue;
		}
		if (c->in_str) {
			if (c->esc)
				c->esc = false;
			else if (ch == '\\')
				c->esc = true;
			else if (ch == '"')
				c->in_str = false;
			continue;
		}
		if (ch == '"') {
			c->in_str = true;
		} else if (ch == '{' || ch == '[') {
			c->depth++;
		} else if (ch == '}' || ch == ']') {
			if (--c->depth == 0) {
				*span = c->scan + 1;
				*consume = c->scan + 1;
				return true;
			}
		}
	}
	/* The peer is done: whatever is left is the last (maybe truncated) value. */
	if (c->eof && c->in_len) {
		*span = c->in_len;
		*consume = c->in_len;
		return true;
	}
	return false;
}

static void frame_reset(struct rpc_client *c)
{
	c->scan = 0;
	c->depth = 0;
	c->in_str = false;
	c->esc = false;
	c->container = false;
}

/* Start as many queued requests as the one-at-a-time rule allows. */
static void client_pump(struct rpc_client *c)
{
	c->in_pump = true;
	while (!c->dead && !c->active && c->out_len == 0 && !c->closing) {
		size_t span, consume;
		json_error_t jerr;
		struct rpc_msg *msg;
		json_t *req;

		if (c->scan == 0)
			in_consume(c, skip_space(c->in, c->in_len));
		if (c->in_len == 0)
			break;
		if (!frame_next(c, &span, &consume)) {
			if (c->in_len < LEAP_RPC_MAX_REQUEST)
				break; /* wait for the rest */
			send_error(c, LEAP_RPC_PARSE_ERROR,
				   "parse error: request larger than %s bytes", "4194304");
			c->closing = true;
			break;
		}
		req = json_loadb(c->in, span, JSON_DECODE_ANY, &jerr);
		in_consume(c, consume);
		frame_reset(c);
		if (!req) {
			send_error(c, LEAP_RPC_PARSE_ERROR, "parse error: %s", jerr.text);
			continue;
		}
		msg = rpc_msg_new(c->srv, req, msg_done, c);
		if (!msg) {
			send_error(c, LEAP_RPC_INTERNAL_ERROR, "internal error: %s",
				   "out of memory");
			continue;
		}
		c->active = msg;
		rpc_msg_start(msg); /* may answer (msg_done) before returning */
	}
	c->in_pump = false;
}

static void client_flush(struct rpc_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			LEAP_DEBUG("rpc", "client %d: send: %s", c->fd, strerror(errno));
			client_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	c->out_len = 0;
	c->out_off = 0;
}

/* Flush, pick up further requests, close when finished, and fix the epoll interest. */
static void client_update(struct rpc_client *c)
{
	uint32_t want = 0;

	for (;;) {
		if (c->dead)
			return;
		if (c->out_len)
			client_flush(c);
		if (c->dead || c->out_len)
			break;
		if (c->closing) {
			client_close(c);
			return;
		}
		if (c->active || c->in_len == 0)
			break;
		/* The flush made room for the next queued request. */
		client_pump(c);
		if (!c->out_len && !c->closing)
			break;
	}
	if (c->dead)
		return;
	if (c->eof && !c->active && c->out_len == 0 && c->in_len == 0) {
		client_close(c);
		return;
	}
	if (c->out_len)
		want |= EPOLLOUT;
	else if (!c->active && !c->eof)
		want |= EPOLLIN;
	if (want != c->interest) {
		struct epoll_event ev = { .events = want, .data.ptr = &c->ep };

		if (epoll_ctl(c->srv->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
			LEAP_ERR("rpc", "client %d: epoll: %s", c->fd, strerror(errno));
			client_close(c);
			return;
		}
		c->interest = want;
	}
}

static void client_read(struct rpc_client *c)
{
	ssize_t n;

	if (c->in_cap - c->in_len < RPC_READ_CHUNK && c->in_cap <= LEAP_RPC_MAX_REQUEST) {
		size_t cap = c->in_cap + RPC_READ_CHUNK;
		char *p = realloc(c->in, cap);

		if (!p) {
			LEAP_ERR("rpc", "client %d: out of memory", c->fd);
			client_close(c);
			return;
		}
		c->in = p;
		c->in_cap = cap;
	}
	n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		LEAP_DEBUG("rpc", "client %d: recv: %s", c->fd, strerror(errno));
		client_close(c);
		return;
	}
	if (n == 0) {
		c->eof = true;
		/* Whatever is left must parse now; a truncated value gets its parse error. */
	}
	c->in_len += (size_t)n;
	client_pump(c);
}

/* Tell a client we will not serve why, as a JSON-RPC error (id null), and close it. */
static void refuse(int fd, const char *why)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf),
			 "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32000,"
			 "\"message\":\"%s\"}}\n",
			 why);

	/* A fresh socket has room for one short line; a peer that is gone costs nothing. */
	if (n > 0 && send(fd, buf, (size_t)LEAP_MIN(n, (int)sizeof(buf) - 1),
			  MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		LEAP_DEBUG("rpc", "refusal not delivered: %s", strerror(errno));
	close(fd);
}

/*
 * accept() found no free descriptor: the pending connection would keep the
 * listener readable and the control loop spinning (and logging). Spend the
 * spare descriptor on it, answer it with the reason, and take the spare
 * back; if not even that works, rest 10 ms so the loop cannot spin. The log
 * says so at most 10 times a second.
 */
static void accept_out_of_fds(struct leap_rpc_server *srv, int err)
{
	int fd;

	LEAP_WARN_RL("rpc", "accept: %s: control clients are refused until descriptors are free",
		     strerror(err));
	if (srv->spare_fd >= 0) {
		close(srv->spare_fd);
		srv->spare_fd = -1;
	}
	fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0)
		refuse(fd, "leapd is out of file descriptors: try again later");
	srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || srv->spare_fd < 0)
		usleep(10000);
}

static void accept_clients(struct leap_rpc_server *srv)
{
	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN };
		struct rpc_client *c;
		int fd;

		fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				accept_out_of_fds(srv, errno);
			else if (errno != EAGAIN && errno != EINTR)
				LEAP_WARN_RL("rpc", "accept: %s", strerror(errno));
			return;
		}
		if (srv->nclients >= RPC_MAX_CLIENTS) {
			LEAP_WARN_RL("rpc", "refusing connection: %d clients already",
				     RPC_MAX_CLIENTS);
			refuse(fd, "leapd has too many control clients: try again later");
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->ep.kind = RPC_EP_CLIENT;
		c->srv = srv;
		c->fd = fd;
		c->interest = EPOLLIN;
		ev.data.ptr = &c->ep;
		if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			LEAP_ERR("rpc", "epoll add: %s", strerror(errno));
			close(fd);
			free(c);
			continue;
		}
		c->next = srv->clients;
		if (c->next)
			c->next->prev = c;
		srv->clients = c;
		srv->nclients++;
	}
}

void rpc_socket_event(struct leap_rpc_server *srv, struct rpc_ep *ep, uint32_t events)
{
	struct rpc_client *c;

	if (ep->kind == RPC_EP_LISTENER) {
		if (srv->listen_fd >= 0)
			accept_clients(srv);
		return;
	}
	c = (struct rpc_client *)ep;
	if (c->dead)
		return;
	if (events & EPOLLIN)
		client_read(c);
	else if (events & (EPOLLHUP | EPOLLERR)) {
		/* Peer gone both ways: nothing more can be delivered to it. */
		client_close(c);
	}
	client_update(c);
}

void rpc_socket_reap(struct leap_rpc_server *srv)
{
	while (srv->grave) {
		struct rpc_client *c = srv->grave;

		srv->grave = c->next;
		free(c);
	}
}

static int make_parent_dir(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	/* Create missing ancestors too; only directories we create get 0700. */
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* A socket file may be left over from a crash; one that still answers belongs to a live leapd. */
static int clear_stale_socket(const struct sockaddr_un *addr)
{
	struct stat st;
	int fd, rc;

	if (lstat(addr->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	close(fd);
	if (rc == 0)
		return -EADDRINUSE;
	if (unlink(addr->sun_path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int leap_rpc_server_listen(struct leap_rpc_server *srv, const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &srv->ep_listen };
	mode_t old_mask;
	int fd, err;

	if (srv->listen_fd >= 0)
		return -EALREADY;
	if (strlen(path) >= sizeof(addr.sun_path)) {
		LEAP_ERR("rpc", "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	err = make_parent_dir(path);
	if (err) {
		LEAP_ERR("rpc", "cannot create the directory of %s: %s", path, strerror(-err));
		return err;
	}
	err = clear_stale_socket(&addr);
	if (err) {
		LEAP_ERR("rpc", "%s: %s", path,
			 err == -EADDRINUSE ? "another leapd is listening there" : strerror(-err));
		return err;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* The mode is fixed at bind(); no window in which others could connect. */
	old_mask = umask(0177);
	err = bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ? -errno : 0;
	umask(old_mask);
	if (err)
		goto err_close;
	if (listen(fd, 64) < 0) {
		err = -errno;
		goto err_unlink;
	}
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		err = -errno;
		goto err_unlink;
	}
	srv->path = strdup(path);
	if (!srv->path) {
		err = -ENOMEM;
		epoll_ctl(srv->epfd, EPOLL_CTL_DEL, fd, NULL);
		goto err_unlink;
	}
	srv->listen_fd = fd;
	srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	LEAP_INFO("rpc", "listening on %s", path);
	return 0;

err_unlink:
	unlink(path);
err_close:
	close(fd);
	LEAP_ERR("rpc", "listen on %s: %s", path, strerror(-err));
	return err;
}

void leap_rpc_server_close_listener(struct leap_rpc_server *srv)
{
	if (srv->listen_fd < 0)
		return;
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, srv->listen_fd, NULL);
	close(srv->listen_fd);
	srv->listen_fd = -1;
	if (srv->spare_fd >= 0)
		close(srv->spare_fd);
	srv->spare_fd = -1;
	if (srv->path && unlink(srv->path) < 0 && errno != ENOENT)
		LEAP_WARN("rpc", "unlink %s: %s", srv->path, strerror(errno));
	free(srv->path);
	srv->path = NULL;
}

void rpc_socket_shutdown(struct leap_rpc_server *srv)
{
	leap_rpc_server_close_listener(srv);
	while (srv->clients)
		client_close(srv->clients);
	rpc_socket_reap(srv);
}
