// SPDX-License-Identifier: BSD-3-Clause
/*
 * libFuzzer harness: the NVMe/TCP target (frontend/tcp) as a host's bytes
 * reach it, from the first ICReq on: the PDU engine (tcp_pdu.c: common
 * header checks, header and data digests, H2CData streamed into its
 * slot), the listener's handshake (ICReq, the Connect and its data, access
 * control, a busy controller), the discovery controller, and a live
 * association's queues (tcp_queue.c, tcp_assoc.c: fabrics commands, R2T
 * and H2CData, in-capsule data, commands through the controller model to a
 * mem backend, C2HData and responses, teardown).
 *
 * The listener and association code is included (as the unit tests do) and
 * run in this thread: one step is the listener loop's body for every
 * handshake and discovery queue, a hand-off done at once where leapd sends
 * a reactor message, then one poll of every association, as its reactor
 * would. The host's ends are socketpairs. Nothing waits on a clock: a
 * Connect to a busy controller is refused at once, not retried for 2 s.
 *
 * Input: records [ctl u8][len u16 LE][len bytes], each written to one of two
 * connections (the host may open an admin and an I/O queue), then a step
 * (replies are read and dropped). ctl bit 0: connection 1 (else 0); bit 1:
 * fill in the header and data digests of every whole PDU in the record
 * whose flags ask for them, so mutations get past the digest checks;
 * bit 2: no step after this record (the next one arrives with it); bit 3:
 * the host closes the connection after it. Then the host closes both and
 * the target must let everything go: no queue, association, connection
 * count or controller claim may be left (abort() if one is).
 *
 * The target has controller "f0" (cntlid 1, subsystem
 * nqn.2026-12.io.leapio:fuzz, any host allowed, 2 I/O queues of up to 64
 * entries) with namespace 1 (512-byte blocks, 8 MiB) on a mem backend.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "leapio/crc32c.h"
#include "frontend/tcp/tcp_listener.c"
#include "frontend/tcp/tcp_assoc.c"

LEAP_BDEV_MODULE_USE(leap_bdev_mem_ops);

#define FUZZ_NQN   "nqn.2026-12.io.leapio:fuzz"
#define MAX_RECS   64
#define MAX_STEPS  1000 /* to let everything go at the end; a few suffice */
#define MAX_WRITES 64	/* attempts to write one record to a socket that does not drain */

static struct tcp_listener l;
static struct leap_reactor *reactor;
static struct leap_ctrl *ctrl;
static int peer[2] = { -1, -1 };

/*
 * FUZZ_TCP_TRACE=1: what the target answers, one line per PDU that starts
 * in a read (enough to see how far an input gets), and its debug log.
 */
static bool trace;

static void trace_pdus(int i, const uint8_t *p, size_t n)
{
	while (n >= sizeof(struct nvme_tcp_common_hdr)) {
		struct nvme_tcp_common_hdr ch;
		struct nvme_cqe cqe;

		memcpy(&ch, p, sizeof(ch));
		fprintf(stderr, "conn %d: PDU type %#x plen %u", i, ch.pdu_type, ch.plen);
		if (ch.pdu_type == NVME_TCP_PDU_CAPSULE_RESP && n >= 8 + sizeof(cqe)) {
			memcpy(&cqe, p + 8, sizeof(cqe));
			fprintf(stderr, " cid %u status %#x dw0 %#x", cqe.cid, cqe.status >> 1,
				cqe.dw0);
		} else if (ch.pdu_type == NVME_TCP_PDU_R2T && n >= 24) {
			uint16_t ttag;

			memcpy(&ttag, p + 10, sizeof(ttag));
			fprintf(stderr, " ttag %u", ttag);
		} else if (ch.pdu_type == NVME_TCP_PDU_C2H_TERM_REQ && n >= 14) {
			uint16_t fes;

			memcpy(&fes, p + 8, sizeof(fes));
			fprintf(stderr, " FES %#x", fes);
		}
		fputc('\n', stderr);
		if (ch.plen < sizeof(ch) || ch.plen > n)
			return;
		p += ch.plen;
		n -= ch.plen;
	}
}

static void init(void)
{
	struct leap_reactor_opts ro = { .cpu = -1, .name = "fuzz-r0" };
	json_t *bp = json_pack("{s:s, s:s, s:I, s:i}", "type", "mem", "name", "m0", "size",
			       (json_int_t)(8 << 20), "block_size", 512);
	struct leap_ctrl_opts co = {
		.name = "f0", .nqn = FUZZ_NQN, .max_io_queues = 2, .max_qsize = 64
	};
	struct leap_bdev *b;

	leap_log_set_level(trace ? LEAP_LOG_DEBUG : LEAP_LOG_ERROR);
	/* Never started: pollers register and run on this thread. */
	if (leap_reactor_create(&ro, &reactor) || leap_bdev_create_wait(bp, &b, NULL) ||
	    leap_ctrl_create(&co, &ctrl) || leap_ctrl_ns_add(ctrl, 1, "m0", 0, 0, 512) != 1)
		abort();
	json_decref(bp);
	if (ctrl->cntlid != 1) /* the seeds' I/O Connects name it */
		abort();
	leap_ctrl_set_allow_any_host(ctrl, true);
	l.o = (struct tcp_listener_opts){ .addr = "127.0.0.1",
					  .port = 4420,
					  .handshake_timeout_ms = TCP_DEFAULT_HANDSHAKE_MS,
					  .idle_timeout_ms = TCP_DEFAULT_IDLE_MS,
					  .max_connections = TCP_DEFAULT_MAX_CONNS };
	l.reactors = &reactor;
	l.nreactors = 1;
	l.lfd = l.stop_fd = -1;
	l.family = AF_INET;
	pthread_mutex_init(&l.lock, NULL);
	pthread_cond_init(&l.cond, NULL);
}

