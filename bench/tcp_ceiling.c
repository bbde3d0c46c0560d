// SPDX-License-Identifier: BSD-3-Clause
/*
 * The loopback TCP ceiling an NVMe/TCP target is measured against (issue
 * 12): one TCP connection over 127.0.0.1 carrying exactly the bytes of a
 * 4 KiB NVMe/TCP I/O, with nothing else done, the same depth and the same
 * thread placement as the real run (server on CPU 0, client on CPU 1).
 *
 *   read shape:  the client sends a 72-byte request (a CapsuleCmd); the
 *                server answers a 24-byte header + 4 KiB of data + a 24-byte
 *                reply (C2HData, then CapsuleResp);
 *   write shape: the client sends 72 bytes + 4 KiB (a capsule with in-capsule
 *                data); the server answers 24 bytes (CapsuleResp).
 *
 * Both sides poll non-blocking sockets, as a reactor and leap-perf do. In
 * the default batched mode they read and write as many messages per syscall
 * as are ready: one recv() takes whatever the socket holds, every whole
 * message in it is answered, and the answers leave in one sendmsg() whose
 * iovecs point at the headers and at a 4 KiB data buffer (no user-space copy
 * of the payload, as a zero-copy target would). That is the best the kernel
 * can do on one connection, so it is a ceiling rather than a strawman. With
 * -1 each side reads and writes one message per syscall instead, for
 * reference. Both sides spin by default; with -b a side with nothing to read
 * sleeps in poll() instead, which is what wins on a machine whose CPUs are
 * shared (the scheduler favours a thread that sleeps over one that spins).
 *
 * Every request carries a tag the server echoes in both parts of its answer;
 * the client checks tags and lengths (a framing bug cannot inflate the
 * figure) and times each message from the pass that queued it to the pass
 * that parsed its answer, like leap-perf, into a log-linear histogram.
 *
 * Usage: tcp_ceiling [-q QD] [-t SECONDS] [-w read|write] [-1] [-b] [-s CPU] [-c CPU] [--json]
 * Prints one line of key=value pairs (or one JSON object): iops, latency
 * p50/p99 in microseconds, syscalls per message on each side, and the CPU
 * each thread actually got (% of wall time): on a shared machine a ceiling
 * whose threads were descheduled is no ceiling, and this says so. With -b
 * (no spinning) the CPU time per message is each side's real cost, a figure
 * the machine's load hardly moves.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define REQ_LEN	   72u
#define HDR_LEN	   24u
#define DATA_LEN   4096u
#define RSP_LEN	   24u
#define MAX_QD	   4096u
#define MAX_IOV	   1024u /* UIO_MAXIOV */
#define RX_BUF	   (256u << 10)
#define SUB	   16
#define NBUCKET	   (64 * SUB)
#define WARMUP_NS  200000000ull
#define TAG_OFFSET 4 /* where the tag sits in every message and header (a CID's place) */

struct cfg {
	uint32_t qd;
	double secs;
	bool write_shape;
	bool one;   /* one message per syscall */
	bool block; /* sleep in poll() when a side has nothing to do, instead of spinning */
	int server_cpu, client_cpu;
	bool json;
};

/* One message waiting to be sent: header bytes, optional 4 KiB payload, optional trailer. */
struct msg {
	uint8_t hdr[REQ_LEN];
	uint8_t trl[RSP_LEN];
	uint32_t hlen;
	uint32_t dlen;
	uint32_t tlen;
};

/* A send queue drained by sendmsg(); head_off bytes of the head message are already sent. */
struct txq {
	struct msg *ring;
	uint32_t cap; /* power of two */
	uint32_t head, tail, head_off;
	struct iovec iov[MAX_IOV];
	uint64_t calls;
};

struct side {
	int fd;
	struct txq tx;
	uint8_t *rx;
	uint32_t rx_len;
	uint64_t recv_calls;
};

static uint8_t payload[DATA_LEN] __attribute__((aligned(4096)));
static atomic_bool stop_server;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of the calling thread: how much of the wall clock it really ran. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "tcp_ceiling: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
		fprintf(stderr, "tcp_ceiling: cannot pin to CPU %d\n", cpu);
}

