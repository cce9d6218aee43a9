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
#include "log.h"
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

std::string join_request_json(const Joiner::Settings& s) {
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

Joiner::Joiner(uv_loop_t* loop, MembershipClient& client, RaftBridge& bridge, Settings settings)
    : loop_(loop), client_(client), bridge_(bridge), settings_(std::move(settings)) {}

Joiner::~Joiner() { close(); }

void Joiner::start() {
    if (settings_.seeds.empty()) {
        log::error("cannot join: no seeds (cluster.seeds, or peers in etc/peers.yml)");
        state_ = State::GaveUp;
        return;
    }
    timer_ = std::make_unique<MembershipTimer>(loop_, this);
    state_ = State::Joining;
    log::info("joining the cluster", {{"seeds", static_cast<long long>(settings_.seeds.size())},
                                      {"raft_id", std::to_string(settings_.raft_id)}});
    timer_->start(cb_timer, 0, 0);
}

void Joiner::close() {
    if (closed_) return;
    closed_ = true;
    if (timer_) timer_->close();
}

void Joiner::cb_timer(uv_timer_t* t) { static_cast<Joiner*>(t->data)->attempt(); }

void Joiner::attempt() {
    if (closed_ || state_ != State::Joining) return;
    const MemberAddress& seed = settings_.seeds[attempts_ % settings_.seeds.size()];
    attempts_++;
    client_.post(seed.address, seed.node_id, "/v1/cluster/join", join_request_json(settings_), {},
                 [this](const PeerAnswer& a) { answered(a.status, a.body, a.error); });
}

void Joiner::retry_later(const std::string& why) {
    if (attempts_ >= settings_.max_attempts) {
        state_ = State::GaveUp;
        log::error("giving up joining the cluster", {{"attempts", static_cast<long long>(attempts_)}, {"last", why}});
        return;
    }
    log::warn("join attempt failed; retrying", {{"attempt", static_cast<long long>(attempts_)}, {"why", why}});
    timer_->start(cb_timer, settings_.retry_ms, 0);
}

// 200: admitted, with the members to talk to until the engine has the
// configuration. 4xx: refused for good. Anything else: try again.
void Joiner::answered(int status, const std::string& body, const std::string& error) {
    if (closed_) return;
    if (status == 0) return retry_later(error);
    std::unique_ptr<cJSON, void (*)(cJSON*)> root(cJSON_ParseWithLength(body.data(), body.size()), cJSON_Delete);
    const cJSON* message = root ? cJSON_GetObjectItemCaseSensitive(root.get(), "error") : nullptr;
    std::string why = cJSON_IsString(message) ? message->valuestring : "HTTP " + std::to_string(status);
    if (status >= 400 && status < 500) {
        state_ = State::Refused;
        log::error("the cluster refused to admit this node", {{"status", status}, {"error", why}});
        return;
    }
    if (status != 200 || !root) return retry_later(why);
    std::vector<Member> members;
    const cJSON* list = cJSON_GetObjectItemCaseSensitive(root.get(), "members");
    const cJSON* m = nullptr;
    cJSON_ArrayForEach(m, list) {
        const cJSON* id = cJSON_GetObjectItemCaseSensitive(m, "node_id");
        const cJSON* raft = cJSON_GetObjectItemCaseSensitive(m, "raft_id");
        const cJSON* address = cJSON_GetObjectItemCaseSensitive(m, "address");
        if (!cJSON_IsString(id) || !cJSON_IsString(raft) || !cJSON_IsString(address)) continue;
        members.push_back({id->valuestring, strtoull(raft->valuestring, nullptr, 10), address->valuestring});
    }
    bridge_.add_known(members);
    state_ = State::Joined;
    log::info("admitted to the cluster; catching up from the leader",
              {{"members", static_cast<long long>(members.size())}});
}

}  // namespace rampart::cluster
