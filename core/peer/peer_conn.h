// One connection on the peer port, accepted or dialled: TCP, then the
// transport's handshake (mutual TLS unless peers are insecure), then the
// one-line preamble "RAMPART/1 <protocol>\n" that says who handles the
// stream. After that it carries plaintext for its protocol's handler.
#pragma once

#include <uv.h>

#include <list>
#include <memory>
#include <string>
#include <vector>

#include "net/transport.h"
#include "net/wire_queue.h"
#include "rampart/plugin.h"

namespace rampart::peer {
class PeerConnection;
}

// The ABI's opaque connection handle.
struct rampart_conn {
    rampart::peer::PeerConnection* conn = nullptr;
};

namespace rampart::peer {

class PeerNetwork;

inline constexpr const char* kPreamblePrefix = "RAMPART/1 ";
inline constexpr size_t kMaxPreamble = 128;

// A protocol's handler: the ABI's callbacks and their argument.
struct Handler {
    rampart_conn_callbacks callbacks{};
    void* arg = nullptr;
    const void* owner = nullptr;  // the plugin that registered it
};

class PeerConnection final : public net::StreamSink {
public:
    enum class Side { Accepted, Dialled };
    PeerConnection(PeerNetwork* network, Side side);
    PeerConnection(const PeerConnection&) = delete;
    PeerConnection& operator=(const PeerConnection&) = delete;

    uv_tcp_t* tcp() { return &tcp_; }
    // Accepted: uv_accept succeeded; start the handshake.
    void start_accepted();
    // Dialled: connect to `address`, expect `expected_peer` in its
    // certificate, then send the preamble for `protocol`.
    void start_dial(const std::string& address, const std::string& expected_peer, const std::string& protocol,
                    const Handler& handler);

    // Plaintext out; returns the bytes held unsent or a negative errno.
    int64_t write(const char* data, size_t len);
    // Back-pressure from the consumer: stop or resume reading the socket.
    void pause_reading(bool paused);
    // Close once what was written has been sent.
    void close_graceful();
    // Close now; the handler hears `error_class` ("" = orderly).
    void close_now(const char* error_class);
    const net::PeerIdentity* identity() const { return has_identity_ ? &identity_ : nullptr; }
    // The identity in the ABI's shape (valid while the connection lives).
    const rampart_peer_identity* identity_view() const { return has_identity_ ? &view_.identity : nullptr; }
    const Handler& handler() const { return handler_; }
    const std::string& remote() const { return remote_; }
    rampart_conn* handle() { return &handle_; }

    // net::StreamSink
    int64_t wire_send(const char* data, size_t len) override;
    void plaintext(const char* data, size_t len) override;
    void handshake_done(const rampart_handshake_result& result) override;
    void transport_closed(rampart_transport_error error, std::string_view reason) override;

    std::list<std::unique_ptr<PeerConnection>>::iterator self_;

private:
    enum class State { Connecting, Handshaking, Preamble, Open, Closing };

    static void cb_connect(uv_connect_t* req, int status);
    static void cb_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
    static void cb_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
    static void cb_timer(uv_timer_t* timer);
    static void cb_closed(uv_handle_t* handle);

    void connected();
    bool begin_transport();
    void secure_ready(const rampart_handshake_result* result);
    void fail(rampart_transport_error error, const char* reason, const std::string& detail);
    void on_plaintext(const char* data, size_t len);
    void read_preamble(const char* data, size_t len);
    void notify_open(const rampart_handshake_result* result);
    void notify_close(const char* error_class);
    void flush_wire();
    void writable();
    void update_reading();

    PeerNetwork* network_;
    Side side_;
    State state_ = State::Connecting;
    uv_tcp_t tcp_{};
    uv_timer_t timer_{};
    uv_connect_t connect_{};
    int handles_open_ = 0;
    rampart_conn handle_;
    net::WireQueue wire_;
    std::unique_ptr<net::SecureSession> secure_;
    int session_calls_ = 0;
    std::string plain_in_;
    std::string preamble_;
    std::string expected_peer_;
    std::string protocol_;
    std::string remote_;
    std::string early_error_;  // a dial that failed before connecting
    Handler handler_;
    bool opened_ = false;  // on_open was called
    bool close_notified_ = false;
    bool close_after_flush_ = false;
    bool eof_in_handshake_ = false;
    bool read_paused_ = false;      // by the consumer (pause_reading)
    bool reading_ = false;          // uv_read_start is in effect
    bool notify_writable_ = false;  // a write left bytes held: on_writable when drained
    const char* close_error_ = "";  // what on_close reports after a flush
    bool has_identity_ = false;
    net::PeerIdentity identity_;
    struct View {
        rampart_peer_identity identity{};
        std::vector<const char*> sans;
    } view_;
    void build_view();
};

}  // namespace rampart::peer
