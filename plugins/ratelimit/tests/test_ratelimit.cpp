// Unit tests of the ratelimit plugin: bucket arithmetic (refill, rescale),
// sliding counts, addresses and CIDRs (including hostile text), the LRU
// bound, rule JSON (including malformed and hostile JSON), the limiter's
// decisions under a hand-driven clock, and the ABI glue against a fake
// host (on_policy, headers, 429s, metrics, config overrides).
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bucket.h"
#include "cidr.h"
#include "limiter.h"
#include "lru.h"
#include "rampart/plugin.h"
#include "rules.h"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
}

using namespace ratelimit;

extern "C" const rampart_plugin* rampart_plugin_entry(void);

namespace {

// ---- buckets and windows ----------------------------------------------------

void test_bucket_take_and_refill(void**) {
    Rate r = Rate::of(10, 60, 10);
    Bucket b = Bucket::full(r, 1000);
    for (int i = 0; i < 10; ++i) assert_true(b.take());
    assert_false(b.take());
    // 10 per minute: one token every 6 s.
    assert_int_equal(b.ms_until(r, 1.0), 6000);
    b.refill(r, 1000 + 5999);
    assert_false(b.take());
    b.refill(r, 1000 + 6000);
    assert_true(b.take());
    // Never more than the capacity, however long the pause.
    b.refill(r, 1000 + 3600 * 1000);
    assert_true(std::fabs(b.tokens - 10.0) < 1e-9);
    // A clock that goes backwards adds nothing and breaks nothing.
    Bucket c = Bucket{2.0, 5000};
    c.refill(r, 1000);
    assert_true(std::fabs(c.tokens - 2.0) < 1e-9);
    assert_int_equal(c.last_ms, 5000);
}

void test_bucket_burst_above_limit(void**) {
    Rate r = Rate::of(60, 60, 120);  // 1/s, bursts of 120
    Bucket b = Bucket::full(r, 0);
    int taken = 0;
    while (b.take()) ++taken;
    assert_int_equal(taken, 120);
    b.refill(r, 10000);
    assert_true(std::fabs(b.tokens - 10.0) < 1e-9);
    assert_int_equal(b.ms_until(r, r.capacity), 110000);
}

void test_bucket_rescale(void**) {
    Rate old_rate = Rate::of(100, 60, 100);
    Rate new_rate = Rate::of(200, 60, 200);
    Bucket b{50, 0};
    b.rescale(old_rate, new_rate, 0);  // half the budget stays half
    assert_true(std::fabs(b.tokens - 100.0) < 1e-9);
    Bucket c{50, 0};
    // Brought up to date under the old rate first: +10 tokens in 6 s.
    c.rescale(old_rate, Rate::of(50, 60, 50), 6000);
    assert_true(std::fabs(c.tokens - 30.0) < 1e-9);
    assert_int_equal(c.last_ms, 6000);
    // Capacity unchanged, rate changed: tokens kept, new refill speed.
    Bucket d{7, 0};
    d.rescale(Rate::of(10, 60, 10), Rate::of(10, 1, 10), 0);
    assert_true(std::fabs(d.tokens - 7.0) < 1e-9);
    d.refill(Rate::of(10, 1, 10), 100);
    assert_true(std::fabs(d.tokens - 8.0) < 1e-9);
}

void test_sliding_count(void**) {
    SlidingCount w;
    const uint64_t W = 600000;
    double n = 0;
    for (int i = 0; i < 50; ++i) n = w.add(W, 1000 + static_cast<uint64_t>(i));
    assert_true(n >= 50 - 1e-9);
    // Half-way through the next window, half of the previous counts.
    double later = w.estimate(W, 1000 + W + W / 2);
    assert_true(std::fabs(later - 25.0) < 0.01);
    n = w.add(W, 1000 + W + W / 2);
    assert_true(std::fabs(n - 26.0) < 0.01);
    // Two windows of silence: nothing left.
    assert_true(w.idle(W, 1000 + 4 * W));
    assert_true(std::fabs(w.add(W, 1000 + 4 * W) - 1.0) < 1e-9);
}

// ---- addresses and CIDRs ----------------------------------------------------

Address addr(const char* s) {
    Address a;
    assert_true(parse_address(s, &a));
    return a;
}

Cidr cidr(const char* s) {
    Cidr c;
    std::string e;
    if (!parse_cidr(s, &c, &e)) fail_msg("parse_cidr(%s): %s", s, e.c_str());
    return c;
}

void test_cidr_v4(void**) {
    Cidr net = cidr("10.0.0.0/8");
    assert_true(net.contains(addr("10.1.2.3")));
    assert_true(net.contains(addr("10.255.255.255")));
    assert_false(net.contains(addr("11.0.0.1")));
    assert_false(net.contains(addr("9.255.255.255")));
    // Host bits are cleared.
    Cidr loose = cidr("10.1.2.3/8");
    assert_true(loose.contains(addr("10.200.0.1")));
    Cidr host = cidr("192.0.2.7");
    assert_int_equal(host.prefix, 32);
    assert_true(host.contains(addr("192.0.2.7")));
    assert_false(host.contains(addr("192.0.2.8")));
    Cidr all = cidr("0.0.0.0/0");
    assert_true(all.contains(addr("203.0.113.9")));
    assert_false(all.contains(addr("2001:db8::1")));
    Cidr odd = cidr("172.16.0.0/12");
    assert_true(odd.contains(addr("172.31.255.1")));
    assert_false(odd.contains(addr("172.32.0.1")));
}

void test_cidr_v6(void**) {
    Cidr net = cidr("2001:db8::/32");
    assert_true(net.contains(addr("2001:db8:ffff::1")));
    assert_false(net.contains(addr("2001:db9::1")));
    assert_false(net.contains(addr("10.0.0.1")));
    Cidr lo = cidr("::1");
    assert_int_equal(lo.prefix, 128);
    assert_true(lo.contains(addr("::1")));
    assert_false(lo.contains(addr("::2")));
    Cidr p65 = cidr("2001:db8:0:0:8000::/65");
    assert_true(p65.contains(addr("2001:db8::8000:0:0:1")));
    assert_false(p65.contains(addr("2001:db8::7fff:0:0:1")));
    Cidr all6 = cidr("::/0");
    assert_true(all6.contains(addr("fe80::1")));
    // IPv4-mapped addresses are their IPv4 address, both ways.
    Address mapped = addr("::ffff:10.9.8.7");
    assert_int_equal(mapped.family, 4);
    assert_true(cidr("10.0.0.0/8").contains(mapped));
    Cidr mapped_net = cidr("::ffff:10.0.0.0/104");
    assert_int_equal(mapped_net.family, 4);
    assert_int_equal(mapped_net.prefix, 8);
    assert_true(mapped_net.contains(addr("10.1.1.1")));
    // A zone on a source address is ignored.
    assert_true(cidr("fe80::/10").contains(addr("fe80::1%eth0")));
}

void test_cidr_hostile(void**) {
    const char* bad[] = {
        "",
        "/",
        "/8",
        "1.2.3.4/",
        "1.2.3.4/33",
        "1.2.3.4/-1",
        "1.2.3.4/ 8",
        "1.2.3.4/8 ",
        " 1.2.3.4",
        "01.2.3.4",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.2.3.4/0008",
        "1.2.3.4/8/8",
        "1..2.3",
        "1.2.3.",
        "::1/129",
        "fe80::1%eth0/64",
        "::ffff:1.2.3.4/95",
        "abc",
        "1.2.3.4/x",
        "::g",
        ":::1",
        "1.2.3.4%eth0",
        "0x7f.0.0.1",
        "127.1",
        "1.2.3.4/999999999999",
        "2001:db8::/1280",
        "\xff\xfe",
        "1.2.3.4\n",
    };
    for (const char* s : bad) {
        Cidr c;
        std::string e;
        if (parse_cidr(s, &c, &e)) fail_msg("parse_cidr accepted \"%s\"", s);
        assert_false(e.empty());
    }
    // Embedded NUL: the text is not silently cut at it.
    std::string nul("10.0.0.0/8\0garbage", 18);
    Cidr c;
    std::string e;
    assert_false(parse_cidr(nul, &c, &e));
    std::string nul6("::1\0abc", 7);
    assert_false(parse_cidr(nul6, &c, &e));
    Address a;
    assert_false(parse_address(std::string("::1\0x", 5), &a));
    // Very long text.
    std::string huge(100000, '1');
    assert_false(parse_cidr(huge, &c, &e));
    assert_false(parse_address(huge, &a));
    std::string long6 = "2001:db8::" + std::string(60, '0');
    assert_false(parse_address(long6, &a));
    // Source addresses: ports and brackets are not addresses.
    for (const char* s : {"", "1.2.3.4:80", "[::1]", "localhost", "1.2.3.4 ", "-1.2.3.4"}) {
        if (parse_address(s, &a)) fail_msg("parse_address accepted \"%s\"", s);
        assert_false(a.valid());
    }
    // An empty list and invalid addresses match nothing.
    CidrList list;
    assert_false(list.contains(addr("10.0.0.1")));
    list.add(cidr("0.0.0.0/0"));
    assert_false(list.contains(Address{}));
}

// ---- LRU ----------------------------------------------------------------------

void test_lru_bound(void**) {
    LruMap<int> m(16);
    for (int i = 0; i < 1000; ++i) *m.find_or_insert("k" + std::to_string(i)) = i;
    assert_int_equal(m.size(), 16);
    assert_int_equal(m.evictions(), 984);
    assert_null(m.peek("k0"));
    assert_non_null(m.peek("k999"));
    assert_non_null(m.peek("k984"));
    // Touching keeps a key alive; the coldest goes first.
    assert_non_null(m.find("k984"));
    bool inserted = false;
    m.find_or_insert("new", &inserted);
    assert_true(inserted);
    assert_non_null(m.peek("k984"));
    assert_null(m.peek("k985"));
    // Shrinking evicts at once.
    m.set_capacity(4);
    assert_int_equal(m.size(), 4);
    assert_non_null(m.peek("new"));
    assert_non_null(m.peek("k984"));
    // erase_if and trim_cold.
    m.erase_if([](std::string_view k, int&) { return k == "new"; });
    assert_int_equal(m.size(), 3);
    size_t dropped = m.trim_cold(2, [](int& v) { return v % 2 == 0; });
    assert_int_equal(m.size(), 3 - dropped);
    // Binary keys (addresses) with NULs are distinct keys.
    LruMap<int> b(8);
    *b.find_or_insert(std::string("4\0\0\0\1", 5)) = 1;
    *b.find_or_insert(std::string("4\0\0\0\2", 5)) = 2;
    assert_int_equal(b.size(), 2);
    assert_int_equal(*b.peek(std::string("4\0\0\0\1", 5)), 1);
    // SipHash-1-3 reference vector (key 00..0f, empty message), and keys
    // that differ only in the last byte hash apart.
    assert_true(siphash13(0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL, "", 0) == 0xabac0158050fc4dcULL);
    assert_true(siphash13(1, 2, "4\0\0\0\1", 5) != siphash13(1, 2, "4\0\0\0\2", 5));
}

// The LRU map against a plain model (a list, most recent first) under a
// long random mix of operations: presence, values and eviction order must
// agree, across index growth, backward-shift deletes and node reuse.
void test_lru_model(void**) {
    LruMap<int> m(64);
    std::vector<std::pair<std::string, int>> model;  // front = most recent
    size_t cap = 64;
    uint64_t x = 88172645463325252ULL;
    auto rnd = [&x] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return x;
    };
    auto model_find = [&](const std::string& k) {
        for (size_t i = 0; i < model.size(); ++i) {
            if (model[i].first == k) return static_cast<long>(i);
        }
        return -1L;
    };
    for (int step = 0; step < 200000; ++step) {
        // Keys of varied length: inline and heap-held ones.
        uint64_t r = rnd();
        std::string key = "k" + std::to_string(r % 300);
        if (r % 7 == 0) key += std::string(30, 'x');
        long at = model_find(key);
        switch (rnd() % 10) {
            case 0:
            case 1:
            case 2:
            case 3: {  // find_or_insert
                bool inserted = false;
                int* v = m.find_or_insert(key, &inserted);
                assert_int_equal(inserted, at < 0);
                if (at >= 0) {
                    assert_int_equal(*v, model[static_cast<size_t>(at)].second);
                    auto e = model[static_cast<size_t>(at)];
                    model.erase(model.begin() + at);
                    model.insert(model.begin(), e);
                } else {
                    if (model.size() == cap) model.pop_back();
                    *v = step;
                    model.insert(model.begin(), {key, step});
                }
                break;
            }
            case 4:
            case 5: {  // find
                int* v = m.find(key);
                assert_int_equal(v != nullptr, at >= 0);
                if (at >= 0) {
                    auto e = model[static_cast<size_t>(at)];
                    model.erase(model.begin() + at);
                    model.insert(model.begin(), e);
                }
                break;
            }
            case 6: {  // peek
                int* v = m.peek(key);
                assert_int_equal(v != nullptr, at >= 0);
                if (v) assert_int_equal(*v, model[static_cast<size_t>(at)].second);
                break;
            }
            case 7: {  // erase
                assert_int_equal(m.erase(key), at >= 0);
                if (at >= 0) model.erase(model.begin() + at);
                break;
            }
            case 8: {  // erase_if on odd values, rarely
                if (rnd() % 50 == 0) {
                    m.erase_if([](std::string_view, int& v) { return v % 2 != 0; });
                    std::erase_if(model, [](const auto& e) { return e.second % 2 != 0; });
                }
                break;
            }
            default: {  // capacity changes, rarely
                if (rnd() % 200 == 0) {
                    cap = 1 + rnd() % 200;
                    m.set_capacity(cap);
                    if (model.size() > cap) model.resize(cap);
                }
                break;
            }
        }
        assert_int_equal(m.size(), model.size());
    }
    // Final order, coldest first.
    std::vector<std::string> order;
    m.for_each_cold_first([&](std::string_view k, const int&) { order.emplace_back(k); });
    assert_int_equal(order.size(), model.size());
    for (size_t i = 0; i < order.size(); ++i)
        assert_string_equal(order[i].c_str(), model[model.size() - 1 - i].first.c_str());
}

