/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The XDP side of the policy_* methods (rpc_policy_xdp.c), called from
 * rpc_policy.c: attach --xdp, detach of XDP links, their description in
 * list/show and config_save; and the methods that edit and read the maps
 * only the kernel runs (policy_prefix_add/remove/list, policy_map_entries).
 */
#ifndef LEAPIO_RUNTIME_RPC_POLICY_XDP_H
#define LEAPIO_RUNTIME_RPC_POLICY_XDP_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "control/rpc.h"
#include "policy/policy.h"

/* policy_attach with "xdp": attach and answer the call (either way). */
void rpc_policy_xdp_attach(struct leap_rpc_call *call, struct leap_policy *p, const char *ifname,
			   const char *mode, bool pin);
/* Detach the XDP links matching every given filter (0/NULL: any); returns how many. */
int rpc_policy_xdp_detach(uint32_t link, const char *name, const char *ifname);
/* XDP links (of p, or all when p is NULL) with the kernel's counters. */
json_t *rpc_policy_xdp_links(const struct leap_policy *p);
/* Append a policy_attach call per XDP link. 0 or -ENOMEM. */
int rpc_policy_xdp_save(json_t *calls);
/* Register policy_prefix_add/remove/list and policy_map_entries. */
int rpc_policy_xdp_register(struct leap_rpc_server *srv);

#endif /* LEAPIO_RUNTIME_RPC_POLICY_XDP_H */
