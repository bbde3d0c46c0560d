// SPDX-License-Identifier: BSD-3-Clause
/*
 * The shared-memory front-end end to end, in one process: a real reactor
 * thread, a real `mem` backend, the controller model, the listener on a
 * temporary Unix socket, and the client library driving it exactly as a
 * tenant process would. Checks data, statuses, identify fields, SMART
 * counters, phase wrap, the fatal-doorbell path and detach/reattach.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "leapio/client.h"
#include "leapio/fdpass.h"
#include "leapio/log.h"
#include "backend/bdev.h"
#include "nvme/ctrl.h"
#include "core/reactor.h"
#include "frontend/shm/shm.h"
#include "tap.h"

LEAP_BDEV_MODULE_USE(leap_bdev_mem_ops);

static struct leap_reactor *reactor;
static struct leap_shm_listener *listener;
static struct leap_ctrl *ctrl;
static char sockpath[128];

#define MiB (1024ull * 1024)

static void setup(void)
{
	struct leap_reactor_opts ro = { .cpu = -1, .idle_sleep_us = 100 };
	json_t *bp = json_pack("{s:s, s:s, s:I}", "type", "mem", "name", "m0", "size",
			       (json_int_t)(64 * MiB));
	struct leap_ctrl_opts co = { .name = "t0", .max_io_queues = 4, .max_qsize = 256 };
	struct leap_bdev *b;

	if (leap_reactor_create(&ro, &reactor) || leap_reactor_start(reactor))
		abort();
	if (leap_bdev_create_wait(bp, &b, NULL) || leap_ctrl_create(&co, &ctrl))
		abort();
	json_decref(bp);
	if (leap_ctrl_ns_add(ctrl, 1, "m0", 0, 32 * MiB, 512) != 1 ||
	    leap_ctrl_ns_add(ctrl, 2, "m0", 32 * MiB, 0, 4096) != 2)
		abort();
	snprintf(sockpath, sizeof(sockpath), "/tmp/leap-shm-test-%d.sock", (int)getpid());
	if (leap_shm_listener_start(sockpath, &reactor, 1, &listener))
		abort();
}

static struct leap_client *attach(void)
{
	char err[256] = "";
	struct leap_client_opts o = { .socket = sockpath,
				      .ctrl = "t0",
				      .mem_size = 16 * MiB,
				      .errbuf = err,
				      .errbuf_sz = sizeof(err) };
	struct leap_client *c = NULL;
	int rc;

	/* A previous tenant's detach finishes asynchronously in leapd: retry -EBUSY briefly. */
	for (int i = 0; (rc = leap_client_attach(&o, &c)) == -EBUSY && i < 200; i++)
		usleep(10000);
	if (rc)
		printf("# attach: %d %s\n", rc, err);
	return c;
}

/* Submit one command and wait for its completion; returns the CQE status >> 1. */
static int io(struct leap_client_qpair *qp, struct nvme_sqe *sqe, struct nvme_cqe *out)
{
	struct nvme_cqe cqe;
	int spins = 0;

	if (leap_client_submit(qp, sqe))
		return -1;
	leap_client_ring(qp);
	while (leap_client_poll(qp, &cqe, 1) == 0) {
		if (++spins > 5000000)
			return -2;
	}
	if (out)
		*out = cqe;
	return cqe.status >> 1;
}

static void rw(struct nvme_sqe *s, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb,
	       uint16_t cid)
{
	memset(s, 0, sizeof(*s));
	s->opc = opc;
	s->nsid = nsid;
	s->cid = cid;
	s->cdw10 = (uint32_t)slba;
	s->cdw11 = (uint32_t)(slba >> 32);
	s->cdw12 = nlb - 1;
}

