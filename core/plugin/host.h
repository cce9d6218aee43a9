// The plugin host: loads the configured plugins, gives each its context
// and the host-services table, and runs their hooks in the documented
// order (include/rampart/plugin.h).
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "plugin/loader.h"
#include "rampart/plugin.h"

namespace rampart::http {
class Exchange;
class Pipeline;
class Router;
class Server;
struct Response;
struct ServerSettings;
}  // namespace rampart::http
namespace rampart::metrics {
class Registry;
}
namespace rampart::net {
class Transport;
}
namespace rampart::peer {
class PeerNetwork;
}
namespace rampart::resilience {
class Supervisor;
}

namespace rampart::plugin {

// Values of one plugin's configuration section: key -> textual values
// (one for scalars, any number for lists), already checked against the
// plugin's schema by validate_section().
using SectionValues = std::map<std::string, std::vector<std::string>, std::less<>>;

// A plugin's section as the config loader passed it through.
using RawSetting = config::Config::PluginSetting;
using RawSection = config::Config::PluginSection;

// Check a raw section against a plugin's schema; fill defaults. Problems
// are appended to *errors as "origin: plugin.key: message".
bool validate_section(const std::string& plugin, const rampart_config_key* schema, const RawSection& raw,
                      SectionValues* out, std::vector<std::string>* errors);

struct LoadedPlugin;

class PluginHost {
public:
    PluginHost(uv_loop_t* loop, metrics::Registry* registry, http::Router* router);
    ~PluginHost();
    PluginHost(const PluginHost&) = delete;
    PluginHost& operator=(const PluginHost&) = delete;

    // Load `names` from `dir` in order. All or nothing: on any failure every
    // plugin loaded so far is finalised and the errors say why.
    bool load(const std::string& dir, const std::vector<std::string>& names,
              const std::map<std::string, RawSection, std::less<>>& sections, std::vector<std::string>* errors);
    // --check-config: open each plugin and validate its section, without
    // calling into it beyond its entry function.
    static bool check(const std::string& dir, const std::vector<std::string>& names,
                      const std::map<std::string, RawSection, std::less<>>& sections, std::vector<std::string>* errors);
    // SIGHUP: re-validate each plugin's section and call its reload. A
    // plugin whose section is invalid or whose reload fails keeps its
    // previous configuration (the errors say which).
    void reload(const std::map<std::string, RawSection, std::less<>>& sections, std::vector<std::string>* errors);
    void unload_all();

    // Hooks, in the documented order.
    bool accept(std::string_view source_ip);
    // Step 3 (rate limits and other admission control); true when a
    // plugin answered.
    bool admission(http::Exchange& ex);
    // Step 4 (idempotency); true when a plugin answered.
    bool dedup(http::Exchange& ex);
    // Step 6: every plugin sees the response about to be sent.
    void response(http::Exchange& ex, const http::Response& resp);
    void auth_failure(std::string_view source_ip, std::string_view reason);
    // A new policy generation: deliver exported data each plugin asked for.
    // `lookup` returns the JSON of policy:key, or false when absent.
    void policy_changed(const std::function<bool(const std::string&, const std::string&, std::string*)>& lookup,
                        std::vector<std::string>* errors);
    // "policy:key" strings every loaded plugin asked for.
    std::vector<std::string> wanted_policy_data() const;

    size_t count() const { return plugins_.size(); }
    std::vector<std::string> names() const;

    // The transport a loaded plugin provides (TLS), or nullptr.
    const net::Transport* transport() const { return transport_.get(); }
    // Where peer_dial and peer_protocol_add go; set before load().
    void set_peer_network(peer::PeerNetwork* network) { peer_network_ = network; }
    peer::PeerNetwork* peer_network() const { return peer_network_; }
    // Plugins' background work (task_register) runs under this supervisor;
    // without one, task_register refuses. Set before load().
    void set_supervisor(resilience::Supervisor* supervisor) { supervisor_ = supervisor; }
    resilience::Supervisor* supervisor() const { return supervisor_; }

    // Plugin listeners (listener_add) use the API's limits and pipeline.
    void set_http_defaults(const http::ServerSettings& settings, http::Pipeline* pipeline);
    // SIGTERM: close the plugin listeners and their connections.
    void close_listeners();
    // Bind a listener for `plugin`'s routes (listener_add).
    int add_listener(LoadedPlugin& plugin, const std::string& address, std::string* error);

    // Used by the C service functions.
    uv_loop_t* loop() const { return loop_; }
    metrics::Registry* registry() const { return registry_; }
    http::Router* router() const { return router_; }

private:
    bool load_one(const std::string& dir, const std::string& name, const RawSection* section,
                  std::vector<std::string>* errors);
    void finalize(LoadedPlugin& plugin);
    bool adopt_transport(LoadedPlugin& plugin, std::vector<std::string>* errors);
    void release_owned(LoadedPlugin& plugin);

    uv_loop_t* loop_;
    metrics::Registry* registry_;
    http::Router* router_;
    std::vector<std::unique_ptr<LoadedPlugin>> plugins_;
    std::unique_ptr<net::Transport> transport_;
    const LoadedPlugin* transport_owner_ = nullptr;
    peer::PeerNetwork* peer_network_ = nullptr;
    resilience::Supervisor* supervisor_ = nullptr;
    std::unique_ptr<http::ServerSettings> http_settings_;
    http::Pipeline* http_pipeline_ = nullptr;
    // Listeners of unloaded plugins: their handles close on the loop, so
    // they are freed only with the host.
    std::vector<std::unique_ptr<http::Server>> retired_servers_;
    std::vector<std::unique_ptr<http::Router>> retired_routers_;
};

}  // namespace rampart::plugin
