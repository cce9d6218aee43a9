#include "context.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <mbedtls/ecp.h>
#include <mbedtls/error.h>

#include "identity.h"

namespace transport_tls {

// ECDHE only, AEAD only: AES-GCM and ChaCha20-Poly1305, ECDSA certificates
// first (what gen-certs.sh makes), RSA ones accepted.
const int kCipherSuites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

// X25519 preferred for the key exchange; the NIST curves for interop and
// for ECDSA certificates (P-256 and P-384 keys).
const mbedtls_ecp_group_id kCurves[] = {
    MBEDTLS_ECP_DP_CURVE25519,
    MBEDTLS_ECP_DP_SECP256R1,
    MBEDTLS_ECP_DP_SECP384R1,
    MBEDTLS_ECP_DP_NONE,
};

namespace {

std::string mbed_error(int ret) {
    char buf[160];
    mbedtls_strerror(ret, buf, sizeof buf);
    return buf;
}

// 0 when `path` exists and is a regular file, else the message.
bool check_file(const std::string& prefix, const std::string& path, struct stat* st, std::string* error) {
    if (path.empty()) {
        *error = prefix + " is not set";
        return false;
    }
    if (::stat(path.c_str(), st) != 0) {
        *error = prefix + " " + path + " cannot be read: " + std::strerror(errno);
        return false;
    }
    if (!S_ISREG(st->st_mode)) {
        *error = prefix + " " + path + " is not a regular file";
        return false;
    }
    return true;
}

bool parse_certs(const std::string& prefix, const std::string& path, mbedtls_x509_crt* crt, bool tolerate_some,
                 std::string* error, std::string* warning) {
    struct stat st;
    if (!check_file(prefix, path, &st, error)) return false;
    int ret = mbedtls_x509_crt_parse_file(crt, path.c_str());
    if (ret < 0) {
        *error = prefix + " " + path + " holds no valid PEM or DER certificate (" + mbed_error(ret) + ")";
        return false;
    }
    if (crt->raw.p == nullptr) {
        *error = prefix + " " + path + " holds no certificate";
        return false;
    }
    if (ret > 0) {
        if (!tolerate_some) {
            *error = prefix + " " + path + ": " + std::to_string(ret) + " certificate(s) could not be parsed";
            return false;
        }
        *warning =
            prefix + " " + path + ": " + std::to_string(ret) + " certificate(s) could not be parsed and are ignored";
    }
    return true;
}

}  // namespace

Context::Context() {
    mbedtls_entropy_init(&entropy_);
    mbedtls_ctr_drbg_init(&drbg_);
    mbedtls_x509_crt_init(&cert_);
    mbedtls_pk_init(&key_);
    mbedtls_x509_crt_init(&client_cert_);
    mbedtls_pk_init(&client_key_);
    mbedtls_x509_crt_init(&ca_);
    mbedtls_ssl_ticket_init(&ticket_);
    mbedtls_ssl_config_init(&server_conf_);
    mbedtls_ssl_config_init(&client_conf_);
}

Context::~Context() {
    mbedtls_ssl_config_free(&client_conf_);
    mbedtls_ssl_config_free(&server_conf_);
    mbedtls_ssl_ticket_free(&ticket_);
    mbedtls_x509_crt_free(&ca_);
    mbedtls_pk_free(&client_key_);
    mbedtls_x509_crt_free(&client_cert_);
    mbedtls_pk_free(&key_);
    mbedtls_x509_crt_free(&cert_);
    mbedtls_ctr_drbg_free(&drbg_);
    mbedtls_entropy_free(&entropy_);
}

void Context::unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

void Context::release() {
    if (expiry_timer_ != nullptr && host_->api->timer_stop) host_->api->timer_stop(expiry_timer_);
    expiry_timer_ = nullptr;
    unref();
}

namespace {
void expiry_tick(void* arg) {
    try {
        static_cast<const Context*>(arg)->publish_expiry();
    } catch (...) {
    }
}
}  // namespace

Context* Context::create(const Host* host, const rampart_transport_settings& settings, const ContextOptions& options,
                         std::string* error) {
    std::unique_ptr<Context, void (*)(Context*)> c(new Context(), [](Context* p) { p->unref(); });
    c->host_ = host;
    if (!c->load(settings, options, error)) return nullptr;
    c->publish_expiry();
    if (host->api != nullptr && host->api->timer_start != nullptr)
        c->expiry_timer_ = host->api->timer_start(host->ctx, kExpiryRefreshMs, kExpiryRefreshMs, expiry_tick, c.get());
    return c.release();
}

bool Context::load_cert_and_key(const char* which, const std::string& cert_path, const std::string& key_path,
                                bool allow_expired, mbedtls_x509_crt* crt, mbedtls_pk_context* pk, std::string* error) {
    const std::string p = "TLS " + purpose_ + " " + which;
    std::string warning;
    if (!parse_certs(p + "certificate", cert_path, crt, false, error, &warning)) return false;
    if (!allow_expired) {
        if (mbedtls_x509_time_is_past(&crt->valid_to)) {
            *error = p + "certificate " + cert_path + " expired on " + x509_time_text(crt->valid_to);
            return false;
        }
        if (mbedtls_x509_time_is_future(&crt->valid_from)) {
            *error = p + "certificate " + cert_path + " is not valid before " + x509_time_text(crt->valid_from);
            return false;
        }
    }
    struct stat st;
    if (!check_file(p + "key", key_path, &st, error)) return false;
    if ((st.st_mode & 077) != 0) {
        char buf[512];
        (void)std::snprintf(buf, sizeof buf, "%skey %s has insecure permissions %04o (must be 0600)", p.c_str(),
                            key_path.c_str(), static_cast<unsigned>(st.st_mode & 07777));
        *error = buf;
        return false;
    }
    int ret = mbedtls_pk_parse_keyfile(pk, key_path.c_str(), nullptr);
    if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) {
        *error = p + "key " + key_path + " is encrypted; an unencrypted key (mode 0600) is needed";
        return false;
    }
    if (ret != 0) {
        *error = p + "key " + key_path + " is not a valid private key (" + mbed_error(ret) + ")";
        return false;
    }
    if (mbedtls_pk_check_pair(&crt->pk, pk) != 0) {
        *error = p + "key " + key_path + " does not match certificate " + cert_path;
        return false;
    }
    return true;
}

