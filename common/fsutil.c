// SPDX-License-Identifier: BSD-3-Clause
/* File-system helpers shared by the loader and leapd (include/leapio/fsutil.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "leapio/fsutil.h"

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
