// SPDX-License-Identifier: BSD-3-Clause
/*
 * The mirror's resync thread: brings a RESYNCING leg in sync by copying,
 * from an ACTIVE leg, every region its bitmap marks, while tenants keep
 * reading and writing. One thread per mirror, started by add-leg or resync
 * and gone when no leg is RESYNCING; it opens channels of its own on the
 * legs, so a resync needs no namespace and takes nothing from a reactor.
 *
 * Before copying, it turns region locking on (rl_on) and waits until every
 * channel's count of writes issued without locks drains (the Dekker
 * handshake of mirror.c: lock_regions()): from then on every write to the
 * mirror holds its regions' lock words. A copy takes a region's word
 * exclusively, only when no write holds it, clears the region's bit, and
 * copies it in chunks (read from an ACTIVE leg, write to the target); a
 * write to that region waits (deferred on its channel) until the copy
 * ends. A copy that fails sets the bit back. Passes over the bitmap repeat
 * until one finds no bit set and no copy out: the leg is then ACTIVE.
 * Optional rate limit (resync_rate_mbps) and depth (regions at once).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "mirror_internal.h"

#define RESYNC_CHUNK	 (1u << 20) /* bytes per copy I/O, at most a region */
#define RESYNC_MAX_DEPTH 64
#define RESYNC_NICE	 10

struct rs;

struct copy_slot {
	struct rs *rs;
	struct leap_bdev_io io;
	struct iovec iov;
	void *buf;
	uint64_t region, pos, end;
	uint32_t src;
	bool busy, writing, stalled;
};

