// HTTP responses: the value handlers return, and its wire form.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rampart::http {

// A body the connection pulls piece by piece while the client drains it,
// for answers too large to hold in memory a second time (GET /v1/snapshot).
// The connection asks for the next piece only while little output is
// waiting, so a slow client holds a bounded amount of memory. Called on the
// loop; dropped when the body is complete or the connection closes.
class BodySource {
public:
    virtual ~BodySource() = default;
    // Append the next piece, 1 to `max` bytes, to `out`. False on failure:
    // the connection closes, and the client sees fewer bytes than the
    // Content-Length promised, so it cannot take the body for whole.
    virtual bool next(std::string& out, size_t max) = 0;
};

struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers
    // When set, the body is `stream_length` bytes pulled from `stream`
    // (`body` stays empty, and so does the plugins' view of it).
    std::shared_ptr<BodySource> stream;
    uint64_t stream_length = 0;

    static Response json(int status, std::string body);
    // The brief's error shape: {"error": "<what and why>", "code": "<stable_code>"}
    static Response error(int status, std::string_view code, std::string_view message);
};

const char* status_reason(int status);

// How the connection frames this response.
struct Framing {
    std::string_view request_id;
    std::string_view date;           // IMF-fixdate, cached by the caller
    bool close = false;              // send "Connection: close"
    bool keep_alive_http10 = false;  // HTTP/1.0 client asked for keep-alive
    bool head = false;               // HEAD: headers only
};

// Append the status line, headers and body of `resp` to `out`.
void serialize(const Response& resp, const Framing& framing, std::string& out);

// "Sun, 06 Nov 1994 08:49:37 GMT" for `unix_seconds`.
std::string http_date(long unix_seconds);

}  // namespace rampart::http
