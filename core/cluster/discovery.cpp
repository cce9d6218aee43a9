#include "cluster/discovery.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>

#include "cluster/membership_address.h"
#include "net/address.h"

namespace rampart::cluster {
namespace {

// Seconds one DNS server may take per try, and how many tries: a server
// that is down costs a round about this much (and delays shutdown at most
// this much, since a worker cannot be interrupted).
constexpr int kRetransSeconds = 1;
constexpr int kTries = 2;

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return s;
}

// Opens a parser on a response; refuses error rcodes with a clear reason.
bool open_message(const unsigned char* msg, size_t len, ns_msg* handle, std::string* error) {
    if (len > 65535 || ns_initparse(msg, static_cast<int>(len), handle) != 0) {
        *error = "malformed DNS response (" + std::to_string(len) + " bytes): the header or a section is cut short";
        return false;
    }
    int rcode = ns_msg_getflag(*handle, ns_f_rcode);
    if (rcode != ns_r_noerror) {
        *error = "DNS response has error code " + std::to_string(rcode) +
                 (rcode == ns_r_nxdomain   ? " (no such domain)"
                  : rcode == ns_r_servfail ? " (server failure)"
                  : rcode == ns_r_refused  ? " (refused)"
                                           : "");
        return false;
    }
    return true;
}

std::string section_error(const char* section, int index, bool truncated) {
    return std::string("malformed DNS response: ") + section + " record " + std::to_string(index) +
           " runs past the end or has a bad name" + (truncated ? " (the response is truncated)" : "");
}

// One A or AAAA record as "ip" or "[v6]"; false for other types.
bool address_of(const ns_rr& rr, std::string* out) {
    char text[INET6_ADDRSTRLEN];
    if (ns_rr_type(rr) == ns_t_a && ns_rr_rdlen(rr) == 4) {
        inet_ntop(AF_INET, ns_rr_rdata(rr), text, sizeof text);
        *out = text;
        return true;
    }
    if (ns_rr_type(rr) == ns_t_aaaa && ns_rr_rdlen(rr) == 16) {
        inet_ntop(AF_INET6, ns_rr_rdata(rr), text, sizeof text);
        *out = std::string("[") + text + "]";
        return true;
    }
    return false;
}

// A private resolver state, so that workers never share one. Points at
// cluster.dns_server when one is configured.
class Resolver {
public:
    ~Resolver() {
        if (open_) res_nclose(&state_);
    }

    bool open(const std::string& server, std::string* error) {
        memset(&state_, 0, sizeof state_);
        if (res_ninit(&state_) != 0) {
            *error = "cannot initialise the resolver (/etc/resolv.conf)";
            return false;
        }
        open_ = true;
        state_.retrans = kRetransSeconds;
        state_.retry = kTries;
        if (server.empty()) return true;
        net::Address addr;
        std::string why;
        if (!net::parse_address(server, &addr, &why) || addr.storage.ss_family != AF_INET) {
            *error = "cluster.dns_server " + server + " is not an IPv4 address:port";
            return false;
        }
        // res_ninit may have put IPv6 servers from resolv.conf in the
        // extension slots, which take precedence over nsaddr_list.
        for (int i = 0; i < MAXNS; i++) {
            // NOLINTNEXTLINE(cppcoreguidelines-no-malloc,cppcoreguidelines-owning-memory): glibc malloc'ed it
            free(state_._u._ext.nsaddrs[i]);
            state_._u._ext.nsaddrs[i] = nullptr;
        }
        memcpy(&state_.nsaddr_list[0], &addr.storage, sizeof(sockaddr_in));
        state_.nscount = 1;
        return true;
    }

