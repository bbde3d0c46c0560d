/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe wire structures and constants (NVM Express Base Specification 2.0,
 * NVM Command Set 1.0), shared by the controller model, every front-end, the
 * client library and the tests. Layouts are fixed by the spec, so every size
 * and every offset we rely on is pinned with _Static_assert (SPDK nvme_spec.h
 * does the same). All multi-byte fields are little-endian on the wire; this
 * code base only builds for little-endian hosts (asserted below).
 */
#ifndef LEAPIO_NVME_SPEC_H
#define LEAPIO_NVME_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "leapio assumes a little-endian host (NVMe structures are little-endian)"
#endif

#define NVME_PAGE_SHIFT	       12
#define NVME_PAGE_SIZE	       (1u << NVME_PAGE_SHIFT)
#define NVME_ADMIN_QID	       0
#define NVME_MAX_QUEUE_ENTRIES 65536 /* CAP.MQES is 0's based, 16 bits */
#define NVME_SQE_SIZE	       64
#define NVME_CQE_SIZE	       16
#define NVME_SQES_LOG2	       6
#define NVME_CQES_LOG2	       4

/* ---- Submission queue entry (Base 2.0, figure 88) -------------------- */

struct nvme_sqe {
	uint8_t opc;
	uint8_t flags; /* bits 1:0 FUSE, bits 7:6 PSDT (0 = PRP) */
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2;
	uint32_t cdw3;
	uint64_t mptr;
	uint64_t prp1;
	uint64_t prp2;
	uint32_t cdw10;
	uint32_t cdw11;
	uint32_t cdw12;
	uint32_t cdw13;
	uint32_t cdw14;
	uint32_t cdw15;
};
_Static_assert(sizeof(struct nvme_sqe) == NVME_SQE_SIZE, "SQE is 64 bytes");
_Static_assert(offsetof(struct nvme_sqe, cid) == 2, "CID at byte 2");
_Static_assert(offsetof(struct nvme_sqe, nsid) == 4, "NSID at byte 4");
_Static_assert(offsetof(struct nvme_sqe, mptr) == 16, "MPTR at byte 16");
_Static_assert(offsetof(struct nvme_sqe, prp1) == 24, "PRP1 at byte 24");
_Static_assert(offsetof(struct nvme_sqe, prp2) == 32, "PRP2 at byte 32");
_Static_assert(offsetof(struct nvme_sqe, cdw10) == 40, "CDW10 at byte 40");
_Static_assert(offsetof(struct nvme_sqe, cdw15) == 60, "CDW15 at byte 60");

#define NVME_SQE_FUSE_MASK  0x03
#define NVME_SQE_PSDT_SHIFT 6
#define NVME_SQE_PSDT_PRP   0

/* ---- Completion queue entry (Base 2.0, figure 89) -------------------- */

struct nvme_cqe {
	uint32_t dw0;
	uint32_t dw1;
	uint16_t sqhd;
	uint16_t sqid;
	uint16_t cid;
	uint16_t status; /* bit 0 phase, 8:1 SC, 11:9 SCT, 13:12 CRD, 14 M, 15 DNR */
};
_Static_assert(sizeof(struct nvme_cqe) == NVME_CQE_SIZE, "CQE is 16 bytes");
_Static_assert(offsetof(struct nvme_cqe, sqhd) == 8, "SQHD at byte 8");
_Static_assert(offsetof(struct nvme_cqe, cid) == 12, "CID at byte 12");
_Static_assert(offsetof(struct nvme_cqe, status) == 14, "status at byte 14");

#define NVME_CQE_PHASE	   0x0001u
#define NVME_CQE_SC_SHIFT  1
#define NVME_CQE_SCT_SHIFT 9
#define NVME_CQE_MORE	   (1u << 14)
#define NVME_CQE_DNR	   (1u << 15)

/*
 * A status as leapio passes it around internally: SCT in bits 10:8, SC in
 * bits 7:0, DNR in bit 15 — i.e. the CQE status field shifted right by one,
 * with DNR kept at its CQE position for convenience. 0 is success.
 */
#define NVME_STATUS(sct, sc) ((uint16_t)(((sct) << 8) | (sc)))
#define NVME_STATUS_SCT(s)   (((s) >> 8) & 0x7)
#define NVME_STATUS_SC(s)    ((s)&0xff)

