// SPDX-License-Identifier: BSD-3-Clause
/*
 * xdp_net: the traffic side of the XDP tests and benchmark (tests/e2e/
 * xdp*.bats, bench/xdp.sh), run inside the network namespaces they create.
 * Every loop is bounded in count and time and stops by itself.
 *
 *   xdp_net serve ADDR PORT LOG [SECONDS]
 *       TCP echo server; one line "accept PEER" per accepted connection
 *       is appended to LOG (flushed), so a test can prove who got in.
 *   xdp_net connect ADDR PORT [-n COUNT] [-d SECONDS] [-b BYTES] [-t TIMEOUT_MS]
 *                             [-i INTERVAL_MS] [--expect-timeout] [--lat]
 *       COUNT connections (or as many as fit in SECONDS), each sending
 *       BYTES of a pattern and checking the echo byte for byte, INTERVAL_MS
 *       apart (default 0). Prints
 *       "ok N errors N timeouts N". Exit 0 when every connection worked
 *       (or, with --expect-timeout, when every connect timed out). --lat
 *       keeps one connection and prints the round-trip times of COUNT
 *       64-byte pings: "rtt_us p50 P p99 P mean M".
 *   xdp_net flood IFACE DST_MAC SRC DST PORT [-r PPS] [-n COUNT] [-d SECONDS]
 *                 [--vlan ID] [--qinq ID] [--ack]
 *       Raw TCP SYNs (or ACKs) from SRC (IPv4 or IPv6) with a new source
 *       port each, through an AF_PACKET socket on IFACE, optionally behind
 *       one or two VLAN tags; paced at PPS (0: as fast as it can). Prints
 *       "sent N pps P cpu_ns C" (C: this process's CPU time, which on a veth
 *       includes the receiver's softirq work run in its context).
 *   xdp_net sniff IFACE PORT SECONDS [SRC]
 *       Counts the TCP SYNs to PORT (from SRC) that IFACE delivers to the
 *       stack — taps run after XDP, so only what the program passed —
 *       and prints "syns N".
 *
 * Exit: 0 success, 1 failure (stderr says why), 2 bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "leapio/common.h"

#define MAX_CLIENTS 256

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int usage(void)
{
	fprintf(stderr, "usage: xdp_net serve|connect|flood|sniff ... (see the source's header)\n");
	return 2;
}

static long num(const char *s, long lo, long hi)
{
	char *end;
	long v = strtol(s, &end, 0);

	if (end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "xdp_net: bad number '%s' (%ld..%ld)\n", s, lo, hi);
		exit(2);
	}
	return v;
}

/* ADDR PORT -> sockaddr (IPv4 or IPv6). */
static int resolve(const char *addr, const char *port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	uint16_t p = (uint16_t)num(port, 1, 65535);

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(p);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(p);
		*len = sizeof(*s6);
		return 0;
	}
	fprintf(stderr, "xdp_net: '%s' is not an IPv4 or IPv6 address\n", addr);
	return -1;
}

static void peer_text(const struct sockaddr_storage *ss, char *buf, size_t sz)
{
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, (socklen_t)sz);
	else
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf,
			  (socklen_t)sz);
}

/* ---- serve ------------------------------------------------------------------ */

