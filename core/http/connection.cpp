#include "http/connection.h"

#include <arpa/inet.h>

#include <algorithm>
#include <utility>

#include "http/request_id.h"
#include "http/server.h"
#include "log.h"

namespace rampart::http {
namespace {

// Reads land in one loop-wide buffer: each read is parsed before the next
// one arrives, so only bytes left over by back-pressure need their own copy.
char g_read_buffer[64 * 1024];

// Past this much unsent output, stop reading: a client that pipelines but
// never reads its answers must not grow our memory.
constexpr size_t kMaxOutputBacklog = 1 << 20;
// A streamed body is pulled in pieces of kStreamPiece while less than
// kStreamBacklog is waiting to go out: what a slow reader costs us.
constexpr size_t kStreamPiece = size_t{64} * 1024;
constexpr size_t kStreamBacklog = size_t{256} * 1024;
constexpr size_t kMaxLoggedPath = 512;

struct WriteRequest {
    uv_write_t req{};
    std::string data;
    Connection* conn = nullptr;
};

std::string peer_ip(uv_tcp_t* tcp) {
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "unknown";
    char buf[INET6_ADDRSTRLEN] = {0};
    if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
    } else {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
    }
    return buf;
}

}  // namespace

Connection::Connection(Server* server, const Limits& limits) : server_(server), parser_(limits) {
    uv_tcp_init(server->loop(), &tcp_);
    uv_timer_init(server->loop(), &timer_);
    tcp_.data = this;
    timer_.data = this;
    handles_open_ = 2;
    parser_.set_body_sink_factory([this](const Request& head, ParseError* error) -> std::shared_ptr<BodySink> {
        const BodySinkFactory* sink = server_->router().body_sink(head.method, head.path);
        return sink != nullptr ? (*sink)(head, error) : nullptr;
    });
}

// A connection a peer's requests arrive on (the peer port's "http"
// protocol, handed over as a socket): already authenticated by mutual TLS
// on the peer port, so no TLS here; its identity is the peer's certificate.
void Connection::start_adopted(std::string source, const net::PeerIdentity* peer) {
    source_ip_ = std::move(source);
    internal_ = true;
    if (peer != nullptr) peer_ = *peer;
    resume_reading();
    update_timer();
}

void Connection::start(bool over_capacity) {
    source_ip_ = peer_ip(&tcp_);
    uv_tcp_nodelay(&tcp_, 1);
    if (server_->pipeline() != nullptr && !server_->pipeline()->accept(source_ip_)) {
        close();
        return;
    }
    // Over TLS a full server closes at once rather than spend a handshake
    // on a 503.
    if (server_->tls_context() != nullptr && (over_capacity || !start_tls())) {
        close();
        return;
    }
    if (over_capacity) {
        Response r = Response::error(503, "too_many_connections", "the server is at its connection limit; retry later");
        r.headers.emplace_back("Retry-After", "1");
        enqueue_error(std::move(r));
        return;
    }
    resume_reading();
    update_timer();
}

bool Connection::start_tls() {
    secure_ = std::make_unique<net::SecureSession>();
    int rc = secure_->open(*server_->transport(), server_->tls_context(), this, RAMPART_SIDE_SERVER, "");
    if (rc != 0) {
        log::error("TLS session could not start", {{"source_ip", source_ip_}, {"error", rc}});
        secure_.reset();
        return false;
    }
    handshaking_ = true;
    return true;
}

// Ciphertext in: the session answers with handshake bytes (wire_send),
// events, and plaintext, which is parsed once the call returns so the
// parser's answers never re-enter the session from inside it.
void Connection::secure_input(const char* data, size_t len) {
    session_calls_++;
    int rc = secure_->input(data, len);
    session_calls_--;
    if (rc < 0 && !closing_) {
        close();
        return;
    }
    flush_wire();
    if (!plain_in_.empty() && !closing_) {
        // on_data never re-enters the session's input, so plain_in_ cannot
        // grow meanwhile; clearing keeps its capacity for the next read.
        on_data(plain_in_.data(), plain_in_.size());
        plain_in_.clear();
    }
}

