// SPDX-License-Identifier: BSD-3-Clause
/*
 * The NVMe/TCP target's PDU engine (runtime/frontend/tcp/tcp_pdu.c),
 * included so its static parser is reachable: the common-header rules and
 * the order in which a wrong field is reported, header and data digests,
 * PDUs arriving one byte at a time, H2CData streamed straight into its
 * buffer, sends that the socket takes in pieces, and the C2HTermReq a fatal
 * error queues. The peer is the other end of a socketpair.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "frontend/tcp/tcp_pdu.c"
#include "tap.h"

/* ---- tcp_pdu_check ----------------------------------------------------------- */

struct hdr_case {
	const char *what;
	struct nvme_tcp_common_hdr h;
	bool ic_done, hdgst, ddgst;
	int rc;
	uint16_t fes;
	uint32_t fei;
	uint32_t dlen;
};

#define CMD  NVME_TCP_PDU_CAPSULE_CMD
#define H2C  NVME_TCP_PDU_H2C_DATA
#define TERM NVME_TCP_PDU_H2C_TERM_REQ
#define HD   NVME_TCP_F_HDGST
#define DD   NVME_TCP_F_DDGST
#define LAST NVME_TCP_F_DATA_LAST

static const struct hdr_case hdr_cases[] = {
	{ "capsule before ICReq", { CMD, 0, 72, 0, 72 }, false, false, false, -EPROTO, 2, 0, 0 },
	{ "second ICReq", { 0, 0, 128, 0, 128 }, true, false, false, -EPROTO, 2, 0, 0 },
	{ "unknown type", { 0x0f, 0, 24, 0, 24 }, true, false, false, -EPROTO, 1, 0, 0 },
	{ "a controller's type",
	  { NVME_TCP_PDU_C2H_DATA, 0, 24, 0, 24 },
	  true,
	  0,
	  0,
	  -EPROTO,
	  1,
	  0,
	  0 },
	{ "reserved flag", { CMD, 0x40, 72, 0, 72 }, true, false, false, -EPROTO, 1, 1, 0 },
	{ "HDGST not negotiated", { CMD, HD, 72, 0, 76 }, true, false, false, -EPROTO, 1, 1, 0 },
	{ "HDGST missing", { CMD, 0, 72, 0, 72 }, true, true, false, -EPROTO, 1, 1, 0 },
	{ "DDGST not negotiated", { CMD, DD, 72, 72, 588 }, true, false, false, -EPROTO, 1, 1, 0 },
	{ "DDGST missing with data", { CMD, 0, 72, 72, 584 }, true, false, true, -EPROTO, 1, 1, 0 },
	{ "no DDGST without data", { CMD, 0, 72, 0, 72 }, true, false, true, 0, 0, 0, 0 },
	{ "HLEN", { CMD, 0, 70, 0, 70 }, true, false, false, -EPROTO, 1, 2, 0 },
	{ "HLEN before PLEN", { CMD, 0, 70, 0, 10 }, true, false, false, -EPROTO, 1, 2, 0 },
	{ "PDO unaligned", { CMD, 0, 72, 74, 584 }, true, false, false, -EPROTO, 1, 3, 0 },
	{ "PDO inside the header", { CMD, 0, 72, 68, 584 }, true, false, false, -EPROTO, 1, 3, 0 },
	{ "PDO inside the digest", { CMD, HD, 72, 72, 584 }, true, true, false, -EPROTO, 1, 3, 0 },
	{ "PDO past PLEN", { CMD, 0, 72, 200, 100 }, true, false, false, -EPROTO, 1, 3, 0 },
	{ "PLEN short", { CMD, 0, 72, 0, 40 }, true, false, false, -EPROTO, 1, 4, 0 },
	{ "PLEN long without PDO", { CMD, 0, 72, 0, 100 }, true, false, false, -EPROTO, 1, 4, 0 },
	{ "PLEN too short for DDGST",
	  { CMD, DD, 72, 72, 76 },
	  true,
	  false,
	  true,
	  -EPROTO,
	  1,
	  4,
	  0 },
	{ "H2CData without data", { H2C, LAST, 24, 0, 24 }, true, false, false, -EPROTO, 1, 4, 0 },
	{ "ICD past IOCCSZ", { CMD, 0, 72, 72, 72 + 8193 }, true, false, false, -EPROTO, 5, 0, 0 },
	{ "H2CData past MAXH2CDATA",
	  { H2C, 0, 24, 24, 24 + 131073 },
	  true,
	  0,
	  0,
	  -EPROTO,
	  5,
	  0,
	  0 },
	{ "TermReq too short", { TERM, 0, 24, 0, 10 }, true, false, false, -ECONNRESET, 0, 0, 0 },
	{ "TermReq too long", { TERM, 0, 24, 0, 153 }, true, false, false, -ECONNRESET, 0, 0, 0 },
	{ "ICReq", { 0, 0, 128, 0, 128 }, false, false, false, 0, 0, 0, 0 },
	{ "capsule, no data", { CMD, HD, 72, 0, 76 }, true, true, true, 0, 0, 0, 0 },
	{ "capsule, 512 B + DDGST", { CMD, HD | DD, 72, 76, 592 }, true, true, true, 0, 0, 0, 512 },
	{ "capsule, 8 KiB", { CMD, 0, 72, 72, 72 + 8192 }, true, false, false, 0, 0, 0, 8192 },
	{ "H2CData, padded", { H2C, LAST, 24, 32, 32 + 4096 }, true, false, false, 0, 0, 0, 4096 },
};

