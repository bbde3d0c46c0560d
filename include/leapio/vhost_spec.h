/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost-user (QEMU docs/interop/vhost-user.rst), the virtio split ring
 * (virtio 1.1, 2.6) and virtio-blk (virtio 1.1, 5.2) as bytes: what leapd's
 * vhost-user-blk front-end and its test client both speak. Every layout the
 * specs fix is pinned with _Static_assert. Everything is little-endian
 * (VIRTIO_F_VERSION_1 is required; nvme_spec.h already refuses big-endian
 * hosts, so fields are used as they are).
 */
#ifndef LEAPIO_VHOST_SPEC_H
#define LEAPIO_VHOST_SPEC_H

#include <stddef.h>
#include <stdint.h>

/* ======================================================================
 * Feature bits
 * ==================================================================== */

/* virtio-blk device features (virtio 1.1, 5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX	  1
#define VIRTIO_BLK_F_SEG_MAX	  2
#define VIRTIO_BLK_F_GEOMETRY	  4
#define VIRTIO_BLK_F_RO		  5
#define VIRTIO_BLK_F_BLK_SIZE	  6
#define VIRTIO_BLK_F_FLUSH	  9
#define VIRTIO_BLK_F_TOPOLOGY	  10
#define VIRTIO_BLK_F_CONFIG_WCE	  11
#define VIRTIO_BLK_F_MQ		  12
#define VIRTIO_BLK_F_DISCARD	  13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Reserved (transport) features (virtio 1.1, 6). */
#define VIRTIO_F_NOTIFY_ON_EMPTY    24
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX	    29
#define VIRTIO_F_VERSION_1	    32
#define VIRTIO_F_ACCESS_PLATFORM    33
#define VIRTIO_F_RING_PACKED	    34

/* vhost-user: GET/SET_PROTOCOL_FEATURES exist (a virtio-reserved bit reused). */
#define VHOST_USER_F_PROTOCOL_FEATURES 30

/* vhost-user protocol features. */
#define VHOST_USER_PROTOCOL_F_MQ		   0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD		   1
#define VHOST_USER_PROTOCOL_F_RARP		   2
#define VHOST_USER_PROTOCOL_F_REPLY_ACK		   3
#define VHOST_USER_PROTOCOL_F_MTU		   4
#define VHOST_USER_PROTOCOL_F_SLAVE_REQ		   5
#define VHOST_USER_PROTOCOL_F_CROSS_ENDIAN	   6
#define VHOST_USER_PROTOCOL_F_CRYPTO_SESSION	   7
#define VHOST_USER_PROTOCOL_F_PAGEFAULT		   8
#define VHOST_USER_PROTOCOL_F_CONFIG		   9
#define VHOST_USER_PROTOCOL_F_SLAVE_SEND_FD	   10
#define VHOST_USER_PROTOCOL_F_HOST_NOTIFIER	   11
#define VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD	   12
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE	   13
#define VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS 14
#define VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS  15
#define VHOST_USER_PROTOCOL_F_STATUS		   16

/* ======================================================================
 * vhost-user messages
 * ==================================================================== */

enum vhost_user_request {
	VHOST_USER_NONE = 0,
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_RESET_OWNER = 4,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_LOG_BASE = 6,
	VHOST_USER_SET_LOG_FD = 7,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_SET_VRING_ERR = 14,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
	VHOST_USER_SEND_RARP = 19,
	VHOST_USER_NET_SET_MTU = 20,
	VHOST_USER_SET_SLAVE_REQ_FD = 21,
	VHOST_USER_IOTLB_MSG = 22,
	VHOST_USER_SET_VRING_ENDIAN = 23,
	VHOST_USER_GET_CONFIG = 24,
	VHOST_USER_SET_CONFIG = 25,
	VHOST_USER_CREATE_CRYPTO_SESSION = 26,
	VHOST_USER_CLOSE_CRYPTO_SESSION = 27,
	VHOST_USER_POSTCOPY_ADVISE = 28,
	VHOST_USER_POSTCOPY_LISTEN = 29,
	VHOST_USER_POSTCOPY_END = 30,
	VHOST_USER_GET_INFLIGHT_FD = 31,
	VHOST_USER_SET_INFLIGHT_FD = 32,
	VHOST_USER_GPU_SET_SOCKET = 33,
	VHOST_USER_RESET_DEVICE = 34,
	VHOST_USER_VRING_KICK = 35,
	VHOST_USER_GET_MAX_MEM_SLOTS = 36,
	VHOST_USER_ADD_MEM_REG = 37,
	VHOST_USER_REM_MEM_REG = 38,
	VHOST_USER_SET_STATUS = 39,
	VHOST_USER_GET_STATUS = 40,
	VHOST_USER_MAX
};

