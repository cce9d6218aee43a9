#include "cluster/membership_manager.h"

#include <vector>

#include "audit/audit_log.h"
#include "cluster/membership_address.h"
#include "cluster/raft_adapter.h"
#include "cluster/raft_bridge.h"
#include "log.h"
#include "store/membership_record.h"
#include "store/store.h"

namespace rampart::cluster {
namespace {

struct View {
    rampart_raft_member m;
    std::string node_id;
};

}  // namespace

struct MembershipManager::Pending {
    MembershipManager* owner;
    std::string what, node_id;
    uint64_t raft_id;
};

MembershipManager::MembershipManager(uv_loop_t* loop, store::Store& store, RaftBridge& bridge, audit::AuditLog* audit,
                                     Settings settings)
    : loop_(loop), store_(store), bridge_(bridge), audit_(audit), settings_(std::move(settings)) {}

MembershipManager::~MembershipManager() { close(); }

void MembershipManager::start() {
    timer_ = std::make_unique<MembershipTimer>(loop_, this);
    timer_->start(cb_timer, settings_.interval_ms, settings_.interval_ms);
}

void MembershipManager::close() {
    *alive_ = false;
    if (pending_ != nullptr) pending_->owner = nullptr;  // its callback may still come
    pending_ = nullptr;
    if (timer_) timer_->close();
}

void MembershipManager::cb_timer(uv_timer_t* t) { static_cast<MembershipManager*>(t->data)->tick(); }

void MembershipManager::audit(const char* event, const std::string& node_id, uint64_t raft_id,
                              const std::string& detail) {
    if (audit_ == nullptr) return;
    std::string error;
    audit_->append(event, {{"node_id", node_id}, {"raft_id", std::to_string(raft_id)}, {"detail", detail}}, &error);
}

bool MembershipManager::begin_change(const char* what, uint64_t raft_id, const std::string& node_id, int rv) {
    if (rv != 0) {
        log::warn("membership change not started; retrying",
                  {{"change", what}, {"node_id", node_id}, {"status", rampart_raft_status_name(rv)}});
        return false;
    }
    log::info("membership change started",
              {{"change", what}, {"node_id", node_id}, {"raft_id", std::to_string(raft_id)}});
    return true;
}

void MembershipManager::cb_changed(void* ctx, int status) {
    std::unique_ptr<Pending> p(static_cast<Pending*>(ctx));
    MembershipManager* self = p->owner;
    if (self == nullptr) return;
    self->pending_ = nullptr;
    if (status != 0) {
        log::warn("membership change failed; retrying",
                  {{"change", p->what}, {"node_id", p->node_id}, {"status", rampart_raft_status_name(status)}});
        return;
    }
    log::info("membership change committed", {{"change", p->what}, {"node_id", p->node_id}});
    self->audit("cluster_member_change", p->node_id, p->raft_id, p->what);
    self->tick();  // the next step at once
}

void MembershipManager::tick() {
    rampart_raft* engine = store_.engine();
    if (engine == nullptr || !store_.is_leader() || pending_ != nullptr || proposing_) {
        if (engine != nullptr && !store_.is_leader()) transferring_ = false;
        return;
    }
    std::vector<rampart_raft_member> raw(rampart_raft_members(engine, nullptr, 0));
    raw.resize(rampart_raft_members(engine, raw.data(), static_cast<unsigned>(raw.size())));
    std::vector<View> config;
    for (const rampart_raft_member& m : raw) {
        std::string node_id = m.name;
        if (node_id.empty()) {
            if (auto b = bridge_.member_by_id(m.id)) node_id = b->node_id;
        }
        config.push_back({m, node_id});
    }
    const store::MembershipState& table = store_.state().membership();
    // The request belongs to cb_changed once the engine took it.
    auto change = [this](const char* what, uint64_t id, const std::string& node_id, auto&& submit) {
        auto p = std::make_unique<Pending>(Pending{this, what, node_id, id});
        if (begin_change(what, id, node_id, submit(p.get()))) pending_ = p.release();
    };

    // 1. Members that left, and ids replaced by a rejoin.
    for (const View& v : config) {
        const store::MemberRecord* rec = table.member(v.node_id);
        if (rec == nullptr || (!rec->left && rec->raft_id == v.m.id)) continue;
        if (v.m.is_self) {
            if (!rec->left || transferring_) continue;
            transferring_ = true;  // the next leader removes this node
            int rv = rampart_raft_transfer(engine, 0, nullptr, nullptr);
            log::info("this node leaves the cluster: handing leadership over first",
                      {{"status", rampart_raft_status_name(rv)}});
            return;
        }
        const char* what = rec->left ? "remove (left)" : "remove (replaced by a rejoin)";
        change(what, v.m.id, v.node_id, [&](Pending* p) { return rampart_raft_remove(engine, v.m.id, cb_changed, p); });
        return;
    }

    // 2 and 3. Joined members: add, let replicate, promote.
    uint64_t last = rampart_raft_last_index(engine);
    for (const auto& entry : table.members()) {
        const store::MemberRecord& rec = entry.second;
        if (rec.left) continue;
        const View* found = nullptr;
        for (const View& v : config) {
            if (v.m.id == rec.raft_id) found = &v;
        }
        if (found == nullptr) {
            std::string address = member_address(rec.node_id, rec.address);
            change("add", rec.raft_id, rec.node_id,
                   [&](Pending* p) { return rampart_raft_add(engine, rec.raft_id, address.c_str(), cb_changed, p); });
            return;
        }
        const rampart_raft_member& m = found->m;
        if (m.role == RAMPART_RAFT_MEMBER_SPARE && rec.role != store::MemberRole::Spare) {
            change("standby", rec.raft_id, rec.node_id, [&](Pending* p) {
                return rampart_raft_assign(engine, rec.raft_id, RAMPART_RAFT_MEMBER_STANDBY, cb_changed, p);
            });
            return;
        }
        bool caught_up = m.progress_known && m.match_index + settings_.promote_max_lag >= last;
        if (m.role == RAMPART_RAFT_MEMBER_STANDBY && rec.role == store::MemberRole::Voter && settings_.auto_promote &&
            caught_up) {
            change("promote to voter", rec.raft_id, rec.node_id, [&](Pending* p) {
                return rampart_raft_assign(engine, rec.raft_id, RAMPART_RAFT_MEMBER_VOTER, cb_changed, p);
            });
            return;
        }
    }

    // 4. Dead members, only while the rest keeps a quorum.
    uint64_t dead_ms = settings_.remove_dead_after_ms;
    if (dead_ms == 0) return;
    uint64_t now = uv_now(loop_);
    auto is_live = [&](const rampart_raft_member& m) {
        if (m.is_self) return true;
        if (m.last_contact_ms >= 0) {
            silent_since_.erase(m.id);
            return static_cast<uint64_t>(m.last_contact_ms) <= dead_ms;
        }
        uint64_t since = silent_since_.try_emplace(m.id, now).first->second;
        return now - since <= dead_ms;
    };
    unsigned voters = 0, live_voters = 0;
    for (const View& v : config) {
        if (v.m.role != RAMPART_RAFT_MEMBER_VOTER) continue;
        voters++;
        if (is_live(v.m)) live_voters++;
    }
    for (const View& v : config) {
        // Spares get no heartbeats: their silence says nothing.
        if (v.m.is_self || v.node_id.empty() || !v.m.progress_known || v.m.role == RAMPART_RAFT_MEMBER_SPARE ||
            is_live(v.m))
            continue;
        unsigned voters_after = voters - (v.m.role == RAMPART_RAFT_MEMBER_VOTER ? 1 : 0);
        if (voters_after == 0 || live_voters < voters_after / 2 + 1) continue;
        store::MembershipRecord r;
        r.leader_ms = static_cast<uint64_t>(audit::now_unix_ms());
        r.body = store::MemberLeave{v.node_id};
        proposing_ = true;
        std::string node_id = v.node_id;
        uint64_t raft_id = v.m.id;
        log::warn("removing a dead member", {{"node_id", node_id},
                                             {"last_contact_ms", static_cast<long long>(v.m.last_contact_ms)},
                                             {"threshold_ms", static_cast<long long>(dead_ms)}});
        store_.write_record(store::encode_membership(r), [this, alive = alive_, node_id, raft_id](
                                                             int status, uint64_t, std::unique_ptr<store::Result>) {
            if (!*alive) return;
            proposing_ = false;
            if (status == 0)
                audit("cluster_member_dead", node_id, raft_id, "removed after cluster.remove_dead_after_ms");
        });
        return;
    }
}

}  // namespace rampart::cluster
