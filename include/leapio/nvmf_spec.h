/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe over Fabrics (NVMe-oF 1.1) and NVMe/TCP transport (TP 8000, NVMe/TCP
 * Transport Specification 1.0) wire structures and constants. The NVMe/TCP
 * host library (nvmf/), the NVMe/TCP target front-end and their tests all
 * speak these bytes, so every layout the specs fix is pinned with
 * _Static_assert, exactly like nvme_spec.h (which this header builds on and
 * never repeats: the SQE/CQE, opcodes, Identify and the register block live
 * there). Everything is little-endian on the wire; nvme_spec.h already
 * refuses big-endian hosts.
 *
 * A few plain NVMe base definitions that fabrics code needs but nvme_spec.h
 * lacks (CC field shifts, two status codes, SGL PSDT) are defined here under
 * #ifndef guards so they can move into nvme_spec.h without breaking anything.
 */
#ifndef LEAPIO_NVMF_SPEC_H
#define LEAPIO_NVMF_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "leapio/nvme_spec.h"

/* ======================================================================
 * NVMe base additions (candidates for nvme_spec.h)
 * ==================================================================== */

/* SQE flags bits 7:6 (PSDT): 01b = SGLs, MPTR a contiguous buffer. Fabrics requires SGLs. */
#define NVMF_SQE_PSDT_SGL  1u
#define NVMF_SQE_FLAGS_SGL (NVMF_SQE_PSDT_SGL << NVME_SQE_PSDT_SHIFT)

/* Controller Configuration fields (Base 2.0, figure 41). */
#ifndef NVME_CC_CSS_SHIFT
#define NVME_CC_CSS_SHIFT    4
#define NVME_CC_MPS_SHIFT    7
#define NVME_CC_AMS_SHIFT    11
#define NVME_CC_IOSQES_SHIFT 16
#define NVME_CC_IOCQES_SHIFT 20
#endif
#ifndef NVME_CAP_TO
#define NVME_CAP_TO(cap) (((cap) >> NVME_CAP_TO_SHIFT) & 0xff) /* in 500 ms units */
#endif

/* Generic status 22h: a transport error the host may retry (data digest mismatch). */
#ifndef NVME_SC_TRANSIENT_TRANSPORT_ERROR
#define NVME_SC_TRANSIENT_TRANSPORT_ERROR 0x22
#endif
/* Path status 71h: the host ended the command itself (connection lost or torn down). */
#ifndef NVME_SC_HOST_PATH_ERROR
#define NVME_SC_HOST_PATH_ERROR 0x71
#endif

/* Opcode (or fctype) bits 1:0 give the data direction (Base 2.0, figure 91). */
enum nvmf_data_dir {
	NVMF_DIR_NONE = 0,
	NVMF_DIR_H2C = 1, /* host to controller: writes */
	NVMF_DIR_C2H = 2, /* controller to host: reads */
	NVMF_DIR_BIDI = 3,
};

/* ---- SGL descriptor (Base 2.0, section 4.1.2) ------------------------ */

struct nvme_sgl_desc {
	uint64_t addr;
	uint32_t length;
	uint8_t rsvd[3];
	uint8_t type; /* bits 7:4 descriptor type, bits 3:0 subtype */
};
_Static_assert(sizeof(struct nvme_sgl_desc) == 16, "SGL descriptor is 16 bytes");
_Static_assert(offsetof(struct nvme_sgl_desc, length) == 8, "SGL length at byte 8");
_Static_assert(offsetof(struct nvme_sgl_desc, type) == 15, "SGL identifier at byte 15");

enum nvme_sgl_type {
	NVME_SGL_TYPE_DATA_BLOCK = 0x0,
	NVME_SGL_TYPE_BIT_BUCKET = 0x1,
	NVME_SGL_TYPE_SEGMENT = 0x2,
	NVME_SGL_TYPE_LAST_SEGMENT = 0x3,
	NVME_SGL_TYPE_KEYED_DATA_BLOCK = 0x4,
	NVME_SGL_TYPE_TRANSPORT_DATA_BLOCK = 0x5,
};

enum nvme_sgl_subtype {
	NVME_SGL_SUBTYPE_ADDRESS = 0x0,
	NVME_SGL_SUBTYPE_OFFSET = 0x1,
	NVME_SGL_SUBTYPE_TRANSPORT_A = 0xa,
};