static void test_pdu_check(void)
{
	for (size_t i = 0; i < TAP_N(hdr_cases); i++) {
		const struct hdr_case *c = &hdr_cases[i];
		uint32_t dlen = 0xdead, fei = 0xdead;
		uint16_t fes = 0xdead;
		int rc = tcp_pdu_check(&c->h, c->ic_done, c->hdgst, c->ddgst, &dlen, &fes, &fei);

		if (rc != c->rc)
			T_FAIL("%s: rc %d, want %d", c->what, rc, c->rc);
		if (rc == -EPROTO && (fes != c->fes || fei != c->fei))
			T_FAIL("%s: FES %#x FEI %u, want FES %#x FEI %u", c->what, fes, fei, c->fes,
			       c->fei);
		if (rc == 0 && dlen != c->dlen)
			T_FAIL("%s: data length %u, want %u", c->what, dlen, c->dlen);
	}
}

/* ---- a queue over a socketpair, with recording ops ---------------------------- */

static struct {
	int icreqs, capsules, h2cs, h2c_dones, bad_ddgst;
	uint8_t icd[TCP_ICD_MAX];
	uint32_t icd_len;
	bool icd_bad;
	uint16_t cid;
	uint8_t h2c_buf[TCP_MAXH2CDATA];
	bool stop_after_capsule;
} rec;

static int rec_icreq(struct tcp_queue *q, const struct nvme_tcp_icreq *req)
{
	rec.icreqs++;
	q->c.ic_done = true;
	return 0;
}

static int rec_capsule(struct tcp_queue *q, const struct nvme_tcp_cmd_pdu *pdu, const uint8_t *icd,
		       uint32_t icd_len, bool ddgst_bad)
{
	rec.capsules++;
	rec.cid = pdu->sqe.cid;
	rec.icd_len = icd_len;
	rec.icd_bad = ddgst_bad;
	if (icd_len)
		memcpy(rec.icd, icd, icd_len);
	return rec.stop_after_capsule ? TCP_STOP : 0;
}

static uint8_t *rec_h2c(struct tcp_queue *q, const struct nvme_tcp_h2c_data_pdu *h)
{
	rec.h2cs++;
	return rec.h2c_buf + h->datao;
}

static int rec_h2c_done(struct tcp_queue *q, bool bad)
{
	rec.h2c_dones++;
	rec.bad_ddgst += bad;
	return 0;
}

static const struct tcp_conn_ops rec_ops = {
	.icreq = rec_icreq,
	.capsule = rec_capsule,
	.h2c = rec_h2c,
	.h2c_done = rec_h2c_done,
};

static struct tcp_queue *queue_pair(int *peer, bool hdgst, bool ddgst)
{
	struct tcp_queue *q = calloc(1, sizeof(*q));
	int sv[2];

	if (!q || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) ||
	    tcp_conn_init(&q->c, sv[0], 64))
		abort();
	q->c.ops = &rec_ops;
	q->c.ic_done = true;
	q->c.hdgst = hdgst;
	q->c.ddgst = ddgst;
	*peer = sv[1];
	memset(&rec, 0, sizeof(rec));
	return q;
}

static void queue_free(struct tcp_queue *q, int peer)
{
	tcp_conn_fini(&q->c);
	free(q);
	close(peer);
}

static uint32_t crc(const void *p, size_t n)
{
	return leap_crc32c(0, p, n);
}