static void txq_init(struct txq *q, uint32_t n)
{
	q->cap = 1;
	while (q->cap < n)
		q->cap <<= 1;
	q->ring = calloc(q->cap, sizeof(*q->ring));
	if (!q->ring)
		die("calloc");
}

static struct msg *txq_push(struct txq *q)
{
	if (q->tail - q->head == q->cap) {
		fprintf(stderr, "tcp_ceiling: send queue overflow\n");
		exit(1);
	}
	return &q->ring[q->tail++ & (q->cap - 1)];
}

static uint32_t msg_len(const struct msg *m)
{
	return m->hlen + m->dlen + m->tlen;
}

/* Append [base, base+len) minus what was already sent; false when the iovec array is full. */
static bool add_seg(struct txq *q, int *n, size_t *skip, const void *base, size_t len)
{
	if (!len)
		return true;
	if (*skip >= len) {
		*skip -= len;
		return true;
	}
	if (*n == (int)MAX_IOV)
		return false;
	q->iov[*n].iov_base = (uint8_t *)base + *skip;
	q->iov[*n].iov_len = len - *skip;
	(*n)++;
	*skip = 0;
	return true;
}

/* One sendmsg() of everything queued (or of the head message only, with `one`). */
static void txq_flush(struct txq *q, int fd, bool one)
{
	struct msghdr mh = { 0 };
	size_t skip = q->head_off, off;
	int n = 0;
	ssize_t r;

	if (q->head == q->tail)
		return;
	for (uint32_t i = q->head; i != q->tail; i++) {
		const struct msg *m = &q->ring[i & (q->cap - 1)];

		if (!add_seg(q, &n, &skip, m->hdr, m->hlen) ||
		    !add_seg(q, &n, &skip, payload, m->dlen) ||
		    !add_seg(q, &n, &skip, m->trl, m->tlen))
			break;
		if (one)
			break;
	}
	mh.msg_iov = q->iov;
	mh.msg_iovlen = (size_t)n;
	r = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		die("sendmsg");
	}
	q->calls++;
	off = q->head_off + (size_t)r;
	while (q->head != q->tail) {
		uint32_t len = msg_len(&q->ring[q->head & (q->cap - 1)]);

		if (off < len)
			break;
		off -= len;
		q->head++;
	}
	q->head_off = (uint32_t)off;
}

/*
 * One recv() into the side's buffer: everything the socket holds, or at most
 * the rest of one message of `unit` bytes with `one`. Returns bytes, 0 for
 * nothing yet, -1 when the peer closed.
 */
static int side_recv(struct side *s, uint32_t unit, bool one)
{
	size_t room = RX_BUF - s->rx_len;
	ssize_t r;

	if (one)
		room = unit - s->rx_len % unit;
	r = recv(s->fd, s->rx + s->rx_len, room, MSG_DONTWAIT);
	if (r == 0)
		return -1;
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		if (errno == ECONNRESET)
			return -1;
		die("recv");
	}
	s->recv_calls++;
	s->rx_len += (uint32_t)r;
	return (int)r;
}

/*
 * -b: nothing arrived, so wait for the socket instead of spinning (and for
 * room to send, when the kernel refused part of the queue). A bounded wait,
 * so the server still sees the stop flag.
 */
static void side_wait(struct side *s)
{
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };

	if (s->tx.head != s->tx.tail)
		pfd.events |= POLLOUT;
	(void)poll(&pfd, 1, 100);
}

/* Drop `used` parsed bytes from the front of the receive buffer. */
static void side_consume(struct side *s, uint32_t used)
{
	memmove(s->rx, s->rx + used, s->rx_len - used);
	s->rx_len -= used;
}

static void put_tag(uint8_t *p, uint16_t tag)
{
	memcpy(p + TAG_OFFSET, &tag, sizeof(tag));
}

static uint16_t get_tag(const uint8_t *p)
{
	uint16_t tag;

	memcpy(&tag, p + TAG_OFFSET, sizeof(tag));
	return tag;
}

