#include "session.h"

#include <cerrno>
#include <cstring>
#include <new>

#include <mbedtls/error.h>
// mbedtls_ssl_handshake_params (the resume flag): 2.28 has no public
// "was this session resumed" call.
#include <mbedtls/ssl_internal.h>

#include "pins.h"

namespace transport_tls {

namespace {

std::string mbed_error(int ret) {
    char buf[160];
    mbedtls_strerror(ret, buf, sizeof buf);
    return buf;
}

// Names from a peer's certificate go into details and logs: printable and short.
std::string printable(const std::string& s) {
    std::string out;
    for (char ch : s) {
        if (out.size() >= 80) {
            out += "...";
            break;
        }
        unsigned char c = static_cast<unsigned char>(ch);
        out += (c >= 0x20 && c < 0x7f) ? ch : '?';
    }
    return out;
}

// How a certificate is named in a detail line: its SANs, else its CN.
std::string cert_names(const Identity* leaf) {
    if (leaf == nullptr) return "the certificate";
    const Identity& id = *leaf;
    std::string names;
    for (const std::string& s : id.dns_sans) {
        if (!names.empty()) names += ", ";
        names += printable(s);
        if (names.size() > 120) break;
    }
    if (names.empty()) names = "CN=" + printable(id.subject_cn);
    return "the certificate of " + names;
}

const char* alert_name(int code) {
    switch (code) {
        case MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE: return "handshake_failure";
        case MBEDTLS_SSL_ALERT_MSG_BAD_CERT: return "bad_certificate";
        case MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT: return "unsupported_certificate";
        case MBEDTLS_SSL_ALERT_MSG_CERT_REVOKED: return "certificate_revoked";
        case MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED: return "certificate_expired";
        case MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN: return "certificate_unknown";
        case MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA: return "unknown_ca";
        case MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED: return "access_denied";
        case MBEDTLS_SSL_ALERT_MSG_DECODE_ERROR: return "decode_error";
        case MBEDTLS_SSL_ALERT_MSG_DECRYPT_ERROR: return "decrypt_error";
        case MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION: return "protocol_version";
        case MBEDTLS_SSL_ALERT_MSG_INSUFFICIENT_SECURITY: return "insufficient_security";
        case MBEDTLS_SSL_ALERT_MSG_INTERNAL_ERROR: return "internal_error";
        case MBEDTLS_SSL_ALERT_MSG_UNRECOGNIZED_NAME: return "unrecognized_name";
        default: return "alert";
    }
}

}  // namespace

Session::Busy::~Busy() {
    if (--s_->busy_ == 0 && s_->freed_.load(std::memory_order_relaxed) && !s_->job_running_) destroy(s_);
}

Session::Session(Context* ctx, rampart_stream* stream, rampart_transport_side side, const char* expected_peer)
    : ctx_(ctx), host_(ctx->host()), stream_(stream), side_(side), expected_peer_(expected_peer ? expected_peer : "") {
    ctx_->ref();
    mbedtls_ssl_init(&ssl_);
}

Session::~Session() {
    mbedtls_ssl_free(&ssl_);
    ctx_->unref();
}

int Session::create(Context* ctx, rampart_stream* stream, rampart_transport_side side, const char* expected_peer,
                    Session** out) {
    *out = nullptr;
    const bool client = side == RAMPART_SIDE_CLIENT;
    if (side != RAMPART_SIDE_SERVER && !client) return -EINVAL;
    if (client && (expected_peer == nullptr || *expected_peer == '\0')) {
        ctx->host()->log(RAMPART_LOG_ERROR, "TLS " + ctx->purpose() + ": a client session needs an expected peer name");
        return -EINVAL;
    }
    if (client && !ctx->has_ca()) {
        ctx->host()->log(RAMPART_LOG_ERROR,
                         "TLS " + ctx->purpose() + ": cannot dial out without a CA file to verify the server with");
        return -EINVAL;
    }
    std::unique_ptr<Session> owned(new (std::nothrow) Session(ctx, stream, side, expected_peer));
    if (!owned) return -ENOMEM;
    Session* s = owned.get();
    int ret = mbedtls_ssl_setup(&s->ssl_, client ? ctx->client_conf() : ctx->server_conf());
    if (ret == 0 && client) ret = mbedtls_ssl_set_hostname(&s->ssl_, s->expected_peer_.c_str());
    if (ret != 0) return ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? -ENOMEM : -EINVAL;
    mbedtls_ssl_set_bio(&s->ssl_, s, bio_send, bio_recv, nullptr);
    mbedtls_ssl_set_verify(&s->ssl_, verify_cb, s);
    if (client) {
        (void)ctx->load_session(s->expected_peer_, &s->ssl_);
        if (!s->submit()) return -EAGAIN;
    }
    *out = owned.release();
    return 0;
}

// Whether the first record holds a whole ClientHello that offers a session
// ticket (a non-empty SessionTicket extension, RFC 5077): then the
// handshake is most likely an abbreviated one. Anything unexpected: no.
static bool offers_session_ticket(const unsigned char* p, size_t n) {
    auto u16 = [&p](size_t at) { return (size_t{p[at]} << 8) | p[at + 1]; };
    if (n < 5 || p[0] != 22) return false;  // a handshake record
    const size_t record = u16(3);
    if (n < 5 + record || record < 4 || p[5] != 1) return false;  // ClientHello
    p += 5;
    n = (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3];
    if (n + 4 > record) return false;
    p += 4;
    size_t off = 2 + 32;  // version, random
    if (n < off + 1) return false;
    off += 1 + p[off];  // session id
    if (n < off + 2) return false;
    off += 2 + u16(off);  // cipher suites
    if (n < off + 1) return false;
    off += 1 + p[off];  // compression methods
    if (n < off + 2) return false;
    const size_t end = off + 2 + u16(off);
    if (end > n) return false;
    for (off += 2; off + 4 <= end;) {
        const size_t type = u16(off), len = u16(off + 2);
        off += 4;
        if (off + len > end) return false;
        if (type == 35) return len > 0;
        off += len;
    }
    return false;
}

// ---- mbedTLS callbacks (worker thread during the handshake) ---------------

int Session::bio_send(void* arg, const unsigned char* buf, size_t len) {
    auto* s = static_cast<Session*>(arg);
    try {
        s->out_.append(reinterpret_cast<const char*>(buf), len);
    } catch (...) {
        return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    }
    return static_cast<int>(len);
}

int Session::bio_recv(void* arg, unsigned char* buf, size_t len) {
    auto* s = static_cast<Session*>(arg);
    const size_t have = s->in_.size() - s->in_pos_;
    if (have == 0) return MBEDTLS_ERR_SSL_WANT_READ;
    const size_t n = have < len ? have : len;
    std::memcpy(buf, s->in_.data() + s->in_pos_, n);
    s->in_pos_ += n;
    return static_cast<int>(n);
}

// Pins are checked on the leaf certificate, during the handshake, so that a
// refusal reaches the other side as an alert. The metric and the log line
// follow on the loop thread (report_pin_violation).
int Session::verify_cb(void* arg, mbedtls_x509_crt* crt, int depth, uint32_t* flags) {
    auto* s = static_cast<Session*>(arg);
    if (depth != 0) return 0;
    try {
        s->leaf_ = Identity::of(*crt, false);
        s->leaf_valid_from_ = x509_time_text(crt->valid_from);
        s->leaf_valid_to_ = x509_time_text(crt->valid_to);
        s->leaf_seen_ = true;
    } catch (...) {
        *flags |= MBEDTLS_X509_BADCERT_OTHER;
        return 0;
    }
    const Pins& pins = s->ctx_->pins();
    if (pins.empty()) return 0;
    try {
        const Fingerprints f = fingerprints(*crt);
        auto check = [&](const std::string& peer) {
            const std::vector<Pin>* set = pins.of(peer);
            if (set == nullptr || Pins::matches(*set, f) || s->pin_violation_) return;
            s->pin_violation_ = true;
            s->pin_peer_ = peer;
            s->pin_count_ = set->size();
            s->pin_uses_cert_ = Pins::uses(*set, Pin::kCert);
            s->pin_uses_spki_ = Pins::uses(*set, Pin::kSpki);
            s->presented_cert_sha256_ = to_hex(f.cert);
            s->presented_spki_sha256_ = to_hex(f.spki);
        };
        if (s->side_ == RAMPART_SIDE_CLIENT) {
            check(s->expected_peer_);
        } else {
            for (const std::string& san : dns_sans(*crt)) check(san);
        }
    } catch (...) {
        *flags |= MBEDTLS_X509_BADCERT_OTHER;
        return 0;
    }
    if (s->pin_violation_ && !pins.report_only) *flags |= MBEDTLS_X509_BADCERT_OTHER;
    return 0;
}

void Session::handshake_steps() {
    int ret = 0;
    while (ssl_.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
        ret = mbedtls_ssl_handshake_step(&ssl_);
        // The handshake state (and with it the resume flag) is gone once
        // the handshake is over: note it while it is there.
        if (ssl_.handshake != nullptr) resumed_ = ssl_.handshake->resume != 0;
        if (ret != 0) break;
        // On the loop, stop as soon as the ClientHello turned out to need a
        // full handshake (no usable ticket): the signing goes to a worker.
        if (inline_ && ssl_.state > MBEDTLS_SSL_CLIENT_HELLO && !resumed_) {
            inline_ = false;
            ret = kContinueOnWorker;
            break;
        }
    }
    job_ret_ = ret;
}

// A resumption costs about as much as the thread hops a worker job adds:
// run it here, as one job would run, then finish it as job_done does.
void Session::run_inline() {
    job_running_ = true;
    job_work(this);
    job_done(this);
}

void Session::job_work(void* arg) {
    auto* s = static_cast<Session*>(arg);
    if (s->freed_.load(std::memory_order_acquire)) return;
    try {
        s->handshake_steps();
    } catch (...) {
        s->job_ret_ = MBEDTLS_ERR_SSL_INTERNAL_ERROR;
    }
}

void Session::job_done(void* arg) {
    auto* s = static_cast<Session*>(arg);
    s->job_running_ = false;
    if (s->freed_.load(std::memory_order_relaxed)) {
        if (s->busy_ == 0) destroy(s);
        return;
    }
    try {
        s->after_job();
    } catch (...) {
    }
}

// ---- loop thread -----------------------------------------------------------

bool Session::submit() {
    if (inline_) {
        run_inline();
        return true;
    }
    job_running_ = true;
    int r = host_->api->work_submit(host_->ctx, job_work, job_done, this);
    if (r != 0) {
        job_running_ = false;
        return false;
    }
    return true;
}

void Session::take_pending() {
    compact_in();
    in_.append(pending_);
    pending_.clear();
    pending_.shrink_to_fit();
}

void Session::compact_in() {
    if (in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
    } else if (in_pos_ > 0) {
        in_.erase(0, in_pos_);
        in_pos_ = 0;
    }
}

int64_t Session::flush() {
    if (out_.empty() || freed_.load(std::memory_order_relaxed)) return 0;
    std::string data;
    data.swap(out_);
    return host_->api->stream_send(stream_, data.data(), data.size());
}

void Session::after_job() {
    Busy busy(this);
    if (shutdown_ || phase_ != Phase::kHandshake) {
        phase_ = Phase::kClosed;
        out_.clear();
        return;
    }
    (void)flush();
    if (freed_) return;
    if (job_ret_ == 0) {
        finish_handshake();
        return;
    }
    if (job_ret_ == kContinueOnWorker) {
        if (!submit()) fail_handshake("protocol", "cannot queue the handshake on a worker thread");
        return;
    }
    if (job_ret_ == MBEDTLS_ERR_SSL_WANT_READ || job_ret_ == MBEDTLS_ERR_SSL_WANT_WRITE) {
        if (!pending_.empty()) {
            take_pending();
            if (!submit()) fail_handshake("protocol", "cannot queue the handshake on a worker thread");
        }
        return;
    }
    const char* reason = "protocol";
    std::string detail;
    classify(job_ret_, &reason, &detail);
    if (job_ret_ == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE) {
        // mbedTLS refuses a missing client certificate silently: tell the
        // client, or it waits for our Finished until its timeout.
        (void)mbedtls_ssl_send_alert_message(&ssl_, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                             MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE);
        (void)flush();
        if (freed_) return;
    }
    fail_handshake(reason, detail);
}

void Session::classify(int ret, const char** reason, std::string* detail) const {
    const mbedtls_ssl_session* neg = ssl_.session_negotiate;
    const Identity* peer = leaf_seen_ ? &leaf_ : nullptr;
    const uint32_t flags = neg != nullptr ? neg->verify_result : 0;
    const char* who = side_ == RAMPART_SIDE_SERVER ? "client" : "server";
    if (ret == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE ||
        (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && (flags & MBEDTLS_X509_BADCERT_MISSING) != 0)) {
        *reason = "no_client_certificate";
        *detail = "the client sent no certificate and one is required";
        return;
    }
    if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) {
            *reason = "unknown_ca";
            *detail = cert_names(peer) + " (" + who + ") is not signed by a trusted CA";
        } else if (flags & MBEDTLS_X509_BADCERT_EXPIRED) {
            *reason = "expired";
            *detail = cert_names(peer) + " (" + who + ") expired" +
                      (peer != nullptr ? " on " + leaf_valid_to_ : std::string());
        } else if (flags & MBEDTLS_X509_BADCERT_FUTURE) {
            *reason = "expired";
            *detail = cert_names(peer) + " (" + who + ") is not valid yet" +
                      (peer != nullptr ? " (from " + leaf_valid_from_ + ")" : std::string());
        } else if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) {
            *reason = "name_mismatch";
            *detail = cert_names(peer) + " does not name the expected peer " + printable(expected_peer_);
        } else if ((flags & MBEDTLS_X509_BADCERT_OTHER) && pin_violation_) {
            *reason = "pin_mismatch";
            *detail = cert_names(peer) + " matches none of the pins of " + printable(pin_peer_);
        } else {
            char info[256];
            int n = mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
            std::string text = n > 0 ? std::string(info, static_cast<size_t>(n)) : std::string("verification failed");
            while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
            for (char& c : text)
                if (c == '\n') c = ';';
            *reason = "protocol";
            *detail = cert_names(peer) + " was refused: " + text;
        }
        return;
    }
    if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE && ssl_.in_msg != nullptr) {
        // The other side refused us; say why when the alert tells.
        const int alert = ssl_.in_msg[1];
        if (alert == MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA)
            *reason = "unknown_ca";
        else if (alert == MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED)
            *reason = "expired";
        else
            *reason = "protocol";
        *detail = std::string("the ") + who + " refused the handshake: alert " + alert_name(alert) + " (" +
                  std::to_string(alert) + ")";
        return;
    }
    *reason = "protocol";
    *detail = "TLS handshake failed: " + mbed_error(ret);
}

