// SPDX-License-Identifier: BSD-3-Clause
/*
 * The nvme-tcp backend's admin side: one poller per bdev on the module's own
 * reactor thread ("nvme-tcp", unpinned, asleep between timer ticks), so no
 * tenant reactor ever waits for a connect. It runs an association through
 *
 *   BRINGUP (the nvmf controller state machine: admin Connect, CAP, CC.EN,
 *   RDY, Identify Controller) -> NUM_QUEUES -> [NS_LIST] -> ID_NS -> LIVE
 *
 * and on loss (admin queue failed, Keep Alive unanswered for KATO, or a
 * channel reporting its I/O queue broken) withdraws LIVE from `assoc` (every
 * channel then drops its queue and holds its I/O), waits reconnect_delay,
 * and tries again, the delay doubling per failed attempt up to 8x (at most
 * NTCP_BACKOFF_MAX_MS unless the delay itself is longer). An outage longer
 * than ctrl_loss_timeout sets FAILED: held and new I/O fail with the path
 * status while reconnects go on; the next success clears it.
 *
 * A reconnect re-identifies the namespace and refuses one whose LBA size,
 * size or identifiers changed: held writes must land on the disk they were
 * meant for. The first bring-up answers bdev_create (the reason word for
 * word on failure) and is not retried.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "core/reactor.h"
#include "nvme_tcp_internal.h"

#define PERIOD_BRINGUP_US 1000
#define PERIOD_IDLE_US	  10000

enum admin_step {
	AS_BRINGUP,    /* leap_nvmf_ctrl_poll() until the controller is ready */
	AS_NUM_QUEUES, /* Set Features Number of Queues in flight */
	AS_NS_LIST,    /* Identify active namespace list (no nsid given) */
	AS_ID_NS,      /* Identify Namespace */
	AS_LIVE,
	AS_WAIT, /* back-off before the next attempt */
	AS_DEAD, /* creation failed or stopped: the poller is gone */
};

static const char *const step_names[] = {
	"bringing the controller up",
	"setting the number of queues",
	"listing active namespaces",
	"identifying the namespace",
	"live",
	"waiting to reconnect",
	"stopped",
};

struct ntcp_admin {
	struct ntcp_bdev *nb;
	struct leap_poller *poller;
	struct leap_nvmf_ctrl *ctrl;
	enum admin_step step;
	bool first; /* this bring-up answers bdev_create */
	bool cmd_done;
	struct nvme_cqe cqe;
	void *idbuf; /* NVME_IDENTIFY_SIZE */
	uint32_t epoch;
	uint32_t period_us;
	uint32_t tries;		/* failed attempts in this outage */
	uint64_t deadline_ns;	/* of the attempt being brought up */
	uint64_t loss_ns;	/* when the outage began; 0: none */
	uint64_t next_try_ns;	/* AS_WAIT */
	uint64_t busy_since_ns; /* admin commands outstanding since (Keep Alive watchdog) */
	/* ntcp_admin_stop() waits for the admin thread to let go. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopped;
};

/* ---- the module's reactor ---------------------------------------------- */

static pthread_once_t reactor_once = PTHREAD_ONCE_INIT;
static struct leap_reactor *admin_reactor;
static int admin_reactor_err;

static void reactor_init(void)
{
	/*
	 * Admin work is a few commands a second: sleep almost at once, and
	 * let the pollers' periods bound each sleep.
	 */
	struct leap_reactor_opts o = {
		.cpu = -1, .idle_sleep_us = 20, .name = "nvme-tcp", .sleep_timeout_ms = 100
	};
	struct leap_reactor *r;
	int rc = leap_reactor_create(&o, &r);

	if (!rc) {
		rc = leap_reactor_start(r);
		if (rc)
			leap_reactor_destroy(r);
	}
	admin_reactor_err = rc;
	admin_reactor = rc ? NULL : r;
}

/* Messages to our reactor: retried while its ring is full (control threads only). */
static int send_msg(void (*fn)(void *), void *arg)
{
	int rc;

	while ((rc = leap_reactor_send_msg(admin_reactor, fn, arg)) == -EAGAIN)
		usleep(100);
	return rc;
}

/* ---- state helpers ------------------------------------------------------ */

void ntcp_set_reason(struct ntcp_bdev *nb, bool log, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&nb->lock);
	va_start(ap, fmt);
	vsnprintf(nb->reason, sizeof(nb->reason), fmt, ap);
	va_end(ap);
	if (log)
		LEAP_WARN(NTCP_TYPE, "%s: %s", nb->base.name, nb->reason);
	pthread_mutex_unlock(&nb->lock);
}

