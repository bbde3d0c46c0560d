// SPDX-License-Identifier: BSD-3-Clause
/*
 * The PDU engine every NVMe/TCP connection runs, on the listener thread
 * (handshakes, discovery) or on a reactor (a controller's queues): one
 * recv() into a pre-allocated buffer, then every complete PDU in it checked
 * and handed to the connection's owner; H2CData payloads stream straight to
 * their command's buffer (recvmsg() puts them there directly when nothing
 * else is buffered). Sends are queued as (header, data, digest) triples in
 * a ring and leave with one sendmsg() per flush. Nothing here allocates,
 * logs or makes a syscall per PDU beyond those two calls.
 *
 * A peer's bytes are checked before anything trusts them: the common
 * header by the rules of TP 8000 section 7.4 (tcp_pdu_check), the header
 * digest before a header field is used, lengths against what was
 * negotiated. A fatal error answers with a C2HTermReq carrying the
 * offending header and closes the connection; nothing else is affected.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "leapio/common.h"
#include "leapio/crc32c.h"
#include "frontend/tcp/tcp_internal.h"

static uint32_t get_le32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void put_le32(void *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

int tcp_conn_init(struct tcp_conn *c, int fd, uint32_t tx_slots)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->rx = malloc(TCP_RX_BUF);
	if (!c->rx)
		return -ENOMEM;
	return tcp_conn_tx_resize(c, tx_slots);
}

int tcp_conn_tx_resize(struct tcp_conn *c, uint32_t tx_slots)
{
	struct tcp_tx *tx;
	uint32_t n = 0;

	if (!LEAP_IS_POW2(tx_slots))
		return -EINVAL;
	tx = calloc(tx_slots, sizeof(*tx));
	if (!tx)
		return -ENOMEM;
	/* Keep what is queued, in order (the listener grows the ring before any slot exists). */
	for (uint32_t i = c->tx_head; i != c->tx_tail && n < tx_slots; i++)
		tx[n++] = c->tx[i & c->tx_mask];
	free(c->tx);
	c->tx = tx;
	c->tx_mask = tx_slots - 1;
	c->tx_head = 0;
	c->tx_tail = n;
	return 0;
}

void tcp_conn_fini(struct tcp_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->rx);
	c->rx = NULL;
	free(c->tx);
	c->tx = NULL;
}

void tcp_conn_close(struct tcp_conn *c)
{
	char junk[4096];

	if (c->fd < 0)
		return;
	/*
	 * Closing with unread input sends a reset, which can make the host
	 * drop the C2HTermReq we just sent before reading it.
	 */
	for (int i = 0; i < 16 && recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT) > 0; i++)
		;
	close(c->fd);
	c->fd = -1;
}

/* ---- checks ------------------------------------------------------------------ */

#define FEI(field) ((uint32_t)offsetof(struct nvme_tcp_common_hdr, field))

