// SPDX-License-Identifier: BSD-3-Clause
/*
 * nvmf_badtarget: a small memory-backed NVMe/TCP target that misbehaves on
 * purpose, for testing hosts (leapd's nvme-tcp backend) against peers no
 * real target would be. It speaks enough of the protocol to be a working
 * target (ICResp with digests, Fabrics Connect with a host allow-list,
 * Property Get/Set, Identify controller/namespace/active list, Number of
 * Queues, Keep Alive, Read by C2HData, Write in the capsule or by R2T and
 * H2CData, Flush, Write Zeroes, DSM) and, on the Nth I/O command, for
 * `count` commands, does one of:
 *
 *   garbage       a PDU of junk bytes instead of an answer
 *   wrong-cid     the read's C2HData (and response) carry a CID not in flight
 *   c2h-overflow  a C2HData reaching 4 KiB beyond the command's buffer
 *   r2t-unknown   an R2T for a command that does not exist (on a write)
 *   ddgst         C2HData with a wrong data digest (needs data digests on)
 *   hdgst         a response with a wrong header digest (needs header digests on)
 *   drop          execute the command, then close the connection unanswered
 *   silent        never answer that command
 *   term          a C2HTermReq
 *
 * One thread per connection, blocking sockets, whole PDUs: simple, and it
 * shows exactly what bytes a host gets. Used two ways: as a program
 * (tests/e2e, interop), and included by unit tests with
 * BADTARGET_NO_MAIN defined, which call bt_start()/bt_stop() directly.
 *
 *   nvmf_badtarget [--port N] [--nqn NQN] [--size MiB] [--lba 512|4096]
 *                  [--mdts N] [--queues N] [--fault NAME] [--after N]
 *                  [--count N] [--allow-host NQN]
 * prints "listening on 127.0.0.1:PORT" and serves until SIGINT/SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/crc32c.h"
#include "leapio/nvme_spec.h"
#include "leapio/nvmf_spec.h"

#define BT_MAXPDU   (1u << 20)
#define BT_INBUF    (2u << 20)
#define BT_OUTBUF   (4u << 20)
#define BT_C2H	    65536u
#define BT_PW	    256
#define BT_MAXCONNS 256

enum bt_fault {
	BT_NONE = 0,
	BT_GARBAGE,
	BT_WRONG_CID,
	BT_C2H_OVERFLOW,
	BT_R2T_UNKNOWN,
	BT_DDGST,
	BT_HDGST,
	BT_DROP,
	BT_SILENT,
	BT_TERM,
};

static const char *const bt_fault_names[] __attribute__((unused)) = {
	"none",	 "garbage", "wrong-cid", "c2h-overflow", "r2t-unknown",
	"ddgst", "hdgst",   "drop",	 "silent",	 "term",
};

struct bt_cfg {
	uint16_t port; /* 0: any */
	const char *nqn;
	uint64_t size; /* bytes */
	uint32_t lba;  /* 512 or 4096 */
	uint8_t mdts;  /* 2^mdts pages of 4 KiB; 0: no limit */
	uint16_t max_queues;
	uint16_t mqes; /* 0's based */
	uint32_t ioccsz;
	uint32_t maxh2cdata;
	uint16_t oncs;
	uint8_t dlfeat;
	const char *allow_host; /* NULL: any host */
	enum bt_fault fault;
	uint32_t fault_after; /* I/O commands served well first */
	uint32_t fault_count; /* faulty answers, then good again */
};

struct bt {
	struct bt_cfg cfg;
	uint8_t *mem;
	bool own_mem;
	int lfd;
	uint16_t port;
	pthread_t acceptor;
	_Atomic int stop;
	_Atomic uint32_t io_cmds;
	_Atomic uint32_t faults;
	_Atomic uint32_t connects;    /* admin queue connects */
	_Atomic uint32_t io_connects; /* I/O queue connects */
	_Atomic uint32_t keep_alives;
	_Atomic uint32_t writes, reads; /* I/O commands by kind, answered or not */
	_Atomic uint16_t next_cntlid;
	pthread_mutex_t lock;
	int fds[BT_MAXCONNS];
	pthread_t threads[BT_MAXCONNS];
	int nconns;
};