static void set_period(struct ntcp_admin *a, uint32_t us)
{
	if (a->period_us != us) {
		a->period_us = us;
		leap_poller_set_period(a->poller, us);
	}
}

static void publish(struct ntcp_bdev *nb, uint64_t assoc, enum ntcp_state st)
{
	/* Release: a channel that reads this epoch also reads the geometry set before it. */
	atomic_store_explicit(&nb->assoc, assoc, memory_order_release);
	atomic_store_explicit(&nb->state, st, memory_order_relaxed);
	/* After the store: a sleeping channel wakes and sees it (ntcp_sleep_prepare). */
	ntcp_channels_kick(nb);
}

static void drop_ctrl(struct ntcp_admin *a)
{
	/* Outstanding admin commands complete (aborted) into a->cqe; nothing else refers to it. */
	leap_nvmf_ctrl_destroy(a->ctrl);
	a->ctrl = NULL;
	a->cmd_done = false;
	a->busy_since_ns = 0;
}

/* The poller is gone and nobody else refers to a or (on a failed create) nb. */
static void admin_free(struct ntcp_admin *a)
{
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	free(a->idbuf);
	free(a);
}

/* Answer bdev_create. On failure the bdev was never registered: free it all. */
static void finish_create(struct ntcp_admin *a, int rc, const char *msg)
{
	struct ntcp_bdev *nb = a->nb;
	leap_bdev_create_cb cb = nb->create_cb;
	void *arg = nb->create_arg;

	a->first = false;
	if (!rc) {
		cb(arg, 0, &nb->base);
		return;
	}
	bdev_err(nb->create_err, rc, "%s", msg);
	drop_ctrl(a);
	leap_poller_unregister(a->poller);
	a->poller = NULL;
	a->step = AS_DEAD;
	nb->admin = NULL;
	pthread_mutex_destroy(&nb->lock);
	free(nb);
	admin_free(a);
	cb(arg, rc, NULL);
}

/* A word of explanation for the Connect statuses users meet most. */
static const char *connect_hint(const struct ntcp_bdev *nb, int rc, const char *reason, char *buf,
				size_t len)
{
	buf[0] = 0;
	if (rc == -EACCES)
		snprintf(buf, len, " (host NQN '%s' is not allowed by the target)",
			 nb->trid.hostnqn);
	else if (strstr(reason, "at byte 256 of the Connect data"))
		snprintf(buf, len, " (the target has no subsystem '%s')", nb->trid.subnqn);
	else if (strstr(reason, "at byte 512 of the Connect data"))
		snprintf(buf, len, " (host NQN '%s' refused)", nb->trid.hostnqn);
	return buf;
}

static uint64_t backoff_ms(const struct ntcp_bdev *nb, uint32_t tries)
{
	uint64_t d = (uint64_t)nb->reconnect_delay_ms << (tries < 3 ? tries : 3);
	uint64_t cap = LEAP_MAX((uint64_t)NTCP_BACKOFF_MAX_MS, (uint64_t)nb->reconnect_delay_ms);

	return LEAP_MIN(d, cap);
}