int tcp_pdu_check(const struct nvme_tcp_common_hdr *ch, bool ic_done, bool hdgst, bool ddgst,
		  uint32_t *data_len, uint16_t *fes, uint32_t *fei)
{
	uint32_t plen = ch->plen, full, dlen;
	uint8_t valid, want_hlen;

	*fes = NVME_TCP_FES_INVALID_HEADER_FIELD;
	/* Type: ICReq first and only first; the host sends nothing of the controller's types. */
	if (!ic_done) {
		if (ch->pdu_type != NVME_TCP_PDU_ICREQ) {
			*fes = NVME_TCP_FES_PDU_SEQUENCE_ERROR;
			*fei = FEI(pdu_type);
			return -EPROTO;
		}
	} else {
		switch (ch->pdu_type) {
		case NVME_TCP_PDU_ICREQ:
			*fes = NVME_TCP_FES_PDU_SEQUENCE_ERROR;
			*fei = FEI(pdu_type);
			return -EPROTO;
		case NVME_TCP_PDU_H2C_TERM_REQ:
		case NVME_TCP_PDU_CAPSULE_CMD:
		case NVME_TCP_PDU_H2C_DATA:
			break;
		default:
			*fei = FEI(pdu_type);
			return -EPROTO;
		}
	}
	/* A TermReq with a bad length ends the connection without an answer (7.4.7). */
	if (ch->pdu_type == NVME_TCP_PDU_H2C_TERM_REQ &&
	    (plen < sizeof(struct nvme_tcp_term_req) || plen > NVME_TCP_TERM_REQ_PLEN_MAX))
		return -ECONNRESET;
	switch (ch->pdu_type) {
	case NVME_TCP_PDU_ICREQ:
		valid = 0;
		want_hlen = sizeof(struct nvme_tcp_icreq);
		break;
	case NVME_TCP_PDU_H2C_TERM_REQ:
		valid = 0;
		want_hlen = sizeof(struct nvme_tcp_term_req);
		break;
	case NVME_TCP_PDU_CAPSULE_CMD:
		valid = NVME_TCP_F_HDGST | NVME_TCP_F_DDGST;
		want_hlen = sizeof(struct nvme_tcp_cmd_pdu);
		break;
	default: /* H2CData */
		valid = NVME_TCP_F_HDGST | NVME_TCP_F_DDGST | NVME_TCP_F_DATA_LAST;
		want_hlen = sizeof(struct nvme_tcp_h2c_data_pdu);
		break;
	}
	/*
	 * Flags: nothing reserved; the header digest exactly as negotiated;
	 * a data digest only if negotiated (required with data, checked below).
	 */
	if ((ch->flags & ~valid) ||
	    ((valid & NVME_TCP_F_HDGST) && !!(ch->flags & NVME_TCP_F_HDGST) != hdgst) ||
	    ((ch->flags & NVME_TCP_F_DDGST) && !ddgst)) {
		*fei = FEI(flags);
		return -EPROTO;
	}
	if (ch->hlen != want_hlen) {
		*fei = FEI(hlen);
		return -EPROTO;
	}
	full = ch->hlen + ((ch->flags & NVME_TCP_F_HDGST) ? NVME_TCP_DIGEST_LEN : 0);
	/* PDO: 0 without data, else past the header and its digest, 4-byte aligned (CPDA 0). */
	if (ch->pdu_type == NVME_TCP_PDU_ICREQ || ch->pdu_type == NVME_TCP_PDU_H2C_TERM_REQ) {
		if (ch->pdo != 0) {
			*fei = FEI(pdo);
			return -EPROTO;
		}
	} else if (ch->pdo != 0 && (ch->pdo < full || ch->pdo > plen || (ch->pdo & 3))) {
		*fei = FEI(pdo);
		return -EPROTO;
	}
	if (ch->pdu_type == NVME_TCP_PDU_ICREQ) {
		if (plen != sizeof(struct nvme_tcp_icreq)) {
			*fei = FEI(plen);
			return -EPROTO;
		}
		*data_len = 0;
		return 0;
	}
	if (ch->pdu_type == NVME_TCP_PDU_H2C_TERM_REQ) {
		*data_len = plen - ch->hlen;
		return 0;
	}
	/* PDO 0 says "no data": the PDU is the header and its digest, nothing more. */
	if (plen < full || (ch->pdo == 0 && plen != full)) {
		*fei = FEI(plen);
		return -EPROTO;
	}
	dlen = ch->pdo == 0 ? 0 : plen - ch->pdo;
	if (dlen && !!(ch->flags & NVME_TCP_F_DDGST) != ddgst) {
		*fei = FEI(flags);
		return -EPROTO;
	}
	if (dlen && (ch->flags & NVME_TCP_F_DDGST)) {
		if (dlen <= NVME_TCP_DIGEST_LEN) {
			*fei = FEI(plen);
			return -EPROTO;
		}
		dlen -= NVME_TCP_DIGEST_LEN;
	}
	if (ch->pdu_type == NVME_TCP_PDU_H2C_DATA && dlen == 0) {
		*fei = FEI(plen);
		return -EPROTO;
	}
	/* More than the controller takes in one capsule or one H2CData PDU. */
	if ((ch->pdu_type == NVME_TCP_PDU_CAPSULE_CMD && dlen > TCP_ICD_MAX) ||
	    (ch->pdu_type == NVME_TCP_PDU_H2C_DATA && dlen > TCP_MAXH2CDATA)) {
		*fes = NVME_TCP_FES_DATA_LIMIT_EXCEEDED;
		*fei = 0;
		return -EPROTO;
	}
	*data_len = dlen;
	return 0;
}