/* Header flags: bits 1:0 version, bit 2 reply, bit 3 need reply (REPLY_ACK). */
#define VHOST_USER_VERSION	  0x1u
#define VHOST_USER_VERSION_MASK	  0x3u
#define VHOST_USER_REPLY_MASK	  0x4u
#define VHOST_USER_NEED_REPLY	  0x8u
/* SET_VRING_KICK/CALL/ERR payload: bits 7:0 queue index, bit 8 "no fd" (polling). */
#define VHOST_USER_VRING_IDX_MASK 0xffu
#define VHOST_USER_VRING_NOFD	  (1ull << 8)

/* Memory regions in one SET_MEM_TABLE (VHOST_MEMORY_BASELINE_NREGIONS). */
#define VHOST_USER_MAX_REGIONS 8
/* GET/SET_CONFIG carry at most this many config bytes. */
#define VHOST_USER_MAX_CONFIG  256

struct vhost_user_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size; /* payload bytes that follow */
};
_Static_assert(sizeof(struct vhost_user_hdr) == 12, "vhost-user header is 12 bytes");

struct vhost_vring_state {
	uint32_t index;
	uint32_t num;
};
_Static_assert(sizeof(struct vhost_vring_state) == 8, "vring state is 8 bytes");

struct vhost_vring_addr {
	uint32_t index;
	uint32_t flags; /* bit 0: log used ring writes (not offered) */
	uint64_t desc_user_addr;
	uint64_t used_user_addr;
	uint64_t avail_user_addr;
	uint64_t log_guest_addr;
};
_Static_assert(sizeof(struct vhost_vring_addr) == 40, "vring addr is 40 bytes");
_Static_assert(offsetof(struct vhost_vring_addr, desc_user_addr) == 8, "desc at 8");
_Static_assert(offsetof(struct vhost_vring_addr, avail_user_addr) == 24, "avail at 24");

struct vhost_user_mem_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr; /* the front-end's address: what vring addresses use */
	uint64_t mmap_offset;	 /* where the region starts in its fd */
};
_Static_assert(sizeof(struct vhost_user_mem_region) == 32, "memory region is 32 bytes");

struct vhost_user_memory {
	uint32_t nregions;
	uint32_t padding;
	struct vhost_user_mem_region regions[VHOST_USER_MAX_REGIONS];
};
_Static_assert(offsetof(struct vhost_user_memory, regions) == 8, "regions at 8");
_Static_assert(sizeof(struct vhost_user_memory) == 264, "memory table is 264 bytes");

struct vhost_user_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[VHOST_USER_MAX_CONFIG];
};
#define VHOST_USER_CONFIG_HDR_SIZE 12u
_Static_assert(offsetof(struct vhost_user_config, region) == VHOST_USER_CONFIG_HDR_SIZE,
	       "config bytes at 12");

struct vhost_user_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
};
_Static_assert(sizeof(struct vhost_user_inflight) == 24, "inflight message is 24 bytes");

/* Every payload a back-end receives or sends; the largest bounds one message. */
union vhost_user_payload {
	uint64_t u64;
	struct vhost_vring_state state;
	struct vhost_vring_addr addr;
	struct vhost_user_memory memory;
	struct vhost_user_config config;
	struct vhost_user_inflight inflight;
};

/*
 * On the wire a message is the 12-byte header immediately followed by
 * hdr.size payload bytes (so the payload sits at byte 12, misaligned for its
 * 64-bit fields): read and write the two parts separately.
 */
struct vhost_user_msg {
	struct vhost_user_hdr hdr;
	union vhost_user_payload payload; /* aligned here, not where the wire has it */
};

/* ======================================================================
 * Inflight I/O tracking shared memory, split rings (vhost-user.rst,
 * "Inflight I/O tracking"). The back-end lays it out; the front-end only
 * keeps the fd across back-end restarts and hands it back.
 * ==================================================================== */

struct vhost_inflight_desc {
	uint8_t inflight; /* 1: fetched from the avail ring, not yet in the used ring */
	uint8_t padding[5];
	uint16_t next;	  /* batching (unused for single completions) */
	uint64_t counter; /* fetch order: resubmission keeps it */
};
_Static_assert(sizeof(struct vhost_inflight_desc) == 16, "inflight desc state is 16 bytes");

