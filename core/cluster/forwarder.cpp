#include "cluster/forwarder.h"

#include <unistd.h>

#include <algorithm>
#include <deque>
#include <string_view>
#include <vector>

#include "cluster/not_applied.h"
#include "http/exchange.h"
#include "http/response.h"
#include "http/server.h"
#include "log.h"
#include "net/transport.h"
#include "util/strings.h"

namespace rampart::cluster {
namespace {

using util::iequals;

constexpr size_t kMaxResponseHead = size_t{64} * 1024;
constexpr size_t kMaxResponseBody = size_t{64} << 20;
char g_forward_buffer[64 * 1024];

bool has_param(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view part = query.substr(0, amp);
        std::string_view key = part.substr(0, part.find('='));
        if (key == name) return true;
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return false;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Headers that describe one hop, not the request: the forwarder sets its own.
bool hop_by_hop(std::string_view name) {
    for (std::string_view h : {"connection", "keep-alive", "transfer-encoding", "te", "expect", "content-length",
                               "host", "upgrade", "x-rampart-forwarded-by"}) {
        if (iequals(name, h)) return true;
    }
    return false;
}

std::string serialize_request(const http::Request& r, const std::string& self_id) {
    std::string out = r.method + " " + r.target + " HTTP/1.1\r\nHost: rampart-leader\r\n";
    for (const auto& h : r.headers) {
        if (!hop_by_hop(h.name)) out += h.name + ": " + h.value + "\r\n";
    }
    out += std::string(kForwardedBy) + ": " + self_id + "\r\n";
    out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n\r\n";
    out += r.body;
    return out;
}

http::Response unavailable(std::string_view code, std::string_view message) {
    http::Response r = http::Response::error(503, code, message);
    r.headers.emplace_back("Retry-After", "1");
    return r;
}

}  // namespace

bool needs_leader(const http::Request& r) {
    std::string_view path = r.path;
    if (!starts_with(path, "/v1/")) return false;
    for (std::string_view local : {"/v1/admin/", "/v1/status/", "/v1/cluster/", "/v1/snapshot"}) {
        if (starts_with(path, local)) return false;
    }
    if (r.method != "GET" && r.method != "HEAD") return true;
    return !has_param(r.query, "stale") && !has_param(r.query, "index");
}

// One attempt of a forwarded request: queued in a pool, then on a channel,
// then answered or failed, once. An aborted attempt (out of time) is dead:
// skipped in the queue, its channel closed, its answer never reported.
struct Forwarder::Attempt {
    std::string bytes;
    bool head = false;
    bool dead = false;
    Channel* channel = nullptr;  // while one carries it
    std::function<void(http::Response)> answered;
    std::function<void(const std::string& error)> failed;  // "tls", "timeout" or another transport error
};

// A client's request in the retry loop.
struct Forwarder::Forwarded {
    std::shared_ptr<http::Exchange> ex;
    std::string bytes;
    bool head = false;
    std::optional<Leader> next;          // the target of the next attempt
    bool first = true;                   // the first attempt goes to the leader forward() was given
    bool leads_here = false;             // this node took over the leadership meanwhile
    std::optional<http::Response> last;  // the last attempt's answer, if it had one
    uint64_t call = 0;                   // the retry loop's id (0 until start returned)
};

struct Forwarder::Pool {
    std::string address, node_id;
    std::vector<std::unique_ptr<Channel>> channels;
    std::deque<std::shared_ptr<Attempt>> waiting;
};

namespace {

// The retry policy's outcome error for the transport's error class.
std::string outcome_error(const std::string& error_class) {
    if (error_class == "tls_error") return "tls";
    if (error_class == "timeout") return "timeout";
    return "network";
}

bool idempotent(const http::Request& r) {
    return r.method == "GET" || r.method == "HEAD" || r.header("idempotency-key") != nullptr;
}

}  // namespace

// One HTTP/1.1 connection to the leader, one attempt at a time.
class Forwarder::Channel {
public:
    enum class State { Dialling, Idle, Busy, Closing };

    Channel(Forwarder* owner, Pool* pool) : owner_(owner), pool_(pool) { pipe_.data = this; }

    void dial() {
        dial_ = owner_->sockets_.dial(pool_->address, pool_->node_id, "http",
                                      [this](int fd, const std::string& error_class) {
                                          dial_ = nullptr;
                                          dialled(fd, error_class);
                                      });
    }

    void send(std::shared_ptr<Attempt> a) {
        state_ = State::Busy;
        attempt_ = std::move(a);
        attempt_->channel = this;
        in_.clear();
        uv_buf_t buf = uv_buf_init(attempt_->bytes.data(), static_cast<unsigned>(attempt_->bytes.size()));
        write_.data = this;
        if (uv_write(&write_, reinterpret_cast<uv_stream_t*>(&pipe_), &buf, 1, cb_written) != 0) {
            fail("write");
        }
    }