/* Turn an internal status plus phase into the CQE status field. */
static inline uint16_t nvme_cqe_status(uint16_t status, unsigned int phase)
{
	uint16_t dnr = status & NVME_CQE_DNR;

	return (uint16_t)(dnr | ((status & 0x7ff) << 1) | (phase & 1));
}

enum nvme_sct {
	NVME_SCT_GENERIC = 0x0,
	NVME_SCT_COMMAND_SPECIFIC = 0x1,
	NVME_SCT_MEDIA = 0x2,
	NVME_SCT_PATH = 0x3,
	NVME_SCT_VENDOR = 0x7,
};

enum nvme_generic_sc {
	NVME_SC_SUCCESS = 0x00,
	NVME_SC_INVALID_OPCODE = 0x01,
	NVME_SC_INVALID_FIELD = 0x02,
	NVME_SC_CID_CONFLICT = 0x03,
	NVME_SC_DATA_TRANSFER_ERROR = 0x04,
	NVME_SC_ABORTED_POWER_LOSS = 0x05,
	NVME_SC_INTERNAL_DEVICE_ERROR = 0x06,
	NVME_SC_ABORTED_BY_REQUEST = 0x07,
	NVME_SC_ABORTED_SQ_DELETION = 0x08,
	NVME_SC_ABORTED_FAILED_FUSED = 0x09,
	NVME_SC_ABORTED_MISSING_FUSED = 0x0a,
	NVME_SC_INVALID_NAMESPACE_OR_FORMAT = 0x0b,
	NVME_SC_COMMAND_SEQUENCE_ERROR = 0x0c,
	NVME_SC_INVALID_SGL_SEG_DESCRIPTOR = 0x0d,
	NVME_SC_INVALID_NUM_SGL_DESCIRPTORS = 0x0e,
	NVME_SC_DATA_SGL_LENGTH_INVALID = 0x0f,
	NVME_SC_METADATA_SGL_LENGTH_INVALID = 0x10,
	NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID = 0x11,
	NVME_SC_INVALID_CONTROLLER_MEM_BUF = 0x12,
	NVME_SC_INVALID_PRP_OFFSET = 0x13,
	NVME_SC_ATOMIC_WRITE_UNIT_EXCEEDED = 0x14,
	NVME_SC_OPERATION_DENIED = 0x15,
	NVME_SC_SGL_OFFSET_INVALID = 0x16,
	NVME_SC_HOSTID_INCONSISTENT_FORMAT = 0x18,
	NVME_SC_KEEP_ALIVE_EXPIRED = 0x19,
	NVME_SC_KEEP_ALIVE_INVALID = 0x1a,
	NVME_SC_LBA_OUT_OF_RANGE = 0x80,
	NVME_SC_CAPACITY_EXCEEDED = 0x81,
	NVME_SC_NAMESPACE_NOT_READY = 0x82,
};

enum nvme_command_specific_sc {
	NVME_SC_COMPLETION_QUEUE_INVALID = 0x00,
	NVME_SC_INVALID_QUEUE_IDENTIFIER = 0x01,
	NVME_SC_INVALID_QUEUE_SIZE = 0x02,
	NVME_SC_ABORT_COMMAND_LIMIT_EXCEEDED = 0x03,
	NVME_SC_ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED = 0x05,
	NVME_SC_INVALID_FIRMWARE_SLOT = 0x06,
	NVME_SC_INVALID_INTERRUPT_VECTOR = 0x08,
	NVME_SC_INVALID_LOG_PAGE = 0x09,
	NVME_SC_INVALID_FORMAT = 0x0a,
	NVME_SC_INVALID_QUEUE_DELETION = 0x0c,
	NVME_SC_FEATURE_ID_NOT_SAVEABLE = 0x0d,
	NVME_SC_FEATURE_NOT_CHANGEABLE = 0x0e,
	NVME_SC_FEATURE_NOT_NAMESPACE_SPECIFIC = 0x0f,
	NVME_SC_CONFLICTING_ATTRIBUTES = 0x80,
};

