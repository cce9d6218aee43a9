// The engine's snapshots are serialised the same way on the thread pool
// (Store::cb_snapshot_fill), while the loop applies on: the last test does
// that with a real thread.
//
// StateWriter (core/store/state_writer.h), the cursor GET /v1/snapshot
// streams from: its pieces, whatever the budget, concatenate to exactly
// StateMachine::serialize()'s bytes; each piece holds whole items; and a
// held version keeps producing the same bytes while the state machine
// moves on (copy-on-write), which is what lets the daemon stream a snapshot
// while writes continue.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "store/state_machine.h"
#include "store/state_writer.h"
#include "util/sha256.h"

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

Command at(uint64_t leader_ms, Body body, std::string idempotency_key = "") {
    Command c{{}, std::move(body)};
    c.meta.leader_ms = leader_ms;
    if (!idempotency_key.empty()) {
        c.meta.idempotency_key = std::move(idempotency_key);
        c.meta.fingerprint = "fp";
    }
    return c;
}

// KV entries (one of 600 bytes), idempotency records, a service with a TTL
// check and a token: every section of the payload.
void fill(StateMachine& sm) {
    uint64_t i = 1;
    sm.apply(i++, at(1000, KvSet{"a", std::string("\0\xff", 2), 7, std::nullopt}));
    sm.apply(i++, at(1000, KvSet{"b/c", std::string(600, 'v'), 0, std::nullopt}));
    for (int k = 0; k < 20; k++) sm.apply(i++, at(1000, KvSet{"k/" + std::to_string(k), "x", 0, std::nullopt}));
    sm.apply(i++, at(1000, KvSet{"d", "1", 0, std::nullopt}, "token:x\n1"));
    sm.apply(i++, at(1000, KvSet{"e", "2", 0, uint64_t{99}}, "token:x\n2"));  // a failed CAS, remembered
    ServiceRegister r;
    r.id = "web-1";
    r.name = "web";
    r.address = "10.0.0.1";
    r.port = 8080;
    r.checks.push_back({"check:web-1", "Web", "", 5000, CheckStatus::Passing});
    sm.apply(i++, at(1000, r));
    TokenCreate t;
    t.accessor = "accessor-1";
    t.secret_hash = rampart::util::sha256_hex("secret");
    t.role = TokenRole::Admin;
    sm.apply(i++, at(1000, t));
}

std::vector<std::string> pieces(const State& s, size_t budget) {
    StateWriter w(s);
    std::vector<std::string> out;
    std::string piece;
    while (w.next(piece, budget)) {
        assert_true(!piece.empty());
        out.push_back(piece);
        piece.clear();
    }
    // Done stays done, and appends nothing.
    assert_false(w.next(piece, budget));
    assert_true(piece.empty());
    return out;
}

std::string joined(const std::vector<std::string>& parts) {
    std::string all;
    for (const auto& p : parts) all += p;
    return all;
}

void test_pieces_concatenate_to_serialize(void**) {
    StateMachine sm;
    fill(sm);
    Version v = sm.version();
    const std::string whole = StateMachine::serialize(*v);
    for (size_t budget : {size_t{1}, size_t{7}, size_t{64}, size_t{700}, size_t{4096}, SIZE_MAX}) {
        std::vector<std::string> parts = pieces(*v, budget);
        assert_true(joined(parts) == whole);
        if (budget == SIZE_MAX) assert_int_equal(parts.size(), 1);
    }
    // A budget of one byte: one item per piece. The head, each entry, the
    // record count, each record, then the catalog and tokens together.
    std::vector<std::string> parts = pieces(*v, 1);
    assert_int_equal(parts.size(), 1 + v->kv.size() + 1 + v->dedup.size() + 1);
    assert_int_equal(v->dedup.size(), 2);
    // The 600-byte value is one piece even with a small budget: items are
    // never split.
    bool whole_value = false;
    for (const auto& p : pieces(*v, 64))
        whole_value = whole_value || p.find(std::string(600, 'v')) != std::string::npos;
    assert_true(whole_value);
    // And the bytes restore.
    StateMachine copy;
    std::string error;
    assert_true(copy.restore(v->applied, joined(parts), &error));
    assert_int_equal(copy.version()->kv.size(), v->kv.size());
}

