/* CRC32C (core/util/crc32c.c): the instruction path this CPU has (SSE4.2 on
 * x86-64, ARMv8 CRC on aarch64) and the portable table give the same values:
 * the RFC 3720 (iSCSI) test vectors, then random buffers at every alignment
 * and every length 0..1024, whole and chained in pieces. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/crc32c.h"

/* cmocka last, after the headers it needs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

struct vector {
    const char* name;
    uint8_t data[48];
    size_t len;
    uint32_t crc;
};

static void fill_vectors(struct vector v[5]) {
    memset(v, 0, 5 * sizeof *v);
    /* RFC 3720, B.4 "CRC Examples". */
    v[0] = (struct vector){.name = "32 zero bytes", .len = 32, .crc = 0x8a9136aau};
    v[1] = (struct vector){.name = "32 0xff bytes", .len = 32, .crc = 0x62a8ab43u};
    memset(v[1].data, 0xff, 32);
    v[2] = (struct vector){.name = "32 incrementing bytes", .len = 32, .crc = 0x46dd794eu};
    v[3] = (struct vector){.name = "32 decrementing bytes", .len = 32, .crc = 0x113fdb5cu};
    for (int i = 0; i < 32; i++) {
        v[2].data[i] = (uint8_t)i;
        v[3].data[i] = (uint8_t)(31 - i);
    }
    static const uint8_t read_pdu[48] = {0x01, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    0, 0, 0, 0,
                                         0x14, 0,    0, 0, 0, 0, 4, 0, 0, 0, 0, 0x14, 0, 0, 0, 0x18,
                                         0x28, 0,    0, 0, 0, 0, 0, 0, 2, 0, 0, 0,    0, 0, 0, 0};
    v[4] = (struct vector){.name = "iSCSI read PDU", .len = 48, .crc = 0xd9963a56u};
    memcpy(v[4].data, read_pdu, 48);
}

static void test_rfc3720_vectors(void** state) {
    (void)state;
    struct vector v[5];
    fill_vectors(v);
    rampart_crc32c_fn hw = rampart_crc32c_hardware();
    for (int i = 0; i < 5; i++) {
        printf("# %s\n", v[i].name);
        assert_int_equal(rampart_crc32c_table(0, v[i].data, v[i].len), v[i].crc);
        assert_int_equal(rampart_crc32c(0, v[i].data, v[i].len), v[i].crc);
        if (hw != NULL) assert_int_equal(hw(0, v[i].data, v[i].len), v[i].crc);
    }
    assert_int_equal(rampart_crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(rampart_crc32c(0, NULL, 0), 0);
}

/* The build machines are x86-64 with SSE4.2: there the instruction must be
 * the one in use, or the figures in docs/benchmarks.md do not hold. */
static void test_instruction_chosen_when_present(void** state) {
    (void)state;
    printf("# implementation: %s\n", rampart_crc32c_impl());
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) {
        assert_non_null(rampart_crc32c_hardware());
        assert_string_equal(rampart_crc32c_impl(), "sse4.2");
    }
#endif
    if (rampart_crc32c_hardware() == NULL) assert_string_equal(rampart_crc32c_impl(), "table");
}

static void test_random_buffers_every_alignment_and_length(void** state) {
    (void)state;
    enum { MAX_LEN = 1024, ALIGN = 16 };
    uint8_t* buf = malloc(MAX_LEN + ALIGN);
    assert_non_null(buf);
    srand(20261124);
    for (size_t i = 0; i < MAX_LEN + ALIGN; i++) buf[i] = (uint8_t)rand();
    rampart_crc32c_fn hw = rampart_crc32c_hardware();
    for (size_t off = 0; off < ALIGN; off++) {
        for (size_t len = 0; len <= MAX_LEN; len++) {
            uint32_t want = rampart_crc32c_table(0, buf + off, len);
            assert_int_equal(rampart_crc32c(0, buf + off, len), want);
            if (hw != NULL) assert_int_equal(hw(0, buf + off, len), want);
            /* Chained in two pieces, split anywhere: the same value. */
            size_t cut = len / 3;
            assert_int_equal(rampart_crc32c(rampart_crc32c(0, buf + off, cut), buf + off + cut, len - cut), want);
            assert_int_equal(rampart_crc32c_table(rampart_crc32c_table(0, buf + off, cut), buf + off + cut, len - cut),
                             want);
        }
    }
    free(buf);
}

/* The table version against the bit-at-a-time definition, independently of
 * any table: the reference both others are checked against is right. */
static uint32_t bitwise(uint32_t crc, const uint8_t* p, size_t len) {
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
    }
    return ~crc;
}

static void test_table_matches_the_definition(void** state) {
    (void)state;
    uint8_t buf[777];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof buf; len += 37)
        assert_int_equal(rampart_crc32c_table(0, buf, len), bitwise(0, buf, len));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3720_vectors),
        cmocka_unit_test(test_instruction_chosen_when_present),
        cmocka_unit_test(test_random_buffers_every_alignment_and_length),
        cmocka_unit_test(test_table_matches_the_definition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
