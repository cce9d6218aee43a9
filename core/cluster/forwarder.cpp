#include "cluster/forwarder.h"

#include <unistd.h>

#include <deque>
#include <string_view>
#include <vector>

#include "http/exchange.h"
#include "http/response.h"
#include "http/server.h"
#include "log.h"
#include "net/transport.h"

namespace rampart::cluster {
namespace {

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

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (tolower(static_cast<unsigned char>(a[i])) != tolower(static_cast<unsigned char>(b[i]))) return false;
    }
    return true;
}

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

struct Forwarder::Pool {
    struct Waiting {
        std::shared_ptr<http::Exchange> ex;
        std::string bytes;
        bool head = false;
    };
    std::string address, node_id;
    std::vector<std::unique_ptr<Channel>> channels;
    std::deque<Waiting> waiting;
};

// One HTTP/1.1 connection to the leader, one request at a time.
class Forwarder::Channel {
public:
    enum class State { Dialling, Idle, Busy, Closing };

    Channel(Forwarder* owner, Pool* pool) : owner_(owner), pool_(pool) {
        uv_timer_init(owner->loop_, &timer_);
        timer_.data = this;
        pipe_.data = this;
    }

    void dial() {
        dial_ = owner_->sockets_.dial(pool_->address, pool_->node_id, "http", [this](int fd) {
            dial_ = nullptr;
            dialled(fd);
        });
    }

    void send(Pool::Waiting w) {
        state_ = State::Busy;
        ex_ = std::move(w.ex);
        head_ = w.head;
        in_.clear();
        out_ = std::move(w.bytes);
        uv_buf_t buf = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
        write_.data = this;
        if (uv_write(&write_, reinterpret_cast<uv_stream_t*>(&pipe_), &buf, 1, cb_written) != 0) {
            fail("the leader's connection failed");
            return;
        }
        uv_timer_start(&timer_, cb_timeout, kTimeoutMs, 0);
    }

    State state() const { return state_; }

    void close() {
        if (state_ == State::Closing) return;
        bool had_pipe = pipe_open_;
        state_ = State::Closing;
        if (dial_ != nullptr) owner_->sockets_.cancel(dial_);  // its callback must not outlive us
        dial_ = nullptr;
        handles_ = had_pipe ? 2 : 1;
        uv_timer_stop(&timer_);
        uv_close(reinterpret_cast<uv_handle_t*>(&timer_), cb_closed);
        if (had_pipe) uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), cb_closed);
    }

    // The exchange waiting on this channel gets `r` (if it still waits).
    void answer(http::Response r) {
        std::shared_ptr<http::Exchange> ex = std::move(ex_);
        ex_.reset();
        if (ex && !ex->responded()) ex->respond(std::move(r));
    }

private:
    void dialled(int fd) {
        if (state_ == State::Closing) {
            if (fd >= 0) ::close(fd);
            return;
        }
        if (fd < 0 || uv_pipe_init(owner_->loop_, &pipe_, 0) != 0 || uv_pipe_open(&pipe_, fd) != 0) {
            owner_->dial_failed(pool_, this);
            return;
        }
        pipe_open_ = true;
        uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe_), cb_alloc, cb_read);
        state_ = State::Idle;
        owner_->start_next(*pool_);
    }

    void fail(std::string_view why) {
        if (ex_) {
            answer(unavailable("leader_unreachable", std::string("forwarding to the leader failed (") +
                                                         std::string(why) +
                                                         "); a write may or may not have been applied: retry it "
                                                         "with the same Idempotency-Key"));
        }
        owner_->channel_done(this, false);
    }

    static void cb_written(uv_write_t* req, int status) {
        auto* self = static_cast<Channel*>(req->data);
        if (status < 0 && self->state_ == State::Busy) self->fail(uv_strerror(status));
    }

    static void cb_timeout(uv_timer_t* t) { static_cast<Channel*>(t->data)->fail("no answer in time"); }

    static void cb_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
        *buf = uv_buf_init(g_forward_buffer, sizeof g_forward_buffer);
    }

    static void cb_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
        auto* self = static_cast<Channel*>(stream->data);
        if (self->state_ == State::Closing) return;
        if (nread < 0) {
            if (self->state_ == State::Busy) {
                self->fail("the connection closed");
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
            if (in_.size() > kMaxResponseHead) fail("answer head too large");
            return;
        }
        http::Response r;
        size_t length = 0;
        bool reusable = true;
        if (!parse_head(std::string_view(in_).substr(0, end), &r, &length, &reusable)) {
            fail("malformed answer");
            return;
        }
        if (head_) length = 0;
        if (in_.size() < end + 4 + length) return;  // more to come
        r.body = in_.substr(end + 4, length);
        uv_timer_stop(&timer_);
        answer(std::move(r));
        in_.clear();
        state_ = State::Idle;
        owner_->channel_done(this, reusable);
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
        if (--self->handles_ == 0) self->owner_->channel_freed(self);
    }

    Forwarder* owner_;
    Pool* pool_;
    peer::SocketBridge::Link* dial_ = nullptr;
    State state_ = State::Dialling;
    uv_pipe_t pipe_{};
    uv_timer_t timer_{};
    uv_write_t write_{};
    bool pipe_open_ = false;
    int handles_ = 0;
    std::shared_ptr<http::Exchange> ex_;
    bool head_ = false;
    std::string out_, in_;
};

