// Seed discovery: the SRV/A answer parser against crafted packets (good,
// truncated, looping, out of bounds, error codes, random mutations), the
// RFC 2782 order, and Discovery end to end through the real libc resolver
// against a tiny DNS responder on a loopback UDP socket, including the
// TTL cache on a FakeClock. (The daemon is tested against dnsmasq in
// tests/integration/test_discovery.py.)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cluster/discovery.h"
#include "resilience/clock.h"

// cmocka last: its fail() macro clashes with the C++ library.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using namespace rampart;
using namespace rampart::cluster;

namespace {

constexpr uint16_t kTypeA = 1, kTypeSrv = 33, kTypeCname = 5;

// ---- crafting DNS messages ----

struct Bytes {
    std::vector<unsigned char> b;
    void u16(unsigned v) {
        b.push_back(static_cast<unsigned char>(v >> 8));
        b.push_back(static_cast<unsigned char>(v));
    }
    void u32(uint32_t v) {
        u16(v >> 16);
        u16(v & 0xffff);
    }
    void name(const std::string& dotted) {
        size_t start = 0;
        while (start < dotted.size()) {
            size_t dot = dotted.find('.', start);
            if (dot == std::string::npos) dot = dotted.size();
            b.push_back(static_cast<unsigned char>(dot - start));
            b.insert(b.end(), dotted.begin() + static_cast<long>(start), dotted.begin() + static_cast<long>(dot));
            start = dot + 1;
        }
        b.push_back(0);
    }
};

struct Rec {
    std::string name;
    uint16_t type;
    uint32_t ttl;
    std::vector<unsigned char> rdata;
};

std::vector<unsigned char> srv_rdata(unsigned priority, unsigned weight, unsigned port, const std::string& target) {
    Bytes r;
    r.u16(priority);
    r.u16(weight);
    r.u16(port);
    r.name(target);
    return r.b;
}

std::vector<unsigned char> a_rdata(const char* ip) {
    std::vector<unsigned char> r(4);
    inet_pton(AF_INET, ip, r.data());
    return r;
}

std::vector<unsigned char> message(uint16_t id, const std::string& qname, uint16_t qtype, int rcode,
                                   const std::vector<Rec>& answers, const std::vector<Rec>& additional = {}) {
    Bytes m;
    m.u16(id);
    m.u16(0x8180 | rcode);  // response, RD, RA
    m.u16(1);
    m.u16(answers.size());
    m.u16(0);
    m.u16(additional.size());
    m.name(qname);
    m.u16(qtype);
    m.u16(1);
    for (const auto* section : {&answers, &additional}) {
        for (const Rec& r : *section) {
            m.name(r.name);
            m.u16(r.type);
            m.u16(1);
            m.u32(r.ttl);
            m.u16(r.rdata.size());
            m.b.insert(m.b.end(), r.rdata.begin(), r.rdata.end());
        }
    }
    return m.b;
}

const std::string kQname = "_rampart._tcp.example.test";

std::vector<unsigned char> good_answer() {
    return message(7, kQname, kTypeSrv, 0,
                   {{kQname, kTypeSrv, 60, srv_rdata(10, 5, 7711, "Node_1.example.test")},
                    {kQname, kTypeSrv, 30, srv_rdata(20, 0, 7721, "n2.example.test")}},
                   {{"node_1.example.test", kTypeA, 60, a_rdata("127.0.0.1")}});
}

bool parse(const std::vector<unsigned char>& m, SrvAnswer* out, std::string* error) {
    return parse_srv_answer(m.data(), m.size(), out, error);
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// ---- parser ----

void test_parses_records_and_additional_addresses(void**) {
    SrvAnswer a;
    std::string error;
    assert_true(parse(good_answer(), &a, &error));
    assert_int_equal(a.records.size(), 2);
    assert_int_equal(a.records[0].priority, 10);
    assert_int_equal(a.records[0].weight, 5);
    assert_int_equal(a.records[0].port, 7711);
    assert_int_equal(a.records[0].ttl, 60);
    assert_string_equal(a.records[0].target.c_str(), "node_1.example.test");  // lower-cased
    assert_string_equal(a.records[1].target.c_str(), "n2.example.test");
    assert_int_equal(a.addresses.size(), 1);
    assert_string_equal(a.addresses[0].first.c_str(), "node_1.example.test");
    assert_string_equal(a.addresses[0].second.c_str(), "127.0.0.1");
}

// Records of other types on the way (a CNAME) are skipped; no SRV at all
// is a valid, empty answer.
void test_skips_other_types_and_accepts_none(void**) {
    SrvAnswer a;
    std::string error;
    Bytes cname;
    cname.name("other.example.test");
    auto m = message(1, kQname, kTypeSrv, 0,
                     {{kQname, kTypeCname, 5, cname.b}, {kQname, kTypeSrv, 5, srv_rdata(1, 1, 1, "x.test")}});
    assert_true(parse(m, &a, &error));
    assert_int_equal(a.records.size(), 1);
    assert_true(parse(message(1, kQname, kTypeSrv, 0, {}), &a, &error));
    assert_int_equal(a.records.size(), 0);
}

void test_error_rcodes(void**) {
    SrvAnswer a;
    std::string error;
    assert_false(parse(message(1, kQname, kTypeSrv, 3, {}), &a, &error));
    assert_true(contains(error, "no such domain"));
    assert_false(parse(message(1, kQname, kTypeSrv, 2, {}), &a, &error));
    assert_true(contains(error, "server failure"));
}

// Every prefix of a good answer either parses (a prefix that ends between
// records cannot, since the counts promise more) or fails with a message.
void test_truncated_messages(void**) {
    std::vector<unsigned char> m = good_answer();
    for (size_t len = 0; len < m.size(); len++) {
        SrvAnswer a;
        std::string error;
        std::vector<unsigned char> cut(m.begin(), m.begin() + static_cast<long>(len));
        bool ok = parse(cut, &a, &error);
        if (!ok) assert_true(contains(error, "malformed"));
        // Only the additional section may be cut without failing.
        if (ok) assert_int_equal(a.records.size(), 2);
    }
}

void test_short_srv_rdata(void**) {
    SrvAnswer a;
    std::string error;
    auto m = message(1, kQname, kTypeSrv, 0, {{kQname, kTypeSrv, 5, {0, 1, 0, 1, 0x1e, 0x1f}}});
    assert_false(parse(m, &a, &error));
    assert_true(contains(error, "fewer than the 7"));
}

// A target name that points at itself, or past the end of the message.
void test_hostile_compression(void**) {
    std::vector<unsigned char> rdata = {0, 1, 0, 1, 0x1e, 0x1f, 0xc0, 0x00};
    auto m = message(1, kQname, kTypeSrv, 0, {{kQname, kTypeSrv, 5, rdata}});
    size_t pointer_at = m.size() - 2;
    m[pointer_at] = static_cast<unsigned char>(0xc0 | (pointer_at >> 8));
    m[pointer_at + 1] = static_cast<unsigned char>(pointer_at & 0xff);  // points at itself: a loop
    SrvAnswer a;
    std::string error;
    assert_false(parse(m, &a, &error));
    assert_true(contains(error, "bad target name"));
    m[pointer_at] = 0xff;  // 0x3fff: far past the end
    m[pointer_at + 1] = 0xff;
    assert_false(parse(m, &a, &error));
    assert_true(contains(error, "malformed"));
    // A record length that runs past the end of the message.
    auto rdata_x = srv_rdata(1, 1, 1, "x.test");
    auto longer = message(1, kQname, kTypeSrv, 0, {{kQname, kTypeSrv, 5, rdata_x}});
    longer[longer.size() - rdata_x.size() - 1] = 0xff;  // rdlength's low byte
    assert_false(parse(longer, &a, &error));
    assert_true(contains(error, "malformed"));
}

// Random corruption of a good answer and random bytes: never a crash (the
// sanitizer build checks memory), always an answer or a message.
void test_random_mutations_never_crash(void**) {
    std::mt19937 rng(12345);
    std::vector<unsigned char> good = good_answer();
    for (int i = 0; i < 20000; i++) {
        std::vector<unsigned char> m = good;
        if (i % 4 == 3) {
            m.resize(rng() % 600);
            for (auto& c : m) c = static_cast<unsigned char>(rng());
        } else {
            int flips = 1 + static_cast<int>(rng() % 8);
            for (int f = 0; f < flips; f++) m[rng() % m.size()] = static_cast<unsigned char>(rng());
            if (rng() % 3 == 0) m.resize(rng() % m.size());
        }
        SrvAnswer a;
        std::string error;
        if (!parse(m, &a, &error)) assert_false(error.empty());
        std::vector<std::string> addrs;
        uint32_t ttl = 0;
        if (!parse_address_answer(m.data(), m.size(), &addrs, &ttl, &error)) assert_false(error.empty());
    }
}

// ---- RFC 2782 order ----

void test_priority_then_weight(void**) {
    std::vector<SrvRecord> records = {
        {20, 0, 3, "c", 1}, {10, 1, 1, "a", 1}, {10, 99, 2, "b", 1}, {5, 0, 4, "first", 1}};
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    int b_first = 0;
    for (int i = 0; i < 2000; i++) {
        auto ordered = order_srv(records, [&] { return uniform(rng); });
        assert_int_equal(ordered.size(), 4);
        assert_string_equal(ordered[0].target.c_str(), "first");  // lowest priority value
        assert_string_equal(ordered[3].target.c_str(), "c");
        if (ordered[1].target == "b") b_first++;
    }
    // Weight 99 against 1: "b" leads its priority about 99 times in 101.
    assert_true(b_first > 1900);
    assert_true(b_first < 2000);  // but "a" still gets its turn sometimes
    // Zero weights: drawn first only when the draw is 0.
    std::vector<SrvRecord> zero = {{1, 50, 1, "w", 1}, {1, 0, 2, "z", 1}};
    assert_string_equal(order_srv(zero, [] { return 0.0; })[0].target.c_str(), "z");
    assert_string_equal(order_srv(zero, [] { return 0.5; })[0].target.c_str(), "w");
}

// ---- a DNS responder on loopback, for the real resolver ----

class Responder {
public:
    using Answer = std::function<std::vector<unsigned char>(uint16_t id, const std::string& qname, uint16_t qtype)>;

    explicit Responder(Answer answer) : answer_(std::move(answer)) {
        fd_ = socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
        socklen_t len = sizeof sa;
        getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
        port_ = ntohs(sa.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~Responder() {
        stop_ = true;
        thread_.join();
        close(fd_);
    }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    int queries(const std::string& qname, uint16_t qtype) {
        std::lock_guard<std::mutex> lock(mutex_);
        return counts_[qname + "/" + std::to_string(qtype)];
    }

private:
    void serve() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, 50) <= 0) continue;
            unsigned char buf[512];
            sockaddr_in from{};
            socklen_t flen = sizeof from;
            ssize_t n = recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
            if (n < 17) continue;
            std::string qname;
            size_t at = 12;
            while (at < static_cast<size_t>(n) && buf[at] != 0) {
                if (!qname.empty()) qname += '.';
                qname.append(reinterpret_cast<char*>(buf + at + 1), buf[at]);
                at += buf[at] + 1u;
            }
            if (at + 4 >= static_cast<size_t>(n)) continue;
            uint16_t qtype = static_cast<uint16_t>(buf[at + 1] << 8 | buf[at + 2]);
            uint16_t id = static_cast<uint16_t>(buf[0] << 8 | buf[1]);
            {
                std::lock_guard<std::mutex> lock(mutex_);
                counts_[qname + "/" + std::to_string(qtype)]++;
            }
            std::vector<unsigned char> reply = answer_(id, qname, qtype);
            sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
        }
    }

