// One request and its response on a connection. Handlers receive an
// Exchange and call respond() once, now or later (asynchronous handlers
// keep a shared_ptr). If the connection closes first, respond() is a no-op.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "auth/identity.h"
#include "http/parser.h"
#include "http/response.h"

namespace rampart::net {
struct PeerIdentity;
}

namespace rampart::http {

class Connection;
struct Route;

class Exchange : public std::enable_shared_from_this<Exchange> {
public:
    Exchange(Connection* conn, Request request, std::string request_id, std::string source_ip,
             class Pipeline* pipeline = nullptr);

    const Request& request() const { return request_; }
    const std::string& request_id() const { return request_id_; }
    // Unique within the process (request ids may come from clients).
    uint64_t serial() const { return serial_; }
    const std::string& source_ip() const { return source_ip_; }
    const Route* route() const { return route_; }

    // The client's verified TLS certificate, if it sent one (nullptr
    // over plain HTTP, or once the connection is gone).
    const net::PeerIdentity* client_certificate() const;
    // True when the request came over another node's peer connection.
    bool from_peer() const;

    // Set by authentication before admission hooks and the handler run.
    const auth::Identity& identity() const { return identity_; }
    void set_identity(auth::Identity identity) { identity_ = std::move(identity); }
    // Added to whatever response this request gets (e.g. RateLimit headers).
    void add_response_header(std::string name, std::string value) {
        extra_headers_.emplace_back(std::move(name), std::move(value));
    }
    double elapsed_seconds() const;
    // Serve this read from the node's own state, as if it had asked for
    // ?stale: the cluster has no leader and recovery.on_quorum_loss said
    // serve_stale. Only before the handler runs.
    void downgrade_to_stale();

    void respond(Response response);
    bool responded() const { return responded_; }
    // True when the client is gone: async handlers may stop early.
    bool abandoned() const { return conn_ == nullptr; }

private:
    friend class Connection;
    Connection* conn_;          // cleared by the connection when it closes
    class Pipeline* pipeline_;  // sees the response before it is queued
    Request request_;
    std::string request_id_;
    std::string source_ip_;
    const Route* route_ = nullptr;
    auth::Identity identity_;
    std::vector<std::pair<std::string, std::string>> extra_headers_;
    Response response_;
    bool responded_ = false;
    bool close_after_ = false;  // the connection closes once this is sent
    uint64_t start_ns_ = 0;
    uint64_t serial_ = 0;
};

}  // namespace rampart::http
