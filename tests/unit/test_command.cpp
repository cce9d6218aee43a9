// The replicated command codec (core/store/command.*): every type round
// trips, every truncation and every hostile length is refused with an
// error (never UB), random bytes never crash the decoder.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "store/command.h"

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

Meta meta(int i) {
    Meta m;
    if (i % 2) m.idempotency_key = "client-a:key-" + std::to_string(i);
    if (i % 3) m.fingerprint = std::string(32, static_cast<char>(0x40 + i));
    m.leader_ms = 1700000000000ull + static_cast<uint64_t>(i);
    return m;
}

// One or more samples of every type, including empty and binary fields and
// varints of every width.
std::vector<Command> samples() {
    std::vector<Command> v;
    v.push_back({meta(0), Noop{}});
    v.push_back({meta(1), KvSet{"a/b", "value", 0, std::nullopt}});
    v.push_back({meta(2), KvSet{"k", std::string("\0\xff\x01", 3), 0xffffffffffffffffull, 0}});
    v.push_back({meta(3), KvSet{std::string(Limits::kKey, 'k'), std::string(Limits::kValue, 'v'), 42, 1234567}});
    v.push_back({meta(4), KvDelete{"dir/", true, std::nullopt}});
    v.push_back({meta(5), KvDelete{"x", false, 0}});
    Txn txn;
    for (uint8_t verb = 1; verb <= 9; verb++)
        txn.ops.push_back({static_cast<TxnVerb>(verb), "key" + std::to_string(verb), "val", verb, 1ull << (verb * 6)});
    v.push_back({meta(6), txn});
    Txn full;
    full.ops.assign(Limits::kTxnOps, TxnOp{TxnVerb::Set, "k", "v", 0, 0});
    v.push_back({meta(7), full});
    v.push_back({meta(8), Txn{}});
    v.push_back({meta(9), ServiceRegister{"web-1",
                                          "web",
                                          "10.0.0.1",
                                          8080,
                                          {"a", "b", ""},
                                          {{"env", "prod"}, {"", ""}},
                                          {{"check-web-1", "Web", "notes", 30000, CheckStatus::Passing},
                                           {"c2", "", "", 0xffffffffffull, CheckStatus::Critical}}}});
    v.push_back({meta(10), ServiceRegister{"s", "s", "", 0, {}, {}, {}}});
    v.push_back({meta(11), ServiceDeregister{"web-1"}});
    v.push_back({meta(12), CheckPass{"check-web-1", "all good", CheckStatus::Passing}});
    v.push_back({meta(16), CheckPass{"c", "", CheckStatus::Critical}});
    v.push_back({meta(13), TokenCreate{"acc-1", std::string(32, '\x11'), TokenRole::Admin, "", "ops", 0}});
    v.push_back({meta(14), TokenCreate{"acc-2", "h", TokenRole::Read, "app/", "", 99}});
    v.push_back({meta(15), TokenRevoke{"acc-1"}});
    return v;
}

void test_round_trip_every_type(void**) {
    bool seen[9] = {};
    for (const Command& c : samples()) {
        assert_string_equal(check_limits(c).c_str(), "");
        std::string bytes = encode(c);
        assert_int_equal(static_cast<uint8_t>(bytes[0]), static_cast<uint8_t>(c.type()));
        assert_int_equal(static_cast<uint8_t>(bytes[1]), record_version(c.type()));
        DecodeResult r = decode(bytes);
        if (!r.ok()) fail_msg("%s: %s", type_name(c.type()), r.error.c_str());
        assert_true(*r.command == c);
        // Deterministic: the same command is the same bytes.
        assert_true(encode(*r.command) == bytes);
        seen[static_cast<size_t>(c.type())] = true;
    }
    for (bool s : seen) assert_true(s);
}

void test_truncated_at_every_offset(void**) {
    for (const Command& c : samples()) {
        std::string bytes = encode(c);
        // The huge samples are checked at every offset of their head and
        // tail; the middle of a 512 KiB value is one long memcpy.
        for (size_t n = 0; n < bytes.size(); n++) {
            if (bytes.size() > 4096 && n > 2048 && n < bytes.size() - 2048) n = bytes.size() - 2048;
            DecodeResult r = decode(std::string_view(bytes).substr(0, n));
            if (r.ok()) fail_msg("%s truncated to %zu of %zu decoded", type_name(c.type()), n, bytes.size());
            assert_false(r.error.empty());
        }
    }
}

void test_trailing_bytes(void**) {
    for (const Command& c : samples()) {
        std::string bytes = encode(c) + '\0';
        DecodeResult r = decode(bytes);
        assert_false(r.ok());
        assert_non_null(strstr(r.error.c_str(), "trailing"));
    }
}