std::string Session::peer_label() const {
    return side_ == RAMPART_SIDE_CLIENT ? printable(expected_peer_) : std::string("(client)");
}

void Session::report_pin_violation(bool refused) {
    host_->count_pin_violation(pin_peer_);
    std::string presented;
    if (pin_uses_cert_ || !pin_uses_spki_) presented = mask_fingerprint("sha256", presented_cert_sha256_);
    if (pin_uses_spki_) {
        if (!presented.empty()) presented += " ";
        presented += mask_fingerprint("spki-sha256", presented_spki_sha256_);
    }
    host_->log(RAMPART_LOG_WARN, "TLS " + ctx_->purpose() + " pin mismatch for peer " + printable(pin_peer_) + " (" +
                                     side_name() + " side): presented " + presented + ", none of its " +
                                     std::to_string(pin_count_) + " pin(s) match; " +
                                     (refused ? "handshake refused" : "accepted (report_only)"));
}

void Session::fail_handshake(const char* reason, const std::string& detail) {
    phase_ = Phase::kClosed;
    if (std::strcmp(reason, "pin_mismatch") == 0) report_pin_violation(true);
    host_->count_handshake(side_, reason);
    // The certificate that was refused, unverified, for the host's log.
    Identity id;
    const mbedtls_x509_crt* peer = mbedtls_ssl_get_peer_cert(&ssl_);
    const bool have = peer != nullptr || leaf_seen_;
    if (peer != nullptr)
        id = Identity::of(*peer, false);
    else if (leaf_seen_)
        id = leaf_;
    id.verified = false;
    rampart_handshake_result res{};
    res.struct_size = sizeof res;
    res.error = RAMPART_TRANSPORT_TLS_ERROR;
    res.reason = reason;
    res.detail = detail.c_str();
    res.peer = have ? id.view() : nullptr;
    res.protocol = "TLSv1.2";
    res.cipher = "";
    res.resumed = 0;
    host_->log(RAMPART_LOG_DEBUG, "TLS " + ctx_->purpose() + " handshake failed (" + side_name() + " side, peer " +
                                      peer_label() + "): " + reason + ": " + detail);
    if (!freed_) host_->api->stream_handshake_done(stream_, &res);
}

