#include "cluster/raft_bridge.h"

#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "net/wire_queue.h"
#include "peer/peer_conn.h"
#include "peer/peer_network.h"

namespace rampart::cluster {
namespace {

constexpr const char* kProtocol = "raft";
char g_pipe_buffer[64 * 1024];

}  // namespace

uint64_t raft_id_for(std::string_view node_id) {
    uint64_t h = 14695981039346656037ull;
    for (unsigned char c : node_id) {
        h ^= c;
        h *= 1099511628211ull;
    }
    h &= 0x7fffffffffffffffull;  // the engine's ids are printed signed in places
    return h == 0 ? 1 : h;
}

// One engine connection: a peer connection joined to a socketpair end.
class RaftBridge::Link {
public:
    Link(RaftBridge* bridge, rampart_conn* conn, rampart_raft_connect* pending)
        : bridge_(bridge),
          conn_(conn),
          pending_(pending),
          to_engine_(reinterpret_cast<uv_stream_t*>(&pipe_), [this](int status) { engine_drained(status); }) {
        pipe_.data = this;
    }

    // The engine's end of a new socketpair in *engine_fd; ours is read here.
    bool open_pipe(int* engine_fd) {
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
        *engine_fd = fds[0];
        read_engine(true);
        return true;
    }

    // Peer -> engine. A slow engine pauses the peer connection.
    void from_peer(const char* data, size_t len) {
        if (!pipe_open_) return;
        to_engine_.append(data, len);
        if (to_engine_.flush() != 0) {
            close();
            return;
        }
        if (to_engine_.backlog() > kHighWater && conn_ != nullptr) {
            peer_paused_ = true;
            conn_->conn->pause_reading(true);
        }
    }

    // The peer connection drained what we wrote: read the engine again.
    void peer_writable() { read_engine(true); }

    // The peer connection is gone (on_close): close the engine's side.
    void peer_closed() {
        conn_ = nullptr;
        close();
    }

    // Close both sides; the bridge frees the link once the pipe has closed.
    void close() {
        if (conn_ != nullptr) {
            rampart_conn* conn = conn_;
            conn_ = nullptr;
            conn->conn->close_graceful();
        }
        if (pipe_open_ && !pipe_closing_) {
            pipe_closing_ = true;
            to_engine_.detach();
            uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), cb_pipe_closed);
        }
    }

    bool pipe_open() const { return pipe_open_; }
    bool pipe_closing() const { return pipe_closing_; }
    rampart_raft_connect* pending_ = nullptr;

private:
    void read_engine(bool on) {
        if (!pipe_open_ || pipe_closing_ || on == engine_reading_) return;
        auto* stream = reinterpret_cast<uv_stream_t*>(&pipe_);
        engine_reading_ = on ? uv_read_start(stream, cb_alloc, cb_read) == 0 : (uv_read_stop(stream), false);
    }

    void engine_drained(int status) {
        if (status < 0) {
            close();
        } else if (peer_paused_ && to_engine_.backlog() < kHighWater / 2 && conn_ != nullptr) {
            peer_paused_ = false;
            conn_->conn->pause_reading(false);
        }
    }

    static void cb_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
        *buf = uv_buf_init(g_pipe_buffer, sizeof g_pipe_buffer);
    }

    // Engine -> peer. A slow peer pauses reading from the engine.
    static void cb_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
        auto* link = static_cast<Link*>(stream->data);
        if (nread < 0) {
            link->close();  // the engine closed its end
            return;
        }
        if (nread == 0 || link->conn_ == nullptr) return;
        int64_t held = link->conn_->conn->write(buf->base, static_cast<size_t>(nread));
        if (held < 0) {
            link->close();
        } else if (static_cast<size_t>(held) > kHighWater) {
            link->read_engine(false);
        }
    }

    static void cb_pipe_closed(uv_handle_t* handle) {
        auto* link = static_cast<Link*>(handle->data);
        link->bridge_->link_closed(link);
    }

    RaftBridge* bridge_;
    rampart_conn* conn_;
    uv_pipe_t pipe_{};
    net::WireQueue to_engine_;
    bool pipe_open_ = false;
    bool pipe_closing_ = false;
    bool engine_reading_ = false;
    bool peer_paused_ = false;
};

RaftBridge::RaftBridge(uv_loop_t* loop, peer::PeerNetwork* network, std::vector<Member> members)
    : loop_(loop), network_(network), members_(std::move(members)) {}

RaftBridge::~RaftBridge() = default;

bool RaftBridge::install() {
    peer::Handler h;
    h.callbacks = *bridge_callbacks();
    h.arg = this;
    h.owner = this;
    return network_->add_protocol(kProtocol, h);
}

rampart_raft_transport RaftBridge::transport() {
    rampart_raft_transport t{};
    t.user = this;
    t.connect = cb_connect;
    t.cancel = cb_cancel;
    return t;
}

const Member* RaftBridge::member_by_id(uint64_t id) const {
    for (const Member& m : members_) {
        if (m.raft_id == id) return &m;
    }
    return nullptr;
}