// ---- rules JSON ---------------------------------------------------------------

const char* kPolicyJson = R"([
 {"name":"auth_failures","match":{"auth":"failed","route_class":"any"},"key":"ip","limit":10,"window_s":60,
  "burst":10,"retry_after_s":60,"block":{"threshold":50,"window_s":600,"duration_s":3600},"shadow":false,
  "allow_cidrs":[]},
 {"name":"authenticated","match":{"auth":"authenticated","route_class":"any"},"key":"identity","limit":100,
  "window_s":60,"burst":100,"retry_after_s":0,"shadow":false,"allow_cidrs":{}},
 {"name":"unauthenticated","match":{"auth":"unauthenticated","route_class":"any"},"key":"ip","limit":30,
  "window_s":60,"burst":30,"retry_after_s":0,"shadow":false,"allow_cidrs":["10.0.0.0/8","2001:db8::/32"]},
 {"name":"health_probe","match":{"auth":"unauthenticated","route_class":"health"},"key":"ip","limit":5,
  "window_s":1,"shadow":true}
])";

void test_rules_parse(void**) {
    std::vector<Rule> rules;
    std::string error;
    std::vector<std::string> warnings;
    assert_true(parse_rules(kPolicyJson, &rules, &error, &warnings));
    assert_int_equal(rules.size(), 4);
    assert_true(warnings.empty());
    const Rule& af = rules[0];
    assert_string_equal(af.name.c_str(), "auth_failures");
    assert_true(af.auth == AuthMatch::Failed);
    assert_true(af.block.enabled);
    assert_int_equal(af.block.threshold, 50);
    assert_true(af.block.duration_s == 3600);
    assert_int_equal(af.retry_after_s, 60);
    assert_true(rules[1].key == KeyKind::Identity);
    assert_true(rules[1].any_route);
    assert_true(rules[1].allow.empty());
    assert_int_equal(rules[2].allow.size(), 2);
    assert_true(rules[2].allow.contains(addr("10.2.3.4")));
    const Rule& hp = rules[3];
    assert_false(hp.any_route);
    assert_true(hp.route == RouteClass::Health);
    assert_true(hp.shadow);
    assert_true(hp.burst == 5);  // burst defaults to limit
    // An empty list (an empty Lua table may arrive as {} too).
    assert_true(parse_rules("[]", &rules, &error, &warnings));
    assert_true(rules.empty());
    assert_true(parse_rules("{}", &rules, &error, &warnings));
    // A route class this plugin does not know: accepted, warned, never matches.
    warnings.clear();
    assert_true(parse_rules(R"([{"name":"x","match":{"auth":"unauthenticated","route_class":"uploads"},"key":"ip",
                               "limit":1,"window_s":1}])",
                            &rules, &error, &warnings));
    assert_int_equal(warnings.size(), 1);
    assert_false(rules[0].route_known);
}

