// SPDX-License-Identifier: BSD-3-Clause
/*
 * The controller's register file (nvme/regs.c) through Property Get/Set:
 * reset values, sizes and read-only registers answered with Invalid Field,
 * CC.EN enabling through the transport's enable op, a reset (CC.EN 1 -> 0)
 * that clears CSTS.RDY only after in-flight I/O drained and the transport
 * dropped its queues, and a shutdown (CC.SHN) that reports "complete" only
 * after draining and a Flush reached every open namespace's backend.
 */
#include <errno.h>

#include "test_ctrl_helpers.h"

static struct leap_bdev_ops wrap_ops;
static int (*real_submit)(struct leap_bdev_channel *ch, struct leap_bdev_io *io);
static uint32_t n_flush, n_enable, n_disable, disable_busy;

static int wrap_submit(struct leap_bdev_channel *ch, struct leap_bdev_io *io)
{
	if (io->op == LEAP_BDEV_OP_FLUSH)
		n_flush++;
	return real_submit(ch, io);
}

static int ft_enable(void *t)
{
	n_enable++;
	return 0;
}

static int ft_disable(void *t)
{
	if (disable_busy) {
		disable_busy--;
		return -EBUSY;
	}
	n_disable++;
	return 0;
}

static struct leap_ctrl_transport_ops regs_ops;

static void regs_setup(void)
{
	setup();
	wrap_ops = *mbdev->ops;
	real_submit = mbdev->ops->submit;
	wrap_ops.submit = wrap_submit;
	mbdev->ops = &wrap_ops;
	n_flush = n_enable = n_disable = disable_busy = 0;
	regs_ops = ft_ops;
	regs_ops.enable = ft_enable;
	regs_ops.disable = ft_disable;
	leap_ctrl_transport_bind(ctrl, &regs_ops, &ft);
}

static uint64_t get(uint32_t ofst, uint32_t size)
{
	uint64_t v = ~0ull;

	T_ASSERT_EQ(leap_ctrl_prop_get(ctrl, ofst, size, &v), 0);
	return v;
}

static void set_cc(uint32_t cc)
{
	T_ASSERT_EQ(leap_ctrl_prop_set(ctrl, NVME_REG_CC, 4, cc), 0);
}

static void test_reset_values_and_bad_access(void)
{
	uint64_t v;
	uint16_t st;

	regs_setup();
	v = get(NVME_REG_CAP, 8);
	T_ASSERT_EQ(NVME_CAP_MQES(v), 255); /* max_qsize 256, 0's based */
	T_ASSERT((v & NVME_CAP_CSS_NVM) != 0);
	T_ASSERT_EQ(get(NVME_REG_VS, 4), NVME_VERSION(1, 4, 0));
	T_ASSERT_EQ(get(NVME_REG_CC, 4), 0);
	T_ASSERT_EQ(get(NVME_REG_CSTS, 4), 0);
	/* CAP is 8 bytes wide, CC 4: the other size is Invalid Field. */
	st = leap_ctrl_prop_get(ctrl, NVME_REG_CAP, 4, &v);
	T_ASSERT_EQ(SC_OF(st << 1), NVME_SC_INVALID_FIELD);
	st = leap_ctrl_prop_set(ctrl, NVME_REG_CC, 8, 1);
	T_ASSERT_EQ(SC_OF(st << 1), NVME_SC_INVALID_FIELD);
	/* Read-only and unknown registers. */
	st = leap_ctrl_prop_set(ctrl, NVME_REG_CSTS, 4, 1);
	T_ASSERT_EQ(SC_OF(st << 1), NVME_SC_INVALID_FIELD);
	st = leap_ctrl_prop_set(ctrl, NVME_REG_CAP, 8, 0);
	T_ASSERT_EQ(SC_OF(st << 1), NVME_SC_INVALID_FIELD);
	st = leap_ctrl_prop_get(ctrl, 0x1000, 4, &v);
	T_ASSERT_EQ(SC_OF(st << 1), NVME_SC_INVALID_FIELD);
	T_ASSERT_EQ(get(NVME_REG_CSTS, 4), 0); /* nothing changed */
}

static void test_enable_reaches_transport(void)
{
	regs_setup();
	set_cc(NVME_CC_EN);
	T_ASSERT_EQ(n_enable, 1);
	T_ASSERT_EQ(get(NVME_REG_CSTS, 4), NVME_CSTS_RDY);
	T_ASSERT(leap_ctrl_ready(ctrl));
	/* Writing EN = 1 again is not a new enable. */
	set_cc(NVME_CC_EN);
	T_ASSERT_EQ(n_enable, 1);
}

