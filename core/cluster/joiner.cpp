#include "cluster/joiner.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "cluster/membership_client.h"
#include "cluster/raft_bridge.h"
#include "util/json.h"

namespace rampart::cluster {
namespace {

// True when the engine's directory holds nothing (missing or empty).
bool pristine(const std::string& dir) {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return true;
    bool empty = true;
    while (dirent* e = readdir(d)) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = false;
    }
    closedir(d);
    return empty;
}

uint64_t random_raft_id() {
    uint64_t id = 0;
    while (id == 0) {
        if (getrandom(&id, sizeof id, 0) != static_cast<ssize_t>(sizeof id)) abort();  // no entropy
        id &= 0x7fffffffffffffffull;  // as raft_id_for(): printed signed in places
    }
    return id;
}

bool read_id(const std::string& path, uint64_t* id, std::string* error) {
    char buf[32] = {0};
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) ::close(fd);
    char* end = nullptr;
    *id = n > 0 ? strtoull(buf, &end, 10) : 0;
    if (*id == 0 || end == nullptr || (*end != '\n' && *end != 0)) {
        *error = path + " does not hold a Raft id";
        return false;
    }
    return true;
}

bool write_id(const std::string& path, uint64_t id, std::string* error) {
    std::string text = std::to_string(id) + "\n";
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && fsync(fd) == 0;
    if (fd >= 0) ::close(fd);
    if (!ok) *error = "cannot write " + path + ": " + strerror(errno);
    return ok;
}

}  // namespace

bool choose_raft_identity(const std::string& data_dir, const std::string& node_id, bool has_join_token,
                          RaftIdentity* out, std::string* error) {
    std::string path = data_dir + "/raft_id";
    bool fresh = pristine(data_dir + "/raft");
    if (access(path.c_str(), F_OK) == 0) {
        if (!read_id(path, &out->raft_id, error)) return false;
        out->join = fresh && has_join_token;  // stopped before the leader reached it: ask again
        return true;
    }
    if (fresh && has_join_token) {
        out->raft_id = random_raft_id();
        out->join = true;
        return write_id(path, out->raft_id, error);
    }
    out->raft_id = raft_id_for(node_id);
    out->join = false;
    return true;
}

std::string join_request_json(const JoinAttempt::Settings& s) {
    std::string body = "{\"node_id\":";
    util::json_string_append(body, s.node_id);
    body += ",\"address\":";
    util::json_string_append(body, s.peer_address);
    body += ",\"raft_id\":\"" + std::to_string(s.raft_id) + "\",\"role\":";
    util::json_string_append(body, s.role.empty() ? "voter" : s.role);
    body += ",\"join_token\":";
    util::json_string_append(body, s.token);
    return body + "}";
}

namespace {

// The reason a failed attempt gives: the seed's own error message when it
// answered, else how the request failed.
std::string reason_of(const PeerAnswer& a, const cJSON* root) {
    const cJSON* message = root ? cJSON_GetObjectItemCaseSensitive(root, "error") : nullptr;
    if (a.status == 0) {
        if (a.result.retry_class == "tls_error")
            return "no peer connection (the TLS handshake failed: the peer connection log line says why)";
        if (a.result.retry_class == "network_error") return "no peer connection (" + a.error + ")";
        return a.error;
    }
    std::string why = "HTTP " + std::to_string(a.status);
    return cJSON_IsString(message) ? why + ": " + message->valuestring : why;
}

std::vector<Member> members_of(const cJSON* root) {
    std::vector<Member> members;
    const cJSON* list = cJSON_GetObjectItemCaseSensitive(root, "members");
    const cJSON* m = nullptr;
    cJSON_ArrayForEach(m, list) {
        const cJSON* id = cJSON_GetObjectItemCaseSensitive(m, "node_id");
        const cJSON* raft = cJSON_GetObjectItemCaseSensitive(m, "raft_id");
        const cJSON* address = cJSON_GetObjectItemCaseSensitive(m, "address");
        if (!cJSON_IsString(id) || !cJSON_IsString(raft) || !cJSON_IsString(address)) continue;
        members.push_back({id->valuestring, strtoull(raft->valuestring, nullptr, 10), address->valuestring});
    }
    return members;
}

}  // namespace

JoinAttempt::JoinAttempt(MembershipClient& client, RaftBridge& bridge, bool tls, NameFor name_for, Settings settings)
    : client_(client), bridge_(bridge), tls_(tls), name_for_(std::move(name_for)), settings_(std::move(settings)) {}

void JoinAttempt::operator()(const Seed& seed, std::function<void(JoinOutcome)> done) {
    MemberAddress to{seed.name.empty() && name_for_ ? name_for_(seed.address) : seed.name, seed.address};
    // A TLS dial must name the certificate it expects; a static seed that
    // etc/peers.yml does not list has no name to expect.
    if (to.node_id.empty() && tls_) {
        return done(JoinOutcome::retryable(
            "no node id known for this seed, so its certificate cannot be checked: write it node_id@host:port, "
            "list it in etc/peers.yml, or discover it by SRV (the target's first label is the node id)"));
    }
    MembershipClient::Request rq;
    rq.path = "/v1/cluster/join";
    rq.body = join_request_json(settings_);
    rq.idempotent = true;  // a repeat is answered again, the token spent once
    rq.max_attempts = 1;   // the join loop retries, in rounds
    rq.guarded = false;    // ... under its own backoff
    rq.target = [to] { return std::optional<MemberAddress>(to); };
    RaftBridge* bridge = &bridge_;
    client_.send(std::move(rq), [bridge, done = std::move(done)](const PeerAnswer& a) {
        std::unique_ptr<cJSON, void (*)(cJSON*)> root(cJSON_ParseWithLength(a.body.data(), a.body.size()),
                                                      cJSON_Delete);
        std::string why = reason_of(a, root.get());
        if (a.status >= 400 && a.status < 500) return done(JoinOutcome::refused(why));
        if (a.status != 200 || !root) return done(JoinOutcome::retryable(why));
        std::vector<Member> members = members_of(root.get());
        bridge->add_known(members);
        std::string names;
        for (const Member& m : members) names += (names.empty() ? "" : ", ") + m.node_id;
        done(JoinOutcome::joined("admitted; catching up from the leader (members: " + names + ")"));
    });
}

}  // namespace rampart::cluster
