/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NVMe/TCP target front-end (TP 8000 over include/leapio/nvmf_spec.h),
 * shared between its files:
 *
 *   tcp_frontend.c   the module: listener_add {"type": "tcp", ...} parameters
 *   tcp_listener.c   the listener thread: accept, ICReq/ICResp, the Connect,
 *                    access control, hand-off to a reactor, connection limits
 *   tcp_discovery.c  the discovery controller (served on the listener thread)
 *   tcp_pdu.c        what every connection does: receive and check PDUs,
 *                    digests, the send queue, C2HTermReq
 *   tcp_queue.c      queues on the controller's reactor: commands, R2T/H2CData,
 *                    C2HData, responses, the transport ops
 *   tcp_assoc.c      an association (one host on one controller): its poller,
 *                    keep-alive, I/O queue Connects, teardown
 *
 * Objects: a struct tcp_queue is one TCP connection = one NVMe queue. It is
 * born on the listener thread at accept and lives there until its Connect;
 * a discovery queue stays there, a controller's queue moves to the
 * controller's reactor inside a struct tcp_assoc (one per attached
 * controller: a leapio controller is one NVM subsystem with one controller,
 * the static controller model). After the hand-off only that reactor
 * touches the queue.
 */
#ifndef LEAPIO_RUNTIME_TCP_INTERNAL_H
#define LEAPIO_RUNTIME_TCP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#include "leapio/nvmf_spec.h"
#include "nvme/ctrl.h"

struct leap_reactor;
struct leap_poller;
struct tcp_assoc;
struct tcp_listener;
struct tcp_queue;

/* ---- limits (what ICResp and Identify advertise) ---------------------------- */

#define TCP_ICD_MAX	  8192u /* in-capsule data per command, admin and I/O queues */
#define TCP_IOCCSZ	  ((NVME_SQE_SIZE + TCP_ICD_MAX) / 16)
#define TCP_IORCSZ	  (NVME_CQE_SIZE / 16)
#define TCP_MAXH2CDATA	  ((uint32_t)LEAP_CTRL_MAX_XFER) /* one H2CData PDU may carry it all */
#define TCP_SLOT_BUF	  ((size_t)LEAP_CTRL_MAX_XFER)	 /* data buffer per command slot */
#define TCP_ADMIN_DEPTH	  128u /* admin queue entries at most (Connect SQSIZE + 1); Linux asks 32 */
#define TCP_RX_BUF	  (64u * 1024) /* receive buffer per connection */
#define TCP_HDR_MAX	  128u	       /* a PDU header we send: 24 bytes + digest + HPDA padding */
#define TCP_TERM_HDR_MAX  NVME_TCP_TERM_REQ_DATA_MAX
#define TCP_TX_IOV	  192  /* iovecs per sendmsg (64 PDUs of header, data, digest) */
#define TCP_PDU_HDR_MAX	  255u /* PDO is one byte: header + digest + padding fit in it */
#define TCP_CAPSULE_MAX	  (TCP_PDU_HDR_MAX + TCP_ICD_MAX + NVME_TCP_DIGEST_LEN)
#define TCP_DISC_MAX_RECS 1024u /* discovery log entries at most (1 MiB page) */

_Static_assert(TCP_CAPSULE_MAX < TCP_RX_BUF / 2, "a whole capsule fits the receive buffer");
_Static_assert(TCP_MAXH2CDATA >= NVME_TCP_MIN_MAXH2CDATA, "MAXH2CDATA is at least 4 KiB");

/* ---- one connection's PDU engine (tcp_pdu.c) --------------------------------- */

enum tcp_rx_state {
	TCP_RX_HDR,   /* waiting for a whole header (a whole PDU for capsules) */
	TCP_RX_DATA,  /* streaming an H2CData PDU's data to its slot buffer */
	TCP_RX_DDGST, /* its data digest */
};

/* One PDU to send: header bytes, optional data, optional data digest. */
struct tcp_tx {
	const void *hdr;
	const void *data;
	const void *ddgst; /* 4 bytes, or NULL */
	uint32_t hlen;
	uint32_t dlen;
	struct leap_req *put; /* slot released once every byte is sent, or NULL */
};

