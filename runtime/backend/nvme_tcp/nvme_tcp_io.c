// SPDX-License-Identifier: BSD-3-Clause
/*
 * The nvme-tcp backend's data path: one channel per tenant reactor, each
 * owning one NVMe/TCP I/O queue pair (its own qid on the remote controller)
 * outright, so the path takes no lock and shares no cache line but the
 * read-mostly `assoc` word.
 *
 * A tenant I/O takes a slot (struct ntcp_io) from a per-channel pool of
 * NTCP_HELD_MAX: that pool is the bound on what a channel holds. It waits on
 * the pending list until the queue pair can take its commands; a large one
 * becomes several commands (MDTS, the iovec limit, Write Zeroes' 16-bit
 * NLB), issued in order as command slots free up. submit() issues at once
 * when it can; the next poll() sends (one sendmsg) and reaps (one recv).
 *
 * Loss: when the queue pair fails (the target hung up, sent something the
 * library refused, a command timed out, a data digest failed) or the admin
 * side withdraws the association, every command in flight is aborted by the
 * library; its tenant I/O is marked for retry and, once none of its commands
 * is out, goes back on the pending list from its first byte. Nothing is
 * completed to the tenant meanwhile, so a retried read or write shows the
 * tenant exactly one completion with the data of the retry. When the admin
 * side publishes a new live association the channel connects a new queue
 * pair (non-blocking) and reissues. An I/O that arrives while no slot is
 * free, or any held I/O once the admin side declares the controller lost
 * (ctrl_loss_timeout), completes with the path status.
 *
 * The reactor's wake fd is a per-channel epoll set holding the current
 * socket (which changes with every reconnect), armed only while sleeping,
 * and an eventfd the admin side writes whenever it changes `assoc`.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "nvme_tcp_internal.h"

/* One tenant I/O while the channel holds it. */
struct ntcp_io {
	struct leap_bdev_io *io;
	uint64_t total;	      /* bytes to cover (a flush counts as 1) */
	uint64_t issued;      /* bytes sent as commands so far */
	uint32_t outstanding; /* its commands in flight */
	uint16_t status;      /* first failure (remote status or ours) */
	bool retry;	      /* a command was cut off by the connection: start over */
	bool queued;	      /* on the pending list */
	struct ntcp_io *next; /* pending list or free list */
};

/* One NVMe command in flight: a slot per queue-pair request. */
struct ntcp_cmd {
	struct ntcp_channel *ch;
	struct ntcp_io *p;
	struct nvme_dsm_range range; /* a Deallocate's data, valid until the callback */
	struct ntcp_cmd *next;	     /* free list */
};

struct ntcp_channel {
	struct leap_bdev_channel base;
	struct ntcp_bdev *nb;
	struct leap_nvmf_qpair *qp;
	uint32_t qp_epoch;    /* the association qp belongs to */
	uint32_t tried_epoch; /* the last association a queue was opened for */
	uint16_t qid;
	bool qp_live_seen;
	bool closing;
	bool issuing;
	bool reset_wanted;
	char reset_why[96];
	uint64_t stall_ns;   /* no progress since (connect or commands outstanding) */
	uint32_t idle_polls; /* polls without progress: the clock is read every 256 */
	int epfd;
	int ep_fd;  /* socket in epfd, or -1 */
	int kickfd; /* eventfd in epfd for good: the admin side changed `assoc` */

	struct ntcp_io *ios, *io_free;
	struct ntcp_cmd *cmds, *cmd_free;
	struct ntcp_io *pend_head, *pend_tail;
	uint32_t npend;
	struct bdev_io_fifo
	    done; /* refused or aborted: completed at the next poll, status in priv[1] */
	struct iovec iov[NTCP_MAX_IOV];

	/* For bdev_list, stored by the owner with relaxed stores. */
	_Atomic uint32_t pub_pend, pub_out;
	struct ntcp_channel *next; /* nb->channels */
};

static inline struct ntcp_channel *to_ch(struct leap_bdev_channel *ch)
{
	return (struct ntcp_channel *)ch;
}

