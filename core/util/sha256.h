// SHA-256 (FIPS 180-4) for hashing tokens and fingerprinting requests.
// The core keeps no TLS library; this small implementation is enough.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace rampart::util {

class Sha256 {
public:
    Sha256();
    void update(const void* data, size_t len);
    void update(std::string_view s) { update(s.data(), s.size()); }
    std::array<uint8_t, 32> finish();

private:
    void block(const uint8_t* p);
    uint32_t h_[8];
    uint8_t buf_[64];
    size_t buf_len_ = 0;
    uint64_t total_ = 0;
};

std::array<uint8_t, 32> sha256(std::string_view data);
std::string sha256_hex(std::string_view data);
std::string to_hex(const uint8_t* data, size_t len);
// Compare without an early exit, so timing does not reveal a prefix.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace rampart::util
