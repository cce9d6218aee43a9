// HTTP responses: the value handlers return, and its wire form.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rampart::http {

struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers

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