/* A CapsuleCmd with optional digests and in-capsule data, into buf; returns its length. */
static size_t build_capsule(uint8_t *buf, uint16_t cid, bool hd, bool dd, const void *icd,
			    uint32_t n, bool corrupt_ddgst)
{
	struct nvme_tcp_cmd_pdu p = { 0 }; /* buf is at any offset of a stream: build, then copy */
	uint32_t h = hd ? 4 : 0, d = dd && n ? 4 : 0, v;

	p.hdr.pdu_type = CMD;
	p.hdr.flags = (hd ? HD : 0) | (d ? DD : 0);
	p.hdr.hlen = 72;
	p.hdr.pdo = n ? (uint8_t)(72 + h) : 0;
	p.hdr.plen = 72 + h + n + d;
	p.sqe.cid = cid;
	memcpy(buf, &p, sizeof(p));
	if (h) {
		v = crc(&p, 72);
		memcpy(buf + 72, &v, 4);
	}
	if (n) /* icd may be NULL without data */
		memcpy(buf + 72 + h, icd, n);
	if (d) {
		v = crc(icd, n) ^ (corrupt_ddgst ? 1 : 0);
		memcpy(buf + 72 + h + n, &v, 4);
	}
	return p.hdr.plen;
}

static void test_capsules_byte_by_byte(void)
{
	static uint8_t data[TCP_ICD_MAX], buf[3 * (TCP_ICD_MAX + 100)];
	size_t len = 0;
	int peer;
	struct tcp_queue *q = queue_pair(&peer, true, true);

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	len += build_capsule(buf + len, 1, true, true, NULL, 0, false);
	len += build_capsule(buf + len, 2, true, true, data, TCP_ICD_MAX, false);
	len += build_capsule(buf + len, 3, true, true, data, 100, true);
	for (size_t i = 0; i < len; i++) {
		T_ASSERT_EQ(write(peer, buf + i, 1), 1);
		T_ASSERT(tcp_conn_rx(q) >= 0);
	}
	T_ASSERT_EQ(rec.capsules, 3);
	T_ASSERT_EQ(rec.cid, 3);
	T_ASSERT_EQ(rec.icd_len, 100);
	T_ASSERT(rec.icd_bad);
	T_ASSERT(!q->c.fatal);
	T_ASSERT_MEM_EQ(rec.icd, data, 100);
	queue_free(q, peer);
}

/*
 * PDUs back to back in one read start at any offset of the receive buffer
 * (here 79 and 155): their headers are read from aligned copies (the
 * sanitizer tier's UBSan reports a misaligned SQE otherwise).
 */
static void test_pdus_at_odd_offsets(void)
{
	uint8_t buf[512], data[3] = { 1, 2, 3 };
	size_t len = 0;
	int peer;
	struct tcp_queue *q = queue_pair(&peer, true, false);

	len += build_capsule(buf + len, 1, true, false, data, sizeof(data), false);
	len += build_capsule(buf + len, 2, true, false, NULL, 0, false);
	len += build_capsule(buf + len, 3, true, false, data, 1, false);
	T_ASSERT_EQ(len, 79 + 76 + 77);
	T_ASSERT_EQ(write(peer, buf, len), (ssize_t)len);
	T_ASSERT_EQ(tcp_conn_rx(q), 1);
	T_ASSERT_EQ(rec.capsules, 3);
	T_ASSERT_EQ(rec.cid, 3);
	T_ASSERT_EQ(rec.icd_len, 1);
	T_ASSERT(!q->c.fatal);
	queue_free(q, peer);
}

static void test_header_digest_fatal(void)
{
	uint8_t buf[128], term[256];
	size_t len;
	int peer;
	struct tcp_queue *q = queue_pair(&peer, true, false);
	const struct nvme_tcp_term_req *t = (const void *)term;

	len = build_capsule(buf, 9, true, false, NULL, 0, false);
	buf[72] ^= 0x55;
	T_ASSERT_EQ(write(peer, buf, len), (ssize_t)len);
	T_ASSERT_EQ(tcp_conn_rx(q), -EPROTO);
	T_ASSERT(q->c.fatal && q->c.closing);
	T_ASSERT_EQ(rec.capsules, 0);
	T_ASSERT_EQ(tcp_conn_flush(&q->c), 0);
	/* C2HTermReq: 24 bytes, FES 3, then the offending 72-byte header. */
	T_ASSERT_EQ(read(peer, term, sizeof(term)), 24 + 72);
	T_ASSERT_EQ(t->hdr.pdu_type, NVME_TCP_PDU_C2H_TERM_REQ);
	T_ASSERT_EQ(t->hdr.hlen, 24);
	T_ASSERT_EQ(t->hdr.plen, 96);
	T_ASSERT_EQ(t->hdr.flags, 0);
	T_ASSERT_EQ(t->fes, NVME_TCP_FES_HDGST_ERROR);
	T_ASSERT_MEM_EQ(term + 24, buf, 72);
	queue_free(q, peer);
}

