// SPDX-License-Identifier: BSD-3-Clause
/*
 * The NVMe/TCP host queue pair against a scripted fake target that lives in
 * this test: a loopback TCP listener whose accepted socket the test reads
 * and writes byte by byte, between polls of the host. Each case checks the
 * bytes the host puts on the wire (ICReq, Connect capsule, SGLs, H2CData
 * headers, digests, TermReq) and what it does with what the target sends
 * (completions, data landing in iovecs, and every malformed or hostile PDU
 * ending in FAILED with nothing written outside the caller's buffer).
 * Single-threaded: the host never blocks, so the test interleaves both.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "leapio/crc32c.h"
#include "leapio/log.h"
#include "leapio/nvmf_host.h"
#include "tap.h"

/* ---- log capture: every failure must be logged exactly once ------------- */

static int log_errors;
static char log_last[512];

static void log_capture(enum leap_log_level level, const char *subsys, const char *fmt, va_list ap,
			void *ctx)
{
	if (level == LEAP_LOG_ERROR)
		log_errors++;
	vsnprintf(log_last, sizeof(log_last), fmt, ap);
}

/* ---- the fake target ------------------------------------------------------ */

struct fake {
	int lfd;
	int fd;
	uint16_t port;
	bool hdgst, ddgst;
	struct leap_nvmf_qpair *qp;
};

static void fake_listen(struct fake *f)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int one = 1;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	T_ASSERT(f->lfd >= 0);
	setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	T_ASSERT(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	T_ASSERT(listen(f->lfd, 8) == 0);
	T_ASSERT(getsockname(f->lfd, (struct sockaddr *)&sa, &sl) == 0);
	f->port = ntohs(sa.sin_port);
}

static void fake_close(struct fake *f)
{
	leap_nvmf_qpair_destroy(f->qp);
	f->qp = NULL;
	if (f->fd >= 0)
		close(f->fd);
	if (f->lfd >= 0)
		close(f->lfd);
	f->fd = f->lfd = -1;
}

