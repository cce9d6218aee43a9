// One accepted TCP connection of the HTTP front (internal to server.cpp
// and exchange.cpp).
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <string>

#include "http/exchange.h"
#include "http/parser.h"
#include "net/transport.h"

namespace rampart::http {

class Server;

// Over TLS (when the server has a transport context) the connection keeps
// plaintext in outbuf_ and ciphertext in wirebuf_; over plain TCP the two
// are one stream and outbuf_ is handed to wirebuf_ without a copy.
class Connection final : public net::StreamSink {
public:
    Connection(Server* server, const Limits& limits);
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Called right after uv_accept succeeded.
    void start(bool over_capacity);
    // Called for a socket the server adopted (Server::adopt).
    void start_adopted(std::string source, const net::PeerIdentity* peer);
    // True for a peer's connection (forwarded requests), see start_adopted.
    bool internal() const { return internal_; }
    // Called by an Exchange when its handler has responded.
    void exchange_done();
    // Close now; pending responses are dropped.
    void close();
    // Finish the current requests, then close (graceful drain).
    void close_when_idle();
    bool idle() const { return queue_.empty() && !stream_ && !parser_.in_progress() && !closing_; }

    uv_tcp_t* tcp() { return &tcp_; }
    // The verified client certificate, when the handshake produced one.
    const net::PeerIdentity* peer_identity() const { return peer_.verified ? &peer_ : nullptr; }

    // net::StreamSink: what the TLS session hands back.
    int64_t wire_send(const char* data, size_t len) override;
    void plaintext(const char* data, size_t len) override;
    void handshake_done(const rampart_handshake_result& result) override;
    void transport_closed(rampart_transport_error error, std::string_view reason) override;
    std::list<std::unique_ptr<Connection>>::iterator self_;

private:
    enum class TimerMode { None, Handshake, Request, Idle, Linger };

    static void cb_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
    static void cb_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
    static void cb_write(uv_write_t* req, int status);
    static void cb_timer(uv_timer_t* timer);
    static void cb_closed(uv_handle_t* handle);
    static void cb_shutdown(uv_shutdown_t* req, int status);

    void on_data(const char* data, size_t len);
    void on_peer_eof();
    void parse_input();
    size_t parse_span(const char* data, size_t len);
    void maybe_send_continue();
    void dispatch(Request request);
    void enqueue_error(Response response);
    void send_completed();
    void log_access(const Exchange& ex);
    size_t output_backlog() const;
    void flush();
    void flush_wire();
    void pump_stream();
    bool start_tls();
    void secure_input(const char* data, size_t len);
    void update_timer();
    void pause_reading();
    void resume_reading();
    // The last answer is out: close, or first linger (close_after_answer).
    void close_after_answer();

    Server* server_;
    uv_tcp_t tcp_{};
    uv_timer_t timer_{};
    RequestParser parser_;
    std::string source_ip_;
    std::string inbuf_;    // bytes read but not yet parsed (reading paused)
    std::string outbuf_;   // serialized responses not yet handed to libuv (or TLS)
    std::string wirebuf_;  // bytes for the socket not yet handed to libuv
    std::unique_ptr<net::SecureSession> secure_;
    std::string plain_in_;  // plaintext the session delivered during one input call
    net::PeerIdentity peer_;
    int session_calls_ = 0;  // >0 while inside the TLS session: wire_send defers its flush
    bool handshaking_ = false;
    bool internal_ = false;
    std::deque<std::shared_ptr<Exchange>> queue_;
    // A streamed body being sent (Response::stream): later answers wait
    // until its last byte is queued.
    std::shared_ptr<BodySource> stream_;
    uint64_t stream_left_ = 0;
    bool stream_close_after_ = false;  // its exchange closes the connection
    bool pumping_ = false;             // inside pump_stream()
    size_t writes_in_flight_ = 0;
    size_t bytes_in_flight_ = 0;
    uint64_t timed_request_ = 0;  // which request the Request timer is for
    uint64_t idle_since_ = 0;     // loop time of the last activity (idle mode)
    int handles_open_ = 0;
    TimerMode timer_mode_ = TimerMode::None;
    bool reading_ = false;
    bool stop_parsing_ = false;  // a closing request or an error was seen
    bool close_after_flush_ = false;
    bool closing_ = false;
    bool lingering_ = false;  // FIN sent; reading and discarding until EOF or the linger time
    uv_shutdown_t shutdown_req_{};
    bool peer_eof_ = false;
    bool in_batch_ = false;  // inside on_data or parse_span: flush once at the end
    bool parsing_ = false;   // inside parse_span (see send_completed)

    // Marks parse_span() in progress and batches its output; restores the
    // previous batch state on every exit.
    class ParseScope {
    public:
        explicit ParseScope(Connection& conn)
            : conn_(conn), outer_batch_(conn.in_batch_), outer_parsing_(conn.parsing_) {
            conn_.in_batch_ = true;
            conn_.parsing_ = true;
        }
        ~ParseScope() {
            conn_.in_batch_ = outer_batch_;
            conn_.parsing_ = outer_parsing_;
        }
        ParseScope(const ParseScope&) = delete;
        ParseScope& operator=(const ParseScope&) = delete;

    private:
        Connection& conn_;
        bool outer_batch_;
        bool outer_parsing_;
    };
};

}  // namespace rampart::http
