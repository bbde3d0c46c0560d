/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NVMe/TCP host (initiator) library: leap-perf and the fio engine drive
 * an NVMe/TCP target with it, and leapd's NVMe/TCP backend will run it on a
 * reactor that must never block. So it has two layers:
 *
 *  - Non-blocking objects. A queue pair is one TCP connection; creating it
 *    starts a non-blocking connect(), and leap_nvmf_qpair_poll() advances it
 *    through ICReq/ICResp and the Fabrics Connect to LIVE, then reaps
 *    completions: one recv() per poll into a large per-queue buffer, every
 *    complete PDU in it parsed, queued sends flushed with one sendmsg(). A
 *    controller object runs the admin bring-up (Connect, CAP, CC.EN, CSTS.RDY,
 *    Identify, Number of Queues, I/O queue connects) as a state machine under
 *    leap_nvmf_ctrl_poll(). Nothing allocates or logs per I/O.
 *  - A blocking convenience layer (leap_nvmf_host_*) for tools and tests,
 *    which waits with poll(2).
 *
 * Threading: a queue pair belongs to one thread at a time. After a controller
 * is ready its I/O queue pairs may be handed to different threads; the admin
 * queue stays with whoever calls leap_nvmf_ctrl_poll().
 *
 * Everything a target sends is checked before it is used: a CID must name an
 * in-flight request of this generation, data must fall inside the request's
 * buffer, PDU lengths and digests must be right. Any violation fails the
 * queue pair (with a reason string, and an H2CTermReq to the target where the
 * spec asks for one); the target can never make this library write outside
 * a caller's buffer.
 */
#ifndef LEAPIO_NVMF_HOST_H
#define LEAPIO_NVMF_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "leapio/nvme_spec.h"
#include "leapio/nvmf_spec.h"

/* ---- Transport ID ------------------------------------------------------ */

/*
 * Where and as whom to connect. Filled by leap_nvmf_trid_parse() or by hand
 * (zero it first). Empty strings mean "default" where noted.
 */
struct leap_nvmf_trid {
	uint8_t adrfam;				/* NVMF_ADRFAM_IPV4 or NVMF_ADRFAM_IPV6 */
	char traddr[NVMF_TRADDR_MAX_LEN + 1];	/* numeric IP address */
	char trsvcid[NVMF_TRSVCID_MAX_LEN + 1]; /* TCP port; "" = 4420 */
	char subnqn[NVMF_NQN_MAX_LEN + 1];	/* "" = the discovery NQN */
	char hostnqn[NVMF_NQN_MAX_LEN + 1];	/* "" = NVMF_NQN_UUID_PREFIX + hostid */
	uint8_t hostid[16];			/* used when hostid_set, else random per ctrl */
	bool hostid_set;
	bool hdgst; /* request header digests */
	bool ddgst; /* request data digests */
};

/*
 * Parse an SPDK-style transport ID, e.g.
 *   "trtype:tcp adrfam:ipv4 traddr:127.0.0.1 trsvcid:4420 subnqn:nqn.x hdgst:1"
 * Pairs are separated by white space; key and value by the first ':' or '='
 * (values may contain ':', as NQNs and IPv6 addresses do). Keys, case-
 * insensitive: trtype (tcp only), adrfam (ipv4|ipv6; inferred from traddr if
 * absent), traddr (required, numeric), trsvcid, subnqn, hostnqn, hostid (a
 * UUID), hdgst, ddgst (0|1). Returns 0, or -EINVAL with a message in errbuf
 * (may be NULL) for an unknown or repeated key, a bad value, or a missing
 * traddr.
 */
int leap_nvmf_trid_parse(struct leap_nvmf_trid *trid, const char *str, char *errbuf, size_t errlen);

/* Print `trid` in the form leap_nvmf_trid_parse() reads. Returns the snprintf length. */
int leap_nvmf_trid_format(const struct leap_nvmf_trid *trid, char *buf, size_t len);

/* ---- Queue pairs (non-blocking) ----------------------------------------- */

struct leap_nvmf_qpair;

