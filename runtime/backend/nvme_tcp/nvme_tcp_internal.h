/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to the nvme-tcp backend (README.md in this folder): the bdev, its
 * channels, and the one word through which the admin side tells channels
 * which association (controller incarnation) they may talk to.
 *
 * Two sides, two kinds of thread:
 *  - The admin side (nvme_tcp_admin.c) runs on the module's own reactor
 *    thread "nvme-tcp": one poller per bdev brings the controller up
 *    (admin queue, Number of Queues, Identify Namespace), sends Keep Alive,
 *    watches for loss, and reconnects with back-off. It never touches a
 *    channel.
 *  - Channels (nvme_tcp_io.c) run on the reactors of the tenants that use
 *    the bdev: each owns one I/O queue pair outright, follows `assoc`, and
 *    holds the I/O of an outage in pre-allocated slots.
 * They meet in atomics only: `assoc` (admin -> channels), `reset_req`
 * (channels -> admin), counters. The mutex guards the control-plane bits
 * (qid map, channel list, reason strings) and is never taken per I/O.
 */
#ifndef LEAPIO_BACKEND_NVME_TCP_INTERNAL_H
#define LEAPIO_BACKEND_NVME_TCP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "leapio/nvmf_host.h"
#include "backend/bdev_internal.h"

#define NTCP_TYPE	    "nvme-tcp"
#define NTCP_MAX_QUEUES	    64u	       /* I/O queues (so channels) per bdev */
#define NTCP_MAX_QDEPTH	    1024u      /* commands per I/O queue */
#define NTCP_HELD_MAX	    1024u      /* tenant I/Os a channel holds at once (the bound) */
#define NTCP_MAX_IOV	    64u	       /* iovecs per command; a fragmented I/O is cut */
#define NTCP_MAX_CMD_BYTES  (1u << 20) /* largest command when MDTS says more */
#define NTCP_WZ_MAX_BLOCKS  65536u     /* Write Zeroes NLB is 16 bits */
#define NTCP_DSM_MAX_BLOCKS (1u << 30) /* per Deallocate range */
#define NTCP_BACKOFF_MAX_MS 10000u     /* the back-off grows to this (or the delay) */

/* The path status held I/O fails with: SCT 3h, Host Pathing Error (Linux's choice too). */
#define NTCP_SC_HOST_PATHING_ERROR 0x70
#define NTCP_STATUS_PATH	   NVME_STATUS(NVME_SCT_PATH, NTCP_SC_HOST_PATHING_ERROR)

enum ntcp_state {
	NTCP_CONNECTING = 0, /* first bring-up, before bdev_create answers */
	NTCP_LIVE,
	NTCP_RECONNECTING, /* connection lost: I/O held, reconnect with back-off */
	NTCP_FAILED,	   /* lost for longer than ctrl_loss_timeout: I/O fails, still retrying */
};

/*
 * assoc: bits 0..31 the association's epoch (1.. each time one goes live),
 * 32..47 its CNTLID, bit 48 LIVE (channels may connect and submit), bit 49
 * FAILED (fail held and new I/O with the path status). Written by the admin
 * thread with release, read by channels with acquire: a channel that sees
 * an epoch also sees the geometry published before the first one.
 */
#define NTCP_ASSOC_LIVE	     (1ull << 48)
#define NTCP_ASSOC_FAILED    (1ull << 49)
#define ntcp_assoc_epoch(a)  ((uint32_t)(a))
#define ntcp_assoc_cntlid(a) ((uint16_t)((a) >> 32))

struct ntcp_channel;

struct ntcp_bdev {
	struct leap_bdev base;

	/* Configuration, fixed at create (trid with its host identity final). */
	struct leap_nvmf_trid trid;
	uint32_t nsid; /* 0 until resolved: the first active namespace */
	uint32_t queues;
	uint32_t queue_depth;
	uint32_t reconnect_delay_ms;
	uint32_t ctrl_loss_ms;
	uint32_t kato_ms;
	uint32_t stall_timeout_ms;
	uint32_t connect_timeout_ms;
	bool size_given;
	bool block_size_given;