static void test_attach_identify(void)
{
	struct leap_client *c = attach();
	struct nvme_id_ctrl *id;
	struct nvme_sqe s = { 0 };
	struct nvme_cqe cqe;
	uint64_t nlb;
	uint32_t lba;

	T_ASSERT(c != NULL);
	T_ASSERT_EQ(leap_client_max_qpairs(c), 4);
	id = leap_client_alloc(c, 4096, 4096);
	s.opc = NVME_OPC_IDENTIFY;
	s.cdw10 = NVME_CNS_CTRL;
	s.prp1 = (uint64_t)(uintptr_t)id;
	T_ASSERT_EQ(leap_client_admin(c, &s, &cqe), 0);
	T_ASSERT_EQ(cqe.status >> 1, 0);
	T_ASSERT_EQ(id->cntlid, ctrl->cntlid);
	T_ASSERT_EQ(id->nn, LEAP_CTRL_MAX_NS);
	T_ASSERT_EQ(id->mdts, LEAP_CTRL_MDTS);
	T_ASSERT(strncmp(id->subnqn, "nqn.2024-01.io.leapio:t0", 24) == 0);
	T_ASSERT_EQ(leap_client_ns_info(c, 1, &nlb, &lba), 0);
	T_ASSERT_EQ(nlb, 32 * MiB / 512);
	T_ASSERT_EQ(lba, 512);
	T_ASSERT_EQ(leap_client_ns_info(c, 2, &nlb, &lba), 0);
	T_ASSERT_EQ(lba, 4096);
	T_ASSERT_EQ(nlb, 32 * MiB / 4096);
	leap_client_detach(c);
}

static void test_write_read_verify_and_wrap(void)
{
	struct leap_client *c = attach();
	struct leap_client_qpair *qp;
	uint8_t *wbuf, *rbuf;
	struct nvme_sqe s;

	T_ASSERT(c != NULL);
	T_ASSERT_EQ(leap_client_qpair_create(c, 8, false, &qp), 0);
	wbuf = leap_client_alloc(c, 64 * 1024, 4096);
	rbuf = leap_client_alloc(c, 64 * 1024, 4096);
	/* 40 round trips through an 8-entry queue: the CQ phase flips several times. */
	for (int i = 0; i < 40; i++) {
		for (int k = 0; k < 64 * 1024; k++)
			wbuf[k] = (uint8_t)(k * 7 + i);
		rw(&s, NVME_OPC_WRITE, 1, (uint64_t)i * 128, 128, (uint16_t)(0xfff0 + i));
		T_ASSERT_EQ(leap_client_prp(qp, &s, 0, wbuf, 64 * 1024), 0);
		T_ASSERT_EQ(io(qp, &s, NULL), 0);
		memset(rbuf, 0, 64 * 1024);
		rw(&s, NVME_OPC_READ, 1, (uint64_t)i * 128, 128, 7);
		T_ASSERT_EQ(leap_client_prp(qp, &s, 0, rbuf, 64 * 1024), 0);
		T_ASSERT_EQ(io(qp, &s, NULL), 0);
		T_ASSERT_MEM_EQ(wbuf, rbuf, 64 * 1024);
	}
	leap_client_qpair_destroy(qp);
	leap_client_detach(c);
}