void test_rules_malformed(void**) {
    std::string deep(100000, '[');
    std::string many = "[";
    for (int i = 0; i < 65; ++i) {
        many += std::string(i ? "," : "") + R"({"name":"r)" + std::to_string(i) +
                R"(","match":{"auth":"unauthenticated"},"key":"ip","limit":1,"window_s":1})";
    }
    many += "]";
    std::string ok_rule = R"({"name":"r","match":{"auth":"unauthenticated"},"key":"ip","limit":1,"window_s":1})";
    auto with = [](const char* field_json) {
        return std::string(R"([{"name":"r","match":{"auth":"unauthenticated"},"key":"ip","limit":1,"window_s":1,)") +
               field_json + "}]";
    };
    std::vector<std::string> bad = {
        "",
        "{",
        "null",
        "true",
        "\"rules\"",
        "42",
        "[1]",
        "[null]",
        "[{}]",
        "[[]]",
        deep,
        many,
        "[" + ok_rule + "," + ok_rule + "]",  // duplicate names
        "[" + ok_rule + "] trailing",
        R"([{"name":"Bad Name","match":{"auth":"unauthenticated"},"key":"ip","limit":1,"window_s":1}])",
        R"([{"name":"","match":{"auth":"unauthenticated"},"key":"ip","limit":1,"window_s":1}])",
        R"([{"name":"r","match":{"auth":"guest"},"key":"ip","limit":1,"window_s":1}])",
        R"([{"name":"r","match":"unauthenticated","key":"ip","limit":1,"window_s":1}])",
        R"([{"name":"r","match":{"auth":"unauthenticated","path":"/x"},"key":"ip","limit":1,"window_s":1}])",
        R"([{"name":"r","match":{"auth":"unauthenticated","route_class":"../etc"},"key":"ip","limit":1,"window_s":1}])",
        R"([{"name":"r","match":{"auth":"unauthenticated"},"key":"identity","limit":1,"window_s":1}])",
        R"([{"name":"r","match":{"auth":"unauthenticated"},"key":"cookie","limit":1,"window_s":1}])",
        R"([{"name":"r","match":{"auth":"unauthenticated"},"key":"ip","window_s":1}])",
        with(R"("burst":0)"),
        with(R"("burst":1.5)"),
        with(R"("retry_after_s":-1)"),
        with(R"("retry_after_s":1e9)"),
        with(R"("shadow":"yes")"),
        with(R"("shadow":1)"),
        with(R"("allow_cidrs":"10.0.0.0/8")"),
        with(R"("allow_cidrs":["10.0.0.0/33"])"),
        with(R"("allow_cidrs":[10])"),
        with(R"("allow_cidrs":["10.0.0.0/8\u0000junk"])"),
        with(R"("allow_cidrs":{"a":"10.0.0.0/8"})"),
        with(R"("block":{"threshold":5,"window_s":60,"duration_s":60})"),  // block on a request rule
        with(R"("extra":1)"),
        with(R"("name2":"x")"),
        R"([{"name":"r","match":{"auth":"unauthenticated"},"key":"ip","limit":0,"window_s":1}])",
        R"([{"name":"r","match":{"auth":"unauthenticated"},"key":"ip","limit":1.5,"window_s":1}])",
        R"([{"name":"r","match":{"auth":"unauthenticated"},"key":"ip","limit":1e999,"window_s":1}])",
        R"([{"name":"r","match":{"auth":"unauthenticated"},"key":"ip","limit":"10","window_s":1}])",
        R"([{"name":"r","match":{"auth":"unauthenticated"},"key":"ip","limit":1,"window_s":0}])",
        R"([{"name":"r","match":{"auth":"unauthenticated"},"key":"ip","limit":1,"window_s":-60}])",
        R"([{"name":"r","match":{"auth":"failed"},"key":"ip","limit":1,"window_s":1,"block":{"threshold":0,"window_s":1,"duration_s":1}}])",
        R"([{"name":"r","match":{"auth":"failed"},"key":"ip","limit":1,"window_s":1,"block":{"threshold":1,"window_s":1}}])",
        R"([{"name":"r","match":{"auth":"failed"},"key":"ip","limit":1,"window_s":1,"block":[1,2,3]}])",
    };
    for (const std::string& json : bad) {
        std::vector<Rule> rules = default_rules();
        std::string error;
        std::vector<std::string> warnings;
        if (parse_rules(json, &rules, &error, &warnings)) fail_msg("accepted: %.200s", json.c_str());
        assert_false(error.empty());
        // All or nothing: the previous rules are untouched.
        assert_int_equal(rules.size(), 3);
        assert_string_equal(rules[0].name.c_str(), "auth_failures");
        // Error text stays printable, whatever the input held.
        for (char c : error) assert_true(c >= 0x20 && c <= 0x7e);
    }
    // Control characters in an unknown field's name are not echoed raw.
    std::vector<Rule> rules;
    std::string error;
    std::vector<std::string> warnings;
    assert_false(parse_rules(with("\"\\u001b[31mX\":1"), &rules, &error, &warnings));
    assert_null(strchr(error.c_str(), 0x1b));
}

