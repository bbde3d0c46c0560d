// SPDX-License-Identifier: BSD-3-Clause
/*
 * Reactor figures the unit tests must not assert on (they are timings):
 *   idle    CPU used by a reactor with nothing to do, over a few seconds,
 *           from /proc/self/stat (utime+stime, the whole process: the main
 *           thread only sleeps) and from the reactor thread's CPU clock;
 *   wake    latency from an eventfd write (a poller's wake fd) to the poller
 *           running, on a reactor that is asleep in epoll; the same for a
 *           message; for an eventfd while the reactor is still polling; and,
 *           as the platform's floor, a bare thread blocked in epoll_wait,
 *           and a bare eventfd ping-pong between two threads on the two
 *           CPUs, both blocked in read() (half the round trip), with the
 *           ratio of the reactor's wake-ups to that floor.
 * Usage: reactor-bench [seconds for idle (default 5)] [wake samples (1000)]
 * Prints one "key=value" line per figure, for bench/RESULTS.md.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/reactor.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* utime + stime of this process, in clock ticks (fields 14 and 15). */
static long long proc_ticks(void)
{
	char buf[1024], *p;
	long long ut = 0, st = 0;
	FILE *f = fopen("/proc/self/stat", "r");
	size_t n;

	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* comm may hold spaces */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &ut, &st) != 2)
		return -1;
	return ut + st;
}

struct probe {
	int efd;
	pthread_t thread;
	_Atomic uint64_t seen_ns; /* when poll() found the eventfd readable */
	_Atomic int have_thread;
};

static int probe_poll(void *arg)
{
	struct probe *p = arg;
	uint64_t v;

	if (!atomic_load_explicit(&p->have_thread, memory_order_relaxed)) {
		p->thread = pthread_self();
		atomic_store(&p->have_thread, 1);
	}
	if (read(p->efd, &v, sizeof(v)) != sizeof(v))
		return LEAP_POLL_IDLE;
	atomic_store_explicit(&p->seen_ns, now_ns(), memory_order_release);
	return LEAP_POLL_BUSY;
}

static _Atomic uint64_t msg_seen_ns;

