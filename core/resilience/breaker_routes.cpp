#include "resilience/breaker_routes.h"

#include <string_view>

#include "http/exchange.h"
#include "http/router.h"
#include "util/json.h"

namespace rampart::resilience {

namespace {

void field(std::string& out, std::string_view key, std::string_view value) {
    out += out.back() == '{' ? "" : ",";
    util::json_string_append(out, key);
    out += ':';
    util::json_string_append(out, value);
}

void field(std::string& out, std::string_view key, uint64_t value) {
    out += out.back() == '{' ? "" : ",";
    util::json_string_append(out, key);
    out += ':';
    out += std::to_string(value);
}

}  // namespace

std::string task_status_json(const TaskStatus& s) {
    std::string out = "{";
    field(out, "task", s.name);
    field(out, "state", s.state);
    field(out, "breaker", s.breaker);
    field(out, "last_action", s.last_action);
    field(out, "last_error", s.last_error);
    field(out, "restarts", s.restarts);
    field(out, "failures", s.failures);
    field(out, "failures_in_window", uint64_t{s.failures_in_window});
    field(out, "times_opened", s.times_opened);
    field(out, "retry_in_ms", s.retry_in_ms);
    return out + "}";
}

void install_breaker_routes(http::Router& router, Supervisor& supervisor) {
    router.add("GET", kBreakersPath, [&supervisor](http::Exchange& ex) {
        std::string body = "[";
        for (const TaskStatus& s : supervisor.list()) {
            if (body.size() > 1) body += ',';
            body += task_status_json(s);
        }
        ex.respond(http::Response::json(200, body + "]\n"));
    });
    router.add("POST", std::string(kBreakersPath) + "/*", [&supervisor](http::Exchange& ex) {
        constexpr std::string_view kSuffix = "/reset";
        std::string_view rest = std::string_view(ex.request().path).substr(std::string_view(kBreakersPath).size() + 1);
        if (rest.size() <= kSuffix.size() || rest.substr(rest.size() - kSuffix.size()) != kSuffix) {
            return ex.respond(http::Response::error(404, "not_found", "use POST /v1/agent/breakers/<task>/reset"));
        }
        std::string_view task = rest.substr(0, rest.size() - kSuffix.size());
        if (!valid_task_name(task) || !supervisor.reset(task)) {
            return ex.respond(http::Response::error(
                404, "unknown_task",
                "no supervised task is named \"" + std::string(task) + "\" (GET /v1/agent/breakers lists them)"));
        }
        TaskStatus s;
        supervisor.status(task, &s);
        ex.respond(http::Response::json(200, "{\"reset\":true,\"status\":" + task_status_json(s) + "}\n"));
    });
}

}  // namespace rampart::resilience
