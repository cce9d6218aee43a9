// The disk-space watchdog (core/store/disk_watchdog.*): the decision logic
// (floor, hysteresis, when a leader hands over), then the watchdog driving a
// real one-node store: below the floor writes are refused with NO_SPACE and
// reads keep working, there is nobody to hand leadership to, and writes
// resume when the floor is back under the free space.
#include <stdlib.h>
#include <uv.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>

#include "cluster/raft_adapter.h"
#include "metrics/registry.h"
#include "store/disk_watchdog.h"
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
using Transition = DiskGuard::Transition;

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

void test_floor_off_is_never_low(void**) {
    DiskGuard g;
    for (uint64_t free_bytes : {uint64_t{0}, uint64_t{1}, kMiB}) {
        DiskGuard::Decision d = g.observe(free_bytes, 0, true, 0);
        assert_int_equal(d.transition, Transition::None);
        assert_false(d.transfer);
        assert_false(g.low());
    }
}

void test_hysteresis(void**) {
    const uint64_t floor = 64 * kMiB;
    assert_int_equal(DiskGuard::resume_level(floor), floor + 8 * kMiB);
    assert_int_equal(DiskGuard::resume_level(4 * kMiB), 5 * kMiB);  // at least 1 MiB of margin
    DiskGuard g;
    assert_int_equal(g.observe(floor, floor, false, 0).transition, Transition::None);  // at the floor: fine
    assert_int_equal(g.observe(floor - 1, floor, false, 0).transition, Transition::Low);
    assert_true(g.low());
    assert_int_equal(g.observe(floor - 1, floor, false, 0).transition, Transition::None);  // once per change
    // Back over the floor but not over the margin: still low (no flapping).
    assert_int_equal(g.observe(floor + kMiB, floor, false, 0).transition, Transition::None);
    assert_true(g.low());
    assert_int_equal(g.observe(DiskGuard::resume_level(floor), floor, false, 0).transition, Transition::Recovered);
    assert_false(g.low());
    // Turning the watchdog off (floor 0, e.g. by SIGHUP) ends the low state.
    assert_int_equal(g.observe(0, floor, false, 0).transition, Transition::Low);
    assert_int_equal(g.observe(0, 0, false, 0).transition, Transition::Recovered);
}

void test_leader_transfers_and_retries(void**) {
    const uint64_t floor = 8 * kMiB;
    DiskGuard g;
    assert_false(g.observe(floor * 2, floor, true, 0).transfer);  // plenty of space: keep leading
    DiskGuard::Decision d = g.observe(kMiB, floor, true, 1000);
    assert_int_equal(d.transition, Transition::Low);
    assert_true(d.transfer);
    // Not again while the transfer may still be running...
    assert_false(g.observe(kMiB, floor, true, 2000).transfer);
    assert_false(g.observe(kMiB, floor, true, 1000 + DiskGuard::kTransferRetryMs - 1).transfer);
    // ...but again once it should have finished and we still lead.
    assert_true(g.observe(kMiB, floor, true, 1000 + DiskGuard::kTransferRetryMs).transfer);
    // A follower has nothing to hand over; if it wins an election later it
    // hands over at once.
    assert_false(g.observe(kMiB, floor, false, 7000).transfer);
    assert_true(g.observe(kMiB, floor, true, 7001).transfer);
    // Recovered: no more transfers.
    d = g.observe(floor * 2, floor, true, 20000);
    assert_int_equal(d.transition, Transition::Recovered);
    assert_false(d.transfer);
}

// ---- the watchdog over a real store ---------------------------------------------

struct Fixture {
    uv_loop_t loop{};
    uv_timer_t tick{};
    std::string dir;

    Fixture() {
        char tmpl[] = "/var/tmp/rampart-disk-test-XXXXXX";  // a real disk, not tmpfs
        assert_non_null(mkdtemp(tmpl));
        dir = tmpl;
        uv_loop_init(&loop);
        uv_timer_init(&loop, &tick);
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

    ~Fixture() {
        uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&loop), 0);  // nothing left open
        std::filesystem::remove_all(dir);
    }
};

