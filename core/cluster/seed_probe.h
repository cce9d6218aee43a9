// The join loop's attempt until the join request exists: checks that a
// seed is a live rampart member. It dials the seed's peer port (mutual TLS
// through the transport plugin, expecting the seed's node id in its
// certificate; plain TCP with allow_insecure_peers), opens the "http"
// protocol and asks GET /v1/status/leader.
//   200 naming a leader      -> joined ("a live member; its leader is …");
//   200 with no leader, any other status, a failed dial or connection,
//   or no answer in time     -> retryable, with the reason.
// It never answers "refused": only the join request can be refused.
#pragma once

#include <uv.h>

#include <functional>
#include <list>
#include <memory>
#include <string>

#include "cluster/join_loop.h"
#include "peer/socket_bridge.h"

namespace rampart::cluster {

class SeedProbe {
public:
    // The node id a seed's certificate must name, when the seed does not
    // say (a static seed): "" when unknown.
    using NameFor = std::function<std::string(const std::string& address)>;

    SeedProbe(uv_loop_t* loop, peer::PeerNetwork* network, NameFor name_for);
    ~SeedProbe();
    SeedProbe(const SeedProbe&) = delete;
    SeedProbe& operator=(const SeedProbe&) = delete;

    void probe(const Seed& seed, std::function<void(JoinOutcome)> done);
    // Shutdown: every probe in flight ends (its `done` is not called).
    void close_all();

    static constexpr uint64_t kTimeoutMs = 5000;
    static constexpr size_t kMaxAnswer = size_t{16} * 1024;

private:
    class Probe;
    void freed(Probe* probe);

    uv_loop_t* loop_;
    peer::PeerNetwork* network_;
    NameFor name_for_;
    peer::SocketBridge sockets_;
    std::list<std::unique_ptr<Probe>> probes_;
};

}  // namespace rampart::cluster
