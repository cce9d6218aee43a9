#include "cluster/member_info_announcer.h"

#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include "cluster/raft_adapter.h"
#include "http/exchange.h"
#include "http/router.h"
#include "log.h"
#include "net/transport.h"
#include "store/store.h"

namespace rampart::cluster {
namespace {

constexpr const char* kRoute = "/internal/member-info";
constexpr size_t kMaxAnswer = size_t{16} * 1024;

// The index out of the leader's {"index":N}; 0 if absent.
uint64_t index_of(std::string_view body) {
    size_t at = body.find("\"index\":");
    return at == std::string_view::npos ? 0 : strtoull(std::string(body.substr(at + 8)).c_str(), nullptr, 10);
}

}  // namespace

// One announcement to the leader over the peer port: dial, send the
// request, read the answer up to its end or the connection's. The call
// frees itself once its handles have closed.
class MemberInfoAnnouncer::Call {
public:
    Call(MemberInfoAnnouncer* owner, std::string request) : owner_(owner), out_(std::move(request)) {
        uv_timer_init(owner->loop_, &timer_);
        timer_.data = this;
        pipe_.data = this;
    }

    void start(const std::string& address, const std::string& node_id) {
        uv_timer_start(&timer_, cb_timeout, kTimeoutMs, 0);
        link_ = owner_->sockets_.dial(address, node_id, "http", [this](int fd) {
            link_ = nullptr;
            dialled(fd);
        });
    }

    // The announcer is closing: never call it back.
    void abandon() {
        close();  // cancels the dial while the owner's bridge still exists
        owner_ = nullptr;
    }

private:
    void dialled(int fd) {
        if (closing_) return;
        if (fd < 0) return done(false, 0);
        if (uv_pipe_init(timer_.loop, &pipe_, 0) != 0) {
            ::close(fd);
            return done(false, 0);
        }
        pipe_open_ = true;
        if (uv_pipe_open(&pipe_, fd) != 0) {
            ::close(fd);
            return done(false, 0);
        }
        uv_buf_t buf = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
        write_.data = this;
        if (uv_write(&write_, reinterpret_cast<uv_stream_t*>(&pipe_), &buf, 1, cb_written) != 0 ||
            uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe_), cb_alloc, cb_read) != 0)
            done(false, 0);
    }

    // Our own server's answer: a status line, headers, a small JSON body.
    void parse(bool at_eof) {
        size_t head_end = in_.find("\r\n\r\n");
        bool complete = head_end != std::string::npos && in_.find('}', head_end) != std::string::npos;
        if (!complete && !at_eof) return;
        bool ok = in_.size() > 12 && in_.compare(0, 7, "HTTP/1.") == 0 && in_.compare(9, 3, "200") == 0;
        done(ok, ok ? index_of(std::string_view(in_).substr(head_end + 4)) : 0);
    }

    void done(bool ok, uint64_t index) {
        if (closing_) return;
        MemberInfoAnnouncer* owner = owner_;
        close();
        if (owner != nullptr) owner->finished(ok, index);
    }

    void close() {
        if (closing_) return;
        closing_ = true;
        if (link_ != nullptr && owner_ != nullptr) owner_->sockets_.cancel(link_);
        link_ = nullptr;
        handles_ = pipe_open_ ? 2 : 1;
        uv_close(reinterpret_cast<uv_handle_t*>(&timer_), cb_closed);
        if (pipe_open_) uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), cb_closed);
    }

    static void cb_timeout(uv_timer_t* t) { static_cast<Call*>(t->data)->done(false, 0); }
    static void cb_written(uv_write_t* req, int status) {
        if (status < 0) static_cast<Call*>(req->data)->done(false, 0);
    }
    static void cb_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* self = static_cast<Call*>(h->data);
        *buf = uv_buf_init(self->buffer_, sizeof self->buffer_);
    }
    static void cb_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
        auto* self = static_cast<Call*>(stream->data);
        if (self->closing_) return;
        if (nread > 0) self->in_.append(buf->base, static_cast<size_t>(nread));
        if (self->in_.size() > kMaxAnswer) return self->done(false, 0);
        if (nread < 0 || nread > 0) self->parse(nread < 0);
    }
    static void cb_closed(uv_handle_t* h) {
        auto* self = static_cast<Call*>(h->data);
        if (--self->handles_ == 0) std::unique_ptr<Call>{self}.reset();
    }

    MemberInfoAnnouncer* owner_;
    peer::SocketBridge::Link* link_ = nullptr;
    uv_timer_t timer_{};
    uv_pipe_t pipe_{};
    uv_write_t write_{};
    bool pipe_open_ = false;
    bool closing_ = false;
    int handles_ = 0;
    std::string out_, in_;
    char buffer_[4096];
};

