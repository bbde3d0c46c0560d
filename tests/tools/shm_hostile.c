// SPDX-License-Identifier: BSD-3-Clause
/*
 * shm_hostile: a tenant that lies. It attaches to a leapd controller like
 * any tenant and then commits one named abuse of the sizes, descriptors,
 * connections or timing that a tenant controls (issue 11, "Hostile
 * tenants"), printing what leapd answered as `key=value` lines for
 * tests/e2e/hostile.bats to assert on. leapd staying up, and other tenants
 * carrying on, is checked by the test around it.
 *
 *   shm_hostile SOCKET CTRL CASE [ARG...]
 *
 * Exit 0 when the abuse was carried out (whatever leapd answered), 1 when
 * the tool itself could not get that far, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "leapio/client.h"
#include "leapio/fdpass.h"
#include "leapio/shm_abi.h"

#define MiB	  (1024ull * 1024)
/* A tenant address for the lying regions: page aligned, far from anything mmap picks. */
#define FAKE_BASE 0x7e0000000000ull

static const char *sock_path, *ctrl_name;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct leap_client *attach_opts(const char *ctrl, uint32_t nr_vectors, size_t mem)
{
	char err[256] = "";
	struct leap_client_opts o = { .socket = sock_path,
				      .ctrl = ctrl,
				      .mem_size = mem,
				      .nr_vectors = nr_vectors,
				      .errbuf = err,
				      .errbuf_sz = sizeof(err) };
	struct leap_client *c;
	int rc = leap_client_attach(&o, &c);

	if (rc) {
		printf("attach=%d\nattach_msg=%s\n", rc, err);
		return NULL;
	}
	return c;
}

static struct leap_client *attach(void)
{
	return attach_opts(ctrl_name, 1, 4 * MiB);
}

