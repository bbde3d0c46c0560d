// SPDX-License-Identifier: BSD-3-Clause
/*
 * The fio engine's NVMe/TCP transport: each job is one controller
 * association with one I/O queue of depth iodepth, made with the host
 * library (include/leapio/nvmf_host.h), the target named by the transport
 * ID in the job's filename.
 *
 * ->setup() (fio's main thread, before any job runs) connects once to check
 * the transport ID, the namespace, the block sizes and the depth against
 * the controller, so a wrong job fails before anything runs with the
 * target's reason, and learns the namespace size; then it disconnects. The
 * job's own association is made in ->init(), in the job's thread, which
 * owns it from then on: a job that starts late (stonewall, startdelay) does
 * not hold an idle association whose keep-alive timer could expire.
 *
 * queue() puts the command in the queue's send ring; commit() polls once,
 * which sends everything queued in one sendmsg() (and reaps what already
 * came back); getevents() polls until enough completions arrived. A poll is
 * one recv() and one sendmsg() for however many PDUs are ready. The
 * library's callbacks only move the io_u onto a completed ring that
 * getevents() hands to fio. fio allocates the I/O buffers; the library
 * sends from and receives into them directly.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fio.h"

#include "leapio/common.h"
#include "leapio/log.h"
#include "leapio/nvme_spec.h"
#include "leapio/nvmf_host.h"
#include "engine_internal.h"

#define KATO_MS	    10000
#define SHUTDOWN_MS 2000
#define ADMIN_EVERY 64 /* getevents() calls between looks at the clock for the admin queue */

struct lft_job;

/* One command slot: the io_u in it and the one iovec describing its buffer. */
struct lft_slot {
	struct lft_job *job;
	struct io_u *io_u;
	struct iovec iov;
};

struct lft_job {
	struct lf_job_base base; /* first: the engine dispatches through it */
	const char *name;	 /* the job's, for messages */
	struct leap_nvmf_trid trid;
	char label[NVMF_TRADDR_MAX_LEN + NVMF_TRSVCID_MAX_LEN + NVMF_NQN_MAX_LEN + 8];
	uint32_t nsid;
	uint32_t lba_shift;
	uint64_t lba_mask;
	uint64_t nlb;
	int timeout_ms;
	bool busy_poll;
	struct leap_nvmf_ctrl *ctrl;
	struct leap_nvmf_qpair *qp;
	uint32_t nslots;
	struct lft_slot *slots;
	uint16_t *free_slots;
	uint32_t nr_free;
	struct nvme_dsm_range *dsm; /* one per slot: valid until the command completes */
	/* Completed, not yet handed to fio: a ring of nslots (a power of two) io_us. */
	struct io_u **done;
	uint32_t done_head, done_tail, done_mask;
	struct io_u **events;
	uint32_t queued; /* since the last commit */
	uint32_t calls;	 /* getevents() calls, to look at the clock every ADMIN_EVERY */
	uint64_t last_admin;
	bool told_failure;
	bool told_status;
	bool gave_up;
};

static const struct lf_transport lf_tcp;

/*
 * The host library logs every failure where it happens and also hands the
 * reason back, which this engine reports once per job with the job's name:
 * its warnings go through fio's log, its error lines are dropped.
 */
static void log_cb(enum leap_log_level level, const char *subsys, const char *fmt, va_list ap,
		   void *ctx)
{
	char msg[512];

	if (level != LEAP_LOG_WARN)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_info("leapio: %s: %s\n", subsys, msg);
}

/*
 * Take SPDK's "ns=N" out of the transport ID (the host library's parser
 * knows only transport keys). Returns 0 with *nsid set (0 if absent), or
 * -EINVAL with a message.
 */
static int take_ns(char *trid, uint32_t *nsid, char *err, size_t errlen)
{
	char *p = trid;

	*nsid = 0;
	while (*p) {
		size_t len;

		while (*p == ' ' || *p == '\t')
			p++;
		len = strcspn(p, " \t");
		if (len > 3 && !strncasecmp(p, "ns", 2) && (p[2] == '=' || p[2] == ':')) {
			char *end;
			unsigned long v = strtoul(p + 3, &end, 0);

			if (end != p + len || v == 0 || v >= 0xffffffffu) {
				snprintf(err, errlen, "ns '%.*s': want a namespace ID 1-4294967294",
					 (int)(len - 3), p + 3);
				return -EINVAL;
			}
			if (*nsid) {
				snprintf(err, errlen, "key 'ns' given twice");
				return -EINVAL;
			}
			*nsid = (uint32_t)v;
			memset(p, ' ', len);
		}
		p += len;
	}
	return 0;
}