MemberInfoAnnouncer::MemberInfoAnnouncer(uv_loop_t* loop, peer::PeerNetwork* network, store::Store& store,
                                         DesiredFn desired, LeaderFn leader)
    : loop_(loop), store_(store), desired_(std::move(desired)), leader_(std::move(leader)), sockets_(loop, network) {}

MemberInfoAnnouncer::~MemberInfoAnnouncer() { close(); }

void MemberInfoAnnouncer::install_route(http::Router& router) {
    router.add("PUT", kRoute, [this](http::Exchange& ex) {
        // Other nodes only: on the API port the route does not exist.
        if (!ex.from_peer()) return ex.respond(http::Response::error(404, "not_found", "no such route"));
        MemberInfo info;
        std::string error;
        if (!decode_member_info(ex.request().body, &info, &error))
            return ex.respond(http::Response::error(400, "bad_request", error));
        const net::PeerIdentity* cert = ex.client_certificate();
        if (cert != nullptr && !cert->has(info.node_id)) {
            log::warn("member announcement refused: the certificate names another node",
                      {{"node_id", info.node_id}, {"certificate", cert->name()}});
            return ex.respond(http::Response::error(403, "forbidden", "the certificate does not name " + info.node_id));
        }
        if (!store_.is_leader()) return ex.respond(http::Response::error(503, "not_leader", "not the leader"));
        auto shared = ex.shared_from_this();
        store_.write_record(ex.request().body, [shared](int status, uint64_t index, std::unique_ptr<store::Result>) {
            if (status != 0) {
                http::Response r = http::Response::error(503, "not_committed", rampart_raft_status_name(status));
                r.headers.emplace_back("Retry-After", "1");
                return shared->respond(std::move(r));
            }
            shared->respond(http::Response::json(200, "{\"index\":" + std::to_string(index) + "}\n"));
        });
    });
}

void MemberInfoAnnouncer::start() {
    auto timer = std::make_unique<uv_timer_t>();
    uv_timer_init(loop_, timer.get());
    timer->data = this;
    uv_timer_start(timer.get(), cb_tick, 0, kCheckMs);
    timer_ = timer.release();  // freed by its close callback
}

void MemberInfoAnnouncer::close() {
    if (call_ != nullptr) call_.release()->abandon();  // frees itself
    if (timer_ != nullptr) {
        uv_close(reinterpret_cast<uv_handle_t*>(timer_),
                 [](uv_handle_t* h) { std::unique_ptr<uv_timer_t>(reinterpret_cast<uv_timer_t*>(h)).reset(); });
        timer_ = nullptr;
    }
    sockets_.close_all();
}

void MemberInfoAnnouncer::cb_tick(uv_timer_t* timer) { static_cast<MemberInfoAnnouncer*>(timer->data)->tick(); }

void MemberInfoAnnouncer::tick() {
    if (in_flight_ || store_.engine() == nullptr || store_.state().applied() < committed_index_) return;
    // A cluster of one has no one to tell (GET /v1/cluster/status shows a
    // node's own advertisement anyway), and its log stays as a single
    // node's always was; a second member makes the node announce.
    if (rampart_raft_members(store_.engine(), nullptr, 0) < 2) return;
    MemberInfo desired = desired_();
    const store::Version state = store_.state().version();
    auto it = state->members.find(desired.node_id);
    if (it != state->members.end() && it->second == desired) return;
    std::string record = encode_member_info(desired);
    if (store_.is_leader()) {
        in_flight_ = true;
        store_.write_record(record, [this](int status, uint64_t index, std::unique_ptr<store::Result>) {
            finished(status == 0, index);
        });
        return;
    }
    auto [leader_id, leader_address] = leader_();
    if (leader_id.empty()) return;
    std::string request = std::string("PUT ") + kRoute +
                          " HTTP/1.1\r\nHost: rampart-leader\r\nConnection: close\r\n"
                          "Content-Type: application/octet-stream\r\nContent-Length: " +
                          std::to_string(record.size()) + "\r\n\r\n" + record;
    in_flight_ = true;
    call_ = std::make_unique<Call>(this, std::move(request));
    call_->start(leader_address, leader_id);
}

void MemberInfoAnnouncer::finished(bool ok, uint64_t index) {
    if (call_ != nullptr) (void)call_.release();  // it frees itself once closed
    in_flight_ = false;
    if (!ok) return;  // the next tick tries again, perhaps with another leader
    committed_index_ = index;
    log::info("member advertisement committed", {{"index", static_cast<long long>(index)}});
}

}  // namespace rampart::cluster