#define NVME_SGL_ID(type, subtype) ((uint8_t)(((type) << 4) | (subtype)))

/*
 * The two descriptors an NVMe/TCP host uses (TP 8000 section 3.3.3, and what
 * the Linux host sends): in-capsule data is a Data Block with subtype Offset
 * (address = offset into the capsule's data, 0 since ICDOFF is 0); data moved
 * by R2T/H2CData or C2HData, and "no data", is a Transport Data Block with
 * the transport-specific subtype, address 0.
 */
#define NVMF_TCP_SGL_ICD NVME_SGL_ID(NVME_SGL_TYPE_DATA_BLOCK, NVME_SGL_SUBTYPE_OFFSET)
#define NVMF_TCP_SGL_TRANSPORT                                                                     \
	NVME_SGL_ID(NVME_SGL_TYPE_TRANSPORT_DATA_BLOCK, NVME_SGL_SUBTYPE_TRANSPORT_A)
_Static_assert(NVMF_TCP_SGL_ICD == 0x01, "in-capsule SGL identifier is 01h");
_Static_assert(NVMF_TCP_SGL_TRANSPORT == 0x5a, "transport SGL identifier is 5Ah");

/* SGL1 sits where PRP1/PRP2 are in a PRP command: SQE bytes 24..39. */
#define NVME_SQE_SGL1_OFFSET 24
_Static_assert(offsetof(struct nvme_sqe, prp1) == NVME_SQE_SGL1_OFFSET, "SGL1 at byte 24");

/* ======================================================================
 * NVMe over Fabrics 1.1
 * ==================================================================== */

#define NVMF_NQN_FIELD_SIZE  256
#define NVMF_NQN_MAX_LEN     223 /* bytes, without the NUL (NVMe-oF 1.1 section 7.9) */
#define NVMF_TRADDR_MAX_LEN  256
#define NVMF_TRSVCID_MAX_LEN 32
#define NVME_DISCOVERY_NQN   "nqn.2014-08.org.nvmexpress.discovery"
#define NVMF_NQN_UUID_PREFIX "nqn.2014-08.org.nvmexpress:uuid:"

enum nvmf_fctype {
	NVMF_FCTYPE_PROPERTY_SET = 0x00,
	NVMF_FCTYPE_CONNECT = 0x01,
	NVMF_FCTYPE_PROPERTY_GET = 0x04,
	NVMF_FCTYPE_AUTH_SEND = 0x05,
	NVMF_FCTYPE_AUTH_RECV = 0x06,
	NVMF_FCTYPE_DISCONNECT = 0x08,
};

/* Generic fabrics command capsule SQE (NVMe-oF 1.1 figure 10). */
struct nvmf_capsule_cmd {
	uint8_t opc; /* NVME_OPC_FABRIC */
	uint8_t flags;
	uint16_t cid;
	uint8_t fctype;
	uint8_t rsvd5[19];
	struct nvme_sgl_desc sgl1;
	uint8_t fcsp[24]; /* fctype specific */
};
_Static_assert(sizeof(struct nvmf_capsule_cmd) == NVME_SQE_SIZE, "fabrics SQE is 64 bytes");
_Static_assert(offsetof(struct nvmf_capsule_cmd, fctype) == 4, "FCTYPE at byte 4");
_Static_assert(offsetof(struct nvmf_capsule_cmd, sgl1) == NVME_SQE_SGL1_OFFSET, "SGL1 at 24");
_Static_assert(offsetof(struct nvmf_capsule_cmd, fcsp) == 40, "fctype specific at byte 40");

/* ---- Connect (NVMe-oF 1.1 section 3.3) ------------------------------- */