static int connect_ctrl(struct thread_data *td, struct lft_job *job, uint16_t nr_io,
			struct leap_nvmf_ctrl **ctrlp)
{
	struct leap_nvmf_ctrl_opts o;
	char err[320] = "";
	int rc;

	leap_nvmf_ctrl_opts_init(&o);
	o.nr_io_queues = nr_io;
	o.io_qdepth = (uint16_t)LEAP_MIN(td->o.iodepth, 4096u);
	o.kato_ms = nr_io ? KATO_MS : 0;
	o.timeout_ms = job->timeout_ms;
	o.max_iov = 1;
	rc = leap_nvmf_host_connect_opts(&job->trid, &o, ctrlp, err, sizeof(err));
	if (rc)
		log_err("leapio: %s: connecting to %s failed: %s%s\n", td->o.name, job->label,
			err[0] ? err : strerror(-rc),
			rc == -EBUSY ? " (another host holds it: jobs that run together need a "
				       "controller each)"
				     : "");
	return rc;
}

/* Everything a job needs from the controller, checked once against the job. 0 or 1. */
static int check_ctrl(struct thread_data *td, struct lft_job *job, struct leap_nvmf_ctrl *ctrl)
{
	uint32_t lba_size, max_xfer = leap_nvmf_ctrl_max_xfer(ctrl);
	uint16_t depth = leap_nvmf_ctrl_io_qdepth(ctrl);
	uint64_t nlb;
	int rc;

	rc = leap_nvmf_host_ns_info(ctrl, job->nsid, &nlb, &lba_size, job->timeout_ms);
	if (rc) {
		log_err("leapio: %s: %s has no namespace %u%s%s\n", td->o.name, job->label,
			job->nsid, rc == -EIO || rc == -ENODEV ? "" : ": ",
			rc == -EIO || rc == -ENODEV ? "" : strerror(-rc));
		return 1;
	}
	if (job->nlb && (nlb != job->nlb || lba_size != 1u << job->lba_shift)) {
		log_err("leapio: %s: namespace %u of %s changed between setup and start\n",
			td->o.name, job->nsid, job->label);
		return 1;
	}
	if (!lf_bs_fits_lba(td, lba_size)) {
		log_err("leapio: %s: block sizes must be multiples of namespace %u's LBA size "
			"(%u bytes)\n",
			td->o.name, job->nsid, lba_size);
		return 1;
	}
	if (max_xfer && td_max_bs(td) > max_xfer) {
		log_err("leapio: %s: bs=%llu is over %s's transfer limit (MDTS) of %u bytes\n",
			td->o.name, td_max_bs(td), job->label, max_xfer);
		return 1;
	}
	if (td->o.iodepth > depth) {
		log_err("leapio: %s: iodepth=%u is deeper than %s allows (%u: CAP.MQES, MAXCMD)\n",
			td->o.name, td->o.iodepth, job->label, depth);
		return 1;
	}
	job->nlb = nlb;
	job->lba_shift = (uint32_t)__builtin_ctz(lba_size);
	job->lba_mask = lba_size - 1;
	return 0;
}

