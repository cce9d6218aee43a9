/* CRC32C: see crc32c.h. The table version was the only one until issue 5's
 * figures: 5 ms per 1.7 MB snapshot, against ~0.25 ms with the SSE4.2
 * instruction. */
#include "util/crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <arm_acle.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#endif

#define CRC32C_POLY 0x82f63b78u /* reflected Castagnoli polynomial */

/* ---- Slicing-by-8 table: eight bytes per step, loaded byte by byte so it
 * is right on either endianness. */

static uint32_t table[8][256];
static rampart_crc32c_fn chosen;
static const char* chosen_name;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++) table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

static uint32_t table_crc(uint32_t crc, const uint8_t* p, size_t len) {
    crc = ~crc;
    while (len >= 8) {
        crc ^= (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        crc = table[7][crc & 0xff] ^ table[6][(crc >> 8) & 0xff] ^ table[5][(crc >> 16) & 0xff] ^ table[4][crc >> 24] ^
              table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^ table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--) crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- Instructions. Each is compiled for its extension with a target
 * attribute only, so the binary still runs on CPUs without it: the choice
 * is made at run time. */

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t sse42_crc(uint32_t crc, const void* data, size_t len) {
    const uint8_t* p = data;
    uint64_t c = ~crc;
    for (; len > 0 && ((uintptr_t)p & 7) != 0; len--) c = _mm_crc32_u8((uint32_t)c, *p++);
    for (; len >= 8; len -= 8, p += 8) {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        c = _mm_crc32_u64(c, v);
    }
    for (; len > 0; len--) c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

static rampart_crc32c_fn detect(const char** name) {
    __builtin_cpu_init();
    *name = "sse4.2";
    return __builtin_cpu_supports("sse4.2") ? sse42_crc : NULL;
}
#elif defined(__aarch64__) && defined(__linux__)
#if defined(__clang__)
#define CRC_TARGET "crc"
#else
#define CRC_TARGET "+crc"
#endif
__attribute__((target(CRC_TARGET))) static uint32_t armv8_crc(uint32_t crc, const void* data, size_t len) {
    const uint8_t* p = data;
    crc = ~crc;
    for (; len > 0 && ((uintptr_t)p & 7) != 0; len--) crc = __crc32cb(crc, *p++);
    for (; len >= 8; len -= 8, p += 8) {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        crc = __crc32cd(crc, v);
    }
    for (; len > 0; len--) crc = __crc32cb(crc, *p++);
    return ~crc;
}

static rampart_crc32c_fn detect(const char** name) {
    *name = "armv8-crc";
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0 ? armv8_crc : NULL;
}
#else
static rampart_crc32c_fn detect(const char** name) {
    *name = "table";
    return NULL;
}
#endif

static uint32_t table_entry(uint32_t crc, const void* data, size_t len) { return table_crc(crc, data, len); }

static void init_once(void) {
    init_table();
    chosen = detect(&chosen_name);
    if (chosen == NULL) {
        chosen = table_entry;
        chosen_name = "table";
    }
}

uint32_t rampart_crc32c(uint32_t crc, const void* data, size_t len) {
    pthread_once(&once, init_once);
    return chosen(crc, data, len);
}

uint32_t rampart_crc32c_table(uint32_t crc, const void* data, size_t len) {
    pthread_once(&once, init_once);
    return table_crc(crc, data, len);
}

rampart_crc32c_fn rampart_crc32c_hardware(void) {
    pthread_once(&once, init_once);
    return chosen != table_entry ? chosen : NULL;
}

const char* rampart_crc32c_impl(void) {
    pthread_once(&once, init_once);
    return chosen_name;
}
