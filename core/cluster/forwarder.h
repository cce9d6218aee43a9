// Follower -> leader forwarding. A request that needs the leader (a write,
// or a read at `default`/`strong` consistency) and reaches a follower is
// sent to the leader over the peer port (the "http" protocol: mutual TLS,
// then plain HTTP/1.1), and the leader's answer is relayed to the client
// unchanged. The leader serves those requests with its ordinary HTTP
// server; the client's own token travels inside the encrypted peer
// connection and decides the request's rights there, as it would here.
//
// Each forwarded request has a connection of its own from a small pool per
// leader (no pipelining, so a slow request never holds up the next one).
// A connection that fails before the answer arrives yields 503 with
// Retry-After: a write may or may not have been applied, and a client
// retrying it with the same Idempotency-Key gets exactly-once either way.
#pragma once

#include <uv.h>

#include <map>
#include <memory>
#include <string>

#include "peer/socket_bridge.h"

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
    Forwarder(uv_loop_t* loop, peer::PeerNetwork* network, std::string self_id);
    ~Forwarder();
    Forwarder(const Forwarder&) = delete;
    Forwarder& operator=(const Forwarder&) = delete;

    // Serve other nodes' forwarded requests with `server` (peer port, "http").
    bool install(http::Server* server);
    // Send the request to the leader; the exchange is answered later.
    void forward(const std::shared_ptr<http::Exchange>& ex, const std::string& leader_id,
                 const std::string& leader_address);
    void close_all();

    static constexpr size_t kMaxPerLeader = 16;    // connections to one leader
    static constexpr size_t kMaxWaiting = 1024;    // requests queued beyond those
    static constexpr uint64_t kTimeoutMs = 15000;  // for one forwarded answer

private:
    class Channel;
    struct Pool;
    friend class Channel;

    void start_next(Pool& pool);
    void dial_failed(Pool* pool, Channel* channel);
    void channel_done(Channel* channel, bool reusable);
    void channel_freed(Channel* channel);

    uv_loop_t* loop_;
    std::string self_id_;
    peer::SocketBridge sockets_;
    std::map<std::string, std::unique_ptr<Pool>> pools_;  // by leader address
};

// Whether a request must be served by the leader: writes under /v1/ (but
// not node-local admin routes), and reads of replicated state at default
// or strong consistency. Blocking reads (?index=) are served locally.
bool needs_leader(const http::Request& request);

}  // namespace rampart::cluster