/* Share `fd` as a region [base, base + len) at `offset`; prints and returns leapd's status. */
static int region_add(struct leap_client *c, int fd, uint64_t base, uint64_t len, uint64_t offset)
{
	struct leap_shm_region_add ra = { 0 };
	struct leap_shm_region_reply rr = { 0 };
	int sock = leap_client_raw_fd(c, LEAP_CLIENT_FD_SOCKET), fds[4], nfds = 0, err;

	ra.hdr =
	    (struct leap_shm_msg_hdr){ sizeof(ra), LEAP_SHM_MSG_REGION_ADD, LEAP_SHM_ABI_VERSION };
	ra.base = base;
	ra.len = len;
	ra.offset = offset;
	err = leap_fd_send(sock, &ra, sizeof(ra), &fd, 1);
	if (err) {
		printf("region_send=%d\n", err);
		return err;
	}
	if (leap_fd_recv(sock, &rr, sizeof(rr), fds, 4, &nfds, NULL) != sizeof(rr)) {
		printf("region=noreply\n");
		return -EPIPE;
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	printf("region=%d\nregion_msg=%s\n", rr.status, rr.message);
	return rr.status;
}

static int sealed_memfd(size_t size, bool seal)
{
	int fd = memfd_create("hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		return -1;
	if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)
		return -1;
	return fd;
}

/* One read of 4 KiB (512-byte LBAs) into tenant address `addr`; prints and returns the status. */
static int read_into(struct leap_client_qpair *qp, uint64_t addr)
{
	struct nvme_sqe s = { 0 };
	struct nvme_cqe cqe;
	uint64_t deadline = now_ms() + 5000;

	s.opc = NVME_OPC_READ;
	s.nsid = 1;
	s.cid = 0x77;
	s.prp1 = addr;
	s.cdw12 = 7;
	if (leap_client_submit(qp, &s))
		return -1;
	leap_client_ring(qp);
	while (leap_client_poll(qp, &cqe, 1) == 0) {
		if (now_ms() > deadline) {
			printf("io=timeout\n");
			return -ETIMEDOUT;
		}
	}
	/* Status code and type, without the DNR/More bits. */
	printf("io=0x%x\n", (cqe.status >> 1) & 0x7ff);
	return (cqe.status >> 1) & 0x7ff;
}

/* Region larger than its memfd, or shrunk after registration: leapd must never map past the end. */
static int case_region(struct leap_client *c, const char *kase)
{
	struct leap_client_qpair *qp;
	bool seal = strcmp(kase, "region-unsealed-shrink") != 0;
	uint64_t len = 2 * MiB;
	int fd, rc;

	if (leap_client_qpair_create(c, 16, false, &qp))
		return 1;
	fd = sealed_memfd(!strcmp(kase, "region-oversize") ? 1 * MiB : 2 * MiB, seal);
	if (fd < 0)
		return 1;
	rc = region_add(c, fd, FAKE_BASE, len, 0);
	if (strcmp(kase, "region-oversize")) {
		/* Now take the memory away under leapd's mapping. */
		int t = ftruncate(fd, 0);

		printf("truncate=%d\n", t < 0 ? -errno : 0);
	}
	/* Point a read past the memfd's real end (or into the truncated region). */
	read_into(qp, FAKE_BASE + len - 8192);
	(void)rc;
	return 0;
}

/* Descriptors that are not memfds: a pipe, a regular file, an unsealed shmem file. */
static int case_region_not_memfd(struct leap_client *c)
{
	char tmpl[] = "/var/tmp/leap-hostile.XXXXXX";
	int p[2], f;

	if (pipe(p) < 0)
		return 1;
	region_add(c, p[0], FAKE_BASE, 1 * MiB, 0);
	f = mkstemp(tmpl);
	if (f < 0 || ftruncate(f, (off_t)(1 * MiB)) < 0)
		return 1;
	unlink(tmpl);
	region_add(c, f, FAKE_BASE, 1 * MiB, 0);
	f = memfd_create("hostile-unsealed", MFD_CLOEXEC);
	if (f < 0 || ftruncate(f, (off_t)(1 * MiB)) < 0)
		return 1;
	region_add(c, f, FAKE_BASE, 1 * MiB, 0);
	return 0;
}

/* Shrink the controller area leapd created and handed us: leapd reads doorbells from it. */
static int case_area_truncate(struct leap_client *c)
{
	int rc = ftruncate(leap_client_raw_fd(c, LEAP_CLIENT_FD_AREA), 0);

	printf("truncate=%d\n", rc < 0 ? -errno : 0);
	leap_client_kick(c);
	usleep(300000);
	leap_client_kick(c);
	usleep(300000);
	return 0;
}

/* Clear O_NONBLOCK on the kick eventfd leapd handed out (the flag is on the shared file). */
static int case_kick_blocking(struct leap_client *c, int seconds)
{
	int fd = leap_client_raw_fd(c, LEAP_CLIENT_FD_KICK);
	int fl = fcntl(fd, F_GETFL);

	printf("setfl=%d\n", fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 ? -errno : 0);
	/* Idle: leapd goes to sleep, wakes on its timeout and resets the counter. */
	sleep((unsigned)seconds);
	return 0;
}

/* `n` reads on an irq qpair, never draining its vector; returns how many completed. */
static long reads_no_drain(struct leap_client_qpair *qp, uint8_t *buf, long n)
{
	struct nvme_sqe s = { 0 };
	struct nvme_cqe cqe[16];
	uint64_t deadline = now_ms() + 20000;
	long sent = 0, done = 0;

	s.opc = NVME_OPC_READ;
	s.nsid = 1;
	s.prp1 = (uint64_t)(uintptr_t)buf;
	s.cdw12 = 7;
	while (done < n && now_ms() < deadline) {
		while (sent < n && sent - done < 8) {
			s.cid = (uint16_t)(sent & 0xff);
			if (leap_client_submit(qp, &s))
				break;
			sent++;
		}
		leap_client_ring(qp);
		done += leap_client_poll(qp, cqe, 16);
	}
	return done;
}

/*
 * The completion vector: try to make it block leapd the ways an eventfd
 * could be made to (blocking mode, counter filled), never drain it so the
 * pipe fills, then close it under leapd while I/O keeps completing.
 */
static int case_vector_abuse(struct leap_client *c)
{
	struct leap_client_qpair *qp;
	uint64_t full = 0xfffffffffffffffeull;
	uint8_t *buf;
	int fd, null;

	if (leap_client_qpair_create(c, 16, true, &qp))
		return 1;
	buf = leap_client_alloc(c, 4096, 4096);
	fd = leap_client_qpair_fd(qp);
	printf("setfl=%d\n", fcntl(fd, F_SETFL, 0) < 0 ? -errno : 0);
	printf("fill=%d\n", write(fd, &full, sizeof(full)) < 0 ? -errno : 0);
	printf("ios_full=%ld\n", reads_no_drain(qp, buf, 20000));
	/* Close the read end (the fd number now holds /dev/null for the library to close). */
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, fd) < 0)
		return 1;
	close(null);
	printf("ios_closed=%ld\n", reads_no_drain(qp, buf, 2000));
	return 0;
}

