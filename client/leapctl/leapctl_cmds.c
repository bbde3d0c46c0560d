// SPDX-License-Identifier: BSD-3-Clause
/*
 * leapctl's command table and argument parser. Each row maps
 * "<object> <verb>" to one leapd RPC method: its arguments (positional or
 * --options) become the method's named params, and its columns say how a
 * list result is shown. A few commands need behaviour of their own (stats
 * --watch, config save, raw rpc) and name a run function.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapctl_internal.h"

static int run_stats(const struct leapctl_opts *o, const struct leapctl_cmd *cmd, json_t *params);
static int run_config_save(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			   json_t *params);
static int run_rpc(const struct leapctl_opts *o, const struct leapctl_cmd *cmd, json_t *params);
static int run_subsys_host(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			   json_t *params);
static int run_allow_any_host(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			      json_t *params);
static int run_bdev_create(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			   json_t *params);
static int run_bdev_mirror(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			   json_t *params);

#define POS(key, meta, help)                                                                       \
	{                                                                                          \
		NULL, key, LEAPCTL_ARG_STR, LEAPCTL_REQUIRED, meta, help                           \
	}
#define POS_OPT(key, meta, help)                                                                   \
	{                                                                                          \
		NULL, key, LEAPCTL_ARG_STR, 0, meta, help                                          \
	}
#define OPT(o, key, type, meta, help)                                                              \
	{                                                                                          \
		o, key, type, 0, meta, help                                                        \
	}

const struct leapctl_cmd leapctl_cmds[] = {
	{
		.object = "bdev",
		.verb = "create",
		.method = "bdev_create",
		.summary = "create a backend of any type leapd has (bdev types); e.g. a file via "
			   "io_uring, memory, or null",
		.args = {
			POS("name", "NAME", "unique backend name"),
			{ "--type", "type", LEAPCTL_ARG_STR, LEAPCTL_REQUIRED, "TYPE",
			  "backend type: uring, mem, null, ... (bdev types)" },
			OPT("--size", "size", LEAPCTL_ARG_SIZE, "SIZE",
			    "bytes (K/M/G suffixes); uring: 0 = the file's size"),
			OPT("--block-size", "block_size", LEAPCTL_ARG_U64, "N", "512 or 4096"),
			OPT("--param", "param", LEAPCTL_ARG_KV, "KEY=VALUE",
			    "a parameter of the backend type, repeatable (VALUE: integer, "
			    "true/false, or string)"),
			OPT("--path", "path", LEAPCTL_ARG_STR, "PATH",
			    "uring: file or block device (= --param path=PATH)"),
			OPT("--buffered", "buffered", LEAPCTL_ARG_FLAG, NULL,
			    "uring: use the page cache, no O_DIRECT (= --param buffered=true)"),
			OPT("--queue-depth", "queue_depth", LEAPCTL_ARG_U64, "N",
			    "uring: ring entries per reactor; nvme-tcp: commands per I/O queue"),
			OPT("--traddr", "traddr", LEAPCTL_ARG_STR, "ADDR",
			    "nvme-tcp: target IP address (numeric)"),
			OPT("--trsvcid", "trsvcid", LEAPCTL_ARG_STR, "PORT",
			    "nvme-tcp: target TCP port (default 4420)"),
			OPT("--subnqn", "subnqn", LEAPCTL_ARG_STR, "NQN", "nvme-tcp: subsystem NQN"),
			OPT("--nsid", "nsid", LEAPCTL_ARG_U64, "N",
			    "nvme-tcp: namespace ID (default: the first active one)"),
			OPT("--hostnqn", "hostnqn", LEAPCTL_ARG_STR, "NQN",
			    "nvme-tcp: host NQN (default: uuid form, kept across reconnects)"),
			OPT("--hdr-digest", "hdr_digest", LEAPCTL_ARG_FLAG, NULL,
			    "nvme-tcp: CRC32C header digests"),
			OPT("--data-digest", "data_digest", LEAPCTL_ARG_FLAG, NULL,
			    "nvme-tcp: CRC32C data digests"),
			OPT("--queues", "queues", LEAPCTL_ARG_U64, "N",
			    "nvme-tcp: I/O queues to ask for, one per channel (default 4)"),
			OPT("--reconnect-delay", "reconnect_delay", LEAPCTL_ARG_U64, "S",
			    "nvme-tcp: seconds before reconnecting, doubled per failure (default 1)"),
			OPT("--ctrl-loss-timeout", "ctrl_loss_timeout", LEAPCTL_ARG_U64, "S",
			    "nvme-tcp: seconds I/O is held in an outage before it fails (default 60)"),
		},
		.run = run_bdev_create,
	},
	{
		.object = "bdev",
		.verb = "types",
		.method = "bdev_types",
		.summary = "the backend types (modules) this leapd has",
	},
	{
		.object = "bdev",
		.verb = "delete",
		.method = "bdev_delete",
		.summary = "delete a backend no namespace uses",
		.args = { POS("name", "NAME", "backend name") },
	},
	{
		.object = "bdev",
		.verb = "list",
		.method = "bdev_list",
		.summary = "list backends",
		.args = { POS_OPT("name", "NAME", "only this backend") },
		.cols = { { "NAME", "name", false },
			  { "TYPE", "type", false },
			  { "SIZE", "size", true },
			  { "BLOCK", "block_size", false },
			  { "NS", "namespaces", false },
			  /* a backend's own keys, when it has them */
			  { "PATH", "path", false },
			  { "STATE", "state", false },
			  { "LEGS", "legs_state", false } },
	},
	{
		.object = "bdev",
		.verb = "fault",
		.method = "bdev_fault_set",
		.summary = "make a fault backend fail, delay or hang I/O (the rule replaces the "
			   "last one; no rule, or --clear, heals)",
		.args = {
			POS("name", "NAME", "fault backend"),
			OPT("--ops", "ops", LEAPCTL_ARG_STR, "r|w|f...",
			    "what the rule applies to: reads, writes (and zeroes, trims), flushes "
			    "(default rw)"),
			OPT("--action", "action", LEAPCTL_ARG_STR, "fail|hang|none",
			    "fail with --status, never complete, or only --delay-us"),
			OPT("--status", "status", LEAPCTL_ARG_U64, "SCT<<8|SC",
			    "NVMe status for fail (default: the media error for the op)"),
			OPT("--every", "every", LEAPCTL_ARG_U64, "N",
			    "act on one matching I/O in N (default 1: all)"),
			OPT("--lba", "lba", LEAPCTL_ARG_U64, "LBA", "first block the rule covers"),
			OPT("--lba-count", "lba_count", LEAPCTL_ARG_U64, "N",
			    "blocks covered (default: to the end)"),
			OPT("--delay-us", "delay_us", LEAPCTL_ARG_U64, "US",
			    "latency added to every matching I/O"),
			OPT("--clear", "clear", LEAPCTL_ARG_FLAG, NULL, "heal: no rule"),
		},
	},
	{
		.object = "bdev",
		.verb = "mirror",
		.method = "bdev_mirror_<op>",
		.summary = "mirror legs: add-leg (re-add resyncs from the bitmap), remove-leg, "
			   "resync",
		.args = {
			POS("op", "add-leg|remove-leg|resync", "what to do"),
			POS("name", "MIRROR", "mirror backend"),
			POS_OPT("leg", "LEG", "leg backend (resync: default every leg out of sync)"),
			OPT("--full", "full", LEAPCTL_ARG_FLAG, NULL,
			    "copy everything, not only the regions written since the leg left"),
		},
		.run = run_bdev_mirror,
	},
	{
		.object = "ctrl",
		.verb = "add",
		.method = "ctrl_create",
		.summary = "create a virtual NVMe controller tenants can connect to",
		.args = {
			POS("name", "NAME", "unique controller name"),
			OPT("--nqn", "nqn", LEAPCTL_ARG_STR, "NQN", "subsystem NQN (default derived)"),
			OPT("--max-qpairs", "max_qpairs", LEAPCTL_ARG_U64, "N", "I/O queue pairs"),
			OPT("--max-queue-size", "max_queue_size", LEAPCTL_ARG_U64, "N",
			    "entries per queue"),
			OPT("--serial", "serial", LEAPCTL_ARG_STR, "SN", "serial number"),
			OPT("--owner", "owner", LEAPCTL_ARG_STR, "USERS",
			    "users (names or uids, comma-separated) who may attach; default root only"),
			OPT("--group", "group", LEAPCTL_ARG_STR, "GROUPS",
			    "groups whose members may attach"),
		},
	},
	{
		.object = "ctrl",
		.verb = "delete",
		.method = "ctrl_delete",
		.summary = "delete a controller (disconnects its tenants)",
		.args = { POS("name", "NAME", "controller name") },
	},
	{
		.object = "ctrl",
		.verb = "list",
		.method = "ctrl_list",
		.summary = "list controllers",
		.args = { POS_OPT("name", "NAME", "only this controller") },
		.cols = { { "NAME", "name", false },
			  { "NQN", "nqn", false },
			  { "SERIAL", "serial", false },
			  { "QPAIRS", "max_qpairs", false },
			  { "QSIZE", "max_queue_size", false },
			  { "NS", "namespaces", false },
			  { "OWNER", "owner", false },
			  { "GROUP", "group", false } },
	},
	{
		.object = "listener",
		.verb = "add",
		.method = "listener_add",
		.summary = "start a front-end listener: shm (tenant socket), tcp (NVMe/TCP), vhost-user-blk",
		.args = {
			POS("type", "TYPE", "front-end module: shm, tcp, vhost-user-blk"),
			OPT("--path", "path", LEAPCTL_ARG_STR, "SOCK", "shm: tenant socket path"),
			OPT("--socket", "socket", LEAPCTL_ARG_STR, "SOCK", "vhost-user-blk: socket path"),
			OPT("--addr", "addr", LEAPCTL_ARG_STR, "ADDR", "tcp: IPv4 or IPv6 address"),
			OPT("--port", "port", LEAPCTL_ARG_U64, "PORT", "tcp: port (4420)"),
			OPT("--ctrl", "ctrl", LEAPCTL_ARG_STR, "CTRL", "vhost-user-blk: controller"),
			OPT("--nsid", "nsid", LEAPCTL_ARG_U64, "N", "vhost-user-blk: namespace"),
			OPT("--num-queues", "num_queues", LEAPCTL_ARG_U64, "N",
			    "vhost-user-blk: virtqueues"),
		},
	},
	{
		.object = "listener",
		.verb = "remove",
		.method = "listener_remove",
		.summary = "stop a listener (its connections drain and detach)",
		.args = { { NULL, "id", LEAPCTL_ARG_U64, LEAPCTL_REQUIRED, "ID", "listener id" } },
	},
	{
		.object = "listener",
		.verb = "list",
		.method = "listener_list",
		.summary = "list listeners with their parameters and connections",
		.cols = { { "ID", "id", false },
			  { "TYPE", "type", false },
			  { "PARAMS", "params", false },
			  { "STATE", "state", false } },
	},
	{
		.object = "subsys",
		.verb = "host",
		.method = "subsys_host_list",
		.summary = "which hosts may connect over the network: subsys host add|remove CTRL "
			   "HOSTNQN, subsys host list [CTRL]",
		.args = {
			POS("action", "add|remove|list", "what to do with the allow-list"),
			POS_OPT("ctrl", "CTRL", "controller (the NVM subsystem)"),
			POS_OPT("host", "HOSTNQN", "add, remove: the host's NQN"),
		},
		.cols = { { "CTRL", "ctrl", false },
			  { "NQN", "nqn", false },
			  { "ANY_HOST", "allow_any_host", false },
			  { "HOSTS", "hosts", false } },
		.run = run_subsys_host,
	},
	{
		.object = "subsys",
		.verb = "allow-any-host",
		.method = "subsys_allow_any_host",
		.summary = "let every host connect to CTRL (on), or only listed ones (off, the default)",
		.args = {
			POS("ctrl", "CTRL", "controller"),
			POS("allow", "on|off", "on: any host; off: the allow-list only"),
		},
		.run = run_allow_any_host,
	},
	{
		.object = "ns",
		.verb = "add",
		.method = "ns_add",
		.summary = "attach a namespace backed by (a range of) a backend",
		.args = {
			POS("ctrl", "CTRL", "controller name"),
			POS("bdev", "BDEV", "backend name"),
			OPT("--nsid", "nsid", LEAPCTL_ARG_U64, "N", "namespace ID (default: lowest free)"),
			OPT("--offset", "offset", LEAPCTL_ARG_SIZE, "BYTES", "start within the backend"),
			OPT("--size", "size", LEAPCTL_ARG_SIZE, "BYTES", "length (default: to the end)"),
			OPT("--lba-size", "lba_size", LEAPCTL_ARG_U64, "N", "512 or 4096"),
			OPT("--shared", "shared", LEAPCTL_ARG_FLAG, NULL,
			    "may overlap other --shared namespaces (areas carved by a policy, snapshots)"),
		},
	},
	{
		.object = "ns",
		.verb = "remove",
		.method = "ns_remove",
		.summary = "detach a namespace",
		.args = {
			POS("ctrl", "CTRL", "controller name"),
			{ NULL, "nsid", LEAPCTL_ARG_U64, LEAPCTL_REQUIRED, "NSID", "namespace ID" },
		},
	},
	{
		.object = "ns",
		.verb = "list",
		.method = "ns_list",
		.summary = "list namespaces",
		.args = { POS_OPT("ctrl", "CTRL", "only this controller's") },
		.cols = { { "CTRL", "ctrl", false },
			  { "NSID", "nsid", false },
			  { "BDEV", "bdev", false },
			  { "OFFSET", "offset", false },
			  { "SIZE", "size", true },
			  { "LBA", "lba_size", false } },
	},
	{
		.object = "stats",
		.verb = NULL,
		.method = "stats_get",
		.summary = "I/O statistics per namespace (IOPS since the previous call)",
		.args = {
			OPT("--ctrl", "ctrl", LEAPCTL_ARG_STR, "NAME", "only this controller"),
			OPT("--ns", "ns", LEAPCTL_ARG_U64, "NSID", "only this namespace"),
			OPT("--qpairs", "qpairs", LEAPCTL_ARG_FLAG, NULL, "per queue pair detail"),
			OPT("--window-ms", "window_ms", LEAPCTL_ARG_U64, "MS",
			    "measure IOPS over this window instead"),
			{ "--watch", "watch", LEAPCTL_ARG_U64, LEAPCTL_OPTVAL, "[SEC]",
			  "repeat every SEC seconds (default 1) until interrupted" },
		},
		.cols = { { "CTRL", "ctrl", false },
			  { "NSID", "nsid", false },
			  { "R_IOPS", "read_iops", false },
			  { "W_IOPS", "write_iops", false },
			  { "READ", "read_bytes", true },
			  { "WRITTEN", "write_bytes", true },
			  { "ERRORS", "error_count", false },
			  { "P50_US", "latency_us.p50", false },
			  { "P99_US", "latency_us.p99", false },
			  { "P99.9_US", "latency_us.p999", false } },
		.run = run_stats,
	},
	{
		.object = "config",
		.verb = "save",
		.method = "config_save",
		.summary = "print the running configuration, or have leapd write it to FILE",
		.args = { POS_OPT("path", "FILE", "written atomically by leapd") },
		.run = run_config_save,
	},
	{
		.object = "log",
		.verb = "level",
		.method = "log_set_level",
		.summary = "set leapd's log level",
		.args = { POS("level", "LEVEL", "error|warn|info|debug") },
	},
	{
		.object = "info",
		.verb = NULL,
		.method = "leapd_info",
		.summary = "version, pid, reactors, uptime",
	},
	{
		.object = "reactor",
		.verb = "list",
		.method = "reactor_list",
		.summary = "list reactor threads and their counters",
		.cols = { { "ID", "id", false },
			  { "CPU", "cpu", false },
			  { "ITERATIONS", "iterations", false },
			  { "BUSY", "busy", false },
			  { "SLEEPS", "sleeps", false },
			  { "WAKEUPS", "wakeups", false } },
	},
	{
		.object = "bdev",
		.verb = "qos",
		.method = "bdev_set_qos",
		.summary = "priority arbitration in front of a backend: in-flight budget per reactor "
			   "(0: none) and WRR weights for high, medium, low",
		.args = {
			POS("name", "NAME", "backend name"),
			OPT("--inflight", "inflight", LEAPCTL_ARG_U64, "N",
			    "commands in flight before the rest queue by class"),
			OPT("--weights", "weights", LEAPCTL_ARG_JSON, "[H,M,L]",
			    "weighted round robin weights, each 1..255"),
		},
	},
	{
		.object = "policy",
		.verb = "load",
		.method = "policy_load",
		.summary = "verify a policy object with the kernel and load it (maps pinned under "
			   "/sys/fs/bpf/leapio/NAME)",
		.args = {
			POS("path", "FILE.bpf.o", "clang-compiled policy object"),
			OPT("--name", "name", LEAPCTL_ARG_STR, "NAME",
			    "policy name (default: the file name)"),
			OPT("--set", "set", LEAPCTL_ARG_KV, "KNOB=VALUE",
			    "load-time knob (.rodata), repeatable; VALUE may be bdev:NAME"),
			OPT("--engine", "engine", LEAPCTL_ARG_STR, "jit|interp",
			    "execution engine (default jit)"),
		},
		.run = leapctl_run_abs_path,
	},
	{
		.object = "policy",
		.verb = "attach",
		.method = "policy_attach",
		.summary = "attach a loaded policy to its hooks, on every controller or one; or "
			   "its XDP program to a network interface (--xdp)",
		.args = {
			POS("name", "NAME", "policy name"),
			OPT("--hook", "hook", LEAPCTL_ARG_STR, "submit|complete|all",
			    "hook (default: every hook it has a program for)"),
			OPT("--ctrl", "ctrl", LEAPCTL_ARG_STR, "CTRL", "only this controller"),
			OPT("--ns", "nsid", LEAPCTL_ARG_U64, "NSID", "only this namespace of --ctrl"),
			OPT("--order", "order", LEAPCTL_ARG_U64, "N",
			    "position in the chain: lower runs first (default 0)"),
			OPT("--xdp", "xdp", LEAPCTL_ARG_STR, "IFACE",
			    "attach the SEC(\"xdp\") program to this interface (a BPF link leapd "
			    "owns: gone when detached or when leapd exits)"),
			OPT("--mode", "mode", LEAPCTL_ARG_STR, "native|generic",
			    "with --xdp: driver (native) or generic XDP (default: native if the "
			    "driver has it)"),
			OPT("--pin", "pin", LEAPCTL_ARG_FLAG, NULL,
			    "with --xdp: pin the link, so it outlives leapd"),
		},
	},
	{
		.object = "policy",
		.verb = "detach",
		.method = "policy_detach",
		.summary = "detach a policy (all its links, or those matching) or one link by id",
		.args = {
			POS_OPT("name", "NAME", "policy name"),
			OPT("--link", "link", LEAPCTL_ARG_U64, "ID", "one link"),
			OPT("--hook", "hook", LEAPCTL_ARG_STR, "submit|complete", "only this hook"),
			OPT("--ctrl", "ctrl", LEAPCTL_ARG_STR, "CTRL", "only this controller's links"),
			OPT("--ns", "nsid", LEAPCTL_ARG_U64, "NSID", "only this namespace's links"),
			OPT("--xdp", "xdp", LEAPCTL_ARG_STR, "IFACE", "only the XDP link on IFACE"),
		},
	},
	{
		.object = "policy",
		.verb = "replace",
		.method = "policy_replace",
		.summary = "replace a policy live: verify the new object, keep the maps that match, "
			   "swap on every reactor, free the old one after quiescence",
		.args = {
			POS("name", "NAME", "policy name"),
			POS("path", "FILE.bpf.o", "the new object"),
			OPT("--set", "set", LEAPCTL_ARG_KV, "KNOB=VALUE",
			    "load-time knobs (default: those of the previous load)"),
		},
		.run = leapctl_run_abs_path,
	},
	{
		.object = "policy",
		.verb = "unload",
		.method = "policy_unload",
		.summary = "unload a detached policy and unpin its maps",
		.args = { POS("name", "NAME", "policy name") },
	},
	{
		.object = "policy",
		.verb = "list",
		.method = "policy_list",
		.summary = "loaded policies and their links with per-link counters",
		.run = leapctl_run_policy_list,
	},
	{
		.object = "policy",
		.verb = "show",
		.method = "policy_show",
		.summary = "one policy: programs (kernel ids), maps (pins), knobs, links",
		.args = { POS("name", "NAME", "policy name") },
	},
	{
		.object = "policy",
		.verb = "set",
		.method = "policy_set",
		.summary = "change runtime knobs (.data/.bss globals) live: VAR=VALUE or VAR[I]=VALUE",
		.args = {
			POS("name", "NAME", "policy name"),
			{ NULL, "set", LEAPCTL_ARG_KV, LEAPCTL_REQUIRED, "VAR=VALUE...",
			  "knobs; VALUE may be bdev:NAME" },
		},
	},
	{
		.object = "policy",
		.verb = "prefix-add",
		.method = "policy_prefix_add",
		.summary = "add an address prefix to an XDP policy's allow-list (LPM trie), live",
		.args = {
			POS("name", "NAME", "policy name"),
			POS("prefix", "PREFIX", "198.18.0.0/24, fd00::/64, or one address"),
			OPT("--map", "map", LEAPCTL_ARG_STR, "MAP",
			    "the LPM trie (default: the policy's only one)"),
		},
	},
	{
		.object = "policy",
		.verb = "prefix-remove",
		.method = "policy_prefix_remove",
		.summary = "remove an address prefix from an XDP policy's allow-list, live",
		.args = {
			POS("name", "NAME", "policy name"),
			POS("prefix", "PREFIX", "as added"),
			OPT("--map", "map", LEAPCTL_ARG_STR, "MAP",
			    "the LPM trie (default: the policy's only one)"),
		},
	},
	{
		.object = "policy",
		.verb = "prefixes",
		.method = "policy_prefix_list",
		.summary = "the prefixes in an XDP policy's allow-list",
		.args = {
			POS("name", "NAME", "policy name"),
			OPT("--map", "map", LEAPCTL_ARG_STR, "MAP",
			    "the LPM trie (default: the policy's only one)"),
		},
		.run = leapctl_run_policy_prefixes,
	},
	{
		.object = "policy",
		.verb = "acl",
		.method = "policy_map_entries",
		.summary = "a fabric_acl policy: allow-list, per-source passed/dropped counters, "
			   "totals",
		.args = { POS("name", "NAME", "the fabric_acl policy's name") },
		.run = leapctl_run_policy_acl,
	},
	{
		.object = "policy",
		.verb = "entries",
		.method = "policy_map_entries",
		.summary = "any map's entries (hash, LRU, LPM, per-CPU summed): keys in hex, "
			   "values as 64-bit words",
		.args = { POS("name", "NAME", "policy name"), POS("map", "MAP", "map name") },
	},
	{
		.object = "policy",
		.verb = "stats",
		.method = "policy_map_dump",
		.summary = "per-tenant counters and latency percentiles from a stats policy's maps",
		.args = { POS("name", "NAME", "the stats policy's name") },
		.run = leapctl_run_policy_stats,
	},
	{
		.object = "policy",
		.verb = "dump",
		.method = "policy_map_dump",
		.summary = "an array map's values as 64-bit words (the bytes bpftool shows)",
		.args = { POS("name", "NAME", "policy name"), POS("map", "MAP", "map name") },
	},
	{
		.object = "policy",
		.verb = "clear",
		.method = "policy_map_clear",
		.summary = "zero an array map (e.g. a snapshot bitmap on rollback)",
		.args = { POS("name", "NAME", "policy name"), POS("map", "MAP", "map name") },
	},
	{
		.object = "rpc",
		.verb = NULL,
		.method = NULL,
		.summary = "call any method: rpc METHOD [PARAMS_JSON], or send text as is: rpc --raw TEXT",
		.args = {
			POS_OPT("method", "METHOD", "method name"),
			{ NULL, "params", LEAPCTL_ARG_JSON, 0, "PARAMS", "params as JSON" },
			OPT("--raw", "raw", LEAPCTL_ARG_STR, "TEXT",
			    "send TEXT unmodified and print the answer"),
		},
		.run = run_rpc,
	},
};

