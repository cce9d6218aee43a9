// What a certificate says about its holder, in the form the ABI reports
// (rampart_peer_identity): subject CN, DNS SANs, SHA-256 of the whole DER
// certificate and of its DER SubjectPublicKeyInfo, expiry. Also the hex and
// masking helpers that fingerprints go through before they reach a log.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <mbedtls/x509_crt.h>

#include "rampart/plugin.h"

namespace transport_tls {

using Digest = std::array<unsigned char, 32>;

Digest sha256(const unsigned char* data, size_t len);
std::string to_hex(const unsigned char* data, size_t len);
inline std::string to_hex(const Digest& d) { return to_hex(d.data(), d.size()); }

// "sha256:ab12…9f0e": the prefix, the first 4 and the last 4 hex digits.
std::string mask_fingerprint(const char* prefix, const std::string& hex);

// Unix seconds (UTC) of an X.509 time, and "2027-01-31T12:00:00Z".
int64_t x509_time_unix(const mbedtls_x509_time& t);
std::string x509_time_text(const mbedtls_x509_time& t);

// The DNS subjectAltNames of a certificate, in certificate order.
std::vector<std::string> dns_sans(const mbedtls_x509_crt& crt);

struct Fingerprints {
    Digest cert{};  // over crt.raw (the whole DER certificate)
    Digest spki{};  // over crt.pk_raw (the DER SubjectPublicKeyInfo)
};
Fingerprints fingerprints(const mbedtls_x509_crt& crt);

// An owned copy of a peer's identity plus the ABI view of it (which points
// into this object: do not copy it after view() was taken).
class Identity {
public:
    bool verified = false;
    std::string subject_cn;
    std::vector<std::string> dns_sans;
    std::string cert_sha256;
    std::string spki_sha256;
    int64_t not_after_unix = 0;

    static Identity of(const mbedtls_x509_crt& crt, bool verified);
    const rampart_peer_identity* view();

private:
    std::vector<const char*> san_ptrs_;
    rampart_peer_identity view_{};
};

}  // namespace transport_tls
