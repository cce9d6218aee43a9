#include "peer/peer_network.h"

#include "log.h"

namespace rampart::peer {
namespace {

constexpr int kListenBacklog = 128;
void free_tcp_handle(uv_handle_t* handle) { std::unique_ptr<uv_tcp_t> owned(reinterpret_cast<uv_tcp_t*>(handle)); }

}  // namespace

PeerNetwork::~PeerNetwork() { shutdown(); }

int PeerNetwork::listen(const net::Address& address, std::string* error) {
    listener_ = std::make_unique<uv_tcp_t>();
    uv_tcp_init(loop_, listener_.get());
    listener_->data = this;
    unsigned flags = address.ipv6 ? UV_TCP_IPV6ONLY : 0;
    int rc = uv_tcp_bind(listener_.get(), address.sa(), flags);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener_.get()), kListenBacklog, cb_connection);
    if (rc != 0) {
        *error = uv_strerror(rc);
        uv_close(reinterpret_cast<uv_handle_t*>(listener_.release()), free_tcp_handle);
    }
    return rc;
}

std::string PeerNetwork::bound_address() const {
    if (!listener_) return "";
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (uv_tcp_getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
    return net::format_address(reinterpret_cast<sockaddr*>(&ss));
}

bool PeerNetwork::add_protocol(const std::string& name, const Handler& handler) {
    return protocols_.emplace(name, handler).second;
}

const Handler* PeerNetwork::find_protocol(const std::string& name) const {
    auto it = protocols_.find(name);
    return it == protocols_.end() ? nullptr : &it->second;
}

PeerConnection* PeerNetwork::adopt(std::unique_ptr<PeerConnection> conn) {
    connections_.push_back(std::move(conn));
    PeerConnection* raw = connections_.back().get();
    raw->self_ = std::prev(connections_.end());
    return raw;
}

PeerConnection* PeerNetwork::dial(const std::string& address, const std::string& expected_peer,
                                  const std::string& protocol, const Handler& handler) {
    PeerConnection* conn = adopt(std::make_unique<PeerConnection>(this, PeerConnection::Side::Dialled));
    conn->start_dial(address, expected_peer, protocol, handler);
    return conn;
}

void PeerNetwork::cb_connection(uv_stream_t* listener, int status) {
    auto* network = static_cast<PeerNetwork*>(listener->data);
    if (status < 0) {
        log::warn("peer accept failed", {{"error", uv_strerror(status)}});
        return;
    }
    PeerConnection* conn = network->adopt(std::make_unique<PeerConnection>(network, PeerConnection::Side::Accepted));
    if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(conn->tcp())) != 0) {
        conn->close_now("network_error");
        return;
    }
    conn->start_accepted();
}

void PeerNetwork::remove_owner(const void* owner) {
    std::erase_if(protocols_, [owner](const auto& entry) { return entry.second.owner == owner; });
    std::vector<PeerConnection*> owned;
    for (auto& c : connections_) {
        if (c->handler().owner == owner) owned.push_back(c.get());
    }
    for (PeerConnection* c : owned) c->close_now("");
}

void PeerNetwork::connection_closed(PeerConnection* conn) { connections_.erase(conn->self_); }

void PeerNetwork::shutdown() {
    if (listener_) uv_close(reinterpret_cast<uv_handle_t*>(listener_.release()), free_tcp_handle);
    // close_now may run handlers that dial again; iterate over a snapshot.
    std::vector<PeerConnection*> open;
    for (auto& c : connections_) open.push_back(c.get());
    for (PeerConnection* c : open) c->close_now("");
}

}  // namespace rampart::peer