/*
 * The shared hints of ABI points 6 and 7 (shm_abi.h), lied about for
 * `seconds` while I/O runs: `tenant_on` claims the reactor's CPU (so the
 * reactor would sleep at once when idle and pin itself there) or garbage,
 * and `vector_mask` masks every vector or random ones, while this tenant
 * submits through an interrupt-capable queue and never waits. What leapd
 * reads of them only concerns this tenant's own vectors and the reactor's
 * own idle decision; the test checks the other tenants' I/O around it.
 */
static uint64_t rnd(uint64_t *x);

static int case_hints(struct leap_client *c, int seconds)
{
	uint64_t end = now_ms() + (uint64_t)seconds * 1000, x = 0x9e3779b97f4a7c15ull, lies = 0;
	struct leap_client_qpair *qp;
	struct leap_shm_area_hdr *area;
	struct nvme_cqe cqe[16];
	uint8_t *buf;
	long ios = 0;

	area = mmap(NULL, LEAP_SHM_AREA_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		    leap_client_raw_fd(c, LEAP_CLIENT_FD_AREA), 0);
	if (area == MAP_FAILED || leap_client_qpair_create(c, 16, true, &qp))
		return 1;
	buf = leap_client_alloc(c, 4096, 4096);
	while (now_ms() < end) {
		uint32_t on = __atomic_load_n(&area->reactor_on, __ATOMIC_RELAXED);
		uint64_t r = rnd(&x);

		__atomic_store_n(&area->tenant_on, (r & 3) ? on : (uint32_t)(r >> 8),
				 __ATOMIC_RELAXED);
		__atomic_store_n(&area->vector_mask, (r & 4) ? ~0ull : rnd(&x), __ATOMIC_RELAXED);
		lies++;
		for (int i = 0; i < 8; i++) {
			struct nvme_sqe s = { .opc = NVME_OPC_READ, .nsid = 1, .cdw12 = 0 };

			s.prp1 = (uint64_t)(uintptr_t)buf;
			if (leap_client_submit(qp, &s) != 0)
				break;
		}
		leap_client_ring(qp);
		ios += leap_client_poll(qp, cqe, 16);
	}
	printf("lies=%llu\nios=%ld\n", (unsigned long long)lies, ios);
	return 0;
}

/* An ABI 1 attach: the tenant passing its own (blocking, full) eventfd as a vector. */
static int case_v1_attach(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct leap_shm_attach at = { 0 };
	struct leap_shm_attach_reply rep = { 0 };
	uint64_t full = 0xfffffffffffffffeull;
	int s, ev, fds[8], nfds = 0;

	ev = eventfd(0, EFD_CLOEXEC);
	if (ev < 0 || write(ev, &full, sizeof(full)) != sizeof(full))
		return 1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return 1;
	at.hdr = (struct leap_shm_msg_hdr){ sizeof(at), LEAP_SHM_MSG_ATTACH, 1 };
	snprintf(at.ctrl, sizeof(at.ctrl), "%s", ctrl_name);
	at.nr_vectors = 1;
	if (leap_fd_send(s, &at, sizeof(at), &ev, 1))
		return 1;
	if (leap_fd_recv(s, &rep, sizeof(rep), fds, 8, &nfds, NULL) != sizeof(rep)) {
		printf("attach=noreply\n");
		return 0;
	}
	printf("attach=%d\nattach_msg=%s\n", rep.status, rep.message);
	return 0;
}