    // The response's length, or -1 with `error` set.
    int query(const std::string& name, int type, unsigned char* buf, int size, std::string* error) {
        int n = res_nquery(&state_, name.c_str(), ns_c_in, type, buf, size);
        if (n >= 0 && n > size) {
            *error = "DNS response for " + name + " is larger than " + std::to_string(size) + " bytes";
            return -1;
        }
        if (n >= 0) return n;
        switch (state_.res_h_errno) {
            case HOST_NOT_FOUND: *error = "no such domain: " + name + " (NXDOMAIN)"; break;
            case NO_DATA:
                *error = "no " + std::string(type == ns_t_srv ? "SRV" : "address") + " records for " + name;
                break;
            case TRY_AGAIN:
                *error = "no answer for " + name + " from " + server_text() + " (timeout or server failure)";
                break;
            case NO_RECOVERY:
                *error = "DNS server " + server_text() + " refused or failed the query for " + name;
                break;
            default: *error = "DNS query for " + name + " failed (" + std::to_string(state_.res_h_errno) + ")"; break;
        }
        return -1;
    }

private:
    std::string server_text() const {
        if (state_.nscount < 1) return "the resolver";
        char ip[INET_ADDRSTRLEN] = "?";
        inet_ntop(AF_INET, &state_.nsaddr_list[0].sin_addr, ip, sizeof ip);
        return std::string(ip) + ":" + std::to_string(ntohs(state_.nsaddr_list[0].sin_port));
    }

    struct __res_state state_;
    bool open_ = false;
};

// The addresses of `target`: from the SRV answer's additional section, else
// by an A query, then AAAA.
std::vector<std::string> addresses_for(Resolver& resolver, const SrvAnswer& answer, const std::string& target,
                                       uint32_t* ttl, std::string* error) {
    std::vector<std::string> found;
    for (const auto& [name, addr] : answer.addresses) {
        if (name == target) found.push_back(addr);
    }
    if (!found.empty()) return found;
    std::vector<unsigned char> buf(NS_MAXMSG);
    for (int type : {ns_t_a, ns_t_aaaa}) {
        int n = resolver.query(target, type, buf.data(), static_cast<int>(buf.size()), error);
        if (n < 0) continue;
        uint32_t answer_ttl = 0;
        if (parse_address_answer(buf.data(), static_cast<size_t>(n), &found, &answer_ttl, error) && !found.empty()) {
            *ttl = std::min(*ttl, answer_ttl);
            return found;
        }
    }
    return found;
}

}  // namespace

bool parse_srv_answer(const unsigned char* msg, size_t len, SrvAnswer* out, std::string* error) {
    ns_msg handle;
    if (!open_message(msg, len, &handle, error)) return false;
    bool truncated = ns_msg_getflag(handle, ns_f_tc) != 0;
    SrvAnswer answer;
    int count = ns_msg_count(handle, ns_s_an);
    for (int i = 0; i < count; i++) {
        ns_rr rr;
        if (ns_parserr(&handle, ns_s_an, i, &rr) != 0) {
            *error = section_error("answer", i, truncated);
            return false;
        }
        if (ns_rr_type(rr) != ns_t_srv || ns_rr_class(rr) != ns_c_in) continue;  // e.g. a CNAME on the way
        const unsigned char* rdata = ns_rr_rdata(rr);
        size_t rdlen = ns_rr_rdlen(rr);
        if (rdlen < 7) {
            *error = "malformed DNS response: SRV record " + std::to_string(i) + " has " + std::to_string(rdlen) +
                     " bytes of data, fewer than the 7 an SRV record needs";
            return false;
        }
        char target[NS_MAXDNAME];
        int used = dn_expand(ns_msg_base(handle), ns_msg_end(handle), rdata + 6, target, sizeof target);
        if (used < 0 || static_cast<size_t>(used) != rdlen - 6) {
            *error = "malformed DNS response: SRV record " + std::to_string(i) +
                     " has a bad target name (a loop, a pointer out of bounds, or a length that disagrees)";
            return false;
        }
        SrvRecord rec;
        rec.priority = ns_get16(rdata);
        rec.weight = ns_get16(rdata + 2);
        rec.port = ns_get16(rdata + 4);
        rec.target = lower(target);
        rec.ttl = ns_rr_ttl(rr);
        answer.records.push_back(std::move(rec));
    }
    // Addresses of the targets, when the server volunteered them. A broken
    // additional section only costs us those hints.
    int extra = ns_msg_count(handle, ns_s_ar);
    for (int i = 0; i < extra; i++) {
        ns_rr rr;
        if (ns_parserr(&handle, ns_s_ar, i, &rr) != 0) break;
        std::string addr;
        if (ns_rr_class(rr) == ns_c_in && address_of(rr, &addr))
            answer.addresses.emplace_back(lower(ns_rr_name(rr)), addr);
    }
    *out = std::move(answer);
    return true;
}

