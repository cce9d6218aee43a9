// The peer port: accepts node-to-node connections, dials other nodes, and
// routes each connection to the handler its preamble names. Transport
// security comes from the transport plugin's peer context; without one,
// connections are plain TCP, which only allow_insecure_peers permits.
#pragma once

#include <uv.h>

#include <list>
#include <map>
#include <memory>
#include <string>

#include "net/address.h"
#include "net/transport.h"
#include "peer/peer_conn.h"

namespace rampart::peer {

inline constexpr uint64_t kPeerHandshakeTimeoutMs = 5000;

class PeerNetwork {
public:
    explicit PeerNetwork(uv_loop_t* loop) : loop_(loop) {}
    ~PeerNetwork();
    PeerNetwork(const PeerNetwork&) = delete;
    PeerNetwork& operator=(const PeerNetwork&) = delete;

    // New connections use `context` (nullptr = plain TCP); connections
    // already open keep theirs.
    void set_transport(const net::Transport* transport, std::shared_ptr<net::TransportContext> context) {
        transport_ = transport;
        context_ = std::move(context);
    }
    const net::Transport* transport() const { return context_ ? transport_ : nullptr; }
    const std::shared_ptr<net::TransportContext>& context() const { return context_; }

    int listen(const net::Address& address, std::string* error);
    std::string bound_address() const;

    // Handlers for accepted connections, by preamble protocol name.
    bool add_protocol(const std::string& name, const Handler& handler);
    const Handler* find_protocol(const std::string& name) const;

    // Drop a plugin's protocols and close its connections (it is unloading).
    void remove_owner(const void* owner);

    // Never null; failures arrive through the handler's on_open/on_close.
    PeerConnection* dial(const std::string& address, const std::string& expected_peer, const std::string& protocol,
                         const Handler& handler);

    // Close the listener and every connection.
    void shutdown();
    uv_loop_t* loop() const { return loop_; }
    size_t connection_count() const { return connections_.size(); }
    void connection_closed(PeerConnection* conn);

private:
    static void cb_connection(uv_stream_t* listener, int status);
    PeerConnection* adopt(std::unique_ptr<PeerConnection> conn);

    uv_loop_t* loop_;
    const net::Transport* transport_ = nullptr;
    std::shared_ptr<net::TransportContext> context_;
    std::unique_ptr<uv_tcp_t> listener_;
    std::map<std::string, Handler, std::less<>> protocols_;
    std::list<std::unique_ptr<PeerConnection>> connections_;
};

}  // namespace rampart::peer
