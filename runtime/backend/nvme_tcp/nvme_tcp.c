// SPDX-License-Identifier: BSD-3-Clause
/*
 * The nvme-tcp backend module: a namespace of a remote NVMe/TCP subsystem
 * as a bdev, through leapio's host library (include/leapio/nvmf_host.h).
 * This file is the module's face to the registry: its parameters (checked
 * here, the transport ID by the library's parser), creation (handed to the
 * admin side, which answers when the controller is connected and the
 * namespace identified), the config it writes back, what bdev_list shows
 * (state, counters) and which operations the remote supports (ONCS).
 * The admin side is nvme_tcp_admin.c, the data path nvme_tcp_io.c; the
 * README in this folder has the whole design.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "nvme_tcp_internal.h"

extern const struct leap_bdev_ops leap_bdev_nvme_tcp_ops;

#define DEF_QUEUES	       4u
#define DEF_QDEPTH	       128u
#define DEF_RECONNECT_DELAY_S  1u
#define DEF_CTRL_LOSS_S	       60u
#define DEF_KATO_MS	       10000u
#define DEF_STALL_TIMEOUT_MS   30000u
#define DEF_CONNECT_TIMEOUT_MS 10000u

static const char *const state_names[] = {
	[NTCP_CONNECTING] = "connecting",
	[NTCP_LIVE] = "live",
	[NTCP_RECONNECTING] = "reconnecting",
	[NTCP_FAILED] = "failed",
};

struct ntcp_params {
	const char *traddr;
	json_t *trsvcid;
	const char *subnqn;
	const char *hostnqn;
	const char *hostid;
	uint32_t nsid;
	bool hdr_digest;
	bool data_digest;
	uint32_t queues;
	uint32_t queue_depth;
	uint32_t reconnect_delay;   /* s */
	uint32_t ctrl_loss_timeout; /* s */
	uint32_t kato_ms;
	uint32_t stall_timeout_ms;
	uint32_t connect_timeout_ms;
};

#define P(n, t, r, f)	    BDEV_PARAM(n, t, r, struct ntcp_params, f)
#define PR(n, t, f, lo, hi) BDEV_PARAM_RANGE(n, t, false, struct ntcp_params, f, lo, hi)

static const struct bdev_param ntcp_spec[] = {
	P("traddr", BDEV_PARAM_STR, true, traddr),
	P("trsvcid", BDEV_PARAM_JSON, false, trsvcid),
	P("subnqn", BDEV_PARAM_STR, true, subnqn),
	P("hostnqn", BDEV_PARAM_STR, false, hostnqn),
	P("hostid", BDEV_PARAM_STR, false, hostid),
	PR("nsid", BDEV_PARAM_U32, nsid, 0, 0xfffffffe),
	P("hdr_digest", BDEV_PARAM_BOOL, false, hdr_digest),
	P("data_digest", BDEV_PARAM_BOOL, false, data_digest),
	PR("queues", BDEV_PARAM_U32, queues, 1, NTCP_MAX_QUEUES),
	PR("queue_depth", BDEV_PARAM_U32, queue_depth, 2, NTCP_MAX_QDEPTH),
	PR("reconnect_delay", BDEV_PARAM_U32, reconnect_delay, 1, 3600),
	PR("ctrl_loss_timeout", BDEV_PARAM_U32, ctrl_loss_timeout, 1, 86400),
	PR("kato_ms", BDEV_PARAM_U32, kato_ms, 0, 3600000),
	PR("stall_timeout_ms", BDEV_PARAM_U32, stall_timeout_ms, 100, 3600000),
	PR("connect_timeout_ms", BDEV_PARAM_U32, connect_timeout_ms, 100, 600000),
};

static bool has_space(const char *s)
{
	for (; s && *s; s++)
		if (isspace((unsigned char)*s))
			return true;
	return false;
}

