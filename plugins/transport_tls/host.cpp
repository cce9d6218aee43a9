#include "host.h"

#include <ctime>

namespace transport_tls {

bool Host::setup(rampart_plugin_ctx* c, const rampart_host* h, std::string* why) {
    ctx = c;
    api = h;
    if (!RAMPART_HOST_HAS(h, stream_send) || !RAMPART_HOST_HAS(h, stream_deliver) ||
        !RAMPART_HOST_HAS(h, stream_handshake_done) || !RAMPART_HOST_HAS(h, stream_closed) ||
        !RAMPART_HOST_HAS(h, work_submit)) {
        *why = "transport_tls needs a host with ABI 1.1 transport services (stream_*, work_submit)";
        return false;
    }
    const char* hs_labels[2] = {"side", "result"};
    const char* cert_labels[1] = {"cert"};
    const char* peer_labels[1] = {"peer"};
    if (h->counter_register) {
        handshakes = h->counter_register(c, "rampart_tls_handshakes_total",
                                         "TLS handshakes by side (server|client) and result (ok or the failure reason)",
                                         hs_labels, 2);
        pin_violations =
            h->counter_register(c, "rampart_pinning_violations_total",
                                "Certificates that matched none of the pins of their peer", peer_labels, 1);
    }
    if (h->gauge_register) {
        cert_expiry =
            h->gauge_register(c, "rampart_tls_cert_expiry_seconds",
                              "Seconds until the certificate's notAfter (negative once expired)", cert_labels, 1);
    }
    return true;
}

void Host::log(rampart_log_level level, const std::string& msg) const {
    if (api && api->log) api->log(ctx, level, msg.c_str());
}

void Host::count_handshake(rampart_transport_side side, const char* result) const {
    if (!handshakes || !api->counter_add) return;
    const char* labels[2] = {side == RAMPART_SIDE_SERVER ? "server" : "client", result};
    api->counter_add(handshakes, labels, 1);
}

void Host::count_pin_violation(const std::string& peer) const {
    if (!pin_violations || !api->counter_add) return;
    const char* labels[1] = {peer.c_str()};
    api->counter_add(pin_violations, labels, 1);
}

void Host::set_cert_expiry(const std::string& cert, double seconds) const {
    if (!cert_expiry || !api->gauge_set) return;
    const char* labels[1] = {cert.c_str()};
    api->gauge_set(cert_expiry, labels, seconds);
}

int64_t Host::wall_seconds() const {
    if (api && api->wall_ms) return api->wall_ms(ctx) / 1000;
    return static_cast<int64_t>(std::time(nullptr));
}

}  // namespace transport_tls
