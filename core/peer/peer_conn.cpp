#include "peer/peer_conn.h"

#include <cerrno>
#include <cstring>

#include "log.h"
#include "net/address.h"
#include "peer/peer_network.h"

namespace rampart::peer {
namespace {

char g_peer_read_buffer[64 * 1024];
constexpr uint64_t kAlertFlushMs = 1000;  // how long a failing connection may take to send its alert

rampart_handshake_result plain_result() {
    rampart_handshake_result r{};
    r.struct_size = sizeof r;
    r.error = RAMPART_TRANSPORT_OK;
    r.reason = "ok";
    r.detail = "plain TCP (allow_insecure_peers)";
    r.protocol = "tcp";
    r.cipher = "";
    return r;
}

}  // namespace

PeerConnection::PeerConnection(PeerNetwork* network, Side side)
    : network_(network), side_(side), wire_(reinterpret_cast<uv_stream_t*>(&tcp_), [this](int status) {
          if (status < 0) {
              close_now("network_error");
          } else if (close_after_flush_ && wire_.idle()) {
              close_now(close_error_);
          } else if (wire_.idle()) {
              writable();
          }
      }) {
    uv_tcp_init(network->loop(), &tcp_);
    uv_timer_init(network->loop(), &timer_);
    tcp_.data = this;
    timer_.data = this;
    connect_.data = this;
    handles_open_ = 2;
    handle_.conn = this;
}

void PeerConnection::start_accepted() {
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
        remote_ = net::format_address(reinterpret_cast<sockaddr*>(&ss));
    }
    connected();
}

void PeerConnection::start_dial(const std::string& address, const std::string& expected_peer,
                                const std::string& protocol, const Handler& handler) {
    handler_ = handler;
    expected_peer_ = expected_peer;
    protocol_ = protocol;
    remote_ = address;
    net::Address addr;
    std::string error;
    int rc = net::parse_address(address, &addr, &error) ? uv_tcp_connect(&connect_, &tcp_, addr.sa(), cb_connect)
                                                        : UV_EINVAL;
    if (rc != 0) {
        // Report from the loop: the caller has not seen the handle yet.
        early_error_ = error.empty() ? uv_strerror(rc) : error;
        uv_timer_start(&timer_, cb_timer, 0, 0);
        return;
    }
    uv_timer_start(&timer_, cb_timer, kPeerHandshakeTimeoutMs, 0);
}

void PeerConnection::cb_connect(uv_connect_t* req, int status) {
    auto* conn = static_cast<PeerConnection*>(req->data);
    if (conn->state_ == State::Closing) return;
    if (status != 0) {
        conn->fail(RAMPART_TRANSPORT_NETWORK_ERROR, "connect", uv_strerror(status));
        return;
    }
    conn->connected();
}

void PeerConnection::connected() {
    uv_tcp_nodelay(&tcp_, 1);
    uv_timer_start(&timer_, cb_timer, kPeerHandshakeTimeoutMs, 0);
    update_reading();
    if (!reading_) {
        fail(RAMPART_TRANSPORT_NETWORK_ERROR, "read", "cannot read from the socket");
        return;
    }
    if (!begin_transport()) return;
    if (!secure_) {
        rampart_handshake_result r = plain_result();
        secure_ready(&r);
    }
}

bool PeerConnection::begin_transport() {
    state_ = State::Handshaking;
    const net::Transport* transport = network_->transport();
    if (transport == nullptr) return true;  // insecure: plain TCP
    secure_ = std::make_unique<net::SecureSession>();
    session_calls_++;
    int rc = secure_->open(*transport, network_->context(), this,
                           side_ == Side::Dialled ? RAMPART_SIDE_CLIENT : RAMPART_SIDE_SERVER, expected_peer_);
    session_calls_--;
    if (rc != 0) {
        secure_.reset();
        fail(RAMPART_TRANSPORT_TLS_ERROR, "session", std::string("TLS session could not start: ") + strerror(-rc));
        return false;
    }
    flush_wire();  // a client's ClientHello may be ready already
    return true;
}

// Handshake finished (or plain TCP connected): a client sends its
// preamble and is open; a server waits for the preamble.
void PeerConnection::secure_ready(const rampart_handshake_result* result) {
    if (result->peer != nullptr) {
        identity_ = net::copy_identity(*result->peer);
        has_identity_ = true;
        build_view();
    }
    if (side_ == Side::Accepted) {
        state_ = State::Preamble;
        return;
    }
    std::string line = std::string(kPreamblePrefix) + protocol_ + "\n";
    state_ = State::Open;
    uv_timer_stop(&timer_);
    if (write(line.data(), line.size()) < 0) return;
    notify_open(result);
}

// The identity was copied at the handshake; plugins get a view of the copy.
void PeerConnection::build_view() {
    view_.sans.clear();
    for (const auto& s : identity_.dns_sans) view_.sans.push_back(s.c_str());
    rampart_peer_identity& v = view_.identity;
    v.struct_size = sizeof v;
    v.verified = identity_.verified ? 1 : 0;
    v.subject_cn = identity_.subject_cn.c_str();
    v.dns_sans = view_.sans.data();
    v.dns_san_count = view_.sans.size();
    v.cert_sha256 = identity_.cert_sha256.c_str();
    v.spki_sha256 = identity_.spki_sha256.c_str();
}

