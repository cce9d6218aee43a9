#include "daemon.h"

#include <getopt.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>

#include "audit/audit_log.h"
#include "auth/authenticator.h"
#include "auth/token_setup.h"
#include "cluster/discovery.h"
#include "cluster/forwarder.h"
#include "cluster/join_loop.h"
#include "cluster/join_task.h"
#include "cluster/joiner.h"
#include "cluster/member_info_announcer.h"
#include "cluster/membership_address.h"
#include "cluster/membership_client.h"
#include "cluster/membership_manager.h"
#include "cluster/membership_routes.h"
#include "cluster/not_applied.h"
#include "cluster/raft_bridge.h"
#include "cluster/redirect.h"
#include "cluster/snapshot_task.h"
#include "cluster/status.h"
#include "cluster/status_routes.h"
#include "cluster/version_gate.h"
#include "config/config.h"
#include "http/exchange.h"
#include "http/router.h"
#include "http/server.h"
#include "log.h"
#include "metrics/registry.h"
#include "net/address.h"
#include "peer/peer_network.h"
#include "plugin/host.h"
#include "policy/policy_host.h"
#include "policy/shipped.h"
#include "rampart_version.h"
#include "reload.h"
#include "request_pipeline.h"
#include "resilience/breaker_routes.h"
#include "resilience/clock.h"
#include "resilience/peer_retry.h"
#include "resilience/plugin_failure_gate.h"
#include "resilience/recovery_hooks.h"
#include "resilience/supervisor.h"
#include "state/node_state.h"
#include "store/acl_routes.h"
#include "store/disk_watchdog.h"
#include "store/kv_routes.h"
#include "store/service_routes.h"
#include "store/snapshot_file.h"
#include "store/snapshot_routes.h"
#include "store/store.h"
#include "transport_setup.h"
#include "util/file_io.h"
#include "util/sha256.h"

namespace rampart {
namespace {

void print_diagnostics(const config::LoadResult& result) {
    for (const auto& d : result.errors) fprintf(stderr, "rampartd: config error: %s\n", d.to_string().c_str());
    for (const auto& d : result.warnings) fprintf(stderr, "rampartd: config warning: %s\n", d.to_string().c_str());
}

log::Settings log_settings_for(const config::Config& cfg) {
    log::Settings s;
    log::parse_level(cfg.log.level, &s.level);
    log::parse_format(cfg.log.format, &s.format);
    s.sampling = cfg.log.sampling;
    s.node_id = cfg.node.id;
    return s;
}

http::ServerSettings server_settings_for(const config::Config& cfg) {
    http::ServerSettings s;
    s.limits.max_body_bytes = static_cast<size_t>(cfg.api.max_body_bytes);
    s.limits.max_header_bytes = static_cast<size_t>(cfg.api.max_header_bytes);
    s.limits.max_uri_bytes = static_cast<size_t>(cfg.api.max_uri_bytes);
    s.request_timeout_ms = static_cast<uint64_t>(cfg.api.request_timeout_ms);
    s.idle_timeout_ms = static_cast<uint64_t>(cfg.api.idle_timeout_ms);
    s.max_connections = static_cast<size_t>(cfg.api.max_connections);
    s.max_pipelined = static_cast<size_t>(cfg.api.max_pipelined);
    // KV values up to 512 KiB (a txn carries them base64-encoded).
    s.limits.path_body_limits = {{{"/v1/kv/", store::Limits::kValue}, {"/v1/txn", store::Limits::kValue * 3 / 2}}};
    // A snapshot restore carries the whole state.
    s.limits.path_body_limits[2] = {
        "/v1/snapshot",
        static_cast<size_t>(store::snapshot_size_limit(static_cast<uint64_t>(cfg.cluster.max_store_bytes)) +
                            store::kSnapshotFileHeader)};
    return s;
}

// The soft limit of open files is often 1024 while the hard one is far
// higher; a daemon holding many connections wants all it may have.
// Returns the soft limit now in force.
rlim_t raise_open_files_limit() {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return RLIM_INFINITY;
    if (rl.rlim_cur >= rl.rlim_max) return rl.rlim_cur;
    rlim_t before = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return before;
    log::info("raised open files limit",
              {{"from", static_cast<long long>(before)}, {"to", static_cast<long long>(rl.rlim_cur)}});
    return rl.rlim_cur;
}

// Connections past the descriptor limit would be dropped by the kernel
// without the clean 503: keep max_connections below it, with room for the
// daemon's own files (logs, data, plugins, peers).
constexpr int64_t kReservedDescriptors = 64;

void clamp_connections(config::Config& cfg, rlim_t open_files) {
    if (open_files == RLIM_INFINITY) return;
    int64_t room = static_cast<int64_t>(open_files) - kReservedDescriptors;
    if (room < 1 || cfg.api.max_connections <= room) return;
    log::warn("api.max_connections exceeds what the open-files limit allows; lowering it",
              {{"configured", static_cast<long long>(cfg.api.max_connections)},
               {"effective", static_cast<long long>(room)},
               {"open_files_limit", static_cast<long long>(open_files)}});
    cfg.api.max_connections = room;
}

bool make_dirs(const std::string& path, std::string* error) {
    std::string partial;
    size_t pos = 0;
    while (pos != std::string::npos) {
        pos = path.find('/', pos + 1);
        partial = path.substr(0, pos);
        if (partial.empty()) continue;
        if (mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
            *error = partial + ": " + strerror(errno);
            return false;
        }
    }
    return true;
}

// --dev: one node on loopback, data under ./var/dev.
bool apply_dev_mode(config::Config& cfg, std::string* error) {
    cfg.node.data_dir = "var/dev";
    if (cfg.node.pid_file.empty()) cfg.node.pid_file = "var/dev/rampartd.pid";
    net::Address addr;
    std::string why;
    if (!net::parse_address(cfg.api.listen, &addr, &why) || !net::is_loopback(addr)) {
        *error = "--dev listens on loopback only, but api.listen is " + cfg.api.listen;
        return false;
    }
    return true;
}

// The configuration for this start or reload: the file (or, for --dev
// without a file, the defaults) plus the environment, then --dev's rules.
// Start-up and SIGHUP both come here, so a reload reads what start read.
config::LoadResult load_config(const Options& options) {
    auto env = config::process_environment();
    bool dev_without_file = options.dev && !options.config_path_given && access(options.config_path.c_str(), F_OK) != 0;
    config::LoadResult loaded =
        dev_without_file ? config::load_defaults(env) : config::load_file(options.config_path, env);
    std::string dev_error;
    if (loaded.ok() && options.dev && !apply_dev_mode(*loaded.config, &dev_error)) {
        loaded.errors.push_back({"--dev", 0, 0, "api.listen", dev_error});
        loaded.config.reset();
    }
    return loaded;
}

// Plugin sections from the config; the core's `ratelimit` keys (which the
// brief fixes, with their RAMPART_RATELIMIT_* names) are the ratelimit
// plugin's section.
std::map<std::string, plugin::RawSection, std::less<>> plugin_sections_for(const config::Config& cfg) {
    auto sections = cfg.plugin_sections;
    plugin::RawSection& rl = sections["ratelimit"];
    for (const config::KeySpec& spec : config::schema()) {
        std::string_view path = spec.path;
        // Only what the file or environment set: the rest is the policy's.
        if (path.substr(0, 10) != "ratelimit." || !cfg.is_explicit(path)) continue;
        plugin::RawSetting setting;
        config::Value value = config::get_value(cfg, spec);
        if (const auto* list = std::get_if<std::vector<std::string>>(&value)) {
            setting.values = *list;
            setting.is_list = true;
        } else {
            setting.values.push_back(config::format_value(cfg, spec));
        }
        setting.origin = (cfg.source_file.empty() ? std::string("config") : cfg.source_file) + ": " + std::string(path);
        rl[std::string(path.substr(10))] = std::move(setting);
    }
    return sections;
}

// The policies directory to load, or "" to run the built-in defaults (the
// default directory is absent: a node started outside a source tree).
// An explicitly configured directory that does not exist is an error.
bool policy_dir_for(const config::Config& cfg, std::string* dir, std::string* error) {
    *dir = cfg.policies.dir;
    if (access(dir->c_str(), F_OK) == 0) return true;
    if (cfg.is_explicit("policies.dir")) {
        *error = "policies.dir " + *dir + " does not exist";
        return false;
    }
    dir->clear();
    return true;
}

// Exported policy data for plugins, as JSON. Without a ratelimit policy the
// seed's rules (the same numbers as policies/ratelimit.lua) stand in.
bool policy_data_json(const policy::Generation& g, const std::string& name, const std::string& key, std::string* json) {
    *json = g.rules_json(name, key);
    if (*json != "null") return true;
    if (name == "ratelimit" && key == "rules") {
        *json = policy::ratelimit_rules_json(g);
        return true;
    }
    return false;
}

class Daemon {
public:
    Daemon(const Options& options, std::unique_ptr<config::Config> cfg) : options_(options), config_(std::move(cfg)) {}