void test_unknown_type_and_version(void**) {
    std::string bytes = encode({meta(1), KvSet{"k", "v", 0, std::nullopt}});
    std::string t = bytes;
    t[0] = 10;
    DecodeResult r = decode(t);
    assert_false(r.ok());
    assert_non_null(strstr(r.error.c_str(), "unknown command type"));
    t[0] = 9;  // a batch: decode_batch() reads it, decode() never does
    r = decode(t);
    assert_false(r.ok());
    assert_non_null(strstr(r.error.c_str(), "do not nest"));
    t[0] = static_cast<char>(0xff);
    assert_false(decode(t).ok());
    std::string ver = bytes;
    ver[1] = 2;
    r = decode(ver);
    assert_false(r.ok());
    assert_non_null(strstr(r.error.c_str(), "unknown version"));
    ver[1] = 0;
    assert_false(decode(ver).ok());
}

// Build a record by hand: header, meta, then the caller's body bytes.
std::string hand(uint8_t type, const std::string& body) {
    std::string s;
    s += static_cast<char>(type);
    s += static_cast<char>(kCommandVersion);
    s += '\0';  // leader_ms 0
    s += '\0';  // no idempotency key
    s += '\0';  // no fingerprint
    return s + body;
}

std::string varint(uint64_t v) {
    std::string s;
    while (v >= 0x80) {
        s += static_cast<char>(v | 0x80);
        v >>= 7;
    }
    s += static_cast<char>(v);
    return s;
}

void test_hostile_lengths(void**) {
    // Key one byte over the limit (the bytes are even present).
    std::string key(Limits::kKey + 1, 'k');
    DecodeResult r = decode(hand(1, varint(key.size()) + key + "\0\0\0"));
    assert_false(r.ok());
    assert_non_null(strstr(r.error.c_str(), "over the limit"));
    // Value over the limit, claimed without the bytes.
    r = decode(hand(1, "\x01k" + varint(Limits::kValue + 1)));
    assert_false(r.ok());
    assert_non_null(strstr(r.error.c_str(), "over the limit"));
    // A length of 2^64-1: refused, nothing allocated.
    r = decode(hand(1, varint(~0ull)));
    assert_false(r.ok());
    // A length that fits the limit but not the input.
    r = decode(hand(1, "\x01k" + varint(1000) + "short"));
    assert_false(r.ok());
    assert_non_null(strstr(r.error.c_str(), "truncated"));
    // 65 txn ops, and a count far past the input.
    r = decode(hand(3, varint(Limits::kTxnOps + 1)));
    assert_false(r.ok());
    assert_non_null(strstr(r.error.c_str(), "over the limit"));
    r = decode(hand(3, varint(64)));
    assert_false(r.ok());
    // Unknown txn verb, bad bool, bad role, port out of range.
    assert_false(decode(hand(3, "\x01\x0a\x01k\0\0\0")).ok());
    assert_false(decode(hand(2, "\x01k\x02\0")).ok());
    assert_false(decode(hand(7,
                             "\x01"
                             "a\x01h\x04\0\0\0"))
                     .ok());
    assert_false(decode(hand(4, "\x01s\x01s\0" + varint(65536) + "\0\0\0")).ok());
    // Varints: 11 bytes, a 10th byte with high bits, a non-shortest form.
    assert_false(decode(hand(1, std::string(10, '\x80') + '\x01')).ok());
    assert_false(decode(hand(1, std::string(9, '\xff') + '\x02')).ok());
    r = decode(std::string("\x00\x01\x80\x00\x00\x00", 6));
    assert_false(r.ok());
    assert_non_null(strstr(r.error.c_str(), "shortest"));
    // Over-long meta fields.
    Command c{meta(0), Noop{}};
    c.meta.fingerprint.assign(Limits::kFingerprint + 1, 'f');
    assert_false(check_limits(c).empty());
    assert_false(decode(encode(c)).ok());
    c.meta.fingerprint.clear();
    c.meta.idempotency_key.assign(Limits::kIdempotencyKey + 1, 'i');
    assert_false(check_limits(c).empty());
    assert_false(decode(encode(c)).ok());
    // check_limits agrees with the decoder on bodies too.
    Command big{meta(0), KvSet{"k", std::string(Limits::kValue + 1, 'v'), 0, std::nullopt}};
    assert_false(check_limits(big).empty());
    assert_false(decode(encode(big)).ok());
    Txn t;
    t.ops.assign(Limits::kTxnOps + 1, TxnOp{});
    Command many{meta(0), t};
    assert_false(check_limits(many).empty());
    assert_false(decode(encode(many)).ok());
    assert_false(decode("").ok());
}