int64_t PeerConnection::write(const char* data, size_t len) {
    if (state_ != State::Open || close_after_flush_) return -ENOTCONN;
    if (secure_) {
        session_calls_++;
        int rc = secure_->write(data, len);
        session_calls_--;
        if (rc < 0) {
            close_now("tls_error");
            return rc;
        }
    } else {
        wire_.append(data, len);
    }
    flush_wire();
    if (state_ == State::Closing) return -EPIPE;
    if (!wire_.idle()) notify_writable_ = true;
    return static_cast<int64_t>(wire_.backlog());
}

void PeerConnection::writable() {
    if (!notify_writable_ || state_ != State::Open) return;
    notify_writable_ = false;
    if (handler_.callbacks.on_writable != nullptr) handler_.callbacks.on_writable(handler_.arg, &handle_);
}

void PeerConnection::pause_reading(bool paused) {
    read_paused_ = paused;
    update_reading();
}

// Read while the connection lives, unless the consumer paused it (only
// once open: the handshake and the preamble are always read).
void PeerConnection::update_reading() {
    bool want = state_ != State::Closing && !close_after_flush_ && !eof_in_handshake_ &&
                !(read_paused_ && state_ == State::Open);
    if (want == reading_) return;
    auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
    if (want) {
        reading_ = uv_read_start(stream, cb_alloc, cb_read) == 0;
    } else {
        uv_read_stop(stream);
        reading_ = false;
    }
}

void PeerConnection::flush_wire() {
    if (state_ == State::Closing) return;
    int rc = wire_.flush();
    if (rc != 0) {
        close_now("network_error");
    } else if (close_after_flush_ && wire_.idle()) {
        close_now(close_error_);
    }
}

int64_t PeerConnection::wire_send(const char* data, size_t len) {
    if (state_ == State::Closing) return -EPIPE;
    wire_.append(data, len);
    if (session_calls_ == 0) flush_wire();
    return static_cast<int64_t>(wire_.backlog());
}

// Inside our own session call the bytes wait until it returns; outside it
// (records that came with the last handshake flight, delivered when the
// worker job ends) they are handled now, or they would wait for more input.
void PeerConnection::plaintext(const char* data, size_t len) {
    if (state_ == State::Closing) return;
    if (session_calls_ > 0) {
        plain_in_.append(data, len);
    } else {
        on_plaintext(data, len);
    }
}

void PeerConnection::handshake_done(const rampart_handshake_result& result) {
    if (state_ != State::Handshaking) return;
    if (result.error != RAMPART_TRANSPORT_OK) {
        fail(result.error, result.reason ? result.reason : "handshake", result.detail ? result.detail : "");
        return;
    }
    secure_ready(&result);
}

void PeerConnection::transport_closed(rampart_transport_error error, std::string_view) {
    close_now(error == RAMPART_TRANSPORT_OK ? "" : net::error_class_name(error));
}

void PeerConnection::cb_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
    *buf = uv_buf_init(g_peer_read_buffer, sizeof g_peer_read_buffer);
}

void PeerConnection::cb_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* conn = static_cast<PeerConnection*>(stream->data);
    if (nread < 0) {
        bool orderly = nread == UV_EOF && conn->state_ == State::Open;
        if (conn->state_ == State::Handshaking && conn->secure_ && nread == UV_EOF) {
            // An alert may have come just before the close, still on its
            // way through the session: give it a moment to say why.
            conn->eof_in_handshake_ = true;
            conn->update_reading();
            uv_timer_start(&conn->timer_, cb_timer, kAlertFlushMs, 0);
        } else if (conn->state_ == State::Handshaking || conn->state_ == State::Preamble) {
            conn->fail(RAMPART_TRANSPORT_NETWORK_ERROR, "eof", "the other side closed during the handshake");
        } else {
            conn->close_now(orderly ? "" : "network_error");
        }
        return;
    }
    if (nread == 0) return;
    if (!conn->secure_) {
        conn->on_plaintext(buf->base, static_cast<size_t>(nread));
        return;
    }
    conn->session_calls_++;
    int rc = conn->secure_->input(buf->base, static_cast<size_t>(nread));
    conn->session_calls_--;
    conn->flush_wire();
    if (rc < 0 && conn->state_ != State::Closing) {
        conn->fail(RAMPART_TRANSPORT_TLS_ERROR, "protocol", "the TLS session rejected the input");
        return;
    }
    if (!conn->plain_in_.empty()) {
        std::string plain;
        plain.swap(conn->plain_in_);
        conn->on_plaintext(plain.data(), plain.size());
    }
}

