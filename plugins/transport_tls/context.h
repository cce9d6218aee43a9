// One transport context: the material of one purpose ("api", "peer") read
// and checked once, the two mbedTLS configurations built from it (server
// and client side), the session-ticket keys, the random generator, the
// pins, and the client's last session per peer (for resumption).
//
// Immutable once built, except for the resumption cache (mutex) and the
// expiry timer. Sessions hold a reference: the host's release after a
// reload leaves established connections on the context they started with.
// Handshake jobs on several worker threads share a context: the DRBG and
// the ticket context lock themselves (MBEDTLS_THREADING_C), and the ECP
// groups of the shared keys get their fixed-point table built here, on
// the loop thread, so that concurrent handshakes only read it.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>

#include "host.h"
#include "pins.h"
#include "rampart/plugin.h"

namespace transport_tls {

// Test-only relaxations; the plugin always passes the defaults.
struct ContextOptions {
    bool allow_expired = false;   // accept an own certificate outside its validity
    bool no_client_cert = false;  // the client side presents no certificate
};

constexpr uint32_t kTicketLifetimeSeconds = 12 * 3600;
constexpr uint64_t kExpiryRefreshMs = 60000;

class Context {
public:
    // Reads and checks everything; nullptr and a one-line `error` naming the
    // file on failure.
    static Context* create(const Host* host, const rampart_transport_settings& settings, const ContextOptions& options,
                           std::string* error);

    void ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
    void unref();
    // The host's reference goes: stop the expiry timer, then unref.
    void release();

    const Host* host() const { return host_; }
    const std::string& purpose() const { return purpose_; }
    bool has_ca() const { return has_ca_; }
    const Pins& pins() const { return pins_; }
    const mbedtls_ssl_config* server_conf() const { return &server_conf_; }
    const mbedtls_ssl_config* client_conf() const { return &client_conf_; }

    // Client resumption: the last session that reached `peer`.
    bool load_session(const std::string& peer, mbedtls_ssl_context* ssl);
    void save_session(const std::string& peer, const mbedtls_ssl_context* ssl);

    // Sets rampart_tls_cert_expiry_seconds for this context's certificates.
    void publish_expiry() const;

private:
    Context();
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    bool load(const rampart_transport_settings& settings, const ContextOptions& options, std::string* error);
    bool load_cert_and_key(const char* which, const std::string& cert_path, const std::string& key_path,
                           bool allow_expired, mbedtls_x509_crt* crt, mbedtls_pk_context* pk, std::string* error);
    bool build_confs(bool require_client_cert, bool no_client_cert, std::string* error);
    void warm_group(mbedtls_pk_context* pk);

    struct SavedSession {
        mbedtls_ssl_session s;
        SavedSession() { mbedtls_ssl_session_init(&s); }
        ~SavedSession() { mbedtls_ssl_session_free(&s); }
        SavedSession(const SavedSession&) = delete;
        SavedSession& operator=(const SavedSession&) = delete;
    };

    const Host* host_ = nullptr;
    std::atomic<int> refs_{1};
    std::string purpose_;
    bool has_ca_ = false;
    bool separate_client_ = false;
    int64_t cert_not_after_ = 0;
    int64_t client_not_after_ = 0;
    rampart_timer* expiry_timer_ = nullptr;

    mbedtls_entropy_context entropy_;
    mbedtls_ctr_drbg_context drbg_;
    mbedtls_x509_crt cert_;
    mbedtls_pk_context key_;
    mbedtls_x509_crt client_cert_;
    mbedtls_pk_context client_key_;
    mbedtls_x509_crt ca_;
    mbedtls_ssl_ticket_context ticket_;
    mbedtls_ssl_config server_conf_;
    mbedtls_ssl_config client_conf_;
    Pins pins_;

    std::mutex cache_mu_;
    std::map<std::string, std::unique_ptr<SavedSession>> cache_;
};

// The cipher suites and curves both sides offer (see README.md).
extern const int kCipherSuites[];
extern const mbedtls_ecp_group_id kCurves[];

}  // namespace transport_tls
