#include "cluster/seed_probe.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string_view>

#include "net/transport.h"
#include "peer/peer_network.h"

namespace rampart::cluster {
namespace {

constexpr const char* kRequest = "GET /v1/status/leader HTTP/1.1\r\nHost: rampart-seed\r\nConnection: close\r\n\r\n";

// The answer of our own server to kRequest, read to the end: "HTTP/1.1
// 200 OK", headers, then a JSON string naming the leader's peer address.
JoinOutcome judge(const std::string& address, std::string_view answer) {
    size_t head_end = answer.find("\r\n\r\n");
    if (answer.substr(0, 7) != "HTTP/1." || answer.size() < 12 || head_end == std::string_view::npos) {
        return JoinOutcome::retryable("the seed's answer is not HTTP (is " + address + " a rampart peer port?)");
    }
    int status = atoi(std::string(answer.substr(9, 3)).c_str());
    if (status != 200) return JoinOutcome::retryable("the seed answered HTTP " + std::to_string(status));
    std::string_view body = answer.substr(head_end + 4);
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
    if (body.size() < 2 || body.front() != '"' || body.back() != '"') {
        return JoinOutcome::retryable("the seed's /v1/status/leader answer is not a JSON string");
    }
    std::string leader(body.substr(1, body.size() - 2));
    if (leader.empty()) return JoinOutcome::retryable("the seed is up but knows no leader yet");
    return JoinOutcome::joined("the seed is a live member; its leader is " + leader +
                               " (reachability check only: the join request is not built yet)");
}

}  // namespace

class SeedProbe::Probe {
public:
    Probe(SeedProbe* owner, std::string address, std::function<void(JoinOutcome)> done)
        : owner_(owner), address_(std::move(address)), done_(std::move(done)) {
        uv_timer_init(owner_->loop_, &timer_);
        timer_.data = this;
        pipe_.data = this;
        handles_ = 1;
    }

    void start(const std::string& name) {
        uv_timer_start(&timer_, cb_timeout, kTimeoutMs, 0);
        dial_ = owner_->sockets_.dial(address_, name, "http", [this](int fd) {
            dial_ = nullptr;
            dialled(fd);
        });
    }

    // Ends the probe; `outcome` goes to the join loop unless cancelled.
    void end(const JoinOutcome* outcome) {
        if (closing_) return;
        closing_ = true;
        if (dial_ != nullptr) owner_->sockets_.cancel(dial_);
        dial_ = nullptr;
        uv_timer_stop(&timer_);
        uv_close(reinterpret_cast<uv_handle_t*>(&timer_), cb_closed);
        if (pipe_open_) {
            handles_++;
            uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), cb_closed);
        }
        std::function<void(JoinOutcome)> done = std::move(done_);
        if (outcome != nullptr && done) done(*outcome);
    }

    // The SeedProbe is going away while our handles still close.
    void orphan() { owner_ = nullptr; }

private:
    void dialled(int fd) {
        if (fd < 0) {
            JoinOutcome o = JoinOutcome::retryable(
                "no peer connection (refused, unreachable, or the TLS handshake "
                "failed: the peer connection log line says which)");
            return end(&o);
        }
        if (uv_pipe_init(owner_->loop_, &pipe_, 0) != 0 || uv_pipe_open(&pipe_, fd) != 0) {
            ::close(fd);
            JoinOutcome o = JoinOutcome::retryable("cannot use the peer connection");
            return end(&o);
        }
        pipe_open_ = true;
        uv_buf_t buf = uv_buf_init(const_cast<char*>(kRequest), static_cast<unsigned>(strlen(kRequest)));
        write_.data = this;
        if (uv_write(&write_, reinterpret_cast<uv_stream_t*>(&pipe_), &buf, 1, cb_written) != 0 ||
            uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe_), cb_alloc, cb_read) != 0) {
            JoinOutcome o = JoinOutcome::retryable("the peer connection failed");
            end(&o);
        }
    }

    static void cb_written(uv_write_t* req, int status) {
        auto* self = static_cast<Probe*>(req->data);
        if (status < 0 && !self->closing_) {
            JoinOutcome o = JoinOutcome::retryable(std::string("sending the request failed: ") + uv_strerror(status));
            self->end(&o);
        }
    }

    static void cb_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* self = static_cast<Probe*>(h->data);
        *buf = uv_buf_init(self->chunk_, sizeof self->chunk_);
    }

    static void cb_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
        auto* self = static_cast<Probe*>(stream->data);
        if (self->closing_) return;
        if (nread > 0) {
            self->answer_.append(buf->base, static_cast<size_t>(nread));
            if (self->answer_.size() <= kMaxAnswer) return;
            JoinOutcome o = JoinOutcome::retryable("the seed's answer is larger than expected");
            return self->end(&o);
        }
        if (nread == 0) return;
        // The seed closed after its answer (Connection: close), or failed.
        JoinOutcome o = self->answer_.empty()
                            ? JoinOutcome::retryable(std::string("the connection closed without an answer (") +
                                                     uv_strerror(static_cast<int>(nread)) + ")")
                            : judge(self->address_, self->answer_);
        self->end(&o);
    }

    static void cb_timeout(uv_timer_t* t) {
        auto* self = static_cast<Probe*>(t->data);
        JoinOutcome o = JoinOutcome::retryable("no answer within " + std::to_string(kTimeoutMs) + " ms");
        self->end(&o);
    }

    static void cb_closed(uv_handle_t* h) {
        auto* self = static_cast<Probe*>(h->data);
        if (--self->handles_ != 0) return;
        if (self->owner_ != nullptr) return self->owner_->freed(self);
        std::unique_ptr<Probe> orphaned(self);  // its SeedProbe is gone: it owns itself
    }

    SeedProbe* owner_;
    std::string address_;
    std::function<void(JoinOutcome)> done_;
    uv_timer_t timer_{};
    uv_pipe_t pipe_{};
    uv_write_t write_{};
    bool pipe_open_ = false;
    bool closing_ = false;
    int handles_ = 0;
    peer::SocketBridge::Link* dial_ = nullptr;
    std::string answer_;
    char chunk_[4096];
};

SeedProbe::SeedProbe(uv_loop_t* loop, peer::PeerNetwork* network, NameFor name_for)
    : loop_(loop), network_(network), name_for_(std::move(name_for)), sockets_(loop, network) {}

SeedProbe::~SeedProbe() {
    for (auto& p : probes_) {
        p->end(nullptr);
        p->orphan();
        (void)p.release();  // frees itself once its handles have closed
    }
}

void SeedProbe::probe(const Seed& seed, std::function<void(JoinOutcome)> done) {
    std::string name = seed.name.empty() ? name_for_(seed.address) : seed.name;
    // A TLS dial must name the certificate it expects; a static seed that
    // etc/peers.yml does not list has no name to expect.
    if (name.empty() && network_->transport() != nullptr) {
        return done(JoinOutcome::retryable(
            "no node id known for this seed, so its certificate cannot be checked: list it in etc/peers.yml, or "
            "discover it by SRV (the target's first label is the node id)"));
    }
    probes_.push_back(std::make_unique<Probe>(this, seed.address, std::move(done)));
    probes_.back()->start(name);
}

void SeedProbe::close_all() {
    for (auto& p : probes_) p->end(nullptr);
}

void SeedProbe::freed(Probe* probe) {
    probes_.remove_if([probe](const std::unique_ptr<Probe>& p) { return p.get() == probe; });
}

}  // namespace rampart::cluster
