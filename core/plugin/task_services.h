// The ABI 1.2 host services for supervised plugin work (task_register,
// task_failed, task_ok; include/rampart/plugin.h): each registered task is
// a resilience::Supervisor task named "<plugin>.<name>".
#pragma once

#include "rampart/plugin.h"

namespace rampart::plugin {

struct LoadedPlugin;

rampart_task* svc_task_register(rampart_plugin_ctx* ctx, const char* name, rampart_task_start_fn start, void* arg);
void svc_task_failed(rampart_task* task, const char* reason);
void svc_task_ok(rampart_task* task);

// After a successful init: start the plugin's tasks.
void start_tasks(LoadedPlugin& plugin);
// Before fini (or after a failed init): take them off the supervisor; the
// handles stay valid (inert) until the plugin is freed.
void remove_tasks(LoadedPlugin& plugin);

}  // namespace rampart::plugin