const size_t leapctl_ncmds = sizeof(leapctl_cmds) / sizeof(leapctl_cmds[0]);

static size_t nargs(const struct leapctl_cmd *cmd)
{
	size_t n = 0;

	while (n < LEAPCTL_MAX_ARGS && cmd->args[n].key)
		n++;
	return n;
}

void leapctl_cmd_help(const struct leapctl_cmd *cmd, FILE *f)
{
	size_t n = nargs(cmd);

	fprintf(f, "usage: leapctl %s%s%s", cmd->object, cmd->verb ? " " : "",
		cmd->verb ? cmd->verb : "");
	for (size_t i = 0; i < n; i++) {
		const struct leapctl_arg *a = &cmd->args[i];
		bool req = a->flags & LEAPCTL_REQUIRED;

		if (a->opt)
			fprintf(f, " %s%s%s%s%s", req ? "" : "[", a->opt, a->metavar ? " " : "",
				a->metavar ? a->metavar : "", req ? "" : "]");
		else
			fprintf(f, " %s%s%s", req ? "" : "[", a->metavar, req ? "" : "]");
	}
	fprintf(f, "\n\n%s\n", cmd->summary);
	if (cmd->method)
		fprintf(f, "RPC method: %s\n", cmd->method);
	if (n)
		fprintf(f, "\narguments:\n");
	for (size_t i = 0; i < n; i++) {
		const struct leapctl_arg *a = &cmd->args[i];
		char name[64];

		snprintf(name, sizeof(name), "%s%s%s", a->opt ? a->opt : "",
			 a->opt && a->metavar ? " " : "", a->metavar ? a->metavar : "");
		fprintf(f, "  %-26s %s%s\n", name, a->help,
			(a->flags & LEAPCTL_REQUIRED) ? " (required)" : "");
	}
}