// Version 1 of service_register (one optional TTL check, no meta) and of
// check_pass (no status) still decode; version 3 does not.
void test_older_record_versions(void**) {
    auto v1 = [](uint8_t type, const std::string& body) {
        std::string s = hand(type, body);
        s[1] = 1;
        return s;
    };
    auto b = [](const std::string& text) { return varint(text.size()) + text; };
    DecodeResult r =
        decode(v1(4, b("id") + b("web") + b("") + varint(80) + varint(1) + b("t") + b("chk") + varint(15000)));
    if (!r.ok()) fail_msg("%s", r.error.c_str());
    ServiceRegister want{"id", "web", "", 80, {"t"}, {}, {{"chk", "", "", 15000, CheckStatus::Critical}}};
    assert_true(std::get<ServiceRegister>(r.command->body) == want);
    r = decode(v1(4, b("s") + b("s") + b("") + varint(0) + varint(0) + b("") + varint(0)));
    assert_true(r.ok());
    assert_true(std::get<ServiceRegister>(r.command->body).checks.empty());
    r = decode(v1(6, b("c") + b("ok")));
    assert_true(r.ok());
    assert_true(std::get<CheckPass>(r.command->body) == (CheckPass{"c", "ok", CheckStatus::Passing}));
    std::string v3 = encode({meta(0), CheckPass{"c", "ok", CheckStatus::Warning}});
    v3[1] = 3;
    assert_false(decode(v3).ok());
    // An unknown check status, and more checks than the limit.
    std::string bad = encode({meta(0), CheckPass{"c", "ok", CheckStatus::Warning}});
    bad.back() = 3;
    r = decode(bad);
    assert_false(r.ok());
    assert_non_null(strstr(r.error.c_str(), "check status"));
    ServiceRegister many{"s", "s", "", 0, {}, {}, {}};
    many.checks.assign(Limits::kChecks + 1, CheckDef{"c", "", "", 1, CheckStatus::Passing});
    Command c{meta(0), many};
    assert_false(check_limits(c).empty());
    assert_false(decode(encode(c)).ok());
}

// Bounded random fuzz: mutations of valid records and pure noise. Whatever
// decodes must re-encode to the same bytes (one encoding per command).
void test_random_fuzz(void**) {
    std::mt19937_64 rng(0x5eed);
    std::vector<std::string> seeds;
    for (const Command& c : samples()) {
        std::string b = encode(c);
        if (b.size() < 4096) seeds.push_back(b);
    }
    int decoded = 0;
    for (int iter = 0; iter < 200000; iter++) {
        std::string s;
        if (iter % 4 == 0) {
            s.resize(rng() % 64);
            for (char& ch : s) ch = static_cast<char>(rng());
        } else {
            s = seeds[rng() % seeds.size()];
            int flips = 1 + static_cast<int>(rng() % 4);
            for (int k = 0; k < flips && !s.empty(); k++) {
                size_t at = rng() % s.size();
                switch (rng() % 4) {
                    case 0: s[at] = static_cast<char>(rng()); break;
                    case 1: s.erase(at, 1); break;
                    case 2: s.insert(at, 1, static_cast<char>(rng())); break;
                    default: s[at] = static_cast<char>(s[at] ^ (1 << (rng() % 8))); break;
                }
            }
        }
        DecodeResult r = decode(s);
        if (r.ok()) {
            decoded++;
            // An older record version decodes; it re-encodes as the current one.
            if (static_cast<uint8_t>(s[1]) == record_version(r.command->type())) {
                assert_true(encode(*r.command) == s);
            } else {
                assert_true(*decode(encode(*r.command)).command == *r.command);
            }
            assert_string_equal(check_limits(*r.command).c_str(), "");
        } else {
            assert_false(r.error.empty());
        }
    }
    // Some mutations land on valid records; most do not.
    assert_true(decoded > 0 && decoded < 200000);
}

// ---- Batch records (group commit) ------------------------------------------

std::vector<std::string> encoded_samples() {
    std::vector<std::string> out;
    for (const Command& c : samples()) out.push_back(encode(c));
    return out;
}