/* An H2CData PDU (no header digest) with data digest, into buf. */
static size_t build_h2c(uint8_t *buf, uint32_t datao, const uint8_t *data, uint32_t n, bool dd,
			bool corrupt)
{
	struct nvme_tcp_h2c_data_pdu *h = (struct nvme_tcp_h2c_data_pdu *)buf;
	uint32_t v;

	memset(h, 0, sizeof(*h));
	h->hdr.pdu_type = H2C;
	h->hdr.flags = LAST | (dd ? DD : 0);
	h->hdr.hlen = 24;
	h->hdr.pdo = 24;
	h->hdr.plen = 24 + n + (dd ? 4 : 0);
	h->datao = datao;
	h->datal = n;
	memcpy(buf + 24, data, n);
	if (dd) {
		v = crc(data, n) ^ (corrupt ? 1 : 0);
		memcpy(buf + 24 + n, &v, 4);
	}
	return h->hdr.plen;
}

static void test_h2c_streams(void)
{
	static uint8_t data[TCP_MAXH2CDATA], buf[TCP_MAXH2CDATA + 64];
	size_t len, off;
	int peer, spins = 0;
	struct tcp_queue *q = queue_pair(&peer, false, true);

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i ^ (i >> 8));
	/* 128 KiB in one PDU: more than the receive buffer, so most of it goes direct. */
	len = build_h2c(buf, 0, data, sizeof(data), true, false);
	for (off = 0; off < len || rec.h2c_dones == 0; spins++) {
		ssize_t n = off < len ? write(peer, buf + off, LEAP_MIN(len - off, 5000)) : 0;

		if (n > 0)
			off += (size_t)n;
		T_ASSERT(tcp_conn_rx(q) >= 0);
		T_ASSERT(spins < 100000);
	}
	T_ASSERT_EQ(rec.h2cs, 1);
	T_ASSERT_EQ(rec.h2c_dones, 1);
	T_ASSERT_EQ(rec.bad_ddgst, 0);
	T_ASSERT_MEM_EQ(rec.h2c_buf, data, sizeof(data));
	/* A corrupted data digest is reported to the owner, not fatal. */
	len = build_h2c(buf, 0, data, 4096, true, true);
	T_ASSERT_EQ(write(peer, buf, len), (ssize_t)len);
	T_ASSERT(tcp_conn_rx(q) >= 0);
	T_ASSERT_EQ(rec.h2c_dones, 2);
	T_ASSERT_EQ(rec.bad_ddgst, 1);
	T_ASSERT(!q->c.fatal);
	/* DATAL disagreeing with the PDU's length is fatal at DATAL (byte 16). */
	len = build_h2c(buf, 0, data, 512, true, false);
	((struct nvme_tcp_h2c_data_pdu *)buf)->datal = 256;
	T_ASSERT_EQ(write(peer, buf, len), (ssize_t)len);
	T_ASSERT_EQ(tcp_conn_rx(q), -EPROTO);
	T_ASSERT(q->c.fatal);
	T_ASSERT_EQ(rec.h2cs, 2);
	queue_free(q, peer);
}

static void test_stop_leaves_the_rest(void)
{
	uint8_t buf[512];
	size_t len = 0;
	int peer;
	struct tcp_queue *q = queue_pair(&peer, false, false);

	len += build_capsule(buf + len, 1, false, false, NULL, 0, false);
	len += build_capsule(buf + len, 2, false, false, NULL, 0, false);
	rec.stop_after_capsule = true;
	T_ASSERT_EQ(write(peer, buf, len), (ssize_t)len);
	/* The first capsule hands the queue off: the second stays for its new owner. */
	T_ASSERT_EQ(tcp_conn_rx(q), TCP_STOP);
	T_ASSERT_EQ(rec.capsules, 1);
	rec.stop_after_capsule = false;
	T_ASSERT_EQ(tcp_conn_rx(q), 0);
	T_ASSERT_EQ(rec.capsules, 2);
	T_ASSERT_EQ(rec.cid, 2);
	queue_free(q, peer);
}

/* ---- send ------------------------------------------------------------------------- */