/* ---- send ---------------------------------------------------------------------- */

uint32_t tcp_hdr_finish(const struct tcp_conn *c, void *hdr, uint32_t hlen)
{
	if (!c->hdgst)
		return hlen;
	put_le32((uint8_t *)hdr + hlen, leap_crc32c(0, hdr, hlen));
	return hlen + NVME_TCP_DIGEST_LEN;
}

int tcp_conn_send(struct tcp_conn *c, const void *hdr, uint32_t hlen, const void *data,
		  uint32_t dlen, const void *ddgst, struct leap_req *put)
{
	struct tcp_tx *e;

	if (leap_unlikely(tcp_conn_tx_free(c) == 0))
		return -ENOSPC;
	e = &c->tx[c->tx_tail++ & c->tx_mask];
	e->hdr = hdr;
	e->hlen = hlen;
	e->data = data;
	e->dlen = dlen;
	e->ddgst = ddgst;
	e->put = put;
	return 0;
}

static void tx_done(struct tcp_tx *e)
{
	if (e->put)
		leap_qpair_req_put(e->put->qp, e->put);
	e->put = NULL;
}

static uint32_t tx_len(const struct tcp_tx *e)
{
	return e->hlen + e->dlen + (e->ddgst ? NVME_TCP_DIGEST_LEN : 0);
}

int tcp_conn_flush(struct tcp_conn *c)
{
	struct iovec iov[TCP_TX_IOV];
	struct msghdr msg = { .msg_iov = iov };
	uint32_t skip = c->tx_off, n = 0;
	ssize_t sent;

	if (c->fd < 0 || c->tx_head == c->tx_tail)
		return 0;
	for (uint32_t i = c->tx_head; i != c->tx_tail && n + 3 <= TCP_TX_IOV; i++) {
		const struct tcp_tx *e = &c->tx[i & c->tx_mask];
		const void *part[3] = { e->hdr, e->data, e->ddgst };
		uint32_t len[3] = { e->hlen, e->dlen, e->ddgst ? NVME_TCP_DIGEST_LEN : 0 };

		for (int k = 0; k < 3; k++) {
			if (skip >= len[k]) {
				skip -= len[k];
				continue;
			}
			iov[n].iov_base = (uint8_t *)part[k] + skip;
			iov[n].iov_len = len[k] - skip;
			skip = 0;
			n++;
		}
	}
	msg.msg_iovlen = n;
	sent = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (sent < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		c->eof = true;
		if (!c->why[0])
			snprintf(c->why, sizeof(c->why), "send: %s", strerror(errno));
		return -errno;
	}
	c->tx_bytes += (uint64_t)sent;
	while (sent > 0) {
		struct tcp_tx *e = &c->tx[c->tx_head & c->tx_mask];
		uint32_t left = tx_len(e) - c->tx_off;

		if ((size_t)sent < left) {
			c->tx_off += (uint32_t)sent;
			break;
		}
		sent -= left;
		c->tx_off = 0;
		c->tx_head++;
		tx_done(e);
	}
	return 0;
}

int tcp_conn_fatal(struct tcp_conn *c, uint16_t fes, uint32_t fei, const void *hdr, uint32_t hlen,
		   const char *why, ...)
{
	struct nvme_tcp_term_req *t = (struct nvme_tcp_term_req *)c->term;
	uint32_t keep = c->tx_off ? 1 : 0;
	va_list ap;

	if (c->fatal)
		return -EPROTO;
	c->fatal = true;
	c->closing = true;
	va_start(ap, why);
	vsnprintf(c->why, sizeof(c->why), why, ap);
	va_end(ap);
	/* A PDU half on the wire must finish; the rest is dropped (their slots released). */
	for (uint32_t i = c->tx_head + keep; i != c->tx_tail; i++)
		tx_done(&c->tx[i & c->tx_mask]);
	c->tx_tail = c->tx_head + keep;
	hlen = LEAP_MIN(hlen, (uint32_t)TCP_TERM_HDR_MAX);
	memset(t, 0, sizeof(*t));
	t->hdr.pdu_type = NVME_TCP_PDU_C2H_TERM_REQ;
	t->hdr.hlen = sizeof(*t);
	t->hdr.plen = (uint32_t)sizeof(*t) + hlen;
	t->fes = fes;
	t->fei = fei;
	if (hdr && hlen)
		memcpy(c->term + sizeof(*t), hdr, hlen);
	/* TermReqs carry no digests (TP 8000 7.4.7). */
	tcp_conn_send(c, c->term, t->hdr.plen, NULL, 0, NULL, NULL);
	return -EPROTO;
}

