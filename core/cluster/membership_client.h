// One HTTP request to another node over the peer port ("http" protocol:
// mutual TLS, then plain HTTP/1.1, one request per connection), for the
// membership calls: a joiner asking a seed, a follower relaying a join,
// leave or transfer to the leader. Forwarded client requests use the
// pooled cluster/forwarder.h instead; these calls are rare and one-shot.
//
// The answer is read up to its Content-Length, bounded in size and time,
// and the connection closed; a failure before a complete answer is status
// 0 with the reason.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "peer/socket_bridge.h"

namespace rampart::cluster {

struct PeerAnswer {
    int status = 0;     // HTTP status; 0 = no answer (see error)
    std::string body;   // the answer's body
    std::string error;  // why there is no answer
};

class MembershipClient {
public:
    using Done = std::function<void(PeerAnswer)>;
    using Headers = std::vector<std::pair<std::string, std::string>>;

    MembershipClient(uv_loop_t* loop, peer::PeerNetwork* network);
    ~MembershipClient();
    MembershipClient(const MembershipClient&) = delete;
    MembershipClient& operator=(const MembershipClient&) = delete;

    // POST `body` (JSON) to `path` on the node `node_id` at `address`
    // (its certificate must name node_id). `done` runs once, later, unless
    // close_all() ran first.
    void post(const std::string& address, const std::string& node_id, const std::string& path, const std::string& body,
              const Headers& headers, Done done);
    void close_all();

    static constexpr uint64_t kTimeoutMs = 10000;
    static constexpr size_t kMaxAnswer = size_t{1} << 20;

private:
    class Call;
    void finished(Call* call);

    uv_loop_t* loop_;
    peer::SocketBridge sockets_;
    std::vector<std::unique_ptr<Call>> calls_;
    bool closing_ = false;
};

}  // namespace rampart::cluster
