// SPDX-License-Identifier: BSD-3-Clause
/*
 * leapd's lifecycle on the control thread: bring-up in dependency order
 * (reactors, methods, config, then sockets, so that anything able to
 * connect sees the configured state), the control loop (RPC server +
 * signalfd, polled together), and shutdown in reverse: stop accepting,
 * drain, stop reactors, flush backends, free.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/fsutil.h"
#include "leapio/log.h"
#include "backend/bdev.h"
#include "control/daemon.h"
#include "policy/policy.h"
#include "core/reactor.h"

int leap_daemon_parse_cpu_list(const char *list, int *cpus, int max)
{
	const char *p = list;
	int n = 0;

	while (*p) {
		char *end;
		long lo, hi;

		lo = strtol(p, &end, 10);
		if (end == p || lo < 0 || lo > 4095)
			goto err_bad;
		hi = lo;
		p = end;
		if (*p == '-') {
			hi = strtol(p + 1, &end, 10);
			if (end == p + 1 || hi < lo || hi > 4095)
				goto err_bad;
			p = end;
		}
		for (long c = lo; c <= hi; c++) {
			for (int i = 0; i < n; i++)
				if (cpus[i] == c)
					goto err_bad;
			if (n >= max) {
				LEAP_ERR("leapd", "CPU list '%s': more than %d CPUs", list, max);
				return -EINVAL;
			}
			cpus[n++] = (int)c;
		}
		if (*p == ',')
			p++;
		else if (*p)
			goto err_bad;
	}
	if (n == 0)
		goto err_bad;
	return n;

err_bad:
	LEAP_ERR("leapd", "bad CPU list '%s' (want e.g. 0,2-3, no repeats)", list);
	return -EINVAL;
}

/* The command line's tenant socket: an shm listener that config_save leaves out. */
static int tenant_listen(struct leap_daemon *d, const char *path)
{
	char err[256] = "";
	json_t *params = json_pack("{s:s, s:s}", "type", "shm", "path", path);
	int rc;

	if (!params)
		return -ENOMEM;
	/* --tenant-group: tenants of that group reach the socket without being root. */
	if (d->opts.tenant_group)
		json_object_set_new(params, "group", json_string(d->opts.tenant_group));
	rc = leap_daemon_listener_add(d, params, false, NULL, err, sizeof(err));
	json_decref(params);
	if (rc)
		LEAP_ERR("leapd", "tenant socket: %s", err[0] ? err : strerror(-rc));
	return rc;
}

static int start_reactors(struct leap_daemon *d)
{
	int cpus[LEAPD_MAX_REACTORS];
	int n = 1, err;

	cpus[0] = -1;
	if (d->opts.cpu_list) {
		n = leap_daemon_parse_cpu_list(d->opts.cpu_list, cpus, LEAPD_MAX_REACTORS);
		if (n < 0)
			return n;
	}
	/*
	 * n <= LEAPD_MAX_REACTORS (parse_cpu_list's max), said again in the
	 * loop bound so the compiler sees that "leap-r%d" fits a thread name.
	 */
	_Static_assert(LEAPD_MAX_REACTORS <= 100, "reactor names are leap-r0..leap-r99");
	for (int i = 0; i < n && i < LEAPD_MAX_REACTORS; i++) {
		char name[16];
		struct leap_reactor_opts ro = { .cpu = cpus[i], .name = name };
		struct leap_reactor *r;

		snprintf(name, sizeof(name), "leap-r%d", i);
		err = leap_reactor_create(&ro, &r);
		if (err) {
			LEAP_ERR("leapd", "reactor %d (cpu %d): %s", i, cpus[i], strerror(-err));
			return err;
		}
		d->reactors[d->nreactors] = r;
		d->reactor_cpu[d->nreactors] = cpus[i];
		d->nreactors++;
		err = leap_reactor_start(r);
		if (err) {
			LEAP_ERR("leapd", "reactor %d start: %s", i, strerror(-err));
			return err;
		}
	}
	/* Every queue of every controller is served by a reactor: one reactor, one writer. */
	leap_policy_set_single_writer(d->nreactors == 1);
	return 0;
}

static int block_signals(struct leap_daemon *d)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* Blocked before any thread exists, so reactors inherit the mask. */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -EINVAL;
	d->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sigfd < 0)
		return -errno;
	/* A client vanishing mid-answer must not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/*
 * Own our socket paths before anything else happens: a second leapd on the
 * same paths must fail before it applies its config (pinning policies) or
 * unlinks the running one's sockets.
 */
