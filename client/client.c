// SPDX-License-Identifier: BSD-3-Clause
/*
 * Tenant-side library (include/leapio/client.h). Speaks the attach/region
 * protocol, then drives NVMe queues in shared memory exactly like a PCI
 * driver drives a device: SQ entries then a doorbell (shadow doorbell plus
 * EventIdx after Doorbell Buffer Config), CQ entries recognised by phase.
 *
 * Kick rule (shm_abi.h, point 5): after publishing a doorbell we issue a
 * full fence and then read leapd's `sleeping` flag and EventIdx; leapd sets
 * them, fences, and re-reads our doorbells before it blocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "leapio/client.h"
#include "leapio/common.h"
#include "leapio/fdpass.h"
#include "leapio/shm_abi.h"

#define PAGE NVME_PAGE_SIZE

struct leap_client_qpair {
	struct leap_client *c;
	uint16_t qid;
	uint32_t size;
	struct nvme_sqe *sq;
	struct nvme_cqe *cq;
	uint32_t sq_tail, sq_rung, sq_head;
	uint32_t cq_head;
	uint8_t phase;
	uint64_t *prp_lists; /* one page per slot */
	int fd;		     /* completion vector (pipe read end), or -1 */
	uint32_t vector;
	uint32_t cpu_on; /* 1 + the CPU this qpair's thread last published, 0: none yet */
	bool polling;	 /* irq qpair whose thread said it polls (leap_client_irq_mask()) */
};

struct leap_client {
	int sock, area_fd, kick_fd, mem_fd;
	uint8_t *area;
	struct leap_shm_area_hdr *hdr;
	volatile uint32_t *db;
	uint8_t *mem;
	size_t mem_size, mem_used;
	uint32_t *shadow, *eventidx;
	struct nvme_sqe *asq;
	struct nvme_cqe *acq;
	uint32_t asq_tail, acq_head;
	uint8_t aphase;
	uint16_t next_cid;
	uint32_t max_qpairs, max_qsize;
	int vectors[LEAP_SHM_MAX_VECTORS];
	uint32_t nr_vectors;
	/*
	 * Vector masking (shm_abi.h, point 6) for threads that share a vector:
	 * a vector is masked only while no irq qpair on it wants signals
	 * (wanting[v] == 0). Taken around sleeps, never per I/O.
	 */
	pthread_mutex_t irq_lock;
	uint32_t wanting[LEAP_SHM_MAX_VECTORS];
	bool qid_used[LEAP_SHM_MAX_QUEUES + 1];
	/* Live queue pairs by qid: the ones still there at detach are freed then. */
	struct leap_client_qpair *qps[LEAP_SHM_MAX_QUEUES + 1];
};

static int fail(const struct leap_client_opts *o, int err, const char *fmt, const char *arg)
{
	if (o->errbuf && o->errbuf_sz)
		snprintf(o->errbuf, o->errbuf_sz, fmt, arg);
	return err;
}