struct server_arg {
	int fd;
	const struct cfg *cfg;
	uint64_t recv_calls, send_calls, msgs;
	double cpu_pct;	       /* of its wall time, over its whole life */
	double cpu_ns_per_msg; /* CPU time per message answered */
};

/* Answer every whole request as it arrives until the client hangs up. */
static void *server_main(void *arg)
{
	struct server_arg *sa = arg;
	const struct cfg *c = sa->cfg;
	uint32_t req = REQ_LEN + (c->write_shape ? DATA_LEN : 0);
	struct side s = { .fd = sa->fd };
	uint64_t t0 = now_ns(), c0 = thread_cpu_ns();

	pin(c->server_cpu);
	s.rx = malloc(RX_BUF);
	txq_init(&s.tx, c->qd + 8);
	if (!s.rx)
		die("malloc");
	while (!atomic_load_explicit(&stop_server, memory_order_relaxed)) {
		uint32_t used = 0;
		int r = side_recv(&s, req, c->one);

		if (r < 0)
			break;
		if (!r && c->block && s.rx_len < req) {
			side_wait(&s);
			if (s.tx.head == s.tx.tail)
				continue;
		}
		while (s.rx_len - used >= req) {
			struct msg *m = txq_push(&s.tx);
			uint16_t tag = get_tag(s.rx + used);

			memset(m->hdr, 0, HDR_LEN);
			memset(m->trl, 0, RSP_LEN);
			put_tag(m->hdr, tag);
			put_tag(m->trl, tag);
			if (c->write_shape) {
				m->hlen = RSP_LEN; /* the reply alone */
				m->dlen = 0;
				m->tlen = 0;
			} else {
				m->hlen = HDR_LEN;
				m->dlen = DATA_LEN;
				m->tlen = RSP_LEN;
			}
			used += req;
			sa->msgs++;
			if (c->one)
				break;
		}
		if (used)
			side_consume(&s, used);
		/* With `one`, a message is written whole before the next is read. */
		do
			txq_flush(&s.tx, s.fd, c->one);
		while (c->one && s.tx.head != s.tx.tail &&
		       !atomic_load_explicit(&stop_server, memory_order_relaxed));
	}
	sa->recv_calls = s.recv_calls;
	sa->send_calls = s.tx.calls;
	sa->cpu_pct = 100.0 * (double)(thread_cpu_ns() - c0) / (double)(now_ns() - t0);
	sa->cpu_ns_per_msg = (double)(thread_cpu_ns() - c0) / (double)(sa->msgs ? sa->msgs : 1);
	free(s.rx);
	free(s.tx.ring);
	return NULL;
}

static unsigned int bucket(uint64_t ns)
{
	unsigned int msb, sub;

	if (ns < SUB)
		return (unsigned int)ns;
	msb = 63u - (unsigned int)__builtin_clzll(ns);
	sub = (unsigned int)((ns >> (msb - 4)) & (SUB - 1));
	return msb * SUB + sub - 3 * SUB;
}

static uint64_t bucket_value(unsigned int b)
{
	unsigned int msb, sub;

	if (b < SUB)
		return b;
	msb = b / SUB + 3;
	sub = b % SUB;
	return ((uint64_t)(SUB + sub) << (msb - 4)) + ((1ull << (msb - 4)) >> 1);
}

static double percentile_us(const uint64_t *hist, double pct)
{
	uint64_t total = 0, seen = 0;

	for (unsigned int b = 0; b < NBUCKET; b++)
		total += hist[b];
	for (unsigned int b = 0; b < NBUCKET; b++) {
		seen += hist[b];
		if (total && (double)seen >= pct / 100.0 * (double)total)
			return (double)bucket_value(b) / 1000.0;
	}
	return 0;
}

struct result {
	uint64_t msgs;
	double secs;
	double cpu_pct; /* the client thread's, over the measured window */
	uint64_t recv_calls, send_calls;
	uint64_t hist[NBUCKET];
};

static void queue_request(struct txq *tx, uint16_t tag, bool write_shape)
{
	struct msg *m = txq_push(tx);

	memset(m->hdr, 0, REQ_LEN);
	put_tag(m->hdr, tag);
	m->hlen = REQ_LEN;
	m->dlen = write_shape ? DATA_LEN : 0;
	m->tlen = 0;
}

