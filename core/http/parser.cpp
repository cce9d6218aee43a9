#include "http/parser.h"

#include <utility>

#include "util/strings.h"

namespace rampart::http {
namespace {

using util::iequals;

RequestParser* self(llhttp_t* p) { return static_cast<RequestParser*>(p->data); }

// RFC 9110 token characters; anything else in a field name (notably
// whitespace before the colon) must be rejected to stop smuggling.
bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (unsigned char c : s) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!ok && std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) == std::string_view::npos) {
            return false;
        }
    }
    return true;
}

constexpr size_t kMaxHeaders = 256;

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace

size_t Limits::body_limit_for(std::string_view path) const {
    for (const PathBodyLimit& l : path_body_limits) {
        if (!l.prefix.empty() && path.substr(0, l.prefix.size()) == l.prefix) return l.max_body_bytes;
    }
    return max_body_bytes;
}

const std::string* Request::header(std::string_view name) const {
    for (const Header& h : headers) {
        if (iequals(h.name, name)) return &h.value;
    }
    return nullptr;
}

RequestParser::RequestParser(const Limits& limits) : limits_(limits) {
    llhttp_settings_init(&settings_);
    settings_.on_message_begin = cb_message_begin;
    settings_.on_url = cb_url;
    settings_.on_method = cb_method;
    settings_.on_header_field = cb_header_field;
    settings_.on_header_value = cb_header_value;
    settings_.on_headers_complete = cb_headers_complete;
    settings_.on_body = cb_body;
    settings_.on_message_complete = cb_message_complete;
    llhttp_init(&parser_, HTTP_REQUEST, &settings_);
    parser_.data = this;
}

size_t RequestParser::feed(const char* data, size_t len) {
    if (state_ != State::NeedMore || len == 0) return 0;
    head_end_seen_ = false;
    if (scanning_head_ && !scan_head(data, len)) return len;
    size_t offset = 0;
    for (;;) {
        llhttp_errno_t err = llhttp_execute(&parser_, data + offset, len - offset);
        if (err == HPE_OK) return len;
        size_t pos = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
        if (err != HPE_PAUSED) {
            if (state_ != State::Error) {
                // An llhttp-detected violation: CL+TE, duplicate or invalid
                // Content-Length, bad chunk size, bad characters...
                const char* reason = llhttp_get_error_reason(&parser_);
                fail(400, "bad_request",
                     std::string("malformed request: ") + (reason ? reason : llhttp_errno_name(err)));
            }
            return pos > len ? len : pos;
        }
        llhttp_resume(&parser_);
        if (!paused_at_head_) return pos;  // a complete request
        paused_at_head_ = false;
        if (!head_end_seen_ || head_end_in_feed_ != pos) {
            fail(400, "bad_request", "malformed header section (bare CR or misplaced line break)");
            return len;
        }
        // Go on even with no bytes left: a request without a body
        // completes on this (empty) call.
        offset = pos;
    }
}

// Walk the head's raw bytes up to its empty line. A line that starts with
// a space or tab is an obs-fold continuation (RFC 9112 5.2: reject), and
// header lines may not add up to more than max_header_bytes. Bytes past
// the head (a body, the next request) are left alone: feed() stops after
// each request, so a new head always starts at a feed's first byte.
bool RequestParser::scan_head(const char* data, size_t len) {
    for (size_t i = 0; i < len && scanning_head_; ++i) {
        char c = data[i];
        bool ends_line = c == '\n';
        if (ends_line && line_length_ == 0) {
            // An empty line: the end of the head, or (before the request
            // line) a stray CRLF that llhttp skips.
            if (head_lines_ > 0) {
                scanning_head_ = false;
                head_end_seen_ = true;
                head_end_in_feed_ = i + 1;
            }
            continue;
        }
        if (c == '\r' && line_length_ == 0) continue;
        if (!ends_line && c != '\r' && line_length_ == 0 && head_lines_ > 0 && (c == ' ' || c == '\t')) {
            fail(400, "bad_request", "obsolete header line folding is not allowed");
            return false;
        }
        // Header lines count as on the wire, CRLF included; the request
        // line has its own limit (max_uri_bytes).
        if (head_lines_ > 0 && ++header_bytes_ > limits_.max_header_bytes) {
            fail(431, "header_too_large",
                 "request headers larger than " + std::to_string(limits_.max_header_bytes) + " bytes");
            return false;
        }
        if (ends_line) {
            head_lines_++;
            line_length_ = 0;
        } else {
            line_length_++;
        }
    }
    return true;
}