/* ---- pending list ------------------------------------------------------- */

static void pend_push(struct ntcp_channel *ch, struct ntcp_io *p)
{
	p->next = NULL;
	p->queued = true;
	if (ch->pend_tail)
		ch->pend_tail->next = p;
	else
		ch->pend_head = p;
	ch->pend_tail = p;
	ch->npend++;
}

static struct ntcp_io *pend_pop(struct ntcp_channel *ch)
{
	struct ntcp_io *p = ch->pend_head;

	ch->pend_head = p->next;
	if (!ch->pend_head)
		ch->pend_tail = NULL;
	p->queued = false;
	ch->npend--;
	return p;
}

/* ---- completion ---------------------------------------------------------- */

static void io_complete(struct ntcp_channel *ch, struct ntcp_io *p, uint16_t status)
{
	struct leap_bdev_io *io = p->io;

	p->io = NULL;
	p->next = ch->io_free;
	ch->io_free = p;
	if (status == NTCP_STATUS_PATH)
		atomic_fetch_add_explicit(&ch->nb->n_path_failed, 1, memory_order_relaxed);
	bdev_io_complete(&ch->base, io, status);
}

/*
 * The last command of p came back. An error ends it (even if another
 * command was cut off: the tenant learns of the error either way); a cut-off
 * command sends it back to the pending list from its first byte; otherwise
 * it is done once fully issued. Only the pending list's head can have
 * commands out while queued (issuing goes in list order).
 */
static void io_settle(struct ntcp_channel *ch, struct ntcp_io *p)
{
	if (p->status) {
		if (p->queued) {
			assert(ch->pend_head == p);
			pend_pop(ch);
		}
		io_complete(ch, p, p->status);
		return;
	}
	if (p->retry) {
		p->retry = false;
		p->issued = 0;
		atomic_fetch_add_explicit(&ch->nb->n_retried, 1, memory_order_relaxed);
		if (!p->queued)
			pend_push(ch, p);
		return;
	}
	if (!p->queued && p->issued >= p->total)
		io_complete(ch, p, 0);
}

static void want_reset(struct ntcp_channel *ch, const char *why)
{
	if (ch->reset_wanted)
		return;
	ch->reset_wanted = true;
	snprintf(ch->reset_why, sizeof(ch->reset_why), "%s", why);
}

static void cmd_cb(void *arg, const struct nvme_cqe *cqe)
{
	struct ntcp_cmd *c = arg;
	struct ntcp_channel *ch = c->ch;
	struct ntcp_io *p = c->p;
	uint16_t st = nvmf_cqe_status(cqe);

	c->next = ch->cmd_free;
	ch->cmd_free = c;
	if (leap_unlikely(ch->closing))
		return;
	p->outstanding--;
	if (leap_unlikely(st & 0x7ff)) {
		if (leap_nvmf_qpair_state(ch->qp) == LEAP_NVMF_QP_FAILED) {
			/* Ended by the library: the connection is gone, the command may not have run. */
			p->retry = true;
		} else if ((st & 0x7ff) ==
			   NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_TRANSIENT_TRANSPORT_ERROR)) {
			/* A data digest mismatch (the library's mark): the bytes are suspect. */
			p->retry = true;
			want_reset(ch, "data digest error");
		} else {
			if (!p->status)
				p->status = st;
			atomic_fetch_add_explicit(&ch->nb->n_remote_errors, 1,
						  memory_order_relaxed);
		}
	}
	ch->stall_ns = 0;
	ch->idle_polls = 0;
	if (!p->outstanding)
		io_settle(ch, p);
}

/* ---- issuing -------------------------------------------------------------- */

/*
 * Describe bytes [off, off + *len) of io's data in ch->iov. When
 * NTCP_MAX_IOV entries hold less, *len shrinks to the whole blocks they
 * hold. Returns the entry count, 0 when not even one block fits.
 */
