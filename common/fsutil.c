// SPDX-License-Identifier: BSD-3-Clause
/* File-system helpers shared by the loader and leapd (include/leapio/fsutil.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "leapio/fsutil.h"
#include "leapio/log.h"

int leap_mkdir_p(const char *dir)
{
	char buf[512];

	if (strlen(dir) >= sizeof(buf))
		return -ENAMETOOLONG;
	snprintf(buf, sizeof(buf), "%s", dir);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* The paths this process holds locks on (a handful: leapd's sockets). */
struct path_lock {
	char *path;
	int fd;
	unsigned int refs;
	struct path_lock *next;
};

static struct path_lock *locks;
static pthread_mutex_t locks_mu = PTHREAD_MUTEX_INITIALIZER;

static int lock_file(const char *path, int *out)
{
	char lock[512], pid[32], *slash;
	int fd, err, n;

	if (snprintf(lock, sizeof(lock), "%s.lock", path) >= (int)sizeof(lock))
		return -ENAMETOOLONG;
	slash = strrchr(lock, '/');
	if (slash && slash != lock) {
		*slash = '\0';
		err = leap_mkdir_p(lock);
		*slash = '/';
		if (err)
			return err;
	}
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		err = errno == EWOULDBLOCK ? -EADDRINUSE : -errno;
		if (err == -EADDRINUSE) {
			n = (int)pread(fd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? n : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			LEAP_ERR("leapd", "%s is owned by another leapd (pid %s)", path,
				 pid[0] ? pid : "?");
		}
		close(fd);
		return err;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		LEAP_WARN("leapd", "lock file %s: cannot record our pid", lock);
	*out = fd;
	return 0;
}

int leap_path_lock(const char *path)
{
	struct path_lock *l;
	int err = 0;

	pthread_mutex_lock(&locks_mu);
	for (l = locks; l; l = l->next)
		if (strcmp(l->path, path) == 0)
			break;
	if (l) {
		l->refs++;
		goto out;
	}
	l = calloc(1, sizeof(*l));
	if (!l || !(l->path = strdup(path))) {
		free(l);
		err = -ENOMEM;
		goto out;
	}
	err = lock_file(path, &l->fd);
	if (err) {
		if (err != -EADDRINUSE)
			LEAP_ERR("leapd", "lock for %s: %s", path, strerror(-err));
		free(l->path);
		free(l);
		goto out;
	}
	l->refs = 1;
	l->next = locks;
	locks = l;
out:
	pthread_mutex_unlock(&locks_mu);
	return err;
}

void leap_path_unlock(const char *path)
{
	struct path_lock **pp, *l;

	pthread_mutex_lock(&locks_mu);
	for (pp = &locks; (l = *pp) != NULL; pp = &l->next) {
		if (strcmp(l->path, path) != 0)
			continue;
		if (--l->refs == 0) {
			*pp = l->next;
			close(l->fd);
			free(l->path);
			free(l);
		}
		break;
	}
	pthread_mutex_unlock(&locks_mu);
}
