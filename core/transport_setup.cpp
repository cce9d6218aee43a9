#include "transport_setup.h"

#include <unistd.h>

#include <memory>

#include "log.h"

namespace rampart {
namespace {

// A file at its default path may be absent (the example config names the
// defaults explicitly, so "set in the file" says nothing); a file the
// operator pointed elsewhere must exist.
bool optional_file_absent(const std::string& path, std::string_view key) {
    if (access(path.c_str(), F_OK) == 0) return false;
    const config::KeySpec* spec = config::find_key(key);
    return spec != nullptr && path == spec->default_value;
}

net::TransportSettings api_settings(const config::Config& cfg) {
    net::TransportSettings s;
    s.purpose = "api";
    s.cert_file = cfg.api.tls.cert;
    s.key_file = cfg.api.tls.key;
    s.ca_file = cfg.api.tls.ca;
    s.require_client_cert = cfg.api.tls.require_client_cert;
    return s;
}

// Peers always authenticate both ways; pins apply when the file exists.
net::TransportSettings peer_settings(const config::Config& cfg, const peer::PeerTls& tls) {
    net::TransportSettings s;
    s.purpose = "peer";
    s.cert_file = tls.server_cert;
    s.key_file = tls.server_key;
    s.ca_file = tls.ca_cert;
    s.client_cert_file = tls.client_cert;
    s.client_key_file = tls.client_key;
    s.require_client_cert = true;
    if (!optional_file_absent(cfg.peer.pins_file, "peer.pins_file")) s.pins_file = cfg.peer.pins_file;
    return s;
}

// libuv frees nothing: the timer is released in its close callback.
void close_and_free_timer(uv_handle_t* handle) {
    std::unique_ptr<uv_timer_t> owned(reinterpret_cast<uv_timer_t*>(handle));
}

void warn_insecure() {
    log::warn(
        "INSECURE: allow_insecure_peers is true: peer traffic is plain TCP, unauthenticated and unencrypted; "
        "anyone who reaches the peer port can join the cluster's traffic");
}

}  // namespace

TransportSetup::~TransportSetup() { stop(); }

bool TransportSetup::start(const config::Config& cfg, const net::Transport* transport,
                           std::vector<std::string>* errors) {
    transport_ = transport;
    Built built;
    if (!build(cfg, &built, errors)) return false;
    warning_ms_ = static_cast<uint64_t>(cfg.peer.insecure_warning_ms);
    apply(std::move(built));
    return true;
}

bool TransportSetup::reload(const config::Config& cfg, std::vector<std::string>* errors) {
    Built built;
    if (!build(cfg, &built, errors)) return false;
    apply(std::move(built));
    log::info("transport material reloaded",
              {{"api_tls", api_ != nullptr}, {"peer_tls", peer_ != nullptr}, {"peers", peers_.peers.size()}});
    return true;
}

void TransportSetup::stop() {
    api_.reset();
    peer_.reset();
    if (warning_timer_ != nullptr) {
        uv_close(reinterpret_cast<uv_handle_t*>(warning_timer_), close_and_free_timer);
        warning_timer_ = nullptr;
    }
}

bool TransportSetup::build(const config::Config& cfg, Built* out, std::vector<std::string>* errors) const {
    size_t before = errors->size();
    if (!cfg.api.tls.cert.empty()) {
        if (transport_ == nullptr) {
            errors->push_back(
                "api.tls.cert is set but no transport plugin is loaded (add transport_tls to plugins.load)");
        } else {
            std::string error;
            out->api = transport_->build(api_settings(cfg), &error);
            if (!out->api) errors->push_back(error);
        }
    }
    if (load_peers_file(cfg, out, errors) && out->peers_loaded && !out->peers.allow_insecure_peers) {
        if (transport_ == nullptr) {
            errors->push_back(cfg.peer.peers_file +
                              ": allow_insecure_peers is false but no transport plugin is loaded "
                              "(add transport_tls to plugins.load)");
        } else {
            std::string error;
            out->peer = transport_->build(peer_settings(cfg, out->peers.tls), &error);
            if (!out->peer) errors->push_back(error);
        }
    }
    return errors->size() == before;
}

// The default peers file may be absent (a standalone node without a peer
// port); a configured one must exist.
bool TransportSetup::load_peers_file(const config::Config& cfg, Built* out, std::vector<std::string>* errors) const {
    if (optional_file_absent(cfg.peer.peers_file, "peer.peers_file")) {
        log::info("no peers file: a standalone node without a peer port", {{"peers_file", cfg.peer.peers_file}});
        return true;
    }
    peer::PeersLoad loaded = peer::load_peers(cfg.peer.peers_file);
    for (const auto& w : loaded.warnings) log::warn("peers file", {{"problem", w}});
    if (!loaded.ok()) {
        errors->insert(errors->end(), loaded.errors.begin(), loaded.errors.end());
        return false;
    }
    out->peers = std::move(loaded.file);
    out->peers_loaded = true;
    return true;
}

void TransportSetup::apply(Built built) {
    api_ = std::move(built.api);
    peer_ = std::move(built.peer);
    peers_ = std::move(built.peers);
    peers_loaded_ = built.peers_loaded;
    update_insecure_warning();
}

// Insecure peers: a loud warning now and every minute while it lasts.
void TransportSetup::update_insecure_warning() {
    bool insecure = peers_loaded_ && peers_.allow_insecure_peers;
    if (insecure && warning_timer_ == nullptr) {
        warn_insecure();
        warning_timer_ = std::make_unique<uv_timer_t>().release();  // freed by close_and_free_timer
        uv_timer_init(loop_, warning_timer_);
        uv_timer_start(warning_timer_, cb_insecure_warning, warning_ms_, warning_ms_);
        uv_unref(reinterpret_cast<uv_handle_t*>(warning_timer_));
    } else if (!insecure && warning_timer_ != nullptr) {
        uv_close(reinterpret_cast<uv_handle_t*>(warning_timer_), close_and_free_timer);
        warning_timer_ = nullptr;
    }
}

void TransportSetup::cb_insecure_warning(uv_timer_t*) { warn_insecure(); }

}  // namespace rampart
