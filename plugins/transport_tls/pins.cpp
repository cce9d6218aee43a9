#include "pins.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>

#include <cjson/cJSON.h>

namespace transport_tls {

const std::vector<Pin>* Pins::of(const std::string& peer) const {
    auto it = peers.find(peer);
    return it == peers.end() ? nullptr : &it->second;
}

bool Pins::matches(const std::vector<Pin>& set, const Fingerprints& f) {
    for (const Pin& p : set) {
        const Digest& have = p.kind == Pin::kCert ? f.cert : f.spki;
        if (have == p.hash) return true;
    }
    return false;
}

bool Pins::uses(const std::vector<Pin>& set, Pin::Kind kind) {
    for (const Pin& p : set)
        if (p.kind == kind) return true;
    return false;
}

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Shown in errors: key names come from the file, so keep them short and printable.
std::string shown(const char* s) {
    std::string out;
    for (const char* p = s; *p != '\0' && out.size() < 64; ++p) {
        unsigned char c = static_cast<unsigned char>(*p);
        out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
    }
    if (std::strlen(s) > 64) out += "...";
    return out;
}

bool parse_pin(const cJSON* item, Pin* out, std::string* why) {
    if (!cJSON_IsString(item) || item->valuestring == nullptr) {
        *why = "expected a string \"sha256:<64 hex>\" or \"spki-sha256:<64 hex>\"";
        return false;
    }
    const char* s = item->valuestring;
    const char* hex = nullptr;
    if (std::strncmp(s, "sha256:", 7) == 0) {
        out->kind = Pin::kCert;
        hex = s + 7;
    } else if (std::strncmp(s, "spki-sha256:", 12) == 0) {
        out->kind = Pin::kSpki;
        hex = s + 12;
    } else {
        *why = "unknown pin form (expected the prefix \"sha256:\" or \"spki-sha256:\")";
        return false;
    }
    const size_t n = std::strlen(hex);
    if (n != 64) {
        *why = "a pin needs 64 hex digits after the prefix, found " + std::to_string(n) + " characters";
        return false;
    }
    for (size_t i = 0; i < 32; ++i) {
        int hi = hex_value(hex[2 * i]);
        int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            *why = "a pin holds a character that is not a hex digit";
            return false;
        }
        out->hash[i] = static_cast<unsigned char>(hi << 4 | lo);
    }
    return true;
}

}  // namespace

bool parse_pins(const std::string& text, const std::string& file, Pins* out, std::string* error) {
    const std::string where = "TLS pins file " + file;
    if (text.size() > kMaxPinsFileBytes) {
        *error = where + " is larger than " + std::to_string(kMaxPinsFileBytes) + " bytes";
        return false;
    }
    const char* end = nullptr;
    std::unique_ptr<cJSON, void (*)(cJSON*)> root(cJSON_ParseWithLengthOpts(text.data(), text.size(), &end, 0),
                                                  cJSON_Delete);
    if (!root) {
        size_t at = end != nullptr && end >= text.data() ? static_cast<size_t>(end - text.data()) : 0;
        *error = where + ": not valid JSON (near byte " + std::to_string(at) + ")";
        return false;
    }
    for (const char* p = end; p != nullptr && p < text.data() + text.size(); ++p) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            *error = where + ": not valid JSON (trailing data at byte " + std::to_string(p - text.data()) + ")";
            return false;
        }
    }
    if (!cJSON_IsObject(root.get())) {
        *error = where + ": the top level must be an object {\"peers\": {...}, \"report_only\": false}";
        return false;
    }
    Pins pins;
    bool seen_peers = false;
    bool seen_report_only = false;
    for (const cJSON* top = root->child; top != nullptr; top = top->next) {
        const char* key = top->string != nullptr ? top->string : "";
        if (std::strcmp(key, "report_only") == 0) {
            if (seen_report_only) {
                *error = where + ": key report_only appears twice";
                return false;
            }
            seen_report_only = true;
            if (!cJSON_IsBool(top)) {
                *error = where + ": report_only must be true or false";
                return false;
            }
            pins.report_only = cJSON_IsTrue(top) != 0;
        } else if (std::strcmp(key, "peers") == 0) {
            if (seen_peers) {
                *error = where + ": key peers appears twice";
                return false;
            }
            seen_peers = true;
            if (!cJSON_IsObject(top)) {
                *error = where + ": peers must be an object {\"<node_id>\": \"sha256:<hex>\" | [pins]}";
                return false;
            }
            for (const cJSON* peer = top->child; peer != nullptr; peer = peer->next) {
                const std::string name = peer->string != nullptr ? peer->string : "";
                const std::string at = where + ": peers." + shown(name.c_str());
                if (name.empty()) {
                    *error = where + ": peers has an empty node id";
                    return false;
                }
                if (pins.peers.count(name) != 0) {
                    *error = at + " appears twice";
                    return false;
                }
                std::vector<Pin> set;
                std::string why;
                if (cJSON_IsArray(peer)) {
                    int n = cJSON_GetArraySize(peer);
                    if (n == 0) {
                        *error = at + ": an empty pin list would refuse the peer; remove the entry instead";
                        return false;
                    }
                    if (static_cast<size_t>(n) > kMaxPinsPerPeer) {
                        *error = at + ": more than " + std::to_string(kMaxPinsPerPeer) + " pins";
                        return false;
                    }
                    int i = 0;
                    for (const cJSON* item = peer->child; item != nullptr; item = item->next, ++i) {
                        Pin p;
                        if (!parse_pin(item, &p, &why)) {
                            *error = at + "[" + std::to_string(i) + "]: " + why;
                            return false;
                        }
                        set.push_back(p);
                    }
                } else {
                    Pin p;
                    if (!parse_pin(peer, &p, &why)) {
                        *error = at + ": " + why;
                        return false;
                    }
                    set.push_back(p);
                }
                pins.peers.emplace(name, std::move(set));
            }
        } else {
            *error = where + ": unknown key " + shown(key) + " (expected peers, report_only)";
            return false;
        }
    }
    if (!seen_peers) {
        *error = where + ": key peers is missing";
        return false;
    }
    *out = std::move(pins);
    return true;
}

bool load_pins_file(const std::string& path, Pins* out, std::string* error) {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
    if (!f) {
        *error = "TLS pins file " + path + " cannot be read: " + std::strerror(errno);
        return false;
    }
    std::string text;
    char buf[8192];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
        text.append(buf, n);
        if (text.size() > kMaxPinsFileBytes) {
            *error = "TLS pins file " + path + " is larger than " + std::to_string(kMaxPinsFileBytes) + " bytes";
            return false;
        }
    }
    if (std::ferror(f.get())) {
        *error = "TLS pins file " + path + " cannot be read: " + std::strerror(errno);
        return false;
    }
    return parse_pins(text, path, out, error);
}

}  // namespace transport_tls