static void make_trid(struct leap_nvmf_trid *t, uint16_t port, bool hdgst, bool ddgst)
{
	char s[256], err[256];

	snprintf(s, sizeof(s),
		 "trtype:tcp traddr:127.0.0.1 trsvcid:%u subnqn:nqn.2024-01.io.leap:test "
		 "hostnqn:nqn.2024-01.io.leap:host hostid:01234567-89ab-cdef-0123-456789abcdef "
		 "hdgst:%d ddgst:%d",
		 port, hdgst, ddgst);
	T_ASSERT_EQ(leap_nvmf_trid_parse(t, s, err, sizeof(err)), 0);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read exactly n bytes as the target, polling the host meanwhile so it sends. */
static void tgt_read(struct fake *f, void *buf, size_t n)
{
	size_t got = 0;
	double t0 = now_s();

	while (got < n) {
		ssize_t r;

		if (f->qp)
			leap_nvmf_qpair_poll(f->qp);
		r = recv(f->fd, (uint8_t *)buf + got, n - got, MSG_DONTWAIT);
		if (r > 0)
			got += (size_t)r;
		else if (r == 0)
			T_FAIL("host closed the connection after %zu of %zu bytes", got, n);
		if (now_s() - t0 > 3)
			T_FAIL("timed out reading %zu bytes from the host (got %zu)", n, got);
	}
}

/* Nothing more from the host within a short while (it must not send junk). */
static size_t tgt_pending(struct fake *f)
{
	uint8_t b[256];
	ssize_t r;

	for (int i = 0; i < 20; i++)
		if (f->qp)
			leap_nvmf_qpair_poll(f->qp);
	r = recv(f->fd, b, sizeof(b), MSG_DONTWAIT | MSG_PEEK);
	return r > 0 ? (size_t)r : 0;
}

static void tgt_write(struct fake *f, const void *buf, size_t n)
{
	T_ASSERT_EQ(send(f->fd, buf, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* Poll the host until `cond` or 3 s. */
#define PUMP_UNTIL(f, cond)                                                                        \
	do {                                                                                       \
		double _t0 = now_s();                                                              \
		while (!(cond)) {                                                                  \
			leap_nvmf_qpair_poll((f)->qp);                                             \
			if (now_s() - _t0 > 3)                                                     \
				T_FAIL("timed out waiting for %s", #cond);                         \
		}                                                                                  \
	} while (0)

/* Lay out a target PDU at buf: header [+HDGST] [+data +DDGST]; returns its length. */
static uint32_t build_pdu(const struct fake *f, uint8_t *buf, void *hdr, uint32_t hlen,
			  const void *data, uint32_t dlen, bool corrupt_hdgst, bool corrupt_ddgst)
{
	struct nvme_tcp_common_hdr *ch = hdr;
	uint32_t hd = f->hdgst ? 4 : 0, dd = (f->ddgst && dlen) ? 4 : 0, off = 0;

	ch->hlen = (uint8_t)hlen;
	ch->flags |= (hd ? NVME_TCP_F_HDGST : 0) | (dd ? NVME_TCP_F_DDGST : 0);
	ch->pdo = dlen ? (uint8_t)(hlen + hd) : 0;
	ch->plen = hlen + hd + dlen + dd;
	memcpy(buf, hdr, hlen);
	off = hlen;
	if (hd) {
		put32(buf + off, leap_crc32c(0, buf, hlen) ^ (corrupt_hdgst ? 1 : 0));
		off += 4;
	}
	if (dlen) {
		memcpy(buf + off, data, dlen);
		off += dlen;
	}
	if (dd) {
		put32(buf + off, leap_crc32c(0, data, dlen) ^ (corrupt_ddgst ? 1 : 0));
		off += 4;
	}
	return off;
}

/* Send a PDU as the target. */
static void tgt_send_pdu(struct fake *f, void *hdr, uint32_t hlen, const void *data, uint32_t dlen,
			 bool corrupt_hdgst, bool corrupt_ddgst)
{
	static uint8_t buf[1 << 17];

	T_ASSERT(hlen + 8 + dlen <= sizeof(buf));
	tgt_write(f, buf, build_pdu(f, buf, hdr, hlen, data, dlen, corrupt_hdgst, corrupt_ddgst));
}

static void tgt_send_rsp(struct fake *f, uint16_t cid, uint16_t status, uint32_t dw0)
{
	struct nvme_tcp_rsp_pdu r;

	memset(&r, 0, sizeof(r));
	r.hdr.pdu_type = NVME_TCP_PDU_CAPSULE_RESP;
	r.cqe.cid = cid;
	r.cqe.dw0 = dw0;
	r.cqe.sqhd = 1;
	r.cqe.status = (uint16_t)(status << 1);
	tgt_send_pdu(f, &r, sizeof(r), NULL, 0, false, false);
}

/* Read one CapsuleCmd; check its header digest; return in-capsule data length. */
static uint32_t tgt_read_capsule(struct fake *f, struct nvme_sqe *sqe, uint8_t *data, size_t max)
{
	uint8_t h[72 + 4];
	struct nvme_tcp_common_hdr ch;
	uint32_t hd = f->hdgst ? 4 : 0, dd = f->ddgst ? 4 : 0, dlen;

	tgt_read(f, h, 72 + hd);
	memcpy(&ch, h, sizeof(ch));
	T_ASSERT_EQ(ch.pdu_type, NVME_TCP_PDU_CAPSULE_CMD);
	T_ASSERT_EQ(ch.hlen, 72);
	T_ASSERT_EQ(!!(ch.flags & NVME_TCP_F_HDGST), f->hdgst);
	if (hd)
		T_ASSERT_U64_EQ(get32(h + 72), leap_crc32c(0, h, 72));
	memcpy(sqe, h + 8, sizeof(*sqe));
	T_ASSERT_EQ(sqe->flags & 0xc0, 0x40); /* PSDT: SGL */
	if (ch.plen == 72 + hd) {
		T_ASSERT_EQ(ch.pdo, 0);
		T_ASSERT(!(ch.flags & NVME_TCP_F_DDGST));
		return 0;
	}
	T_ASSERT_EQ(ch.pdo, 72 + hd);
	T_ASSERT_EQ(!!(ch.flags & NVME_TCP_F_DDGST), f->ddgst);
	dlen = ch.plen - ch.pdo - dd;
	T_ASSERT(dlen <= max);
	tgt_read(f, data, dlen);
	if (dd) {
		uint8_t d[4];

		tgt_read(f, d, 4);
		T_ASSERT_U64_EQ(get32(d), leap_crc32c(0, data, dlen));
	}
	return dlen;
}

static void sgl_of(const struct nvme_sqe *sqe, struct nvme_sgl_desc *sgl)
{
	memcpy(sgl, (const uint8_t *)sqe + 24, sizeof(*sgl));
}

static void tgt_send_icresp(struct fake *f, uint8_t cpda, uint8_t dgst, uint32_t maxh2cdata)
{
	struct nvme_tcp_icresp r;

	memset(&r, 0, sizeof(r));
	r.hdr.pdu_type = NVME_TCP_PDU_ICRESP;
	r.hdr.hlen = 128;
	r.hdr.plen = 128;
	r.cpda = cpda;
	r.dgst = dgst;
	r.maxh2cdata = maxh2cdata;
	tgt_write(f, &r, sizeof(r));
}

/* Create a qpair, accept it, check ICReq, answer; leave the Connect unread. */
static void fake_start(struct fake *f, uint16_t qid, uint16_t qdepth, uint32_t icd_max,
		       uint32_t maxh2cdata)
{
	struct leap_nvmf_qpair_opts o;
	struct leap_nvmf_trid t;
	struct nvme_tcp_icreq q;

	make_trid(&t, f->port, f->hdgst, f->ddgst);
	leap_nvmf_qpair_opts_init(&o);
	o.qid = qid;
	o.qdepth = qdepth;
	o.icd_max = icd_max;
	o.cntlid = qid ? 0x42 : NVMF_CNTLID_DYNAMIC;
	T_ASSERT_EQ(leap_nvmf_qpair_create(&t, &o, &f->qp), 0);
	T_ASSERT(leap_nvmf_qpair_state(f->qp) <= LEAP_NVMF_QP_ICREQ_SENT);
	f->fd = accept(f->lfd, NULL, NULL);
	T_ASSERT(f->fd >= 0);
	tgt_read(f, &q, sizeof(q));
	T_ASSERT_EQ(leap_nvmf_qpair_state(f->qp), LEAP_NVMF_QP_ICREQ_SENT);
	T_ASSERT_EQ(q.hdr.pdu_type, NVME_TCP_PDU_ICREQ);
	T_ASSERT_EQ(q.hdr.flags, 0);
	T_ASSERT_EQ(q.hdr.hlen, 128);
	T_ASSERT_EQ(q.hdr.pdo, 0);
	T_ASSERT_EQ(q.hdr.plen, 128);
	T_ASSERT_EQ(q.pfv, 0);
	T_ASSERT_EQ(q.hpda, 0);
	T_ASSERT_EQ(q.maxr2t, 0);
	T_ASSERT_EQ(q.dgst, (f->hdgst ? 1 : 0) | (f->ddgst ? 2 : 0));
	tgt_send_icresp(f, 0, q.dgst, maxh2cdata);
}

/* Full bring-up to LIVE; checks the Connect capsule byte by byte. */
static void fake_connect(struct fake *f, uint16_t qid, uint16_t qdepth, uint32_t icd_max,
			 uint32_t maxh2cdata)
{
	struct nvmf_connect_data d;
	struct nvmf_connect_cmd c;
	struct nvme_sgl_desc sgl;
	uint8_t expect_hostid[16] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
				      0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };

	fake_start(f, qid, qdepth, icd_max, maxh2cdata);
	T_ASSERT_EQ(tgt_read_capsule(f, (struct nvme_sqe *)&c, (uint8_t *)&d, sizeof(d)), 1024);
	T_ASSERT_EQ(leap_nvmf_qpair_state(f->qp), LEAP_NVMF_QP_CONNECT_SENT);
	T_ASSERT_EQ(c.opc, NVME_OPC_FABRIC);
	T_ASSERT_EQ(c.fctype, NVMF_FCTYPE_CONNECT);
	T_ASSERT_EQ(c.recfmt, 0);
	T_ASSERT_EQ(c.qid, qid);
	T_ASSERT_EQ(c.sqsize, qdepth);
	T_ASSERT_EQ(c.kato, 0);
	sgl_of((struct nvme_sqe *)&c, &sgl);
	T_ASSERT_EQ(sgl.type, 0x01);
	T_ASSERT_EQ(sgl.length, 1024);
	T_ASSERT_EQ(sgl.addr, 0);
	T_ASSERT_MEM_EQ(d.hostid, expect_hostid, 16);
	T_ASSERT_EQ(d.cntlid, qid ? 0x42 : 0xffff);
	T_ASSERT_STR_EQ(d.subnqn, "nqn.2024-01.io.leap:test");
	T_ASSERT_STR_EQ(d.hostnqn, "nqn.2024-01.io.leap:host");
	tgt_send_rsp(f, c.cid, 0, 0x42);
	PUMP_UNTIL(f, leap_nvmf_qpair_state(f->qp) != LEAP_NVMF_QP_CONNECT_SENT);
	T_ASSERT_EQ(leap_nvmf_qpair_state(f->qp), LEAP_NVMF_QP_LIVE);
	T_ASSERT_EQ(leap_nvmf_qpair_cntlid(f->qp), 0x42);
	T_ASSERT_EQ(leap_nvmf_qpair_outstanding(f->qp), 0);
}

/* Expect the host to have sent an H2CTermReq with `fes` and then closed. */
static void expect_term_req(struct fake *f, uint16_t fes)
{
	struct nvme_tcp_term_req t;
	uint8_t rest[128];

	tgt_read(f, &t, sizeof(t));
	T_ASSERT_EQ(t.hdr.pdu_type, NVME_TCP_PDU_H2C_TERM_REQ);
	T_ASSERT_EQ(t.hdr.hlen, 24);
	T_ASSERT(t.hdr.plen >= 24 && t.hdr.plen <= 152);
	T_ASSERT_EQ(t.fes, fes);
	tgt_read(f, rest, t.hdr.plen - 24);
}

struct done {
	int calls;
	struct nvme_cqe cqe;
};

static void done_cb(void *arg, const struct nvme_cqe *cqe)
{
	struct done *d = arg;

	d->calls++;
	d->cqe = *cqe;
}

static const uint16_t HOST_PATH_ERROR = 0x371;

/* ---- transport ID --------------------------------------------------------- */

static void test_trid_parse(void)
{
	struct leap_nvmf_trid t;
	char err[256], out[512];

	T_ASSERT_EQ(leap_nvmf_trid_parse(&t,
					 "trtype:tcp adrfam:ipv4 traddr:127.0.0.1 trsvcid:4421 "
					 "subnqn:nqn.2016-06.io.spdk:cnode1 hdgst:1 ddgst:0",
					 err, sizeof(err)),
		    0);
	T_ASSERT_EQ(t.adrfam, NVMF_ADRFAM_IPV4);
	T_ASSERT_STR_EQ(t.traddr, "127.0.0.1");
	T_ASSERT_STR_EQ(t.trsvcid, "4421");
	T_ASSERT_STR_EQ(t.subnqn, "nqn.2016-06.io.spdk:cnode1");
	T_ASSERT_STR_EQ(t.hostnqn, "");
	T_ASSERT(t.hdgst && !t.ddgst && !t.hostid_set);

	/* Defaults, '=' separators, case-insensitive keys, IPv6 inferred from the address. */
	T_ASSERT_EQ(leap_nvmf_trid_parse(&t, "  TRADDR=::1\tddgst=true ", err, sizeof(err)), 0);
	T_ASSERT_EQ(t.adrfam, NVMF_ADRFAM_IPV6);
	T_ASSERT_STR_EQ(t.traddr, "::1");
	T_ASSERT_STR_EQ(t.trsvcid, "4420");
	T_ASSERT_STR_EQ(t.subnqn, NVME_DISCOVERY_NQN);
	T_ASSERT(t.ddgst);

	T_ASSERT_EQ(
	    leap_nvmf_trid_parse(&t, "traddr:10.0.0.1 hostid:00112233-4455-6677-8899-aabbccddeeff",
				 err, sizeof(err)),
	    0);
	T_ASSERT(t.hostid_set);
	T_ASSERT_EQ(t.hostid[0], 0x00);
	T_ASSERT_EQ(t.hostid[15], 0xff);
	leap_nvmf_trid_format(&t, out, sizeof(out));
	T_ASSERT_STR_EQ(
	    out, "trtype:tcp adrfam:ipv4 traddr:10.0.0.1 trsvcid:4420 subnqn:" NVME_DISCOVERY_NQN);

	/* Errors: each -EINVAL with a message that names the problem. */
	T_ASSERT_EQ(leap_nvmf_trid_parse(&t, "traddr:1.2.3.4 priority:3", err, sizeof(err)),
		    -EINVAL);
	T_ASSERT(strstr(err, "unknown key 'priority'"));
	T_ASSERT_EQ(leap_nvmf_trid_parse(&t, "traddr:1.2.3.4 traddr:1.2.3.5", err, sizeof(err)),
		    -EINVAL);
	T_ASSERT(strstr(err, "twice"));
	T_ASSERT_EQ(leap_nvmf_trid_parse(&t, "trtype:rdma traddr:1.2.3.4", err, sizeof(err)),
		    -EINVAL);
	T_ASSERT(strstr(err, "only tcp"));
	T_ASSERT_EQ(leap_nvmf_trid_parse(&t, "traddr:1.2.3.4 trsvcid:70000", err, sizeof(err)),
		    -EINVAL);
	T_ASSERT(strstr(err, "trsvcid"));
	T_ASSERT_EQ(leap_nvmf_trid_parse(&t, "traddr:1.2.3.4 hdgst:maybe", err, sizeof(err)),
		    -EINVAL);
	T_ASSERT_EQ(leap_nvmf_trid_parse(&t, "trsvcid:4420", err, sizeof(err)), -EINVAL);
	T_ASSERT(strstr(err, "traddr is required"));
	T_ASSERT_EQ(leap_nvmf_trid_parse(&t, "traddr:example.com", err, sizeof(err)), -EINVAL);
	T_ASSERT(strstr(err, "numeric"));
	T_ASSERT_EQ(leap_nvmf_trid_parse(&t, "adrfam:ipv4 traddr:::1", err, sizeof(err)), -EINVAL);
	T_ASSERT_EQ(leap_nvmf_trid_parse(&t, "traddr 1.2.3.4", err, sizeof(err)), -EINVAL);
	T_ASSERT_EQ(leap_nvmf_trid_parse(&t, "traddr:1.2.3.4 hostid:0011", err, sizeof(err)),
		    -EINVAL);
	T_ASSERT_EQ(leap_nvmf_trid_parse(&t, "traddr:1.2.3.4 subnqn:", err, sizeof(err)), -EINVAL);
}

/* ---- connection bring-up -------------------------------------------------- */

static void test_connect_handshake(void)
{
	struct fake f;

	fake_listen(&f);
	fake_connect(&f, 0, 32, 8192, 131072);
	/* Idle and live: the host sends nothing on its own. */
	T_ASSERT_EQ(tgt_pending(&f), 0);
	fake_close(&f);
}

static void test_connect_io_queue_with_digests(void)
{
	struct fake f;

	fake_listen(&f);
	f.hdgst = f.ddgst = true;
	fake_connect(&f, 3, 128, 16384, 131072);
	fake_close(&f);
}

static void test_connect_refused(void)
{
	struct leap_nvmf_trid t;
	struct leap_nvmf_qpair_opts o;
	struct leap_nvmf_qpair *qp;
	struct fake f;
	uint16_t port;
	double t0 = now_s();
	int rc;

	/* A port that was just free. */
	fake_listen(&f);
	port = f.port;
	fake_close(&f);
	make_trid(&t, port, false, false);
	leap_nvmf_qpair_opts_init(&o);
	log_errors = 0;
	T_ASSERT_EQ(leap_nvmf_qpair_create(&t, &o, &qp), 0);
	while ((rc = leap_nvmf_qpair_poll(qp)) == 0 && now_s() - t0 < 3)
		;
	T_ASSERT_EQ(rc, -ECONNREFUSED);
	T_ASSERT_EQ(leap_nvmf_qpair_state(qp), LEAP_NVMF_QP_FAILED);
	T_ASSERT(strstr(leap_nvmf_qpair_reason(qp), "refused"));
	T_ASSERT_EQ(log_errors, 1);
	leap_nvmf_qpair_destroy(qp);
}

static void test_connect_invalid_host(void)
{
	struct fake f;
	struct nvme_sqe sqe;
	uint8_t data[1024];

	fake_listen(&f);
	fake_start(&f, 0, 32, 8192, 131072);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, data, sizeof(data)), 1024);
	log_errors = 0;
	tgt_send_rsp(&f, sqe.cid, NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, 0x84), 0);
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	T_ASSERT_EQ(leap_nvmf_qpair_error(f.qp), -EACCES);
	T_ASSERT_EQ(leap_nvmf_qpair_poll(f.qp), -EACCES);
	T_ASSERT(strstr(leap_nvmf_qpair_reason(f.qp), "0x184"));
	T_ASSERT(strstr(leap_nvmf_qpair_reason(f.qp), "invalid host"));
	T_ASSERT_EQ(log_errors, 1);
	fake_close(&f);
}

static void test_connect_invalid_param_reports_offset(void)
{
	struct fake f;
	struct nvme_sqe sqe;
	uint8_t data[1024];

	fake_listen(&f);
	fake_start(&f, 0, 32, 8192, 131072);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, data, sizeof(data)), 1024);
	/* IPO 256 in the data (IATTR 1): the subsystem NQN. */
	tgt_send_rsp(&f, sqe.cid, NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, 0x82), 256 | 1u << 16);
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	T_ASSERT_EQ(leap_nvmf_qpair_error(f.qp), -EINVAL);
	T_ASSERT(strstr(leap_nvmf_qpair_reason(f.qp), "byte 256 of the Connect data"));
	fake_close(&f);
}