void test_empty_state(void**) {
    StateMachine sm;
    Version v = sm.version();
    std::vector<std::string> parts = pieces(*v, 1);
    assert_int_equal(parts.size(), 3);  // head, record count, catalog and tokens
    assert_true(joined(parts) == StateMachine::serialize(*v));
}

void test_held_version_is_stable_while_writes_go_on(void**) {
    StateMachine sm;
    fill(sm);
    Version v = sm.version();
    const std::string before = StateMachine::serialize(*v);
    StateWriter w(*v);
    std::string streamed;
    uint64_t index = v->applied + 1;
    while (w.next(streamed, 16)) {
        // Between pieces the state machine changes, deletes and adds keys.
        sm.apply(index, at(2000, KvSet{"k/" + std::to_string(index % 20), "changed", 0, std::nullopt}));
        sm.apply(index + 1, at(2000, KvDelete{"b/c", false, std::nullopt}));
        sm.apply(index + 2, at(2000, KvSet{"new/" + std::to_string(index), "n", 0, std::nullopt}));
        index += 3;
    }
    assert_true(streamed == before);
    assert_false(StateMachine::serialize(*sm.version()) == before);
}

// The k-th write of a deterministic mix: sets over 5000 keys, deletes, and
// CAS failures, so the versions differ in every way.
Command write_number(uint64_t k) {
    std::string key = "w/" + std::to_string(k % 5000);
    if (k % 7 == 0) return at(3000, KvDelete{key, false, std::nullopt});
    if (k % 11 == 0) return at(3000, KvSet{key, "cas", 0, uint64_t{1}});
    return at(3000, KvSet{key, std::string(40 + k % 50, static_cast<char>('a' + k % 26)), k, std::nullopt});
}

// Store::cb_snapshot pins a Version on the loop and cb_snapshot_fill
// serialises it on a thread-pool thread while the loop applies on. The
// bytes must be exactly the state at the pinned index: equal to a state
// machine that applied only the writes up to it, and restorable.
void test_pinned_version_serialised_on_another_thread(void**) {
    StateMachine sm;
    uint64_t index = 1;
    for (; index <= 20000; index++) sm.apply(index, write_number(index));
    Version pinned = sm.version();
    const uint64_t pinned_index = pinned->applied;

    std::atomic<uint64_t> applied{index};
    std::atomic<bool> done{false};
    std::string bytes;
    std::thread filler([&] {
        while (applied.load() < pinned_index + 200) std::this_thread::yield();  // the state has moved on
        bytes = StateMachine::serialize(*pinned);
        pinned.reset();  // as cb_snapshot_fill does: the last reference may go here
        done = true;
    });
    // Apply on until the filler is done and at least 400 writes are past
    // the pin (the filler starts after 200 of them).
    for (; !done.load() || index <= pinned_index + 400; index++) {
        sm.apply(index, write_number(index));
        applied = index;
    }
    filler.join();

    StateMachine reference;
    for (uint64_t k = 1; k <= pinned_index; k++) reference.apply(k, write_number(k));
    assert_true(bytes == StateMachine::serialize(*reference.version()));
    StateMachine restored;
    std::string error;
    assert_true(restored.restore(pinned_index, bytes, &error));
    assert_true(StateMachine::serialize(*restored.version()) == bytes);
    assert_false(StateMachine::serialize(*sm.version()) == bytes);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pieces_concatenate_to_serialize),
        cmocka_unit_test(test_empty_state),
        cmocka_unit_test(test_held_version_is_stable_while_writes_go_on),
        cmocka_unit_test(test_pinned_version_serialised_on_another_thread),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