void test_overrides(void**) {
    std::vector<Rule> rules = default_rules();
    assert_true(apply_overrides(&rules, Overrides{}).empty());  // defaults leave the policy alone
    Overrides o;
    o.unauth_per_min = 5;
    o.requests_per_min = 1000;
    o.auth_failures_per_min = 3;
    o.auth_failures_block_min = 0;
    auto notes = apply_overrides(&rules, o);
    assert_int_equal(notes.size(), 4);
    assert_true(rules[2].limit == 5 && rules[2].burst == 5 && rules[2].window_s == 60);
    assert_true(rules[1].limit == 1000 && rules[1].burst == 1000);
    assert_true(rules[0].limit == 3);
    assert_false(rules[0].block.enabled);
    // A policy with other names: the key goes to every rule of its kind,
    // per minute, with a burst that keeps its ratio.
    std::vector<Rule> custom;
    std::string error;
    std::vector<std::string> warnings;
    assert_true(parse_rules(R"([{"name":"anon_api","match":{"auth":"unauthenticated","route_class":"api"},"key":"ip",
                                "limit":10,"window_s":10,"burst":120},
                               {"name":"anon_health","match":{"auth":"unauthenticated","route_class":"health"},
                                "key":"ip","limit":100,"window_s":60}])",
                            &custom, &error, &warnings));
    Overrides u;
    u.unauth_per_min = 120;
    apply_overrides(&custom, u);
    assert_true(custom[0].limit == 120 && custom[0].window_s == 60 && custom[0].burst == 240);
    assert_true(custom[1].limit == 120 && custom[1].burst == 120);
    // Block minutes on a policy without a block: the seed's threshold and window.
    std::vector<Rule> noblock = default_rules();
    noblock[0].block.enabled = false;
    Overrides b;
    b.auth_failures_block_min = 5;
    apply_overrides(&noblock, b);
    assert_true(noblock[0].block.enabled && noblock[0].block.duration_s == 300 && noblock[0].block.threshold == 50);
}

// ---- the limiter --------------------------------------------------------------

RequestInfo anon(const char* ip, const char* path = "/health") {
    RequestInfo r;
    r.caller = Caller::Unauthenticated;
    r.source_ip = ip;
    r.path = path;
    return r;
}

RequestInfo authed(const char* name, const char* ip = "192.0.2.1", char kind = 't', const char* path = "/v1/kv/a") {
    RequestInfo r;
    r.caller = Caller::Authenticated;
    r.identity_kind = kind;
    r.identity = name;
    r.source_ip = ip;
    r.path = path;
    return r;
}

std::map<std::string, uint64_t> drain(Limiter& l) {
    std::map<std::string, uint64_t> out;
    l.drain_decisions(
        [&](const std::string& rule, Decision d, uint64_t n) { out[rule + "/" + decision_name(d)] += n; });
    return out;
}

std::vector<Rule> rules_from(const char* json) {
    std::vector<Rule> rules;
    std::string error;
    std::vector<std::string> warnings;
    if (!parse_rules(json, &rules, &error, &warnings)) fail_msg("%s", error.c_str());
    return rules;
}

void test_limiter_unauthenticated(void**) {
    Limiter l;
    l.set_rules(default_rules(), 0);
    Outcome o;
    uint64_t t = 1000;
    for (int i = 0; i < 30; ++i) {
        l.admit(anon("198.51.100.7"), t, &o);
        assert_false(o.refuse);
    }
    assert_true(o.has_headers);
    assert_string_equal(o.policy->c_str(), "\"unauthenticated\";q=30;w=60");
    assert_string_equal(o.limit.c_str(), "\"unauthenticated\";r=0;t=60");
    l.admit(anon("198.51.100.7"), t, &o);
    assert_true(o.refuse);
    assert_int_equal(o.retry_after_s, 2);  // 30/min: a token every 2 s
    assert_string_equal(o.cause->name.c_str(), "unauthenticated");
    assert_non_null(strstr(o.body.c_str(), "\"code\":\"rate_limited\""));
    assert_non_null(strstr(o.body.c_str(), "rate limit exceeded for unauthenticated"));
    assert_string_equal(o.limit.c_str(), "\"unauthenticated\";r=0;t=60");
    // Another address has its own bucket.
    l.admit(anon("198.51.100.8"), t, &o);
    assert_false(o.refuse);
    // Two seconds later one more request fits, then not again.
    l.admit(anon("198.51.100.7"), t + 2000, &o);
    assert_false(o.refuse);
    l.admit(anon("198.51.100.7"), t + 2000, &o);
    assert_true(o.refuse);
    auto counts = drain(l);
    assert_int_equal(counts["unauthenticated/allowed"], 32);
    assert_int_equal(counts["unauthenticated/limited"], 2);
    assert_true(drain(l).empty());
}

void test_limiter_identities(void**) {
    Limiter l;
    auto rules = default_rules();
    rules[1].limit = rules[1].burst = 3;
    l.set_rules(rules, 0);
    Outcome o;
    for (int i = 0; i < 3; ++i) {
        l.admit(authed("alice", "192.0.2.1"), 0, &o);
        assert_false(o.refuse);
    }
    // Same identity from another address: same bucket.
    l.admit(authed("alice", "192.0.2.99"), 0, &o);
    assert_true(o.refuse);
    assert_non_null(strstr(o.body.c_str(), "for this identity"));
    assert_int_equal(o.retry_after_s, 20);
    // Another identity, and a certificate of the same name, are separate.
    l.admit(authed("bob"), 0, &o);
    assert_false(o.refuse);
    l.admit(authed("alice", "192.0.2.1", 'c'), 0, &o);
    assert_false(o.refuse);
    // The address's unauthenticated budget is untouched by alice.
    l.admit(anon("192.0.2.1"), 0, &o);
    assert_false(o.refuse);
    assert_string_equal(o.limit.c_str(), "\"unauthenticated\";r=29;t=2");
    // Internal peer traffic: no rule, no headers.
    RequestInfo peer = authed("node_2");
    peer.caller = Caller::Peer;
    for (int i = 0; i < 1000; ++i) l.admit(peer, 0, &o);
    assert_true(o.exempt);
    assert_false(o.refuse);
    assert_false(o.has_headers);
}

void test_limiter_auth_failures(void**) {
    Limiter l;
    l.set_rules(default_rules(), 0);
    Outcome o;
    std::vector<BlockEvent> events;
    const char* ip = "203.0.113.5";
    uint64_t t = 10000;
    for (int i = 0; i < 10; ++i) {
        l.auth_failure(ip, "invalid_token", t, &events);
        l.admit(anon(ip, "/v1/kv/x"), t, &o);
        assert_false(o.refuse);
    }
    // The 11th failure within the minute: 429, Retry-After 60, for every
    // request from the address (a valid token included).
    l.auth_failure(ip, "invalid_token", t, &events);
    l.admit(anon(ip, "/v1/kv/x"), t, &o);
    assert_true(o.refuse);
    assert_false(o.blocked);
    assert_int_equal(o.retry_after_s, 60);
    assert_string_equal(o.cause->name.c_str(), "auth_failures");
    assert_non_null(strstr(o.body.c_str(), "too many failed authentications"));
    assert_string_equal(o.policy->c_str(), "\"auth_failures\";q=10;w=60");
    assert_string_equal(o.limit.c_str(), "\"auth_failures\";r=0;t=60");
    l.admit(authed("alice", ip), t + 30000, &o);
    assert_true(o.refuse);
    assert_int_equal(o.retry_after_s, 30);
    // Others are not affected; "forbidden" is not guessing.
    l.admit(anon("203.0.113.6"), t, &o);
    assert_false(o.refuse);
    for (int i = 0; i < 100; ++i) l.auth_failure("203.0.113.6", "forbidden", t, &events);
    l.admit(anon("203.0.113.6"), t, &o);
    assert_false(o.refuse);
    // After the penalty the address may try again.
    l.admit(authed("alice", ip), t + 60000, &o);
    assert_false(o.refuse);
    // 50 failures within 10 minutes: blocked for an hour.
    assert_true(events.empty());
    uint64_t when = t + 60000;
    for (int i = 11; i < 50; ++i) l.auth_failure(ip, "invalid_token", when, &events);
    assert_int_equal(events.size(), 1);
    assert_string_equal(events[0].rule.c_str(), "auth_failures");
    assert_true(events[0].duration_s == 3600);
    l.admit(authed("alice", ip), when, &o);
    assert_true(o.refuse);
    assert_true(o.blocked);
    assert_int_equal(o.retry_after_s, 3600);
    assert_non_null(strstr(o.body.c_str(), "blocked"));
    l.admit(anon(ip), when + 3599 * 1000ULL + 1, &o);
    assert_true(o.refuse);
    assert_int_equal(o.retry_after_s, 1);
    l.admit(anon(ip), when + 3600 * 1000ULL, &o);
    assert_false(o.refuse);
    auto counts = drain(l);
    assert_int_equal(counts["auth_failures/limited"], 2);
    assert_int_equal(counts["auth_failures/blocked"], 2);
    std::map<std::string, uint64_t> reasons;
    l.drain_auth_failures([&](const std::string& r, uint64_t n) { reasons[r] += n; });
    assert_int_equal(reasons["invalid_token"], 50);
    assert_int_equal(reasons["forbidden"], 100);
}