bool Context::load(const rampart_transport_settings& s, const ContextOptions& options, std::string* error) {
    auto str = [](const char* v) { return std::string(v != nullptr ? v : ""); };
    purpose_ = str(s.purpose);
    if (purpose_.empty()) purpose_ = "tls";
    const std::string cert_file = str(s.cert_file);
    const std::string key_file = str(s.key_file);
    const std::string ca_file = str(s.ca_file);
    std::string client_cert_file = str(s.client_cert_file);
    std::string client_key_file = str(s.client_key_file);
    if (client_cert_file.empty()) client_cert_file = cert_file;
    if (client_key_file.empty()) client_key_file = key_file;
    const std::string pins_file = s.struct_size >= offsetof(rampart_transport_settings, pins_file) + sizeof(s.pins_file)
                                      ? str(s.pins_file)
                                      : std::string();

    static const char kPers[] = "rampart transport_tls";
    int ret = mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_,
                                    reinterpret_cast<const unsigned char*>(kPers), sizeof kPers - 1);
    if (ret != 0) {
        *error = "TLS " + purpose_ + ": cannot seed the random generator (" + mbed_error(ret) + ")";
        return false;
    }

    if (!load_cert_and_key("", cert_file, key_file, options.allow_expired, &cert_, &key_, error)) return false;
    cert_not_after_ = x509_time_unix(cert_.valid_to);
    separate_client_ = client_cert_file != cert_file || client_key_file != key_file;
    if (separate_client_) {
        if (!load_cert_and_key("client ", client_cert_file, client_key_file, options.allow_expired, &client_cert_,
                               &client_key_, error))
            return false;
        client_not_after_ = x509_time_unix(client_cert_.valid_to);
    }

    has_ca_ = !ca_file.empty();
    if (has_ca_) {
        std::string warning;
        if (!parse_certs("TLS " + purpose_ + " CA file", ca_file, &ca_, true, error, &warning)) return false;
        if (!warning.empty()) host_->log(RAMPART_LOG_WARN, warning);
    } else if (s.require_client_cert) {
        *error = "TLS " + purpose_ + ": require_client_cert needs a CA file to verify client certificates with";
        return false;
    }

    if (!pins_file.empty() && !load_pins_file(pins_file, &pins_, error)) return false;

    // Build the fixed-point tables of the shared keys now (see context.h).
    warm_group(&key_);
    if (separate_client_) warm_group(&client_key_);
    for (mbedtls_x509_crt* c = &ca_; has_ca_ && c != nullptr && c->raw.p != nullptr; c = c->next) warm_group(&c->pk);

    return build_confs(s.require_client_cert != 0, options.no_client_cert, error);
}