/*
 * What the connection's owner does with what arrives. Each returns 0 to go
 * on parsing, TCP_STOP to stop (the queue was handed off or is closing), or
 * a fatal error set with tcp_conn_fatal().
 */
struct tcp_conn_ops {
	int (*icreq)(struct tcp_queue *q, const struct nvme_tcp_icreq *req);
	/* A whole CapsuleCmd; `icd` points into the receive buffer. */
	int (*capsule)(struct tcp_queue *q, const struct nvme_tcp_cmd_pdu *pdu, const uint8_t *icd,
		       uint32_t icd_len, bool ddgst_bad);
	/*
	 * An H2CData header (checked against the common rules): return the
	 * buffer its datal bytes go to, or NULL after tcp_conn_fatal().
	 */
	uint8_t *(*h2c)(struct tcp_queue *q, const struct nvme_tcp_h2c_data_pdu *pdu);
	/* The data of the current H2CData PDU arrived (digest checked). */
	int (*h2c_done)(struct tcp_queue *q, bool ddgst_bad);
};

/* An op or tcp_conn_rx(): stop touching the queue (handed off, or closing). */
#define TCP_STOP 2

struct tcp_conn {
	int fd;
	const struct tcp_conn_ops *ops;
	bool ic_done; /* ICReq received: every other PDU type from here on */
	bool hdgst, ddgst;
	uint8_t hpda; /* host PDU data alignment for our C2HData: (hpda + 1) * 4 */
	bool rx_seen; /* bytes arrived since the keep-alive timer last looked */
	bool eof;     /* the peer closed or the socket failed */
	bool closing; /* flush what is queued (a TermReq, a last response), then close */
	bool fatal;   /* a C2HTermReq is queued: nothing else is sent or parsed */
	char why[96]; /* what ended the connection, for the one log line */
	/* Receive */
	uint8_t *rx;
	uint32_t rx_head, rx_tail; /* unparsed bytes are rx[rx_head, rx_tail) */
	enum tcp_rx_state rx_state;
	uint8_t *rx_dst;  /* TCP_RX_DATA: where the next data byte goes */
	uint32_t rx_left; /* ... and how many are still due */
	uint32_t rx_crc;
	uint64_t rx_bytes, tx_bytes;
	/* Send: a ring of PDUs, sent in order with one sendmsg per flush. */
	struct tcp_tx *tx;
	uint32_t tx_mask;
	uint32_t tx_head, tx_tail; /* free-running */
	uint32_t tx_off;	   /* bytes of tx[tx_head] already sent */
	uint8_t term[sizeof(struct nvme_tcp_term_req) + TCP_TERM_HDR_MAX];
	char peer[64]; /* "address:port" of the host */
};

/* Allocate the receive buffer and a send ring of `tx_slots` (a power of two) PDUs. */
int tcp_conn_init(struct tcp_conn *c, int fd, uint32_t tx_slots);
/* Grow the send ring (listener thread, at Connect). -ENOMEM. */
int tcp_conn_tx_resize(struct tcp_conn *c, uint32_t tx_slots);
void tcp_conn_fini(struct tcp_conn *c);
/*
 * One recv() (straight into the current H2CData buffer when the receive
 * buffer is empty), then parse every complete PDU. Returns 1 when bytes
 * arrived, 0 when none did, TCP_STOP when an op stopped parsing (do not
 * touch q), or -errno when the connection ended (c->eof or c->fatal).
 */
int tcp_conn_rx(struct tcp_queue *q);
/* Close the socket (after discarding unread input, so a queued TermReq is not reset away). */
void tcp_conn_close(struct tcp_conn *c);
/* One sendmsg() of what is queued. 0, or -errno when the connection is broken. */
int tcp_conn_flush(struct tcp_conn *c);
static inline bool tcp_conn_tx_pending(const struct tcp_conn *c)
{
	return c->tx_head != c->tx_tail;
}
static inline uint32_t tcp_conn_tx_free(const struct tcp_conn *c)
{
	return c->tx_mask + 1 - (c->tx_tail - c->tx_head);
}
/* Queue a PDU. -ENOSPC if the ring is full (a host ignoring flow control: fatal). */
int tcp_conn_send(struct tcp_conn *c, const void *hdr, uint32_t hlen, const void *data,
		  uint32_t dlen, const void *ddgst, struct leap_req *put);