void test_limiter_auth_failure_reasons_bounded(void**) {
    Limiter l;
    l.set_rules(default_rules(), 0);
    for (int i = 0; i < 1000; ++i) l.auth_failure("10.0.0.1", "reason_" + std::to_string(i), 0, nullptr);
    size_t distinct = 0;
    uint64_t total = 0, other = 0;
    l.drain_auth_failures([&](const std::string& r, uint64_t n) {
        ++distinct;
        total += n;
        if (r == "other") other = n;
    });
    assert_true(distinct <= 16);
    assert_int_equal(total, 1000);
    assert_true(other >= 1000 - 15);
}

void test_limiter_shadow_and_allowlist(void**) {
    Limiter l;
    l.set_rules(rules_from(R"([
        {"name":"unauthenticated","match":{"auth":"unauthenticated"},"key":"ip","limit":2,"window_s":60,
         "allow_cidrs":["10.0.0.0/8","::1"]},
        {"name":"probe","match":{"auth":"unauthenticated","route_class":"health"},"key":"ip","limit":1,
         "window_s":60,"shadow":true}])"),
                0);
    Outcome o;
    // Allow-listed: never limited, no headers for the rule; the shadow rule still counts.
    for (int i = 0; i < 100; ++i) {
        l.admit(anon("10.1.2.3", "/v1/kv/x"), 0, &o);
        assert_false(o.refuse);
        assert_false(o.has_headers);
    }
    l.admit(anon("::1", "/v1/kv/x"), 0, &o);
    assert_false(o.refuse);
    l.admit(anon("::ffff:10.0.0.9", "/v1/kv/x"), 0, &o);
    assert_false(o.refuse);
    // Not listed: limited by the enforced rule; the shadow rule only counts.
    l.admit(anon("192.0.2.1", "/health"), 0, &o);
    assert_false(o.refuse);
    assert_string_equal(o.policy->c_str(), "\"unauthenticated\";q=2;w=60");  // shadow rules are not advertised
    l.admit(anon("192.0.2.1", "/health"), 0, &o);
    assert_false(o.refuse);  // the shadow rule (limit 1) would have refused this
    l.admit(anon("192.0.2.1", "/health"), 0, &o);
    assert_true(o.refuse);
    auto counts = drain(l);
    assert_int_equal(counts["unauthenticated/allowlisted"], 102);
    assert_int_equal(counts["unauthenticated/allowed"], 2);
    assert_int_equal(counts["unauthenticated/limited"], 1);
    assert_int_equal(counts["probe/allowed"], 1);
    assert_int_equal(counts["probe/shadow_limited"], 2);
    // A shadow auth-failure rule: the penalty is counted, never enforced.
    Limiter s;
    s.set_rules(rules_from(R"([{"name":"af","match":{"auth":"failed"},"key":"ip","limit":1,"window_s":60,
                                "retry_after_s":60,"shadow":true,"block":{"threshold":3,"window_s":60,"duration_s":600}}])"),
                0);
    std::vector<BlockEvent> events;
    for (int i = 0; i < 5; ++i) s.auth_failure("192.0.2.9", "invalid_token", 0, &events);
    assert_int_equal(events.size(), 1);
    assert_true(events[0].shadow);
    s.admit(anon("192.0.2.9"), 0, &o);
    assert_false(o.refuse);
    counts = drain(s);
    assert_int_equal(counts["af/shadow_limited"], 1);
    // Allow-listed addresses' failures are not counted against them.
    Limiter a;
    a.set_rules(rules_from(R"([{"name":"af","match":{"auth":"failed"},"key":"ip","limit":1,"window_s":60,
                                "allow_cidrs":["127.0.0.0/8"]}])"),
                0);
    for (int i = 0; i < 5; ++i) a.auth_failure("127.0.0.1", "invalid_token", 0, &events);
    a.admit(anon("127.0.0.1"), 0, &o);
    assert_false(o.refuse);
    assert_int_equal(drain(a)["af/allowlisted"], 5);
    assert_int_equal(a.tracked(), 0);
}

void test_limiter_route_classes(void**) {
    assert_true(classify_path("/health") == RouteClass::Health);
    assert_true(classify_path("/ready") == RouteClass::Health);
    assert_true(classify_path("/healthz") == RouteClass::Other);
    assert_true(classify_path("/metrics") == RouteClass::Metrics);
    assert_true(classify_path("/v1/kv/a/b") == RouteClass::Api);
    assert_true(classify_path("/v1/status/leader") == RouteClass::Api);
    assert_true(classify_path("/v1/admin/reload") == RouteClass::Admin);
    assert_true(classify_path("/v1/acl/tokens") == RouteClass::Admin);
    assert_true(classify_path("/v1") == RouteClass::Other);
    assert_true(classify_path("") == RouteClass::Other);
    assert_true(classify_path("/hello") == RouteClass::Other);
    Limiter l;
    l.set_rules(rules_from(R"([
        {"name":"health","match":{"auth":"unauthenticated","route_class":"health"},"key":"ip","limit":2,"window_s":60},
        {"name":"anon","match":{"auth":"unauthenticated","route_class":"any"},"key":"ip","limit":5,"window_s":60},
        {"name":"admin","match":{"auth":"authenticated","route_class":"admin"},"key":"identity","limit":1,"window_s":60}])"),
                0);
    Outcome o;
    l.admit(anon("192.0.2.1", "/health"), 0, &o);
    assert_string_equal(o.policy->c_str(), "\"health\";q=2;w=60, \"anon\";q=5;w=60");
    assert_string_equal(o.limit.c_str(), "\"health\";r=1;t=30, \"anon\";r=4;t=12");
    l.admit(anon("192.0.2.1", "/ready"), 0, &o);
    assert_false(o.refuse);
    l.admit(anon("192.0.2.1", "/health"), 0, &o);
    assert_true(o.refuse);
    // Refused: no token spent anywhere (all or nothing).
    assert_string_equal(o.limit.c_str(), "\"health\";r=0;t=60, \"anon\";r=3;t=24");
    l.admit(anon("192.0.2.1", "/v1/kv/x"), 0, &o);
    assert_false(o.refuse);
    assert_string_equal(o.policy->c_str(), "\"anon\";q=5;w=60");
    // Authenticated: only the admin class is limited here.
    l.admit(authed("ops", "192.0.2.1", 't', "/v1/admin/reload"), 0, &o);
    assert_false(o.refuse);
    l.admit(authed("ops", "192.0.2.1", 't', "/v1/admin/reload"), 0, &o);
    assert_true(o.refuse);
    l.admit(authed("ops", "192.0.2.1", 't', "/v1/kv/x"), 0, &o);
    assert_false(o.refuse);
    assert_false(o.has_headers);
}

