#include "record.h"

#include <cerrno>
#include <cstring>

namespace idempotency {
namespace {

constexpr char kMagic[4] = {'I', 'D', 'M', 'R'};
constexpr uint8_t kKnownFlags = kResponseStored | kResponseTooLarge;

bool is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

void put_u8(std::string& out, uint8_t v) { out += static_cast<char>(v); }

void put_uint(std::string& out, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out += static_cast<char>(static_cast<uint8_t>(v >> (8 * i)));
}

void put_str16(std::string& out, std::string_view s) {
    put_uint(out, s.size(), 2);
    out.append(s);
}

// A cursor over hostile bytes: every read checks what remains first and
// latches failure, so the parser below is a straight line.
class Reader {
public:
    explicit Reader(std::string_view d) : d_(d) {}
    bool ok() const { return ok_; }
    bool at_end() const { return pos_ == d_.size(); }

    uint64_t uint(int bytes) {
        if (!take(static_cast<size_t>(bytes))) return 0;
        uint64_t v = 0;
        for (int i = 0; i < bytes; ++i) v |= uint64_t(static_cast<uint8_t>(d_[pos_ - bytes + i])) << (8 * i);
        return v;
    }
    std::string_view bytes(size_t n) {
        if (!take(n)) return {};
        return d_.substr(pos_ - n, n);
    }
    std::string_view str16(size_t max) {
        size_t n = static_cast<size_t>(uint(2));
        if (n > max) ok_ = false;
        return ok_ ? bytes(n) : std::string_view{};
    }

private:
    bool take(size_t n) {
        if (!ok_ || d_.size() - pos_ < n) {
            ok_ = false;
            return false;
        }
        pos_ += n;
        return true;
    }
    std::string_view d_;
    size_t pos_ = 0;
    bool ok_ = true;
};

}  // namespace

bool valid_key(std::string_view key) {
    if (key.empty() || key.size() > kMaxKey) return false;
    if (key.front() == ' ' || key.back() == ' ') return false;
    for (unsigned char c : key) {
        if (c < 0x20 || c > 0x7e) return false;
    }
    return true;
}

bool valid_header_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxHeaderName) return false;
    for (unsigned char c : name) {
        if (!is_tchar(c)) return false;
    }
    return true;
}

bool valid_header_value(std::string_view value) {
    if (value.size() > kMaxHeaderValue) return false;
    for (char c : value) {
        if (c == '\r' || c == '\n' || c == '\0') return false;
    }
    return true;
}

bool valid_record(const Record& r) {
    if (r.state != State::InFlight && r.state != State::Completed) return false;
    if ((r.flags & ~kKnownFlags) != 0) return false;
    if ((r.flags & kResponseStored) && (r.flags & kResponseTooLarge)) return false;
    if (r.state == State::InFlight) {
        if (r.flags != 0 || r.status != 0) return false;
    } else if (r.status < 100 || r.status > 599) {
        return false;
    }
    if (r.expires_unix_ms < r.created_unix_ms) return false;
    if (r.scope.empty() || r.scope.size() > kMaxScope) return false;
    if (!valid_key(r.key)) return false;
    if (r.owner.size() > kMaxOwner) return false;
    if (r.content_type.size() > kMaxContentType || !valid_header_value(r.content_type)) return false;
    if (r.headers.size() > kMaxHeaders) return false;
    for (const Header& h : r.headers) {
        if (!valid_header_name(h.name) || !valid_header_value(h.value)) return false;
    }
    if (r.body.size() > kMaxRecordBody) return false;
    // Only a stored response carries a response: anything else in a record
    // from elsewhere would be replayed to a client as if it were real.
    if (!(r.flags & kResponseStored) && (!r.body.empty() || !r.headers.empty() || !r.content_type.empty())) {
        return false;
    }
    return true;
}

std::string serialize(const Record& r) {
    if (!valid_record(r)) return {};
    std::string out;
    size_t size =
        58 + 2 * 4 + r.scope.size() + r.key.size() + r.owner.size() + r.content_type.size() + 1 + 4 + r.body.size();
    for (const Header& h : r.headers) size += 4 + h.name.size() + h.value.size();
    out.reserve(size);
    out.append(kMagic, sizeof kMagic);
    put_u8(out, kRecordVersion);
    put_u8(out, static_cast<uint8_t>(r.state));
    put_u8(out, r.flags);
    put_u8(out, 0);
    put_uint(out, r.status, 2);
    put_uint(out, static_cast<uint64_t>(r.created_unix_ms), 8);
    put_uint(out, static_cast<uint64_t>(r.expires_unix_ms), 8);
    out.append(reinterpret_cast<const char*>(r.fingerprint.data()), r.fingerprint.size());
    put_str16(out, r.scope);
    put_str16(out, r.key);
    put_str16(out, r.owner);
    put_str16(out, r.content_type);
    put_u8(out, static_cast<uint8_t>(r.headers.size()));
    for (const Header& h : r.headers) {
        put_str16(out, h.name);
        put_str16(out, h.value);
    }
    put_uint(out, r.body.size(), 4);
    out.append(r.body);
    return out;
}

int deserialize(std::string_view data, Record* out) {
    if (out == nullptr) return -EINVAL;
    Reader in(data);
    std::string_view magic = in.bytes(sizeof kMagic);
    if (!in.ok() || std::memcmp(magic.data(), kMagic, sizeof kMagic) != 0) return -EINVAL;
    uint8_t version = static_cast<uint8_t>(in.uint(1));
    if (!in.ok()) return -EINVAL;
    if (version != kRecordVersion) return -EPROTONOSUPPORT;
    Record r;
    uint8_t state = static_cast<uint8_t>(in.uint(1));
    if (state != static_cast<uint8_t>(State::InFlight) && state != static_cast<uint8_t>(State::Completed)) {
        return -EINVAL;
    }
    r.state = static_cast<State>(state);
    r.flags = static_cast<uint8_t>(in.uint(1));
    if (in.uint(1) != 0) return -EINVAL;  // reserved
    r.status = static_cast<uint16_t>(in.uint(2));
    r.created_unix_ms = static_cast<int64_t>(in.uint(8));
    r.expires_unix_ms = static_cast<int64_t>(in.uint(8));
    std::string_view fp = in.bytes(r.fingerprint.size());
    if (!in.ok()) return -EINVAL;
    std::memcpy(r.fingerprint.data(), fp.data(), fp.size());
    r.scope = in.str16(kMaxScope);
    r.key = in.str16(kMaxKey);
    r.owner = in.str16(kMaxOwner);
    r.content_type = in.str16(kMaxContentType);
    size_t headers = static_cast<size_t>(in.uint(1));
    if (!in.ok() || headers > kMaxHeaders) return -EINVAL;
    r.headers.reserve(headers);
    for (size_t i = 0; i < headers && in.ok(); ++i) {
        Header h;
        h.name = in.str16(kMaxHeaderName);
        h.value = in.str16(kMaxHeaderValue);
        r.headers.push_back(std::move(h));
    }
    size_t body = static_cast<size_t>(in.uint(4));
    if (!in.ok() || body > kMaxRecordBody) return -EINVAL;
    r.body = in.bytes(body);
    if (!in.ok() || !in.at_end()) return -EINVAL;
    if (!valid_record(r)) return -EINVAL;
    *out = std::move(r);
    return 0;
}

}  // namespace idempotency