void Context::warm_group(mbedtls_pk_context* pk) {
    if (!mbedtls_pk_can_do(pk, MBEDTLS_PK_ECKEY)) return;
    mbedtls_ecp_keypair* kp = mbedtls_pk_ec(*pk);
    if (kp == nullptr || mbedtls_ecp_get_type(&kp->grp) != MBEDTLS_ECP_TYPE_SHORT_WEIERSTRASS) return;
    mbedtls_ecp_point r;
    mbedtls_mpi one;
    mbedtls_ecp_point_init(&r);
    mbedtls_mpi_init(&one);
    if (mbedtls_mpi_lset(&one, 1) == 0)
        (void)mbedtls_ecp_mul(&kp->grp, &r, &one, &kp->grp.G, mbedtls_ctr_drbg_random, &drbg_);
    mbedtls_mpi_free(&one);
    mbedtls_ecp_point_free(&r);
}

bool Context::build_confs(bool require_client_cert, bool no_client_cert, std::string* error) {
    auto common = [this](mbedtls_ssl_config* conf, int endpoint) -> int {
        int ret = mbedtls_ssl_config_defaults(conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
        if (ret != 0) return ret;
        // TLS 1.2 is both floor and ceiling: mbedTLS 2.28 has no TLS 1.3 server.
        mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
        mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
        mbedtls_ssl_conf_ciphersuites(conf, kCipherSuites);
        mbedtls_ssl_conf_curves(conf, kCurves);
        mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &drbg_);
        mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
        if (has_ca_) mbedtls_ssl_conf_ca_chain(conf, &ca_, nullptr);
        return 0;
    };
    int ret = common(&server_conf_, MBEDTLS_SSL_IS_SERVER);
    if (ret == 0) ret = mbedtls_ssl_conf_own_cert(&server_conf_, &cert_, &key_);
    if (ret == 0) {
        int mode = MBEDTLS_SSL_VERIFY_NONE;
        if (has_ca_) mode = require_client_cert ? MBEDTLS_SSL_VERIFY_REQUIRED : MBEDTLS_SSL_VERIFY_OPTIONAL;
        mbedtls_ssl_conf_authmode(&server_conf_, mode);
        ret = mbedtls_ssl_ticket_setup(&ticket_, mbedtls_ctr_drbg_random, &drbg_, MBEDTLS_CIPHER_AES_256_GCM,
                                       kTicketLifetimeSeconds);
    }
    if (ret == 0)
        mbedtls_ssl_conf_session_tickets_cb(&server_conf_, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse,
                                            &ticket_);
    if (ret == 0) ret = common(&client_conf_, MBEDTLS_SSL_IS_CLIENT);
    if (ret == 0 && !no_client_cert) {
        ret = separate_client_ ? mbedtls_ssl_conf_own_cert(&client_conf_, &client_cert_, &client_key_)
                               : mbedtls_ssl_conf_own_cert(&client_conf_, &cert_, &key_);
    }
    if (ret == 0) {
        mbedtls_ssl_conf_authmode(&client_conf_, MBEDTLS_SSL_VERIFY_REQUIRED);
        mbedtls_ssl_conf_session_tickets(&client_conf_, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
    }
    if (ret != 0) {
        *error = "TLS " + purpose_ + ": cannot set up TLS (" + mbed_error(ret) + ")";
        return false;
    }
    return true;
}

bool Context::load_session(const std::string& peer, mbedtls_ssl_context* ssl) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(peer);
    if (it == cache_.end()) return false;
    return mbedtls_ssl_set_session(ssl, &it->second->s) == 0;
}

void Context::save_session(const std::string& peer, const mbedtls_ssl_context* ssl) {
    auto saved = std::make_unique<SavedSession>();
    if (mbedtls_ssl_get_session(ssl, &saved->s) != 0) return;
    std::lock_guard<std::mutex> lock(cache_mu_);
    // One entry per expected peer: bounded by the peers this node dials.
    cache_[peer] = std::move(saved);
}

void Context::publish_expiry() const {
    const int64_t now = host_->wall_seconds();
    host_->set_cert_expiry(purpose_, static_cast<double>(cert_not_after_ - now));
    if (separate_client_) host_->set_cert_expiry(purpose_ + "_client", static_cast<double>(client_not_after_ - now));
}

}  // namespace transport_tls