static int parse_u64(const char *s, unsigned long long *out)
{
	char *end;

	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 0);
	if (errno || *end)
		return -EINVAL;
	return 0;
}

static int parse_size(const char *s, unsigned long long *out)
{
	static const char units[] = "KMGT";
	unsigned long long v;
	const char *u;
	char *end;
	int shift;

	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	if (!*end) {
		*out = v;
		return 0;
	}
	u = strchr(units, end[0] & ~0x20);
	if (!u || !end[0])
		return -EINVAL;
	/* Accept "64M", "64MB", "64MiB". */
	if (end[1] && strcmp(end + 1, "B") != 0 && strcmp(end + 1, "iB") != 0)
		return -EINVAL;
	shift = 10 * (int)(u - units + 1);
	if (v > (ULLONG_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

/* Turn one command-line value into JSON by the argument's type. NULL (after a message) if bad. */
static json_t *convert(const struct leapctl_cmd *cmd, const struct leapctl_arg *a, const char *v)
{
	const char *what = a->opt ? a->opt : a->metavar;
	unsigned long long n;
	json_error_t jerr;
	json_t *j;

	switch (a->type) {
	case LEAPCTL_ARG_STR:
		return json_string(v);
	case LEAPCTL_ARG_FLAG:
		return json_true();
	case LEAPCTL_ARG_U64:
		if (parse_u64(v, &n) == 0)
			return json_integer((json_int_t)n);
		fprintf(stderr, "leapctl: %s: %s must be a non-negative integer, got '%s'\n",
			cmd->object, what, v);
		return NULL;
	case LEAPCTL_ARG_SIZE:
		if (parse_size(v, &n) == 0 && n <= (unsigned long long)INT64_MAX)
			return json_integer((json_int_t)n);
		fprintf(stderr, "leapctl: %s: %s must be a size (e.g. 4096, 64M, 1G), got '%s'\n",
			cmd->object, what, v);
		return NULL;
	case LEAPCTL_ARG_KV:
		if (!strchr(v, '=') || v[0] == '=') {
			fprintf(stderr, "leapctl: %s: %s must be NAME=VALUE, got '%s'\n",
				cmd->object, what, v);
			return NULL;
		}
		if (parse_u64(strchr(v, '=') + 1, &n) == 0)
			return json_integer((json_int_t)n);
		return json_string(strchr(v, '=') + 1);
	case LEAPCTL_ARG_JSON:
		j = json_loads(v, JSON_DECODE_ANY, &jerr);
		if (!j)
			fprintf(stderr, "leapctl: %s: %s is not valid JSON: %s\n", cmd->object,
				what, jerr.text);
		return j;
	}
	return NULL;
}

static const struct leapctl_arg *find_opt(const struct leapctl_cmd *cmd, const char *name,
					  size_t len)
{
	for (size_t i = 0; i < nargs(cmd); i++)
		if (cmd->args[i].opt && strlen(cmd->args[i].opt) == len &&
		    strncmp(cmd->args[i].opt, name, len) == 0)
			return &cmd->args[i];
	return NULL;
}

static const struct leapctl_arg *nth_positional(const struct leapctl_cmd *cmd, int k)
{
	for (size_t i = 0; i < nargs(cmd); i++)
		if (!cmd->args[i].opt && k-- == 0)
			return &cmd->args[i];
	return NULL;
}

static int usage_error(const struct leapctl_cmd *cmd, json_t *p)
{
	json_decref(p);
	fprintf(stderr, "\n");
	leapctl_cmd_help(cmd, stderr);
	return -EINVAL;
}

int leapctl_parse_args(const struct leapctl_cmd *cmd, int argc, char **argv, json_t **params)
{
	json_t *p = json_object();
	int npos = 0;

	if (!p)
		return -ENOMEM;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i], *val = NULL, *eq;
		const struct leapctl_arg *a;
		json_t *j;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			json_decref(p);
			leapctl_cmd_help(cmd, stdout);
			return 1;
		}
		if (strncmp(arg, "--", 2) == 0 && arg[2]) {
			eq = strchr(arg, '=');
			a = find_opt(cmd, arg, eq ? (size_t)(eq - arg) : strlen(arg));
			if (!a) {
				fprintf(stderr, "leapctl: unknown option '%s'\n", arg);
				return usage_error(cmd, p);
			}
			if (eq)
				val = eq + 1;
			if (a->type == LEAPCTL_ARG_FLAG) {
				if (val) {
					fprintf(stderr, "leapctl: %s takes no value\n", a->opt);
					return usage_error(cmd, p);
				}
			} else if (!val && (a->flags & LEAPCTL_OPTVAL)) {
				unsigned long long n;

				/* "--watch 2" vs "--watch --ctrl x": a value only if it parses. */
				if (i + 1 < argc && parse_u64(argv[i + 1], &n) == 0)
					val = argv[++i];
			} else if (!val) {
				if (i + 1 >= argc) {
					fprintf(stderr, "leapctl: %s needs a value\n", a->opt);
					return usage_error(cmd, p);
				}
				val = argv[++i];
			}
			j = val ? convert(cmd, a, val) : json_true();
		} else {
			a = nth_positional(cmd, npos);
			if (!a || a->type != LEAPCTL_ARG_KV)
				npos++;
			if (!a) {
				fprintf(stderr, "leapctl: unexpected argument '%s'\n", arg);
				return usage_error(cmd, p);
			}
			j = convert(cmd, a, arg);
		}
		if (!j)
			return usage_error(cmd, p);
		if (a->type == LEAPCTL_ARG_KV) {
			char name[128];
			json_t *obj = json_object_get(p, a->key);

			if (!obj) {
				obj = json_object();
				json_object_set_new(p, a->key, obj);
			}
			snprintf(name, sizeof(name), "%.*s",
				 (int)(strchr(val ? val : arg, '=') - (val ? val : arg)),
				 val ? val : arg);
			json_object_set_new(obj, name, j);
			continue;
		}
		json_object_set_new(p, a->key, j);
	}
	for (size_t i = 0; i < nargs(cmd); i++) {
		const struct leapctl_arg *a = &cmd->args[i];

		if ((a->flags & LEAPCTL_REQUIRED) && !json_object_get(p, a->key)) {
			fprintf(stderr, "leapctl: missing %s\n", a->opt ? a->opt : a->metavar);
			return usage_error(cmd, p);
		}
	}
	*params = p;
	return 0;
}

