// HTTP/1.1 request parsing on top of llhttp, with the limits and checks
// llhttp 8.1 does not enforce itself: header and URI size, body size,
// obs-folded headers, whitespace before the colon, exactly one Host on
// HTTP/1.1, and versions other than 1.0/1.1.
//
// The parser is pure (no I/O) so it can be unit-tested and fuzzed. It stops
// after every complete request so the server can answer pipelined requests
// in order and apply back-pressure.
#pragma once

#include <llhttp.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rampart::http {

// A body limit for the paths under a prefix, in place of max_body_bytes
// (the KV API takes values up to 512 KiB; other routes keep 64 KiB).
// `prefix` must point to a string that outlives every Limits copy (a
// literal): Limits is copied per request and must not allocate.
struct PathBodyLimit {
    std::string_view prefix;
    size_t max_body_bytes = 0;
};

struct Limits {
    size_t max_header_bytes = 8192;  // header fields and values, not the request line
    size_t max_uri_bytes = 8192;
    size_t max_body_bytes = 65536;
    std::array<PathBodyLimit, 4> path_body_limits{};  // unused slots have an empty prefix

    size_t body_limit_for(std::string_view path) const;
};

struct Request;

// A request the server must refuse; the connection closes after the answer.
struct ParseError {
    int status = 400;
    std::string code;     // stable machine-readable code, e.g. "header_too_large"
    std::string message;  // for the client
};

// Where a streaming route's request body goes as it arrives, instead of
// Request::body: PUT /v1/snapshot carries a whole state, which a router
// with little RAM should not hold a second time. The path's body limit
// still applies (the parser counts the bytes). Owned by the Request; drop
// it to discard what it took (a failed or abandoned request).
class BodySink {
public:
    virtual ~BodySink() = default;
    // Take the next piece. False refuses the request with *error.
    virtual bool write(const char* data, size_t len, ParseError* error) = 0;
};

// Asked once the head is complete: the sink for this request, or null to
// buffer the body as usual. Null with error->code set refuses the request.
using BodySinkFactory = std::function<std::shared_ptr<BodySink>(const Request& head, ParseError* error)>;

struct Header {
    std::string name;  // as received
    std::string value;
};

struct Request {
    std::string method;
    std::string target;  // the raw request-target
    std::string path;    // target up to '?', not decoded
    std::string query;   // after '?', without it
    int version_major = 1;
    int version_minor = 1;
    std::vector<Header> headers;
    std::string body;
    std::shared_ptr<BodySink> body_sink;  // set instead of body for a streaming route
    bool keep_alive = true;

    // The first header with this name (case-insensitive), or nullptr.
    const std::string* header(std::string_view name) const;
};

class RequestParser {
public:
    enum class State { NeedMore, Complete, Error };

    explicit RequestParser(const Limits& limits);
    RequestParser(const RequestParser&) = delete;
    RequestParser& operator=(const RequestParser&) = delete;

    // Parse up to `len` bytes. Stops right after a complete request or at an
    // error; returns how many bytes were consumed. Call again with the rest.
    size_t feed(const char* data, size_t len);

    State state() const { return state_; }
    // Valid in State::Complete. Moves the request out and readies the next.
    Request take_request();
    const ParseError& error() const { return error_; }
    // True between the first byte of a request and its completion.
    bool in_progress() const { return in_progress_; }
    // The parser gave up on a request it had begun (a 400 or 413 before
    // its end): the client may still be sending the rest.
    bool failed_mid_request() const { return failed_mid_request_; }
    // How many requests have started so far (tells one request from the next).
    uint64_t requests_begun() const { return requests_begun_; }
    // The current request's head is done and it asked for "100-continue".
    bool expects_continue() const { return expects_continue_; }
    // Set once the server has sent the interim 100 response.
    void mark_continue_sent() { expects_continue_ = false; }
    void set_limits(const Limits& limits) { limits_ = limits; }
    void set_body_sink_factory(BodySinkFactory factory) { sink_factory_ = std::move(factory); }

private:
    static int cb_message_begin(llhttp_t* p);
    static int cb_url(llhttp_t* p, const char* at, size_t len);
    static int cb_method(llhttp_t* p, const char* at, size_t len);
    static int cb_header_field(llhttp_t* p, const char* at, size_t len);
    static int cb_header_value(llhttp_t* p, const char* at, size_t len);
    static int cb_headers_complete(llhttp_t* p);
    static int cb_body(llhttp_t* p, const char* at, size_t len);
    static int cb_message_complete(llhttp_t* p);

    int fail(int status, const char* code, std::string message);
    bool scan_head(const char* data, size_t len);
    int check_head();
    int check_transfer_encoding();

    llhttp_t parser_{};
    llhttp_settings_t settings_{};
    Limits limits_;
    size_t body_limit_ = 0;  // for the current request, from its path
    size_t body_bytes_ = 0;  // of the current request so far
    BodySinkFactory sink_factory_;
    State state_ = State::NeedMore;
    Request current_;
    ParseError error_;
    // The head is also scanned byte by byte, independently of llhttp:
    // folded lines and the exact header size are found on the raw bytes,
    // whatever way llhttp splits values into callbacks.
    bool scanning_head_ = true;
    size_t head_lines_ = 0;     // lines ended so far in this head
    size_t line_length_ = 0;    // bytes of the current line, CR excluded
    size_t header_bytes_ = 0;   // bytes of header lines (request line excluded)
    size_t trailer_bytes_ = 0;  // trailers are read, bounded and dropped
    bool headers_done_ = false;
    // Where the scanner saw this feed's head end (index after its final
    // LF), and whether llhttp paused at its own end of the head. The two
    // must agree, or the request is refused: a disagreement about framing
    // is how requests get smuggled.
    size_t head_end_in_feed_ = 0;
    bool head_end_seen_ = false;
    bool paused_at_head_ = false;
    size_t host_count_ = 0;
    bool in_progress_ = false;
    bool failed_mid_request_ = false;
    uint64_t requests_begun_ = 0;
    bool expects_continue_ = false;
    bool last_was_value_ = false;
};

}  // namespace rampart::http
