#include "cluster/membership_client.h"

#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include "cluster/not_applied.h"
#include "util/strings.h"

namespace rampart::cluster {

std::string peer_label(const MemberAddress& peer) { return peer.node_id.empty() ? peer.address : peer.node_id; }

// One attempt: dial, send, read the answer. It frees itself (through its
// owner) once its handles have closed.
class MembershipClient::Call {
public:
    Call(MembershipClient* owner, uint64_t id, RawDone done) : owner_(owner), id_(id), done_(std::move(done)) {
        uv_timer_init(owner->loop_, &timer_);
        timer_.data = this;
        pipe_.data = this;
    }

    void start(const MemberAddress& to, std::string request) {
        out_ = std::move(request);
        uv_timer_start(&timer_, cb_timeout, kTimeoutMs, 0);
        dial_ = owner_->sockets_.dial(to.address, to.node_id, "http", [this](int fd, const std::string& error_class) {
            dial_ = nullptr;
            dialled(fd, error_class);
        });
    }

    // Stop without an answer (aborted, or the owner is closing): `done` never runs.
    void abandon() {
        done_ = nullptr;
        finish({});
    }

private:
    void dialled(int fd, const std::string& error_class) {
        if (fd < 0) return fail(error_class == "tls_error" ? "tls" : error_class == "timeout" ? "timeout" : "network");
        if (uv_pipe_init(owner_->loop_, &pipe_, 0) != 0) {
            ::close(fd);
            return fail("network");
        }
        pipe_open_ = true;
        if (uv_pipe_open(&pipe_, fd) != 0) return fail("network");
        uv_buf_t buf = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
        write_.data = this;
        if (uv_write(&write_, reinterpret_cast<uv_stream_t*>(&pipe_), &buf, 1, cb_written) != 0 ||
            uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe_), cb_alloc, cb_read) != 0)
            fail("write");
    }

    static void cb_written(uv_write_t* req, int status) {
        auto* self = static_cast<Call*>(req->data);
        if (status < 0 && !self->finished_) self->fail("write");
    }

    static void cb_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* self = static_cast<Call*>(h->data);
        *buf = uv_buf_init(self->chunk_, sizeof self->chunk_);
    }

    static void cb_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        auto* self = static_cast<Call*>(s->data);
        if (self->finished_) return;
        if (nread > 0) {
            self->in_.append(buf->base, static_cast<size_t>(nread));
            if (self->in_.size() > kMaxAnswer) return self->fail("too_large");
            return self->parse(false);
        }
        if (nread < 0) self->parse(true);
    }

    static void cb_timeout(uv_timer_t* t) { static_cast<Call*>(t->data)->fail("timeout"); }

    // Our own server's answer: a status line, headers, Content-Length.
    // Complete once the body is in (the server may keep the connection).
    void parse(bool closed) {
        size_t end = in_.find("\r\n\r\n");
        if (end == std::string::npos) {
            if (closed) fail(in_.empty() ? "closed" : "malformed");
            return;
        }
        std::string_view head(in_.data(), end);
        if (head.size() < 12 || head.substr(0, 7) != "HTTP/1.") return fail("malformed");
        size_t length = 0;
        Raw a;
        for (size_t at = head.find("\r\n"); at != std::string_view::npos; at = head.find("\r\n", at + 2)) {
            std::string_view line = head.substr(at + 2, head.find("\r\n", at + 2) - at - 2);
            size_t colon = line.find(':');
            if (colon == std::string_view::npos) continue;
            std::string_view name = line.substr(0, colon);
            std::string value(line.substr(colon + 1));
            value.erase(0, value.find_first_not_of(' '));
            if (util::iequals(name, "content-length")) {
                length = strtoull(value.c_str(), nullptr, 10);
            } else if (util::iequals(name, "retry-after")) {
                a.retry_after_ms = resilience::PeerRetrier::parse_retry_after(&value);
            } else {
                a.not_applied = a.not_applied || is_not_applied_header(name, value);
            }
        }
        if (in_.size() < end + 4 + length) {
            if (closed) fail("closed");
            return;
        }
        a.status = atoi(std::string(head.substr(9, 3)).c_str());
        a.body = in_.substr(end + 4, length);
        finish(std::move(a));
    }

    void fail(std::string error) {
        Raw a;
        a.error = std::move(error);
        finish(std::move(a));
    }

    void finish(Raw a) {
        if (finished_) return;
        finished_ = true;
        if (dial_ != nullptr) owner_->sockets_.cancel(dial_);
        dial_ = nullptr;
        handles_ = pipe_open_ ? 2 : 1;
        uv_timer_stop(&timer_);
        uv_close(reinterpret_cast<uv_handle_t*>(&timer_), cb_closed);
        if (pipe_open_) uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), cb_closed);
        RawDone done = std::move(done_);
        if (done) done(std::move(a));
    }

    static void cb_closed(uv_handle_t* h) {
        auto* self = static_cast<Call*>(h->data);
        if (--self->handles_ == 0) self->owner_->call_freed(self->id_);
    }

    MembershipClient* owner_;
    uint64_t id_;
    RawDone done_;
    peer::SocketBridge::Link* dial_ = nullptr;
    uv_timer_t timer_{};
    uv_pipe_t pipe_{};
    uv_write_t write_{};
    bool pipe_open_ = false;
    bool finished_ = false;
    int handles_ = 0;
    std::string out_, in_;
    char chunk_[16 * 1024];
};