static int serve(int argc, char **argv)
{
	struct pollfd pfd[MAX_CLIENTS + 1];
	struct sockaddr_storage ss;
	socklen_t len;
	uint64_t deadline;
	int one = 1, n = 1, ls;
	FILE *log;

	if (argc < 3)
		return usage();
	if (resolve(argv[0], argv[1], &ss, &len))
		return 2;
	deadline = now_ns() + (uint64_t)(argc > 3 ? num(argv[3], 1, 3600) : 600) * 1000000000ull;
	log = fopen(argv[2], "a");
	if (!log) {
		fprintf(stderr, "xdp_net: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	ls = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (struct sockaddr *)&ss, len) || listen(ls, 128)) {
		fprintf(stderr, "xdp_net: listen on %s port %s: %s\n", argv[0], argv[1],
			strerror(errno));
		return 1;
	}
	fprintf(log, "listening\n");
	fflush(log);
	pfd[0] = (struct pollfd){ .fd = ls, .events = POLLIN };
	while (!stop && now_ns() < deadline) {
		if (poll(pfd, (nfds_t)n, 100) <= 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			struct sockaddr_storage peer;
			socklen_t pl = sizeof(peer);
			int c = accept4(ls, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK);
			char text[INET6_ADDRSTRLEN];

			if (c >= 0) {
				peer_text(&peer, text, sizeof(text));
				fprintf(log, "accept %s\n", text);
				fflush(log);
				if (n <= MAX_CLIENTS)
					pfd[n++] = (struct pollfd){ .fd = c, .events = POLLIN };
				else
					close(c);
			}
		}
		for (int i = 1; i < n; i++) {
			char buf[65536];
			ssize_t r;

			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(pfd[i].fd, buf, sizeof(buf));
			if (r > 0) {
				/* Echo; a client sends at most what its socket buffer holds. */
				for (ssize_t off = 0; off < r;) {
					ssize_t w = write(pfd[i].fd, buf + off, (size_t)(r - off));

					if (w > 0)
						off += w;
					else if (w < 0 && errno != EAGAIN)
						break;
					else
						poll(&(struct pollfd){ .fd = pfd[i].fd,
								       .events = POLLOUT },
						     1, 100);
				}
				continue;
			}
			if (r < 0 && errno == EAGAIN)
				continue;
			close(pfd[i].fd);
			pfd[i--] = pfd[--n];
		}
	}
	fclose(log);
	return 0;
}

/* ---- connect ---------------------------------------------------------------- */

/* 0 connected, 1 timed out, -1 other error (message printed once by the caller). */
static int connect_timeout(int fd, const struct sockaddr_storage *ss, socklen_t len, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int err = 0;
	socklen_t el = sizeof(err);

	if (!connect(fd, (const struct sockaddr *)ss, len))
		return 0;
	if (errno != EINPROGRESS)
		return -1;
	if (poll(&p, 1, ms) == 0)
		return 1;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
	errno = err;
	return err ? (err == ETIMEDOUT ? 1 : -1) : 0;
}

static int io_all(int fd, void *buf, size_t n, bool wr, int ms)
{
	size_t done = 0;

	while (done < n) {
		struct pollfd p = { .fd = fd, .events = wr ? POLLOUT : POLLIN };
		ssize_t r;

		if (poll(&p, 1, ms) <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		r = wr ? write(fd, (char *)buf + done, n - done)
		       : read(fd, (char *)buf + done, n - done);
		if (r == 0) {
			errno = ECONNRESET;
			return -1;
		}
		if (r < 0 && errno != EAGAIN)
			return -1;
		if (r > 0)
			done += (size_t)r;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int latency(const struct sockaddr_storage *ss, socklen_t len, long count, int ms)
{
	uint64_t *rtt = calloc((size_t)count, sizeof(*rtt)), sum = 0;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
	char buf[64] = "ping";

	if (!rtt || fd < 0 || connect_timeout(fd, ss, len, ms)) {
		fprintf(stderr, "xdp_net: connect: %s\n", strerror(errno));
		return 1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (long i = 0; i < count; i++) {
		uint64_t t0 = now_ns();

		if (io_all(fd, buf, sizeof(buf), true, ms) ||
		    io_all(fd, buf, sizeof(buf), false, ms)) {
			fprintf(stderr, "xdp_net: ping %ld: %s\n", i, strerror(errno));
			return 1;
		}
		rtt[i] = now_ns() - t0;
		sum += rtt[i];
	}
	qsort(rtt, (size_t)count, sizeof(*rtt), cmp_u64);
	printf("rtt_us p50 %.2f p99 %.2f mean %.2f\n", (double)rtt[count / 2] / 1000.0,
	       (double)rtt[count * 99 / 100] / 1000.0, (double)sum / (double)count / 1000.0);
	close(fd);
	free(rtt);
	return 0;
}

static int do_connect(int argc, char **argv)
{
	long count = 1, seconds = 0, bytes = 4096, ms = 2000, ok = 0, errors = 0, timeouts = 0;
	long interval_ms = 0;
	bool expect_timeout = false, lat = false;
	struct sockaddr_storage ss;
	uint8_t *out, *in;
	uint64_t deadline;
	socklen_t len;

	if (argc < 2 || resolve(argv[0], argv[1], &ss, &len))
		return usage();
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			count = num(argv[++i], 1, 10000000);
		else if (!strcmp(argv[i], "-d") && i + 1 < argc)
			seconds = num(argv[++i], 1, 3600);
		else if (!strcmp(argv[i], "-b") && i + 1 < argc)
			bytes = num(argv[++i], 1, 1 << 20);
		else if (!strcmp(argv[i], "-t") && i + 1 < argc)
			ms = num(argv[++i], 1, 600000);
		else if (!strcmp(argv[i], "-i") && i + 1 < argc)
			interval_ms = num(argv[++i], 0, 60000);
		else if (!strcmp(argv[i], "--expect-timeout"))
			expect_timeout = true;
		else if (!strcmp(argv[i], "--lat"))
			lat = true;
		else
			return usage();
	}
	if (lat)
		return latency(&ss, len, count, (int)ms);
	out = malloc((size_t)bytes);
	in = malloc((size_t)bytes);
	if (!out || !in)
		return 1;
	deadline = seconds ? now_ns() + (uint64_t)seconds * 1000000000ull : UINT64_MAX;
	for (long n = 0; !stop && (seconds ? now_ns() < deadline : n < count); n++) {
		int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
		int rc = fd < 0 ? -1 : connect_timeout(fd, &ss, len, (int)ms);

		if (rc == 1) {
			timeouts++;
		} else if (rc < 0) {
			if (!errors++)
				fprintf(stderr, "xdp_net: connect %ld: %s\n", n, strerror(errno));
		} else {
			for (long b = 0; b < bytes; b++)
				out[b] = (uint8_t)(n * 131 + b * 7);
			if (io_all(fd, out, (size_t)bytes, true, (int)ms) ||
			    io_all(fd, in, (size_t)bytes, false, (int)ms)) {
				if (!errors++)
					fprintf(stderr, "xdp_net: exchange %ld: %s\n", n,
						strerror(errno));
			} else if (memcmp(in, out, (size_t)bytes)) {
				if (!errors++)
					fprintf(stderr, "xdp_net: exchange %ld: echo differs\n", n);
			} else {
				ok++;
			}
		}
		if (fd >= 0)
			close(fd);
		if (interval_ms) {
			struct timespec ts = { interval_ms / 1000, (interval_ms % 1000) * 1000000 };

			nanosleep(&ts, NULL);
		}
	}
	printf("ok %ld errors %ld timeouts %ld\n", ok, errors, timeouts);
	free(out);
	free(in);
	if (expect_timeout)
		return ok || errors || !timeouts ? 1 : 0;
	return errors || timeouts || !ok ? 1 : 0;
}

/* ---- flood ------------------------------------------------------------------ */

static uint16_t csum_fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint64_t csum_add(uint64_t sum, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		sum += (uint32_t)(b[n - 1] << 8);
	return sum;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int m[6];

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)m[i];
	return 0;
}

struct frame {
	uint8_t b[128];
	size_t len;
	size_t tcp_off; /* the TCP header */
	bool v6;
	uint64_t pseudo; /* pseudo-header sum without the TCP header */
};

static int build_frame(struct frame *f, const uint8_t dmac[6], const uint8_t smac[6],
		       const char *src, const char *dst, uint16_t dport, int vlan, int qinq,
		       bool ack)
{
	struct tcphdr th = { 0 };
	size_t off = 12;
	uint16_t et;

	memset(f, 0, sizeof(*f));
	memcpy(f->b, dmac, 6);
	memcpy(f->b + 6, smac, 6);
	if (qinq >= 0) {
		et = htons(0x88a8);
		memcpy(f->b + off, &et, 2);
		et = htons((uint16_t)qinq);
		memcpy(f->b + off + 2, &et, 2);
		off += 4;
	}
	if (vlan >= 0) {
		et = htons(0x8100);
		memcpy(f->b + off, &et, 2);
		et = htons((uint16_t)vlan);
		memcpy(f->b + off + 2, &et, 2);
		off += 4;
	}
	th.dest = htons(dport);
	th.doff = 5;
	th.syn = !ack;
	th.ack = ack;
	th.window = htons(64240);
	th.seq = htonl(1);
	{
		struct in_addr s4, d4;
		struct in6_addr s6, d6;

		if (inet_pton(AF_INET, src, &s4) == 1 && inet_pton(AF_INET, dst, &d4) == 1) {
			struct iphdr ip = { .version = 4, .ihl = 5, .ttl = 64 };

			et = htons(ETH_P_IP);
			memcpy(f->b + off, &et, 2);
			off += 2;
			ip.protocol = IPPROTO_TCP;
			ip.tot_len = htons(sizeof(ip) + sizeof(th));
			ip.saddr = s4.s_addr;
			ip.daddr = d4.s_addr;
			ip.check = htons(csum_fold(csum_add(0, &ip, sizeof(ip))));
			memcpy(f->b + off, &ip, sizeof(ip));
			off += sizeof(ip);
			f->pseudo =
			    csum_add(csum_add(0, &s4, 4), &d4, 4) + IPPROTO_TCP + sizeof(th);
		} else if (inet_pton(AF_INET6, src, &s6) == 1 &&
			   inet_pton(AF_INET6, dst, &d6) == 1) {
			struct ip6_hdr ip6 = { 0 };

			et = htons(ETH_P_IPV6);
			memcpy(f->b + off, &et, 2);
			off += 2;
			ip6.ip6_flow = htonl(6u << 28);
			ip6.ip6_plen = htons(sizeof(th));
			ip6.ip6_nxt = IPPROTO_TCP;
			ip6.ip6_hlim = 64;
			ip6.ip6_src = s6;
			ip6.ip6_dst = d6;
			memcpy(f->b + off, &ip6, sizeof(ip6));
			off += sizeof(ip6);
			f->v6 = true;
			f->pseudo =
			    csum_add(csum_add(0, &s6, 16), &d6, 16) + IPPROTO_TCP + sizeof(th);
		} else {
			fprintf(stderr, "xdp_net: %s and %s: not two addresses of one family\n",
				src, dst);
			return -1;
		}
	}
	f->tcp_off = off;
	memcpy(f->b + off, &th, sizeof(th));
	f->len = off + sizeof(th);
	return 0;
}

/* A new source port and sequence number, and the TCP checksum for them. */
static void frame_next(struct frame *f, uint32_t n)
{
	struct tcphdr *th = (struct tcphdr *)(f->b + f->tcp_off);
	uint16_t sport = (uint16_t)(1024 + n % 64000);

	th->source = htons(sport);
	th->seq = htonl(n * 2654435761u);
	th->check = 0;
	th->check = htons(csum_fold(csum_add(f->pseudo, th, sizeof(*th))));
}

static int flood(int argc, char **argv)
{
	long pps = 0, count = 1000, seconds = 10;
	int vlan = -1, qinq = -1, fd;
	bool ack = false;
	uint8_t dmac[6], smac[6];
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_halen = 6 };
	struct ifreq ifr = { 0 };
	static struct frame f[64];
	struct mmsghdr msg[64];
	struct iovec iov[64];
	uint64_t t0, deadline;
	long sent = 0;
	int one = 1;

	if (argc < 5 || parse_mac(argv[1], dmac))
		return usage();
	for (int i = 5; i < argc; i++) {
		if (!strcmp(argv[i], "-r") && i + 1 < argc)
			pps = num(argv[++i], 0, 100000000);
		else if (!strcmp(argv[i], "-n") && i + 1 < argc)
			count = num(argv[++i], 1, 1000000000);
		else if (!strcmp(argv[i], "-d") && i + 1 < argc)
			seconds = num(argv[++i], 1, 600);
		else if (!strcmp(argv[i], "--vlan") && i + 1 < argc)
			vlan = (int)num(argv[++i], 0, 4095);
		else if (!strcmp(argv[i], "--qinq") && i + 1 < argc)
			qinq = (int)num(argv[++i], 0, 4095);
		else if (!strcmp(argv[i], "--ack"))
			ack = true;
		else
			return usage();
	}
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0) {
		fprintf(stderr, "xdp_net: AF_PACKET socket: %s\n", strerror(errno));
		return 1;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", argv[0]);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr)) {
		fprintf(stderr, "xdp_net: %s: %s\n", argv[0], strerror(errno));
		return 1;
	}
	memcpy(smac, ifr.ifr_hwaddr.sa_data, 6);
	sll.sll_ifindex = (int)if_nametoindex(argv[0]);
	memcpy(sll.sll_addr, dmac, 6);
	/* Straight to the driver: the sender measures the receiver, not a qdisc. */
	setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	for (int b = 0; b < 64; b++) {
		if (build_frame(&f[b], dmac, smac, argv[2], argv[3],
				(uint16_t)num(argv[4], 1, 65535), vlan, qinq, ack))
			return 1;
		iov[b] = (struct iovec){ .iov_base = f[b].b, .iov_len = f[b].len };
		msg[b] = (struct mmsghdr){ .msg_hdr = { .msg_name = &sll,
							.msg_namelen = sizeof(sll),
							.msg_iov = &iov[b],
							.msg_iovlen = 1 } };
	}
	t0 = now_ns();
	deadline = t0 + (uint64_t)seconds * 1000000000ull;
	while (!stop && sent < count) {
		uint64_t t = now_ns();

		if (t >= deadline)
			break;
		/* Pacing: never ahead of sent / pps; batches of up to 64 between checks. */
		if (pps && (uint64_t)sent * 1000000000ull > (t - t0) * (uint64_t)pps) {
			struct timespec ts = { 0, 20000 };

			nanosleep(&ts, NULL);
			continue;
		}
		{
			/* A batch: up to 64, no more than the pace allows now. */
			uint64_t due = pps ? (now_ns() - t0) * (uint64_t)pps / 1000000000ull + 1
					   : (uint64_t)count;
			long n = (long)LEAP_MIN((uint64_t)64, due - (uint64_t)sent);
			int r;

			n = LEAP_MIN(n, count - sent);
			for (long b = 0; b < n; b++)
				frame_next(&f[b], (uint32_t)(sent + b));
			r = sendmmsg(fd, msg, (unsigned int)n, 0);
			if (r < 0 && errno != ENOBUFS && errno != EAGAIN) {
				fprintf(stderr, "xdp_net: send: %s\n", strerror(errno));
				return 1;
			}
			if (r > 0)
				sent += r;
		}
	}
	{
		struct rusage ru;

		/* CPU time includes the receiver's softirq work done in this task's context. */
		getrusage(RUSAGE_SELF, &ru);
		printf(
		    "sent %ld pps %.0f cpu_ns %llu\n", sent,
		    (double)sent * 1e9 / (double)(now_ns() - t0),
		    (unsigned long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
			(unsigned long long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull);
	}
	close(fd);
	return 0;
}

/* ---- sniff ------------------------------------------------------------------ */

static int sniff(int argc, char **argv)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	uint8_t src[16] = { 0 };
	int src_len = 0, fd;
	uint16_t port;
	uint64_t deadline;
	long syns = 0;

	if (argc < 3)
		return usage();
	port = (uint16_t)num(argv[1], 1, 65535);
	deadline = now_ns() + (uint64_t)num(argv[2], 1, 3600) * 1000000000ull;
	if (argc > 3) {
		if (inet_pton(AF_INET, argv[3], src) == 1)
			src_len = 4;
		else if (inet_pton(AF_INET6, argv[3], src) == 1)
			src_len = 16;
		else
			return usage();
	}
	fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_ALL));
	sll.sll_ifindex = (int)if_nametoindex(argv[0]);
	if (fd < 0 || !sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		fprintf(stderr, "xdp_net: sniff on %s: %s\n", argv[0], strerror(errno));
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	while (!stop && now_ns() < deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		uint8_t b[2048];
		const struct tcphdr *th;
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recvfrom(fd, b, sizeof(b), 0, (struct sockaddr *)&from, &fl);
		if (n <= 0 || from.sll_pkttype == PACKET_OUTGOING)
			continue;
		/* SOCK_DGRAM: the frame from the network header on, VLAN tags already stripped. */
		if (from.sll_protocol == htons(ETH_P_IP) && n >= 40 && b[9] == IPPROTO_TCP) {
			size_t hl = (size_t)(b[0] & 0xf) * 4;

			if (src_len == 16 || (src_len == 4 && memcmp(b + 12, src, 4)) ||
			    (size_t)n < hl + sizeof(*th))
				continue;
			th = (const struct tcphdr *)(b + hl);
		} else if (from.sll_protocol == htons(ETH_P_IPV6) && n >= 60 &&
			   b[6] == IPPROTO_TCP) {
			if (src_len == 4 || (src_len == 16 && memcmp(b + 8, src, 16)))
				continue;
			th = (const struct tcphdr *)(b + 40);
		} else {
			continue;
		}
		if (ntohs(th->dest) == port && th->syn && !th->ack)
			syns++;
	}
	printf("syns %ld\n", syns);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "serve"))
		return serve(argc - 2, argv + 2);
	if (!strcmp(argv[1], "connect"))
		return do_connect(argc - 2, argv + 2);
	if (!strcmp(argv[1], "flood"))
		return flood(argc - 2, argv + 2);
	if (!strcmp(argv[1], "sniff"))
		return sniff(argc - 2, argv + 2);
	return usage();
}
