#include "store/tokens.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdlib>

#include "store/byte_codec.h"
#include "store/key.h"

namespace rampart::store {
namespace {

bool valid_role(TokenRole role) {
    auto r = static_cast<uint8_t>(role);
    return r >= static_cast<uint8_t>(TokenRole::Read) && r <= static_cast<uint8_t>(TokenRole::Admin);
}

}  // namespace

bool valid_accessor(std::string_view a) {
    if (a.empty() || a.size() > TokenLimits::kAccessor) return false;
    for (char c : a) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                  c == '.';
        if (!ok) return false;
    }
    return a != "." && a != "..";
}

bool valid_secret_hash(std::string_view h) {
    if (h.size() != 64) return false;
    for (char c : h) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

std::string check_token(const TokenCreate& c) {
    if (!valid_accessor(c.accessor)) return "a token accessor is 1 to 64 of A-Z a-z 0-9 - _ .";
    if (!valid_secret_hash(c.secret_hash)) return "a token's secret hash is 64 lowercase hex digits";
    if (!valid_role(c.role)) return "unknown token role";
    if (!c.prefix.empty()) {
        if (std::string err = check_key(c.prefix, true); !err.empty()) return "token prefix: " + err;
    }
    if (c.description.size() > TokenLimits::kDescription) {
        return "a token description is at most " + std::to_string(TokenLimits::kDescription) + " bytes";
    }
    if (!valid_utf8(c.description)) return "a token description must be UTF-8 text";
    return {};
}

const char* token_role_name(TokenRole role) {
    switch (role) {
        case TokenRole::Admin: return "admin";
        case TokenRole::Write: return "write";
        default: return "read";
    }
}

bool parse_token_role(std::string_view s, TokenRole* out) {
    if (s == "read")
        *out = TokenRole::Read;
    else if (s == "write")
        *out = TokenRole::Write;
    else if (s == "admin")
        *out = TokenRole::Admin;
    else
        return false;
    return true;
}

std::string new_accessor() {
    uint8_t b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) abort();  // no entropy: refusing beats guessable ids
        got += static_cast<size_t>(n);
    }
    b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < sizeof b; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += kHex[b[i] >> 4];
        out += kHex[b[i] & 0xf];
    }
    return out;
}

const Token* TokenTable::find_accessor(std::string_view accessor) const {
    auto it = by_accessor_.find(accessor);
    return it == by_accessor_.end() ? nullptr : it->second.get();
}

const Token* TokenTable::find_hash(std::string_view hash) const {
    auto it = by_hash_.find(hash);
    return it == by_hash_.end() ? nullptr : it->second.get();
}

void TokenTable::insert(TokenPtr t) {
    by_hash_.emplace(t->secret_hash, t);
    std::string accessor = t->accessor;
    by_accessor_.emplace(std::move(accessor), std::move(t));
}

Result TokenTable::create(uint64_t index, uint64_t leader_ms, const TokenCreate& c) {
    if (std::string err = check_token(c); !err.empty()) return Result::failure(Outcome::Invalid, err);
    if (find_accessor(c.accessor) != nullptr)
        return Result::failure(Outcome::Failed, "a token with this accessor exists");
    // Two secrets with one hash: only a replayed or forged entry does that.
    if (find_hash(c.secret_hash) != nullptr) return Result::failure(Outcome::Failed, "a token with this secret exists");
    if (by_accessor_.size() >= TokenLimits::kMaxTokens) {
        return Result::failure(Outcome::Failed, "too many tokens (at most " + std::to_string(TokenLimits::kMaxTokens) +
                                                    "): revoke some first");
    }
    auto t = std::make_shared<Token>();
    t->accessor = c.accessor;
    t->secret_hash = c.secret_hash;
    t->role = c.role;
    t->prefix = c.prefix;
    t->description = c.description;
    t->create_index = index;
    t->create_ms = leader_ms;
    t->expires_ms = c.expires_ms;
    insert(std::move(t));
    return {};
}

Result TokenTable::revoke(const TokenRevoke& c) {
    auto it = by_accessor_.find(c.accessor);
    if (it == by_accessor_.end()) return Result::failure(Outcome::Failed, "no such token");
    by_hash_.erase(it->second->secret_hash);
    by_accessor_.erase(it);
    return {};
}

std::string TokenTable::serialize() const {
    ByteOut out;  // the same encoding as the rest of the snapshot
    out.varint(by_accessor_.size());
    for (const auto& [accessor, t] : by_accessor_) {
        out.bytes(accessor);
        out.bytes(t->secret_hash);
        out.varint(static_cast<uint8_t>(t->role));
        out.bytes(t->prefix);
        out.bytes(t->description);
        out.varint(t->create_index);
        out.varint(t->create_ms);
        out.varint(t->expires_ms);
    }
    return out.take();
}

bool TokenTable::restore(std::string_view bytes) {
    ByteIn in(bytes);
    uint64_t count = in.varint();
    if (!in.ok() || count > TokenLimits::kMaxTokens) return false;
    for (uint64_t i = 0; i < count; i++) {
        TokenCreate c;
        c.accessor = in.bytes(TokenLimits::kAccessor);
        c.secret_hash = in.bytes(Limits::kSecretHash);
        uint64_t role = in.varint();
        c.role = static_cast<TokenRole>(role > 0xff ? 0 : role);
        c.prefix = in.bytes(Limits::kKey);
        c.description = in.bytes(TokenLimits::kDescription);
        uint64_t index = in.varint();
        uint64_t created = in.varint();
        c.expires_ms = in.varint();
        if (!in.ok() || create(index, created, c).outcome != Outcome::Ok) return false;
    }
    return in.at_end();
}

}  // namespace rampart::store