enum nvme_media_sc {
	NVME_SC_WRITE_FAULTS = 0x80,
	NVME_SC_UNRECOVERED_READ_ERROR = 0x81,
	NVME_SC_COMPARE_FAILURE = 0x85,
	NVME_SC_ACCESS_DENIED = 0x86,
	NVME_SC_DEALLOCATED_OR_UNWRITTEN_BLOCK = 0x87,
};

/* ---- Opcodes ---------------------------------------------------------- */

enum nvme_admin_opcode {
	NVME_OPC_DELETE_IO_SQ = 0x00,
	NVME_OPC_CREATE_IO_SQ = 0x01,
	NVME_OPC_GET_LOG_PAGE = 0x02,
	NVME_OPC_DELETE_IO_CQ = 0x04,
	NVME_OPC_CREATE_IO_CQ = 0x05,
	NVME_OPC_IDENTIFY = 0x06,
	NVME_OPC_ABORT = 0x08,
	NVME_OPC_SET_FEATURES = 0x09,
	NVME_OPC_GET_FEATURES = 0x0a,
	NVME_OPC_ASYNC_EVENT_REQUEST = 0x0c,
	NVME_OPC_NS_MANAGEMENT = 0x0d,
	NVME_OPC_FIRMWARE_COMMIT = 0x10,
	NVME_OPC_FIRMWARE_IMAGE_DOWNLOAD = 0x11,
	NVME_OPC_KEEP_ALIVE = 0x18,
	NVME_OPC_DOORBELL_BUFFER_CONFIG = 0x7c,
	NVME_OPC_FABRIC = 0x7f,
};

enum nvme_nvm_opcode {
	NVME_OPC_FLUSH = 0x00,
	NVME_OPC_WRITE = 0x01,
	NVME_OPC_READ = 0x02,
	NVME_OPC_WRITE_UNCORRECTABLE = 0x04,
	NVME_OPC_COMPARE = 0x05,
	NVME_OPC_WRITE_ZEROES = 0x08,
	NVME_OPC_DATASET_MANAGEMENT = 0x09,
};

/* Read/Write/Compare/Write Zeroes: SLBA in CDW10-11, NLB (0's based) in CDW12[15:0]. */
#define NVME_RW_NLB_MASK 0xffffu

/* Read, Write, Compare, Write Zeroes: the I/O commands whose CDW10..12 carry SLBA and NLB. */
static inline bool nvme_opc_has_lba(uint8_t opc)
{
	return opc == NVME_OPC_READ || opc == NVME_OPC_WRITE || opc == NVME_OPC_COMPARE ||
	       opc == NVME_OPC_WRITE_ZEROES;
}

/* SLBA (CDW11:CDW10) of an LBA-carrying command. */
static inline uint64_t nvme_sqe_slba(const struct nvme_sqe *s)
{
	return (uint64_t)s->cdw10 | ((uint64_t)s->cdw11 << 32);
}

/* Number of logical blocks, 1's based (CDW12 bits 15:0 are 0's based). */
static inline uint32_t nvme_sqe_nlb(const struct nvme_sqe *s)
{
	return (s->cdw12 & NVME_RW_NLB_MASK) + 1;
}
#define NVME_RW_FUA  (1u << 30)
#define NVME_WZ_DEAC (1u << 25)

/* Dataset Management: CDW10[7:0] = NR (0's based), CDW11 bit 2 = AD (deallocate). */
#define NVME_DSM_ATTR_DEALLOCATE (1u << 2)
#define NVME_DSM_MAX_RANGES	 256

struct nvme_dsm_range {
	uint32_t cattr;
	uint32_t nlb; /* 1's based here, unlike Read/Write */
	uint64_t slba;
};
_Static_assert(sizeof(struct nvme_dsm_range) == 16, "DSM range is 16 bytes");

/* ---- Identify --------------------------------------------------------- */

enum nvme_identify_cns {
	NVME_CNS_NS = 0x00,
	NVME_CNS_CTRL = 0x01,
	NVME_CNS_ACTIVE_NS_LIST = 0x02,
	NVME_CNS_NS_DESC_LIST = 0x03,
};

#define NVME_IDENTIFY_SIZE 4096

