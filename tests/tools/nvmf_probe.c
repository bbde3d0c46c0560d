// SPDX-License-Identifier: BSD-3-Clause
/*
 * nvmf_probe: drive any NVMe/TCP target with the leapio host library, for
 * interop checks against peers nobody here wrote (Linux nvmet-tcp in a QEMU
 * guest, SPDK) and as a smoke test of the blocking and polling APIs:
 *
 *   nvmf_probe [options] 'trtype:tcp traddr:127.0.0.1 trsvcid:4420 subnqn:NQN [hdgst:1 ddgst:1]'
 *     -D            read the discovery log first (from the same address)
 *     -q N          I/O queues (default 2)      -d N  queue depth (default 32)
 *     -v MIB        write a pattern over MIB MiB with mixed sizes (in-capsule and R2T),
 *                   read it back through the other queues, compare (default 4; 0 = skip)
 *     -t SEC        random 4 KiB reads on all queues from one polling thread (default 2)
 *     -T MS         connect timeout (default 10000)
 *
 * Prints KEY=VALUE lines (for scripts) and a summary; exit 0 on success, 1 on
 * failure (stderr says why), 2 on bad usage.
 *
 * Against Linux nvmet-tcp (guest kernel 6.1) with tests/interop/lib/guest.bash:
 * a background guest runs `nvmet_tcp_target NQN 0.0.0.0 4420 $(ram_disk 64)`
 * behind `guest_hostfwd_args PORT 4420`; after `guest_wait_nvmet_tcp`,
 * `nvmf_probe -D -T 30000 'traddr:127.0.0.1 trsvcid:PORT subnqn:NQN'` (and
 * again with hdgst:1 ddgst:1) must end with RESULT=ok.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "leapio/common.h"
#include "leapio/nvmf_host.h"

struct io_state {
	int done;
	int errors;
	uint16_t last_status;
};

static void io_cb(void *arg, const struct nvme_cqe *cqe)
{
	struct io_state *s = arg;
	uint16_t st = nvmf_cqe_status(cqe);

	s->done++;
	if (st & 0x7ff) {
		s->errors++;
		s->last_status = st;
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Poll until `want` completions or the queue fails; 30 s cap. */
static int wait_all(struct leap_nvmf_qpair *qp, struct io_state *s, int want)
{
	double t0 = now_s();

	while (s->done < want) {
		int rc = leap_nvmf_qpair_wait(qp, 10);

		if (rc < 0) {
			fprintf(stderr, "nvmf_probe: qid %u failed: %s\n", leap_nvmf_qpair_qid(qp),
				leap_nvmf_qpair_reason(qp));
			return rc;
		}
		if (now_s() - t0 > 30) {
			fprintf(stderr,
				"nvmf_probe: qid %u: %d of %d I/Os still pending after 30 s\n",
				leap_nvmf_qpair_qid(qp), want - s->done, want);
			return -ETIMEDOUT;
		}
	}
	return 0;
}

static void pattern(uint8_t *p, size_t len, uint64_t byte_off)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = (byte_off + i) * 0x9e3779b97f4a7c15ull ^ 0x6c656170696f2121ull;

		memcpy(p + i, &v, LEAP_MIN((size_t)8, len - i));
	}
}

static int discover(const struct leap_nvmf_trid *base, int timeout_ms)
{
	struct leap_nvmf_trid t = *base;
	struct nvmf_disc_log_hdr *log;
	char err[320];
	size_t len;
	int rc;

	snprintf(t.subnqn, sizeof(t.subnqn), "%s", NVME_DISCOVERY_NQN);
	rc = leap_nvmf_host_discover(&t, timeout_ms, &log, &len, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "nvmf_probe: discovery: %s\n", err);
		return rc;
	}
	printf("DISC_GENCTR=%llu\nDISC_NUMREC=%llu\n", (unsigned long long)log->genctr,
	       (unsigned long long)log->numrec);
	for (uint64_t i = 0; i < log->numrec; i++) {
		const struct nvmf_disc_log_entry *e =
		    (const struct nvmf_disc_log_entry *)(log + 1) + i;

		printf("DISC_ENTRY_%llu=trtype:%u adrfam:%u subtype:%u traddr:%.*s trsvcid:%.*s "
		       "subnqn:%.*s\n",
		       (unsigned long long)i, e->trtype, e->adrfam, e->subtype,
		       (int)sizeof(e->traddr), e->traddr, (int)sizeof(e->trsvcid), e->trsvcid,
		       (int)sizeof(e->subnqn), e->subnqn);
	}
	free(log);
	return 0;
}

