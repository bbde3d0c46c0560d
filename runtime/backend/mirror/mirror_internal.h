/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the mirror's files share: the bdev, its legs and their state
 * machine, the write-intent bitmaps and region locks, a channel and its
 * per-I/O contexts. mirror.c is the data path, mirror_resync.c the thread
 * that brings a leg back in sync, mirror_ctl.c creation, configuration and
 * the control methods.
 *
 * Leg states (one word per leg, written with atomics, read per I/O):
 *
 *     EMPTY --add--> RESYNCING --bitmap clean--> ACTIVE
 *                     ^   |                         |
 *         add/resync  |   | I/O error/timeout       | I/O error/timeout
 *                     |   v                         v
 *                    FAULTY <-----------------------+
 *     ACTIVE/FAULTY/RESYNCING --remove--> REMOVED --add (same bdev: bitmap)--> RESYNCING
 *
 * ACTIVE legs are in sync: they take writes and serve reads. A RESYNCING
 * leg takes writes but serves no read until the resync thread has copied
 * every region its bitmap marks. A FAULTY or REMOVED leg takes nothing;
 * every write it misses marks its regions in its bitmap ("written since the
 * leg left"), so bringing it back copies only those. A mirror never fails
 * its last ACTIVE leg: an I/O no leg could serve is the tenant's error.
 *
 * Region locks: while a resync runs (rl_on), a write holds a reference on
 * the lock word of every region it touches and the resync thread copies a
 * region only under an exclusive lock of its word, so a copy never races a
 * write to the same region. Outside a resync, writes skip the locks; the
 * switch is a Dekker handshake (see mirror.c: lock_regions() and
 * mirror_resync.c: wait_unlocked_writes()).
 */
#ifndef LEAPIO_RUNTIME_MIRROR_INTERNAL_H
#define LEAPIO_RUNTIME_MIRROR_INTERNAL_H

#include <pthread.h>

#include "backend/bdev_internal.h"
#include "backend/bdev_wake_internal.h"

#define MIRROR_MAX_LEGS	      4
#define MIRROR_CTX	      1024	 /* parents in flight per channel */
#define MIRROR_LOCKS	      4096u	 /* region lock words (regions hash onto them) */
#define MIRROR_LOCK_COPY      (1u << 31) /* lock word: the resync thread copies */
#define MIRROR_MAX_REGIONS    16	 /* registered tenant regions per channel */
#define MIRROR_REGION_DEFAULT (1u << 20)

enum mirror_leg_state {
	LEG_EMPTY = 0,
	LEG_ACTIVE,
	LEG_FAULTY,
	LEG_RESYNCING,
	LEG_REMOVED,
};

enum mirror_read_policy {
	READ_LEAST_OUTSTANDING = 0,
	READ_ROUND_ROBIN,
};

struct mirror_leg {
	char name[64];
	struct leap_bdev *bdev; /* held while the slot or a channel may use it */
	uint32_t bdev_id;	/* the bdev the bitmap is about */
	uint32_t state;		/* enum mirror_leg_state, atomic */
	uint32_t open_chans;	/* channels open on bdev (lock) */
	uint64_t *bitmap;	/* a bit per region, atomic words */
	/* Counters: relaxed atomics. */
	uint64_t read_errors, write_errors, faults;
	uint64_t resync_total, resync_done;	   /* this resync: regions to copy, copied */
	uint64_t resync_regions, resync_bytes;	   /* every resync since creation */
	uint64_t last_bytes, last_ns, last_cpu_ns; /* the last resync that completed */
};

struct mirror_channel;

struct mirror_bdev {
	struct leap_bdev base;
	struct mirror_leg legs[MIRROR_MAX_LEGS];
	uint32_t region_shift;
	uint64_t nregions;
	size_t bm_words;
	uint32_t read_policy;
	uint32_t resync_depth;	   /* regions copied at once */
	uint32_t resync_rate_mbps; /* 0: as fast as it goes */
	uint32_t gen;		   /* atomic: bumped when a leg's state or channel changes */
	uint32_t rl_on;		   /* atomic: writes take region locks */
	uint32_t *rl;		   /* MIRROR_LOCKS lock words */
	uint64_t read_retries;	   /* reads a leg failed and another served (relaxed) */
	uint64_t deferred_writes;  /* writes that waited for a region being copied (relaxed) */
	pthread_mutex_t lock;	   /* chans, leg slots, the resync thread */
	struct mirror_channel *chans;
	pthread_t thread;
	bool thread_running, thread_joinable, stop;
};

/* One leg's part of a parent I/O. */
struct mkid {
	struct leap_bdev_io io;
	struct mio *m;
	uint8_t leg;
	struct mkid *next; /* retry list */
};

/* A parent I/O in flight on a channel: pre-allocated, MIRROR_CTX per channel. */
struct mio {
	struct leap_bdev_io *parent; /* NULL while free */
	struct mirror_channel *mc;
	struct mio *next; /* free list, deferred list */
	union {
		struct {
			uint8_t pending; /* legs with a kid out */
			uint8_t ok;	 /* legs that succeeded */
			uint8_t failed;	 /* legs that failed */
			uint8_t tried;	 /* reads: legs tried */
			uint8_t active;	 /* writes: legs that were ACTIVE when it was issued */
			bool locked;	 /* holds region lock references */
			bool counted;	 /* counted in mc->unlocked_writes */
		};
		uint64_t state; /* all of the above, cleared with one store per I/O */
	};
	uint16_t err; /* first failing status */
	/* kids[i].m and .leg and .io.cb are set once, when the channel opens. */
	struct mkid kids[MIRROR_MAX_LEGS];
};

struct mirror_channel {
	struct leap_bdev_channel base;
	struct mirror_channel *next; /* m->chans (lock) */
	struct leap_bdev_channel *leg_ch[MIRROR_MAX_LEGS];
	struct leap_bdev_channel *pending_ch[MIRROR_MAX_LEGS]; /* atomic: opened by control */
	uint32_t leg_out[MIRROR_MAX_LEGS];		       /* kids out per leg */
	uint32_t seen_gen;
	uint32_t closing;	  /* legs whose channel closes once idle */
	uint32_t leg_has;	  /* legs with a channel here, open or pending (m->lock) */
	uint64_t unlocked_writes; /* atomic: written by this channel's thread only */
	uint32_t rr;		  /* the leg read last (retries) */
	uint32_t rr_idx;	  /* rotation over read_legs */
	uint32_t nread;		  /* legs to read from, as of seen_gen */
	uint32_t slots;		  /* legs not EMPTY, as of seen_gen */
	uint8_t read_legs[MIRROR_MAX_LEGS];
	struct mio *ctx, *free_ctx;
	struct mio *deferred_head, *deferred_tail; /* writes waiting for a region lock */
	struct mkid *retry_head, *retry_tail;	   /* kids whose leg channel was full */
	struct bdev_io_fifo done;		   /* parents finished inside submit() */
	struct bdev_wake wake;
	bool region_used[MIRROR_MAX_REGIONS];
	void *region_addr[MIRROR_MAX_REGIONS];
	size_t region_len[MIRROR_MAX_REGIONS];
	int32_t region_idx[MIRROR_MAX_REGIONS][MIRROR_MAX_LEGS];
};

extern const struct leap_bdev_ops leap_bdev_mirror_ops;

static inline uint32_t leg_state(const struct mirror_bdev *m, uint32_t i)
{
	return __atomic_load_n(&m->legs[i].state, __ATOMIC_ACQUIRE);
}

static inline void mirror_gen_bump(struct mirror_bdev *m)
{
	__atomic_fetch_add(&m->gen, 1, __ATOMIC_RELEASE);
}

static inline uint64_t region_of(const struct mirror_bdev *m, uint64_t off)
{
	return off >> m->region_shift;
}

static inline uint32_t *lock_word(struct mirror_bdev *m, uint64_t region)
{
	return &m->rl[region & (MIRROR_LOCKS - 1)];
}

/* ---- write-intent bitmap (atomic words; any thread) ---------------------- */

static inline bool bm_test(const uint64_t *bm, uint64_t r)
{
	return __atomic_load_n(&bm[r / 64], __ATOMIC_ACQUIRE) & (1ull << (r % 64));
}

/* Mark regions [r0, r1]; a word already marked costs no atomic write. */
static inline void bm_set_range(uint64_t *bm, uint64_t r0, uint64_t r1)
{
	for (uint64_t r = r0; r <= r1;) {
		uint64_t w = r / 64, hi = (w + 1) * 64 - 1 < r1 ? (w + 1) * 64 - 1 : r1;
		uint64_t mask = (hi - r == 63) ? ~0ull : ((1ull << (hi - r + 1)) - 1) << (r % 64);

		if ((__atomic_load_n(&bm[w], __ATOMIC_RELAXED) & mask) != mask)
			__atomic_fetch_or(&bm[w], mask, __ATOMIC_SEQ_CST);
		r = hi + 1;
	}
}

static inline void bm_clear(uint64_t *bm, uint64_t r)
{
	__atomic_fetch_and(&bm[r / 64], ~(1ull << (r % 64)), __ATOMIC_SEQ_CST);
}

/* Marked regions among the first nregions. */
static inline uint64_t bm_count(const uint64_t *bm, size_t words)
{
	uint64_t n = 0;

	for (size_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(__atomic_load_n(&bm[i], __ATOMIC_RELAXED));
	return n;
}

/* The first marked region >= from, or `nregions` if none. */
static inline uint64_t bm_next(const uint64_t *bm, uint64_t nregions, uint64_t from)
{
	for (uint64_t r = from; r < nregions;) {
		uint64_t w = __atomic_load_n(&bm[r / 64], __ATOMIC_ACQUIRE) >> (r % 64);

		if (w)
			return r + (uint64_t)__builtin_ctzll(w);
		r = (r / 64 + 1) * 64;
	}
	return nregions;
}

/* ---- shared between the files ---------------------------------------------- */

/*
 * A leg failed an I/O (any thread): ACTIVE or RESYNCING -> FAULTY, logged
 * once per fault. `why` names the I/O. Never called for the last leg that
 * served it (the callers check that another leg succeeded).
 */
void mirror_leg_fail(struct mirror_bdev *m, uint32_t leg, const char *why, uint16_t status);
/* Start the resync thread if it is not running (m->lock held). 0 or -errno. */
int mirror_resync_start_locked(struct mirror_bdev *m);
/* Stop and join it (destroy). */
void mirror_resync_stop(struct mirror_bdev *m);
/*
 * A channel on `leg` of m was closed by a mirror channel or the resync
 * thread (m->lock held): drop the leg's bdev when its slot let go of it.
 */
void mirror_leg_chan_closed_locked(struct mirror_bdev *m, uint32_t leg);
/* The state's name for bdev_list and logs. */
const char *mirror_leg_state_name(uint32_t state);

/* mirror_ctl.c: the module's control-plane ops and methods. */
int mirror_create(const struct leap_bdev_common_params *common, const json_t *params,
		  struct leap_bdev_err *err, leap_bdev_create_cb cb, void *cb_arg);
void mirror_destroy(struct leap_bdev *bdev);
int mirror_write_config(const struct leap_bdev *bdev, json_t *out);
int mirror_dump_info(const struct leap_bdev *bdev, json_t *out);
bool mirror_io_type_supported(const struct leap_bdev *bdev, enum leap_bdev_op op);
extern const struct leap_bdev_method mirror_methods[];

#endif /* LEAPIO_RUNTIME_MIRROR_INTERNAL_H */
