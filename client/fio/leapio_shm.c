// SPDX-License-Identifier: BSD-3-Clause
/*
 * The fio engine's shared-memory transport: jobs drive a leapd virtual NVMe
 * controller (ctrl=) through the tenant library (include/leapio/client.h),
 * the way SPDK's fio plugin drives its NVMe driver.
 *
 * leapd admits one tenant attach per controller, so all jobs of one fio
 * process that name the same (socket, ctrl) share one attach, made by the
 * first job's ->setup() in fio's main thread, and each job (thread) owns one
 * I/O queue pair. Jobs must therefore be threads (thread=1): a forked job
 * would inherit a copy of someone else's queues. The shared region is sized
 * once, at attach, for every leapio job in the process (or mem_size=), and
 * fio's I/O buffers are carved out of it (->iomem_alloc), so the data path
 * is zero-copy. Everything shared is touched only at setup and teardown,
 * under one mutex; queue/commit/getevents touch only the job's own queue
 * pair and preallocated arrays, and make no syscall unless a job asked to
 * sleep (busy_poll=0).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fio.h"

#include "leapio/client.h"
#include "leapio/common.h"
#include "leapio/nvme_spec.h"
#include "engine_internal.h"

#define PAGE NVME_PAGE_SIZE

/* One attach, shared by every job of this process on the same controller. */
struct lf_ctrl {
	struct lf_ctrl *next;
	char *socket, *name;
	struct leap_client *client;
	unsigned int refs;
	bool told_qpairs; /* the "too many jobs" line is printed once per process */
};

/* Per job (thread): its queue pair and the arrays the data path uses. */
struct lf_job {
	struct lf_job_base base; /* first: the engine dispatches through it */
	struct lf_ctrl *ctrl;
	struct leap_client_qpair *qp;
	uint32_t nsid;
	uint32_t lba_shift;
	uint64_t lba_mask;
	uint32_t qsize;
	struct io_u **slot_io; /* by cid */
	uint16_t *free_cids;
	uint32_t nr_free;
	struct nvme_dsm_range *dsm; /* one per cid, in the shared region */
	struct nvme_cqe *cqes;
	struct io_u **events;
	uint32_t queued; /* since the last doorbell */
	bool busy_poll;
	bool gave_up; /* stopped waiting for a wedged controller */
};

static const struct lf_transport lf_shm;

/* Attaches are made and dropped by several jobs' setup/cleanup: one lock for all of it. */
static pthread_mutex_t lf_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lf_ctrl *lf_ctrls;

/*
 * Shared memory one job needs: its queue pair (SQ, CQ, one PRP list page per
 * slot), its trim ranges, an Identify page, and fio's I/O buffers (what
 * init_io_u_buffers() will ask ->iomem_alloc for, plus alignment slack).
 */
static size_t job_region_need(struct thread_data *td)
{
	size_t qsize = (size_t)td->o.iodepth + 1, need;

	need = LEAP_ALIGN_UP(qsize * NVME_SQE_SIZE, (size_t)PAGE) +
	       LEAP_ALIGN_UP(qsize * NVME_CQE_SIZE, (size_t)PAGE) + qsize * PAGE;
	need += LEAP_ALIGN_UP(qsize * sizeof(struct nvme_dsm_range), (size_t)PAGE);
	need += PAGE;
	need += (size_t)td->o.iodepth * td_max_bs(td) + 2 * PAGE + td->o.mem_align;
	return need;
}

static bool same_ctrl(struct thread_data *td, const struct lf_options *o)
{
	const struct lf_options *to = td->eo;

	return td->io_ops == &ioengine && to && to->socket && to->ctrl &&
	       !strcmp(to->socket, o->socket) && !strcmp(to->ctrl, o->ctrl);
}

/* Size the region for every leapio job of this process on this controller. */
static size_t region_size(struct thread_data *self, struct lf_options *o)
{
	struct thread_data *td;
	size_t total = 1u << 20; /* doorbell pages and slack */
	unsigned int i;

	if (o->mem_size)
		return o->mem_size;
	for (i = 0; i < thread_number; i++) {
		td = tnumber_to_td(i);
		if (td == self || same_ctrl(td, o))
			total += job_region_need(td);
	}
	return total;
}

