#include "cluster/status.h"

#include <utility>

#include "cluster/raft_adapter.h"
#include "cluster/version_gate.h"
#include "metrics/registry.h"
#include "store/store.h"
#include "util/json.h"

namespace rampart::cluster {
namespace {

const char* state_name(int state) {
    switch (state) {
        case RAMPART_RAFT_FOLLOWER: return "follower";
        case RAMPART_RAFT_CANDIDATE: return "candidate";
        case RAMPART_RAFT_LEADER: return "leader";
        default: return "unavailable";
    }
}

const char* role_name(int role) {
    switch (role) {
        case RAMPART_RAFT_MEMBER_VOTER: return "voter";
        case RAMPART_RAFT_MEMBER_STANDBY: return "standby";
        default: return "spare";
    }
}

void append_field(std::string& out, const char* name, std::string_view value) {
    out += '"';
    out += name;
    out += "\":";
    util::json_string_append(out, value);
}

void append_field(std::string& out, const char* name, uint64_t value) {
    out += '"';
    out += name;
    out += "\":" + std::to_string(value);
}

// Raft ids use 63 bits: a JSON number would lose digits in clients that
// parse numbers as doubles (JavaScript, cJSON), so they travel as strings.
void append_id(std::string& out, const char* name, uint64_t id) { append_field(out, name, std::to_string(id)); }

// A number, or null when unknown (negative).
void append_optional(std::string& out, const char* name, int64_t value) {
    out += '"';
    out += name;
    out += "\":" + (value < 0 ? std::string("null") : std::to_string(value));
}

// What the member advertises (docs/cluster.md, "Member advertisement"):
// its API address and scheme, build, and the highest version of each
// command type it decodes; null until its announcement is replicated here.
void append_advertised(std::string& out, const std::optional<MemberInfo>& info) {
    if (!info) {
        out += ",\"api_address\":null,\"api_scheme\":null,\"build\":null,\"versions\":null";
        return;
    }
    out += ',';
    append_field(out, "api_address", info->api_address);
    out += ',';
    append_field(out, "api_scheme", info->api_scheme);
    out += ',';
    append_field(out, "build", info->build);
    out += ",\"versions\":{";
    for (size_t i = 0; i < info->versions.size(); i++) {
        if (i > 0) out += ',';
        append_field(out, record_type_name(info->versions[i].type).c_str(), uint64_t{info->versions[i].version});
    }
    out += '}';
}

}  // namespace

std::string status_json(const NodeStatus& s) {
    std::string out = "{";
    append_field(out, "node_id", s.node_id);
    out += ',';
    append_id(out, "raft_id", s.raft_id);
    out += ',';
    append_field(out, "state", s.state);
    out += ',';
    append_field(out, "role", s.role);
    out += ',';
    append_field(out, "term", s.term);
    out += ',';
    append_field(out, "commit_index", s.commit_index);
    out += ',';
    append_field(out, "applied_index", s.applied_index);
    out += ',';
    append_field(out, "last_index", s.last_index);
    out += ",\"leader\":";
    if (s.leader_raft_id == 0) {
        out += "null";
    } else {
        out += '{';
        append_field(out, "node_id", s.leader_node_id);
        out += ',';
        append_id(out, "raft_id", s.leader_raft_id);
        out += ',';
        append_field(out, "address", s.leader_address);
        out += ',';
        append_optional(out, "last_contact_ms", s.leader_contact_ms);
        out += '}';
    }
    out += ',';
    append_field(out, "voters", s.voters);
    out += ',';
    append_field(out, "quorum_size", s.quorum_size);
    out += ',';
    append_field(out, "leader_changes", s.leader_changes);
    out += ",\"progress_known\":";
    out += s.progress_known ? "true" : "false";
    out += ",\"members\":[";
    for (size_t i = 0; i < s.members.size(); i++) {
        const MemberStatus& m = s.members[i];
        out += i == 0 ? "{" : ",{";
        append_field(out, "node_id", m.node_id);
        out += ',';
        append_id(out, "raft_id", m.raft_id);
        out += ',';
        append_field(out, "address", m.address);
        out += ',';
        append_field(out, "role", m.role);
        out += ",\"leader\":";
        out += m.is_leader ? "true" : "false";
        out += ",\"self\":";
        out += m.is_self ? "true" : "false";
        out += ',';
        append_optional(out, "last_contact_ms", m.last_contact_ms);
        out += ',';
        append_optional(out, "match_index", m.progress_known ? static_cast<int64_t>(m.match_index) : -1);
        out += ',';
        append_optional(out, "lag", m.progress_known ? static_cast<int64_t>(m.lag) : -1);
        append_advertised(out, m.advertised);
        out += '}';
    }
    out += "]}\n";
    return out;
}

ClusterStatus::ClusterStatus(uv_loop_t* loop, store::Store& store, std::string node_id, MembersFn members,
                             metrics::Registry* registry)
    : loop_(loop), store_(store), node_id_(std::move(node_id)), members_(std::move(members)) {
    if (registry == nullptr) return;
    term_ = registry->gauge("rampart_raft_term", "The Raft term this node is in", {});
    is_leader_ = registry->gauge("rampart_raft_is_leader", "1 while this node is the Raft leader", {});
    commit_index_ = registry->gauge("rampart_raft_commit_index", "Highest log index known to be committed", {});
    applied_index_ = registry->gauge("rampart_raft_applied_index", "Highest log index applied to the store", {});
    leader_changes_ = registry->counter("rampart_raft_leader_changes_total",
                                        "Leaders this node has seen take over (another node or a new term)", {});
    apply_duration_ =
        registry->histogram("rampart_raft_apply_duration_seconds",
                            "Time from proposing a write on this node to its commit and apply (successful writes)", {},
                            {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5});
    quorum_size_ = registry->gauge("rampart_quorum_size", "Voters needed for a majority (voters / 2 + 1)", {});
    replication_lag_ = registry->gauge("rampart_raft_replication_lag",
                                       "Log entries a member is behind the leader (on the leader only)", {"peer"});
}

ClusterStatus::~ClusterStatus() { close(); }

void ClusterStatus::start() {
    if (rampart_raft* engine = store_.engine()) {
        rampart_raft_observer observer{this, cb_state_changed, cb_applied};
        rampart_raft_set_observer(engine, &observer);
        observing_ = true;
    }
    refresh_metrics();
    if (timer_ != nullptr) return;
    auto timer = std::make_unique<uv_timer_t>();
    uv_timer_init(loop_, timer.get());
    timer->data = this;
    uv_timer_start(timer.get(), cb_timer, kRefreshMs, kRefreshMs);
    timer_ = timer.release();  // close() hands it to uv_close, whose callback frees it
}

void ClusterStatus::close() {
    if (observing_) {
        if (rampart_raft* engine = store_.engine()) rampart_raft_set_observer(engine, nullptr);
        observing_ = false;
    }
    if (timer_ == nullptr) return;
    uv_timer_t* timer = std::exchange(timer_, nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(timer),
             [](uv_handle_t* h) { std::unique_ptr<uv_timer_t>(reinterpret_cast<uv_timer_t*>(h)).reset(); });
}

void ClusterStatus::cb_state_changed(void* user) { static_cast<ClusterStatus*>(user)->refresh_metrics(); }

void ClusterStatus::cb_applied(void* user, int status, double seconds) {
    auto* self = static_cast<ClusterStatus*>(user);
    if (status == RAMPART_RAFT_OK && self->apply_duration_ != nullptr) self->apply_duration_->observe({}, seconds);
}

void ClusterStatus::cb_timer(uv_timer_t* timer) { static_cast<ClusterStatus*>(timer->data)->refresh_metrics(); }

NodeStatus ClusterStatus::snapshot() const {
    NodeStatus s;
    s.node_id = node_id_;
    s.raft_id = raft_id_for(node_id_);
    const rampart_raft* engine = store_.engine();
    if (engine == nullptr) return s;
    s.raft_id = rampart_raft_id(engine);  // a joined node's id is random (cluster/joiner.h)
    std::vector<Member> known = members_ ? members_() : std::vector<Member>{};
    auto node_id_of = [&known](uint64_t raft_id) -> std::string {
        for (const Member& m : known) {
            if (m.raft_id == raft_id) return m.node_id;
        }
        return {};
    };
    s.state = state_name(rampart_raft_state(engine));
    s.term = rampart_raft_term(engine);
    s.commit_index = rampart_raft_commit_index(engine);
    s.applied_index = rampart_raft_applied_index(engine);
    s.last_index = rampart_raft_last_index(engine);
    char address[256];
    s.leader_raft_id = rampart_raft_leader(engine, address, sizeof address);
    if (s.leader_raft_id != 0) {
        s.leader_address = address;
        s.leader_node_id = s.leader_raft_id == s.raft_id ? node_id_ : node_id_of(s.leader_raft_id);
        s.leader_contact_ms = rampart_raft_leader_contact_ms(engine);
    }
    s.voters = rampart_raft_voters(engine);
    s.quorum_size = s.voters == 0 ? 0 : s.voters / 2 + 1;
    s.leader_changes = rampart_raft_leader_changes(engine);
    s.progress_known = s.state == "leader";

    std::vector<rampart_raft_member> members(rampart_raft_members(engine, nullptr, 0));
    members.resize(rampart_raft_members(engine, members.data(), static_cast<unsigned>(members.size())));
    const store::Version state = store_.state().version();
    for (const rampart_raft_member& m : members) {
        MemberStatus ms;
        ms.raft_id = m.id;
        ms.node_id = m.is_self ? node_id_ : m.name[0] != 0 ? std::string(m.name) : node_id_of(m.id);
        ms.address = m.address != nullptr ? m.address : "";
        ms.role = role_name(m.role);
        ms.is_self = m.is_self != 0;
        ms.is_leader = m.is_leader != 0;
        ms.progress_known = m.progress_known != 0;
        ms.match_index = m.match_index;
        ms.lag = ms.progress_known && s.last_index > m.match_index ? s.last_index - m.match_index : 0;
        ms.last_contact_ms = m.last_contact_ms;
        // A follower knows when it last heard from its leader.
        if (!ms.progress_known && ms.is_leader) ms.last_contact_ms = s.leader_contact_ms;
        if (!ms.progress_known && ms.is_self) ms.last_contact_ms = 0;
        if (ms.is_self) s.role = ms.role;
        auto advertised = state->members.find(ms.node_id);
        if (advertised != state->members.end()) {
            ms.advertised = advertised->second;
        } else if (ms.is_self && self_advertisement_) {
            ms.advertised = self_advertisement_();
        }
        s.members.push_back(std::move(ms));
    }
    return s;
}

std::string ClusterStatus::leader_address() const {
    const rampart_raft* engine = store_.engine();
    if (engine == nullptr) return {};
    char address[256];
    return rampart_raft_leader(engine, address, sizeof address) != 0 ? std::string(address) : std::string();
}

std::vector<std::string> ClusterStatus::voter_addresses() const {
    std::vector<std::string> out;
    const rampart_raft* engine = store_.engine();
    if (engine == nullptr) return out;
    std::vector<rampart_raft_member> members(rampart_raft_members(engine, nullptr, 0));
    members.resize(rampart_raft_members(engine, members.data(), static_cast<unsigned>(members.size())));
    for (const rampart_raft_member& m : members) {
        if (m.role == RAMPART_RAFT_MEMBER_VOTER && m.address != nullptr) out.emplace_back(m.address);
    }
    return out;
}

void ClusterStatus::refresh_metrics() {
    if (term_ == nullptr) return;
    NodeStatus s = snapshot();
    term_->set({}, static_cast<double>(s.term));
    is_leader_->set({}, s.state == "leader" ? 1 : 0);
    commit_index_->set({}, static_cast<double>(s.commit_index));
    applied_index_->set({}, static_cast<double>(s.applied_index));
    quorum_size_->set({}, s.quorum_size);
    if (s.leader_changes > leader_changes_counted_) {
        leader_changes_->add({}, static_cast<double>(s.leader_changes - leader_changes_counted_));
        leader_changes_counted_ = s.leader_changes;
    }
    // Only the leader knows how far behind each member is; a node that no
    // longer leads drops the series rather than report stale figures, and a
    // member gone from the configuration goes with them.
    replication_lag_->clear();
    if (!s.progress_known) return;
    for (const MemberStatus& m : s.members) {
        if (m.is_self || m.role == "spare") continue;
        replication_lag_->set({m.node_id.empty() ? std::to_string(m.raft_id) : m.node_id}, static_cast<double>(m.lag));
    }
}

}  // namespace rampart::cluster
