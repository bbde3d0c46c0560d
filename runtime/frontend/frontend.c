// SPDX-License-Identifier: BSD-3-Clause
/*
 * The front-end module registry. Modules register from constructors, before
 * main() and before any thread exists, so the list needs no lock; it is
 * read-only afterwards.
 */
#include <string.h>

#include "leapio/log.h"
#include "frontend/frontend.h"

#define MAX_FRONTENDS 16

static const struct leap_frontend_ops *modules[MAX_FRONTENDS];
static uint32_t nmodules;

void leap_frontend_register(const struct leap_frontend_ops *ops)
{
	if (leap_frontend_find(ops->type))
		return;
	if (nmodules == MAX_FRONTENDS) {
		LEAP_ERR("frontend", "too many front-end modules: '%s' not registered", ops->type);
		return;
	}
	modules[nmodules++] = ops;
}

const struct leap_frontend_ops *leap_frontend_find(const char *type)
{
	for (uint32_t i = 0; type && i < nmodules; i++)
		if (strcmp(modules[i]->type, type) == 0)
			return modules[i];
	return NULL;
}

const struct leap_frontend_ops *leap_frontend_next(const struct leap_frontend_ops *prev)
{
	uint32_t i = 0;

	if (prev) {
		while (i < nmodules && modules[i] != prev)
			i++;
		i++;
	}
	return i < nmodules ? modules[i] : NULL;
}