struct nvme_power_state {
	uint16_t mp;
	uint8_t rsvd2;
	uint8_t flags;
	uint32_t enlat;
	uint32_t exlat;
	uint8_t rrt;
	uint8_t rrl;
	uint8_t rwt;
	uint8_t rwl;
	uint16_t idlp;
	uint8_t ips;
	uint8_t rsvd19;
	uint16_t actp;
	uint8_t apws;
	uint8_t rsvd23[9];
};
_Static_assert(sizeof(struct nvme_power_state) == 32, "power state descriptor is 32 bytes");

struct nvme_id_ctrl {
	uint16_t vid;
	uint16_t ssvid;
	char sn[20];
	char mn[40];
	char fr[8];
	uint8_t rab;
	uint8_t ieee[3];
	uint8_t cmic;
	uint8_t mdts;
	uint16_t cntlid;
	uint32_t ver;
	uint32_t rtd3r;
	uint32_t rtd3e;
	uint32_t oaes;
	uint32_t ctratt;
	uint16_t rrls;
	uint8_t rsvd102[9];
	uint8_t cntrltype;
	uint8_t fguid[16];
	uint16_t crdt[3];
	uint8_t rsvd134[119];
	uint8_t nvmsr;
	uint8_t vwci;
	uint8_t mec;
	uint16_t oacs;
	uint8_t acl;
	uint8_t aerl;
	uint8_t frmw;
	uint8_t lpa;
	uint8_t elpe;
	uint8_t npss;
	uint8_t avscc;
	uint8_t apsta;
	uint16_t wctemp;
	uint16_t cctemp;
	uint16_t mtfa;
	uint32_t hmpre;
	uint32_t hmmin;
	uint8_t tnvmcap[16];
	uint8_t unvmcap[16];
	uint32_t rpmbs;
	uint16_t edstt;
	uint8_t dsto;
	uint8_t fwug;
	uint16_t kas;
	uint16_t hctma;
	uint16_t mntmt;
	uint16_t mxtmt;
	uint32_t sanicap;
	uint32_t hmminds;
	uint16_t hmmaxd;
	uint16_t nsetidmax;
	uint16_t endgidmax;
	uint8_t anatt;
	uint8_t anacap;
	uint32_t anagrpmax;
	uint32_t nanagrpid;
	uint32_t pels;
	uint16_t domainid;
	uint8_t rsvd358[10];
	uint8_t megcap[16];
	uint8_t rsvd384[128];
	uint8_t sqes;
	uint8_t cqes;
	uint16_t maxcmd;
	uint32_t nn;
	uint16_t oncs;
	uint16_t fuses;
	uint8_t fna;
	uint8_t vwc;
	uint16_t awun;
	uint16_t awupf;
	uint8_t icsvscc;
	uint8_t nwpc;
	uint16_t acwu;
	uint16_t ocfs;
	uint32_t sgls;
	uint32_t mnan;
	uint8_t maxdna[16];
	uint32_t maxcna;
	uint8_t rsvd564[204];
	char subnqn[256];
	uint8_t rsvd1024[768];
	/* NVMe over Fabrics attributes */
	uint32_t ioccsz;
	uint32_t iorcsz;
	uint16_t icdoff;
	uint8_t fcatt;
	uint8_t msdbd;
	uint16_t ofcs;
	uint8_t rsvd1806[242];
	struct nvme_power_state psd[32];
	uint8_t vs[1024];
};
_Static_assert(sizeof(struct nvme_id_ctrl) == NVME_IDENTIFY_SIZE, "Identify Controller is 4 KiB");
_Static_assert(offsetof(struct nvme_id_ctrl, mdts) == 77, "MDTS at byte 77");
_Static_assert(offsetof(struct nvme_id_ctrl, cntlid) == 78, "CNTLID at byte 78");
_Static_assert(offsetof(struct nvme_id_ctrl, ver) == 80, "VER at byte 80");
_Static_assert(offsetof(struct nvme_id_ctrl, cntrltype) == 111, "CNTRLTYPE at byte 111");
_Static_assert(offsetof(struct nvme_id_ctrl, oacs) == 256, "OACS at byte 256");
_Static_assert(offsetof(struct nvme_id_ctrl, lpa) == 261, "LPA at byte 261");
_Static_assert(offsetof(struct nvme_id_ctrl, tnvmcap) == 280, "TNVMCAP at byte 280");
_Static_assert(offsetof(struct nvme_id_ctrl, kas) == 320, "KAS at byte 320");
_Static_assert(offsetof(struct nvme_id_ctrl, sqes) == 512, "SQES at byte 512");
_Static_assert(offsetof(struct nvme_id_ctrl, nn) == 516, "NN at byte 516");
_Static_assert(offsetof(struct nvme_id_ctrl, oncs) == 520, "ONCS at byte 520");
_Static_assert(offsetof(struct nvme_id_ctrl, vwc) == 525, "VWC at byte 525");
_Static_assert(offsetof(struct nvme_id_ctrl, sgls) == 536, "SGLS at byte 536");
_Static_assert(offsetof(struct nvme_id_ctrl, subnqn) == 768, "SUBNQN at byte 768");
_Static_assert(offsetof(struct nvme_id_ctrl, ioccsz) == 1792, "IOCCSZ at byte 1792");
_Static_assert(offsetof(struct nvme_id_ctrl, psd) == 2048, "PSD0 at byte 2048");
_Static_assert(offsetof(struct nvme_id_ctrl, vs) == 3072, "vendor area at byte 3072");

