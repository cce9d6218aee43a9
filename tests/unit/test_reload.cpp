// SIGHUP's plan: for every schema key, changing it alone either applies
// (reloadable) or is reported and kept at its running value (restart-only).
// This ties core/reload.cpp's restore list to the schema's flags.
#include <algorithm>
#include <string>

#include "config/config.h"
#include "reload.h"

// cmocka last: its fail() macro clashes with the C++ library.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using namespace rampart;
using config::ValueType;

namespace {

// A valid value different from the key's default, as an environment value.
std::string other_value(const config::KeySpec& spec) {
    std::string def = spec.default_value;
    switch (spec.type) {
        case ValueType::Int: {
            int64_t v = std::stoll(def);
            return std::to_string(v < spec.max ? v + 1 : v - 1);
        }
        case ValueType::Bool: return def == "true" ? "false" : "true";
        case ValueType::Enum: {
            std::string all = spec.enum_values;
            std::string first = all.substr(0, all.find('|'));
            if (first != def) return first;
            size_t bar = all.find('|');
            return all.substr(bar + 1, all.find('|', bar + 1) - bar - 1);
        }
        case ValueType::Address: return "127.0.0.1:9999";
        case ValueType::StringList: return std::string(spec.path) == "cluster.seeds" ? "127.0.0.1:7711" : "other_value";
        default:
            if (std::string(spec.path) == "cluster.dns_server") return "127.0.0.1:5353";
            return def == "other_value" ? "another_value" : "other_value";
    }
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

void test_each_key_applies_or_waits_for_restart(void**) {
    config::LoadResult running = config::load_defaults({});
    assert_true(running.ok());
    for (const config::KeySpec& spec : config::schema()) {
        config::Environment env{{config::env_name(spec.path), other_value(spec)}};
        // The API TLS files are checked together: set the whole group.
        if (std::string(spec.path).rfind("api.tls.", 0) == 0) {
            env.emplace("RAMPART_API_TLS_CERT", "cert.pem");
            env.emplace("RAMPART_API_TLS_KEY", "key.pem");
            env.emplace("RAMPART_API_TLS_CA", "ca.pem");
        }
        config::LoadResult loaded = config::load_defaults(env);
        if (!loaded.ok()) {
            fail_msg("%s=%s did not load: %s", config::env_name(spec.path).c_str(), other_value(spec).c_str(),
                     loaded.errors.front().to_string().c_str());
        }
        ReloadPlan plan = plan_reload(*running.config, *loaded.config);
        std::vector<std::string> effective = config::changed_keys(*running.config, plan.next);
        if (spec.reloadable) {
            if (!contains(plan.applied, spec.path) || !contains(effective, spec.path)) {
                fail_msg("reloadable key %s did not apply", spec.path);
            }
        } else {
            if (!contains(plan.needs_restart, spec.path) || !effective.empty()) {
                fail_msg("restart-only key %s changed the running config", spec.path);
            }
        }
    }
}

void test_join(void**) {
    assert_string_equal(join({}).c_str(), "");
    assert_string_equal(join({"a", "b"}).c_str(), "a, b");
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_key_applies_or_waits_for_restart),
        cmocka_unit_test(test_join),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
