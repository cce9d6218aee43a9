// A small blocking HTTP/1.1 client for rampartctl (one request per
// connection, Content-Length framed answers).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace rampartctl {

struct HttpResult {
    bool ok = false;    // a response was received
    std::string error;  // why not, when !ok
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

// `address` is "host:port" or "[v6]:port" (literals), as rampartd listens.
HttpResult http_request(const std::string& address, const std::string& method, const std::string& path,
                        const std::string& token, const std::string& body, int timeout_ms);

}  // namespace rampartctl