static int verify(struct leap_nvmf_ctrl *ctrl, uint32_t lba_size, uint64_t nlb, unsigned int mib)
{
	static const uint32_t sizes[] = { 4096, 512, 65536, 8192, 131072, 12288, 1048576 };
	uint32_t max_xfer = leap_nvmf_ctrl_max_xfer(ctrl);
	unsigned int nq = leap_nvmf_ctrl_nr_io_queues(ctrl);
	uint64_t total = (uint64_t)mib << 20, off;
	uint8_t *wbuf, *rbuf;
	int rc = 0, n = 0;

	if (total > nlb * lba_size)
		total = nlb * lba_size;
	wbuf = aligned_alloc(4096, 1 << 20);
	rbuf = aligned_alloc(4096, 1 << 20);
	if (!wbuf || !rbuf)
		return -ENOMEM;
	/* One command at a time per size step, alternating queues: writes, then reads elsewhere. */
	for (off = 0; off < total && !rc; n++) {
		uint32_t len = sizes[n % LEAP_ARRAY_SIZE(sizes)];
		struct leap_nvmf_qpair *wq = leap_nvmf_ctrl_io_qpair(ctrl, (unsigned)n % nq);
		struct leap_nvmf_qpair *rq = leap_nvmf_ctrl_io_qpair(ctrl, (unsigned)(n + 1) % nq);
		struct io_state ws = { 0 }, rs = { 0 };
		struct iovec wiov, riov[2];

		if (max_xfer && len > max_xfer)
			len = max_xfer;
		if (len < lba_size)
			len = lba_size;
		len -= len % lba_size;
		if (off + len > total)
			break;
		pattern(wbuf, len, off);
		wiov = (struct iovec){ wbuf, len };
		rc = leap_nvmf_io_write(wq, 1, off / lba_size, len / lba_size, &wiov, 1, 0, io_cb,
					&ws);
		if (!rc)
			rc = wait_all(wq, &ws, 1);
		if (!rc && ws.errors) {
			fprintf(stderr,
				"nvmf_probe: write of %u bytes at %llu: status 0x%03x (%s)\n", len,
				(unsigned long long)off, ws.last_status,
				leap_nvmf_status_str(ws.last_status));
			rc = -EIO;
		}
		if (rc)
			break;
		memset(rbuf, 0, len);
		/* Two iovecs split off a block boundary, to exercise the scatter path. */
		riov[0] = (struct iovec){ rbuf, len / 3 };
		riov[1] = (struct iovec){ rbuf + len / 3, len - len / 3 };
		rc = leap_nvmf_io_read(rq, 1, off / lba_size, len / lba_size, riov, 2, 0, io_cb,
				       &rs);
		if (!rc)
			rc = wait_all(rq, &rs, 1);
		if (!rc && rs.errors) {
			fprintf(stderr,
				"nvmf_probe: read of %u bytes at %llu: status 0x%03x (%s)\n", len,
				(unsigned long long)off, rs.last_status,
				leap_nvmf_status_str(rs.last_status));
			rc = -EIO;
		}
		if (!rc && memcmp(wbuf, rbuf, len)) {
			fprintf(stderr, "nvmf_probe: data read back at %llu (%u bytes) differs\n",
				(unsigned long long)off, len);
			rc = -EIO;
		}
		off += len;
	}
	if (!rc)
		printf("VERIFY_BYTES=%llu\nVERIFY_IOS=%d\n", (unsigned long long)off, 2 * n);
	free(wbuf);
	free(rbuf);
	return rc;
}

struct perf_slot {
	struct leap_nvmf_qpair *qp;
	struct iovec iov;
	uint64_t *done;
	int *errors;
	uint64_t *seed;
	uint64_t nblocks;
	uint32_t blocks;
	bool stop;
};

static void perf_submit(struct perf_slot *s);

static void perf_cb(void *arg, const struct nvme_cqe *cqe)
{
	struct perf_slot *s = arg;

	(*s->done)++;
	if (nvmf_cqe_status(cqe) & 0x7ff)
		(*s->errors)++;
	if (!s->stop)
		perf_submit(s);
}

static void perf_submit(struct perf_slot *s)
{
	uint64_t slba;

	*s->seed = *s->seed * 6364136223846793005ull + 1442695040888963407ull;
	slba = ((*s->seed >> 20) % (s->nblocks / s->blocks)) * s->blocks;
	if (leap_nvmf_io_read(s->qp, 1, slba, s->blocks, &s->iov, 1, 0, perf_cb, s))
		(*s->errors)++;
}