static int slice(struct ntcp_channel *ch, const struct leap_bdev_io *io, uint64_t off,
		 uint64_t *len, uint32_t blk)
{
	uint64_t want = *len, got = 0, skip = off, extra;
	uint32_t i = 0;
	int n = 0;

	while (i < io->iovcnt && skip >= io->iov[i].iov_len)
		skip -= io->iov[i++].iov_len;
	for (; i < io->iovcnt && got < want && n < (int)NTCP_MAX_IOV; i++, skip = 0) {
		uint64_t l = LEAP_MIN((uint64_t)io->iov[i].iov_len - skip, want - got);

		if (!l)
			continue;
		ch->iov[n].iov_base = (uint8_t *)io->iov[i].iov_base + skip;
		ch->iov[n].iov_len = l;
		n++;
		got += l;
	}
	if (got < want) {
		extra = got & (blk - 1);
		got -= extra;
		if (!got)
			return 0;
		while (extra) {
			struct iovec *v = &ch->iov[n - 1];

			if (v->iov_len <= extra) {
				extra -= v->iov_len;
				n--;
			} else {
				v->iov_len -= extra;
				extra = 0;
			}
		}
	}
	*len = got;
	return n;
}

/* Queue p's next command. 0, -EAGAIN (no slot), or another -errno (p cannot go on). */
static int issue_one(struct ntcp_channel *ch, struct ntcp_io *p)
{
	struct ntcp_bdev *nb = ch->nb;
	struct leap_bdev_io *io = p->io;
	struct ntcp_cmd *c = ch->cmd_free;
	uint32_t sh = nb->lba_shift;
	uint64_t off = io->offset + p->issued, len = p->total - p->issued;
	int n, rc;

	if (!c)
		return -EAGAIN;
	c->p = p;
	switch (io->op) {
	case LEAP_BDEV_OP_READ:
	case LEAP_BDEV_OP_WRITE:
		len = LEAP_MIN(len, (uint64_t)nb->max_cmd);
		n = slice(ch, io, p->issued, &len, 1u << sh);
		if (!n)
			return -EINVAL;
		if (io->op == LEAP_BDEV_OP_READ)
			rc = leap_nvmf_io_read(ch->qp, nb->nsid, off >> sh, (uint32_t)(len >> sh),
					       ch->iov, n, 0, cmd_cb, c);
		else
			rc = leap_nvmf_io_write(
			    ch->qp, nb->nsid, off >> sh, (uint32_t)(len >> sh), ch->iov, n,
			    (io->flags & LEAP_BDEV_IO_FUA) ? NVME_RW_FUA : 0, cmd_cb, c);
		break;
	case LEAP_BDEV_OP_FLUSH:
		rc = leap_nvmf_io_flush(ch->qp, nb->nsid, cmd_cb, c);
		break;
	case LEAP_BDEV_OP_DEALLOCATE:
		if (nb->dealloc_dsm) {
			len = LEAP_MIN(len, (uint64_t)NTCP_DSM_MAX_BLOCKS << sh);
			c->range.cattr = 0;
			c->range.nlb = (uint32_t)(len >> sh);
			c->range.slba = off >> sh;
			rc = leap_nvmf_io_dsm(ch->qp, nb->nsid, &c->range, 1,
					      NVME_DSM_ATTR_DEALLOCATE, cmd_cb, c);
			break;
		}
		if (!nb->dealloc_wz)
			return -EOPNOTSUPP;
		len = LEAP_MIN(len, (uint64_t)NTCP_WZ_MAX_BLOCKS << sh);
		rc = leap_nvmf_io_write_zeroes(ch->qp, nb->nsid, off >> sh, (uint32_t)(len >> sh),
					       NVME_WZ_DEAC, cmd_cb, c);
		break;
	case LEAP_BDEV_OP_WRITE_ZEROES:
		if (!(nb->oncs & NVME_ONCS_WRITE_ZEROES))
			return -EOPNOTSUPP;
		len = LEAP_MIN(len, (uint64_t)NTCP_WZ_MAX_BLOCKS << sh);
		rc = leap_nvmf_io_write_zeroes(ch->qp, nb->nsid, off >> sh, (uint32_t)(len >> sh),
					       0, cmd_cb, c);
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (rc)
		return rc;
	ch->cmd_free = c->next;
	p->issued += len;
	p->outstanding++;
	return 0;
}

/* Issue from the pending list's head while the queue pair takes commands. Commands queued. */
static int issue_pending(struct ntcp_channel *ch)
{
	int n = 0;

	ch->issuing = true;
	while (ch->pend_head) {
		struct ntcp_io *p = ch->pend_head;
		int rc = 0;

		while (!p->status && p->issued < p->total && (rc = issue_one(ch, p)) == 0)
			n++;
		if (rc == -EAGAIN)
			break;
		if (rc) {
			if (leap_nvmf_qpair_state(ch->qp) == LEAP_NVMF_QP_FAILED)
				break; /* the next poll retires the queue pair */
			/* Cannot be expressed (an unsupported op, iovecs too fragmented). */
			p->status = rc == -EOPNOTSUPP
					? NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE)
					: NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
		}
		pend_pop(ch);
		/* Completes here only when none of its commands is out; else its last callback does. */
		if (!p->outstanding)
			io_settle(ch, p);
	}
	ch->issuing = false;
	return n;
}

