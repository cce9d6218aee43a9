#include "http/parser.h"

#include <strings.h>

#include <utility>

namespace rampart::http {
namespace {

RequestParser* self(llhttp_t* p) { return static_cast<RequestParser*>(p->data); }

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

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

// Per header: ": " and CRLF, counted so the limit matches bytes on the wire.
constexpr size_t kHeaderLineOverhead = 4;

}  // namespace

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
    feed_start_ = data;
    llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    size_t consumed = len;
    if (err == HPE_PAUSED) {
        consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
        llhttp_resume(&parser_);
    } else if (err != HPE_OK) {
        if (state_ != State::Error) {
            // An llhttp-detected violation: CL+TE, duplicate or invalid
            // Content-Length, bad chunk size, bad characters...
            const char* reason = llhttp_get_error_reason(&parser_);
            fail(400, "bad_request", std::string("malformed request: ") + (reason ? reason : llhttp_errno_name(err)));
        }
        consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
        if (consumed > len) consumed = len;
    }
    if (consumed > 0) prev_feed_last_ = data[consumed - 1];
    feed_start_ = nullptr;
    return consumed;
}

Request RequestParser::take_request() {
    Request out = std::move(current_);
    current_ = Request{};
    state_ = State::NeedMore;
    return out;
}

int RequestParser::fail(int status, const char* code, std::string message) {
    state_ = State::Error;
    in_progress_ = false;
    error_.status = status;
    error_.code = code;
    error_.message = std::move(message);
    return -1;
}

bool RequestParser::header_bytes_exceeded(size_t more) {
    header_bytes_ += more;
    return header_bytes_ > limits_.max_header_bytes;
}

int RequestParser::cb_message_begin(llhttp_t* p) {
    RequestParser* r = self(p);
    r->in_progress_ = true;
    r->requests_begun_++;
    r->header_bytes_ = 0;
    r->host_count_ = 0;
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

int RequestParser::cb_header_field(llhttp_t* p, const char* at, size_t len) {
    RequestParser* r = self(p);
    if (r->header_bytes_exceeded(len + (r->last_was_value_ ? kHeaderLineOverhead : 0))) {
        return r->fail(431, "header_too_large",
                       "request headers larger than " + std::to_string(r->limits_.max_header_bytes) + " bytes");
    }
    if (r->last_was_value_ || r->current_.headers.empty()) {
        if (r->current_.headers.size() >= 256) return r->fail(431, "header_too_large", "more than 256 request headers");
        r->current_.headers.emplace_back();
    }
    r->current_.headers.back().name.append(at, len);
    r->last_was_value_ = false;
    return 0;
}

int RequestParser::cb_header_value(llhttp_t* p, const char* at, size_t len) {
    RequestParser* r = self(p);
    if (r->header_bytes_exceeded(len)) {
        return r->fail(431, "header_too_large",
                       "request headers larger than " + std::to_string(r->limits_.max_header_bytes) + " bytes");
    }
    if (len > 0) {
        // llhttp passes an obs-fold continuation line as another value chunk
        // right after the line break; a plain value never follows a '\n'.
        char before = (at > r->feed_start_) ? at[-1] : r->prev_feed_last_;
        if (before == '\n') return r->fail(400, "bad_request", "obsolete header line folding is not allowed");
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
    bool has_length = (parser_.flags & F_CONTENT_LENGTH) != 0;
    if (has_length && parser_.content_length > limits_.max_body_bytes) {
        return fail(413, "body_too_large",
                    "request body larger than " + std::to_string(limits_.max_body_bytes) + " bytes");
    }
    if (const std::string* expect = req.header("expect")) {
        if (!iequals(*expect, "100-continue")) return fail(417, "expectation_failed", "unsupported Expect header");
        expects_continue_ = true;
    }
    size_t q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    if (req.path.empty() || req.path[0] != '/') return fail(400, "bad_request", "request target must be an absolute path");
    return 0;
}

int RequestParser::cb_headers_complete(llhttp_t* p) {
    RequestParser* r = self(p);
    if (r->last_was_value_ && r->header_bytes_exceeded(kHeaderLineOverhead)) {
        return r->fail(431, "header_too_large",
                       "request headers larger than " + std::to_string(r->limits_.max_header_bytes) + " bytes");
    }
    return r->check_head();
}

int RequestParser::cb_body(llhttp_t* p, const char* at, size_t len) {
    RequestParser* r = self(p);
    r->expects_continue_ = false;
    if (r->current_.body.size() + len > r->limits_.max_body_bytes) {
        return r->fail(413, "body_too_large",
                       "request body larger than " + std::to_string(r->limits_.max_body_bytes) + " bytes");
    }
    r->current_.body.append(at, len);
    return 0;
}

int RequestParser::cb_message_complete(llhttp_t* p) {
    RequestParser* r = self(p);
    r->current_.keep_alive = llhttp_should_keep_alive(p) != 0;
    r->state_ = State::Complete;
    r->in_progress_ = false;
    r->expects_continue_ = false;
    return HPE_PAUSED;
}

}  // namespace rampart::http