int leapctl_fail(const char *what, int code, const char *msg)
{
	if (code < 0 && code > -4096 && code != -32700 && code != -32600)
		fprintf(stderr, "leapctl: %s: %s (%s)\n", what, msg ? msg : strerror(-code),
			strerrorname_np(-code) ? strerrorname_np(-code) : "error");
	else
		fprintf(stderr, "leapctl: %s: %s (code %d)\n", what, msg ? msg : "failed", code);
	return 1;
}

int leapctl_cmd_run(const struct leapctl_opts *o, const struct leapctl_cmd *cmd, json_t *params)
{
	json_t *result = NULL;
	char *msg = NULL;
	int rc;

	if (cmd->run)
		return cmd->run(o, cmd, params);
	rc = leapctl_call(o, cmd->method, params, &result, &msg);
	if (rc) {
		rc = leapctl_fail(cmd->method, rc, msg);
		free(msg);
		return rc;
	}
	leapctl_print_result(o, cmd, result);
	json_decref(result);
	return 0;
}

/* stats_get returns controllers with namespaces inside; a table wants one row per namespace. */
static json_t *stats_rows(json_t *result)
{
	json_t *rows = json_array(), *c, *ns;
	size_t i, j;

	json_array_foreach (json_object_get(result, "controllers"), i, c) {
		json_array_foreach (json_object_get(c, "namespaces"), j, ns) {
			json_t *row = json_deep_copy(ns);

			json_object_set(row, "ctrl", json_object_get(c, "name"));
			json_array_append_new(rows, row);
		}
	}
	return rows;
}