void Session::finish_handshake() {
    if (pin_violation_) {
        const bool refuse = !ctx_->pins().report_only;
        if (refuse) {
            // A server in optional-verification mode got this far: refuse now.
            (void)mbedtls_ssl_send_alert_message(&ssl_, MBEDTLS_SSL_ALERT_LEVEL_FATAL, MBEDTLS_SSL_ALERT_MSG_BAD_CERT);
            (void)flush();
            if (freed_) return;
            fail_handshake("pin_mismatch", cert_names(leaf_seen_ ? &leaf_ : nullptr) + " matches none of the pins of " +
                                               printable(pin_peer_));
            return;
        }
        report_pin_violation(false);
    }
    const mbedtls_x509_crt* peer = mbedtls_ssl_get_peer_cert(&ssl_);
    const bool verified = peer != nullptr && mbedtls_ssl_get_verify_result(&ssl_) == 0;
    Identity id;
    if (peer != nullptr) id = Identity::of(*peer, verified);
    if (side_ == RAMPART_SIDE_CLIENT) ctx_->save_session(expected_peer_, &ssl_);
    host_->count_handshake(side_, "ok");
    rampart_handshake_result res{};
    res.struct_size = sizeof res;
    res.error = RAMPART_TRANSPORT_OK;
    res.reason = "ok";
    res.detail = resumed_ ? "resumed" : "full handshake";
    res.peer = peer != nullptr ? id.view() : nullptr;
    res.protocol = mbedtls_ssl_get_version(&ssl_);
    res.cipher = mbedtls_ssl_get_ciphersuite(&ssl_);
    if (res.cipher == nullptr) res.cipher = "";
    res.resumed = resumed_ ? 1 : 0;
    phase_ = Phase::kOpen;
    host_->api->stream_handshake_done(stream_, &res);
    if (freed_ || phase_ != Phase::kOpen) return;
    // Records that came with or after the last handshake flight.
    if (!pending_.empty()) take_pending();
    if (in_pos_ < in_.size()) (void)read_records();
}