int ntcp_submit(struct leap_bdev_channel *base, struct leap_bdev_io *io)
{
	struct ntcp_channel *ch = to_ch(base);
	uint64_t a = atomic_load_explicit(&ch->nb->assoc, memory_order_acquire);
	struct ntcp_io *p = ch->io_free;

	bdev_assert_io(base->bdev, io);
	if (leap_unlikely(!p || (a & NTCP_ASSOC_FAILED))) {
		/* Full while connected: back-pressure. Full in an outage, or lost: the path status. */
		if (!p && (a & NTCP_ASSOC_LIVE)) {
			base->stats.eagain++;
			return -EAGAIN;
		}
		bdev_fifo_push(&ch->done, io);
		io->priv[1] = NTCP_STATUS_PATH;
		base->inflight++;
		base->stats.submitted++;
		return 0;
	}
	ch->io_free = p->next;
	p->io = io;
	p->total = io->op == LEAP_BDEV_OP_FLUSH ? 1 : io->len;
	p->issued = 0;
	p->outstanding = 0;
	p->status = 0;
	p->retry = false;
	pend_push(ch, p);
	base->inflight++;
	base->stats.submitted++;
	if (ch->qp && !ch->issuing && leap_nvmf_qpair_state(ch->qp) == LEAP_NVMF_QP_LIVE)
		issue_pending(ch);
	return 0;
}

/*
 * The generic I/O timeout (the common key io_timeout_ms, bdev_timeout.c)
 * gave up on io. Held I/O with no command out leaves now, completing at the
 * next poll; I/O with commands on the wire cannot be recalled (a command
 * only ends with its response or its connection: the stall watchdog's
 * business), so it is waited for.
 */
int ntcp_abort(struct leap_bdev_channel *base, struct leap_bdev_io *io)
{
	struct ntcp_channel *ch = to_ch(base);
	struct ntcp_io *p, *prev = NULL;

	for (p = ch->pend_head; p && p->io != io; prev = p, p = p->next)
		;
	if (!p)
		return -EBUSY; /* in flight, or already completing */
	if (p->outstanding)
		return -EBUSY;
	if (prev)
		prev->next = p->next;
	else
		ch->pend_head = p->next;
	if (ch->pend_tail == p)
		ch->pend_tail = prev;
	ch->npend--;
	p->queued = false;
	p->io = NULL;
	p->next = ch->io_free;
	ch->io_free = p;
	io->priv[1] = NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_ABORTED_BY_REQUEST);
	bdev_fifo_push(&ch->done, io);
	return 0;
}

/* ---- the queue pair's life -------------------------------------------------- */

static void ep_disarm(struct ntcp_channel *ch)
{
	if (ch->ep_fd >= 0) {
		epoll_ctl(ch->epfd, EPOLL_CTL_DEL, ch->ep_fd, NULL);
		ch->ep_fd = -1;
	}
}