    Answer answer_;
    int fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    std::mutex mutex_;
    std::map<std::string, int> counts_;
};

// The example.test zone: two SRV records (priority 5 leads), one target's
// address in the additional section, the other's by an A query.
std::vector<unsigned char> zone(uint16_t id, const std::string& qname, uint16_t qtype) {
    if (qname == kQname && qtype == kTypeSrv) {
        return message(id, qname, qtype, 0,
                       {{kQname, kTypeSrv, 30, srv_rdata(10, 0, 7711, "n1.example.test")},
                        {kQname, kTypeSrv, 60, srv_rdata(5, 0, 7721, "n2.example.test")}},
                       {{"n1.example.test", kTypeA, 60, a_rdata("127.0.0.1")}});
    }
    if (qname == "n2.example.test" && qtype == kTypeA) {
        return message(id, qname, qtype, 0, {{qname, kTypeA, 60, a_rdata("127.0.0.2")}});
    }
    if (qname == "_rampart._tcp.empty.test") return message(id, qname, qtype, 0, {});
    if (qname == "_rampart._tcp.hostile.test") {
        auto rdata = srv_rdata(1, 1, 7711, "x.test");
        auto m = message(id, qname, qtype, 0, {{qname, kTypeSrv, 30, rdata}});
        m[m.size() - rdata.size() - 1] = 0xff;  // a record length past the end
        return m;
    }
    return message(id, qname, qtype, 3, {});  // NXDOMAIN
}