/* Read one attach reply from `s` (non-blocking); its status, or 1 for EOF without one. */
static int read_reply(int s, char *msg, size_t msgsz)
{
	struct leap_shm_attach_reply rep = { 0 };
	ssize_t n = recv(s, &rep, sizeof(rep), MSG_DONTWAIT);

	if (n != (ssize_t)sizeof(rep))
		return 1;
	snprintf(msg, msgsz, "%s", rep.message);
	return rep.status;
}

/*
 * Open `n` connections and never attach, holding them for `seconds`:
 * prints how many leapd refused at once (and why), how many it closed
 * later for not attaching, and how many were still open at the end.
 */
static int case_hoard(int n, int seconds)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int *s = calloc((size_t)n, sizeof(int));
	int connected = 0, backlog = 0, refused = 0, timedout = 0, closed = 0, held = 0;
	char refusal[128] = "", timeout_msg[128] = "", msg[128];
	uint64_t end = now_ms() + (uint64_t)seconds * 1000;

	if (!s)
		return 1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	for (int i = 0; i < n; i++) {
		s[i] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (s[i] < 0)
			return 1;
		/* EAGAIN: the listen backlog is full for a moment; wait for leapd to accept. */
		for (int tries = 0; connect(s[i], (struct sockaddr *)&sa, sizeof(sa)) < 0;
		     tries++) {
			if (errno != EAGAIN || tries > 2000) {
				backlog++;
				close(s[i]);
				s[i] = -1;
				break;
			}
			usleep(1000);
		}
		connected += s[i] >= 0;
	}
	usleep(500000);
	for (int i = 0; i < n; i++) {
		struct pollfd p = { .fd = s[i], .events = POLLIN };

		if (s[i] < 0 || poll(&p, 1, 0) != 1)
			continue;
		if (read_reply(s[i], msg, sizeof(msg)) < 0) {
			refused++;
			snprintf(refusal, sizeof(refusal), "%s", msg);
		} else {
			closed++;
		}
		close(s[i]);
		s[i] = -1;
	}
	printf("connected=%d\nbacklog=%d\nrefused=%d\nrefusal_msg=%s\n", connected, backlog,
	       refused, refusal);
	while (now_ms() < end) {
		usleep(100000);
		for (int i = 0; i < n; i++) {
			struct pollfd p = { .fd = s[i], .events = POLLIN };
			int st;

			if (s[i] < 0 || poll(&p, 1, 0) != 1)
				continue;
			st = read_reply(s[i], msg, sizeof(msg));
			if (st == -ETIMEDOUT) {
				timedout++;
				snprintf(timeout_msg, sizeof(timeout_msg), "%s", msg);
			} else {
				closed++;
			}
			close(s[i]);
			s[i] = -1;
		}
	}
	for (int i = 0; i < n; i++)
		held += s[i] >= 0;
	printf("timedout=%d\ntimeout_msg=%s\nclosed=%d\nheld=%d\n", timedout, timeout_msg, closed,
	       held);
	free(s);
	return 0;
}

/*
 * Attach to h0..h<n-1> with every vector and every region the ABI allows,
 * keeping all of it for `seconds`: prints how many attaches and regions
 * leapd granted and the first refusal of each kind.
 */
