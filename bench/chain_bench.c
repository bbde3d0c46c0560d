// SPDX-License-Identifier: BSD-3-Clause
/*
 * chain_bench: the controller's I/O path on one reactor thread, without a tenant
 * or a socket, to price the policy chain per I/O: 4 KiB reads on a null
 * backend through leap_ctrl_submit()/leap_ctrl_poll() with a queue depth
 * kept full, first with no policy, then with prio + isolation + stats
 * attached (the chain bench/policy.sh section 1 measures end to end).
 * Rounds alternate; prints ns per I/O and the chain's cost (difference),
 * min/median/max of the rounds, in wall time and in this thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID: on a shared machine the time the scheduler
 * gave other tasks does not count, cache and steal effects still do).
 * The I/O runs on a reactor thread, as in leapd, so the controller's
 * timestamps come from the reactor's iteration clock (NO_REACTOR=1: in
 * the main thread, two clock reads per I/O, as before 2026-12-06; they
 * were half of its samples on this VM, and the chain's figure moved with
 * their cost). Both times count from a run's first poll on the reactor
 * to its last: between runs the reactor sleeps, up to 100 ms, which
 * counted from the main thread's start made wall time 2.7x CPU time.
 * Under `valgrind --tool=callgrind` (CALLGRIND=1: one short round each, in the main thread)
 * the instruction counts per I/O are exact and repeatable whatever else
 * the machine does: the figure for before/after.
 *
 * Policies are compiled as leapd compiles them with one reactor (counters'
 * atomic adds unlocked, leap_policy_set_single_writer()); LOCKED=1 in the
 * environment compiles them as with several reactors.
 *
 *   chain-bench [POLICY_DIR (build/policies)] [ROUNDS (5)] [IOS per round (2000000)]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "leapio/log.h"
#include "backend/bdev.h"
#include "core/reactor.h"
#include "nvme/ctrl.h"
#include "policy/policy.h"

LEAP_BDEV_MODULE_USE(leap_bdev_null_ops);

#define QD 128

static uint64_t completed, failed;
static struct leap_qpair qp;

static void bench_complete(void *t, struct leap_req *req)
{
	completed++;
	failed += req->status != 0;
	leap_qpair_req_put(req->qp, req);
}

static const struct leap_transport_caps caps = { .prp = true, .cntrltype = 1 };
static const struct leap_ctrl_transport_ops ops = { .caps = &caps, .complete = bench_complete };

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU ns per I/O of the last run(). */
static double last_cpu_ns;

/* Top the queue up to QD (at most n submitted in all), then poll the controller once. */
static void step(struct leap_ctrl *ctrl, uint64_t n, void *buf, uint64_t *submitted)
{
	struct leap_req *req;

	while (*submitted - completed < QD && *submitted < n && (req = leap_qpair_req_get(&qp))) {
		uint64_t lba = *submitted;

		memset(&req->sqe, 0, sizeof(req->sqe));
		req->sqe.opc = NVME_OPC_READ;
		req->sqe.nsid = 1;
		req->sqe.cid = (uint16_t)lba;
		req->sqe.prp1 = (uint64_t)(uintptr_t)buf;
		req->sqe.cdw10 = (uint32_t)(lba & 0xffff) * 8;
		req->sqe.cdw12 = 7;
		(*submitted)++;
		leap_ctrl_submit(ctrl, req, false);
	}
	leap_ctrl_poll(ctrl);
}

/*
 * The run as leapd does it: on a reactor thread, one step() per poll, so
 * the controller reads the reactor's iteration clock (one clock read per
 * pass, not two per I/O: in this thread they were half the samples, and
 * their cost on this VM varies more than the chain's).
 */
struct job {
	struct leap_ctrl *ctrl;
	void *buf;
	uint64_t n, submitted, cpu0, wall0;
	int state; /* 0 idle, 1 running (main -> reactor, release), 2 done (reactor -> main) */
	/* Both from the first poll of the run to its last: not the reactor's wake-up. */
	double cpu_ns, wall_ns;
};

static struct job job;
static struct leap_reactor *reactor;

static int job_poll(void *arg)
{
	struct job *j = arg;

	if (__atomic_load_n(&j->state, __ATOMIC_ACQUIRE) != 1)
		return LEAP_POLL_IDLE;
	if (j->submitted == 0 && completed == 0) {
		j->cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		j->wall0 = clock_ns(CLOCK_MONOTONIC);
	}
	step(j->ctrl, j->n, j->buf, &j->submitted);
	if (completed >= j->n) {
		j->cpu_ns = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - j->cpu0) / (double)j->n;
		j->wall_ns = (double)(clock_ns(CLOCK_MONOTONIC) - j->wall0) / (double)j->n;
		__atomic_store_n(&j->state, 2, __ATOMIC_RELEASE);
	}
	return LEAP_POLL_BUSY;
}