static void uuid_format(const uint8_t *u, char *buf, size_t len)
{
	snprintf(buf, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

/*
 * The transport ID, through the library's parser (numeric address, port
 * range, NQN and UUID syntax), with the host identity fixed now: every
 * reconnect must present the same host NQN and host ID.
 */
static int trid_build(const struct ntcp_params *p, struct leap_nvmf_trid *t,
		      struct leap_bdev_err *err)
{
	const char *fields[] = { p->traddr, p->subnqn, p->hostnqn, p->hostid };
	const char *names[] = { "traddr", "subnqn", "hostnqn", "hostid" };
	char port[16] = "4420", str[1024], perr[256], id[40];
	int n;

	for (size_t i = 0; i < LEAP_ARRAY_SIZE(fields); i++)
		if (has_space(fields[i]) || (fields[i] && !fields[i][0]))
			return bdev_err(err, -EINVAL,
					"invalid params: '%s' must be non-empty, without spaces",
					names[i]);
	if (json_is_integer(p->trsvcid))
		snprintf(port, sizeof(port), "%lld", (long long)json_integer_value(p->trsvcid));
	else if (json_is_string(p->trsvcid) && !has_space(json_string_value(p->trsvcid)) &&
		 strlen(json_string_value(p->trsvcid)) < sizeof(port))
		snprintf(port, sizeof(port), "%s", json_string_value(p->trsvcid));
	else if (p->trsvcid)
		return bdev_err(err, -EINVAL, "invalid params: 'trsvcid' must be a TCP port");
	n = snprintf(str, sizeof(str), "trtype:tcp traddr:%s trsvcid:%s subnqn:%s%s%s%s%s%s%s",
		     p->traddr, port, p->subnqn, p->hostnqn ? " hostnqn:" : "",
		     p->hostnqn ? p->hostnqn : "", p->hostid ? " hostid:" : "",
		     p->hostid ? p->hostid : "", p->hdr_digest ? " hdgst:1" : "",
		     p->data_digest ? " ddgst:1" : "");
	if (n < 0 || (size_t)n >= sizeof(str))
		return bdev_err(err, -EINVAL, "invalid params: transport ID too long");
	if (leap_nvmf_trid_parse(t, str, perr, sizeof(perr)))
		return bdev_err(err, -EINVAL, "invalid params: %s", perr);
	if (!t->hostid_set) {
		if (getrandom(t->hostid, sizeof(t->hostid), 0) != sizeof(t->hostid))
			return bdev_err(err, -EIO, "getrandom: no host ID");
		/* RFC 4122 version 4, variant 1. */
		t->hostid[6] = (uint8_t)((t->hostid[6] & 0x0f) | 0x40);
		t->hostid[8] = (uint8_t)((t->hostid[8] & 0x3f) | 0x80);
		t->hostid_set = true;
	}
	if (!t->hostnqn[0]) {
		uuid_format(t->hostid, id, sizeof(id));
		snprintf(t->hostnqn, sizeof(t->hostnqn), NVMF_NQN_UUID_PREFIX "%s", id);
	}
	return 0;
}

static int ntcp_create(const struct leap_bdev_common_params *common, const json_t *params,
		       struct leap_bdev_err *err, leap_bdev_create_cb cb, void *cb_arg)
{
	struct ntcp_params p = {
		.queues = DEF_QUEUES,
		.queue_depth = DEF_QDEPTH,
		.reconnect_delay = DEF_RECONNECT_DELAY_S,
		.ctrl_loss_timeout = DEF_CTRL_LOSS_S,
		.kato_ms = DEF_KATO_MS,
		.stall_timeout_ms = DEF_STALL_TIMEOUT_MS,
		.connect_timeout_ms = DEF_CONNECT_TIMEOUT_MS,
	};
	struct leap_nvmf_trid trid;
	struct ntcp_bdev *nb;
	json_t *bs;
	int rc;

	rc = bdev_params_decode(params, ntcp_spec, LEAP_ARRAY_SIZE(ntcp_spec), &p, err);
	if (rc)
		return rc;
	if (p.kato_ms && p.kato_ms < 1000)
		return bdev_err(
		    err, -EINVAL,
		    "invalid params: 'kato_ms' must be 0 (off) or at least 1000, got %u",
		    p.kato_ms);
	rc = trid_build(&p, &trid, err);
	if (rc)
		return rc;
	nb = calloc(1, sizeof(*nb));
	if (!nb) {
		cb(cb_arg, bdev_err(err, -ENOMEM, "out of memory"), NULL);
		return 0;
	}
	bdev_init_common(&nb->base, &leap_bdev_nvme_tcp_ops, common);
	bs = json_object_get(params, "block_size");
	nb->size_given = common->size != 0;
	nb->block_size_given = bs && !json_is_null(bs);
	nb->trid = trid;
	nb->nsid = p.nsid;
	nb->queues = p.queues;
	nb->queue_depth = p.queue_depth;
	nb->reconnect_delay_ms = p.reconnect_delay * 1000;
	nb->ctrl_loss_ms = p.ctrl_loss_timeout * 1000;
	nb->kato_ms = p.kato_ms;
	nb->stall_timeout_ms = p.stall_timeout_ms;
	nb->connect_timeout_ms = p.connect_timeout_ms;
	nb->create_cb = cb;
	nb->create_arg = cb_arg;
	nb->create_err = err;
	pthread_mutex_init(&nb->lock, NULL);
	rc = ntcp_admin_start(nb, err);
	if (rc) {
		pthread_mutex_destroy(&nb->lock);
		free(nb);
		cb(cb_arg, rc, NULL);
	}
	return 0;
}

static void ntcp_destroy(struct leap_bdev *bdev)
{
	struct ntcp_bdev *nb = to_nb(bdev);

	ntcp_admin_stop(nb);
	pthread_mutex_destroy(&nb->lock);
	free(nb);
}

static int ntcp_write_config(const struct leap_bdev *bdev, json_t *out)
{
	const struct ntcp_bdev *nb = (const struct ntcp_bdev *)bdev;
	char id[40];

	uuid_format(nb->trid.hostid, id, sizeof(id));
	if (json_object_set_new(out, "traddr", json_string(nb->trid.traddr)) ||
	    json_object_set_new(out, "trsvcid", json_string(nb->trid.trsvcid)) ||
	    json_object_set_new(out, "subnqn", json_string(nb->trid.subnqn)) ||
	    json_object_set_new(out, "nsid", json_integer(nb->nsid)) ||
	    json_object_set_new(out, "hostnqn", json_string(nb->trid.hostnqn)) ||
	    json_object_set_new(out, "hostid", json_string(id)) ||
	    json_object_set_new(out, "hdr_digest", json_boolean(nb->trid.hdgst)) ||
	    json_object_set_new(out, "data_digest", json_boolean(nb->trid.ddgst)) ||
	    json_object_set_new(out, "queues", json_integer(nb->queues)) ||
	    json_object_set_new(out, "queue_depth", json_integer(nb->queue_depth)) ||
	    json_object_set_new(out, "reconnect_delay",
				json_integer(nb->reconnect_delay_ms / 1000)) ||
	    json_object_set_new(out, "ctrl_loss_timeout", json_integer(nb->ctrl_loss_ms / 1000)) ||
	    json_object_set_new(out, "kato_ms", json_integer(nb->kato_ms)) ||
	    json_object_set_new(out, "stall_timeout_ms", json_integer(nb->stall_timeout_ms)) ||
	    json_object_set_new(out, "connect_timeout_ms", json_integer(nb->connect_timeout_ms)))
		return -ENOMEM;
	return 0;
}

static json_t *u64(_Atomic uint64_t *v)
{
	return json_integer((json_int_t)atomic_load_explicit(v, memory_order_relaxed));
}

static int ntcp_dump_info(const struct leap_bdev *bdev, json_t *out)
{
	struct ntcp_bdev *nb = (struct ntcp_bdev *)bdev;
	int st = atomic_load_explicit(&nb->state, memory_order_relaxed);
	uint64_t held, outstanding;
	char reason[256];
	uint16_t cntlid;
	json_t *c, *r;

	if (ntcp_write_config(bdev, out))
		return -ENOMEM;
	pthread_mutex_lock(&nb->lock);
	snprintf(reason, sizeof(reason), "%s", nb->reason);
	cntlid = nb->cntlid_now;
	pthread_mutex_unlock(&nb->lock);
	ntcp_channels_held(nb, &held, &outstanding);
	c = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I}", "connects",
		      u64(&nb->n_connects), "losses", u64(&nb->n_losses), "connect_attempts",
		      u64(&nb->n_attempts), "io_queue_resets", u64(&nb->n_resets_io), "retried",
		      u64(&nb->n_retried), "path_failed", u64(&nb->n_path_failed), "remote_errors",
		      u64(&nb->n_remote_errors), "held", (json_int_t)held, "outstanding",
		      (json_int_t)outstanding);
	r = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:b, s:b}", "model",
		      nb->mn, "serial", nb->sn, "firmware", nb->fr, "cntlid", cntlid, "lba_size",
		      1 << nb->lba_shift, "max_transfer", (int)nb->max_cmd, "io_queues_granted",
		      nb->nr_io, "io_queue_depth", nb->io_qdepth, "oncs", nb->oncs, "write_zeroes",
		      (nb->oncs & NVME_ONCS_WRITE_ZEROES) != 0, "deallocate",
		      nb->dealloc_dsm || nb->dealloc_wz, "volatile_write_cache",
		      (nb->vwc & 1) != 0);
	if (!c || !r) {
		json_decref(c);
		json_decref(r);
		return -ENOMEM;
	}
	if (json_object_set_new(out, "state", json_string(state_names[st])) ||
	    json_object_set_new(out, "reason", json_string(reason)) ||
	    json_object_set_new(out, "counters", c) || json_object_set_new(out, "remote", r))
		return -ENOMEM;
	return 0;
}