static int perf(struct leap_nvmf_ctrl *ctrl, uint32_t lba_size, uint64_t nlb, double secs)
{
	unsigned int nq = leap_nvmf_ctrl_nr_io_queues(ctrl), qd = leap_nvmf_ctrl_io_qdepth(ctrl);
	struct perf_slot *slots = calloc((size_t)nq * qd, sizeof(*slots));
	uint8_t *bufs = aligned_alloc(4096, (size_t)nq * qd * 4096);
	uint64_t done = 0, seed = 1;
	int errors = 0, rc = 0;
	double t0, el;

	if (!slots || !bufs || lba_size > 4096)
		return -ENOMEM;
	for (unsigned int i = 0; i < nq * qd; i++) {
		struct perf_slot *s = &slots[i];

		s->qp = leap_nvmf_ctrl_io_qpair(ctrl, i % nq);
		s->iov = (struct iovec){ bufs + (size_t)i * 4096, 4096 };
		s->done = &done;
		s->errors = &errors;
		s->seed = &seed;
		s->nblocks = nlb;
		s->blocks = 4096 / lba_size;
		perf_submit(s);
	}
	t0 = now_s();
	/* One thread, every queue polled in turn: the leap-perf model. */
	while ((el = now_s() - t0) < secs && !rc)
		for (unsigned int q = 0; q < nq && !rc; q++)
			if (leap_nvmf_qpair_poll(leap_nvmf_ctrl_io_qpair(ctrl, q)) < 0) {
				fprintf(stderr, "nvmf_probe: qid %u failed: %s\n", q + 1,
					leap_nvmf_qpair_reason(leap_nvmf_ctrl_io_qpair(ctrl, q)));
				rc = -EIO;
			}
	for (unsigned int i = 0; i < nq * qd; i++)
		slots[i].stop = true;
	for (unsigned int q = 0; q < nq && !rc; q++) {
		struct leap_nvmf_qpair *qp = leap_nvmf_ctrl_io_qpair(ctrl, q);
		double t1 = now_s();

		while (leap_nvmf_qpair_outstanding(qp) && now_s() - t1 < 30)
			if (leap_nvmf_qpair_wait(qp, 10) < 0)
				break;
	}
	printf("PERF_IOPS=%.0f\nPERF_ERRORS=%d\n", (double)done / el, errors);
	printf("random 4 KiB reads: %u queues x QD %u: %.0f IOPS, %.1f MB/s over %.1f s\n", nq, qd,
	       (double)done / el, (double)done * 4096 / el / 1e6, el);
	free(slots);
	free(bufs);
	return rc ? rc : errors ? -EIO : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: nvmf_probe [-D] [-q queues] [-d depth] [-v MiB] [-t sec] [-T ms] "
			"'trtype:tcp traddr:A trsvcid:P subnqn:NQN [hdgst:1] [ddgst:1]'\n");
}

int main(int argc, char **argv)
{
	unsigned int queues = 2, depth = 32, vmib = 4;
	double secs = 2;
	int timeout_ms = 10000, opt, rc;
	bool disc = false;
	struct leap_nvmf_trid trid;
	struct leap_nvmf_ctrl *ctrl;
	const struct nvme_id_ctrl *id;
	char err[320];
	uint64_t nlb;
	uint32_t lba;

	while ((opt = getopt(argc, argv, "Dq:d:v:t:T:h")) != -1) {
		switch (opt) {
		case 'D':
			disc = true;
			break;
		case 'q':
			queues = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'd':
			depth = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'v':
			vmib = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 't':
			secs = strtod(optarg, NULL);
			break;
		case 'T':
			timeout_ms = (int)strtol(optarg, NULL, 0);
			break;
		default:
			usage();
			return LEAP_EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || queues == 0) {
		usage();
		return LEAP_EXIT_USAGE;
	}
	if (leap_nvmf_trid_parse(&trid, argv[optind], err, sizeof(err))) {
		fprintf(stderr, "nvmf_probe: %s\n", err);
		return LEAP_EXIT_USAGE;
	}
	if (disc && discover(&trid, timeout_ms))
		return LEAP_EXIT_FAILURE;
	rc = leap_nvmf_host_connect(&trid, queues, depth, timeout_ms, &ctrl, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "nvmf_probe: connect: %s (%s)\n", err, strerror(-rc));
		return LEAP_EXIT_FAILURE;
	}
	id = leap_nvmf_ctrl_id(ctrl);
	printf("CNTLID=%u\nVS=0x%08x\nCAP=0x%016llx\nMN=%.40s\nSGLS=0x%08x\nIOCCSZ=%u\n"
	       "MAXCMD=%u\nMAX_XFER=%u\nIO_QUEUES=%u\nIO_QDEPTH=%u\n",
	       leap_nvmf_ctrl_cntlid(ctrl), leap_nvmf_ctrl_vs(ctrl),
	       (unsigned long long)leap_nvmf_ctrl_cap(ctrl), id->mn, id->sgls, id->ioccsz,
	       id->maxcmd, leap_nvmf_ctrl_max_xfer(ctrl), leap_nvmf_ctrl_nr_io_queues(ctrl),
	       leap_nvmf_ctrl_io_qdepth(ctrl));
	rc = leap_nvmf_host_ns_info(ctrl, 1, &nlb, &lba, timeout_ms);
	if (rc) {
		fprintf(stderr, "nvmf_probe: Identify Namespace 1: %s\n", strerror(-rc));
		goto out;
	}
	printf("NS1_NLB=%llu\nNS1_LBA=%u\n", (unsigned long long)nlb, lba);
	if (vmib && (rc = verify(ctrl, lba, nlb, vmib)))
		goto out;
	if (secs > 0 && (rc = perf(ctrl, lba, nlb, secs)))
		goto out;
	printf("RESULT=ok\n");
out:
	leap_nvmf_host_disconnect(ctrl, 2000);
	return rc ? LEAP_EXIT_FAILURE : LEAP_EXIT_OK;
}