    int run();

private:
    void install_routes();
    void install_signals();
    bool reload();
    bool reload_config();
    void begin_shutdown(int signum);
    void finish();
    bool write_pid_file();
    bool start_node_state();
    bool start_plugins();
    bool start_transports();
    void start_raft_bridge(store::StoreSettings& settings);
    void start_forwarding();
    bool before_handler(http::Exchange& ex);
    bool start_membership(std::string* error);
    bool join_cluster(const std::string& token, const std::vector<cluster::MemberAddress>& seeds, std::string* error);
    void stop_membership();
    bool forward_to_leader(http::Exchange& ex);
    void start_member_info();
    void start_supervisor();
    void breaker_changed(const std::string& task, bool open);
    bool disk_full_transfers();
    bool serve_stale_without_leader(http::Exchange& ex);
    double pin_mismatch_hold_s(const std::string& node_id, bool just_failed);
    bool start_peer_port();
    void start_join_loop();
    void run_join_loop();
    void make_join_loop(const std::vector<cluster::MemberAddress>& given);
    std::string peers_yml_name(const std::string& address) const;
    void apply_transports();
    bool start_policies();
    bool deliver_policy_data();
    bool reload_policies();
    void register_core_metrics();

    static void cb_signal(uv_signal_t* handle, int signum);
    static void cb_drain_deadline(uv_timer_t* timer);