static void test_icresp_bad_maxh2cdata(void)
{
	struct fake f;
	struct leap_nvmf_qpair_opts o;
	struct leap_nvmf_trid t;
	struct nvme_tcp_icreq q;

	fake_listen(&f);
	make_trid(&t, f.port, false, false);
	leap_nvmf_qpair_opts_init(&o);
	T_ASSERT_EQ(leap_nvmf_qpair_create(&t, &o, &f.qp), 0);
	f.fd = accept(f.lfd, NULL, NULL);
	tgt_read(&f, &q, sizeof(q));
	tgt_send_icresp(&f, 0, 0, 1000);
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	T_ASSERT(strstr(leap_nvmf_qpair_reason(f.qp), "MAXH2CDATA"));
	expect_term_req(&f, NVME_TCP_FES_INVALID_HEADER_FIELD);
	fake_close(&f);
}

static void test_icresp_declined_digest(void)
{
	struct fake f;
	struct leap_nvmf_qpair_opts o;
	struct leap_nvmf_trid t;
	struct nvme_tcp_icreq q;

	fake_listen(&f);
	make_trid(&t, f.port, true, false);
	leap_nvmf_qpair_opts_init(&o);
	T_ASSERT_EQ(leap_nvmf_qpair_create(&t, &o, &f.qp), 0);
	f.fd = accept(f.lfd, NULL, NULL);
	tgt_read(&f, &q, sizeof(q));
	T_ASSERT_EQ(q.dgst, 1);
	tgt_send_icresp(&f, 0, 0, 65536);
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	T_ASSERT_EQ(leap_nvmf_qpair_error(f.qp), -EOPNOTSUPP);
	T_ASSERT(strstr(leap_nvmf_qpair_reason(f.qp), "header digest"));
	fake_close(&f);
}

static void test_submit_before_live(void)
{
	struct fake f;
	struct nvme_sqe sqe = { .opc = NVME_OPC_FLUSH, .nsid = 1 };

	fake_listen(&f);
	fake_start(&f, 1, 4, 8192, 65536);
	T_ASSERT_EQ(leap_nvmf_qpair_submit(f.qp, &sqe, NULL, 0, NULL, NULL), -ENOTCONN);
	fake_close(&f);
}

/* ---- reads ------------------------------------------------------------------ */

static void send_c2h(struct fake *f, uint16_t cid, uint32_t datao, const void *data, uint32_t len,
		     uint8_t flags, bool corrupt_ddgst)
{
	struct nvme_tcp_c2h_data_pdu c;

	memset(&c, 0, sizeof(c));
	c.hdr.pdu_type = NVME_TCP_PDU_C2H_DATA;
	c.hdr.flags = flags;
	c.cccid = cid;
	c.datao = datao;
	c.datal = len;
	tgt_send_pdu(f, &c, sizeof(c), data, len, false, corrupt_ddgst);
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 131u + seed * 7u) >> 3 ^ seed);
}

