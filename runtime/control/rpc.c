// SPDX-License-Identifier: BSD-3-Clause
/*
 * JSON-RPC 2.0 semantics for leapd's control plane: request validation,
 * method lookup, batches, notifications, answers that may arrive from other
 * threads, and parameter decoding for handlers. Sockets live in
 * rpc_socket.c; this file never touches a file descriptor other than the
 * completion eventfd, which is what lets the unit tests drive it directly.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "rpc_internal.h"

struct rpc_msg {
	struct leap_rpc_server *srv;
	rpc_msg_done_fn on_done; /* NULL once orphaned */
	void *arg;
	json_t *req; /* the parsed value; a batch's elements are borrowed from it */
	bool batch;
	size_t n;      /* calls (1 unless batch) */
	size_t next;   /* next call to start */
	json_t **resp; /* per call: response object, or NULL (notification) */
};

struct leap_rpc_call {
	struct rpc_msg *msg;
	size_t idx;
	json_t *id; /* borrowed from msg->req; NULL for a notification */
	const char *method;
	/* Set by whoever answers; read by the control thread after done_lock. */
	json_t *result;
	int err_code;
	char *err_msg;
	/* Protected by srv->done_lock. */
	bool in_handler;
	bool answered;
	struct leap_rpc_call *next;
};

static void wake_poller(struct leap_rpc_server *srv)
{
	uint64_t one = 1;

	if (write(srv->evfd, &one, sizeof(one)) < 0)
		LEAP_ERR("rpc", "completion eventfd: %s", strerror(errno));
}

int leap_rpc_server_post(struct leap_rpc_server *srv, void (*fn)(void *arg), void *arg)
{
	struct rpc_post *p = malloc(sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->fn = fn;
	p->arg = arg;
	p->next = NULL;
	pthread_mutex_lock(&srv->done_lock);
	if (srv->posts_tail)
		srv->posts_tail->next = p;
	else
		srv->posts_head = p;
	srv->posts_tail = p;
	pthread_mutex_unlock(&srv->done_lock);
	wake_poller(srv);
	return 0;
}

static struct rpc_post *post_pop(struct leap_rpc_server *srv)
{
	struct rpc_post *p;

	pthread_mutex_lock(&srv->done_lock);
	p = srv->posts_head;
	if (p) {
		srv->posts_head = p->next;
		if (!srv->posts_head)
			srv->posts_tail = NULL;
	}
	pthread_mutex_unlock(&srv->done_lock);
	return p;
}

int leap_rpc_server_create(void *ctx, struct leap_rpc_server **out)
{
	struct leap_rpc_server *srv;
	struct epoll_event ev = { .events = EPOLLIN };
	int err;

	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->ctx = ctx;
	srv->listen_fd = -1;
	srv->ep_listen.kind = RPC_EP_LISTENER;
	srv->ep_completion.kind = RPC_EP_COMPLETION;
	pthread_mutex_init(&srv->done_lock, NULL);
	srv->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (srv->evfd < 0) {
		err = -errno;
		goto err_free;
	}
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epfd < 0) {
		err = -errno;
		goto err_evfd;
	}
	ev.data.ptr = &srv->ep_completion;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->evfd, &ev) < 0) {
		err = -errno;
		goto err_epfd;
	}
	*out = srv;
	return 0;

err_epfd:
	close(srv->epfd);
err_evfd:
	close(srv->evfd);
err_free:
	pthread_mutex_destroy(&srv->done_lock);
	free(srv);
	LEAP_ERR("rpc", "server setup: %s", strerror(-err));
	return err;
}

static void timer_free(struct leap_rpc_server *srv, struct rpc_timer *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		srv->timers = t->next;
	if (t->next)
		t->next->prev = t->prev;
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, t->fd, NULL);
	close(t->fd);
	free(t);
}