static int case_exhaust(int n, int seconds)
{
	int attached = 0, regions = 0, region_refused = 0;
	struct leap_client *held[64] = { 0 };
	char region_msg[160] = "";

	for (int i = 0; i < n; i++) {
		char name[16];
		struct leap_client *c;

		snprintf(name, sizeof(name), "h%d", i);
		c = attach_opts(name, LEAP_SHM_MAX_VECTORS, 1 * MiB);
		if (!c)
			continue; /* attach_opts printed leapd's reason */
		if (attached < 64)
			held[attached] = c;
		attached++;
		/* The client library shared one region; add the other 15. */
		for (int r = 1; r < LEAP_SHM_MAX_REGIONS; r++) {
			struct leap_shm_region_add ra = { 0 };
			struct leap_shm_region_reply rr = { 0 };
			int sock = leap_client_raw_fd(c, LEAP_CLIENT_FD_SOCKET), fds[4], nfds = 0;
			int fd = sealed_memfd(64 * 1024, true);

			if (fd < 0)
				return 1;
			ra.hdr = (struct leap_shm_msg_hdr){ sizeof(ra), LEAP_SHM_MSG_REGION_ADD,
							    LEAP_SHM_ABI_VERSION };
			ra.base = FAKE_BASE + (uint64_t)r * MiB;
			ra.len = 64 * 1024;
			if (leap_fd_send(sock, &ra, sizeof(ra), &fd, 1) ||
			    leap_fd_recv(sock, &rr, sizeof(rr), fds, 4, &nfds, NULL) !=
				sizeof(rr)) {
				printf("region=noreply\n");
				close(fd);
				break;
			}
			close(fd);
			if (rr.status) {
				region_refused++;
				snprintf(region_msg, sizeof(region_msg), "%s", rr.message);
			} else {
				regions++;
			}
		}
	}
	printf("attached=%d\nregions=%d\nregion_refused=%d\nregion_refusal=%s\n", attached, regions,
	       region_refused, region_msg);
	/* Hold everything for a while, then let go. */
	sleep((unsigned)seconds);
	for (int i = 0; i < 64; i++)
		leap_client_detach(held[i]);
	return 0;
}

/* One region add carrying 60 descriptors: leapd takes one at most and says what was wrong. */
static int case_fd_spray(struct leap_client *c)
{
	int fds[60];

	for (int i = 0; i < 60; i++) {
		fds[i] = sealed_memfd(64 * 1024, true);
		if (fds[i] < 0)
			return 1;
	}
	{
		struct leap_shm_region_add ra = { 0 };
		struct leap_shm_region_reply rr = { 0 };
		int sock = leap_client_raw_fd(c, LEAP_CLIENT_FD_SOCKET), in[4], nin = 0;

		ra.hdr = (struct leap_shm_msg_hdr){ sizeof(ra), LEAP_SHM_MSG_REGION_ADD,
						    LEAP_SHM_ABI_VERSION };
		ra.base = FAKE_BASE;
		ra.len = 64 * 1024;
		if (leap_fd_send(sock, &ra, sizeof(ra), fds, 60) ||
		    leap_fd_recv(sock, &rr, sizeof(rr), in, 4, &nin, NULL) != sizeof(rr)) {
			printf("region=noreply\n");
			return 0;
		}
		printf("region=%d\nregion_msg=%s\n", rr.status, rr.message);
	}
	return 0;
}

/* Open `n` connections to leapd's control socket and hold them for `seconds`. */
static int case_rpc_hog(const char *path, int n, int seconds)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int ok = 0;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (int i = 0; i < n; i++) {
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (s < 0)
			return 1;
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			ok++;
	}
	printf("rpc_connected=%d\n", ok);
	sleep((unsigned)seconds);
	return 0;
}

/*
 * Submit `n` reads (a policy is expected to defer them) and leave at once,
 * without waiting for them and without disabling the controller: the
 * process exits with the commands still in leapd.
 */