/* An attempt failed: the first one answers bdev_create, later ones back off. */
static void attempt_failed(struct ntcp_admin *a, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void attempt_failed(struct ntcp_admin *a, int rc, const char *fmt, ...)
{
	struct ntcp_bdev *nb = a->nb;
	char msg[320], hint[300];
	uint64_t wait;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	connect_hint(nb, rc, msg, hint, sizeof(hint));
	if (a->first) {
		char full[sizeof(msg) + sizeof(hint)];

		snprintf(full, sizeof(full), "%s%s", msg, hint);
		finish_create(a, rc, full);
		return;
	}
	drop_ctrl(a);
	wait = backoff_ms(nb, a->tries++);
	ntcp_set_reason(nb, false, "reconnect attempt %u failed: %s%s", a->tries, msg, hint);
	LEAP_INFO(NTCP_TYPE, "%s: reconnect attempt %u failed: %s%s; next in %llu ms",
		  nb->base.name, a->tries, msg, hint, (unsigned long long)wait);
	a->next_try_ns = ntcp_now_ns() + wait * 1000000ull;
	a->step = AS_WAIT;
	set_period(a, PERIOD_IDLE_US);
}

/* The live association is gone: channels drop their queues and hold their I/O. */
static void lost(struct ntcp_admin *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void lost(struct ntcp_admin *a, const char *fmt, ...)
{
	struct ntcp_bdev *nb = a->nb;
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	publish(nb, a->epoch | (uint64_t)leap_nvmf_ctrl_cntlid(a->ctrl) << 32, NTCP_RECONNECTING);
	atomic_fetch_add_explicit(&nb->n_losses, 1, memory_order_relaxed);
	drop_ctrl(a);
	ntcp_set_reason(nb, false, "connection lost: %s", msg);
	LEAP_WARN(NTCP_TYPE, "%s: connection to %s:%s lost: %s; holding I/O, reconnecting in %u ms",
		  nb->base.name, nb->trid.traddr, nb->trid.trsvcid, msg, nb->reconnect_delay_ms);
	a->loss_ns = ntcp_now_ns();
	a->tries = 0;
	/* Not at once: the old association's commands get time to drain at the target. */
	a->next_try_ns = a->loss_ns + (uint64_t)nb->reconnect_delay_ms * 1000000ull;
	a->step = AS_WAIT;
	set_period(a, PERIOD_IDLE_US);
}

static void check_loss_timeout(struct ntcp_admin *a, uint64_t now)
{
	struct ntcp_bdev *nb = a->nb;
	bool stopping = atomic_load_explicit(&nb->stopping, memory_order_relaxed);

	/* Stopping: after one attempt since the loss (a loss of the shutdown's own making heals). */
	if (!a->loss_ns || (stopping && !a->tries) ||
	    (!stopping && now - a->loss_ns < (uint64_t)nb->ctrl_loss_ms * 1000000ull) ||
	    atomic_load_explicit(&nb->state, memory_order_relaxed) == NTCP_FAILED)
		return;
	publish(nb, atomic_load_explicit(&nb->assoc, memory_order_relaxed) | NTCP_ASSOC_FAILED,
		NTCP_FAILED);
	if (stopping) {
		LEAP_WARN(NTCP_TYPE,
			  "%s: leapd is stopping and %s:%s is unreachable: failing held "
			  "I/O with path errors",
			  nb->base.name, nb->trid.traddr, nb->trid.trsvcid);
		return;
	}
	LEAP_ERR(NTCP_TYPE,
		 "%s: %s:%s unreachable for %u ms (ctrl_loss_timeout): failing I/O with path "
		 "errors, still reconnecting",
		 nb->base.name, nb->trid.traddr, nb->trid.trsvcid, nb->ctrl_loss_ms);
}

/* ---- one attempt -------------------------------------------------------- */

static void cmd_cb(void *arg, const struct nvme_cqe *cqe)
{
	struct ntcp_admin *a = arg;

	a->cqe = *cqe;
	a->cmd_done = true;
}

static void attempt_start(struct ntcp_admin *a, uint64_t now)
{
	struct ntcp_bdev *nb = a->nb;
	struct leap_nvmf_ctrl_opts o;
	int rc;

	leap_nvmf_ctrl_opts_init(&o);
	o.nr_io_queues = 0; /* channels connect their own I/O queues */
	o.io_qdepth = (uint16_t)nb->queue_depth;
	o.kato_ms = nb->kato_ms;
	o.timeout_ms = (int)nb->connect_timeout_ms;
	atomic_fetch_add_explicit(&nb->n_attempts, 1, memory_order_relaxed);
	a->deadline_ns = now + (uint64_t)nb->connect_timeout_ms * 1000000ull;
	a->cmd_done = false;
	a->step = AS_BRINGUP;
	set_period(a, PERIOD_BRINGUP_US);
	rc = leap_nvmf_ctrl_create(&nb->trid, &o, &a->ctrl);
	if (rc)
		attempt_failed(a, rc, "cannot start a connection to %s:%s: %s", nb->trid.traddr,
			       nb->trid.trsvcid, strerror(-rc));
}

static void trim_copy(char *dst, const char *src, size_t n)
{
	memcpy(dst, src, n);
	dst[n] = 0;
	while (n && (dst[n - 1] == ' ' || dst[n - 1] == 0))
		dst[--n] = 0;
}

/* The first bring-up decides the bdev's geometry from Identify Controller/Namespace. */
static int geometry_set(struct ntcp_admin *a, const struct nvme_id_ns *id, uint32_t lbads,
			char *msg, size_t len)
{
	struct ntcp_bdev *nb = a->nb;
	const struct nvme_id_ctrl *ic = leap_nvmf_ctrl_id(a->ctrl);
	uint32_t lba = 1u << lbads, max = leap_nvmf_ctrl_max_xfer(a->ctrl);
	uint64_t remote = id->nsze << lbads;

	if (nb->block_size_given && nb->base.block_size < lba) {
		snprintf(msg, len, "block_size %u is smaller than the namespace's LBA size %u",
			 nb->base.block_size, lba);
		return -EINVAL;
	}
	if (!nb->block_size_given)
		nb->base.block_size = lba <= 512 ? 512 : 4096;
	if (nb->size_given && nb->base.size > remote) {
		snprintf(msg, len, "size %llu exceeds the namespace's %llu bytes",
			 (unsigned long long)nb->base.size, (unsigned long long)remote);
		return -EINVAL;
	}
	if (!nb->size_given)
		nb->base.size = remote / nb->base.block_size * nb->base.block_size;
	if (!nb->base.size) {
		snprintf(msg, len, "namespace %u holds %llu bytes, less than one %u-byte block",
			 nb->nsid, (unsigned long long)remote, nb->base.block_size);
		return -EINVAL;
	}
	if (!max || max > NTCP_MAX_CMD_BYTES)
		max = NTCP_MAX_CMD_BYTES;
	if (max < lba) {
		snprintf(msg, len, "MDTS allows %u bytes per command, less than one block", max);
		return -EOPNOTSUPP;
	}
	nb->max_cmd = max & ~(lba - 1);
	nb->lba_shift = lbads;
	nb->nsze = id->nsze;
	nb->io_qdepth = leap_nvmf_ctrl_io_qdepth(a->ctrl);
	/* IOCCSZ counts 16-byte units including the 64-byte SQE. */
	nb->icd_max = ic->ioccsz > 4 ? (ic->ioccsz - 4) * 16 : 0;
	nb->oncs = ic->oncs;
	nb->vwc = ic->vwc;
	nb->dlfeat = id->dlfeat;
	/* Deallocate must read back as zeroes (the bdev contract): DSM only if DLFEAT says so. */
	nb->dealloc_dsm = (ic->oncs & NVME_ONCS_DSM) && (id->dlfeat & 7) == NVME_DLFEAT_READ_ZEROES;
	nb->dealloc_wz = !nb->dealloc_dsm && (ic->oncs & NVME_ONCS_WRITE_ZEROES);
	memcpy(nb->nguid, id->nguid, sizeof(nb->nguid));
	memcpy(nb->eui64, id->eui64, sizeof(nb->eui64));
	trim_copy(nb->mn, ic->mn, sizeof(ic->mn));
	trim_copy(nb->sn, ic->sn, sizeof(ic->sn));
	trim_copy(nb->fr, ic->fr, sizeof(ic->fr));
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Identify Namespace answered: check it (and on a reconnect, that it is the same one). */
static int ns_check(struct ntcp_admin *a, char *msg, size_t len)
{
	struct ntcp_bdev *nb = a->nb;
	const struct nvme_id_ns *id = a->idbuf;
	uint32_t fmt = id->flbas & 0xf;
	uint32_t lbads;

	if (id->nlbaf >= 16)
		fmt |= (uint32_t)((id->flbas >> 5) & 3) << 4;
	if (!id->nsze) {
		snprintf(msg, len, "namespace %u is not active on %s", nb->nsid, nb->trid.subnqn);
		return -ENOENT;
	}
	if (id->lbaf[fmt].ms) {
		snprintf(msg, len, "namespace %u has %u bytes of metadata per block (unsupported)",
			 nb->nsid, id->lbaf[fmt].ms);
		return -EOPNOTSUPP;
	}
	lbads = id->lbaf[fmt].lbads;
	if (lbads < 9 || lbads > 12) {
		snprintf(msg, len, "namespace %u has %u-byte blocks (512..4096 supported)",
			 nb->nsid, lbads < 32 ? 1u << lbads : 0);
		return -EOPNOTSUPP;
	}
	if (a->first)
		return geometry_set(a, id, lbads, msg, len);
	if (lbads != nb->lba_shift || (id->nsze << lbads) < nb->base.size ||
	    (!all_zero(nb->nguid, 16) && memcmp(nb->nguid, id->nguid, 16)) ||
	    (!all_zero(nb->eui64, 8) && memcmp(nb->eui64, id->eui64, 8))) {
		snprintf(msg, len,
			 "namespace %u changed while disconnected (size, block size or identifiers "
			 "differ): not reattaching",
			 nb->nsid);
		return -ESTALE;
	}
	return 0;
}

static void go_live(struct ntcp_admin *a)
{
	struct ntcp_bdev *nb = a->nb;
	uint16_t cntlid = leap_nvmf_ctrl_cntlid(a->ctrl);
	uint64_t now = ntcp_now_ns();

	a->epoch++;
	pthread_mutex_lock(&nb->lock);
	nb->cntlid_now = cntlid;
	pthread_mutex_unlock(&nb->lock);
	publish(nb, a->epoch | (uint64_t)cntlid << 32 | NTCP_ASSOC_LIVE, NTCP_LIVE);
	atomic_fetch_add_explicit(&nb->n_connects, 1, memory_order_relaxed);
	if (a->loss_ns)
		LEAP_INFO(NTCP_TYPE, "%s: reconnected to %s:%s (cntlid %u) after %llu ms",
			  nb->base.name, nb->trid.traddr, nb->trid.trsvcid, cntlid,
			  (unsigned long long)((now - a->loss_ns) / 1000000));
	a->loss_ns = 0;
	a->tries = 0;
	a->busy_since_ns = 0;
	a->step = AS_LIVE;
	set_period(a, PERIOD_IDLE_US);
	if (a->first)
		finish_create(a, 0, NULL);
}

static void next_admin_cmd(struct ntcp_admin *a)
{
	struct ntcp_bdev *nb = a->nb;
	struct leap_nvmf_qpair *q = leap_nvmf_ctrl_admin_qpair(a->ctrl);
	int rc;

	a->cmd_done = false;
	memset(a->idbuf, 0, NVME_IDENTIFY_SIZE);
	switch (a->step) {
	case AS_NUM_QUEUES:
		rc = leap_nvmf_admin_set_num_queues(q, (uint16_t)nb->queues, cmd_cb, a);
		break;
	case AS_NS_LIST:
		rc = leap_nvmf_admin_identify(q, NVME_CNS_ACTIVE_NS_LIST, 0, a->idbuf, cmd_cb, a);
		break;
	default:
		rc = leap_nvmf_admin_identify(q, NVME_CNS_NS, nb->nsid, a->idbuf, cmd_cb, a);
		break;
	}
	if (rc)
		attempt_failed(a, rc, "cannot submit while %s: %s", step_names[a->step],
			       strerror(-rc));
}

/* An admin command of ours answered: check it and take the next step. */
static void step_done(struct ntcp_admin *a)
{
	struct ntcp_bdev *nb = a->nb;
	uint16_t st = nvmf_cqe_status(&a->cqe);
	char msg[256];
	uint32_t granted;
	int rc;

	a->cmd_done = false;
	if (st & 0x7ff) {
		static const char *const cmd_names[] = {
			[AS_NUM_QUEUES] = "Set Features Number of Queues",
			[AS_NS_LIST] = "Identify Active Namespace List",
			[AS_ID_NS] = "Identify Namespace",
		};

		attempt_failed(a, a->step == AS_ID_NS ? -ENOENT : -EIO,
			       "%s (nsid %u) failed: status 0x%03x (%s)", cmd_names[a->step],
			       nb->nsid, st & 0x7ff, leap_nvmf_status_str(st));
		return;
	}
	switch (a->step) {
	case AS_NUM_QUEUES:
		granted = LEAP_MIN((a->cqe.dw0 & 0xffff) + 1, (a->cqe.dw0 >> 16) + 1);
		granted = LEAP_MIN(granted, nb->queues);
		if (a->first)
			nb->nr_io = (uint16_t)granted;
		else if (granted < nb->nr_io)
			LEAP_WARN(NTCP_TYPE, "%s: the target now grants %u I/O queues, was %u",
				  nb->base.name, granted, nb->nr_io);
		a->step = nb->nsid ? AS_ID_NS : AS_NS_LIST;
		break;
	case AS_NS_LIST: {
		const uint8_t *l = a->idbuf;

		nb->nsid = (uint32_t)l[0] | (uint32_t)l[1] << 8 | (uint32_t)l[2] << 16 |
			   (uint32_t)l[3] << 24;
		if (!nb->nsid) {
			attempt_failed(a, -ENOENT, "subsystem %s has no active namespace",
				       nb->trid.subnqn);
			return;
		}
		a->step = AS_ID_NS;
		break;
	}
	case AS_ID_NS:
		rc = ns_check(a, msg, sizeof(msg));
		if (rc) {
			if (rc == -ESTALE)
				check_loss_timeout(a, ntcp_now_ns());
			attempt_failed(a, rc, "%s", msg);
			return;
		}
		go_live(a);
		return;
	default:
		return;
	}
	next_admin_cmd(a);
}

/* ---- the poller ---------------------------------------------------------- */

static int poll_bringup(struct ntcp_admin *a, uint64_t now)
{
	int rc = leap_nvmf_ctrl_poll(a->ctrl);

	if (a->step == AS_BRINGUP) {
		if (rc == -EAGAIN)
			return LEAP_POLL_IDLE;
		if (rc < 0) {
			attempt_failed(a, rc, "%s", leap_nvmf_ctrl_reason(a->ctrl));
			return LEAP_POLL_BUSY;
		}
		a->step = AS_NUM_QUEUES;
		next_admin_cmd(a);
		return LEAP_POLL_BUSY;
	}
	if (rc < 0 && rc != -EAGAIN) {
		attempt_failed(a, rc, "%s", leap_nvmf_ctrl_reason(a->ctrl));
		return LEAP_POLL_BUSY;
	}
	if (a->cmd_done) {
		step_done(a);
		return LEAP_POLL_BUSY;
	}
	if (now > a->deadline_ns) {
		attempt_failed(a, -ETIMEDOUT, "timed out after %u ms while %s",
			       a->nb->connect_timeout_ms, step_names[a->step]);
		return LEAP_POLL_BUSY;
	}
	return LEAP_POLL_IDLE;
}

static int poll_live(struct ntcp_admin *a, uint64_t now)
{
	struct ntcp_bdev *nb = a->nb;
	int rc = leap_nvmf_ctrl_poll(a->ctrl); /* also sends Keep Alive every KATO/2 */

	if (rc < 0) {
		lost(a, "%s", leap_nvmf_ctrl_reason(a->ctrl));
		return LEAP_POLL_BUSY;
	}
	/*
	 * The library sends Keep Alive but does not time it: a target that
	 * stopped answering (a black-holed network sends no RST) is lost when
	 * an admin command has been waiting for KATO.
	 */
	if (leap_nvmf_qpair_outstanding(leap_nvmf_ctrl_admin_qpair(a->ctrl))) {
		if (!a->busy_since_ns)
			a->busy_since_ns = now;
		else if (nb->kato_ms &&
			 now - a->busy_since_ns > (uint64_t)nb->kato_ms * 1000000ull) {
			lost(a, "Keep Alive not answered within %u ms", nb->kato_ms);
			return LEAP_POLL_BUSY;
		}
	} else {
		a->busy_since_ns = 0;
	}
	if (atomic_load_explicit(&nb->reset_req, memory_order_relaxed) == a->epoch) {
		char why[256];

		pthread_mutex_lock(&nb->lock);
		snprintf(why, sizeof(why), "%s", nb->reason);
		pthread_mutex_unlock(&nb->lock);
		lost(a, "%s", why);
		return LEAP_POLL_BUSY;
	}
	return LEAP_POLL_IDLE;
}

static int admin_poll(void *arg)
{
	struct ntcp_admin *a = arg;
	uint64_t now = ntcp_now_ns();

	switch (a->step) {
	case AS_LIVE:
		return poll_live(a, now);
	case AS_WAIT:
		check_loss_timeout(a, now);
		/* Stopping: the first attempt since the loss goes now; it decides. */
		if (now < a->next_try_ns &&
		    (a->tries || !atomic_load_explicit(&a->nb->stopping, memory_order_relaxed)))
			return LEAP_POLL_IDLE;
		attempt_start(a, now);
		return LEAP_POLL_BUSY;
	case AS_DEAD:
		return LEAP_POLL_IDLE;
	default:
		check_loss_timeout(a, now);
		return poll_bringup(a, now);
	}
}

static const struct leap_poller_ops admin_poller_ops = { .poll = admin_poll };

/*
 * leapd is stopping: a path that is down gets one more attempt at once (the
 * loss may be of the shutdown's own making), and if that fails the admin
 * poller, which runs at least every PERIOD_IDLE_US, fails what the channels
 * hold as if ctrl_loss_timeout had passed. A live association is left
 * alone: its I/O completes at the target.
 */
void ntcp_shutdown(struct leap_bdev *bdev)
{
	struct ntcp_bdev *nb = (struct ntcp_bdev *)bdev;

	atomic_store_explicit(&nb->stopping, true, memory_order_relaxed);
}

/* ---- start and stop (messages to the admin thread) ------------------------ */

static void start_msg(void *arg)
{
	struct ntcp_admin *a = arg;
	int rc = leap_poller_register(admin_reactor, &admin_poller_ops, a, -1, &a->poller);

	if (rc) {
		a->poller = NULL;
		attempt_failed(a, rc, "cannot register the admin poller: %s", strerror(-rc));
		return;
	}
	a->period_us = 0;
	attempt_start(a, ntcp_now_ns());
}

int ntcp_admin_start(struct ntcp_bdev *nb, struct leap_bdev_err *err)
{
	struct ntcp_admin *a;
	int rc;

	pthread_once(&reactor_once, reactor_init);
	if (!admin_reactor)
		return bdev_err(err, admin_reactor_err ? admin_reactor_err : -ENOMEM,
				"cannot start the nvme-tcp thread: %s",
				strerror(admin_reactor_err ? -admin_reactor_err : ENOMEM));
	a = calloc(1, sizeof(*a));
	if (!a)
		return bdev_err(err, -ENOMEM, "out of memory");
	a->idbuf = aligned_alloc(64, NVME_IDENTIFY_SIZE);
	if (!a->idbuf) {
		free(a);
		return bdev_err(err, -ENOMEM, "out of memory");
	}
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	a->nb = nb;
	a->first = true;
	nb->admin = a;
	rc = send_msg(start_msg, a);
	if (rc) {
		nb->admin = NULL;
		admin_free(a);
		return bdev_err(err, rc, "cannot reach the nvme-tcp thread: %s", strerror(-rc));
	}
	return 0;
}

static void stop_msg(void *arg)
{
	struct ntcp_admin *a = arg;

	drop_ctrl(a);
	leap_poller_unregister(a->poller);
	a->poller = NULL;
	a->step = AS_DEAD;
	pthread_mutex_lock(&a->lock);
	a->stopped = true;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

void ntcp_admin_stop(struct ntcp_bdev *nb)
{
	struct ntcp_admin *a = nb->admin;

	if (!a)
		return;
	if (send_msg(stop_msg, a) == 0) {
		pthread_mutex_lock(&a->lock);
		while (!a->stopped)
			pthread_cond_wait(&a->cond, &a->lock);
		pthread_mutex_unlock(&a->lock);
	}
	nb->admin = NULL;
	admin_free(a);
}
