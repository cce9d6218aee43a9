// The HTTP/1.1 front: a libuv TCP listener, connections with keep-alive,
// pipelining (answers leave in request order, even when handlers finish out
// of order), per-request deadlines against slowloris, idle timeouts, a
// connection cap, and graceful drain.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>

#include "http/exchange.h"
#include "http/parser.h"
#include "http/pipeline.h"
#include "http/router.h"
#include "net/address.h"
#include "net/transport.h"

namespace rampart::http {

struct ServerSettings {
    Limits limits;
    uint64_t request_timeout_ms = 5000;  // whole request must arrive in this time
    uint64_t idle_timeout_ms = 60000;    // keep-alive connection with nothing to do
    size_t max_connections = 1024;
    size_t max_pipelined = 32;  // requests queued on one connection before reading pauses
};

class Connection;

class Server {
public:
    Server(uv_loop_t* loop, const Router* router, const ServerSettings& settings);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Bind and listen; returns 0 or a libuv error code (message in *error).
    int listen(const net::Address& address, std::string* error);
    // The address actually bound (resolves port 0).
    std::string bound_address() const;

    // Serve a connected socket that arrived another way: another node's
    // forwarded requests, handed over by the peer port. `source` stands in
    // for its address in logs and limits, `peer` (may be null) is the
    // identity its certificate proved. Returns 0 or a libuv error (the fd
    // is closed either way on error).
    int adopt(uv_os_sock_t fd, std::string source, const net::PeerIdentity* peer);

    // New limits apply to new requests; requests in progress keep theirs.
    void apply_settings(const ServerSettings& settings);
    const ServerSettings& settings() const { return settings_; }

    // Stop accepting, close idle connections, let busy ones finish their
    // current requests. `on_drained` runs once no connection is left.
    void begin_drain(std::function<void()> on_drained);
    bool draining() const { return draining_; }
    // Close every connection now (the drain deadline passed).
    void close_all();
    // Close the listener and all connections; the loop must then run so
    // libuv can finish closing the handles.
    void shutdown();

    // Authentication and plugin hooks around every request (may be null).
    void set_pipeline(Pipeline* pipeline) { pipeline_ = pipeline; }
    Pipeline* pipeline() const { return pipeline_; }

    // HTTPS: new connections are wrapped by `context` (nullptr = plain
    // HTTP). Connections already open keep the context they started with.
    void set_tls(const net::Transport* transport, std::shared_ptr<net::TransportContext> context) {
        transport_ = transport;
        tls_context_ = std::move(context);
    }
    const net::Transport* transport() const { return transport_; }
    const std::shared_ptr<net::TransportContext>& tls_context() const { return tls_context_; }

    size_t connection_count() const { return connections_.size(); }
    uv_loop_t* loop() const { return loop_; }
    const Router& router() const { return *router_; }
    // Cached "Date" header value, refreshed once a second.
    std::string_view date();

private:
    friend class Connection;
    static void cb_connection(uv_stream_t* listener, int status);
    void accept_one();
    void connection_closed(Connection* conn);
    void close_listener();

    uv_loop_t* loop_;
    const Router* router_;
    Pipeline* pipeline_ = nullptr;
    const net::Transport* transport_ = nullptr;
    std::shared_ptr<net::TransportContext> tls_context_;
    ServerSettings settings_;
    std::unique_ptr<uv_tcp_t> listener_;
    bool listening_ = false;
    bool draining_ = false;
    std::function<void()> on_drained_;
    std::list<std::unique_ptr<Connection>> connections_;
    long date_second_ = 0;
    std::string date_;
    uint64_t accept_errors_logged_at_ = 0;
};

}  // namespace rampart::http