/* ---- receive -------------------------------------------------------------------- */

/*
 * A PDU header copied out of the receive buffer, where PDUs follow each
 * other at any byte offset: the header structs are read with their own
 * alignment (an SQE has 8-byte fields), never in place.
 */
union rx_hdr {
	struct nvme_tcp_common_hdr ch;
	struct nvme_tcp_icreq icreq;
	struct nvme_tcp_term_req term;
	struct nvme_tcp_cmd_pdu cmd;
	struct nvme_tcp_h2c_data_pdu h2c;
};

/* Every complete PDU in the buffer, in order. */
static int parse(struct tcp_queue *q)
{
	struct tcp_conn *c = &q->c;
	int rc;

	for (;;) {
		uint32_t avail = c->rx_tail - c->rx_head, need, full, dlen;
		const uint8_t *p = c->rx + c->rx_head;
		union rx_hdr h;
		const struct nvme_tcp_common_hdr *ch = &h.ch;
		uint16_t fes;
		uint32_t fei;

		if (c->closing)
			return 0;
		switch (c->rx_state) {
		case TCP_RX_DATA: {
			uint32_t n = LEAP_MIN(avail, c->rx_left);

			if (n) {
				memcpy(c->rx_dst, p, n);
				if (c->ddgst)
					c->rx_crc = leap_crc32c(c->rx_crc, p, n);
				c->rx_dst += n;
				c->rx_left -= n;
				c->rx_head += n;
			}
			if (c->rx_left)
				return 0;
			if (c->ddgst) {
				c->rx_state = TCP_RX_DDGST;
				continue;
			}
			c->rx_state = TCP_RX_HDR;
			rc = c->ops->h2c_done(q, false);
			if (rc)
				return rc;
			continue;
		}
		case TCP_RX_DDGST:
			if (avail < NVME_TCP_DIGEST_LEN)
				return 0;
			c->rx_head += NVME_TCP_DIGEST_LEN;
			c->rx_state = TCP_RX_HDR;
			rc = c->ops->h2c_done(q, get_le32(p) != c->rx_crc);
			if (rc)
				return rc;
			continue;
		case TCP_RX_HDR:
			break;
		}
		if (avail < sizeof(*ch))
			return 0;
		memcpy(&h.ch, p, sizeof(h.ch));
		rc = tcp_pdu_check(ch, c->ic_done, c->hdgst, c->ddgst, &dlen, &fes, &fei);
		if (rc == -ECONNRESET) {
			c->eof = true;
			snprintf(c->why, sizeof(c->why), "H2CTermReq with an invalid length %u",
				 ch->plen);
			return rc;
		}
		if (rc)
			return tcp_conn_fatal(c, fes, fei, p, LEAP_MIN(avail, (uint32_t)ch->hlen),
					      "bad PDU header (type %#x, field at byte %u)",
					      ch->pdu_type, fei);
		full = ch->hlen + ((ch->flags & NVME_TCP_F_HDGST) ? NVME_TCP_DIGEST_LEN : 0);
		/* Whole PDUs except H2CData, whose data streams: its header and padding. */
		need =
		    ch->pdu_type == NVME_TCP_PDU_H2C_DATA ? (ch->pdo ? ch->pdo : full) : ch->plen;
		if (avail < need)
			return 0;
		/* The whole header (tcp_pdu_check() held HLEN to its type's size; need covers it). */
		memcpy(&h, p, LEAP_MIN((uint32_t)ch->hlen, (uint32_t)sizeof(h)));
		if ((ch->flags & NVME_TCP_F_HDGST) &&
		    get_le32(p + ch->hlen) != leap_crc32c(0, p, ch->hlen))
			return tcp_conn_fatal(c, NVME_TCP_FES_HDGST_ERROR, 0, p, ch->hlen,
					      "header digest mismatch (PDU type %#x)",
					      ch->pdu_type);
		c->rx_head += need;
		switch (ch->pdu_type) {
		case NVME_TCP_PDU_ICREQ:
			rc = c->ops->icreq(q, &h.icreq);
			break;
		case NVME_TCP_PDU_H2C_TERM_REQ:
			c->eof = true;
			snprintf(c->why, sizeof(c->why), "H2CTermReq from the host: FES %#x FEI %u",
				 h.term.fes, h.term.fei);
			return -ECONNRESET;
		case NVME_TCP_PDU_CAPSULE_CMD: {
			const uint8_t *icd = dlen ? p + ch->pdo : NULL;
			bool bad = dlen && (ch->flags & NVME_TCP_F_DDGST) &&
				   get_le32(icd + dlen) != leap_crc32c(0, icd, dlen);

			rc = c->ops->capsule(q, &h.cmd, icd, dlen, bad);
			break;
		}
		default: /* H2CData */
			if (h.h2c.datal != dlen)
				return tcp_conn_fatal(
				    c, NVME_TCP_FES_INVALID_HEADER_FIELD,
				    offsetof(struct nvme_tcp_h2c_data_pdu, datal), p, ch->hlen,
				    "H2CData DATAL %u, but the PDU carries %u bytes", h.h2c.datal,
				    dlen);
			c->rx_dst = c->ops->h2c(q, &h.h2c);
			if (!c->rx_dst)
				return -EPROTO;
			c->rx_left = dlen;
			c->rx_crc = 0;
			c->rx_state = TCP_RX_DATA;
			rc = 0;
			break;
		}
		if (rc)
			return rc;
	}
}