static void test_io_error_statuses(void)
{
	struct leap_client *c = attach();
	struct leap_client_qpair *qp;
	struct nvme_cqe cqe;
	struct nvme_sqe s;
	uint8_t *buf;

	T_ASSERT(c != NULL);
	T_ASSERT_EQ(leap_client_qpair_create(c, 16, false, &qp), 0);
	buf = leap_client_alloc(c, 8192, 4096);

	rw(&s, 0x7e, 1, 0, 1, 0xabcd);
	T_ASSERT_EQ(io(qp, &s, &cqe), NVME_STATUS(0, NVME_SC_INVALID_OPCODE) | (NVME_CQE_DNR >> 1));
	T_ASSERT_EQ(cqe.cid, 0xabcd);
	rw(&s, NVME_OPC_READ, 9, 0, 1, 1);
	leap_client_prp(qp, &s, 0, buf, 512);
	T_ASSERT_EQ(io(qp, &s, &cqe) & 0x7ff, NVME_SC_INVALID_NAMESPACE_OR_FORMAT);
	rw(&s, NVME_OPC_READ, 1, 32 * MiB / 512 - 1, 2, 2);
	leap_client_prp(qp, &s, 0, buf, 1024);
	T_ASSERT_EQ(io(qp, &s, &cqe) & 0x7ff, NVME_SC_LBA_OUT_OF_RANGE);
	/* PRP outside every region the tenant shared: Data Transfer Error, nothing touched. */
	rw(&s, NVME_OPC_READ, 1, 0, 1, 3);
	s.prp1 = 0x1000;
	T_ASSERT_EQ(io(qp, &s, &cqe) & 0x7ff, NVME_SC_DATA_TRANSFER_ERROR);
	/* PRP1 not dword aligned. */
	rw(&s, NVME_OPC_READ, 1, 0, 1, 4);
	s.prp1 = (uint64_t)(uintptr_t)buf + 2;
	T_ASSERT_EQ(io(qp, &s, &cqe) & 0x7ff, NVME_SC_INVALID_PRP_OFFSET);
	/* Compare: equal then different. */
	memset(buf, 0x5a, 4096);
	rw(&s, NVME_OPC_WRITE, 1, 100, 8, 5);
	leap_client_prp(qp, &s, 0, buf, 4096);
	T_ASSERT_EQ(io(qp, &s, &cqe), 0);
	rw(&s, NVME_OPC_COMPARE, 1, 100, 8, 6);
	leap_client_prp(qp, &s, 0, buf, 4096);
	T_ASSERT_EQ(io(qp, &s, &cqe), 0);
	buf[100] ^= 1;
	T_ASSERT_EQ(io(qp, &s, &cqe) & 0x7ff, NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILURE));
	/* Write Zeroes, then the data reads back as zeroes. */
	rw(&s, NVME_OPC_WRITE_ZEROES, 1, 100, 8, 7);
	T_ASSERT_EQ(io(qp, &s, &cqe), 0);
	rw(&s, NVME_OPC_READ, 1, 100, 8, 8);
	leap_client_prp(qp, &s, 0, buf, 4096);
	T_ASSERT_EQ(io(qp, &s, &cqe), 0);
	for (int i = 0; i < 4096; i++)
		T_ASSERT_EQ(buf[i], 0);
	rw(&s, NVME_OPC_FLUSH, 1, 0, 1, 9);
	T_ASSERT_EQ(io(qp, &s, &cqe), 0);
	leap_client_qpair_destroy(qp);
	leap_client_detach(c);
}

static void test_admin_statuses(void)
{
	struct leap_client *c = attach();
	struct nvme_sqe s = { 0 };
	struct nvme_cqe cqe;
	struct nvme_health_log *h;
	uint64_t v;

	T_ASSERT(c != NULL);
	s.opc = 0xc3;
	T_ASSERT_EQ(leap_client_admin(c, &s, &cqe), 0);
	T_ASSERT_EQ((cqe.status >> 1) & 0x7ff, NVME_SC_INVALID_OPCODE);
	memset(&s, 0, sizeof(s));
	s.opc = NVME_OPC_CREATE_IO_CQ;
	s.cdw10 = (0xffffu << 16) | 1; /* 65536 entries: too many */
	s.cdw11 = 1;
	s.prp1 = (uint64_t)(uintptr_t)leap_client_alloc(c, 4096, 4096);
	T_ASSERT_EQ(leap_client_admin(c, &s, &cqe), 0);
	T_ASSERT_EQ((cqe.status >> 1) & 0x7ff,
		    NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_SIZE));
	s.cdw10 = (15 << 16) | 9; /* qid beyond the granted queues */
	T_ASSERT_EQ(leap_client_admin(c, &s, &cqe), 0);
	T_ASSERT_EQ((cqe.status >> 1) & 0x7ff,
		    NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER));
	memset(&s, 0, sizeof(s));
	s.opc = NVME_OPC_GET_LOG_PAGE;
	h = leap_client_alloc(c, 4096, 4096);
	s.prp1 = (uint64_t)(uintptr_t)h;
	s.cdw10 = NVME_LOG_HEALTH | (127u << 16);
	T_ASSERT_EQ(leap_client_admin(c, &s, &cqe), 0);
	T_ASSERT_EQ(cqe.status >> 1, 0);
	/* Earlier tests wrote 40 x 64 KiB and more through this controller. */
	memcpy(&v, (uint8_t *)h + 80, 8);
	T_ASSERT(v >= 41);
	memcpy(&v, (uint8_t *)h + 176, 8);
	T_ASSERT(v >= 5); /* error log entries from the failed commands */
	leap_client_detach(c);
}

