// Follower -> leader forwarding. A request that needs the leader (a write,
// or a read at `default`/`strong` consistency) and reaches a follower is
// sent to the leader over the peer port (the "http" protocol: mutual TLS,
// then plain HTTP/1.1), and the leader's answer is relayed to the client
// unchanged. The leader serves those requests with its ordinary HTTP
// server; the client's own token travels inside the encrypted peer
// connection and decides the request's rights there, as it would here.
//
// Each attempt has a connection of its own from a small pool per leader
// (no pipelining, so a slow request never holds up the next one). Every
// forwarded request goes through the peer retry loop
// (resilience/peer_retry.h): each attempt is bounded by backoff.budget_ms(),
// its outcome is classified by retry.lua, and a retryable failure (the
// leader unreachable, a 5xx, a timeout) is tried again after backoff.lua's
// delay, or the leader's Retry-After, against the leader known *then* (it
// may have changed). Reads (GET/HEAD) and writes with an Idempotency-Key
// are retried; a write without one is sent once (it may have been applied),
// and a TLS failure is never retried. A per-leader retry budget and
// circuit breaker keep an outage from becoming a retry storm: an open
// breaker answers 503 at once, with Retry-After set to its next trial.
//
// When the retries end without an answer, the client gets 503 with
// Retry-After: a write may or may not have been applied, and a client
// retrying it with the same Idempotency-Key gets exactly-once either way.
// When they end with an answer (a 5xx the budget stopped retrying, a 4xx),
// that answer is relayed.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "peer/socket_bridge.h"
#include "resilience/clock.h"
#include "resilience/peer_retry.h"

namespace rampart::metrics {
class Registry;
}
namespace rampart::policy {
class PolicyHost;
}

namespace rampart::http {
class Exchange;
class Server;
struct Request;
}  // namespace rampart::http

namespace rampart::cluster {

// The header a forwarded request carries: the forwarding node's id. A
// leader that lost its leadership meanwhile answers 503 instead of
// forwarding again (no loops).
inline constexpr const char* kForwardedBy = "X-Rampart-Forwarded-By";

class Forwarder {
public:
    struct Leader {
        std::string node_id, address;
    };
    // The leader as this node knows it now; nullopt while there is none
    // (or when this node leads: nothing to forward to).
    // (A lookup naming this node means it leads now.)
    using LeaderLookup = std::function<std::optional<Leader>()>;
    // Runs the request's own handler here: a request that waited for a
    // retry while this node took over the leadership is served locally.
    using ServeHere = std::function<void(http::Exchange&)>;

    // `retrier` is the node's one peer retry loop, shared with the membership
    // client (membership_client.h) so that each peer has one budget and one
    // breaker whatever the request; it must outlive the forwarder.
    Forwarder(uv_loop_t* loop, peer::PeerNetwork* network, std::string self_id, resilience::PeerRetrier& retrier,
              LeaderLookup lookup, ServeHere serve_here);
    ~Forwarder();
    Forwarder(const Forwarder&) = delete;
    Forwarder& operator=(const Forwarder&) = delete;

    // Serve other nodes' forwarded requests with `server` (peer port, "http").
    bool install(http::Server* server);
    // Send the request to the leader (its first attempt goes to this one;
    // retries ask the lookup); the exchange is answered later.
    void forward(const std::shared_ptr<http::Exchange>& ex, const std::string& leader_id,
                 const std::string& leader_address);
    void close_all();

    static constexpr size_t kMaxPerLeader = 16;  // connections to one leader
    static constexpr size_t kMaxWaiting = 1024;  // attempts queued beyond those

private:
    class Channel;
    struct Pool;
    struct Attempt;
    struct Forwarded;
    friend class Channel;

    resilience::PeerRetrier::Abort send(const std::shared_ptr<Forwarded>& f, const resilience::PeerRetrier::Done& done);
    void finished(Forwarded* f, const resilience::RetryResult& r);
    void start_next(Pool& pool);
    void dial_failed(Pool* pool, Channel* channel, const std::string& error_class);
    void channel_done(Channel* channel, bool reusable);
    void channel_freed(Channel* channel);

    uv_loop_t* loop_;
    std::string self_id_;
    LeaderLookup lookup_;
    ServeHere serve_here_;
    peer::SocketBridge sockets_;
    resilience::PeerRetrier& retrier_;
    std::map<std::string, std::unique_ptr<Pool>> pools_;          // by leader address
    std::map<Forwarded*, std::shared_ptr<Forwarded>> forwarded_;  // requests in the retry loop
};

// Whether a request must be served by the leader: writes under /v1/ (but
// not node-local admin routes), and reads of replicated state at default
// or strong consistency. Blocking reads (?index=) are served locally.
bool needs_leader(const http::Request& request);

}  // namespace rampart::cluster
