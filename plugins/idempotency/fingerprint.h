// SHA-256 and the request fingerprint the idempotency store compares.
// Self-contained on purpose: a plugin includes only <rampart/plugin.h> and
// the standard library, so it cannot borrow the core's hash.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace idempotency {

using Digest = std::array<uint8_t, 32>;

// FIPS 180-4 SHA-256, incremental.
class Sha256 {
public:
    Sha256();
    void update(const void* data, size_t len);
    void update(std::string_view s) { update(s.data(), s.size()); }
    Digest finish();  // the object is spent afterwards

private:
    void block(const uint8_t* p);
    uint32_t h_[8];
    uint8_t buf_[64];
    size_t buffered_ = 0;
    uint64_t total_ = 0;
};

Digest sha256(std::string_view data);
std::string to_hex(const Digest& d);

// SHA-256 over a domain tag and the length-prefixed method, path, query and
// body, so that no two different requests share a preimage by moving bytes
// from one field into the next ("/a" + "b=1" vs "/ab" + "=1").
Digest fingerprint(std::string_view method, std::string_view path, std::string_view query, std::string_view body);

}  // namespace idempotency