/* OACS bits */
#define NVME_OACS_DOORBELL_BUFFER_CONFIG (1u << 8)
/* ONCS bits */
#define NVME_ONCS_COMPARE		 (1u << 0)
#define NVME_ONCS_WRITE_UNCORRECTABLE	 (1u << 1)
#define NVME_ONCS_DSM			 (1u << 2)
#define NVME_ONCS_WRITE_ZEROES		 (1u << 3)
/* LPA bits */
#define NVME_LPA_EXTENDED_DATA		 (1u << 2)
/* VER: major.minor.tertiary */
#define NVME_VERSION(mjr, mnr, ter)	 (((uint32_t)(mjr) << 16) | ((uint32_t)(mnr) << 8) | (ter))

struct nvme_lbaf {
	uint16_t ms;
	uint8_t lbads; /* log2 of the LBA data size */
	uint8_t rp;
};
_Static_assert(sizeof(struct nvme_lbaf) == 4, "LBA format is 4 bytes");

struct nvme_id_ns {
	uint64_t nsze;
	uint64_t ncap;
	uint64_t nuse;
	uint8_t nsfeat;
	uint8_t nlbaf;
	uint8_t flbas;
	uint8_t mc;
	uint8_t dpc;
	uint8_t dps;
	uint8_t nmic;
	uint8_t rescap;
	uint8_t fpi;
	uint8_t dlfeat;
	uint16_t nawun;
	uint16_t nawupf;
	uint16_t nacwu;
	uint16_t nabsn;
	uint16_t nabo;
	uint16_t nabspf;
	uint16_t noiob;
	uint8_t nvmcap[16];
	uint16_t npwg;
	uint16_t npwa;
	uint16_t npdg;
	uint16_t npda;
	uint16_t nows;
	uint16_t mssrl;
	uint32_t mcl;
	uint8_t msrc;
	uint8_t rsvd81;
	uint8_t nulbaf;
	uint8_t rsvd83[9];
	uint32_t anagrpid;
	uint8_t rsvd96[3];
	uint8_t nsattr;
	uint16_t nvmsetid;
	uint16_t endgid;
	uint8_t nguid[16];
	uint8_t eui64[8];
	struct nvme_lbaf lbaf[64];
	uint8_t rsvd384[3712];
};
_Static_assert(sizeof(struct nvme_id_ns) == NVME_IDENTIFY_SIZE, "Identify Namespace is 4 KiB");
_Static_assert(offsetof(struct nvme_id_ns, nsfeat) == 24, "NSFEAT at byte 24");
_Static_assert(offsetof(struct nvme_id_ns, flbas) == 26, "FLBAS at byte 26");
_Static_assert(offsetof(struct nvme_id_ns, dlfeat) == 33, "DLFEAT at byte 33");
_Static_assert(offsetof(struct nvme_id_ns, nvmcap) == 48, "NVMCAP at byte 48");
_Static_assert(offsetof(struct nvme_id_ns, nguid) == 104, "NGUID at byte 104");
_Static_assert(offsetof(struct nvme_id_ns, eui64) == 120, "EUI64 at byte 120");
_Static_assert(offsetof(struct nvme_id_ns, lbaf) == 128, "LBAF0 at byte 128");

