#include "http/request_id.h"

#include <sys/random.h>

#include <chrono>
#include <cstdint>

namespace rampart::http {
namespace {

uint64_t process_key() {
    static const uint64_t key = [] {
        uint64_t k = 0;
        if (getrandom(&k, sizeof k, 0) != sizeof k) {
            k = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        }
        return k;
    }();
    return key;
}

// splitmix64: a bijection, so distinct counters give distinct ids.
uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

}  // namespace

bool is_sane_request_id(std::string_view id) {
    if (id.empty() || id.size() > kMaxRequestIdLength) return false;
    for (char c : id) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == ':' || c == '-';
        if (!ok) return false;
    }
    return true;
}

std::string generate_request_id() {
    static uint64_t counter = 0;
    uint64_t value = mix(process_key() + counter++);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(16, '0');
    for (int i = 15; i >= 0; --i) {
        out[static_cast<size_t>(i)] = kHex[value & 0xf];
        value >>= 4;
    }
    return out;
}

}  // namespace rampart::http