/*
 * Jobs of one group run together (stonewall starts a new group), each with
 * its own queue pair: counting them here turns "too many jobs" into an error
 * before anything runs. Jobs of different groups may still overlap
 * (new_group, startdelay); shm_init() catches what this misses.
 */
static unsigned int concurrent_jobs(struct thread_data *self, const struct lf_options *o)
{
	struct thread_data *td;
	unsigned int i, n = 0;

	for (i = 0; i < thread_number; i++) {
		td = tnumber_to_td(i);
		if ((td == self || same_ctrl(td, o)) && td->groupid == self->groupid)
			n++;
	}
	return n;
}

/* Find or make the attach for (socket, ctrl). Called with lf_lock held. */
static int ctrl_get(struct thread_data *td, struct lf_options *o, struct lf_ctrl **out)
{
	struct leap_client_opts co = { 0 };
	char errbuf[256] = "";
	struct lf_ctrl *c;
	int err;

	for (c = lf_ctrls; c; c = c->next) {
		if (!strcmp(c->socket, o->socket) && !strcmp(c->name, o->ctrl)) {
			c->refs++;
			*out = c;
			return 0;
		}
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->socket = strdup(o->socket);
	c->name = strdup(o->ctrl);
	if (!c->socket || !c->name) {
		err = -ENOMEM;
		goto err_free;
	}
	co.socket = o->socket;
	co.ctrl = o->ctrl;
	co.mem_size = region_size(td, o);
	co.errbuf = errbuf;
	co.errbuf_sz = sizeof(errbuf);
	err = leap_client_attach(&co, &c->client);
	if (err) {
		log_err("leapio: %s: attaching to controller '%s' via %s failed: %s\n", td->o.name,
			o->ctrl, o->socket, errbuf[0] ? errbuf : strerror(-err));
		goto err_free;
	}
	c->refs = 1;
	c->next = lf_ctrls;
	lf_ctrls = c;
	*out = c;
	return 0;

err_free:
	free(c->socket);
	free(c->name);
	free(c);
	return err;
}

/* Drop one job's reference; the last one detaches. Called with lf_lock held. */
static void ctrl_put(struct lf_ctrl *c)
{
	struct lf_ctrl **pp;

	if (!c || --c->refs)
		return;
	for (pp = &lf_ctrls; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	leap_client_detach(c->client);
	free(c->socket);
	free(c->name);
	free(c);
}

/* In fio's main thread, before any job runs: attach, learn the namespace size. */
int lf_shm_setup(struct thread_data *td)
{
	struct lf_options *o = td->eo;
	struct lf_ctrl *ctrl = NULL;
	uint32_t lba_size, max_qp, max_qs, nr_jobs;
	struct lf_job *job;
	uint64_t nlb;
	int err;

	/* socket=${LEAPIO_SOCKET} with the variable unset expands to "": use the default. */
	if (!o->socket || !o->socket[0]) {
		free(o->socket);
		o->socket = strdup(LEAPIO_FIO_DEFAULT_SOCKET); /* fio frees it with the options */
		if (!o->socket)
			return 1;
	}
	if (!o->ctrl || !o->ctrl[0]) {
		log_err("leapio: %s: ctrl= (the leapd controller name) is required\n", td->o.name);
		return 1;
	}
	job = calloc(1, sizeof(*job));
	if (!job)
		return 1;

	pthread_mutex_lock(&lf_lock);
	err = ctrl_get(td, o, &ctrl);
	if (err)
		goto err_unlock;
	max_qp = leap_client_max_qpairs(ctrl->client);
	max_qs = leap_client_max_qsize(ctrl->client);
	nr_jobs = concurrent_jobs(td, o);
	if (nr_jobs > max_qp) {
		if (!ctrl->told_qpairs)
			log_err(
			    "leapio: %s: %u concurrent jobs on controller '%s' need %u queue "
			    "pairs; it grants %u (lower numjobs or separate jobs with stonewall)\n",
			    td->o.name, nr_jobs, o->ctrl, nr_jobs, max_qp);
		ctrl->told_qpairs = true;
		goto err_keep;
	}
	if (td->o.iodepth + 1 > max_qs) {
		log_err("leapio: %s: iodepth=%u needs a queue of %u entries; controller '%s' "
			"allows %u\n",
			td->o.name, td->o.iodepth, td->o.iodepth + 1, o->ctrl, max_qs);
		goto err_keep;
	}
	err = leap_client_ns_info(ctrl->client, o->nsid, &nlb, &lba_size);
	if (err) {
		log_err("leapio: %s: controller '%s' has no namespace %u%s%s\n", td->o.name,
			o->ctrl, o->nsid, err == -ENOENT ? "" : ": ",
			err == -ENOENT ? "" : strerror(-err));
		goto err_keep;
	}
	if (!lf_bs_fits_lba(td, lba_size)) {
		log_err("leapio: %s: block sizes must be multiples of namespace %u's LBA size "
			"(%u bytes)\n",
			td->o.name, o->nsid, lba_size);
		goto err_keep;
	}
	pthread_mutex_unlock(&lf_lock);

	job->ctrl = ctrl;
	job->nsid = o->nsid;
	job->lba_shift = (uint32_t)__builtin_ctz(lba_size);
	job->lba_mask = lba_size - 1;
	job->busy_poll = o->busy_poll;
	job->base.tr = &lf_shm;
	td->io_ops_data = job;
	lf_set_file_size(td, "leapio", nlb << job->lba_shift);
	return 0;

err_keep:
	/*
	 * No ctrl_put(): fio never runs (or cleans up) a job whose setup
	 * failed, and dropping the last reference here would detach and make
	 * the next job of the process attach again, only to fail the same way.
	 * The attach ends with the process.
	 */
err_unlock:
	pthread_mutex_unlock(&lf_lock);
	free(job);
	return 1;
}

/* In the job's thread: its queue pair and the per-slot arrays. */
static int shm_init(struct thread_data *td)
{
	struct lf_job *job = td->io_ops_data;
	struct leap_client *c;
	int err;

	if (!job)
		return 1;
	c = job->ctrl->client;
	job->qsize = td->o.iodepth + 1;
	job->slot_io = calloc(job->qsize, sizeof(*job->slot_io));
	job->free_cids = calloc(job->qsize, sizeof(*job->free_cids));
	job->cqes = calloc(job->qsize, sizeof(*job->cqes));
	job->events = calloc(job->qsize, sizeof(*job->events));
	if (!job->slot_io || !job->free_cids || !job->cqes || !job->events) {
		log_err("leapio: %s: out of memory\n", td->o.name);
		return 1;
	}
	/* One slot fewer than the queue: a full SQ has one empty entry. */
	for (uint32_t i = 0; i < job->qsize - 1; i++)
		job->free_cids[job->nr_free++] = (uint16_t)i;

	pthread_mutex_lock(&lf_lock);
	err = leap_client_qpair_create(c, job->qsize, !job->busy_poll, &job->qp);
	if (!err) {
		/* Polled between waits: signals only while leap_client_wait() sleeps. */
		leap_client_irq_mask(job->qp);
		job->dsm = leap_client_alloc(c, job->qsize * sizeof(*job->dsm), PAGE);
		if (!job->dsm)
			err = -ENOMEM;
	}
	pthread_mutex_unlock(&lf_lock);
	if (err == -ENOSPC) {
		log_err("leapio: %s: controller '%s' has no free I/O queue pair (it grants %u; "
			"too many concurrent jobs)\n",
			td->o.name, job->ctrl->name, leap_client_max_qpairs(c));
		return 1;
	}
	if (err) {
		log_err("leapio: %s: creating a queue pair on '%s': %s (raise mem_size= if the "
			"shared region is full)\n",
			td->o.name, job->ctrl->name, strerror(-err));
		return 1;
	}
	return 0;
}

static void shm_cleanup(struct thread_data *td)
{
	struct lf_job *job = td->io_ops_data;

	if (!job)
		return;
	pthread_mutex_lock(&lf_lock);
	/* With leapd gone or wedged the delete would wait out the admin timeout for nothing. */
	if (job->qp && !job->gave_up && leap_client_alive(job->ctrl->client))
		leap_client_qpair_destroy(job->qp);
	ctrl_put(job->ctrl);
	pthread_mutex_unlock(&lf_lock);
	free(job->slot_io);
	free(job->free_cids);
	free(job->cqes);
	free(job->events);
	free(job);
	td->io_ops_data = NULL;
}

/* fio's I/O buffers come from the shared region: leapd reads and writes them in place. */
static int shm_iomem_alloc(struct thread_data *td, size_t total)
{
	struct lf_job *job = td->io_ops_data;

	pthread_mutex_lock(&lf_lock);
	td->orig_buffer = leap_client_alloc(job->ctrl->client, total, PAGE);
	pthread_mutex_unlock(&lf_lock);
	if (!td->orig_buffer) {
		log_err("leapio: %s: shared region full (%zu bytes of I/O buffers); raise "
			"mem_size=\n",
			td->o.name, total);
		return 1;
	}
	return 0;
}

/* The region is only given back at detach (leap_client_alloc never frees). */
static void shm_iomem_free(struct thread_data *td)
{
	td->orig_buffer = NULL;
}

static enum fio_q_status shm_queue(struct thread_data *td, struct io_u *io_u)
{
	struct lf_job *job = td->io_ops_data;
	struct nvme_sqe sqe = { 0 };
	uint64_t slba = io_u->offset >> job->lba_shift;
	uint32_t nlb = (uint32_t)(io_u->xfer_buflen >> job->lba_shift);
	uint16_t cid;

	fio_ro_check(td, io_u);
	if (!job->nr_free)
		return FIO_Q_BUSY;
	cid = job->free_cids[job->nr_free - 1];
	sqe.cid = cid;
	sqe.nsid = job->nsid;

	switch (io_u->ddir) {
	case DDIR_READ:
	case DDIR_WRITE:
		/* offset= and friends can still name a partial LBA; NVMe cannot. */
		if (((io_u->offset | io_u->xfer_buflen) & job->lba_mask) || !nlb || nlb > 0x10000)
			goto err_inval;
		sqe.opc = io_u->ddir == DDIR_READ ? NVME_OPC_READ : NVME_OPC_WRITE;
		sqe.cdw10 = (uint32_t)slba;
		sqe.cdw11 = (uint32_t)(slba >> 32);
		sqe.cdw12 = nlb - 1;
		if (leap_client_prp(job->qp, &sqe, cid, io_u->xfer_buf, io_u->xfer_buflen))
			goto err_inval;
		break;
	case DDIR_TRIM:
		if (((io_u->offset | io_u->xfer_buflen) & job->lba_mask) || !nlb)
			goto err_inval;
		job->dsm[cid] = (struct nvme_dsm_range){ .cattr = 0, .nlb = nlb, .slba = slba };
		sqe.opc = NVME_OPC_DATASET_MANAGEMENT;
		sqe.cdw10 = 0; /* one range */
		sqe.cdw11 = NVME_DSM_ATTR_DEALLOCATE;
		sqe.prp1 = (uint64_t)(uintptr_t)&job->dsm[cid];
		break;
	case DDIR_SYNC:
	case DDIR_DATASYNC:
	case DDIR_SYNC_FILE_RANGE:
		sqe.opc = NVME_OPC_FLUSH;
		break;
	default:
		goto err_inval;
	}
	if (leap_client_submit(job->qp, &sqe))
		return FIO_Q_BUSY;
	job->nr_free--;
	job->slot_io[cid] = io_u;
	job->queued++;
	return FIO_Q_QUEUED;

err_inval:
	io_u->error = EINVAL;
	return FIO_Q_COMPLETED;
}

/* One doorbell for everything queued since the last commit (iodepth_batch). */
static int shm_commit(struct thread_data *td)
{
	struct lf_job *job = td->io_ops_data;

	if (!job->queued)
		return 0;
	leap_client_ring(job->qp);
	io_u_mark_submit(td, job->queued);
	job->queued = 0;
	return 0;
}

/*
 * Reap at least `min` (at most `max`) completions, or fewer once `t` has
 * passed. Polls the CQ; looks at the clock only every LF_SPINS_PER_CLOCK empty
 * polls, and asks whether leapd is still alive only every LF_ALIVE_CHECK_NS, so
 * an I/O that completes promptly costs no syscall.
 */
static int shm_getevents(struct thread_data *td, unsigned int min, unsigned int max,
			 const struct timespec *t)
{
	struct lf_job *job = td->io_ops_data;
	uint64_t start = 0, now, last_alive = 0, limit_ns = UINT64_MAX;
	unsigned int got = 0, idle = 0;

	if (max > job->qsize)
		max = job->qsize;
	if (t)
		limit_ns = (uint64_t)t->tv_sec * 1000000000ull + (uint64_t)t->tv_nsec;
	for (;;) {
		int n = leap_client_poll(job->qp, job->cqes, (int)(max - got));

		for (int i = 0; i < n; i++) {
			const struct nvme_cqe *e = &job->cqes[i];
			struct io_u *io_u = job->slot_io[e->cid];

			io_u->error = (e->status >> 1) ? EIO : 0;
			io_u->resid = io_u->error ? io_u->xfer_buflen : 0;
			job->free_cids[job->nr_free++] = e->cid;
			job->events[got++] = io_u;
		}
		if (got >= min || got == max)
			return (int)got;
		if (n) {
			idle = 0;
			continue;
		}
		/*
		 * Spin a while before the clock read and the wait, unless leapd's
		 * reactor runs on this very CPU: it cannot complete anything
		 * until we stop (shm_abi.h, point 7).
		 */
		if (++idle % LF_SPINS_PER_CLOCK &&
		    (job->busy_poll ||
		     (idle < LF_IDLE_SPINS_BEFORE_WAIT && !leap_client_reactor_here(job->qp))))
			continue;
		now = lf_mono_ns();
		if (!start)
			start = last_alive = now;
		if (now - start >= limit_ns)
			return (int)got;
		/* fio was told to stop (signal, exitall): a wedged controller must not hold it. */
		if (td->terminate && (job->gave_up || now - start >= LF_TERMINATE_GRACE_NS)) {
			if (!job->gave_up)
				log_err(
				    "leapio: %s: I/O still outstanding on '%s' %llu s after "
				    "fio was told to stop\n",
				    td->o.name, job->ctrl->name,
				    (unsigned long long)(LF_TERMINATE_GRACE_NS / 1000000000ull));
			job->gave_up = true;
			return -ETIMEDOUT;
		}
		if (now - last_alive >= LF_ALIVE_CHECK_NS) {
			last_alive = now;
			if (!leap_client_alive(job->ctrl->client)) {
				log_err("leapio: %s: leapd went away or controller '%s' failed\n",
					td->o.name, job->ctrl->name);
				return -EIO;
			}
		}
		if (!job->busy_poll) {
			uint64_t left =
			    limit_ns == UINT64_MAX ? LF_ALIVE_CHECK_NS : limit_ns - (now - start);

			leap_client_wait(job->qp,
					 (int)(LEAP_MIN(left, LF_ALIVE_CHECK_NS) / 1000000) + 1);
		}
	}
}

static struct io_u *shm_event(struct thread_data *td, int event)
{
	struct lf_job *job = td->io_ops_data;

	return job->events[event];
}

static const struct lf_transport lf_shm = {
	.init = shm_init,
	.queue = shm_queue,
	.commit = shm_commit,
	.getevents = shm_getevents,
	.event = shm_event,
	.cleanup = shm_cleanup,
	.iomem_alloc = shm_iomem_alloc,
	.iomem_free = shm_iomem_free,
};