// The member whose node id the certificate carries as a DNS name.
const Member* RaftBridge::member_for_certificate(const rampart_peer_identity* peer) const {
    if (peer == nullptr || !peer->verified) return nullptr;
    for (const Member& m : members_) {
        for (size_t i = 0; i < peer->dns_san_count; ++i) {
            if (m.node_id == peer->dns_sans[i]) return &m;
        }
    }
    return nullptr;
}

RaftBridge::Link* RaftBridge::link_of(rampart_conn* conn) {
    auto it = links_.find(conn);
    return it == links_.end() ? nullptr : it->second.get();
}

int RaftBridge::cb_connect(void* user, rampart_raft_connect* req, uint64_t id, const char* address) {
    auto* self = static_cast<RaftBridge*>(user);
    const Member* m = self->member_by_id(id);
    if (m == nullptr) {
        log::warn("raft: no member with this id; not connecting", {{"raft_id", std::to_string(id)}, {"address", address}});
        return 1;
    }
    peer::Handler h;
    h.callbacks = *bridge_callbacks();
    h.arg = self;
    h.owner = self;
    peer::PeerConnection* conn = self->network_->dial(address, m->node_id, kProtocol, h);
    auto link = std::make_unique<Link>(self, conn->handle(), req);
    self->links_[conn->handle()] = std::move(link);
    return 0;
}

void RaftBridge::cb_cancel(void* user, rampart_raft_connect* req) {
    auto* self = static_cast<RaftBridge*>(user);
    for (auto& [conn, link] : self->links_) {
        if (link->pending_ == req) {
            link->pending_ = nullptr;
            link->close();
            return;
        }
    }
}

void RaftBridge::cb_open(void* arg, rampart_conn* conn, const rampart_handshake_result* result) {
    auto* self = static_cast<RaftBridge*>(arg);
    Link* link = self->link_of(conn);
    if (link == nullptr) {
        self->accepted(conn, result);
        return;
    }
    rampart_raft_connect* req = link->pending_;
    link->pending_ = nullptr;
    if (req == nullptr) return;  // cancelled meanwhile
    int fd = -1;
    if (result->error != RAMPART_TRANSPORT_OK || !link->open_pipe(&fd)) {
        rampart_raft_connect_done(req, -1, 1);
        link->close();
        return;
    }
    rampart_raft_connect_done(req, fd, 0);
}

// An accepted "raft" connection: the certificate says which member it is,
// and the adapter checks that the engine on the other side claims that id.
void RaftBridge::accepted(rampart_conn* conn, const rampart_handshake_result* result) {
    const Member* m = nullptr;
    uint64_t expected = 0;
    if (result->peer != nullptr) {
        m = member_for_certificate(result->peer);
        if (m == nullptr) {
            log::warn("raft: refused a connection from a certificate that names no member",
                      {{"remote", conn->conn->remote()}});
            conn->conn->close_graceful();
            return;
        }
        expected = m->raft_id;
    }
    if (!accept_) {
        conn->conn->close_graceful();
        return;
    }
    auto link = std::make_unique<Link>(this, conn, nullptr);
    int fd = -1;
    if (!link->open_pipe(&fd)) {
        conn->conn->close_graceful();
        return;
    }
    Link* raw = link.get();
    links_[conn] = std::move(link);
    if (accept_(fd, expected) != 0) raw->close();
}

void RaftBridge::cb_data(void* arg, rampart_conn* conn, const char* data, size_t len) {
    if (Link* link = static_cast<RaftBridge*>(arg)->link_of(conn)) link->from_peer(data, len);
}

void RaftBridge::cb_writable(void* arg, rampart_conn* conn) {
    if (Link* link = static_cast<RaftBridge*>(arg)->link_of(conn)) link->peer_writable();
}

void RaftBridge::cb_close(void* arg, rampart_conn* conn, const char*) {
    auto* self = static_cast<RaftBridge*>(arg);
    auto it = self->links_.find(conn);
    if (it == self->links_.end()) return;
    std::unique_ptr<Link> link = std::move(it->second);
    self->links_.erase(it);
    if (link->pending_ != nullptr) {
        rampart_raft_connect_done(link->pending_, -1, 1);
        link->pending_ = nullptr;
    }
    link->peer_closed();
    // Free it now unless its pipe is still closing (cb_pipe_closed frees it).
    if (link->pipe_closing()) self->closing_.push_back(std::move(link));
}

void RaftBridge::link_closed(Link* link) {
    std::erase_if(closing_, [link](const std::unique_ptr<Link>& l) { return l.get() == link; });
    for (auto it = links_.begin(); it != links_.end(); ++it) {
        if (it->second.get() == link) {
            // The peer connection is still closing: it calls cb_close later,
            // which must no longer find this link.
            links_.erase(it);
            return;
        }
    }
}

void RaftBridge::close_all() {
    std::vector<Link*> open;
    for (auto& [conn, link] : links_) open.push_back(link.get());
    for (Link* link : open) link->close();
}

const rampart_conn_callbacks* RaftBridge::bridge_callbacks() {
    static const rampart_conn_callbacks callbacks = {sizeof(rampart_conn_callbacks), cb_open, cb_data, cb_close,
                                                     cb_writable};
    return &callbacks;
}

}  // namespace rampart::cluster
