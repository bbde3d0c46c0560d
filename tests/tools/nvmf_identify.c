// SPDX-License-Identifier: BSD-3-Clause
/*
 * nvmf_identify: connect to an NVMe/TCP controller with the host library
 * and print what a host checks about it, as KEY=VALUE lines for
 * tests/e2e/tcp.bats: Identify Controller fields (SUBNQN, SN, MN,
 * CNTRLTYPE, SGLS, IOCCSZ, IORCSZ, MSDBD, MAXCMD, MDTS, CNTLID, NN, KAS),
 * CAP and VS read with explicit Property Get commands, and per active
 * namespace its size, LBA size, NGUID, EUI-64 and the UUID from the
 * Namespace Identification Descriptor list.
 *
 *   nvmf_identify 'traddr:127.0.0.1 trsvcid:4420 subnqn:NQN [hostnqn:H] [hdgst:1 ddgst:1]'
 *
 * Exit 0 on success, 1 on failure (stderr says why), 2 on bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "leapio/nvmf_host.h"

#define TIMEOUT_MS 10000

static void hex(const char *key, const uint8_t *p, size_t n)
{
	printf("%s=", key);
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	printf("\n");
}

/* Trailing spaces off an Identify string. */
static void str(const char *key, const char *s, size_t n)
{
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\0'))
		n--;
	printf("%s=%.*s\n", key, (int)n, s);
}

static int prop_get(struct leap_nvmf_ctrl *ctrl, uint32_t ofst, bool size8, uint64_t *val)
{
	struct nvmf_property_get_cmd p = { 0 };
	struct nvme_cqe cqe;
	int rc;

	p.opc = NVME_OPC_FABRIC;
	p.fctype = NVMF_FCTYPE_PROPERTY_GET;
	p.attrib = size8 ? NVMF_PROP_SIZE_8 : NVMF_PROP_SIZE_4;
	p.ofst = ofst;
	rc = leap_nvmf_host_admin_sync(ctrl, (struct nvme_sqe *)&p, NULL, 0, &cqe, TIMEOUT_MS);
	*val = cqe.dw0 | ((uint64_t)cqe.dw1 << 32);
	return rc;
}

static int identify(struct leap_nvmf_ctrl *ctrl, uint8_t cns, uint32_t nsid, void *buf)
{
	struct nvme_sqe s = { 0 };

	s.opc = NVME_OPC_IDENTIFY;
	s.nsid = nsid;
	s.cdw10 = cns;
	return leap_nvmf_host_admin_sync(ctrl, &s, buf, NVME_IDENTIFY_SIZE, NULL, TIMEOUT_MS);
}

static void namespaces(struct leap_nvmf_ctrl *ctrl)
{
	uint32_t list[NVME_IDENTIFY_SIZE / 4];
	uint8_t buf[NVME_IDENTIFY_SIZE];

	if (identify(ctrl, NVME_CNS_ACTIVE_NS_LIST, 0, list))
		return;
	for (uint32_t i = 0; i < NVME_IDENTIFY_SIZE / 4 && list[i]; i++) {
		const struct nvme_id_ns *ns = (const void *)buf;
		char key[32];

		if (identify(ctrl, NVME_CNS_NS, list[i], buf))
			continue;
		printf("NS%u_NSZE=%llu\nNS%u_LBADS=%u\n", list[i], (unsigned long long)ns->nsze,
		       list[i], ns->lbaf[ns->flbas & 0xf].lbads);
		snprintf(key, sizeof(key), "NS%u_NGUID", list[i]);
		hex(key, ns->nguid, sizeof(ns->nguid));
		snprintf(key, sizeof(key), "NS%u_EUI64", list[i]);
		hex(key, ns->eui64, sizeof(ns->eui64));
		if (identify(ctrl, NVME_CNS_NS_DESC_LIST, list[i], buf))
			continue;
		for (size_t off = 0; off + sizeof(struct nvme_ns_id_desc) < sizeof(buf);) {
			struct nvme_ns_id_desc d; /* descriptors follow each other at any offset */

			memcpy(&d, buf + off, sizeof(d));
			if (!d.nidl || d.nidl > sizeof(buf) - off - sizeof(d))
				break;
			if (d.nidt == NVME_NIDT_UUID) {
				snprintf(key, sizeof(key), "NS%u_UUID", list[i]);
				hex(key, buf + off + sizeof(d), d.nidl);
			}
			off += sizeof(d) + d.nidl;
		}
	}
}

int main(int argc, char **argv)
{
	const struct nvme_id_ctrl *id;
	struct leap_nvmf_trid trid;
	struct leap_nvmf_ctrl *ctrl;
	uint64_t cap = 0, vs = 0;
	char err[256];
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: nvmf_identify 'traddr:A trsvcid:P subnqn:NQN ...'\n");
		return 2;
	}
	if (leap_nvmf_trid_parse(&trid, argv[1], err, sizeof(err))) {
		fprintf(stderr, "nvmf_identify: %s\n", err);
		return 2;
	}
	rc = leap_nvmf_host_connect(&trid, 1, 8, TIMEOUT_MS, &ctrl, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "nvmf_identify: connect: %s (%s)\n", err, strerror(-rc));
		return 1;
	}
	id = leap_nvmf_ctrl_id(ctrl);
	str("SUBNQN", id->subnqn, strnlen(id->subnqn, sizeof(id->subnqn)));
	str("SN", id->sn, sizeof(id->sn));
	str("MN", id->mn, sizeof(id->mn));
	str("FR", id->fr, sizeof(id->fr));
	printf("CNTRLTYPE=%u\nSGLS=0x%08x\nIOCCSZ=%u\nIORCSZ=%u\nMSDBD=%u\nICDOFF=%u\n"
	       "MAXCMD=%u\nMDTS=%u\nCNTLID=%u\nNN=%u\nKAS=%u\n",
	       id->cntrltype, id->sgls, id->ioccsz, id->iorcsz, id->msdbd, id->icdoff, id->maxcmd,
	       id->mdts, id->cntlid, id->nn, id->kas);
	if (prop_get(ctrl, NVMF_PROP_CAP, true, &cap) || prop_get(ctrl, NVMF_PROP_VS, false, &vs)) {
		fprintf(stderr, "nvmf_identify: Property Get failed\n");
		leap_nvmf_ctrl_destroy(ctrl);
		return 1;
	}
	printf("PROP_CAP=0x%016llx\nPROP_VS=0x%08llx\n", (unsigned long long)cap,
	       (unsigned long long)vs);
	namespaces(ctrl);
	leap_nvmf_host_disconnect(ctrl, 2000);
	return 0;
}
