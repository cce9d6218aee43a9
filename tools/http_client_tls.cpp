#include "http_client_tls.h"

#include <arpa/inet.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <cstring>

namespace rampartctl {
namespace {

std::string mbed_error(int ret) {
    char buf[160];
    mbedtls_strerror(ret, buf, sizeof buf);
    return buf;
}

// mbedTLS 2.28 matches a host name against DNS SANs only: an IP literal is
// looked up among the certificate's IP SANs here.
bool has_ip_san(const mbedtls_x509_crt* crt, const unsigned char* ip, size_t len) {
    for (const mbedtls_x509_sequence* san = &crt->subject_alt_names; san != nullptr; san = san->next) {
        if (san->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_IP_ADDRESS) && san->buf.len == len &&
            memcmp(san->buf.p, ip, len) == 0)
            return true;
    }
    return false;
}

}  // namespace

struct TlsStream::State {
    mbedtls_net_context net;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca, cert;
    mbedtls_pk_context key;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;

    State() {
        mbedtls_net_init(&net);
        mbedtls_ssl_init(&ssl);
        mbedtls_ssl_config_init(&conf);
        mbedtls_x509_crt_init(&ca);
        mbedtls_x509_crt_init(&cert);
        mbedtls_pk_init(&key);
        mbedtls_entropy_init(&entropy);
        mbedtls_ctr_drbg_init(&drbg);
    }
    ~State() {
        net.fd = -1;  // the caller owns the socket
        mbedtls_ssl_free(&ssl);
        mbedtls_ssl_config_free(&conf);
        mbedtls_x509_crt_free(&ca);
        mbedtls_x509_crt_free(&cert);
        mbedtls_pk_free(&key);
        mbedtls_ctr_drbg_free(&drbg);
        mbedtls_entropy_free(&entropy);
    }
    State(const State&) = delete;
    State& operator=(const State&) = delete;
};

TlsStream::TlsStream(std::unique_ptr<State> state) : state_(std::move(state)) {}

TlsStream::~TlsStream() {
    if (state_) (void)mbedtls_ssl_close_notify(&state_->ssl);
}

std::unique_ptr<TlsStream> TlsStream::open(int fd, const TlsSettings& settings, const std::string& expected,
                                           std::string* error) {
    if (settings.ca_file.empty()) {
        *error = "https needs the CA that signed the node's certificate: set RAMPART_CACERT or --cacert";
        return nullptr;
    }
    auto s = std::make_unique<State>();
    s->net.fd = fd;
    int ret = mbedtls_x509_crt_parse_file(&s->ca, settings.ca_file.c_str());
    if (ret != 0) {
        *error = "cannot read CA file " + settings.ca_file + ": " + mbed_error(ret);
        return nullptr;
    }
    if (settings.cert_file.empty() != settings.key_file.empty()) {
        *error = "a client certificate needs both RAMPART_CLIENT_CERT and RAMPART_CLIENT_KEY";
        return nullptr;
    }
    if (!settings.cert_file.empty()) {
        if ((ret = mbedtls_x509_crt_parse_file(&s->cert, settings.cert_file.c_str())) != 0) {
            *error = "cannot read client certificate " + settings.cert_file + ": " + mbed_error(ret);
            return nullptr;
        }
        if ((ret = mbedtls_pk_parse_keyfile(&s->key, settings.key_file.c_str(), nullptr)) != 0) {
            *error = "cannot read client key " + settings.key_file + ": " + mbed_error(ret);
            return nullptr;
        }
    }
    static const unsigned char personal[] = "rampartctl";
    ret = mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func, &s->entropy, personal, sizeof personal - 1);
    if (ret == 0)
        ret = mbedtls_ssl_config_defaults(&s->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                          MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0) {
        *error = "TLS setup failed: " + mbed_error(ret);
        return nullptr;
    }
    mbedtls_ssl_conf_min_version(&s->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);  // TLS 1.2
    mbedtls_ssl_conf_authmode(&s->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&s->conf, &s->ca, nullptr);
    mbedtls_ssl_conf_rng(&s->conf, mbedtls_ctr_drbg_random, &s->drbg);
    if (!settings.cert_file.empty() && (ret = mbedtls_ssl_conf_own_cert(&s->conf, &s->cert, &s->key)) != 0) {
        *error = "client certificate refused: " + mbed_error(ret);
        return nullptr;
    }
    unsigned char ip[16];
    size_t ip_len = inet_pton(AF_INET, expected.c_str(), ip) == 1    ? 4
                    : inet_pton(AF_INET6, expected.c_str(), ip) == 1 ? 16
                                                                     : 0;
    if ((ret = mbedtls_ssl_setup(&s->ssl, &s->conf)) != 0 ||
        (ip_len == 0 && (ret = mbedtls_ssl_set_hostname(&s->ssl, expected.c_str())) != 0)) {
        *error = "TLS setup failed: " + mbed_error(ret);
        return nullptr;
    }
    mbedtls_ssl_set_bio(&s->ssl, &s->net, mbedtls_net_send, mbedtls_net_recv, nullptr);
    ret = mbedtls_ssl_handshake(&s->ssl);
    if (ret != 0) {
        uint32_t flags = mbedtls_ssl_get_verify_result(&s->ssl);
        char info[512] = "";
        if (flags != 0 && flags != static_cast<uint32_t>(-1))
            mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
        std::string why(info);
        while (!why.empty() && why.back() == '\n') why.pop_back();
        *error =
            "TLS handshake failed: " +
            (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE ? "timed out" : mbed_error(ret)) +
            (why.empty() ? "" : " (" + why + ")");
        return nullptr;
    }
    if (ip_len != 0 && !has_ip_san(mbedtls_ssl_get_peer_cert(&s->ssl), ip, ip_len)) {
        *error = "the server's certificate does not name " + expected +
                 " (no such IP SAN; set RAMPART_TLS_SERVER_NAME to the DNS name it carries)";
        return nullptr;
    }
    return std::unique_ptr<TlsStream>(new TlsStream(std::move(s)));
}

bool TlsStream::send_all(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
        int n = mbedtls_ssl_write(&state_->ssl, reinterpret_cast<const unsigned char*>(data.data()) + off,
                                  data.size() - off);
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

int TlsStream::recv(char* buf, size_t len) {
    int n = mbedtls_ssl_read(&state_->ssl, reinterpret_cast<unsigned char*>(buf), len);
    if (n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) return 0;
    return n;
}

}  // namespace rampartctl
