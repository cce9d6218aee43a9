// HTTP requests to another node over the peer port ("http" protocol:
// mutual TLS, then plain HTTP/1.1, one request per connection), for the
// membership calls: a joining node asking a seed, a follower relaying a
// join, leave, transfer or join-token call to the leader. Forwarded client
// requests use the pooled cluster/forwarder.h instead; these calls are rare.
//
// Every request goes through the peer retry loop (resilience/peer_retry.h),
// as forwarding does: each attempt is bounded by backoff.budget_ms(), its
// outcome classified by retry.lua and counted in
// rampart_peer_request_total{peer,status}, and a retryable failure of an
// idempotent request is tried again after backoff.lua's delay (or the
// peer's Retry-After), against the target looked up again, under the
// peer's retry budget and circuit breaker. Which calls are idempotent is
// the caller's to say (membership_routes.h says why for each).
//
// An answer is read up to its Content-Length, bounded in size; a failure
// before a complete answer is status 0 with the reason.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cluster/membership_address.h"
#include "peer/socket_bridge.h"
#include "resilience/peer_retry.h"

namespace rampart::cluster {

struct PeerAnswer {
    int status = 0;                  // HTTP status of the last attempt; 0 = no answer (see error)
    std::string body;                // the answer's body
    std::string error;               // why there is no answer: "class after N attempts", "breaker open", ...
    uint64_t retry_after_ms = 0;     // the answer's Retry-After, or the open breaker's next trial
    resilience::RetryResult result;  // how the retry loop ended
};

class MembershipClient {
public:
    using Done = std::function<void(PeerAnswer)>;
    using Headers = std::vector<std::pair<std::string, std::string>>;

    struct Request {
        std::string method = "POST";
        std::string path;
        std::string body;
        std::string content_type = "application/json";
        Headers headers;
        bool idempotent = false;  // may be sent again after a failure (see the header comment)
        int max_attempts = 0;     // above 0: a cap below retry.lua's (PeerRetrier::Request)
        bool guarded = true;      // the peer's budget and breaker apply (PeerRetrier::Request)
        // The node for the next attempt, asked before each one (the leader may
        // have changed); nullopt when none is known now. The node id names
        // the certificate expected ("" only with allow_insecure_peers).
        std::function<std::optional<MemberAddress>()> target;
        // Optional: false before an attempt ends the request as cancelled.
        std::function<bool()> wanted;
    };

    // `retrier`: the node's one peer retry loop (shared with the forwarder:
    // one budget and one breaker per peer); it must outlive the client.
    MembershipClient(uv_loop_t* loop, peer::PeerNetwork* network, resilience::PeerRetrier& retrier);
    ~MembershipClient();
    MembershipClient(const MembershipClient&) = delete;
    MembershipClient& operator=(const MembershipClient&) = delete;

    // `done` runs once, later, unless close_all() ran first.
    void send(Request request, Done done);
    void close_all();

    // A backstop: the retry loop's budget_ms() ends an attempt sooner.
    static constexpr uint64_t kTimeoutMs = 30000;
    static constexpr size_t kMaxAnswer = size_t{1} << 20;

private:
    class Call;
    struct Pending;
    // What one attempt came back with.
    struct Raw {
        int status = 0;
        std::string body;
        std::string error;  // "" with an answer; "tls", "timeout" or another transport error
        uint64_t retry_after_ms = 0;
        bool not_applied = false;  // X-Rampart-Not-Applied (cluster/not_applied.h)
    };
    using RawDone = std::function<void(Raw)>;

    resilience::PeerRetrier::Abort attempt(const std::shared_ptr<Pending>& p,
                                           const resilience::PeerRetrier::Done& done);
    void finished(const std::shared_ptr<Pending>& p, const resilience::RetryResult& r);
    void call_freed(uint64_t id);

    uv_loop_t* loop_;
    peer::SocketBridge sockets_;
    resilience::PeerRetrier& retrier_;
    std::map<uint64_t, std::unique_ptr<Call>> calls_;       // attempts on the wire, by id
    std::map<Pending*, std::shared_ptr<Pending>> pending_;  // requests in the retry loop
    uint64_t next_call_ = 1;
    bool closing_ = false;
};

// The label a peer's requests are counted under: its node id, else its address.
std::string peer_label(const MemberAddress& peer);

}  // namespace rampart::cluster
