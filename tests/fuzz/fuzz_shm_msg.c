// SPDX-License-Identifier: BSD-3-Clause
/*
 * libFuzzer harness: the shared-memory front-end's tenant socket protocol
 * (frontend/shm: shm_listener.c, shm_admit.c) against a real listener,
 * reactor, controller and mem backend in this process, as a hostile tenant
 * would talk to it.
 *
 * Input: records of [flags u8][len u16 LE][len bytes], each sent as one
 * SOCK_SEQPACKET message on one connection; flags bit 0 attaches a sealed
 * 1 MiB memfd, bit 1 an unsealed one, bit 2 a pipe's read end, bit 3 eight
 * memfds at once. Replies are read as they come; then the connection
 * closes and the harness waits for leapd to have let it go, so every input
 * starts with no tenant. A controller named "t0" exists (the seed corpus
 * attaches to it).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "leapio/fdpass.h"
#include "leapio/log.h"
#include "backend/bdev.h"
#include "core/reactor.h"
#include "frontend/shm/shm.h"
#include "nvme/ctrl.h"

LEAP_BDEV_MODULE_USE(leap_bdev_mem_ops);

static struct leap_reactor *reactor;
static struct leap_shm_listener *listener;
static char sockpath[108];

static void init(void)
{
	struct leap_reactor_opts ro = { .cpu = -1, .idle_sleep_us = 50 };
	json_t *bp = json_pack("{s:s, s:s, s:I, s:i}", "type", "mem", "name", "m0", "size",
			       (json_int_t)(8 << 20), "block_size", 512);
	struct leap_ctrl_opts co = { .name = "t0", .max_io_queues = 4, .max_qsize = 64 };
	struct leap_bdev *b;
	struct leap_ctrl *ctrl;

	leap_log_set_level(LEAP_LOG_ERROR);
	if (leap_reactor_create(&ro, &reactor) || leap_reactor_start(reactor) ||
	    leap_bdev_create_wait(bp, &b, NULL) || leap_ctrl_create(&co, &ctrl) ||
	    leap_ctrl_ns_add(ctrl, 1, "m0", 0, 0, 512) != 1)
		abort();
	json_decref(bp);
	snprintf(sockpath, sizeof(sockpath), "/tmp/leap-fuzz-shm-%d.sock", (int)getpid());
	if (leap_shm_listener_start(sockpath, &reactor, 1, &listener))
		abort();
}

static int memfd(bool sealed)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
		abort();
	if (sealed)
		fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
	return fd;
}

static void drain_replies(int s, int wait_ms)
{
	struct pollfd p = { .fd = s, .events = POLLIN };
	uint8_t buf[512];
	int fds[LEAP_FD_MAX], nfds;

	while (poll(&p, 1, wait_ms) == 1) {
		if (leap_fd_recv(s, buf, sizeof(buf), fds, LEAP_FD_MAX, &nfds, NULL) <= 0)
			return;
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		wait_ms = 0;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s;

	if (!ready) {
		init();
		ready = 1;
	}
	memcpy(sa.sun_path, sockpath, strlen(sockpath) + 1);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	for (int n = 0; size >= 3 && n < 16; n++) {
		uint8_t flags = data[0];
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;
		int fds[8], nfds = 0, pfd[2];

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		if (flags & 1)
			fds[nfds++] = memfd(true);
		if (flags & 2)
			fds[nfds++] = memfd(false);
		if ((flags & 4) && pipe2(pfd, O_CLOEXEC) == 0) {
			fds[nfds++] = pfd[0];
			close(pfd[1]);
		}
		if (flags & 8)
			while (nfds < 8)
				fds[nfds++] = memfd(true);
		if (leap_fd_send(s, data, len, fds, nfds))
			n = 16; /* leapd closed the connection */
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		data += len;
		size -= len;
		drain_replies(s, 20);
	}
	close(s);
	/* The next input starts with no tenant: wait for leapd to let this one go. */
	for (int i = 0; i < 5000 && leap_shm_listener_conn_count(listener); i++)
		usleep(200);
	if (leap_shm_listener_conn_count(listener))
		abort(); /* a connection leapd never lets go: a finding */
	return 0;
}
