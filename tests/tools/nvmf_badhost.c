// SPDX-License-Identifier: BSD-3-Clause
/*
 * nvmf_badhost: a raw NVMe/TCP host that commits one named kind of bad
 * input against a target and prints what the target answered, one line per
 * event, for tests/e2e/tcp_badhost.bats:
 *
 *   termreq fes=0xNN fei=N     a C2HTermReq (the connection is then closed)
 *   status sct=S sc=0xNN dw0=0xNNNNNNNN    a CapsuleResp
 *   r2t ttag=N r2to=N r2tl=N   an R2T
 *   closed after MS ms         the target closed the connection
 *   open after MS ms           nothing happened within the wait
 *
 *   nvmf_badhost [-w MS] ADDR PORT SUBNQN HOSTNQN CASE
 *
 * -w is how long to wait for an answer (default 3000 ms). CASE names are
 * in run_case(); "connect" and "hold" are well-behaved (access-control
 * and busy-controller tests), "io-good" is the control case.
 *
 * It builds every PDU itself (no host library: it must be able to send
 * what a correct host never would). Exit 0 when the case ran, 1 when the
 * setup a case needs failed (connection refused, a good Connect refused),
 * 2 on bad usage.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "leapio/crc32c.h"
#include "leapio/nvmf_spec.h"

struct host {
	int fd;
	bool hdgst, ddgst;
	uint16_t cid;
	uint16_t cntlid;
	uint8_t hostid[16];
	const char *subnqn, *hostnqn;
};

static int wait_ms = 3000;
static bool quiet; /* setup steps: their answers are not the case's */

#define out(...)                                                                                   \
	do {                                                                                       \
		if (!quiet)                                                                        \
			printf(__VA_ARGS__);                                                       \
	} while (0)

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int dial(const char *addr, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST };
	struct addrinfo *ai;
	int fd, one = 1;

	if (getaddrinfo(addr, port, &hints, &ai))
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		close(fd);
		fd = -1;
	}
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	freeaddrinfo(ai);
	return fd;
}