/* Keep QD reads in flight until n completed; returns wall ns per I/O. */
static double run(struct leap_ctrl *ctrl, uint64_t n, void *buf)
{
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	uint64_t submitted = 0;

	completed = 0;
	if (reactor) {
		job = (struct job){ .ctrl = ctrl, .buf = buf, .n = n };
		__atomic_store_n(&job.state, 1, __ATOMIC_RELEASE);
		while (__atomic_load_n(&job.state, __ATOMIC_ACQUIRE) != 2)
			usleep(1000);
		last_cpu_ns = job.cpu_ns;
		return job.wall_ns;
	}
	while (completed < n)
		step(ctrl, n, buf, &submitted);
	last_cpu_ns = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / (double)n;
	return (double)(clock_ns(CLOCK_MONOTONIC) - t0) / (double)n;
}

/*
 * Two names for the same loop, so callgrind can count each alone:
 *   valgrind --tool=callgrind --toggle-collect=run_plain ...  (no policy)
 *   valgrind --tool=callgrind --toggle-collect=run_chained ... (3 policies)
 */
__attribute__((noinline)) double run_plain(struct leap_ctrl *ctrl, uint64_t n, void *buf);
__attribute__((noinline)) double run_chained(struct leap_ctrl *ctrl, uint64_t n, void *buf);

double run_plain(struct leap_ctrl *ctrl, uint64_t n, void *buf)
{
	return run(ctrl, n, buf);
}

