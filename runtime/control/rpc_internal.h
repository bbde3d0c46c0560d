/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What rpc.c (messages, dispatch, answers) and rpc_socket.c (listener and
 * connections) share. A "message" is one parsed JSON value off a connection:
 * a single request or a batch. Its calls run in order, one at a time; when
 * the last one has answered, the message builds its response and hands it
 * to its owner through on_done.
 */
#ifndef LEAPIO_RUNTIME_RPC_INTERNAL_H
#define LEAPIO_RUNTIME_RPC_INTERNAL_H

#include <pthread.h>

#include "control/rpc.h"

/* Tags for epoll data: every registered fd points at one of these. */
enum rpc_ep_kind {
	RPC_EP_LISTENER,
	RPC_EP_COMPLETION,
	RPC_EP_CLIENT,
	RPC_EP_TIMER,
};

struct rpc_ep {
	enum rpc_ep_kind kind;
};

struct rpc_msg;
struct rpc_client;

struct rpc_post {
	void (*fn)(void *arg);
	void *arg;
	struct rpc_post *next;
};

struct rpc_timer {
	struct rpc_ep ep; /* first: epoll data points here */
	int fd;		  /* timerfd, one-shot */
	void (*fn)(void *arg);
	void *arg;
	struct rpc_timer *prev, *next;
};

/* Receives the response (NULL when there is none to send); it is freed after the call. */
typedef void (*rpc_msg_done_fn)(void *arg, json_t *response);

struct leap_rpc_server {
	void *ctx;
	const struct leap_rpc_method **methods;
	size_t nmethods;

	int epfd;
	struct rpc_ep ep_completion;
	int evfd; /* eventfd: answers queued by other threads */
	/* Answers from other threads, oldest first; protected by done_lock. */
	pthread_mutex_t done_lock;
	struct leap_rpc_call *done_head, *done_tail;
	struct rpc_post *posts_head, *posts_tail; /* leap_rpc_server_post(), oldest first */

	struct rpc_ep ep_listen;
	int listen_fd;
	int spare_fd; /* /dev/null held while listening: spent to refuse a client on EMFILE */
	char *path;
	struct rpc_client *clients;
	struct rpc_client *grave; /* closed, freed at the end of the poll that closed them */
	unsigned int nclients;
	unsigned int live_msgs;
	struct rpc_timer *timers;
};

/*
 * Wrap `req` (reference taken over) into a message. Nothing runs until
 * rpc_msg_start(). NULL on allocation failure (req is released).
 */
struct rpc_msg *rpc_msg_new(struct leap_rpc_server *srv, json_t *req, rpc_msg_done_fn on_done,
			    void *arg);
/* Run calls until one is pending elsewhere; may finish and free the message before returning. */
void rpc_msg_start(struct rpc_msg *msg);
/* The owner went away: the message runs to completion and its response is dropped. */
void rpc_msg_orphan(struct rpc_msg *msg);

/* Build {"jsonrpc":"2.0","id":id,"error":{"code":..,"message":..}}; id may be NULL (null). */
json_t *rpc_error_response(json_t *id, int code, const char *msg);

/* Apply answers queued by other threads (control thread). Returns how many. */
int rpc_drain_completions(struct leap_rpc_server *srv);

/* rpc_socket.c: handle one epoll event on a listener or client. */
void rpc_socket_event(struct leap_rpc_server *srv, struct rpc_ep *ep, uint32_t events);
/* rpc_socket.c: free connections closed during this poll. */
void rpc_socket_reap(struct leap_rpc_server *srv);
/* rpc_socket.c: drop every connection and the listener. */
void rpc_socket_shutdown(struct leap_rpc_server *srv);

#endif /* LEAPIO_RUNTIME_RPC_INTERNAL_H */