int leap_rpc_server_timer(struct leap_rpc_server *srv, uint32_t ms, void (*fn)(void *arg),
			  void *arg)
{
	struct itimerspec its = { .it_value = { .tv_sec = ms / 1000,
						.tv_nsec = (long)(ms % 1000) * 1000000 } };
	struct epoll_event ev = { .events = EPOLLIN };
	struct rpc_timer *t;
	int err;

	/* A zero it_value would disarm the timer: "now" is the next nanosecond. */
	if (ms == 0)
		its.it_value.tv_nsec = 1;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->ep.kind = RPC_EP_TIMER;
	t->fn = fn;
	t->arg = arg;
	t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (t->fd < 0) {
		err = -errno;
		free(t);
		return err;
	}
	ev.data.ptr = &t->ep;
	if (timerfd_settime(t->fd, 0, &its, NULL) < 0 ||
	    epoll_ctl(srv->epfd, EPOLL_CTL_ADD, t->fd, &ev) < 0) {
		err = -errno;
		close(t->fd);
		free(t);
		return err;
	}
	t->next = srv->timers;
	if (t->next)
		t->next->prev = t;
	srv->timers = t;
	return 0;
}

static void timer_fire(struct leap_rpc_server *srv, struct rpc_timer *t)
{
	void (*fn)(void *arg) = t->fn;
	void *arg = t->arg;

	/* Freed before the call: fn may add timers or destroy nothing of ours. */
	timer_free(srv, t);
	fn(arg);
}

void leap_rpc_server_destroy(struct leap_rpc_server *srv)
{
	if (!srv)
		return;
	while (srv->timers)
		timer_free(srv, srv->timers);
	for (struct rpc_post *p; (p = post_pop(srv)) != NULL;)
		free(p);
	rpc_socket_shutdown(srv);
	if (srv->live_msgs)
		LEAP_WARN("rpc", "%u request(s) still unanswered at shutdown", srv->live_msgs);
	close(srv->epfd);
	close(srv->evfd);
	pthread_mutex_destroy(&srv->done_lock);
	free(srv->methods);
	free(srv);
}

static const struct leap_rpc_method *find_method(const struct leap_rpc_server *srv,
						 const char *name)
{
	for (size_t i = 0; i < srv->nmethods; i++)
		if (strcmp(srv->methods[i]->name, name) == 0)
			return srv->methods[i];
	return NULL;
}

int leap_rpc_server_register(struct leap_rpc_server *srv, const struct leap_rpc_method *methods,
			     size_t n)
{
	const struct leap_rpc_method **m;

	for (size_t i = 0; i < n; i++) {
		if (find_method(srv, methods[i].name))
			return -EEXIST;
		for (size_t j = 0; j < i; j++)
			if (strcmp(methods[i].name, methods[j].name) == 0)
				return -EEXIST;
	}
	m = realloc(srv->methods, (srv->nmethods + n) * sizeof(*m));
	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		m[srv->nmethods + i] = &methods[i];
	srv->methods = m;
	srv->nmethods += n;
	return 0;
}

int leap_rpc_server_fd(const struct leap_rpc_server *srv)
{
	return srv->epfd;
}