int lf_tcp_setup(struct thread_data *td, const char *trid_str)
{
	struct lf_options *o = td->eo;
	struct leap_nvmf_ctrl *ctrl = NULL;
	char err[320] = "", *s;
	struct lft_job *job;
	uint32_t ns;
	int rc;

	leap_log_set_callback(log_cb, NULL);
	job = calloc(1, sizeof(*job));
	s = strdup(trid_str);
	if (!job || !s)
		goto err_free;
	rc = take_ns(s, &ns, err, sizeof(err));
	if (!rc)
		rc = leap_nvmf_trid_parse(&job->trid, s, err, sizeof(err));
	if (!rc && !strcmp(job->trid.subnqn, NVME_DISCOVERY_NQN)) {
		snprintf(err, sizeof(err), "subnqn is required");
		rc = -EINVAL;
	}
	if (rc) {
		log_err("leapio: %s: transport ID '%s': %s (write key=value pairs separated by "
			"spaces, ':' inside a value as '\\:')\n",
			td->o.name, trid_str, err);
		goto err_free;
	}
	snprintf(job->label, sizeof(job->label),
		 job->trid.adrfam == NVMF_ADRFAM_IPV6 ? "[%s]:%s %s" : "%s:%s %s", job->trid.traddr,
		 job->trid.trsvcid, job->trid.subnqn);
	job->name = td->o.name;
	job->nsid = ns ? ns : o->nsid;
	job->timeout_ms = (int)o->connect_timeout;
	job->busy_poll = o->busy_poll;
	job->base.tr = &lf_tcp;
	if (connect_ctrl(td, job, 0, &ctrl))
		goto err_free;
	rc = check_ctrl(td, job, ctrl);
	leap_nvmf_host_disconnect(ctrl, SHUTDOWN_MS);
	if (rc)
		goto err_free;
	free(s);
	td->io_ops_data = job;
	lf_set_file_size(td, "leapio-tcp", job->nlb << job->lba_shift);
	return 0;

err_free:
	free(s);
	free(job);
	return 1;
}

/* In the job's thread: its own association, one I/O queue, the per-slot arrays. */
static int tcp_init(struct thread_data *td)
{
	struct lft_job *job = td->io_ops_data;
	uint32_t ring = 1;

	if (connect_ctrl(td, job, 1, &job->ctrl) || check_ctrl(td, job, job->ctrl))
		return 1;
	job->qp = leap_nvmf_ctrl_io_qpair(job->ctrl, 0);
	job->last_admin = lf_mono_ns();
	job->nslots = td->o.iodepth;
	while (ring < job->nslots)
		ring <<= 1;
	job->done_mask = ring - 1;
	job->slots = calloc(job->nslots, sizeof(*job->slots));
	job->free_slots = calloc(job->nslots, sizeof(*job->free_slots));
	job->dsm = calloc(job->nslots, sizeof(*job->dsm));
	job->done = calloc(ring, sizeof(*job->done));
	job->events = calloc(job->nslots, sizeof(*job->events));
	if (!job->slots || !job->free_slots || !job->dsm || !job->done || !job->events) {
		log_err("leapio: %s: out of memory\n", td->o.name);
		return 1;
	}
	for (uint32_t i = 0; i < job->nslots; i++) {
		job->slots[i].job = job;
		job->free_slots[job->nr_free++] = (uint16_t)(job->nslots - 1 - i);
	}
	return 0;
}

static void tcp_cleanup(struct thread_data *td)
{
	struct lft_job *job = td->io_ops_data;

	/* A queue given up on gets no orderly shutdown: the target is not answering. */
	if (job->gave_up)
		leap_nvmf_ctrl_destroy(job->ctrl);
	else
		leap_nvmf_host_disconnect(job->ctrl, SHUTDOWN_MS);
	free(job->slots);
	free(job->free_slots);
	free(job->dsm);
	free(job->done);
	free(job->events);
	free(job);
	td->io_ops_data = NULL;
}

/* fio's buffers are ordinary memory here: the library reads and writes them in place. */
static int tcp_iomem_alloc(struct thread_data *td, size_t total)
{
	void *p;

	if (posix_memalign(&p, NVME_PAGE_SIZE, total)) {
		log_err("leapio: %s: cannot allocate %zu bytes of I/O buffers\n", td->o.name,
			total);
		return 1;
	}
	td->orig_buffer = p;
	return 0;
}

static void tcp_iomem_free(struct thread_data *td)
{
	free(td->orig_buffer);
	td->orig_buffer = NULL;
}