/* The client: QD messages in flight, each answer starting the next; timed after a warm-up. */
static void client_run(int fd, const struct cfg *c, struct result *res)
{
	uint32_t rsp = c->write_shape ? RSP_LEN : HDR_LEN + DATA_LEN + RSP_LEN;
	uint64_t *start = calloc(c->qd, sizeof(*start));
	struct side s = { .fd = fd };
	uint64_t t_begin, t_measure = 0, t_end, now, base_recv = 0, base_send = 0, cpu0 = 0;
	uint32_t inflight = 0;
	bool stopping = false;

	pin(c->client_cpu);
	s.rx = malloc(RX_BUF);
	txq_init(&s.tx, c->qd + 8);
	if (!s.rx || !start)
		die("malloc");
	t_begin = now_ns();
	t_end = t_begin + WARMUP_NS + (uint64_t)(c->secs * 1e9);
	for (uint16_t tag = 0; tag < c->qd; tag++) {
		queue_request(&s.tx, tag, c->write_shape);
		start[tag] = t_begin;
		inflight++;
	}
	while (!stopping || inflight) {
		uint32_t used = 0;
		int r;

		txq_flush(&s.tx, fd, c->one);
		r = side_recv(&s, rsp, c->one);
		if (r < 0) {
			fprintf(stderr, "tcp_ceiling: server closed the connection\n");
			exit(1);
		}
		if (!r) {
			if (c->block)
				side_wait(&s);
			continue;
		}
		now = now_ns();
		if (!t_measure && now - t_begin >= WARMUP_NS) {
			t_measure = now;
			cpu0 = thread_cpu_ns();
			base_recv = s.recv_calls;
			base_send = s.tx.calls;
		}
		if (now >= t_end)
			stopping = true;
		while (s.rx_len - used >= rsp) {
			const uint8_t *p = s.rx + used;
			uint16_t tag = get_tag(p);

			if (tag >= c->qd ||
			    (!c->write_shape && get_tag(p + HDR_LEN + DATA_LEN) != tag)) {
				fprintf(stderr, "tcp_ceiling: answer with tag %u out of frame\n",
					tag);
				exit(1);
			}
			if (t_measure) {
				res->msgs++;
				{
					unsigned int b = bucket(now - start[tag]);

					res->hist[b < NBUCKET ? b : NBUCKET - 1]++;
				}
			}
			inflight--;
			used += rsp;
			if (!stopping) {
				queue_request(&s.tx, tag, c->write_shape);
				start[tag] = now;
				inflight++;
			}
		}
		if (used)
			side_consume(&s, used);
	}
	res->secs = (double)(now_ns() - t_measure) / 1e9;
	res->cpu_pct = 100.0 * (double)(thread_cpu_ns() - cpu0) / (res->secs * 1e9);
	res->recv_calls = s.recv_calls - base_recv;
	res->send_calls = s.tx.calls - base_send;
	free(s.rx);
	free(s.tx.ring);
	free(start);
}

static void usage(FILE *f)
{
	fputs("usage: tcp_ceiling [-q QD] [-t SECONDS] [-w read|write] [-1] [-b] [-s SERVER_CPU]\n"
	      "                   [-c CLIENT_CPU] [--json]\n"
	      "  read: 72-byte request, 24 + 4096 + 24-byte answer; write: 72 + 4096, 24.\n"
	      "  -1: one message per syscall (default: as many as are ready).\n"
	      "  -b: sleep in poll() when there is nothing to read (default: spin).\n"
	      "  CPUs default to 0 (server) and 1 (client); -1 leaves a side unpinned.\n",
	      f);
}

