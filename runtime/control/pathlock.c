// SPDX-License-Identifier: BSD-3-Clause
/*
 * Who owns a socket path: the process holding an exclusive flock() on
 * "PATH.lock". leapd takes the lock of each of its socket paths before it
 * applies any configuration or touches any file, so a second leapd started
 * on the same paths fails without unlinking the running one's sockets (or
 * re-pinning its policies). The kernel drops the lock when the holder
 * exits, however it exits, so a crash leaves nothing stale to clean up but
 * the lock file itself, which is reused. The lock file holds the owner's
 * pid, for the error message only.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "leapio/log.h"
#include "control/daemon.h"

/* mkdir -p of the directory holding `path`; directories we create are 0700, as the RPC socket's. */
static int make_parent(const char *path)
{
	char dir[PATH_MAX];

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

int leap_path_lock(const char *path, int *out)
{
	char lock[PATH_MAX], pid[32];
	int fd, err, n;

	*out = -1;
	if (snprintf(lock, sizeof(lock), "%s.lock", path) >= (int)sizeof(lock))
		return -ENAMETOOLONG;
	err = make_parent(lock);
	if (err) {
		LEAP_ERR("leapd", "cannot create the directory of %s: %s", lock, strerror(-err));
		return err;
	}
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err = -errno;
		LEAP_ERR("leapd", "lock file %s: %s", lock, strerror(errno));
		return err;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		err = errno == EWOULDBLOCK ? -EADDRINUSE : -errno;
		n = (int)pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (err == -EADDRINUSE)
			LEAP_ERR("leapd", "%s is owned by another leapd (pid %s): not starting",
				 path, pid[0] ? pid : "?");
		else
			LEAP_ERR("leapd", "lock %s: %s", lock, strerror(-err));
		close(fd);
		return err;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		LEAP_WARN("leapd", "lock file %s: cannot record our pid", lock);
	*out = fd;
	return 0;
}