/* Runs inside leap_nvmf_qpair_poll(): move the io_u to the completed ring. */
static void io_cb(void *arg, const struct nvme_cqe *cqe)
{
	struct lft_slot *sl = arg;
	struct lft_job *job = sl->job;
	struct io_u *io_u = sl->io_u;
	uint16_t st = nvmf_cqe_status(cqe) & 0x7ff;

	/* A host path error is the queue failing: tell_failure() says why, once. */
	if (st && st != NVME_STATUS(NVME_SCT_PATH, NVME_SC_HOST_PATH_ERROR) && !job->told_status) {
		job->told_status = true;
		log_err("leapio: %s: %s completed a command with status 0x%03x (%s)\n", job->name,
			job->label, st, leap_nvmf_status_str(st));
	}
	io_u->error = st ? EIO : 0;
	io_u->resid = st ? io_u->xfer_buflen : 0;
	job->free_slots[job->nr_free++] = (uint16_t)(sl - job->slots);
	job->done[job->done_tail++ & job->done_mask] = io_u;
}

static void tell_failure(struct thread_data *td, struct lft_job *job)
{
	if (job->told_failure)
		return;
	job->told_failure = true;
	log_err("leapio: %s: NVMe/TCP queue to %s failed: %s\n", td->o.name, job->label,
		leap_nvmf_qpair_reason(job->qp));
}

/*
 * Every LF_ALIVE_CHECK_NS: poll the admin queue, which sends a Keep Alive
 * when one is due and notices a controller that failed. Also called when a
 * job is busy, where every poll finds completions: the target would
 * otherwise end the association when KATO expires. Returns 0 or -EIO.
 */
static int admin_tick(struct thread_data *td, struct lft_job *job, uint64_t now)
{
	if (now - job->last_admin < LF_ALIVE_CHECK_NS)
		return 0;
	job->last_admin = now;
	if (leap_nvmf_ctrl_poll(job->ctrl) >= 0)
		return 0;
	if (!job->told_failure)
		log_err("leapio: %s: controller %s failed: %s\n", td->o.name, job->label,
			leap_nvmf_ctrl_reason(job->ctrl));
	job->told_failure = true;
	/* Every outstanding command completes (as an error) into the ring. */
	leap_nvmf_qpair_fail(job->qp, -ECONNRESET, "controller failed");
	return -EIO;
}

static enum fio_q_status tcp_queue(struct thread_data *td, struct io_u *io_u)
{
	struct lft_job *job = td->io_ops_data;
	uint64_t slba = io_u->offset >> job->lba_shift;
	uint32_t nlb = (uint32_t)(io_u->xfer_buflen >> job->lba_shift);
	struct lft_slot *sl;
	uint16_t idx;
	int rc;

	fio_ro_check(td, io_u);
	if (!job->nr_free)
		return FIO_Q_BUSY;
	idx = job->free_slots[job->nr_free - 1];
	sl = &job->slots[idx];
	sl->io_u = io_u;
	switch (io_u->ddir) {
	case DDIR_READ:
	case DDIR_WRITE:
		/* offset= and friends can still name a partial LBA; NVMe cannot. */
		if (((io_u->offset | io_u->xfer_buflen) & job->lba_mask) || !nlb || nlb > 0x10000)
			goto err_inval;
		sl->iov = (struct iovec){ io_u->xfer_buf, io_u->xfer_buflen };
		if (io_u->ddir == DDIR_READ)
			rc = leap_nvmf_io_read(job->qp, job->nsid, slba, nlb, &sl->iov, 1, 0, io_cb,
					       sl);
		else
			rc = leap_nvmf_io_write(job->qp, job->nsid, slba, nlb, &sl->iov, 1, 0,
						io_cb, sl);
		break;
	case DDIR_TRIM:
		if (((io_u->offset | io_u->xfer_buflen) & job->lba_mask) || !nlb)
			goto err_inval;
		job->dsm[idx] = (struct nvme_dsm_range){ .cattr = 0, .nlb = nlb, .slba = slba };
		rc = leap_nvmf_io_dsm(job->qp, job->nsid, &job->dsm[idx], 1,
				      NVME_DSM_ATTR_DEALLOCATE, io_cb, sl);
		break;
	case DDIR_SYNC:
	case DDIR_DATASYNC:
	case DDIR_SYNC_FILE_RANGE:
		rc = leap_nvmf_io_flush(job->qp, job->nsid, io_cb, sl);
		break;
	default:
		goto err_inval;
	}
	if (rc == -EAGAIN)
		return FIO_Q_BUSY;
	if (rc) {
		tell_failure(td, job);
		io_u->error = -rc;
		return FIO_Q_COMPLETED;
	}
	job->nr_free--;
	job->queued++;
	return FIO_Q_QUEUED;

err_inval:
	io_u->error = EINVAL;
	return FIO_Q_COMPLETED;
}

