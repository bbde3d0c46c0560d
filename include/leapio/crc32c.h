/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78): the NVMe/TCP header
 * and data digest, and the checksum iSCSI and ext4 use. Digests run over
 * every byte a queue sends or receives when digests are negotiated, so the
 * implementation uses the SSE4.2 crc32 instruction (three interleaved
 * streams for long buffers) when the CPU has it and slicing-by-8 tables
 * otherwise; the choice is made once, at load time.
 */
#ifndef LEAPIO_CRC32C_H
#define LEAPIO_CRC32C_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/*
 * Continue a CRC32C over `len` bytes of `buf`. Convention as zlib's crc32():
 * pass 0 to start, and the previous return value to continue, so
 * leap_crc32c(leap_crc32c(0, a, n), b, m) is the CRC of a followed by b. The
 * ~0 initial value and final inversion that CRC32C (and NVMe/TCP) specify are
 * applied inside; the result is the finished digest, which NVMe/TCP stores
 * little-endian. leap_crc32c(0, "123456789", 9) == 0xE3069283.
 */
uint32_t leap_crc32c(uint32_t crc, const void *buf, size_t len);

/* The same over the bytes of an iovec array, in order. */
uint32_t leap_crc32c_iov(uint32_t crc, const struct iovec *iov, int iovcnt);

/* True when leap_crc32c() uses the SSE4.2 instruction (for reports and benchmarks). */
int leap_crc32c_hw_available(void);

#endif /* LEAPIO_CRC32C_H */
