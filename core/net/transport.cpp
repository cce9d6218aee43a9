#include "net/transport.h"

#include <cerrno>
#include <cstring>

namespace rampart::net {

const char* error_class_name(rampart_transport_error error) {
    switch (error) {
        case RAMPART_TRANSPORT_OK: return "";
        case RAMPART_TRANSPORT_TLS_ERROR: return "tls_error";
        case RAMPART_TRANSPORT_TIMEOUT: return "timeout";
        default: return "network_error";
    }
}

bool PeerIdentity::has(std::string_view san) const {
    for (const auto& s : dns_sans) {
        if (s == san) return true;
    }
    return false;
}

std::string PeerIdentity::name() const { return dns_sans.empty() ? subject_cn : dns_sans.front(); }

PeerIdentity copy_identity(const rampart_peer_identity& peer) {
    PeerIdentity id;
    auto str = [](const char* s) { return std::string(s ? s : ""); };
    id.verified = peer.verified != 0;
    id.subject_cn = str(peer.subject_cn);
    for (size_t i = 0; i < peer.dns_san_count && peer.dns_sans != nullptr; ++i)
        id.dns_sans.push_back(str(peer.dns_sans[i]));
    id.cert_sha256 = str(peer.cert_sha256);
    id.spki_sha256 = str(peer.spki_sha256);
    return id;
}

TransportContext::~TransportContext() {
    if (handle_ != nullptr && transport_->ops()->context_release != nullptr) {
        transport_->ops()->context_release(transport_->state(), handle_);
    }
}

std::shared_ptr<TransportContext> Transport::build(const TransportSettings& s, std::string* error) const {
    rampart_transport_settings c{};
    c.struct_size = sizeof c;
    c.purpose = s.purpose.c_str();
    c.cert_file = s.cert_file.c_str();
    c.key_file = s.key_file.c_str();
    c.ca_file = s.ca_file.c_str();
    c.client_cert_file = s.client_cert_file.c_str();
    c.client_key_file = s.client_key_file.c_str();
    c.require_client_cert = s.require_client_cert ? 1 : 0;
    c.pins_file = s.pins_file.c_str();
    char err[512] = {0};
    void* handle = nullptr;
    int rc = -EINVAL;
    try {
        rc = ops_->context_new(state_, &c, &handle, err, sizeof err);
    } catch (...) {
        rc = -EFAULT;
    }
    if (rc != 0 || handle == nullptr) {
        err[sizeof err - 1] = '\0';
        *error = err[0] ? err : "TLS " + s.purpose + " context: " + std::strerror(rc < 0 ? -rc : EINVAL);
        return nullptr;
    }
    return std::make_shared<TransportContext>(this, handle);
}

SecureSession::~SecureSession() {
    if (session_ != nullptr) ops_->session_free(session_);
}

int SecureSession::open(const Transport& transport, const std::shared_ptr<TransportContext>& context, StreamSink* sink,
                        rampart_transport_side side, const std::string& expected_peer) {
    ops_ = transport.ops();
    context_ = context;
    stream_.sink = sink;
    void* session = nullptr;
    int rc = ops_->session_new(transport.state(), context->handle(), &stream_, side,
                               expected_peer.empty() ? nullptr : expected_peer.c_str(), &session);
    if (rc != 0) return rc < 0 ? rc : -EINVAL;
    session_ = session;
    return 0;
}

int SecureSession::input(const char* data, size_t len) {
    return session_ ? ops_->session_input(session_, data, len) : -ENOTCONN;
}

int SecureSession::write(const char* data, size_t len) {
    return session_ ? ops_->session_write(session_, data, len) : -ENOTCONN;
}

void SecureSession::shutdown() {
    if (session_ != nullptr && ops_->session_shutdown != nullptr) ops_->session_shutdown(session_);
}

}  // namespace rampart::net
