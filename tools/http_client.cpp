#include "http_client.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

#include "http_client_tls.h"
#include "net/address.h"

namespace rampartctl {
namespace {

TlsSettings g_tls;

class Socket {
public:
    explicit Socket(int fd) : fd_(fd) {}
    ~Socket() {
        if (fd_ >= 0) close(fd_);
    }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    int fd() const { return fd_; }

private:
    int fd_;
};

// Where a request goes: "http://127.0.0.1:7700", "https://[::1]:7700" or a
// bare "127.0.0.1:7700" (http).
struct Target {
    bool https = false;
    std::string host_port;  // as rampartd listens: a literal and a port
    std::string host;       // without the port and brackets
};

bool parse_target(const std::string& address, Target* out, std::string* error) {
    std::string rest = address;
    if (rest.rfind("https://", 0) == 0) {
        out->https = true;
        rest = rest.substr(8);
    } else if (rest.rfind("http://", 0) == 0) {
        rest = rest.substr(7);
    } else if (rest.find("://") != std::string::npos) {
        *error = "unsupported scheme in " + address + " (http:// or https://)";
        return false;
    }
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    out->host_port = rest;
    size_t colon = rest.rfind(':');
    out->host = rest.substr(0, colon == std::string::npos ? rest.size() : colon);
    if (out->host.size() >= 2 && out->host.front() == '[') out->host = out->host.substr(1, out->host.size() - 2);
    return true;
}

bool parse_head(const std::string& head, HttpResult* out) {
    size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    if (status_line.compare(0, 5, "HTTP/") != 0 || status_line.size() < 12) return false;
    out->status = atoi(status_line.c_str() + 9);
    size_t pos = line_end;
    while (pos != std::string::npos && pos + 2 < head.size()) {
        size_t next = head.find("\r\n", pos + 2);
        std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
        size_t colon = line.find(':');
        if (colon != std::string::npos) {
            size_t v = line.find_first_not_of(' ', colon + 1);
            out->headers.emplace_back(line.substr(0, colon), v == std::string::npos ? "" : line.substr(v));
        }
        pos = next;
    }
    return true;
}

// A connected, blocking socket whose reads and writes time out (-1 with
// *error if none).
int connect_to(const Target& t, int timeout_ms, std::string* error) {
    rampart::net::Address addr;
    if (!rampart::net::parse_address(t.host_port, &addr, error)) {
        *error = "bad address " + t.host_port + ": " + *error;
        return -1;
    }
    int fd = socket(addr.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *error = strerror(errno);
        return -1;
    }
    auto fail = [fd, error](std::string why) {
        close(fd);
        *error = std::move(why);
        return -1;
    };
    socklen_t len = addr.ipv6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (connect(fd, addr.sa(), len) != 0 && errno != EINPROGRESS)
        return fail("connect " + t.host_port + ": " + strerror(errno));
    pollfd p{fd, POLLOUT, 0};
    int soerr = 0;
    socklen_t soerr_len = sizeof soerr;
    if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &soerr_len) != 0 || soerr != 0)
        return fail("connect " + t.host_port + ": " + (soerr ? strerror(soerr) : "timed out"));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    timeval tv{timeout_ms / 1000, static_cast<suseconds_t>(timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

// One exchange with one server. `expected` is the name its certificate
// must carry (https only).
HttpResult exchange_once(const Target& t, const std::string& expected, const std::string& method,
                         const std::string& path, const std::string& token, const std::string& body, int timeout_ms) {
    HttpResult result;
    Socket sock(connect_to(t, timeout_ms, &result.error));
    if (sock.fd() < 0) return result;
    std::unique_ptr<TlsStream> tls;
    if (t.https) {
        tls = TlsStream::open(sock.fd(), g_tls, expected, &result.error);
        if (!tls) return result;
    }
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: " + t.host_port + "\r\nConnection: close\r\n";
    if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
    if (!body.empty() || method == "PUT" || method == "POST")
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    bool sent = true;
    if (tls) {
        sent = tls->send_all(req);
    } else {
        for (size_t off = 0; sent && off < req.size();) {
            ssize_t n = send(sock.fd(), req.data() + off, req.size() - off, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            sent = n > 0;
            if (sent) off += static_cast<size_t>(n);
        }
    }
    if (!sent) {
        result.error = "send to " + t.host_port + " failed";
        return result;
    }
    std::string data;
    char buf[16384];
    for (;;) {
        ssize_t n = tls ? tls->recv(buf, sizeof buf) : recv(sock.fd(), buf, sizeof buf, 0);
        if (n < 0 && !tls && errno == EINTR) continue;
        if (n <= 0) break;
        data.append(buf, static_cast<size_t>(n));
    }
    size_t head_end = data.find("\r\n\r\n");
    if (head_end == std::string::npos || !parse_head(data.substr(0, head_end), &result)) {
        result.error = data.empty() ? "no answer from " + t.host_port : "malformed answer from " + t.host_port;
        return result;
    }
    result.body = data.substr(head_end + 4);
    result.ok = true;
    return result;
}

bool idempotent(const std::string& method) { return method == "GET" || method == "HEAD"; }

}  // namespace

void set_tls_settings(TlsSettings settings) { g_tls = std::move(settings); }

const std::string* find_header(const HttpResult& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
        if (strcasecmp(k.c_str(), name.c_str()) == 0) return &v;
    }
    return nullptr;
}

HttpResult http_request(const std::string& address, const std::string& method, const std::string& path,
                        const std::string& token, const std::string& body, int timeout_ms) {
    HttpResult result;
    Target target;
    if (!parse_target(address, &target, &result.error)) return result;
    std::string expected = g_tls.server_name.empty() ? target.host : g_tls.server_name;
    std::string target_path = path;
    int redirects = 0, retries = 0;
    for (;;) {
        result = exchange_once(target, expected, method, target_path, token, body, timeout_ms);
        if (!result.ok) return result;
        const std::string* location = find_header(result, "Location");
        if ((result.status == 307 || result.status == 308) && location != nullptr && redirects < kMaxRedirects) {
            // Location: <scheme>://<host:port><path and query>.
            size_t slash =
                location->find('/', location->find("://") == std::string::npos ? 0 : location->find("://") + 3);
            Target next;
            std::string error;
            if (!parse_target(location->substr(0, slash), &next, &error)) return result;
            if (target.https && !next.https) {
                result.ok = false;
                result.error = "refusing a redirect from https to http: " + *location;
                return result;
            }
            // A node's certificate names its node id, which the redirect gives.
            const std::string* leader = find_header(result, "X-Rampart-Leader");
            expected = leader != nullptr ? *leader : next.host;
            target = next;
            target_path = slash == std::string::npos ? "/" : location->substr(slash);
            redirects++;
            continue;
        }
        const std::string* retry_after = find_header(result, "Retry-After");
        if (result.status == 503 && retry_after != nullptr && idempotent(method) && retries < kMaxRetries) {
            int wait_s = std::clamp(atoi(retry_after->c_str()), 0, kMaxRetryWaitS);
            std::this_thread::sleep_for(std::chrono::seconds(wait_s));
            retries++;
            continue;
        }
        return result;
    }
}

}  // namespace rampartctl
