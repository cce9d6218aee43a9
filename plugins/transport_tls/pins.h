// Certificate pinning (pinned_certs.json):
//   {"peers": {"<node_id>": "sha256:<64 hex>" | "spki-sha256:<64 hex>"
//                           | [pin, pin, ...]},
//    "report_only": false}
// `sha256:` is taken over the whole DER certificate, `spki-sha256:` over
// its DER SubjectPublicKeyInfo (it survives a renewal that keeps the key).
// A peer's set passes when any one of its pins matches, so a rotation
// lists the current and the next pin side by side.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "identity.h"

namespace transport_tls {

struct Pin {
    enum Kind { kCert, kSpki } kind = kCert;
    Digest hash{};
};

struct Pins {
    std::map<std::string, std::vector<Pin>> peers;
    bool report_only = false;

    bool empty() const { return peers.empty(); }
    // The pins of `peer`, or nullptr when it has none (no check).
    const std::vector<Pin>* of(const std::string& peer) const;
    // Whether the certificate with these fingerprints satisfies `set`.
    static bool matches(const std::vector<Pin>& set, const Fingerprints& f);
    // Which pin forms a set uses (to log the matching masked fingerprints).
    static bool uses(const std::vector<Pin>& set, Pin::Kind kind);
};

constexpr size_t kMaxPinsFileBytes = 1 << 20;
constexpr size_t kMaxPinsPerPeer = 16;

// Parses JSON text; on failure false and `error` names `file` and the key.
bool parse_pins(const std::string& text, const std::string& file, Pins* out, std::string* error);
// Reads (at most kMaxPinsFileBytes) and parses a file.
bool load_pins_file(const std::string& path, Pins* out, std::string* error);

}  // namespace transport_tls