/* One poll sends everything queued since the last commit in one sendmsg(). */
static int tcp_commit(struct thread_data *td)
{
	struct lft_job *job = td->io_ops_data;

	if (!job->queued)
		return 0;
	if (leap_nvmf_qpair_poll(job->qp) < 0)
		tell_failure(td, job); /* the commands complete with errors */
	io_u_mark_submit(td, job->queued);
	job->queued = 0;
	return 0;
}

/*
 * Reap at least `min` (at most `max`) completions, or fewer once `t` has
 * passed. Polls the queue; looks at the clock only every LF_SPINS_PER_CLOCK
 * empty polls (and every ADMIN_EVERY calls) to poll the admin queue (keep
 * alive, liveness) every LF_ALIVE_CHECK_NS; with busy_poll=0 sleeps in
 * poll(2) on the socket.
 */
static int tcp_getevents(struct thread_data *td, unsigned int min, unsigned int max,
			 const struct timespec *t)
{
	struct lft_job *job = td->io_ops_data;
	uint64_t start = 0, now, limit_ns = UINT64_MAX;
	unsigned int got = 0, idle = 0;
	int sleep_ms = -1;

	if (max > job->nslots)
		max = job->nslots;
	if (t)
		limit_ns = (uint64_t)t->tv_sec * 1000000000ull + (uint64_t)t->tv_nsec;
	if (++job->calls % ADMIN_EVERY == 0)
		admin_tick(td, job, lf_mono_ns());
	for (;;) {
		int n = sleep_ms < 0 ? leap_nvmf_qpair_poll(job->qp)
				     : leap_nvmf_qpair_wait(job->qp, sleep_ms);

		sleep_ms = -1;
		while (got < max && job->done_head != job->done_tail)
			job->events[got++] = job->done[job->done_head++ & job->done_mask];
		if (n < 0)
			tell_failure(td, job);
		if (got >= min || got == max)
			return (int)got;
		if (n < 0)
			return -EIO; /* failed, and everything it held was handed back */
		if (n) {
			idle = 0;
			continue;
		}
		if (++idle % LF_SPINS_PER_CLOCK &&
		    (job->busy_poll || idle < LF_IDLE_SPINS_BEFORE_WAIT))
			continue;
		now = lf_mono_ns();
		if (!start)
			start = now;
		if (now - start >= limit_ns)
			return (int)got;
		/* fio was told to stop (signal, exitall): a silent target must not hold it. */
		if (td->terminate && now - start >= LF_TERMINATE_GRACE_NS && !job->gave_up) {
			log_err("leapio: %s: I/O still outstanding on %s %llu s after fio was told "
				"to stop\n",
				td->o.name, job->label,
				(unsigned long long)(LF_TERMINATE_GRACE_NS / 1000000000ull));
			job->gave_up = true;
			job->told_failure = true;
			/* Every outstanding command completes (as an error) into the ring. */
			leap_nvmf_qpair_fail(job->qp, -ETIMEDOUT, "fio stopped waiting");
			continue;
		}
		if (admin_tick(td, job, now))
			continue;
		if (!job->busy_poll) {
			uint64_t left =
			    limit_ns == UINT64_MAX ? LF_ALIVE_CHECK_NS : limit_ns - (now - start);

			sleep_ms = (int)(LEAP_MIN(left, LF_ALIVE_CHECK_NS) / 1000000) + 1;
		}
	}
}

static struct io_u *tcp_event(struct thread_data *td, int event)
{
	struct lft_job *job = td->io_ops_data;

	return job->events[event];
}

static const struct lf_transport lf_tcp = {
	.init = tcp_init,
	.queue = tcp_queue,
	.commit = tcp_commit,
	.getevents = tcp_getevents,
	.event = tcp_event,
	.cleanup = tcp_cleanup,
	.iomem_alloc = tcp_iomem_alloc,
	.iomem_free = tcp_iomem_free,
};