struct nvmf_connect_cmd {
	uint8_t opc;
	uint8_t flags;
	uint16_t cid;
	uint8_t fctype; /* NVMF_FCTYPE_CONNECT */
	uint8_t rsvd5[19];
	struct nvme_sgl_desc sgl1;
	uint16_t recfmt; /* 0 */
	uint16_t qid;
	uint16_t sqsize; /* 0's based */
	uint8_t cattr;
	uint8_t rsvd47;
	uint32_t kato; /* milliseconds, admin queue only; 0 disables */
	uint8_t rsvd52[12];
};
_Static_assert(sizeof(struct nvmf_connect_cmd) == NVME_SQE_SIZE, "Connect SQE is 64 bytes");
_Static_assert(offsetof(struct nvmf_connect_cmd, recfmt) == 40, "RECFMT at byte 40");
_Static_assert(offsetof(struct nvmf_connect_cmd, qid) == 42, "QID at byte 42");
_Static_assert(offsetof(struct nvmf_connect_cmd, sqsize) == 44, "SQSIZE at byte 44");
_Static_assert(offsetof(struct nvmf_connect_cmd, cattr) == 46, "CATTR at byte 46");
_Static_assert(offsetof(struct nvmf_connect_cmd, kato) == 48, "KATO at byte 48");

#define NVMF_CONNECT_CATTR_URGENT	  (1u << 0)
#define NVMF_CONNECT_CATTR_DISABLE_SQFLOW (1u << 2)
#define NVMF_CNTLID_DYNAMIC		  0xffff /* admin Connect: any controller, dynamic model */
#define NVMF_CNTLID_STATIC_ANY		  0xfffe

struct nvmf_connect_data {
	uint8_t hostid[16];
	uint16_t cntlid;
	uint8_t rsvd18[238];
	char subnqn[NVMF_NQN_FIELD_SIZE];
	char hostnqn[NVMF_NQN_FIELD_SIZE];
	uint8_t rsvd768[256];
};
_Static_assert(sizeof(struct nvmf_connect_data) == 1024, "Connect data is 1 KiB");
_Static_assert(offsetof(struct nvmf_connect_data, cntlid) == 16, "CNTLID at byte 16");
_Static_assert(offsetof(struct nvmf_connect_data, subnqn) == 256, "SUBNQN at byte 256");
_Static_assert(offsetof(struct nvmf_connect_data, hostnqn) == 512, "HOSTNQN at byte 512");

/* Connect response CQE: dw0 = CNTLID [15:0] + AUTHREQ [31:16] on success. */
struct nvmf_connect_rsp {
	union {
		struct {
			uint16_t cntlid;
			uint16_t authreq;
		} success;
		struct {
			uint16_t ipo;  /* invalid parameter offset */
			uint8_t iattr; /* 0: in the SQE, 1: in the Connect data */
			uint8_t rsvd;
		} invalid;
		uint32_t raw;
	} dw0;
	uint32_t dw1;
	uint16_t sqhd;
	uint16_t rsvd10;
	uint16_t cid;
	uint16_t status;
};
_Static_assert(sizeof(struct nvmf_connect_rsp) == NVME_CQE_SIZE, "Connect CQE is 16 bytes");
_Static_assert(offsetof(struct nvmf_connect_rsp, sqhd) == offsetof(struct nvme_cqe, sqhd),
	       "Connect CQE SQHD where the CQE has it");
_Static_assert(offsetof(struct nvmf_connect_rsp, cid) == offsetof(struct nvme_cqe, cid),
	       "Connect CQE CID where the CQE has it");

/* Fabrics command-specific status values (SCT 1), NVMe-oF 1.1 figure 12. */
enum nvmf_fabrics_sc {
	NVMF_SC_CONNECT_INCOMPATIBLE_FORMAT = 0x80,
	NVMF_SC_CONNECT_CTRL_BUSY = 0x81,
	NVMF_SC_CONNECT_INVALID_PARAM = 0x82,
	NVMF_SC_CONNECT_RESTART_DISCOVERY = 0x83,
	NVMF_SC_CONNECT_INVALID_HOST = 0x84,
	NVMF_SC_INVALID_QUEUE_TYPE = 0x85,
	NVMF_SC_DISCOVERY_RESTART = 0x90,
	NVMF_SC_AUTH_REQUIRED = 0x91,
};

/* ---- Property Get / Set (NVMe-oF 1.1 sections 3.4, 3.5) --------------- */

#define NVMF_PROP_SIZE_4 0u
#define NVMF_PROP_SIZE_8 1u