static int send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* 0, -ETIMEDOUT, or -ECONNRESET (closed). */
static int recv_exact(int fd, void *buf, size_t len, uint64_t deadline)
{
	uint8_t *p = buf;

	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = (int64_t)(deadline - now_ms());
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
			return -ETIMEDOUT;
		n = recv(fd, p, len, 0);
		if (n <= 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One whole PDU into buf (plen bytes). Returns its type, -ETIMEDOUT or -ECONNRESET. */
static int recv_pdu(struct host *h, uint8_t *buf, size_t cap, uint64_t deadline)
{
	struct nvme_tcp_common_hdr *ch = (struct nvme_tcp_common_hdr *)buf;
	int rc = recv_exact(h->fd, buf, sizeof(*ch), deadline);

	if (rc)
		return rc;
	if (ch->plen < sizeof(*ch) || ch->plen > cap) {
		fprintf(stderr, "nvmf_badhost: PDU type %#x with plen %u\n", ch->pdu_type,
			ch->plen);
		return -ECONNRESET;
	}
	rc = recv_exact(h->fd, buf + sizeof(*ch), ch->plen - sizeof(*ch), deadline);
	return rc ? rc : ch->pdu_type;
}

static uint8_t rxbuf[256 * 1024];
static uint8_t c2h_data[64 * 1024];
static uint64_t t_start;

/*
 * Print what the target does next: skip C2HData, report the first response,
 * R2T or TermReq (and, after a TermReq, whether it closes), or a close, or
 * nothing within the wait. Returns the PDU type reported (or -errno).
 */
static int report(struct host *h, int ms, struct nvme_tcp_r2t_pdu *r2t_out,
		  struct nvme_cqe *cqe_out)
{
	uint64_t deadline = now_ms() + (uint64_t)ms;

	t_start = now_ms();
	for (;;) {
		int type = recv_pdu(h, rxbuf, sizeof(rxbuf), deadline);

		if (type == -ETIMEDOUT) {
			out("open after %llu ms\n", (unsigned long long)(now_ms() - t_start));
			return type;
		}
		if (type < 0) {
			out("closed after %llu ms\n", (unsigned long long)(now_ms() - t_start));
			return type;
		}
		switch (type) {
		case NVME_TCP_PDU_C2H_DATA: {
			const struct nvme_tcp_c2h_data_pdu *d = (const void *)rxbuf;

			/* Kept for the cases that look at read data (log pages). */
			if (d->datao + d->datal <= sizeof(c2h_data))
				memcpy(c2h_data + d->datao, rxbuf + d->hdr.pdo, d->datal);
			continue;
		}
		case NVME_TCP_PDU_CAPSULE_RESP: {
			const struct nvme_tcp_rsp_pdu *r = (const void *)rxbuf;
			uint16_t st = r->cqe.status;

			out("status sct=%u sc=0x%02x dw0=0x%08x\n", (st >> 9) & 7, (st >> 1) & 0xff,
			    r->cqe.dw0);
			if (cqe_out)
				*cqe_out = r->cqe;
			return type;
		}
		case NVME_TCP_PDU_R2T: {
			const struct nvme_tcp_r2t_pdu *r = (const void *)rxbuf;

			out("r2t ttag=%u r2to=%u r2tl=%u\n", r->ttag, r->r2to, r->r2tl);
			if (r2t_out)
				*r2t_out = *r;
			return type;
		}
		case NVME_TCP_PDU_C2H_TERM_REQ: {
			const struct nvme_tcp_term_req *t = (const void *)rxbuf;
			int rc;

			out("termreq fes=0x%02x fei=%u\n", t->fes, t->fei);
			/* The target closes the connection after a TermReq. */
			rc = recv_pdu(h, rxbuf, sizeof(rxbuf), now_ms() + (uint64_t)ms);
			if (rc == -ETIMEDOUT)
				out("open after %d ms\n", ms);
			else
				out("closed\n");
			return type;
		}
		default:
			out("pdu type=0x%02x\n", type);
			return type;
		}
	}
}

/* ---- PDUs ---------------------------------------------------------------------- */

static int icreq(struct host *h, uint8_t dgst, uint16_t pfv)
{
	struct nvme_tcp_icreq req = { 0 };
	struct nvme_tcp_icresp *resp = (struct nvme_tcp_icresp *)rxbuf;
	int type;

	req.hdr.pdu_type = NVME_TCP_PDU_ICREQ;
	req.hdr.hlen = sizeof(req);
	req.hdr.plen = sizeof(req);
	req.pfv = pfv;
	req.dgst = dgst;
	if (send_all(h->fd, &req, sizeof(req)))
		return -1;
	if (pfv)
		return 0;
	type = recv_pdu(h, rxbuf, sizeof(rxbuf), now_ms() + (uint64_t)wait_ms);
	if (type != NVME_TCP_PDU_ICRESP) {
		fprintf(stderr, "nvmf_badhost: no ICResp (%d)\n", type);
		return -1;
	}
	h->hdgst = resp->dgst & NVME_TCP_DGST_HDGST;
	h->ddgst = resp->dgst & NVME_TCP_DGST_DDGST;
	return 0;
}

/* Build a CapsuleCmd (digests as negotiated) in buf; returns its length. */
static size_t capsule(struct host *h, uint8_t *buf, const struct nvme_sqe *sqe, const void *icd,
		      uint32_t icd_len)
{
	struct nvme_tcp_cmd_pdu *p = (struct nvme_tcp_cmd_pdu *)buf;
	uint32_t hd = h->hdgst ? 4 : 0, dd = h->ddgst && icd_len ? 4 : 0, crc;

	memset(p, 0, sizeof(*p));
	p->hdr.pdu_type = NVME_TCP_PDU_CAPSULE_CMD;
	p->hdr.flags = (h->hdgst ? NVME_TCP_F_HDGST : 0) | (dd ? NVME_TCP_F_DDGST : 0);
	p->hdr.hlen = sizeof(*p);
	p->hdr.pdo = icd_len ? (uint8_t)(sizeof(*p) + hd) : 0;
	p->hdr.plen = (uint32_t)sizeof(*p) + hd + icd_len + dd;
	p->sqe = *sqe;
	if (hd) {
		crc = leap_crc32c(0, p, sizeof(*p));
		memcpy(buf + sizeof(*p), &crc, 4);
	}
	if (icd_len) {
		memcpy(buf + sizeof(*p) + hd, icd, icd_len);
		if (dd) {
			crc = leap_crc32c(0, icd, icd_len);
			memcpy(buf + sizeof(*p) + hd + icd_len, &crc, 4);
		}
	}
	return p->hdr.plen;
}

static int send_capsule(struct host *h, const struct nvme_sqe *sqe, const void *icd,
			uint32_t icd_len)
{
	static uint8_t buf[16384 + 256];

	return send_all(h->fd, buf, capsule(h, buf, sqe, icd, icd_len));
}

static void sgl_transport(struct nvme_sqe *s, uint32_t len)
{
	struct nvme_sgl_desc *d = (struct nvme_sgl_desc *)&s->prp1;

	s->flags = NVMF_SQE_FLAGS_SGL;
	d->addr = 0;
	d->length = len;
	d->type = NVMF_TCP_SGL_TRANSPORT;
}

static void sgl_icd(struct nvme_sqe *s, uint32_t len)
{
	struct nvme_sgl_desc *d = (struct nvme_sgl_desc *)&s->prp1;

	s->flags = NVMF_SQE_FLAGS_SGL;
	d->addr = 0;
	d->length = len;
	d->type = NVMF_TCP_SGL_ICD;
}

static int connect_q(struct host *h, uint16_t qid, uint16_t cntlid, uint16_t sqsize, uint32_t kato,
		     const char *subnqn, bool silent, struct nvme_cqe *cqe)
{
	struct nvmf_connect_cmd c = { 0 };
	struct nvmf_connect_data d = { 0 };
	struct nvme_cqe tmp;
	int rc;

	c.opc = NVME_OPC_FABRIC;
	c.cid = h->cid++;
	c.fctype = NVMF_FCTYPE_CONNECT;
	c.qid = qid;
	c.sqsize = sqsize;
	c.kato = kato;
	sgl_icd((struct nvme_sqe *)&c, sizeof(d));
	memcpy(d.hostid, h->hostid, 16);
	d.cntlid = cntlid;
	snprintf(d.subnqn, sizeof(d.subnqn), "%s", subnqn);
	snprintf(d.hostnqn, sizeof(d.hostnqn), "%s", h->hostnqn);
	if (send_capsule(h, (struct nvme_sqe *)&c, &d, sizeof(d)))
		return -1;
	if (!cqe)
		cqe = &tmp;
	memset(cqe, 0xff, sizeof(*cqe));
	quiet = silent;
	rc = report(h, wait_ms, NULL, cqe);
	quiet = false;
	if (rc != NVME_TCP_PDU_CAPSULE_RESP || (cqe->status >> 1) & 0x7ff)
		return -1;
	if (qid == 0)
		h->cntlid = (uint16_t)cqe->dw0;
	return 0;
}

/* A command and its response, quietly; returns the status (SCT << 8 | SC), or -1. */
static int admin(struct host *h, struct nvme_sqe *s, struct nvme_cqe *cqe_out)
{
	struct nvme_cqe cqe;
	int type;

	s->cid = h->cid++;
	if (!(s->flags & NVMF_SQE_FLAGS_SGL))
		sgl_transport(s, 0);
	if (send_capsule(h, s, NULL, 0))
		return -1;
	quiet = true;
	type = report(h, wait_ms, NULL, &cqe);
	quiet = false;
	if (type != NVME_TCP_PDU_CAPSULE_RESP)
		return -1;
	if (cqe_out)
		*cqe_out = cqe;
	return (cqe.status >> 1) & 0x7ff;
}

static int prop(struct host *h, bool set, uint32_t ofst, bool size8, uint64_t v, uint64_t *out)
{
	struct nvmf_property_set_cmd p = { 0 };
	struct nvme_cqe cqe;
	int st;

	p.opc = NVME_OPC_FABRIC;
	p.fctype = set ? NVMF_FCTYPE_PROPERTY_SET : NVMF_FCTYPE_PROPERTY_GET;
	p.attrib = size8 ? NVMF_PROP_SIZE_8 : NVMF_PROP_SIZE_4;
	p.ofst = ofst;
	p.value = v;
	st = admin(h, (struct nvme_sqe *)&p, &cqe);
	if (out)
		*out = cqe.dw0 | ((uint64_t)cqe.dw1 << 32);
	return st;
}

/* CC.EN = 1 and wait for CSTS.RDY. */
static int enable(struct host *h)
{
	uint64_t csts = 0;

	if (prop(h, true, NVME_REG_CC, false, NVME_CC_EN | (6u << 16) | (4u << 20), NULL))
		return -1;
	for (int i = 0; i < 100; i++) {
		if (prop(h, false, NVME_REG_CSTS, false, 0, &csts))
			return -1;
		if (csts & NVME_CSTS_RDY)
			return 0;
		usleep(10000);
	}
	return -1;
}

static int h2c(struct host *h, uint16_t cccid, uint16_t ttag, uint32_t datao, uint32_t datal,
	       const void *data, uint32_t len, uint8_t flags, bool bad_ddgst)
{
	static uint8_t buf[256 * 1024];
	struct nvme_tcp_h2c_data_pdu *d = (struct nvme_tcp_h2c_data_pdu *)buf;
	uint32_t hd = h->hdgst ? 4 : 0, dd = h->ddgst ? 4 : 0, crc;

	memset(d, 0, sizeof(*d));
	d->hdr.pdu_type = NVME_TCP_PDU_H2C_DATA;
	d->hdr.flags = flags | (hd ? NVME_TCP_F_HDGST : 0) | (dd ? NVME_TCP_F_DDGST : 0);
	d->hdr.hlen = sizeof(*d);
	d->hdr.pdo = (uint8_t)(sizeof(*d) + hd);
	d->hdr.plen = (uint32_t)sizeof(*d) + hd + len + dd;
	d->cccid = cccid;
	d->ttag = ttag;
	d->datao = datao;
	d->datal = datal;
	if (hd) {
		crc = leap_crc32c(0, d, sizeof(*d));
		memcpy(buf + sizeof(*d), &crc, 4);
	}
	memcpy(buf + sizeof(*d) + hd, data, len);
	if (dd) {
		crc = leap_crc32c(0, data, len) ^ (bad_ddgst ? 1 : 0);
		memcpy(buf + sizeof(*d) + hd + len, &crc, 4);
	}
	return send_all(h->fd, buf, d->hdr.plen);
}

/* ---- setups ---------------------------------------------------------------------- */

static struct host host_new(const char *addr, const char *port, const char *subnqn,
			    const char *hostnqn)
{
	struct host h = { .subnqn = subnqn, .hostnqn = hostnqn, .cid = 1 };

	for (int i = 0; i < 16; i++)
		h.hostid[i] = (uint8_t)(0x40 + i);
	h.fd = dial(addr, port);
	return h;
}

/* Connect and enable the admin queue, and (when io) I/O queue 1 on a second connection. */
static int live(const char *addr, const char *port, struct host *adm, struct host *io, uint8_t dgst)
{
	struct nvme_sqe s = { 0 };

	/* The admin connection has done its ICReq already. */
	if (connect_q(adm, 0, NVMF_CNTLID_DYNAMIC, 31, 0, adm->subnqn, true, NULL) || enable(adm)) {
		fprintf(stderr, "nvmf_badhost: admin queue setup failed\n");
		return -1;
	}
	s.opc = NVME_OPC_SET_FEATURES;
	s.cdw10 = NVME_FEAT_NUMBER_OF_QUEUES;
	s.cdw11 = 0x00010001;
	if (admin(adm, &s, NULL)) {
		fprintf(stderr, "nvmf_badhost: Set Features Number of Queues failed\n");
		return -1;
	}
	if (!io)
		return 0;
	*io = host_new(addr, port, adm->subnqn, adm->hostnqn);
	memcpy(io->hostid, adm->hostid, 16);
	if (io->fd < 0 || icreq(io, dgst, 0) ||
	    connect_q(io, 1, adm->cntlid, 31, 0, adm->subnqn, true, NULL)) {
		fprintf(stderr, "nvmf_badhost: I/O queue setup failed\n");
		return -1;
	}
	return 0;
}

static void rw_sqe(struct nvme_sqe *s, uint8_t opc, uint16_t cid, uint64_t slba, uint32_t blocks)
{
	memset(s, 0, sizeof(*s));
	s->opc = opc;
	s->cid = cid;
	s->nsid = 1;
	s->cdw10 = (uint32_t)slba;
	s->cdw11 = (uint32_t)(slba >> 32);
	s->cdw12 = blocks - 1;
}

/* A 4 KiB write announced with a transport SGL: returns after the R2T (in *r2t). */
static int write_r2t(struct host *io, struct nvme_sqe *s, struct nvme_tcp_r2t_pdu *r2t)
{
	rw_sqe(s, NVME_OPC_WRITE, io->cid++, 8, 8);
	sgl_transport(s, 4096);
	if (send_capsule(io, s, NULL, 0))
		return -1;
	return report(io, wait_ms, r2t, NULL) == NVME_TCP_PDU_R2T ? 0 : -1;
}

/* ---- cases ------------------------------------------------------------------------ */

static void raw_hdr(struct nvme_tcp_common_hdr *ch, uint8_t type, uint8_t flags, uint8_t hlen,
		    uint8_t pdo, uint32_t plen)
{
	ch->pdu_type = type;
	ch->flags = flags;
	ch->hlen = hlen;
	ch->pdo = pdo;
	ch->plen = plen;
}

static int run_case(const char *addr, const char *port, const char *subnqn, const char *hostnqn,
		    const char *kase)
{
	struct host h = host_new(addr, port, subnqn, hostnqn), io = { .fd = -1 };
	static uint8_t buf[64 * 1024];
	static uint8_t data[16384];
	struct nvme_tcp_cmd_pdu *cmd = (struct nvme_tcp_cmd_pdu *)buf;
	struct nvme_tcp_r2t_pdu r2t;
	struct nvme_sqe s;
	size_t len;

	if (h.fd < 0) {
		fprintf(stderr, "nvmf_badhost: cannot connect to %s:%s\n", addr, port);
		return 1;
	}
	memset(data, 0xa5, sizeof(data));
	memset(&s, 0, sizeof(s));
	if (strcmp(kase, "flood") == 0) {
		/* 64 connections at once, saying nothing: how many did the target close? */
		int fds[64], open_n = 0, closed = 0;

		for (int i = 0; i < 64; i++)
			fds[i] = dial(addr, port);
		usleep(300000);
		for (int i = 0; i < 64; i++) {
			struct pollfd pfd = { .fd = fds[i], .events = POLLIN };
			char c;

			if (fds[i] < 0 ||
			    (poll(&pfd, 1, 0) == 1 && recv(fds[i], &c, 1, MSG_DONTWAIT) <= 0))
				closed++;
			else
				open_n++;
			if (fds[i] >= 0)
				close(fds[i]);
		}
		printf("flood open=%d closed=%d\n", open_n, closed);
		close(h.fd);
		return 0;
	}
	if (strcmp(kase, "capsule-before-icreq") == 0) {
		rw_sqe(&s, NVME_OPC_READ, 1, 0, 1);
		send_capsule(&h, &s, NULL, 0);
	} else if (strcmp(kase, "icreq-pfv") == 0) {
		icreq(&h, 0, 1);
	} else if (strcmp(kase, "half-icreq") == 0) {
		raw_hdr((void *)buf, NVME_TCP_PDU_ICREQ, 0, 128, 0, 128);
		send_all(h.fd, buf, 20);
	} else if (strcmp(kase, "silent") == 0) {
		/* connected, says nothing */
	} else if (icreq(&h, strstr(kase, "digest") ? 3 : 0, 0)) {
		return 1;
	} else if (strcmp(kase, "icreq-twice") == 0) {
		icreq(&h, 0, 1); /* pfv 1 so icreq() does not wait for an answer */
	} else if (strcmp(kase, "unknown-pdu") == 0) {
		raw_hdr((void *)buf, 0x0f, 0, 24, 0, 24);
		send_all(h.fd, buf, 24);
	} else if (strcmp(kase, "controller-pdu") == 0) {
		raw_hdr((void *)buf, NVME_TCP_PDU_R2T, 0, 24, 0, 24);
		send_all(h.fd, buf, 24);
	} else if (strcmp(kase, "bad-flags") == 0) {
		len = capsule(&h, buf, &s, NULL, 0);
		cmd->hdr.flags |= 0x40;
		send_all(h.fd, buf, len);
	} else if (strcmp(kase, "bad-hlen") == 0) {
		len = capsule(&h, buf, &s, NULL, 0);
		cmd->hdr.hlen = 70;
		send_all(h.fd, buf, len);
	} else if (strcmp(kase, "bad-pdo") == 0) {
		sgl_icd(&s, 512);
		len = capsule(&h, buf, &s, data, 512);
		cmd->hdr.pdo = 74; /* not a multiple of 4 */
		send_all(h.fd, buf, len);
	} else if (strcmp(kase, "bad-plen") == 0) {
		len = capsule(&h, buf, &s, NULL, 0);
		cmd->hdr.plen = 40; /* shorter than the header */
		send_all(h.fd, buf, len);
	} else if (strcmp(kase, "icd-too-big") == 0) {
		/* 8 KiB + 512 of in-capsule data: past IOCCSZ. */
		sgl_icd(&s, 8704);
		send_all(h.fd, buf, capsule(&h, buf, &s, data, 8704));
	} else if (strcmp(kase, "plen-huge") == 0) {
		len = capsule(&h, buf, &s, NULL, 0);
		cmd->hdr.pdo = 72;
		cmd->hdr.plen = 0x40000000;
		send_all(h.fd, buf, len);
	} else if (strcmp(kase, "io-before-connect") == 0) {
		rw_sqe(&s, NVME_OPC_READ, 7, 0, 1);
		sgl_transport(&s, 512);
		send_capsule(&h, &s, NULL, 0);
	} else if (strcmp(kase, "h2c-before-connect") == 0) {
		h2c(&h, 1, 0, 0, 512, data, 512, NVME_TCP_F_DATA_LAST, false);
	} else if (strcmp(kase, "connect-unknown-subsys") == 0) {
		connect_q(&h, 0, NVMF_CNTLID_DYNAMIC, 31, 0, "nqn.2024-01.io.leapio:nope", false,
			  NULL);
		return 0;
	} else if (strcmp(kase, "connect-bad-cntlid") == 0) {
		connect_q(&h, 0, 0x1234, 31, 0, subnqn, false, NULL);
		return 0;
	} else if (strcmp(kase, "connect") == 0) {
		/* The host's plain admin Connect (access-control tests). */
		connect_q(&h, 0, NVMF_CNTLID_DYNAMIC, 31, 0, subnqn, false, NULL);
		return 0;
	} else if (strcmp(kase, "hold") == 0) {
		/* Connect and hold the controller (no keep-alive) for the wait. */
		if (connect_q(&h, 0, NVMF_CNTLID_DYNAMIC, 31, 0, subnqn, false, NULL))
			return 1;
	} else if (strcmp(kase, "connect-io-foreign-cntlid") == 0) {
		/* An I/O queue naming a controller this host does not hold. */
		connect_q(&h, 1, 1, 31, 0, subnqn, false, NULL);
		return 0;
	} else if (strcmp(kase, "kato") == 0) {
		/* Keep-alive 1 s, then silence: the association must end. */
		if (connect_q(&h, 0, NVMF_CNTLID_DYNAMIC, 31, 1000, subnqn, false, NULL))
			return 1;
	} else {
		/* Everything below runs on a live controller. */
		if (live(addr, port, &h,
			 strstr(kase, "h2c") || strstr(kase, "io-") || strstr(kase, "ddgst") ? &io
											     : NULL,
			 strstr(kase, "digest") ? 3 : 0))
			return 1;
		if (strcmp(kase, "half-pdu") == 0) {
			rw_sqe(&s, NVME_OPC_READ, h.cid++, 0, 1);
			len = capsule(&h, buf, &s, NULL, 0);
			send_all(h.fd, buf, 30);
		} else if (strcmp(kase, "hdgst-digest") == 0) {
			rw_sqe(&s, NVME_OPC_KEEP_ALIVE, h.cid++, 0, 1);
			len = capsule(&h, buf, &s, NULL, 0);
			buf[sizeof(*cmd)] ^= 0xff; /* the header digest */
			send_all(h.fd, buf, len);
		} else if (strcmp(kase, "ddgst-digest") == 0) {
			/* An in-capsule write whose data digest is wrong, then a good one. */
			rw_sqe(&s, NVME_OPC_WRITE, io.cid++, 0, 1);
			sgl_icd(&s, 512);
			len = capsule(&io, buf, &s, data, 512);
			buf[len - 1] ^= 0xff;
			send_all(io.fd, buf, len);
			report(&io, wait_ms, NULL, NULL);
			rw_sqe(&s, NVME_OPC_WRITE, io.cid++, 0, 1);
			sgl_icd(&s, 512);
			send_capsule(&io, &s, data, 512);
			report(&io, wait_ms, NULL, NULL);
			return 0;
		} else if (strcmp(kase, "h2c-ddgst-digest") == 0) {
			if (write_r2t(&io, &s, &r2t))
				return 1;
			h2c(&io, s.cid, r2t.ttag, 0, 4096, data, 4096, NVME_TCP_F_DATA_LAST, true);
			report(&io, wait_ms, NULL, NULL);
			rw_sqe(&s, NVME_OPC_WRITE, io.cid++, 0, 1);
			sgl_icd(&s, 512);
			send_capsule(&io, &s, data, 512);
			report(&io, wait_ms, NULL, NULL);
			return 0;
		} else if (strcmp(kase, "h2c-no-r2t") == 0) {
			h2c(&io, 9, 5, 0, 512, data, 512, NVME_TCP_F_DATA_LAST, false);
			h.fd = io.fd;
		} else if (strcmp(kase, "h2c-cccid") == 0) {
			if (write_r2t(&io, &s, &r2t))
				return 1;
			h2c(&io, (uint16_t)(s.cid + 1), r2t.ttag, 0, 4096, data, 4096,
			    NVME_TCP_F_DATA_LAST, false);
			h.fd = io.fd;
		} else if (strcmp(kase, "h2c-offset") == 0) {
			if (write_r2t(&io, &s, &r2t))
				return 1;
			h2c(&io, s.cid, r2t.ttag, 1024, 1024, data, 1024, 0, false);
			h.fd = io.fd;
		} else if (strcmp(kase, "h2c-range") == 0) {
			if (write_r2t(&io, &s, &r2t))
				return 1;
			h2c(&io, s.cid, r2t.ttag, 0, 8192, data, 8192, NVME_TCP_F_DATA_LAST, false);
			h.fd = io.fd;
		} else if (strcmp(kase, "h2c-datal") == 0) {
			if (write_r2t(&io, &s, &r2t))
				return 1;
			h2c(&io, s.cid, r2t.ttag, 0, 2048, data, 4096, NVME_TCP_F_DATA_LAST, false);
			h.fd = io.fd;
		} else if (strcmp(kase, "h2c-finished") == 0) {
			if (write_r2t(&io, &s, &r2t))
				return 1;
			h2c(&io, s.cid, r2t.ttag, 0, 4096, data, 4096, NVME_TCP_F_DATA_LAST, false);
			report(&io, wait_ms, NULL, NULL);
			/* The same data again, for the command that just completed. */
			h2c(&io, s.cid, r2t.ttag, 0, 4096, data, 4096, NVME_TCP_F_DATA_LAST, false);
			h.fd = io.fd;
		} else if (strcmp(kase, "io-sq-overflow") == 0) {
			/* 33 reads announced on a 32-entry queue without reading answers. */
			for (int i = 0; i < 40; i++) {
				rw_sqe(&s, NVME_OPC_WRITE, io.cid++, 0, 1);
				sgl_transport(&s, 512);
				send_capsule(&io, &s, NULL, 0);
			}
			/* The R2Ts come first; the TermReq after them. */
			for (int i = 0; i < 40; i++)
				if (report(&io, wait_ms, NULL, NULL) != NVME_TCP_PDU_R2T)
					break;
			return 0;
		} else if (strcmp(kase, "io-property") == 0) {
			struct nvmf_property_set_cmd p = { 0 };

			p.opc = NVME_OPC_FABRIC;
			p.fctype = NVMF_FCTYPE_PROPERTY_GET;
			p.ofst = NVME_REG_VS;
			p.cid = io.cid++;
			sgl_transport((struct nvme_sqe *)&p, 0);
			send_capsule(&io, (struct nvme_sqe *)&p, NULL, 0);
			h.fd = io.fd;
		} else if (strcmp(kase, "admin-create-sq") == 0) {
			s.opc = NVME_OPC_CREATE_IO_SQ;
			s.cid = h.cid++;
			s.cdw10 = (31u << 16) | 2;
			s.cdw11 = 1 | (1u << 16);
			sgl_transport(&s, 0);
			send_capsule(&h, &s, NULL, 0);
		} else if (strcmp(kase, "aen-ns") == 0) {
			/* Namespace notices on, one AER out; the test adds a namespace. */
			uint32_t nsid;

			memset(&s, 0, sizeof(s));
			s.opc = NVME_OPC_SET_FEATURES;
			s.cdw10 = NVME_FEAT_ASYNC_EVENT_CONFIG;
			s.cdw11 = 1u << 8;
			if (admin(&h, &s, NULL))
				return 1;
			memset(&s, 0, sizeof(s));
			s.opc = NVME_OPC_ASYNC_EVENT_REQUEST;
			s.cid = h.cid++;
			sgl_transport(&s, 0);
			send_capsule(&h, &s, NULL, 0);
			printf("aer sent\n");
			report(&h, wait_ms, NULL, NULL);
			/* Changed Namespace List, clearing it (RAE 0). */
			memset(&s, 0, sizeof(s));
			s.opc = NVME_OPC_GET_LOG_PAGE;
			s.cid = h.cid++;
			s.cdw10 = NVME_LOG_CHANGED_NS_LIST | ((4096 / 4 - 1) << 16);
			sgl_transport(&s, 4096);
			send_capsule(&h, &s, NULL, 0);
			report(&h, wait_ms, NULL, NULL);
			memcpy(&nsid, c2h_data, 4);
			printf("changed nsid=%u\n", nsid);
			return 0;
		} else if (strcmp(kase, "io-dsm-long-sgl") == 0) {
			/* What Linux sends for a discard: 1 range, in a 4 KiB buffer (SGLS bit 18). */
			struct nvme_dsm_range *r = (struct nvme_dsm_range *)data;

			memset(data, 0, 4096);
			r->nlb = 8;
			r->slba = 0;
			memset(&s, 0, sizeof(s));
			s.opc = NVME_OPC_DATASET_MANAGEMENT;
			s.cid = io.cid++;
			s.nsid = 1;
			s.cdw10 = 0;	   /* NR 0: one range */
			s.cdw11 = 1u << 2; /* AD: deallocate */
			sgl_icd(&s, 4096);
			send_capsule(&io, &s, data, 4096);
			h.fd = io.fd;
		} else if (strncmp(kase, "io-good", 7) == 0) {
			/* A write through R2T and its read back, checked (the control case). */
			if (write_r2t(&io, &s, &r2t))
				return 1;
			h2c(&io, s.cid, r2t.ttag, 0, 4096, data, 4096, NVME_TCP_F_DATA_LAST, false);
			report(&io, wait_ms, NULL, NULL);
			rw_sqe(&s, NVME_OPC_READ, io.cid++, 8, 8);
			sgl_transport(&s, 4096);
			send_capsule(&io, &s, NULL, 0);
			h.fd = io.fd;
		} else {
			fprintf(stderr, "nvmf_badhost: unknown case '%s'\n", kase);
			return 2;
		}
	}
	report(&h, wait_ms, NULL, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1;

	if (argc > 2 && strcmp(argv[1], "-w") == 0) {
		wait_ms = (int)strtol(argv[2], NULL, 10);
		i = 3;
	}
	if (argc - i != 5) {
		fprintf(stderr, "usage: nvmf_badhost [-w MS] ADDR PORT SUBNQN HOSTNQN CASE\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	return run_case(argv[i], argv[i + 1], argv[i + 2], argv[i + 3], argv[i + 4]);
}
