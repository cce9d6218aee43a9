#include "http/server.h"

#include <unistd.h>

#include <ctime>

#include "http/connection.h"
#include "log.h"

namespace rampart::http {
namespace {

constexpr int kListenBacklog = 511;

void free_tcp_handle(uv_handle_t* handle) { std::unique_ptr<uv_tcp_t> owned(reinterpret_cast<uv_tcp_t*>(handle)); }

}  // namespace

Server::Server(uv_loop_t* loop, const Router* router, const ServerSettings& settings)
    : loop_(loop), router_(router), settings_(settings) {}

Server::~Server() {
    // shutdown() + running the loop must come first: libuv still owns
    // handles until their close callbacks ran.
    if (!connections_.empty()) log::error("http server destroyed with open connections");
}

int Server::listen(const net::Address& address, std::string* error) {
    listener_ = std::make_unique<uv_tcp_t>();
    uv_tcp_init(loop_, listener_.get());
    listener_->data = this;
    unsigned flags = address.ipv6 ? UV_TCP_IPV6ONLY : 0;
    int rc = uv_tcp_bind(listener_.get(), address.sa(), flags);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener_.get()), kListenBacklog, cb_connection);
    if (rc != 0) {
        *error = std::string(uv_strerror(rc));
        uv_close(reinterpret_cast<uv_handle_t*>(listener_.release()), free_tcp_handle);
        return rc;
    }
    listening_ = true;
    return 0;
}

std::string Server::bound_address() const {
    if (!listener_) return "";
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (uv_tcp_getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
    return net::format_address(reinterpret_cast<sockaddr*>(&ss));
}

void Server::apply_settings(const ServerSettings& settings) { settings_ = settings; }

void Server::cb_connection(uv_stream_t* listener, int status) {
    auto* server = static_cast<Server*>(listener->data);
    if (status < 0) {
        // Out of descriptors or memory: say so, at most once a second
        // (libuv itself sheds the pending connection).
        uint64_t now = uv_now(server->loop_);
        if (now - server->accept_errors_logged_at_ >= 1000) {
            server->accept_errors_logged_at_ = now;
            log::warn("accept failed", {{"error", uv_strerror(status)}});
        }
        return;
    }
    server->accept_one();
}

void Server::accept_one() {
    bool over_capacity = connections_.size() >= settings_.max_connections || draining_;
    auto conn = std::make_unique<Connection>(this, settings_.limits);
    Connection* raw = conn.get();
    connections_.push_back(std::move(conn));
    raw->self_ = std::prev(connections_.end());
    if (uv_accept(reinterpret_cast<uv_stream_t*>(listener_.get()), reinterpret_cast<uv_stream_t*>(raw->tcp())) != 0) {
        raw->close();
        return;
    }
    raw->start(over_capacity);
}

int Server::adopt(uv_os_sock_t fd, std::string source, const net::PeerIdentity* peer) {
    if (draining_) {
        ::close(fd);
        return UV_ECANCELED;
    }
    auto conn = std::make_unique<Connection>(this, settings_.limits);
    Connection* raw = conn.get();
    connections_.push_back(std::move(conn));
    raw->self_ = std::prev(connections_.end());
    int rc = uv_tcp_open(raw->tcp(), fd);
    if (rc != 0) {
        ::close(fd);
        raw->close();
        return rc;
    }
    raw->start_adopted(std::move(source), peer);
    return 0;
}

void Server::connection_closed(Connection* conn) {
    connections_.erase(conn->self_);
    if (draining_ && connections_.empty() && on_drained_) {
        auto done = std::move(on_drained_);
        on_drained_ = nullptr;
        done();
    }
}

void Server::close_listener() {
    if (!listening_) return;
    listening_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(listener_.release()), free_tcp_handle);
}

void Server::begin_drain(std::function<void()> on_drained) {
    draining_ = true;
    on_drained_ = std::move(on_drained);
    close_listener();
    // close_when_idle() may close a connection, which erases it from the
    // list: step to the next element first.
    for (auto it = connections_.begin(); it != connections_.end();) {
        Connection* conn = (it++)->get();
        if (conn->idle()) {
            conn->close();
        } else {
            conn->close_when_idle();
        }
    }
    if (connections_.empty() && on_drained_) {
        auto done = std::move(on_drained_);
        on_drained_ = nullptr;
        done();
    }
}

void Server::close_all() {
    for (auto it = connections_.begin(); it != connections_.end();) (it++)->get()->close();
}

void Server::shutdown() {
    close_listener();
    close_all();
}

std::string_view Server::date() {
    long now = static_cast<long>(time(nullptr));
    if (now != date_second_) {
        date_second_ = now;
        date_ = http_date(now);
    }
    return date_;
}

}  // namespace rampart::http
