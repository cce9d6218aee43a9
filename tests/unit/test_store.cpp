// The store over a real one-node Raft engine on a libuv loop
// (core/store/store.*): writes complete with the state machine's result,
// concurrent reads share barriers (Default joins the barrier in flight,
// Strong waits for the next), blocking reads wake on change, time out and
// are answered at close, and a restart recovers the data.
#include <stdlib.h>
#include <uv.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "cluster/raft_adapter.h"
#include "store/store.h"

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

// Data on a real disk, not tmpfs (fsync matters).
std::string make_dir() {
    char tmpl[] = "/var/tmp/rampart-store-test-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return tmpl;
}

struct Fixture {
    uv_loop_t loop{};
    uv_timer_t tick{};
    std::string dir = make_dir();

    Fixture() {
        uv_loop_init(&loop);
        uv_timer_init(&loop, &tick);
        // Keeps UV_RUN_ONCE from blocking forever while we poll.
        uv_timer_start(
            &tick, [](uv_timer_t*) {}, 5, 5);
    }

    bool run_until(const std::function<bool()>& pred, int ms = 5000) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (!pred()) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            uv_run(&loop, UV_RUN_ONCE);
        }
        return true;
    }

    std::unique_ptr<Store> open() {
        StoreSettings s;
        s.data_dir = dir;
        s.address = "127.0.0.1:7701";
        auto store = std::make_unique<Store>(&loop, s);
        std::string error;
        if (!store->start(&error)) fail_msg("start: %s", error.c_str());
        assert_true(run_until([&] { return store->has_leader(); }));
        return store;
    }

    void close(std::unique_ptr<Store>& store) {
        bool closed = false;
        store->close([&] { closed = true; });
        assert_true(run_until([&] { return closed; }));
        store.reset();
    }

    ~Fixture() {
        uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&loop), 0);  // nothing left open
        std::filesystem::remove_all(dir);
    }
};

struct WriteOutcome {
    bool done = false;
    int status = -1;
    uint64_t index = 0;
    Outcome outcome = Outcome::Invalid;
};

WriteOutcome write(Fixture& f, Store& s, const std::string& key, const std::string& value) {
    WriteOutcome w;
    s.write(Command{{}, KvSet{key, value, 0, std::nullopt}},
            [&](int status, uint64_t index, std::unique_ptr<Result> r) {
                w.done = true;
                w.status = status;
                w.index = index;
                if (r) w.outcome = r->outcome;
            });
    assert_true(f.run_until([&] { return w.done; }));
    return w;
}

void test_write_and_read(void**) {
    Fixture f;
    auto s = f.open();
    WriteOutcome w = write(f, *s, "k", "v");
    assert_int_equal(w.status, 0);
    assert_int_equal(w.outcome, Outcome::Ok);
    assert_int_equal(s->state().get("k")->modify_index(), w.index);
    int status = -1;
    s->read(Consistency::Stale, [&](int st) { status = st; });
    assert_int_equal(status, 0);  // at once
    f.close(s);
}

// Barriers are log entries: the index gap between two writes counts them.
void test_reads_share_barriers(void**) {
    Fixture f;
    auto s = f.open();
    uint64_t before = write(f, *s, "a", "1").index;
    std::vector<int> order;
    for (int i = 0; i < 10; i++) s->read(Consistency::Default, [&](int st) { order.push_back(st == 0 ? 1 : -1); });
    assert_true(f.run_until([&] { return order.size() == 10; }));
    uint64_t after = write(f, *s, "a", "2").index;
    assert_int_equal(after - before - 1, 1);  // ten reads, one barrier

    // Default reads join the barrier in flight; Strong ones wait for the
    // next, which all of them share.
    order.clear();
    for (int i = 0; i < 5; i++) s->read(Consistency::Default, [&](int) { order.push_back(1); });
    for (int i = 0; i < 5; i++) s->read(Consistency::Strong, [&](int) { order.push_back(2); });
    for (int i = 0; i < 5; i++) s->read(Consistency::Default, [&](int) { order.push_back(1); });
    assert_true(f.run_until([&] { return order.size() == 15; }));
    for (size_t i = 0; i < 15; i++) assert_int_equal(order[i], i < 10 ? 1 : 2);
    uint64_t last = write(f, *s, "a", "3").index;
    assert_int_equal(last - after - 1, 2);
    f.close(s);
}

void test_blocking_reads(void**) {
    Fixture f;
    auto s = f.open();
    uint64_t index = write(f, *s, "w", "1").index;
    assert_int_equal(s->state().index(), index);
    bool woke = false;
    s->watch(index, 10000, [&] { woke = true; });
    f.run_until([] { return false; }, 50);
    assert_false(woke);
    write(f, *s, "w", "2");
    assert_true(f.run_until([&] { return woke; }, 1000));
    // An index already passed answers at once; a wait runs out.
    bool at_once = false;
    s->watch(index, 10000, [&] { at_once = true; });
    assert_true(at_once);
    bool timed_out = false;
    auto t0 = std::chrono::steady_clock::now();
    s->watch(s->state().index(), 100, [&] { timed_out = true; });
    assert_true(f.run_until([&] { return timed_out; }, 2000));
    assert_true(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(90));
    // Close answers parked reads.
    bool released = false;
    s->watch(s->state().index(), 60000, [&] { released = true; });
    f.close(s);
    assert_true(released);
}

void test_restart_recovers(void**) {
    Fixture f;
    auto s = f.open();
    for (int i = 0; i < 50; i++) write(f, *s, "r/" + std::to_string(i), "v" + std::to_string(i));
    uint64_t index = s->state().index();
    f.close(s);
    s = f.open();
    assert_int_equal(s->state().version()->kv.size(), 50);
    assert_true(s->state().get("r/7")->value() == "v7");
    assert_int_equal(s->state().index(), index);
    f.close(s);
}

void test_write_after_close_is_refused(void**) {
    Fixture f;
    auto s = f.open();
    bool closed = false;
    s->close([&] { closed = true; });
    int status = -1;
    s->write(Command{{}, KvSet{"k", "v", 0, std::nullopt}},
             [&](int st, uint64_t, std::unique_ptr<Result>) { status = st; });
    assert_int_equal(status, RAMPART_RAFT_SHUTDOWN);
    int read_status = -1;
    s->read(Consistency::Default, [&](int st) { read_status = st; });
    assert_int_equal(read_status, RAMPART_RAFT_SHUTDOWN);
    assert_true(f.run_until([&] { return closed; }));
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_and_read),
        cmocka_unit_test(test_reads_share_barriers),
        cmocka_unit_test(test_blocking_reads),
        cmocka_unit_test(test_restart_recovers),
        cmocka_unit_test(test_write_after_close_is_refused),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
