// Peer connections as plain sockets: for a protocol on the peer port, each
// connection (accepted or dialled, mutual TLS through the transport plugin)
// is joined to one end of a socketpair, and its user gets the other end as
// an ordinary fd: the Raft engine, the HTTP server, an HTTP client. Both
// directions apply back-pressure: a slow fd user pauses reading from the
// peer, a slow peer pauses reading from the fd, so no buffer grows past
// kHighWater.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rampart/plugin.h"

namespace rampart::peer {

class PeerNetwork;

class SocketBridge {
public:
    // An accepted connection of the protocol, with the identity its
    // certificate proved (nullptr on insecure peers). Take `fd` and return
    // true, or return false to refuse (the bridge closes everything).
    using AcceptFn = std::function<bool(const rampart_peer_identity* peer, int fd)>;
    // A dial finished: a connected fd, or -1 (the reason is in the log).
    using DialFn = std::function<void(int fd)>;
    // A dial's handshake failed: the node id dialled and the transport's
    // stable reason ("pin_mismatch", "unknown_ca", ...).
    using DialFailedFn = std::function<void(const std::string& node_id, const char* reason)>;
    // The same with why it failed: "" with a connected fd, else the
    // transport's error class ("tls_error", "network_error", "timeout").
    using DialResultFn = std::function<void(int fd, const std::string& error_class)>;
    class Link;  // one bridged connection; a dial's handle

    SocketBridge(uv_loop_t* loop, PeerNetwork* network);
    ~SocketBridge();
    SocketBridge(const SocketBridge&) = delete;
    SocketBridge& operator=(const SocketBridge&) = delete;

    // Serve `protocol` on the peer port (one protocol per bridge).
    bool listen(const std::string& protocol, AcceptFn on_accept);
    // Dial `address` expecting `node_id` in its certificate. `done` runs
    // once, later (never inside dial), unless the dial is cancelled.
    Link* dial(const std::string& address, const std::string& node_id, const std::string& protocol, DialFn done);
    Link* dial(const std::string& address, const std::string& node_id, const std::string& protocol, DialResultFn done);
    void cancel(Link* dial);
    void close_all();
    void set_dial_failed(DialFailedFn fn) { dial_failed_ = std::move(fn); }

    static constexpr size_t kHighWater = size_t{1} << 20;

private:
    friend class Link;

    static const rampart_conn_callbacks* callbacks();
    static void cb_open(void* arg, rampart_conn* conn, const rampart_handshake_result* result);
    static void cb_data(void* arg, rampart_conn* conn, const char* data, size_t len);
    static void cb_close(void* arg, rampart_conn* conn, const char* error_class);
    static void cb_writable(void* arg, rampart_conn* conn);

    Link* link_of(rampart_conn* conn);
    void accepted(rampart_conn* conn, const rampart_handshake_result* result);
    void link_closed(Link* link);

    uv_loop_t* loop_;
    PeerNetwork* network_;
    AcceptFn on_accept_;
    DialFailedFn dial_failed_;
    std::map<rampart_conn*, std::unique_ptr<Link>> links_;
    std::vector<std::unique_ptr<Link>> closing_;  // links whose pipe is still closing
};

}  // namespace rampart::peer