Forwarder::Forwarder(uv_loop_t* loop, peer::PeerNetwork* network, std::string self_id)
    : loop_(loop), self_id_(std::move(self_id)), sockets_(loop, network) {}

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
    auto& slot = pools_[leader_address];
    if (!slot) {
        slot = std::make_unique<Pool>();
        slot->address = leader_address;
    }
    Pool& pool = *slot;
    pool.node_id = leader_id;
    if (pool.waiting.size() >= kMaxWaiting) {
        ex->respond(unavailable("forward_queue_full", "too many requests waiting for the leader; retry later"));
        return;
    }
    const http::Request& r = ex->request();
    pool.waiting.push_back({ex, serialize_request(r, self_id_), r.method == "HEAD"});
    start_next(pool);
}

void Forwarder::start_next(Pool& pool) {
    while (!pool.waiting.empty()) {
        Channel* idle = nullptr;
        size_t dialling = 0;
        for (auto& c : pool.channels) {
            if (c->state() == Channel::State::Idle && idle == nullptr) idle = c.get();
            if (c->state() == Channel::State::Dialling) dialling++;
        }
        if (idle != nullptr) {
            Pool::Waiting w = std::move(pool.waiting.front());
            pool.waiting.pop_front();
            if (w.ex->abandoned()) continue;  // the client left while it waited
            idle->send(std::move(w));
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

// The leader cannot be reached: everyone waiting for it hears so now.
void Forwarder::dial_failed(Pool* pool, Channel* channel) {
    std::deque<Pool::Waiting> waiting;
    waiting.swap(pool->waiting);
    for (auto& w : waiting) {
        if (!w.ex->responded())
            w.ex->respond(unavailable("leader_unreachable", "the leader cannot be reached; retry later"));
    }
    channel_done(channel, false);
}

void Forwarder::channel_done(Channel* channel, bool reusable) {
    if (!reusable) channel->close();
    for (auto& [address, pool] : pools_) {
        for (auto& c : pool->channels) {
            if (c.get() == channel) {
                start_next(*pool);
                return;
            }
        }
    }
}

void Forwarder::channel_freed(Channel* channel) {
    for (auto& [address, pool] : pools_) {
        std::erase_if(pool->channels, [channel](const std::unique_ptr<Channel>& c) { return c.get() == channel; });
    }
}

void Forwarder::close_all() {
    for (auto& [address, pool] : pools_) {
        for (auto& w : pool->waiting) {
            if (!w.ex->responded()) w.ex->respond(unavailable("shutting_down", "the node is shutting down"));
        }
        pool->waiting.clear();
        for (auto& c : pool->channels) {
            c->answer(unavailable("shutting_down", "the node is shutting down"));
            c->close();
        }
    }
    sockets_.close_all();
}

}  // namespace rampart::cluster
