// SPDX-License-Identifier: BSD-3-Clause
/*
 * The NVMe/TCP host's controller layer and blocking API against a small
 * memory-backed NVMe/TCP target that runs in threads inside this test (one
 * per connection, blocking I/O, whole PDUs). The target is deliberately
 * simple but speaks the real protocol: ICResp, Connect, Property Get/Set
 * with a CSTS.RDY delay, Identify, Number of Queues, Keep Alive, the
 * discovery log, reads by C2HData (with or without SUCCESS), writes in the
 * capsule or by R2T/H2CData, write zeroes, DSM, digests. The cases check the
 * bring-up sequence, clamping, failures with their reasons, data integrity
 * across queues, and print throughput numbers (not asserted).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/crc32c.h"
#include "leapio/log.h"
#include "leapio/nvmf_host.h"
#include "tap.h"

static void log_quiet(enum leap_log_level level, const char *subsys, const char *fmt, va_list ap,
		      void *ctx)
{
}

/* ---- the in-test target ------------------------------------------------------ */

#define TGT_NQN	   "nqn.2024-01.io.leap:tgt"
#define TGT_LBA	   512u
#define TGT_MEM	   (64u << 20)
#define TGT_R2T	   65536u /* bytes per R2T */
#define TGT_C2H	   32768u /* bytes per C2HData */
#define TGT_MAXPDU (256u << 10)

struct tgt_cfg {
	bool allow_hdgst, allow_ddgst;
	bool success_flag; /* reads complete with C2HData SUCCESS instead of a CapsuleResp */
	bool silent;	   /* accept, then never answer (a forwarded port with nobody behind) */
	uint32_t maxh2cdata;
	uint32_t ioccsz;
	uint16_t max_queues; /* granted I/O queues */
	uint16_t mqes;	     /* CAP.MQES, 0's based */
	uint16_t maxcmd;
	int rdy_delay; /* CSTS reads with RDY 0 after CC.EN */
	const char *allow_host;
};

struct tgt {
	struct tgt_cfg cfg;
	int lfd;
	uint16_t port;
	pthread_t acceptor;
	uint8_t *mem;
	_Atomic int stop;
	_Atomic int keep_alives;
	_Atomic int shutdowns;
	_Atomic int connects;
	_Atomic uint32_t kato;
	_Atomic uint32_t cc;
	_Atomic int csts_reads;
	_Atomic int dsm_ranges;
	pthread_mutex_t lock;
	int conn_fds[64];
	pthread_t conn_threads[64];
	int nconns;
};

struct pend_write {
	bool used;
	uint16_t cid;
	uint64_t off; /* byte offset in mem */
	uint32_t len;
	uint32_t got;
	uint32_t r2t_end;
};

/*
 * Batched like a real target: read whatever the socket has, handle every
 * whole PDU, collect the answers, write them in one go before blocking.
 */
#define TGT_INBUF  (1u << 20)
#define TGT_OUTBUF (4u << 20)

struct conn {
	struct tgt *t;
	int fd;
	bool hd, dd;
	uint16_t qid;
	uint8_t *in;
	uint32_t in_rd, in_wr;
	uint8_t *out;
	uint32_t out_len;
	struct pend_write pw[256];
};