Request RequestParser::take_request() {
    Request out = std::move(current_);
    current_ = Request{};
    state_ = State::NeedMore;
    return out;
}

int RequestParser::fail(int status, const char* code, std::string message) {
    current_.body_sink.reset();  // what it spooled goes now, not with the connection
    state_ = State::Error;
    failed_mid_request_ = in_progress_;
    in_progress_ = false;
    error_.status = status;
    error_.code = code;
    error_.message = std::move(message);
    return -1;
}

int RequestParser::cb_message_begin(llhttp_t* p) {
    RequestParser* r = self(p);
    r->in_progress_ = true;
    r->requests_begun_++;
    r->host_count_ = 0;
    r->trailer_bytes_ = 0;
    r->body_bytes_ = 0;
    r->headers_done_ = false;
    r->last_was_value_ = false;
    r->expects_continue_ = false;
    return 0;
}

int RequestParser::cb_method(llhttp_t* p, const char* at, size_t len) {
    RequestParser* r = self(p);
    if (r->current_.method.size() + len > 32) return r->fail(400, "bad_request", "request method too long");
    r->current_.method.append(at, len);
    return 0;
}

int RequestParser::cb_url(llhttp_t* p, const char* at, size_t len) {
    RequestParser* r = self(p);
    if (r->current_.target.size() + len > r->limits_.max_uri_bytes) {
        return r->fail(414, "uri_too_long",
                       "request URI longer than " + std::to_string(r->limits_.max_uri_bytes) + " bytes");
    }
    r->current_.target.append(at, len);
    return 0;
}

// Trailers (fields after a chunked body) must not be merged into the
// request's headers (RFC 9110 6.5.1): they are bounded and dropped.
static bool trailer_overflow(size_t* trailer_bytes, size_t len, size_t limit) {
    *trailer_bytes += len;
    return *trailer_bytes > limit;
}

int RequestParser::cb_header_field(llhttp_t* p, const char* at, size_t len) {
    RequestParser* r = self(p);
    if (r->headers_done_) {
        if (trailer_overflow(&r->trailer_bytes_, len, r->limits_.max_header_bytes)) {
            return r->fail(431, "header_too_large", "request trailers too large");
        }
        return 0;
    }
    if (r->last_was_value_ || r->current_.headers.empty()) {
        if (r->current_.headers.size() >= kMaxHeaders) {
            return r->fail(431, "header_too_large", "more than 256 request headers");
        }
        r->current_.headers.emplace_back();
    }
    r->current_.headers.back().name.append(at, len);
    r->last_was_value_ = false;
    return 0;
}

int RequestParser::cb_header_value(llhttp_t* p, const char* at, size_t len) {
    RequestParser* r = self(p);
    if (r->headers_done_) {
        if (trailer_overflow(&r->trailer_bytes_, len, r->limits_.max_header_bytes)) {
            return r->fail(431, "header_too_large", "request trailers too large");
        }
        return 0;
    }
    if (!r->last_was_value_) {
        const std::string& name = r->current_.headers.back().name;
        if (!is_token(name)) return r->fail(400, "bad_request", "invalid header name");
        if (iequals(name, "host")) r->host_count_++;
    }
    r->current_.headers.back().value.append(at, len);
    r->last_was_value_ = true;
    return 0;
}