static void probe_msg(void *arg)
{
	atomic_store_explicit(&msg_seen_ns, now_ns(), memory_order_release);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Print one figure; returns its median in ns. */
static uint64_t report(const char *what, uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	printf("reactor wake=%s samples=%d min_us=%.1f p50_us=%.1f p99_us=%.1f max_us=%.1f\n", what,
	       n, v[0] / 1e3, v[n / 2] / 1e3, v[(n * 99) / 100] / 1e3, v[n - 1] / 1e3);
	return v[n / 2];
}

/* Wait until the reactor has gone to sleep again since `prev`, then 1 ms more. */
static void wait_asleep(struct leap_reactor *r)
{
	static uint64_t prev;
	struct leap_reactor_stats st;

	do {
		usleep(100);
		leap_reactor_get_stats(r, &st);
	} while (st.sleeps == prev);
	prev = st.sleeps;
	usleep(1000);
}

/*
 * The platform's floor: a bare thread on the same CPU blocked in epoll_wait
 * on an eventfd, woken the same way. A VM whose idle vCPU halts (no guest
 * halt polling) pays the hypervisor's wake-up here, reactor or not.
 */
static int base_efd, base_ep;
static _Atomic uint64_t base_seen;
static _Atomic int base_stop;

static void *baseline_thread(void *arg)
{
	struct epoll_event ev;
	uint64_t v;

	while (!atomic_load(&base_stop)) {
		if (epoll_wait(base_ep, &ev, 1, 100) == 1 && read(base_efd, &v, sizeof(v)) > 0)
			atomic_store_explicit(&base_seen, now_ns(), memory_order_release);
	}
	return NULL;
}

static int pp_a, pp_b; /* blocking eventfds: a wakes the measuring thread, b the partner */

static void *pingpong_thread(void *arg)
{
	uint64_t v, one = 1;

	(void)arg;
	/* A zero-length value never comes: the main thread writes 2 to stop us. */
	while (read(pp_b, &v, sizeof(v)) == sizeof(v) && v == 1)
		if (write(pp_a, &one, sizeof(one)) != sizeof(one))
			break;
	return NULL;
}

/*
 * The floor for a wake-up between two processes' threads on different
 * CPUs, both asleep: what a kick from a tenant to an idle leapd can cost
 * at best on this machine. One-way = half the round trip.
 */
static uint64_t pingpong(int cpu, uint64_t *lat, int samples)
{
	uint64_t one = 1, two = 2, v;
	pthread_attr_t attr;
	pthread_t th;
	cpu_set_t set;

	pp_a = eventfd(0, 0);
	pp_b = eventfd(0, 0);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_attr_init(&attr);
	pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	pthread_create(&th, &attr, pingpong_thread, NULL);
	for (int i = 0; i < samples; i++) {
		uint64_t t;

		usleep(1300); /* let both CPUs go idle, as in the reactor samples */
		t = now_ns();
		if (write(pp_b, &one, sizeof(one)) != sizeof(one) ||
		    read(pp_a, &v, sizeof(v)) != sizeof(v))
			break;
		lat[i] = (now_ns() - t) / 2;
	}
	if (write(pp_b, &two, sizeof(two)) != sizeof(two))
		pthread_cancel(th);
	pthread_join(th, NULL);
	pthread_attr_destroy(&attr);
	close(pp_a);
	close(pp_b);
	return report("baseline-eventfd-pingpong-oneway", lat, samples);
}

static void baseline(int cpu, uint64_t *lat, int samples)
{
	struct epoll_event ev = { .events = EPOLLIN };
	pthread_attr_t attr;
	pthread_t th;
	cpu_set_t set;

	base_efd = eventfd(0, EFD_NONBLOCK);
	base_ep = epoll_create1(0);
	epoll_ctl(base_ep, EPOLL_CTL_ADD, base_efd, &ev);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_attr_init(&attr);
	pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	pthread_create(&th, &attr, baseline_thread, NULL);
	for (int i = 0; i < samples; i++) {
		uint64_t one = 1, t;

		usleep(1300); /* the reactor samples wait about as long */
		atomic_store(&base_seen, 0);
		t = now_ns();
		if (write(base_efd, &one, sizeof(one)) != sizeof(one))
			break;
		while (!atomic_load_explicit(&base_seen, memory_order_acquire))
			;
		lat[i] = atomic_load(&base_seen) - t;
	}
	atomic_store(&base_stop, 1);
	pthread_join(th, NULL);
	pthread_attr_destroy(&attr);
	close(base_ep);
	close(base_efd);
	report("baseline-bare-epoll", lat, samples);
}

int main(int argc, char **argv)
{
	static const struct leap_poller_ops ops = { .poll = probe_poll };
	int secs = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 5;
	int samples = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 1000;
	int cpu = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0;
	struct leap_reactor_opts o = { .cpu = cpu, .name = "bench-reactor" };
	struct probe p = { .efd = eventfd(0, EFD_NONBLOCK) };
	struct leap_reactor *r;
	struct leap_reactor_stats st;
	uint64_t *lat = calloc((size_t)samples, sizeof(*lat));
	long long t0, t1, hz = sysconf(_SC_CLK_TCK);
	struct timespec c0, c1;
	uint64_t p50_efd, p50_msg, p50_pp;
	clockid_t cid;
	cpu_set_t set;

	if (secs <= 0 || samples <= 0 || !lat || p.efd < 0 || leap_reactor_create(&o, &r) ||
	    leap_poller_register(r, &ops, &p, p.efd, NULL) || leap_reactor_start(r)) {
		fprintf(stderr, "reactor-bench: setup failed\n");
		return 1;
	}
	/* Keep the measuring thread off the reactor's CPU. */
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	if (cpu)
		sched_setaffinity(0, sizeof(set), &set);
	while (!atomic_load(&p.have_thread))
		usleep(1000);
	pthread_getcpuclockid(p.thread, &cid);

	/* ---- idle CPU ---- */
	usleep(300000); /* settle into the sleep rhythm */
	t0 = proc_ticks();
	clock_gettime(cid, &c0);
	sleep((unsigned)secs);
	t1 = proc_ticks();
	clock_gettime(cid, &c1);
	leap_reactor_get_stats(r, &st);
	printf("reactor idle seconds=%d proc_cpu_pct=%.2f thread_cpu_pct=%.3f sleeps=%llu\n", secs,
	       100.0 * (double)(t1 - t0) / (double)hz / secs,
	       100.0 * ((c1.tv_sec - c0.tv_sec) * 1e9 + (double)(c1.tv_nsec - c0.tv_nsec)) /
		   (secs * 1e9),
	       (unsigned long long)st.sleeps);

	/* ---- eventfd wake while asleep ---- */
	for (int i = 0; i < samples; i++) {
		uint64_t one = 1, t;

		wait_asleep(r);
		atomic_store(&p.seen_ns, 0);
		t = now_ns();
		if (write(p.efd, &one, sizeof(one)) != sizeof(one))
			return 1;
		while (!atomic_load_explicit(&p.seen_ns, memory_order_acquire))
			;
		lat[i] = atomic_load(&p.seen_ns) - t;
	}
	p50_efd = report("eventfd-asleep", lat, samples);

	/* ---- message wake while asleep ---- */
	for (int i = 0; i < samples; i++) {
		uint64_t t;

		wait_asleep(r);
		atomic_store(&msg_seen_ns, 0);
		t = now_ns();
		if (leap_reactor_send_msg(r, probe_msg, NULL))
			return 1;
		while (!atomic_load_explicit(&msg_seen_ns, memory_order_acquire))
			;
		lat[i] = atomic_load(&msg_seen_ns) - t;
	}
	p50_msg = report("message-asleep", lat, samples);

	/* ---- eventfd while polling (no sleep: idle_sleep_us not reached) ---- */
	for (int i = 0; i < samples; i++) {
		uint64_t one = 1, t;

		/* Right after a busy iteration, the reactor polls for 200 µs. */
		atomic_store(&p.seen_ns, 0);
		if (write(p.efd, &one, sizeof(one)) != sizeof(one))
			return 1;
		while (!atomic_load_explicit(&p.seen_ns, memory_order_acquire))
			;
		usleep(20);
		atomic_store(&p.seen_ns, 0);
		t = now_ns();
		if (write(p.efd, &one, sizeof(one)) != sizeof(one))
			return 1;
		while (!atomic_load_explicit(&p.seen_ns, memory_order_acquire))
			;
		lat[i] = atomic_load(&p.seen_ns) - t;
	}
	report("eventfd-polling", lat, samples);

	leap_reactor_stop(r);
	leap_reactor_destroy(r);
	close(p.efd);
	baseline(cpu, lat, samples);
	p50_pp = pingpong(cpu, lat, samples);
	printf("reactor wake ratio to the ping-pong floor (p50): eventfd-asleep=%.2f "
	       "message-asleep=%.2f\n",
	       (double)p50_efd / (double)p50_pp, (double)p50_msg / (double)p50_pp);
	free(lat);
	return 0;
}
