// API tokens: "Authorization: Bearer <token>", roles admin / write / read.
// Only SHA-256 hashes of tokens are kept; a token never reaches a log.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/identity.h"

namespace rampart::http {
struct Request;
}

namespace rampart::auth {

enum class Role { Read = 1, Write = 2, Admin = 3 };
bool parse_role(std::string_view s, Role* out);
const char* role_name(Role role);

// Which routes need a token (the brief): every /v1/ route except
// /v1/status/; /health, /ready and /metrics are open.
bool route_needs_token(std::string_view path);
// The least role a request needs: admin for /v1/admin/, /v1/acl/ and
// resetting a breaker (POST /v1/agent/breakers/...), write for other
// requests that change state, read for the rest.
Role required_role(std::string_view method, std::string_view path);

struct Decision {
    enum class Outcome { Open, Allowed, Unauthenticated, Forbidden };
    Outcome outcome = Outcome::Open;
    Identity identity;
    int status = 200;     // 401 / 403 when refused
    std::string code;     // stable error code ("missing_token", "invalid_token", "forbidden")
    std::string message;  // for the client; never contains the token
};

// A token kept outside the configuration (the replicated state).
struct StoredToken {
    std::string name;  // who it is, for the identity: its public accessor id
    Role role = Role::Read;
    std::string prefix;  // key prefix scope; empty = every key
};

// Where tokens beyond the configured ones come from (core/store's
// replicated tokens). Called on the loop for every request with a token.
class TokenSource {
public:
    virtual ~TokenSource() = default;
    // The usable token whose hex SHA-256 is `hash`, in O(1).
    virtual bool find(std::string_view hash, StoredToken* out) const = 0;
    // Whether `request` stays inside a token's key `prefix`.
    virtual bool in_scope(const http::Request& request, std::string_view prefix) const = 0;
};

class Authenticator {
public:
    void set_enabled(bool enabled) { enabled_ = enabled; }
    bool enabled() const { return enabled_; }
    // Remember a token by its hash. Tokens shorter than 16 characters are
    // refused (returns false).
    bool add_token(std::string name, Role role, std::string_view token);
    void clear() { tokens_.clear(); }
    size_t token_count() const { return tokens_.size(); }
    // Consulted after the configured tokens; clear() keeps it.
    void set_source(std::unique_ptr<TokenSource> source) { source_ = std::move(source); }

    Decision decide(const http::Request& request) const;

private:
    struct Entry {
        std::string name;
        Role role;
        std::string hash;  // hex SHA-256
    };
    const Entry* find_hash(std::string_view hash) const;

    bool enabled_ = false;
    std::vector<Entry> tokens_;
    std::unique_ptr<TokenSource> source_;
};

// The token in "Authorization: Bearer <token>", or empty.
std::string_view bearer_token(const http::Request& request);

// A new random token: 64 hex digits (256 bits).
std::string generate_token();

// Read the token kept in `path`, or create the file (mode 0600) with a new
// one. *created says which. False with *error when neither works, or when
// an existing file is readable by group or others.
bool load_or_create_token_file(const std::string& path, std::string* token, bool* created, std::string* error);

}  // namespace rampart::auth