struct nvmf_property_get_cmd {
	uint8_t opc;
	uint8_t flags;
	uint16_t cid;
	uint8_t fctype; /* NVMF_FCTYPE_PROPERTY_GET */
	uint8_t rsvd5[35];
	uint8_t attrib; /* bits 2:0 size */
	uint8_t rsvd41[3];
	uint32_t ofst;
	uint8_t rsvd48[16];
};
_Static_assert(sizeof(struct nvmf_property_get_cmd) == NVME_SQE_SIZE, "Property Get is 64 B");
_Static_assert(offsetof(struct nvmf_property_get_cmd, attrib) == 40, "ATTRIB at byte 40");
_Static_assert(offsetof(struct nvmf_property_get_cmd, ofst) == 44, "OFST at byte 44");

struct nvmf_property_set_cmd {
	uint8_t opc;
	uint8_t flags;
	uint16_t cid;
	uint8_t fctype; /* NVMF_FCTYPE_PROPERTY_SET */
	uint8_t rsvd5[35];
	uint8_t attrib;
	uint8_t rsvd41[3];
	uint32_t ofst;
	uint64_t value;
	uint8_t rsvd56[8];
};
_Static_assert(sizeof(struct nvmf_property_set_cmd) == NVME_SQE_SIZE, "Property Set is 64 B");
_Static_assert(offsetof(struct nvmf_property_set_cmd, attrib) == 40, "ATTRIB at byte 40");
_Static_assert(offsetof(struct nvmf_property_set_cmd, ofst) == 44, "OFST at byte 44");
_Static_assert(offsetof(struct nvmf_property_set_cmd, value) == 48, "VALUE at byte 48");

/* Property Get response: the value is CQE dw0 (low) and dw1 (high). */

/*
 * Property offsets are the controller register offsets; reuse the register
 * block layout from nvme_spec.h rather than repeating numbers.
 */
#define NVMF_PROP_CAP  offsetof(struct nvme_registers, cap)
#define NVMF_PROP_VS   offsetof(struct nvme_registers, vs)
#define NVMF_PROP_CC   offsetof(struct nvme_registers, cc)
#define NVMF_PROP_CSTS offsetof(struct nvme_registers, csts)
#define NVMF_PROP_NSSR offsetof(struct nvme_registers, nssr)
_Static_assert(NVMF_PROP_CAP == 0x00, "CAP at 00h");
_Static_assert(NVMF_PROP_VS == 0x08, "VS at 08h");
_Static_assert(NVMF_PROP_CC == 0x14, "CC at 14h");
_Static_assert(NVMF_PROP_CSTS == 0x1c, "CSTS at 1Ch");
_Static_assert(NVMF_PROP_NSSR == 0x20, "NSSR at 20h");

/* ---- Disconnect (NVMe-oF 1.1 section 3.6, fctype 08h) ----------------- */

struct nvmf_disconnect_cmd {
	uint8_t opc;
	uint8_t flags;
	uint16_t cid;
	uint8_t fctype; /* NVMF_FCTYPE_DISCONNECT */
	uint8_t rsvd5[19];
	struct nvme_sgl_desc sgl1;
	uint16_t recfmt;
	uint8_t rsvd42[22];
};
_Static_assert(sizeof(struct nvmf_disconnect_cmd) == NVME_SQE_SIZE, "Disconnect is 64 B");
_Static_assert(offsetof(struct nvmf_disconnect_cmd, recfmt) == 40, "RECFMT at byte 40");

/* ---- Discovery log page (NVMe-oF 1.1 section 5.3, LID 70h) ------------- */

#define NVMF_LOG_DISCOVERY 0x70

enum nvmf_trtype {
	NVMF_TRTYPE_RDMA = 1,
	NVMF_TRTYPE_FC = 2,
	NVMF_TRTYPE_TCP = 3,
	NVMF_TRTYPE_LOOP = 254,
};

enum nvmf_adrfam {
	NVMF_ADRFAM_IPV4 = 1,
	NVMF_ADRFAM_IPV6 = 2,
	NVMF_ADRFAM_IB = 3,
	NVMF_ADRFAM_FC = 4,
	NVMF_ADRFAM_LOOP = 254,
};

enum nvmf_subtype {
	NVMF_SUBTYPE_DISCOVERY_REFERRAL = 1,
	NVMF_SUBTYPE_NVME = 2,
	NVMF_SUBTYPE_DISCOVERY_CURRENT = 3,
};

/* TREQ bits 1:0 secure channel, bit 2 SQ flow control disable supported. */
#define NVMF_TREQ_SECURE_NOT_SPECIFIED 0x0
#define NVMF_TREQ_SECURE_REQUIRED      0x1
#define NVMF_TREQ_SECURE_NOT_REQUIRED  0x2
#define NVMF_TREQ_DISABLE_SQFLOW       (1u << 2)

