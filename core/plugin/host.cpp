#include "plugin/host.h"

#include <cstddef>

#include "http/exchange.h"
#include "http/router.h"
#include "http/server.h"
#include "log.h"
#include "net/transport.h"
#include "peer/peer_network.h"
#include "plugin/context.h"
#include "plugin/task_services.h"

namespace rampart::plugin {
namespace {

std::vector<std::string> keys_of(const RawSection* raw) {
    std::vector<std::string> keys;
    if (raw != nullptr) {
        for (const auto& [key, setting] : *raw) keys.push_back(key);
    }
    return keys;
}

const RawSection* section_for(const std::map<std::string, RawSection, std::less<>>& sections, const std::string& name) {
    auto it = sections.find(name);
    return it == sections.end() ? nullptr : &it->second;
}

// Plugins are C at the seam, but a C++ plugin that lets an exception
// escape must not take the daemon with it: catch at every call.
template <typename Fn>
bool guarded_call(const LoadedPlugin& plugin, const char* what, Fn&& fn) {
    try {
        fn();
        return true;
    } catch (...) {
        log::error("plugin callback threw an exception", {{"plugin", plugin.name}, {"callback", what}});
        return false;
    }
}

}  // namespace

PluginHost::PluginHost(uv_loop_t* loop, metrics::Registry* registry, http::Router* router)
    : loop_(loop), registry_(registry), router_(router) {}

PluginHost::~PluginHost() { unload_all(); }

std::vector<std::string> PluginHost::names() const {
    std::vector<std::string> out;
    for (const auto& p : plugins_) out.push_back(p->name);
    return out;
}

bool PluginHost::load(const std::string& dir, const std::vector<std::string>& names,
                      const std::map<std::string, RawSection, std::less<>>& sections,
                      std::vector<std::string>* errors) {
    for (const std::string& name : names) {
        if (!load_one(dir, name, section_for(sections, name), errors)) {
            unload_all();
            return false;
        }
    }
    return true;
}

bool PluginHost::check(const std::string& dir, const std::vector<std::string>& names,
                       const std::map<std::string, RawSection, std::less<>>& sections,
                       std::vector<std::string>* errors) {
    size_t before = errors->size();
    for (const std::string& name : names) {
        Opened opened;
        std::string error;
        if (!open_plugin(dir, name, &opened, &error)) {
            errors->push_back(error);
            continue;
        }
        SectionValues values;
        const RawSection* raw = section_for(sections, name);
        validate_section(name, opened.descriptor->config_schema, raw ? *raw : RawSection{}, &values, errors);
    }
    return errors->size() == before;
}

bool PluginHost::load_one(const std::string& dir, const std::string& name, const RawSection* section,
                          std::vector<std::string>* errors) {
    for (const auto& p : plugins_) {
        if (p->name == name) {
            errors->push_back("plugin " + name + ": listed twice in plugins.load");
            return false;
        }
    }
    auto plugin = std::make_unique<LoadedPlugin>();
    plugin->name = name;
    std::string error;
    if (!open_plugin(dir, name, &plugin->opened, &error)) {
        errors->push_back(error);
        return false;
    }
    plugin->descriptor = plugin->opened.descriptor;
    if (!validate_section(name, plugin->descriptor->config_schema, section ? *section : RawSection{}, &plugin->config,
                          errors)) {
        return false;
    }
    plugin->explicit_config = keys_of(section);
    plugin->ctx.host = this;
    plugin->ctx.plugin = plugin.get();
    LoadedPlugin& p = *plugin;
    plugins_.push_back(std::move(plugin));
    p.in_init = true;
    int rc = -1;
    bool ok = guarded_call(p, "init", [&] { rc = p.descriptor->init(&p.ctx, host_services(), &p.state); });
    p.in_init = false;
    if (!ok || rc != 0) {
        errors->push_back("plugin " + name + ": init failed" + (ok ? " (" + std::to_string(rc) + ")" : ""));
        // Roll back what the plugin registered before failing.
        release_owned(p);
        plugins_.pop_back();
        return false;
    }
    p.initialized = true;
    if (!adopt_transport(p, errors)) {
        finalize(p);
        plugins_.pop_back();
        return false;
    }
    log::info("plugin loaded", {{"plugin", name},
                                {"version", p.descriptor->version ? p.descriptor->version : ""},
                                {"path", p.opened.library->path()}});
    start_tasks(p);
    return true;
}

// A transport must provide every session function; one plugin at most.
bool PluginHost::adopt_transport(LoadedPlugin& p, std::vector<std::string>* errors) {
    const rampart_plugin* d = p.descriptor;
    if (d->struct_size < offsetof(rampart_plugin, transport) + sizeof(void*) || d->transport == nullptr) return true;
    const rampart_transport* t = d->transport;
    if (t->struct_size < offsetof(rampart_transport, session_free) + sizeof(void*) || t->context_new == nullptr ||
        t->session_new == nullptr || t->session_input == nullptr || t->session_write == nullptr ||
        t->session_free == nullptr) {
        errors->push_back("plugin " + p.name + ": its transport lacks required functions");
        return false;
    }
    if (transport_) {
        errors->push_back("plugin " + p.name + ": plugin " + transport_owner_->name +
                          " already provides the transport; load only one");
        return false;
    }
    transport_ = std::make_unique<net::Transport>(t, p.state, p.name);
    transport_owner_ = &p;
    return true;
}

// What a plugin registered with the host: tasks, timers, routes, peer protocols
// and connections, and worker jobs still running.
void PluginHost::release_owned(LoadedPlugin& plugin) {
    remove_tasks(plugin);
    stop_all_timers(plugin);
    router_->remove_owner(&plugin);
    if (plugin.own_server) {
        plugin.own_server->shutdown();
        retired_servers_.push_back(std::move(plugin.own_server));
        retired_routers_.push_back(std::move(plugin.own_router));
    }
    if (peer_network_ != nullptr) peer_network_->remove_owner(&plugin);
    while (plugin.pending_work > 0 && uv_loop_alive(loop_)) uv_run(loop_, UV_RUN_ONCE);
}

void PluginHost::set_http_defaults(const http::ServerSettings& settings, http::Pipeline* pipeline) {
    http_settings_ = std::make_unique<http::ServerSettings>(settings);
    http_pipeline_ = pipeline;
    for (auto& p : plugins_) {
        if (p->own_server) p->own_server->apply_settings(settings);
    }
}

int PluginHost::add_listener(LoadedPlugin& p, const std::string& address, std::string* error) {
    net::Address addr;
    if (!net::parse_address(address, &addr, error)) return -EINVAL;
    if (p.own_server) {
        *error = "the plugin already has a listener";
        return -EEXIST;
    }
    p.own_router = std::make_unique<http::Router>();
    router_->move_owner(&p, *p.own_router);
    http::ServerSettings settings = http_settings_ ? *http_settings_ : http::ServerSettings{};
    p.own_server = std::make_unique<http::Server>(loop_, p.own_router.get(), settings);
    p.own_server->set_pipeline(http_pipeline_);
    int rc = p.own_server->listen(addr, error);
    if (rc != 0) return rc;
    log::info("plugin listener", {{"plugin", p.name}, {"listen", p.own_server->bound_address()}});
    return 0;
}

void PluginHost::close_listeners() {
    for (auto& p : plugins_) {
        if (p->own_server) p->own_server->shutdown();
    }
}

void PluginHost::finalize(LoadedPlugin& plugin) {
    if (transport_owner_ == &plugin) {
        transport_.reset();
        transport_owner_ = nullptr;
    }
    release_owned(plugin);
    if (plugin.initialized && plugin.descriptor->fini != nullptr) {
        guarded_call(plugin, "fini", [&] { plugin.descriptor->fini(plugin.state); });
    }
    plugin.initialized = false;
}

void PluginHost::unload_all() {
    // Reverse order: a later plugin may depend on an earlier one's routes.
    while (!plugins_.empty()) {
        finalize(*plugins_.back());
        plugins_.pop_back();
    }
}

void PluginHost::reload(const std::map<std::string, RawSection, std::less<>>& sections,
                        std::vector<std::string>* errors) {
    for (auto& p : plugins_) {
        SectionValues fresh;
        const RawSection* raw = section_for(sections, p->name);
        if (!validate_section(p->name, p->descriptor->config_schema, raw ? *raw : RawSection{}, &fresh, errors)) {
            continue;  // keep the previous configuration
        }
        if (p->descriptor->reload == nullptr) {
            p->config = std::move(fresh);
            p->explicit_config = keys_of(raw);
            continue;
        }
        SectionValues previous = std::move(p->config);
        std::vector<std::string> previous_explicit = std::move(p->explicit_config);
        p->config = std::move(fresh);
        p->explicit_config = keys_of(raw);
        int rc = -1;
        bool ok = guarded_call(*p, "reload", [&] { rc = p->descriptor->reload(p->state, &p->ctx); });
        if (!ok || rc != 0) {
            p->config = std::move(previous);
            p->explicit_config = std::move(previous_explicit);
            errors->push_back("plugin " + p->name + ": reload failed (" + std::to_string(rc) +
                              "); keeping its previous configuration");
        }
    }
}

bool PluginHost::accept(std::string_view source_ip) {
    std::string ip(source_ip);
    for (auto& p : plugins_) {
        if (!RAMPART_HOOK(*p, on_accept)) continue;
        int rc = 0;
        guarded_call(*p, "on_accept", [&] { rc = p->hooks()->on_accept(p->state, ip.c_str()); });
        if (rc < 0) return false;
    }
    return true;
}

bool PluginHost::admission(http::Exchange& ex) {
    rampart_request req;
    bind_request(&req, ex);
    for (auto& p : plugins_) {
        if (!RAMPART_HOOK(*p, on_admission)) continue;
        rampart_verdict v = RAMPART_CONTINUE;
        guarded_call(*p, "on_admission", [&] { v = p->hooks()->on_admission(p->state, &req); });
        if (v == RAMPART_ANSWERED || ex.responded()) return true;
    }
    return false;
}

bool PluginHost::dedup(http::Exchange& ex) {
    rampart_request req;
    bind_request(&req, ex);
    for (auto& p : plugins_) {
        if (!RAMPART_HOOK(*p, on_dedup)) continue;
        rampart_verdict v = RAMPART_CONTINUE;
        guarded_call(*p, "on_dedup", [&] { v = p->hooks()->on_dedup(p->state, &req); });
        if (v == RAMPART_ANSWERED || ex.responded()) return true;
    }
    return false;
}

void PluginHost::response(http::Exchange& ex, const http::Response& resp) {
    // Every answer passes here: build the view only if some plugin looks.
    bool wanted = false;
    for (const auto& p : plugins_) wanted = wanted || RAMPART_HOOK(*p, on_response);
    if (!wanted) return;
    rampart_request req;
    bind_request(&req, ex);
    std::vector<const char*> names, values;
    for (const auto& [n, v] : resp.headers) {
        names.push_back(n.c_str());
        values.push_back(v.c_str());
    }
    rampart_response_view view{};
    view.struct_size = sizeof view;
    view.status = resp.status;
    view.content_type = resp.content_type.c_str();
    view.body = resp.body.data();
    view.body_len = resp.body.size();
    view.header_count = names.size();
    view.header_names = names.data();
    view.header_values = values.data();
    view.duration_seconds = ex.elapsed_seconds();
    for (auto& p : plugins_) {
        if (!RAMPART_HOOK(*p, on_response)) continue;
        guarded_call(*p, "on_response", [&] { p->hooks()->on_response(p->state, &req, &view); });
    }
}

void PluginHost::auth_failure(std::string_view source_ip, std::string_view reason) {
    std::string ip(source_ip), why(reason);
    for (auto& p : plugins_) {
        if (!RAMPART_HOOK(*p, on_auth_failure)) continue;
        guarded_call(*p, "on_auth_failure", [&] { p->hooks()->on_auth_failure(p->state, ip.c_str(), why.c_str()); });
    }
}

std::vector<std::string> PluginHost::wanted_policy_data() const {
    std::vector<std::string> out;
    for (const auto& p : plugins_) {
        for (const char* const* w = p->descriptor->policy_data; w != nullptr && *w != nullptr; ++w)
            out.emplace_back(*w);
    }
    return out;
}

void PluginHost::policy_changed(const std::function<bool(const std::string&, const std::string&, std::string*)>& lookup,
                                std::vector<std::string>* errors) {
    for (auto& p : plugins_) {
        for (const char* const* w = p->descriptor->policy_data; w != nullptr && *w != nullptr; ++w) {
            std::string wanted = *w;
            size_t colon = wanted.find(':');
            std::string policy = wanted.substr(0, colon);
            std::string key = colon == std::string::npos ? "" : wanted.substr(colon + 1);
            std::string json;
            if (!lookup(policy, key, &json)) {
                errors->push_back("plugin " + p->name + ": policy " + policy + " exports no " + key);
                continue;
            }
            if (!RAMPART_HOOK(*p, on_policy)) continue;
            guarded_call(*p, "on_policy",
                         [&] { p->hooks()->on_policy(p->state, policy.c_str(), key.c_str(), json.c_str()); });
        }
    }
}

}  // namespace rampart::plugin