    State state() const { return state_; }

    void close() {
        if (state_ == State::Closing) return;
        state_ = State::Closing;
        if (attempt_) attempt_->channel = nullptr;
        attempt_.reset();
        if (dial_ != nullptr) owner_->sockets_.cancel(dial_);  // its callback must not outlive us
        dial_ = nullptr;
        if (pipe_open_) {
            uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), cb_closed);
        } else {
            owner_->channel_freed(this);
        }
    }

private:
    void dialled(int fd, const std::string& error_class) {
        if (state_ == State::Closing) {
            if (fd >= 0) ::close(fd);
            return;
        }
        if (fd < 0 || uv_pipe_init(owner_->loop_, &pipe_, 0) != 0 || uv_pipe_open(&pipe_, fd) != 0) {
            if (fd >= 0) ::close(fd);
            owner_->dial_failed(pool_, this, fd < 0 ? error_class : "network_error");
            return;
        }
        pipe_open_ = true;
        uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe_), cb_alloc, cb_read);
        state_ = State::Idle;
        owner_->start_next(*pool_);
    }

    // The attempt on this channel ends: the channel is not reused.
    void fail(const std::string& error) {
        std::shared_ptr<Attempt> a = std::move(attempt_);
        if (a) a->channel = nullptr;
        owner_->channel_done(this, false);
        if (a && !a->dead) a->failed(error);
    }

    static void cb_written(uv_write_t* req, int status) {
        auto* self = static_cast<Channel*>(req->data);
        if (status < 0 && self->state_ == State::Busy) self->fail("write");
    }

    static void cb_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
        *buf = uv_buf_init(g_forward_buffer, sizeof g_forward_buffer);
    }

    static void cb_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
        auto* self = static_cast<Channel*>(stream->data);
        if (self->state_ == State::Closing) return;
        if (nread < 0) {
            if (self->state_ == State::Busy) {
                self->fail("closed");
            } else {
                self->owner_->channel_done(self, false);
            }
            return;
        }
        if (self->state_ != State::Busy) return;  // nothing is expected
        self->in_.append(buf->base, static_cast<size_t>(nread));
        self->parse();
    }

    // Our own server's answers: a status line, headers, Content-Length.
    void parse() {
        size_t end = in_.find("\r\n\r\n");
        if (end == std::string::npos) {
            if (in_.size() > kMaxResponseHead) fail("malformed");
            return;
        }
        http::Response r;
        size_t length = 0;
        bool reusable = true;
        if (!parse_head(std::string_view(in_).substr(0, end), &r, &length, &reusable)) {
            fail("malformed");
            return;
        }
        if (attempt_->head) length = 0;
        if (in_.size() < end + 4 + length) return;  // more to come
        r.body = in_.substr(end + 4, length);
        in_.clear();
        std::shared_ptr<Attempt> a = std::move(attempt_);
        a->channel = nullptr;
        state_ = State::Idle;
        owner_->channel_done(this, reusable);
        if (!a->dead) a->answered(std::move(r));
    }

    static bool parse_head(std::string_view head, http::Response* r, size_t* length, bool* reusable) {
        size_t eol = head.find("\r\n");
        std::string_view status_line = head.substr(0, eol);
        if (status_line.size() < 12 || !starts_with(status_line, "HTTP/1.")) return false;
        r->status = atoi(std::string(status_line.substr(9, 3)).c_str());
        if (r->status < 100 || r->status > 599) return false;
        bool have_length = false;
        while (eol != std::string_view::npos) {
            head.remove_prefix(eol + 2);
            eol = head.find("\r\n");
            std::string_view line = head.substr(0, eol);
            size_t colon = line.find(':');
            if (colon == std::string_view::npos) continue;
            std::string_view name = line.substr(0, colon);
            std::string_view value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
            if (iequals(name, "content-length")) {
                *length = strtoull(std::string(value).c_str(), nullptr, 10);
                have_length = *length <= kMaxResponseBody;
            } else if (iequals(name, "content-type")) {
                r->content_type = std::string(value);
            } else if (iequals(name, "connection")) {
                *reusable = !iequals(value, "close");
            } else if (!iequals(name, "date") && !iequals(name, "x-request-id")) {
                r->headers.emplace_back(std::string(name), std::string(value));
            }
        }
        return have_length;
    }

    static void cb_closed(uv_handle_t* h) {
        auto* self = static_cast<Channel*>(h->data);
        self->owner_->channel_freed(self);
    }

    Forwarder* owner_;
    Pool* pool_;
    peer::SocketBridge::Link* dial_ = nullptr;
    State state_ = State::Dialling;
    uv_pipe_t pipe_{};
    uv_write_t write_{};
    bool pipe_open_ = false;
    std::shared_ptr<Attempt> attempt_;
    std::string in_;
};