enum nvmf_tcp_sectype {
	NVMF_TCP_SECTYPE_NONE = 0,
	NVMF_TCP_SECTYPE_TLS12 = 1,
	NVMF_TCP_SECTYPE_TLS13 = 2,
};

struct nvmf_disc_log_entry {
	uint8_t trtype;
	uint8_t adrfam;
	uint8_t subtype;
	uint8_t treq;
	uint16_t portid;
	uint16_t cntlid;
	uint16_t asqsz;
	uint16_t eflags;
	uint8_t rsvd12[20];
	char trsvcid[NVMF_TRSVCID_MAX_LEN];
	uint8_t rsvd64[192];
	char subnqn[NVMF_NQN_FIELD_SIZE];
	char traddr[NVMF_TRADDR_MAX_LEN];
	union {
		struct {
			uint8_t sectype;
			uint8_t rsvd[255];
		} tcp;
		uint8_t raw[256];
	} tsas;
};
_Static_assert(sizeof(struct nvmf_disc_log_entry) == 1024, "discovery log entry is 1 KiB");
_Static_assert(offsetof(struct nvmf_disc_log_entry, portid) == 4, "PORTID at byte 4");
_Static_assert(offsetof(struct nvmf_disc_log_entry, cntlid) == 6, "CNTLID at byte 6");
_Static_assert(offsetof(struct nvmf_disc_log_entry, asqsz) == 8, "ASQSZ at byte 8");
_Static_assert(offsetof(struct nvmf_disc_log_entry, trsvcid) == 32, "TRSVCID at byte 32");
_Static_assert(offsetof(struct nvmf_disc_log_entry, subnqn) == 256, "SUBNQN at byte 256");
_Static_assert(offsetof(struct nvmf_disc_log_entry, traddr) == 512, "TRADDR at byte 512");
_Static_assert(offsetof(struct nvmf_disc_log_entry, tsas) == 768, "TSAS at byte 768");

struct nvmf_disc_log_hdr {
	uint64_t genctr;
	uint64_t numrec;
	uint16_t recfmt;
	uint8_t rsvd18[1006];
	/* followed by numrec struct nvmf_disc_log_entry */
};
_Static_assert(sizeof(struct nvmf_disc_log_hdr) == 1024, "discovery log header is 1 KiB");
_Static_assert(offsetof(struct nvmf_disc_log_hdr, numrec) == 8, "NUMREC at byte 8");
_Static_assert(offsetof(struct nvmf_disc_log_hdr, recfmt) == 16, "RECFMT at byte 16");

/* ======================================================================
 * NVMe/TCP transport (TP 8000)
 * ==================================================================== */

#define NVME_TCP_PORT		4420
#define NVME_TCP_DISC_PORT	8009
#define NVME_TCP_DIGEST_LEN	4
#define NVME_TCP_PDA_MAX	31 /* HPDA/CPDA: alignment is (pda + 1) * 4 bytes */
#define NVME_TCP_MIN_MAXH2CDATA 4096
#define NVME_TCP_ADMIN_ICD_MAX	8192 /* in-capsule data on the admin queue (TP 8000 3.3.3) */
#define NVME_TCP_PFV_1_0	0

enum nvme_tcp_pdu_type {
	NVME_TCP_PDU_ICREQ = 0x00,
	NVME_TCP_PDU_ICRESP = 0x01,
	NVME_TCP_PDU_H2C_TERM_REQ = 0x02,
	NVME_TCP_PDU_C2H_TERM_REQ = 0x03,
	NVME_TCP_PDU_CAPSULE_CMD = 0x04,
	NVME_TCP_PDU_CAPSULE_RESP = 0x05,
	NVME_TCP_PDU_H2C_DATA = 0x06,
	NVME_TCP_PDU_C2H_DATA = 0x07,
	NVME_TCP_PDU_R2T = 0x09,
};

/* Common header flags. */
#define NVME_TCP_F_HDGST	0x01 /* a header digest follows the PDU header */
#define NVME_TCP_F_DDGST	0x02 /* a data digest follows the PDU data */
#define NVME_TCP_F_DATA_LAST	0x04 /* H2CData/C2HData: last PDU of the transfer */
#define NVME_TCP_F_DATA_SUCCESS 0x08 /* C2HData: the command completed successfully */