	/* Learned by the first bring-up, fixed afterwards (published before epoch 1). */
	uint32_t lba_shift; /* remote LBA size, log2 */
	uint32_t max_cmd;   /* bytes per read/write command (MDTS, capped), block multiple */
	uint32_t icd_max;   /* largest write sent in the capsule (IOCCSZ) */
	uint16_t io_qdepth; /* after CAP.MQES/MAXCMD clamping */
	uint16_t nr_io;	    /* granted I/O queues */
	uint16_t oncs;
	uint8_t vwc;
	uint8_t dlfeat;
	bool dealloc_dsm; /* Deallocate by DSM (reads zeroes after) */
	bool dealloc_wz;  /* else by Write Zeroes with DEAC */
	uint64_t nsze;
	uint8_t nguid[16];
	uint8_t eui64[8];
	char mn[41], sn[21], fr[9];

	/* Between the admin side and channels. */
	_Atomic uint64_t assoc;
	_Atomic uint32_t reset_req; /* epoch a channel found broken */
	_Atomic int state;	    /* enum ntcp_state, for bdev_list */
	_Atomic bool stopping;	    /* leapd is stopping: a lost path is lost for good */
	_Atomic uint64_t n_connects, n_losses, n_attempts;
	_Atomic uint64_t n_retried, n_path_failed, n_remote_errors, n_resets_io;

	/* Control plane, under lock. */
	pthread_mutex_t lock;
	uint64_t qid_map;  /* bit i: qid i + 1 taken */
	uint32_t qid_next; /* where the search for a free qid starts (index) */
	struct ntcp_channel *channels;
	char reason[256];    /* why the last association ended or attempt failed */
	uint16_t cntlid_now; /* for bdev_list */

	/* Admin side: only the "nvme-tcp" thread touches these. */
	struct ntcp_admin *admin;

	/* Creation: answered once, by the admin side. */
	leap_bdev_create_cb create_cb;
	void *create_arg;
	struct leap_bdev_err *create_err;
};

static inline struct ntcp_bdev *to_nb(struct leap_bdev *b)
{
	return (struct ntcp_bdev *)b;
}

static inline uint64_t ntcp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Record why (under the lock) and log it once. */
void ntcp_set_reason(struct ntcp_bdev *nb, bool log, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* nvme_tcp_admin.c */
/* Start the first bring-up; the create callback follows from the admin thread. 0 or -errno. */
int ntcp_admin_start(struct ntcp_bdev *nb, struct leap_bdev_err *err);
/* Stop the admin side and wait until it has let go of nb (control thread). */
void ntcp_admin_stop(struct ntcp_bdev *nb);
void ntcp_shutdown(struct leap_bdev *bdev);

/* nvme_tcp_io.c */
int ntcp_channel_open(struct leap_bdev *bdev, struct leap_bdev_channel **out);
void ntcp_channel_close(struct leap_bdev_channel *ch);
int ntcp_submit(struct leap_bdev_channel *ch, struct leap_bdev_io *io);
int ntcp_poll(struct leap_bdev_channel *ch);
int ntcp_abort(struct leap_bdev_channel *ch, struct leap_bdev_io *io);
int ntcp_channel_wake_fd(struct leap_bdev_channel *ch);
bool ntcp_sleep_prepare(struct leap_bdev_channel *ch);
void ntcp_sleep_done(struct leap_bdev_channel *ch);
/* Wake every channel's reactor: `assoc` changed (admin thread). */
void ntcp_channels_kick(struct ntcp_bdev *nb);
/* Counters summed over open channels (control thread, relaxed reads). */
void ntcp_channels_held(struct ntcp_bdev *nb, uint64_t *held, uint64_t *outstanding);

#endif /* LEAPIO_BACKEND_NVME_TCP_INTERNAL_H */