int tcp_conn_rx(struct tcp_queue *q)
{
	struct tcp_conn *c = &q->c;
	struct iovec iov[2];
	struct msghdr msg = { .msg_iov = iov };
	uint32_t direct = 0;
	ssize_t n;
	int rc;

	if (c->fd < 0 || c->closing)
		return 0;
	/* Unparsed bytes (a partial header or capsule) move to the front. */
	if (c->rx_head) {
		memmove(c->rx, c->rx + c->rx_head, c->rx_tail - c->rx_head);
		c->rx_tail -= c->rx_head;
		c->rx_head = 0;
	}
	if (c->rx_state == TCP_RX_DATA && c->rx_tail == 0) {
		/* Payload straight to its command's buffer, whatever follows to ours. */
		iov[0] = (struct iovec){ c->rx_dst, c->rx_left };
		iov[1] = (struct iovec){ c->rx, TCP_RX_BUF };
		msg.msg_iovlen = 2;
		direct = c->rx_left;
	} else {
		iov[0] = (struct iovec){ c->rx + c->rx_tail, TCP_RX_BUF - c->rx_tail };
		msg.msg_iovlen = 1;
	}
	n = recvmsg(c->fd, &msg, MSG_DONTWAIT);
	if (n > 0) {
		uint32_t d = LEAP_MIN((uint32_t)n, direct);

		c->rx_seen = true;
		c->rx_bytes += (uint64_t)n;
		if (d) {
			if (c->ddgst)
				c->rx_crc = leap_crc32c(c->rx_crc, c->rx_dst, d);
			c->rx_dst += d;
			c->rx_left -= d;
		}
		c->rx_tail += (uint32_t)n - d;
	} else if (n == 0) {
		c->eof = true;
		if (!c->why[0])
			snprintf(c->why, sizeof(c->why), "closed by the host");
	} else if (errno != EAGAIN && errno != EINTR) {
		c->eof = true;
		if (!c->why[0])
			snprintf(c->why, sizeof(c->why), "recv: %s", strerror(errno));
	}
	/* What arrived before a close is still served (a Disconnect, say). */
	rc = parse(q);
	if (rc == TCP_STOP)
		return TCP_STOP;
	if (rc < 0)
		return rc;
	if (c->eof)
		return -ECONNRESET;
	return n > 0 ? 1 : 0;
}