static int lock_paths(struct leap_daemon *d)
{
	const char *paths[2] = { d->opts.rpc_socket, d->opts.tenant_socket };
	int err;

	for (int i = 0; i < 2; i++) {
		if (!paths[i])
			continue;
		err = leap_path_lock(paths[i]);
		if (err)
			return err;
		d->locked[i] = true;
	}
	return 0;
}

int leap_daemon_start(struct leap_daemon *d, const struct leap_daemon_opts *opts)
{
	int err;

	memset(d, 0, sizeof(*d));
	d->opts = *opts;
	d->sigfd = -1;
	err = lock_paths(d);
	if (err)
		goto err_stop;
	clock_gettime(CLOCK_MONOTONIC, &d->started);
	d->bdevs = json_array();
	if (!d->bdevs) {
		err = -ENOMEM;
		goto err_stop;
	}
	err = block_signals(d);
	if (err) {
		LEAP_ERR("leapd", "signal setup: %s", strerror(-err));
		goto err_stop;
	}
	err = start_reactors(d);
	if (err)
		goto err_stop;
	err = leap_rpc_server_create(d, &d->rpc);
	if (err)
		goto err_stop;
	err = leap_daemon_register_rpcs(d);
	if (err) {
		LEAP_ERR("leapd", "registering RPC methods: %s", strerror(-err));
		goto err_stop;
	}
	if (opts->config) {
		err = leap_config_apply(d, opts->config);
		if (err)
			goto err_stop;
	}
	if (opts->tenant_socket) {
		err = tenant_listen(d, opts->tenant_socket);
		if (err)
			goto err_stop;
	}
	if (opts->rpc_socket) {
		err = leap_rpc_server_listen(d->rpc, opts->rpc_socket);
		if (err)
			goto err_stop;
	}
	LEAP_INFO("leapd", "ready: %u reactor(s), pid %d", d->nreactors, (int)getpid());
	return 0;

err_stop:
	leap_daemon_stop(d);
	return err < 0 ? err : -EINVAL;
}

void leap_daemon_request_stop(struct leap_daemon *d)
{
	d->stopping = true;
}

static void handle_signals(struct leap_daemon *d)
{
	struct signalfd_siginfo si;

	while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			LEAP_INFO("leapd",
				  "SIGHUP ignored (use leapctl to change the configuration)");
			continue;
		}
		LEAP_INFO("leapd", "%s received: shutting down", strsignal((int)si.ssi_signo));
		d->stopping = true;
	}
}

int leap_daemon_run(struct leap_daemon *d)
{
	while (!d->stopping) {
		struct pollfd pfd[2] = {
			{ .fd = leap_rpc_server_fd(d->rpc), .events = POLLIN },
			{ .fd = d->sigfd, .events = POLLIN },
		};
		int n = poll(pfd, 2, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			LEAP_ERR("leapd", "control loop: %s", strerror(errno));
			return -errno;
		}
		if (pfd[1].revents & POLLIN)
			handle_signals(d);
		if (pfd[0].revents & POLLIN)
			leap_rpc_server_poll(d->rpc, 0);
	}
	return 0;
}

/*
 * A flush at shutdown may never complete: a remote backend whose target is
 * gone holds I/O until its ctrl-loss timeout, a hung device forever. leapd
 * waits this long per bdev, then says so and leaves that bdev behind (its
 * channel open, so destroy refuses it and nothing frees what the late
 * completion would write to).
 */
#define SHUTDOWN_FLUSH_MS 5000

struct shutdown_flush {
	struct leap_bdev_io io;
	int result; /* 1 while in flight */
};

static void flush_done(struct leap_bdev_io *io, uint16_t status)
{
	struct shutdown_flush *f = io->cb_arg;

	__atomic_store_n(&f->result, status ? -EIO : 0, __ATOMIC_RELEASE);
}