static void ep_arm(struct ntcp_channel *ch, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events };

	ep_disarm(ch);
	if (fd >= 0 && events && epoll_ctl(ch->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
		ch->ep_fd = fd;
}

/* Ask the admin side to reset association `epoch` (if it is still the live one). */
static void report_broken(struct ntcp_channel *ch, uint32_t epoch, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report_broken(struct ntcp_channel *ch, uint32_t epoch, const char *fmt, ...)
{
	struct ntcp_bdev *nb = ch->nb;
	uint64_t a = atomic_load_explicit(&nb->assoc, memory_order_acquire);
	char why[200];
	va_list ap;

	if (!(a & NTCP_ASSOC_LIVE) || ntcp_assoc_epoch(a) != epoch)
		return; /* already being reset */
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	ntcp_set_reason(nb, false, "%s", why);
	atomic_fetch_add_explicit(&nb->n_resets_io, 1, memory_order_relaxed);
	atomic_store_explicit(&nb->reset_req, epoch, memory_order_relaxed);
}

static void queue_open(struct ntcp_channel *ch, uint64_t a)
{
	struct ntcp_bdev *nb = ch->nb;
	struct leap_nvmf_qpair_opts o;
	int rc;

	ch->tried_epoch = ntcp_assoc_epoch(a);
	leap_nvmf_qpair_opts_init(&o);
	o.qid = ch->qid;
	o.qdepth = nb->io_qdepth;
	o.cntlid = ntcp_assoc_cntlid(a);
	o.max_iov = NTCP_MAX_IOV;
	o.icd_max = nb->icd_max;
	rc = leap_nvmf_qpair_create(&nb->trid, &o, &ch->qp);
	if (rc) {
		ch->qp = NULL;
		report_broken(ch, ntcp_assoc_epoch(a), "I/O queue %u: cannot connect: %s", ch->qid,
			      strerror(-rc));
		return;
	}
	ch->qp_epoch = ntcp_assoc_epoch(a);
	ch->qp_live_seen = false;
	ch->reset_wanted = false;
	ch->stall_ns = ntcp_now_ns();
}

/* The queue pair failed and every command on it came back: report, then let it go. */
static void queue_retire(struct ntcp_channel *ch, bool stale)
{
	if (!stale)
		report_broken(ch, ch->qp_epoch, "I/O queue %u: %s", ch->qid,
			      leap_nvmf_qpair_reason(ch->qp));
	ep_disarm(ch);
	leap_nvmf_qpair_destroy(ch->qp);
	ch->qp = NULL;
	ch->reset_wanted = false;
}

/* queue_open() and wait (poll(2)) until the queue is live or has failed. */
static void queue_connect_wait(struct ntcp_channel *ch, uint64_t a)
{
	uint64_t end = ntcp_now_ns() + (uint64_t)ch->nb->connect_timeout_ms * 1000000ull;

	queue_open(ch, a);
	while (ch->qp && leap_nvmf_qpair_state(ch->qp) != LEAP_NVMF_QP_LIVE) {
		struct pollfd pfd = { .fd = leap_nvmf_qpair_fd(ch->qp), .events = POLLIN };
		uint64_t now = ntcp_now_ns();

		if (leap_nvmf_qpair_state(ch->qp) == LEAP_NVMF_QP_FAILED || now >= end) {
			if (leap_nvmf_qpair_state(ch->qp) != LEAP_NVMF_QP_FAILED)
				leap_nvmf_qpair_fail(ch->qp, -ETIMEDOUT, "connect timed out");
			queue_retire(ch, false);
			return;
		}
		if (leap_nvmf_qpair_wants_pollout(ch->qp))
			pfd.events |= POLLOUT;
		poll(&pfd, 1, (int)LEAP_MIN((end - now) / 1000000 + 1, 100ull));
		leap_nvmf_qpair_poll(ch->qp);
	}
	if (ch->qp) {
		ch->qp_live_seen = true;
		ch->stall_ns = 0;
	}
}

/*
 * Connecting, or commands out: fail the queue pair when nothing moves for
 * connect_timeout / io_timeout. A target that takes the TCP connection and
 * never answers (a forwarded port with nobody behind), or a black-holed
 * network, would otherwise hold the I/O forever.
 */
static void watchdog(struct ntcp_channel *ch, bool live)
{
	struct ntcp_bdev *nb = ch->nb;
	uint64_t now = ntcp_now_ns();
	uint32_t limit = live ? nb->stall_timeout_ms : nb->connect_timeout_ms;
	char why[96];

	if (!ch->stall_ns) {
		ch->stall_ns = now;
		return;
	}
	if (now - ch->stall_ns <= (uint64_t)limit * 1000000ull)
		return;
	snprintf(why, sizeof(why), "%s for %u ms", live ? "no completion" : "connect not finished",
		 limit);
	LEAP_ERR(NTCP_TYPE, "%s: I/O queue %u: %s, resetting", nb->base.name, ch->qid, why);
	leap_nvmf_qpair_fail(ch->qp, -ETIMEDOUT, why);
}

static int queue_poll(struct ntcp_channel *ch, uint64_t a)
{
	bool stale = ntcp_assoc_epoch(a) != ch->qp_epoch || !(a & NTCP_ASSOC_LIVE);
	enum leap_nvmf_qpair_state st;
	int rc, n = 0;

	if (leap_unlikely(stale)) {
		/* The admin side gave this association up: its commands come back for retry. */
		leap_nvmf_qpair_fail(ch->qp, -ECONNRESET, "controller association reset");
	} else {
		rc = leap_nvmf_qpair_poll(ch->qp);
		if (rc > 0)
			n += rc;
		if (leap_unlikely(ch->reset_wanted))
			leap_nvmf_qpair_fail(ch->qp, -EIO, ch->reset_why);
	}
	st = leap_nvmf_qpair_state(ch->qp);
	if (leap_unlikely(st == LEAP_NVMF_QP_FAILED)) {
		queue_retire(ch, stale);
		return n + 1;
	}
	if (leap_unlikely(!ch->qp_live_seen)) {
		if (st != LEAP_NVMF_QP_LIVE) {
			watchdog(ch, false);
			return n;
		}
		ch->qp_live_seen = true;
		ch->stall_ns = 0;
	}
	if (ch->pend_head)
		n += issue_pending(ch);
	else if (!n && leap_nvmf_qpair_outstanding(ch->qp) && !(++ch->idle_polls & 255))
		watchdog(ch, true); /* a clock read per empty poll would cost 5 % of the reactor */
	return n;
}

/* The controller is lost (ctrl_loss_timeout): everything held fails with the path status. */
static int fail_held(struct ntcp_channel *ch)
{
	int n = 0;

	while (ch->pend_head) {
		struct ntcp_io *p = pend_pop(ch);

		io_complete(ch, p, NTCP_STATUS_PATH);
		n++;
	}
	return n;
}

int ntcp_poll(struct leap_bdev_channel *base)
{
	struct ntcp_channel *ch = to_ch(base);
	uint64_t a = atomic_load_explicit(&ch->nb->assoc, memory_order_acquire);
	struct leap_bdev_io *io, *next;
	int n = 0;

	if (leap_unlikely(ch->done.head))
		for (io = bdev_fifo_take(&ch->done); io; io = next, n++) {
			uint16_t st = (uint16_t)io->priv[1];

			/* Read the link first: the callback may resubmit io. */
			next = bdev_fifo_next(io);
			if (st == NTCP_STATUS_PATH)
				atomic_fetch_add_explicit(&ch->nb->n_path_failed, 1,
							  memory_order_relaxed);
			bdev_io_complete(base, io, st);
		}
	if (leap_likely(ch->qp != NULL))
		n += queue_poll(ch, a);
	if (leap_unlikely(!ch->qp)) {
		if ((a & NTCP_ASSOC_LIVE) && ntcp_assoc_epoch(a) != ch->tried_epoch) {
			queue_open(ch, a);
			n++;
		} else if ((a & NTCP_ASSOC_FAILED) && ch->pend_head) {
			n += fail_held(ch);
		}
	}
	atomic_store_explicit(&ch->pub_pend, ch->npend, memory_order_relaxed);
	atomic_store_explicit(&ch->pub_out, ch->qp ? leap_nvmf_qpair_outstanding(ch->qp) : 0,
			      memory_order_relaxed);
	return n;
}

/* ---- sleeping ---------------------------------------------------------------- */

int ntcp_channel_wake_fd(struct leap_bdev_channel *base)
{
	return to_ch(base)->epfd;
}

/*
 * Arm the socket only for what can come: data while commands are out or the
 * connection is being set up, room to send while the send ring is not
 * empty. An idle live socket stays out of the set, so a target closing an
 * idle connection cannot keep the reactor awake (the close is noticed at
 * the next command, or by the admin side's Keep Alive). In an outage the
 * admin side's kick brings us back: reconnected, or the I/O to fail.
 */
bool ntcp_sleep_prepare(struct leap_bdev_channel *base)
{
	struct ntcp_channel *ch = to_ch(base);
	uint64_t a, kicks;
	uint32_t ev = 0;

	/*
	 * Drain the kick, then read assoc: the admin side stores assoc, then
	 * kicks, so a change after this read leaves the eventfd readable and
	 * the sleep ends at once.
	 */
	if (read(ch->kickfd, &kicks, sizeof(kicks)) < 0 && errno != EAGAIN)
		return false;
	a = atomic_load_explicit(&ch->nb->assoc, memory_order_acquire);
	if (ch->done.head)
		return false;
	if (ch->qp) {
		enum leap_nvmf_qpair_state st = leap_nvmf_qpair_state(ch->qp);

		if (st == LEAP_NVMF_QP_FAILED || ntcp_assoc_epoch(a) != ch->qp_epoch ||
		    !(a & NTCP_ASSOC_LIVE) || ch->reset_wanted)
			return false;
		if (st == LEAP_NVMF_QP_LIVE && ch->pend_head && ch->cmd_free)
			return false;
		if (st == LEAP_NVMF_QP_LIVE && leap_nvmf_qpair_outstanding(ch->qp)) {
			/* A sleeping reactor polls rarely: keep the stall clock honest. */
			watchdog(ch, true);
			if (leap_nvmf_qpair_state(ch->qp) == LEAP_NVMF_QP_FAILED)
				return false;
		}
		if (st != LEAP_NVMF_QP_LIVE || leap_nvmf_qpair_outstanding(ch->qp))
			ev |= EPOLLIN;
		if (leap_nvmf_qpair_wants_pollout(ch->qp))
			ev |= EPOLLOUT;
		ep_arm(ch, leap_nvmf_qpair_fd(ch->qp), ev);
		return true;
	}
	if ((a & NTCP_ASSOC_LIVE) && ntcp_assoc_epoch(a) != ch->tried_epoch)
		return false;
	return !((a & NTCP_ASSOC_FAILED) && ch->pend_head);
}

void ntcp_sleep_done(struct leap_bdev_channel *base)
{
	ep_disarm(to_ch(base));
}

/* ---- open and close ------------------------------------------------------------ */

int ntcp_channel_open(struct leap_bdev *bdev, struct leap_bdev_channel **out)
{
	struct ntcp_bdev *nb = to_nb(bdev);
	struct ntcp_channel *ch;
	int rc = -ENOMEM;
	uint64_t a;
	uint32_t q, k;

	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->base.bdev = bdev;
	ch->nb = nb;
	ch->kickfd = -1;
	ch->ep_fd = -1;
	ch->epfd = epoll_create1(EPOLL_CLOEXEC);
	ch->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ch->ios = calloc(NTCP_HELD_MAX, sizeof(*ch->ios));
	ch->cmds = calloc(nb->io_qdepth, sizeof(*ch->cmds));
	if (ch->epfd < 0 || ch->kickfd < 0 || !ch->ios || !ch->cmds)
		goto err_free;
	{
		struct epoll_event ev = { .events = EPOLLIN };

		if (epoll_ctl(ch->epfd, EPOLL_CTL_ADD, ch->kickfd, &ev))
			goto err_free;
	}
	for (uint32_t i = NTCP_HELD_MAX; i-- > 0;) {
		ch->ios[i].next = ch->io_free;
		ch->io_free = &ch->ios[i];
	}
	for (uint32_t i = nb->io_qdepth; i-- > 0;) {
		ch->cmds[i].ch = ch;
		ch->cmds[i].next = ch->cmd_free;
		ch->cmd_free = &ch->cmds[i];
	}

	/*
	 * The first free qid after the last one handed out, not the lowest:
	 * a qid just closed may still be live at the target (its side of the
	 * close not processed yet), which refuses a second Connect for it.
	 */
	pthread_mutex_lock(&nb->lock);
	for (k = 0, q = nb->qid_next; k < nb->nr_io; k++, q = (q + 1) % nb->nr_io)
		if (!(nb->qid_map & (1ull << q)))
			break;
	if (k == nb->nr_io) {
		pthread_mutex_unlock(&nb->lock);
		LEAP_ERR(NTCP_TYPE,
			 "%s: all %u I/O queues are in use (one per channel; raise 'queues')",
			 bdev->name, nb->nr_io);
		rc = -ENOSPC;
		goto err_free;
	}
	nb->qid_map |= 1ull << q;
	nb->qid_next = (q + 1) % nb->nr_io;
	ch->qid = (uint16_t)(q + 1);
	ch->next = nb->channels;
	nb->channels = ch;
	pthread_mutex_unlock(&nb->lock);

	/*
	 * Connect now, waiting (channels open on control or helper threads,
	 * never on a reactor): nothing polls a namespace's channel until a
	 * tenant comes, and a target drops a connection whose handshake stalls
	 * (leapd's after 10 s). A live idle queue needs no polling. If the
	 * association is down, the first poll after it returns connects.
	 */
	a = atomic_load_explicit(&nb->assoc, memory_order_acquire);
	if (a & NTCP_ASSOC_LIVE)
		queue_connect_wait(ch, a);
	*out = &ch->base;
	return 0;

err_free:
	if (ch->epfd >= 0)
		close(ch->epfd);
	if (ch->kickfd >= 0)
		close(ch->kickfd);
	free(ch->ios);
	free(ch->cmds);
	free(ch);
	return rc;
}

void ntcp_channel_close(struct leap_bdev_channel *base)
{
	struct ntcp_channel *ch = to_ch(base);
	struct ntcp_bdev *nb = ch->nb;
	struct ntcp_channel **pp;

	/* Callers close with nothing in flight; anything left is dropped without callbacks. */
	ch->closing = true;
	if (ch->qp) {
		ep_disarm(ch);
		leap_nvmf_qpair_destroy(ch->qp);
	}
	pthread_mutex_lock(&nb->lock);
	nb->qid_map &= ~(1ull << (ch->qid - 1));
	for (pp = &nb->channels; *pp && *pp != ch; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = ch->next;
	pthread_mutex_unlock(&nb->lock);
	close(ch->epfd);
	close(ch->kickfd);
	free(ch->ios);
	free(ch->cmds);
	free(ch);
}

void ntcp_channels_kick(struct ntcp_bdev *nb)
{
	uint64_t one = 1;

	pthread_mutex_lock(&nb->lock);
	for (struct ntcp_channel *ch = nb->channels; ch; ch = ch->next)
		if (write(ch->kickfd, &one, sizeof(one)) < 0)
			LEAP_DEBUG(NTCP_TYPE, "%s: kick: %s", nb->base.name, strerror(errno));
	pthread_mutex_unlock(&nb->lock);
}

void ntcp_channels_held(struct ntcp_bdev *nb, uint64_t *held, uint64_t *outstanding)
{
	*held = *outstanding = 0;
	pthread_mutex_lock(&nb->lock);
	for (struct ntcp_channel *ch = nb->channels; ch; ch = ch->next) {
		*held += atomic_load_explicit(&ch->pub_pend, memory_order_relaxed);
		*outstanding += atomic_load_explicit(&ch->pub_out, memory_order_relaxed);
	}
	pthread_mutex_unlock(&nb->lock);
}