#define NVME_NSFEAT_THIN_PROVISIONING (1u << 0)
#define NVME_DLFEAT_READ_ZEROES	      0x1 /* deallocated blocks read as zeroes */

/* Namespace Identification Descriptor (CNS 03h) */
enum nvme_nidt {
	NVME_NIDT_EUI64 = 0x1,
	NVME_NIDT_NGUID = 0x2,
	NVME_NIDT_UUID = 0x3,
	NVME_NIDT_CSI = 0x4,
};

struct nvme_ns_id_desc {
	uint8_t nidt;
	uint8_t nidl;
	uint16_t rsvd;
	/* followed by nidl bytes of identifier */
};
_Static_assert(sizeof(struct nvme_ns_id_desc) == 4, "NS descriptor header is 4 bytes");

/* ---- Log pages -------------------------------------------------------- */

enum nvme_log_page {
	NVME_LOG_ERROR = 0x01,
	NVME_LOG_HEALTH = 0x02,
	NVME_LOG_FIRMWARE_SLOT = 0x03,
	NVME_LOG_CHANGED_NS_LIST = 0x04,
};

struct nvme_error_log_entry {
	uint64_t error_count;
	uint16_t sqid;
	uint16_t cid;
	uint16_t status; /* CQE status field layout, phase bit 0 */
	uint16_t error_location;
	uint64_t lba;
	uint32_t nsid;
	uint8_t vs;
	uint8_t trtype;
	uint8_t rsvd30[2];
	uint64_t cmd_specific;
	uint16_t trtype_specific;
	uint8_t rsvd42[22];
};
_Static_assert(sizeof(struct nvme_error_log_entry) == 64, "error log entry is 64 bytes");
_Static_assert(offsetof(struct nvme_error_log_entry, lba) == 16, "error LBA at byte 16");
_Static_assert(offsetof(struct nvme_error_log_entry, nsid) == 24, "error NSID at byte 24");

struct nvme_health_log {
	uint8_t critical_warning;
	uint16_t temperature;
	uint8_t available_spare;
	uint8_t available_spare_threshold;
	uint8_t percentage_used;
	uint8_t endurance_group_critical_warning;
	uint8_t rsvd7[25];
	uint64_t data_units_read[2]; /* 128-bit counters: [0] low, [1] high */
	uint64_t data_units_written[2];
	uint64_t host_read_commands[2];
	uint64_t host_write_commands[2];
	uint64_t controller_busy_time[2];
	uint64_t power_cycles[2];
	uint64_t power_on_hours[2];
	uint64_t unsafe_shutdowns[2];
	uint64_t media_errors[2];
	uint64_t num_error_info_log_entries[2];
	uint32_t warning_temp_time;
	uint32_t critical_temp_time;
	uint16_t temp_sensor[8];
	uint8_t rsvd216[296];
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_health_log) == 512, "SMART / health log is 512 bytes");
_Static_assert(offsetof(struct nvme_health_log, temperature) == 1, "temperature at byte 1");
_Static_assert(offsetof(struct nvme_health_log, data_units_read) == 32, "DUR at byte 32");
_Static_assert(offsetof(struct nvme_health_log, host_read_commands) == 64, "HRC at byte 64");
_Static_assert(offsetof(struct nvme_health_log, media_errors) == 160, "media errors at byte 160");
_Static_assert(offsetof(struct nvme_health_log, warning_temp_time) == 192, "WCTT at byte 192");

/* Get Log Page CDW10: LID [7:0], LSP [14:8], RAE [15], NUMDL [31:16]; CDW11 NUMDU [15:0]. */
#define NVME_LOG_NUMD(cdw10, cdw11) ((((cdw11)&0xffffu) << 16 | ((cdw10) >> 16)) + 1)

/* ---- Features --------------------------------------------------------- */

