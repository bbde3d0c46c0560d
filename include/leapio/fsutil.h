/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Small file-system helpers more than one component needs (the loader pins
 * maps under a directory it may have to create; leapd creates its policy
 * pin directories). Implemented in common/fsutil.c.
 */
#ifndef LEAPIO_FSUTIL_H
#define LEAPIO_FSUTIL_H

/*
 * mkdir -p with mode 0700 for every component created; existing ones are
 * left as they are. Paths longer than 511 bytes are refused with
 * -ENAMETOOLONG. Returns 0 or -errno.
 */
int leap_mkdir_p(const char *dir);

#endif /* LEAPIO_FSUTIL_H */
