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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

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
	else {
		fprintf(stderr, "shm_hostile: unknown case '%s'\n", kase);
		rc = 2;
	}
	printf("alive=%d\n", leap_client_alive(c) ? 1 : 0);
	leap_client_detach(c);
	return rc;
}
