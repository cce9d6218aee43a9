// One idempotency record and its wire form.
//
// The record is a plain struct so that it can travel unchanged in the
// replicated log later (the brief: deduplication of writes becomes core
// state, expiring by the leader's timestamp). Everything a replay needs is
// in it; nothing in it points into this process.
//
// Binary form, version 1 (all integers little-endian, no padding):
//
//   offset size  field
//        0    4  magic "IDMR"
//        4    1  version (1)
//        5    1  state: 1 in flight, 2 completed
//        6    1  flags: bit 0 response stored, bit 1 response too large;
//                other bits must be 0
//        7    1  reserved, 0
//        8    2  status (0 in flight, else 100..599)
//       10    8  created_unix_ms (int64, wall clock of the node that created it)
//       18    8  expires_unix_ms (int64, >= created_unix_ms)
//       26   32  fingerprint (SHA-256, see fingerprint.h)
//       58       scope        u16 length + bytes (1..kMaxScope)
//                key          u16 length + bytes (valid_key)
//                owner        u16 length + bytes (0..kMaxOwner; request id)
//                content_type u16 length + bytes (0..kMaxContentType)
//                header count u8 (0..kMaxHeaders), then per header
//                  name  u16 length + bytes (valid_header_name)
//                  value u16 length + bytes (valid_header_value)
//                body         u32 length + bytes (0..kMaxRecordBody;
//                             non-empty only when the response is stored)
//   and nothing after it.
//
// deserialize() treats its input as hostile (it may come from another node
// or a corrupted log): every length is checked against what remains and
// against the bounds above, and a record that could not have been written
// by serialize() is refused. A later version may append fields; a reader
// refuses versions it does not know (-EPROTONOSUPPORT) rather than guess.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fingerprint.h"

namespace idempotency {

inline constexpr uint8_t kRecordVersion = 1;
inline constexpr size_t kMaxKey = 255;
inline constexpr size_t kMaxScope = 512;
inline constexpr size_t kMaxOwner = 256;
inline constexpr size_t kMaxContentType = 256;
inline constexpr size_t kMaxHeaders = 32;
inline constexpr size_t kMaxHeaderName = 128;
inline constexpr size_t kMaxHeaderValue = 4096;
inline constexpr size_t kMaxRecordBody = 16u << 20;

enum class State : uint8_t { InFlight = 1, Completed = 2 };

enum RecordFlags : uint8_t {
    kResponseStored = 1u << 0,    // status, content type, headers and body replay as they were
    kResponseTooLarge = 1u << 1,  // completed, but the body was over max_body_bytes: not kept
};

struct Header {
    std::string name;
    std::string value;
    bool operator==(const Header&) const = default;
};

struct Record {
    State state = State::InFlight;
    uint8_t flags = 0;
    uint16_t status = 0;
    int64_t created_unix_ms = 0;
    int64_t expires_unix_ms = 0;
    Digest fingerprint{};
    std::string scope;  // who may see it: "token:<name>", "ip:<addr>" ... (see idempotency.cpp)
    std::string key;    // the Idempotency-Key as sent
    std::string owner;  // request id of the request that created it (meaningful while in flight)
    std::string content_type;
    std::vector<Header> headers;  // extra response headers worth replaying
    std::string body;
    bool operator==(const Record&) const = default;
};

// 1..255 printable ASCII (0x20..0x7e), not starting or ending in a space.
bool valid_key(std::string_view key);
// An HTTP token (RFC 9110 tchar), 1..kMaxHeaderName.
bool valid_header_name(std::string_view name);
// No CR, LF or NUL, at most kMaxHeaderValue.
bool valid_header_value(std::string_view value);
// Every bound and invariant deserialize() enforces.
bool valid_record(const Record& r);

// The wire form above. Throws std::bad_alloc only. The record must be
// valid_record(); serialize() of an invalid record returns "".
std::string serialize(const Record& r);
// 0, or -EINVAL (malformed, truncated, trailing bytes, out of bounds),
// -EPROTONOSUPPORT (unknown version). *out is untouched on failure.
int deserialize(std::string_view data, Record* out);

}  // namespace idempotency