void leap_client_kick(struct leap_client *c)
{
	uint64_t one = 1;

	if (write(c->kick_fd, &one, sizeof(one)) < 0)
		return;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Publish an SQ tail (or CQ head) doorbell and kick leapd if it may be asleep. */
static void ring(struct leap_client *c, uint32_t idx, uint32_t value, bool may_kick)
{
	bool kick;

	if (c->shadow && idx > 1) {
		uint32_t old = c->shadow[idx];

		__atomic_store_n(&c->shadow[idx], value, __ATOMIC_RELEASE);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		kick = leap_shm_need_event(
		    (uint16_t)__atomic_load_n(&c->eventidx[idx], __ATOMIC_RELAXED), (uint16_t)value,
		    (uint16_t)old);
		kick |= __atomic_load_n(&c->hdr->sleeping, __ATOMIC_RELAXED) != 0;
		if (kick)
			__atomic_store_n(&c->db[idx], value, __ATOMIC_RELEASE);
	} else {
		__atomic_store_n(&c->db[idx], value, __ATOMIC_RELEASE);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		kick = __atomic_load_n(&c->hdr->sleeping, __ATOMIC_RELAXED) != 0;
	}
	if (kick && may_kick)
		leap_client_kick(c);
}

int leap_client_admin(struct leap_client *c, struct nvme_sqe *sqe, struct nvme_cqe *cqe)
{
	uint64_t deadline = now_ms() + 10000;
	struct nvme_cqe *e;

	sqe->cid = c->next_cid++;
	memcpy(&c->asq[c->asq_tail], sqe, sizeof(*sqe));
	c->asq_tail = (c->asq_tail + 1) % LEAP_SHM_ADMIN_QSIZE;
	ring(c, leap_shm_sq_db(0), c->asq_tail, true);
	for (;;) {
		e = &c->acq[c->acq_head];
		if ((__atomic_load_n(&e->status, __ATOMIC_ACQUIRE) & 1) == c->aphase)
			break;
		if (__atomic_load_n(&c->hdr->regs.csts, __ATOMIC_ACQUIRE) & NVME_CSTS_CFS)
			return -EIO;
		if (now_ms() > deadline)
			return -ETIMEDOUT;
	}
	*cqe = *e;
	if (++c->acq_head == LEAP_SHM_ADMIN_QSIZE) {
		c->acq_head = 0;
		c->aphase ^= 1;
	}
	ring(c, leap_shm_cq_db(0), c->acq_head, false);
	return 0;
}

void *leap_client_alloc(struct leap_client *c, size_t len, size_t align)
{
	size_t off = LEAP_ALIGN_UP(c->mem_used, align ? align : 8);

	if (off + len > c->mem_size)
		return NULL;
	c->mem_used = off + len;
	return c->mem + off;
}

static int wait_ready(struct leap_client *c, bool want)
{
	uint64_t deadline = now_ms() + 10000;

	leap_client_kick(c);
	while (((__atomic_load_n(&c->hdr->regs.csts, __ATOMIC_ACQUIRE) & NVME_CSTS_RDY) != 0) !=
	       want) {
		if (c->hdr->regs.csts & NVME_CSTS_CFS)
			return -EIO;
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		usleep(50);
	}
	return 0;
}

static int setup(struct leap_client *c, const struct leap_client_opts *o)
{
	struct leap_shm_region_add ra = { 0 };
	struct leap_shm_region_reply rr;
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;
	int fds[4], nfds, err;
	void *pages;

	/* The shared region: a memfd mapped here; its address is its tenant address. */
	/* leapd maps only memfds sealed against shrinking (a shrink would fault it). */
	c->mem_fd = memfd_create("leapio-client", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (c->mem_fd < 0 || ftruncate(c->mem_fd, (off_t)c->mem_size) < 0 ||
	    fcntl(c->mem_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return fail(o, -errno, "memfd: %s", strerror(errno));
	c->mem = mmap(NULL, c->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		      c->mem_fd, 0);
	if (c->mem == MAP_FAILED) {
		c->mem = NULL;
		return fail(o, -errno, "mmap: %s", strerror(errno));
	}
	ra.hdr =
	    (struct leap_shm_msg_hdr){ sizeof(ra), LEAP_SHM_MSG_REGION_ADD, LEAP_SHM_ABI_VERSION };
	ra.base = (uint64_t)(uintptr_t)c->mem;
	ra.len = c->mem_size;
	err = leap_fd_send(c->sock, &ra, sizeof(ra), &c->mem_fd, 1);
	if (err)
		return fail(o, err, "region add: %s", strerror(-err));
	if (leap_fd_recv(c->sock, &rr, sizeof(rr), fds, 4, &nfds, NULL) != sizeof(rr) || rr.status)
		return fail(o, rr.status ? rr.status : -EPROTO, "region refused: %s", rr.message);

	/* Enable: admin queues are in the area (AQA preset by leapd). */
	__atomic_store_n(&c->hdr->regs.cc, NVME_CC_EN, __ATOMIC_RELEASE);
	err = wait_ready(c, true);
	if (err)
		return fail(o, err, "controller did not become ready (%s)", strerror(-err));

	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_OPC_SET_FEATURES;
	sqe.cdw10 = NVME_FEAT_NUMBER_OF_QUEUES;
	sqe.cdw11 = ((LEAP_SHM_MAX_QUEUES - 1) << 16) | (LEAP_SHM_MAX_QUEUES - 1);
	err = leap_client_admin(c, &sqe, &cqe);
	if (err || (cqe.status >> 1))
		return fail(o, err ? err : -EIO, "%s", "Set Features (Number of Queues) failed");
	c->max_qpairs = (cqe.dw0 & 0xffff) + 1;

	/* Shadow doorbells and EventIdx: one page each in our region. */
	pages = leap_client_alloc(c, 2 * PAGE, PAGE);
	if (!pages)
		return fail(o, -ENOMEM, "%s", "no room for the doorbell buffers");
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_OPC_DOORBELL_BUFFER_CONFIG;
	sqe.prp1 = (uint64_t)(uintptr_t)pages;
	sqe.prp2 = (uint64_t)(uintptr_t)pages + PAGE;
	err = leap_client_admin(c, &sqe, &cqe);
	if (err || (cqe.status >> 1))
		return fail(o, err ? err : -EIO, "%s", "Doorbell Buffer Config failed");
	c->eventidx = (uint32_t *)((uint8_t *)pages + PAGE);
	c->shadow = pages;
	return 0;
}

int leap_client_attach(const struct leap_client_opts *o, struct leap_client **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct leap_shm_attach at = { 0 };
	struct leap_shm_attach_reply rep = { 0 };
	struct leap_client *c;
	int fds[2 + LEAP_SHM_MAX_VECTORS], nfds, err;
	uint32_t nv = o->nr_vectors ? o->nr_vectors : 1;

	*out = NULL;
	if (!o->socket || !o->ctrl || strlen(o->ctrl) >= sizeof(at.ctrl) ||
	    strlen(o->socket) >= sizeof(sa.sun_path) || nv > LEAP_SHM_MAX_VECTORS)
		return fail(o, -EINVAL, "%s", "bad options");
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->sock = c->area_fd = c->kick_fd = c->mem_fd = -1;
	pthread_mutex_init(&c->irq_lock, NULL);
	c->mem_size = o->mem_size ? LEAP_ALIGN_UP(o->mem_size, (size_t)PAGE) : 64u << 20;
	c->aphase = 1;
	memcpy(sa.sun_path, o->socket, strlen(o->socket) + 1);
	c->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->sock < 0 || connect(c->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = fail(o, -errno, "cannot reach leapd: %s", strerror(errno));
		goto err_free;
	}
	at.hdr = (struct leap_shm_msg_hdr){ sizeof(at), LEAP_SHM_MSG_ATTACH, LEAP_SHM_ABI_VERSION };
	memcpy(at.ctrl, o->ctrl, strlen(o->ctrl));
	at.nr_vectors = nv;
	err = leap_fd_send(c->sock, &at, sizeof(at), NULL, 0);
	/*
	 * Even when the send failed, read on: leapd may have refused the
	 * connection already (a limit, a full descriptor table), with the
	 * reason queued for us before it closed its end.
	 */
	if (leap_fd_recv(c->sock, &rep, sizeof(rep), fds, 2 + LEAP_SHM_MAX_VECTORS, &nfds, NULL) !=
	    sizeof(rep)) {
		if (err)
			fail(o, err, "attach: %s", strerror(-err));
		else
			err = fail(o, -EPROTO, "%s", "no reply from leapd");
		goto err_free;
	}
	if (rep.status || nfds != 2 + (int)nv) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		err = fail(o, rep.status ? rep.status : -EPROTO, "leapd refused: %s", rep.message);
		goto err_free;
	}
	c->area_fd = fds[0];
	c->kick_fd = fds[1];
	/* Vector i: the read end of a pipe leapd writes a byte to per completion batch. */
	for (uint32_t i = 0; i < nv; i++) {
		c->vectors[i] = fds[2 + i];
		c->nr_vectors++;
		if (fcntl(c->vectors[i], F_SETFL, O_NONBLOCK) < 0) {
			err = fail(o, -errno, "vector: %s", strerror(errno));
			goto err_free;
		}
	}
	c->max_qsize = rep.max_qsize;
	c->area = mmap(NULL, rep.area_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->area_fd, 0);
	if (c->area == MAP_FAILED) {
		c->area = NULL;
		err = fail(o, -errno, "mmap area: %s", strerror(errno));
		goto err_free;
	}
	c->hdr = (struct leap_shm_area_hdr *)c->area;
	if (c->hdr->magic != LEAP_SHM_MAGIC || c->hdr->version != LEAP_SHM_ABI_VERSION) {
		err = fail(o, -EPROTO, "%s", "controller area has the wrong magic or version");
		goto err_free;
	}
	c->db = (volatile uint32_t *)(c->area + LEAP_SHM_AREA_DB_OFF);
	c->asq = (struct nvme_sqe *)(c->area + LEAP_SHM_AREA_ASQ_OFF);
	c->acq = (struct nvme_cqe *)(c->area + LEAP_SHM_AREA_ACQ_OFF);
	err = setup(c, o);
	if (err)
		goto err_free;
	*out = c;
	return 0;

err_free:
	leap_client_detach(c);
	return err;
}

void leap_client_detach(struct leap_client *c)
{
	if (!c)
		return;
	if (c->hdr && (c->hdr->regs.csts & NVME_CSTS_RDY) && c->sock >= 0 && leap_client_alive(c)) {
		__atomic_store_n(&c->hdr->regs.cc, 0, __ATOMIC_RELEASE);
		wait_ready(c, false);
	}
	if (c->area)
		munmap(c->area, LEAP_SHM_AREA_SIZE);
	if (c->mem)
		munmap(c->mem, c->mem_size);
	if (c->sock >= 0)
		close(c->sock);
	if (c->area_fd >= 0)
		close(c->area_fd);
	if (c->kick_fd >= 0)
		close(c->kick_fd);
	if (c->mem_fd >= 0)
		close(c->mem_fd);
	for (uint32_t i = 0; i < c->nr_vectors; i++)
		close(c->vectors[i]);
	/* Queue pairs the caller did not destroy go with the controller (their queues did). */
	for (uint32_t q = 0; q <= LEAP_SHM_MAX_QUEUES; q++)
		free(c->qps[q]);
	pthread_mutex_destroy(&c->irq_lock);
	free(c);
}

uint32_t leap_client_max_qpairs(const struct leap_client *c)
{
	return c->max_qpairs;
}

uint32_t leap_client_max_qsize(const struct leap_client *c)
{
	return c->max_qsize;
}

int leap_client_ns_info(struct leap_client *c, uint32_t nsid, uint64_t *nlb, uint32_t *lba_size)
{
	struct nvme_id_ns *id = leap_client_alloc(c, sizeof(*id), PAGE);
	struct nvme_sqe sqe = { 0 };
	struct nvme_cqe cqe;
	int err;

	if (!id)
		return -ENOMEM;
	sqe.opc = NVME_OPC_IDENTIFY;
	sqe.nsid = nsid;
	sqe.prp1 = (uint64_t)(uintptr_t)id;
	sqe.cdw10 = NVME_CNS_NS;
	err = leap_client_admin(c, &sqe, &cqe);
	if (err)
		return err;
	if (cqe.status >> 1)
		return -ENOENT;
	if (id->nsze == 0)
		return -ENOENT;
	*nlb = id->nsze;
	*lba_size = 1u << id->lbaf[id->flbas & 0xf].lbads;
	return 0;
}

int leap_client_qpair_create(struct leap_client *c, uint32_t qsize, bool irq,
			     struct leap_client_qpair **out)
{
	struct leap_client_qpair *qp;
	struct nvme_sqe sqe = { 0 };
	struct nvme_cqe cqe;
	uint16_t qid = 0;
	int err;

	*out = NULL;
	for (uint16_t q = 1; q <= c->max_qpairs; q++)
		if (!c->qid_used[q]) {
			qid = q;
			break;
		}
	if (!qid)
		return -ENOSPC;
	if (qsize < 2 || qsize > c->max_qsize)
		return -EINVAL;
	qp = calloc(1, sizeof(*qp));
	if (!qp)
		return -ENOMEM;
	qp->c = c;
	qp->qid = qid;
	qp->size = qsize;
	qp->phase = 1;
	qp->fd = -1;
	qp->sq = leap_client_alloc(c, (size_t)qsize * NVME_SQE_SIZE, PAGE);
	qp->cq = leap_client_alloc(c, (size_t)qsize * NVME_CQE_SIZE, PAGE);
	qp->prp_lists = leap_client_alloc(c, (size_t)qsize * PAGE, PAGE);
	if (!qp->sq || !qp->cq || !qp->prp_lists) {
		free(qp);
		return -ENOMEM;
	}
	memset(qp->cq, 0, (size_t)qsize * NVME_CQE_SIZE);
	sqe.opc = NVME_OPC_CREATE_IO_CQ;
	sqe.prp1 = (uint64_t)(uintptr_t)qp->cq;
	sqe.cdw10 = ((qsize - 1) << 16) | qid;
	sqe.cdw11 = NVME_QUEUE_PHYS_CONTIG | (irq ? NVME_CQ_IRQ_ENABLED : 0) |
		    ((uint32_t)(qid % c->nr_vectors) << 16);
	err = leap_client_admin(c, &sqe, &cqe);
	if (err || (cqe.status >> 1)) {
		free(qp);
		return err ? err : -EIO;
	}
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_OPC_CREATE_IO_SQ;
	sqe.prp1 = (uint64_t)(uintptr_t)qp->sq;
	sqe.cdw10 = ((qsize - 1) << 16) | qid;
	sqe.cdw11 = NVME_QUEUE_PHYS_CONTIG | ((uint32_t)qid << 16);
	err = leap_client_admin(c, &sqe, &cqe);
	if (err || (cqe.status >> 1)) {
		free(qp);
		return err ? err : -EIO;
	}
	qp->vector = qid % c->nr_vectors;
	if (irq) {
		qp->fd = c->vectors[qp->vector];
		/* Signalled from its first completion, whatever other qpairs on the vector do. */
		pthread_mutex_lock(&c->irq_lock);
		if (c->wanting[qp->vector]++ == 0)
			__atomic_fetch_and(&c->hdr->vector_mask, ~(1ull << qp->vector),
					   __ATOMIC_RELAXED);
		pthread_mutex_unlock(&c->irq_lock);
	}
	c->qid_used[qid] = true;
	c->qps[qid] = qp;
	*out = qp;
	return 0;
}

int leap_client_qpair_destroy(struct leap_client_qpair *qp)
{
	struct nvme_sqe sqe = { 0 };
	struct nvme_cqe cqe;
	int err;

	if (!qp)
		return 0;
	if (qp->fd >= 0)
		leap_client_irq_mask(qp); /* no longer waits: stop counting it */
	sqe.opc = NVME_OPC_DELETE_IO_SQ;
	sqe.cdw10 = qp->qid;
	err = leap_client_admin(qp->c, &sqe, &cqe);
	if (!err) {
		memset(&sqe, 0, sizeof(sqe));
		sqe.opc = NVME_OPC_DELETE_IO_CQ;
		sqe.cdw10 = qp->qid;
		err = leap_client_admin(qp->c, &sqe, &cqe);
	}
	qp->c->qid_used[qp->qid] = false;
	qp->c->qps[qp->qid] = NULL;
	free(qp);
	return err;
}

int leap_client_prp(struct leap_client_qpair *qp, struct nvme_sqe *sqe, uint16_t slot,
		    const void *buf, size_t len)
{
	uint64_t addr = (uint64_t)(uintptr_t)buf;
	uint64_t first = PAGE - (addr & (PAGE - 1));
	uint64_t *list = qp->prp_lists + (size_t)slot * (PAGE / 8);
	uint32_t n = 0;

	sqe->prp1 = addr;
	sqe->prp2 = 0;
	if (len <= first)
		return 0;
	addr += first;
	len -= first;
	if (len <= PAGE) {
		sqe->prp2 = addr;
		return 0;
	}
	/* One list page holds 512 entries: up to 2 MiB, beyond MDTS anyway. */
	while (len) {
		if (n == PAGE / 8)
			return -E2BIG;
		list[n++] = addr;
		addr += PAGE;
		len = len > PAGE ? len - PAGE : 0;
	}
	sqe->prp2 = (uint64_t)(uintptr_t)list;
	return 0;
}

int leap_client_submit(struct leap_client_qpair *qp, const struct nvme_sqe *sqe)
{
	uint32_t next = qp->sq_tail + 1 == qp->size ? 0 : qp->sq_tail + 1;

	if (next == qp->sq_head)
		return -EBUSY;
	memcpy(&qp->sq[qp->sq_tail], sqe, sizeof(*sqe));
	qp->sq_tail = next;
	return 0;
}

void leap_client_ring(struct leap_client_qpair *qp)
{
	if (qp->sq_rung == qp->sq_tail)
		return;
	ring(qp->c, leap_shm_sq_db(qp->qid), qp->sq_tail, true);
	qp->sq_rung = qp->sq_tail;
}

/*
 * shm_abi.h, point 7: where the thread waiting on this queue pair runs, as
 * leapd's reactor sees it. An rseq load and a compare per poll; a store
 * only when the thread moved (per queue pair, so threads on other CPUs do
 * not take turns rewriting the line).
 */
static void publish_cpu(struct leap_client_qpair *qp)
{
	uint32_t on = (uint32_t)(sched_getcpu() + 1);

	if (on != qp->cpu_on) {
		qp->cpu_on = on;
		__atomic_store_n(&qp->c->hdr->tenant_on, on, __ATOMIC_RELAXED);
	}
}

int leap_client_poll(struct leap_client_qpair *qp, struct nvme_cqe *out, int max)
{
	int n = 0;

	while (n < max) {
		struct nvme_cqe *e = &qp->cq[qp->cq_head];

		if ((__atomic_load_n(&e->status, __ATOMIC_ACQUIRE) & 1) != qp->phase)
			break;
		out[n++] = *e;
		qp->sq_head = e->sqhd; /* SQ entries up to here may be reused */
		if (++qp->cq_head == qp->size) {
			qp->cq_head = 0;
			qp->phase ^= 1;
		}
	}
	if (n)
		ring(qp->c, leap_shm_cq_db(qp->qid), qp->cq_head, false);
	publish_cpu(qp);
	return n;
}

bool leap_client_reactor_here(const struct leap_client_qpair *qp)
{
	return qp->cpu_on &&
	       __atomic_load_n(&qp->c->hdr->reactor_on, __ATOMIC_RELAXED) == qp->cpu_on;
}

bool leap_client_pending(const struct leap_client_qpair *qp)
{
	const struct nvme_cqe *e = &qp->cq[qp->cq_head];

	return (__atomic_load_n(&e->status, __ATOMIC_ACQUIRE) & 1) == qp->phase;
}

void leap_client_irq_mask(struct leap_client_qpair *qp)
{
	struct leap_client *c = qp->c;

	if (qp->fd < 0 || qp->polling)
		return;
	pthread_mutex_lock(&c->irq_lock);
	qp->polling = true;
	/* Relaxed: a signal leapd sends after all is only a spurious wake-up. */
	if (--c->wanting[qp->vector] == 0)
		__atomic_fetch_or(&c->hdr->vector_mask, 1ull << qp->vector, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->irq_lock);
}

bool leap_client_irq_unmask(struct leap_client_qpair *qp)
{
	struct leap_client *c = qp->c;

	if (qp->fd >= 0 && qp->polling) {
		pthread_mutex_lock(&c->irq_lock);
		qp->polling = false;
		if (c->wanting[qp->vector]++ == 0)
			__atomic_fetch_and(&c->hdr->vector_mask, ~(1ull << qp->vector),
					   __ATOMIC_RELAXED);
		pthread_mutex_unlock(&c->irq_lock);
	}
	/*
	 * A full fence between the (possibly another thread's) clear of our
	 * bit and the look at the CQ: pairs with leapd's CQE store, fence,
	 * mask load (shm_abi.h, point 6). Either we see its entry now or it
	 * sees the bit clear and writes the vector.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return leap_client_pending(qp);
}

int leap_client_wait(struct leap_client_qpair *qp, int timeout_ms)
{
	struct pollfd p = { .fd = qp->fd, .events = POLLIN };
	bool masked;
	int rc;

	if (qp->fd < 0)
		return -EINVAL;
	masked = qp->polling;
	if (leap_client_irq_unmask(qp))
		rc = 1; /* already there: no sleep */
	else
		rc = poll(&p, 1, timeout_ms);
	if (rc < 0)
		rc = -errno;
	else if (rc > 0)
		leap_client_vector_drain(qp->fd);
	if (masked)
		leap_client_irq_mask(qp);
	return rc;
}

void leap_client_vector_drain(int fd)
{
	char buf[256];

	/* One byte per batch leapd signalled; a few reads empty even a long-ignored pipe. */
	for (int i = 0; i < 8 && read(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf); i++)
		;
}

int leap_client_qpair_fd(const struct leap_client_qpair *qp)
{
	return qp->fd;
}

uint16_t leap_client_qpair_id(const struct leap_client_qpair *qp)
{
	return qp->qid;
}

bool leap_client_alive(struct leap_client *c)
{
	struct pollfd p = { .fd = c->sock, .events = POLLIN };

	if (leap_client_csts(c) & NVME_CSTS_CFS)
		return false;
	/* leapd never sends unsolicited messages: readable means EOF or error. */
	return poll(&p, 1, 0) == 0;
}

volatile uint32_t *leap_client_doorbells(struct leap_client *c)
{
	return c->db;
}

int leap_client_shutdown(struct leap_client *c, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	uint32_t cc = __atomic_load_n(&c->hdr->regs.cc, __ATOMIC_RELAXED);

	/* Normal shutdown (SHN = 01b), EN kept: leapd drains, flushes, then reports complete. */
	cc = (cc & ~NVME_CC_SHN_MASK) | (1u << NVME_CC_SHN_SHIFT);
	__atomic_store_n(&c->hdr->regs.cc, cc, __ATOMIC_RELEASE);
	leap_client_kick(c);
	while ((__atomic_load_n(&c->hdr->regs.csts, __ATOMIC_ACQUIRE) & NVME_CSTS_SHST_MASK) !=
	       NVME_CSTS_SHST_COMPLETE) {
		if (c->hdr->regs.csts & NVME_CSTS_CFS)
			return -EIO;
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		usleep(50);
	}
	return 0;
}

uint32_t leap_client_csts(const struct leap_client *c)
{
	return __atomic_load_n(&c->hdr->regs.csts, __ATOMIC_ACQUIRE);
}

int leap_client_raw_fd(const struct leap_client *c, enum leap_client_fd which)
{
	switch (which) {
	case LEAP_CLIENT_FD_SOCKET:
		return c->sock;
	case LEAP_CLIENT_FD_AREA:
		return c->area_fd;
	case LEAP_CLIENT_FD_KICK:
		return c->kick_fd;
	case LEAP_CLIENT_FD_MEM:
		return c->mem_fd;
	}
	return -1;
}