void test_limiter_reload_keeps_and_rescales(void**) {
    Limiter l;
    l.set_rules(default_rules(), 0);
    Outcome o;
    for (int i = 0; i < 20; ++i) l.admit(anon("192.0.2.1"), 0, &o);
    for (int i = 0; i < 11; ++i) l.auth_failure("192.0.2.2", "invalid_token", 0, nullptr);
    Limiter::SlotView v;
    assert_true(l.inspect("unauthenticated", "192.0.2.1", 0, &v));
    assert_true(std::fabs(v.tokens - 10) < 1e-9);
    // The same rules again (a reload): nothing changes.
    l.set_rules(default_rules(), 0);
    assert_true(l.inspect("unauthenticated", "192.0.2.1", 0, &v));
    assert_true(std::fabs(v.tokens - 10) < 1e-9);
    // The rate doubles: the third of the budget left stays a third.
    auto doubled = default_rules();
    doubled[2].limit = doubled[2].burst = 60;
    l.set_rules(doubled, 0);
    assert_true(l.inspect("unauthenticated", "192.0.2.1", 0, &v));
    assert_true(std::fabs(v.tokens - 20) < 1e-9);
    l.admit(anon("192.0.2.1"), 0, &o);
    assert_string_equal(o.policy->c_str(), "\"unauthenticated\";q=60;w=60");
    // A penalty survives a reload too.
    l.admit(anon("192.0.2.2"), 1000, &o);
    assert_true(o.refuse);
    // A rule that disappears takes its state with it; a renamed one starts afresh.
    auto renamed = doubled;
    renamed[2].name = "anonymous";
    l.set_rules(renamed, 0);
    assert_false(l.inspect("anonymous", "192.0.2.1", 0, &v));
    l.admit(anon("192.0.2.1"), 0, &o);
    assert_string_equal(o.limit.c_str(), "\"anonymous\";r=59;t=1");
    // Counts of the retired rule are still drained once.
    auto counts = drain(l);
    assert_int_equal(counts["unauthenticated/allowed"], 21);
    assert_int_equal(counts["anonymous/allowed"], 1);
    // A rule that stops blocking releases its blocks.
    Limiter b;
    b.set_rules(default_rules(), 0);
    for (int i = 0; i < 50; ++i) b.auth_failure("192.0.2.3", "invalid_token", 0, nullptr);
    assert_true(b.inspect("auth_failures", "192.0.2.3", 0, &v));
    assert_true(v.block_until == 3600 * 1000ULL);
    auto noblock = default_rules();
    noblock[0].block.enabled = false;
    b.set_rules(noblock, 1);
    assert_true(b.inspect("auth_failures", "192.0.2.3", 1, &v));
    assert_true(v.block_until == 0);
}

void test_limiter_lru_bound(void**) {
    Limiter l(16);
    l.set_rules(default_rules(), 0);
    Outcome o;
    // A flood of distinct source addresses costs at most max_keys entries.
    char ip[64];
    for (int i = 0; i < 100000; ++i) {
        (void)snprintf(ip, sizeof ip, "2001:db8::%x:%x", i >> 16, i & 0xffff);
        l.admit(anon(ip), 0, &o);
        assert_false(o.refuse);
    }
    assert_int_equal(l.tracked(), 16);
    assert_int_equal(l.evictions(), 100000 - 16);
    // Growing and shrinking the bound.
    l.set_max_keys(4);
    assert_int_equal(l.max_keys(), 16);  // the floor
    l.set_max_keys(1000);
    for (int i = 0; i < 2000; ++i) {
        (void)snprintf(ip, sizeof ip, "10.0.%d.%d", i >> 8, i & 0xff);
        l.admit(anon(ip), 0, &o);
    }
    assert_int_equal(l.tracked(), 1000);
    // Housekeeping drops keys whose buckets have refilled.
    assert_int_equal(l.trim(1000, 100), 0);
    assert_int_equal(l.trim(120000, 100), 100);
    assert_int_equal(l.tracked(), 900);
}

// ---- the plugin over a fake host ---------------------------------------------

struct FakeMetric {
    std::string name;
    std::vector<std::string> labels;
    std::map<std::string, double> values;  // "v1,v2" -> value
};

struct Fake {
    uint64_t now = 5000;
    std::map<std::string, int64_t> config;
    std::map<std::string, std::vector<std::string>> lists;
    std::vector<std::string> logs;
    std::vector<std::unique_ptr<FakeMetric>> metrics;
};
std::unique_ptr<Fake> g_fake;

}  // namespace

// The host's request handle, as the test shapes it.
struct rampart_request {
    rampart_identity identity{};
    std::string path;
    std::vector<std::pair<std::string, std::string>> headers;
    int status = 0;
    std::string body;
};

namespace {

void f_log(rampart_plugin_ctx*, rampart_log_level, const char* msg) { g_fake->logs.emplace_back(msg); }
int64_t f_config_int(rampart_plugin_ctx*, const char* key) {
    auto it = g_fake->config.find(key);
    return it == g_fake->config.end() ? 0 : it->second;
}
size_t f_list_size(rampart_plugin_ctx*, const char* key) {
    auto it = g_fake->lists.find(key);
    return it == g_fake->lists.end() ? 0 : it->second.size();
}
const char* f_list_item(rampart_plugin_ctx*, const char* key, size_t i) {
    auto it = g_fake->lists.find(key);
    return it == g_fake->lists.end() || i >= it->second.size() ? nullptr : it->second[i].c_str();
}
rampart_metric* f_register(rampart_plugin_ctx*, const char* name, const char*, const char* const* labels, size_t n) {
    auto m = std::make_unique<FakeMetric>();
    m->name = name;
    for (size_t i = 0; i < n; ++i) m->labels.emplace_back(labels[i]);
    g_fake->metrics.push_back(std::move(m));
    return reinterpret_cast<rampart_metric*>(g_fake->metrics.back().get());
}
std::string label_key(FakeMetric* m, const char* const* values) {
    std::string k;
    for (size_t i = 0; i < m->labels.size(); ++i) k += (i ? "," : "") + std::string(values[i]);
    return k;
}
void f_counter_add(rampart_metric* metric, const char* const* values, double d) {
    auto* m = reinterpret_cast<FakeMetric*>(metric);
    m->values[label_key(m, values)] += d;
}
void f_gauge_set(rampart_metric* metric, const char* const* values, double v) {
    auto* m = reinterpret_cast<FakeMetric*>(metric);
    m->values[label_key(m, values)] = v;
}
uint64_t f_now_ms(rampart_plugin_ctx*) { return g_fake->now; }
const char* f_path(rampart_request* r) { return r->path.c_str(); }
const rampart_identity* f_identity(rampart_request* r) { return &r->identity; }
int f_respond(rampart_request* r, int status, const char*, const char* body, size_t len) {
    if (r->status != 0) return -EALREADY;
    r->status = status;
    r->body.assign(body, len);
    return 0;
}
int f_header_add(rampart_request* r, const char* name, const char* value) {
    r->headers.emplace_back(name, value);
    return 0;
}

rampart_host fake_host() {
    rampart_host h{};
    h.struct_size = sizeof h;
    h.abi_major = RAMPART_ABI_MAJOR;
    h.log = f_log;
    h.config_int = f_config_int;
    h.config_list_size = f_list_size;
    h.config_list_item = f_list_item;
    h.counter_register = f_register;
    h.gauge_register = f_register;
    h.counter_add = f_counter_add;
    h.gauge_set = f_gauge_set;
    h.now_ms = f_now_ms;
    h.request_path = f_path;
    h.request_identity = f_identity;
    h.respond = f_respond;
    h.response_header_add = f_header_add;
    return h;
}

std::string header(const rampart_request& r, const char* name) {
    for (const auto& [n, v] : r.headers) {
        if (n == name) return v;
    }
    return "";
}

FakeMetric* metric(const char* name) {
    for (auto& m : g_fake->metrics) {
        if (m->name == name) return m.get();
    }
    return nullptr;
}

struct PluginRun {
    const rampart_plugin* d = rampart_plugin_entry();
    rampart_host host = fake_host();
    void* state = nullptr;
    rampart_plugin_ctx* ctx = reinterpret_cast<rampart_plugin_ctx*>(0x1);