/* A connected pair over 127.0.0.1 on an ephemeral port. */
static void connect_pair(int *client, int *server)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl))
		die("listen");
	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (*client < 0 || connect(*client, (struct sockaddr *)&sa, sizeof(sa)))
		die("connect");
	*server = accept(lfd, NULL, NULL);
	if (*server < 0)
		die("accept");
	close(lfd);
	/* As the NVMe/TCP host and a target set them: small messages must not wait. */
	setsockopt(*client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(*server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int main(int argc, char **argv)
{
	static const struct option lo[] = { { "json", no_argument, 0, 'J' },
					    { "help", no_argument, 0, 'h' },
					    { 0, 0, 0, 0 } };
	struct cfg c = { .qd = 32, .secs = 3, .server_cpu = 0, .client_cpu = 1 };
	struct server_arg sa = { 0 };
	static struct result res;
	pthread_t srv;
	int cfd, sfd, opt;
	double iops;

	while ((opt = getopt_long(argc, argv, "q:t:w:1bs:c:h", lo, NULL)) != -1) {
		switch (opt) {
		case 'q':
			c.qd = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 't':
			c.secs = strtod(optarg, NULL);
			break;
		case 'w':
			if (strcmp(optarg, "read") && strcmp(optarg, "write")) {
				usage(stderr);
				return 2;
			}
			c.write_shape = !strcmp(optarg, "write");
			break;
		case '1':
			c.one = true;
			break;
		case 'b':
			c.block = true;
			break;
		case 's':
			c.server_cpu = (int)strtol(optarg, NULL, 0);
			break;
		case 'c':
			c.client_cpu = (int)strtol(optarg, NULL, 0);
			break;
		case 'J':
			c.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || c.qd == 0 || c.qd > MAX_QD || !(c.secs > 0)) {
		usage(stderr);
		return 2;
	}
	memset(payload, 0xa5, sizeof(payload));
	connect_pair(&cfd, &sfd);
	sa.fd = sfd;
	sa.cfg = &c;
	if (pthread_create(&srv, NULL, server_main, &sa))
		die("pthread_create");
	client_run(cfd, &c, &res);
	atomic_store(&stop_server, true);
	shutdown(cfd, SHUT_RDWR);
	pthread_join(srv, NULL);
	close(cfd);
	close(sfd);

	iops = (double)res.msgs / res.secs;
	if (c.json)
		printf("{\"shape\": \"%s\", \"batched\": %s, \"block\": %s, \"qd\": %u, "
		       "\"seconds\": %.3f, "
		       "\"iops\": %.0f, \"latency_us\": {\"p50\": %.2f, \"p99\": %.2f}, "
		       "\"client_syscalls_per_io\": %.3f, \"server_syscalls_per_io\": %.3f, "
		       "\"client_cpu_pct\": %.1f, \"server_cpu_pct\": %.1f, "
		       "\"client_cpu_ns_per_msg\": %.0f, \"server_cpu_ns_per_msg\": %.0f}\n",
		       c.write_shape ? "write" : "read", c.one ? "false" : "true",
		       c.block ? "true" : "false", c.qd, res.secs, iops,
		       percentile_us(res.hist, 50), percentile_us(res.hist, 99),
		       (double)(res.recv_calls + res.send_calls) /
			   (double)(res.msgs ? res.msgs : 1),
		       (double)(sa.recv_calls + sa.send_calls) / (double)(sa.msgs ? sa.msgs : 1),
		       res.cpu_pct, sa.cpu_pct, res.cpu_pct / 100.0 * 1e9 / (iops > 0 ? iops : 1),
		       sa.cpu_ns_per_msg);
	else
		printf(
		    "shape=%s batched=%d block=%d qd=%u seconds=%.3f iops=%.0f p50_us=%.2f "
		    "p99_us=%.2f "
		    "client_syscalls_per_io=%.3f server_syscalls_per_io=%.3f client_cpu_pct=%.1f "
		    "server_cpu_pct=%.1f\n",
		    c.write_shape ? "write" : "read", !c.one, c.block, c.qd, res.secs, iops,
		    percentile_us(res.hist, 50), percentile_us(res.hist, 99),
		    (double)(res.recv_calls + res.send_calls) / (double)(res.msgs ? res.msgs : 1),
		    (double)(sa.recv_calls + sa.send_calls) / (double)(sa.msgs ? sa.msgs : 1),
		    res.cpu_pct, sa.cpu_pct);
	return 0;
}
