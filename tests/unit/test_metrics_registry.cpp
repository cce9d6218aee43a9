// The metric registry: name and label rules, registration (and finding an
// existing metric again), counter/gauge/histogram semantics, the
// cardinality cap, and the Prometheus text format, byte for byte and as
// promtool reads it.
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "metrics/registry.h"

// cmocka last: its fail() macro clashes with the C++ library.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using namespace rampart::metrics;
using Labels = std::vector<std::string>;
using Values = std::vector<std::string_view>;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

size_t count_of(const std::string& haystack, const std::string& needle) {
    size_t n = 0;
    for (size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
    return n;
}

// Assert two renderings are equal, printing both when they differ.
void assert_render(const std::string& got, const std::string& want) {
    if (got != want) print_error("rendered:\n%s\nexpected:\n%s\n", got.c_str(), want.c_str());
    assert_true(got == want);
}

// Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool valid_utf8(const std::string& s) {
    size_t i = 0;
    while (i < s.size()) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        size_t len = 0;
        uint32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            len = 2, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4, cp = c & 0x07;
        else
            return false;
        if (i + len > s.size()) return false;
        for (size_t k = 1; k < len; ++k) {
            unsigned char d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (d & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += len;
    }
    return true;
}

// ---- names ------------------------------------------------------------------

void test_metric_names(void**) {
    assert_true(valid_metric_name("rampart_requests_total"));
    assert_true(valid_metric_name("rampart:rule_total"));
    assert_true(valid_metric_name("_x"));
    assert_true(valid_metric_name("Rampart_X9"));
    assert_false(valid_metric_name(""));
    assert_false(valid_metric_name("9rampart"));
    assert_false(valid_metric_name("rampart-requests"));
    assert_false(valid_metric_name("rampart requests"));
    assert_false(valid_metric_name("rampart.requests"));
    assert_false(valid_metric_name("rämpart"));
}

void test_label_names(void**) {
    assert_true(valid_label_name("route"));
    assert_true(valid_label_name("_route"));
    assert_true(valid_label_name("Status2"));
    assert_false(valid_label_name(""));
    assert_false(valid_label_name("__name__"));  // reserved prefix
    assert_false(valid_label_name("__x"));
    assert_false(valid_label_name("le"));        // histogram bucket label
    assert_false(valid_label_name("quantile"));  // summary label
    assert_false(valid_label_name("2xx"));
    assert_false(valid_label_name("a:b"));  // colons only in metric names
    assert_false(valid_label_name("a-b"));
}

// ---- registration --------------------------------------------------------------

void refused(Metric* m, const std::string& error, const char* want) {
    if (m != nullptr) print_error("registration accepted; wanted \"%s\"\n", want);
    assert_null(m);
    if (error != want) print_error("error \"%s\", wanted \"%s\"\n", error.c_str(), want);
    assert_string_equal(error.c_str(), want);
}

void test_registration_rules(void**) {
    Registry r;
    std::string e;
    refused(r.counter("rampart_requests", "h", {}, &e), e, "rampart_requests: counter names end in _total");
    refused(r.gauge("rampart_open_total", "h", {}, &e), e, "rampart_open_total: only counters end in _total");
    refused(r.histogram("rampart_latency_total", "h", {}, {1}, &e), e,
            "rampart_latency_total: only counters end in _total");
    refused(r.counter("requests_total", "h", {}, &e), e, "requests_total: metric names start with rampart_");
    refused(r.counter("rampart-requests_total", "h", {}, &e), e, "rampart-requests_total: invalid metric name");
    refused(r.counter("", "h", {}, &e), e, ": invalid metric name");
    refused(r.counter("rampart_x_total", "h", {"le"}, &e), e, "rampart_x_total: invalid label name \"le\"");
    refused(r.counter("rampart_x_total", "h", {"__x"}, &e), e, "rampart_x_total: invalid label name \"__x\"");
    refused(r.counter("rampart_x_total", "h", {"ok", ""}, &e), e, "rampart_x_total: invalid label name \"\"");

    Labels eight = {"a", "b", "c", "d", "e", "f", "g", "h"};
    assert_non_null(r.counter("rampart_eight_total", "h", eight, &e));
    Labels nine = eight;
    nine.push_back("i");
    refused(r.counter("rampart_nine_total", "h", nine, &e), e, "rampart_nine_total: more than 8 labels");

    const char* bucket_error = "rampart_seconds: histogram buckets must be non-empty and strictly increasing";
    refused(r.histogram("rampart_seconds", "h", {}, {}, &e), e, bucket_error);
    refused(r.histogram("rampart_seconds", "h", {}, {1, 0.5}, &e), e, bucket_error);
    refused(r.histogram("rampart_seconds", "h", {}, {0.5, 1, 1}, &e), e, bucket_error);
    assert_non_null(r.histogram("rampart_seconds", "h", {}, {0.5, 1}, &e));

    // Refused registrations leave nothing behind.
    assert_null(r.find("rampart_requests"));
    assert_null(r.find("rampart_nine_total"));
    // No error pointer: still refused, no crash.
    assert_null(r.counter("bad", "h", {}));
}

// {a="1",a="2"} is not valid exposition: promtool rejects the whole scrape.
void test_duplicate_label_names(void**) {
    Registry r;
    std::string e;
    Metric* m = r.counter("rampart_dup_total", "h", {"route", "route"}, &e);
    if (m != nullptr) {
        m->add({"a", "b"}, 1);
        print_error("accepted duplicate label names; renders as:\n%s", r.render().c_str());
    }
    assert_null(m);
    assert_string_equal(e.c_str(), "rampart_dup_total: duplicate label name \"route\"");
    assert_null(r.histogram("rampart_dup_seconds", "h", {"x", "y", "x"}, {1}, &e));
    assert_string_equal(e.c_str(), "rampart_dup_seconds: duplicate label name \"x\"");
}

// A NaN bound compares false both ways, so it slips through the ordering
// check; an explicit +Inf would be printed twice (the host adds its own).
void test_nonfinite_buckets(void**) {
    Registry r;
    std::string e;
    assert_null(r.histogram("rampart_nan_seconds", "h", {}, {NAN}, &e));
    assert_null(r.histogram("rampart_nan2_seconds", "h", {}, {1, NAN, 2}, &e));
    assert_null(r.histogram("rampart_ninf_seconds", "h", {}, {-INFINITY, 1}, &e));
    Metric* m = r.histogram("rampart_inf_seconds", "h", {}, {1, INFINITY}, &e);
    if (m != nullptr) {
        // Accepting it is fine only if +Inf still appears once.
        m->observe({}, 5);
        std::string out = r.render();
        if (count_of(out, "le=\"+Inf\"") != 1) print_error("%s", out.c_str());
        assert_int_equal(count_of(out, "le=\"+Inf\""), 1);
    }
    assert_false(contains(r.render(), "NaN"));
}

// A histogram X renders X_bucket, X_sum and X_count; a metric of its own
// under one of those names gives a second HELP/TYPE for the same family,
// and promtool rejects the whole exposition.
void test_histogram_series_name_clash(void**) {
    Registry r;
    std::string e;
    assert_non_null(r.histogram("rampart_req_seconds", "h", {}, {1}, &e));
    refused(r.gauge("rampart_req_seconds_count", "h", {}, &e), e,
            "rampart_req_seconds_count: clashes with the series of histogram rampart_req_seconds");
    refused(r.gauge("rampart_req_seconds_sum", "h", {}, &e), e,
            "rampart_req_seconds_sum: clashes with the series of histogram rampart_req_seconds");
    refused(r.histogram("rampart_req_seconds_bucket", "h", {}, {1}, &e), e,
            "rampart_req_seconds_bucket: clashes with the series of histogram rampart_req_seconds");
    // The other order.
    assert_non_null(r.gauge("rampart_lat_seconds_sum", "h", {}, &e));
    refused(r.histogram("rampart_lat_seconds", "h", {}, {1}, &e), e,
            "rampart_lat_seconds: histogram series would clash with rampart_lat_seconds_sum");
    // Not a clash: a gauge whose base is not a histogram, and _total counters.
    assert_non_null(r.gauge("rampart_queue", "h", {}, &e));
    assert_non_null(r.gauge("rampart_queue_count", "h", {}, &e));
    assert_non_null(r.counter("rampart_req_seconds_count_total", "h", {}, &e));
}

void test_reregistration(void**) {
    Registry r;
    std::string e;
    Metric* a = r.counter("rampart_requests_total", "Requests.", {"route", "status"}, &e);
    assert_non_null(a);
    // Same shape (help may differ): the same metric, series kept.
    a->add({"/v1", "200"}, 3);
    Metric* b = r.counter("rampart_requests_total", "Other help.", {"route", "status"}, &e);
    assert_ptr_equal(a, b);
    assert_true(b->value({"/v1", "200"}) == 3);
    assert_ptr_equal(r.find("rampart_requests_total"), a);

    const char* clash = "rampart_requests_total: already registered with another type, labels or buckets";
    refused(r.counter("rampart_requests_total", "h", {"route"}, &e), e, clash);
    refused(r.counter("rampart_requests_total", "h", {"status", "route"}, &e), e, clash);
    refused(r.counter("rampart_requests_total", "h", {}, &e), e, clash);

    Metric* g = r.gauge("rampart_connections", "h", {}, &e);
    assert_non_null(g);
    refused(r.histogram("rampart_connections", "h", {}, {1}, &e), e,
            "rampart_connections: already registered with another type, labels or buckets");

    Metric* h = r.histogram("rampart_latency_seconds", "h", {}, {0.1, 1}, &e);
    assert_non_null(h);
    assert_ptr_equal(r.histogram("rampart_latency_seconds", "h", {}, {0.1, 1}, &e), h);
    refused(r.histogram("rampart_latency_seconds", "h", {}, {0.1, 1, 10}, &e), e,
            "rampart_latency_seconds: already registered with another type, labels or buckets");
    refused(r.gauge("rampart_latency_seconds", "h", {}, &e), e,
            "rampart_latency_seconds: already registered with another type, labels or buckets");
}

// ---- values ----------------------------------------------------------------------

void test_counter_gauge_semantics(void**) {
    Registry r;
    Metric* c = r.counter("rampart_events_total", "h", {"kind"});
    c->add({"a"}, 2);
    c->add({"a"}, 0.5);
    c->add({"a"}, -1);     // counters only go up
    c->add({"a"}, NAN);    // ignored
    c->set({"a"}, 100);    // not a gauge operation
    c->observe({"a"}, 1);  // not a histogram operation
    assert_true(c->value({"a"}) == 2.5);
    assert_true(c->value({"missing"}) == 0);
    assert_int_equal(c->series_count(), 1);

    Metric* g = r.gauge("rampart_queue_depth", "h", {});
    g->set({}, 7);
    g->add({}, -3);  // gauges go both ways
    assert_true(g->value({}) == 4);
    g->set({}, -2.5);
    assert_true(g->value({}) == -2.5);

    // Fewer label values than names: the rest are "".
    Metric* two = r.counter("rampart_pairs_total", "h", {"a", "b"});
    two->add({"x"}, 1);
    assert_true(two->value({"x", ""}) == 1);
    two->add({"x", "", "ignored"}, 1);
    assert_true(two->value({"x", ""}) == 2);
}

void test_cardinality_cap(void**) {
    Registry r(3);
    Metric* m = r.counter("rampart_hits_total", "h", {"path", "method"});
    m->add({"/a", "GET"}, 1);
    m->add({"/b", "GET"}, 1);
    m->add({"/c", "GET"}, 1);
    assert_int_equal(m->series_count(), 3);
    // Past the cap, new label sets share one series of "_other" values.
    m->add({"/d", "GET"}, 1);
    m->add({"/e", "PUT"}, 2);
    m->add({"/f", "GET"}, 4);
    assert_int_equal(m->series_count(), 4);
    assert_true(m->value({"_other", "_other"}) == 7);
    assert_true(m->value({"/d", "GET"}) == 0);
    // Existing series still count.
    m->add({"/a", "GET"}, 1);
    assert_true(m->value({"/a", "GET"}) == 2);
    assert_int_equal(m->series_count(), 4);
    assert_true(contains(r.render(), "rampart_hits_total{path=\"_other\",method=\"_other\"} 7\n"));

    // Histograms fold the same way, buckets and all.
    Metric* h = r.histogram("rampart_wait_seconds", "h", {"peer"}, {1});
    for (const char* peer : {"n1", "n2", "n3", "n4", "n5"}) h->observe({peer}, 0.5);
    assert_int_equal(h->series_count(), 4);
    assert_true(h->value({"_other"}) == 2);
    std::string out = r.render();
    assert_true(contains(out, "rampart_wait_seconds_bucket{peer=\"_other\",le=\"1\"} 2\n"));
    assert_true(contains(out, "rampart_wait_seconds_count{peer=\"_other\"} 2\n"));

    // The default cap.
    Registry big;
    Metric* d = big.gauge("rampart_many", "h", {"k"});
    for (int i = 0; i < 1500; ++i) d->set({std::to_string(i)}, i);
    assert_int_equal(d->series_count(), Registry::kDefaultMaxSeries + 1);
}

// ---- rendering ---------------------------------------------------------------------

void test_histogram_render(void**) {
    Registry r;
    Metric* h = r.histogram("rampart_request_duration_seconds", "Time to answer.", {"route"}, {0.25, 0.5, 1, 2.5});
    h->observe({"/v1"}, 0.125);
    h->observe({"/v1"}, 0.5);  // on a bound: counted in that bucket (le is <=)
    h->observe({"/v1"}, 0.75);
    h->observe({"/v1"}, 4);    // past the last bound: only +Inf
    h->observe({"/v1"}, NAN);  // ignored
    assert_true(h->value({"/v1"}) == 4);
    assert_render(r.render(),
                  "# HELP rampart_request_duration_seconds Time to answer.\n"
                  "# TYPE rampart_request_duration_seconds histogram\n"
                  "rampart_request_duration_seconds_bucket{route=\"/v1\",le=\"0.25\"} 1\n"
                  "rampart_request_duration_seconds_bucket{route=\"/v1\",le=\"0.5\"} 2\n"
                  "rampart_request_duration_seconds_bucket{route=\"/v1\",le=\"1\"} 3\n"
                  "rampart_request_duration_seconds_bucket{route=\"/v1\",le=\"2.5\"} 3\n"
                  "rampart_request_duration_seconds_bucket{route=\"/v1\",le=\"+Inf\"} 4\n"
                  "rampart_request_duration_seconds_sum{route=\"/v1\"} 5.375\n"
                  "rampart_request_duration_seconds_count{route=\"/v1\"} 4\n");
}

void test_histogram_bounds_format(void**) {
    Registry r;
    Metric* h = r.histogram("rampart_tiny_seconds", "h", {}, {0.0005, 0.1, 1e-05, 100000, 1e20});
    assert_null(h);  // not increasing
    h = r.histogram("rampart_tiny_seconds", "h", {}, {1e-05, 0.0005, 0.1, 100000, 1e20});
    assert_non_null(h);
    h->observe({}, 0.1);
    std::string out = r.render();
    // Bounds print with the fewest digits that read back the same.
    assert_true(contains(out, "rampart_tiny_seconds_bucket{le=\"1e-05\"} 0\n"));
    assert_true(contains(out, "rampart_tiny_seconds_bucket{le=\"0.0005\"} 0\n"));
    assert_true(contains(out, "rampart_tiny_seconds_bucket{le=\"0.1\"} 1\n"));
    assert_true(contains(out, "rampart_tiny_seconds_bucket{le=\"100000\"} 1\n"));
    assert_true(contains(out, "rampart_tiny_seconds_bucket{le=\"1e+20\"} 1\n"));
    assert_true(contains(out, "rampart_tiny_seconds_sum 0.1\n"));
    // A histogram with no observations yet shows only its header.
    Registry empty;
    empty.histogram("rampart_idle_seconds", "Idle.", {}, {1});
    assert_render(empty.render(), "# HELP rampart_idle_seconds Idle.\n# TYPE rampart_idle_seconds histogram\n");
}

void test_label_value_escaping(void**) {
    Registry r;
    Metric* g = r.gauge("rampart_label_test", "h", {"v"});
    g->set({"back\\slash"}, 1);
    g->set({"quo\"te"}, 2);
    g->set({"new\nline"}, 3);
    g->set({"all \\\"\n three"}, 4);
    g->set({"tab\tand {braces}, commas=\"x\""}, 5);
    std::string out = r.render();
    assert_true(contains(out, "rampart_label_test{v=\"back\\\\slash\"} 1\n"));
    assert_true(contains(out, "rampart_label_test{v=\"quo\\\"te\"} 2\n"));
    assert_true(contains(out, "rampart_label_test{v=\"new\\nline\"} 3\n"));
    assert_true(contains(out, "rampart_label_test{v=\"all \\\\\\\"\\n three\"} 4\n"));
    assert_true(contains(out, "rampart_label_test{v=\"tab\tand {braces}, commas=\\\"x\\\"\"} 5\n"));
    // No raw newline inside any sample line: 2 header lines + 5 samples.
    assert_int_equal(count_of(out, "\n"), 7);
}

void test_help_escaping(void**) {
    Registry r;
    r.gauge("rampart_help_test", "First line\nsecond \\ line with \"quotes\"", {});
    // HELP escapes backslash and newline only; quotes stay as they are.
    assert_render(r.render(),
                  "# HELP rampart_help_test First line\\nsecond \\\\ line with \"quotes\"\n"
                  "# TYPE rampart_help_test gauge\n"
                  "rampart_help_test 0\n");
}

void test_render_format(void**) {
    Registry r;
    Metric* req = r.counter("rampart_requests_total", "Requests answered.", {"status"});
    r.counter("rampart_auth_failures_total", "Failed authentications.", {});
    r.counter("rampart_unused_total", "Labeled, never updated.", {"x"});
    Metric* g = r.gauge("rampart_connections", "Open connections.", {});
    Metric* big = r.gauge("rampart_big", "Large and fractional values.", {"k"});
    req->add({"500"}, 1);
    req->add({"200"}, 41);
    req->add({"200"}, 1);
    g->set({}, 12);
    big->set({"large"}, 1e20);
    big->set({"frac"}, 0.1);
    big->set({"neg"}, -7);
    big->set({"inf"}, INFINITY);
    big->set({"ninf"}, -INFINITY);
    big->set({"nan"}, NAN);
    big->set({"int"}, 123456789012345.0);
    // Metrics in name order, series in label order; an unlabeled metric
    // shows 0 before its first update, a labeled one only its header.
    assert_render(r.render(),
                  "# HELP rampart_auth_failures_total Failed authentications.\n"
                  "# TYPE rampart_auth_failures_total counter\n"
                  "rampart_auth_failures_total 0\n"
                  "# HELP rampart_big Large and fractional values.\n"
                  "# TYPE rampart_big gauge\n"
                  "rampart_big{k=\"frac\"} 0.1\n"
                  "rampart_big{k=\"inf\"} +Inf\n"
                  "rampart_big{k=\"int\"} 123456789012345\n"
                  "rampart_big{k=\"large\"} 1e+20\n"
                  "rampart_big{k=\"nan\"} NaN\n"
                  "rampart_big{k=\"neg\"} -7\n"
                  "rampart_big{k=\"ninf\"} -Inf\n"
                  "# HELP rampart_connections Open connections.\n"
                  "# TYPE rampart_connections gauge\n"
                  "rampart_connections 12\n"
                  "# HELP rampart_requests_total Requests answered.\n"
                  "# TYPE rampart_requests_total counter\n"
                  "rampart_requests_total{status=\"200\"} 42\n"
                  "rampart_requests_total{status=\"500\"} 1\n"
                  "# HELP rampart_unused_total Labeled, never updated.\n"
                  "# TYPE rampart_unused_total counter\n");
    assert_render(Registry().render(), "");
}

// ---- promtool --------------------------------------------------------------------

bool have_promtool() { return system("command -v promtool >/dev/null 2>&1") == 0; }

// Pipe `text` through `promtool check metrics` (parse + lint); its exit
// status, or -1 when it could not run.
int promtool_check(const std::string& text) {
    FILE* p = popen("promtool check metrics", "w");
    if (p == nullptr) return -1;
    fwrite(text.data(), 1, text.size(), p);
    int status = pclose(p);
    if (status == -1 || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

void check_with_promtool(const std::string& text) {
    if (!have_promtool()) {
        print_message("promtool not found; skipping\n");
        skip();
    }
    int rc = promtool_check(text);
    if (rc != 0) print_error("promtool check metrics exited %d for:\n%s", rc, text.c_str());
    assert_int_equal(rc, 0);
}

void test_promtool_accepts_render(void**) {
    Registry r(4);
    Metric* req =
        r.counter("rampart_http_requests_total", "HTTP requests answered, by route and status.", {"route", "status"});
    Metric* conns = r.gauge("rampart_http_connections", "Open HTTP connections.", {});
    Metric* lat = r.histogram("rampart_http_request_duration_seconds", "Time from request parsed to answer.", {"route"},
                              {0.0005, 0.001, 0.01, 0.1, 0.25, 1, 2.5, 10});
    Metric* odd =
        r.gauge("rampart_plugin_info", "Loaded plugins; help with a \\ backslash\nand a newline.", {"name", "version"});
    r.counter("rampart_auth_failures_total", "Authentication failures.", {});
    r.histogram("rampart_raft_append_duration_seconds", "Not observed yet.", {}, {1});
    for (const char* route : {"/v1/kv/", "/health", "/metrics", "/v1/admin", "/x", "/y"}) {
        req->add({route, "200"}, 3);
        lat->observe({route}, 0.003);
        lat->observe({route}, 0.1);
    }
    req->add({"/v1/kv/", "429"}, 1);
    conns->set({}, 5);
    odd->set({"quo\"te", "back\\slash"}, 1);
    odd->set({"new\nline", "1.0"}, 1);
    std::string text = r.render();
    assert_true(contains(text, "_other"));
    check_with_promtool(text);
}

// Label values come from plugins (routes, peers, reasons): one invalid
// UTF-8 byte must not make the whole scrape unparsable.
void test_promtool_invalid_utf8_label(void**) {
    Registry r;
    Metric* m = r.counter("rampart_http_requests_total", "Requests.", {"path"});
    m->add({"/ok"}, 1);
    m->add({"/caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"}, 1);  // valid multi-byte: kept as is
    m->add({"/bad\xff\xfe"}, 1);
    m->add({"/trunc\xc3"}, 1);
    m->add({"/overlong\xc0\xaf"}, 1);
    m->add({"/surrogate\xed\xa0\x80"}, 1);
    m->add({"/x\xff"}, 1);
    m->add({"/x\xfe"}, 1);  // shows the same as the one above: one series
    r.gauge("rampart_help_bytes", "Help with a bad byte \xff.", {});
    std::string text = r.render();
    assert_true(contains(text, "{path=\"/caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"} 1\n"));
    assert_true(contains(text, "{path=\"/bad\xef\xbf\xbd\xef\xbf\xbd\"} 1\n"));
    assert_true(contains(text, "{path=\"/x\xef\xbf\xbd\"} 2\n"));
    assert_true(contains(text, "# HELP rampart_help_bytes Help with a bad byte \xef\xbf\xbd.\n"));
    if (!valid_utf8(text)) print_error("render is not valid UTF-8:\n%s", text.c_str());
    assert_true(valid_utf8(text));
    check_with_promtool(text);
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metric_names),
        cmocka_unit_test(test_label_names),
        cmocka_unit_test(test_registration_rules),
        cmocka_unit_test(test_duplicate_label_names),
        cmocka_unit_test(test_nonfinite_buckets),
        cmocka_unit_test(test_histogram_series_name_clash),
        cmocka_unit_test(test_reregistration),
        cmocka_unit_test(test_counter_gauge_semantics),
        cmocka_unit_test(test_cardinality_cap),
        cmocka_unit_test(test_histogram_render),
        cmocka_unit_test(test_histogram_bounds_format),
        cmocka_unit_test(test_label_value_escaping),
        cmocka_unit_test(test_help_escaping),
        cmocka_unit_test(test_render_format),
        cmocka_unit_test(test_promtool_accepts_render),
        cmocka_unit_test(test_promtool_invalid_utf8_label),
    };
    return cmocka_run_group_tests_name("metrics_registry", tests, nullptr, nullptr);
}