static int case_defer_exit(struct leap_client *c, int n)
{
	struct leap_client_qpair *qp;
	struct nvme_cqe cqe[64];
	struct nvme_sqe s = { 0 };
	uint8_t *buf = leap_client_alloc(c, 4096, 4096);
	int sent = 0, done;

	if (!buf || leap_client_qpair_create(c, 64, false, &qp))
		return 1;
	s.opc = NVME_OPC_READ;
	s.nsid = 1;
	s.prp1 = (uint64_t)(uintptr_t)buf;
	s.cdw12 = 7;
	for (; sent < n && sent < 63; sent++) {
		s.cid = (uint16_t)sent;
		if (leap_client_submit(qp, &s))
			break;
	}
	leap_client_ring(qp);
	usleep(200000);
	done = leap_client_poll(qp, cqe, 64);
	printf("submitted=%d\ncompleted_before_exit=%d\n", sent, done);
	fflush(stdout);
	_exit(0);
}

/* ---- chaos: random abuse, for the stress test ------------------------------------- */

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/*
 * One attach doing random damage until it is fatal, or for a random number of
 * steps; then it leaves the hard way (_exit: no detach, commands in flight).
 * Runs in a child process.
 */
static void __attribute__((noreturn)) chaos_life(uint64_t seed)
{
	static const uint8_t opcodes[] = { 0x00, 0x01, 0x02, 0x05, 0x08, 0x09, 0x7e, 0x04, 0x80 };
	uint64_t x = seed | 1, steps = 50 + rnd(&x) % 2000;
	struct leap_client_qpair *qp;
	struct leap_client *c = attach_opts(ctrl_name, 1 + (uint32_t)(rnd(&x) % 4), 1 * MiB);
	struct nvme_cqe cqe[16];
	struct leap_shm_area_hdr *area;
	uint8_t *buf;

	if (!c || leap_client_qpair_create(c, 16, rnd(&x) & 1, &qp))
		_exit(0);
	buf = leap_client_alloc(c, 64 * 1024, 4096);
	area = mmap(NULL, LEAP_SHM_AREA_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		    leap_client_raw_fd(c, LEAP_CLIENT_FD_AREA), 0);
	for (uint64_t i = 0; i < steps && !(leap_client_csts(c) & NVME_CSTS_CFS); i++) {
		uint64_t r = rnd(&x) % 16;

		if (r < 8) { /* a random command, pointers mostly near our buffer */
			struct nvme_sqe s = { 0 };
			uint64_t p = rnd(&x);

			s.opc = opcodes[rnd(&x) % sizeof(opcodes)];
			s.nsid = (uint32_t)(rnd(&x) % 3);
			s.cid = (uint16_t)rnd(&x);
			s.flags = (uint8_t)(rnd(&x) % 4 == 0 ? rnd(&x) : 0);
			s.prp1 = (p & 3) == 0 ? p : (uint64_t)(uintptr_t)buf + (p % (128 * 1024));
			s.prp2 = (rnd(&x) & 1) ? rnd(&x) : (uint64_t)(uintptr_t)buf + 4096;
			s.cdw10 = (uint32_t)(rnd(&x) % 4096);
			s.cdw11 = (rnd(&x) % 8 == 0) ? (uint32_t)rnd(&x) : 0;
			s.cdw12 = (uint32_t)(rnd(&x) % 64);
			if (leap_client_submit(qp, &s) == 0)
				leap_client_ring(qp);
		} else if (r == 8) { /* a doorbell of our choosing */
			leap_client_doorbells(c)[rnd(&x) % 8] = (uint32_t)(rnd(&x) % 40);
			leap_client_kick(c);
		} else if (r == 9) { /* a region that lies, or a descriptor that is not one */
			int fd = sealed_memfd(64 * 1024, rnd(&x) & 1);

			region_add(c, fd, FAKE_BASE + (rnd(&x) % 64) * MiB,
				   (1 + rnd(&x) % 4) * 64 * 1024, 0);
			close(fd);
		} else if (r == 11 && area != MAP_FAILED) { /* hints that lie (ABI 6 and 7) */
			__atomic_store_n(&area->tenant_on, (uint32_t)rnd(&x), __ATOMIC_RELAXED);
			__atomic_store_n(&area->vector_mask, rnd(&x), __ATOMIC_RELAXED);
		} else if (r == 10 && area != MAP_FAILED) {
			/* Controller configuration: reset, shutdown, re-enable, garbage. */
			static const uint32_t ccs[] = { 0, NVME_CC_EN, NVME_CC_EN | (1u << 14),
							NVME_CC_EN | (2u << 14), 0xffffffffu };

			__atomic_store_n(&area->regs.cc, ccs[rnd(&x) % 5], __ATOMIC_RELEASE);
			leap_client_kick(c);
		} else {
			leap_client_poll(qp, cqe, 16);
		}
	}
	_exit(0);
}