/*
 * Fatal transport error: drop unsent PDUs not yet started, queue a
 * C2HTermReq with `fes`/`fei` carrying `hdr` (the offending PDU header,
 * up to 128 bytes; NULL: none) and mark the connection closing. Returns
 * -EPROTO for the caller to pass up.
 */
int tcp_conn_fatal(struct tcp_conn *c, uint16_t fes, uint32_t fei, const void *hdr, uint32_t hlen,
		   const char *why, ...) __attribute__((format(printf, 6, 7)));
/* Fill a PDU header we send; returns its length with the header digest. */
uint32_t tcp_hdr_finish(const struct tcp_conn *c, void *hdr, uint32_t hlen);

/*
 * The common-header rules of TP 8000 (7.4): type, flags, HLEN, PDO, PLEN,
 * in that order, so the lowest wrong field is the one reported. Returns 0
 * with *data_len (without digest), -EPROTO with *fes and *fei set, or
 * -ECONNRESET for a TermReq whose length is invalid (closed silently).
 */
int tcp_pdu_check(const struct nvme_tcp_common_hdr *ch, bool ic_done, bool hdgst, bool ddgst,
		  uint32_t *data_len, uint16_t *fes, uint32_t *fei);

/* ---- a queue (one connection) ----------------------------------------------- */

enum tcp_slot_state {
	TCP_SLOT_FREE = 0,
	TCP_SLOT_H2C,  /* R2T sent: receiving the write's data */
	TCP_SLOT_EXEC, /* with the controller (or answered by the transport) */
};

/* Transport state per command slot (indexed like the qpair's leap_req slots). */
struct tcp_slot {
	uint8_t *buf;		  /* TCP_SLOT_BUF bytes of data */
	uint8_t state;		  /* enum tcp_slot_state */
	bool ddgst_bad;		  /* a data digest mismatched: answer Transient Transport Error */
	uint16_t cid;		  /* the command's CID while H2C */
	uint32_t len;		  /* data the command moves (SGL length) */
	uint32_t done;		  /* H2C bytes received */
	uint32_t c2h_len;	  /* read data to send from buf (map_data) */
	uint32_t icd_len;	  /* in-capsule data in buf */
	uint32_t ddgst;		  /* C2HData digest, little-endian */
	uint8_t hdr[TCP_HDR_MAX]; /* R2T or C2HData header */
	uint8_t resp[sizeof(struct nvme_tcp_rsp_pdu) + NVME_TCP_DIGEST_LEN];
};

enum tcp_queue_stage {
	TCP_Q_ICREQ,	 /* listener: waiting for ICReq */
	TCP_Q_CONNECT,	 /* listener: waiting for the Connect */
	TCP_Q_RETRY,	 /* listener: the controller is busy; retrying the admin Connect */
	TCP_Q_DISCOVERY, /* listener: a discovery controller's admin queue */
	TCP_Q_HANDOFF,	 /* listener: to be sent to a reactor */
	TCP_Q_LIVE,	 /* reactor: a controller's queue */
};

struct tcp_disc;

struct tcp_queue {
	struct tcp_conn c;
	struct tcp_listener *l;
	struct tcp_assoc *assoc;
	enum tcp_queue_stage stage;
	uint16_t qid;
	uint16_t sqhd;	      /* commands consumed, modulo depth (CQE SQHD) */
	uint32_t depth;	      /* SQ entries (Connect SQSIZE + 1) = command slots */
	bool sqflow_off;      /* Connect CATTR: SQ flow control disabled (allows C2HData SUCCESS) */
	uint64_t deadline_ns; /* listener stages: handshake deadline */
	uint64_t retry_until_ns;
	uint64_t close_by_ns; /* listener: a closing queue that will not drain goes anyway */
	uint64_t last_rx_ns;
	uint32_t kato_ms;
	/* The Connect, kept until it is answered (on the reactor for a controller's queues). */
	struct nvmf_connect_cmd connect;
	struct nvmf_connect_data cdata;
	uint8_t icresp[sizeof(struct nvme_tcp_icresp) + NVME_TCP_DIGEST_LEN];
	uint8_t cresp[sizeof(struct nvme_tcp_rsp_pdu) + NVME_TCP_DIGEST_LEN];
	/* Command slots (after the Connect). */
	struct leap_qpair qp;
	struct tcp_slot *slots;
	uint32_t n_h2c;	   /* slots waiting for the host's write data (not at the controller) */
	uint16_t h2c_slot; /* the slot the H2CData PDU being received belongs to */
	uint32_t h2c_len;
	uint8_t *data; /* depth * TCP_SLOT_BUF, MAP_NORESERVE: untouched pages cost nothing */
	size_t data_len;
	struct tcp_disc *disc; /* TCP_Q_DISCOVERY */
	struct tcp_queue *next;
};