static void test_sq_doorbell_overflow_is_fatal_for_this_controller_only(void)
{
	struct leap_client *c = attach();
	struct leap_client_qpair *qp;

	T_ASSERT(c != NULL);
	T_ASSERT_EQ(leap_client_qpair_create(c, 8, false, &qp), 0);
	leap_client_doorbells(c)[leap_shm_sq_db(leap_client_qpair_id(qp))] = 100;
	leap_client_kick(c);
	for (int i = 0; i < 2000 && !(leap_client_csts(c) & NVME_CSTS_CFS); i++)
		usleep(1000);
	T_ASSERT(leap_client_csts(c) & NVME_CSTS_CFS);
	/* Frees the queue pair; deleting its queues fails on a fatal controller (-EIO). */
	T_ASSERT_EQ(leap_client_qpair_destroy(qp), -EIO);
	leap_client_detach(c);
	/* The controller comes back clean for the next tenant. */
	c = attach();
	T_ASSERT(c != NULL);
	T_ASSERT(!(leap_client_csts(c) & NVME_CSTS_CFS));
	leap_client_detach(c);
}

static void test_attach_errors(void)
{
	char err[256] = "";
	struct leap_client_opts o = {
		.socket = sockpath, .ctrl = "nope", .errbuf = err, .errbuf_sz = sizeof(err)
	};
	struct leap_client *c = NULL, *c1;

	T_ASSERT_EQ(leap_client_attach(&o, &c), -ENOENT);
	T_ASSERT(strstr(err, "controller 'nope' not found") != NULL);
	c1 = attach();
	T_ASSERT(c1 != NULL);
	o.ctrl = "t0";
	o.errbuf = err;
	T_ASSERT_EQ(leap_client_attach(&o, &c), -EBUSY);
	leap_client_detach(c1);
	o.socket = "/tmp/definitely-not-a-leapd.sock";
	T_ASSERT(leap_client_attach(&o, &c) < 0);
}

/* Fill this process's descriptor table (soft limit lowered to 256); returns how many were opened. */
static int fill_fds(int *fds, int max, struct rlimit *saved)
{
	struct rlimit low;
	int n = 0;

	getrlimit(RLIMIT_NOFILE, saved);
	low = *saved;
	low.rlim_cur = 256;
	setrlimit(RLIMIT_NOFILE, &low);
	while (n < max && (fds[n] = dup(0)) >= 0)
		n++;
	return n;
}

static void unfill_fds(int *fds, int n, const struct rlimit *saved)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
	setrlimit(RLIMIT_NOFILE, saved);
}

static int send_region(struct leap_client *c, int memfd, uint64_t base, char *msg, size_t msgsz)
{
	struct leap_shm_region_add ra = { .hdr = { sizeof(ra), LEAP_SHM_MSG_REGION_ADD,
						   LEAP_SHM_ABI_VERSION },
					  .base = base,
					  .len = 65536 };
	struct leap_shm_region_reply rr = { 0 };
	int sock = leap_client_raw_fd(c, LEAP_CLIENT_FD_SOCKET), in[4], nin;

	if (leap_fd_send(sock, &ra, sizeof(ra), &memfd, 1) ||
	    leap_fd_recv(sock, &rr, sizeof(rr), in, 4, &nin, NULL) != sizeof(rr))
		return 1;
	snprintf(msg, msgsz, "%s", rr.message);
	return rr.status;
}

/*
 * leapd out of descriptors (class 4): a region whose memfd the kernel could
 * not install here is answered -EMFILE with the reason, the connection
 * stays usable; a connection that accept() had no descriptor for is
 * answered through the spare descriptor, not left spinning in the backlog.
 */