/* What the remote's ONCS (and DLFEAT, for Deallocate reading back zeroes) allows. */
static bool ntcp_io_type_supported(const struct leap_bdev *bdev, enum leap_bdev_op op)
{
	const struct ntcp_bdev *nb = (const struct ntcp_bdev *)bdev;

	switch (op) {
	case LEAP_BDEV_OP_READ:
	case LEAP_BDEV_OP_WRITE:
	case LEAP_BDEV_OP_FLUSH:
		return true;
	case LEAP_BDEV_OP_WRITE_ZEROES:
		return nb->oncs & NVME_ONCS_WRITE_ZEROES;
	case LEAP_BDEV_OP_DEALLOCATE:
		return nb->dealloc_dsm || nb->dealloc_wz;
	default:
		return false;
	}
}

const struct leap_bdev_ops leap_bdev_nvme_tcp_ops = {
	.type = NTCP_TYPE,
	.create = ntcp_create,
	.destroy = ntcp_destroy,
	.write_config = ntcp_write_config,
	.dump_info = ntcp_dump_info,
	.io_type_supported = ntcp_io_type_supported,
	.channel_open = ntcp_channel_open,
	.channel_close = ntcp_channel_close,
	.submit = ntcp_submit,
	.poll = ntcp_poll,
	.channel_wake_fd = ntcp_channel_wake_fd,
	.sleep_prepare = ntcp_sleep_prepare,
	.sleep_done = ntcp_sleep_done,
	.abort = ntcp_abort,
	.shutdown = ntcp_shutdown,
};

LEAP_BDEV_MODULE_REGISTER(leap_bdev_nvme_tcp_ops)
