#include "breaker_command.h"

#include <cjson/cJSON.h>

#include <cstdio>
#include <memory>

#include "http_client.h"
#include "table_output.h"

namespace rampartctl {
namespace {

constexpr int kOk = 0;
constexpr int kFailure = 1;
constexpr int kUsage = 2;

int breaker_usage() {
    fprintf(stderr,
            "usage: rampartctl [--json] breaker list          supervised tasks and their breakers (read token)\n"
            "       rampartctl [--json] breaker reset TASK    close TASK's breaker and restart it (admin token)\n");
    return kUsage;
}

std::vector<std::string> row(const cJSON* task) {
    std::string retry = json_text(task, "retry_in_ms");
    return {json_text(task, "task"),
            json_text(task, "state"),
            json_text(task, "breaker"),
            json_text(task, "restarts"),
            json_text(task, "failures_in_window"),
            json_text(task, "times_opened"),
            retry == "0" ? "-" : retry + "ms",
            json_text(task, "last_error")};
}

const std::vector<std::string> kHeader = {"TASK",   "STATE", "BREAKER",   "RESTARTS", "FAILURES (WINDOW)",
                                          "OPENED", "RETRY", "LAST ERROR"};

int list(const BreakerTarget& t) {
    std::string raw;
    JsonPtr tasks = request_json(t.addr, t.token, t.timeout_ms, "GET", "/v1/agent/breakers", &raw);
    if (!tasks) return kFailure;
    if (t.json) {
        fputs(raw.c_str(), stdout);
        return kOk;
    }
    std::vector<std::vector<std::string>> rows = {kHeader};
    for (const cJSON* task = cJSON_IsArray(tasks.get()) ? tasks->child : nullptr; task; task = task->next)
        rows.push_back(row(task));
    if (rows.size() == 1) {
        printf("no supervised tasks\n");
        return kOk;
    }
    print_table(rows);
    return kOk;
}

int reset(const BreakerTarget& t, const std::string& task) {
    std::string raw;
    JsonPtr answer = request_json(t.addr, t.token, t.timeout_ms, "POST", "/v1/agent/breakers/" + task + "/reset", &raw);
    if (!answer) return kFailure;
    if (t.json) {
        fputs(raw.c_str(), stdout);
        return kOk;
    }
    const cJSON* status = cJSON_GetObjectItemCaseSensitive(answer.get(), "status");
    printf("%s: breaker reset; task %s, breaker %s\n", task.c_str(), json_text(status, "state").c_str(),
           json_text(status, "breaker").c_str());
    return kOk;
}

}  // namespace

int breaker_command(const std::vector<std::string>& args, const BreakerTarget& target) {
    if (args.size() == 2 && args[1] == "list") return list(target);
    if (args.size() == 3 && args[1] == "reset") return reset(target, args[2]);
    if (args.size() >= 2 && args[1] != "list" && args[1] != "reset")
        fprintf(stderr, "rampartctl: unknown breaker command '%s'\n", args[1].c_str());
    return breaker_usage();
}

}  // namespace rampartctl
