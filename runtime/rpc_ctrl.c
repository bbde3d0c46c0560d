// SPDX-License-Identifier: BSD-3-Clause
/*
 * ctrl_* and ns_* methods. Placeholder until the controller model
 * (runtime/ctrl.h) lands: registers nothing, saves nothing.
 */
#include "daemon.h"

int leap_rpc_ctrl_register(struct leap_rpc_server *srv)
{
	(void)srv;
	return 0;
}

int leap_rpc_ctrl_save(struct leap_daemon *d, json_t *calls)
{
	(void)d;
	(void)calls;
	return 0;
}

void leap_rpc_ctrl_cleanup(struct leap_daemon *d)
{
	(void)d;
}
