#include "cluster/membership_client.h"

#include <unistd.h>

#include <strings.h>

#include <cstdlib>
#include <string_view>

namespace rampart::cluster {

class MembershipClient::Call {
public:
    Call(MembershipClient* owner, Done done) : owner_(owner), done_(std::move(done)) {
        uv_timer_init(owner->loop_, &timer_);
        timer_.data = this;
        pipe_.data = this;
    }

    void start(const std::string& address, const std::string& node_id, std::string request) {
        out_ = std::move(request);
        uv_timer_start(&timer_, cb_timeout, kTimeoutMs, 0);
        dial_ = owner_->sockets_.dial(address, node_id, "http", [this](int fd) {
            dial_ = nullptr;
            dialled(fd);
        });
    }

    // Stop without an answer (the owner is closing): `done` never runs.
    void abandon() {
        done_ = nullptr;
        finish({});
    }

private:
    void dialled(int fd) {
        if (fd < 0 || uv_pipe_init(owner_->loop_, &pipe_, 0) != 0) {
            if (fd >= 0) ::close(fd);
            return fail("cannot reach the node over the peer port");
        }
        pipe_open_ = true;
        if (uv_pipe_open(&pipe_, fd) != 0) return fail("cannot use the peer connection");
        uv_buf_t buf = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
        write_.data = this;
        if (uv_write(&write_, reinterpret_cast<uv_stream_t*>(&pipe_), &buf, 1, cb_written) != 0 ||
            uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe_), cb_alloc, cb_read) != 0)
            fail("the peer connection failed");
    }

    static void cb_written(uv_write_t* req, int status) {
        auto* self = static_cast<Call*>(req->data);
        if (status < 0 && !self->finished_) self->fail(uv_strerror(status));
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
            if (self->in_.size() > kMaxAnswer) return self->fail("answer too large");
            return self->parse(false);
        }
        if (nread < 0) self->parse(true);
    }

    static void cb_timeout(uv_timer_t* t) { static_cast<Call*>(t->data)->fail("no answer in time"); }

    // Our own server's answer: a status line, headers, Content-Length.
    // Complete once the body is in (the server may keep the connection).
    void parse(bool closed) {
        size_t end = in_.find("\r\n\r\n");
        if (end == std::string::npos) {
            if (closed) fail(in_.empty() ? "the connection closed without an answer" : "malformed answer");
            return;
        }
        std::string_view head(in_.data(), end);
        if (head.size() < 12 || head.substr(0, 7) != "HTTP/1.") return fail("malformed answer");
        size_t length = 0;
        for (size_t at = head.find("\r\n"); at != std::string_view::npos; at = head.find("\r\n", at + 2)) {
            std::string_view line = head.substr(at + 2, head.find("\r\n", at + 2) - at - 2);
            if (line.size() > 15 && strncasecmp(line.data(), "content-length:", 15) == 0)
                length = strtoull(std::string(line.substr(15)).c_str(), nullptr, 10);
        }
        if (in_.size() < end + 4 + length) {
            if (closed) fail("the answer was cut short");
            return;
        }
        PeerAnswer a;
        a.status = atoi(std::string(head.substr(9, 3)).c_str());
        a.body = in_.substr(end + 4, length);
        finish(std::move(a));
    }

    void fail(std::string why) {
        PeerAnswer a;
        a.error = std::move(why);
        finish(std::move(a));
    }

    void finish(PeerAnswer a) {
        if (finished_) return;
        finished_ = true;
        if (dial_ != nullptr) owner_->sockets_.cancel(dial_);
        dial_ = nullptr;
        handles_ = pipe_open_ ? 2 : 1;
        uv_timer_stop(&timer_);
        uv_close(reinterpret_cast<uv_handle_t*>(&timer_), cb_closed);
        if (pipe_open_) uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), cb_closed);
        Done done = std::move(done_);
        if (done) done(std::move(a));
    }

    static void cb_closed(uv_handle_t* h) {
        auto* self = static_cast<Call*>(h->data);
        if (--self->handles_ == 0) self->owner_->finished(self);
    }

    MembershipClient* owner_;
    Done done_;
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

MembershipClient::MembershipClient(uv_loop_t* loop, peer::PeerNetwork* network)
    : loop_(loop), sockets_(loop, network) {}

MembershipClient::~MembershipClient() = default;

void MembershipClient::post(const std::string& address, const std::string& node_id, const std::string& path,
                            const std::string& body, const Headers& headers, Done done) {
    std::string request = "POST " + path + " HTTP/1.1\r\nHost: rampart-peer\r\n";
    for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
    request += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    if (closing_) return;
    calls_.push_back(std::make_unique<Call>(this, std::move(done)));
    calls_.back()->start(address, node_id, std::move(request));
}

void MembershipClient::finished(Call* call) {
    std::erase_if(calls_, [call](const std::unique_ptr<Call>& c) { return c.get() == call; });
}

void MembershipClient::close_all() {
    closing_ = true;
    std::vector<Call*> open;
    for (auto& c : calls_) open.push_back(c.get());
    for (Call* c : open) c->abandon();
    sockets_.close_all();
}

}  // namespace rampart::cluster
