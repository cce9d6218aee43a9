// The core's view of a transport plugin (TLS): contexts built from
// settings, and one session per wrapped connection. The core talks to
// the plugin only through include/rampart/plugin.h; it never sees mbedTLS,
// and the plugin never sees a libuv handle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rampart/plugin.h"

namespace rampart::net {

// What a connection does with the bytes and events its session produces.
// Implemented by the HTTP connection and by peer connections.
class StreamSink {
public:
    virtual ~StreamSink() = default;
    // Ciphertext for the socket; returns bytes now held unsent, or <0.
    virtual int64_t wire_send(const char* data, size_t len) = 0;
    virtual void plaintext(const char* data, size_t len) = 0;
    virtual void handshake_done(const rampart_handshake_result& result) = 0;
    virtual void transport_closed(rampart_transport_error error, std::string_view reason) = 0;
};

// The error class names shared with policies/retry.lua.
const char* error_class_name(rampart_transport_error error);

// A copy of the peer identity a handshake reported, kept by the connection.
struct PeerIdentity {
    bool verified = false;
    std::string subject_cn;
    std::vector<std::string> dns_sans;
    std::string cert_sha256;
    std::string spki_sha256;
    bool has(std::string_view san) const;
    // The first DNS SAN, else the CN: the name a certificate identity goes by.
    std::string name() const;
};
PeerIdentity copy_identity(const rampart_peer_identity& peer);

// Where one context's material lives (paths as configured).
struct TransportSettings {
    std::string purpose;  // "api" | "peer"
    std::string cert_file, key_file, ca_file;
    std::string client_cert_file, client_key_file;
    bool require_client_cert = false;
    std::string pins_file;
    bool operator==(const TransportSettings&) const = default;
};

class Transport;

// One built context. Sessions take the context current when they start;
// the plugin keeps it alive while they use it.
class TransportContext {
public:
    TransportContext(const Transport* transport, void* handle) : transport_(transport), handle_(handle) {}
    ~TransportContext();
    TransportContext(const TransportContext&) = delete;
    TransportContext& operator=(const TransportContext&) = delete;
    void* handle() const { return handle_; }

private:
    const Transport* transport_;
    void* handle_;
};

}  // namespace rampart::net

// The ABI's opaque stream handle: a session's way back to its connection.
struct rampart_stream {
    rampart::net::StreamSink* sink = nullptr;
};

namespace rampart::net {

// One transport session wrapping one connection. Frees the plugin's
// session on destruction; after that the plugin never calls back.
class SecureSession {
public:
    SecureSession() = default;
    ~SecureSession();
    SecureSession(const SecureSession&) = delete;
    SecureSession& operator=(const SecureSession&) = delete;

    // 0 or a negative errno.
    int open(const Transport& transport, const std::shared_ptr<TransportContext>& context, StreamSink* sink,
             rampart_transport_side side, const std::string& expected_peer);
    int input(const char* data, size_t len);
    int write(const char* data, size_t len);
    void shutdown();
    bool active() const { return session_ != nullptr; }

private:
    const rampart_transport* ops_ = nullptr;
    void* session_ = nullptr;
    rampart_stream stream_;
    std::shared_ptr<TransportContext> context_;
};

// The loaded transport plugin.
class Transport {
public:
    Transport(const rampart_transport* ops, void* state, std::string plugin_name)
        : ops_(ops), state_(state), plugin_name_(std::move(plugin_name)) {}
    const rampart_transport* ops() const { return ops_; }
    void* state() const { return state_; }
    const std::string& plugin_name() const { return plugin_name_; }
    // Build a context; nullptr with *error set when the material is bad.
    std::shared_ptr<TransportContext> build(const TransportSettings& settings, std::string* error) const;

private:
    const rampart_transport* ops_;
    void* state_;
    std::string plugin_name_;
};

}  // namespace rampart::net
