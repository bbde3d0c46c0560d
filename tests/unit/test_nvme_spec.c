// SPDX-License-Identifier: BSD-3-Clause
/*
 * The NVMe spec header: sizes and offsets are already pinned at compile time
 * by _Static_assert; these cases check the helpers that pack fields, against
 * values worked out by hand from the spec's figures.
 */
#include "leapio/nvme_spec.h"
#include "tap.h"

static void test_cqe_status_packing(void)
{
	/* LBA Out of Range: SCT 0, SC 80h -> CQE status 0x100 | phase. */
	uint16_t st = NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_LBA_OUT_OF_RANGE);

	T_ASSERT_EQ(nvme_cqe_status(st, 1), 0x0101);
	T_ASSERT_EQ(nvme_cqe_status(st, 0), 0x0100);
	/* Invalid Queue Size: SCT 1, SC 02h -> (0x102 << 1) = 0x204. */
	st = NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_SIZE);
	T_ASSERT_EQ(nvme_cqe_status(st, 0), 0x0204);
	/* DNR survives at bit 15. */
	T_ASSERT_EQ(nvme_cqe_status(st | NVME_CQE_DNR, 1), 0x8205);
	T_ASSERT_EQ(NVME_STATUS_SCT(st), 1);
	T_ASSERT_EQ(NVME_STATUS_SC(st), 2);
}

static void test_success_is_zero(void)
{
	T_ASSERT_EQ(NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_SUCCESS), 0);
	T_ASSERT_EQ(nvme_cqe_status(0, 1), NVME_CQE_PHASE);
}

static void test_log_numd(void)
{
	/* NUMDL = 0x7f in CDW10[31:16], NUMDU 0: 128 dwords = 512 bytes (health log). */
	T_ASSERT_EQ(NVME_LOG_NUMD(0x007f0002u, 0), 128);
	/* NUMDU = 1: 0x10000 + NUMDL + 1. */
	T_ASSERT_EQ(NVME_LOG_NUMD(0x00000001u, 1), 0x10001);
}

static void test_arbitration_fields(void)
{
	uint32_t v = 0x04080c03; /* HPW 4, MPW 8, LPW 12, AB 3 */

	T_ASSERT_EQ(NVME_ARB_AB(v), 3);
	T_ASSERT_EQ(NVME_ARB_LPW(v), 0x0c);
	T_ASSERT_EQ(NVME_ARB_MPW(v), 0x08);
	T_ASSERT_EQ(NVME_ARB_HPW(v), 0x04);
}

static void test_sqe_field_roundtrip(void)
{
	struct nvme_sqe sqe;
	uint8_t raw[64];

	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_OPC_READ;
	sqe.cid = 0xbeef;
	sqe.nsid = 1;
	sqe.prp1 = 0x1122334455667788ull;
	sqe.cdw10 = 0xaabbccdd;
	sqe.cdw12 = 7;
	memcpy(raw, &sqe, sizeof(raw));
	/* Wire bytes as a device would read them. */
	T_ASSERT_EQ(raw[0], 0x02);
	T_ASSERT_EQ(raw[2], 0xef);
	T_ASSERT_EQ(raw[3], 0xbe);
	T_ASSERT_EQ(raw[24], 0x88);
	T_ASSERT_EQ(raw[31], 0x11);
	T_ASSERT_EQ(raw[40], 0xdd);
	T_ASSERT_EQ(raw[48], 7);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_cqe_status_packing),
		TAP_CASE(test_success_is_zero),
		TAP_CASE(test_log_numd),
		TAP_CASE(test_arbitration_fields),
		TAP_CASE(test_sqe_field_roundtrip),
	};
	return tap_run(cases, TAP_N(cases));
}
