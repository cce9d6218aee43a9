#include "http/response.h"

#include <charconv>
#include <ctime>

#include "util/json.h"

namespace rampart::http {

Response Response::json(int status, std::string body) {
    Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

Response Response::error(int status, std::string_view code, std::string_view message) {
    Response r;
    r.status = status;
    r.body.reserve(message.size() + code.size() + 32);
    r.body += "{\"error\":";
    util::json_string_append(r.body, message);
    r.body += ",\"code\":";
    util::json_string_append(r.body, code);
    r.body += "}\n";
    return r;
}

const char* status_reason(int status) {
    switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 201: return "Created";
        case 204: return "No Content";
        case 307: return "Temporary Redirect";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 417: return "Expectation Failed";
        case 422: return "Unprocessable Content";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        case 507: return "Insufficient Storage";
        default: return "Unknown";
    }
}

namespace {

// "HTTP/1.1 200 OK\r\n" without building it from pieces each time.
void append_status_line(std::string& out, int status) {
    char code[4] = {static_cast<char>('0' + (status / 100) % 10), static_cast<char>('0' + (status / 10) % 10),
                    static_cast<char>('0' + status % 10), ' '};
    out.append("HTTP/1.1 ", 9);
    out.append(code, 4);
    out += status_reason(status);
}

void append_decimal(std::string& out, uint64_t n) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
    out.append(buf, static_cast<size_t>(end - buf));
}

}  // namespace

void serialize(const Response& resp, const Framing& framing, std::string& out) {
    out.reserve(out.size() + 160 + resp.body.size());
    append_status_line(out, resp.status);
    out += "\r\nDate: ";
    out += framing.date;
    if (!resp.body.empty() || !resp.content_type.empty()) {
        out += "\r\nContent-Type: ";
        out += resp.content_type;
    }
    out += "\r\nContent-Length: ";
    append_decimal(out, resp.stream ? resp.stream_length : resp.body.size());
    if (!framing.request_id.empty()) {
        out += "\r\nX-Request-Id: ";
        out += framing.request_id;
    }
    for (const auto& [name, value] : resp.headers) {
        out += "\r\n";
        out += name;
        out += ": ";
        out += value;
    }
    if (framing.close) {
        out += "\r\nConnection: close";
    } else if (framing.keep_alive_http10) {
        out += "\r\nConnection: keep-alive";
    }
    out += "\r\n\r\n";
    if (!framing.head) out += resp.body;
}

std::string http_date(long unix_seconds) {
    time_t t = static_cast<time_t>(unix_seconds);
    struct tm tm_utc;
    gmtime_r(&t, &tm_utc);
    char buf[64];
    size_t n = strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm_utc);
    return std::string(buf, n);
}

}  // namespace rampart::http
