#include "identity.h"

#include <cstdio>
#include <cstring>

#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>
#include <mbedtls/sha256.h>

namespace transport_tls {

Digest sha256(const unsigned char* data, size_t len) {
    Digest d{};
    (void)mbedtls_sha256_ret(data, len, d.data(), 0);
    return d;
}

std::string to_hex(const unsigned char* data, size_t len) {
    static const char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (size_t i = 0; i < len; ++i) {
        out += kDigits[data[i] >> 4];
        out += kDigits[data[i] & 0x0f];
    }
    return out;
}

std::string mask_fingerprint(const char* prefix, const std::string& hex) {
    std::string out = prefix;
    out += ':';
    if (hex.size() < 8) return out + "...";
    out += hex.substr(0, 4);
    out += "...";
    out += hex.substr(hex.size() - 4);
    return out;
}

int64_t x509_time_unix(const mbedtls_x509_time& t) {
    // Days from civil (proleptic Gregorian), no timezone involved.
    int64_t y = t.year;
    const int64_t m = t.mon;
    const int64_t d = t.day;
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    const int64_t days = era * 146097 + doe - 719468;
    return days * 86400 + int64_t{t.hour} * 3600 + int64_t{t.min} * 60 + t.sec;
}

std::string x509_time_text(const mbedtls_x509_time& t) {
    char buf[32];
    (void)std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", t.year, t.mon, t.day, t.hour, t.min, t.sec);
    return buf;
}

std::vector<std::string> dns_sans(const mbedtls_x509_crt& crt) {
    std::vector<std::string> out;
    for (const mbedtls_x509_sequence* cur = &crt.subject_alt_names; cur != nullptr; cur = cur->next) {
        if (cur->buf.p == nullptr || cur->buf.len == 0) continue;
        const int tag = cur->buf.tag;
        if ((tag & MBEDTLS_ASN1_TAG_CLASS_MASK) != MBEDTLS_ASN1_CONTEXT_SPECIFIC) continue;
        if ((tag & MBEDTLS_ASN1_TAG_VALUE_MASK) != MBEDTLS_X509_SAN_DNS_NAME) continue;
        out.emplace_back(reinterpret_cast<const char*>(cur->buf.p), cur->buf.len);
    }
    return out;
}

Fingerprints fingerprints(const mbedtls_x509_crt& crt) {
    Fingerprints f;
    f.cert = sha256(crt.raw.p, crt.raw.len);
    f.spki = sha256(crt.pk_raw.p, crt.pk_raw.len);
    return f;
}

namespace {

std::string common_name(const mbedtls_x509_crt& crt) {
    for (const mbedtls_x509_name* n = &crt.subject; n != nullptr; n = n->next) {
        if (n->oid.p != nullptr && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0)
            return std::string(reinterpret_cast<const char*>(n->val.p), n->val.len);
    }
    return "";
}

}  // namespace

Identity Identity::of(const mbedtls_x509_crt& crt, bool verified) {
    Identity id;
    id.verified = verified;
    id.subject_cn = common_name(crt);
    id.dns_sans = transport_tls::dns_sans(crt);
    Fingerprints f = fingerprints(crt);
    id.cert_sha256 = to_hex(f.cert);
    id.spki_sha256 = to_hex(f.spki);
    id.not_after_unix = x509_time_unix(crt.valid_to);
    return id;
}

const rampart_peer_identity* Identity::view() {
    san_ptrs_.clear();
    for (const std::string& s : dns_sans) san_ptrs_.push_back(s.c_str());
    view_ = rampart_peer_identity{};
    view_.struct_size = sizeof(rampart_peer_identity);
    view_.verified = verified ? 1 : 0;
    view_.subject_cn = subject_cn.c_str();
    view_.dns_sans = san_ptrs_.empty() ? nullptr : san_ptrs_.data();
    view_.dns_san_count = san_ptrs_.size();
    view_.cert_sha256 = cert_sha256.c_str();
    view_.spki_sha256 = spki_sha256.c_str();
    view_.not_after_unix = not_after_unix;
    return &view_;
}

}  // namespace transport_tls
