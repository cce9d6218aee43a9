// mock_cxx_throw: a C++ plugin that breaks the ABI's "no exception crosses
// the boundary" rule in every callback it has. The host must contain each
// one (log it and carry on) instead of letting it unwind into libuv or
// std::terminate. Config: `throw_init` (bool) makes init itself throw.
//
// Each callback bumps rampart_mock_cxx_calls_total{callback} before it
// throws, so the test can tell "contained" from "never called".
#include <rampart/plugin.h>

#include <stdexcept>
#include <string>

namespace {

const rampart_host* g_host = nullptr;
rampart_metric* g_calls = nullptr;

void called(const char* callback) {
    const char* values[] = {callback};
    if (g_host != nullptr && g_calls != nullptr) g_host->counter_add(g_calls, values, 1);
}

[[noreturn]] void boom(const char* callback) {
    called(callback);
    throw std::runtime_error(std::string("mock_cxx_throw: ") + callback);
}

const rampart_config_key kSchema[] = {
    {"throw_init", RAMPART_CONFIG_BOOL, "false", 0, 0, "throw from init"},
    {nullptr, RAMPART_CONFIG_STRING, nullptr, 0, 0, nullptr},
};

void cb_route(void*, rampart_request*) { boom("route"); }
void cb_timer(void*) { boom("timer"); }
int cb_accept(void*, const char*) { boom("on_accept"); }
rampart_verdict cb_admission(void*, rampart_request*) { boom("on_admission"); }
rampart_verdict cb_dedup(void*, rampart_request*) { boom("on_dedup"); }
void cb_response(void*, rampart_request*, const rampart_response_view*) { boom("on_response"); }
void cb_auth_failure(void*, const char*, const char*) { boom("on_auth_failure"); }

int cb_init(rampart_plugin_ctx* ctx, const rampart_host* host, void**) {
    g_host = host;
    const char* labels[] = {"callback"};
    g_calls = host->counter_register(ctx, "rampart_mock_cxx_calls_total", "Callbacks of mock_cxx_throw.", labels, 1);
    if (host->config_bool(ctx, "throw_init")) boom("init");
    if (host->route_add(ctx, "GET", "/mock/throw", cb_route, nullptr, 0) != 0) return -1;
    if (host->timer_start(ctx, 1, 0, cb_timer, nullptr) == nullptr) return -1;
    return 0;
}

int cb_reload(void*, rampart_plugin_ctx*) { boom("reload"); }
void cb_fini(void*) { boom("fini"); }

const rampart_hooks kHooks = {
    sizeof(rampart_hooks), cb_accept, cb_admission, cb_dedup, cb_response, cb_auth_failure, nullptr,
};

const rampart_plugin kDescriptor = {
    RAMPART_ABI_MAJOR,
    sizeof(rampart_plugin),
    "mock_cxx_throw",
    "0.0.1",
    "throws from every callback",
    kSchema,
    nullptr,
    cb_init,
    cb_reload,
    cb_fini,
    &kHooks,
    nullptr,  // no transport
};

}  // namespace

extern "C" RAMPART_PLUGIN_EXPORT const rampart_plugin* rampart_plugin_entry(void) { return &kDescriptor; }