int leap_rpc_server_poll(struct leap_rpc_server *srv, int timeout_ms)
{
	struct epoll_event evs[16];
	int n, handled = 0;

	n = epoll_wait(srv->epfd, evs, LEAP_ARRAY_SIZE(evs), timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct rpc_ep *ep = evs[i].data.ptr;

		if (ep->kind == RPC_EP_COMPLETION) {
			uint64_t v;

			/* Reset first: an answer queued after this read re-arms it. */
			if (read(srv->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				LEAP_WARN("rpc", "completion eventfd: %s", strerror(errno));
			handled += rpc_drain_completions(srv);
		} else if (ep->kind == RPC_EP_TIMER) {
			timer_fire(srv, (struct rpc_timer *)ep);
			handled++;
		} else {
			/*
			 * An earlier event of this batch may have closed this
			 * client: it stays allocated (marked dead) until the
			 * reap below.
			 */
			rpc_socket_event(srv, ep, evs[i].events);
			handled++;
		}
	}
	rpc_socket_reap(srv);
	return handled;
}

/* ---- responses ----------------------------------------------------------- */

json_t *rpc_error_response(json_t *id, int code, const char *msg)
{
	return json_pack("{s:s, s:O?, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id, "error", "code",
			 code, "message", msg);
}

static json_t *call_response(struct leap_rpc_call *call)
{
	json_t *resp;

	if (call->err_code)
		return rpc_error_response(call->id, call->err_code,
					  call->err_msg ? call->err_msg : "error");
	resp = json_pack("{s:s, s:O?, s:o}", "jsonrpc", "2.0", "id", call->id, "result",
			 call->result ? call->result : json_true());
	call->result = NULL; /* json_pack "o" stole it, also on failure */
	return resp;
}

static void msg_free(struct rpc_msg *msg)
{
	for (size_t i = 0; i < msg->n; i++)
		json_decref(msg->resp[i]);
	free(msg->resp);
	json_decref(msg->req);
	msg->srv->live_msgs--;
	free(msg);
}

static void msg_finish(struct rpc_msg *msg)
{
	json_t *out = NULL;

	if (msg->batch) {
		out = json_array();
		for (size_t i = 0; out && i < msg->n; i++)
			if (msg->resp[i])
				json_array_append(out, msg->resp[i]);
		/* A batch of notifications only is answered with nothing at all. */
		if (out && json_array_size(out) == 0) {
			json_decref(out);
			out = NULL;
		}
	} else if (msg->resp[0]) {
		out = json_incref(msg->resp[0]);
	}
	if (msg->on_done)
		msg->on_done(msg->arg, out);
	json_decref(out);
	msg_free(msg);
}

struct rpc_msg *rpc_msg_new(struct leap_rpc_server *srv, json_t *req, rpc_msg_done_fn on_done,
			    void *arg)
{
	struct rpc_msg *msg = calloc(1, sizeof(*msg));

	if (!msg)
		goto err_req;
	msg->srv = srv;
	msg->on_done = on_done;
	msg->arg = arg;
	msg->req = req;
	msg->batch = json_is_array(req);
	msg->n = msg->batch ? json_array_size(req) : 1;
	msg->resp = calloc(msg->n ? msg->n : 1, sizeof(*msg->resp));
	if (!msg->resp)
		goto err_msg;
	srv->live_msgs++;
	return msg;

err_msg:
	free(msg);
err_req:
	json_decref(req);
	return NULL;
}

void rpc_msg_orphan(struct rpc_msg *msg)
{
	msg->on_done = NULL;
}

/* A valid JSON-RPC id: string, number or null (null is allowed but discouraged). */
static bool id_is_valid(const json_t *id)
{
	return json_is_string(id) || json_is_number(id) || json_is_null(id);
}

/*
 * Validate one request and start its handler. Returns the call when a
 * handler is running it (answered or not), NULL when the request was
 * answered here (its response, if any, is in msg->resp[idx]).
 */
static struct leap_rpc_call *call_start(struct rpc_msg *msg, size_t idx, json_t *req)
{
	const struct leap_rpc_method *m;
	struct leap_rpc_call *call;
	json_t *id, *jv, *method, *params;
	const char *why = NULL;

	if (!json_is_object(req)) {
		msg->resp[idx] = rpc_error_response(NULL, LEAP_RPC_INVALID_REQUEST,
						    "invalid request: not an object");
		return NULL;
	}
	id = json_object_get(req, "id");
	jv = json_object_get(req, "jsonrpc");
	method = json_object_get(req, "method");
	params = json_object_get(req, "params");
	if (id && !id_is_valid(id)) {
		why = "invalid request: 'id' must be a string, a number or null";
		id = NULL;
	} else if (!json_is_string(jv) || strcmp(json_string_value(jv), "2.0") != 0) {
		why = "invalid request: 'jsonrpc' must be \"2.0\"";
	} else if (!json_is_string(method)) {
		why = "invalid request: 'method' must be a string";
	} else if (params && !json_is_object(params) && !json_is_array(params)) {
		why = "invalid request: 'params' must be an object or an array";
	}
	if (why) {
		/* Invalid requests are answered even without an id (spec section 5). */
		msg->resp[idx] = rpc_error_response(id, LEAP_RPC_INVALID_REQUEST, why);
		return NULL;
	}
	m = find_method(msg->srv, json_string_value(method));
	if (!m) {
		char buf[160];

		if (!id)
			return NULL; /* a notification is never answered, not even with an error */
		snprintf(buf, sizeof(buf), "method '%s' not found", json_string_value(method));
		msg->resp[idx] = rpc_error_response(id, LEAP_RPC_METHOD_NOT_FOUND, buf);
		return NULL;
	}
	call = calloc(1, sizeof(*call));
	if (!call) {
		if (id)
			msg->resp[idx] =
			    rpc_error_response(id, LEAP_RPC_INTERNAL_ERROR, "out of memory");
		return NULL;
	}
	call->msg = msg;
	call->idx = idx;
	call->id = id;
	call->method = m->name;
	call->in_handler = true;
	m->fn(call, params);
	return call;
}

/* Control thread: record an answered call's response and free it. */
static void call_retire(struct leap_rpc_call *call)
{
	struct rpc_msg *msg = call->msg;

	if (call->id)
		msg->resp[call->idx] = call_response(call);
	else if (call->err_code)
		LEAP_DEBUG("rpc", "notification %s failed: %s", call->method,
			   call->err_msg ? call->err_msg : "");
	json_decref(call->result);
	free(call->err_msg);
	free(call);
}

void rpc_msg_start(struct rpc_msg *msg)
{
	struct leap_rpc_server *srv = msg->srv;

	if (msg->batch && msg->n == 0) {
		/* "[]" is one invalid request, answered with a single object. */
		msg->batch = false;
		msg->n = 1;
		msg->next = 1;
		msg->resp[0] = rpc_error_response(NULL, LEAP_RPC_INVALID_REQUEST,
						  "invalid request: empty batch");
	}
	while (msg->next < msg->n) {
		size_t idx = msg->next++;
		json_t *req = msg->batch ? json_array_get(msg->req, idx) : msg->req;
		struct leap_rpc_call *call = call_start(msg, idx, req);
		bool answered;

		if (!call)
			continue;
		pthread_mutex_lock(&srv->done_lock);
		call->in_handler = false;
		answered = call->answered;
		pthread_mutex_unlock(&srv->done_lock);
		if (!answered)
			return; /* resumed by rpc_drain_completions() */
		call_retire(call);
	}
	msg_finish(msg);
}

static void call_answer(struct leap_rpc_call *call, json_t *result, int code, char *text)
{
	struct leap_rpc_server *srv = call->msg->srv;
	bool queue;

	pthread_mutex_lock(&srv->done_lock);
	if (call->answered) {
		pthread_mutex_unlock(&srv->done_lock);
		LEAP_ERR("rpc", "%s answered twice; second answer dropped", call->method);
		json_decref(result);
		free(text);
		return;
	}
	call->result = result;
	call->err_code = code;
	call->err_msg = text;
	call->answered = true;
	/* Answered while its handler still runs: rpc_msg_start() picks it up. */
	queue = !call->in_handler;
	if (queue) {
		call->next = NULL;
		if (srv->done_tail)
			srv->done_tail->next = call;
		else
			srv->done_head = call;
		srv->done_tail = call;
	}
	pthread_mutex_unlock(&srv->done_lock);
	if (queue)
		wake_poller(srv);
}

void leap_rpc_call_reply(struct leap_rpc_call *call, json_t *result)
{
	call_answer(call, result, 0, NULL);
}

void leap_rpc_call_error(struct leap_rpc_call *call, int code, const char *fmt, ...)
{
	char *text = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	call_answer(call, NULL, code ? code : LEAP_RPC_INTERNAL_ERROR, text);
}

void *leap_rpc_call_ctx(const struct leap_rpc_call *call)
{
	return call->msg->srv->ctx;
}

const char *leap_rpc_call_method(const struct leap_rpc_call *call)
{
	return call->method;
}

int rpc_drain_completions(struct leap_rpc_server *srv)
{
	int n = 0;

	for (;;) {
		struct leap_rpc_call *call;
		struct rpc_post *post;
		struct rpc_msg *msg;

		/* Posted work first: it usually answers a call, which the loop below then sends. */
		while ((post = post_pop(srv)) != NULL) {
			post->fn(post->arg);
			free(post);
			n++;
		}
		pthread_mutex_lock(&srv->done_lock);
		call = srv->done_head;
		if (call) {
			srv->done_head = call->next;
			if (!srv->done_head)
				srv->done_tail = NULL;
		}
		pthread_mutex_unlock(&srv->done_lock);
		if (!call)
			return n;
		msg = call->msg;
		call_retire(call);
		rpc_msg_start(msg);
		n++;
	}
}

/* ---- in-process entry points ---------------------------------------------- */

struct text_reply {
	leap_rpc_reply_fn fn;
	void *arg;
};

static void text_done(void *arg, json_t *resp)
{
	struct text_reply *tr = arg;
	char *text = resp ? json_dumps(resp, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;

	if (text)
		tr->fn(tr->arg, text, strlen(text));
	free(text);
	free(tr);
}

int leap_rpc_server_submit(struct leap_rpc_server *srv, const char *text, size_t len,
			   leap_rpc_reply_fn reply, void *arg)
{
	struct text_reply *tr;
	struct rpc_msg *msg;
	json_error_t jerr;
	json_t *req;

	tr = malloc(sizeof(*tr));
	if (!tr)
		return -ENOMEM;
	tr->fn = reply;
	tr->arg = arg;
	req = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
	if (!req) {
		char buf[JSON_ERROR_TEXT_LENGTH + 32];
		json_t *resp;

		snprintf(buf, sizeof(buf), "parse error: %s", jerr.text);
		resp = rpc_error_response(NULL, LEAP_RPC_PARSE_ERROR, buf);
		if (!resp) {
			free(tr);
			return -ENOMEM;
		}
		text_done(tr, resp);
		json_decref(resp);
		return 0;
	}
	msg = rpc_msg_new(srv, req, text_done, tr);
	if (!msg) {
		free(tr);
		return -ENOMEM;
	}
	rpc_msg_start(msg);
	return 0;
}

struct sync_reply {
	bool done;
	json_t *resp;
};

static void sync_done(void *arg, json_t *resp)
{
	struct sync_reply *sr = arg;

	sr->done = true;
	sr->resp = json_incref(resp);
}

int leap_rpc_server_call(struct leap_rpc_server *srv, const char *method, json_t *params,
			 json_t **result, char **errmsg)
{
	struct sync_reply sr = { 0 };
	struct rpc_msg *msg;
	json_t *req, *err;
	int code = 0;

	req = json_pack("{s:s, s:i, s:s}", "jsonrpc", "2.0", "id", 1, "method", method);
	if (!req || (params && json_object_set(req, "params", params) < 0)) {
		json_decref(req);
		return LEAP_RPC_INTERNAL_ERROR;
	}
	msg = rpc_msg_new(srv, req, sync_done, &sr);
	if (!msg)
		return LEAP_RPC_INTERNAL_ERROR;
	rpc_msg_start(msg);
	while (!sr.done) {
		int rc = leap_rpc_server_poll(srv, -1);

		if (rc < 0) {
			/* The message still points at sr: it must not answer into it later. */
			rpc_msg_orphan(msg);
			return LEAP_RPC_INTERNAL_ERROR;
		}
	}
	err = json_object_get(sr.resp, "error");
	if (err) {
		code = (int)json_integer_value(json_object_get(err, "code"));
		if (errmsg)
			*errmsg = strdup(json_string_value(json_object_get(err, "message")) ?: "");
	} else if (result) {
		*result = json_incref(json_object_get(sr.resp, "result"));
	}
	json_decref(sr.resp);
	return code ? code : 0;
}

/* ---- parameter decoding ---------------------------------------------------- */

static const char *type_name(enum leap_rpc_param_type t)
{
	switch (t) {
	case LEAP_RPC_STR:
		return "a string";
	case LEAP_RPC_U64:
	case LEAP_RPC_U32:
		return "a non-negative integer";
	case LEAP_RPC_BOOL:
		return "a boolean";
	default:
		return "a value";
	}
}

static int decode_one(struct leap_rpc_call *call, const struct leap_rpc_param *p, json_t *v,
		      void *out)
{
	char *dst = (char *)out + p->offset;
	uint64_t max = p->max ? p->max : (p->type == LEAP_RPC_U32 ? UINT32_MAX : UINT64_MAX);
	json_int_t iv;

	switch (p->type) {
	case LEAP_RPC_STR:
		if (!json_is_string(v))
			goto err_type;
		*(const char **)dst = json_string_value(v);
		return 0;
	case LEAP_RPC_BOOL:
		if (!json_is_boolean(v))
			goto err_type;
		*(bool *)dst = json_is_true(v);
		return 0;
	case LEAP_RPC_JSON:
		*(json_t **)dst = v;
		return 0;
	case LEAP_RPC_U64:
	case LEAP_RPC_U32:
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			goto err_type;
		iv = json_integer_value(v);
		if ((uint64_t)iv < p->min || (uint64_t)iv > max) {
			leap_rpc_call_error(
			    call, LEAP_RPC_INVALID_PARAMS,
			    "invalid params: '%s' must be in [%llu, %llu], got %lld", p->name,
			    (unsigned long long)p->min, (unsigned long long)max, (long long)iv);
			return -EINVAL;
		}
		if (p->type == LEAP_RPC_U32)
			*(uint32_t *)dst = (uint32_t)iv;
		else
			*(uint64_t *)dst = (uint64_t)iv;
		return 0;
	}
err_type:
	leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS, "invalid params: '%s' must be %s",
			    p->name, type_name(p->type));
	return -EINVAL;
}

int leap_rpc_params_decode(struct leap_rpc_call *call, const json_t *params,
			   const struct leap_rpc_param *spec, size_t n, void *out)
{
	const char *key;
	json_t *v;

	if (params && !json_is_object(params)) {
		leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
				    "invalid params: expected an object of named parameters");
		return -EINVAL;
	}
	/* Unknown names are refused so that a typo is not silently a default. */
	json_object_foreach ((json_t *)params, key, v) {
		size_t i;

		for (i = 0; i < n; i++)
			if (strcmp(spec[i].name, key) == 0)
				break;
		if (i == n) {
			leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
					    "invalid params: unknown field '%s'", key);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < n; i++) {
		v = params ? json_object_get(params, spec[i].name) : NULL;
		/* null counts as absent, which lets clients send optional fields uniformly. */
		if (!v || json_is_null(v)) {
			if (spec[i].required) {
				leap_rpc_call_error(call, LEAP_RPC_INVALID_PARAMS,
						    "invalid params: missing required field '%s'",
						    spec[i].name);
				return -EINVAL;
			}
			continue;
		}
		if (decode_one(call, &spec[i], v, out))
			return -EINVAL;
	}
	return 0;
}