bool parse_address_answer(const unsigned char* msg, size_t len, std::vector<std::string>* out, uint32_t* ttl,
                          std::string* error) {
    ns_msg handle;
    if (!open_message(msg, len, &handle, error)) return false;
    bool truncated = ns_msg_getflag(handle, ns_f_tc) != 0;
    std::vector<std::string> found;
    uint32_t min_ttl = UINT32_MAX;
    int count = ns_msg_count(handle, ns_s_an);
    for (int i = 0; i < count; i++) {
        ns_rr rr;
        if (ns_parserr(&handle, ns_s_an, i, &rr) != 0) {
            *error = section_error("answer", i, truncated);
            return false;
        }
        std::string addr;
        if (ns_rr_class(rr) != ns_c_in || !address_of(rr, &addr)) continue;
        found.push_back(addr);
        min_ttl = std::min(min_ttl, ns_rr_ttl(rr));
    }
    *out = std::move(found);
    *ttl = min_ttl == UINT32_MAX ? 0 : min_ttl;
    return true;
}

std::vector<SrvRecord> order_srv(std::vector<SrvRecord> records, const std::function<double()>& rand01) {
    std::stable_sort(records.begin(), records.end(),
                     [](const SrvRecord& a, const SrvRecord& b) { return a.priority < b.priority; });
    std::vector<SrvRecord> ordered;
    ordered.reserve(records.size());
    for (size_t start = 0; start < records.size();) {
        size_t end = start;
        while (end < records.size() && records[end].priority == records[start].priority) end++;
        // RFC 2782: zero-weight records first in the pool, so they have a
        // small chance when others exist; then draw by running sum.
        std::vector<SrvRecord> pool(records.begin() + static_cast<long>(start),
                                    records.begin() + static_cast<long>(end));
        std::stable_partition(pool.begin(), pool.end(), [](const SrvRecord& r) { return r.weight == 0; });
        while (!pool.empty()) {
            uint64_t total = 0;
            for (const SrvRecord& r : pool) total += r.weight;
            // A draw in [0, total]; the first record whose running sum
            // reaches it is next.
            auto draw = std::min(total, static_cast<uint64_t>(rand01() * static_cast<double>(total + 1)));
            uint64_t running = 0;
            size_t chosen = pool.size() - 1;
            for (size_t i = 0; i < pool.size(); i++) {
                running += pool[i].weight;
                if (running >= draw) {
                    chosen = i;
                    break;
                }
            }
            ordered.push_back(std::move(pool[chosen]));
            pool.erase(pool.begin() + static_cast<long>(chosen));
        }
        start = end;
    }
    return ordered;
}

SrvResult resolve_srv(const std::string& domain, const std::string& dns_server, uint64_t seed_for_order) {
    SrvResult result;
    Resolver resolver;
    if (!resolver.open(dns_server, &result.error)) return result;
    std::string qname = kSrvService + domain;
    std::vector<unsigned char> buf(NS_MAXMSG);
    int n = resolver.query(qname, ns_t_srv, buf.data(), static_cast<int>(buf.size()), &result.error);
    if (n < 0) return result;
    SrvAnswer answer;
    if (!parse_srv_answer(buf.data(), static_cast<size_t>(n), &answer, &result.error)) return result;
    if (answer.records.empty()) {
        result.error = "no SRV records for " + qname;
        return result;
    }
    std::mt19937_64 rng(seed_for_order);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    std::vector<SrvRecord> ordered = order_srv(answer.records, [&] { return uniform(rng); });
    uint32_t ttl = UINT32_MAX;
    std::string unresolved;
    for (const SrvRecord& rec : ordered) {
        if (rec.target.empty()) continue;  // "." : the service is decidedly not offered there
        ttl = std::min(ttl, rec.ttl);
        std::string why;
        std::vector<std::string> addrs = addresses_for(resolver, answer, rec.target, &ttl, &why);
        if (addrs.empty()) {
            unresolved += (unresolved.empty() ? "" : "; ") + rec.target + ": " + (why.empty() ? "no address" : why);
            continue;
        }
        std::string name = rec.target.substr(0, rec.target.find('.'));
        result.seeds.push_back({addrs.front() + ":" + std::to_string(rec.port), name, "srv"});
    }
    if (result.seeds.empty()) {
        result.error = "the SRV records for " + qname + " lead to no usable address" +
                       (unresolved.empty() ? std::string(" (every target is \".\")") : ": " + unresolved);
        return result;
    }
    result.ok = true;
    result.ttl_s = ttl == UINT32_MAX ? 0 : ttl;
    return result;
}