std::vector<std::string_view> views(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

void test_batch_round_trip(void**) {
    std::vector<std::string> records = encoded_samples();
    std::string batch = encode_batch(views(records));
    assert_true(is_batch_record(batch));
    assert_false(is_batch_record(records[0]));
    assert_int_equal(static_cast<uint8_t>(batch[1]), kBatchVersion);
    std::vector<std::string_view> back;
    std::string error;
    assert_true(decode_batch(batch, &back, &error));
    assert_int_equal(back.size(), records.size());
    for (size_t i = 0; i < back.size(); i++) assert_true(back[i] == records[i]);
    // One record is a valid batch too (the store never writes one).
    assert_true(decode_batch(encode_batch({records[1]}), &back, &error));
    assert_int_equal(back.size(), 1);
    assert_string_equal(type_name(CommandType::Batch), "batch");
    assert_int_equal(record_version(CommandType::Batch), 1);
}

void test_batch_truncated_trailing_and_version(void**) {
    std::vector<std::string> records = {encode(samples()[1]), encode(samples()[4])};
    std::string batch = encode_batch(views(records));
    std::vector<std::string_view> back;
    std::string error;
    for (size_t cut = 0; cut < batch.size(); cut++) {
        error.clear();
        assert_false(decode_batch(batch.substr(0, cut), &back, &error));
        assert_false(error.empty());
        assert_true(back.empty());
    }
    assert_false(decode_batch(batch + '\0', &back, &error));
    assert_non_null(strstr(error.c_str(), "trailing"));
    std::string v2 = batch;
    v2[1] = 2;
    assert_false(decode_batch(v2, &back, &error));
    assert_non_null(strstr(error.c_str(), "unknown version"));
    assert_false(decode_batch(records[0], &back, &error));  // a plain command
    assert_non_null(strstr(error.c_str(), "not a batch"));
}

void test_batch_hostile_counts_and_records(void**) {
    std::vector<std::string_view> back;
    std::string error;
    std::string head = "\x09\x01";
    std::string cmd = encode(samples()[1]);
    assert_false(decode_batch(head + varint(0), &back, &error));  // empty
    assert_non_null(strstr(error.c_str(), "empty batch"));
    assert_false(decode_batch(head + varint(kBatchCommands + 1) + std::string(4096, 'x'), &back, &error));
    assert_non_null(strstr(error.c_str(), "over the limit"));
    assert_false(decode_batch(head + varint(200) + varint(cmd.size()) + cmd, &back, &error));  // count > bytes
    assert_false(decode_batch(head + varint(1) + varint(1ull << 62) + cmd, &back, &error));    // huge length
    assert_non_null(strstr(error.c_str(), "truncated"));
    assert_false(decode_batch(head + varint(1) + "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", &back, &error));
    assert_false(decode_batch(head + varint(1) + varint(2) + "\x01\x01", &back, &error));  // too short
    assert_non_null(strstr(error.c_str(), "too short"));
    // Nested batches, restores and membership records are refused.
    std::string inner = encode_batch({cmd});
    assert_false(decode_batch(encode_batch({cmd, inner}), &back, &error));
    assert_non_null(strstr(error.c_str(), "record 1 has type 9"));
    for (uint8_t type : {uint8_t{64}, uint8_t{65}, uint8_t{80}, uint8_t{0xff}}) {
        std::string other = cmd;
        other[0] = static_cast<char>(type);
        assert_false(decode_batch(encode_batch({other}), &back, &error));
        assert_true(back.empty());
    }
}

void test_batch_random_fuzz(void**) {
    std::mt19937_64 rng(0xba7c);
    std::vector<std::string> records;
    for (const Command& c : samples()) {
        std::string b = encode(c);
        if (b.size() < 1024) records.push_back(b);
    }
    std::string seed = encode_batch(views(records));
    std::vector<std::string_view> back;
    std::string error;
    int decoded = 0;
    for (int iter = 0; iter < 50000; iter++) {
        std::string s = seed;
        int flips = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < flips && !s.empty(); k++) {
            size_t at = rng() % s.size();
            switch (rng() % 3) {
                case 0: s[at] = static_cast<char>(rng()); break;
                case 1: s.erase(at, 1); break;
                default: s.insert(at, 1, static_cast<char>(rng())); break;
            }
        }
        if (!decode_batch(s, &back, &error)) {
            assert_false(error.empty());
            continue;
        }
        decoded++;
        // What decodes re-encodes to the same bytes, and every view lies
        // inside the input.
        assert_true(encode_batch(back) == s);
        for (std::string_view v : back) {
            assert_true(v.data() >= s.data() && v.data() + v.size() <= s.data() + s.size());
            (void)decode(v);  // each sub-record is decoded on its own: must not crash
        }
    }
    assert_true(decoded > 0);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_truncated_at_every_offset),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_unknown_type_and_version),
        cmocka_unit_test(test_hostile_lengths),
        cmocka_unit_test(test_older_record_versions),
        cmocka_unit_test(test_random_fuzz),
        cmocka_unit_test(test_batch_round_trip),
        cmocka_unit_test(test_batch_truncated_trailing_and_version),
        cmocka_unit_test(test_batch_hostile_counts_and_records),
        cmocka_unit_test(test_batch_random_fuzz),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
