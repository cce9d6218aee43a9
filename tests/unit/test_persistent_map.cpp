// The persistent ordered map (core/util/persistent_map.h): random operations
// against std::map as the oracle, versions unchanged by later writes,
// ordered prefix iteration, nodes freed when the last version drops, and
// writes after a pin copying O(log n) nodes, not the map.
#include <atomic>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "util/persistent_map.h"

// cmocka last: its fail() macro clashes with the C++ library.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using rampart::util::PersistentMap;

namespace {

// A value that counts live instances: proves nodes (and their values) are freed.
std::atomic<long> g_live{0};
struct Counted {
    int v = 0;
    explicit Counted(int x = 0) : v(x) { g_live++; }
    Counted(const Counted& o) : v(o.v) { g_live++; }
    Counted& operator=(const Counted& o) = default;
    ~Counted() { g_live--; }
};
using Map = PersistentMap<std::shared_ptr<const Counted>>;
using Oracle = std::map<std::string, int>;

std::string key_of(uint32_t n) { return "k/" + std::to_string(n % 50) + "/" + std::to_string(n); }

void assert_same(const Map& m, const Oracle& o) {
    assert_int_equal(m.size(), o.size());
    auto it = m.begin();
    for (const auto& [k, v] : o) {
        assert_true(it != m.end());
        assert_string_equal(it->first.c_str(), k.c_str());
        assert_int_equal(it->second->v, v);
        ++it;
    }
    assert_true(it == m.end());
}

void random_op(std::mt19937& rng, Map& m, Oracle& o) {
    std::string k = key_of(rng() % 400);
    switch (rng() % 4) {
        case 0:
        case 1: {
            int v = static_cast<int>(rng() % 1000);
            bool fresh = o.find(k) == o.end();
            assert_int_equal(m.insert_or_assign(k, std::make_shared<const Counted>(v)), fresh);
            o[k] = v;
            break;
        }
        case 2: assert_int_equal(m.erase(k), o.erase(k)); break;
        default: {
            auto a = m.lower_bound(k);
            auto b = o.lower_bound(k);
            assert_int_equal(a == m.end(), b == o.end());
            if (b != o.end()) assert_string_equal(a->first.c_str(), b->first.c_str());
            assert_int_equal(m.get(k) != nullptr, o.count(k));
            assert_int_equal(m.find(k) != m.end(), o.count(k));
        }
    }
}

void test_random_ops_match_std_map(void**) {
    std::mt19937 rng(42);
    {
        Map m;
        Oracle o;
        for (int i = 0; i < 20000; i++) {
            random_op(rng, m, o);
            if (i % 997 == 0) assert_same(m, o);
        }
        assert_same(m, o);
    }
    assert_int_equal(g_live.load(), 0);
}

// Take a copy every so often, keep writing, and check every copy still
// holds exactly what it held when taken.
void test_versions_stay_unchanged(void**) {
    std::mt19937 rng(7);
    {
        Map m;
        Oracle o;
        std::vector<std::pair<Map, Oracle>> versions;
        for (int i = 0; i < 6000; i++) {
            random_op(rng, m, o);
            if (i % 500 == 0) versions.emplace_back(m, o);
        }
        for (const auto& [vm, vo] : versions) assert_same(vm, vo);
        assert_same(m, o);
        // Dropping versions in any order leaves the live map intact.
        versions.erase(versions.begin() + 3);
        versions.resize(2);
        assert_same(m, o);
    }
    assert_int_equal(g_live.load(), 0);
}

void test_prefix_iteration_and_at(void**) {
    Map m;
    for (const char* k : {"a", "ab", "abc", "abd", "ac", "b", "ba"})
        m.insert_or_assign(k, std::make_shared<Counted>(1));
    std::vector<std::string> seen;
    for (auto it = m.lower_bound("ab"); it != m.end() && it->first.compare(0, 2, "ab") == 0; ++it) {
        seen.push_back(it->first);
    }
    assert_int_equal(seen.size(), 3);
    assert_string_equal(seen[0].c_str(), "ab");
    assert_string_equal(seen[2].c_str(), "abd");
    assert_true(m.lower_bound("bb") == m.end());
    assert_string_equal(m.lower_bound("").operator*().first.c_str(), "a");
    assert_int_equal(m.at("ba")->v, 1);
    bool threw = false;
    try {
        (void)m.at("zz");
    } catch (const std::out_of_range&) {
        threw = true;
    }
    assert_true(threw);
    // Post-increment and an iterator that outlives further writes to a copy.
    Map copy = m;
    auto it = copy.begin();
    m.erase("a");
    m.insert_or_assign("aa", std::make_shared<Counted>(2));
    assert_string_equal((it++)->first.c_str(), "a");
    assert_string_equal(it->first.c_str(), "ab");
}

void test_memory_freed_when_versions_drop(void**) {
    {
        Map m;
        for (int i = 0; i < 1000; i++) m.insert_or_assign(key_of(i), std::make_shared<const Counted>(i));
        auto pinned = std::make_unique<Map>(m);
        for (int i = 0; i < 1000; i++) m.insert_or_assign(key_of(i), std::make_shared<const Counted>(-i));
        // Both versions' values are alive while the pin is held...
        assert_int_equal(g_live.load(), 2000);
        pinned.reset();
        // ...and only the live map's once it drops.
        assert_int_equal(g_live.load(), 1000);
        for (int i = 0; i < 1000; i += 2) m.erase(key_of(i));
        assert_int_equal(g_live.load(), 500);
        m.clear();
        assert_int_equal(g_live.load(), 0);
        assert_true(m.empty());
    }
    assert_int_equal(g_live.load(), 0);
}

// Counting node copies through the values they copy: a write after a pin
// copies the path only (a few dozen nodes), not 10,000.
void test_write_after_pin_copies_a_path(void**) {
    PersistentMap<Counted> m;
    for (int i = 0; i < 10000; i++) m.insert_or_assign(key_of(i), Counted(i));
    long before = g_live.load();
    assert_int_equal(before, 10000);
    PersistentMap<Counted> pin = m;
    assert_int_equal(g_live.load(), before);  // a copy is one reference
    m.insert_or_assign(key_of(5), Counted(-5));
    long copied = g_live.load() - before;
    assert_true(copied > 0);
    assert_true(copied < 100);
    // A second write to the same path, the pin still held: the path is the
    // live map's own now, so it changes in place.
    long after_first = g_live.load();
    m.insert_or_assign(key_of(5), Counted(-6));
    assert_int_equal(g_live.load(), after_first);
    assert_int_equal(pin.at(key_of(5)).v, 5);
    assert_int_equal(m.at(key_of(5)).v, -6);
    // The pin dropped: its copies go, and writes anywhere copy nothing.
    pin = PersistentMap<Counted>();
    assert_int_equal(g_live.load(), before);
    m.insert_or_assign(key_of(9999), Counted(1));
    m.erase(key_of(17));
    assert_int_equal(g_live.load(), before - 1);
}

// Versions dropped on another thread while the owner keeps writing (the
// snapshot writer runs on the thread pool).
void test_versions_dropped_on_another_thread(void**) {
    {
        Map m;
        for (int i = 0; i < 2000; i++) m.insert_or_assign(key_of(i), std::make_shared<const Counted>(i));
        for (int round = 0; round < 20; round++) {
            auto pin = std::make_unique<Map>(m);
            std::thread t([p = std::move(pin)]() mutable {
                long n = 0;
                for (const auto& kv : *p) n += kv.second->v >= 0;
                assert_true(n > 0);
                p.reset();
            });
            for (int i = 0; i < 200; i++) m.insert_or_assign(key_of(i * 7 + round), std::make_shared<const Counted>(i));
            for (int i = 0; i < 50; i++) m.erase(key_of(i * 13 + round));
            t.join();
        }
    }
    assert_int_equal(g_live.load(), 0);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_ops_match_std_map),      cmocka_unit_test(test_versions_stay_unchanged),
        cmocka_unit_test(test_prefix_iteration_and_at),       cmocka_unit_test(test_memory_freed_when_versions_drop),
        cmocka_unit_test(test_write_after_pin_copies_a_path), cmocka_unit_test(test_versions_dropped_on_another_thread),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