struct bt_pw {
	bool used;
	bool drop; /* executed, then the connection closes unanswered */
	uint16_t cid;
	uint64_t off;
	uint32_t len, got, r2t_end;
};

struct bt_conn {
	struct bt *t;
	int fd;
	bool hd, dd, dead;
	uint16_t qid;
	uint8_t *in, *out;
	uint32_t in_rd, in_wr, out_len;
	struct bt_pw pw[BT_PW];
};

static void bt_cfg_init(struct bt_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->nqn = "nqn.2024-01.io.leap:badtarget";
	c->size = 64u << 20;
	c->lba = 512;
	c->mdts = 5; /* 128 KiB */
	c->max_queues = 8;
	c->mqes = 127;
	c->ioccsz = (64 + 8192) / 16;
	c->maxh2cdata = 65536;
	c->oncs = NVME_ONCS_DSM | NVME_ONCS_WRITE_ZEROES;
	c->dlfeat = NVME_DLFEAT_READ_ZEROES;
	c->fault_count = 1;
}

static int send_all(int fd, const void *buf, size_t n)
{
	for (size_t off = 0; off < n;) {
		ssize_t r = send(fd, (const uint8_t *)buf + off, n - off, MSG_NOSIGNAL);

		if (r <= 0)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

static int c_flush(struct bt_conn *c)
{
	int rc = c->out_len ? send_all(c->fd, c->out, c->out_len) : 0;

	c->out_len = 0;
	return rc;
}

/* Queue a PDU: header (+HDGST, corrupted when bad_hd), data (+DDGST, corrupted when bad_dd). */
static int c_send(struct bt_conn *c, void *hdr, uint32_t hlen, const void *data, uint32_t dlen,
		  bool bad_hd, bool bad_dd)
{
	struct nvme_tcp_common_hdr *ch = hdr;
	uint32_t hd = c->hd ? 4 : 0, dd = (c->dd && dlen) ? 4 : 0, off, crc;
	uint8_t *tx;

	if (c->out_len + hlen + 8 + dlen > BT_OUTBUF && c_flush(c))
		return -1;
	tx = c->out + c->out_len;
	ch->hlen = (uint8_t)hlen;
	ch->flags |= (hd ? NVME_TCP_F_HDGST : 0) | (dd ? NVME_TCP_F_DDGST : 0);
	ch->pdo = dlen ? (uint8_t)(hlen + hd) : 0;
	ch->plen = hlen + hd + dlen + dd;
	memcpy(tx, hdr, hlen);
	off = hlen;
	if (hd) {
		crc = leap_crc32c(0, tx, hlen) ^ (bad_hd ? 0x5a5a5a5a : 0);
		memcpy(tx + off, &crc, 4);
		off += 4;
	}
	if (dlen) {
		memcpy(tx + off, data, dlen);
		off += dlen;
	}
	if (dd) {
		crc = leap_crc32c(0, data, dlen) ^ (bad_dd ? 0xa5a5a5a5 : 0);
		memcpy(tx + off, &crc, 4);
		off += 4;
	}
	c->out_len += off;
	return 0;
}

static int c_rsp_x(struct bt_conn *c, uint16_t cid, uint16_t status, uint32_t dw0, bool bad_hd)
{
	struct nvme_tcp_rsp_pdu r;

	memset(&r, 0, sizeof(r));
	r.hdr.pdu_type = NVME_TCP_PDU_CAPSULE_RESP;
	r.cqe.cid = cid;
	r.cqe.dw0 = dw0;
	r.cqe.sqid = c->qid;
	r.cqe.status = (uint16_t)((status & 0x7ff) << 1 | (status & NVME_CQE_DNR));
	return c_send(c, &r, sizeof(r), NULL, 0, bad_hd, false);
}

static int c_rsp(struct bt_conn *c, uint16_t cid, uint16_t status, uint32_t dw0)
{
	return c_rsp_x(c, cid, status, dw0, false);
}

static int c_data(struct bt_conn *c, uint16_t cid, const uint8_t *data, uint32_t len, bool bad_dd)
{
	for (uint32_t off = 0; off < len;) {
		struct nvme_tcp_c2h_data_pdu d;
		uint32_t n = LEAP_MIN(len - off, BT_C2H);

		memset(&d, 0, sizeof(d));
		d.hdr.pdu_type = NVME_TCP_PDU_C2H_DATA;
		d.hdr.flags = off + n == len ? NVME_TCP_F_DATA_LAST : 0;
		d.cccid = cid;
		d.datao = off;
		d.datal = n;
		if (c_send(c, &d, sizeof(d), data + off, n, false, bad_dd))
			return -1;
		off += n;
	}
	return 0;
}

static int c_r2t(struct bt_conn *c, struct bt_pw *w, uint16_t ttag)
{
	struct nvme_tcp_r2t_pdu r;

	memset(&r, 0, sizeof(r));
	r.hdr.pdu_type = NVME_TCP_PDU_R2T;
	r.cccid = w->cid;
	r.ttag = ttag;
	r.r2to = w->got;
	r.r2tl = LEAP_MIN(w->len - w->got, c->t->cfg.maxh2cdata);
	w->r2t_end = w->got + r.r2tl;
	return c_send(c, &r, sizeof(r), NULL, 0, false, false);
}

static uint32_t lbads(uint32_t lba)
{
	return (uint32_t)__builtin_ctz(lba);
}

static void id_ctrl(struct bt *t, struct nvme_id_ctrl *id)
{
	memset(id, 0, sizeof(*id));
	memcpy(id->sn, "BADTARGET0001       ", 20);
	memcpy(id->mn, "leapio nvmf_badtarget                   ", 40);
	memcpy(id->fr, "1.0     ", 8);
	id->mdts = t->cfg.mdts;
	id->cntlid = 1;
	id->ver = NVME_VERSION(1, 3, 0);
	id->cntrltype = 1;
	id->sqes = 0x66;
	id->cqes = 0x44;
	id->maxcmd = (uint16_t)(t->cfg.mqes + 1);
	id->nn = 1;
	id->oncs = t->cfg.oncs;
	id->vwc = 1;
	id->kas = 1;
	id->sgls = 1 | 1u << 2 | 1u << 20;
	snprintf(id->subnqn, sizeof(id->subnqn), "%s", t->cfg.nqn);
	id->ioccsz = t->cfg.ioccsz;
	id->iorcsz = 1;
}

static void id_ns(struct bt *t, struct nvme_id_ns *ns)
{
	memset(ns, 0, sizeof(*ns));
	ns->nsze = ns->ncap = ns->nuse = t->cfg.size / t->cfg.lba;
	ns->lbaf[0].lbads = (uint8_t)lbads(t->cfg.lba);
	ns->dlfeat = t->cfg.dlfeat;
	for (int i = 0; i < 16; i++)
		ns->nguid[i] = (uint8_t)(0xb0 + i);
}

static int fabrics(struct bt_conn *c, const struct nvme_sqe *sqe, const uint8_t *data,
		   uint32_t dlen)
{
	const struct nvmf_capsule_cmd *fc = (const void *)sqe;
	struct bt *t = c->t;
	static _Atomic uint32_t cc_reg; /* one controller's CC, good enough for tests */

	switch (fc->fctype) {
	case NVMF_FCTYPE_CONNECT: {
		const struct nvmf_connect_cmd *cc = (const void *)sqe;
		const struct nvmf_connect_data *cd = (const void *)data;
		uint16_t cntlid;

		if (dlen != sizeof(*cd))
			return c_rsp(c, sqe->cid, NVME_STATUS(1, 0x82), 0);
		if (strcmp(cd->subnqn, t->cfg.nqn))
			return c_rsp(c, sqe->cid, NVME_STATUS(1, 0x82), 256 | 1u << 16);
		if (t->cfg.allow_host && strcmp(cd->hostnqn, t->cfg.allow_host))
			return c_rsp(c, sqe->cid, NVME_STATUS(1, 0x84), 0);
		if (cc->qid > t->cfg.max_queues)
			return c_rsp(c, sqe->cid, NVME_STATUS(1, 0x82), 16 | 1u << 16);
		c->qid = cc->qid;
		if (cc->qid == 0) {
			atomic_fetch_add(&t->connects, 1);
			cntlid = (uint16_t)(atomic_fetch_add(&t->next_cntlid, 1) + 1);
		} else {
			atomic_fetch_add(&t->io_connects, 1);
			cntlid = cd->cntlid;
		}
		return c_rsp(c, sqe->cid, 0, cntlid);
	}
	case NVMF_FCTYPE_PROPERTY_GET: {
		const struct nvmf_property_get_cmd *pg = (const void *)sqe;
		uint64_t v = 0;
		uint32_t ccv = atomic_load(&cc_reg);

		if (pg->ofst == NVMF_PROP_CAP)
			v = t->cfg.mqes | NVME_CAP_CQR | 1ull << NVME_CAP_TO_SHIFT |
			    NVME_CAP_CSS_NVM;
		else if (pg->ofst == NVMF_PROP_VS)
			v = NVME_VERSION(1, 3, 0);
		else if (pg->ofst == NVMF_PROP_CC)
			v = ccv;
		else if (pg->ofst == NVMF_PROP_CSTS)
			v = ((ccv & NVME_CC_EN) ? NVME_CSTS_RDY : 0) |
			    ((ccv & NVME_CC_SHN_MASK) ? NVME_CSTS_SHST_COMPLETE : 0);
		{
			struct nvme_tcp_rsp_pdu r;

			memset(&r, 0, sizeof(r));
			r.hdr.pdu_type = NVME_TCP_PDU_CAPSULE_RESP;
			r.cqe.cid = sqe->cid;
			r.cqe.dw0 = (uint32_t)v;
			r.cqe.dw1 = (uint32_t)(v >> 32);
			return c_send(c, &r, sizeof(r), NULL, 0, false, false);
		}
	}
	case NVMF_FCTYPE_PROPERTY_SET: {
		const struct nvmf_property_set_cmd *ps = (const void *)sqe;

		if (ps->ofst == NVMF_PROP_CC)
			atomic_store(&cc_reg, (uint32_t)ps->value);
		return c_rsp(c, sqe->cid, 0, 0);
	}
	default:
		return c_rsp(c, sqe->cid, NVME_STATUS(0, NVME_SC_INVALID_OPCODE), 0);
	}
}

static int admin(struct bt_conn *c, const struct nvme_sqe *sqe, uint32_t sgl_len)
{
	static _Thread_local uint8_t page[4096];
	struct bt *t = c->t;

	switch (sqe->opc) {
	case NVME_OPC_IDENTIFY:
		memset(page, 0, sizeof(page));
		if ((sqe->cdw10 & 0xff) == NVME_CNS_CTRL)
			id_ctrl(t, (struct nvme_id_ctrl *)page);
		else if ((sqe->cdw10 & 0xff) == NVME_CNS_NS && sqe->nsid == 1)
			id_ns(t, (struct nvme_id_ns *)page);
		else if ((sqe->cdw10 & 0xff) == NVME_CNS_ACTIVE_NS_LIST)
			page[0] = sqe->nsid < 1 ? 1 : 0;
		else
			return c_rsp(
			    c, sqe->cid,
			    NVME_STATUS(0, NVME_SC_INVALID_NAMESPACE_OR_FORMAT) | NVME_CQE_DNR, 0);
		if (c_data(c, sqe->cid, page, LEAP_MIN(sgl_len, 4096u), false))
			return -1;
		return c_rsp(c, sqe->cid, 0, 0);
	case NVME_OPC_SET_FEATURES:
		if ((sqe->cdw10 & 0xff) == NVME_FEAT_NUMBER_OF_QUEUES) {
			uint32_t g = LEAP_MIN((sqe->cdw11 & 0xffff) + 1, t->cfg.max_queues);

			return c_rsp(c, sqe->cid, 0, (g - 1) | (g - 1) << 16);
		}
		break;
	case NVME_OPC_KEEP_ALIVE:
		atomic_fetch_add(&t->keep_alives, 1);
		return c_rsp(c, sqe->cid, 0, 0);
	}
	return c_rsp(c, sqe->cid, NVME_STATUS(0, NVME_SC_INVALID_OPCODE), 0);
}

/*
 * The fault to apply to this I/O command, if its turn has come. Faults that
 * only make sense for a kind of command (a read's C2HData, a write's R2T)
 * wait for one.
 */
static enum bt_fault fault_now(struct bt *t, const struct nvme_sqe *sqe, uint32_t dlen)
{
	uint32_t n = atomic_fetch_add(&t->io_cmds, 1);
	enum bt_fault f = t->cfg.fault;

	if (f == BT_NONE || n < t->cfg.fault_after)
		return BT_NONE;
	if ((f == BT_WRONG_CID || f == BT_C2H_OVERFLOW || f == BT_DDGST) &&
	    sqe->opc != NVME_OPC_READ)
		return BT_NONE;
	if (f == BT_R2T_UNKNOWN && (sqe->opc != NVME_OPC_WRITE || dlen))
		return BT_NONE;
	if (atomic_fetch_add(&t->faults, 1) >= t->cfg.fault_count)
		return BT_NONE;
	return f;
}

static int junk(struct bt_conn *c)
{
	uint8_t g[64];

	for (size_t i = 0; i < sizeof(g); i++)
		g[i] = (uint8_t)(0xee ^ i * 37);
	g[0] = 0x7f; /* no such PDU type */
	if (c_flush(c))
		return -1;
	return send_all(c->fd, g, sizeof(g));
}

/* Returns -1 to close the connection. */
static int io_cmd(struct bt_conn *c, const struct nvme_sqe *sqe, const uint8_t *data, uint32_t dlen,
		  uint32_t sgl_len)
{
	struct bt *t = c->t;
	uint64_t slba = sqe->cdw10 | (uint64_t)sqe->cdw11 << 32;
	uint32_t nlb = (sqe->cdw12 & 0xffff) + 1;
	uint64_t off = slba * t->cfg.lba, len = (uint64_t)nlb * t->cfg.lba;
	enum bt_fault f = fault_now(t, sqe, dlen);

	if (f == BT_SILENT)
		return 0;
	if (f == BT_GARBAGE)
		return junk(c);
	if (f == BT_TERM) {
		struct nvme_tcp_term_req tr;

		memset(&tr, 0, sizeof(tr));
		tr.hdr.pdu_type = NVME_TCP_PDU_C2H_TERM_REQ;
		tr.hdr.hlen = sizeof(tr);
		tr.hdr.plen = sizeof(tr);
		tr.fes = NVME_TCP_FES_INVALID_HEADER_FIELD;
		c_flush(c);
		send_all(c->fd, &tr, sizeof(tr));
		return -1;
	}
	if (sqe->nsid != 1)
		return c_rsp(c, sqe->cid, NVME_STATUS(0, NVME_SC_INVALID_NAMESPACE_OR_FORMAT), 0);
	switch (sqe->opc) {
	case NVME_OPC_READ:
		atomic_fetch_add(&t->reads, 1);
		if (off + len > t->cfg.size || sgl_len != len)
			return c_rsp(c, sqe->cid, NVME_STATUS(0, NVME_SC_LBA_OUT_OF_RANGE), 0);
		if (f == BT_C2H_OVERFLOW) {
			static _Thread_local uint8_t over[BT_C2H + 4096];
			struct nvme_tcp_c2h_data_pdu d;

			memset(over, 0xcc, sizeof(over));
			memset(&d, 0, sizeof(d));
			d.hdr.pdu_type = NVME_TCP_PDU_C2H_DATA;
			d.hdr.flags = NVME_TCP_F_DATA_LAST;
			d.cccid = sqe->cid;
			d.datao = (uint32_t)(len > 4096 ? len - 4096 : 0);
			d.datal = (uint32_t)LEAP_MIN(len, (uint64_t)BT_C2H) + 4096;
			return c_send(c, &d, sizeof(d), over, d.datal, false, false);
		}
		if (f == BT_WRONG_CID) {
			if (c_data(c, sqe->cid ^ 0x4000, t->mem + off, (uint32_t)len, false))
				return -1;
			return c_rsp(c, sqe->cid ^ 0x4000, 0, 0);
		}
		if (f == BT_DROP)
			return -1;
		if (c_data(c, sqe->cid, t->mem + off, (uint32_t)len, f == BT_DDGST))
			return -1;
		return c_rsp_x(c, sqe->cid, 0, 0, f == BT_HDGST);
	case NVME_OPC_WRITE:
		atomic_fetch_add(&t->writes, 1);
		if (off + len > t->cfg.size || sgl_len != len)
			return c_rsp(c, sqe->cid, NVME_STATUS(0, NVME_SC_LBA_OUT_OF_RANGE), 0);
		if (f == BT_R2T_UNKNOWN) {
			struct bt_pw w = { .cid = sqe->cid ^ 0x4000, .len = (uint32_t)len };

			return c_r2t(c, &w, 0x77);
		}
		if (dlen) {
			memcpy(t->mem + off, data, dlen);
			if (f == BT_DROP)
				return -1; /* executed, never answered */
			return c_rsp_x(c, sqe->cid, 0, 0, f == BT_HDGST);
		}
		for (uint16_t i = 0; i < BT_PW; i++) {
			struct bt_pw *w = &c->pw[i];

			if (w->used)
				continue;
			*w = (struct bt_pw){ .used = true,
					     .drop = f == BT_DROP,
					     .cid = sqe->cid,
					     .off = off,
					     .len = (uint32_t)len };
			return c_r2t(c, w, i);
		}
		return -1;
	case NVME_OPC_FLUSH:
		return c_rsp(c, sqe->cid, 0, 0);
	case NVME_OPC_WRITE_ZEROES:
		if (off + len > t->cfg.size)
			return c_rsp(c, sqe->cid, NVME_STATUS(0, NVME_SC_LBA_OUT_OF_RANGE), 0);
		memset(t->mem + off, 0, len);
		return c_rsp(c, sqe->cid, 0, 0);
	case NVME_OPC_DATASET_MANAGEMENT:
		for (uint32_t i = 0; i + 16 <= dlen; i += 16) {
			struct nvme_dsm_range r;

			memcpy(&r, data + i, sizeof(r));
			if ((sqe->cdw11 & NVME_DSM_ATTR_DEALLOCATE) &&
			    (r.slba + r.nlb) * t->cfg.lba <= t->cfg.size)
				memset(t->mem + r.slba * t->cfg.lba, 0,
				       (uint64_t)r.nlb * t->cfg.lba);
		}
		return c_rsp(c, sqe->cid, 0, 0);
	}
	return c_rsp(c, sqe->cid, NVME_STATUS(0, NVME_SC_INVALID_OPCODE), 0);
}

static int h2c(struct bt_conn *c, const uint8_t *p, const uint8_t *data)
{
	struct nvme_tcp_h2c_data_pdu h;
	struct bt_pw *w;

	memcpy(&h, p, sizeof(h));
	if (h.ttag >= BT_PW || !c->pw[h.ttag].used || c->pw[h.ttag].cid != h.cccid)
		return -1;
	w = &c->pw[h.ttag];
	if (h.datao != w->got || h.datao + h.datal > w->r2t_end)
		return -1;
	memcpy(c->t->mem + w->off + h.datao, data, h.datal);
	w->got += h.datal;
	if (w->got < w->r2t_end)
		return 0;
	if (w->got < w->len)
		return c_r2t(c, w, h.ttag);
	w->used = false;
	if (w->drop)
		return -1;
	return c_rsp(c, w->cid, 0, 0);
}

/* The next whole PDU; answers are flushed before blocking to read. */
static uint8_t *next_pdu(struct bt_conn *c)
{
	for (;;) {
		uint32_t avail = c->in_wr - c->in_rd;
		struct nvme_tcp_common_hdr ch;
		ssize_t r;

		if (avail >= 8) {
			memcpy(&ch, c->in + c->in_rd, 8);
			if (ch.plen < 8 || ch.plen > BT_MAXPDU)
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
		r = recv(c->fd, c->in + c->in_wr, BT_INBUF - c->in_wr, MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (c_flush(c))
				return NULL;
			r = recv(c->fd, c->in + c->in_wr, BT_INBUF - c->in_wr, 0);
		}
		if (r <= 0)
			return NULL;
		c->in_wr += (uint32_t)r;
	}
}

static int handle(struct bt_conn *c, uint8_t *rx)
{
	struct nvme_tcp_common_hdr ch;
	uint32_t dlen = 0, dd;
	const uint8_t *data = NULL;

	memcpy(&ch, rx, 8);
	if (ch.pdu_type == NVME_TCP_PDU_ICREQ) {
		struct nvme_tcp_icreq q;
		struct nvme_tcp_icresp r;

		memcpy(&q, rx, sizeof(q));
		memset(&r, 0, sizeof(r));
		r.hdr.pdu_type = NVME_TCP_PDU_ICRESP;
		r.hdr.hlen = 128;
		r.hdr.plen = 128;
		r.dgst = q.dgst & 3;
		r.maxh2cdata = c->t->cfg.maxh2cdata;
		c->hd = r.dgst & 1;
		c->dd = r.dgst & 2;
		return send_all(c->fd, &r, sizeof(r));
	}
	if (ch.pdu_type == NVME_TCP_PDU_H2C_TERM_REQ)
		return -1;
	if (c->hd) {
		uint32_t got;

		memcpy(&got, rx + ch.hlen, 4);
		if (got != leap_crc32c(0, rx, ch.hlen))
			return -1;
	}
	if (ch.pdo) {
		dd = (ch.flags & NVME_TCP_F_DDGST) ? 4 : 0;
		dlen = ch.plen - ch.pdo - dd;
		data = rx + ch.pdo;
		if (dd) {
			uint32_t got;

			memcpy(&got, data + dlen, 4);
			if (got != leap_crc32c(0, data, dlen))
				return -1;
		}
	}
	if (ch.pdu_type == NVME_TCP_PDU_CAPSULE_CMD) {
		struct nvme_sqe sqe;
		struct nvme_sgl_desc sgl;

		memcpy(&sqe, rx + 8, sizeof(sqe));
		memcpy(&sgl, rx + 8 + NVME_SQE_SGL1_OFFSET, sizeof(sgl));
		if (sqe.opc == NVME_OPC_FABRIC)
			return fabrics(c, &sqe, data, dlen);
		if (c->qid == 0)
			return admin(c, &sqe, sgl.length);
		return io_cmd(c, &sqe, data, dlen, sgl.length);
	}
	if (ch.pdu_type == NVME_TCP_PDU_H2C_DATA)
		return h2c(c, rx, data);
	return -1;
}

static void *conn_main(void *arg)
{
	struct bt_conn *c = arg;
	uint8_t *rx;

	while ((rx = next_pdu(c)) && handle(c, rx) == 0)
		;
	c_flush(c);
	shutdown(c->fd, SHUT_RDWR);
	free(c->in);
	free(c->out);
	free(c);
	return NULL;
}

static void *acceptor_main(void *arg)
{
	struct bt *t = arg;

	while (!atomic_load(&t->stop)) {
		struct pollfd p = { .fd = t->lfd, .events = POLLIN };
		struct bt_conn *c;
		int fd, one = 1;

		if (poll(&p, 1, 20) <= 0)
			continue;
		fd = accept(t->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		c->in = malloc(BT_INBUF);
		c->out = malloc(BT_OUTBUF);
		c->t = t;
		c->fd = fd;
		pthread_mutex_lock(&t->lock);
		if (t->nconns < BT_MAXCONNS && c->in && c->out) {
			t->fds[t->nconns] = fd;
			pthread_create(&t->threads[t->nconns], NULL, conn_main, c);
			t->nconns++;
		} else {
			close(fd);
			free(c->in);
			free(c->out);
			free(c);
		}
		pthread_mutex_unlock(&t->lock);
	}
	return NULL;
}

/* Listen on 127.0.0.1 (cfg->port, 0: any) and serve. `mem` (cfg->size bytes) or NULL: our own. */
static struct bt *bt_start(const struct bt_cfg *cfg, uint8_t *mem)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(cfg->port) };
	socklen_t sl = sizeof(sa);
	struct bt *t = calloc(1, sizeof(*t));
	int one = 1;

	if (!t)
		return NULL;
	t->cfg = *cfg;
	t->mem = mem ? mem : calloc(1, cfg->size);
	t->own_mem = !mem;
	pthread_mutex_init(&t->lock, NULL);
	t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(t->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (!t->mem || t->lfd < 0 || bind(t->lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(t->lfd, 64) || getsockname(t->lfd, (struct sockaddr *)&sa, &sl)) {
		if (t->lfd >= 0)
			close(t->lfd);
		if (t->own_mem)
			free(t->mem);
		free(t);
		return NULL;
	}
	t->port = ntohs(sa.sin_port);
	pthread_create(&t->acceptor, NULL, acceptor_main, t);
	return t;
}

/* Close the listener and every connection (the host sees a reset), then free. */
static void bt_stop(struct bt *t)
{
	if (!t)
		return;
	atomic_store(&t->stop, 1);
	pthread_join(t->acceptor, NULL);
	close(t->lfd);
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < t->nconns; i++)
		shutdown(t->fds[i], SHUT_RDWR);
	pthread_mutex_unlock(&t->lock);
	for (int i = 0; i < t->nconns; i++) {
		pthread_join(t->threads[i], NULL);
		close(t->fds[i]);
	}
	if (t->own_mem)
		free(t->mem);
	free(t);
}

#ifndef BADTARGET_NO_MAIN

static void usage(void)
{
	fprintf(stderr,
		"usage: nvmf_badtarget [--port N] [--nqn NQN] [--size MiB] [--lba 512|4096]\n"
		"         [--mdts N] [--queues N] [--fault NAME] [--after N] [--count N]\n"
		"         [--allow-host NQN]\n"
		"faults: garbage wrong-cid c2h-overflow r2t-unknown ddgst hdgst drop silent "
		"term\n");
}

int main(int argc, char **argv)
{
	struct bt_cfg cfg;
	sigset_t sigs;
	struct bt *t;
	int sig;

	bt_cfg_init(&cfg);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v) {
			usage();
			return 2;
		}
		i++;
		if (!strcmp(a, "--port")) {
			cfg.port = (uint16_t)strtoul(v, NULL, 0);
		} else if (!strcmp(a, "--nqn")) {
			cfg.nqn = v;
		} else if (!strcmp(a, "--size")) {
			cfg.size = strtoull(v, NULL, 0) << 20;
		} else if (!strcmp(a, "--lba")) {
			cfg.lba = (uint32_t)strtoul(v, NULL, 0);
		} else if (!strcmp(a, "--mdts")) {
			cfg.mdts = (uint8_t)strtoul(v, NULL, 0);
		} else if (!strcmp(a, "--queues")) {
			cfg.max_queues = (uint16_t)strtoul(v, NULL, 0);
		} else if (!strcmp(a, "--after")) {
			cfg.fault_after = (uint32_t)strtoul(v, NULL, 0);
		} else if (!strcmp(a, "--count")) {
			cfg.fault_count = (uint32_t)strtoul(v, NULL, 0);
		} else if (!strcmp(a, "--allow-host")) {
			cfg.allow_host = v;
		} else if (!strcmp(a, "--fault")) {
			size_t k;

			for (k = 0; k < LEAP_ARRAY_SIZE(bt_fault_names); k++)
				if (!strcmp(v, bt_fault_names[k]))
					break;
			if (k == LEAP_ARRAY_SIZE(bt_fault_names)) {
				usage();
				return 2;
			}
			cfg.fault = (enum bt_fault)k;
		} else {
			usage();
			return 2;
		}
	}
	if ((cfg.lba != 512 && cfg.lba != 4096) || !cfg.size || cfg.size % cfg.lba) {
		usage();
		return 2;
	}
	/*
	 * Blocked before any thread starts, so every thread inherits the mask
	 * and only sigwait() below takes them (a handler could run on a
	 * connection thread and leave main asleep).
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	t = bt_start(&cfg, NULL);
	if (!t) {
		fprintf(stderr, "nvmf_badtarget: cannot listen on port %u: %s\n", cfg.port,
			strerror(errno));
		return 1;
	}
	printf("listening on 127.0.0.1:%u\n", t->port);
	fflush(stdout);
	sigwait(&sigs, &sig);
	fprintf(stderr, "nvmf_badtarget: %u I/O commands, %u faults, %u connects\n",
		atomic_load(&t->io_cmds), LEAP_MIN(atomic_load(&t->faults), cfg.fault_count),
		atomic_load(&t->connects));
	bt_stop(t);
	return 0;
}
#endif