int64_t Connection::wire_send(const char* data, size_t len) {
    if (closing_) return -EPIPE;
    wirebuf_.append(data, len);
    if (session_calls_ == 0) flush_wire();  // e.g. handshake bytes from a worker job
    return static_cast<int64_t>(wirebuf_.size() + bytes_in_flight_);
}

// Inside our own session call the bytes wait until it returns; outside it
// (a request that came with the client's last handshake flight, delivered
// when the worker job ends) they are parsed now, or they would wait for
// more input that may never come.
void Connection::plaintext(const char* data, size_t len) {
    if (closing_) return;
    if (session_calls_ > 0) {
        plain_in_.append(data, len);
    } else {
        on_data(data, len);
    }
}

void Connection::handshake_done(const rampart_handshake_result& result) {
    if (closing_ || !handshaking_) return;
    handshaking_ = false;
    if (result.error != RAMPART_TRANSPORT_OK) {
        log::warn("TLS handshake failed", {{"source_ip", source_ip_},
                                           {"error", net::error_class_name(result.error)},
                                           {"reason", result.reason ? result.reason : ""},
                                           {"detail", result.detail ? result.detail : ""}});
        close_after_flush_ = true;
        stop_parsing_ = true;
        outbuf_.clear();  // never send a plaintext answer over a failed session
        flush_wire();     // the alert, then close
        return;
    }
    if (result.peer != nullptr) peer_ = net::copy_identity(*result.peer);
    update_timer();
    flush();  // an answer queued before the handshake (503 over capacity)
}

void Connection::transport_closed(rampart_transport_error error, std::string_view reason) {
    if (closing_) return;
    if (error == RAMPART_TRANSPORT_OK) {
        on_peer_eof();  // close_notify: like a TCP FIN
        return;
    }
    log::debug("TLS connection failed", {{"source_ip", source_ip_}, {"reason", reason}});
    close();
}

void Connection::cb_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
    *buf = uv_buf_init(g_read_buffer, sizeof g_read_buffer);
}

void Connection::cb_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* conn = static_cast<Connection*>(stream->data);
    if (conn->lingering_) {
        if (nread < 0) conn->close();  // EOF (or an error): the client has read the answer or left
        return;                        // what it still sends is discarded
    }
    if (nread > 0 && conn->secure_) {
        conn->secure_input(buf->base, static_cast<size_t>(nread));
    } else if (nread > 0) {
        conn->on_data(buf->base, static_cast<size_t>(nread));
    } else if (nread == UV_EOF) {
        conn->on_peer_eof();
    } else if (nread < 0) {
        conn->close();
    }
}

void Connection::on_peer_eof() {
    peer_eof_ = true;
    pause_reading();
    // A half-closed client may still wait for answers to what it sent; an
    // unfinished request can never complete.
    if (parser_.in_progress() && inbuf_.empty()) {
        close();
        return;
    }
    if (!inbuf_.empty()) parse_input();
    if (queue_.empty()) close_after_flush_ = true;
    flush();
}

void Connection::on_data(const char* data, size_t len) {
    if (stop_parsing_ || closing_) return;
    in_batch_ = true;
    if (inbuf_.empty()) {
        size_t used = parse_span(data, len);
        if (used < len) inbuf_.assign(data + used, len - used);
    } else {
        inbuf_.append(data, len);
        parse_input();
    }
    in_batch_ = false;
    flush();
    update_timer();
}

void Connection::parse_input() {
    size_t used = parse_span(inbuf_.data(), inbuf_.size());
    inbuf_.erase(0, used);
}