Forwarder::Forwarder(uv_loop_t* loop, peer::PeerNetwork* network, std::string self_id, resilience::PeerRetrier& retrier,
                     LeaderLookup lookup, ServeHere serve_here)
    : loop_(loop),
      self_id_(std::move(self_id)),
      lookup_(std::move(lookup)),
      serve_here_(std::move(serve_here)),
      sockets_(loop, network),
      retrier_(retrier) {}

Forwarder::~Forwarder() = default;

bool Forwarder::install(http::Server* server) {
    return sockets_.listen("http", [server](const rampart_peer_identity* peer, int fd) {
        net::PeerIdentity id;
        std::string source = "peer";
        if (peer != nullptr) {
            id = net::copy_identity(*peer);
            source = "peer:" + id.name();
        }
        return server->adopt(fd, source, peer != nullptr ? &id : nullptr) == 0;
    });
}

void Forwarder::forward(const std::shared_ptr<http::Exchange>& ex, const std::string& leader_id,
                        const std::string& leader_address) {
    const http::Request& r = ex->request();
    auto f = std::make_shared<Forwarded>();
    f->ex = ex;
    f->bytes = serialize_request(r, self_id_);
    f->head = r.method == "HEAD";
    f->next = Leader{leader_id, leader_address};
    forwarded_[f.get()] = f;

    resilience::PeerRetrier::Request rq;
    rq.idempotent = idempotent(r);
    Forwarded* raw = f.get();
    // Before each retry: is the client still there, and who leads now?
    rq.wanted = [this, raw] {
        if (raw->ex->abandoned()) return false;
        if (!raw->first) raw->next = lookup_ ? lookup_() : std::nullopt;
        raw->first = false;
        raw->leads_here = raw->next && raw->next->node_id == self_id_;
        return !raw->leads_here;
    };
    rq.target = [raw] { return raw->next ? raw->next->node_id : std::string(); };
    rq.send = [this, raw](const std::string&,
                          const resilience::PeerRetrier::Done& done) -> resilience::PeerRetrier::Abort {
        auto it = forwarded_.find(raw);
        if (it == forwarded_.end()) {
            done(resilience::PeerOutcome{0, "shutting_down", 0});
            return nullptr;
        }
        return send(it->second, done);
    };
    rq.finish = [this, raw](const resilience::RetryResult& result) { finished(raw, result); };
    uint64_t call = retrier_.start(std::move(rq));
    if (auto it = forwarded_.find(raw); it != forwarded_.end()) it->second->call = call;
}

resilience::PeerRetrier::Abort Forwarder::send(const std::shared_ptr<Forwarded>& f,
                                               const resilience::PeerRetrier::Done& done) {
    f->last.reset();
    const Leader& leader = *f->next;
    auto& slot = pools_[leader.address];
    if (!slot) {
        slot = std::make_unique<Pool>();
        slot->address = leader.address;
    }
    Pool& pool = *slot;
    pool.node_id = leader.node_id;
    if (pool.waiting.size() >= kMaxWaiting) {
        done(resilience::PeerOutcome{0, "queue_full", 0});
        return nullptr;
    }
    auto a = std::make_shared<Attempt>();
    a->bytes = f->bytes;
    a->head = f->head;
    Forwarded* raw = f.get();
    a->answered = [this, raw, done](http::Response r) {
        auto it = forwarded_.find(raw);
        if (it == forwarded_.end()) return;
        resilience::PeerOutcome o{r.status, "", 0};
        for (const auto& [name, value] : r.headers) {
            if (iequals(name, "retry-after")) o.retry_after_ms = resilience::PeerRetrier::parse_retry_after(&value);
            o.not_applied = o.not_applied || is_not_applied_header(name, value);
        }
        // Between nodes only: the client gets the refusal without it.
        std::erase_if(r.headers, [](const auto& h) { return iequals(h.first, kNotApplied); });
        it->second->last = std::move(r);
        done(o);
    };
    a->failed = [done](const std::string& error) { done(resilience::PeerOutcome{0, error, 0}); };
    pool.waiting.push_back(a);
    start_next(pool);
    std::weak_ptr<Attempt> weak = a;
    return [this, weak] {
        std::shared_ptr<Attempt> gone = weak.lock();
        if (!gone) return;
        gone->dead = true;
        // Its answer may still come: that connection carries nothing else.
        if (gone->channel != nullptr) channel_done(gone->channel, false);
    };
}

