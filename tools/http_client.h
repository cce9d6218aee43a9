// A small blocking HTTP/1.1 client for rampartctl (one request per
// connection, answers framed by the connection's end), over plain TCP or
// HTTPS (mbedTLS: the server's certificate is verified against a CA file;
// a client certificate is optional).
//
// http_request() follows 307/308 redirects (a follower in redirect mode
// points at the leader) up to kMaxRedirects, never from https to http, and
// retries an idempotent request (GET, HEAD) that got 503 with Retry-After
// up to kMaxRetries times, waiting what the server asked (at most
// kMaxRetryWaitS each).
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

// HTTPS settings, from RAMPART_CACERT, RAMPART_CLIENT_CERT,
// RAMPART_CLIENT_KEY and RAMPART_TLS_SERVER_NAME or their flags.
struct TlsSettings {
    std::string ca_file;    // PEM CA bundle the server's certificate must chain to (required for https)
    std::string cert_file;  // client certificate (optional, with key_file)
    std::string key_file;
    std::string server_name;  // the name the first server's certificate must carry (default: the host)
};
void set_tls_settings(TlsSettings settings);

inline constexpr int kMaxRedirects = 3;
inline constexpr int kMaxRetries = 3;
inline constexpr int kMaxRetryWaitS = 5;

// `address` is "host:port" or "[v6]:port" (literals), as rampartd listens,
// optionally prefixed with "http://" or "https://".
HttpResult http_request(const std::string& address, const std::string& method, const std::string& path,
                        const std::string& token, const std::string& body, int timeout_ms);

// The value of header `name` (case-insensitive), or nullptr.
const std::string* find_header(const HttpResult& r, const std::string& name);

}  // namespace rampartctl
