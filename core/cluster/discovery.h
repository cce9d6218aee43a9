// Seed discovery: where a node looks for the cluster it should join.
//
// Two sources, in this order:
//   - cluster.seeds: static "ip:port" literals from the configuration;
//   - cluster.discovery_srv: DNS SRV records _rampart._tcp.<domain>, asked
//     of the system's resolver or of cluster.dns_server. Each record's
//     target is resolved to an address (from the answer's additional
//     section, else by an A/AAAA query), and its first label is the seed's
//     node id: the name its peer certificate must carry.
//
// SRV answers are ordered as RFC 2782 says: lower priority first, and
// within one priority a weighted random order. An answer is reused until
// its TTL runs out, then asked again. DNS work runs on the libuv thread
// pool (the libc resolver blocks), never on the loop.
//
// Threads: Discovery lives on the loop thread; only resolve_srv() and the
// parsing functions run on a worker.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "resilience/clock.h"

namespace rampart::cluster {

inline constexpr const char* kSrvService = "_rampart._tcp.";

struct Seed {
    std::string address;  // "ip:port" or "[v6]:port": what a peer dial takes
    std::string name;     // the node id expected in its certificate ("" unknown)
    std::string source;   // "static" or "srv"
    bool operator==(const Seed&) const = default;
};

// One SRV record of an answer.
struct SrvRecord {
    uint16_t priority = 0;
    uint16_t weight = 0;
    uint16_t port = 0;
    std::string target;  // lower case, no trailing dot
    uint32_t ttl = 0;
};

// What one DNS answer said.
struct SrvAnswer {
    std::vector<SrvRecord> records;
    // Addresses the additional section gave, by lower-case name: "ip" or
    // "[v6]" (ready to append ":port").
    std::vector<std::pair<std::string, std::string>> addresses;
};

// Parses a DNS response to an SRV query. False with `error` set on a
// malformed, truncated or hostile message (bad lengths, compression loops,
// records that run past the end, an error rcode). A message with no SRV
// records parses fine and yields none.
bool parse_srv_answer(const unsigned char* msg, size_t len, SrvAnswer* out, std::string* error);
// The same for an A/AAAA query's response: the addresses, as above.
bool parse_address_answer(const unsigned char* msg, size_t len, std::vector<std::string>* out, uint32_t* ttl,
                          std::string* error);

// RFC 2782 order: ascending priority; within a priority, records drawn at
// random with probability proportional to weight (zero weights last but
// still drawn). `rand01` returns uniform numbers in [0, 1).
std::vector<SrvRecord> order_srv(std::vector<SrvRecord> records, const std::function<double()>& rand01);

// The result of a resolution.
struct SrvResult {
    bool ok = false;
    std::string error;        // why not ok: "no SRV records for ...", "DNS server ... timed out", ...
    std::vector<Seed> seeds;  // in RFC 2782 order
    uint32_t ttl_s = 0;       // the smallest TTL of the records used
};

// Blocking: asks `dns_server` ("ip:port", "" = the system resolver) for
// _rampart._tcp.<domain> and resolves the targets. Worker threads only.
SrvResult resolve_srv(const std::string& domain, const std::string& dns_server, uint64_t seed_for_order);

// The seed list of one round, and what went wrong on the way.
struct SeedList {
    std::vector<Seed> seeds;  // static seeds first, then SRV, no duplicate addresses
    std::string error;        // "" when every source answered
};

class Discovery {
public:
    struct Settings {
        std::vector<std::string> static_seeds;  // cluster.seeds
        std::string srv_domain;                 // cluster.discovery_srv ("" = off)
        std::string dns_server;                 // cluster.dns_server ("" = system resolver)
    };
    using Done = std::function<void(const SeedList&)>;

    Discovery(uv_loop_t* loop, resilience::Clock& clock, Settings settings);
    ~Discovery();
    Discovery(const Discovery&) = delete;
    Discovery& operator=(const Discovery&) = delete;

    // The current seed list. Without SRV, or while the last SRV answer's
    // TTL lasts, `done` runs before resolve() returns; otherwise later on
    // the loop, once a worker has asked DNS. `done` never runs after
    // close() or after the Discovery is gone.
    void resolve(Done done);
    // A resolution in flight still finishes on its worker, but its result
    // is dropped.
    void close();
    const Settings& settings() const { return settings_; }
    // cluster.seeds may change on SIGHUP; the next resolve() uses these.
    void set_static_seeds(std::vector<std::string> seeds) { settings_.static_seeds = std::move(seeds); }
    // Seeds as "address (name)" text for logs.
    static std::string describe(const std::vector<Seed>& seeds);

private:
    struct Work;
    SeedList combine(const SrvResult* srv) const;
    void finished(const SrvResult& result);

    uv_loop_t* loop_;
    resilience::Clock& clock_;
    Settings settings_;
    std::shared_ptr<bool> alive_;
    bool in_flight_ = false;
    std::vector<Done> waiting_;
    SrvResult cached_;
    uint64_t cached_until_ms_ = 0;  // 0: nothing cached
    uint64_t resolutions_ = 0;
};

}  // namespace rampart::cluster