struct rs {
	struct mirror_bdev *m;
	uint32_t target;
	struct leap_bdev_channel *ch[MIRROR_MAX_LEGS];
	struct copy_slot slots[RESYNC_MAX_DEPTH];
	uint32_t nslots, active, rr;
	uint64_t chunk, scan, bytes, t0;
	bool abort;
	struct bdev_wake wake;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool still_resyncing(const struct rs *rs)
{
	return leg_state(rs->m, rs->target) == LEG_RESYNCING &&
	       !__atomic_load_n(&rs->m->stop, __ATOMIC_RELAXED);
}

/* An ACTIVE leg to copy from (rotating), or -1. */
static int pick_source(struct rs *rs)
{
	for (uint32_t j = 0; j < MIRROR_MAX_LEGS; j++) {
		uint32_t i = (rs->rr++) % MIRROR_MAX_LEGS;

		if (i != rs->target && rs->ch[i] && leg_state(rs->m, i) == LEG_ACTIVE)
			return (int)i;
	}
	return -1;
}

static void copy_cb(struct leap_bdev_io *io, uint16_t status);
static void copy_end(struct copy_slot *s, bool copied);

/* Submit the slot's I/O; a full channel leaves it stalled for the main loop (callbacks cannot poll). */
static void copy_submit(struct copy_slot *s)
{
	struct rs *rs = s->rs;
	int rc = leap_bdev_submit(rs->ch[s->writing ? rs->target : s->src], &s->io);

	s->stalled = rc == -EAGAIN;
	if (!rc || rc == -EAGAIN)
		return;
	LEAP_ERR("bdev", "%s: resync %s: %s", rs->m->base.name, s->writing ? "write" : "read",
		 strerror(-rc));
	copy_end(s, false);
	rs->abort = true;
}

static void copy_issue(struct copy_slot *s, bool write)
{
	struct rs *rs = s->rs;
	uint64_t len = s->end - s->pos < rs->chunk ? s->end - s->pos : rs->chunk;

	memset(&s->io, 0, sizeof(s->io));
	s->writing = write;
	s->iov.iov_base = s->buf;
	s->iov.iov_len = len;
	s->io.op = write ? LEAP_BDEV_OP_WRITE : LEAP_BDEV_OP_READ;
	s->io.offset = s->pos;
	s->io.len = len;
	s->io.iov = &s->iov;
	s->io.iovcnt = 1;
	s->io.buf_index = -1;
	s->io.cb = copy_cb;
	s->io.cb_arg = s;
	copy_submit(s);
}

/* The region is done (or given up): unlock it for writers. */
static void copy_end(struct copy_slot *s, bool copied)
{
	struct rs *rs = s->rs;
	struct mirror_leg *leg = &rs->m->legs[rs->target];

	if (copied) {
		__atomic_fetch_add(&leg->resync_done, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&leg->resync_regions, 1, __ATOMIC_RELAXED);
	} else {
		bm_set_range(leg->bitmap, s->region, s->region);
	}
	/* Release: the copied data is on the leg before a writer takes the region. */
	__atomic_store_n(lock_word(rs->m, s->region), 0, __ATOMIC_RELEASE);
	s->busy = false;
	rs->active--;
}

static void copy_cb(struct leap_bdev_io *io, uint16_t status)
{
	struct copy_slot *s = io->cb_arg;
	struct rs *rs = s->rs;
	struct mirror_bdev *m = rs->m;
	int src;

	if (!s->writing) {
		if (status) {
			/* The source failed: another in-sync leg, or give up this resync. */
			mirror_leg_fail(m, s->src, "a resync read", status);
			src = pick_source(rs);
			if (src < 0 || leg_state(m, s->src) == LEG_ACTIVE) {
				copy_end(s, false);
				rs->abort = true;
				return;
			}
			s->src = (uint32_t)src;
			copy_issue(s, false);
			return;
		}
		if (!still_resyncing(rs)) {
			copy_end(s, false);
			return;
		}
		copy_issue(s, true);
		return;
	}
	if (status) {
		copy_end(s, false);
		mirror_leg_fail(m, rs->target, "a resync write", status);
		rs->abort = true;
		return;
	}
	__atomic_fetch_add(&m->legs[rs->target].resync_bytes, io->len, __ATOMIC_RELAXED);
	rs->bytes += io->len;
	s->pos += io->len;
	if (s->pos < s->end && still_resyncing(rs))
		copy_issue(s, false);
	else
		copy_end(s, s->pos >= s->end);
}

/* Start copying region r if no write holds it. */
static bool copy_start(struct rs *rs, uint64_t r)
{
	struct mirror_bdev *m = rs->m;
	struct copy_slot *s = NULL;
	uint32_t zero = 0;
	int src = pick_source(rs);

	for (uint32_t i = 0; i < rs->nslots && !s; i++)
		if (!rs->slots[i].busy)
			s = &rs->slots[i];
	if (!s || src < 0)
		return false;
	if (!__atomic_compare_exchange_n(lock_word(m, r), &zero, MIRROR_LOCK_COPY, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return false;
	/* Under the lock no write to r is in flight: what the source holds is final. */
	bm_clear(m->legs[rs->target].bitmap, r);
	s->busy = true;
	s->region = r;
	s->pos = r << m->region_shift;
	s->end = s->pos + (1ull << m->region_shift);
	if (s->end > m->base.size)
		s->end = m->base.size;
	s->src = (uint32_t)src;
	rs->active++;
	copy_issue(s, false);
	return true;
}

static bool rate_allows(const struct rs *rs)
{
	uint64_t rate = __atomic_load_n(&rs->m->resync_rate_mbps, __ATOMIC_RELAXED);

	/* MB/s is bytes per microsecond. */
	return !rate || rs->bytes <= (now_ns() - rs->t0) / 1000 * rate;
}

static int poll_all(struct rs *rs)
{
	int n = 0;

	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++) {
		int r = rs->ch[i] ? leap_bdev_poll(rs->ch[i]) : 0;

		if (r > 0)
			n += r;
	}
	return n;
}

/* Nothing completed: sleep on the legs' wake fds when they have them, else a short nap. */
static void idle_wait(struct rs *rs)
{
	struct epoll_event ev;

	if (bdev_wake_prepare(&rs->wake, rs->ch, MIRROR_MAX_LEGS, 0))
		epoll_wait(rs->wake.epfd, &ev, 1, 1);
	else
		usleep(20);
	bdev_wake_done(&rs->wake);
}

/* Every channel's unlocked writes drained after rl_on was set: false if the resync ended. */
static bool wait_unlocked_writes(struct rs *rs)
{
	struct mirror_bdev *m = rs->m;

	/* Pairs with lock_regions(): see its comment. */
	__atomic_store_n(&m->rl_on, 1, __ATOMIC_SEQ_CST);
	for (;;) {
		bool busy = false;

		pthread_mutex_lock(&m->lock);
		for (struct mirror_channel *mc = m->chans; mc && !busy; mc = mc->next)
			busy = __atomic_load_n(&mc->unlocked_writes, __ATOMIC_SEQ_CST) != 0;
		pthread_mutex_unlock(&m->lock);
		if (!busy)
			return true;
		if (!still_resyncing(rs))
			return false;
		usleep(50);
	}
}

static void close_channels(struct rs *rs)
{
	struct mirror_bdev *m = rs->m;

	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++) {
		if (!rs->ch[i])
			continue;
		bdev_wake_del(&rs->wake, rs->ch[i]);
		leap_bdev_channel_close(rs->ch[i]);
		rs->ch[i] = NULL;
		pthread_mutex_lock(&m->lock);
		mirror_leg_chan_closed_locked(m, i);
		pthread_mutex_unlock(&m->lock);
	}
}

/* Channels on the target and every ACTIVE leg (counted so the legs stay held). */
static int open_channels(struct rs *rs)
{
	struct mirror_bdev *m = rs->m;

	for (uint32_t i = 0; i < MIRROR_MAX_LEGS; i++) {
		struct leap_bdev *b = NULL;
		uint32_t st = leg_state(m, i);
		int rc;

		if (i != rs->target && st != LEG_ACTIVE)
			continue;
		pthread_mutex_lock(&m->lock);
		b = m->legs[i].bdev;
		if (b)
			m->legs[i].open_chans++;
		pthread_mutex_unlock(&m->lock);
		if (!b)
			continue;
		rc = leap_bdev_channel_open(b, &rs->ch[i]);
		if (!rc)
			rc = bdev_wake_add(&rs->wake, rs->ch[i]);
		if (rc) {
			LEAP_ERR("bdev", "%s: resync: cannot open a channel on leg '%s': %s",
				 m->base.name, m->legs[i].name, strerror(-rc));
			if (rs->ch[i]) {
				leap_bdev_channel_close(rs->ch[i]);
				rs->ch[i] = NULL;
			}
			pthread_mutex_lock(&m->lock);
			mirror_leg_chan_closed_locked(m, i);
			pthread_mutex_unlock(&m->lock);
			if (i == rs->target)
				return rc;
		}
	}
	return 0;
}

static void resync_leg(struct mirror_bdev *m, uint32_t target)
{
	struct rs *rs = calloc(1, sizeof(*rs));
	struct mirror_leg *leg = &m->legs[target];
	uint64_t start = now_ns(), cpu0 = thread_cpu_ns(), r;
	size_t align = m->base.mem_align > 4096 ? m->base.mem_align : 4096;
	bool done = false;

	if (!rs) {
		mirror_leg_fail(m, target, "a resync (out of memory)", 0);
		return;
	}
	rs->m = m;
	rs->target = target;
	rs->wake.epfd = rs->wake.tfd = -1;
	rs->chunk =
	    (1ull << m->region_shift) < RESYNC_CHUNK ? (1ull << m->region_shift) : RESYNC_CHUNK;
	rs->nslots = m->resync_depth ? m->resync_depth : 1;
	if (rs->nslots > RESYNC_MAX_DEPTH)
		rs->nslots = RESYNC_MAX_DEPTH;
	for (uint32_t i = 0; i < rs->nslots; i++) {
		rs->slots[i].rs = rs;
		rs->slots[i].buf = aligned_alloc(align, LEAP_ALIGN_UP(rs->chunk, align));
		if (!rs->slots[i].buf)
			rs->nslots = i;
	}
	if (!rs->nslots || bdev_wake_init(&rs->wake, false) || open_channels(rs)) {
		mirror_leg_fail(m, target, "a resync (no channel or memory)", 0);
		goto out;
	}
	if (!wait_unlocked_writes(rs))
		goto out;
	__atomic_store_n(&leg->resync_total, bm_count(leg->bitmap, m->bm_words), __ATOMIC_RELAXED);
	__atomic_store_n(&leg->resync_done, 0, __ATOMIC_RELAXED);
	LEAP_INFO("bdev", "%s: resync of leg '%s': %llu of %llu regions to copy", m->base.name,
		  leg->name, (unsigned long long)leg->resync_total,
		  (unsigned long long)m->nregions);
	rs->t0 = now_ns();
	for (;;) {
		bool at_end = false;
		int n;

		for (uint32_t i = 0; i < rs->nslots; i++)
			if (rs->slots[i].busy && rs->slots[i].stalled)
				copy_submit(&rs->slots[i]);
		if (!rs->abort && !still_resyncing(rs))
			rs->abort = true;
		if (rs->abort) {
			if (!rs->active)
				break;
		} else {
			while (rs->active < rs->nslots && rate_allows(rs)) {
				r = bm_next(leg->bitmap, m->nregions, rs->scan);
				if (r == m->nregions) {
					at_end = true;
					break;
				}
				rs->scan = r + 1;
				copy_start(rs, r); /* busy region: the next pass */
			}
			if (at_end && !rs->active) {
				if (bm_next(leg->bitmap, m->nregions, 0) == m->nregions) {
					done = true;
					break;
				}
				rs->scan =
				    0; /* a new pass over what writers held or failures re-marked */
				usleep(100);
			}
		}
		n = poll_all(rs);
		if (!n && rs->active)
			idle_wait(rs);
		else if (!n && !rate_allows(rs))
			usleep(1000);
	}
	if (done) {
		uint32_t st = LEG_RESYNCING;

		if (__atomic_compare_exchange_n(&leg->state, &st, LEG_ACTIVE, false,
						__ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
			mirror_gen_bump(m);
			__atomic_store_n(&leg->last_bytes, rs->bytes, __ATOMIC_RELAXED);
			__atomic_store_n(&leg->last_ns, now_ns() - start, __ATOMIC_RELAXED);
			__atomic_store_n(&leg->last_cpu_ns, thread_cpu_ns() - cpu0,
					 __ATOMIC_RELAXED);
			LEAP_INFO("bdev",
				  "%s: leg '%s' in sync: %llu regions, %llu MiB in %.2f s (%.2f s "
				  "of CPU)",
				  m->base.name, leg->name, (unsigned long long)leg->resync_done,
				  (unsigned long long)(rs->bytes >> 20),
				  (double)(now_ns() - start) / 1e9,
				  (double)(thread_cpu_ns() - cpu0) / 1e9);
		}
	}
out:
	close_channels(rs);
	bdev_wake_fini(&rs->wake);
	for (uint32_t i = 0; i < RESYNC_MAX_DEPTH; i++)
		free(rs->slots[i].buf);
	free(rs);
}

static void *resync_main(void *arg)
{
	struct mirror_bdev *m = arg;

	/*
	 * Background work: where it competes with a reactor for a CPU, the
	 * reactor (nice 0) gets about nine tenths of it. resync_rate_mbps
	 * bounds it further.
	 */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), RESYNC_NICE))
		LEAP_DEBUG("bdev", "%s: resync thread keeps its priority: %s", m->base.name,
			   strerror(errno));

	for (;;) {
		int target = -1;

		pthread_mutex_lock(&m->lock);
		for (uint32_t i = 0; i < MIRROR_MAX_LEGS && !m->stop && target < 0; i++)
			if (leg_state(m, i) == LEG_RESYNCING)
				target = (int)i;
		if (target < 0) {
			/* Writes skip the locks again; those holding locks release them as usual. */
			__atomic_store_n(&m->rl_on, 0, __ATOMIC_SEQ_CST);
			m->thread_running = false;
			pthread_mutex_unlock(&m->lock);
			return NULL;
		}
		pthread_mutex_unlock(&m->lock);
		resync_leg(m, (uint32_t)target);
		/* A leg that fell back to FAULTY is not retried here: add-leg or resync does. */
	}
}

int mirror_resync_start_locked(struct mirror_bdev *m)
{
	int rc;

	if (m->thread_running)
		return 0;
	if (m->thread_joinable) {
		/* It said it was done (under the lock we hold) and is returning. */
		pthread_join(m->thread, NULL);
		m->thread_joinable = false;
	}
	rc = pthread_create(&m->thread, NULL, resync_main, m);
	if (rc) {
		LEAP_ERR("bdev", "%s: cannot start the resync thread: %s", m->base.name,
			 strerror(rc));
		return -rc;
	}
	m->thread_running = m->thread_joinable = true;
	return 0;
}

void mirror_resync_stop(struct mirror_bdev *m)
{
	bool join;

	pthread_mutex_lock(&m->lock);
	__atomic_store_n(&m->stop, true, __ATOMIC_RELAXED);
	join = m->thread_joinable;
	m->thread_joinable = false;
	pthread_mutex_unlock(&m->lock);
	if (join)
		pthread_join(m->thread, NULL);
}
