// Unit tests of the idempotency plugin: SHA-256 and the fingerprint, the
// record's wire form (round trip; truncated and hostile input), the store
// (LRU, TTL, key and memory bounds), and the hooks themselves driven
// through a fake host — the only place an in-flight duplicate can be
// produced while the ABI's route handlers answer synchronously.
#include <rampart/plugin.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "fingerprint.h"
#include "record.h"
#include "store.h"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
}

using namespace idempotency;

extern "C" const rampart_plugin* rampart_plugin_entry(void);

// ---- SHA-256 and the fingerprint ----------------------------------------

static void test_sha256_vectors(void**) {
    assert_string_equal(to_hex(sha256("")).c_str(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_string_equal(to_hex(sha256("abc")).c_str(),
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_string_equal(to_hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")).c_str(),
                        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    std::string million(1000000, 'a');
    assert_string_equal(to_hex(sha256(million)).c_str(),
                        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    // Fed in awkward pieces, the same digest.
    std::string text;
    for (int i = 0; i < 1000; ++i) text += static_cast<char>(i * 7);
    for (size_t step : {1u, 3u, 55u, 56u, 63u, 64u, 65u, 127u}) {
        Sha256 s;
        for (size_t at = 0; at < text.size(); at += step) s.update(std::string_view(text).substr(at, step));
        assert_true(s.finish() == sha256(text));
    }
}

static void test_fingerprint(void**) {
    Digest base = fingerprint("PUT", "/v1/kv/a", "cas=0", "value");
    assert_true(base == fingerprint("PUT", "/v1/kv/a", "cas=0", "value"));
    assert_true(base != fingerprint("POST", "/v1/kv/a", "cas=0", "value"));
    assert_true(base != fingerprint("PUT", "/v1/kv/b", "cas=0", "value"));
    assert_true(base != fingerprint("PUT", "/v1/kv/a", "cas=1", "value"));
    assert_true(base != fingerprint("PUT", "/v1/kv/a", "cas=0", "value2"));
    assert_true(base != fingerprint("PUT", "/v1/kv/a", "", "value"));
    // Bytes moved from one field into the next make another request.
    assert_true(fingerprint("PUT", "/ab", "c", "") != fingerprint("PUT", "/a", "bc", ""));
    assert_true(fingerprint("PUT", "/a", "", "x") != fingerprint("PUT", "/a", "x", ""));
    std::string nul_body("a\0b", 3);
    assert_true(fingerprint("PUT", "/a", "", nul_body) != fingerprint("PUT", "/a", "", "a"));
}

static void test_valid_key(void**) {
    assert_false(valid_key(""));
    assert_true(valid_key("k"));
    assert_true(valid_key(std::string(255, 'k')));
    assert_false(valid_key(std::string(256, 'k')));
    assert_true(valid_key("order 42/retry:~!"));
    assert_false(valid_key(" lead"));
    assert_false(valid_key("trail "));
    assert_false(valid_key("tab\there"));
    assert_false(valid_key("nl\n"));
    assert_false(valid_key("del\x7f"));
    assert_false(valid_key("caf\xc3\xa9"));
}

// ---- the record ----------------------------------------------------------

static Record completed_record() {
    Record r;
    r.state = State::Completed;
    r.flags = kResponseStored;
    r.status = 201;
    r.created_unix_ms = 1700000000123;
    r.expires_unix_ms = 1700000600123;
    r.fingerprint = fingerprint("PUT", "/v1/kv/a", "", "v");
    r.scope = "token:deploy-bot";
    r.key = "order-42";
    r.content_type = "application/json";
    r.headers = {{"X-Rampart-Index", "17"}, {"Location", "/v1/kv/a"}};
    r.body = std::string("{\"ok\":true}\0binary\xff", 19);
    return r;
}

static Record in_flight_record() {
    Record r;
    r.state = State::InFlight;
    r.created_unix_ms = 5;
    r.expires_unix_ms = 60005;
    r.fingerprint = sha256("x");
    r.scope = "ip:127.0.0.1";
    r.key = "k";
    r.owner = "a1b2c3d4e5f60718";
    return r;
}

static void test_record_round_trip(void**) {
    for (const Record& r : {completed_record(), in_flight_record()}) {
        std::string wire = serialize(r);
        assert_true(wire.size() > 58);
        assert_memory_equal(wire.data(), "IDMR\x01", 5);
        Record back;
        assert_int_equal(deserialize(wire, &back), 0);
        assert_true(back == r);
        assert_true(serialize(back) == wire);
    }
    Record big = completed_record();
    big.flags = kResponseTooLarge;
    big.content_type.clear();
    big.headers.clear();
    big.body.clear();
    Record back;
    assert_int_equal(deserialize(serialize(big), &back), 0);
    assert_true(back == big);
    // Largest legal fields survive too.
    Record wide = completed_record();
    wide.scope = std::string(kMaxScope, 's');
    wide.key = std::string(kMaxKey, 'k');
    wide.headers.assign(kMaxHeaders, {std::string(kMaxHeaderName, 'h'), std::string(kMaxHeaderValue, 'v')});
    wide.body = std::string(200000, 'b');
    assert_int_equal(deserialize(serialize(wide), &back), 0);
    assert_true(back == wide);
}

static void test_record_invalid_not_serialized(void**) {
    Record r = completed_record();
    r.status = 99;
    assert_true(serialize(r).empty());
    r = completed_record();
    r.headers.push_back({"Bad Name", "v"});
    assert_true(serialize(r).empty());
    r = completed_record();
    r.headers.push_back({"X-Split", "a\r\nSet-Cookie: evil"});
    assert_true(serialize(r).empty());
    r = in_flight_record();
    r.body = "answer without a stored response";
    assert_true(serialize(r).empty());
    r = in_flight_record();
    r.key = "";
    assert_true(serialize(r).empty());
    r = completed_record();
    r.flags = kResponseStored | kResponseTooLarge;
    assert_true(serialize(r).empty());
}

static void test_record_truncated(void**) {
    std::string wire = serialize(completed_record());
    Record out = in_flight_record();
    const Record untouched = out;
    for (size_t n = 0; n < wire.size(); ++n) {
        assert_int_equal(deserialize(std::string_view(wire).substr(0, n), &out), -EINVAL);
        assert_true(out == untouched);
    }
    assert_int_equal(deserialize(wire + '\0', &out), -EINVAL);  // trailing byte
    assert_int_equal(deserialize(wire, nullptr), -EINVAL);
}

// Offsets in the v1 layout (record.h).
static std::string patched(std::string wire, size_t at, std::string_view bytes) {
    wire.replace(at, bytes.size(), bytes);
    return wire;
}

static void test_record_hostile(void**) {
    std::string wire = serialize(completed_record());
    Record out;
    assert_int_equal(deserialize(patched(wire, 0, "XDMR"), &out), -EINVAL);
    assert_int_equal(deserialize(patched(wire, 4, "\x02"), &out), -EPROTONOSUPPORT);
    assert_int_equal(deserialize(patched(wire, 4, std::string_view("\x00", 1)), &out), -EPROTONOSUPPORT);
    assert_int_equal(deserialize(patched(wire, 5, "\x03"), &out), -EINVAL);      // state
    assert_int_equal(deserialize(patched(wire, 6, "\x05"), &out), -EINVAL);      // unknown flag bit
    assert_int_equal(deserialize(patched(wire, 6, "\x03"), &out), -EINVAL);      // stored and too large
    assert_int_equal(deserialize(patched(wire, 7, "\x01"), &out), -EINVAL);      // reserved
    assert_int_equal(deserialize(patched(wire, 8, "\x58\x02"), &out), -EINVAL);  // status 600
    assert_int_equal(deserialize(patched(wire, 8, std::string_view("\x00\x00", 2)), &out), -EINVAL);
    // expires before created
    assert_int_equal(deserialize(patched(wire, 18, std::string_view("\x00\x00\x00\x00\x00\x00\x00\x00", 8)), &out),
                     -EINVAL);
    // Lengths that claim more than there is, or more than the bounds allow.
    assert_int_equal(deserialize(patched(wire, 58, "\xff\xff"), &out), -EINVAL);  // scope
    assert_int_equal(deserialize(patched(wire, 58, "\x01\x02"), &out), -EINVAL);  // scope 513 > kMaxScope
    size_t body_at = wire.size() - completed_record().body.size() - 4;
    assert_int_equal(deserialize(patched(wire, body_at, "\xff\xff\xff\xff"), &out), -EINVAL);
    assert_int_equal(deserialize(patched(wire, body_at, std::string_view("\x00\x00\x00\x01", 4)), &out),
                     -EINVAL);  // 16 MiB+
    // A header carrying CRLF from a forged record is refused, not replayed.
    std::string forged = wire;
    size_t loc = forged.find("/v1/kv/a");
    assert_true(loc != std::string::npos);
    forged[loc + 3] = '\r';
    forged[loc + 4] = '\n';
    assert_int_equal(deserialize(forged, &out), -EINVAL);
    // A key out of the printable range.
    std::string bad_key = wire;
    loc = bad_key.find("order-42");
    bad_key[loc] = '\x01';
    assert_int_equal(deserialize(bad_key, &out), -EINVAL);
    // An in-flight record claiming a response.
    Record r = in_flight_record();
    std::string fw = serialize(r);
    fw[fw.size() - 4] = 1;  // body length 1 ...
    fw += 'x';              // ... and its byte
    assert_int_equal(deserialize(fw, &out), -EINVAL);
}

static void test_record_mutations_never_crash(void**) {
    std::string wire = serialize(completed_record());
    std::mt19937 rng(12345);
    int accepted = 0;
    for (int i = 0; i < 20000; ++i) {
        std::string m = wire;
        int flips = 1 + static_cast<int>(rng() % 4);
        for (int f = 0; f < flips; ++f) m[rng() % m.size()] = static_cast<char>(rng());
        if (rng() % 8 == 0) m.resize(rng() % m.size());
        Record out;
        if (deserialize(m, &out) == 0) {
            ++accepted;
            assert_true(valid_record(out));
            assert_true(serialize(out) == m);  // whatever is accepted is canonical
        }
    }
    (void)accepted;
}

// ---- the store -----------------------------------------------------------

static Record rec(std::string scope, std::string key, size_t body = 0) {
    Record r;
    r.state = State::Completed;
    r.status = 200;
    r.scope = std::move(scope);
    r.key = std::move(key);
    r.fingerprint = sha256(r.key);
    if (body > 0) {
        r.flags = kResponseStored;
        r.body.assign(body, 'b');
    }
    return r;
}

static size_t accounted(const Store& s) {
    size_t total = 0;
    s.for_each([&](const Record& r, uint64_t) { total += record_footprint(r); });
    return total;
}

static void test_store_lru(void**) {
    Store s({3, 1u << 20});
    assert_non_null(s.put(rec("a", "1"), 1000));
    assert_non_null(s.put(rec("a", "2"), 1000));
    assert_non_null(s.put(rec("a", "3"), 1000));
    assert_non_null(s.find("a", "1", 0));  // 1 is now the most recent
    assert_non_null(s.put(rec("a", "4"), 1000));
    assert_int_equal(s.size(), 3);
    assert_int_equal(s.evictions(), 1);
    assert_null(s.find("a", "2", 0));  // the least recently used went
    assert_non_null(s.find("a", "1", 0));
    assert_non_null(s.find("a", "3", 0));
    assert_non_null(s.find("a", "4", 0));
    // peek does not refresh: 1 was used before 3 and 4, so it goes next.
    assert_non_null(s.peek("a", "1"));
    assert_non_null(s.put(rec("a", "5"), 1000));
    assert_null(s.peek("a", "1"));
    std::vector<std::string> order;
    s.for_each([&](const Record& r, uint64_t) { order.push_back(r.key); });
    assert_true((order == std::vector<std::string>{"3", "4", "5"}));
    // Replacing a key does not grow the store.
    assert_non_null(s.put(rec("a", "3", 10), 2000));
    assert_int_equal(s.size(), 3);
    assert_int_equal(s.deadline("a", "3"), 2000);
    assert_int_equal(s.bytes(), accounted(s));
    // Shrinking evicts at once, least recently used first.
    s.set_limits({1, 1u << 20});
    assert_int_equal(s.size(), 1);
    assert_non_null(s.peek("a", "3"));
    assert_true(s.erase("a", "3"));
    assert_false(s.erase("a", "3"));
    assert_int_equal(s.size(), 0);
    assert_int_equal(s.bytes(), 0);
}

static void test_store_ttl(void**) {
    Store s;
    s.put(rec("a", "short"), 100);
    s.put(rec("a", "mid"), 200);
    s.put(rec("a", "long"), 300);
    assert_non_null(s.find("a", "short", 99));
    assert_null(s.find("a", "short", 100));  // at the deadline it is gone
    assert_int_equal(s.size(), 2);
    assert_int_equal(s.expirations(), 1);
    assert_int_equal(s.sweep(199), 0);
    assert_int_equal(s.sweep(250), 1);
    assert_null(s.peek("a", "mid"));
    assert_non_null(s.peek("a", "long"));
    // A refreshed deadline moves the record in the expiry order.
    s.put(rec("a", "long"), 1000);
    assert_int_equal(s.sweep(999), 0);
    assert_int_equal(s.sweep(1000), 1);
    assert_int_equal(s.size(), 0);
    assert_int_equal(s.bytes(), 0);
}

static void test_store_scopes(void**) {
    Store s;
    s.put(rec("token:alice", "k"), 100);
    assert_null(s.find("token:bob", "k", 0));
    assert_null(s.find("ip:127.0.0.1", "k", 0));
    s.put(rec("token:bob", "k"), 100);
    assert_int_equal(s.size(), 2);
    // The id is length-prefixed: moving bytes between scope and key is
    // another record.
    s.put(rec("ab", "c"), 100);
    assert_null(s.find("a", "bc", 0));
}

static void test_store_memory_bound(void**) {
    Store s({1000, 64 * 1024});
    for (int i = 0; i < 20; ++i) {
        assert_non_null(s.put(rec("a", std::to_string(i), 20000), 1000));
        assert_true(s.bytes() <= 64 * 1024);
        assert_int_equal(s.bytes(), accounted(s));
    }
    assert_int_equal(s.size(), 3);  // 3 x ~20.3 KB fit in 64 KiB
    assert_non_null(s.peek("a", "19"));
    assert_null(s.peek("a", "16"));
    // A record over the whole budget is refused and changes nothing, not
    // even the record it would have replaced.
    assert_null(s.put(rec("a", "19", 70000), 1000));
    assert_int_equal(s.size(), 3);
    assert_int_equal(s.peek("a", "19")->body.size(), 20000);
    // An invalid record is refused.
    Record bad = rec("a", "");
    assert_null(s.put(bad, 1000));
    // Many small records: the key bound holds, and so does the byte bound.
    Store many({500, 1u << 20});
    for (int i = 0; i < 5000; ++i) many.put(rec("ip:10.0.0.1", "key-" + std::to_string(i)), 10000 + i);
    assert_int_equal(many.size(), 500);
    assert_int_equal(many.evictions(), 4500);
    assert_int_equal(many.sweep(10000 + 4999), 500);
    assert_int_equal(many.bytes(), 0);
}

// ---- the hooks, through a fake host -------------------------------------

struct rampart_plugin_ctx {
    std::map<std::string, std::string> config;
};

struct rampart_metric {
    std::map<std::string, double> series;
};

struct rampart_timer {
    rampart_timer_fn fn;
    void* arg;
    bool stopped;
};

struct rampart_request {
    std::string method = "PUT";
    std::string path = "/test/echo";
    std::string query;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    std::string id;
    const char* route = "/test/echo";
    rampart_identity identity{};
    std::string identity_name;
    std::string source_ip = "127.0.0.1";
    // the answer
    bool responded = false;
    int status = 0;
    std::string content_type;
    std::string answer;
    std::vector<std::pair<std::string, std::string>> pending;  // response_header_add
    std::vector<std::pair<std::string, std::string>> sent_headers;
};

namespace {

struct Fake {
    rampart_plugin_ctx ctx;
    std::map<std::string, rampart_metric> metrics;
    std::vector<rampart_timer*> timers;
    uint64_t now = 1000000;
    int64_t wall = 1700000000000;
    const rampart_plugin* plugin = nullptr;
    void* state = nullptr;
    int handled = 0;  // how many requests reached the "handler"
    int next_id = 0;
};

Fake* g_fake = nullptr;

rampart_metric* fake_register(rampart_plugin_ctx*, const char* name) { return &g_fake->metrics[name]; }

std::string series_key(const char* const* values, size_t n) {
    std::string k;
    for (size_t i = 0; i < n; ++i) k += values[i];
    return k;
}

rampart_host make_host() {
    rampart_host h{};
    h.struct_size = sizeof h;
    h.abi_major = RAMPART_ABI_MAJOR;
    h.abi_minor = RAMPART_ABI_MINOR;
    h.host_version = "test";
    h.log = [](rampart_plugin_ctx*, rampart_log_level, const char*) {};
    h.config_string = [](rampart_plugin_ctx* c, const char* k) -> const char* {
        auto it = c->config.find(k);
        return it == c->config.end() ? "" : it->second.c_str();
    };
    h.config_int = [](rampart_plugin_ctx* c, const char* k) -> int64_t {
        auto it = c->config.find(k);
        return it == c->config.end() ? 0 : strtoll(it->second.c_str(), nullptr, 10);
    };
    h.counter_register = [](rampart_plugin_ctx* c, const char* name, const char*, const char* const*, size_t) {
        return fake_register(c, name);
    };
    h.gauge_register = [](rampart_plugin_ctx* c, const char* name, const char*, const char* const*, size_t) {
        return fake_register(c, name);
    };
    h.counter_add = [](rampart_metric* m, const char* const* v, double d) { m->series[series_key(v, 1)] += d; };
    h.gauge_set = [](rampart_metric* m, const char* const*, double v) { m->series[""] = v; };
    h.timer_start = [](rampart_plugin_ctx*, uint64_t, uint64_t, rampart_timer_fn fn, void* arg) {
        auto* t = new rampart_timer{fn, arg, false};
        g_fake->timers.push_back(t);
        return t;
    };
    h.timer_stop = [](rampart_timer* t) { t->stopped = true; };
    h.now_ms = [](rampart_plugin_ctx*) { return g_fake->now; };
    h.wall_ms = [](rampart_plugin_ctx*) { return g_fake->wall; };
    h.request_method = [](rampart_request* r) { return r->method.c_str(); };
    h.request_path = [](rampart_request* r) { return r->path.c_str(); };
    h.request_query = [](rampart_request* r) { return r->query.c_str(); };
    h.request_header = [](rampart_request* r, const char* name) -> const char* {
        std::string n = name;
        for (char& c : n) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
        auto it = r->headers.find(n);
        return it == r->headers.end() ? nullptr : it->second.c_str();
    };
    h.request_body = [](rampart_request* r, size_t* len) -> const char* {
        *len = r->body.size();
        return r->body.data();
    };
    h.request_id = [](rampart_request* r) { return r->id.c_str(); };
    h.request_route = [](rampart_request* r) { return r->route; };
    h.request_identity = [](rampart_request* r) -> const rampart_identity* {
        r->identity.struct_size = sizeof r->identity;
        r->identity.name = r->identity_name.c_str();
        r->identity.role = "";
        r->identity.source_ip = r->source_ip.c_str();
        return &r->identity;
    };
    // As the core does: added headers join the answer, then every plugin's
    // on_response runs before respond() returns.
    h.respond = [](rampart_request* r, int status, const char* ct, const char* body, size_t len) -> int {
        if (r->responded) return -EALREADY;
        r->responded = true;
        r->status = status;
        r->content_type = ct ? ct : "application/json";
        r->answer.assign(body ? body : "", len);
        r->sent_headers = std::move(r->pending);
        r->pending.clear();
        std::vector<const char*> names, values;
        for (auto& [n, v] : r->sent_headers) {
            names.push_back(n.c_str());
            values.push_back(v.c_str());
        }
        rampart_response_view view{};
        view.struct_size = sizeof view;
        view.status = status;
        view.content_type = r->content_type.c_str();
        view.body = r->answer.data();
        view.body_len = r->answer.size();
        view.header_count = names.size();
        view.header_names = names.data();
        view.header_values = values.data();
        g_fake->plugin->hooks->on_response(g_fake->state, r, &view);
        return 0;
    };
    h.response_header_add = [](rampart_request* r, const char* n, const char* v) {
        r->pending.emplace_back(n, v);
        return 0;
    };
    return h;
}

const rampart_host kHost = make_host();

using Overrides = std::map<std::string, std::string>;

struct Harness {
    Fake fake;
    explicit Harness(Overrides overrides = {}) {
        g_fake = &fake;
        fake.ctx.config = {{"mode", "replay"},          {"max_keys", "10000"},           {"ttl_s", "600"},
                           {"max_body_bytes", "65536"}, {"max_memory_bytes", "8388608"}, {"in_flight_timeout_s", "60"}};
        for (auto& [k, v] : overrides) fake.ctx.config[k] = v;
        fake.plugin = rampart_plugin_entry();
    }
    int init() { return fake.plugin->init(&fake.ctx, &kHost, &fake.state); }
    ~Harness() {
        if (fake.state) fake.plugin->fini(fake.state);
        for (auto* t : fake.timers) delete t;
        g_fake = nullptr;
    }
    rampart_request request(const std::string& key, const std::string& body = "v") {
        rampart_request r;
        if (!key.empty()) r.headers["idempotency-key"] = key;
        r.body = body;
        r.id = "req-" + std::to_string(++fake.next_id);
        return r;
    }
    rampart_verdict dedup(rampart_request& r) { return fake.plugin->hooks->on_dedup(fake.state, &r); }
    // The handler: counts, adds headers and answers.
    void handle(rampart_request& r, int status = 200, std::string body = "") {
        ++fake.handled;
        kHost.response_header_add(&r, "X-Echo-Count", std::to_string(fake.handled).c_str());
        kHost.response_header_add(&r, "RateLimit-Remaining", "7");
        if (body.empty()) body = "{\"count\":" + std::to_string(fake.handled) + "}";
        kHost.respond(&r, status, "application/json", body.data(), body.size());
    }
    // The whole pipeline for one request.
    rampart_request run(rampart_request r, int status = 200, std::string body = "") {
        if (dedup(r) == RAMPART_CONTINUE) handle(r, status, std::move(body));
        return r;
    }
    double counter(const char* result) { return fake.metrics["rampart_idempotency_requests_total"].series[result]; }
    double keys() { return fake.metrics["rampart_idempotency_keys"].series[""]; }
    void tick() {
        for (auto* t : fake.timers) {
            if (!t->stopped) t->fn(t->arg);
        }
    }
};

std::string header_of(const rampart_request& r, const std::string& name) {
    for (auto& [n, v] : r.sent_headers) {
        if (n == name) return v;
    }
    return "";
}

bool has_code(const rampart_request& r, const char* code) {
    return r.answer.find(std::string("\"code\":\"") + code + "\"") != std::string::npos;
}

}  // namespace

static void test_hooks_replay(void**) {
    Harness h;
    assert_int_equal(h.init(), 0);
    rampart_request first = h.run(h.request("k1"), 201);
    assert_int_equal(first.status, 201);
    assert_int_equal(h.fake.handled, 1);
    assert_int_equal(h.keys(), 1);
    rampart_request again = h.run(h.request("k1"));
    assert_int_equal(h.fake.handled, 1);  // the handler did not run
    assert_int_equal(again.status, 201);
    assert_true(again.answer == first.answer);
    assert_string_equal(again.content_type.c_str(), "application/json");
    assert_string_equal(header_of(again, "Idempotent-Replayed").c_str(), "true");
    assert_string_equal(header_of(again, "X-Echo-Count").c_str(), "1");
    assert_true(header_of(again, "RateLimit-Remaining").empty());  // per exchange: not replayed
    assert_true(header_of(first, "Idempotent-Replayed").empty());
    // The replay's own answer did not disturb the record.
    rampart_request third = h.run(h.request("k1"));
    assert_true(third.answer == first.answer);
    assert_int_equal(h.counter("new"), 1);
    assert_int_equal(h.counter("replayed"), 2);
}

static void test_hooks_in_flight(void**) {
    Harness h;
    assert_int_equal(h.init(), 0);
    rampart_request a = h.request("k");
    assert_int_equal(h.dedup(a), RAMPART_CONTINUE);  // handler still working
    rampart_request b = h.run(h.request("k"));
    assert_int_equal(b.status, 409);
    assert_true(has_code(b, "idempotency_in_flight"));
    assert_int_equal(h.fake.handled, 0);
    // The 409 itself went through on_response and must not complete it.
    rampart_request c = h.run(h.request("k"));
    assert_int_equal(c.status, 409);
    // A different request under the same key: 422 even while in flight.
    rampart_request d = h.run(h.request("k", "other body"));
    assert_int_equal(d.status, 422);
    assert_true(has_code(d, "idempotency_key_reused"));
    // An answer for another request id with this key does not complete it.
    rampart_request stranger = h.request("k");
    h.handle(stranger, 200, "{\"not\":\"mine\"}");
    h.fake.handled = 0;
    h.handle(a, 200, "{\"mine\":true}");
    rampart_request e = h.run(h.request("k"));
    assert_int_equal(e.status, 200);
    assert_string_equal(e.answer.c_str(), "{\"mine\":true}");
    assert_int_equal(h.counter("in_flight"), 2);
    assert_int_equal(h.counter("mismatch"), 1);
}

static void test_hooks_in_flight_lease(void**) {
    Harness h(Overrides{{"in_flight_timeout_s", "5"}});
    assert_int_equal(h.init(), 0);
    rampart_request lost = h.request("k");
    assert_int_equal(h.dedup(lost), RAMPART_CONTINUE);  // never answered (yet)
    h.fake.now += 4999;
    assert_int_equal(h.run(h.request("k")).status, 409);
    h.fake.now += 1;
    rampart_request retry = h.run(h.request("k"), 200, "{\"retry\":1}");
    assert_int_equal(retry.status, 200);
    assert_int_equal(h.fake.handled, 1);
    // The first request answering late does not overwrite the retry's record.
    h.handle(lost, 200, "{\"late\":1}");
    rampart_request replay = h.run(h.request("k"));
    assert_string_equal(replay.answer.c_str(), "{\"retry\":1}");
}

static void test_hooks_mismatch(void**) {
    Harness h;
    assert_int_equal(h.init(), 0);
    h.run(h.request("k"));
    rampart_request body = h.run(h.request("k", "changed"));
    assert_int_equal(body.status, 422);
    assert_true(has_code(body, "idempotency_key_reused"));
    rampart_request method = h.request("k");
    method.method = "POST";
    assert_int_equal(h.run(method).status, 422);
    rampart_request path = h.request("k");
    path.path = "/test/other";
    assert_int_equal(h.run(path).status, 422);
    rampart_request query = h.request("k");
    query.query = "cas=0";
    assert_int_equal(h.run(query).status, 422);
    assert_int_equal(h.fake.handled, 1);
    assert_int_equal(h.counter("mismatch"), 4);
    // The record is still the first request's.
    assert_int_equal(h.run(h.request("k")).status, 200);
    assert_int_equal(h.fake.handled, 1);
}

static void test_hooks_reject_mode(void**) {
    Harness h(Overrides{{"mode", "reject"}});
    assert_int_equal(h.init(), 0);
    rampart_request a = h.request("k");
    assert_int_equal(h.dedup(a), RAMPART_CONTINUE);
    rampart_request b = h.run(h.request("k"));
    assert_int_equal(b.status, 409);
    assert_true(has_code(b, "duplicate_request"));
    h.handle(a);
    rampart_request c = h.run(h.request("k", "even another body"));
    assert_int_equal(c.status, 409);
    assert_true(has_code(c, "duplicate_request"));
    assert_true(header_of(c, "Idempotent-Replayed").empty());
    assert_int_equal(h.fake.handled, 1);
    assert_int_equal(h.counter("rejected"), 2);
    // After the TTL the key is free again.
    h.fake.now += 600 * 1000;
    assert_int_equal(h.run(h.request("k")).status, 200);
    assert_int_equal(h.fake.handled, 2);
}

static void test_hooks_ignored(void**) {
    Harness h;
    assert_int_equal(h.init(), 0);
    for (const char* m : {"GET", "HEAD", "OPTIONS"}) {
        rampart_request r = h.request("k");
        r.method = m;
        h.run(r);
        h.run(r);
    }
    assert_int_equal(h.fake.handled, 6);
    rampart_request unrouted = h.request("k");
    unrouted.route = nullptr;
    h.run(unrouted);
    h.run(unrouted);
    assert_int_equal(h.fake.handled, 8);
    h.run(h.request(""));  // no key
    h.run(h.request(""));
    assert_int_equal(h.fake.handled, 10);
    assert_int_equal(h.keys(), 0);
    for (const char* m : {"PUT", "POST", "PATCH", "DELETE"}) {
        rampart_request r = h.request(std::string("k-") + m);
        r.method = m;
        h.run(r);
        h.run(r);
    }
    assert_int_equal(h.fake.handled, 14);
    assert_int_equal(h.keys(), 4);
}

static void test_hooks_bad_key(void**) {
    Harness h;
    assert_int_equal(h.init(), 0);
    for (std::string key :
         {std::string(256, 'k'), std::string("tab\tkey"), std::string("caf\xc3\xa9"), std::string(" x")}) {
        rampart_request r = h.run(h.request(key));
        assert_int_equal(r.status, 400);
        assert_true(has_code(r, "bad_idempotency_key"));
    }
    rampart_request empty = h.request("");
    empty.headers["idempotency-key"] = "";
    assert_int_equal(h.run(empty).status, 400);
    assert_int_equal(h.fake.handled, 0);
    assert_int_equal(h.keys(), 0);
    assert_int_equal(h.counter("invalid"), 5);
    assert_int_equal(h.run(h.request(std::string(255, 'k'))).status, 200);
}

static void test_hooks_release_and_keep(void**) {
    Harness h;
    assert_int_equal(h.init(), 0);
    for (int status : {500, 503, 408, 429}) {
        std::string key = "k" + std::to_string(status);
        int before = h.fake.handled;
        assert_int_equal(h.run(h.request(key), status).status, status);
        assert_int_equal(h.run(h.request(key), status).status, status);
        assert_int_equal(h.fake.handled, before + 2);  // not cached: the retry ran
    }
    assert_int_equal(h.keys(), 0);
    // A client error from the handler is the write's outcome: kept.
    h.run(h.request("k404"), 404);
    rampart_request again = h.run(h.request("k404"));
    assert_int_equal(again.status, 404);
    assert_string_equal(header_of(again, "Idempotent-Replayed").c_str(), "true");
    // A 5xx after release lets the retry succeed and be kept.
    h.run(h.request("flaky"), 503);
    h.run(h.request("flaky"), 200, "{\"finally\":1}");
    assert_string_equal(h.run(h.request("flaky")).answer.c_str(), "{\"finally\":1}");
}

static void test_hooks_large_body(void**) {
    Harness h(Overrides{{"max_body_bytes", "1000"}});
    assert_int_equal(h.init(), 0);
    h.run(h.request("big"), 200, std::string(1001, 'x'));
    rampart_request again = h.run(h.request("big"));
    assert_int_equal(h.fake.handled, 1);  // never executed twice
    assert_int_equal(again.status, 409);
    assert_true(has_code(again, "idempotency_response_too_large"));
    assert_true(again.answer.find("status 200") != std::string::npos);
    h.run(h.request("fits"), 200, std::string(1000, 'y'));
    assert_int_equal(h.run(h.request("fits")).answer.size(), 1000);
    assert_int_equal(h.fake.handled, 2);
}

static void test_hooks_memory_budget(void**) {
    Harness h(Overrides{{"max_body_bytes", "1000000"}, {"max_memory_bytes", "65536"}});
    assert_int_equal(h.init(), 0);
    // Over the whole budget: the fact is kept, not the answer.
    h.run(h.request("huge"), 200, std::string(70000, 'x'));
    rampart_request again = h.run(h.request("huge"));
    assert_int_equal(again.status, 409);
    assert_true(has_code(again, "idempotency_response_too_large"));
    // Within it, older answers make room.
    for (int i = 0; i < 10; ++i) h.run(h.request("m" + std::to_string(i)), 200, std::string(20000, 'm'));
    assert_true(h.keys() <= 3);
    assert_int_equal(h.run(h.request("m9")).answer.size(), 20000);
}

static void test_hooks_scopes(void**) {
    Harness h;
    assert_int_equal(h.init(), 0);
    rampart_request alice = h.request("k");
    alice.identity.kind = RAMPART_IDENTITY_TOKEN;
    alice.identity_name = "alice";
    rampart_request bob = alice;
    bob.identity_name = "bob";
    rampart_request anon = h.request("k");
    rampart_request other_ip = h.request("k");
    other_ip.source_ip = "10.0.0.2";
    rampart_request cert = alice;
    cert.identity.kind = RAMPART_IDENTITY_CERTIFICATE;  // same name, another kind
    for (auto* r : {&alice, &bob, &anon, &other_ip, &cert}) {
        h.run(*r);
        h.run(*r);
    }
    assert_int_equal(h.fake.handled, 5);
    assert_int_equal(h.keys(), 5);
    // A very long identity name is kept as a hash, still distinct.
    rampart_request long1 = alice, long2 = alice;
    long1.identity_name = std::string(1000, 'n');
    long2.identity_name = std::string(999, 'n') + "m";
    h.run(long1);
    h.run(long2);
    h.run(long1);
    assert_int_equal(h.fake.handled, 7);
}

static void test_hooks_ttl_and_sweep(void**) {
    Harness h(Overrides{{"ttl_s", "1"}});
    assert_int_equal(h.init(), 0);
    h.run(h.request("a"));
    h.run(h.request("b"));
    assert_int_equal(h.keys(), 2);
    h.fake.now += 999;
    h.run(h.request("a"));
    assert_int_equal(h.fake.handled, 2);
    h.fake.now += 1;
    h.tick();  // the sweep timer
    assert_int_equal(h.keys(), 0);
    h.run(h.request("a"));
    assert_int_equal(h.fake.handled, 3);
}

static void test_hooks_max_keys(void**) {
    Harness h(Overrides{{"max_keys", "3"}});
    assert_int_equal(h.init(), 0);
    for (const char* k : {"1", "2", "3", "4"}) h.run(h.request(k));
    assert_int_equal(h.keys(), 3);
    h.run(h.request("2"));
    h.run(h.request("3"));
    h.run(h.request("4"));
    assert_int_equal(h.fake.handled, 4);  // 2, 3, 4 replayed
    h.run(h.request("1"));                // evicted: runs again
    assert_int_equal(h.fake.handled, 5);
}

static void test_hooks_config_and_reload(void**) {
    {
        Harness bad(Overrides{{"mode", "sometimes"}});
        assert_int_equal(bad.init(), -EINVAL);
        assert_null(bad.fake.state);
    }
    Harness h;
    assert_int_equal(h.init(), 0);
    for (const char* k : {"1", "2", "3"}) h.run(h.request(k));
    h.fake.ctx.config["mode"] = "nonsense";
    assert_int_equal(h.fake.plugin->reload(h.fake.state, &h.fake.ctx), -EINVAL);
    assert_int_equal(h.run(h.request("1")).status, 200);  // still replaying
    h.fake.ctx.config["mode"] = "reject";
    h.fake.ctx.config["max_keys"] = "2";
    assert_int_equal(h.fake.plugin->reload(h.fake.state, &h.fake.ctx), 0);
    assert_int_equal(h.keys(), 2);  // shrunk: the least recently used went
    rampart_request r = h.run(h.request("1"));
    assert_int_equal(r.status, 409);
    assert_true(has_code(r, "duplicate_request"));
    // Records made in reject mode hold no answer: after switching back to
    // replay a duplicate is still refused, never run again.
    h.run(h.request("new-in-reject"));
    h.fake.ctx.config["mode"] = "replay";
    assert_int_equal(h.fake.plugin->reload(h.fake.state, &h.fake.ctx), 0);
    int before = h.fake.handled;
    rampart_request again = h.run(h.request("new-in-reject"));
    assert_int_equal(again.status, 409);
    assert_true(has_code(again, "duplicate_request"));
    assert_int_equal(h.fake.handled, before);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_valid_key),
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_record_invalid_not_serialized),
        cmocka_unit_test(test_record_truncated),
        cmocka_unit_test(test_record_hostile),
        cmocka_unit_test(test_record_mutations_never_crash),
        cmocka_unit_test(test_store_lru),
        cmocka_unit_test(test_store_ttl),
        cmocka_unit_test(test_store_scopes),
        cmocka_unit_test(test_store_memory_bound),
        cmocka_unit_test(test_hooks_replay),
        cmocka_unit_test(test_hooks_in_flight),
        cmocka_unit_test(test_hooks_in_flight_lease),
        cmocka_unit_test(test_hooks_mismatch),
        cmocka_unit_test(test_hooks_reject_mode),
        cmocka_unit_test(test_hooks_ignored),
        cmocka_unit_test(test_hooks_bad_key),
        cmocka_unit_test(test_hooks_release_and_keep),
        cmocka_unit_test(test_hooks_large_body),
        cmocka_unit_test(test_hooks_memory_budget),
        cmocka_unit_test(test_hooks_scopes),
        cmocka_unit_test(test_hooks_ttl_and_sweep),
        cmocka_unit_test(test_hooks_max_keys),
        cmocka_unit_test(test_hooks_config_and_reload),
    };
    return cmocka_run_group_tests_name("idempotency_store", tests, nullptr, nullptr);
}
