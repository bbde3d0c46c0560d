// SPDX-License-Identifier: BSD-3-Clause
/*
 * Command builders: each fills an SQE (admin, NVM I/O or fabrics) and hands
 * it to leap_nvmf_qpair_submit(), which adds CID, PSDT and the SGL. Kept
 * apart from the transport so the transport stays about bytes on the wire.
 */
#include <errno.h>
#include <string.h>

#include "nvmf_internal.h"

static void sqe_init(struct nvme_sqe *sqe, uint8_t opc, uint32_t nsid)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opc = opc;
	sqe->nsid = nsid;
}

static int rw(struct leap_nvmf_qpair *qp, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb,
	      const struct iovec *iov, int iovcnt, uint32_t io_flags, leap_nvmf_cb cb, void *arg)
{
	struct nvme_sqe sqe;

	if (nlb == 0 || nlb > NVME_RW_NLB_MASK + 1u)
		return -EINVAL;
	sqe_init(&sqe, opc, nsid);
	sqe.cdw10 = (uint32_t)slba;
	sqe.cdw11 = (uint32_t)(slba >> 32);
	sqe.cdw12 = (nlb - 1) | (io_flags & ~NVME_RW_NLB_MASK);
	return leap_nvmf_qpair_submit(qp, &sqe, iov, iovcnt, cb, arg);
}

int leap_nvmf_io_read(struct leap_nvmf_qpair *qp, uint32_t nsid, uint64_t slba, uint32_t nlb,
		      const struct iovec *iov, int iovcnt, uint32_t io_flags, leap_nvmf_cb cb,
		      void *arg)
{
	return rw(qp, NVME_OPC_READ, nsid, slba, nlb, iov, iovcnt, io_flags, cb, arg);
}

int leap_nvmf_io_write(struct leap_nvmf_qpair *qp, uint32_t nsid, uint64_t slba, uint32_t nlb,
		       const struct iovec *iov, int iovcnt, uint32_t io_flags, leap_nvmf_cb cb,
		       void *arg)
{
	return rw(qp, NVME_OPC_WRITE, nsid, slba, nlb, iov, iovcnt, io_flags, cb, arg);
}

int leap_nvmf_io_write_zeroes(struct leap_nvmf_qpair *qp, uint32_t nsid, uint64_t slba,
			      uint32_t nlb, uint32_t io_flags, leap_nvmf_cb cb, void *arg)
{
	return rw(qp, NVME_OPC_WRITE_ZEROES, nsid, slba, nlb, NULL, 0, io_flags, cb, arg);
}

int leap_nvmf_io_flush(struct leap_nvmf_qpair *qp, uint32_t nsid, leap_nvmf_cb cb, void *arg)
{
	struct nvme_sqe sqe;

	sqe_init(&sqe, NVME_OPC_FLUSH, nsid);
	return leap_nvmf_qpair_submit(qp, &sqe, NULL, 0, cb, arg);
}

int leap_nvmf_io_dsm(struct leap_nvmf_qpair *qp, uint32_t nsid, const struct nvme_dsm_range *ranges,
		     uint16_t nr, uint32_t attr, leap_nvmf_cb cb, void *arg)
{
	struct iovec iov = { (void *)ranges, (size_t)nr * sizeof(*ranges) };
	struct nvme_sqe sqe;

	if (nr == 0 || nr > NVME_DSM_MAX_RANGES || !ranges)
		return -EINVAL;
	sqe_init(&sqe, NVME_OPC_DATASET_MANAGEMENT, nsid);
	sqe.cdw10 = nr - 1u;
	sqe.cdw11 = attr;
	return leap_nvmf_qpair_submit(qp, &sqe, &iov, 1, cb, arg);
}

int leap_nvmf_admin_prop_get(struct leap_nvmf_qpair *qp, uint32_t ofst, bool size8, leap_nvmf_cb cb,
			     void *arg)
{
	struct nvmf_property_get_cmd cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVME_OPC_FABRIC;
	cmd.fctype = NVMF_FCTYPE_PROPERTY_GET;
	cmd.attrib = size8 ? NVMF_PROP_SIZE_8 : NVMF_PROP_SIZE_4;
	cmd.ofst = ofst;
	return leap_nvmf_qpair_submit(qp, (const struct nvme_sqe *)&cmd, NULL, 0, cb, arg);
}

int leap_nvmf_admin_prop_set(struct leap_nvmf_qpair *qp, uint32_t ofst, bool size8, uint64_t value,
			     leap_nvmf_cb cb, void *arg)
{
	struct nvmf_property_set_cmd cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVME_OPC_FABRIC;
	cmd.fctype = NVMF_FCTYPE_PROPERTY_SET;
	cmd.attrib = size8 ? NVMF_PROP_SIZE_8 : NVMF_PROP_SIZE_4;
	cmd.ofst = ofst;
	cmd.value = size8 ? value : (uint32_t)value;
	return leap_nvmf_qpair_submit(qp, (const struct nvme_sqe *)&cmd, NULL, 0, cb, arg);
}

