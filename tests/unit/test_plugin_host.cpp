// The plugin host against real mock .so files (tests/plugins/): loading,
// the loader's refusals, per-plugin config validation, all-or-nothing
// loads, init rollback, reload, unload, hooks and exception containment.
// Everything runs on a real uv loop with a real metrics registry and
// router; the mock plugins report what they saw through metrics and log
// lines, the only channels a real plugin has.
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "auth/identity.h"
#include "http/exchange.h"
#include "http/router.h"
#include "log.h"
#include "metrics/registry.h"
#include "plugin/host.h"
#include "rampart/plugin.h"

// cmocka last: its fail() macro clashes with the C++ library.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#ifndef RAMPART_MOCK_PLUGIN_DIR
#error "RAMPART_MOCK_PLUGIN_DIR must name the directory of the mock .so files"
#endif

using namespace rampart;
using plugin::PluginHost;
using plugin::RawSection;
using plugin::RawSetting;
using Sections = std::map<std::string, RawSection, std::less<>>;

namespace {

const std::string kDir = RAMPART_MOCK_PLUGIN_DIR;

struct Fixture {
    uv_loop_t loop{};
    metrics::Registry registry;
    http::Router router;
    std::unique_ptr<PluginHost> host;
    int log_fd = -1;
};

int setup(void** state) {
    auto f = std::make_unique<Fixture>();
    if (uv_loop_init(&f->loop) != 0) return -1;
    // Capture the log in an unlinked temporary file.
    char path[] = "/tmp/rampart_test_plugin_host_XXXXXX";
    f->log_fd = mkstemp(path);
    if (f->log_fd < 0) return -1;
    unlink(path);
    log::Settings s;
    s.level = log::Level::Debug;
    s.format = log::Format::Json;
    s.fd = f->log_fd;
    log::configure(s);
    f->host = std::make_unique<PluginHost>(&f->loop, &f->registry, &f->router);
    *state = f.release();
    return 0;
}

// Close-callbacks of handles the host closed run on the next loop turns.
void drain(uv_loop_t* loop) {
    for (int i = 0; i < 4; ++i) uv_run(loop, UV_RUN_NOWAIT);
}

int teardown(void** state) {
    std::unique_ptr<Fixture> f(static_cast<Fixture*>(*state));
    f->host.reset();
    drain(&f->loop);
    // Every handle a plugin left behind must be closed by now.
    int rc = uv_loop_close(&f->loop);
    log::configure(log::Settings{});
    close(f->log_fd);
    if (rc != 0) {
        print_error("uv_loop_close: %s (a plugin handle was left open)\n", uv_strerror(rc));
        return -1;
    }
    return 0;
}

Fixture& fx(void** state) { return *static_cast<Fixture*>(*state); }

// Run the loop for about `ms` milliseconds (the mock's repeating timer
// keeps it alive, so stop it from a timer of our own).
void run_for(uv_loop_t* loop, uint64_t ms) {
    uv_timer_t stop{};
    uv_timer_init(loop, &stop);
    uv_timer_start(
        &stop, [](uv_timer_t* t) { uv_stop(t->loop); }, ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close(reinterpret_cast<uv_handle_t*>(&stop), nullptr);
    drain(loop);
}

std::string log_text(const Fixture& f) {
    std::string out;
    char buf[4096];
    off_t off = 0;
    ssize_t n;
    while ((n = pread(f.log_fd, buf, sizeof buf, off)) > 0) {
        out.append(buf, static_cast<size_t>(n));
        off += n;
    }
    return out;
}

bool log_has(const Fixture& f, const std::string& needle) { return log_text(f).find(needle) != std::string::npos; }

size_t log_count(const Fixture& f, const std::string& needle) {
    std::string text = log_text(f);
    size_t n = 0;
    for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
    return n;
}

// A metric's value; -1 when it is not registered at all.
double metric(const Fixture& f, const char* name, const std::vector<std::string>& labels = {}) {
    const metrics::Metric* m = f.registry.find(name);
    return m == nullptr ? -1 : m->value(labels);
}

RawSetting scalar(std::string value, std::string origin = "rampart.yaml:1:1") {
    RawSetting s;
    s.values = {std::move(value)};
    s.origin = std::move(origin);
    return s;
}

RawSetting list(std::vector<std::string> values, std::string origin = "rampart.yaml:1:1") {
    RawSetting s;
    s.values = std::move(values);
    s.is_list = true;
    s.origin = std::move(origin);
    return s;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

void print_errors(const std::vector<std::string>& errors) {
    for (const auto& e : errors) print_message("  error: %s\n", e.c_str());
}

bool load(Fixture& f, const std::vector<std::string>& names, const Sections& sections,
          std::vector<std::string>* errors) {
    bool ok = f.host->load(kDir, names, sections, errors);
    if (!errors->empty()) print_errors(*errors);
    return ok;
}

void load_ok(Fixture& f, const std::vector<std::string>& names, const Sections& sections = {}) {
    std::vector<std::string> errors;
    bool ok = load(f, names, sections, &errors);
    assert_true(ok);
    assert_true(errors.empty());
    assert_int_equal(f.host->count(), names.size());
}

http::Request make_request(const char* method, const char* path,
                           std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::Request r;
    r.method = method;
    r.target = path;
    r.path = path;
    for (auto& [n, v] : headers) r.headers.push_back({n, v});
    return r;
}

std::shared_ptr<http::Exchange> make_exchange(http::Request r) {
    return std::make_shared<http::Exchange>(nullptr, std::move(r), "req-test-1", "192.0.2.7");
}

// Call the handler the router picks for method+path.
std::shared_ptr<http::Exchange> call_route(Fixture& f, const char* method, const char* path) {
    http::Router::Match m = f.router.match(method, path);
    assert_non_null(m.route);
    auto ex = make_exchange(make_request(method, path));
    m.route->handler(*ex);
    return ex;
}

// ---- a good plugin --------------------------------------------------------

void test_load_good(void** state) {
    Fixture& f = fx(state);
    load_ok(f, {"mock_good"});
    assert_true(f.host->names() == std::vector<std::string>{"mock_good"});

    // The route, owned by the plugin.
    assert_true(f.router.has_route("GET", "/mock/hello"));
    http::Router::Match m = f.router.match("GET", "/mock/hello");
    assert_non_null(m.route);
    assert_non_null(m.route->owner);
    assert_int_equal(f.router.match("POST", "/mock/hello").status, 405);

    // The metrics, with the shapes the plugin asked for.
    const metrics::Metric* responses = f.registry.find("rampart_mock_responses_total");
    assert_non_null(responses);
    assert_true(responses->type() == metrics::Type::Counter);
    assert_true(responses->label_names() == std::vector<std::string>{"status"});
    const metrics::Metric* limit = f.registry.find("rampart_mock_limit");
    assert_non_null(limit);
    assert_true(limit->type() == metrics::Type::Gauge);

    // The config defaults, as the plugin read them through the services.
    assert_true(metric(f, "rampart_mock_limit") == 10);
    assert_true(log_has(f, "init config limit=10 greeting=hi loud=0 tags=0\""));
    assert_true(log_has(f, "\"msg\":\"plugin loaded\""));

    // The route answers.
    auto ex = call_route(f, "GET", "/mock/hello");
    assert_true(ex->responded());
    assert_true(metric(f, "rampart_mock_hello_total") == 1);
}

void test_timer_fires(void** state) {
    Fixture& f = fx(state);
    load_ok(f, {"mock_good"});
    assert_true(metric(f, "rampart_mock_timer_fires_total") == 0);
    run_for(&f.loop, 60);
    assert_true(metric(f, "rampart_mock_timer_fires_total") >= 2);
}

void test_route_add_after_init_is_busy(void** state) {
    Fixture& f = fx(state);
    load_ok(f, {"mock_good"});
    run_for(&f.loop, 30);
    // The timer's first tick tried route_add outside init.
    assert_true(metric(f, "rampart_mock_timer_fires_total") >= 1);
    assert_true(metric(f, "rampart_mock_late_route_rc") == -EBUSY);
    assert_false(f.router.has_route("GET", "/mock/late"));
}

void test_config_overrides(void** state) {
    Fixture& f = fx(state);
    RawSection s;
    s["limit"] = scalar("42", "rampart.yaml:3:10");
    s["greeting"] = scalar("hey", "environment RAMPART_MOCK_GOOD_GREETING");
    s["loud"] = scalar("yes");
    s["tags"] = list({"a", "b"});
    load_ok(f, {"mock_good"}, {{"mock_good", s}});
    assert_true(metric(f, "rampart_mock_limit") == 42);
    assert_true(log_has(f, "init config limit=42 greeting=hey loud=1 tags=2:a,b\""));

    // From the environment: RAMPART_MOCK_GOOD_TAGS="x,y,z" is split for a
    // list key; an int comes as text like any other.
    f.host->unload_all();
    RawSection env;
    env["tags"] = scalar("x,y,z", "environment RAMPART_MOCK_GOOD_TAGS");
    env["tags"].from_env = true;
    env["limit"] = scalar("7", "environment RAMPART_MOCK_GOOD_LIMIT");
    env["limit"].from_env = true;
    load_ok(f, {"mock_good"}, {{"mock_good", env}});
    assert_true(log_has(f, "init config limit=7 greeting=hi loud=0 tags=3:x,y,z\""));

    // A scalar given for a list key is a one-item list.
    f.host->unload_all();
    RawSection one;
    one["tags"] = scalar("solo");
    load_ok(f, {"mock_good"}, {{"mock_good", one}});
    assert_true(log_has(f, "init config limit=10 greeting=hi loud=0 tags=1:solo\""));
}

void test_config_bounds_accepted(void** state) {
    Fixture& f = fx(state);
    RawSection s;
    s["limit"] = scalar("100");
    s["greeting"] = scalar(std::string(32, 'g'));  // exactly the declared max
    load_ok(f, {"mock_good"}, {{"mock_good", s}});
    assert_true(metric(f, "rampart_mock_limit") == 100);
    f.host->unload_all();
    s["limit"] = scalar("1");
    load_ok(f, {"mock_good"}, {{"mock_good", s}});
    assert_true(metric(f, "rampart_mock_limit") == 1);
}

// ---- config errors ----------------------------------------------------------

void test_unknown_key(void** state) {
    Fixture& f = fx(state);
    RawSection s;
    s["colour"] = scalar("red", "rampart.yaml:7:3");
    std::vector<std::string> errors;
    assert_false(load(f, {"mock_good"}, {{"mock_good", s}}, &errors));
    assert_int_equal(errors.size(), 1);
    assert_string_equal(errors[0].c_str(),
                        "rampart.yaml:7:3: mock_good.colour: unknown key in section \"mock_good\"; "
                        "allowed: limit, greeting, loud, tags");
    assert_int_equal(f.host->count(), 0);
    assert_false(f.router.has_route("GET", "/mock/hello"));
    // Validation happens before init: the plugin never ran.
    assert_false(log_has(f, "init config"));
}

void test_out_of_range_int(void** state) {
    Fixture& f = fx(state);
    struct Case {
        const char* value;
        const char* error;
    } cases[] = {
        {"101", "rampart.yaml:4:10: mock_good.limit: must be between 1 and 100, got 101"},
        {"0", "rampart.yaml:4:10: mock_good.limit: must be between 1 and 100, got 0"},
        {"-5", "rampart.yaml:4:10: mock_good.limit: must be between 1 and 100, got -5"},
        {"ten", "rampart.yaml:4:10: mock_good.limit: expected an integer, got \"ten\""},
        {"", "rampart.yaml:4:10: mock_good.limit: expected an integer, got \"\""},
        {"10x", "rampart.yaml:4:10: mock_good.limit: expected an integer, got \"10x\""},
        {"99999999999999999999",
         "rampart.yaml:4:10: mock_good.limit: expected an integer, got \"99999999999999999999\""},
    };
    for (const Case& c : cases) {
        RawSection s;
        s["limit"] = scalar(c.value, "rampart.yaml:4:10");
        std::vector<std::string> errors;
        assert_false(load(f, {"mock_good"}, {{"mock_good", s}}, &errors));
        assert_int_equal(errors.size(), 1);
        assert_string_equal(errors[0].c_str(), c.error);
        assert_int_equal(f.host->count(), 0);
    }
}

void test_bad_bool_and_string(void** state) {
    Fixture& f = fx(state);
    RawSection s;
    s["loud"] = scalar("maybe", "a.yaml:1:7");
    s["greeting"] = scalar(std::string(33, 'g'), "a.yaml:2:11");
    s["tags"] = list({"ok", std::string("bad\x01", 4)}, "a.yaml:3:7");
    std::vector<std::string> errors;
    assert_false(load(f, {"mock_good"}, {{"mock_good", s}}, &errors));
    // The whole section is checked: every problem is reported at once.
    assert_int_equal(errors.size(), 3);
    assert_true(contains(errors, "a.yaml:1:7: mock_good.loud: expected true or false"));
    assert_true(contains(errors, "a.yaml:2:11: mock_good.greeting: longer than 32 characters"));
    assert_true(contains(errors, "a.yaml:3:7: mock_good.tags: contains a control character"));
    assert_int_equal(f.host->count(), 0);
}

void test_wrong_type_list(void** state) {
    Fixture& f = fx(state);
    RawSection s;
    s["limit"] = list({"1", "2"}, "rampart.yaml:5:3");
    std::vector<std::string> errors;
    assert_false(load(f, {"mock_good"}, {{"mock_good", s}}, &errors));
    assert_int_equal(errors.size(), 1);
    assert_string_equal(errors[0].c_str(), "rampart.yaml:5:3: mock_good.limit: expected a single value, got a list");
    assert_int_equal(f.host->count(), 0);

    // An empty list for a scalar key is still a list.
    s["limit"] = list({}, "rampart.yaml:5:3");
    errors.clear();
    assert_false(load(f, {"mock_good"}, {{"mock_good", s}}, &errors));
    assert_int_equal(errors.size(), 1);
}

// A scalar setting that carries no value (e.g. `limit:` with nothing after
// it) must not slip past the bounds: the plugin would read limit=0.
void test_scalar_without_value(void** state) {
    Fixture& f = fx(state);
    RawSetting empty;
    empty.origin = "rampart.yaml:6:3";
    RawSection s;
    s["limit"] = empty;
    std::vector<std::string> errors;
    bool ok = load(f, {"mock_good"}, {{"mock_good", s}}, &errors);
    if (ok)
        print_error("limit with no value was accepted; the plugin read limit=%g\n", metric(f, "rampart_mock_limit"));
    assert_false(ok);
    assert_int_equal(errors.size(), 1);
    assert_string_equal(errors[0].c_str(), "rampart.yaml:6:3: mock_good.limit: expected a single value, got none");
    assert_int_equal(f.host->count(), 0);
}

// --check-config: open and validate, never call init.
void test_check_config(void** state) {
    Fixture& f = fx(state);
    std::vector<std::string> errors;
    assert_true(PluginHost::check(kDir, {"mock_good", "mock_cxx_throw"}, {}, &errors));
    assert_true(errors.empty());
    RawSection bad;
    bad["limit"] = scalar("0", "rampart.yaml:2:10");
    RawSection throws;
    throws["throw_init"] = scalar("true");  // valid; init is not called
    assert_false(PluginHost::check(kDir, {"mock_good", "mock_abi", "mock_cxx_throw", "mock_nothere"},
                                   {{"mock_good", bad}, {"mock_cxx_throw", throws}}, &errors));
    // Every problem, not only the first.
    assert_int_equal(errors.size(), 3);
    assert_string_equal(errors[0].c_str(), "rampart.yaml:2:10: mock_good.limit: must be between 1 and 100, got 0");
    assert_string_equal(errors[1].c_str(), "plugin mock_abi built for ABI 2, host has 1: rebuild");
    assert_string_equal(errors[2].c_str(), ("plugin mock_nothere: " + kDir + "/mock_nothere.so not found").c_str());
    assert_int_equal(f.host->count(), 0);
    assert_false(log_has(f, "init config"));
    assert_true(metric(f, "rampart_mock_cxx_calls_total", {"init"}) == -1);  // never registered
    assert_false(f.router.has_route("GET", "/mock/hello"));
}

// ---- the loader's refusals -----------------------------------------------------

void test_abi_mismatch(void** state) {
    Fixture& f = fx(state);
    std::vector<std::string> errors;
    assert_false(load(f, {"mock_abi"}, {}, &errors));
    assert_int_equal(errors.size(), 1);
    assert_string_equal(errors[0].c_str(), "plugin mock_abi built for ABI 2, host has 1: rebuild");
    assert_int_equal(f.host->count(), 0);
}

void test_missing_file(void** state) {
    Fixture& f = fx(state);
    std::vector<std::string> errors;
    assert_false(load(f, {"mock_nothere"}, {}, &errors));
    assert_int_equal(errors.size(), 1);
    assert_string_equal(errors[0].c_str(), ("plugin mock_nothere: " + kDir + "/mock_nothere.so not found").c_str());
    assert_int_equal(f.host->count(), 0);
}

void test_missing_symbol(void** state) {
    Fixture& f = fx(state);
    std::vector<std::string> errors;
    assert_false(load(f, {"mock_noentry"}, {}, &errors));
    assert_int_equal(errors.size(), 1);
    assert_string_equal(
        errors[0].c_str(),
        ("plugin mock_noentry: " + kDir + "/mock_noentry.so does not export rampart_plugin_entry").c_str());
    assert_int_equal(f.host->count(), 0);
}

void test_not_a_shared_object(void** state) {
    Fixture& f = fx(state);
    char dir[] = "/tmp/rampart_plugin_dir_XXXXXX";
    assert_non_null(mkdtemp(dir));
    std::string path = std::string(dir) + "/mock_junk.so";
    FILE* fp = fopen(path.c_str(), "w");
    assert_non_null(fp);
    fputs("not an ELF file\n", fp);
    fclose(fp);
    std::vector<std::string> errors;
    bool ok = f.host->load(dir, {"mock_junk"}, {}, &errors);
    unlink(path.c_str());
    rmdir(dir);
    assert_false(ok);
    assert_int_equal(errors.size(), 1);
    assert_true(errors[0].rfind("plugin mock_junk: cannot load " + path + ": ", 0) == 0);
}

void test_descriptor_too_small(void** state) {
    Fixture& f = fx(state);
    std::vector<std::string> errors;
    assert_false(load(f, {"mock_small"}, {}, &errors));
    assert_int_equal(errors.size(), 1);
    std::string want =
        "plugin mock_small: descriptor too small (" + std::to_string(offsetof(rampart_plugin, hooks)) + " bytes)";
    assert_string_equal(errors[0].c_str(), want.c_str());
    assert_int_equal(f.host->count(), 0);
}

void test_bad_name(void** state) {
    Fixture& f = fx(state);
    std::vector<std::string> errors;
    assert_false(load(f, {"mock_badname"}, {}, &errors));
    assert_int_equal(errors.size(), 1);
    assert_string_equal(errors[0].c_str(),
                        "plugin mock_badname: descriptor names itself \"mock_other\"; the file must be named after it");
    assert_int_equal(f.host->count(), 0);
}

// ---- rollback and all-or-nothing ------------------------------------------------

void test_init_failure_rolls_back(void** state) {
    Fixture& f = fx(state);
    std::vector<std::string> errors;
    assert_false(load(f, {"mock_initfail"}, {}, &errors));
    assert_int_equal(errors.size(), 1);
    assert_string_equal(errors[0].c_str(), "plugin mock_initfail: init failed (-22)");
    assert_int_equal(f.host->count(), 0);
    assert_false(f.router.has_route("GET", "/mock/initfail"));
    assert_int_equal(f.router.match("GET", "/mock/initfail").status, 404);
    // The 1 ms repeating timer it started was stopped with it.
    run_for(&f.loop, 20);
    assert_true(metric(f, "rampart_mock_initfail_ticks_total") == 0);
}

// A plugin's failed init must not take a core route with the same path.
void test_route_conflict_keeps_core_route(void** state) {
    Fixture& f = fx(state);
    int core_calls = 0;
    f.router.add("GET", "/mock/hello", [&core_calls](http::Exchange& ex) {
        ++core_calls;
        ex.respond(http::Response::json(200, "{}"));
    });
    std::vector<std::string> errors;
    assert_false(load(f, {"mock_good"}, {}, &errors));
    assert_int_equal(errors.size(), 1);
    assert_string_equal(errors[0].c_str(), "plugin mock_good: init failed (-17)");
    assert_int_equal(f.host->count(), 0);
    assert_true(f.router.has_route("GET", "/mock/hello"));
    auto ex = call_route(f, "GET", "/mock/hello");
    assert_int_equal(core_calls, 1);
    assert_true(ex->responded());
}

void test_all_or_nothing(void** state) {
    Fixture& f = fx(state);
    std::vector<std::string> errors;
    assert_false(load(f, {"mock_good", "mock_abi"}, {}, &errors));
    assert_int_equal(errors.size(), 1);
    assert_string_equal(errors[0].c_str(), "plugin mock_abi built for ABI 2, host has 1: rebuild");
    assert_int_equal(f.host->count(), 0);
    assert_false(f.router.has_route("GET", "/mock/hello"));
    // mock_good was initialised, so it was finalised too.
    assert_true(log_has(f, "init config limit=10"));
    assert_int_equal(log_count(f, "\"msg\":\"fini\""), 1);
    // And its timer is gone.
    double fires = metric(f, "rampart_mock_timer_fires_total");
    run_for(&f.loop, 30);
    assert_true(metric(f, "rampart_mock_timer_fires_total") == fires);
}

void test_listed_twice(void** state) {
    Fixture& f = fx(state);
    std::vector<std::string> errors;
    assert_false(load(f, {"mock_good", "mock_good"}, {}, &errors));
    assert_int_equal(errors.size(), 1);
    assert_string_equal(errors[0].c_str(), "plugin mock_good: listed twice in plugins.load");
    assert_int_equal(f.host->count(), 0);
    assert_false(f.router.has_route("GET", "/mock/hello"));
    assert_int_equal(log_count(f, "\"msg\":\"fini\""), 1);
}

// ---- reload and unload -----------------------------------------------------------

void test_reload(void** state) {
    Fixture& f = fx(state);
    RawSection s;
    s["limit"] = scalar("20");
    s["greeting"] = scalar("hey");
    load_ok(f, {"mock_good"}, {{"mock_good", s}});
    assert_true(metric(f, "rampart_mock_limit") == 20);

    // An invalid section: reload is not called, the old config stays.
    RawSection bad;
    bad["limit"] = scalar("500", "rampart.yaml:9:10");
    std::vector<std::string> errors;
    f.host->reload({{"mock_good", bad}}, &errors);
    assert_int_equal(errors.size(), 1);
    assert_string_equal(errors[0].c_str(), "rampart.yaml:9:10: mock_good.limit: must be between 1 and 100, got 500");
    assert_int_equal(log_count(f, "\"msg\":\"reload\""), 0);
    call_route(f, "GET", "/mock/hello");
    assert_true(log_has(f, "hello config limit=20 greeting=hey loud=0 tags=0\""));
    assert_true(metric(f, "rampart_mock_limit") == 20);

    // A valid section: applied, and the plugin's reload sees it.
    RawSection good;
    good["limit"] = scalar("30");
    good["greeting"] = scalar("hey");
    good["loud"] = scalar("true");
    errors.clear();
    f.host->reload({{"mock_good", good}}, &errors);
    print_errors(errors);
    assert_true(errors.empty());
    assert_true(log_has(f, "reload config limit=30 greeting=hey loud=1 tags=0\""));
    assert_true(metric(f, "rampart_mock_limit") == 30);

    // The plugin's reload refuses: the previous config is restored.
    RawSection refused;
    refused["limit"] = scalar("40");
    refused["greeting"] = scalar("fail-reload");
    errors.clear();
    f.host->reload({{"mock_good", refused}}, &errors);
    assert_int_equal(errors.size(), 1);
    assert_string_equal(errors[0].c_str(), "plugin mock_good: reload failed (-22); keeping its previous configuration");
    call_route(f, "GET", "/mock/hello");
    assert_true(log_has(f, "hello config limit=30 greeting=hey loud=1 tags=0\""));

    // A section that disappeared means defaults.
    errors.clear();
    f.host->reload({}, &errors);
    assert_true(errors.empty());
    assert_true(log_has(f, "reload config limit=10 greeting=hi loud=0 tags=0\""));
    // Still loaded, timers still running.
    assert_int_equal(f.host->count(), 1);
    double fires = metric(f, "rampart_mock_timer_fires_total");
    run_for(&f.loop, 30);
    assert_true(metric(f, "rampart_mock_timer_fires_total") > fires);
}

void test_unload_stops_timers(void** state) {
    Fixture& f = fx(state);
    load_ok(f, {"mock_good"});
    run_for(&f.loop, 30);
    double fires = metric(f, "rampart_mock_timer_fires_total");
    assert_true(fires >= 1);
    f.host->unload_all();
    assert_int_equal(f.host->count(), 0);
    assert_false(f.router.has_route("GET", "/mock/hello"));
    assert_int_equal(log_count(f, "\"msg\":\"fini\""), 1);
    run_for(&f.loop, 40);
    assert_true(metric(f, "rampart_mock_timer_fires_total") == fires);
    // The loop has nothing of the plugin's left.
    assert_int_equal(uv_run(&f.loop, UV_RUN_NOWAIT), 0);
    // Loading again works (same metrics: same shape, same series).
    load_ok(f, {"mock_good"});
    assert_true(f.router.has_route("GET", "/mock/hello"));
}

// ---- hooks -----------------------------------------------------------------

void test_hooks(void** state) {
    Fixture& f = fx(state);
    load_ok(f, {"mock_good"});
    assert_true(f.host->accept("192.0.2.7"));

    auto pass = make_exchange(make_request("GET", "/mock/hello"));
    assert_false(f.host->admission(*pass));
    assert_false(f.host->dedup(*pass));  // mock_good has no on_dedup
    assert_false(pass->responded());
    assert_true(metric(f, "rampart_mock_denied_total") == 0);

    auto deny = make_exchange(make_request("GET", "/mock/hello", {{"x-mock-deny", "1"}}));
    assert_true(f.host->admission(*deny));
    assert_true(deny->responded());
    assert_true(metric(f, "rampart_mock_denied_total") == 1);

    http::Response r = http::Response::error(429, "mock_denied", "denied by mock");
    f.host->response(*deny, r);
    http::Response ok = http::Response::json(200, "{}");
    f.host->response(*pass, ok);
    f.host->response(*pass, ok);
    assert_true(metric(f, "rampart_mock_responses_total", {"429"}) == 1);
    assert_true(metric(f, "rampart_mock_responses_total", {"200"}) == 2);

    f.host->auth_failure("192.0.2.7", "invalid_token");  // mock_good has no such hook
}

// Services a hook or handler gets: the request accessors, respond twice,
// header injection, metrics_render.
void test_request_services(void** state) {
    Fixture& f = fx(state);
    load_ok(f, {"mock_good"});
    http::Request r = make_request("GET", "/mock/hello", {{"User-Agent", "cmocka/1"}});
    r.target = "/mock/hello?a=1&b=2";
    r.query = "a=1&b=2";
    r.body = "payload";
    auto ex = make_exchange(std::move(r));
    ex->set_identity(auth::Identity{auth::IdentityKind::Token, "ci", "write"});
    http::Router::Match m = f.router.match("GET", "/mock/hello");
    assert_non_null(m.route);
    m.route->handler(*ex);
    assert_true(ex->responded());
    assert_true(log_has(f,
                        "request method=GET path=/mock/hello query=a=1&b=2 id=req-test-1 ip=192.0.2.7 kind=1 "
                        "name=ci role=write route=(none) agent=cmocka/1 body=payload\""));
    assert_true(metric(f, "rampart_mock_render_ok") == 1);

    // on_admission's answer: a second respond is refused, and so is a
    // header value that would split the response.
    auto deny = make_exchange(make_request("GET", "/mock/hello", {{"X-Mock-Deny", "1"}}));
    assert_true(f.host->admission(*deny));
    assert_true(metric(f, "rampart_mock_second_respond_rc") == -EALREADY);
    assert_true(metric(f, "rampart_mock_bad_header_rc") == -EINVAL);
}

// A plugin built against a shorter rampart_hooks: the host reads only the
// members inside its struct_size.
void test_old_hooks_struct(void** state) {
    Fixture& f = fx(state);
    load_ok(f, {"mock_oldhooks"});
    assert_true(f.host->accept("192.0.2.7"));
    assert_true(metric(f, "rampart_mock_oldhooks_calls_total", {"on_accept"}) == 1);
    auto ex = make_exchange(make_request("GET", "/anything"));
    assert_false(f.host->admission(*ex));
    assert_false(ex->responded());
    assert_true(metric(f, "rampart_mock_oldhooks_calls_total", {"on_admission"}) == 0);
}

// ---- exceptions from a C++ plugin ------------------------------------------------

double cxx_calls(const Fixture& f, const char* callback) {
    return metric(f, "rampart_mock_cxx_calls_total", {callback});
}

void test_cxx_throw_contained(void** state) {
    Fixture& f = fx(state);
    load_ok(f, {"mock_cxx_throw", "mock_good"});

    // Step 1: the throw is contained and the connection accepted.
    assert_true(f.host->accept("192.0.2.7"));
    assert_true(cxx_calls(f, "on_accept") == 1);

    // Step 3: mock_cxx_throw throws first, mock_good still answers.
    auto deny = make_exchange(make_request("GET", "/mock/hello", {{"X-Mock-Deny", "1"}}));
    assert_true(f.host->admission(*deny));
    assert_true(cxx_calls(f, "on_admission") == 1);
    assert_true(metric(f, "rampart_mock_denied_total") == 1);

    // Step 4 throws too; nobody answers.
    auto pass = make_exchange(make_request("GET", "/mock/hello"));
    assert_false(f.host->admission(*pass));
    assert_false(f.host->dedup(*pass));
    assert_true(cxx_calls(f, "on_dedup") == 1);
    assert_false(pass->responded());

    // Step 6: every plugin's on_response runs.
    f.host->response(*deny, http::Response::error(429, "mock_denied", "denied"));
    assert_true(cxx_calls(f, "on_response") == 1);
    assert_true(metric(f, "rampart_mock_responses_total", {"429"}) == 1);

    f.host->auth_failure("192.0.2.7", "invalid_token");
    assert_true(cxx_calls(f, "on_auth_failure") == 1);

    // A throwing timer callback.
    run_for(&f.loop, 20);
    assert_true(cxx_calls(f, "timer") == 1);
    assert_true(log_has(f, "plugin timer callback threw an exception"));

    // A throwing reload: reported, the plugin stays.
    std::vector<std::string> errors;
    f.host->reload({}, &errors);
    assert_true(contains(errors, "plugin mock_cxx_throw: reload failed (-1); keeping its previous configuration"));
    assert_true(cxx_calls(f, "reload") == 1);
    assert_int_equal(f.host->count(), 2);

    assert_true(log_has(f, "\"callback\":\"on_admission\""));
    assert_true(log_has(f, "\"callback\":\"on_response\""));

    // fini throws as well; unloading still completes.
    f.host->unload_all();
    assert_true(cxx_calls(f, "fini") == 1);
    assert_int_equal(f.host->count(), 0);
    assert_false(f.router.has_route("GET", "/mock/throw"));
}

// A route handler is a plugin callback like any other: its exception must
// not unwind into the HTTP server (and from there through libuv).
void test_cxx_throw_in_route_contained(void** state) {
    Fixture& f = fx(state);
    load_ok(f, {"mock_cxx_throw"});
    http::Router::Match m = f.router.match("GET", "/mock/throw");
    assert_non_null(m.route);
    auto ex = make_exchange(make_request("GET", "/mock/throw"));
    bool escaped = false;
    try {
        m.route->handler(*ex);
    } catch (...) {
        escaped = true;
    }
    assert_true(cxx_calls(f, "route") == 1);
    if (escaped) print_error("the exception from mock_cxx_throw's route handler escaped the host\n");
    assert_false(escaped);
    // The host logs it and answers 500 for it.
    assert_true(ex->responded());
    assert_true(log_has(f, "\"msg\":\"plugin route handler threw an exception\",\"plugin\":\"mock_cxx_throw\""));
}

void test_cxx_throw_in_init(void** state) {
    Fixture& f = fx(state);
    RawSection s;
    s["throw_init"] = scalar("true");
    std::vector<std::string> errors;
    assert_false(load(f, {"mock_good", "mock_cxx_throw"}, {{"mock_cxx_throw", s}}, &errors));
    assert_int_equal(errors.size(), 1);
    assert_string_equal(errors[0].c_str(), "plugin mock_cxx_throw: init failed");
    assert_true(cxx_calls(f, "init") == 1);
    assert_int_equal(f.host->count(), 0);
    assert_false(f.router.has_route("GET", "/mock/hello"));
    assert_true(log_has(f, "\"callback\":\"init\""));
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_fires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_add_after_init_is_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_overrides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_bounds_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range_int, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_bool_and_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_type_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scalar_without_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abi_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_symbol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_shared_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_descriptor_too_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_failure_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_conflict_keeps_core_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listed_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unload_stops_timers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_services, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_hooks_struct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cxx_throw_contained, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cxx_throw_in_route_contained, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cxx_throw_in_init, setup, teardown),
    };
    return cmocka_run_group_tests_name("plugin_host", tests, nullptr, nullptr);
}