static int run_stats(const struct leapctl_opts *o, const struct leapctl_cmd *cmd, json_t *params)
{
	json_t *watch = json_object_get(params, "watch");
	long long period = json_is_integer(watch) ? json_integer_value(watch) : 1;
	bool repeat = watch != NULL;
	int rc = 0;

	if (repeat && period <= 0)
		period = 1;
	json_incref(watch);
	json_object_del(params, "watch");
	for (;;) {
		json_t *result = NULL;
		char *msg = NULL;

		rc = leapctl_call(o, cmd->method, params, &result, &msg);
		if (rc) {
			rc = leapctl_fail(cmd->method, rc, msg);
			free(msg);
			break;
		}
		if (o->json) {
			leapctl_print_result(o, cmd, result);
		} else {
			json_t *rows = stats_rows(result);

			printf("interval %.3f s\n",
			       json_number_value(json_object_get(result, "interval_ms")) / 1000.0);
			leapctl_print_table(stdout, cmd->cols, rows);
			json_decref(rows);
		}
		json_decref(result);
		fflush(stdout);
		if (!repeat)
			break;
		sleep((unsigned int)period);
		if (!o->json)
			printf("\n");
	}
	json_decref(watch);
	return rc;
}

/*
 * bdev create: the backend's own parameters (--param KEY=VALUE) go next to
 * the common ones in bdev_create's params, where the backend module looks
 * for them; leapctl knows no backend type. -EINVAL (after a message) when a
 * key is given twice.
 */
