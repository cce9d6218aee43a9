#include "cluster/member_info_announcer.h"

#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include "cluster/membership_client.h"
#include "cluster/raft_adapter.h"
#include "http/exchange.h"
#include "http/router.h"
#include "log.h"
#include "net/transport.h"
#include "store/store.h"

namespace rampart::cluster {
namespace {

constexpr const char* kRoute = "/internal/member-info";

// The index out of the leader's {"index":N}; 0 if absent.
uint64_t index_of(std::string_view body) {
    size_t at = body.find("\"index\":");
    return at == std::string_view::npos ? 0 : strtoull(std::string(body.substr(at + 8)).c_str(), nullptr, 10);
}

}  // namespace

MemberInfoAnnouncer::MemberInfoAnnouncer(uv_loop_t* loop, MembershipClient* client, store::Store& store,
                                         DesiredFn desired, LeaderFn leader)
    : loop_(loop), store_(store), desired_(std::move(desired)), leader_(std::move(leader)), client_(client) {}

MemberInfoAnnouncer::~MemberInfoAnnouncer() { close(); }

void MemberInfoAnnouncer::install_route(http::Router& router) {
    router.add("PUT", kRoute, [this](http::Exchange& ex) {
        // Other nodes only: on the API port the route does not exist.
        if (!ex.from_peer()) return ex.respond(http::Response::error(404, "not_found", "no such route"));
        MemberInfo info;
        std::string error;
        if (!decode_member_info(ex.request().body, &info, &error))
            return ex.respond(http::Response::error(400, "bad_request", error));
        const net::PeerIdentity* cert = ex.client_certificate();
        if (cert != nullptr && !cert->has(info.node_id)) {
            log::warn("member announcement refused: the certificate names another node",
                      {{"node_id", info.node_id}, {"certificate", cert->name()}});
            return ex.respond(http::Response::error(403, "forbidden", "the certificate does not name " + info.node_id));
        }
        if (!store_.is_leader()) return ex.respond(http::Response::error(503, "not_leader", "not the leader"));
        auto shared = ex.shared_from_this();
        store_.write_record(ex.request().body, [shared](int status, uint64_t index, std::unique_ptr<store::Result>) {
            if (status != 0) {
                http::Response r = http::Response::error(503, "not_committed", rampart_raft_status_name(status));
                r.headers.emplace_back("Retry-After", "1");
                return shared->respond(std::move(r));
            }
            shared->respond(http::Response::json(200, "{\"index\":" + std::to_string(index) + "}\n"));
        });
    });
}

void MemberInfoAnnouncer::start() {
    auto timer = std::make_unique<uv_timer_t>();
    uv_timer_init(loop_, timer.get());
    timer->data = this;
    uv_timer_start(timer.get(), cb_tick, 0, kCheckMs);
    timer_ = timer.release();  // freed by its close callback
}

void MemberInfoAnnouncer::close() {
    *alive_ = false;  // an announcement's answer still on its way finds nothing to do
    if (timer_ != nullptr) {
        uv_close(reinterpret_cast<uv_handle_t*>(timer_),
                 [](uv_handle_t* h) { std::unique_ptr<uv_timer_t>(reinterpret_cast<uv_timer_t*>(h)).reset(); });
        timer_ = nullptr;
    }
}

void MemberInfoAnnouncer::cb_tick(uv_timer_t* timer) { static_cast<MemberInfoAnnouncer*>(timer->data)->tick(); }

void MemberInfoAnnouncer::tick() {
    if (in_flight_ || store_.engine() == nullptr || store_.state().applied() < committed_index_) return;
    // A cluster of one has no one to tell (GET /v1/cluster/status shows a
    // node's own advertisement anyway), and its log stays as a single
    // node's always was; a second member makes the node announce.
    if (rampart_raft_members(store_.engine(), nullptr, 0) < 2) return;
    MemberInfo desired = desired_();
    const store::Version state = store_.state().version();
    auto it = state->members.find(desired.node_id);
    if (it != state->members.end() && it->second == desired) return;
    std::string record = encode_member_info(desired);
    if (store_.is_leader()) {
        in_flight_ = true;
        store_.write_record(record, [this](int status, uint64_t index, std::unique_ptr<store::Result>) {
            finished(status == 0, index);
        });
        return;
    }
    auto [leader_id, leader_address] = leader_();
    if (leader_id.empty() || client_ == nullptr) return;
    // One attempt through the peer client (classified and counted like every
    // node-to-node request): the next tick is the retry, against the leader
    // known then. Idempotent by nature: the same record, compared first.
    MembershipClient::Request rq;
    rq.method = "PUT";
    rq.path = kRoute;
    rq.body = std::move(record);
    rq.content_type = "application/octet-stream";
    rq.max_attempts = 1;
    rq.target = [leader = MemberAddress{leader_id, leader_address}] { return std::optional<MemberAddress>(leader); };
    in_flight_ = true;
    std::weak_ptr<bool> alive = alive_;
    client_->send(std::move(rq), [this, alive](const PeerAnswer& a) {
        std::shared_ptr<bool> live = alive.lock();
        if (!live || !*live) return;
        finished(a.status == 200, a.status == 200 ? index_of(a.body) : 0);
    });
}

void MemberInfoAnnouncer::finished(bool ok, uint64_t index) {
    in_flight_ = false;
    if (!ok) return;  // the next tick tries again, perhaps with another leader
    committed_index_ = index;
    log::info("member advertisement committed", {{"index", static_cast<long long>(index)}});
}

}  // namespace rampart::cluster
