#include "auth/authenticator.h"

#include <fcntl.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "http/parser.h"
#include "util/sha256.h"

namespace rampart::auth {
namespace {

constexpr size_t kMinTokenLength = 16;
constexpr size_t kMaxTokenLength = 1024;

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool changes_state(std::string_view method) { return method != "GET" && method != "HEAD" && method != "OPTIONS"; }

Decision refuse(int status, const char* code, const char* message) {
    Decision d;
    d.outcome = status == 401 ? Decision::Outcome::Unauthenticated : Decision::Outcome::Forbidden;
    d.status = status;
    d.code = code;
    d.message = message;
    return d;
}

}  // namespace

bool parse_role(std::string_view s, Role* out) {
    if (s == "read")
        *out = Role::Read;
    else if (s == "write")
        *out = Role::Write;
    else if (s == "admin")
        *out = Role::Admin;
    else
        return false;
    return true;
}

const char* role_name(Role role) {
    switch (role) {
        case Role::Admin: return "admin";
        case Role::Write: return "write";
        default: return "read";
    }
}

// POST /v1/cluster/join authenticates by join token and certificate (a
// joining node has no API token); its handler asks for an admin token when
// the body asks this node to join elsewhere.
bool route_needs_token(std::string_view path) {
    return starts_with(path, "/v1/") && !starts_with(path, "/v1/status/") && path != "/v1/cluster/join";
}

Role required_role(std::string_view method, std::string_view path) {
    if (starts_with(path, "/v1/admin/") || starts_with(path, "/v1/acl/") || path == "/v1/snapshot") return Role::Admin;
    // Resetting a circuit breaker overrides the recovery policy.
    if (starts_with(path, "/v1/agent/breakers/") && changes_state(method)) return Role::Admin;
    // Cluster membership (cluster/membership_routes.h).
    if (starts_with(path, "/v1/cluster/join-token") || path == "/v1/cluster/leave" ||
        path == "/v1/cluster/transfer-leadership")
        return Role::Admin;
    return changes_state(method) ? Role::Write : Role::Read;
}

std::string_view bearer_token(const http::Request& request) {
    const std::string* header = request.header("authorization");
    if (header == nullptr || header->size() < 7 || strncasecmp(header->c_str(), "Bearer ", 7) != 0) return {};
    std::string_view token = std::string_view(*header).substr(7);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    return token;
}

bool Authenticator::add_token(std::string name, Role role, std::string_view token) {
    if (token.size() < kMinTokenLength || token.size() > kMaxTokenLength) return false;
    tokens_.push_back({std::move(name), role, util::sha256_hex(token)});
    return true;
}

const Authenticator::Entry* Authenticator::find_hash(std::string_view hash) const {
    const Entry* found = nullptr;
    // Compare against every entry so the time taken does not depend on
    // which one (if any) matched.
    for (const Entry& e : tokens_) {
        if (util::constant_time_equal(e.hash, hash)) found = &e;
    }
    return found;
}

Decision Authenticator::decide(const http::Request& request) const {
    Decision d;
    std::string_view token = bearer_token(request);
    bool needs = enabled_ && route_needs_token(request.path);
    if (token.empty()) {
        if (!needs) return d;
        if (request.header("authorization") != nullptr) {
            return refuse(401, "invalid_token", "Authorization must be \"Bearer <token>\"");
        }
        return refuse(401, "missing_token", "this route needs a token: Authorization: Bearer <token>");
    }
    if (!enabled_) return d;  // auth off: tokens are not checked
    std::string hash = util::sha256_hex(token);
    StoredToken found;
    if (const Entry* entry = find_hash(hash)) {
        found.name = entry->name;
        found.role = entry->role;
    } else if (source_ == nullptr || !source_->find(hash, &found)) {
        // An open route may carry a token meant for someone else (a
        // metrics scrape token): not ours to refuse, and not a failure.
        if (!needs) return d;
        return refuse(401, "invalid_token", "the token is not valid");
    }
    d.outcome = Decision::Outcome::Allowed;
    d.identity.kind = IdentityKind::Token;
    d.identity.name = found.name;
    d.identity.role = role_name(found.role);
    const char* why = nullptr;
    if (needs && found.role < required_role(request.method, request.path)) {
        why = "the token's role does not allow this request";
    } else if (needs && !found.prefix.empty() && !source_->in_scope(request, found.prefix)) {
        why = "the token is limited to keys under its prefix";
    }
    if (why != nullptr) {
        Decision refused = refuse(403, "forbidden", why);
        refused.identity = d.identity;
        return refused;
    }
    return d;
}

std::string generate_token() {
    uint8_t bytes[32];
    size_t got = 0;
    while (got < sizeof bytes) {
        ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) abort();  // no entropy: refusing beats a guessable token
        got += static_cast<size_t>(n);
    }
    return util::to_hex(bytes, sizeof bytes);
}

bool load_or_create_token_file(const std::string& path, std::string* token, bool* created, std::string* error) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        struct stat st;
        char buf[kMaxTokenLength + 2];
        ssize_t n = (fstat(fd, &st) == 0) ? read(fd, buf, sizeof buf - 1) : -1;
        close(fd);
        if (n < 0) {
            *error = path + ": " + strerror(errno);
            return false;
        }
        if ((st.st_mode & 077) != 0) {
            char mode[8];
            snprintf(mode, sizeof mode, "%04o", st.st_mode & 0777);
            *error = "token file " + path + " has insecure permissions " + mode + " (must be 0600)";
            return false;
        }
        std::string_view text(buf, static_cast<size_t>(n));
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
            text.remove_suffix(1);
        if (text.size() < kMinTokenLength) {
            *error = "token file " + path + " holds no usable token";
            return false;
        }
        token->assign(text);
        *created = false;
        return true;
    }
    if (errno != ENOENT) {
        *error = path + ": " + strerror(errno);
        return false;
    }
    std::string fresh = generate_token();
    fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        *error = "cannot create " + path + ": " + strerror(errno);
        return false;
    }
    std::string line = fresh + "\n";
    bool ok = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && fsync(fd) == 0;
    close(fd);
    if (!ok) {
        unlink(path.c_str());
        *error = "cannot write " + path;
        return false;
    }
    *token = fresh;
    *created = true;
    return true;
}

}  // namespace rampart::auth
