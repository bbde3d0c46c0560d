/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ABI between leapd and a tenant process that uses a virtual NVMe
 * controller over shared memory (LeapIO's vQP, SPDK vhost-nvme's model).
 *
 * 1. Attach. The client connects to leapd's tenant socket (AF_UNIX,
 *    SOCK_SEQPACKET) and sends LEAP_SHM_MSG_ATTACH naming the controller and
 *    how many completion vectors ("interrupts") it wants; it passes no
 *    descriptors. leapd answers LEAP_SHM_MSG_ATTACH_REPLY with the
 *    controller area (a memfd, sealed at its size, mapped MAP_SHARED by
 *    both), the kick eventfd the client writes to wake a sleeping leapd,
 *    and one pipe read end per vector.
 *
 *    Why leapd creates every descriptor it reads or writes on the data
 *    path: O_NONBLOCK lives on the open file description, which both
 *    holders of a passed fd share, so a tenant could make any fd it passed
 *    or was handed block leapd's reactor. leapd writes a byte to the write
 *    end of each vector pipe, which never leaves leapd (its O_NONBLOCK is
 *    leapd's alone; a full pipe means the tenant has a wake-up pending
 *    already). It reads the kick eventfd with preadv2(RWF_NOWAIT), which
 *    cannot block whatever the file's flags. The tenant drains its vector
 *    by reading whatever bytes are there.
 * 2. Memory. The client shares memfd regions with LEAP_SHM_MSG_REGION_ADD
 *    {its own virtual base address, length} + the fd. The fd must be a
 *    memfd (shmem, not hugetlbfs) sealed with F_SEAL_SHRINK, at least
 *    offset + length bytes long: leapd refuses anything whose pages could
 *    vanish under its mapping. Every address in an
 *    SQE (PRP1/PRP2, PRP lists, I/O queue bases) is a client virtual address
 *    inside one of its regions; leapd translates it with a bounds check on
 *    every page and never touches anything outside those regions.
 * 3. Queues. The admin SQ/CQ live in the area. I/O queues are created with
 *    the ordinary admin commands, their rings in the client's regions
 *    (physically contiguous: PC=1, CAP.CQR=1).
 * 4. Doorbells. Page 1 of the area holds the "MMIO" doorbells (SQ y tail at
 *    dword 2y, CQ y head at dword 2y+1, CAP.DSTRD = 0). After Doorbell
 *    Buffer Config (NVMe 1.3, opcode 7Ch: PRP1 = shadow doorbells, PRP2 =
 *    EventIdx, one page each, in a client region) the client writes shadow
 *    doorbells and writes the MMIO doorbell and the kick eventfd only when
 *    nvme_dbbuf_need_event() says leapd asked for it — exactly the Linux
 *    PCI driver's rule. Before that (admin queue) the client writes the
 *    MMIO doorbell and kicks when `sleeping` is set.
 * 5. Sleep. leapd polls while busy. Before it blocks it publishes EventIdx =
 *    the last tail it consumed (so the next submission asks for an event)
 *    and sets `sleeping`, then issues a full fence and re-reads every
 *    doorbell; the client writes its doorbell, issues a full fence, then
 *    reads EventIdx/`sleeping`. With both fences sequentially consistent,
 *    at least one side sees the other's write: no lost wake-up.
 * 6. Interrupt mask. `vector_mask` bit v set masks vector v (NVMe's
 *    INTMS/INTMC, one bit per vector): leapd posts completions to CQs on a
 *    masked vector without writing its pipe. A tenant masks a vector while
 *    it polls (a pipe write per completion batch costs leapd a syscall and
 *    the tenant a wake-up it does not need) and clears the bit only to
 *    sleep: clear it with a sequentially consistent read-modify-write, then
 *    look at the CQs once more, and block only if they are empty. leapd
 *    stores the CQE's status, issues a full fence, then reads the mask: at
 *    least one side sees the other's write, as in 5. The mask starts at 0
 *    (every vector unmasked), so a tenant that never touches it gets a
 *    signal per batch as before; leapd only ever reads it.
 * 7. Who runs where. leapd stores 1 + the CPU the controller's reactor
 *    runs on in `reactor_on`, a tenant 1 + the CPU of the thread that last
 *    polled a CQ in `tenant_on` (0: not known), each only when it changes.
 *    Polling pays only while the other side runs on another CPU: on the
 *    same CPU it cannot run until the poller stops. So a tenant
 *    whose reactor sits on its CPU sleeps as soon as it is idle, and the
 *    reactor of a tenant on its CPU sleeps as soon as it is idle. Better
 *    still, they stop sharing: an unpinned reactor that keeps finding its
 *    tenant on its CPU pins itself there, and a tenant that is free to move
 *    leaves that CPU (leap-perf does). Hints only: a wrong `tenant_on`
 *    makes leapd sleep sooner or stay on a CPU, which costs that tenant a
 *    kick per batch and nobody else more than a reactor that stays put.
 *
 * Every message begins with struct leap_shm_msg_hdr (size first, so the
 * ABI can grow: a receiver rejects unknown non-zero tail bytes).
 */
#ifndef LEAPIO_SHM_ABI_H
#define LEAPIO_SHM_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "leapio/nvme_spec.h"

#define LEAP_SHM_ABI_VERSION 2 /* 2: leapd creates the vectors (pipes), regions are sealed */
#define LEAP_SHM_MAGIC	     0x3151504145c14e4cull /* arbitrary, checked by the client */

