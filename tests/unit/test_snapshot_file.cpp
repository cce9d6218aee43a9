// Operator snapshot files (core/store/snapshot_file.*): round trip, every
// kind of damaged or hostile file refused with a reason, inspection, and the
// restore record applied by the state machine (re-based index, refusals that
// change nothing). Engine snapshot recovery on start
// (core/store/snapshot_recovery.*): a corrupt newest pair is set aside, old
// pairs pruned to the retention count.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "cluster/raft_adapter.h"
#include "store/snapshot_file.h"
#include "store/snapshot_recovery.h"
#include "store/state_machine.h"

// cmocka last: its fail() macro clashes with the C++ library.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using namespace rampart::store;

namespace {

Command set(std::string key, std::string value) { return {{}, KvSet{std::move(key), std::move(value), 0, {}}}; }

// A state with three keys written at indexes 2..4.
std::string sample_file(uint64_t* kv_index = nullptr) {
    StateMachine sm;
    sm.apply(2, set("a", "1"));
    sm.apply(3, set("b/c", "two"));
    sm.apply(4, set("d", std::string(1000, 'x')));
    if (kv_index) *kv_index = sm.index();
    return encode_snapshot_file(*sm.version(), 4, 7);
}

std::string refusal(std::string_view file) {
    SnapshotFileInfo info;
    std::string_view payload;
    std::string error;
    if (decode_snapshot_file(file, &info, &payload, &error)) return "accepted";
    return error;
}

bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

void test_round_trip(void**) {
    std::string file = sample_file();
    SnapshotFileInfo info;
    std::string_view payload;
    std::string error;
    assert_true(decode_snapshot_file(file, &info, &payload, &error));
    assert_int_equal(info.format, 1);
    assert_int_equal(info.index, 4);
    assert_int_equal(info.term, 7);
    assert_int_equal(info.kv_index, 4);
    assert_int_equal(info.keys, 3);
    assert_int_equal(info.payload_bytes, file.size() - kSnapshotFileHeader);
    assert_int_equal(info.payload_crc, rampart_raft_crc32c(0, payload.data(), payload.size()));
    SnapshotInspection r = inspect_snapshot_file(file);
    assert_true(r.ok());
    assert_int_equal(r.file_bytes, file.size());
}

void test_truncated_at_every_length_is_refused(void**) {
    std::string file = sample_file();
    for (size_t n = 0; n < file.size(); n++) {
        std::string e = refusal(std::string_view(file).substr(0, n));
        if (e == "accepted") fail_msg("a file cut to %zu bytes was accepted", n);
        if (n >= kSnapshotFileHeader && !has(e, "truncated")) fail_msg("%zu bytes: %s", n, e.c_str());
    }
    assert_true(has(refusal(file + "x"), "unexpected bytes after"));
}

void test_every_flipped_byte_is_refused(void**) {
    std::string file = sample_file();
    for (size_t i = 0; i < file.size(); i++) {
        std::string bad = file;
        bad[i] = static_cast<char>(bad[i] ^ 0x20);
        if (refusal(bad) == "accepted") fail_msg("a flipped byte at %zu was accepted", i);
        assert_false(inspect_snapshot_file(bad).ok());
    }
}

void test_hostile_headers(void**) {
    std::string file = sample_file();
    assert_true(has(refusal("RMPSTATE" + std::string(100, '\0')), "bad magic"));
    assert_true(has(refusal(std::string(10, 'R')), "shorter than the header"));
    // A header that claims 2^60 payload bytes, with valid checksums: refused
    // as truncated (nothing is allocated for the claim) or over a limit.
    SnapshotFileInfo huge;
    huge.keys = 1;
    std::string liar = encode_snapshot_file("", huge);
    for (int i = 0; i < 8; i++) liar[48 + i] = static_cast<char>(i == 7 ? 0x10 : 0);
    uint32_t hcrc = rampart_raft_crc32c(0, liar.data(), 60);
    for (int i = 0; i < 4; i++) liar[60 + i] = static_cast<char>(hcrc >> (8 * i));
    assert_true(has(refusal(liar), "truncated"));
    SnapshotFileInfo info;
    std::string_view payload;
    std::string error;
    assert_false(decode_snapshot_file(liar, &info, &payload, &error, 1024));
    assert_true(has(error, "over the limit"));
    // A future format, with its header checksum right.
    std::string future = file;
    future[8] = 2;
    hcrc = rampart_raft_crc32c(0, future.data(), 60);
    for (int i = 0; i < 4; i++) future[60 + i] = static_cast<char>(hcrc >> (8 * i));
    assert_true(has(refusal(future), "format 2 is not supported"));
}

// Checksums right, payload garbage: decode passes, inspection refuses.
void test_checksummed_garbage_payload(void**) {
    SnapshotFileInfo info;
    info.keys = 1;
    std::string file = encode_snapshot_file("RMPSTATE\x01garbage", info);
    SnapshotInspection r = inspect_snapshot_file(file);
    assert_true(r.header_ok && r.checksum_ok);
    assert_false(r.payload_ok);
    // The key count in the header must match the payload's.
    StateMachine sm;
    sm.apply(2, set("a", "1"));
    info.keys = 5;
    r = inspect_snapshot_file(encode_snapshot_file(StateMachine::serialize(*sm.version()), info));
    assert_false(r.ok());
    assert_true(has(r.error, "5 keys"));
}

void test_restore_record_rebases_the_index(void**) {
    std::string file = sample_file();
    StateMachine sm;
    for (uint64_t i = 1; i <= 40; i++) sm.apply(i, set("old/" + std::to_string(i), "v"));
    assert_int_equal(sm.index(), 40);
    Result r = sm.apply_bytes(41, encode_restore_record(file));
    assert_int_equal(static_cast<int>(r.outcome), static_cast<int>(Outcome::Ok));
    assert_int_equal(sm.index(), 41);  // past every index a reader held
    assert_int_equal(sm.applied(), 41);
    assert_int_equal(sm.version()->kv.size(), 3);
    assert_true(sm.get("old/1") == nullptr);
    assert_int_equal(sm.get("b/c")->modify_index(), 3);  // older than the restore: kept
    assert_true(sm.get("b/c")->value() == "two");
    // From a cluster further along: indexes beyond the restore's are clamped.
    StateMachine far;
    far.apply(900, set("x", "1"));
    StateMachine sm2;
    sm2.apply(5, set("y", "1"));
    assert_int_equal(
        static_cast<int>(
            sm2.apply_bytes(6, encode_restore_record(encode_snapshot_file(*far.version(), 900, 3))).outcome),
        static_cast<int>(Outcome::Ok));
    assert_int_equal(sm2.index(), 6);
    assert_int_equal(sm2.get("x")->modify_index(), 6);
    assert_int_equal(sm2.get("x")->create_index(), 6);
    // Writes after a restore carry on from its index.
    sm2.apply(7, set("x", "2"));
    assert_int_equal(sm2.get("x")->modify_index(), 7);
}

void test_bad_restore_record_changes_nothing(void**) {
    StateMachine sm;
    sm.apply(1, set("keep", "me"));
    std::string file = sample_file();
    std::string bad = file;
    bad.back() = static_cast<char>(bad.back() ^ 1);
    for (const std::string& record :
         {encode_restore_record(bad), encode_restore_record(file.substr(0, 70)), std::string("\x40\x09", 2) + file}) {
        Result r = sm.apply_bytes(2, record);
        assert_int_equal(static_cast<int>(r.outcome), static_cast<int>(Outcome::Invalid));
        assert_true(sm.get("keep") != nullptr);
        assert_int_equal(sm.version()->kv.size(), 1);
    }
    // Over the store cap: StoreFull, nothing changed.
    StateLimits small;
    small.max_bytes = 100;
    StateMachine tiny(small);
    tiny.apply(1, set("keep", "me"));
    Result r = tiny.apply_bytes(2, encode_restore_record(file));
    assert_int_equal(static_cast<int>(r.outcome), static_cast<int>(Outcome::StoreFull));
    assert_true(tiny.get("keep") != nullptr);
}

// ---- engine snapshots on start ----------------------------------------------

std::string make_dir() {
    char tmpl[] = "/tmp/rampart-snaprec-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return tmpl;
}

void write(const std::string& path, std::string_view data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// What the adapter hands the engine: its 32-byte envelope and the payload.
std::string engine_bytes(std::string_view payload, uint64_t index) {
    std::string h(32, '\0');
    memcpy(h.data(), "RMPSNAP\x01", 8);
    auto put = [&h](size_t at, uint64_t v, int n) {
        for (int i = 0; i < n; i++) h[at + i] = static_cast<char>(v >> (8 * i));
    };
    put(8, 1, 4);
    put(12, rampart_raft_crc32c(0, payload.data(), payload.size()), 4);
    put(16, payload.size(), 8);
    put(24, index, 8);
    return h + std::string(payload);
}

std::string snap_name(uint64_t term, uint64_t index) {
    char buf[80];
    snprintf(buf, sizeof buf, "snapshot-%llu-%llu-%llu", static_cast<unsigned long long>(term),
             static_cast<unsigned long long>(index), static_cast<unsigned long long>(1700000000000ull + index));
    return buf;
}

void add_snapshot(const std::string& dir, uint64_t index, bool corrupt = false) {
    std::string data = engine_bytes("payload-" + std::to_string(index), index);
    if (corrupt) data.back() = static_cast<char>(data.back() ^ 1);
    write(dir + "/" + snap_name(2, index), data);
    write(dir + "/" + snap_name(2, index) + ".meta", "meta");
}

void test_corrupt_newest_is_set_aside(void**) {
    std::string dir = make_dir();
    add_snapshot(dir, 100);
    add_snapshot(dir, 200, /*corrupt=*/true);
    RecoveryReport r = recover_engine_snapshots(dir, 2);
    assert_true(r.error.empty());
    assert_int_equal(r.found.size(), 2);
    assert_int_equal(r.found[0].index, 200);
    assert_int_equal(r.reasons.size(), 1);
    assert_int_equal(r.moved_aside.size(), 2);
    assert_true(exists(dir + "/" + snap_name(2, 200) + ".corrupt"));
    assert_true(exists(dir + "/" + snap_name(2, 200) + ".meta.corrupt"));
    assert_false(exists(dir + "/" + snap_name(2, 200)));
    assert_true(exists(dir + "/" + snap_name(2, 100)));
    // Set aside once: a second start sees only the good one.
    r = recover_engine_snapshots(dir, 2);
    assert_int_equal(r.found.size(), 1);
    assert_true(r.reasons.empty());
    // A missing or empty .meta is as bad.
    add_snapshot(dir, 300);
    write(dir + "/" + snap_name(2, 300) + ".meta", "");
    r = recover_engine_snapshots(dir, 2);
    assert_int_equal(r.reasons.size(), 1);
    assert_true(has(r.reasons[0], "empty"));
    assert_true(exists(dir + "/" + snap_name(2, 100)));
    assert_int_equal(system(("rm -rf " + dir).c_str()), 0);
}

void test_retention_prunes_old_pairs(void**) {
    std::string dir = make_dir();
    for (uint64_t i = 1; i <= 5; i++) add_snapshot(dir, i * 10);
    RecoveryReport r = recover_engine_snapshots(dir, 2);
    assert_int_equal(r.pruned.size(), 6);  // 3 pairs
    assert_true(exists(dir + "/" + snap_name(2, 50)));
    assert_true(exists(dir + "/" + snap_name(2, 40) + ".meta"));
    assert_false(exists(dir + "/" + snap_name(2, 30)));
    assert_false(exists(dir + "/" + snap_name(2, 10) + ".meta"));
    // Other files are never touched.
    write(dir + "/0000000000000001-0000000000000009", "segment");
    write(dir + "/snapshot-1-2-3.tmp", "x");
    r = recover_engine_snapshots(dir, 1);
    assert_int_equal(r.pruned.size(), 2);
    assert_true(exists(dir + "/0000000000000001-0000000000000009"));
    assert_true(exists(dir + "/snapshot-1-2-3.tmp"));
    assert_int_equal(system(("rm -rf " + dir).c_str()), 0);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_truncated_at_every_length_is_refused),
        cmocka_unit_test(test_every_flipped_byte_is_refused),
        cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_checksummed_garbage_payload),
        cmocka_unit_test(test_restore_record_rebases_the_index),
        cmocka_unit_test(test_bad_restore_record_changes_nothing),
        cmocka_unit_test(test_corrupt_newest_is_set_aside),
        cmocka_unit_test(test_retention_prunes_old_pairs),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