    explicit PluginRun(const std::map<std::string, int64_t>& config = {}, const std::vector<std::string>& allow = {}) {
        g_fake = std::make_unique<Fake>();
        g_fake->lists["allow_cidrs"] = allow;
        g_fake->config = {{"auth_failures_per_min", 10},
                          {"auth_failures_block_min", 60},
                          {"requests_per_min", 100},
                          {"unauth_per_min", 30},
                          {"max_tracked_keys", 100000}};
        for (auto& [k, v] : config) g_fake->config[k] = v;
        assert_int_equal(d->init(ctx, &host, &state), 0);
    }
    ~PluginRun() {
        d->fini(state);
        g_fake.reset();
    }
    rampart_request request(const char* ip, const char* path = "/health",
                            rampart_identity_kind kind = RAMPART_IDENTITY_NONE, const char* name = "") {
        rampart_request r;
        r.identity.struct_size = sizeof r.identity;
        r.identity.kind = kind;
        r.identity.name = name;
        r.identity.role = "";
        r.identity.source_ip = ip;
        r.path = path;
        rampart_verdict v = d->hooks->on_admission(state, &r);
        assert_int_equal(v == RAMPART_ANSWERED, r.status != 0);
        return r;
    }
};

void test_plugin_descriptor(void**) {
    const rampart_plugin* d = rampart_plugin_entry();
    assert_int_equal(d->abi_major, RAMPART_ABI_MAJOR);
    assert_string_equal(d->name, "ratelimit");
    assert_string_equal(d->policy_data[0], "ratelimit:rules");
    assert_null(d->policy_data[1]);
    // The schema: the core's four keys, same names, defaults and bounds.
    struct Want {
        const char* key;
        const char* def;
        int64_t min, max;
    } want[] = {{"auth_failures_per_min", "10", 1, 1000000},  {"auth_failures_block_min", "60", 0, 100000},
                {"requests_per_min", "100", 1, 1000000},      {"unauth_per_min", "30", 1, 1000000},
                {"max_tracked_keys", "100000", 16, 10000000}, {"allow_cidrs", "", 0, 0}};
    size_t n = 0;
    for (const rampart_config_key* k = d->config_schema; k->key != nullptr; ++k, ++n) {
        assert_true(n < 6);
        assert_string_equal(k->key, want[n].key);
        assert_int_equal(k->type, n < 5 ? RAMPART_CONFIG_INT : RAMPART_CONFIG_STRING_LIST);
        assert_string_equal(k->default_value, want[n].def);
        assert_int_equal(k->min, want[n].min);
        assert_int_equal(k->max, want[n].max);
    }
    assert_int_equal(n, 6);
}

void test_plugin_defaults_headers_and_429(void**) {
    PluginRun p({{"unauth_per_min", 3}});
    for (int i = 0; i < 3; ++i) {
        rampart_request r = p.request("192.0.2.1");
        assert_int_equal(r.status, 0);
        assert_string_equal(header(r, "RateLimit-Policy").c_str(), "\"unauthenticated\";q=3;w=60");
        assert_string_equal(
            header(r, "RateLimit").c_str(),
            ("\"unauthenticated\";r=" + std::to_string(2 - i) + ";t=" + std::to_string(20 * (i + 1))).c_str());
    }
    rampart_request r = p.request("192.0.2.1");
    assert_int_equal(r.status, 429);
    assert_string_equal(header(r, "Retry-After").c_str(), "20");
    assert_string_equal(header(r, "RateLimit").c_str(), "\"unauthenticated\";r=0;t=60");
    assert_non_null(strstr(r.body.c_str(), "\"code\":\"rate_limited\""));
    // Peers pass, with no headers.
    rampart_request peer = p.request("192.0.2.1", "/v1/kv/x", RAMPART_IDENTITY_PEER, "node_2");
    assert_int_equal(peer.status, 0);
    assert_true(peer.headers.empty());
    // Counters reach the host at the next flush (at most a second later, or
    // right before /metrics is answered).
    FakeMetric* dec = metric("rampart_ratelimit_decisions_total");
    assert_non_null(dec);
    g_fake->now += 1000;
    p.request("192.0.2.2", "/metrics");
    assert_true(dec->values["unauthenticated,allowed"] == 4);
    assert_true(dec->values["unauthenticated,limited"] == 1);
    assert_true(metric("rampart_ratelimit_tracked_keys")->values[""] == 2);
    // Auth failures: counted by reason; the 11th answers 429 Retry-After 60.
    for (int i = 0; i < 11; ++i) p.d->hooks->on_auth_failure(p.state, "198.51.100.1", "invalid_token");
    rampart_request f = p.request("198.51.100.1", "/v1/kv/x");
    assert_int_equal(f.status, 429);
    assert_string_equal(header(f, "Retry-After").c_str(), "60");
    g_fake->now += 1000;
    p.request("192.0.2.3", "/metrics");
    assert_true(metric("rampart_auth_failures_total")->values["invalid_token"] == 11);
    assert_true(dec->values["auth_failures,limited"] == 1);
}

const char* kShadowCidrPolicy = R"([
 {"name":"auth_failures","match":{"auth":"failed","route_class":"any"},"key":"ip","limit":10,"window_s":60,
  "burst":10,"retry_after_s":60,"block":{"threshold":50,"window_s":600,"duration_s":3600},"shadow":false,
  "allow_cidrs":[]},
 {"name":"unauthenticated","match":{"auth":"unauthenticated","route_class":"any"},"key":"ip","limit":2,
  "window_s":60,"burst":2,"retry_after_s":0,"shadow":false,"allow_cidrs":["127.0.0.0/8","::1/128"]},
 {"name":"api_trial","match":{"auth":"unauthenticated","route_class":"api"},"key":"ip","limit":1,
  "window_s":60,"burst":1,"retry_after_s":0,"shadow":true,"allow_cidrs":[]}
])";