size_t Connection::parse_span(const char* data, size_t len) {
    // Handlers may answer synchronously from dispatch(), which re-enters
    // send_completed(); while this scope is open that must neither start a
    // second parse over the same unconsumed bytes nor flush per response
    // (every caller flushes once afterwards).
    ParseScope scope(*this);
    size_t used = 0;
    while (used < len && !stop_parsing_ && !closing_) {
        if (queue_.size() >= server_->settings().max_pipelined || output_backlog() > kMaxOutputBacklog) {
            pause_reading();
            break;
        }
        // Each request gets the limits in force when it begins, so a reload
        // reaches keep-alive connections opened before it too; a request
        // already arriving keeps its own.
        if (!parser_.in_progress()) parser_.set_limits(server_->settings().limits);
        used += parser_.feed(data + used, len - used);
        if (parser_.state() == RequestParser::State::Complete) {
            dispatch(parser_.take_request());
        } else if (parser_.state() == RequestParser::State::Error) {
            const ParseError& err = parser_.error();
            enqueue_error(Response::error(err.status, err.code, err.message));
            return len;  // the rest of the stream cannot be trusted
        } else {
            break;
        }
    }
    maybe_send_continue();
    return used;
}

// "100 Continue" may only go out when nothing earlier is still unanswered.
void Connection::maybe_send_continue() {
    if (parser_.expects_continue() && queue_.empty() && !stop_parsing_) {
        outbuf_ += "HTTP/1.1 100 Continue\r\n\r\n";
        parser_.mark_continue_sent();
    }
}

void Connection::dispatch(Request request) {
    const std::string* client_id = request.header("x-request-id");
    std::string id = (client_id && is_sane_request_id(*client_id)) ? *client_id : generate_request_id();
    Pipeline* pipeline = server_->pipeline();
    auto ex = std::make_shared<Exchange>(this, std::move(request), std::move(id), source_ip_, pipeline);
    if (!ex->request_.keep_alive || server_->draining()) {
        ex->close_after_ = true;
        stop_parsing_ = true;
    }
    queue_.push_back(ex);
    Router::Match match = server_->router().match(ex->request_.method, ex->request_.path);
    ex->route_ = match.route;
    // Authentication and admission run for unrouted requests too, so a
    // scanner's 404s count against its limits.
    if (pipeline != nullptr && pipeline->before_handler(*ex)) return;
    if (match.route == nullptr) {
        Response r = match.status == 405
                         ? Response::error(405, "method_not_allowed",
                                           "method " + ex->request_.method + " not allowed on this path")
                         : Response::error(404, "not_found", "no such route");
        if (match.status == 405) r.headers.emplace_back("Allow", match.allow);
        ex->respond(std::move(r));
        return;
    }
    run_handler(*match.route, *ex);
}

void Connection::enqueue_error(Response response) {
    Request placeholder;
    placeholder.method = "-";
    placeholder.path = "-";
    // The pipeline sees these answers too, so 400/408/413/414/431/503
    // made before any handler still count in metrics.
    auto ex = std::make_shared<Exchange>(this, std::move(placeholder), generate_request_id(), source_ip_,
                                         server_->pipeline());
    ex->close_after_ = true;
    stop_parsing_ = true;
    pause_reading();
    queue_.push_back(ex);
    ex->respond(std::move(response));
}

void Connection::exchange_done() {
    send_completed();
    if (!in_batch_) {
        flush();
        update_timer();
    }
}