static int bdev_param_merge(json_t *params)
{
	json_t *extra = json_incref(json_object_get(params, "param")), *v;
	const char *k;
	int rc = 0;

	json_object_del(params, "param");
	json_object_foreach (extra, k, v) {
		const char *sv = json_string_value(v);

		if (json_object_get(params, k)) {
			fprintf(stderr, "leapctl: bdev create: '%s' given twice\n", k);
			rc = -EINVAL;
			break;
		}
		if (sv && (strcmp(sv, "true") == 0 || strcmp(sv, "false") == 0))
			json_object_set_new(params, k, json_boolean(sv[0] == 't'));
		else
			json_object_set(params, k, v);
	}
	json_decref(extra);
	return rc;
}

static int run_bdev_create(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			   json_t *params)
{
	json_t *result = NULL;
	char *msg = NULL;
	int rc;

	if (bdev_param_merge(params))
		return LEAP_EXIT_USAGE;
	rc = leapctl_call(o, cmd->method, params, &result, &msg);
	if (rc) {
		rc = leapctl_fail(cmd->method, rc, msg);
		free(msg);
		return rc;
	}
	leapctl_print_result(o, cmd, result);
	json_decref(result);
	return 0;
}

/* bdev mirror OP ...: the op picks the method; the rest are its params. */
static int run_bdev_mirror(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			   json_t *params)
{
	static const char *const ops[][2] = {
		{ "add-leg", "bdev_mirror_add_leg" },
		{ "remove-leg", "bdev_mirror_remove_leg" },
		{ "resync", "bdev_mirror_resync" },
	};
	const char *op = json_string_value(json_object_get(params, "op")), *method = NULL;
	json_t *result = NULL;
	char *msg = NULL;
	int rc;

	for (size_t i = 0; op && i < LEAP_ARRAY_SIZE(ops); i++)
		if (strcmp(op, ops[i][0]) == 0)
			method = ops[i][1];
	if (!method) {
		fprintf(stderr,
			"leapctl: bdev mirror: unknown op '%s' (add-leg, remove-leg, resync)\n",
			op ? op : "");
		return LEAP_EXIT_USAGE;
	}
	json_object_del(params, "op");
	rc = leapctl_call(o, method, params, &result, &msg);
	if (rc) {
		rc = leapctl_fail(method, rc, msg);
		free(msg);
		return rc;
	}
	leapctl_print_result(o, cmd, result);
	json_decref(result);
	return 0;
}