/* Lives of chaos_life() one after another for `seconds`; prints how many. */
static int case_chaos(int seconds, uint64_t seed)
{
	uint64_t end = now_ms() + (uint64_t)seconds * 1000, x = seed | 1;
	int lives = 0;

	while (now_ms() < end) {
		pid_t pid = fork();
		int st;

		if (pid == 0)
			chaos_life(rnd(&x));
		if (pid < 0)
			return 1;
		/* A life that hangs is killed: leaving that way is allowed too. */
		for (int i = 0; i < 100 && waitpid(pid, &st, WNOHANG) == 0; i++)
			usleep(20000);
		if (waitpid(pid, &st, WNOHANG) == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
		}
		rnd(&x);
		lives++;
	}
	printf("lives=%d\n", lives);
	return 0;
}

int main(int argc, char **argv)
{
	struct leap_client *c;
	const char *kase;
	int rc;

	if (argc < 4) {
		fprintf(stderr, "usage: shm_hostile SOCKET CTRL CASE [ARG...]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	sock_path = argv[1];
	ctrl_name = argv[2];
	kase = argv[3];
	if (!strcmp(kase, "v1-attach"))
		return case_v1_attach();
	if (!strcmp(kase, "exhaust") && argc == 6)
		return case_exhaust((int)strtol(argv[4], NULL, 10), (int)strtol(argv[5], NULL, 10));
	if (!strcmp(kase, "rpc-hog") && argc == 7)
		return case_rpc_hog(argv[4], (int)strtol(argv[5], NULL, 10),
				    (int)strtol(argv[6], NULL, 10));
	if (!strcmp(kase, "chaos") && argc == 6)
		return case_chaos((int)strtol(argv[4], NULL, 10), strtoull(argv[5], NULL, 0));
	if (!strcmp(kase, "hoard") && argc == 6)
		return case_hoard((int)strtol(argv[4], NULL, 10), (int)strtol(argv[5], NULL, 10));
	c = attach();
	if (!c)
		return 1;
	if (!strcmp(kase, "region-oversize") || !strcmp(kase, "region-unsealed-shrink") ||
	    !strcmp(kase, "region-sealed-shrink"))
		rc = case_region(c, kase);
	else if (!strcmp(kase, "region-not-memfd"))
		rc = case_region_not_memfd(c);
	else if (!strcmp(kase, "area-truncate"))
		rc = case_area_truncate(c);
	else if (!strcmp(kase, "kick-blocking"))
		rc = case_kick_blocking(c, argc > 4 ? (int)strtol(argv[4], NULL, 10) : 3);
	else if (!strcmp(kase, "vector-abuse"))
		rc = case_vector_abuse(c);
	else if (!strcmp(kase, "fd-spray"))
		rc = case_fd_spray(c);
	else if (!strcmp(kase, "hints"))
		rc = case_hints(c, argc > 4 ? (int)strtol(argv[4], NULL, 10) : 5);
	else if (!strcmp(kase, "defer-exit"))
		rc = case_defer_exit(c, argc > 4 ? (int)strtol(argv[4], NULL, 10) : 32);
	else {
		fprintf(stderr, "shm_hostile: unknown case '%s'\n", kase);
		rc = 2;
	}
	printf("alive=%d\n", leap_client_alive(c) ? 1 : 0);
	leap_client_detach(c);
	return rc;
}
