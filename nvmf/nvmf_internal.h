/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to nvmf/: the queue pair's layout, shared by the connection and
 * submission code (qpair.c), the receive parser (tcp_rx.c) and the send
 * ring (tcp_tx.c). Unit tests include the .c files and reach these too.
 *
 * Memory per queue pair is allocated once at creation: request slots, their
 * iovec arrays, a send ring of PDU headers, a receive buffer. The I/O path
 * only moves indexes.
 */
#ifndef LEAPIO_NVMF_INTERNAL_H
#define LEAPIO_NVMF_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "leapio/nvmf_host.h"

#define NVMF_MAX_QDEPTH	 4096 /* leaves >= 4 CID bits for the slot generation */
#define NVMF_MAX_IOV	 1024
#define NVMF_TX_HDR_MAX	 128 /* CapsuleCmd 72 + HDGST 4, padded to CPDA alignment <= 128 */
#define NVMF_TX_IOV_MAX	 256 /* iovecs handed to one sendmsg() */
#define NVMF_NO_REQ	 0xffff
#define NVMF_DIRECT_MIN	 16384 /* C2H payload left at least this: readv() into the caller's buffer */
#define NVMF_RX_BUF_MIN	 4096
#define NVMF_RX_BUF_DEF	 (256u << 10)
#define NVMF_DEF_QDEPTH	 32
#define NVMF_DEF_MAX_IOV 32

_Static_assert(sizeof(struct nvme_tcp_cmd_pdu) + NVME_TCP_DIGEST_LEN <= NVMF_TX_HDR_MAX,
	       "a capsule header and its digest fit a send-ring entry");
_Static_assert((NVME_TCP_PDA_MAX + 1) * 4 <= NVMF_TX_HDR_MAX,
	       "the largest CPDA alignment still fits a send-ring entry");

enum nvmf_req_state {
	NVMF_REQ_FREE = 0,
	NVMF_REQ_INFLIGHT,
};

struct nvmf_req {
	leap_nvmf_cb cb;
	void *arg;
	struct iovec *iov; /* this slot's part of the qpair's iovec pool */
	uint32_t len;	   /* total data bytes */
	uint32_t xfer;	   /* C2H: bytes received in order; H2C: end of the last R2T */
	uint32_t h2c_next; /* H2C: next offset to put in an H2CData PDU */
	uint32_t r2t_end;  /* H2C: end of the current R2T */
	uint16_t iovcnt;
	uint16_t cid;
	uint16_t gen;
	uint16_t ttag;
	uint16_t tx_refs;   /* send-ring entries still pointing at this request's buffers */
	uint16_t pend_next; /* link in the H2C-pending FIFO */
	uint8_t state;
	uint8_t dir; /* enum nvmf_data_dir */
	bool icd;    /* data went in the capsule */
	bool ddgst_err;
	bool pending; /* on the H2C-pending FIFO */
};

/* One PDU waiting to be sent: header bytes (with digest and padding) + a data slice + DDGST. */
struct nvmf_tx_ent {
	/* Headers are built in place through their structs: keep every entry 8-byte aligned. */
	uint8_t hdr[NVMF_TX_HDR_MAX] __attribute__((aligned(8)));
	uint32_t hdr_len;
	uint32_t data_off;
	uint32_t data_len;
	uint16_t req; /* NVMF_NO_REQ for ICReq */
	uint8_t has_ddgst;
	uint8_t ddgst[NVME_TCP_DIGEST_LEN];
};

enum nvmf_rx_state {
	NVMF_RX_HDR,   /* waiting for a whole PDU header (+ HDGST) */
	NVMF_RX_DATA,  /* streaming C2HData payload into the request */
	NVMF_RX_DDGST, /* waiting for the 4-byte data digest */
};

struct leap_nvmf_qpair {
	int fd;
	enum leap_nvmf_qpair_state state;
	int err;
	uint16_t qid;
	uint16_t qdepth;
	uint16_t cntlid;
	uint16_t sqhd;
	uint16_t max_iov;
	uint8_t idx_bits;
	uint16_t idx_mask;
	uint16_t gen_mask;
	/* Negotiated in ICReq/ICResp. */
	bool hdgst;
	bool ddgst;
	uint32_t tx_align; /* (CPDA + 1) * 4 */
	uint32_t maxh2cdata;
	uint32_t icd_max;
	uint32_t kato_ms;

	/* Request slots. */
	struct nvmf_req *reqs;
	struct iovec *iov_pool;
	uint16_t *free_stack;
	uint32_t nfree;
	uint32_t outstanding;

	/* Send ring: [tx_head, tx_tail), tx_head_off bytes of the head already sent. */
	struct nvmf_tx_ent *tx;
	uint32_t tx_cap; /* power of two */
	uint32_t tx_head;
	uint32_t tx_tail;
	uint32_t tx_head_off;
	uint16_t pend_head; /* H2C-pending FIFO of requests waiting for ring room */
	uint16_t pend_tail;
	struct iovec *tx_iov;

	/* Receive buffer: unparsed bytes are [rx_rd, rx_wr). */
	uint8_t *rx_buf;
	uint32_t rx_cap;
	uint32_t rx_rd;
	uint32_t rx_wr;
	enum nvmf_rx_state rx_state;
	uint8_t rx_flags; /* flags of the C2HData being received */
	uint16_t rx_req;  /* its request */
	uint32_t rx_off;  /* next byte offset in the request */
	uint32_t rx_left; /* payload bytes still to come */
	uint32_t rx_crc;  /* running data digest */
	uint32_t rx_datal;

	struct leap_nvmf_trid trid;
	struct nvmf_connect_data connect_data;
	struct iovec connect_iov;
	char peer[NVMF_TRADDR_MAX_LEN + NVMF_TRSVCID_MAX_LEN + 4];
	char reason[256];
	struct leap_nvmf_qpair_stats stats;
	uint32_t poll_completions;
};

/* qpair.c */
void nvmf_qp_fail(struct leap_nvmf_qpair *qp, int err, uint16_t fes, uint32_t fei, const void *pdu,
		  size_t pdu_len, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
void nvmf_qp_complete(struct leap_nvmf_qpair *qp, struct nvmf_req *req, const struct nvme_cqe *cqe);
struct nvmf_req *nvmf_qp_req_lookup(struct leap_nvmf_qpair *qp, uint16_t cid);
void nvmf_qp_icresp(struct leap_nvmf_qpair *qp, const struct nvme_tcp_icresp *r);

/* tcp_rx.c */
int nvmf_rx_process(struct leap_nvmf_qpair *qp);

/* tcp_tx.c */
struct nvmf_tx_ent *nvmf_tx_push(struct leap_nvmf_qpair *qp);
void nvmf_tx_queue_h2c(struct leap_nvmf_qpair *qp, struct nvmf_req *req);
int nvmf_tx_flush(struct leap_nvmf_qpair *qp);
void nvmf_tx_reset(struct leap_nvmf_qpair *qp);
uint32_t nvmf_iov_crc(uint32_t crc, const struct iovec *iov, int iovcnt, uint32_t off,
		      uint32_t len);
void nvmf_put_digest(uint8_t *dst, uint32_t crc);
uint32_t nvmf_get_le32(const uint8_t *p);

/* trid.c */
int nvmf_trid_finalize(struct leap_nvmf_trid *trid);

/* status.c-like helpers in qpair.c */
int nvmf_connect_status_errno(uint16_t status);

#endif /* LEAPIO_NVMF_INTERNAL_H */