static void test_out_of_descriptors_answered_precisely(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct leap_shm_attach_reply rep = { 0 };
	static int fds[512];
	struct leap_client *c = attach();
	struct rlimit saved;
	char msg[128] = "";
	int memfd, late, n;

	T_ASSERT(c != NULL);
	memfd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	T_ASSERT(memfd >= 0 && ftruncate(memfd, 65536) == 0);
	T_ASSERT(fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK) == 0);
	late = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	T_ASSERT(late >= 0);
	T_ASSERT(strlen(sockpath) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, sockpath, strlen(sockpath) + 1);

	n = fill_fds(fds, 512, &saved);
	T_ASSERT_EQ(send_region(c, memfd, 0x7e0000000000ull, msg, sizeof(msg)), -EMFILE);
	T_ASSERT(strstr(msg, "out of file descriptors") != NULL);
	/* connect() needs no descriptor here; leapd's accept() has none to give. */
	T_ASSERT_EQ(connect(late, (struct sockaddr *)&sa, sizeof(sa)), 0);
	T_ASSERT_EQ(recv(late, &rep, sizeof(rep), 0), sizeof(rep));
	unfill_fds(fds, n, &saved);
	T_ASSERT_EQ(rep.status, -EMFILE);
	T_ASSERT(strstr(rep.message, "out of file descriptors") != NULL);

	/* Descriptors are back: the same connection adds the region now. */
	T_ASSERT_EQ(send_region(c, memfd, 0x7e0000000000ull, msg, sizeof(msg)), 0);
	close(late);
	close(memfd);
	leap_client_detach(c);
}

/* Bytes leapd wrote to a vector within `ms` (drains them). */
static int vector_bytes(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[64];
	int n = 0;
	ssize_t r;

	if (poll(&p, 1, ms) <= 0)
		return 0;
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		n += (int)r;
	return n;
}

/* Submit one 1-block read with CID cid and ring; its completion is the caller's to wait for. */
static int read_start(struct leap_client_qpair *qp, void *buf, uint16_t cid)
{
	struct nvme_sqe s;

	rw(&s, NVME_OPC_READ, 1, cid, 1, cid);
	leap_client_prp(qp, &s, 0, buf, 512);
	if (leap_client_submit(qp, &s))
		return -1;
	leap_client_ring(qp);
	return 0;
}

/* One read, completion polled: the path of a thread that spins. */
static int read_polled(struct leap_client_qpair *qp, void *buf, uint16_t cid)
{
	struct nvme_cqe cqe;

	if (read_start(qp, buf, cid))
		return -1;
	for (int spins = 0; leap_client_poll(qp, &cqe, 1) == 0; spins++)
		if (spins > 5000000)
			return -2;
	return cqe.cid == cid ? cqe.status >> 1 : -3;
}

/*
 * shm_abi.h, point 6: a masked vector gets no signal, an unmasked one does,
 * unmask reports a completion that arrived while masked, leap_client_wait()
 * sleeps through a masked vector and leaves it masked, and a vector is
 * signalled while any qpair on it wants signals.
 */
static void test_vector_mask(void)
{
	struct leap_client *c = attach();
	struct leap_client_qpair *qp, *qp2;
	struct nvme_cqe cqe;
	uint8_t *buf;
	int fd;

	T_ASSERT(c != NULL);
	T_ASSERT_EQ(leap_client_qpair_create(c, 16, true, &qp), 0);
	buf = leap_client_alloc(c, 4096, 4096);
	fd = leap_client_qpair_fd(qp);
	T_ASSERT(fd >= 0);
	/* Unmasked (the default): each completion is signalled. */
	T_ASSERT_EQ(read_polled(qp, buf, 1), 0);
	T_ASSERT(vector_bytes(fd, 1000) > 0);
	/* Masked: twenty completions, not one signal (leapd signals in the pass that posts). */
	leap_client_irq_mask(qp);
	for (uint16_t i = 0; i < 20; i++)
		T_ASSERT_EQ(read_polled(qp, buf, (uint16_t)(10 + i)), 0);
	T_ASSERT_EQ(vector_bytes(fd, 50), 0);
	/* A completion posted while masked: unmask says so instead of letting us sleep on it. */
	T_ASSERT_EQ(read_start(qp, buf, 40), 0);
	for (int i = 0; i < 5000000 && !leap_client_pending(qp); i++)
		;
	T_ASSERT(leap_client_irq_unmask(qp));
	T_ASSERT_EQ(leap_client_poll(qp, &cqe, 1), 1);
	T_ASSERT_EQ(cqe.cid, 40);
	/* Unmasked with an empty CQ: sleeping on the vector is what wakes us. */
	T_ASSERT(!leap_client_irq_unmask(qp));
	T_ASSERT_EQ(read_start(qp, buf, 41), 0);
	T_ASSERT(vector_bytes(fd, 5000) > 0);
	T_ASSERT_EQ(leap_client_poll(qp, &cqe, 1), 1);
	T_ASSERT_EQ(cqe.cid, 41);
	/* leap_client_wait() on a masked vector: woken, and masked again after. */
	leap_client_irq_mask(qp);
	T_ASSERT_EQ(read_start(qp, buf, 42), 0);
	T_ASSERT(leap_client_wait(qp, 5000) > 0);
	T_ASSERT_EQ(leap_client_poll(qp, &cqe, 1), 1);
	T_ASSERT_EQ(cqe.cid, 42);
	(void)vector_bytes(fd, 20);
	T_ASSERT_EQ(read_polled(qp, buf, 43), 0);
	T_ASSERT_EQ(vector_bytes(fd, 50), 0);
	/* A second qpair on the same vector that wants signals: the vector is signalled again. */
	T_ASSERT_EQ(leap_client_qpair_create(c, 16, true, &qp2), 0);
	T_ASSERT_EQ(leap_client_qpair_fd(qp2), fd);
	T_ASSERT_EQ(read_polled(qp, buf, 44), 0);
	T_ASSERT(vector_bytes(fd, 1000) > 0);
	leap_client_irq_mask(qp2);
	(void)vector_bytes(fd, 20);
	T_ASSERT_EQ(read_polled(qp, buf, 45), 0);
	T_ASSERT_EQ(vector_bytes(fd, 50), 0);
	leap_client_qpair_destroy(qp2);
	leap_client_qpair_destroy(qp);
	leap_client_detach(c);
}