    Options options_;
    std::unique_ptr<config::Config> config_;
    uv_loop_t loop_{};
    http::Router router_;
    // Before plugins_: the plugins' tasks are taken off the supervisor when
    // they unload, so it must outlive them.
    std::unique_ptr<resilience::LoopClock> clock_;
    std::unique_ptr<resilience::PolicyRecoveryRules> recovery_rules_;
    std::unique_ptr<resilience::Supervisor> supervisor_;
    std::unique_ptr<resilience::PluginFailureGate> plugin_failure_gate_;
    metrics::Metric* recovery_decisions_ = nullptr;
    std::unique_ptr<http::Server> server_;
    metrics::Registry registry_;
    auth::Authenticator auth_;
    std::unique_ptr<plugin::PluginHost> plugins_;
    std::unique_ptr<RequestPipeline> pipeline_;
    std::unique_ptr<peer::PeerNetwork> peer_network_;
    std::unique_ptr<TransportSetup> transports_;
    std::unique_ptr<cluster::RaftBridge> raft_bridge_;
    // Every request to another node (forwarding, membership relays, joins,
    // announcements) goes through this one loop: one budget and breaker per peer.
    std::unique_ptr<resilience::PeerRetrier> peer_retrier_;
    std::unique_ptr<cluster::Forwarder> forwarder_;
    std::unique_ptr<cluster::MemberInfoAnnouncer> announcer_;
    // Joining, leaving, promotion (issue 6): see start_membership().
    cluster::RaftIdentity raft_identity_;
    cluster::MembershipRoutes membership_routes_;
    std::unique_ptr<cluster::MembershipClient> membership_client_;
    std::unique_ptr<cluster::MembershipManager> membership_;
    std::unique_ptr<cluster::JoinAttempt> join_attempt_;  // the join loop's attempt: POST /v1/cluster/join
    policy::PolicyHost policies_;
    std::unique_ptr<store::Store> store_;
    std::unique_ptr<cluster::SnapshotTask> snapshot_task_;    // closed before the store's engine
    std::unique_ptr<cluster::ClusterStatus> cluster_status_;  // after store_: holds a reference to it
    std::unique_ptr<cluster::Discovery> discovery_;
    std::unique_ptr<cluster::JoinLoop> join_loop_;  // only while this node joins (or failed to)
    std::unique_ptr<cluster::JoinTask> join_task_;  // the loop under the supervisor (before join_loop_ goes)
    bool join_started_ = false;                     // start_join_loop() ran: a new join loop starts at once
    std::unique_ptr<audit::AuditLog> audit_;        // data_dir/audit.jsonl
    metrics::Metric* migrations_ = nullptr;
    std::unique_ptr<store::DiskWatchdog> disk_watchdog_;
    metrics::Metric* reload_total_ = nullptr;
    metrics::Metric* policy_generation_ = nullptr;
    metrics::Metric* policy_errors_ = nullptr;
    uv_signal_t sighup_{}, sigterm_{}, sigint_{};
    uv_timer_t drain_timer_{};
    bool shutting_down_ = false;
    int exit_status_ = kExitOk;
    rlim_t open_files_ = RLIM_INFINITY;
};

void Daemon::install_routes() {
    router_.add(
        "GET", "/health", [](http::Exchange& ex) { ex.respond(http::Response::json(200, "{\"status\":\"ok\"}\n")); },
        /*high_volume=*/true);
    router_.add(
        "GET", "/ready",
        [this](http::Exchange& ex) {
            // Until the store exists, ready means: configuration loaded and
            // listening, and not shutting down.
            if (shutting_down_) {
                http::Response r = http::Response::error(503, "shutting_down", "the node is shutting down");
                r.headers.emplace_back("Retry-After", "5");
                ex.respond(std::move(r));
                return;
            }
            bool joining = join_loop_ ? join_loop_->state() != cluster::JoinLoop::State::Joined : raft_identity_.join;
            if (joining) {
                bool refused = join_loop_ && join_loop_->state() == cluster::JoinLoop::State::Refused;
                http::Response r =
                    refused
                        ? http::Response::error(503, "join_refused", "joining the cluster was refused (see the log)")
                        : http::Response::error(503, "joining",
                                                join_loop_
                                                    ? "the node is still joining its cluster"
                                                    : "the node waits for a join token (rampartctl cluster join)");
                r.headers.emplace_back("Retry-After", "1");
                return ex.respond(std::move(r));
            }
            if (!store_ || !store_->has_leader()) {
                http::Response r = http::Response::error(503, "no_leader", "the store has no leader yet");
                r.headers.emplace_back("Retry-After", "1");
                return ex.respond(std::move(r));
            }
            if (plugin_failure_gate_ && plugin_failure_gate_->closed()) {
                http::Response r =
                    http::Response::error(503, "plugin_failed", "failed closed: " + plugin_failure_gate_->holders());
                r.headers.emplace_back("Retry-After", "10");
                return ex.respond(std::move(r));
            }
            if (store_->writes_refused()) {
                http::Response r =
                    http::Response::error(503, "storage_full", "free disk space is below node.min_free_bytes");
                r.headers.emplace_back("Retry-After", "10");
                return ex.respond(std::move(r));
            }
            ex.respond(http::Response::json(200, "{\"status\":\"ready\"}\n"));
        },
        /*high_volume=*/true);
    // Needs an admin token (every /v1/admin/ route does).
    router_.add("POST", "/v1/admin/reload", [this](http::Exchange& ex) {
        if (reload()) {
            ex.respond(http::Response::json(200, "{\"reloaded\":true,\"policy_generation\":" +
                                                     std::to_string(policies_.generation_number()) + "}\n"));
        } else {
            ex.respond(http::Response::error(
                422, "reload_failed", "reload refused; the running configuration and policies stay (see the log)"));
        }
    });
}

void Daemon::cb_signal(uv_signal_t* handle, int signum) {
    auto* self = static_cast<Daemon*>(handle->data);
    if (signum == SIGHUP) {
        self->reload();
    } else {
        self->begin_shutdown(signum);
    }
}

void Daemon::install_signals() {
    sighup_.data = sigterm_.data = sigint_.data = this;
    uv_signal_init(&loop_, &sighup_);
    uv_signal_init(&loop_, &sigterm_);
    uv_signal_init(&loop_, &sigint_);
    uv_signal_start(&sighup_, cb_signal, SIGHUP);
    uv_signal_start(&sigterm_, cb_signal, SIGTERM);
    uv_signal_start(&sigint_, cb_signal, SIGINT);
}

// SIGHUP and POST /v1/admin/reload: the configuration, then the policies
// (policies.dir may have changed); each keeps its running version on error.
bool Daemon::reload() {
    if (shutting_down_) return false;
    bool config_ok = reload_config();
    bool policies_ok = reload_policies();
    bool ok = config_ok && policies_ok;
    reload_total_->add({ok ? "success" : "failure"}, 1);
    return ok;
}

bool Daemon::reload_config() {
    log::info("reloading configuration", {{"file", options_.config_path}});
    config::LoadResult loaded = load_config(options_);
    if (!loaded.ok()) {
        for (const auto& d : loaded.errors) log::error("config reload: invalid", {{"problem", d.to_string()}});
        log::error("config reload failed; keeping the running configuration", {{"errors", loaded.errors.size()}});
        return false;
    }
    ReloadPlan plan = plan_reload(*config_, *loaded.config);
    if (!plan.needs_restart.empty()) {
        log::warn("config reload: these settings change only at restart", {{"keys", join(plan.needs_restart)}});
    }
    // Logged under the old log settings, so raising the level to warn
    // still leaves a record of the reload that did it.
    log::info("configuration reloaded", {{"changed", join(plan.applied)}});
    config_ = std::make_unique<config::Config>(std::move(plan.next));
    if (membership_)
        membership_->set_policy(config_->cluster.auto_promote,
                                static_cast<uint64_t>(config_->cluster.remove_dead_after_ms));
    clamp_connections(*config_, open_files_);
    log::configure(log_settings_for(*config_));
    server_->apply_settings(server_settings_for(*config_));
    plugins_->set_http_defaults(server_settings_for(*config_), pipeline_.get());
    std::vector<std::string> plugin_errors;
    plugins_->reload(plugin_sections_for(*config_), &plugin_errors);
    for (const auto& e : plugin_errors) log::error("plugin reload", {{"problem", e}});
    std::vector<std::string> transport_errors;
    if (transports_->reload(*config_, &transport_errors)) {
        apply_transports();
    } else {
        for (const auto& e : transport_errors)
            log::error("TLS reload refused; keeping the running material", {{"problem", e}});
    }
    return plugin_errors.empty() && transport_errors.empty();
}

void Daemon::begin_shutdown(int signum) {
    if (shutting_down_) {
        log::warn("second signal: closing all connections now", {{"signal", signum}});
        server_->close_all();
        return;
    }
    shutting_down_ = true;
    if (supervisor_) supervisor_->stop_all();
    uint64_t deadline = static_cast<uint64_t>(config_->api.shutdown_timeout_ms);
    log::info("shutting down: draining connections", {{"signal", signum},
                                                      {"open_connections", server_->connection_count()},
                                                      {"deadline_ms", static_cast<long long>(deadline)}});
    if (forwarder_) forwarder_->close_all();
    if (join_loop_) join_loop_->stop();
    if (discovery_) discovery_->close();
    if (announcer_) announcer_->close();
    stop_membership();
    if (peer_network_) peer_network_->shutdown();
    if (store_) store_->release_watchers();
    plugins_->close_listeners();
    uv_timer_init(&loop_, &drain_timer_);
    drain_timer_.data = this;
    uv_timer_start(&drain_timer_, cb_drain_deadline, deadline, 0);
    server_->begin_drain([this] { finish(); });
}

void Daemon::cb_drain_deadline(uv_timer_t* timer) {
    auto* self = static_cast<Daemon*>(timer->data);
    log::warn("drain deadline passed: closing remaining connections",
              {{"open_connections", self->server_->connection_count()}});
    self->server_->close_all();
}

// Everything is drained: close our own handles so uv_run returns.
void Daemon::finish() {
    for (uv_signal_t* s : {&sighup_, &sigterm_, &sigint_}) {
        uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
    if (disk_watchdog_) disk_watchdog_->close();
    if (cluster_status_) cluster_status_->close();
    if (snapshot_task_) snapshot_task_->close();
    if (store_) store_->close(nullptr);  // the loop runs on until the engine has closed
}

bool Daemon::start_plugins() {
    plugins_ = std::make_unique<plugin::PluginHost>(&loop_, &registry_, &router_);
    plugins_->set_supervisor(supervisor_.get());
    // Plugins register peer protocols during init.
    peer_network_ = std::make_unique<peer::PeerNetwork>(&loop_);
    plugins_->set_peer_network(peer_network_.get());
    pipeline_ = std::make_unique<RequestPipeline>(&auth_, plugins_.get());
    plugins_->set_http_defaults(server_settings_for(*config_), pipeline_.get());
    std::vector<std::string> errors;
    if (!plugins_->load(config_->plugins.dir, config_->plugins.load, plugin_sections_for(*config_), &errors)) {
        for (const auto& e : errors) log::error("plugin refused", {{"problem", e}});
        return false;
    }
    return true;
}

bool Daemon::start_transports() {
    transports_ = std::make_unique<TransportSetup>(&loop_);
    std::vector<std::string> errors;
    if (!transports_->start(*config_, plugins_->transport(), &errors)) {
        for (const auto& e : errors) log::error("TLS configuration refused", {{"problem", e}});
        return false;
    }
    return true;
}

// The cluster's members: this node and every peer in etc/peers.yml.
std::vector<cluster::Member> cluster_members(const config::Config& cfg, const peer::PeersFile& peers,
                                             uint64_t self_id) {
    std::vector<cluster::Member> members;
    members.push_back({cfg.node.id, self_id, cfg.peer.listen});
    for (const peer::PeerEntry& p : peers.peers) {
        if (p.node_id == cfg.node.id) continue;
        members.push_back({p.node_id, cluster::raft_id_for(p.node_id), p.endpoint()});
    }
    return members;
}

// With a peer port, the engine talks to the other members over it; a
// pristine node bootstraps with all of them.
void Daemon::start_raft_bridge(store::StoreSettings& settings) {
    settings.raft_id = cluster::raft_id_for(config_->node.id);
    if (!transports_->peer_port_enabled()) return;
    settings.raft_id = raft_identity_.raft_id;
    settings.join = raft_identity_.join;
    // The engine's configuration carries each member's node id (cluster/membership_address.h).
    settings.address = cluster::member_address(config_->node.id, config_->peer.listen);
    std::vector<cluster::Member> members = cluster_members(*config_, transports_->peers(), settings.raft_id);
    for (const cluster::Member& m : members)
        settings.bootstrap.emplace_back(m.raft_id, cluster::member_address(m.node_id, m.peer_address));
    raft_bridge_ = std::make_unique<cluster::RaftBridge>(&loop_, peer_network_.get(), std::move(members));
    raft_bridge_->set_pin_hold(
        [this](const std::string& node_id, bool just_failed) { return pin_mismatch_hold_s(node_id, just_failed); });
    // A peer's dials wait at most one election timeout, whatever recovery.lua says.
    raft_bridge_->supervise_dials(*supervisor_, static_cast<uint64_t>(config_->cluster.election_timeout_ms));
    raft_bridge_->install();
    settings.transport = raft_bridge_->transport();
}

// Followers hand leader-only requests to the leader over the peer port;
// every node serves the requests forwarded to it with its own server.
void Daemon::start_forwarding() {
    pipeline_->set_forward([this](http::Exchange& ex) { return before_handler(ex); });
    if (!raft_bridge_) return;
    // Retries look the leader up again: it may have changed meanwhile.
    auto lookup = [this]() -> std::optional<cluster::Forwarder::Leader> {
        if (store_->is_leader()) return cluster::Forwarder::Leader{config_->node.id, ""};
        auto [leader_id, leader_address] = store_->leader();
        std::optional<cluster::Member> leader =
            leader_id != 0 ? raft_bridge_->member_by_id(leader_id) : std::optional<cluster::Member>();
        if (!leader) return std::nullopt;
        return cluster::Forwarder::Leader{leader->node_id, leader_address};
    };
    // Unrouted requests are forwarded too (for the leader's 404): answer it here.
    auto serve_here = [](http::Exchange& ex) {
        if (ex.route() != nullptr) {
            http::run_handler(*ex.route(), ex);
        } else {
            ex.respond(http::Response::error(404, "not_found", "no such route"));
        }
    };
    forwarder_ = std::make_unique<cluster::Forwarder>(&loop_, peer_network_.get(), config_->node.id, *peer_retrier_,
                                                      std::move(lookup), std::move(serve_here));
    forwarder_->install(server_.get());
}

// The last step before a handler: a node that failed closed refuses; the
// breakers are this node's own (never forwarded); the rest may go to the
// leader.
bool Daemon::before_handler(http::Exchange& ex) {
    if (plugin_failure_gate_->refuse(ex)) return true;
    if (ex.request().path.rfind(resilience::kBreakersPath, 0) == 0) return false;
    return forwarder_ && forward_to_leader(ex);
}

// Every long-lived task that can fail runs under the supervisor, which
// restarts it as recovery.lua says (docs/operations.md, "Supervised tasks").
void Daemon::start_supervisor() {
    clock_ = std::make_unique<resilience::LoopClock>(&loop_);
    recovery_rules_ = std::make_unique<resilience::PolicyRecoveryRules>(policies_);
    supervisor_ = std::make_unique<resilience::Supervisor>(*clock_, *recovery_rules_, &registry_);
    plugin_failure_gate_ = std::make_unique<resilience::PluginFailureGate>(policies_, &registry_);
    recovery_decisions_ = resilience::recovery_decisions_metric(&registry_);
    supervisor_->set_breaker_listener([this](const std::string& task, bool open) { breaker_changed(task, open); });
    resilience::install_breaker_routes(router_, *supervisor_);
}

// recovery.on_disk_full: hand leadership over (the default), or stay.
bool Daemon::disk_full_transfers() {
    resilience::DiskFull d = resilience::on_disk_full(*policies_.current());
    recovery_decisions_->add({"on_disk_full", d == resilience::DiskFull::Stay ? "stay" : "transfer"}, 1);
    return d == resilience::DiskFull::Transfer;
}

// recovery.on_quorum_loss, for a read that needs the leader while the
// cluster has none: refuse (the default), or answer it here as ?stale.
bool Daemon::serve_stale_without_leader(http::Exchange& ex) {
    const std::string& method = ex.request().method;
    if (method != "GET" && method != "HEAD") return false;
    bool stale = resilience::on_quorum_loss(*policies_.current()) == resilience::QuorumLoss::ServeStale;
    recovery_decisions_->add({"on_quorum_loss", stale ? "serve_stale" : "refuse"}, 1);
    if (stale) ex.downgrade_to_stale();
    return stale;
}

// recovery.on_pin_mismatch: how long Raft leaves a peer whose certificate
// failed its pin alone before dialling it again (counted at each failure).
double Daemon::pin_mismatch_hold_s(const std::string& node_id, bool just_failed) {
    double hold_s = resilience::on_pin_mismatch(*policies_.current(), node_id);
    if (just_failed) recovery_decisions_->add({"on_pin_mismatch", hold_s > 0 ? "hold" : "redial"}, 1);
    return hold_s;
}

// A plugin's tasks are named "<plugin>.<name>": its breaker is the plugin's
// failure (recovery.on_plugin_failure).
void Daemon::breaker_changed(const std::string& task, bool open) {
    std::string plugin = task.substr(0, task.find('.'));
    if (plugin == task || plugin == "raft_peer" || !plugins_) return;  // the core's own tasks
    for (const std::string& name : plugins_->names()) {
        if (name == plugin) plugin_failure_gate_->breaker_changed(plugin, task, open);
    }
}

bool Daemon::forward_to_leader(http::Exchange& ex) {
    if (!cluster::needs_leader(ex.request()) || store_->is_leader()) return false;
    auto no_leader = [&ex](std::string_view code, std::string_view message) {
        http::Response r = http::Response::error(503, code, message);
        r.headers.emplace_back("Retry-After", "1");
        ex.respond(std::move(r));
        return true;
    };
    // Forwarded here, but this node is no longer the leader: no second hop.
    if (ex.from_peer() && ex.request().header(cluster::kForwardedBy) != nullptr) {
        ex.respond(cluster::not_leader_any_more());
        return true;
    }
    auto [leader_id, leader_address] = store_->leader();
    std::optional<cluster::Member> leader =
        leader_id != 0 ? raft_bridge_->member_by_id(leader_id) : std::optional<cluster::Member>();
    if (!leader) {
        if (serve_stale_without_leader(ex)) return false;
        return no_leader("no_leader", "the cluster has no leader right now; retry");
    }
    if (config_->cluster.follower_writes == "redirect") {
        const cluster::MemberTable& advertised = store_->state().version()->members;
        auto info = advertised.find(leader->node_id);
        ex.respond(cluster::redirect_to_leader(ex.request(), leader->node_id,
                                               info != advertised.end() ? &info->second : nullptr));
        return true;
    }
    forwarder_->forward(ex.shared_from_this(), leader->node_id, leader_address);
    return true;
}

// Every node advertises its API address and the command versions it
// decodes (cluster/member_info.h), and leaders take others' announcements.
void Daemon::start_member_info() {
    auto desired = [this] {
        cluster::MemberInfo m;
        m.node_id = config_->node.id;
        m.api_address = config_->api.advertise.empty() ? server_->bound_address() : config_->api.advertise;
        m.api_scheme = transports_->api_context() != nullptr ? "https" : "http";
        m.peer_address = config_->peer.listen;
        m.build = RAMPART_VERSION;
        m.versions = cluster::local_versions();
        return m;
    };
    auto leader = [this]() -> std::pair<std::string, std::string> {
        auto [leader_id, address] = store_->leader();
        std::optional<cluster::Member> m =
            raft_bridge_ && leader_id != 0 ? raft_bridge_->member_by_id(leader_id) : std::optional<cluster::Member>();
        if (!m) return {};
        return {m->node_id, address};
    };
    cluster_status_->set_self_advertisement(desired);
    announcer_ = std::make_unique<cluster::MemberInfoAnnouncer>(&loop_, membership_client_.get(), *store_,
                                                                std::move(desired), std::move(leader));
    announcer_->install_route(router_);
}

// Membership (issue 6): engine streams checked against the Raft id
// bindings, the membership routes, the leader's reconciler, and, on a
// pristine node that joins, the joiner (never blocking start-up).
bool Daemon::start_membership(std::string* error) {
    peer_retrier_ = std::make_unique<resilience::PeerRetrier>(
        *clock_, policies_, resilience::PeerRetrier::Settings{0, nullptr, &registry_});
    membership_routes_.store = store_.get();
    membership_routes_.audit = audit_.get();
    membership_routes_.node_id = config_->node.id;
    membership_routes_.auth_enabled = auth_.enabled();
    if (raft_bridge_) {
        raft_bridge_->set_acceptor([this](int fd, const char* name) { return store_->accept_named(fd, name); });
        raft_bridge_->set_config_members([this] { return cluster::configuration_members(store_->engine()); });
        membership_client_ = std::make_unique<cluster::MembershipClient>(&loop_, peer_network_.get(), *peer_retrier_);
        membership_routes_.bridge = raft_bridge_.get();
        membership_routes_.client = membership_client_.get();
        membership_routes_.join_self = [this](const std::string& token,
                                              const std::vector<cluster::MemberAddress>& seeds,
                                              std::string* why) { return join_cluster(token, seeds, why); };
        cluster::MembershipManager::Settings ms;
        ms.node_id = config_->node.id;
        ms.auto_promote = config_->cluster.auto_promote;
        ms.remove_dead_after_ms = static_cast<uint64_t>(config_->cluster.remove_dead_after_ms);
        membership_ = std::make_unique<cluster::MembershipManager>(&loop_, *store_, *raft_bridge_, audit_.get(), ms);
        membership_->start();
    }
    cluster::install_membership_routes(router_, membership_routes_);
    if (!raft_identity_.join) return true;
    if (config_->cluster.join_token.empty()) {
        log::warn("waiting to join a cluster: give this node a join token (rampartctl cluster join)");
        return true;
    }
    return join_cluster(config_->cluster.join_token, {}, error);
}

// Seeds without a node id take it from etc/peers.yml; no seeds at all means
// the peers of etc/peers.yml (a member back from data loss).
bool Daemon::join_cluster(const std::string& token, const std::vector<cluster::MemberAddress>& seeds,
                          std::string* error) {
    rampart_raft* engine = store_->engine();
    if (!raft_bridge_ || engine == nullptr) {
        *error = "this node has no peer port (etc/peers.yml) to join with";
        return false;
    }
    if (rampart_raft_members(engine, nullptr, 0) != 0) {
        *error = "this node is already a member of a cluster (its Raft configuration is not empty)";
        return false;
    }
    if (join_loop_ && join_loop_->state() == cluster::JoinLoop::State::Running) {
        *error = "this node is already joining";
        return false;
    }
    cluster::JoinAttempt::Settings js{config_->node.id, raft_identity_.raft_id, config_->peer.listen, token,
                                      config_->cluster.role};
    join_attempt_ = std::make_unique<cluster::JoinAttempt>(
        *membership_client_, *raft_bridge_, transports_->peer_context() != nullptr,
        [this](const std::string& a) { return peers_yml_name(a); }, std::move(js));
    make_join_loop(seeds);
    if (join_started_) run_join_loop();
    return true;
}

void Daemon::stop_membership() {
    if (membership_) membership_->close();
    if (membership_client_) membership_client_->close_all();
}

// New connections on either port use the material now in force.
void Daemon::apply_transports() {
    server_->set_tls(plugins_->transport(), transports_->api_context());
    peer_network_->set_transport(plugins_->transport(), transports_->peer_context());
}

bool Daemon::start_peer_port() {
    if (!transports_->peer_port_enabled()) return true;
    net::Address addr;
    std::string error;
    if (!net::parse_address(config_->peer.listen, &addr, &error) || peer_network_->listen(addr, &error) != 0) {
        log::error("cannot listen on the peer port", {{"address", config_->peer.listen}, {"error", error}});
        return false;
    }
    log::info("peer port listening", {{"listen", peer_network_->bound_address()},
                                      {"tls", transports_->peer_context() != nullptr},
                                      {"peers", transports_->peers().peers.size()}});
    return true;
}

// A static seed's node id, for its certificate: etc/peers.yml's entry at
// that address ("" when none).
std::string Daemon::peers_yml_name(const std::string& address) const {
    for (const peer::PeerEntry& p : transports_->peers().peers) {
        if (p.endpoint() == address) return p.node_id;
    }
    return {};
}

// The one join loop (cluster/join_loop.h): rounds over the seeds, each
// attempt the join request itself (cluster/joiner.h), waiting
// backoff.delay_ms(round) between rounds. The seeds: those given
// (rampartctl cluster join), else cluster.seeds and cluster.discovery_srv
// (re-read and re-resolved each round), else the peers of etc/peers.yml (a
// member back from data loss).
void Daemon::make_join_loop(const std::vector<cluster::MemberAddress>& given) {
    const config::Config::Cluster& c = config_->cluster;
    bool configured = given.empty() && (!c.seeds.empty() || !c.discovery_srv.empty());
    cluster::Discovery::Settings ds{c.seeds, configured ? c.discovery_srv : "", c.dns_server};
    if (!configured) {
        ds.static_seeds.clear();
        for (const cluster::MemberAddress& m : given)
            ds.static_seeds.push_back(cluster::member_address(m.node_id, m.address));
        if (given.empty()) {
            for (const peer::PeerEntry& p : transports_->peers().peers)
                ds.static_seeds.push_back(cluster::member_address(p.node_id, p.endpoint()));
        }
    }
    if (join_loop_) join_loop_->stop();
    if (discovery_) discovery_->close();
    discovery_ = std::make_unique<cluster::Discovery>(&loop_, *clock_, ds);
    join_loop_ = std::make_unique<cluster::JoinLoop>(
        *clock_,
        [this, configured](std::function<void(const cluster::SeedList&)> done) {
            if (configured) discovery_->set_static_seeds(config_->cluster.seeds);  // SIGHUP may have changed them
            discovery_->resolve(std::move(done));
        },
        [this](const cluster::Seed& seed, std::function<void(cluster::JoinOutcome)> done) {
            (*join_attempt_)(seed, std::move(done));
        },
        [this](int round) {
            static std::mt19937_64 rng{std::random_device{}()};
            double rand01 = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
            return static_cast<uint64_t>(policy::backoff_delay_ms(*policies_.current(), round, rand01));
        },
        &registry_);
    log::info("join: looking for the cluster in the background",
              {{"seeds", join(ds.static_seeds)},
               {"srv", ds.srv_domain.empty() ? std::string() : cluster::kSrvService + ds.srv_domain},
               {"dns_server", c.dns_server.empty() ? std::string("system resolver") : c.dns_server}});
}

// Joining starts once both ports listen, and never holds start-up up:
// /health answers and /ready says "joining" until it is done.
void Daemon::start_join_loop() {
    join_started_ = true;
    if (join_loop_) run_join_loop();
}

// The loop runs as the supervisor's task "join" (cluster/join_task.h).
void Daemon::run_join_loop() {
    if (!join_task_) join_task_ = std::make_unique<cluster::JoinTask>(*supervisor_);
    join_task_->watch(join_loop_.get());
}

void Daemon::register_core_metrics() {
    reload_total_ = registry_.counter("rampart_reload_total", "Reloads (SIGHUP) by result", {"result"});
    policy_generation_ = registry_.gauge("rampart_policy_generation", "The running policy generation", {});
    policy_errors_ = registry_.counter("rampart_policy_errors_total",
                                       "Policy calls that failed and fell back to the default", {"policy"});
    registry_.gauge("rampart_build_info", "Build information", {"version"})->set({RAMPART_VERSION}, 1);
    migrations_ =
        registry_.counter("rampart_migration_events_total", "state.json schema migrations by result", {"result"});
    policies_.set_error_sink([this](std::string_view policy, std::string_view message) {
        policy_errors_->add({policy}, 1);
        log::warn("policy call failed; using its default", {{"policy", policy}, {"error", message}});
    });
}

bool Daemon::start_policies() {
    std::string dir, error;
    if (!policy_dir_for(*config_, &dir, &error)) {
        log::error("policy refused", {{"problem", error}});
        return false;
    }
    if (dir.empty()) {
        log::warn("policy directory not found: running the built-in policy defaults", {{"dir", config_->policies.dir}});
        return true;
    }
    policy::LoadReport report = policies_.load(dir);
    for (const auto& e : report.errors) log::error(e);
    if (!report.ok) return false;
    policy_generation_->set({}, static_cast<double>(report.generation));
    log::info(
        "policies loaded",
        {{"dir", dir}, {"generation", static_cast<long long>(report.generation)}, {"policies", join(report.policies)}});
    return true;
}

// Give every plugin the policy data it asked for (after each new generation).
bool Daemon::deliver_policy_data() {
    std::shared_ptr<const policy::Generation> g = policies_.current();
    std::vector<std::string> errors;
    plugins_->policy_changed([&g](const std::string& name, const std::string& key,
                                  std::string* json) { return policy_data_json(*g, name, key, json); },
                             &errors);
    for (const auto& e : errors) log::error("policy data refused", {{"problem", e}});
    return errors.empty();
}

// All or nothing: on any error the running generation stays.
bool Daemon::reload_policies() {
    std::string dir, error;
    if (!policy_dir_for(*config_, &dir, &error)) {
        log::error("policy reload halted", {{"problem", error}});
        return false;
    }
    if (dir.empty()) return true;
    policy::LoadReport report = policies_.load(dir);
    if (!report.ok) {
        for (const auto& e : report.errors) log::error(e);
        return false;
    }
    policy_generation_->set({}, static_cast<double>(report.generation));
    log::info("policies reloaded", {{"generation", static_cast<long long>(report.generation)}});
    return deliver_policy_data();
}

// audit.jsonl, then state.json: a v1 file is migrated (node_state.h); a
// failed migration has rolled back and the daemon exits 78.
bool Daemon::start_node_state() {
    audit::Options options;
    options.path = config_->node.data_dir + "/audit.jsonl";
    options.max_bytes = static_cast<uint64_t>(config_->node.audit_max_bytes);
    options.keep = static_cast<unsigned>(config_->node.audit_keep);
    options.node_id = config_->node.id;
    audit_ = std::make_unique<audit::AuditLog>(options);
    std::string error;
    if (!audit_->open(&error)) {
        log::error("cannot open the audit log", {{"path", options.path}, {"error", error}});
        return false;
    }
    state::BootInfo boot;
    boot.node_id = config_->node.id;
    boot.rampart_version = RAMPART_VERSION;
    std::string text;
    if (util::read_whole_file(config_->source_file, &text, nullptr))
        boot.configuration_hash = "sha256:" + util::sha256_hex(text);
    state::Sinks sinks{audit_.get(), migrations_};
    if (!state::ensure_state(config_->node.data_dir, boot, sinks, &error)) {
        log::error("cannot start: state.json", {{"dir", config_->node.data_dir}, {"error", error}});
        return false;
    }
    return true;
}

bool Daemon::write_pid_file() {
    if (config_->node.pid_file.empty()) return true;
    std::string error;
    if (!util::write_small_file(config_->node.pid_file, std::to_string(getpid()) + "\n", &error)) {
        log::error("cannot write pid file", {{"path", config_->node.pid_file}, {"error", error}});
        return false;
    }
    return true;
}

int Daemon::run() {
    log::configure(log_settings_for(*config_));
    open_files_ = raise_open_files_limit();
    clamp_connections(*config_, open_files_);
    std::string error;
    if (!make_dirs(config_->node.data_dir, &error)) {
        log::error("cannot create data directory", {{"path", config_->node.data_dir}, {"error", error}});
        return kExitRuntime;
    }
    uv_loop_init(&loop_);
    install_routes();
    if (!auth::setup_tokens(*config_, options_.dev, &auth_, &error)) {
        log::error("cannot set up API tokens", {{"error", error}});
        uv_loop_close(&loop_);
        return kExitConfigError;
    }
    register_core_metrics();
    start_supervisor();
    if (!start_node_state()) {
        uv_loop_close(&loop_);
        return kExitConfigError;
    }
    // A pristine node with a join token or seeds joins instead of bootstrapping.
    bool wants_join = !config_->cluster.join_token.empty() || !config_->cluster.seeds.empty() ||
                      !config_->cluster.discovery_srv.empty();
    if (!cluster::choose_raft_identity(config_->node.data_dir, config_->node.id, wants_join, &raft_identity_, &error)) {
        log::error("cannot choose this node's Raft id", {{"error", error}});
        uv_loop_close(&loop_);
        return kExitRuntime;
    }
    if (!start_policies() || !start_plugins() || !deliver_policy_data() || !start_transports()) {
        if (transports_) transports_->stop();
        if (plugins_) plugins_->unload_all();
        uv_run(&loop_, UV_RUN_NOWAIT);
        uv_loop_close(&loop_);
        return kExitConfigError;
    }
    store::StoreSettings store_settings = store::StoreSettings::from(*config_);
    store_settings.audit = audit_.get();
    start_raft_bridge(store_settings);
    store_ = std::make_unique<store::Store>(&loop_, std::move(store_settings));
    if (!store_->start(&error)) {
        log::error("cannot start the store", {{"error", error}});
        store_->close(nullptr);
        transports_->stop();
        plugins_->unload_all();
        uv_run(&loop_, UV_RUN_DEFAULT);
        uv_loop_close(&loop_);
        return kExitRuntime;
    }
    if (!store_->supervise_checks(*supervisor_, &error)) {
        log::error("cannot supervise the TTL-check ticker", {{"error", error}});
        exit_status_ = kExitRuntime;
    }
    store_->register_metrics(&registry_);  // the store's own (group commit)
    snapshot_task_ = std::make_unique<cluster::SnapshotTask>(store_->engine());
    if (!snapshot_task_->supervise(*supervisor_, &error)) {
        log::error("cannot supervise the snapshotter", {{"error", error}});
        exit_status_ = kExitRuntime;
    }
    if (!start_membership(&error)) {
        log::error("cannot start cluster membership", {{"error", error}});
        exit_status_ = kExitRuntime;
    }
    store::install_kv_routes(router_, *store_);
    store::install_service_routes(router_, *store_, config_->node.id, config_->api.listen);
    // Members by node id: etc/peers.yml and this node, or this node alone.
    cluster_status_ = std::make_unique<cluster::ClusterStatus>(
        &loop_, *store_, config_->node.id,
        [this] {
            if (raft_bridge_) return raft_bridge_->members();
            return std::vector<cluster::Member>{
                {config_->node.id, cluster::raft_id_for(config_->node.id), config_->peer.listen}};
        },
        &registry_);
    cluster::install_status_routes(router_, *cluster_status_);
    store::install_snapshot_routes(
        router_, *store_, audit_.get(), config_->node.data_dir, [this](const http::Request& head) {
            auto outcome = auth_.decide(head).outcome;
            return outcome == auth::Decision::Outcome::Open || outcome == auth::Decision::Outcome::Allowed;
        });
    store::install_acl(router_, *store_, auth_);  // replicated API tokens beside the configured ones
    start_member_info();
    server_ = std::make_unique<http::Server>(&loop_, &router_, server_settings_for(*config_));
    server_->set_pipeline(pipeline_.get());
    apply_transports();
    start_forwarding();
    net::Address addr;
    if (!net::parse_address(config_->api.listen, &addr, &error)) {
        log::error("bad api.listen", {{"address", config_->api.listen}, {"error", error}});
        return kExitConfigError;
    }
    if (server_->listen(addr, &error) != 0 || !start_peer_port()) {
        if (!error.empty()) log::error("cannot listen", {{"address", config_->api.listen}, {"error", error}});
        server_->shutdown();
        peer_network_->shutdown();
        snapshot_task_->close();
        store_->close(nullptr);
        transports_->stop();
        uv_run(&loop_, UV_RUN_DEFAULT);
        uv_loop_close(&loop_);
        return kExitRuntime;
    }
    install_signals();
    cluster_status_->start();
    start_join_loop();
    announcer_->start();
    // Read the floor at each check, so a SIGHUP changes it.
    disk_watchdog_ = std::make_unique<store::DiskWatchdog>(
        &loop_, config_->node.data_dir, [this] { return config_->node.min_free_bytes; }, *store_, &registry_);
    disk_watchdog_->set_transfer_decision([this] { return disk_full_transfers(); });
    disk_watchdog_->start();
    if (!write_pid_file()) exit_status_ = kExitRuntime;
    log::info("rampartd started", {{"version", RAMPART_VERSION},
                                   {"listen", server_->bound_address()},
                                   {"tls", transports_->api_context() != nullptr},
                                   {"config", config_->source_file},
                                   {"dev", options_.dev}});
    if (exit_status_ != kExitOk) {
        begin_shutdown(SIGTERM);
    }
    uv_run(&loop_, UV_RUN_DEFAULT);
    // Sessions and contexts belong to the transport plugin: release them
    // before it unloads.
    server_.reset();
    join_task_.reset();
    join_loop_.reset();
    discovery_.reset();
    membership_.reset();
    join_attempt_.reset();
    membership_client_.reset();
    forwarder_.reset();
    peer_retrier_.reset();  // after its users
    announcer_.reset();
    raft_bridge_.reset();
    plugins_->set_peer_network(nullptr);  // plugins unload below; the network is gone
    peer_network_.reset();
    transports_->stop();
    uv_run(&loop_, UV_RUN_DEFAULT);
    plugins_->unload_all();
    supervisor_.reset();             // its timers close on the loop
    uv_run(&loop_, UV_RUN_DEFAULT);  // let plugin timers finish closing
    uv_loop_close(&loop_);
    if (!config_->node.pid_file.empty()) unlink(config_->node.pid_file.c_str());
    log::info("rampartd stopped");
    return exit_status_;
}

}  // namespace

void print_usage() {
    fprintf(stderr,
            "usage: rampartd [-c FILE] [--dev] [--check-config] [--version]\n"
            "  -c, --config FILE   configuration file (default etc/rampart.yml)\n"
            "      --dev           one node on loopback, data under ./var/dev\n"
            "      --check-config  validate the configuration, print every problem, exit 0 or 78\n"
            "      --version       print the version\n");
}

bool parse_options(int argc, char** argv, Options* out) {
    static const struct option long_options[] = {
        {"config", required_argument, nullptr, 'c'}, {"dev", no_argument, nullptr, 'd'},
        {"check-config", no_argument, nullptr, 'k'}, {"version", no_argument, nullptr, 'v'},
        {"help", no_argument, nullptr, 'h'},         {nullptr, 0, nullptr, 0},
    };
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", long_options, nullptr)) != -1) {
        switch (opt) {
            case 'c':
                out->config_path = optarg;
                out->config_path_given = true;
                break;
            case 'd': out->dev = true; break;
            case 'k': out->check_config = true; break;
            case 'v': out->version = true; break;
            default: return false;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rampartd: unexpected argument '%s'\n", argv[optind]);
        return false;
    }
    return true;
}

int run(const Options& options) {
    if (options.version) {
        printf("rampartd %s\n", RAMPART_VERSION);
        return kExitOk;
    }
    // Writes to a closed socket must fail with EPIPE, not kill the daemon.
    signal(SIGPIPE, SIG_IGN);
    config::LoadResult loaded = load_config(options);
    print_diagnostics(loaded);
    if (!loaded.ok()) return kExitConfigError;
    if (options.check_config) {
        std::vector<std::string> errors;
        plugin::PluginHost::check(loaded.config->plugins.dir, loaded.config->plugins.load,
                                  plugin_sections_for(*loaded.config), &errors);
        std::string dir, error;
        if (!policy_dir_for(*loaded.config, &dir, &error)) errors.push_back(error);
        if (!dir.empty()) {
            policy::LoadReport report = policy::PolicyHost().check(dir);
            errors.insert(errors.end(), report.errors.begin(), report.errors.end());
        }
        for (const auto& e : errors) fprintf(stderr, "rampartd: config error: %s\n", e.c_str());
        if (!errors.empty()) return kExitConfigError;
        printf("configuration OK: %s\n",
               loaded.config->source_file.empty() ? "(defaults)" : loaded.config->source_file.c_str());
        return kExitOk;
    }
    Daemon daemon(options, std::move(loaded.config));
    return daemon.run();
}

}  // namespace rampart