void test_plugin_on_policy(void**) {
    PluginRun p;
    // Defaults until the policy arrives: 30 per minute.
    for (int i = 0; i < 5; ++i) assert_int_equal(p.request("192.0.2.1").status, 0);
    p.d->hooks->on_policy(p.state, "ratelimit", "rules", kShadowCidrPolicy);
    // The bucket survived and was rescaled: 25/30 left -> 25/30 of 2.
    rampart_request r = p.request("192.0.2.1");
    assert_int_equal(r.status, 0);
    assert_string_equal(header(r, "RateLimit-Policy").c_str(), "\"unauthenticated\";q=2;w=60");
    // 1.67 tokens before, 0.67 after: 40 s until the bucket is full again.
    assert_string_equal(header(r, "RateLimit").c_str(), "\"unauthenticated\";r=0;t=40");
    assert_int_equal(p.request("192.0.2.1").status, 429);
    // Allow-listed loopback: never limited, no headers.
    for (int i = 0; i < 50; ++i) {
        rampart_request lo = p.request(i % 2 ? "127.0.0.1" : "::1", "/health");
        assert_int_equal(lo.status, 0);
        assert_true(lo.headers.empty());
    }
    // The shadow rule on the api class only counts.
    assert_int_equal(p.request("192.0.2.9", "/v1/kv/a").status, 0);
    assert_int_equal(p.request("192.0.2.9", "/v1/kv/a").status, 0);
    g_fake->now += 1000;
    p.request("192.0.2.50", "/metrics");
    FakeMetric* dec = metric("rampart_ratelimit_decisions_total");
    assert_true(dec->values["api_trial,shadow_limited"] == 1);
    assert_true(dec->values["api_trial,allowed"] == 1);
    assert_true(dec->values["unauthenticated,allowlisted"] == 50);
    // Malformed and hostile JSON: refused with a log line, previous rules kept.
    const char* bad[] = {"not json", "[{\"name\":\"x\"}]", "{\"a\":1}", "[", ""};
    for (const char* json : bad) {
        size_t before = g_fake->logs.size();
        p.d->hooks->on_policy(p.state, "ratelimit", "rules", json);
        assert_true(g_fake->logs.size() == before + 1);
        assert_non_null(strstr(g_fake->logs.back().c_str(), "policy rules refused, keeping the previous rules"));
        rampart_request lo = p.request("127.0.0.1");
        assert_int_equal(lo.status, 0);
        assert_true(lo.headers.empty());  // the allow-list is still in force
    }
    // Other policies' data is not ours.
    p.d->hooks->on_policy(p.state, "retry", "rules", "garbage");
    p.d->hooks->on_policy(p.state, "ratelimit", "other", "garbage");
    // Config keys set to other than their defaults beat the policy.
    g_fake->config["unauth_per_min"] = 7;
    assert_int_equal(p.d->reload(p.state, p.ctx), 0);
    rampart_request seven = p.request("192.0.2.77");
    assert_string_equal(header(seven, "RateLimit-Policy").c_str(), "\"unauthenticated\";q=7;w=60");
    // The policy's allow-list is kept under the override.
    assert_true(p.request("127.0.0.1").headers.empty());
}

void test_plugin_reload_keeps_buckets(void**) {
    PluginRun p({{"unauth_per_min", 4}});
    for (int i = 0; i < 4; ++i) assert_int_equal(p.request("192.0.2.1").status, 0);
    assert_int_equal(p.request("192.0.2.1").status, 429);
    // Unchanged config: the same empty bucket.
    assert_int_equal(p.d->reload(p.state, p.ctx), 0);
    assert_int_equal(p.request("192.0.2.1").status, 429);
    // A policy generation with the same numbers: still empty.
    p.d->hooks->on_policy(
        p.state, "ratelimit", "rules",
        R"([{"name":"unauthenticated","match":{"auth":"unauthenticated"},"key":"ip","limit":30,"window_s":60}])");
    assert_int_equal(p.request("192.0.2.1").status, 429);
    // The tracked-keys bound follows the config.
    g_fake->config["max_tracked_keys"] = 16;
    assert_int_equal(p.d->reload(p.state, p.ctx), 0);
    char ip[32];
    for (int i = 0; i < 100; ++i) {
        (void)snprintf(ip, sizeof ip, "10.9.0.%d", i);
        p.request(ip);
    }
    g_fake->now += 1000;
    p.request("10.9.1.1", "/metrics");
    assert_true(metric("rampart_ratelimit_tracked_keys")->values[""] <= 16);
}

void test_plugin_config_allow_cidrs(void**) {
    {
        PluginRun p({{"unauth_per_min", 1}}, {"127.0.0.0/8", " ::1/128 "});
        for (int i = 0; i < 20; ++i) {
            rampart_request r = p.request(i % 2 ? "127.0.0.1" : "::1");
            assert_int_equal(r.status, 0);
            assert_true(r.headers.empty());
        }
        assert_int_equal(p.request("192.0.2.1").status, 0);
        assert_int_equal(p.request("192.0.2.1").status, 429);
        // A policy generation keeps the config's list on top of its own.
        p.d->hooks->on_policy(p.state, "ratelimit", "rules",
                              R"([{"name":"unauthenticated","match":{"auth":"unauthenticated"},"key":"ip","limit":1,
                                   "window_s":60,"allow_cidrs":["10.0.0.0/8"]}])");
        assert_true(p.request("127.0.0.5").headers.empty());
        assert_true(p.request("10.1.1.1").headers.empty());
        // A bad entry at reload: refused, the previous list stays.
        g_fake->lists["allow_cidrs"] = {"127.0.0.0/8", "not-a-network"};
        assert_int_equal(p.d->reload(p.state, p.ctx), -EINVAL);
        assert_non_null(strstr(g_fake->logs.back().c_str(), "allow_cidrs[2] \"not-a-network\""));
        assert_true(p.request("::1").headers.empty());
        // Dropped from the config: loopback is limited again.
        g_fake->lists["allow_cidrs"] = {};
        assert_int_equal(p.d->reload(p.state, p.ctx), 0);
        assert_false(p.request("127.0.0.1").headers.empty());
        assert_int_equal(p.request("127.0.0.1").status, 429);
    }
    // A bad entry at start: init refuses (the daemon exits 78).
    g_fake = std::make_unique<Fake>();
    g_fake->lists["allow_cidrs"] = {"10.0.0.0/8", "10.0.0.0/33"};
    const rampart_plugin* d = rampart_plugin_entry();
    rampart_host host = fake_host();
    void* state = nullptr;
    assert_int_equal(d->init(reinterpret_cast<rampart_plugin_ctx*>(0x1), &host, &state), -EINVAL);
    assert_null(state);
    assert_non_null(strstr(g_fake->logs.back().c_str(), "allow_cidrs[2]"));
    g_fake.reset();
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_take_and_refill),
        cmocka_unit_test(test_bucket_burst_above_limit),
        cmocka_unit_test(test_bucket_rescale),
        cmocka_unit_test(test_sliding_count),
        cmocka_unit_test(test_cidr_v4),
        cmocka_unit_test(test_cidr_v6),
        cmocka_unit_test(test_cidr_hostile),
        cmocka_unit_test(test_lru_bound),
        cmocka_unit_test(test_lru_model),
        cmocka_unit_test(test_rules_parse),
        cmocka_unit_test(test_rules_malformed),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_limiter_unauthenticated),
        cmocka_unit_test(test_limiter_identities),
        cmocka_unit_test(test_limiter_auth_failures),
        cmocka_unit_test(test_limiter_auth_failure_reasons_bounded),
        cmocka_unit_test(test_limiter_shadow_and_allowlist),
        cmocka_unit_test(test_limiter_route_classes),
        cmocka_unit_test(test_limiter_reload_keeps_and_rescales),
        cmocka_unit_test(test_limiter_lru_bound),
        cmocka_unit_test(test_plugin_descriptor),
        cmocka_unit_test(test_plugin_defaults_headers_and_429),
        cmocka_unit_test(test_plugin_on_policy),
        cmocka_unit_test(test_plugin_reload_keeps_buckets),
        cmocka_unit_test(test_plugin_config_allow_cidrs),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