/* What accept_some() does for a new connection, over a socketpair. */
static void host_connect(int i)
{
	struct tcp_queue *q;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		abort();
	q = tcp_queue_new(&l, sv[0], i ? "host:1" : "host:0");
	if (!q)
		abort();
	q->c.ops = &pre_ops;
	q->deadline_ns = leap_now_ns() + (uint64_t)l.o.handshake_timeout_ms * 1000000;
	q->next = l.pending;
	l.pending = q;
	l.npending++;
	__atomic_fetch_add(&l.nconns, 1, __ATOMIC_RELAXED);
	peer[i] = sv[1];
}

/* The listener loop once (without poll(): every queue is looked at), then each association. */
static void step(void)
{
	struct tcp_queue *q, *next;
	struct tcp_assoc *a, *an;
	uint8_t junk[16384];

	for (q = l.pending; q; q = q->next) {
		if (q->stage == TCP_Q_RETRY) {
			q->retry_until_ns = 0; /* no 2 s wait for a controller that stays busy */
			admin_connect(q);
		} else {
			tcp_conn_rx(q);
		}
		if (tcp_conn_tx_pending(&q->c))
			tcp_conn_flush(&q->c);
	}
	for (q = l.pending; q; q = next) {
		next = q->next;
		if (q->stage != TCP_Q_HANDOFF) {
			sweep(&l, q, leap_now_ns());
			continue;
		}
		/* handoff() without the message: this thread is the reactor. */
		pending_unlink(&l, q);
		if (q->qid == 0)
			tcp_assoc_start(q->assoc);
		else
			tcp_assoc_add_io(q);
	}
	for (a = l.assocs; a; a = an) {
		an = a->next; /* a may be freed */
		if (a->poller)
			assoc_poll(a);
	}
	/* The host reads whatever it was sent. */
	for (int i = 0; i < 2; i++) {
		ssize_t n;

		while (peer[i] >= 0 && (n = read(peer[i], junk, sizeof(junk))) > 0)
			if (trace)
				trace_pdus(i, junk, (size_t)n);
	}
}

static void host_close(int i)
{
	if (peer[i] >= 0)
		close(peer[i]);
	peer[i] = -1;
}

/* Fill in the digests every whole PDU in buf[0, len) asks for. */
static void fix_digests(uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (len - off >= sizeof(struct nvme_tcp_common_hdr)) {
		struct nvme_tcp_common_hdr ch;
		uint8_t *p = buf + off;
		uint32_t v;

		memcpy(&ch, p, sizeof(ch));
		if (ch.plen < sizeof(ch) || ch.plen > len - off)
			return;
		if ((ch.flags & NVME_TCP_F_HDGST) && ch.hlen + NVME_TCP_DIGEST_LEN <= ch.plen) {
			v = leap_crc32c(0, p, ch.hlen);
			memcpy(p + ch.hlen, &v, sizeof(v));
		}
		if ((ch.flags & NVME_TCP_F_DDGST) && ch.pdo &&
		    ch.pdo + NVME_TCP_DIGEST_LEN <= ch.plen) {
			v = leap_crc32c(0, p + ch.pdo, ch.plen - ch.pdo - NVME_TCP_DIGEST_LEN);
			memcpy(p + ch.plen - NVME_TCP_DIGEST_LEN, &v, sizeof(v));
		}
		off += ch.plen;
	}
}

/* Write a record, stepping while the target has not read what came before. */
static void host_send(int i, const uint8_t *data, size_t len)
{
	for (int tries = 0; len && tries < MAX_WRITES; tries++) {
		ssize_t n = send(peer[i], data, len, MSG_NOSIGNAL);

		if (n > 0) {
			data += n;
			len -= (size_t)n;
		} else if (n < 0 && errno != EAGAIN) {
			return; /* the target closed the connection */
		}
		if (len)
			step();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t rec[65535];
	static int ready;
	int n;

	if (!ready) {
		trace = getenv("FUZZ_TCP_TRACE") != NULL;
		init();
		ready = 1;
	}
	for (n = 0; size >= 3 && n < MAX_RECS; n++) {
		uint8_t ctl = data[0];
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;
		int i = ctl & 1;

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		memcpy(rec, data, len);
		data += len;
		size -= len;
		if (ctl & 2)
			fix_digests(rec, len);
		if (peer[i] < 0)
			host_connect(i);
		host_send(i, rec, len);
		if (ctl & 8)
			host_close(i);
		if (!(ctl & 4) || (ctl & 8))
			step();
	}
	host_close(0);
	host_close(1);
	for (n = 0; n < MAX_STEPS && (l.pending || l.assocs); n++)
		step();
	if (l.pending || l.assocs || l.nconns || l.ndisc || ctrl->refs) {
		/* Something the target never lets go: a finding. */
		fprintf(stderr,
			"fuzz_tcp_pdu: after the host left: %u handshake/discovery queue(s), "
			"%u association(s), %u connection(s), controller claimed %u time(s)\n",
			l.npending, l.nassocs, l.nconns, ctrl->refs);
		abort();
	}
	/* The next host starts from a disabled controller, as a new one would. */
	leap_ctrl_reset(ctrl);
	ctrl->regs.cc = 0;
	ctrl->regs.csts = 0;
	return 0;
}