double run_chained(struct leap_ctrl *ctrl, uint64_t n, void *buf)
{
	return run(ctrl, n, buf);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int load(const char *dir, const char *file, const char *name, struct leap_policy **out)
{
	char path[512], err[4096] = "";
	struct leap_policy_load_opts o = { .name = name, .path = path };
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	rc = leap_policy_load(&o, err, sizeof(err), out);
	if (rc)
		fprintf(stderr, "chain-bench: %s: %s\n", path, err);
	return rc;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "build/policies";
	int rounds = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 5;
	uint64_t n = argc > 3 ? strtoull(argv[3], NULL, 0) : 2000000;
	struct leap_bdev *bdev;
	json_t *bparams;
	struct leap_ctrl *ctrl;
	struct leap_policy *pol[3];
	struct leap_policy_link *links[3];
	char tag[32], name[3][64], err[256];
	double none[64], chain[64], diff[64], ratio[64];
	double cnone[64], cchain[64], cdiff[64], cratio[64];
	void *buf;

	if (getenv("CALLGRIND")) {
		rounds = 1;
		n = 20000;
	}
	if (rounds < 1 || rounds > 64 || n == 0) {
		fprintf(stderr, "usage: chain-bench [POLICY_DIR] [ROUNDS 1..64] [IOS]\n");
		return 2;
	}
	leap_log_set_level(LEAP_LOG_WARN);
	/* One thread runs every hook, as in leapd with one reactor (its default); LOCKED=1: as with more. */
	leap_policy_set_single_writer(!getenv("LOCKED"));
	bparams = json_pack("{s:s, s:s, s:I}", "type", "null", "name", "n0", "size",
			    (json_int_t)(1ull << 30));
	if (!bparams || leap_bdev_create_wait(bparams, &bdev, NULL)) {
		fprintf(stderr, "chain-bench: null bdev failed\n");
		return 1;
	}
	json_decref(bparams);
	if (leap_ctrl_create(&(struct leap_ctrl_opts){ .name = "bench" }, &ctrl) ||
	    leap_ctrl_ns_add(ctrl, 1, "n0", 0, 0, 512) != 1) {
		fprintf(stderr, "chain-bench: controller setup failed\n");
		return 1;
	}
	leap_ctrl_transport_bind(ctrl, &ops, NULL);
	if (leap_qpair_init(&qp, ctrl, 1, 1, QD, QD) || leap_policy_ctrl_add(ctrl, 0)) {
		fprintf(stderr, "chain-bench: out of memory\n");
		return 1;
	}
	buf = aligned_alloc(4096, 4096);
	/* The "tenant" region: the buffer's address is its tenant address. */
	ctrl->mem.cnt = 1;
	ctrl->mem.r[0] =
	    (struct leap_mem_region){ .base = (uint64_t)(uintptr_t)buf, .len = 4096, .local = buf };
	snprintf(tag, sizeof(tag), "%d", (int)getpid());
	snprintf(name[0], sizeof(name[0]), "prio_cb%s", tag);
	snprintf(name[1], sizeof(name[1]), "iso_cb%s", tag);
	snprintf(name[2], sizeof(name[2]), "stats_cb%s", tag);
	if (load(dir, "prio.bpf.o", name[0], &pol[0]) ||
	    load(dir, "isolation.bpf.o", name[1], &pol[1]) ||
	    load(dir, "stats.bpf.o", name[2], &pol[2]))
		return 1;
	if (!getenv("CALLGRIND") && !getenv("NO_REACTOR")) {
		static const struct leap_poller_ops job_ops = { .poll = job_poll };
		/* CPU=N pins the reactor (the comparison is steadier). */
		struct leap_reactor_opts ro = { .cpu = getenv("CPU")
							   ? (int)strtol(getenv("CPU"), NULL, 10)
							   : -1,
						.name = "chain-bench" };

		if (leap_reactor_create(&ro, &reactor) ||
		    leap_poller_register(reactor, &job_ops, &job, -1, NULL) ||
		    leap_reactor_start(reactor)) {
			fprintf(stderr, "chain-bench: reactor setup failed\n");
			return 1;
		}
	}
	run(ctrl, n / 10 + 1, buf); /* warm up */
	for (int r = 0; r < rounds; r++) {
		none[r] = run_plain(ctrl, n, buf);
		cnone[r] = last_cpu_ns;
		if (leap_policy_attach(pol[0], LEAP_HOOK_SUBMIT, NULL, 0, 10, err, sizeof(err),
				       &links[0]) ||
		    leap_policy_attach(pol[1], LEAP_HOOK_SUBMIT, NULL, 0, 20, err, sizeof(err),
				       &links[1]) ||
		    leap_policy_attach(pol[2], LEAP_HOOK_COMPLETE, NULL, 0, 30, err, sizeof(err),
				       &links[2]) ||
		    leap_policy_publish() < 0) {
			fprintf(stderr, "chain-bench: attach: %s\n", err);
			return 1;
		}
		chain[r] = run_chained(ctrl, n, buf);
		cchain[r] = last_cpu_ns;
		for (int i = 0; i < 3; i++)
			leap_policy_detach(links[i]);
		leap_policy_reap(leap_policy_publish());
		diff[r] = chain[r] - none[r];
		ratio[r] = none[r] / chain[r];
		cdiff[r] = cchain[r] - cnone[r];
		cratio[r] = cnone[r] / cchain[r];
		if (failed) {
			fprintf(stderr, "chain-bench: %llu I/Os failed\n",
				(unsigned long long)failed);
			return 1;
		}
		printf("round %d: no policy %.1f ns/IO, 3 policies %.1f ns/IO, chain %.1f ns/IO; "
		       "cpu: %.1f, %.1f, chain %.1f ns/IO\n",
		       r + 1, none[r], chain[r], diff[r], cnone[r], cchain[r], cdiff[r]);
	}
	{
		double *sets[] = { none, chain, diff, ratio, cnone, cchain, cdiff, cratio };

		for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
			qsort(sets[i], (size_t)rounds, sizeof(double), cmp_double);
	}
	printf("median: no_policy_ns=%.1f chain3_ns=%.1f chain_cost_ns=%.1f ratio=%.3f\n",
	       none[rounds / 2], chain[rounds / 2], diff[rounds / 2], ratio[rounds / 2]);
	printf("wall: chain_cost_ns min/median/max %.1f/%.1f/%.1f, ratio (IOPS with/without) "
	       "min/median/max %.3f/%.3f/%.3f\n",
	       diff[0], diff[rounds / 2], diff[rounds - 1], ratio[0], ratio[rounds / 2],
	       ratio[rounds - 1]);
	printf("cpu:  no_policy_ns=%.1f chain3_ns=%.1f chain_cost_ns min/median/max "
	       "%.1f/%.1f/%.1f, ratio min/median/max %.3f/%.3f/%.3f\n",
	       cnone[rounds / 2], cchain[rounds / 2], cdiff[0], cdiff[rounds / 2],
	       cdiff[rounds - 1], cratio[0], cratio[rounds / 2], cratio[rounds - 1]);
	leap_reactor_destroy(reactor);
	leap_policy_cleanup();
	leap_ctrl_channels_close(ctrl);
	/* The pinned maps of this run's names go with the process's pins. */
	for (int i = 0; i < 3; i++) {
		char pin[512];

		snprintf(pin, sizeof(pin), "rm -rf %s/%s", LEAP_POLICY_PIN_ROOT, name[i]);
		if (system(pin) != 0)
			fprintf(stderr, "chain-bench: could not remove %s\n", name[i]);
	}
	free(buf);
	return 0;
}
