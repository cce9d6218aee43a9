#include "peer/socket_bridge.h"

#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "net/transport.h"
#include "net/wire_queue.h"
#include "peer/peer_conn.h"
#include "peer/peer_network.h"

namespace rampart::peer {
namespace {

char g_pipe_buffer[64 * 1024];

}  // namespace

// A peer connection joined to our end of a socketpair.
class SocketBridge::Link {
public:
    std::string node_id;  // the node a dial expects (empty when accepted)

    Link(SocketBridge* bridge, rampart_conn* conn, DialResultFn dial_done)
        : bridge_(bridge),
          conn_(conn),
          dial_done_(std::move(dial_done)),
          to_user_(reinterpret_cast<uv_stream_t*>(&pipe_), [this](int status) { user_drained(status); }) {
        pipe_.data = this;
    }

    // The user's end of a new socketpair in *user_fd; ours is read here.
    bool open_pipe(int* user_fd) {
        int fds[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return false;
        uv_pipe_init(bridge_->loop_, &pipe_, 0);
        if (uv_pipe_open(&pipe_, fds[1]) != 0) {
            ::close(fds[0]);
            ::close(fds[1]);
            uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), nullptr);
            return false;
        }
        pipe_open_ = true;
        *user_fd = fds[0];
        read_user(true);
        return true;
    }

    // Peer -> user. A slow user pauses the peer connection.
    void from_peer(const char* data, size_t len) {
        if (!pipe_open_ || pipe_closing_) return;
        to_user_.append(data, len);
        if (to_user_.flush() != 0) {
            close();
            return;
        }
        if (to_user_.backlog() > kHighWater && conn_ != nullptr) {
            peer_paused_ = true;
            conn_->conn->pause_reading(true);
        }
    }

    // The peer connection drained what we wrote: read the user again.
    void peer_writable() { read_user(true); }

    // The peer connection is gone (on_close): close the user's side.
    void peer_closed() {
        conn_ = nullptr;
        close();
    }

    // Close both sides; the bridge frees the link once the pipe has closed.
    // The peer connection goes last: its on_close may free this link (when
    // no pipe is open), so nothing here may run after it.
    void close() {
        if (pipe_open_ && !pipe_closing_) {
            pipe_closing_ = true;
            to_user_.detach();
            uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), cb_pipe_closed);
        }
        if (conn_ != nullptr) {
            rampart_conn* conn = conn_;
            conn_ = nullptr;
            conn->conn->close_graceful();
        }
    }

    // The dial's outcome, once (not after a cancel).
    void finish_dial(int fd, const std::string& error_class = "") {
        DialResultFn done = std::move(dial_done_);
        dial_done_ = nullptr;
        if (done) done(fd, fd >= 0 ? std::string() : error_class.empty() ? "network_error" : error_class);
    }
    bool dialling() const { return static_cast<bool>(dial_done_); }
    void cancel_dial() { dial_done_ = nullptr; }
    bool pipe_closing() const { return pipe_closing_; }

private:
    void read_user(bool on) {
        if (!pipe_open_ || pipe_closing_ || on == user_reading_) return;
        auto* stream = reinterpret_cast<uv_stream_t*>(&pipe_);
        if (on) {
            user_reading_ = uv_read_start(stream, cb_alloc, cb_read) == 0;
        } else {
            uv_read_stop(stream);
            user_reading_ = false;
        }
    }

    void user_drained(int status) {
        if (status < 0) {
            close();
        } else if (peer_paused_ && to_user_.backlog() < kHighWater / 2 && conn_ != nullptr) {
            peer_paused_ = false;
            conn_->conn->pause_reading(false);
        }
    }

    static void cb_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
        *buf = uv_buf_init(g_pipe_buffer, sizeof g_pipe_buffer);
    }

    // User -> peer. A slow peer pauses reading from the user.
    static void cb_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
        auto* link = static_cast<Link*>(stream->data);
        if (nread < 0) {
            link->close();  // the user closed its end
            return;
        }
        if (nread == 0 || link->conn_ == nullptr) return;
        int64_t held = link->conn_->conn->write(buf->base, static_cast<size_t>(nread));
        if (held < 0) {
            link->close();
        } else if (static_cast<size_t>(held) > kHighWater) {
            link->read_user(false);
        }
    }

    static void cb_pipe_closed(uv_handle_t* handle) {
        auto* link = static_cast<Link*>(handle->data);
        link->bridge_->link_closed(link);
    }

    SocketBridge* bridge_;
    rampart_conn* conn_;
    DialResultFn dial_done_;
    uv_pipe_t pipe_{};
    net::WireQueue to_user_;
    bool pipe_open_ = false;
    bool pipe_closing_ = false;
    bool user_reading_ = false;
    bool peer_paused_ = false;
};