int leap_nvmf_admin_identify(struct leap_nvmf_qpair *qp, uint8_t cns, uint32_t nsid, void *buf,
			     leap_nvmf_cb cb, void *arg)
{
	struct iovec iov = { buf, NVME_IDENTIFY_SIZE };
	struct nvme_sqe sqe;

	if (!buf)
		return -EINVAL;
	sqe_init(&sqe, NVME_OPC_IDENTIFY, nsid);
	sqe.cdw10 = cns;
	return leap_nvmf_qpair_submit(qp, &sqe, &iov, 1, cb, arg);
}

int leap_nvmf_admin_set_num_queues(struct leap_nvmf_qpair *qp, uint16_t nr, leap_nvmf_cb cb,
				   void *arg)
{
	struct nvme_sqe sqe;

	if (nr == 0)
		return -EINVAL;
	sqe_init(&sqe, NVME_OPC_SET_FEATURES, 0);
	sqe.cdw10 = NVME_FEAT_NUMBER_OF_QUEUES;
	/* NSQR [15:0] and NCQR [31:16], both 0's based. */
	sqe.cdw11 = (uint32_t)(nr - 1) | (uint32_t)(nr - 1) << 16;
	return leap_nvmf_qpair_submit(qp, &sqe, NULL, 0, cb, arg);
}

int leap_nvmf_admin_keep_alive(struct leap_nvmf_qpair *qp, leap_nvmf_cb cb, void *arg)
{
	struct nvme_sqe sqe;

	sqe_init(&sqe, NVME_OPC_KEEP_ALIVE, 0);
	return leap_nvmf_qpair_submit(qp, &sqe, NULL, 0, cb, arg);
}

int leap_nvmf_admin_get_log_page(struct leap_nvmf_qpair *qp, uint8_t lid, uint32_t nsid,
				 uint64_t offset, void *buf, uint32_t len, leap_nvmf_cb cb,
				 void *arg)
{
	struct iovec iov = { buf, len };
	struct nvme_sqe sqe;
	uint32_t numd;

	if (!buf || len < 4 || (len & 3) || (offset & 3))
		return -EINVAL;
	numd = len / 4 - 1; /* 0's based dword count */
	sqe_init(&sqe, NVME_OPC_GET_LOG_PAGE, nsid);
	sqe.cdw10 = lid | (numd & 0xffffu) << 16;
	sqe.cdw11 = numd >> 16;
	sqe.cdw12 = (uint32_t)offset;
	sqe.cdw13 = (uint32_t)(offset >> 32);
	return leap_nvmf_qpair_submit(qp, &sqe, &iov, 1, cb, arg);
}

int leap_nvmf_qpair_disconnect(struct leap_nvmf_qpair *qp, leap_nvmf_cb cb, void *arg)
{
	struct nvmf_disconnect_cmd cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVME_OPC_FABRIC;
	cmd.fctype = NVMF_FCTYPE_DISCONNECT;
	return leap_nvmf_qpair_submit(qp, (const struct nvme_sqe *)&cmd, NULL, 0, cb, arg);
}

const char *leap_nvmf_status_str(uint16_t status)
{
	unsigned int sct = NVME_STATUS_SCT(status), sc = NVME_STATUS_SC(status);

	if (sct == NVME_SCT_GENERIC) {
		switch (sc) {
		case NVME_SC_SUCCESS:
			return "success";
		case NVME_SC_INVALID_OPCODE:
			return "invalid opcode";
		case NVME_SC_INVALID_FIELD:
			return "invalid field";
		case NVME_SC_DATA_TRANSFER_ERROR:
			return "data transfer error";
		case NVME_SC_INTERNAL_DEVICE_ERROR:
			return "internal error";
		case NVME_SC_ABORTED_SQ_DELETION:
			return "aborted, queue deleted";
		case NVME_SC_INVALID_NAMESPACE_OR_FORMAT:
			return "invalid namespace";
		case NVME_SC_COMMAND_SEQUENCE_ERROR:
			return "command sequence error";
		case NVME_SC_DATA_SGL_LENGTH_INVALID:
			return "SGL length invalid";
		case NVME_SC_TRANSIENT_TRANSPORT_ERROR:
			return "transient transport error";
		case NVME_SC_LBA_OUT_OF_RANGE:
			return "LBA out of range";
		default:
			return "generic error";
		}
	}
	if (sct == NVME_SCT_COMMAND_SPECIFIC) {
		switch (sc) {
		case NVMF_SC_CONNECT_INCOMPATIBLE_FORMAT:
			return "incompatible format";
		case NVMF_SC_CONNECT_CTRL_BUSY:
			return "controller busy";
		case NVMF_SC_CONNECT_INVALID_PARAM:
			return "invalid parameters";
		case NVMF_SC_CONNECT_RESTART_DISCOVERY:
			return "restart discovery";
		case NVMF_SC_CONNECT_INVALID_HOST:
			return "invalid host";
		case NVMF_SC_AUTH_REQUIRED:
			return "authentication required";
		default:
			return "command specific error";
		}
	}
	if (sct == NVME_SCT_PATH && sc == NVME_SC_HOST_PATH_ERROR)
		return "host path error (connection lost)";
	return sct == NVME_SCT_MEDIA ? "media error" : "error";
}