// A request in the retry loop: its target now, and its last answer.
struct MembershipClient::Pending {
    Request request;
    Done done;
    std::optional<MemberAddress> to;  // the current attempt's node
    Raw last;
    uint64_t retry_id = 0;
};

MembershipClient::MembershipClient(uv_loop_t* loop, peer::PeerNetwork* network, resilience::PeerRetrier& retrier)
    : loop_(loop), sockets_(loop, network), retrier_(retrier) {}

MembershipClient::~MembershipClient() = default;

void MembershipClient::send(Request request, Done done) {
    if (closing_) return;
    auto p = std::make_shared<Pending>();
    p->request = std::move(request);
    p->done = std::move(done);
    Pending* raw = p.get();
    pending_[raw] = p;
    resilience::PeerRetrier::Request rq;
    rq.idempotent = raw->request.idempotent;
    rq.max_attempts = raw->request.max_attempts;
    rq.guarded = raw->request.guarded;
    rq.wanted = raw->request.wanted;
    rq.target = [raw] {
        raw->to = raw->request.target ? raw->request.target() : std::nullopt;
        return raw->to ? peer_label(*raw->to) : std::string();
    };
    rq.send = [this, raw](const std::string&,
                          const resilience::PeerRetrier::Done& d) -> resilience::PeerRetrier::Abort {
        auto it = pending_.find(raw);
        if (it == pending_.end()) {
            d(resilience::PeerOutcome{0, "shutting_down", 0});
            return nullptr;
        }
        return attempt(it->second, d);
    };
    rq.finish = [this, raw](const resilience::RetryResult& r) {
        auto it = pending_.find(raw);
        if (it == pending_.end()) return;
        std::shared_ptr<Pending> keep = std::move(it->second);
        pending_.erase(it);
        finished(keep, r);
    };
    uint64_t id = retrier_.start(std::move(rq));
    if (auto it = pending_.find(raw); it != pending_.end()) it->second->retry_id = id;
}

resilience::PeerRetrier::Abort MembershipClient::attempt(const std::shared_ptr<Pending>& p,
                                                         const resilience::PeerRetrier::Done& done) {
    const Request& rq = p->request;
    std::string bytes = rq.method + " " + rq.path + " HTTP/1.1\r\nHost: rampart-peer\r\n";
    for (const auto& [name, value] : rq.headers) bytes += name + ": " + value + "\r\n";
    bytes += "Content-Type: " + rq.content_type + "\r\nContent-Length: " + std::to_string(rq.body.size()) + "\r\n\r\n" +
             rq.body;
    p->last = Raw{};
    uint64_t id = next_call_++;
    std::weak_ptr<Pending> weak = p;
    calls_[id] = std::make_unique<Call>(this, id, [weak, done](Raw a) {
        std::shared_ptr<Pending> alive = weak.lock();
        if (!alive) return;
        resilience::PeerOutcome o{a.status, a.error, a.retry_after_ms, a.not_applied};
        alive->last = std::move(a);
        done(o);
    });
    calls_[id]->start(*p->to, std::move(bytes));
    return [this, id] {
        auto it = calls_.find(id);
        if (it != calls_.end()) it->second->abandon();
    };
}

void MembershipClient::finished(const std::shared_ptr<Pending>& p, const resilience::RetryResult& r) {
    PeerAnswer a;
    a.result = r;
    if (r.end == resilience::RetryEnd::BreakerOpen) {
        a.error = "the circuit breaker for " + r.peer + " is open";
        a.retry_after_ms = r.retry_after_ms;
    } else if (r.peer.empty()) {
        a.error = "no node to send it to";
    } else if (p->last.status != 0 && r.end != resilience::RetryEnd::Cancelled) {
        a.status = p->last.status;
        a.body = std::move(p->last.body);
        a.retry_after_ms = p->last.retry_after_ms;
    }
    if (a.status == 0 && a.error.empty()) {
        a.error = r.retry_class + " after " + std::to_string(r.attempts) + " attempt" + (r.attempts == 1 ? "" : "s");
        if (r.end == resilience::RetryEnd::BudgetExhausted) a.error += ", retry budget spent";
        if (r.end == resilience::RetryEnd::Cancelled) a.error = "cancelled";
    }
    if (p->done) p->done(std::move(a));
}

void MembershipClient::call_freed(uint64_t id) { calls_.erase(id); }

void MembershipClient::close_all() {
    closing_ = true;
    std::map<Pending*, std::shared_ptr<Pending>> open;
    open.swap(pending_);  // their finish, if it ever came, finds nothing
    for (auto& [raw, p] : open) retrier_.cancel(p->retry_id);
    std::vector<Call*> calls;
    for (auto& [id, c] : calls_) calls.push_back(c.get());
    for (Call* c : calls) c->abandon();
    sockets_.close_all();
}

}  // namespace rampart::cluster