static int run_config_save(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			   json_t *params)
{
	const char *path = json_string_value(json_object_get(params, "path"));
	json_t *result = NULL;
	char *msg = NULL;
	int rc;

	if (leapctl_abs_path(params))
		return 1;
	rc = leapctl_call(o, cmd->method, params, &result, &msg);
	if (rc) {
		rc = leapctl_fail(cmd->method, rc, msg);
		free(msg);
		return rc;
	}
	/* Without a file the configuration itself is the output, so it is always JSON. */
	if (!path || o->json) {
		json_dumpf(result, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	}
	json_decref(result);
	return 0;
}

/* Exit status for a raw exchange: 1 if any answer is an error object, else 0. */
static int raw_status(const char *out)
{
	size_t len = strlen(out), off = 0;
	int rc = 0;

	while (off < len) {
		json_error_t e;
		json_t *v = json_loadb(out + off, len - off, JSON_DISABLE_EOF_CHECK, &e);
		json_t *item;
		size_t i;

		if (!v)
			break;
		off += (size_t)e.position;
		if (json_object_get(v, "error"))
			rc = 1;
		json_array_foreach (v, i, item) {
			if (json_object_get(item, "error"))
				rc = 1;
		}
		json_decref(v);
	}
	return rc;
}

static int run_rpc(const struct leapctl_opts *o, const struct leapctl_cmd *cmd, json_t *params)
{
	const char *raw = json_string_value(json_object_get(params, "raw"));
	const char *method = json_string_value(json_object_get(params, "method"));
	json_t *p = json_object_get(params, "params");
	json_t *result = NULL;
	struct leapctl_opts jo = *o;
	char *msg = NULL, *out = NULL;
	int rc;

	if (raw) {
		if (method) {
			fprintf(stderr, "leapctl: rpc: give either METHOD or --raw\n");
			return 2;
		}
		rc = leapctl_raw(o, raw, &out);
		if (rc)
			return leapctl_fail("rpc --raw", rc, NULL);
		fputs(out, stdout);
		if (out[0] && out[strlen(out) - 1] != '\n')
			fputc('\n', stdout);
		/* Silence is a valid answer: notifications get none. */
		rc = raw_status(out);
		free(out);
		return rc;
	}
	if (!method) {
		fprintf(stderr, "leapctl: rpc: METHOD missing\n\n");
		leapctl_cmd_help(cmd, stderr);
		return 2;
	}
	rc = leapctl_call(o, method, p, &result, &msg);
	if (rc) {
		rc = leapctl_fail(method, rc, msg);
		free(msg);
		return rc;
	}
	jo.json = true;
	leapctl_print_result(&jo, cmd, result);
	json_decref(result);
	return 0;
}

static int subsys_usage(const struct leapctl_cmd *cmd)
{
	fprintf(stderr, "leapctl: subsys host: add and remove take CTRL and HOSTNQN, list only "
			"[CTRL]\n\n");
	leapctl_cmd_help(cmd, stderr);
	return LEAP_EXIT_USAGE;
}

/* "subsys host add|remove|list": one verb, the action picks the method. */
static int run_subsys_host(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			   json_t *params)
{
	const char *action = json_string_value(json_object_get(params, "action"));
	struct leapctl_cmd c = *cmd;
	bool list = strcmp(action, "list") == 0;

	if (list) {
		c.method = "subsys_host_list";
		if (json_object_get(params, "host"))
			return subsys_usage(cmd);
	} else if (strcmp(action, "add") == 0 || strcmp(action, "remove") == 0) {
		c.method = action[0] == 'a' ? "subsys_host_add" : "subsys_host_remove";
		if (!json_object_get(params, "ctrl") || !json_object_get(params, "host"))
			return subsys_usage(cmd);
	} else {
		fprintf(stderr, "leapctl: subsys host: unknown action '%s' (add, remove, list)\n",
			action);
		return LEAP_EXIT_USAGE;
	}
	json_object_del(params, "action");
	c.run = NULL;
	/* add/remove answer with the controller's resulting list: show it as one row. */
	return leapctl_cmd_run(o, &c, params);
}

static int run_allow_any_host(const struct leapctl_opts *o, const struct leapctl_cmd *cmd,
			      json_t *params)
{
	const char *v = json_string_value(json_object_get(params, "allow"));
	struct leapctl_cmd c = *cmd;

	if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
		fprintf(stderr, "leapctl: subsys allow-any-host: want on or off, got '%s'\n", v);
		return LEAP_EXIT_USAGE;
	}
	json_object_set_new(params, "allow", json_boolean(strcmp(v, "on") == 0));
	c.run = NULL;
	return leapctl_cmd_run(o, &c, params);
}