// Serialize every answered exchange at the head of the queue, in order.
void Connection::send_completed() {
    if (stream_) return;  // pump_stream() comes back here when the body is out
    while (!queue_.empty() && queue_.front()->responded_) {
        std::shared_ptr<Exchange> ex = std::move(queue_.front());
        queue_.pop_front();
        ex->conn_ = nullptr;
        const Request& req = ex->request_;
        Framing framing;
        framing.request_id = ex->request_id_;
        framing.date = server_->date();
        framing.close = ex->close_after_;
        framing.keep_alive_http10 = req.version_minor == 0 && req.keep_alive && !framing.close;
        framing.head = req.method == "HEAD";
        serialize(ex->response_, framing, outbuf_);
        log_access(*ex);
        if (ex->response_.stream && !framing.head && ex->response_.stream_length > 0) {
            stream_ = std::move(ex->response_.stream);
            stream_left_ = ex->response_.stream_length;
            stream_close_after_ = ex->close_after_;
            if (ex->close_after_) {
                for (auto& rest : queue_) rest->conn_ = nullptr;
                queue_.clear();
            }
            return;  // the flush that follows starts pulling the body
        }
        if (ex->close_after_) {
            close_after_flush_ = true;
            for (auto& rest : queue_) rest->conn_ = nullptr;
            queue_.clear();
            return;
        }
    }
    if (!queue_.empty()) return;
    // Re-entered from a handler inside parse_span(): that parse goes on by
    // itself and its caller decides what comes next. Parsing inbuf_ again
    // here would dispatch the same request over and over (unbounded
    // recursion: a pipelining client could crash the daemon).
    if (parsing_) return;
    if (peer_eof_ || server_->draining()) {
        if (!parser_.in_progress()) close_after_flush_ = true;
        return;
    }
    maybe_send_continue();
    if (!reading_ && !stop_parsing_ && !closing_) {
        if (!inbuf_.empty()) parse_input();
        if (inbuf_.empty()) resume_reading();
    }
}

void Connection::log_access(const Exchange& ex) {
    int status = ex.response_.status;
    log::Level level = status >= 500 ? log::Level::Error : log::Level::Info;
    if (!log::enabled(level)) return;
    bool sampled_route = ex.route_ != nullptr && ex.route_->high_volume && status < 400;
    if (sampled_route && !log::sample()) return;
    double ms = static_cast<double>(uv_hrtime() - ex.start_ns_) / 1e6;
    std::string_view path = ex.request_.path;
    if (path.size() > kMaxLoggedPath) path = path.substr(0, kMaxLoggedPath);
    log::write(level, "request",
               {{"request_id", ex.request_id_},
                {"source_ip", ex.source_ip_},
                {"method", ex.request_.method},
                {"path", path},
                {"status_code", status},
                {"duration_ms", ms}});
}

size_t Connection::output_backlog() const { return outbuf_.size() + wirebuf_.size() + bytes_in_flight_; }

void Connection::flush() {
    if (closing_) return;
    if (!secure_) {
        if (wirebuf_.empty()) {
            wirebuf_.swap(outbuf_);
        } else {
            wirebuf_ += outbuf_;
            outbuf_.clear();
        }
    } else if (!outbuf_.empty() && !handshaking_) {
        session_calls_++;
        int rc = secure_->write(outbuf_.data(), outbuf_.size());
        session_calls_--;
        outbuf_.clear();
        if (rc < 0) {
            close();
            return;
        }
    }
    flush_wire();
    if (stream_ && !pumping_) pump_stream();
}

void Connection::pump_stream() {
    pumping_ = true;
    while (stream_ && !closing_ && output_backlog() < kStreamBacklog) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(kStreamPiece, stream_left_));
        size_t before = outbuf_.size();
        bool ok = stream_->next(outbuf_, want);
        size_t got = outbuf_.size() - before;
        if (!ok || got == 0 || got > want) {
            log::error("streamed response body failed; closing the connection",
                       {{"source_ip", source_ip_}, {"bytes_left", static_cast<long long>(stream_left_)}});
            stream_.reset();
            pumping_ = false;
            close();
            return;
        }
        stream_left_ -= got;
        if (stream_left_ == 0) stream_.reset();
        flush();
    }
    pumping_ = false;
    if (stream_ || closing_) return;  // cb_write pulls again as the backlog drains
    // The body is out: what waited behind it goes now.
    if (stream_close_after_) {
        close_after_flush_ = true;
    } else {
        send_completed();
    }
    flush();
}