static void test_flush_in_pieces_releases_slots_in_order(void)
{
	static uint8_t data[3][65536], got[3 * (65536 + 32)];
	uint8_t hdr[3][24], dg[3][4];
	struct leap_qpair qp;
	size_t want = 0, have = 0;
	int peer, sz = 4096, spins = 0;
	struct tcp_queue *q = queue_pair(&peer, false, false);
	struct leap_req *r[3];

	T_ASSERT_EQ(leap_qpair_init(&qp, NULL, 1, 1, 3, 3), 0);
	setsockopt(q->c.fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	for (int i = 0; i < 3; i++) {
		memset(hdr[i], 'a' + i, sizeof(hdr[i]));
		memset(data[i], 'A' + i, sizeof(data[i]));
		memset(dg[i], '0' + i, sizeof(dg[i]));
		r[i] = leap_qpair_req_get(&qp);
		T_ASSERT_EQ(tcp_conn_send(&q->c, hdr[i], 24, data[i], sizeof(data[i]), dg[i], r[i]),
			    0);
		want += 24 + sizeof(data[i]) + 4;
	}
	T_ASSERT_EQ(qp.busy, 3);
	while (have < want) {
		ssize_t n;

		T_ASSERT_EQ(tcp_conn_flush(&q->c), 0);
		/* Slots go back only once every byte of their PDU has left. */
		T_ASSERT_EQ(qp.busy, 3 - (q->c.tx_head));
		n = read(peer, got + have, sizeof(got) - have);
		if (n > 0)
			have += (size_t)n;
		T_ASSERT(++spins < 100000);
	}
	T_ASSERT(spins > 3); /* the socket really took it in pieces */
	T_ASSERT_EQ(tcp_conn_flush(&q->c), 0);
	T_ASSERT_EQ(qp.busy, 0);
	T_ASSERT(!tcp_conn_tx_pending(&q->c));
	for (int i = 0, o = 0; i < 3; i++) {
		T_ASSERT_MEM_EQ(got + o, hdr[i], 24);
		T_ASSERT_MEM_EQ(got + o + 24, data[i], sizeof(data[i]));
		T_ASSERT_MEM_EQ(got + o + 24 + sizeof(data[i]), dg[i], 4);
		o += 24 + (int)sizeof(data[i]) + 4;
	}
	leap_qpair_fini(&qp);
	queue_free(q, peer);
}

static void test_fatal_drops_unsent_but_finishes_a_started_pdu(void)
{
	static uint8_t data[200000];
	uint8_t hdr[24] = { 1 }, got[4096];
	struct leap_qpair qp;
	struct tcp_queue *q;
	int peer, sz = 4096;
	size_t total = 0;
	ssize_t n;

	q = queue_pair(&peer, false, false);
	T_ASSERT_EQ(leap_qpair_init(&qp, NULL, 1, 1, 2, 2), 0);
	setsockopt(q->c.fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	tcp_conn_send(&q->c, hdr, 24, data, sizeof(data), NULL, leap_qpair_req_get(&qp));
	tcp_conn_send(&q->c, hdr, 24, NULL, 0, NULL, leap_qpair_req_get(&qp));
	T_ASSERT_EQ(tcp_conn_flush(&q->c), 0);
	T_ASSERT(q->c.tx_off > 0); /* the big PDU is half on the wire */
	T_ASSERT_EQ(tcp_conn_fatal(&q->c, 1, 4, hdr, 24, "test"), -EPROTO);
	/* The second PDU was dropped and its slot released; the first stays. */
	T_ASSERT_EQ(qp.busy, 1);
	T_ASSERT_EQ(q->c.tx_tail - q->c.tx_head, 2); /* the started PDU, then the TermReq */
	while (tcp_conn_tx_pending(&q->c)) {
		tcp_conn_flush(&q->c);
		while ((n = read(peer, got, sizeof(got))) > 0)
			total += (size_t)n;
	}
	T_ASSERT_EQ(total, 24 + sizeof(data) + 24 + 24);
	T_ASSERT_EQ(qp.busy, 0);
	leap_qpair_fini(&qp);
	queue_free(q, peer);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_pdu_check),
		TAP_CASE(test_capsules_byte_by_byte),
		TAP_CASE(test_pdus_at_odd_offsets),
		TAP_CASE(test_header_digest_fatal),
		TAP_CASE(test_h2c_streams),
		TAP_CASE(test_stop_leaves_the_rest),
		TAP_CASE(test_flush_in_pieces_releases_slots_in_order),
		TAP_CASE(test_fatal_drops_unsent_but_finishes_a_started_pdu),
	};

	return tap_run(cases, TAP_N(cases));
}
