// The plugin's handle on the host: the service table, the plugin context
// and the metric families, with the few helpers the engine uses. Every
// member function runs on the loop thread (never from a worker job).
#pragma once

#include <cstdint>
#include <string>

#include "rampart/plugin.h"

namespace transport_tls {

struct Host {
    rampart_plugin_ctx* ctx = nullptr;
    const rampart_host* api = nullptr;
    rampart_metric* handshakes = nullptr;      // rampart_tls_handshakes_total{side,result}
    rampart_metric* cert_expiry = nullptr;     // rampart_tls_cert_expiry_seconds{cert}
    rampart_metric* pin_violations = nullptr;  // rampart_pinning_violations_total{peer}

    // Registers the metric families; false if the host lacks a service the
    // transport needs (ABI 1.0 host), with the reason in `why`.
    bool setup(rampart_plugin_ctx* c, const rampart_host* h, std::string* why);

    void log(rampart_log_level level, const std::string& msg) const;
    void count_handshake(rampart_transport_side side, const char* result) const;
    void count_pin_violation(const std::string& peer) const;
    void set_cert_expiry(const std::string& cert, double seconds) const;
    int64_t wall_seconds() const;
};

}  // namespace transport_tls