void Connection::flush_wire() {
    if (closing_) return;
    if (wirebuf_.empty()) {
        if (close_after_flush_ && writes_in_flight_ == 0 && outbuf_.empty() && !stream_) close_after_answer();
        return;
    }
    if (writes_in_flight_ == 0) {
        uv_buf_t buf = uv_buf_init(wirebuf_.data(), static_cast<unsigned>(wirebuf_.size()));
        int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1);
        if (n < 0 && n != UV_EAGAIN) {
            close();
            return;
        }
        if (n > 0) wirebuf_.erase(0, static_cast<size_t>(n));
        if (wirebuf_.empty()) {
            if (close_after_flush_ && outbuf_.empty() && !stream_) close_after_answer();
            return;
        }
    }
    if (writes_in_flight_ > 0) return;  // cb_write flushes the rest
    auto w = std::make_unique<WriteRequest>();
    w->data.swap(wirebuf_);
    w->conn = this;
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    w->req.data = w.get();
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, cb_write);
    if (rc != 0) {
        close();
        return;
    }
    bytes_in_flight_ += w->data.size();
    writes_in_flight_++;
    (void)w.release();  // owned by libuv until cb_write
}

void Connection::cb_write(uv_write_t* req, int status) {
    std::unique_ptr<WriteRequest> w(static_cast<WriteRequest*>(req->data));
    Connection* conn = w->conn;
    conn->writes_in_flight_--;
    conn->bytes_in_flight_ -= w->data.size();
    if (status < 0) {
        conn->close();
        return;
    }
    conn->flush();
    if (!conn->closing_ && !conn->reading_ && !conn->stop_parsing_ && conn->queue_.empty()) {
        conn->send_completed();  // resumes reading now that the backlog shrank
        conn->flush();
    }
    conn->update_timer();
}

void Connection::update_timer() {
    if (closing_ || lingering_) return;
    const ServerSettings& s = server_->settings();
    if (handshaking_) {
        // A handshake must finish within the request deadline, counted
        // from the accept.
        if (timer_mode_ != TimerMode::Handshake) {
            timer_mode_ = TimerMode::Handshake;
            uv_timer_start(&timer_, cb_timer, s.request_timeout_ms, 0);
        }
    } else if (parser_.in_progress() && !stop_parsing_) {
        // The deadline counts from a request's first byte; more bytes do
        // not extend it (slowloris).
        if (timer_mode_ != TimerMode::Request || timed_request_ != parser_.requests_begun()) {
            timer_mode_ = TimerMode::Request;
            timed_request_ = parser_.requests_begun();
            uv_timer_start(&timer_, cb_timer, s.request_timeout_ms, 0);
        }
    } else if (queue_.empty()) {
        // Re-arming a timer per request costs a heap update each time; note
        // the activity instead, and let the timer re-arm itself for the
        // time left when it fires early.
        idle_since_ = uv_now(server_->loop());
        if (timer_mode_ != TimerMode::Idle) {
            timer_mode_ = TimerMode::Idle;
            uv_timer_start(&timer_, cb_timer, s.idle_timeout_ms, 0);
        }
    } else if (timer_mode_ != TimerMode::None) {
        timer_mode_ = TimerMode::None;
        uv_timer_stop(&timer_);
    }
}