void Forwarder::finished(Forwarded* f, const resilience::RetryResult& r) {
    auto it = forwarded_.find(f);
    if (it == forwarded_.end()) return;
    std::shared_ptr<Forwarded> keep = std::move(it->second);
    forwarded_.erase(it);
    const std::shared_ptr<http::Exchange>& ex = keep->ex;
    // Fast failures of an open breaker are counted, not logged: an outage would flood the log.
    if (r.retry_class != "success" && r.retry_class != "http_4xx" && r.end != resilience::RetryEnd::Cancelled &&
        r.end != resilience::RetryEnd::BreakerOpen) {
        log::warn("forwarding to the leader failed", {{"request_id", ex->request_id()},
                                                      {"leader", r.peer},
                                                      {"class", r.retry_class},
                                                      {"attempts", r.attempts},
                                                      {"end", resilience::retry_end_name(r.end)}});
    }
    if (ex->responded() || ex->abandoned()) return;
    if (keep->last && (r.end == resilience::RetryEnd::Answered || r.end == resilience::RetryEnd::BudgetExhausted)) {
        ex->respond(std::move(*keep->last));  // the leader's own answer
        return;
    }
    switch (r.end) {
        case resilience::RetryEnd::Cancelled:
            if (keep->leads_here && serve_here_) {
                serve_here_(*ex);
            } else {
                ex->respond(unavailable("not_leader", "this node became the leader while the request waited; retry"));
            }
            return;
        case resilience::RetryEnd::BreakerOpen: {
            http::Response resp =
                http::Response::error(503, "leader_circuit_open",
                                      "the leader " + r.peer +
                                          " failed repeatedly; requests to it fail fast until its circuit breaker "
                                          "lets a trial through; retry later");
            resp.headers.emplace_back("Retry-After",
                                      std::to_string(std::max<uint64_t>(1, (r.retry_after_ms + 999) / 1000)));
            ex->respond(std::move(resp));
            return;
        }
        default: break;
    }
    if (r.peer.empty()) {
        ex->respond(unavailable("no_leader", "the cluster has no leader right now; retry"));
        return;
    }
    std::string why =
        r.retry_class + " after " + std::to_string(r.attempts) + " attempt" + (r.attempts == 1 ? "" : "s");
    if (r.end == resilience::RetryEnd::BudgetExhausted) why += ", retry budget spent";
    ex->respond(unavailable("leader_unreachable", "forwarding to the leader failed (" + why +
                                                      "); a write may or may not have been applied: retry it with "
                                                      "the same Idempotency-Key"));
}

void Forwarder::start_next(Pool& pool) {
    while (!pool.waiting.empty()) {
        if (pool.waiting.front()->dead) {  // out of time while it waited
            pool.waiting.pop_front();
            continue;
        }
        Channel* idle = nullptr;
        size_t dialling = 0;
        for (auto& c : pool.channels) {
            if (c->state() == Channel::State::Idle && idle == nullptr) idle = c.get();
            if (c->state() == Channel::State::Dialling) dialling++;
        }
        if (idle != nullptr) {
            std::shared_ptr<Attempt> a = std::move(pool.waiting.front());
            pool.waiting.pop_front();
            idle->send(std::move(a));
            continue;
        }
        if (dialling < pool.waiting.size() && pool.channels.size() < kMaxPerLeader) {
            pool.channels.push_back(std::make_unique<Channel>(this, &pool));
            pool.channels.back()->dial();
            continue;
        }
        return;
    }
}

// The leader cannot be reached: every attempt waiting for it fails now.
void Forwarder::dial_failed(Pool* pool, Channel* channel, const std::string& error_class) {
    std::deque<std::shared_ptr<Attempt>> waiting;
    waiting.swap(pool->waiting);
    channel_done(channel, false);
    std::string error = outcome_error(error_class);
    for (auto& a : waiting) {
        if (!a->dead) a->failed(error);
    }
}

void Forwarder::channel_done(Channel* channel, bool reusable) {
    Pool* owner = nullptr;
    for (auto& [address, pool] : pools_) {
        for (auto& c : pool->channels) {
            if (c.get() == channel) owner = pool.get();
        }
    }
    if (!reusable) channel->close();  // may free it
    if (owner != nullptr) start_next(*owner);
}

void Forwarder::channel_freed(Channel* channel) {
    for (auto& [address, pool] : pools_) {
        std::erase_if(pool->channels, [channel](const std::unique_ptr<Channel>& c) { return c.get() == channel; });
    }
}

void Forwarder::close_all() {
    std::map<Forwarded*, std::shared_ptr<Forwarded>> open;
    open.swap(forwarded_);  // their finish, if it ever came, finds nothing
    for (auto& [raw, f] : open) {
        if (f->call != 0) retrier_.cancel(f->call);
        if (!f->ex->responded()) f->ex->respond(unavailable("shutting_down", "the node is shutting down"));
    }
    for (auto& [address, pool] : pools_) {
        pool->waiting.clear();
        std::vector<Channel*> channels;
        for (auto& c : pool->channels) channels.push_back(c.get());
        for (Channel* c : channels) c->close();
    }
    sockets_.close_all();
}

}  // namespace rampart::cluster