struct vhost_inflight_queue {
	uint64_t features;
	uint16_t version; /* 0: never used (fresh memory); 1: this layout */
	uint16_t desc_num;
	uint16_t last_batch_head; /* head of the last completion being published */
	uint16_t used_idx;	  /* used->idx once that completion was published */
	struct vhost_inflight_desc desc[];
};
_Static_assert(sizeof(struct vhost_inflight_queue) == 16, "inflight queue header is 16 bytes");
_Static_assert(offsetof(struct vhost_inflight_queue, used_idx) == 14, "used_idx at 14");
#define VHOST_INFLIGHT_VERSION 1
#define VHOST_INFLIGHT_ALIGN   64

/* ======================================================================
 * Split virtqueue (virtio 1.1, 2.6)
 * ==================================================================== */

#define VRING_DESC_F_NEXT	   1
#define VRING_DESC_F_WRITE	   2
#define VRING_DESC_F_INDIRECT	   4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY	   1
/* The largest split queue virtio allows. */
#define VIRTQUEUE_MAX_SIZE	   32768

struct vring_desc {
	uint64_t addr; /* guest physical */
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct vring_desc) == 16, "descriptor is 16 bytes");

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* then used_event (EVENT_IDX) */
};
_Static_assert(sizeof(struct vring_avail) == 4, "avail header is 4 bytes");

struct vring_used_elem {
	uint32_t id;  /* head of the descriptor chain */
	uint32_t len; /* bytes written into the chain's device-writable buffers */
};
_Static_assert(sizeof(struct vring_used_elem) == 8, "used element is 8 bytes");

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[]; /* then avail_event (EVENT_IDX) */
};
_Static_assert(sizeof(struct vring_used) == 4, "used header is 4 bytes");

/* Bytes of each part for a queue of `num` entries (EVENT_IDX words included). */
static inline uint64_t vring_desc_size(uint32_t num)
{
	return (uint64_t)num * sizeof(struct vring_desc);
}
static inline uint64_t vring_avail_size(uint32_t num)
{
	return sizeof(struct vring_avail) + (uint64_t)num * 2 + 2;
}
static inline uint64_t vring_used_size(uint32_t num)
{
	return sizeof(struct vring_used) + (uint64_t)num * sizeof(struct vring_used_elem) + 2;
}

/*
 * EVENT_IDX (virtio 1.1, 2.6.7.2): notify when the index moved from `old` to
 * `new_idx` past `event` (the other side's "tell me at" index), modulo 2^16.
 */
static inline int vring_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

/* ======================================================================
 * virtio-blk (virtio 1.1, 5.2)
 * ==================================================================== */

#define VIRTIO_BLK_T_IN		  0
#define VIRTIO_BLK_T_OUT	  1
#define VIRTIO_BLK_T_FLUSH	  4
#define VIRTIO_BLK_T_GET_ID	  8
#define VIRTIO_BLK_T_DISCARD	  11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK	    0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_ID_BYTES		   20
#define VIRTIO_BLK_SECTOR_SHIFT		   9
#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1u

struct virtio_blk_outhdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector; /* 512-byte units whatever blk_size says */
};
_Static_assert(sizeof(struct virtio_blk_outhdr) == 16, "request header is 16 bytes");

struct virtio_blk_discard_write_zeroes {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};
_Static_assert(sizeof(struct virtio_blk_discard_write_zeroes) == 16, "discard segment is 16 bytes");

struct virtio_blk_config {
	uint64_t capacity; /* 512-byte sectors */
	uint32_t size_max;
	uint32_t seg_max;
	struct {
		uint16_t cylinders;
		uint8_t heads;
		uint8_t sectors;
	} geometry;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t wce;
	uint8_t unused;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_blk_config) == 60, "virtio-blk config is 60 bytes");
_Static_assert(offsetof(struct virtio_blk_config, seg_max) == 12, "seg_max at 12");
_Static_assert(offsetof(struct virtio_blk_config, blk_size) == 20, "blk_size at 20");
_Static_assert(offsetof(struct virtio_blk_config, num_queues) == 34, "num_queues at 34");
_Static_assert(offsetof(struct virtio_blk_config, max_discard_sectors) == 36, "discard at 36");
_Static_assert(offsetof(struct virtio_blk_config, max_write_zeroes_sectors) == 48, "wz at 48");
_Static_assert(offsetof(struct virtio_blk_config, write_zeroes_may_unmap) == 56, "unmap at 56");

#endif /* LEAPIO_VHOST_SPEC_H */
