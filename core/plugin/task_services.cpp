#include "plugin/task_services.h"

#include <cerrno>
#include <string>
#include <string_view>

#include "log.h"
#include "plugin/context.h"
#include "resilience/supervisor.h"

namespace rampart::plugin {

namespace {

constexpr size_t kMaxTaskName = 32;

bool valid_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxTaskName) return false;
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

}  // namespace

rampart_task* svc_task_register(rampart_plugin_ctx* ctx, const char* name, rampart_task_start_fn start, void* arg) {
    if (ctx == nullptr || ctx->plugin == nullptr || name == nullptr || start == nullptr) return nullptr;
    LoadedPlugin& p = *ctx->plugin;
    resilience::Supervisor* supervisor = ctx->host->supervisor();
    auto refuse = [&](const char* why) -> rampart_task* {
        log::error("plugin task refused", {{"plugin", p.name}, {"task", name}, {"error", why}});
        return nullptr;
    };
    if (!p.in_init) return refuse("tasks may be registered only during init");
    if (!valid_name(name)) return refuse("task names are [A-Za-z0-9_-]{1,32}");
    if (supervisor == nullptr) return refuse("this daemon runs no supervisor");
    auto task = std::make_unique<rampart_task>();
    rampart_task* t = task.get();
    t->owner = &p;
    t->supervisor = supervisor;
    std::string error;
    // A plugin's start may throw (C++ plugins): the supervisor counts that
    // as a failure to start.
    t->id = supervisor->add({p.name + "." + name,
                             [start, arg](std::string* why) {
                                 int rc = start(arg);
                                 if (rc != 0) *why = "start returned " + std::to_string(rc);
                                 return rc == 0;
                             }},
                            &error);
    if (t->id == 0) return refuse(error.c_str());
    p.tasks.push_back(std::move(task));
    return t;
}

void svc_task_failed(rampart_task* task, const char* reason) {
    if (task == nullptr || task->id == 0) return;
    task->supervisor->failed(task->id, reason != nullptr && *reason ? reason : "the plugin reported a failure");
}

void svc_task_ok(rampart_task* task) {
    if (task == nullptr || task->id == 0) return;
    task->supervisor->succeeded(task->id);
}

void start_tasks(LoadedPlugin& plugin) {
    for (auto& t : plugin.tasks) {
        if (t->id != 0) t->supervisor->start(t->id);
    }
}

void remove_tasks(LoadedPlugin& plugin) {
    // The handles stay (inert) until the plugin itself is freed: its fini
    // may still report through them.
    for (auto& t : plugin.tasks) {
        if (t->id != 0) t->supervisor->remove(t->id);
        t->id = 0;
    }
}

}  // namespace rampart::plugin
