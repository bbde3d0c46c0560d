/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to the fio engine: the options every job has, and the ops table
 * behind which the two transports live. leapio_engine.c is what fio sees
 * (options, the ioengine_ops, setup choosing a transport); leapio_shm.c
 * drives a leapd controller over shared memory (ctrl=), leapio_tcp.c an
 * NVMe/TCP controller named by a transport ID in filename=. A job's
 * io_ops_data begins with a struct lf_job_base naming its transport, so
 * every fio callback is one indirect call to the right implementation.
 */
#ifndef LEAPIO_FIO_ENGINE_INTERNAL_H
#define LEAPIO_FIO_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "fio.h"

#define LEAPIO_FIO_DEFAULT_SOCKET "/run/leapio/tenant.sock" /* leapd's default -s */
/* Completion polls between looks at the clock, and between liveness checks. */
#define LF_SPINS_PER_CLOCK	  256
#define LF_ALIVE_CHECK_NS	  (100ull * 1000 * 1000)
#define LF_IDLE_SPINS_BEFORE_WAIT 64
/* How long a job told to stop waits for outstanding I/O before giving up. */
#define LF_TERMINATE_GRACE_NS	  (2ull * 1000 * 1000 * 1000)

struct lf_options {
	void *pad; /* fio: an engine option may not sit at offset 0 */
	char *socket;
	char *ctrl;
	unsigned int nsid;
	unsigned long long mem_size;
	unsigned int busy_poll;
	unsigned int connect_timeout; /* ms, NVMe/TCP */
};

struct lf_transport {
	int (*init)(struct thread_data *td);
	enum fio_q_status (*queue)(struct thread_data *td, struct io_u *io_u);
	int (*commit)(struct thread_data *td);
	int (*getevents)(struct thread_data *td, unsigned int min, unsigned int max,
			 const struct timespec *t);
	struct io_u *(*event)(struct thread_data *td, int event);
	void (*cleanup)(struct thread_data *td);
	int (*iomem_alloc)(struct thread_data *td, size_t total);
	void (*iomem_free)(struct thread_data *td);
};

/* The first member of every job's io_ops_data. */
struct lf_job_base {
	const struct lf_transport *tr;
};

extern struct ioengine_ops ioengine;

/* Setup of a job, in fio's main thread: set td->io_ops_data, the file size. 0 or 1. */
int lf_shm_setup(struct thread_data *td);
/* `trid` is the job's filename with fio's '\:' escapes undone. */
int lf_tcp_setup(struct thread_data *td, const char *trid);

/* Shared helpers (leapio_engine.c). */
uint64_t lf_mono_ns(void);
/* Block sizes fio may use must be whole LBAs: a partial LBA cannot be expressed in NVMe. */
bool lf_bs_fits_lba(struct thread_data *td, uint32_t lba_size);
/* The namespace is the job's only file: its size, and a name if fio gave none. */
void lf_set_file_size(struct thread_data *td, const char *name, uint64_t bytes);

#endif /* LEAPIO_FIO_ENGINE_INTERNAL_H */
