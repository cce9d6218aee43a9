/* CRC32C (Castagnoli), the checksum of Raft snapshots and snapshot files.
 *
 * One function for every caller (the C Raft adapter and the C++ store), so
 * it is C. rampart_crc32c() picks, once, the fastest implementation the CPU
 * has: the SSE4.2 crc32 instruction on x86-64, the ARMv8 CRC32C instructions
 * on aarch64 (routers), a slicing-by-8 table otherwise. All give the same
 * value; the others are exposed so that tests can compare them.
 *
 * Chaining: crc = rampart_crc32c(crc, piece, len) over successive pieces,
 * starting from 0, equals one call over the concatenation.
 *
 * Thread-safe (the snapshot checksum runs on the libuv thread pool while the
 * loop checks others): the tables and the choice are set up under
 * pthread_once. */
#ifndef RAMPART_UTIL_CRC32C_H
#define RAMPART_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

uint32_t rampart_crc32c(uint32_t crc, const void* data, size_t len);

/* The portable table version, always available. */
uint32_t rampart_crc32c_table(uint32_t crc, const void* data, size_t len);

/* The instruction version if this CPU has one, else NULL. */
typedef uint32_t (*rampart_crc32c_fn)(uint32_t crc, const void* data, size_t len);
rampart_crc32c_fn rampart_crc32c_hardware(void);

/* "sse4.2", "armv8-crc" or "table": what rampart_crc32c() uses here. */
const char* rampart_crc32c_impl(void);

#ifdef __cplusplus
}
#endif

#endif /* RAMPART_UTIL_CRC32C_H */