void PeerConnection::on_plaintext(const char* data, size_t len) {
    if (state_ == State::Preamble) {
        read_preamble(data, len);
    } else if (state_ == State::Open && handler_.callbacks.on_data != nullptr) {
        handler_.callbacks.on_data(handler_.arg, &handle_, data, len);
    }
}

// "RAMPART/1 <protocol>\n" selects the handler; bytes after it are its own.
void PeerConnection::read_preamble(const char* data, size_t len) {
    const char* nl = static_cast<const char*>(memchr(data, '\n', len));
    size_t take = nl ? static_cast<size_t>(nl - data) : len;
    preamble_.append(data, take);
    if (preamble_.size() > kMaxPreamble) {
        fail(RAMPART_TRANSPORT_NETWORK_ERROR, "preamble", "preamble longer than 128 bytes");
        return;
    }
    if (nl == nullptr) return;
    std::string_view prefix(kPreamblePrefix);
    const Handler* h = preamble_.compare(0, prefix.size(), prefix) == 0
                           ? network_->find_protocol(preamble_.substr(prefix.size()))
                           : nullptr;
    if (h == nullptr) {
        log::warn("peer connection refused: unknown preamble",
                  {{"remote", remote_}, {"preamble", preamble_.substr(0, 64)}});
        close_now("");
        return;
    }
    handler_ = *h;
    protocol_ = preamble_.substr(prefix.size());
    state_ = State::Open;
    uv_timer_stop(&timer_);
    rampart_handshake_result r = plain_result();
    r.detail = secure_ ? "TLS" : r.detail;
    r.protocol = secure_ ? "TLS" : "tcp";
    r.peer = identity_view();
    notify_open(&r);
    size_t rest = len - take - 1;
    if (rest > 0 && state_ == State::Open) on_plaintext(nl + 1, rest);
}

void PeerConnection::notify_open(const rampart_handshake_result* result) {
    opened_ = true;
    if (handler_.callbacks.on_open != nullptr) handler_.callbacks.on_open(handler_.arg, &handle_, result);
}

void PeerConnection::notify_close(const char* error_class) {
    if (close_notified_) return;
    close_notified_ = true;
    if (handler_.callbacks.on_close != nullptr) handler_.callbacks.on_close(handler_.arg, &handle_, error_class);
}

// Before the connection opened: a dialling handler hears on_open with the
// error, then on_close; an accepted one was never handed to anyone.
void PeerConnection::fail(rampart_transport_error error, const char* reason, const std::string& detail) {
    if (state_ == State::Closing || close_after_flush_) return;
    log::warn(side_ == Side::Dialled ? "peer dial failed" : "peer connection refused",
              {{"remote", remote_},
               {"expected_peer", expected_peer_},
               {"error", net::error_class_name(error)},
               {"reason", reason},
               {"detail", detail}});
    if (side_ == Side::Dialled && !opened_) {
        rampart_handshake_result r{};
        r.struct_size = sizeof r;
        r.error = error;
        r.reason = reason;
        r.detail = detail.c_str();
        r.protocol = "";
        r.cipher = "";
        opened_ = true;
        if (handler_.callbacks.on_open != nullptr) handler_.callbacks.on_open(handler_.arg, &handle_, &r);
    }
    // Let a TLS alert the session queued reach the other side first, so it
    // learns why (a tls_error there, not a reset).
    close_error_ = net::error_class_name(error);
    close_after_flush_ = true;
    uv_timer_start(&timer_, cb_timer, kAlertFlushMs, 0);
    update_reading();
    flush_wire();
}

void PeerConnection::cb_timer(uv_timer_t* timer) {
    auto* conn = static_cast<PeerConnection*>(timer->data);
    if (conn->close_after_flush_) {
        conn->close_now(conn->close_error_);  // the other side is not reading
        return;
    }
    if (conn->eof_in_handshake_) {
        conn->fail(RAMPART_TRANSPORT_NETWORK_ERROR, "eof", "the other side closed during the handshake");
        return;
    }
    if (!conn->early_error_.empty()) {
        conn->fail(RAMPART_TRANSPORT_NETWORK_ERROR, "connect", conn->early_error_);
        return;
    }
    conn->fail(RAMPART_TRANSPORT_TIMEOUT, "timeout", "no handshake and preamble within 5 s");
}

void PeerConnection::close_graceful() {
    if (state_ == State::Closing) return;
    if (secure_ && state_ == State::Open) {
        session_calls_++;
        secure_->shutdown();
        session_calls_--;
    }
    close_after_flush_ = true;
    flush_wire();
}

void PeerConnection::close_now(const char* error_class) {
    if (state_ == State::Closing) return;
    state_ = State::Closing;
    wire_.detach();
    if (opened_ || side_ == Side::Dialled) notify_close(error_class);
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), cb_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), cb_closed);
}

void PeerConnection::cb_closed(uv_handle_t* handle) {
    auto* conn = static_cast<PeerConnection*>(handle->data);
    if (--conn->handles_open_ > 0) return;
    conn->secure_.reset();
    conn->network_->connection_closed(conn);
}

}  // namespace rampart::peer