enum nvme_feature {
	NVME_FEAT_ARBITRATION = 0x01,
	NVME_FEAT_POWER_MANAGEMENT = 0x02,
	NVME_FEAT_TEMPERATURE_THRESHOLD = 0x04,
	NVME_FEAT_ERROR_RECOVERY = 0x05,
	NVME_FEAT_VOLATILE_WRITE_CACHE = 0x06,
	NVME_FEAT_NUMBER_OF_QUEUES = 0x07,
	NVME_FEAT_INTERRUPT_COALESCING = 0x08,
	NVME_FEAT_INTERRUPT_VECTOR_CONFIG = 0x09,
	NVME_FEAT_WRITE_ATOMICITY = 0x0a,
	NVME_FEAT_ASYNC_EVENT_CONFIG = 0x0b,
	NVME_FEAT_KEEP_ALIVE_TIMER = 0x0f,
};

/* Arbitration (feature 01h), CDW11: AB [2:0], LPW [15:8], MPW [23:16], HPW [31:24]. */
#define NVME_ARB_AB(v)	((v)&0x7)
#define NVME_ARB_LPW(v) (((v) >> 8) & 0xff)
#define NVME_ARB_MPW(v) (((v) >> 16) & 0xff)
#define NVME_ARB_HPW(v) (((v) >> 24) & 0xff)

/* Create I/O SQ CDW11: PC bit 0, QPRIO [2:1], CQID [31:16]. Create I/O CQ CDW11: PC bit 0, IEN bit 1. */
#define NVME_QUEUE_PHYS_CONTIG (1u << 0)
#define NVME_CQ_IRQ_ENABLED    (1u << 1)
#define NVME_SQ_QPRIO(cdw11)   (((cdw11) >> 1) & 0x3)

enum nvme_qprio {
	NVME_QPRIO_URGENT = 0,
	NVME_QPRIO_HIGH = 1,
	NVME_QPRIO_MEDIUM = 2,
	NVME_QPRIO_LOW = 3,
};

/* ---- Controller registers (Base 2.0, section 3.1.3) ------------------ */

struct nvme_registers {
	uint64_t cap;
	uint32_t vs;
	uint32_t intms;
	uint32_t intmc;
	uint32_t cc;
	uint32_t rsvd1;
	uint32_t csts;
	uint32_t nssr;
	uint32_t aqa;
	uint64_t asq;
	uint64_t acq;
};
_Static_assert(offsetof(struct nvme_registers, cc) == 0x14, "CC at 14h");
_Static_assert(offsetof(struct nvme_registers, csts) == 0x1c, "CSTS at 1Ch");
_Static_assert(offsetof(struct nvme_registers, aqa) == 0x24, "AQA at 24h");
_Static_assert(offsetof(struct nvme_registers, asq) == 0x28, "ASQ at 28h");
_Static_assert(offsetof(struct nvme_registers, acq) == 0x30, "ACQ at 30h");

/* Controller register (property) offsets (Base 2.0, figure 33). */
#define NVME_REG_CAP   0x00
#define NVME_REG_VS    0x08
#define NVME_REG_INTMS 0x0c
#define NVME_REG_INTMC 0x10
#define NVME_REG_CC    0x14
#define NVME_REG_CSTS  0x1c
#define NVME_REG_NSSR  0x20
#define NVME_REG_AQA   0x24
#define NVME_REG_ASQ   0x28
#define NVME_REG_ACQ   0x30

#define NVME_CAP_MQES(cap)	 ((cap)&0xffff)
#define NVME_CAP_CQR		 (1ull << 16)
#define NVME_CAP_TO_SHIFT	 24
#define NVME_CAP_DSTRD_SHIFT	 32
#define NVME_CAP_CSS_NVM	 (1ull << 37)
#define NVME_CC_EN		 (1u << 0)
#define NVME_CC_SHN_SHIFT	 14
#define NVME_CC_SHN_MASK	 (3u << NVME_CC_SHN_SHIFT)
#define NVME_CSTS_RDY		 (1u << 0)
#define NVME_CSTS_CFS		 (1u << 1) /* controller fatal status */
#define NVME_CSTS_SHST_SHIFT	 2
#define NVME_CSTS_SHST_COMPLETE	 (2u << NVME_CSTS_SHST_SHIFT)
#define NVME_CSTS_SHST_OCCURRING (1u << NVME_CSTS_SHST_SHIFT)
#define NVME_CSTS_SHST_MASK	 (3u << NVME_CSTS_SHST_SHIFT)

#endif /* LEAPIO_NVME_SPEC_H */