struct nvme_tcp_common_hdr {
	uint8_t pdu_type;
	uint8_t flags;
	uint8_t hlen;  /* header length, without the header digest */
	uint8_t pdo;   /* offset of the PDU data from the start of the PDU; 0 without data */
	uint32_t plen; /* total PDU length: header, digests, padding, data */
};
_Static_assert(sizeof(struct nvme_tcp_common_hdr) == 8, "common header is 8 bytes");
_Static_assert(offsetof(struct nvme_tcp_common_hdr, flags) == 1, "FLAGS at byte 1");
_Static_assert(offsetof(struct nvme_tcp_common_hdr, hlen) == 2, "HLEN at byte 2");
_Static_assert(offsetof(struct nvme_tcp_common_hdr, pdo) == 3, "PDO at byte 3");
_Static_assert(offsetof(struct nvme_tcp_common_hdr, plen) == 4, "PLEN at byte 4");

/* ICReq / ICResp DGST bits. */
#define NVME_TCP_DGST_HDGST 0x01
#define NVME_TCP_DGST_DDGST 0x02

struct nvme_tcp_icreq {
	struct nvme_tcp_common_hdr hdr;
	uint16_t pfv;
	uint8_t hpda;
	uint8_t dgst;
	uint32_t maxr2t; /* 0's based: outstanding R2Ts per command */
	uint8_t rsvd16[112];
};
_Static_assert(sizeof(struct nvme_tcp_icreq) == 128, "ICReq is 128 bytes");
_Static_assert(offsetof(struct nvme_tcp_icreq, pfv) == 8, "PFV at byte 8");
_Static_assert(offsetof(struct nvme_tcp_icreq, hpda) == 10, "HPDA at byte 10");
_Static_assert(offsetof(struct nvme_tcp_icreq, dgst) == 11, "DGST at byte 11");
_Static_assert(offsetof(struct nvme_tcp_icreq, maxr2t) == 12, "MAXR2T at byte 12");

struct nvme_tcp_icresp {
	struct nvme_tcp_common_hdr hdr;
	uint16_t pfv;
	uint8_t cpda;
	uint8_t dgst;
	uint32_t maxh2cdata;
	uint8_t rsvd16[112];
};
_Static_assert(sizeof(struct nvme_tcp_icresp) == 128, "ICResp is 128 bytes");
_Static_assert(offsetof(struct nvme_tcp_icresp, cpda) == 10, "CPDA at byte 10");
_Static_assert(offsetof(struct nvme_tcp_icresp, dgst) == 11, "DGST at byte 11");
_Static_assert(offsetof(struct nvme_tcp_icresp, maxh2cdata) == 12, "MAXH2CDATA at byte 12");

/*
 * H2CTermReq / C2HTermReq: a 24-byte header followed by up to 128 bytes of
 * the offending PDU's header. Never carries digests (TP 8000 3.6.2.x).
 */
struct nvme_tcp_term_req {
	struct nvme_tcp_common_hdr hdr;
	uint16_t fes;
	uint32_t fei; /* unaligned on the wire: bytes 10..13 */
	uint8_t rsvd14[10];
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_tcp_term_req) == 24, "TermReq header is 24 bytes");
_Static_assert(offsetof(struct nvme_tcp_term_req, fes) == 8, "FES at byte 8");
_Static_assert(offsetof(struct nvme_tcp_term_req, fei) == 10, "FEI at byte 10");

#define NVME_TCP_TERM_REQ_DATA_MAX 128
#define NVME_TCP_TERM_REQ_PLEN_MAX (24 + NVME_TCP_TERM_REQ_DATA_MAX)

/* Fatal error status (TermReq FES). */
enum nvme_tcp_fes {
	NVME_TCP_FES_INVALID_HEADER_FIELD = 0x01,
	NVME_TCP_FES_PDU_SEQUENCE_ERROR = 0x02,
	NVME_TCP_FES_HDGST_ERROR = 0x03,
	NVME_TCP_FES_DATA_OUT_OF_RANGE = 0x04,
	NVME_TCP_FES_DATA_LIMIT_EXCEEDED = 0x05, /* was "R2T limit exceeded" */
	NVME_TCP_FES_UNSUPPORTED_PARAM = 0x06,
};