int Session::read_records() {
    unsigned char buf[16384];
    for (;;) {
        int n = mbedtls_ssl_read(&ssl_, buf, sizeof buf);
        if (n > 0) {
            host_->api->stream_deliver(stream_, reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
            if (freed_ || phase_ != Phase::kOpen) return 0;
            continue;
        }
        if (n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE) break;
        phase_ = Phase::kClosed;
        if (n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || n == 0) {
            (void)mbedtls_ssl_close_notify(&ssl_);
            (void)flush();
            if (!freed_) host_->api->stream_closed(stream_, RAMPART_TRANSPORT_OK, "close_notify");
            return 0;
        }
        (void)flush();  // the alert mbedTLS queued, if any
        host_->log(RAMPART_LOG_DEBUG, "TLS " + ctx_->purpose() + " record error (" + side_name() + " side, peer " +
                                          peer_label() + "): " + mbed_error(n));
        if (!freed_) host_->api->stream_closed(stream_, RAMPART_TRANSPORT_TLS_ERROR, "protocol");
        return -EPROTO;
    }
    compact_in();
    (void)flush();
    return 0;
}

// ---- the ABI's session functions --------------------------------------------

int Session::input(const char* data, size_t len) {
    Busy busy(this);
    if (freed_) return -EPIPE;
    switch (phase_) {
        case Phase::kHandshake: {
            if (shutdown_) return 0;
            const size_t buffered = in_.size() - in_pos_ + pending_.size() + len;
            if (buffered > kMaxHandshakeBuffered) {
                if (job_running_) {
                    // Cannot report from here while the job owns the state:
                    // drop the input; the job's outcome or the host's
                    // handshake timeout ends the session.
                    return -EMSGSIZE;
                }
                fail_handshake("protocol", "more than " + std::to_string(kMaxHandshakeBuffered) +
                                               " bytes of handshake data buffered");
                return -EPROTO;
            }
            if (job_running_) {
                pending_.append(data, len);
                return 0;
            }
            compact_in();
            in_.append(data, len);
            if (side_ == RAMPART_SIDE_SERVER && !hello_checked_) {
                hello_checked_ = true;
                inline_ = offers_session_ticket(reinterpret_cast<const unsigned char*>(in_.data() + in_pos_),
                                                in_.size() - in_pos_);
            }
            if (!submit()) {
                fail_handshake("protocol", "cannot queue the handshake on a worker thread");
                return -EAGAIN;
            }
            return 0;
        }
        case Phase::kOpen: in_.append(data, len); return read_records();
        case Phase::kClosed: return 0;
    }
    return 0;
}

int Session::write(const char* data, size_t len) {
    Busy busy(this);
    if (freed_) return -EPIPE;
    if (phase_ == Phase::kHandshake) return -ENOTCONN;
    if (phase_ != Phase::kOpen) return -EPIPE;
    const auto* p = reinterpret_cast<const unsigned char*>(data);
    size_t off = 0;
    while (off < len) {
        int n = mbedtls_ssl_write(&ssl_, p + off, len - off);
        if (n < 0) {
            host_->log(RAMPART_LOG_DEBUG, "TLS " + ctx_->purpose() + " write failed: " + mbed_error(n));
            out_.clear();
            return -EIO;
        }
        off += static_cast<size_t>(n);
    }
    int64_t r = flush();
    return r < 0 ? static_cast<int>(r) : 0;
}

void Session::shutdown() {
    Busy busy(this);
    if (freed_ || shutdown_) return;
    shutdown_ = true;
    if (phase_ == Phase::kOpen) {
        (void)mbedtls_ssl_close_notify(&ssl_);
        (void)flush();
    }
    phase_ = Phase::kClosed;
}

void Session::free() {
    freed_.store(true, std::memory_order_release);
    if (!job_running_ && busy_ == 0) destroy(this);
}

}  // namespace transport_tls