static void read_into_iovecs(bool digests)
{
	static uint8_t mem[16384], want[8192];
	struct iovec iov[3] = { { mem + 16, 100 }, { mem + 4096, 5000 }, { mem + 10000, 3092 } };
	struct leap_nvmf_qpair_stats st, st2;
	struct nvme_sgl_desc sgl;
	struct nvme_sqe sqe;
	struct done d = { 0 };
	struct fake f;
	uint8_t *p = want;

	fake_listen(&f);
	f.hdgst = f.ddgst = digests;
	fake_connect(&f, 1, 16, 8192, 65536);
	memset(mem, 0xee, sizeof(mem));
	fill(want, sizeof(want), 5);
	T_ASSERT_EQ(leap_nvmf_io_read(f.qp, 1, 0x123456789ull, 16, iov, 3, 0, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	T_ASSERT_EQ(sqe.opc, NVME_OPC_READ);
	T_ASSERT_EQ(sqe.nsid, 1);
	T_ASSERT_EQ(sqe.cdw10, 0x23456789);
	T_ASSERT_EQ(sqe.cdw11, 0x1);
	T_ASSERT_EQ(sqe.cdw12, 15);
	sgl_of(&sqe, &sgl);
	T_ASSERT_EQ(sgl.type, 0x5a);
	T_ASSERT_EQ(sgl.length, 8192);
	T_ASSERT_EQ(sgl.addr, 0);
	/* Two PDUs, split off the iovec boundaries; then the CapsuleResp. */
	leap_nvmf_qpair_get_stats(f.qp, &st);
	send_c2h(&f, sqe.cid, 0, p, 3000, 0, false);
	send_c2h(&f, sqe.cid, 3000, p + 3000, 5192, NVME_TCP_F_DATA_LAST, false);
	PUMP_UNTIL(&f, (leap_nvmf_qpair_get_stats(f.qp, &st2), st2.pdus_rx == st.pdus_rx + 2));
	/* Data in, but no completion without the CapsuleResp. */
	T_ASSERT_EQ(d.calls, 0);
	T_ASSERT_EQ(leap_nvmf_qpair_outstanding(f.qp), 1);
	tgt_send_rsp(&f, sqe.cid, 0, 0);
	PUMP_UNTIL(&f, d.calls == 1);
	T_ASSERT_EQ(nvmf_cqe_status(&d.cqe), 0);
	T_ASSERT_EQ(d.cqe.cid, sqe.cid);
	T_ASSERT_MEM_EQ(mem + 16, want, 100);
	T_ASSERT_MEM_EQ(mem + 4096, want + 100, 5000);
	T_ASSERT_MEM_EQ(mem + 10000, want + 5100, 3092);
	/* Bytes around the iovecs untouched. */
	T_ASSERT_EQ(mem[15], 0xee);
	T_ASSERT_EQ(mem[116], 0xee);
	T_ASSERT_EQ(mem[4095], 0xee);
	T_ASSERT_EQ(mem[9096], 0xee);
	T_ASSERT_EQ(mem[9999], 0xee);
	T_ASSERT_EQ(mem[13092], 0xee);
	T_ASSERT_EQ(leap_nvmf_qpair_state(f.qp), LEAP_NVMF_QP_LIVE);
	fake_close(&f);
}

static void test_read_c2h_into_iovecs(void)
{
	read_into_iovecs(false);
}

static void test_read_c2h_with_digests(void)
{
	read_into_iovecs(true);
}

static void test_read_success_flag(void)
{
	uint8_t buf[4096], want[4096];
	struct iovec iov = { buf, sizeof(buf) };
	struct nvme_sqe sqe;
	struct done d = { 0 };
	struct fake f;

	fake_listen(&f);
	fake_connect(&f, 1, 16, 8192, 65536);
	fill(want, sizeof(want), 9);
	T_ASSERT_EQ(leap_nvmf_io_read(f.qp, 1, 8, 8, &iov, 1, 0, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	send_c2h(&f, sqe.cid, 0, want, 4096, NVME_TCP_F_DATA_LAST | NVME_TCP_F_DATA_SUCCESS, false);
	PUMP_UNTIL(&f, d.calls == 1);
	T_ASSERT_EQ(d.cqe.status, 0);
	T_ASSERT_EQ(d.cqe.cid, sqe.cid);
	T_ASSERT_EQ(d.cqe.sqid, 1);
	T_ASSERT_MEM_EQ(buf, want, 4096);
	T_ASSERT_EQ(leap_nvmf_qpair_outstanding(f.qp), 0);
	/*
	 * A CapsuleResp now would be for a completed CID: fatal. (An idle live
	 * queue does not read its socket, so it notices at the next command.)
	 */
	tgt_send_rsp(&f, sqe.cid, 0, 0);
	T_ASSERT_EQ(leap_nvmf_io_flush(f.qp, 1, done_cb, &d), 0);
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	T_ASSERT(strstr(leap_nvmf_qpair_reason(f.qp), "not in flight"));
	T_ASSERT_EQ(d.calls, 2);
	T_ASSERT_EQ(nvmf_cqe_status(&d.cqe), HOST_PATH_ERROR);
	fake_close(&f);
}

static void test_read_large_direct(void)
{
	enum { LEN = 1 << 20 };
	uint8_t *buf = malloc(LEN + 64), *want = malloc(LEN);
	struct iovec iov = { buf + 32, LEN };
	struct leap_nvmf_qpair_stats st;
	struct nvme_sqe sqe;
	struct done d = { 0 };
	struct fake f;

	T_ASSERT(buf && want);
	fake_listen(&f);
	f.ddgst = true;
	fake_connect(&f, 1, 4, 8192, 65536);
	memset(buf, 0xee, LEN + 64);
	fill(want, LEN, 77);
	T_ASSERT_EQ(leap_nvmf_io_read(f.qp, 1, 0, 256, &iov, 1, 0, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	/* One 1 MiB PDU: bigger than the receive buffer, so it must stream. */
	send_c2h(&f, sqe.cid, 0, want, 100000, 0, false);
	{
		/* The rest by hand (tgt_send_pdu's buffer is smaller than 1 MiB). */
		struct nvme_tcp_c2h_data_pdu c;
		uint32_t crc = leap_crc32c(0, want + 100000, LEN - 100000);
		size_t off = 0;

		memset(&c, 0, sizeof(c));
		c.hdr.pdu_type = NVME_TCP_PDU_C2H_DATA;
		c.hdr.flags = NVME_TCP_F_DDGST | NVME_TCP_F_DATA_LAST | NVME_TCP_F_DATA_SUCCESS;
		c.hdr.hlen = 24;
		c.hdr.pdo = 24;
		c.hdr.plen = 24 + (LEN - 100000) + 4;
		c.cccid = sqe.cid;
		c.datao = 100000;
		c.datal = LEN - 100000;
		tgt_write(&f, &c, sizeof(c));
		while (off < LEN - 100000) {
			ssize_t r =
			    send(f.fd, want + 100000 + off, LEN - 100000 - off, MSG_DONTWAIT);

			if (r > 0)
				off += (size_t)r;
			leap_nvmf_qpair_poll(f.qp);
		}
		tgt_write(&f, &crc, 4);
	}
	PUMP_UNTIL(&f, d.calls == 1);
	T_ASSERT_EQ(d.cqe.status, 0);
	T_ASSERT(!memcmp(buf + 32, want, LEN));
	T_ASSERT_EQ(buf[31], 0xee);
	T_ASSERT_EQ(buf[32 + LEN], 0xee);
	leap_nvmf_qpair_get_stats(f.qp, &st);
	T_ASSERT_EQ(st.ddgst_errors, 0);
	printf("# 1 MiB read: %llu recv calls, %llu bytes\n", (unsigned long long)st.recv_calls,
	       (unsigned long long)st.bytes_rx);
	fake_close(&f);
	free(buf);
	free(want);
}

/* ---- writes ----------------------------------------------------------------- */

static void test_write_in_capsule(void)
{
	uint8_t buf[4096], got[8192];
	struct iovec iov[2] = { { buf, 1000 }, { buf + 1000, 3096 } };
	struct nvme_sgl_desc sgl;
	struct nvme_sqe sqe;
	struct done d = { 0 };
	struct fake f;

	fake_listen(&f);
	f.hdgst = f.ddgst = true;
	fake_connect(&f, 1, 16, 8192, 65536);
	fill(buf, sizeof(buf), 3);
	T_ASSERT_EQ(leap_nvmf_io_write(f.qp, 1, 64, 8, iov, 2, NVME_RW_FUA, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, got, sizeof(got)), 4096);
	T_ASSERT_EQ(sqe.opc, NVME_OPC_WRITE);
	T_ASSERT_EQ(sqe.cdw12, 7 | NVME_RW_FUA);
	sgl_of(&sqe, &sgl);
	T_ASSERT_EQ(sgl.type, 0x01);
	T_ASSERT_EQ(sgl.length, 4096);
	T_ASSERT_MEM_EQ(got, buf, 4096);
	tgt_send_rsp(&f, sqe.cid, 0, 0);
	PUMP_UNTIL(&f, d.calls == 1);
	T_ASSERT_EQ(nvmf_cqe_status(&d.cqe), 0);
	fake_close(&f);
}

/* Read one H2CData PDU; check header fields and digests; return its payload length. */
static uint32_t tgt_read_h2c(struct fake *f, uint16_t cid, uint16_t ttag, uint32_t datao, bool last,
			     uint8_t *data)
{
	struct nvme_tcp_h2c_data_pdu h;
	uint32_t hd = f->hdgst ? 4 : 0, dd = f->ddgst ? 4 : 0;
	uint8_t dg[4];

	tgt_read(f, &h, sizeof(h));
	T_ASSERT_EQ(h.hdr.pdu_type, NVME_TCP_PDU_H2C_DATA);
	T_ASSERT_EQ(h.hdr.hlen, 24);
	T_ASSERT_EQ(h.hdr.pdo, 24 + hd);
	T_ASSERT_EQ(h.hdr.plen, 24 + hd + h.datal + dd);
	T_ASSERT_EQ(!!(h.hdr.flags & NVME_TCP_F_DATA_LAST), last);
	T_ASSERT_EQ(!!(h.hdr.flags & NVME_TCP_F_HDGST), f->hdgst);
	T_ASSERT_EQ(!!(h.hdr.flags & NVME_TCP_F_DDGST), f->ddgst);
	T_ASSERT_EQ(h.cccid, cid);
	T_ASSERT_EQ(h.ttag, ttag);
	T_ASSERT_EQ(h.datao, datao);
	if (hd) {
		tgt_read(f, dg, 4);
		T_ASSERT_U64_EQ(get32(dg), leap_crc32c(0, &h, 24));
	}
	tgt_read(f, data, h.datal);
	if (dd) {
		tgt_read(f, dg, 4);
		T_ASSERT_U64_EQ(get32(dg), leap_crc32c(0, data, h.datal));
	}
	return h.datal;
}

static void send_r2t(struct fake *f, uint16_t cid, uint16_t ttag, uint32_t off, uint32_t len)
{
	struct nvme_tcp_r2t_pdu r;

	memset(&r, 0, sizeof(r));
	r.hdr.pdu_type = NVME_TCP_PDU_R2T;
	r.cccid = cid;
	r.ttag = ttag;
	r.r2to = off;
	r.r2tl = len;
	tgt_send_pdu(f, &r, sizeof(r), NULL, 0, false, false);
}

static void write_r2t(bool digests)
{
	enum { LEN = 40000, MAXH2C = 8192 };
	static uint8_t buf[LEN], got[LEN];
	struct iovec iov[3] = { { buf, 5 }, { buf + 5, 20000 }, { buf + 20005, LEN - 20005 } };
	struct nvme_sgl_desc sgl;
	struct nvme_sqe sqe;
	struct done d = { 0 };
	struct fake f;
	uint32_t off = 0;

	fake_listen(&f);
	f.hdgst = f.ddgst = digests;
	fake_connect(&f, 1, 16, 8192, MAXH2C);
	fill(buf, LEN, 11);
	memset(got, 0, LEN);
	T_ASSERT_EQ(leap_nvmf_io_write(f.qp, 1, 0, 80, iov, 3, 0, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0); /* over ICD: no data in capsule */
	sgl_of(&sqe, &sgl);
	T_ASSERT_EQ(sgl.type, 0x5a);
	T_ASSERT_EQ(sgl.length, LEN);
	/* First R2T for 30000 bytes: PDUs of 8192, 8192, 8192, 5424, only the last LAST. */
	send_r2t(&f, sqe.cid, 0x77, 0, 30000);
	while (off < 30000) {
		bool last = off + MAXH2C >= 30000;

		off += tgt_read_h2c(&f, sqe.cid, 0x77, off, last, got + off);
	}
	T_ASSERT_EQ(off, 30000);
	T_ASSERT_EQ(tgt_pending(&f), 0);
	/* The rest. */
	send_r2t(&f, sqe.cid, 0x78, 30000, LEN - 30000);
	off += tgt_read_h2c(&f, sqe.cid, 0x78, 30000, false, got + 30000);
	off += tgt_read_h2c(&f, sqe.cid, 0x78, 30000 + MAXH2C, true, got + 30000 + MAXH2C);
	T_ASSERT_EQ(off, LEN);
	T_ASSERT_MEM_EQ(got, buf, LEN);
	T_ASSERT_EQ(d.calls, 0);
	tgt_send_rsp(&f, sqe.cid, 0, 0);
	PUMP_UNTIL(&f, d.calls == 1);
	T_ASSERT_EQ(nvmf_cqe_status(&d.cqe), 0);
	T_ASSERT_EQ(leap_nvmf_qpair_state(f.qp), LEAP_NVMF_QP_LIVE);
	fake_close(&f);
}

static void test_write_r2t_h2c(void)
{
	write_r2t(false);
}

static void test_write_r2t_h2c_digests(void)
{
	write_r2t(true);
}

static void test_r2t_protocol_errors(void)
{
	static uint8_t buf[16384];
	struct iovec iov = { buf, sizeof(buf) };
	struct nvme_sqe sqe;
	struct done d = { 0 };
	struct fake f;

	/* R2T beyond the buffer: FES 4, nothing sent from outside the buffer. */
	fake_listen(&f);
	fake_connect(&f, 1, 16, 0, 65536);
	T_ASSERT_EQ(leap_nvmf_io_write(f.qp, 1, 0, 32, &iov, 1, 0, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	send_r2t(&f, sqe.cid, 1, 8192, 8193);
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	T_ASSERT(strstr(leap_nvmf_qpair_reason(f.qp), "outside"));
	expect_term_req(&f, NVME_TCP_FES_DATA_OUT_OF_RANGE);
	T_ASSERT_EQ(d.calls, 1);
	T_ASSERT_EQ(nvmf_cqe_status(&d.cqe), HOST_PATH_ERROR);
	fake_close(&f);

	/* R2T for a read: sequence error. */
	memset(&d, 0, sizeof(d));
	fake_listen(&f);
	fake_connect(&f, 1, 16, 0, 65536);
	T_ASSERT_EQ(leap_nvmf_io_read(f.qp, 1, 0, 32, &iov, 1, 0, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	send_r2t(&f, sqe.cid, 1, 0, 4096);
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	expect_term_req(&f, NVME_TCP_FES_PDU_SEQUENCE_ERROR);
	fake_close(&f);

	/* CapsuleResp while the R2T data is still owed: sequence error. */
	memset(&d, 0, sizeof(d));
	fake_listen(&f);
	fake_connect(&f, 1, 16, 0, 65536);
	T_ASSERT_EQ(leap_nvmf_io_write(f.qp, 1, 0, 32, &iov, 1, 0, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	{
		uint8_t two[48 + 8];
		struct nvme_tcp_r2t_pdu r = {
			.hdr = { .pdu_type = NVME_TCP_PDU_R2T, .hlen = 24, .plen = 24 },
			.cccid = sqe.cid,
			.r2to = 0,
			.r2tl = 16384
		};
		struct nvme_tcp_rsp_pdu c = {
			.hdr = { .pdu_type = NVME_TCP_PDU_CAPSULE_RESP, .hlen = 24, .plen = 24 }
		};

		/* Both in one segment, so the host parses them in one go. */
		c.cqe.cid = sqe.cid;
		memcpy(two, &r, 24);
		memcpy(two + 24, &c, 24);
		tgt_write(&f, two, 48);
	}
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	T_ASSERT(strstr(leap_nvmf_qpair_reason(f.qp), "before its data was sent"));
	T_ASSERT_EQ(d.calls, 1);
	T_ASSERT_EQ(nvmf_cqe_status(&d.cqe), HOST_PATH_ERROR);
	fake_close(&f);
}

/* ---- hostile and broken targets -------------------------------------------- */

static void test_c2h_beyond_buffer(void)
{
	static uint8_t mem[3 * 4096];
	struct iovec iov = { mem + 4096, 4096 };
	struct nvme_sqe sqe;
	struct done d = { 0 };
	uint8_t evil[8192];
	struct fake f;

	fake_listen(&f);
	fake_connect(&f, 1, 16, 8192, 65536);
	memset(mem, 0xee, sizeof(mem));
	memset(evil, 0x66, sizeof(evil));
	T_ASSERT_EQ(leap_nvmf_io_read(f.qp, 1, 0, 8, &iov, 1, 0, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	log_errors = 0;
	/* [4000, 4200): starts inside, ends 104 bytes past the buffer. */
	send_c2h(&f, sqe.cid, 4000, evil, 200, NVME_TCP_F_DATA_LAST, false);
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	T_ASSERT_EQ(leap_nvmf_qpair_error(f.qp), -EPROTO);
	T_ASSERT(strstr(leap_nvmf_qpair_reason(f.qp), "outside the 4096-byte buffer"));
	T_ASSERT_EQ(log_errors, 1);
	/* Not one byte written, inside or outside the buffer. */
	for (size_t i = 0; i < sizeof(mem); i++)
		if (mem[i] != 0xee)
			T_FAIL("byte %zu of the guarded area was written", i);
	T_ASSERT_EQ(d.calls, 1);
	T_ASSERT_EQ(nvmf_cqe_status(&d.cqe), HOST_PATH_ERROR);
	expect_term_req(&f, NVME_TCP_FES_DATA_OUT_OF_RANGE);
	/* Submissions now fail with the queue's error. */
	T_ASSERT_EQ(leap_nvmf_io_read(f.qp, 1, 0, 8, &iov, 1, 0, done_cb, &d), -EPROTO);
	fake_close(&f);
}

static void test_c2h_huge_offset_no_overflow(void)
{
	static uint8_t mem[4096];
	struct iovec iov = { mem, sizeof(mem) };
	struct nvme_sqe sqe;
	struct done d = { 0 };
	struct fake f;
	uint8_t x[16] = { 0 };

	fake_listen(&f);
	fake_connect(&f, 1, 16, 8192, 65536);
	memset(mem, 0xee, sizeof(mem));
	T_ASSERT_EQ(leap_nvmf_io_read(f.qp, 1, 0, 8, &iov, 1, 0, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	/* datao + datal wraps in 32 bits: must still be caught. */
	send_c2h(&f, sqe.cid, 0xfffffff8u, x, 16, 0, false);
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	T_ASSERT_EQ(mem[0], 0xee);
	T_ASSERT_EQ(mem[4095], 0xee);
	expect_term_req(&f, NVME_TCP_FES_DATA_OUT_OF_RANGE);
	fake_close(&f);
}

static void test_unknown_and_stale_cid(void)
{
	struct done d = { 0 };
	struct nvme_sqe sqe;
	struct fake f;

	/* A CID never issued. */
	fake_listen(&f);
	fake_connect(&f, 1, 16, 8192, 65536);
	T_ASSERT_EQ(leap_nvmf_io_flush(f.qp, 1, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	log_errors = 0;
	tgt_send_rsp(&f, (uint16_t)(sqe.cid ^ 0x0100), 0, 0);
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	T_ASSERT(strstr(leap_nvmf_qpair_reason(f.qp), "not in flight"));
	T_ASSERT_EQ(log_errors, 1);
	expect_term_req(&f, NVME_TCP_FES_INVALID_HEADER_FIELD);
	/* The real request is aborted, once. */
	T_ASSERT_EQ(d.calls, 1);
	T_ASSERT_EQ(nvmf_cqe_status(&d.cqe), HOST_PATH_ERROR);
	fake_close(&f);

	/* A CID completed once, then repeated after its slot was reused: generation catches it. */
	memset(&d, 0, sizeof(d));
	fake_listen(&f);
	fake_connect(&f, 1, 1, 8192, 65536);
	T_ASSERT_EQ(leap_nvmf_io_flush(f.qp, 1, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	tgt_send_rsp(&f, sqe.cid, 0, 0);
	PUMP_UNTIL(&f, d.calls == 1);
	{
		struct nvme_sqe sqe2;
		uint16_t old = sqe.cid;

		T_ASSERT_EQ(leap_nvmf_io_flush(f.qp, 1, done_cb, &d), 0);
		T_ASSERT_EQ(tgt_read_capsule(&f, &sqe2, NULL, 0), 0);
		T_ASSERT(sqe2.cid != old); /* same slot (qdepth 1), new generation */
		tgt_send_rsp(&f, old, 0, 0);
		PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
		T_ASSERT_EQ(d.calls, 2);
		T_ASSERT_EQ(nvmf_cqe_status(&d.cqe), HOST_PATH_ERROR);
	}
	fake_close(&f);
}

static void test_hdgst_mismatch(void)
{
	struct nvme_tcp_rsp_pdu r;
	struct done d = { 0 };
	struct nvme_sqe sqe;
	struct fake f;

	fake_listen(&f);
	f.hdgst = true;
	fake_connect(&f, 1, 16, 8192, 65536);
	T_ASSERT_EQ(leap_nvmf_io_flush(f.qp, 1, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	memset(&r, 0, sizeof(r));
	r.hdr.pdu_type = NVME_TCP_PDU_CAPSULE_RESP;
	r.cqe.cid = sqe.cid;
	tgt_send_pdu(&f, &r, sizeof(r), NULL, 0, true, false);
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	T_ASSERT_EQ(leap_nvmf_qpair_error(f.qp), -EBADMSG);
	T_ASSERT(strstr(leap_nvmf_qpair_reason(f.qp), "header digest mismatch"));
	expect_term_req(&f, NVME_TCP_FES_HDGST_ERROR);
	T_ASSERT_EQ(d.calls, 1);
	T_ASSERT_EQ(nvmf_cqe_status(&d.cqe), HOST_PATH_ERROR);
	fake_close(&f);
}

static void test_missing_hdgst_flag(void)
{
	struct nvme_tcp_rsp_pdu r;
	struct done d = { 0 };
	struct nvme_sqe sqe;
	struct fake f;

	fake_listen(&f);
	f.hdgst = true;
	fake_connect(&f, 1, 16, 8192, 65536);
	T_ASSERT_EQ(leap_nvmf_io_flush(f.qp, 1, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	/* A CapsuleResp without a digest although digests were negotiated. */
	memset(&r, 0, sizeof(r));
	r.hdr.pdu_type = NVME_TCP_PDU_CAPSULE_RESP;
	r.hdr.hlen = 24;
	r.hdr.plen = 24;
	r.cqe.cid = sqe.cid;
	tgt_write(&f, &r, sizeof(r));
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	expect_term_req(&f, NVME_TCP_FES_INVALID_HEADER_FIELD);
	fake_close(&f);
}

static void test_ddgst_mismatch_completes_with_error(void)
{
	uint8_t buf[4096], want[4096];
	struct iovec iov = { buf, sizeof(buf) };
	struct leap_nvmf_qpair_stats st;
	struct nvme_sqe sqe;
	struct done d = { 0 };
	struct fake f;

	fake_listen(&f);
	f.ddgst = true;
	fake_connect(&f, 1, 16, 8192, 65536);
	fill(want, sizeof(want), 1);
	T_ASSERT_EQ(leap_nvmf_io_read(f.qp, 1, 0, 8, &iov, 1, 0, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	send_c2h(&f, sqe.cid, 0, want, 4096, NVME_TCP_F_DATA_LAST, true);
	tgt_send_rsp(&f, sqe.cid, 0, 0);
	PUMP_UNTIL(&f, d.calls == 1);
	/* Framing intact: the command fails (transient transport error), the queue lives. */
	T_ASSERT_EQ(nvmf_cqe_status(&d.cqe), 0x022);
	T_ASSERT_EQ(leap_nvmf_qpair_state(f.qp), LEAP_NVMF_QP_LIVE);
	leap_nvmf_qpair_get_stats(f.qp, &st);
	T_ASSERT_EQ(st.ddgst_errors, 1);
	/* And the next read works. */
	memset(&d, 0, sizeof(d));
	T_ASSERT_EQ(leap_nvmf_io_read(f.qp, 1, 0, 8, &iov, 1, 0, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	send_c2h(&f, sqe.cid, 0, want, 4096, NVME_TCP_F_DATA_LAST | NVME_TCP_F_DATA_SUCCESS, false);
	PUMP_UNTIL(&f, d.calls == 1);
	T_ASSERT_EQ(nvmf_cqe_status(&d.cqe), 0);
	T_ASSERT_MEM_EQ(buf, want, 4096);
	fake_close(&f);
}

static void test_c2h_protocol_errors(void)
{
	static uint8_t mem[8192];
	struct iovec iov = { mem, sizeof(mem) };
	struct nvme_sqe sqe;
	struct done d = { 0 };
	struct fake f;

	/* Out of order. */
	fake_listen(&f);
	fake_connect(&f, 1, 16, 8192, 65536);
	T_ASSERT_EQ(leap_nvmf_io_read(f.qp, 1, 0, 16, &iov, 1, 0, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	send_c2h(&f, sqe.cid, 4096, mem, 4096, 0, false);
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	expect_term_req(&f, NVME_TCP_FES_PDU_SEQUENCE_ERROR);
	fake_close(&f);

	/* SUCCESS before the last byte. */
	fake_listen(&f);
	fake_connect(&f, 1, 16, 8192, 65536);
	T_ASSERT_EQ(leap_nvmf_io_read(f.qp, 1, 0, 16, &iov, 1, 0, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	send_c2h(&f, sqe.cid, 0, mem, 4096, NVME_TCP_F_DATA_LAST | NVME_TCP_F_DATA_SUCCESS, false);
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	expect_term_req(&f, NVME_TCP_FES_INVALID_HEADER_FIELD);
	fake_close(&f);

	/* C2HData for a write. */
	fake_listen(&f);
	fake_connect(&f, 1, 16, 0, 65536);
	T_ASSERT_EQ(leap_nvmf_io_write(f.qp, 1, 0, 16, &iov, 1, 0, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	send_c2h(&f, sqe.cid, 0, mem, 4096, 0, false);
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	expect_term_req(&f, NVME_TCP_FES_INVALID_HEADER_FIELD);
	fake_close(&f);

	/* A PDU type only hosts send. */
	fake_listen(&f);
	fake_connect(&f, 1, 16, 0, 65536);
	T_ASSERT_EQ(leap_nvmf_io_read(f.qp, 1, 0, 16, &iov, 1, 0, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	{
		struct nvme_tcp_h2c_data_pdu h = {
			.hdr = { .pdu_type = NVME_TCP_PDU_H2C_DATA, .hlen = 24, .plen = 24 }
		};

		tgt_write(&f, &h, sizeof(h));
	}
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	T_ASSERT(strstr(leap_nvmf_qpair_reason(f.qp), "unexpected PDU type 0x06"));
	expect_term_req(&f, NVME_TCP_FES_INVALID_HEADER_FIELD);
	fake_close(&f);
}

static void test_term_req_from_target(void)
{
	struct done d = { 0 };
	struct nvme_tcp_term_req t;
	struct nvme_sqe sqe;
	struct fake f;
	uint8_t pdu[24 + 72];

	fake_listen(&f);
	fake_connect(&f, 1, 16, 8192, 65536);
	T_ASSERT_EQ(leap_nvmf_io_flush(f.qp, 1, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	memset(&t, 0, sizeof(t));
	t.hdr.pdu_type = NVME_TCP_PDU_C2H_TERM_REQ;
	t.hdr.hlen = 24;
	t.hdr.plen = sizeof(pdu);
	t.fes = NVME_TCP_FES_PDU_SEQUENCE_ERROR;
	t.fei = 0;
	memcpy(pdu, &t, 24);
	memset(pdu + 24, 0, 72);
	tgt_write(&f, pdu, sizeof(pdu));
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	T_ASSERT(strstr(leap_nvmf_qpair_reason(f.qp), "C2HTermReq: FES 2 (PDU sequence error)"));
	T_ASSERT_EQ(d.calls, 1);
	T_ASSERT_EQ(nvmf_cqe_status(&d.cqe), HOST_PATH_ERROR);
	/* No TermReq back, just the close. */
	T_ASSERT_EQ(tgt_pending(&f), 0);
	fake_close(&f);
}

static void test_target_closes(void)
{
	struct done d = { 0 };
	struct nvme_sqe sqe;
	struct fake f;

	fake_listen(&f);
	fake_connect(&f, 1, 16, 8192, 65536);
	T_ASSERT_EQ(leap_nvmf_io_flush(f.qp, 1, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	close(f.fd);
	f.fd = -1;
	PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
	T_ASSERT_EQ(leap_nvmf_qpair_error(f.qp), -ECONNRESET);
	T_ASSERT(strstr(leap_nvmf_qpair_reason(f.qp), "closed"));
	T_ASSERT_EQ(d.calls, 1);
	fake_close(&f);
}

/* ---- batching: one recv for many PDUs, one send for many capsules ---------- */

static void test_batch_one_syscall_each_way(void)
{
	enum { N = 64 };
	struct leap_nvmf_qpair_stats a, b;
	struct done d = { 0 };
	uint8_t rsps[N * 24];
	uint16_t cids[N];
	struct fake f;

	fake_listen(&f);
	fake_connect(&f, 1, N, 8192, 65536);
	leap_nvmf_qpair_get_stats(f.qp, &a);
	for (int i = 0; i < N; i++)
		T_ASSERT_EQ(leap_nvmf_io_flush(f.qp, 1, done_cb, &d), 0);
	{
		struct nvme_sqe sqe = { .opc = NVME_OPC_FLUSH };

		T_ASSERT_EQ(leap_nvmf_qpair_submit(f.qp, &sqe, NULL, 0, NULL, NULL), -EAGAIN);
	}
	/* One poll sends all 64 capsules with one sendmsg. */
	leap_nvmf_qpair_poll(f.qp);
	leap_nvmf_qpair_get_stats(f.qp, &b);
	T_ASSERT_EQ(b.send_calls - a.send_calls, 1);
	T_ASSERT_EQ(b.pdus_tx - a.pdus_tx, N);
	for (int i = 0; i < N; i++) {
		struct nvme_sqe sqe;

		T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
		cids[i] = sqe.cid;
		for (int j = 0; j < i; j++)
			T_ASSERT(cids[j] != cids[i]);
	}
	/* All 64 completions in one segment, in reverse order; one poll reaps them all. */
	for (int i = 0; i < N; i++) {
		struct nvme_tcp_rsp_pdu r;

		memset(&r, 0, sizeof(r));
		r.hdr.pdu_type = NVME_TCP_PDU_CAPSULE_RESP;
		r.hdr.hlen = 24;
		r.hdr.plen = 24;
		r.cqe.cid = cids[N - 1 - i];
		memcpy(rsps + i * 24, &r, 24);
	}
	leap_nvmf_qpair_get_stats(f.qp, &a);
	tgt_write(&f, rsps, sizeof(rsps));
	usleep(20000); /* let loopback deliver it all before the single poll */
	T_ASSERT_EQ(leap_nvmf_qpair_poll(f.qp), N);
	leap_nvmf_qpair_get_stats(f.qp, &b);
	T_ASSERT_EQ(b.recv_calls - a.recv_calls, 1);
	T_ASSERT_EQ(b.pdus_rx - a.pdus_rx, N);
	T_ASSERT_EQ(d.calls, N);
	T_ASSERT_EQ(leap_nvmf_qpair_outstanding(f.qp), 0);
	/* Idle and live: polling makes no receive syscall. */
	for (int i = 0; i < 100; i++)
		T_ASSERT_EQ(leap_nvmf_qpair_poll(f.qp), 0);
	leap_nvmf_qpair_get_stats(f.qp, &a);
	T_ASSERT_EQ(a.recv_calls, b.recv_calls);
	T_ASSERT_EQ(a.send_calls, b.send_calls);
	fake_close(&f);
}

static void resubmit_cb(void *arg, const struct nvme_cqe *cqe)
{
	struct fake *f = arg;

	(void)cqe;
	/* Submitting from a completion callback is allowed. */
	T_ASSERT_EQ(leap_nvmf_io_flush(f->qp, 2, NULL, NULL), 0);
}

static void test_submit_from_callback_and_destroy_aborts(void)
{
	struct done d = { 0 };
	struct nvme_sqe sqe;
	struct fake f;

	fake_listen(&f);
	fake_connect(&f, 1, 1, 8192, 65536);
	T_ASSERT_EQ(leap_nvmf_io_flush(f.qp, 1, resubmit_cb, &f), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	tgt_send_rsp(&f, sqe.cid, 0, 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	T_ASSERT_EQ(sqe.nsid, 2);
	T_ASSERT_EQ(leap_nvmf_qpair_outstanding(f.qp), 1);
	leap_nvmf_qpair_destroy(f.qp);
	f.qp = NULL;
	/* Destroy with a request in flight: its callback ran (here NULL) and nothing leaked. */
	(void)d;
	fake_close(&f);
}

static void test_destroy_completes_outstanding(void)
{
	struct done d = { 0 };
	struct nvme_sqe sqe;
	struct fake f;

	fake_listen(&f);
	fake_connect(&f, 1, 4, 8192, 65536);
	T_ASSERT_EQ(leap_nvmf_io_flush(f.qp, 1, done_cb, &d), 0);
	T_ASSERT_EQ(tgt_read_capsule(&f, &sqe, NULL, 0), 0);
	log_errors = 0;
	leap_nvmf_qpair_destroy(f.qp);
	f.qp = NULL;
	T_ASSERT_EQ(d.calls, 1);
	T_ASSERT_EQ(nvmf_cqe_status(&d.cqe), HOST_PATH_ERROR);
	T_ASSERT_EQ(log_errors, 0); /* a deliberate destroy is not an error */
	fake_close(&f);
}

/* ---- mutation fuzz ------------------------------------------------------------ */

static uint64_t fz_state;

static uint32_t fz(uint32_t n)
{
	fz_state = fz_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(fz_state >> 33) % n;
}

/*
 * A valid target script (C2HData for a read, R2T for a write, both
 * CapsuleResps) with a few random bytes flipped or the stream cut short.
 * Whatever the host makes of it, it must not write outside the read buffer,
 * never write into the write buffer, and complete each request exactly once.
 */
static void test_fuzz_mutated_target(void)
{
	static uint8_t rmem[8192 + 128], wmem[16384], wcopy[16384], script[32768], data[8192];
	const char *env = getenv("NVMF_FUZZ_ITERS");
	int iters = env ? (int)strtol(env, NULL, 10) : 150, failed = 0, live = 0;

	fz_state = 0x5eed;
	for (int i = 0; i < (int)sizeof(data); i++)
		data[i] = (uint8_t)(i * 3);
	for (int it = 0; it < iters; it++) {
		struct iovec riov = { rmem + 64, 8192 }, wiov = { wmem, sizeof(wmem) };
		struct done dr = { 0 }, dw = { 0 };
		struct nvme_sqe rs, ws;
		uint32_t len = 0, flips;
		struct fake f;

		fake_listen(&f);
		f.hdgst = fz(2);
		f.ddgst = fz(2);
		fake_connect(&f, 1, 4, 0, 8192);
		memset(rmem, 0xee, sizeof(rmem));
		for (size_t b = 0; b < sizeof(wmem); b++)
			wmem[b] = (uint8_t)(b ^ it);
		memcpy(wcopy, wmem, sizeof(wmem));
		T_ASSERT_EQ(leap_nvmf_io_read(f.qp, 1, 0, 16, &riov, 1, 0, done_cb, &dr), 0);
		T_ASSERT_EQ(leap_nvmf_io_write(f.qp, 1, 0, 32, &wiov, 1, 0, done_cb, &dw), 0);
		T_ASSERT_EQ(tgt_read_capsule(&f, &rs, NULL, 0), 0);
		T_ASSERT_EQ(tgt_read_capsule(&f, &ws, NULL, 0), 0);
		{
			struct nvme_tcp_c2h_data_pdu c = { .hdr = { .pdu_type =
									NVME_TCP_PDU_C2H_DATA },
							   .cccid = rs.cid,
							   .datal = 4096 };
			struct nvme_tcp_r2t_pdu r = { .hdr = { .pdu_type = NVME_TCP_PDU_R2T },
						      .cccid = ws.cid,
						      .ttag = 3,
						      .r2tl = 16384 };
			struct nvme_tcp_rsp_pdu rsp = { .hdr = { .pdu_type =
								     NVME_TCP_PDU_CAPSULE_RESP } };

			len += build_pdu(&f, script + len, &c, sizeof(c), data, 4096, false, false);
			c.hdr.flags = NVME_TCP_F_DATA_LAST;
			c.datao = 4096;
			len += build_pdu(&f, script + len, &c, sizeof(c), data + 4096, 4096, false,
					 false);
			len += build_pdu(&f, script + len, &r, sizeof(r), NULL, 0, false, false);
			rsp.cqe.cid = rs.cid;
			len +=
			    build_pdu(&f, script + len, &rsp, sizeof(rsp), NULL, 0, false, false);
		}
		flips = 1 + fz(4);
		for (uint32_t k = 0; k < flips; k++) {
			/* Mostly headers: that is where the interesting fields are. */
			uint32_t at = fz(4) ? fz(32) + (fz(3) ? 0 : 4096 + 24) : fz(len);

			script[at % len] ^= (uint8_t)(1u << fz(8));
		}
		if (!fz(8))
			len = fz(len);
		tgt_write(&f, script, len);
		for (int k = 0; k < 200; k++)
			leap_nvmf_qpair_poll(f.qp);
		/* Then the target hangs up: everything still in flight must end. */
		close(f.fd);
		f.fd = -1;
		PUMP_UNTIL(&f, leap_nvmf_qpair_state(f.qp) == LEAP_NVMF_QP_FAILED);
		T_ASSERT_EQ(dr.calls, 1);
		T_ASSERT_EQ(dw.calls, 1);
		T_ASSERT_EQ(leap_nvmf_qpair_outstanding(f.qp), 0);
		for (int b = 0; b < 64; b++)
			if (rmem[b] != 0xee || rmem[64 + 8192 + b] != 0xee)
				T_FAIL("iteration %d: guard byte written", it);
		T_ASSERT_MEM_EQ(wmem, wcopy, sizeof(wmem));
		failed += nvmf_cqe_status(&dr.cqe) != 0;
		live += nvmf_cqe_status(&dr.cqe) == 0;
		fake_close(&f);
	}
	printf("# %d mutated scripts: read completed ok %d, ended with an error %d\n", iters, live,
	       failed);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_trid_parse),
		TAP_CASE(test_connect_handshake),
		TAP_CASE(test_connect_io_queue_with_digests),
		TAP_CASE(test_connect_refused),
		TAP_CASE(test_connect_invalid_host),
		TAP_CASE(test_connect_invalid_param_reports_offset),
		TAP_CASE(test_icresp_bad_maxh2cdata),
		TAP_CASE(test_icresp_declined_digest),
		TAP_CASE(test_submit_before_live),
		TAP_CASE(test_read_c2h_into_iovecs),
		TAP_CASE(test_read_c2h_with_digests),
		TAP_CASE(test_read_success_flag),
		TAP_CASE(test_read_large_direct),
		TAP_CASE(test_write_in_capsule),
		TAP_CASE(test_write_r2t_h2c),
		TAP_CASE(test_write_r2t_h2c_digests),
		TAP_CASE(test_r2t_protocol_errors),
		TAP_CASE(test_c2h_beyond_buffer),
		TAP_CASE(test_c2h_huge_offset_no_overflow),
		TAP_CASE(test_unknown_and_stale_cid),
		TAP_CASE(test_hdgst_mismatch),
		TAP_CASE(test_missing_hdgst_flag),
		TAP_CASE(test_ddgst_mismatch_completes_with_error),
		TAP_CASE(test_c2h_protocol_errors),
		TAP_CASE(test_term_req_from_target),
		TAP_CASE(test_target_closes),
		TAP_CASE(test_batch_one_syscall_each_way),
		TAP_CASE(test_submit_from_callback_and_destroy_aborts),
		TAP_CASE(test_destroy_completes_outstanding),
		TAP_CASE(test_fuzz_mutated_target),
	};

	leap_log_set_callback(log_capture, NULL);
	return tap_run(cases, TAP_N(cases));
}