/* fdatasync semantics through the backend itself, on a channel of our own. */
static int flush_bdev(struct leap_bdev *b)
{
	struct leap_bdev_channel *ch;
	struct shutdown_flush *f;
	uint64_t deadline = leap_now_ns() + SHUTDOWN_FLUSH_MS * 1000000ull;
	int err;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	err = b->ops->channel_open(b, &ch);
	if (err) {
		free(f);
		return err;
	}
	f->io.op = LEAP_BDEV_OP_FLUSH;
	f->io.buf_index = -1;
	f->io.cb = flush_done;
	f->io.cb_arg = f;
	f->result = 1;
	err = leap_bdev_submit(ch, &f->io);
	while (!err && __atomic_load_n(&f->result, __ATOMIC_ACQUIRE) == 1) {
		err = leap_bdev_poll(ch);
		if (err > 0)
			err = 0;
		if (err || __atomic_load_n(&f->result, __ATOMIC_ACQUIRE) != 1)
			break;
		if (leap_now_ns() > deadline) {
			LEAP_ERR("leapd",
				 "flush of bdev '%s' did not complete in %d ms; left behind",
				 b->name, SHUTDOWN_FLUSH_MS);
			return -ETIMEDOUT; /* f and ch stay: the completion may still come */
		}
		usleep(100);
	}
	b->ops->channel_close(ch);
	if (!err)
		err = f->result;
	free(f);
	return err;
}

int leap_daemon_stop(struct leap_daemon *d)
{
	int ret = 0;

	/* Backends holding I/O for a path that is down stop waiting for it: the drains below end. */
	for (struct leap_bdev *b = leap_bdev_next(NULL); b; b = leap_bdev_next(b))
		if (b->ops->shutdown)
			b->ops->shutdown(b);
	/* Nothing new comes in while we take things down. */
	if (d->rpc)
		leap_rpc_server_close_listener(d->rpc);
	leap_daemon_listeners_stop(d);
	/* Controllers first: their queue pairs drain in-flight I/O on the reactors. */
	leap_rpc_ctrl_cleanup(d);
	for (uint32_t i = 0; i < d->nreactors; i++)
		leap_reactor_stop(d->reactors[i]);
	leap_policy_cleanup();
	for (struct leap_bdev *b = leap_bdev_next(NULL); b; b = leap_bdev_next(b)) {
		int err = flush_bdev(b);

		if (err) {
			LEAP_ERR("leapd", "flush of bdev '%s' failed: %s", b->name, strerror(-err));
			ret = -EIO;
		}
	}
	if (d->bdevs)
		leap_rpc_bdev_cleanup(d);
	for (uint32_t i = 0; i < d->nreactors; i++)
		leap_reactor_destroy(d->reactors[i]);
	d->nreactors = 0;
	leap_rpc_server_destroy(d->rpc);
	d->rpc = NULL;
	json_decref(d->bdevs);
	d->bdevs = NULL;
	if (d->sigfd >= 0)
		close(d->sigfd);
	d->sigfd = -1;
	/* Last: the paths are ours until everything behind them is gone. */
	if (d->locked[0])
		leap_path_unlock(d->opts.rpc_socket);
	if (d->locked[1])
		leap_path_unlock(d->opts.tenant_socket);
	d->locked[0] = d->locked[1] = false;
	return ret;
}

struct leap_reactor *leap_daemon_ctrl_reactor(struct leap_daemon *d, uint16_t cntlid)
{
	return d->nreactors ? d->reactors[leap_ctrl_reactor_index(cntlid, d->nreactors)] : NULL;
}

struct hop {
	struct leap_daemon *d;
	void (*work)(void *arg);
	void (*done)(void *arg);
	void *arg;
};

/* Reactor side of leap_daemon_run_on(). */
static void hop_run(void *p)
{
	struct hop *h = p;

	h->work(h->arg);
	if (leap_rpc_server_post(h->d->rpc, h->done, h->arg) < 0)
		LEAP_ERR("leapd", "cannot hand a finished change back to the control thread");
	free(h);
}

int leap_daemon_run_on(struct leap_daemon *d, struct leap_reactor *r, void (*work)(void *arg),
		       void (*done)(void *arg), void *arg)
{
	struct hop *h;
	int err;

	if (!r) {
		work(arg);
		done(arg);
		return 0;
	}
	h = malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	*h = (struct hop){ .d = d, .work = work, .done = done, .arg = arg };
	err = leap_reactor_send_msg(r, hop_run, h);
	if (err)
		free(h);
	return err;
}

int leap_daemon_register_rpcs(struct leap_daemon *d)
{
	int err;

	err = leap_rpc_bdev_register(d->rpc);
	if (!err)
		err = leap_rpc_ctrl_register(d->rpc);
	if (!err)
		err = leap_rpc_stats_register(d->rpc);
	if (!err)
		err = leap_rpc_misc_register(d->rpc);
	if (!err)
		err = leap_rpc_policy_register(d->rpc);
	if (!err)
		err = leap_rpc_listener_register(d->rpc);
	if (!err)
		err = leap_rpc_subsys_register(d->rpc);
	return err;
}
