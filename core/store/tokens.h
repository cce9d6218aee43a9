// API tokens in the replicated state (issue 5). A token is kept under its
// accessor id (random, public) with the SHA-256 of its secret: the secret
// itself never enters the log, a snapshot or this table. The leader-side
// handler makes the secret, proposes only its hash, and shows the secret
// once in its answer (core/store/acl_routes.*).
//
// Every node applies the same entries to the same table, so every node
// authenticates the same tokens from local state: lookups by hash are O(1),
// and a revocation takes effect on a node as soon as it applies the entry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "store/command.h"
#include "store/result.h"

namespace rampart::store {

struct Token {
    std::string accessor;
    std::string secret_hash;  // lowercase hex SHA-256 of the secret
    TokenRole role = TokenRole::Read;
    std::string prefix;  // key prefix scope; empty = every key
    std::string description;
    uint64_t create_index = 0;
    uint64_t create_ms = 0;   // the leader's clock when it proposed the entry
    uint64_t expires_ms = 0;  // 0 = never
};
using TokenPtr = std::shared_ptr<const Token>;

// Bounds. They decide outcomes, so they are the same on every node.
struct TokenLimits {
    static constexpr size_t kMaxTokens = 4096;
    static constexpr size_t kAccessor = 64;
    static constexpr size_t kDescription = Limits::kName;
};

class TokenTable {
public:
    using ByAccessor = std::map<std::string, TokenPtr, std::less<>>;

    const Token* find_accessor(std::string_view accessor) const;
    // By the hex SHA-256 of a secret: one hash-table probe.
    const Token* find_hash(std::string_view hash) const;
    size_t size() const { return by_accessor_.size(); }
    const ByAccessor& by_accessor() const { return by_accessor_; }

    // Apply (deterministic): Invalid for a record no leader of ours would
    // propose, Failed (with the reason) for a duplicate, a full table or an
    // unknown accessor.
    Result create(uint64_t index, uint64_t leader_ms, const TokenCreate& c);
    Result revoke(const TokenRevoke& c);

    // The snapshot section: count { accessor hash role prefix description
    // create_index create_ms expires_ms }, LEB128 varints for numbers and
    // lengths. restore() fills an empty table and checks every record as
    // create() would; false on anything malformed.
    std::string serialize() const;
    bool restore(std::string_view bytes);

private:
    void insert(TokenPtr t);

    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    ByAccessor by_accessor_;
    std::unordered_map<std::string, TokenPtr, Hash, std::equal_to<>> by_hash_;
};

// Accessor ids: 1 to 64 of [A-Za-z0-9_.-] (they travel in URL paths).
bool valid_accessor(std::string_view accessor);
// Exactly 64 lowercase hex digits.
bool valid_secret_hash(std::string_view hash);
// Why a TokenCreate cannot apply (any node would refuse it), or empty.
std::string check_token(const TokenCreate& c);

// A new accessor id: a random (version 4) UUID, as Consul's AccessorID.
std::string new_accessor();

const char* token_role_name(TokenRole role);
bool parse_token_role(std::string_view s, TokenRole* out);

}  // namespace rampart::store