static void pin_self(void *arg)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	if ((intptr_t)arg >= 0)
		CPU_SET((int)(intptr_t)arg, &set);
	else /* every CPU again */
		for (long i = 0; i < sysconf(_SC_NPROCESSORS_ONLN) && i < CPU_SETSIZE; i++)
			CPU_SET((int)i, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void pin_me(int cpu)
{
	pin_self((void *)(intptr_t)cpu);
}

/* shm_abi.h, point 7: the reactor's CPU reaches the tenant. */
static void test_reactor_cpu_hint(void)
{
	struct leap_client *c;
	struct leap_client_qpair *qp;
	struct nvme_cqe cqe;
	cpu_set_t saved;
	bool here = false;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		T_SKIP("needs two CPUs");
	c = attach();
	T_ASSERT(c != NULL);
	T_ASSERT_EQ(leap_client_qpair_create(c, 16, false, &qp), 0);
	sched_getaffinity(0, sizeof(saved), &saved);
	T_ASSERT_EQ(leap_reactor_send_msg(reactor, pin_self, (void *)(intptr_t)1), 0);
	pin_me(1);
	for (int i = 0; i < 2000 && !here; i++) {
		(void)leap_client_poll(qp, &cqe, 1); /* empty: publishes our CPU */
		here = leap_client_reactor_here(qp);
		usleep(1000);
	}
	T_ASSERT(here);
	pin_me(0);
	for (int i = 0; i < 2000 && here; i++) {
		(void)leap_client_poll(qp, &cqe, 1);
		here = leap_client_reactor_here(qp);
		usleep(1000);
	}
	T_ASSERT(!here);
	T_ASSERT_EQ(leap_reactor_send_msg(reactor, pin_self, (void *)(intptr_t)-1), 0);
	sched_setaffinity(0, sizeof(saved), &saved);
	leap_client_qpair_destroy(qp);
	leap_client_detach(c);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_attach_identify),
		TAP_CASE(test_write_read_verify_and_wrap),
		TAP_CASE(test_io_error_statuses),
		TAP_CASE(test_admin_statuses),
		TAP_CASE(test_sq_doorbell_overflow_is_fatal_for_this_controller_only),
		TAP_CASE(test_attach_errors),
		TAP_CASE(test_out_of_descriptors_answered_precisely),
		TAP_CASE(test_vector_mask),
		TAP_CASE(test_reactor_cpu_hint),
	};
	int rc;

	leap_log_set_level(LEAP_LOG_ERROR);
	setup();
	rc = tap_run(cases, TAP_N(cases));
	leap_shm_listener_stop(listener);
	leap_reactor_stop(reactor);
	return rc;
}