/*
 * Completion callback. `cqe` is valid only during the call; its status field
 * is as on the wire (nvmf_cqe_status() gives SCT/SC). Requests the library
 * ends itself (the connection failed or the queue was destroyed) complete
 * with SCT 3 (path) / SC 71h (host path error). Every accepted submission
 * gets exactly one callback. The callback may submit on the same queue pair;
 * it must not poll or destroy it.
 */
typedef void (*leap_nvmf_cb)(void *arg, const struct nvme_cqe *cqe);

enum leap_nvmf_qpair_state {
	LEAP_NVMF_QP_CONNECTING,   /* TCP connect in progress */
	LEAP_NVMF_QP_ICREQ_SENT,   /* waiting for ICResp */
	LEAP_NVMF_QP_CONNECT_SENT, /* ICResp accepted; Fabrics Connect in flight */
	LEAP_NVMF_QP_LIVE,	   /* commands may be submitted */
	LEAP_NVMF_QP_FAILED,	   /* terminal: see leap_nvmf_qpair_reason() */
};

struct leap_nvmf_qpair_opts {
	uint16_t qid;	      /* 0 = admin queue */
	uint16_t qdepth;      /* request slots; SQSIZE sent is qdepth (0's based) */
	uint16_t cntlid;      /* NVMF_CNTLID_DYNAMIC for the admin queue */
	uint16_t max_iov;     /* iovecs per request (copied at submit); default 32 */
	uint32_t kato_ms;     /* Keep Alive Timeout sent in the admin Connect; 0 = none */
	uint32_t icd_max;     /* largest write sent in-capsule; default 8192 (admin) */
	uint32_t rx_buf_size; /* per-queue receive buffer; default 256 KiB */
};

/* Defaults: admin queue (qid 0), qdepth 32, dynamic CNTLID, in-capsule up to 8 KiB. */
void leap_nvmf_qpair_opts_init(struct leap_nvmf_qpair_opts *opts);

/*
 * Allocate a queue pair and start a non-blocking TCP connect to `trid`.
 * Nothing else happens until leap_nvmf_qpair_poll(). `trid->hostnqn` and
 * the host ID must be final (a controller passes the ones it chose). Returns
 * 0 and *qpp, or -errno (-EINVAL bad options or address, -ENOMEM, or the
 * socket()/connect() error such as -ECONNREFUSED) with *qpp NULL.
 */
int leap_nvmf_qpair_create(const struct leap_nvmf_trid *trid,
			   const struct leap_nvmf_qpair_opts *opts, struct leap_nvmf_qpair **qpp);

/*
 * Advance the connection and reap completions; never blocks. Reads what the
 * socket has in one recv(), runs the callbacks of every completed request,
 * then sends queued PDUs with one sendmsg(). A live queue with nothing in
 * flight makes no receive syscall at all, so a target that hangs up on an
 * idle queue is noticed at the next command (or by watching the fd).
 * Returns the number of completions (>= 0), or the queue's -errno once it
 * has FAILED.
 */
int leap_nvmf_qpair_poll(struct leap_nvmf_qpair *qp);

/*
 * Submit a command. The library sets CID, PSDT and SGL1; everything else in
 * `sqe` is the caller's. The direction comes from the opcode (fctype for
 * fabrics commands); the data is the concatenation of `iov` (the array is
 * copied; the buffers must stay valid until the callback). Writes up to the
 * in-capsule limit go in the capsule, others wait for R2T. The PDU is sent
 * by the next poll. Returns 0, -EAGAIN when every slot is in use, -E2BIG for
 * too many iovecs, -EINVAL for a bidirectional opcode or data on a command
 * without a direction, -ENOTCONN before LIVE, or the failure's -errno.
 */
int leap_nvmf_qpair_submit(struct leap_nvmf_qpair *qp, const struct nvme_sqe *sqe,
			   const struct iovec *iov, int iovcnt, leap_nvmf_cb cb, void *arg);

/*
 * Fail the queue pair from outside (a caller's timeout, shutdown): the socket
 * is shut down and every outstanding request completes with a host path
 * error. `err` is a -errno, `reason` a message. No-op if already failed.
 */
void leap_nvmf_qpair_fail(struct leap_nvmf_qpair *qp, int err, const char *reason);

/* Complete outstanding requests as leap_nvmf_qpair_fail(), close, free. NULL is a no-op. */
void leap_nvmf_qpair_destroy(struct leap_nvmf_qpair *qp);

