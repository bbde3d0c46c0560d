/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Small file-system helpers more than one component needs (the loader pins
 * maps under a directory it may have to create; leapd creates its policy
 * pin directories and owns its socket paths). Implemented in common/fsutil.c.
 */
#ifndef LEAPIO_FSUTIL_H
#define LEAPIO_FSUTIL_H

/*
 * mkdir -p with mode 0700 for every component created; existing ones are
 * left as they are. Paths longer than 511 bytes are refused with
 * -ENAMETOOLONG. Returns 0 or -errno.
 */
int leap_mkdir_p(const char *dir);

/*
 * Become the owner of `path` (a socket leapd listens on) for as long as the
 * lock is held: an exclusive flock() on "PATH.lock", created with any
 * missing directories (0700) and holding our pid. Owners check this before
 * they unlink or bind anything at `path`, so a second leapd on the same
 * paths fails without breaking the first. The kernel releases the lock
 * when the process exits, however it exits. Counted per process: the
 * daemon may lock its command-line paths early and the listener on the
 * path lock it again. 0, -EADDRINUSE when another process holds it (logged
 * with its pid), or -errno.
 */
int leap_path_lock(const char *path);
/* Drop one count of our lock on `path`; the last one releases it. */
void leap_path_unlock(const char *path);

#endif /* LEAPIO_FSUTIL_H */