static void test_reset_waits_for_inflight(void)
{
	uint64_t buf;
	struct nvme_sqe s;

	regs_setup();
	set_cc(NVME_CC_EN);
	create_qpair(1);
	buf = talloc(1);
	s = rw_sqe(NVME_OPC_WRITE, 1, 0, 8, buf, 512);
	submit(1, &s); /* at the backend until the next poll */
	T_ASSERT(leap_ctrl_inflight(ctrl) > 0);
	set_cc(0);
	/* Not ready to report: a command is still at the backend. */
	T_ASSERT_EQ(get(NVME_REG_CSTS, 4) & NVME_CSTS_RDY, NVME_CSTS_RDY);
	T_ASSERT_EQ(n_disable, 0);
	disable_busy = 2; /* the transport still holds a slot twice */
	for (int i = 0; i < 100 && (get(NVME_REG_CSTS, 4) & NVME_CSTS_RDY); i++)
		leap_ctrl_poll(ctrl);
	T_ASSERT_EQ(get(NVME_REG_CSTS, 4), 0);
	T_ASSERT_EQ(n_disable, 1);
	T_ASSERT_EQ(leap_ctrl_inflight(ctrl), 0);
	/* The write itself completed successfully. */
	T_ASSERT_OK(&ft.cqes[(ft.ncqe - 1) % MAX_CQES]);
	/* And the host may enable again. */
	set_cc(NVME_CC_EN);
	T_ASSERT_EQ(get(NVME_REG_CSTS, 4), NVME_CSTS_RDY);
	T_ASSERT_EQ(n_enable, 2);
}

static void test_shutdown_drains_and_flushes(void)
{
	uint64_t buf;
	struct nvme_sqe s;
	uint32_t csts;

	regs_setup();
	set_cc(NVME_CC_EN);
	create_qpair(1);
	buf = talloc(1);
	fill(buf, 4096, 7);
	s = rw_sqe(NVME_OPC_WRITE, 1, 0, 8, buf, 512);
	submit(1, &s);
	set_cc(NVME_CC_EN | (1u << NVME_CC_SHN_SHIFT));
	csts = (uint32_t)get(NVME_REG_CSTS, 4);
	T_ASSERT_EQ(csts & NVME_CSTS_SHST_MASK, NVME_CSTS_SHST_OCCURRING);
	T_ASSERT_EQ(n_flush, 0); /* not before the write drained */
	for (int i = 0;
	     i < 100 && (get(NVME_REG_CSTS, 4) & NVME_CSTS_SHST_MASK) != NVME_CSTS_SHST_COMPLETE;
	     i++)
		leap_ctrl_poll(ctrl);
	T_ASSERT_EQ(get(NVME_REG_CSTS, 4) & NVME_CSTS_SHST_MASK, NVME_CSTS_SHST_COMPLETE);
	/* Every namespace was flushed: its channel opened when it was added. */
	T_ASSERT_EQ(n_flush, 2);
	T_ASSERT_EQ(leap_ctrl_inflight(ctrl), 0);
	/* The write's data is in the backend. */
	s = rw_sqe(NVME_OPC_READ, 1, 0, 8, talloc(1), 512);
	T_ASSERT_OK(run(1, &s));
	T_ASSERT_MEM_EQ(lp(s.prp1), lp(buf), 4096);
}

/* A command that reaches the controller after the drain began is drained and flushed too. */
static void test_shutdown_rechecks_late_commands(void)
{
	uint64_t buf;
	struct nvme_sqe s;
	uint32_t base, flushes;

	regs_setup();
	set_cc(NVME_CC_EN);
	create_qpair(1);
	buf = talloc(1);
	set_cc(NVME_CC_EN | (1u << NVME_CC_SHN_SHIFT)); /* nothing in flight: flushing at once */
	flushes = n_flush;
	T_ASSERT(flushes >= 1);
	base = ft.ncqe;
	s = rw_sqe(NVME_OPC_WRITE, 1, 0, 8, buf, 512);
	submit(1, &s); /* fetched late, while the flush is out */
	for (int i = 0;
	     i < 100 && (get(NVME_REG_CSTS, 4) & NVME_CSTS_SHST_MASK) != NVME_CSTS_SHST_COMPLETE;
	     i++)
		leap_ctrl_poll(ctrl);
	T_ASSERT_EQ(get(NVME_REG_CSTS, 4) & NVME_CSTS_SHST_MASK, NVME_CSTS_SHST_COMPLETE);
	T_ASSERT_EQ(ft.ncqe, base + 1); /* the late write completed first */
	T_ASSERT(n_flush > flushes);	/* and was flushed after it did */
}

static void test_fatal_is_sticky_until_reset(void)
{
	regs_setup();
	set_cc(NVME_CC_EN);
	leap_ctrl_fatal(ctrl);
	T_ASSERT(!leap_ctrl_ready(ctrl));
	T_ASSERT((get(NVME_REG_CSTS, 4) & NVME_CSTS_CFS) != 0);
	set_cc(0);
	for (int i = 0; i < 10 && get(NVME_REG_CSTS, 4); i++)
		leap_ctrl_poll(ctrl);
	T_ASSERT_EQ(get(NVME_REG_CSTS, 4), 0);
}

static void test_final_teardown(void)
{
	(void)io; /* the shared helpers' one-shot I/O is not needed here */
	teardown();
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_reset_values_and_bad_access),
		TAP_CASE(test_enable_reaches_transport),
		TAP_CASE(test_reset_waits_for_inflight),
		TAP_CASE(test_shutdown_drains_and_flushes),
		TAP_CASE(test_shutdown_rechecks_late_commands),
		TAP_CASE(test_fatal_is_sticky_until_reset),
		TAP_CASE(test_final_teardown),
	};

	return tap_run(cases, TAP_N(cases));
}