enum leap_nvmf_qpair_state leap_nvmf_qpair_state(const struct leap_nvmf_qpair *qp);
/* 0, or the -errno the queue failed with. */
int leap_nvmf_qpair_error(const struct leap_nvmf_qpair *qp);
/* Why the queue failed ("" while healthy). Valid until destroy. */
const char *leap_nvmf_qpair_reason(const struct leap_nvmf_qpair *qp);
/* The socket, for epoll/poll users. Do not read or write it. */
int leap_nvmf_qpair_fd(const struct leap_nvmf_qpair *qp);
/* True while connecting or while PDUs wait to be sent: also wait for POLLOUT. */
bool leap_nvmf_qpair_wants_pollout(const struct leap_nvmf_qpair *qp);
/* Requests submitted and not yet completed. */
unsigned int leap_nvmf_qpair_outstanding(const struct leap_nvmf_qpair *qp);
uint16_t leap_nvmf_qpair_qid(const struct leap_nvmf_qpair *qp);
uint16_t leap_nvmf_qpair_qdepth(const struct leap_nvmf_qpair *qp);
/* The controller ID from the Connect response (valid once LIVE). */
uint16_t leap_nvmf_qpair_cntlid(const struct leap_nvmf_qpair *qp);

struct leap_nvmf_qpair_stats {
	uint64_t recv_calls; /* recv/readv syscalls that returned data */
	uint64_t send_calls; /* sendmsg syscalls */
	uint64_t pdus_rx;    /* PDUs parsed */
	uint64_t pdus_tx;    /* PDUs fully sent */
	uint64_t bytes_rx;
	uint64_t bytes_tx;
	uint64_t completions;
	uint64_t ddgst_errors; /* C2HData data digest mismatches */
};
void leap_nvmf_qpair_get_stats(const struct leap_nvmf_qpair *qp, struct leap_nvmf_qpair_stats *st);

/*
 * Wait up to `timeout_ms` (-1: forever) for the socket with poll(2), then
 * leap_nvmf_qpair_poll(). For tools only; a reactor polls instead. Returns
 * as leap_nvmf_qpair_poll().
 */
int leap_nvmf_qpair_wait(struct leap_nvmf_qpair *qp, int timeout_ms);

/* ---- Command helpers (build the SQE, then leap_nvmf_qpair_submit()) ----- */

/* NVM I/O. `nlb` is the block count (1's based here); the data is `iov`. */
int leap_nvmf_io_read(struct leap_nvmf_qpair *qp, uint32_t nsid, uint64_t slba, uint32_t nlb,
		      const struct iovec *iov, int iovcnt, uint32_t io_flags, leap_nvmf_cb cb,
		      void *arg);
int leap_nvmf_io_write(struct leap_nvmf_qpair *qp, uint32_t nsid, uint64_t slba, uint32_t nlb,
		       const struct iovec *iov, int iovcnt, uint32_t io_flags, leap_nvmf_cb cb,
		       void *arg);
int leap_nvmf_io_flush(struct leap_nvmf_qpair *qp, uint32_t nsid, leap_nvmf_cb cb, void *arg);
/* `io_flags` may carry NVME_WZ_DEAC / NVME_RW_FUA. */
int leap_nvmf_io_write_zeroes(struct leap_nvmf_qpair *qp, uint32_t nsid, uint64_t slba,
			      uint32_t nlb, uint32_t io_flags, leap_nvmf_cb cb, void *arg);
/* Dataset Management over `nr` ranges (buffer valid until the callback); attr e.g. deallocate. */
int leap_nvmf_io_dsm(struct leap_nvmf_qpair *qp, uint32_t nsid, const struct nvme_dsm_range *ranges,
		     uint16_t nr, uint32_t attr, leap_nvmf_cb cb, void *arg);

/* Admin queue. The Property Get value is in the CQE: dw0 (low), dw1 (high). */
int leap_nvmf_admin_prop_get(struct leap_nvmf_qpair *qp, uint32_t ofst, bool size8, leap_nvmf_cb cb,
			     void *arg);
int leap_nvmf_admin_prop_set(struct leap_nvmf_qpair *qp, uint32_t ofst, bool size8, uint64_t value,
			     leap_nvmf_cb cb, void *arg);
