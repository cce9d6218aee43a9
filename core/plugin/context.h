// The host's bookkeeping for one loaded plugin, and the concrete types
// behind the ABI's opaque handles. Internal to core/plugin.
#pragma once

#include <uv.h>

#include <list>
#include <memory>
#include <string>
#include <vector>

#include "auth/identity.h"
#include "plugin/host.h"
#include "plugin/loader.h"
#include "rampart/plugin.h"

namespace rampart::http {
class Exchange;
class Router;
class Server;
}  // namespace rampart::http

namespace rampart::plugin {
struct LoadedPlugin;
}
namespace rampart::resilience {
class Supervisor;
}

struct rampart_plugin_ctx {
    rampart::plugin::PluginHost* host = nullptr;
    rampart::plugin::LoadedPlugin* plugin = nullptr;
};

struct rampart_timer {
    uv_timer_t handle{};
    rampart::plugin::LoadedPlugin* owner = nullptr;
    rampart_timer_fn fn = nullptr;
    void* arg = nullptr;
    bool repeating = false;
    bool stopped = false;
    std::list<std::unique_ptr<rampart_timer>>::iterator self;
};

// A supervised task (task_register); lives as long as its plugin.
struct rampart_task {
    rampart::plugin::LoadedPlugin* owner = nullptr;
    rampart::resilience::Supervisor* supervisor = nullptr;
    uint64_t id = 0;  // the supervisor's TaskId; 0 once removed
};

// Valid only during one hook or handler call.
// A deferred one (request_defer) lives on the heap and holds the exchange.
struct rampart_request {
    rampart::http::Exchange* exchange = nullptr;
    rampart_identity identity{};
    std::string scratch;                              // a string a service returned that needed building
    bool in_route = false;                            // may be deferred
    rampart_request* deferred = nullptr;              // the heap copy, once deferred
    std::shared_ptr<rampart::http::Exchange> holder;  // set on the heap copy
};

namespace rampart::plugin {

struct LoadedPlugin {
    std::string name;
    Opened opened;
    const rampart_plugin* descriptor = nullptr;
    rampart_plugin_ctx ctx;
    void* state = nullptr;
    bool initialized = false;
    bool in_init = false;  // routes may be added only now
    SectionValues config;
    std::vector<std::string> explicit_config;  // keys the file/environment set
    std::list<std::unique_ptr<rampart_timer>> timers;
    std::vector<std::unique_ptr<rampart_task>> tasks;  // task_register (ABI 1.2)
    std::string render_buffer;                         // metrics_render's result
    size_t pending_work = 0;                           // worker jobs not yet done (fini waits for them)
    // listener_add: the plugin's routes on a port of their own.
    std::unique_ptr<http::Router> own_router;
    std::unique_ptr<http::Server> own_server;

    const rampart_hooks* hooks() const { return descriptor->hooks; }
    // A hook member exists in the plugin's struct and is set.
    template <typename Member>
    bool has(Member rampart_hooks::*member, size_t end_offset) const {
        const rampart_hooks* h = descriptor->hooks;
        return h != nullptr && h->struct_size >= end_offset && h->*member != nullptr;
    }
};

// The one services table every plugin receives.
const rampart_host* host_services();
// Fill a request handle for `ex`.
void bind_request(rampart_request* req, http::Exchange& ex);
// Stop every timer the plugin left running (before fini).
void stop_all_timers(LoadedPlugin& plugin);

}  // namespace rampart::plugin

// Whether hook `field` is within the struct the plugin was built with.
#define RAMPART_HOOK(plugin, field) \
    ((plugin).has(&rampart_hooks::field, offsetof(rampart_hooks, field) + sizeof(void*)))