// The only transfer coding accepted is a single "chunked": anything else
// (gzip, "gzip, chunked", two TE headers) would hand the handler a body it
// cannot read, or frame it differently from a proxy in front.
int RequestParser::check_transfer_encoding() {
    std::string codings;
    bool present = false;  // an empty Transfer-Encoding is still one
    for (const Header& h : current_.headers) {
        if (!iequals(h.name, "transfer-encoding")) continue;
        if (present) codings += ",";
        present = true;
        codings += h.value;
    }
    if (!present) return 0;
    if (!iequals(trim(codings), "chunked")) {
        return fail(400, "bad_request", "Transfer-Encoding must be exactly \"chunked\"");
    }
    // HTTP/1.0 has no chunked framing: read it, then close (RFC 9112 6.1).
    if (current_.version_minor == 0) current_.keep_alive = false;
    return 0;
}

// Checks that need the whole head: version, Host, body size, Expect.
int RequestParser::check_head() {
    Request& req = current_;
    req.version_major = parser_.http_major;
    req.version_minor = parser_.http_minor;
    if (req.version_major != 1 || req.version_minor > 1) {
        return fail(505, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are supported");
    }
    if (!current_.headers.empty() && !last_was_value_) return fail(400, "bad_request", "header without a value");
    if (req.version_minor == 1 && host_count_ != 1) {
        return fail(400, "bad_request", host_count_ == 0 ? "missing Host header" : "more than one Host header");
    }
    if (host_count_ > 1) return fail(400, "bad_request", "more than one Host header");
    if (parser_.upgrade) return fail(400, "bad_request", "protocol upgrades are not supported");
    if (check_transfer_encoding() != 0) return -1;
    size_t q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    body_limit_ = limits_.body_limit_for(req.path);
    bool has_length = (parser_.flags & F_CONTENT_LENGTH) != 0;
    if (has_length && parser_.content_length > body_limit_) {
        return fail(413, "body_too_large", "request body larger than " + std::to_string(body_limit_) + " bytes");
    }
    // Expect is an HTTP/1.1 mechanism; a 1.0 server ignores it (RFC 9110 10.1.1).
    const std::string* expect = req.version_minor >= 1 ? req.header("expect") : nullptr;
    if (expect != nullptr) {
        if (!iequals(*expect, "100-continue")) return fail(417, "expectation_failed", "unsupported Expect header");
        expects_continue_ = true;
    }
    if (req.path.empty() || req.path[0] != '/')
        return fail(400, "bad_request", "request target must be an absolute path");
    return 0;
}

int RequestParser::cb_headers_complete(llhttp_t* p) {
    RequestParser* r = self(p);
    r->headers_done_ = true;
    if (r->check_head() != 0) return -1;
    if (r->sink_factory_) {
        ParseError error;
        r->current_.body_sink = r->sink_factory_(r->current_, &error);
        if (!r->current_.body_sink && !error.code.empty())
            return r->fail(error.status, error.code.c_str(), std::move(error.message));
    }
    r->paused_at_head_ = true;
    return HPE_PAUSED;
}

int RequestParser::cb_body(llhttp_t* p, const char* at, size_t len) {
    RequestParser* r = self(p);
    r->expects_continue_ = false;
    if (r->body_bytes_ + len > r->body_limit_) {
        return r->fail(413, "body_too_large", "request body larger than " + std::to_string(r->body_limit_) + " bytes");
    }
    r->body_bytes_ += len;
    if (!r->current_.body_sink) {
        r->current_.body.append(at, len);
        return 0;
    }
    ParseError error;
    if (!r->current_.body_sink->write(at, len, &error))
        return r->fail(error.status, error.code.c_str(), std::move(error.message));
    return 0;
}

int RequestParser::cb_message_complete(llhttp_t* p) {
    RequestParser* r = self(p);
    r->current_.keep_alive = r->current_.keep_alive && llhttp_should_keep_alive(p) != 0;
    r->state_ = State::Complete;
    r->scanning_head_ = true;
    r->head_lines_ = 0;
    r->line_length_ = 0;
    r->header_bytes_ = 0;
    r->in_progress_ = false;
    r->expects_continue_ = false;
    return HPE_PAUSED;
}

}  // namespace rampart::http
