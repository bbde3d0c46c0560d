// SPDX-License-Identifier: BSD-3-Clause
/*
 * stats_get. Placeholder until the controller statistics (runtime/stats.h)
 * land: registers nothing.
 */
#include "daemon.h"

int leap_rpc_stats_register(struct leap_rpc_server *srv)
{
	(void)srv;
	return 0;
}