void Connection::cb_timer(uv_timer_t* timer) {
    auto* conn = static_cast<Connection*>(timer->data);
    if (conn->timer_mode_ == TimerMode::Handshake) {
        log::debug("TLS handshake timed out", {{"source_ip", conn->source_ip_}});
        conn->close();
        return;
    }
    if (conn->timer_mode_ == TimerMode::Linger) {
        conn->close();
        return;
    }
    if (conn->timer_mode_ == TimerMode::Request) {
        conn->timer_mode_ = TimerMode::None;
        uint64_t ms = conn->server_->settings().request_timeout_ms;
        conn->enqueue_error(Response::error(408, "request_timeout",
                                            "request not received completely within " + std::to_string(ms) + " ms"));
        conn->flush();
        return;
    }
    uint64_t idle_ms = conn->server_->settings().idle_timeout_ms;
    uint64_t idle_for = uv_now(conn->server_->loop()) - conn->idle_since_;
    if (idle_for < idle_ms) {
        uv_timer_start(&conn->timer_, cb_timer, idle_ms - idle_for, 0);
        return;
    }
    conn->close();
}

void Connection::pause_reading() {
    if (!reading_) return;
    reading_ = false;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
}

void Connection::resume_reading() {
    if (reading_ || closing_ || peer_eof_ || stop_parsing_) return;
    if (uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), cb_alloc, cb_read) == 0) reading_ = true;
}

// A client still sending a request body when we answer early (413, 507, a
// 401 before the body) has its unread bytes in our socket: closing now makes
// the kernel answer them with a reset, and the client often loses our answer
// with it (curl: "Connection reset by peer"). So, as nginx's lingering close
// does, send a FIN and keep reading and discarding until the client closes
// or kLingerMs pass. Only when a request was still arriving (an answer to
// a whole request closes at once); plain TCP only (a TLS session has
// already sent its close_notify and ends as before); never while the server
// drains.
void Connection::close_after_answer() {
    constexpr uint64_t kLingerMs = 2000;
    if (lingering_) return;  // already waiting for the client to close
    const bool request_arriving = parser_.in_progress() || parser_.failed_mid_request();
    if (peer_eof_ || secure_ || server_->draining() || !request_arriving) {
        close();
        return;
    }
    shutdown_req_.data = this;
    if (uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_), cb_shutdown) != 0) {
        close();
        return;
    }
    lingering_ = true;
    inbuf_.clear();
    timer_mode_ = TimerMode::Linger;
    uv_timer_start(&timer_, cb_timer, kLingerMs, 0);
    if (!reading_ && uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), cb_alloc, cb_read) == 0) reading_ = true;
}

void Connection::cb_shutdown(uv_shutdown_t* req, int status) {
    auto* conn = static_cast<Connection*>(req->data);
    if (status < 0 && status != UV_ECANCELED) conn->close();  // ECANCELED: closing already
}

void Connection::close_when_idle() {
    if (lingering_) {  // its answer is out
        close();
        return;
    }
    stop_parsing_ = true;
    pause_reading();
    if (!queue_.empty()) {
        queue_.back()->close_after_ = true;
    } else if (stream_) {
        stream_close_after_ = true;  // finish the body being sent, then close
    } else if (parser_.in_progress()) {
        // Give a request that is still arriving until the drain deadline.
        stop_parsing_ = false;
        resume_reading();
    } else {
        close_after_flush_ = true;
        flush();
    }
}

void Connection::close() {
    if (closing_) return;
    if (secure_ && !handshaking_) {
        // close_notify, best effort: the socket closes right after.
        session_calls_++;
        secure_->shutdown();
        session_calls_--;
        if (writes_in_flight_ == 0 && !wirebuf_.empty()) {
            uv_buf_t buf = uv_buf_init(wirebuf_.data(), static_cast<unsigned>(wirebuf_.size()));
            (void)uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1);
        }
    }
    closing_ = true;
    reading_ = false;
    stream_.reset();  // frees what the body holds (a snapshot's version) now
    for (auto& ex : queue_) ex->conn_ = nullptr;
    queue_.clear();
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), cb_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), cb_closed);
}

void Connection::cb_closed(uv_handle_t* handle) {
    auto* conn = static_cast<Connection*>(handle->data);
    if (--conn->handles_open_ > 0) return;
    conn->secure_.reset();  // the session never calls back after this
    conn->server_->connection_closed(conn);
}

}  // namespace rampart::http