int write_status(Fixture& f, Store& s, const std::string& key) {
    int status = -1;
    bool done = false;
    s.write(Command{{}, KvSet{key, "v", 0, std::nullopt}}, [&](int st, uint64_t, std::unique_ptr<Result>) {
        status = st;
        done = true;
    });
    assert_true(f.run_until([&] { return done; }));
    return status;
}

void test_watchdog_refuses_and_resumes(void**) {
    Fixture f;
    StoreSettings settings;
    settings.data_dir = f.dir;
    settings.address = "127.0.0.1:7701";
    auto store = std::make_unique<Store>(&f.loop, settings);
    std::string error;
    if (!store->start(&error)) fail_msg("start: %s", error.c_str());
    assert_true(f.run_until([&] { return store->has_leader(); }));
    assert_int_equal(write_status(f, *store, "before"), 0);

    // A floor no disk can meet, then none: the watchdog sees both within a
    // few of its (shortened) intervals.
    int64_t floor = std::numeric_limits<int64_t>::max() / 2;
    rampart::metrics::Registry registry;
    DiskWatchdog dog(
        &f.loop, f.dir, [&] { return floor; }, *store, &registry, 20);
    dog.start();
    assert_true(f.run_until([&] { return dog.low(); }));
    assert_true(store->writes_refused());
    assert_true(dog.free_bytes() > 0);
    assert_int_equal(write_status(f, *store, "during"), RAMPART_RAFT_NO_SPACE);
    // Reads keep working, through a barrier too.
    int read_status = -1;
    store->read(Consistency::Strong, [&](int st) { read_status = st; });
    assert_true(f.run_until([&] { return read_status != -1; }));
    assert_int_equal(read_status, 0);
    assert_true(store->state().get("before") != nullptr);
    assert_true(store->state().get("during") == nullptr);
    // One node: nobody to hand over to, and it stays the leader.
    assert_int_equal(store->transfer_leadership(), RAMPART_RAFT_INVALID);
    assert_true(store->is_leader());
    assert_int_equal(registry.find("rampart_disk_writes_refused")->value({}), 1);
    assert_true(registry.find("rampart_disk_free_bytes")->value({}) > 0);
    assert_int_equal(registry.find("rampart_disk_low_transitions_total")->value({"low"}), 1);

    floor = 0;  // as a SIGHUP would
    assert_true(f.run_until([&] { return !dog.low(); }));
    assert_false(store->writes_refused());
    assert_int_equal(write_status(f, *store, "after"), 0);
    assert_int_equal(registry.find("rampart_disk_writes_refused")->value({}), 0);
    assert_int_equal(registry.find("rampart_disk_low_transitions_total")->value({"ok"}), 1);

    dog.close();
    bool closed = false;
    store->close([&] { closed = true; });
    assert_true(f.run_until([&] { return closed; }));
}

// Closing while a statfs runs on the thread pool: the handles outlive the
// watchdog and free themselves (valgrind/ASan would catch a use after free).
void test_close_during_check(void**) {
    Fixture f;
    StoreSettings settings;
    settings.data_dir = f.dir;
    settings.address = "127.0.0.1:7701";
    Store store(&f.loop, settings);
    {
        DiskWatchdog dog(
            &f.loop, f.dir, [] { return int64_t{1}; }, store, nullptr, 20);
        dog.start();  // the first check is in flight now
    }
    bool closed = false;
    store.close([&] { closed = true; });
    assert_true(f.run_until([&] { return closed; }));
    // The fixture's uv_loop_close() fails if the timer or the statfs
    // request were left behind.
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_floor_off_is_never_low),       cmocka_unit_test(test_hysteresis),
        cmocka_unit_test(test_leader_transfers_and_retries), cmocka_unit_test(test_watchdog_refuses_and_resumes),
        cmocka_unit_test(test_close_during_check),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
