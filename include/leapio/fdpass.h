/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One message plus file descriptors over a Unix socket (SCM_RIGHTS): how
 * leapd and its tenants exchange memfds, eventfds and pipes. Shared by the
 * runtime's shared-memory front-end and the client library.
 */
#ifndef LEAPIO_FDPASS_H
#define LEAPIO_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

#define LEAP_FD_MAX 66 /* descriptors per message: an attach reply is area + kick + 64 vectors */

/* Send `len` bytes and `nfds` descriptors (<= LEAP_FD_MAX). 0, or -errno (-EMSGSIZE: short send). */
int leap_fd_send(int sock, const void *msg, size_t len, const int *fds, int nfds);

/*
 * Receive one message into msg (at most len bytes) and up to maxfds
 * descriptors (opened close-on-exec; any beyond maxfds are closed, never
 * leaked). *msg_flags gets recvmsg's flags (MSG_TRUNC/MSG_CTRUNC tell the
 * caller the message was cut). Returns the byte count (0 = peer closed) or
 * -errno.
 */
ssize_t leap_fd_recv(int sock, void *msg, size_t len, int *fds, int maxfds, int *nfds,
		     int *msg_flags);

#endif /* LEAPIO_FDPASS_H */
