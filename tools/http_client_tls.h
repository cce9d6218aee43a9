// The TLS side of rampartctl's HTTP client (http_client.h): a blocking
// mbedTLS session over a connected socket.
#pragma once

#include <memory>
#include <string>

#include "http_client.h"

namespace rampartctl {

class TlsStream {
public:
    // Handshake on connected `fd` (not owned) and verify the server: its
    // chain must lead to settings.ca_file, and it must name `expected`: an
    // IP literal among its IP SANs, or a name among its DNS SANs.
    static std::unique_ptr<TlsStream> open(int fd, const TlsSettings& settings, const std::string& expected,
                                           std::string* error);
    ~TlsStream();
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;

    bool send_all(const std::string& data);
    // Bytes read (0 at the end of the stream, < 0 on error or timeout).
    int recv(char* buf, size_t len);

private:
    struct State;
    explicit TlsStream(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

}  // namespace rampartctl