/* Listener thread: a queue for an accepted fd (non-blocking). NULL on ENOMEM. */
struct tcp_queue *tcp_queue_new(struct tcp_listener *l, int fd, const char *peer);
/* Command slots for `depth` entries (any thread that owns q). -ENOMEM. */
int tcp_queue_slots_init(struct tcp_queue *q, struct leap_ctrl *ctrl, uint32_t depth);
/* Close the socket, free everything. NULL-safe. */
void tcp_queue_free(struct tcp_queue *q);

/* Fill a CapsuleResp in `buf` for `cid` with internal `status`, dw0/dw1; returns its length. */
uint32_t tcp_resp_fill(const struct tcp_queue *q, uint8_t *buf, uint16_t cid, uint16_t status,
		       uint32_t dw0, uint32_t dw1);
/* Queue req's CapsuleResp (from the controller's status, cdw0) and release its slot after it. */
int tcp_queue_respond(struct tcp_queue *q, struct leap_req *req, uint16_t status, uint32_t dw0,
		      uint32_t dw1);
/* Queue req's read data (slot->c2h_len bytes) and then its response. */
int tcp_queue_c2h(struct tcp_queue *q, struct leap_req *req, uint16_t status, uint32_t dw0);
/* The slot of req. */
static inline struct tcp_slot *tcp_slot_of(struct tcp_queue *q, const struct leap_req *req)
{
	return &q->slots[req->slot];
}
/* A free command slot (sqhd advanced) or NULL after a fatal error: more commands than SQ entries. */
struct leap_req *tcp_queue_slot_get(struct tcp_queue *q, const struct nvme_tcp_cmd_pdu *pdu);

/* ---- the listener (tcp_listener.c) ------------------------------------------- */

struct tcp_listener_opts {
	char addr[INET6_ADDRSTRLEN];
	uint16_t port;
	uint32_t handshake_timeout_ms; /* ICReq and Connect must arrive within this */
	uint32_t idle_timeout_ms;      /* a host without keep-alive (KATO 0) silent this long */
	uint32_t max_connections;      /* queues through this listener, all stages */
};

#define TCP_DEFAULT_HANDSHAKE_MS 10000u
#define TCP_DEFAULT_IDLE_MS	 120000u
#define TCP_DEFAULT_MAX_CONNS	 256u

struct tcp_listener {
	struct tcp_listener_opts o;
	struct leap_reactor **reactors;
	uint32_t nreactors;
	int lfd;
	int stop_fd;
	int family;
	pthread_t thread;
	bool thread_started;
	/* Listener thread only */
	struct tcp_queue *pending; /* handshakes and discovery queues */
	uint32_t npending;
	bool at_limit; /* "refusing connections" logged for the current episode */
	uint64_t denied_window_ns;
	uint32_t denied_in_window, denied_suppressed;
	uint16_t disc_cntlid;
	/* Shared with reactors (lock) */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct tcp_assoc *assocs;
	uint32_t nassocs;
	uint32_t nconns; /* atomic: every queue of this listener, any stage */
	uint32_t ndisc;	 /* atomic */
};

int tcp_listener_start(const struct tcp_listener_opts *o, struct leap_reactor **reactors,
		       uint32_t n, struct tcp_listener **out, char *err, size_t errlen);