struct Discovery::Work {
    uv_work_t req{};
    Discovery* owner;
    std::shared_ptr<bool> alive;
    std::string domain, server;
    uint64_t seed;
    SrvResult result;
};

Discovery::Discovery(uv_loop_t* loop, resilience::Clock& clock, Settings settings)
    : loop_(loop), clock_(clock), settings_(std::move(settings)), alive_(std::make_shared<bool>(true)) {}

Discovery::~Discovery() { close(); }

void Discovery::close() {
    *alive_ = false;
    waiting_.clear();
}

void Discovery::resolve(Done done) {
    if (!*alive_) return;
    if (settings_.srv_domain.empty()) return done(combine(nullptr));
    if (cached_until_ms_ != 0 && clock_.now_ms() < cached_until_ms_) return done(combine(&cached_));
    waiting_.push_back(std::move(done));
    if (in_flight_) return;
    in_flight_ = true;
    auto work = std::make_unique<Work>(
        Work{{}, this, alive_, settings_.srv_domain, settings_.dns_server, clock_.now_ms() + ++resolutions_, {}});
    work->req.data = work.get();
    int rc = uv_queue_work(
        loop_, &work->req,
        [](uv_work_t* req) {
            auto* w = static_cast<Work*>(req->data);
            w->result = resolve_srv(w->domain, w->server, w->seed);
        },
        [](uv_work_t* req, int) {
            std::unique_ptr<Work> w(static_cast<Work*>(req->data));
            if (*w->alive) w->owner->finished(w->result);
        });
    if (rc == 0) {
        (void)work.release();  // owned by libuv until the after-work callback
        return;
    }
    SrvResult failed;
    failed.error = std::string("cannot queue the DNS lookup: ") + uv_strerror(rc);
    finished(failed);
}

void Discovery::finished(const SrvResult& result) {
    in_flight_ = false;
    if (result.ok && result.ttl_s > 0) {
        cached_ = result;
        cached_until_ms_ = clock_.now_ms() + uint64_t{result.ttl_s} * 1000;
    } else {
        cached_until_ms_ = 0;
    }
    SeedList list = combine(&result);
    std::vector<Done> callers;
    callers.swap(waiting_);
    std::shared_ptr<bool> alive = alive_;
    for (Done& done : callers) {
        if (!*alive) return;  // a caller closed us
        done(list);
    }
}

SeedList Discovery::combine(const SrvResult* srv) const {
    SeedList list;
    auto add = [&list](const Seed& seed) {
        for (const Seed& s : list.seeds) {
            if (s.address == seed.address) return;
        }
        list.seeds.push_back(seed);
    };
    // A static seed may name its node ("node_2@10.0.0.2:7701", membership_address.h).
    for (const std::string& text : settings_.static_seeds) {
        MemberAddress where = split_member_address(text);
        add({where.address, where.node_id, "static"});
    }
    if (srv != nullptr) {
        for (const Seed& seed : srv->seeds) add(seed);
        if (!srv->ok) list.error = "SRV discovery: " + srv->error;
    }
    return list;
}

std::string Discovery::describe(const std::vector<Seed>& seeds) {
    std::string out;
    for (const Seed& s : seeds) {
        out += (out.empty() ? "" : ", ") + s.address;
        if (!s.name.empty()) out += " (" + s.name + ")";
    }
    return out.empty() ? "(none)" : out;
}

}  // namespace rampart::cluster