#define LEAP_SHM_MAX_VECTORS 64 /* completion vectors per attach */
#define LEAP_SHM_MAX_REGIONS 16 /* memory regions per controller */
#define LEAP_SHM_MAX_QUEUES  64 /* I/O queue pairs per controller (ids 1..64) */
#define LEAP_SHM_ADMIN_QSIZE 64 /* entries in the admin SQ and CQ */
#define LEAP_SHM_NAME_MAX    64

enum leap_shm_msg_type {
	LEAP_SHM_MSG_ATTACH = 1,
	LEAP_SHM_MSG_ATTACH_REPLY = 2,
	LEAP_SHM_MSG_REGION_ADD = 3,
	LEAP_SHM_MSG_REGION_REPLY = 4,
};

struct leap_shm_msg_hdr {
	uint32_t size;	  /* bytes of the whole message */
	uint16_t type;	  /* enum leap_shm_msg_type */
	uint16_t version; /* LEAP_SHM_ABI_VERSION */
};
_Static_assert(sizeof(struct leap_shm_msg_hdr) == 8, "message header is 8 bytes");

/* Client -> leapd; no descriptors. */
struct leap_shm_attach {
	struct leap_shm_msg_hdr hdr;
	char ctrl[LEAP_SHM_NAME_MAX]; /* controller name, NUL-terminated */
	uint32_t nr_vectors;	      /* completion vectors wanted, <= LEAP_SHM_MAX_VECTORS */
	uint32_t flags;		      /* must be 0 */
};
_Static_assert(sizeof(struct leap_shm_attach) == 80, "attach is 80 bytes");

/*
 * leapd -> client; on success SCM_RIGHTS: [0] controller area memfd, [1] kick
 * eventfd, [2 + i] the read end of vector i's pipe (i < nr_vectors).
 */
struct leap_shm_attach_reply {
	struct leap_shm_msg_hdr hdr;
	int32_t status; /* 0 or -errno */
	uint32_t area_size;
	uint32_t max_io_queues; /* I/O queue pairs this controller allows */
	uint32_t max_qsize;	/* entries per I/O queue (CAP.MQES + 1) */
	char message[128];	/* why, when status < 0 */
};
_Static_assert(sizeof(struct leap_shm_attach_reply) == 152, "attach reply is 152 bytes");

/* Client -> leapd; SCM_RIGHTS: [0] the memfd of the region. */
struct leap_shm_region_add {
	struct leap_shm_msg_hdr hdr;
	uint64_t base;	 /* client virtual address where the client mapped it */
	uint64_t len;	 /* bytes, multiple of 4096 */
	uint64_t offset; /* offset into the memfd, multiple of 4096 */
};
_Static_assert(sizeof(struct leap_shm_region_add) == 32, "region add is 32 bytes");

struct leap_shm_region_reply {
	struct leap_shm_msg_hdr hdr;
	int32_t status; /* 0 or -errno */
	uint32_t region_id;
	char message[128];
};
_Static_assert(sizeof(struct leap_shm_region_reply) == 144, "region reply is 144 bytes");

/* ---- controller area -------------------------------------------------- */

#define LEAP_SHM_AREA_REGS_OFF 0x0000
#define LEAP_SHM_AREA_DB_OFF   0x1000
#define LEAP_SHM_AREA_ASQ_OFF  0x2000
#define LEAP_SHM_AREA_ACQ_OFF  (LEAP_SHM_AREA_ASQ_OFF + LEAP_SHM_ADMIN_QSIZE * NVME_SQE_SIZE)
#define LEAP_SHM_AREA_SIZE     0x4000

struct leap_shm_area_hdr {
	uint64_t magic;	  /* LEAP_SHM_MAGIC */
	uint32_t version; /* LEAP_SHM_ABI_VERSION */
	uint32_t area_size;
	uint32_t sleeping;    /* leapd: 1 while it may block (see 5. above) */
	uint32_t fatal;	      /* leapd: 1 after a controller fatal error (CSTS.CFS) */
	uint64_t vector_mask; /* tenant: bit v set masks vector v (see 6. above) */
	uint32_t reactor_on;  /* leapd: 1 + its reactor's CPU, 0: unknown (see 7.) */
	uint32_t tenant_on;   /* tenant: 1 + its polling thread's CPU, 0: unknown */
	uint32_t rsvd[6];
	struct nvme_registers regs; /* CAP, VS, CC, CSTS, AQA (ASQ/ACQ unused) */
};
_Static_assert(offsetof(struct leap_shm_area_hdr, vector_mask) == 24, "mask at byte 24");
_Static_assert(offsetof(struct leap_shm_area_hdr, regs) == 64, "registers at byte 64");
_Static_assert(LEAP_SHM_AREA_ACQ_OFF + LEAP_SHM_ADMIN_QSIZE * NVME_CQE_SIZE <= LEAP_SHM_AREA_SIZE,
	       "admin queues fit in the area");

/* Dword index of a doorbell in the doorbell page (and in shadow/EventIdx pages). */
static inline uint32_t leap_shm_sq_db(uint16_t qid)
{
	return 2u * qid;
}

static inline uint32_t leap_shm_cq_db(uint16_t qid)
{
	return 2u * qid + 1;
}

/* The Linux driver's rule (drivers/nvme/host/pci.c): does moving old -> new cross event_idx? */
static inline int leap_shm_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

#endif /* LEAPIO_SHM_ABI_H */