SeedList resolve_once(uv_loop_t* loop, Discovery& d, bool* synchronous) {
    SeedList out;
    bool done = false;
    d.resolve([&](const SeedList& l) {
        out = l;
        done = true;
    });
    *synchronous = done;
    while (!done) uv_run(loop, UV_RUN_ONCE);
    return out;
}

void test_resolves_through_the_real_resolver_and_caches_for_the_ttl(void**) {
    Responder dns(zone);
    uv_loop_t loop;
    uv_loop_init(&loop);
    resilience::FakeClock clock(0);
    {
        Discovery d(&loop, clock, {{"10.9.9.9:7701", "127.0.0.1:7711"}, "example.test", dns.address()});
        bool sync = true;
        SeedList l = resolve_once(&loop, d, &sync);
        assert_false(sync);  // DNS runs on a worker
        assert_string_equal(l.error.c_str(), "");
        // Static seeds first; then SRV in priority order, minus the static duplicate.
        assert_string_equal(Discovery::describe(l.seeds).c_str(), "10.9.9.9:7701, 127.0.0.1:7711, 127.0.0.2:7721 (n2)");
        assert_int_equal(dns.queries(kQname, kTypeSrv), 1);
        assert_int_equal(dns.queries("n2.example.test", kTypeA), 1);
        assert_int_equal(dns.queries("n1.example.test", kTypeA), 0);  // the additional section had it

        clock.advance(29999);  // the smallest TTL is 30 s
        l = resolve_once(&loop, d, &sync);
        assert_true(sync);
        assert_int_equal(l.seeds.size(), 3);
        assert_int_equal(dns.queries(kQname, kTypeSrv), 1);
        clock.advance(1);
        l = resolve_once(&loop, d, &sync);
        assert_false(sync);
        assert_int_equal(dns.queries(kQname, kTypeSrv), 2);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

// NXDOMAIN, no records, a hostile answer, a server that is not there:
// each a clear error, the static seeds still delivered, nothing cached.
void test_failures_are_clear(void**) {
    Responder dns(zone);
    uv_loop_t loop;
    uv_loop_init(&loop);
    resilience::FakeClock clock(0);
    struct Case {
        std::string domain, server;
        const char* expect;
    } cases[] = {
        {"nowhere.test", dns.address(), "no such domain: _rampart._tcp.nowhere.test"},
        {"empty.test", dns.address(), "no SRV records for _rampart._tcp.empty.test"},
        {"hostile.test", dns.address(), "malformed DNS response"},
    };
    for (const Case& c : cases) {
        Discovery d(&loop, clock, {{"10.9.9.9:7701"}, c.domain, c.server});
        bool sync = true;
        SeedList l = resolve_once(&loop, d, &sync);
        if (!contains(l.error, c.expect)) fail_msg("%s: got \"%s\"", c.domain.c_str(), l.error.c_str());
        assert_int_equal(l.seeds.size(), 1);
        assert_false(sync);
        resolve_once(&loop, d, &sync);
        assert_false(sync);  // a failure is asked again next time
    }
    // No server on that port (the responder's socket is closed first).
    std::string gone;
    {
        Responder closed(zone);
        gone = closed.address();
    }
    Discovery d(&loop, clock, {{}, "example.test", gone});
    bool sync = true;
    SeedList l = resolve_once(&loop, d, &sync);
    if (!contains(l.error, ("no answer for _rampart._tcp.example.test from " + gone).c_str()) &&
        !contains(l.error, "refused or failed")) {
        fail_msg("server down: got \"%s\"", l.error.c_str());
    }
    assert_int_equal(l.seeds.size(), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

// close() while a lookup runs: the worker finishes, the callback never runs.
void test_close_drops_a_lookup_in_flight(void**) {
    Responder dns(zone);
    uv_loop_t loop;
    uv_loop_init(&loop);
    resilience::FakeClock clock(0);
    bool called = false;
    {
        Discovery d(&loop, clock, {{}, "example.test", dns.address()});
        d.resolve([&](const SeedList&) { called = true; });
    }  // destroyed with the lookup in flight
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_false(called);
    assert_int_equal(uv_loop_close(&loop), 0);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parses_records_and_additional_addresses),
        cmocka_unit_test(test_skips_other_types_and_accepts_none),
        cmocka_unit_test(test_error_rcodes),
        cmocka_unit_test(test_truncated_messages),
        cmocka_unit_test(test_short_srv_rdata),
        cmocka_unit_test(test_hostile_compression),
        cmocka_unit_test(test_random_mutations_never_crash),
        cmocka_unit_test(test_priority_then_weight),
        cmocka_unit_test(test_resolves_through_the_real_resolver_and_caches_for_the_ttl),
        cmocka_unit_test(test_failures_are_clear),
        cmocka_unit_test(test_close_drops_a_lookup_in_flight),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
