#include "http_client.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "net/address.h"

namespace rampartctl {
namespace {

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

bool wait_for(int fd, short events, int timeout_ms) {
    pollfd p{fd, events, 0};
    return poll(&p, 1, timeout_ms) == 1;
}

bool send_all(int fd, const std::string& data, int timeout_ms) {
    size_t off = 0;
    while (off < data.size()) {
        if (!wait_for(fd, POLLOUT, timeout_ms)) return false;
        ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
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

}  // namespace

HttpResult http_request(const std::string& address, const std::string& method, const std::string& path,
                        const std::string& token, const std::string& body, int timeout_ms) {
    HttpResult result;
    rampart::net::Address addr;
    if (!rampart::net::parse_address(address, &addr, &result.error)) {
        result.error = "bad address " + address + ": " + result.error;
        return result;
    }
    Socket sock(socket(addr.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (sock.fd() < 0) {
        result.error = strerror(errno);
        return result;
    }
    socklen_t len = addr.ipv6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (connect(sock.fd(), addr.sa(), len) != 0 && errno != EINPROGRESS) {
        result.error = "connect " + address + ": " + strerror(errno);
        return result;
    }
    int soerr = 0;
    socklen_t soerr_len = sizeof soerr;
    if (!wait_for(sock.fd(), POLLOUT, timeout_ms) ||
        getsockopt(sock.fd(), SOL_SOCKET, SO_ERROR, &soerr, &soerr_len) != 0 || soerr != 0) {
        result.error = "connect " + address + ": " + (soerr ? strerror(soerr) : "timed out");
        return result;
    }
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: " + address + "\r\nConnection: close\r\n";
    if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
    if (!body.empty() || method == "PUT" || method == "POST")
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    if (!send_all(sock.fd(), req, timeout_ms)) {
        result.error = "send to " + address + " failed";
        return result;
    }
    std::string data;
    char buf[16384];
    while (wait_for(sock.fd(), POLLIN, timeout_ms)) {
        ssize_t n = recv(sock.fd(), buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        data.append(buf, static_cast<size_t>(n));
    }
    size_t head_end = data.find("\r\n\r\n");
    if (head_end == std::string::npos || !parse_head(data.substr(0, head_end), &result)) {
        result.error = data.empty() ? "no answer from " + address : "malformed answer from " + address;
        return result;
    }
    result.body = data.substr(head_end + 4);
    result.ok = true;
    return result;
}

}  // namespace rampartctl