/* Identify `cns` (NVME_CNS_*) into `buf` (NVME_IDENTIFY_SIZE bytes). */
int leap_nvmf_admin_identify(struct leap_nvmf_qpair *qp, uint8_t cns, uint32_t nsid, void *buf,
			     leap_nvmf_cb cb, void *arg);
/* Set Features Number of Queues: ask for `nr` I/O SQs and CQs; granted counts in dw0. */
int leap_nvmf_admin_set_num_queues(struct leap_nvmf_qpair *qp, uint16_t nr, leap_nvmf_cb cb,
				   void *arg);
int leap_nvmf_admin_keep_alive(struct leap_nvmf_qpair *qp, leap_nvmf_cb cb, void *arg);
/* Get Log Page `lid` from byte `offset`, `len` bytes (a multiple of 4) into `buf`. */
int leap_nvmf_admin_get_log_page(struct leap_nvmf_qpair *qp, uint8_t lid, uint32_t nsid,
				 uint64_t offset, void *buf, uint32_t len, leap_nvmf_cb cb,
				 void *arg);
/* Fabrics Disconnect of this queue (any queue); the target then closes it. */
int leap_nvmf_qpair_disconnect(struct leap_nvmf_qpair *qp, leap_nvmf_cb cb, void *arg);

/* ---- Controllers (non-blocking bring-up) -------------------------------- */

struct leap_nvmf_ctrl;

struct leap_nvmf_ctrl_opts {
	uint16_t nr_io_queues; /* 0 for a discovery controller */
	uint16_t io_qdepth;    /* clamped to CAP.MQES and MAXCMD */
	uint16_t admin_qdepth;
	uint16_t max_iov;
	uint32_t kato_ms;     /* 0: no keep alive; else leap_nvmf_ctrl_poll() sends them */
	int timeout_ms;	      /* the whole bring-up; default 10000 */
	uint32_t rx_buf_size; /* per I/O queue; 0 = default */
};

/* Defaults: 1 I/O queue of depth 128, admin depth 32, no keep alive, 10 s bring-up. */
void leap_nvmf_ctrl_opts_init(struct leap_nvmf_ctrl_opts *opts);

/*
 * Start bringing up a controller at `trid` (admin queue connect first).
 * Returns 0 and *ctrlp, or -errno (nothing is left allocated).
 */
int leap_nvmf_ctrl_create(const struct leap_nvmf_trid *trid, const struct leap_nvmf_ctrl_opts *opts,
			  struct leap_nvmf_ctrl **ctrlp);

/*
 * Advance the bring-up, or once ready, poll the admin queue and send keep
 * alives. Never blocks. Returns -EAGAIN while bringing up, 0 when ready, or
 * the -errno of a failure (then leap_nvmf_ctrl_reason() says why, e.g.
 * "Connect failed: SCT 1 SC 84h (invalid host)"). The I/O queue pairs are
 * polled here only during bring-up.
 */
int leap_nvmf_ctrl_poll(struct leap_nvmf_ctrl *ctrl);

/*
 * Fail the controller with `err`/`reason`: the admin queue fails, and during
 * bring-up the I/O queues too. Once ready, I/O queue pairs may be owned by
 * other threads, so they are left alone (they fail on their own when the
 * target drops them, and leap_nvmf_ctrl_destroy() ends them).
 */
void leap_nvmf_ctrl_fail(struct leap_nvmf_ctrl *ctrl, int err, const char *reason);

/* Close every queue (outstanding requests complete as in qpair destroy) and free. NULL ok. */
void leap_nvmf_ctrl_destroy(struct leap_nvmf_ctrl *ctrl);

