/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * leapd's control plane transport: a JSON-RPC 2.0 server on a Unix stream
 * socket (SPDK's rpc model). Requests may be newline-delimited or simply
 * concatenated; each connection's requests run one after another, in order,
 * and a batch's calls run in order too, so a client may pipeline
 * "bdev_create" then "ns_add" without waiting.
 *
 * Every handler runs on the thread that calls leap_rpc_server_poll() (the
 * daemon's control thread, never a reactor). A handler answers exactly once,
 * with leap_rpc_call_reply() or leap_rpc_call_error(), either before it
 * returns or later from any thread (say, a reactor that finished the change
 * it was sent with leap_reactor_send_msg()); the server delivers the answer
 * on the control thread and only then starts the connection's next request.
 *
 * The same dispatcher runs without a socket: leap_rpc_server_submit() takes
 * request text and hands back response text (unit tests), and
 * leap_rpc_server_call() runs one method synchronously (startup config).
 */
#ifndef LEAPIO_RUNTIME_RPC_H
#define LEAPIO_RUNTIME_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* JSON-RPC 2.0 error codes. Application errors use negative errno values. */
enum leap_rpc_error {
	LEAP_RPC_PARSE_ERROR = -32700,
	LEAP_RPC_INVALID_REQUEST = -32600,
	LEAP_RPC_METHOD_NOT_FOUND = -32601,
	LEAP_RPC_INVALID_PARAMS = -32602,
	LEAP_RPC_INTERNAL_ERROR = -32603,
};

/* Largest request text accepted on a connection before it is answered with a parse error. */
#define LEAP_RPC_MAX_REQUEST (4u << 20)

struct leap_rpc_server;
struct leap_rpc_call;

/*
 * A method handler. `params` is the request's "params" (an object or array)
 * or NULL when absent; it is borrowed for the duration of the handler only.
 * The handler must answer `call` exactly once (now or later).
 */
typedef void (*leap_rpc_handler_fn)(struct leap_rpc_call *call, json_t *params);

struct leap_rpc_method {
	const char *name;
	leap_rpc_handler_fn fn;
};

/*
 * Create a server with no socket. `ctx` is handed to handlers through
 * leap_rpc_call_ctx(). Returns 0 or -errno.
 */
int leap_rpc_server_create(void *ctx, struct leap_rpc_server **out);

/*
 * Stop accepting, drop every connection and free the server. Calls still
 * unanswered must not be answered afterwards: quiesce whatever would answer
 * them (the reactors) first. NULL is a no-op.
 */
void leap_rpc_server_destroy(struct leap_rpc_server *srv);

/*
 * Add `n` methods. The array is referenced, not copied: it must outlive the
 * server. -EEXIST if a name is already registered, -ENOMEM.
 */
int leap_rpc_server_register(struct leap_rpc_server *srv, const struct leap_rpc_method *methods,
			     size_t n);

/*
 * Listen on a Unix stream socket at `path`: the parent directory is created
 * with mode 0700 if missing, a stale socket file is replaced (a live one,
 * answering connect(), gives -EADDRINUSE) and the socket is made 0600.
 */
int leap_rpc_server_listen(struct leap_rpc_server *srv, const char *path);

/*
 * Stop accepting new connections and unlink the socket file. Established
 * connections keep being served until leap_rpc_server_destroy().
 */
void leap_rpc_server_close_listener(struct leap_rpc_server *srv);

/*
 * A file descriptor that polls readable whenever leap_rpc_server_poll() has
 * work (an epoll fd covering the listener, connections and completions).
 */
int leap_rpc_server_fd(const struct leap_rpc_server *srv);

/*
 * Handle what is ready, waiting at most `timeout_ms` (-1: forever, 0: no
 * wait) for something to become ready. Must always be called from the same
 * thread. Returns the number of events handled or -errno.
 */
int leap_rpc_server_poll(struct leap_rpc_server *srv, int timeout_ms);

/*
 * Run fn(arg) on the polling thread after `ms` milliseconds (a handler
 * that must wait, e.g. stats over a window, answers from there instead of
 * blocking the control thread). Timers still pending at destroy are
 * dropped without running. 0 or -errno.
 */
int leap_rpc_server_timer(struct leap_rpc_server *srv, uint32_t ms, void (*fn)(void *arg),
			  void *arg);

/*
 * Run fn(arg) on the polling thread soon. Safe from any thread: this is how
 * work finished on a reactor hands its result back to the control thread
 * (which then updates its records and answers the call). 0 or -ENOMEM.
 * Posts still queued at destroy are dropped without running.
 */
int leap_rpc_server_post(struct leap_rpc_server *srv, void (*fn)(void *arg), void *arg);

/* Receives a complete response text (no trailing newline), on the polling thread. */
typedef void (*leap_rpc_reply_fn)(void *arg, const char *text, size_t len);

/*
 * Process request text (one JSON value: a request or a batch) as if it had
 * arrived on a connection. `reply` is called once with the response when
 * every call has answered (maybe before this returns; else during a later
 * leap_rpc_server_poll()), or never when there is nothing to answer (only
 * notifications). Returns 0, or -ENOMEM.
 */
int leap_rpc_server_submit(struct leap_rpc_server *srv, const char *text, size_t len,
			   leap_rpc_reply_fn reply, void *arg);

/*
 * Run one method synchronously, polling the server until it answers.
 * `params` is borrowed. On success returns 0 and stores the result in
 * *result (owned by the caller; may be NULL if result is NULL). On failure
 * returns the JSON-RPC error code (never 0) and stores the error message in
 * *errmsg (malloc'ed, owned by the caller) when errmsg is non-NULL.
 */
int leap_rpc_server_call(struct leap_rpc_server *srv, const char *method, json_t *params,
			 json_t **result, char **errmsg);

/* The `ctx` given to leap_rpc_server_create(). */
void *leap_rpc_call_ctx(const struct leap_rpc_call *call);
/* The method name being called (valid until the call is answered). */
const char *leap_rpc_call_method(const struct leap_rpc_call *call);

/*
 * Answer successfully. Takes ownership of `result` (NULL answers `true`).
 * Safe from any thread. After this the call must not be touched.
 */
void leap_rpc_call_reply(struct leap_rpc_call *call, json_t *result);

/*
 * Answer with an error: `code` is a LEAP_RPC_* value or a negative errno, the
 * message is printf-formatted and should name the object or field ("bdev
 * 'x' not found"). Safe from any thread. After this the call must not be
 * touched.
 */
__attribute__((format(printf, 3, 4))) void leap_rpc_call_error(struct leap_rpc_call *call, int code,
							       const char *fmt, ...);

/* ---- parameter decoding ------------------------------------------------ */

enum leap_rpc_param_type {
	LEAP_RPC_STR,  /* const char * (borrowed from params: valid during the handler) */
	LEAP_RPC_U64,  /* uint64_t; accepts non-negative integers */
	LEAP_RPC_U32,  /* uint32_t */
	LEAP_RPC_BOOL, /* bool */
	LEAP_RPC_JSON, /* json_t * (borrowed), any type */
};

struct leap_rpc_param {
	const char *name;
	enum leap_rpc_param_type type;
	bool required;
	size_t offset;	   /* where in the caller's struct the value goes (offsetof) */
	uint64_t min, max; /* integers: inclusive range when max != 0 */
};

/* Spec entry for field `fld` of struct `st`, named `nm` in the request. */
#define LEAP_RPC_PARAM(nm, ty, req, st, fld)                                                       \
	{                                                                                          \
		.name = (nm), .type = (ty), .required = (req), .offset = offsetof(st, fld)         \
	}
/* The same with an inclusive integer range. */
#define LEAP_RPC_PARAM_RANGE(nm, ty, req, st, fld, lo, hi)                                         \
	{                                                                                          \
		.name = (nm), .type = (ty), .required = (req), .offset = offsetof(st, fld),        \
		.min = (lo), .max = (hi)                                                           \
	}

/*
 * Decode `params` (an object, or NULL/absent when nothing is required) into
 * the struct at `out` by `spec`. Fields not present keep their values, so
 * pre-fill defaults. Unknown fields, wrong types and out-of-range integers
 * are errors. On error the call has already been answered with
 * LEAP_RPC_INVALID_PARAMS and a message naming the field; returns -EINVAL.
 */
int leap_rpc_params_decode(struct leap_rpc_call *call, const json_t *params,
			   const struct leap_rpc_param *spec, size_t n, void *out);

#endif /* LEAPIO_RUNTIME_RPC_H */