struct nvme_tcp_cmd_pdu {
	struct nvme_tcp_common_hdr hdr;
	struct nvme_sqe sqe;
};
_Static_assert(sizeof(struct nvme_tcp_cmd_pdu) == 72, "CapsuleCmd header is 72 bytes");
_Static_assert(offsetof(struct nvme_tcp_cmd_pdu, sqe) == 8, "SQE at byte 8");

struct nvme_tcp_rsp_pdu {
	struct nvme_tcp_common_hdr hdr;
	struct nvme_cqe cqe;
};
_Static_assert(sizeof(struct nvme_tcp_rsp_pdu) == 24, "CapsuleResp is 24 bytes");
_Static_assert(offsetof(struct nvme_tcp_rsp_pdu, cqe) == 8, "CQE at byte 8");

struct nvme_tcp_h2c_data_pdu {
	struct nvme_tcp_common_hdr hdr;
	uint16_t cccid;
	uint16_t ttag;
	uint32_t datao;
	uint32_t datal;
	uint8_t rsvd20[4];
};
_Static_assert(sizeof(struct nvme_tcp_h2c_data_pdu) == 24, "H2CData header is 24 bytes");
_Static_assert(offsetof(struct nvme_tcp_h2c_data_pdu, cccid) == 8, "CCCID at byte 8");
_Static_assert(offsetof(struct nvme_tcp_h2c_data_pdu, ttag) == 10, "TTAG at byte 10");
_Static_assert(offsetof(struct nvme_tcp_h2c_data_pdu, datao) == 12, "DATAO at byte 12");
_Static_assert(offsetof(struct nvme_tcp_h2c_data_pdu, datal) == 16, "DATAL at byte 16");

struct nvme_tcp_c2h_data_pdu {
	struct nvme_tcp_common_hdr hdr;
	uint16_t cccid;
	uint16_t rsvd10;
	uint32_t datao;
	uint32_t datal;
	uint8_t rsvd20[4];
};
_Static_assert(sizeof(struct nvme_tcp_c2h_data_pdu) == 24, "C2HData header is 24 bytes");
_Static_assert(offsetof(struct nvme_tcp_c2h_data_pdu, cccid) == 8, "CCCID at byte 8");
_Static_assert(offsetof(struct nvme_tcp_c2h_data_pdu, datao) == 12, "DATAO at byte 12");
_Static_assert(offsetof(struct nvme_tcp_c2h_data_pdu, datal) == 16, "DATAL at byte 16");

struct nvme_tcp_r2t_pdu {
	struct nvme_tcp_common_hdr hdr;
	uint16_t cccid;
	uint16_t ttag;
	uint32_t r2to;
	uint32_t r2tl;
	uint8_t rsvd20[4];
};
_Static_assert(sizeof(struct nvme_tcp_r2t_pdu) == 24, "R2T is 24 bytes");
_Static_assert(offsetof(struct nvme_tcp_r2t_pdu, cccid) == 8, "CCCID at byte 8");
_Static_assert(offsetof(struct nvme_tcp_r2t_pdu, ttag) == 10, "TTAG at byte 10");
_Static_assert(offsetof(struct nvme_tcp_r2t_pdu, r2to) == 12, "R2TO at byte 12");
_Static_assert(offsetof(struct nvme_tcp_r2t_pdu, r2tl) == 16, "R2TL at byte 16");

/* ---- Small helpers ---------------------------------------------------- */

/* The data direction of a command: the opcode's bits 1:0, or fctype's for fabrics commands. */
static inline enum nvmf_data_dir nvmf_sqe_data_dir(const struct nvme_sqe *sqe)
{
	uint8_t code = sqe->opc;

	if (code == NVME_OPC_FABRIC)
		code = ((const struct nvmf_capsule_cmd *)(const void *)sqe)->fctype;
	return (enum nvmf_data_dir)(code & 3);
}

/* The internal status (NVME_STATUS layout, DNR kept at bit 15) of a CQE. */
static inline uint16_t nvmf_cqe_status(const struct nvme_cqe *cqe)
{
	return (uint16_t)(((cqe->status >> 1) & 0x7ff) | (cqe->status & NVME_CQE_DNR));
}

#endif /* LEAPIO_NVMF_SPEC_H */
