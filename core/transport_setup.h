// The node's transport material: the API's HTTPS context (api.tls), and
// the peer port's settings (etc/peers.yml, etc/pinned_certs.json) with its
// mutual-TLS context. Built at start (any problem: exit 78) and again on
// SIGHUP, where a bad new set is refused and the running one kept: new
// handshakes use new material, open connections keep theirs.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "net/transport.h"
#include "peer/peers_file.h"

namespace rampart {

class TransportSetup {
public:
    explicit TransportSetup(uv_loop_t* loop) : loop_(loop) {}
    ~TransportSetup();
    TransportSetup(const TransportSetup&) = delete;
    TransportSetup& operator=(const TransportSetup&) = delete;

    // `transport` is the loaded transport plugin, or nullptr.
    bool start(const config::Config& cfg, const net::Transport* transport, std::vector<std::string>* errors);
    bool reload(const config::Config& cfg, std::vector<std::string>* errors);
    void stop();

    const std::shared_ptr<net::TransportContext>& api_context() const { return api_; }
    const std::shared_ptr<net::TransportContext>& peer_context() const { return peer_; }
    // True when a peers file was found: the node opens its peer port.
    bool peer_port_enabled() const { return peers_loaded_; }
    const peer::PeersFile& peers() const { return peers_; }

private:
    struct Built {
        std::shared_ptr<net::TransportContext> api, peer;
        peer::PeersFile peers;
        bool peers_loaded = false;
    };
    bool build(const config::Config& cfg, Built* out, std::vector<std::string>* errors) const;
    bool load_peers_file(const config::Config& cfg, Built* out, std::vector<std::string>* errors) const;
    void apply(Built built);
    void update_insecure_warning();
    static void cb_insecure_warning(uv_timer_t* timer);

    uv_loop_t* loop_;
    const net::Transport* transport_ = nullptr;
    std::shared_ptr<net::TransportContext> api_, peer_;
    peer::PeersFile peers_;
    bool peers_loaded_ = false;
    uv_timer_t* warning_timer_ = nullptr;
    uint64_t warning_ms_ = 60000;
};

}  // namespace rampart
