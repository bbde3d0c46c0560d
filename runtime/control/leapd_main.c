// SPDX-License-Identifier: BSD-3-Clause
/*
 * leapd: the leapio runtime daemon.
 *
 *   leapd [-c CONFIG] [-r RPC_SOCKET] [-s TENANT_SOCKET] [-m CPU_LIST]
 *         [-g TENANT_GROUP] [-L LOGLEVEL] [-l LOGFILE] [--foreground]
 *
 * Without --foreground it detaches, but the parent waits until the child is
 * ready (config applied, sockets open) and exits with the child's verdict,
 * so "leapd -c bad.json" fails visibly either way. SIGTERM/SIGINT shut
 * down in order (see leap_daemon_stop()) and exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "control/daemon.h"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: leapd [-c CONFIG] [-r RPC_SOCKET] [-s TENANT_SOCKET] [-m CPU_LIST]\n"
	    "             [-g TENANT_GROUP] [-L LOGLEVEL] [-l LOGFILE] [--foreground]\n\n"
	    "  -c, --config FILE        JSON array of {\"method\",\"params\"} calls run at "
	    "startup\n"
	    "  -r, --rpc-socket PATH    control socket (default %s)\n"
	    "  -s, --tenant-socket PATH tenant listener (default %s)\n"
	    "  -m, --cpus LIST          one reactor per CPU, e.g. 0,2-3 (default: one, unpinned)\n"
	    "  -g, --tenant-group GROUP open the tenant socket to GROUP (0660); each controller\n"
	    "                           still admits only its owners (ctrl add --owner/--group)\n"
	    "  -L, --log-level LEVEL    error|warn|info|debug (default info)\n"
	    "  -l, --log-file FILE      log there instead of stderr\n"
	    "  -f, --foreground         do not detach\n"
	    "  -h, --help               this help\n",
	    LEAPD_DEFAULT_RPC_SOCKET, LEAPD_DEFAULT_TENANT_SOCKET);
}

/*
 * Detach: the parent stays until the child reports readiness through a
 * pipe (one status byte), then exits with that status. Returns the write
 * end in the child, or -1 in --foreground mode (never returns in the parent).
 */
static int daemonize(void)
{
	int pfd[2];
	pid_t pid;
	char st = 1;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		perror("leapd: pipe");
		exit(LEAP_EXIT_FAILURE);
	}
	pid = fork();
	if (pid < 0) {
		perror("leapd: fork");
		exit(LEAP_EXIT_FAILURE);
	}
	if (pid > 0) {
		close(pfd[1]);
		if (read(pfd[0], &st, 1) != 1)
			st = LEAP_EXIT_FAILURE; /* the child died before it was ready */
		exit(st);
	}
	close(pfd[0]);
	setsid();
	if (chdir("/") < 0)
		LEAP_WARN("leapd", "chdir /: %s", strerror(errno));
	return pfd[1];
}

/* `p` made absolute against the current directory (leaked: lives as long as leapd). */
static const char *absolute(const char *p)
{
	char cwd[4096], *abs = NULL;

	if (!p || p[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return p;
	if (asprintf(&abs, "%s/%s", cwd, p) < 0)
		return p;
	return abs;
}

static void report_ready(int fd, int status)
{
	char st = (char)status;
	int null;

	if (fd < 0)
		return;
	if (write(fd, &st, 1) != 1)
		LEAP_WARN("leapd", "cannot report readiness to the parent");
	close(fd);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		close(null);
	}
}

/*
 * leapd holds descriptors for every tenant (area, kick, vectors, regions):
 * the soft RLIMIT_NOFILE is only a default for programs that never need
 * many, so run with the hard limit. The tenant front-end sizes its
 * descriptor budget from the result.
 */
static void raise_nofile(void)
{
	struct rlimit rl;
	rlim_t old;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	old = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		LEAP_WARN("leapd", "cannot raise the descriptor limit to %llu: %s",
			  (unsigned long long)rl.rlim_max, strerror(errno));
		return;
	}
	LEAP_INFO("leapd", "descriptor limit raised from %llu to %llu", (unsigned long long)old,
		  (unsigned long long)rl.rlim_max);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "rpc-socket", required_argument, NULL, 'r' },
		{ "tenant-socket", required_argument, NULL, 's' },
		{ "cpus", required_argument, NULL, 'm' },
		{ "tenant-group", required_argument, NULL, 'g' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "log-file", required_argument, NULL, 'l' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct leap_daemon_opts opts = {
		.rpc_socket = LEAPD_DEFAULT_RPC_SOCKET,
		.tenant_socket = LEAPD_DEFAULT_TENANT_SOCKET,
	};
	const char *log_file = NULL;
	struct leap_daemon d;
	bool foreground = false;
	int c, level = LEAP_LOG_INFO, ready_fd = -1, err;

	while ((c = getopt_long(argc, argv, "c:r:s:m:g:L:l:fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			opts.config = optarg;
			break;
		case 'r':
			opts.rpc_socket = optarg;
			break;
		case 's':
			opts.tenant_socket = optarg;
			break;
		case 'm':
			opts.cpu_list = optarg;
			break;
		case 'g':
			opts.tenant_group = optarg;
			break;
		case 'L':
			level = leap_log_level_parse(optarg);
			if (level < 0) {
				fprintf(stderr, "leapd: bad log level '%s'\n", optarg);
				return LEAP_EXIT_USAGE;
			}
			break;
		case 'l':
			log_file = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'h':
			usage(stdout);
			return LEAP_EXIT_OK;
		default:
			usage(stderr);
			return LEAP_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "leapd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return LEAP_EXIT_USAGE;
	}
	if (leap_daemon_log_open(log_file) < 0)
		return LEAP_EXIT_FAILURE;
	leap_log_set_level((enum leap_log_level)level);
	raise_nofile();
	/* Paths are relative to where leapd was started; the detached child runs in /. */
	if (!foreground) {
		opts.config = absolute(opts.config);
		opts.rpc_socket = absolute(opts.rpc_socket);
		opts.tenant_socket = absolute(opts.tenant_socket);
		ready_fd = daemonize();
	}
	err = leap_daemon_start(&d, &opts);
	if (err) {
		LEAP_ERR("leapd", "startup failed: %s", strerror(-err));
		report_ready(ready_fd, LEAP_EXIT_FAILURE);
		leap_daemon_log_close();
		return LEAP_EXIT_FAILURE;
	}
	report_ready(ready_fd, LEAP_EXIT_OK);
	err = leap_daemon_run(&d);
	if (leap_daemon_stop(&d) < 0 || err < 0) {
		LEAP_ERR("leapd", "stopped with errors");
		leap_daemon_log_close();
		return LEAP_EXIT_FAILURE;
	}
	LEAP_INFO("leapd", "stopped");
	leap_daemon_log_close();
	return LEAP_EXIT_OK;
}