static int write_full(int fd, const void *buf, size_t n)
{
	size_t off = 0;

	while (off < n) {
		ssize_t r = send(fd, (const uint8_t *)buf + off, n - off, MSG_NOSIGNAL);

		if (r <= 0)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

static int c_flush(struct conn *c)
{
	int rc = c->out_len ? write_full(c->fd, c->out, c->out_len) : 0;

	c->out_len = 0;
	return rc;
}

/* Queue header (with digest) and optional data (with digest); c_flush() sends. */
static int c_send(struct conn *c, void *hdr, uint32_t hlen, const void *data, uint32_t dlen)
{
	struct nvme_tcp_common_hdr *ch = hdr;
	uint32_t hd = c->hd ? 4 : 0, dd = (c->dd && dlen) ? 4 : 0, off;
	uint8_t *tx;

	if (c->out_len + hlen + 8 + dlen > TGT_OUTBUF && c_flush(c))
		return -1;
	tx = c->out + c->out_len;
	ch->hlen = (uint8_t)hlen;
	ch->flags |= (hd ? NVME_TCP_F_HDGST : 0) | (dd ? NVME_TCP_F_DDGST : 0);
	ch->pdo = dlen ? (uint8_t)(hlen + hd) : 0;
	ch->plen = hlen + hd + dlen + dd;
	memcpy(tx, hdr, hlen);
	off = hlen;
	if (hd) {
		uint32_t crc = leap_crc32c(0, tx, hlen);

		memcpy(tx + off, &crc, 4);
		off += 4;
	}
	if (dlen) {
		memcpy(tx + off, data, dlen);
		off += dlen;
	}
	if (dd) {
		uint32_t crc = leap_crc32c(0, data, dlen);

		memcpy(tx + off, &crc, 4);
		off += 4;
	}
	c->out_len += off;
	return 0;
}

/* The next whole PDU in the input buffer; flushes answers before it blocks to read. */
static uint8_t *c_next_pdu(struct conn *c)
{
	for (;;) {
		uint32_t avail = c->in_wr - c->in_rd;
		struct nvme_tcp_common_hdr ch;
		ssize_t r;

		if (avail >= 8) {
			memcpy(&ch, c->in + c->in_rd, 8);
			if (ch.plen < 8 || ch.plen > TGT_MAXPDU)
				return NULL;
			if (avail >= ch.plen) {
				uint8_t *p = c->in + c->in_rd;

				c->in_rd += ch.plen;
				return p;
			}
		}
		if (c->in_rd) {
			memmove(c->in, c->in + c->in_rd, avail);
			c->in_wr = avail;
			c->in_rd = 0;
		}
		r = recv(c->fd, c->in + c->in_wr, TGT_INBUF - c->in_wr, MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (c_flush(c))
				return NULL;
			r = recv(c->fd, c->in + c->in_wr, TGT_INBUF - c->in_wr, 0);
		}
		if (r <= 0)
			return NULL;
		c->in_wr += (uint32_t)r;
	}
}

static int c_rsp(struct conn *c, uint16_t cid, uint16_t status, uint32_t dw0, uint32_t dw1)
{
	struct nvme_tcp_rsp_pdu r;

	memset(&r, 0, sizeof(r));
	r.hdr.pdu_type = NVME_TCP_PDU_CAPSULE_RESP;
	r.cqe.cid = cid;
	r.cqe.dw0 = dw0;
	r.cqe.dw1 = dw1;
	r.cqe.sqid = c->qid;
	r.cqe.status = (uint16_t)(status << 1);
	return c_send(c, &r, sizeof(r), NULL, 0);
}

/* Data to the host in C2HData PDUs, then a CapsuleResp unless SUCCESS is used. */
static int c_read_data(struct conn *c, uint16_t cid, const uint8_t *data, uint32_t len)
{
	bool success = c->t->cfg.success_flag;

	for (uint32_t off = 0; off < len;) {
		struct nvme_tcp_c2h_data_pdu d;
		uint32_t n = len - off < TGT_C2H ? len - off : TGT_C2H;

		memset(&d, 0, sizeof(d));
		d.hdr.pdu_type = NVME_TCP_PDU_C2H_DATA;
		if (off + n == len)
			d.hdr.flags =
			    NVME_TCP_F_DATA_LAST | (success ? NVME_TCP_F_DATA_SUCCESS : 0);
		d.cccid = cid;
		d.datao = off;
		d.datal = n;
		if (c_send(c, &d, sizeof(d), data + off, n))
			return -1;
		off += n;
	}
	return success ? 0 : c_rsp(c, cid, 0, 0, 0);
}

static int c_r2t(struct conn *c, struct pend_write *w, uint16_t ttag)
{
	struct nvme_tcp_r2t_pdu r;
	uint32_t n = w->len - w->got < TGT_R2T ? w->len - w->got : TGT_R2T;

	memset(&r, 0, sizeof(r));
	r.hdr.pdu_type = NVME_TCP_PDU_R2T;
	r.cccid = w->cid;
	r.ttag = ttag;
	r.r2to = w->got;
	r.r2tl = n;
	w->r2t_end = w->got + n;
	return c_send(c, &r, sizeof(r), NULL, 0);
}

static void build_id_ctrl(struct tgt *t, struct nvme_id_ctrl *id, bool discovery)
{
	memset(id, 0, sizeof(*id));
	memcpy(id->sn, "LEAPTEST0001        ", 20);
	memcpy(id->mn, "leapio test target                      ", 40);
	memcpy(id->fr, "1.0     ", 8);
	id->mdts = 5; /* 32 pages: 128 KiB */
	id->cntlid = 1;
	id->ver = NVME_VERSION(1, 3, 0);
	id->cntrltype = discovery ? 2 : 1;
	id->sqes = 0x66;
	id->cqes = 0x44;
	id->maxcmd = t->cfg.maxcmd;
	id->nn = 1;
	id->oncs = NVME_ONCS_DSM | NVME_ONCS_WRITE_ZEROES;
	id->sgls = 1 | 1u << 2 | 1u << 20; /* SGLs, keyed..., offset (ICD) */
	snprintf(id->subnqn, sizeof(id->subnqn), "%s", discovery ? NVME_DISCOVERY_NQN : TGT_NQN);
	id->ioccsz = t->cfg.ioccsz;
	id->iorcsz = 1;
	id->icdoff = 0;
}

static void build_disc_log(struct tgt *t, uint8_t *buf, size_t len)
{
	struct nvmf_disc_log_hdr *h = (struct nvmf_disc_log_hdr *)buf;
	struct nvmf_disc_log_entry *e = (struct nvmf_disc_log_entry *)(buf + 1024);

	memset(buf, 0, len);
	h->genctr = 7;
	h->numrec = 2;
	for (int i = 0; i < 2; i++) {
		e[i].trtype = NVMF_TRTYPE_TCP;
		e[i].adrfam = NVMF_ADRFAM_IPV4;
		e[i].subtype = i ? NVMF_SUBTYPE_DISCOVERY_CURRENT : NVMF_SUBTYPE_NVME;
		e[i].portid = 1;
		e[i].cntlid = 0xffff;
		e[i].asqsz = 32;
		snprintf(e[i].trsvcid, sizeof(e[i].trsvcid), "%u", t->port);
		snprintf(e[i].traddr, sizeof(e[i].traddr), "127.0.0.1");
		snprintf(e[i].subnqn, sizeof(e[i].subnqn), "%s", i ? NVME_DISCOVERY_NQN : TGT_NQN);
	}
}

static int handle_fabrics(struct conn *c, const struct nvme_sqe *sqe, const uint8_t *data,
			  uint32_t dlen)
{
	const struct nvmf_capsule_cmd *fc = (const void *)sqe;
	struct tgt *t = c->t;

	switch (fc->fctype) {
	case NVMF_FCTYPE_CONNECT: {
		const struct nvmf_connect_cmd *cc = (const void *)sqe;
		const struct nvmf_connect_data *cd = (const void *)data;

		if (dlen != sizeof(*cd))
			return c_rsp(c, sqe->cid, NVME_STATUS(1, 0x82), 0, 0);
		if (t->cfg.allow_host && strcmp(cd->hostnqn, t->cfg.allow_host))
			return c_rsp(c, sqe->cid, NVME_STATUS(1, 0x84), 0, 0);
		if (strcmp(cd->subnqn, TGT_NQN) && strcmp(cd->subnqn, NVME_DISCOVERY_NQN))
			return c_rsp(c, sqe->cid, NVME_STATUS(1, 0x82), 256 | 1u << 16, 0);
		if (cc->qid && cd->cntlid != 1)
			return c_rsp(c, sqe->cid, NVME_STATUS(1, 0x82), 16 | 1u << 16, 0);
		c->qid = cc->qid;
		if (cc->qid == 0)
			atomic_store(&t->kato, cc->kato);
		atomic_fetch_add(&t->connects, 1);
		return c_rsp(c, sqe->cid, 0, 1, 0);
	}
	case NVMF_FCTYPE_PROPERTY_GET: {
		const struct nvmf_property_get_cmd *pg = (const void *)sqe;
		uint64_t v = 0;
		uint32_t cc = atomic_load(&t->cc);

		if (pg->ofst == NVMF_PROP_CAP)
			v = t->cfg.mqes | NVME_CAP_CQR | 1ull << NVME_CAP_TO_SHIFT |
			    NVME_CAP_CSS_NVM;
		else if (pg->ofst == NVMF_PROP_VS)
			v = NVME_VERSION(1, 3, 0);
		else if (pg->ofst == NVMF_PROP_CC)
			v = cc;
		else if (pg->ofst == NVMF_PROP_CSTS) {
			if ((cc & NVME_CC_EN) &&
			    atomic_fetch_add(&t->csts_reads, 1) >= t->cfg.rdy_delay)
				v |= NVME_CSTS_RDY;
			if (cc & NVME_CC_SHN_MASK)
				v |= NVME_CSTS_SHST_COMPLETE;
		}
		return c_rsp(c, sqe->cid, 0, (uint32_t)v, (uint32_t)(v >> 32));
	}
	case NVMF_FCTYPE_PROPERTY_SET: {
		const struct nvmf_property_set_cmd *ps = (const void *)sqe;

		if (ps->ofst == NVMF_PROP_CC) {
			atomic_store(&t->cc, (uint32_t)ps->value);
			if (ps->value & NVME_CC_SHN_MASK)
				atomic_fetch_add(&t->shutdowns, 1);
		}
		return c_rsp(c, sqe->cid, 0, 0, 0);
	}
	default:
		return c_rsp(c, sqe->cid, NVME_STATUS(0, NVME_SC_INVALID_OPCODE), 0, 0);
	}
}

static int handle_cmd(struct conn *c, const struct nvme_sqe *sqe, const uint8_t *data,
		      uint32_t dlen, uint32_t sgl_len)
{
	struct tgt *t = c->t;
	uint64_t slba = sqe->cdw10 | (uint64_t)sqe->cdw11 << 32;
	uint32_t nlb = (sqe->cdw12 & 0xffff) + 1;
	uint64_t off = slba * TGT_LBA, len = (uint64_t)nlb * TGT_LBA;

	if (sqe->opc == NVME_OPC_FABRIC)
		return handle_fabrics(c, sqe, data, dlen);
	if (c->qid == 0) {
		static _Thread_local uint8_t page[4096 * 2];

		switch (sqe->opc) {
		case NVME_OPC_IDENTIFY:
			if ((sqe->cdw10 & 0xff) == NVME_CNS_CTRL) {
				build_id_ctrl(t, (struct nvme_id_ctrl *)page, false);
			} else if ((sqe->cdw10 & 0xff) == NVME_CNS_NS && sqe->nsid == 1) {
				struct nvme_id_ns *ns = (struct nvme_id_ns *)page;

				memset(ns, 0, sizeof(*ns));
				ns->nsze = ns->ncap = TGT_MEM / TGT_LBA;
				ns->lbaf[0].lbads = 9;
			} else {
				return c_rsp(c, sqe->cid, NVME_STATUS(0, NVME_SC_INVALID_FIELD), 0,
					     0);
			}
			return c_read_data(c, sqe->cid, page, sgl_len);
		case NVME_OPC_SET_FEATURES: {
			uint32_t want = (sqe->cdw11 & 0xffff) + 1;
			uint32_t g = want < t->cfg.max_queues ? want : t->cfg.max_queues;

			if ((sqe->cdw10 & 0xff) != NVME_FEAT_NUMBER_OF_QUEUES)
				break;
			return c_rsp(c, sqe->cid, 0, (g - 1) | (g - 1) << 16, 0);
		}
		case NVME_OPC_KEEP_ALIVE:
			atomic_fetch_add(&t->keep_alives, 1);
			return c_rsp(c, sqe->cid, 0, 0, 0);
		case NVME_OPC_GET_LOG_PAGE: {
			uint64_t lo = sqe->cdw12 | (uint64_t)sqe->cdw13 << 32;

			if ((sqe->cdw10 & 0xff) != NVMF_LOG_DISCOVERY || lo + sgl_len > 3 * 1024)
				break;
			build_disc_log(t, page, sizeof(page));
			return c_read_data(c, sqe->cid, page + lo, sgl_len);
		}
		}
		return c_rsp(c, sqe->cid, NVME_STATUS(0, NVME_SC_INVALID_OPCODE), 0, 0);
	}
	switch (sqe->opc) {
	case NVME_OPC_READ:
		if (off + len > TGT_MEM || sgl_len != len)
			return c_rsp(c, sqe->cid, NVME_STATUS(0, NVME_SC_LBA_OUT_OF_RANGE), 0, 0);
		return c_read_data(c, sqe->cid, t->mem + off, (uint32_t)len);
	case NVME_OPC_WRITE:
		if (off + len > TGT_MEM || sgl_len != len)
			return c_rsp(c, sqe->cid, NVME_STATUS(0, NVME_SC_LBA_OUT_OF_RANGE), 0, 0);
		if (dlen) { /* in-capsule */
			memcpy(t->mem + off, data, dlen);
			return c_rsp(c, sqe->cid, 0, 0, 0);
		}
		for (uint16_t i = 0; i < 256; i++) {
			struct pend_write *w = &c->pw[i];

			if (w->used)
				continue;
			*w = (struct pend_write){
				.used = true, .cid = sqe->cid, .off = off, .len = (uint32_t)len
			};
			return c_r2t(c, w, i);
		}
		return -1;
	case NVME_OPC_FLUSH:
		return c_rsp(c, sqe->cid, 0, 0, 0);
	case NVME_OPC_WRITE_ZEROES:
		if (off + len > TGT_MEM)
			return c_rsp(c, sqe->cid, NVME_STATUS(0, NVME_SC_LBA_OUT_OF_RANGE), 0, 0);
		memset(t->mem + off, 0, len);
		return c_rsp(c, sqe->cid, 0, 0, 0);
	case NVME_OPC_DATASET_MANAGEMENT:
		atomic_fetch_add(&t->dsm_ranges, (int)(dlen / 16));
		return c_rsp(c, sqe->cid, 0, 0, 0);
	}
	return c_rsp(c, sqe->cid, NVME_STATUS(0, NVME_SC_INVALID_OPCODE), 0, 0);
}

static int handle_h2c(struct conn *c, const uint8_t *p, const uint8_t *data)
{
	struct nvme_tcp_h2c_data_pdu h;
	struct pend_write *w;

	memcpy(&h, p, sizeof(h));
	if (h.ttag >= 256 || !c->pw[h.ttag].used || c->pw[h.ttag].cid != h.cccid)
		return -1;
	w = &c->pw[h.ttag];
	if (h.datao != w->got || h.datao + h.datal > w->r2t_end)
		return -1;
	memcpy(c->t->mem + w->off + h.datao, data, h.datal);
	w->got += h.datal;
	if (w->got < w->r2t_end)
		return 0;
	if (!(h.hdr.flags & NVME_TCP_F_DATA_LAST))
		return -1;
	if (w->got < w->len)
		return c_r2t(c, w, h.ttag);
	w->used = false;
	return c_rsp(c, w->cid, 0, 0, 0);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct tgt *t = c->t;

	c->in = malloc(TGT_INBUF);
	c->out = malloc(TGT_OUTBUF);
	for (;;) {
		struct nvme_tcp_common_hdr ch;
		uint32_t hd, dd, dlen = 0;
		const uint8_t *data = NULL;
		uint8_t *rx = c_next_pdu(c);

		if (!rx)
			break;
		memcpy(&ch, rx, 8);
		if (ch.pdu_type == NVME_TCP_PDU_ICREQ) {
			struct nvme_tcp_icreq q;
			struct nvme_tcp_icresp r;

			memcpy(&q, rx, sizeof(q));
			if (t->cfg.silent)
				continue;
			memset(&r, 0, sizeof(r));
			r.hdr.pdu_type = NVME_TCP_PDU_ICRESP;
			r.hdr.hlen = 128;
			r.hdr.plen = 128;
			r.dgst = (uint8_t)(q.dgst & ((t->cfg.allow_hdgst ? 1 : 0) |
						     (t->cfg.allow_ddgst ? 2 : 0)));
			r.maxh2cdata = t->cfg.maxh2cdata;
			c->hd = r.dgst & 1;
			c->dd = r.dgst & 2;
			if (write_full(c->fd, &r, sizeof(r)))
				break;
			continue;
		}
		if (ch.pdu_type == NVME_TCP_PDU_H2C_TERM_REQ)
			break;
		hd = c->hd ? 4 : 0;
		if (hd) {
			uint32_t got;

			memcpy(&got, rx + ch.hlen, 4);
			if (got != leap_crc32c(0, rx, ch.hlen))
				break;
		}
		if (ch.pdo) {
			dd = (ch.flags & NVME_TCP_F_DDGST) ? 4 : 0;
			dlen = ch.plen - ch.pdo - dd;
			data = rx + ch.pdo;
			if (dd) {
				uint32_t got;

				memcpy(&got, data + dlen, 4);
				if (got != leap_crc32c(0, data, dlen))
					break;
			}
		}
		if (ch.pdu_type == NVME_TCP_PDU_CAPSULE_CMD) {
			struct nvme_sqe sqe;
			struct nvme_sgl_desc sgl;

			memcpy(&sqe, rx + 8, sizeof(sqe));
			memcpy(&sgl, rx + 8 + 24, sizeof(sgl));
			if (handle_cmd(c, &sqe, data, dlen, sgl.length))
				break;
		} else if (ch.pdu_type == NVME_TCP_PDU_H2C_DATA) {
			if (handle_h2c(c, rx, data))
				break;
		} else {
			break;
		}
	}
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
	return NULL;
}

static void *acceptor_main(void *arg)
{
	struct tgt *t = arg;

	while (!atomic_load(&t->stop)) {
		struct pollfd p = { .fd = t->lfd, .events = POLLIN };
		struct conn *c;
		int fd, one = 1;

		if (poll(&p, 1, 20) <= 0)
			continue;
		fd = accept(t->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		c->t = t;
		c->fd = fd;
		pthread_mutex_lock(&t->lock);
		if (t->nconns < 64) {
			t->conn_fds[t->nconns] = fd;
			pthread_create(&t->conn_threads[t->nconns], NULL, conn_main, c);
			t->nconns++;
		} else {
			close(fd);
			free(c);
		}
		pthread_mutex_unlock(&t->lock);
	}
	return NULL;
}

static void tgt_default_cfg(struct tgt_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->allow_hdgst = cfg->allow_ddgst = true;
	cfg->maxh2cdata = 32768;
	cfg->ioccsz = (64 + 8192) / 16;
	cfg->max_queues = 4;
	cfg->mqes = 63;
	cfg->maxcmd = 64;
	cfg->rdy_delay = 2;
}

static struct tgt *tgt_start(const struct tgt_cfg *cfg)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct tgt *t = calloc(1, sizeof(*t));

	t->cfg = *cfg;
	t->mem = calloc(1, TGT_MEM);
	pthread_mutex_init(&t->lock, NULL);
	t->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(t->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(t->lfd, 64) ||
	    getsockname(t->lfd, (struct sockaddr *)&sa, &sl))
		return NULL;
	t->port = ntohs(sa.sin_port);
	pthread_create(&t->acceptor, NULL, acceptor_main, t);
	return t;
}

static void tgt_stop(struct tgt *t)
{
	if (!t)
		return;
	atomic_store(&t->stop, 1);
	pthread_join(t->acceptor, NULL);
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < t->nconns; i++)
		shutdown(t->conn_fds[i], SHUT_RDWR);
	pthread_mutex_unlock(&t->lock);
	for (int i = 0; i < t->nconns; i++)
		pthread_join(t->conn_threads[i], NULL);
	close(t->lfd);
	free(t->mem);
	free(t);
}

static void trid_for(struct leap_nvmf_trid *trid, const struct tgt *t, const char *nqn,
		     const char *extra)
{
	char s[512], err[256];

	snprintf(s, sizeof(s), "trtype:tcp traddr:127.0.0.1 trsvcid:%u subnqn:%s %s", t->port, nqn,
		 extra ? extra : "");
	T_ASSERT_EQ(leap_nvmf_trid_parse(trid, s, err, sizeof(err)), 0);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- cases --------------------------------------------------------------------- */

static void test_connect_identify_ns_info(void)
{
	struct leap_nvmf_trid trid;
	struct leap_nvmf_ctrl *ctrl;
	struct tgt_cfg cfg;
	struct tgt *t;
	char err[256] = "";
	uint64_t nlb;
	uint32_t lba;

	tgt_default_cfg(&cfg);
	t = tgt_start(&cfg);
	T_ASSERT(t);
	trid_for(&trid, t, TGT_NQN, NULL);
	T_ASSERT_EQ(leap_nvmf_host_connect(&trid, 2, 32, 5000, &ctrl, err, sizeof(err)), 0);
	T_ASSERT_EQ(leap_nvmf_ctrl_poll(ctrl), 0);
	T_ASSERT_EQ(leap_nvmf_ctrl_cntlid(ctrl), 1);
	T_ASSERT_EQ(leap_nvmf_ctrl_vs(ctrl), NVME_VERSION(1, 3, 0));
	T_ASSERT_EQ(NVME_CAP_MQES(leap_nvmf_ctrl_cap(ctrl)), 63);
	T_ASSERT(!memcmp(leap_nvmf_ctrl_id(ctrl)->sn, "LEAPTEST0001", 12));
	T_ASSERT_STR_EQ(leap_nvmf_ctrl_id(ctrl)->subnqn, TGT_NQN);
	T_ASSERT_EQ(leap_nvmf_ctrl_max_xfer(ctrl), 128 * 1024);
	T_ASSERT_EQ(leap_nvmf_ctrl_nr_io_queues(ctrl), 2);
	T_ASSERT_EQ(leap_nvmf_ctrl_io_qdepth(ctrl), 32);
	for (unsigned int i = 0; i < 2; i++) {
		struct leap_nvmf_qpair *qp = leap_nvmf_ctrl_io_qpair(ctrl, i);

		T_ASSERT(qp);
		T_ASSERT_EQ(leap_nvmf_qpair_state(qp), LEAP_NVMF_QP_LIVE);
		T_ASSERT_EQ(leap_nvmf_qpair_qid(qp), i + 1);
		T_ASSERT_EQ(leap_nvmf_qpair_qdepth(qp), 32);
	}
	T_ASSERT(leap_nvmf_ctrl_io_qpair(ctrl, 2) == NULL);
	/* The RDY delay made the bring-up read CSTS more than once. */
	T_ASSERT(atomic_load(&t->csts_reads) >= 3);
	T_ASSERT_EQ(atomic_load(&t->cc), NVME_CC_EN | 6u << 16 | 4u << 20);
	T_ASSERT_EQ(atomic_load(&t->connects), 3);
	T_ASSERT_EQ(leap_nvmf_host_ns_info(ctrl, 1, &nlb, &lba, 2000), 0);
	T_ASSERT_EQ(nlb, TGT_MEM / 512);
	T_ASSERT_EQ(lba, 512);
	T_ASSERT_EQ(leap_nvmf_host_ns_info(ctrl, 2, &nlb, &lba, 2000), -EIO);
	/* The host NQN defaulted to the uuid form of a random host ID. */
	T_ASSERT(!strncmp(leap_nvmf_ctrl_trid(ctrl)->hostnqn, NVMF_NQN_UUID_PREFIX,
			  strlen(NVMF_NQN_UUID_PREFIX)));
	leap_nvmf_host_disconnect(ctrl, 1000);
	T_ASSERT_EQ(atomic_load(&t->shutdowns), 1);
	tgt_stop(t);
}

static void test_queue_clamps(void)
{
	struct leap_nvmf_trid trid;
	struct leap_nvmf_ctrl *ctrl;
	struct tgt_cfg cfg;
	struct tgt *t;
	char err[256] = "";

	tgt_default_cfg(&cfg);
	cfg.max_queues = 3;
	cfg.mqes = 1023;
	cfg.maxcmd = 100;
	t = tgt_start(&cfg);
	trid_for(&trid, t, TGT_NQN, NULL);
	T_ASSERT_EQ(leap_nvmf_host_connect(&trid, 8, 512, 5000, &ctrl, err, sizeof(err)), 0);
	/* Granted 3 of 8 queues; depth limited by MAXCMD 100 -> 99. */
	T_ASSERT_EQ(leap_nvmf_ctrl_nr_io_queues(ctrl), 3);
	T_ASSERT_EQ(leap_nvmf_ctrl_io_qdepth(ctrl), 99);
	leap_nvmf_ctrl_destroy(ctrl);
	tgt_stop(t);
}

static void test_connect_failures_say_why(void)
{
	struct leap_nvmf_trid trid;
	struct leap_nvmf_ctrl *ctrl = NULL;
	struct tgt_cfg cfg;
	struct tgt *t;
	char err[256] = "";
	double t0;
	uint16_t port;

	/* Host not allowed: Connect status 184h. */
	tgt_default_cfg(&cfg);
	cfg.allow_host = "nqn.2024-01.io.leap:someone-else";
	t = tgt_start(&cfg);
	trid_for(&trid, t, TGT_NQN, "hostnqn:nqn.2024-01.io.leap:me");
	T_ASSERT_EQ(leap_nvmf_host_connect(&trid, 1, 8, 5000, &ctrl, err, sizeof(err)), -EACCES);
	T_ASSERT(ctrl == NULL);
	T_ASSERT(strstr(err, "0x184"));
	T_ASSERT(strstr(err, "invalid host"));
	port = t->port;
	tgt_stop(t);

	/* Nobody listening any more. */
	trid.trsvcid[0] = '\0';
	snprintf(trid.trsvcid, sizeof(trid.trsvcid), "%u", port);
	T_ASSERT_EQ(leap_nvmf_host_connect(&trid, 1, 8, 5000, &ctrl, err, sizeof(err)),
		    -ECONNREFUSED);
	T_ASSERT(strstr(err, "refused"));

	/* Accepts but never answers the ICReq: a timeout that names the step. */
	tgt_default_cfg(&cfg);
	cfg.silent = true;
	t = tgt_start(&cfg);
	trid_for(&trid, t, TGT_NQN, NULL);
	t0 = now_s();
	T_ASSERT_EQ(leap_nvmf_host_connect(&trid, 1, 8, 300, &ctrl, err, sizeof(err)), -ETIMEDOUT);
	T_ASSERT(now_s() - t0 < 2);
	T_ASSERT(strstr(err, "timed out after 300 ms while connecting the admin queue"));
	tgt_stop(t);

	/* Wrong subsystem NQN: invalid parameter, pointing at the NQN in the data. */
	tgt_default_cfg(&cfg);
	t = tgt_start(&cfg);
	trid_for(&trid, t, "nqn.2024-01.io.leap:nope", NULL);
	T_ASSERT_EQ(leap_nvmf_host_connect(&trid, 1, 8, 5000, &ctrl, err, sizeof(err)), -EINVAL);
	T_ASSERT(strstr(err, "byte 256 of the Connect data"));
	tgt_stop(t);
}

static void test_discovery_log(void)
{
	struct nvmf_disc_log_hdr *log = NULL;
	struct nvmf_disc_log_entry *e;
	struct leap_nvmf_trid trid;
	struct tgt_cfg cfg;
	struct tgt *t;
	char err[256] = "";
	size_t len = 0;

	tgt_default_cfg(&cfg);
	t = tgt_start(&cfg);
	trid_for(&trid, t, NVME_DISCOVERY_NQN, NULL);
	T_ASSERT_EQ(leap_nvmf_host_discover(&trid, 5000, &log, &len, err, sizeof(err)), 0);
	T_ASSERT(log);
	T_ASSERT_EQ(len, 3 * 1024);
	T_ASSERT_EQ(log->genctr, 7);
	T_ASSERT_EQ(log->numrec, 2);
	e = (struct nvmf_disc_log_entry *)(log + 1);
	T_ASSERT_EQ(e[0].trtype, NVMF_TRTYPE_TCP);
	T_ASSERT_EQ(e[0].subtype, NVMF_SUBTYPE_NVME);
	T_ASSERT_STR_EQ(e[0].subnqn, TGT_NQN);
	T_ASSERT_STR_EQ(e[0].traddr, "127.0.0.1");
	T_ASSERT_EQ(e[1].subtype, NVMF_SUBTYPE_DISCOVERY_CURRENT);
	T_ASSERT_EQ(atomic_load(&t->shutdowns), 1);
	free(log);
	tgt_stop(t);
}

static void test_nonblocking_bringup_and_keep_alive(void)
{
	struct leap_nvmf_ctrl_opts opts;
	struct leap_nvmf_trid trid;
	struct leap_nvmf_ctrl *ctrl;
	struct tgt_cfg cfg;
	struct tgt *t;
	double t0, worst = 0;
	int rc, polls = 0;

	tgt_default_cfg(&cfg);
	cfg.rdy_delay = 5;
	t = tgt_start(&cfg);
	trid_for(&trid, t, TGT_NQN, NULL);
	leap_nvmf_ctrl_opts_init(&opts);
	opts.nr_io_queues = 2;
	opts.io_qdepth = 16;
	opts.kato_ms = 200;
	T_ASSERT_EQ(leap_nvmf_ctrl_create(&trid, &opts, &ctrl), 0);
	t0 = now_s();
	/* A reactor's view: spin on the poll function; it must never block. */
	do {
		double a = now_s();

		rc = leap_nvmf_ctrl_poll(ctrl);
		worst = LEAP_MAX(worst, now_s() - a);
		polls++;
	} while (rc == -EAGAIN && now_s() - t0 < 5);
	T_ASSERT_EQ(rc, 0);
	T_ASSERT(polls > 10);
	printf("# bring-up: %d polls, %.2f ms, longest poll %.3f ms\n", polls, (now_s() - t0) * 1e3,
	       worst * 1e3);
	T_ASSERT(worst < 0.2); /* generous: a busy shared machine, not blocking */
	T_ASSERT_EQ(atomic_load(&t->kato), 200);
	/* Keep alive every KATO/2 while the reactor polls. */
	t0 = now_s();
	while (now_s() - t0 < 0.65)
		T_ASSERT_EQ(leap_nvmf_ctrl_poll(ctrl), 0);
	T_ASSERT(atomic_load(&t->keep_alives) >= 2);
	T_ASSERT(atomic_load(&t->keep_alives) <= 7);
	leap_nvmf_ctrl_destroy(ctrl);
	tgt_stop(t);
}

/* ---- data path across queues ---------------------------------------------------- */

struct io {
	struct leap_nvmf_qpair *qp;
	int done;
	int errors;
};

static void io_cb(void *arg, const struct nvme_cqe *cqe)
{
	struct io *io = arg;

	io->done++;
	if (nvmf_cqe_status(cqe))
		io->errors++;
}

static void wait_done(struct io *io, int want)
{
	double t0 = now_s();

	while (io->done < want) {
		if (leap_nvmf_qpair_wait(io->qp, 10) < 0)
			T_FAIL("queue failed: %s", leap_nvmf_qpair_reason(io->qp));
		if (now_s() - t0 > 10)
			T_FAIL("timed out: %d of %d done", io->done, want);
	}
}

static void data_integrity(const char *extra)
{
	static const uint32_t sizes[] = { 512, 4096, 8192, 8704, 65536, 131072, 1536 };
	enum { N = LEAP_ARRAY_SIZE(sizes) };
	struct leap_nvmf_trid trid;
	struct leap_nvmf_ctrl *ctrl;
	struct tgt_cfg cfg;
	struct tgt *t;
	uint8_t *wbuf[N], *rbuf[N];
	struct io io[2] = { 0 };
	char err[256] = "";
	uint64_t lba = 0;

	tgt_default_cfg(&cfg);
	t = tgt_start(&cfg);
	trid_for(&trid, t, TGT_NQN, extra);
	T_ASSERT_EQ(leap_nvmf_host_connect(&trid, 2, 16, 5000, &ctrl, err, sizeof(err)), 0);
	io[0].qp = leap_nvmf_ctrl_io_qpair(ctrl, 0);
	io[1].qp = leap_nvmf_ctrl_io_qpair(ctrl, 1);
	for (int i = 0; i < N; i++) {
		wbuf[i] = malloc(sizes[i]);
		rbuf[i] = malloc(sizes[i] + 2);
		for (uint32_t b = 0; b < sizes[i]; b++)
			wbuf[i][b] = (uint8_t)(b * 7 + i * 13 + (b >> 9));
	}
	/* Writes: small ones in the capsule, big ones by R2T; all in flight at once, split over queues. */
	for (int i = 0; i < N; i++) {
		struct iovec iov[2] = { { wbuf[i], sizes[i] / 2 },
					{ wbuf[i] + sizes[i] / 2, sizes[i] - sizes[i] / 2 } };

		T_ASSERT_EQ(leap_nvmf_io_write(io[i & 1].qp, 1, lba, sizes[i] / 512, iov, 2, 0,
					       io_cb, &io[i & 1]),
			    0);
		lba += sizes[i] / 512;
	}
	wait_done(&io[0], (N + 1) / 2);
	wait_done(&io[1], N / 2);
	T_ASSERT_EQ(io[0].errors + io[1].errors, 0);
	/* Read back through the other queue, each into an offset buffer with guards. */
	lba = 0;
	memset(io, 0, sizeof(io));
	io[0].qp = leap_nvmf_ctrl_io_qpair(ctrl, 0);
	io[1].qp = leap_nvmf_ctrl_io_qpair(ctrl, 1);
	for (int i = 0; i < N; i++) {
		struct iovec iov = { rbuf[i] + 1, sizes[i] };

		memset(rbuf[i], 0xa5, sizes[i] + 2);
		T_ASSERT_EQ(leap_nvmf_io_read(io[(i + 1) & 1].qp, 1, lba, sizes[i] / 512, &iov, 1,
					      0, io_cb, &io[(i + 1) & 1]),
			    0);
		lba += sizes[i] / 512;
	}
	wait_done(&io[0], N / 2);
	wait_done(&io[1], (N + 1) / 2);
	T_ASSERT_EQ(io[0].errors + io[1].errors, 0);
	for (int i = 0; i < N; i++) {
		if (memcmp(rbuf[i] + 1, wbuf[i], sizes[i]))
			T_FAIL("read-back of the %u-byte write differs", sizes[i]);
		T_ASSERT_EQ(rbuf[i][0], 0xa5);
		T_ASSERT_EQ(rbuf[i][sizes[i] + 1], 0xa5);
	}
	/* Write zeroes, DSM, flush; then the zeroed range reads as zeroes. */
	{
		struct nvme_dsm_range r[3] = { { 0, 8, 0 }, { 0, 8, 64 }, { 0, 1, 1000 } };
		struct iovec iov = { rbuf[1] + 1, 4096 };

		memset(io, 0, sizeof(io));
		io[0].qp = leap_nvmf_ctrl_io_qpair(ctrl, 0);
		T_ASSERT_EQ(leap_nvmf_io_write_zeroes(io[0].qp, 1, 1, 8, 0, io_cb, &io[0]), 0);
		T_ASSERT_EQ(
		    leap_nvmf_io_dsm(io[0].qp, 1, r, 3, NVME_DSM_ATTR_DEALLOCATE, io_cb, &io[0]),
		    0);
		T_ASSERT_EQ(leap_nvmf_io_flush(io[0].qp, 1, io_cb, &io[0]), 0);
		wait_done(&io[0], 3);
		T_ASSERT_EQ(leap_nvmf_io_read(io[0].qp, 1, 1, 8, &iov, 1, 0, io_cb, &io[0]), 0);
		wait_done(&io[0], 4);
		T_ASSERT_EQ(io[0].errors, 0);
		T_ASSERT_EQ(atomic_load(&t->dsm_ranges), 3);
		for (int b = 0; b < 4096; b++)
			if (rbuf[1][1 + b])
				T_FAIL("byte %d not zeroed", b);
		/* Out of range: an NVMe error status, the queue stays live. */
		T_ASSERT_EQ(
		    leap_nvmf_io_read(io[0].qp, 1, TGT_MEM / 512, 8, &iov, 1, 0, io_cb, &io[0]), 0);
		wait_done(&io[0], 5);
		T_ASSERT_EQ(io[0].errors, 1);
		T_ASSERT_EQ(leap_nvmf_qpair_state(io[0].qp), LEAP_NVMF_QP_LIVE);
	}
	for (int i = 0; i < N; i++) {
		free(wbuf[i]);
		free(rbuf[i]);
	}
	leap_nvmf_host_disconnect(ctrl, 1000);
	tgt_stop(t);
}

static void test_data_integrity(void)
{
	data_integrity(NULL);
}

static void test_data_integrity_digests(void)
{
	data_integrity("hdgst:1 ddgst:1");
}

/* ---- throughput (printed, not asserted) ----------------------------------------- */

struct perf {
	struct leap_nvmf_qpair *qp;
	uint8_t *buf;
	uint32_t bs;
	uint64_t nlb_total;
	uint64_t done;
	uint64_t seed;
	int errors;
};

struct perf_io {
	struct perf *p;
	int slot;
};

static void perf_submit(struct perf_io *pio);

static void perf_cb(void *arg, const struct nvme_cqe *cqe)
{
	struct perf_io *pio = arg;

	pio->p->done++;
	if (nvmf_cqe_status(cqe))
		pio->p->errors++;
	perf_submit(pio);
}

static void perf_submit(struct perf_io *pio)
{
	struct perf *p = pio->p;
	struct iovec iov = { p->buf + (size_t)pio->slot * p->bs, p->bs };
	uint64_t blocks = p->bs / 512, slba;

	p->seed = p->seed * 6364136223846793005ull + 1442695040888963407ull;
	slba = ((p->seed >> 33) % (p->nlb_total / blocks)) * blocks;
	if (leap_nvmf_io_read(p->qp, 1, slba, (uint32_t)blocks, &iov, 1, 0, perf_cb, pio))
		p->errors++;
}

static void perf_run(const char *extra, uint32_t bs, int qd, bool success_flag)
{
	struct leap_nvmf_trid trid;
	struct leap_nvmf_ctrl *ctrl;
	struct leap_nvmf_qpair_stats st;
	struct perf p = { 0 };
	struct perf_io *pios = calloc((size_t)qd, sizeof(*pios));
	struct tgt_cfg cfg;
	struct tgt *t;
	char err[256] = "";
	double t0, el;

	tgt_default_cfg(&cfg);
	cfg.success_flag = success_flag;
	t = tgt_start(&cfg);
	trid_for(&trid, t, TGT_NQN, extra);
	T_ASSERT_EQ(
	    leap_nvmf_host_connect(&trid, 1, (unsigned int)qd, 5000, &ctrl, err, sizeof(err)), 0);
	p.qp = leap_nvmf_ctrl_io_qpair(ctrl, 0);
	p.bs = bs;
	p.nlb_total = TGT_MEM / 512;
	p.buf = aligned_alloc(4096, (size_t)qd * bs);
	p.seed = 42;
	for (int i = 0; i < qd; i++) {
		pios[i].p = &p;
		pios[i].slot = i;
		perf_submit(&pios[i]);
	}
	t0 = now_s();
	while ((el = now_s() - t0) < 0.5) {
		if (leap_nvmf_qpair_poll(p.qp) < 0)
			T_FAIL("queue failed: %s", leap_nvmf_qpair_reason(p.qp));
	}
	leap_nvmf_qpair_get_stats(p.qp, &st);
	printf("# %3u KiB random reads, QD %d%s%s: %.0f IOPS, %.2f GB/s, %.1f PDUs per recv, "
	       "%.1f PDUs per send\n",
	       bs / 1024, qd, extra ? ", " : "", extra ? extra : "", (double)p.done / el,
	       (double)p.done * bs / el / 1e9, (double)st.pdus_rx / (double)st.recv_calls,
	       (double)st.pdus_tx / (double)st.send_calls);
	T_ASSERT_EQ(p.errors, 0);
	T_ASSERT(p.done > 0);
	leap_nvmf_ctrl_destroy(ctrl);
	tgt_stop(t);
	free(p.buf);
	free(pios);
}

static void test_throughput_report(void)
{
	perf_run(NULL, 4096, 32, true);
	perf_run(NULL, 4096, 32, false);
	perf_run("hdgst:1 ddgst:1", 4096, 32, true);
	perf_run(NULL, 131072, 8, true);
	perf_run("hdgst:1 ddgst:1", 131072, 8, true);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_connect_identify_ns_info),
		TAP_CASE(test_queue_clamps),
		TAP_CASE(test_connect_failures_say_why),
		TAP_CASE(test_discovery_log),
		TAP_CASE(test_nonblocking_bringup_and_keep_alive),
		TAP_CASE(test_data_integrity),
		TAP_CASE(test_data_integrity_digests),
		TAP_CASE(test_throughput_report),
	};

	leap_log_set_callback(log_quiet, NULL);
	return tap_run(cases, TAP_N(cases));
}