const char *leap_nvmf_ctrl_reason(const struct leap_nvmf_ctrl *ctrl);
struct leap_nvmf_qpair *leap_nvmf_ctrl_admin_qpair(struct leap_nvmf_ctrl *ctrl);
/* Granted I/O queues (may be fewer than asked); valid once ready. */
unsigned int leap_nvmf_ctrl_nr_io_queues(const struct leap_nvmf_ctrl *ctrl);
/* I/O queue `idx` (qid idx + 1), or NULL. */
struct leap_nvmf_qpair *leap_nvmf_ctrl_io_qpair(struct leap_nvmf_ctrl *ctrl, unsigned int idx);
/* The effective I/O queue depth after clamping. */
uint16_t leap_nvmf_ctrl_io_qdepth(const struct leap_nvmf_ctrl *ctrl);
/* Identify Controller data (valid once ready). */
const struct nvme_id_ctrl *leap_nvmf_ctrl_id(const struct leap_nvmf_ctrl *ctrl);
uint64_t leap_nvmf_ctrl_cap(const struct leap_nvmf_ctrl *ctrl);
uint32_t leap_nvmf_ctrl_vs(const struct leap_nvmf_ctrl *ctrl);
uint16_t leap_nvmf_ctrl_cntlid(const struct leap_nvmf_ctrl *ctrl);
/* Largest data transfer per command in bytes from MDTS, or 0 for no limit. */
uint32_t leap_nvmf_ctrl_max_xfer(const struct leap_nvmf_ctrl *ctrl);
/* The host NQN and trid actually used (hostnqn/hostid filled in). */
const struct leap_nvmf_trid *leap_nvmf_ctrl_trid(const struct leap_nvmf_ctrl *ctrl);

/* ---- Blocking layer, for tools and tests -------------------------------- */

/*
 * Connect, enable, identify and connect `nr_io_queues` I/O queues of depth
 * `qdepth`, waiting with poll(2) up to `timeout_ms`. Returns 0 and *ctrlp
 * ready, or -errno with the reason in errbuf (e.g. -ECONNREFUSED
 * "connect to 127.0.0.1:4420: Connection refused", -ETIMEDOUT, -EACCES for
 * Connect status 184h "invalid host").
 */
int leap_nvmf_host_connect(const struct leap_nvmf_trid *trid, unsigned int nr_io_queues,
			   unsigned int qdepth, int timeout_ms, struct leap_nvmf_ctrl **ctrlp,
			   char *errbuf, size_t errlen);

/* As leap_nvmf_host_connect() with full options. */
int leap_nvmf_host_connect_opts(const struct leap_nvmf_trid *trid,
				const struct leap_nvmf_ctrl_opts *opts,
				struct leap_nvmf_ctrl **ctrlp, char *errbuf, size_t errlen);

/*
 * Run one admin command and wait for it. `buf`/`len` is the data (direction
 * from the opcode); `cqe` (may be NULL) receives the completion. Returns 0 on
 * status success, -EIO on an NVMe error status (cqe says which), the queue's
 * -errno, or -ETIMEDOUT, in which case the controller is failed (so the
 * target can no longer write into `buf`).
 */
int leap_nvmf_host_admin_sync(struct leap_nvmf_ctrl *ctrl, const struct nvme_sqe *sqe, void *buf,
			      uint32_t len, struct nvme_cqe *cqe, int timeout_ms);

/* Identify Namespace `nsid`: block count and LBA size in bytes. Returns 0 or -errno. */
int leap_nvmf_host_ns_info(struct leap_nvmf_ctrl *ctrl, uint32_t nsid, uint64_t *nlb,
			   uint32_t *lba_size, int timeout_ms);

/*
 * Read the whole discovery log of the controller at `trid` (its subnqn
 * should be NVME_DISCOVERY_NQN, the parser's default): connects, reads the
 * header, the entries, re-reads while GENCTR changes, disconnects. On
 * success *logp (free() it) holds the header and numrec entries.
 */
int leap_nvmf_host_discover(const struct leap_nvmf_trid *trid, int timeout_ms,
			    struct nvmf_disc_log_hdr **logp, size_t *lenp, char *errbuf,
			    size_t errlen);

/*
 * Orderly shutdown: CC.SHN = normal, wait for CSTS.SHST complete (up to
 * `timeout_ms`), then leap_nvmf_ctrl_destroy(). NULL is a no-op.
 */
void leap_nvmf_host_disconnect(struct leap_nvmf_ctrl *ctrl, int timeout_ms);

/* A short name for a connect status (SCT 1 SC 80h..84h) or generic status, for messages. */
const char *leap_nvmf_status_str(uint16_t status);

#endif /* LEAPIO_NVMF_HOST_H */