/* Stop accepting, close handshakes and discovery queues, tear down every association. */
void tcp_listener_stop(struct tcp_listener *l);
/* A queue of this listener is gone (any thread). */
void tcp_listener_conn_closed(struct tcp_listener *l);

/* ---- associations (tcp_assoc.c, reactor side) -------------------------------- */

struct tcp_assoc {
	struct tcp_listener *l;
	struct leap_ctrl *ctrl;
	struct leap_reactor *reactor;
	struct leap_poller *poller;
	struct leap_poller *timer;
	uint16_t cntlid;
	char hostnqn[NVMF_NQN_FIELD_SIZE];
	uint8_t hostid[16];
	/* Queues by qid ([0] admin); ids of the live ones for the hot loops. */
	struct tcp_queue *q[LEAP_SHM_MAX_QUEUES + 1];
	uint16_t qids[LEAP_SHM_MAX_QUEUES + 1];
	uint32_t nq;
	uint32_t kato_ms;    /* Connect KATO, then Set Features; 0: the listener's idle timeout */
	uint64_t last_rx_ns; /* any queue received something */
	uint32_t nzombie;    /* closed I/O queues whose slots the controller still holds */
	bool dying;	     /* torn down: draining what the controller still holds */
	bool io_reset;	     /* CC.EN 1 -> 0: I/O queues are being dropped */
	char why[128];
	struct leap_bdev_channel *armed[LEAP_CTRL_MAX_NS + LEAP_CTRL_MAX_RCHAN];
	uint32_t narmed;
	/* Listener lock */
	uint32_t refs;
	struct tcp_assoc *next;
};

extern const struct leap_ctrl_transport_ops tcp_transport_ops;
extern const struct tcp_conn_ops tcp_live_ops;

/* Listener thread: a new association for an admin queue whose Connect claimed ctrl. */
struct tcp_assoc *tcp_assoc_new(struct tcp_listener *l, struct leap_ctrl *ctrl,
				struct tcp_queue *admin);
/* Reactor messages (arg: the association, or the I/O queue). */
void tcp_assoc_start(void *arg);
void tcp_assoc_add_io(void *arg);
void tcp_assoc_kill(void *arg);
/* Connect response dw0 for Invalid Parameters: the offending field's offset and where it is. */
#define TCP_CONNECT_IPO(ipo, in_data) ((uint32_t)(ipo) | ((uint32_t)(in_data) << 16))
#define TCP_TIMER_US		      100000u /* keep-alive and stall checks */

/* Reactor: begin teardown (idempotent), with the reason logged once. */
void tcp_assoc_teardown(struct tcp_assoc *a, const char *why);
/* Drop a reference (reactor); the last frees the association. */
void tcp_assoc_put(struct tcp_assoc *a);
/* A queue's command path (tcp_queue.c), on the reactor. */
int tcp_queue_capsule(struct tcp_queue *q, const struct nvme_tcp_cmd_pdu *pdu, const uint8_t *icd,
		      uint32_t icd_len, bool ddgst_bad);
/* Release every slot not held by the controller (teardown); returns how many are still held. */
uint32_t tcp_queue_drop(struct tcp_queue *q);

/* ---- discovery (tcp_discovery.c, listener thread) ---------------------------- */

/* Make q a discovery controller's admin queue (after its Connect). -ENOMEM. */
int tcp_disc_init(struct tcp_queue *q);
void tcp_disc_fini(struct tcp_queue *q);
extern const struct tcp_conn_ops tcp_disc_ops;

/* ---- helpers ------------------------------------------------------------------ */

#define TCP_ST(sct, sc)	   NVME_STATUS(NVME_SCT_##sct, NVME_SC_##sc)
#define TCP_FABRICS_ST(sc) NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVMF_SC_##sc)

static inline uint16_t tcp_sgl_type(const struct nvme_sqe *sqe)
{
	return ((const struct nvme_sgl_desc *)(const void *)&sqe->prp1)->type;
}

static inline const struct nvme_sgl_desc *tcp_sgl(const struct nvme_sqe *sqe)
{
	return (const struct nvme_sgl_desc *)(const void *)&sqe->prp1;
}

#endif /* LEAPIO_RUNTIME_TCP_INTERNAL_H */