SocketBridge::SocketBridge(uv_loop_t* loop, PeerNetwork* network) : loop_(loop), network_(network) {}

SocketBridge::~SocketBridge() = default;

const rampart_conn_callbacks* SocketBridge::callbacks() {
    static const rampart_conn_callbacks cb = {sizeof(rampart_conn_callbacks), cb_open, cb_data, cb_close, cb_writable};
    return &cb;
}

bool SocketBridge::listen(const std::string& protocol, AcceptFn on_accept) {
    on_accept_ = std::move(on_accept);
    Handler h;
    h.callbacks = *callbacks();
    h.arg = this;
    h.owner = this;
    return network_->add_protocol(protocol, h);
}

SocketBridge::Link* SocketBridge::dial(const std::string& address, const std::string& node_id,
                                       const std::string& protocol, DialFn done) {
    return dial(address, node_id, protocol, [done = std::move(done)](int fd, const std::string&) { done(fd); });
}

SocketBridge::Link* SocketBridge::dial(const std::string& address, const std::string& node_id,
                                       const std::string& protocol, DialResultFn done) {
    Handler h;
    h.callbacks = *callbacks();
    h.arg = this;
    h.owner = this;
    PeerConnection* conn = network_->dial(address, node_id, protocol, h);
    auto link = std::make_unique<Link>(this, conn->handle(), std::move(done));
    Link* raw = link.get();
    raw->node_id = node_id;
    links_[conn->handle()] = std::move(link);
    return raw;
}

void SocketBridge::cancel(Link* dial) {
    for (auto& [conn, link] : links_) {
        if (link.get() == dial) {
            link->cancel_dial();
            link->close();
            return;
        }
    }
}

SocketBridge::Link* SocketBridge::link_of(rampart_conn* conn) {
    auto it = links_.find(conn);
    return it == links_.end() ? nullptr : it->second.get();
}

void SocketBridge::cb_open(void* arg, rampart_conn* conn, const rampart_handshake_result* result) {
    auto* self = static_cast<SocketBridge*>(arg);
    Link* link = self->link_of(conn);
    if (link == nullptr) {
        self->accepted(conn, result);
        return;
    }
    if (!link->dialling()) return;  // cancelled meanwhile
    if (result->error != RAMPART_TRANSPORT_OK) {
        if (self->dial_failed_) self->dial_failed_(link->node_id, result->reason != nullptr ? result->reason : "");
        // The connection closes itself; on_close frees the link.
        link->finish_dial(-1, net::error_class_name(result->error));
        return;
    }
    int fd = -1;
    if (!link->open_pipe(&fd)) {
        link->finish_dial(-1);
        link->close();  // may free the link: nothing after this
        return;
    }
    link->finish_dial(fd);
}

void SocketBridge::accepted(rampart_conn* conn, const rampart_handshake_result* result) {
    auto link = std::make_unique<Link>(this, conn, nullptr);
    int fd = -1;
    if (!on_accept_ || !link->open_pipe(&fd)) {
        conn->conn->close_graceful();
        return;
    }
    Link* raw = link.get();
    links_[conn] = std::move(link);
    const rampart_peer_identity* peer = result->peer;
    if (!on_accept_(peer, fd)) {
        ::close(fd);
        raw->close();
    }
}

void SocketBridge::cb_data(void* arg, rampart_conn* conn, const char* data, size_t len) {
    if (Link* link = static_cast<SocketBridge*>(arg)->link_of(conn)) link->from_peer(data, len);
}

void SocketBridge::cb_writable(void* arg, rampart_conn* conn) {
    if (Link* link = static_cast<SocketBridge*>(arg)->link_of(conn)) link->peer_writable();
}

void SocketBridge::cb_close(void* arg, rampart_conn* conn, const char* error_class) {
    auto* self = static_cast<SocketBridge*>(arg);
    auto it = self->links_.find(conn);
    if (it == self->links_.end()) return;
    std::unique_ptr<Link> link = std::move(it->second);
    self->links_.erase(it);
    link->finish_dial(-1, error_class != nullptr ? error_class : "");  // closed before it opened
    link->peer_closed();
    // Freed now unless its pipe is still closing (cb_pipe_closed frees it).
    if (link->pipe_closing()) self->closing_.push_back(std::move(link));
}

void SocketBridge::link_closed(Link* link) {
    std::erase_if(closing_, [link](const std::unique_ptr<Link>& l) { return l.get() == link; });
    for (auto it = links_.begin(); it != links_.end(); ++it) {
        if (it->second.get() == link) {
            // The peer connection is still closing: its on_close must no
            // longer find this link.
            links_.erase(it);
            return;
        }
    }
}

void SocketBridge::close_all() {
    std::vector<Link*> open;
    for (auto& [conn, link] : links_) open.push_back(link.get());
    for (Link* link : open) link->close();
}

}  // namespace rampart::peer
