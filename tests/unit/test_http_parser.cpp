// Unit tests for the HTTP front's pure parts: the request parser
// (core/http/parser.h) with its limits and smuggling checks, the router,
// response serialization, request ids, listen addresses and JSON escaping.
//
// Tests whose name starts with "bug_" document defects found while writing
// this file; they fail until core/http/parser.cpp is fixed (see the comment
// above each one).
//
// C++ and project headers first: cmocka defines macros (fail, ...) that
// would clash with names in them (RequestParser::fail).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "http/parser.h"
#include "http/request_id.h"
#include "http/response.h"
#include "http/router.h"
#include "net/address.h"
#include "util/json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using rampart::http::Limits;
using rampart::http::ParseError;
using rampart::http::Request;
using rampart::http::RequestParser;
using State = RequestParser::State;

namespace {

// ---------------------------------------------------------------------------
// Driving the parser
// ---------------------------------------------------------------------------

struct Outcome {
    std::vector<Request> requests;  // every request completed, in order
    State state = State::NeedMore;  // state after the last feed
    ParseError error;               // valid when state == Error
    size_t offset = 0;              // bytes consumed in total
    uint64_t begun = 0;             // requests_begun() at the end
    bool in_progress = false;
};

Limits small_limits() {
    Limits l;
    l.max_header_bytes = 128;
    l.max_uri_bytes = 64;
    l.max_body_bytes = 16;
    return l;
}

// Feed `in` in pieces ending at each of `cuts` (ascending) and at the end.
// Complete requests are taken as they come, like the server does with
// pipelined requests. Checks the feed() contract on every call.
Outcome run_cuts(const std::string& in, const std::vector<size_t>& cuts, const Limits& limits = Limits{}) {
    RequestParser parser(limits);
    Outcome out;
    std::vector<size_t> ends(cuts);
    ends.push_back(in.size());
    size_t start = 0;
    for (size_t end : ends) {
        if (end <= start) continue;
        size_t off = start;
        while (off < end) {
            size_t avail = end - off;
            size_t n = parser.feed(in.data() + off, avail);
            assert_true(n <= avail);
            off += n;
            if (parser.state() == State::Complete) {
                assert_false(parser.in_progress());
                out.requests.push_back(parser.take_request());
                assert_int_equal(static_cast<int>(parser.state()), static_cast<int>(State::NeedMore));
                continue;
            }
            if (parser.state() == State::Error) {
                out.state = State::Error;
                out.error = parser.error();
                out.offset = off;
                out.begun = parser.requests_begun();
                // Sticky: nothing more is read after an error.
                if (off < in.size()) assert_int_equal(parser.feed(in.data() + off, in.size() - off), 0);
                assert_int_equal(static_cast<int>(parser.state()), static_cast<int>(State::Error));
                return out;
            }
            // NeedMore: everything offered must have been taken.
            assert_int_equal(n, avail);
        }
        start = end;
    }
    out.state = parser.state();
    out.offset = start;
    out.begun = parser.requests_begun();
    out.in_progress = parser.in_progress();
    return out;
}

Outcome run_once(const std::string& in, const Limits& limits = Limits{}) { return run_cuts(in, {}, limits); }

Outcome run_step(const std::string& in, size_t step, const Limits& limits = Limits{}) {
    std::vector<size_t> cuts;
    for (size_t i = step; i < in.size(); i += step) cuts.push_back(i);
    return run_cuts(in, cuts, limits);
}

void assert_same_request(const Request& a, const Request& b) {
    assert_string_equal(a.method.c_str(), b.method.c_str());
    assert_string_equal(a.target.c_str(), b.target.c_str());
    assert_string_equal(a.path.c_str(), b.path.c_str());
    assert_string_equal(a.query.c_str(), b.query.c_str());
    assert_int_equal(a.version_major, b.version_major);
    assert_int_equal(a.version_minor, b.version_minor);
    assert_int_equal(a.keep_alive, b.keep_alive);
    assert_true(a.body == b.body);
    assert_int_equal(a.headers.size(), b.headers.size());
    for (size_t i = 0; i < a.headers.size(); ++i) {
        assert_string_equal(a.headers[i].name.c_str(), b.headers[i].name.c_str());
        assert_string_equal(a.headers[i].value.c_str(), b.headers[i].value.c_str());
    }
}

void assert_same_outcome(const Outcome& a, const Outcome& b) {
    assert_int_equal(static_cast<int>(a.state), static_cast<int>(b.state));
    assert_int_equal(a.requests.size(), b.requests.size());
    for (size_t i = 0; i < a.requests.size(); ++i) assert_same_request(a.requests[i], b.requests[i]);
    if (a.state == State::Error) {
        assert_int_equal(a.error.status, b.error.status);
        assert_string_equal(a.error.code.c_str(), b.error.code.c_str());
    }
}

// The request must be one complete request, however it is split.
Request expect_one(const std::string& in, const Limits& limits = Limits{}) {
    Outcome once = run_once(in, limits);
    if (once.state == State::Error) {
        print_message("unexpected error %d %s: %s\n", once.error.status, once.error.code.c_str(),
                      once.error.message.c_str());
    }
    assert_int_equal(static_cast<int>(once.state), static_cast<int>(State::NeedMore));
    assert_int_equal(once.requests.size(), 1);
    assert_int_equal(once.offset, in.size());
    assert_false(once.in_progress);
    assert_same_outcome(once, run_step(in, 1, limits));
    assert_same_outcome(once, run_step(in, 7, limits));
    return once.requests[0];
}

// The input must be refused with `status`/`code`, whether it arrives in one
// piece, byte by byte, or in uneven pieces.
void expect_error(const std::string& in, int status, const char* code, const Limits& limits = Limits{}) {
    for (size_t step : {in.size(), size_t{1}, size_t{2}, size_t{5}}) {
        Outcome o = run_step(in, step == 0 ? 1 : step, limits);
        if (o.state != State::Error) {
            print_message("step %zu: expected %d %s, got state %d with %zu request(s)\n", step, status, code,
                          static_cast<int>(o.state), o.requests.size());
        }
        assert_int_equal(static_cast<int>(o.state), static_cast<int>(State::Error));
        assert_int_equal(o.requests.size(), 0);
        if (o.error.status != status) {
            print_message("step %zu: got %d %s (%s)\n", step, o.error.status, o.error.code.c_str(),
                          o.error.message.c_str());
        }
        assert_int_equal(o.error.status, status);
        assert_string_equal(o.error.code.c_str(), code);
        assert_false(o.error.message.empty());
        assert_true(o.offset <= in.size());
    }
}

void expect_bad(const std::string& in, const Limits& limits = Limits{}) {
    expect_error(in, 400, "bad_request", limits);
}

// "Name: value\r\n" lines; the parser counts exactly these bytes against
// max_header_bytes (not the request line, not the blank line).
std::string head_with(const std::string& request_line, const std::vector<std::pair<std::string, std::string>>& hs) {
    std::string out = request_line + "\r\n";
    for (const auto& [n, v] : hs) out += n + ": " + v + "\r\n";
    out += "\r\n";
    return out;
}

size_t header_block_bytes(const std::vector<std::pair<std::string, std::string>>& hs) {
    size_t n = 0;
    for (const auto& [name, value] : hs) n += name.size() + value.size() + 4;
    return n;
}

const std::string kGet = "GET /kv/a HTTP/1.1\r\nHost: localhost\r\n\r\n";

// ---------------------------------------------------------------------------
// Basic requests
// ---------------------------------------------------------------------------

void test_simple_get(void**) {
    Limits limits;
    RequestParser parser(limits);
    assert_int_equal(parser.requests_begun(), 0);
    assert_false(parser.in_progress());
    size_t n = parser.feed(kGet.data(), kGet.size());
    assert_int_equal(n, kGet.size());
    assert_int_equal(static_cast<int>(parser.state()), static_cast<int>(State::Complete));
    assert_int_equal(parser.requests_begun(), 1);
    assert_false(parser.in_progress());
    assert_false(parser.expects_continue());
    // Complete: nothing more is read until the request is taken.
    assert_int_equal(parser.feed(kGet.data(), kGet.size()), 0);
    Request r = parser.take_request();
    assert_int_equal(static_cast<int>(parser.state()), static_cast<int>(State::NeedMore));
    assert_string_equal(r.method.c_str(), "GET");
    assert_string_equal(r.target.c_str(), "/kv/a");
    assert_string_equal(r.path.c_str(), "/kv/a");
    assert_string_equal(r.query.c_str(), "");
    assert_int_equal(r.version_major, 1);
    assert_int_equal(r.version_minor, 1);
    assert_true(r.keep_alive);
    assert_true(r.body.empty());
    assert_int_equal(r.headers.size(), 1);
    assert_string_equal(r.headers[0].name.c_str(), "Host");
    assert_string_equal(r.headers[0].value.c_str(), "localhost");
    // Header lookup is case-insensitive and returns the first match.
    assert_non_null(r.header("host"));
    assert_non_null(r.header("HOST"));
    assert_string_equal(r.header("Host")->c_str(), "localhost");
    assert_null(r.header("hos"));
    assert_null(r.header("content-length"));

    // The same through the split-checking driver.
    Request again = expect_one(kGet);
    assert_same_request(r, again);
}

void test_header_values_kept(void**) {
    Request r = expect_one(
        "DELETE /kv/x HTTP/1.1\r\nHost: h\r\nX-Request-Id: abc-1\r\nx-empty:\r\nAccept:  */*\r\n"
        "X-Dup: 1\r\nX-Dup: 2\r\n\r\n");
    assert_string_equal(r.method.c_str(), "DELETE");
    assert_int_equal(r.headers.size(), 6);
    assert_string_equal(r.header("x-request-id")->c_str(), "abc-1");
    assert_non_null(r.header("X-Empty"));
    assert_string_equal(r.header("X-Empty")->c_str(), "");
    assert_string_equal(r.header("accept")->c_str(), "*/*");  // leading OWS dropped
    assert_string_equal(r.header("x-dup")->c_str(), "1");     // first of repeated fields
    assert_string_equal(r.headers[5].value.c_str(), "2");
}

void test_path_query_split(void**) {
    struct Case {
        const char* target;
        const char* path;
        const char* query;
    } cases[] = {
        {"/kv/a?x=1&y=2", "/kv/a", "x=1&y=2"},
        {"/kv/a?", "/kv/a", ""},
        {"/?a", "/", "a"},
        {"/a?b?c", "/a", "b?c"},
        {"/a%3Fb?c=%20", "/a%3Fb", "c=%20"},  // not decoded
        {"/", "/", ""},
    };
    for (const Case& c : cases) {
        Request r = expect_one(std::string("GET ") + c.target + " HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_string_equal(r.target.c_str(), c.target);
        assert_string_equal(r.path.c_str(), c.path);
        assert_string_equal(r.query.c_str(), c.query);
    }
    // Only origin-form targets: absolute-form and asterisk-form are refused.
    expect_bad("GET http://h/a HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_bad("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
}

void test_body_content_length(void**) {
    Request r = expect_one("PUT /kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world");
    assert_string_equal(r.method.c_str(), "PUT");
    assert_string_equal(r.body.c_str(), "hello world");

    // Binary bodies, including NUL and CRLF, are passed through verbatim.
    std::string body("a\0b\r\n\r\nc", 8);
    Request b = expect_one("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n" + body);
    assert_int_equal(b.body.size(), 8);
    assert_true(b.body == body);

    Request z = expect_one("PUT /kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    assert_true(z.body.empty());

    // Head and body arriving separately: NeedMore in between.
    Limits limits;
    RequestParser parser(limits);
    std::string head = "PUT /kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n";
    assert_int_equal(parser.feed(head.data(), head.size()), head.size());
    assert_int_equal(static_cast<int>(parser.state()), static_cast<int>(State::NeedMore));
    assert_true(parser.in_progress());
    assert_int_equal(parser.feed("ab", 2), 2);
    assert_int_equal(static_cast<int>(parser.state()), static_cast<int>(State::NeedMore));
    // Bytes past the body belong to the next request and are not consumed.
    assert_int_equal(parser.feed("cGET", 4), 1);
    assert_int_equal(static_cast<int>(parser.state()), static_cast<int>(State::Complete));
    assert_string_equal(parser.take_request().body.c_str(), "abc");
}

void test_chunked_body(void**) {
    const std::string head = "POST /kv/b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    Request r = expect_one(head + "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    assert_string_equal(r.body.c_str(), "hello world");

    // Upper- and lower-case hex sizes, leading zeros.
    Request h = expect_one(head + "A\r\n0123456789\r\n0a\r\nabcdefghij\r\n000\r\n\r\n");
    assert_string_equal(h.body.c_str(), "0123456789abcdefghij");

    // Chunk extensions are accepted and ignored.
    Request e = expect_one(head + "5;name=value\r\nhello\r\n1;a;b=\"q s\"\r\n!\r\n0;last\r\n\r\n");
    assert_string_equal(e.body.c_str(), "hello!");

    // Empty chunked body.
    Request empty = expect_one(head + "0\r\n\r\n");
    assert_true(empty.body.empty());

    // Byte by byte, every split: expect_one already checks step 1 and 7;
    // here every single split point as well.
    std::string full = head + "3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
    Outcome once = run_once(full);
    assert_int_equal(once.requests.size(), 1);
    assert_string_equal(once.requests[0].body.c_str(), "abc0123456789abcdef");
    for (size_t i = 1; i < full.size(); ++i) assert_same_outcome(once, run_cuts(full, {i}));
    for (size_t step = 1; step <= 4; ++step) assert_same_outcome(once, run_step(full, step));
}

void test_pipelined(void**) {
    const std::string r1 = "GET /one HTTP/1.1\r\nHost: h\r\n\r\n";
    const std::string r2 = "PUT /two HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody";
    const std::string r3 = "POST /three HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n";
    const std::string r4 = "GET /four?q HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    const std::string all = r1 + r2 + r3 + r4;

    Limits limits;
    RequestParser parser(limits);
    size_t off = 0;
    const std::string* parts[] = {&r1, &r2, &r3, &r4};
    const char* paths[] = {"/one", "/two", "/three", "/four"};
    for (size_t i = 0; i < 4; ++i) {
        // Each feed stops right after one request and reports exactly its length.
        size_t n = parser.feed(all.data() + off, all.size() - off);
        assert_int_equal(n, parts[i]->size());
        assert_int_equal(static_cast<int>(parser.state()), static_cast<int>(State::Complete));
        assert_int_equal(parser.requests_begun(), i + 1);
        Request r = parser.take_request();
        assert_string_equal(r.path.c_str(), paths[i]);
        off += n;
    }
    assert_int_equal(off, all.size());

    // The driver gives the same four requests however the stream is cut.
    Outcome once = run_once(all);
    assert_int_equal(once.requests.size(), 4);
    assert_string_equal(once.requests[1].body.c_str(), "body");
    assert_string_equal(once.requests[2].body.c_str(), "hi");
    assert_false(once.requests[3].keep_alive);
    assert_int_equal(once.begun, 4);
    for (size_t i = 1; i < all.size(); ++i) assert_same_outcome(once, run_cuts(all, {i}));
    assert_same_outcome(once, run_step(all, 1));
    assert_same_outcome(once, run_step(all, 3));

    // A first request plus half of the next: the second feed takes the
    // partial request, which stays in progress.
    std::string partial = r1 + r2.substr(0, 20);
    RequestParser p2(limits);
    assert_int_equal(p2.feed(partial.data(), partial.size()), r1.size());
    p2.take_request();
    assert_false(p2.in_progress());
    assert_int_equal(p2.requests_begun(), 1);
    assert_int_equal(p2.feed(partial.data() + r1.size(), 20), 20);
    assert_int_equal(static_cast<int>(p2.state()), static_cast<int>(State::NeedMore));
    assert_true(p2.in_progress());
    assert_int_equal(p2.requests_begun(), 2);
    std::string rest = r2.substr(20);
    assert_int_equal(p2.feed(rest.data(), rest.size()), rest.size());
    assert_int_equal(static_cast<int>(p2.state()), static_cast<int>(State::Complete));
    assert_string_equal(p2.take_request().body.c_str(), "body");

    // Empty lines between pipelined requests are tolerated.
    Outcome gap = run_once(r1 + "\r\n" + r1);
    assert_int_equal(gap.requests.size(), 2);
}

void test_pipelined_error_stops(void**) {
    // A good request, then a smuggling attempt: the first is answered, the
    // second is an error and nothing after it is read.
    const std::string good = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
    const std::string bad =
        "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    const std::string smuggled = "GET /admin HTTP/1.1\r\nHost: h\r\n\r\n";
    for (size_t step : {size_t{1000}, size_t{1}, size_t{4}}) {
        Outcome o = run_step(good + bad + smuggled, step);
        assert_int_equal(o.requests.size(), 1);
        assert_string_equal(o.requests[0].path.c_str(), "/a");
        assert_int_equal(static_cast<int>(o.state), static_cast<int>(State::Error));
        assert_int_equal(o.error.status, 400);
        assert_int_equal(o.begun, 2);
        assert_true(o.offset <= good.size() + bad.size());
    }
}

void test_keep_alive(void**) {
    assert_true(expect_one("GET / HTTP/1.1\r\nHost: h\r\n\r\n").keep_alive);
    assert_false(expect_one("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").keep_alive);
    assert_false(expect_one("GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n").keep_alive);
    assert_true(expect_one("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    Request r10 = expect_one("GET / HTTP/1.0\r\n\r\n");
    assert_int_equal(r10.version_minor, 0);
    assert_false(r10.keep_alive);
    assert_true(expect_one("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    assert_true(expect_one("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
    assert_false(expect_one("GET / HTTP/1.0\r\nConnection: close\r\n\r\n").keep_alive);
    // Keep-alive is per request on a pipelined stream.
    Outcome o = run_once("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert_int_equal(o.requests.size(), 2);
    assert_true(o.requests[0].keep_alive);
    assert_false(o.requests[1].keep_alive);
}

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

void test_limit_header_bytes(void**) {
    Limits limits = small_limits();  // 128 header bytes
    std::vector<std::pair<std::string, std::string>> hs = {{"Host", "h"}, {"X-Pad", ""}};
    hs[1].second.assign(limits.max_header_bytes - header_block_bytes(hs), 'p');
    assert_int_equal(header_block_bytes(hs), limits.max_header_bytes);
    std::string at = head_with("GET / HTTP/1.1", hs);
    Request r = expect_one(at, limits);
    assert_int_equal(r.header("x-pad")->size(), hs[1].second.size());
    for (size_t i = 1; i < at.size(); ++i) assert_int_equal(run_cuts(at, {i}, limits).requests.size(), 1);

    // One byte more in the value, or in a name, is refused.
    hs[1].second += 'p';
    expect_error(head_with("GET / HTTP/1.1", hs), 431, "header_too_large", limits);
    hs[1].second.pop_back();
    hs[1].first += 'X';
    expect_error(head_with("GET / HTTP/1.1", hs), 431, "header_too_large", limits);

    // Spread over many headers, the same bound applies.
    std::vector<std::pair<std::string, std::string>> many = {{"Host", "h"}};
    while (header_block_bytes(many) + 10 <= limits.max_header_bytes) many.push_back({"A", "12345"});
    size_t missing = limits.max_header_bytes - header_block_bytes(many);
    assert_true(missing >= 5);
    many.push_back({"B", std::string(missing - 5, 'v')});
    assert_int_equal(header_block_bytes(many), limits.max_header_bytes);
    expect_one(head_with("GET / HTTP/1.1", many), limits);
    many.back().second += 'v';
    expect_error(head_with("GET / HTTP/1.1", many), 431, "header_too_large", limits);

    // The request line does not count against the header limit.
    std::vector<std::pair<std::string, std::string>> host = {{"Host", "h"}};
    Limits tight = limits;
    tight.max_header_bytes = header_block_bytes(host);
    expect_one(head_with("GET /" + std::string(50, 'u') + " HTTP/1.1", host), tight);

    // Default limit: a header far over 8 KiB.
    expect_error("GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(9000, 'b') + "\r\n\r\n", 431, "header_too_large");
}

void test_limit_header_count(void**) {
    Limits limits;
    limits.max_header_bytes = 1 << 20;
    std::vector<std::pair<std::string, std::string>> hs = {{"Host", "h"}};
    for (int i = 1; i < 256; ++i) hs.push_back({"X-" + std::to_string(i), "v"});
    Request r = expect_one(head_with("GET / HTTP/1.1", hs), limits);
    assert_int_equal(r.headers.size(), 256);
    hs.push_back({"X-257", "v"});
    expect_error(head_with("GET / HTTP/1.1", hs), 431, "header_too_large", limits);
}

void test_limit_uri(void**) {
    Limits limits = small_limits();  // 64
    std::string target = "/" + std::string(limits.max_uri_bytes - 1, 'a');
    Request r = expect_one("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n", limits);
    assert_int_equal(r.target.size(), limits.max_uri_bytes);
    expect_error("GET " + target + "a HTTP/1.1\r\nHost: h\r\n\r\n", 414, "uri_too_long", limits);
    // The query counts too.
    std::string with_query = "/a?" + std::string(limits.max_uri_bytes - 3, 'q');
    assert_int_equal(with_query.size(), limits.max_uri_bytes);
    expect_one("GET " + with_query + " HTTP/1.1\r\nHost: h\r\n\r\n", limits);
    expect_error("GET " + with_query + "q HTTP/1.1\r\nHost: h\r\n\r\n", 414, "uri_too_long", limits);
    // Refused before the rest of the request arrives.
    Outcome early = run_once("GET /" + std::string(limits.max_uri_bytes, 'x'), limits);
    assert_int_equal(static_cast<int>(early.state), static_cast<int>(State::Error));
    assert_int_equal(early.error.status, 414);
}

void test_limit_body_content_length(void**) {
    Limits limits = small_limits();  // 16
    std::string at = "PUT /kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 16\r\n\r\n" + std::string(16, 'b');
    assert_int_equal(expect_one(at, limits).body.size(), 16);
    // Refused at head time: no body byte needs to arrive.
    std::string over_head = "PUT /kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\n\r\n";
    expect_error(over_head, 413, "body_too_large", limits);
    expect_error(over_head + std::string(17, 'b'), 413, "body_too_large", limits);
    // Even when the client asked for 100-continue: 413 instead of 100.
    Limits l2 = limits;
    RequestParser parser(l2);
    std::string expect_head = "PUT /kv/a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 17\r\n\r\n";
    parser.feed(expect_head.data(), expect_head.size());
    assert_int_equal(static_cast<int>(parser.state()), static_cast<int>(State::Error));
    assert_int_equal(parser.error().status, 413);
    assert_false(parser.expects_continue());
    // A huge declared length.
    expect_error("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000000000\r\n\r\n", 413, "body_too_large");
}

void test_limit_body_chunked(void**) {
    Limits limits = small_limits();  // 16
    const std::string head = "POST /kv/b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    Request r = expect_one(head + "8\r\n01234567\r\n8\r\n89abcdef\r\n0\r\n\r\n", limits);
    assert_int_equal(r.body.size(), 16);
    // The 17th byte, in a further chunk.
    expect_error(head + "8\r\n01234567\r\n8\r\n89abcdef\r\n1\r\nX\r\n0\r\n\r\n", 413, "body_too_large", limits);
    // One big chunk: refused as the body grows past the limit, before the
    // chunk (let alone the message) is complete.
    RequestParser parser(limits);
    std::string start = head + "20\r\n";
    assert_int_equal(parser.feed(start.data(), start.size()), start.size());
    std::string sixteen(16, 'x');
    assert_int_equal(parser.feed(sixteen.data(), sixteen.size()), 16);
    assert_int_equal(static_cast<int>(parser.state()), static_cast<int>(State::NeedMore));
    parser.feed("y", 1);
    assert_int_equal(static_cast<int>(parser.state()), static_cast<int>(State::Error));
    assert_int_equal(parser.error().status, 413);
    assert_string_equal(parser.error().code.c_str(), "body_too_large");
    // Many tiny chunks.
    std::string tiny = head;
    for (int i = 0; i < 17; ++i) tiny += "1\r\nz\r\n";
    expect_error(tiny + "0\r\n\r\n", 413, "body_too_large", limits);
}

// A path prefix may carry its own body limit (the KV API's 512 KiB values);
// everything else keeps max_body_bytes, chunked or not.
void test_limit_body_per_path(void**) {
    Limits limits = small_limits();  // 16
    limits.path_body_limits = {{{"/v1/kv/", 32}, {"/v1/txn", 24}}};
    std::string kv = "PUT /v1/kv/a?cas=0 HTTP/1.1\r\nHost: h\r\nContent-Length: 32\r\n\r\n" + std::string(32, 'b');
    assert_int_equal(expect_one(kv, limits).body.size(), 32);
    expect_error("PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 33\r\n\r\n", 413, "body_too_large", limits);
    expect_error("PUT /v1/txn HTTP/1.1\r\nHost: h\r\nContent-Length: 25\r\n\r\n", 413, "body_too_large", limits);
    // Not under the prefix ("/v1/kv" without the slash, other routes).
    expect_error("PUT /v1/kv HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\n\r\n", 413, "body_too_large", limits);
    expect_error("POST /health HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\n\r\n", 413, "body_too_large", limits);
    const std::string chunked = "PUT /v1/kv/c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(expect_one(chunked + "20\r\n" + std::string(32, 'x') + "\r\n0\r\n\r\n", limits).body.size(), 32);
    expect_error(chunked + "21\r\n" + std::string(33, 'x') + "\r\n0\r\n\r\n", 413, "body_too_large", limits);
}

void test_set_limits(void**) {
    Limits limits;
    RequestParser parser(limits);
    std::string big = "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n\r\n" + std::string(20, 'b');
    assert_int_equal(parser.feed(big.data(), big.size()), big.size());
    assert_int_equal(static_cast<int>(parser.state()), static_cast<int>(State::Complete));
    parser.take_request();
    Limits smaller = small_limits();
    parser.set_limits(smaller);
    parser.feed(big.data(), big.size());
    assert_int_equal(static_cast<int>(parser.state()), static_cast<int>(State::Error));
    assert_int_equal(parser.error().status, 413);
}

// ---------------------------------------------------------------------------
// Smuggling and malformed requests
// ---------------------------------------------------------------------------

void test_cl_and_te(void**) {
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n");
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    expect_bad("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: h\r\nContent-Length: 3\r\n\r\n0\r\n\r\n");
}

void test_bad_content_length(void**) {
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc");
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd");
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc");
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -3\r\n\r\nabc");
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc");
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3,3\r\n\r\nabc");
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc");
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\nabc");
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3 3\r\n\r\nabc");
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n");
}

void test_bad_chunks(void**) {
    const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    expect_bad(head + "zz\r\nabc\r\n0\r\n\r\n");               // not hex
    expect_bad(head + "-1\r\na\r\n0\r\n\r\n");                 // negative
    expect_bad(head + "\r\na\r\n0\r\n\r\n");                   // empty size
    expect_bad(head + "fffffffffffffffff\r\na\r\n0\r\n\r\n");  // overflows 64 bits
    expect_bad(head + "10000000000000000\r\na\r\n0\r\n\r\n");
    expect_bad(head + "1\r\nab\r\n0\r\n\r\n");  // chunk longer than its size
    expect_bad(head + "0x1\r\na\r\n0\r\n\r\n");
}

void test_bad_transfer_encoding(void**) {
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nabc");
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\nabc");
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n");
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n");
    expect_bad(
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n");
}

void test_obs_fold(void**) {
    const std::string space = "GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n";
    const std::string tab = "GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n\ttwo\r\n\r\n";
    const std::string multi = "GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n \t  two\r\n\r\n";
    const std::string on_host = "GET / HTTP/1.1\r\nHost: h\r\n .evil\r\n\r\n";
    const std::string on_te = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: x\r\n chunked\r\n\r\n0\r\n\r\n";
    for (const std::string* in : {&space, &tab, &multi, &on_host, &on_te}) {
        expect_bad(*in);
        // Every split point, in particular between the line break and the
        // continuation, and between "\r" and "\n".
        for (size_t i = 1; i < in->size(); ++i) {
            Outcome o = run_cuts(*in, {i});
            if (o.state != State::Error) print_message("accepted when split at %zu\n", i);
            assert_int_equal(static_cast<int>(o.state), static_cast<int>(State::Error));
            assert_int_equal(o.error.status, 400);
        }
        // And split at two points around the fold.
        size_t fold = in->find("\r\n ") != std::string::npos ? in->find("\r\n ") : in->find("\r\n\t");
        if (fold == std::string::npos) fold = in->find("\r\n .");
        assert_true(fold != std::string::npos);
        for (size_t a = fold; a <= fold + 2; ++a) {
            for (size_t b = a + 1; b <= fold + 4 && b < in->size(); ++b) {
                Outcome o = run_cuts(*in, {a, b});
                assert_int_equal(static_cast<int>(o.state), static_cast<int>(State::Error));
            }
        }
    }
    // A header line starting with whitespace right after the request line.
    expect_bad("GET / HTTP/1.1\r\n Host: h\r\n\r\n");
    // Folding on the second request of a pipelined stream, across the feed.
    std::string two = "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n";
    for (size_t i = 1; i < two.size(); ++i) {
        Outcome o = run_cuts(two, {i});
        assert_int_equal(o.requests.size(), 1);
        assert_int_equal(static_cast<int>(o.state), static_cast<int>(State::Error));
    }
}

void test_space_before_colon(void**) {
    expect_bad("GET / HTTP/1.1\r\nHost : h\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost: h\r\nX-A : v\r\n\r\n");
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n");
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length : 3\r\n\r\nabc");
    // Other bad header names.
    expect_bad("GET / HTTP/1.1\r\nHost: h\r\nX A: v\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost: h\r\nX(A): v\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n");
    // Bad characters in a value.
    {
        static const char kNul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
        expect_bad(std::string(kNul, sizeof kNul - 1));
    }
    expect_bad("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n");
}

void test_host(void**) {
    expect_bad("GET / HTTP/1.1\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nX: y\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHOST: a\r\nX: 1\r\nhOsT: b\r\n\r\n");
    // HTTP/1.0 needs no Host, but two are still refused.
    Request r = expect_one("GET / HTTP/1.0\r\n\r\n");
    assert_int_equal(r.version_minor, 0);
    assert_null(r.header("host"));
    expect_one("GET / HTTP/1.0\r\nHost: h\r\n\r\n");
    expect_bad("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n");
    // An empty Host is a Host.
    expect_one("GET / HTTP/1.1\r\nHost:\r\n\r\n");
}

void test_versions(void**) {
    expect_error("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505, "http_version_not_supported");
    expect_error("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "http_version_not_supported");
    expect_error("GET / HTTP/0.9\r\n\r\n", 505, "http_version_not_supported");
    // Nonsense versions are malformed.
    expect_bad("GET / HTTP/1.2\r\nHost: h\r\n\r\n");
    expect_bad("GET / HTTP/3.0\r\nHost: h\r\n\r\n");
    expect_bad("GET / HTTX/1.1\r\nHost: h\r\n\r\n");
    expect_bad("GET / HTTP/11\r\nHost: h\r\n\r\n");
    // Request-line garbage.
    expect_bad("FOO / HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_bad("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_bad("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");  // a TLS ClientHello
    expect_bad("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
}

void test_upgrade(void**) {
    expect_bad("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c\r\n\r\n");
    // CONNECT is a tunnel, i.e. an upgrade too.
    expect_bad("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n");
}

void test_expect(void**) {
    Limits limits;
    RequestParser parser(limits);
    std::string head = "PUT /kv/a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    // Not before the head is complete.
    assert_int_equal(parser.feed(head.data(), head.size() - 1), head.size() - 1);
    assert_false(parser.expects_continue());
    assert_int_equal(parser.feed(head.data() + head.size() - 1, 1), 1);
    assert_int_equal(static_cast<int>(parser.state()), static_cast<int>(State::NeedMore));
    assert_true(parser.expects_continue());
    parser.mark_continue_sent();
    assert_false(parser.expects_continue());
    assert_int_equal(parser.feed("hello", 5), 5);
    assert_int_equal(static_cast<int>(parser.state()), static_cast<int>(State::Complete));
    assert_string_equal(parser.take_request().body.c_str(), "hello");
    assert_false(parser.expects_continue());

    // The client may send the body without waiting: the flag drops with it.
    RequestParser p2(limits);
    assert_int_equal(p2.feed(head.data(), head.size()), head.size());
    assert_true(p2.expects_continue());
    assert_int_equal(p2.feed("he", 2), 2);
    assert_false(p2.expects_continue());

    // Case-insensitive.
    RequestParser p3(limits);
    std::string mixed = "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n";
    p3.feed(mixed.data(), mixed.size());
    assert_true(p3.expects_continue());

    // A request without a body completes at once: nothing to wait for.
    RequestParser p4(limits);
    std::string nobody = "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n";
    assert_int_equal(p4.feed(nobody.data(), nobody.size()), nobody.size());
    assert_int_equal(static_cast<int>(p4.state()), static_cast<int>(State::Complete));
    assert_false(p4.expects_continue());

    // The next request starts without the flag.
    p4.take_request();
    std::string plain = "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\n";
    p4.feed(plain.data(), plain.size());
    assert_false(p4.expects_continue());

    // Any other expectation: 417.
    expect_error("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417,
                 "expectation_failed");
    expect_error("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue-ish\r\nContent-Length: 1\r\n\r\nx", 417,
                 "expectation_failed");
    expect_error("GET / HTTP/1.1\r\nHost: h\r\nExpect:\r\n\r\n", 417, "expectation_failed");
}

void test_requests_begun(void**) {
    Limits limits;
    RequestParser parser(limits);
    assert_int_equal(parser.requests_begun(), 0);
    // Stray line breaks before a request do not start one.
    assert_int_equal(parser.feed("\r\n", 2), 2);
    assert_int_equal(parser.requests_begun(), 0);
    assert_int_equal(parser.feed("G", 1), 1);
    assert_int_equal(parser.requests_begun(), 1);
    assert_true(parser.in_progress());
    std::string rest = kGet.substr(1);
    assert_int_equal(parser.feed(rest.data(), rest.size()), rest.size());
    assert_int_equal(parser.requests_begun(), 1);
    assert_false(parser.in_progress());
    parser.take_request();
    // Still 1 until the next request's first byte.
    assert_int_equal(parser.requests_begun(), 1);
    for (int i = 0; i < 5; ++i) {
        assert_int_equal(parser.feed(kGet.data(), kGet.size()), kGet.size());
        assert_int_equal(parser.requests_begun(), static_cast<uint64_t>(i + 2));
        parser.take_request();
    }
    // An erroring request counts as begun.
    std::string bad = "GET / HTTP/1.1\r\n\r\n";
    parser.feed(bad.data(), bad.size());
    assert_int_equal(static_cast<int>(parser.state()), static_cast<int>(State::Error));
    assert_int_equal(parser.requests_begun(), 7);
    assert_false(parser.in_progress());
}

// A request with several headers and a body gives the same Request however
// its bytes are split: every single split point and every pair of points.
void test_split_everywhere(void**) {
    const std::string in =
        "PATCH /kv/some/key?ttl=30&x HTTP/1.1\r\nHost: example:7700\r\nX-Request-Id: r-1\r\n"
        "Content-Type: application/json\r\nX-Empty:\r\nContent-Length: 9\r\n\r\n{\"v\":\"1\"}";
    Outcome once = run_once(in);
    assert_int_equal(once.requests.size(), 1);
    const Request& r = once.requests[0];
    assert_string_equal(r.method.c_str(), "PATCH");
    assert_string_equal(r.path.c_str(), "/kv/some/key");
    assert_string_equal(r.query.c_str(), "ttl=30&x");
    assert_int_equal(r.headers.size(), 5);
    assert_string_equal(r.header("host")->c_str(), "example:7700");
    assert_string_equal(r.body.c_str(), "{\"v\":\"1\"}");
    for (size_t i = 1; i < in.size(); ++i) assert_same_outcome(once, run_cuts(in, {i}));
    for (size_t i = 1; i < in.size(); ++i) {
        for (size_t j = i + 1; j < in.size(); ++j) assert_same_outcome(once, run_cuts(in, {i, j}));
    }
    for (size_t step = 1; step <= 8; ++step) assert_same_outcome(once, run_step(in, step));
}

void test_error_codes_and_messages(void**) {
    Limits limits = small_limits();
    struct Case {
        std::string in;
        int status;
        const char* code;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(200, 'x') + "\r\n\r\n", 431, "header_too_large"},
        {"GET /" + std::string(100, 'x') + " HTTP/1.1\r\nHost: h\r\n\r\n", 414, "uri_too_long"},
        {"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n", 413, "body_too_large"},
        {"PUT / HTTP/1.1\r\nHost: h\r\nExpect: x\r\nContent-Length: 1\r\n\r\n", 417, "expectation_failed"},
        {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "http_version_not_supported"},
        {"GET / HTTP/1.1\r\n\r\n", 400, "bad_request"},
    };
    for (const Case& c : cases) {
        Limits l = limits;
        RequestParser parser(l);
        parser.feed(c.in.data(), c.in.size());
        assert_int_equal(static_cast<int>(parser.state()), static_cast<int>(State::Error));
        assert_int_equal(parser.error().status, c.status);
        assert_string_equal(parser.error().code.c_str(), c.code);
        assert_false(parser.error().message.empty());
        assert_false(parser.in_progress());
    }
}

// ---------------------------------------------------------------------------
// Known parser bugs (reported; these fail until core/http/parser.cpp is fixed)
// ---------------------------------------------------------------------------

// BUG: obs-fold after an EMPTY first value line is accepted. llhttp skips
// the whitespace, line break and continuation whitespace as leading OWS and
// reports one value chunk ("chunked") whose preceding byte is ' ', so the
// "byte before the chunk is '\n'" fold check never fires. A front proxy that
// rejects or ignores the folded line sees no Transfer-Encoding while rampart
// reads a chunked body: request smuggling.
//   repro: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"
//   -> Complete (Transfer-Encoding = "chunked"), expected 400 bad_request.
// llhttp ends a head at "\r" followed by any byte; the core's own scan of
// the head disagrees, and a disagreement about framing is refused (found by
// the fuzzer's split-vs-whole invariant).
// llhttp treats an empty Transfer-Encoding as absent, so CL+TE slipped by.
void test_empty_transfer_encoding_refused(void**) {
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\nContent-Length: 3\r\n\r\nabc", 400,
                 "bad_request");
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", 400, "bad_request");
}

void test_bare_cr_end_of_head_refused(void**) {
    expect_error("GET / HTTP/1.1\r\nHost: h\r\n\r2\nX: y\r\n\r\n", 400, "bad_request");
    expect_error("GET / HTTP/1.1\r\nHost: h\r\n\rGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request");
}

void bug_obs_fold_after_empty_value(void**) {
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost:\r\n h\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost: h\r\nX:\r\n b\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost: h\r\nX: \r\n b\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost: h\r\nX:\t\r\n\tb\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost: h\r\nX:\r\n \r\n\r\n");
}

// BUG: docs/http.md refuses "a Transfer-Encoding other than chunked", but
// llhttp accepts any coding list that ends in chunked and the parser does
// not look further: the still-gzip-coded body is handed to the handler as
// if it were the plain value.
//   repro: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
//   -> Complete with body "abc", expected 400 (or 501).
void bug_transfer_coding_before_chunked(void**) {
    expect_bad("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    expect_bad(
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\n\r\n");
}

// BUG: chunked trailer fields are appended to Request::headers, so a field
// that was not in the head can be injected after the body (RFC 9110 6.5.1:
// trailers must not be merged into the header section). E.g. a trailer
// "X-Request-Id" or "Authorization" becomes visible through header().
//   repro: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n
//           1\r\na\r\n0\r\nX-Injected: 1\r\n\r\n"
//   -> header("x-injected") == "1", expected nullptr.
void bug_trailers_merged_into_headers(void**) {
    Request r = expect_one(
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-Injected: 1\r\n\r\n");
    assert_string_equal(r.body.c_str(), "a");
    assert_null(r.header("x-injected"));
    assert_int_equal(r.headers.size(), 2);
}

// ---------------------------------------------------------------------------
// Router
// ---------------------------------------------------------------------------

using rampart::http::Router;

void noop(rampart::http::Exchange&) {}

void test_router_exact(void**) {
    Router router;
    router.add("GET", "/health", noop, true);
    router.add("GET", "/ready", noop);
    auto m = router.match("GET", "/health");
    assert_int_equal(m.status, 0);
    assert_non_null(m.route);
    assert_string_equal(m.route->pattern.c_str(), "/health");
    assert_true(m.route->high_volume);
    assert_false(m.route->prefix);
    m = router.match("GET", "/ready");
    assert_non_null(m.route);
    assert_false(m.route->high_volume);
    // Exact means exact.
    for (const char* path : {"/health/", "/healthz", "/Health", "/", "", "/health/x"}) {
        m = router.match("GET", path);
        assert_null(m.route);
        assert_int_equal(m.status, 404);
        assert_true(m.allow.empty());
    }
}

void test_router_prefix(void**) {
    Router router;
    router.add("GET", "/kv/*", noop);
    router.add("PUT", "/kv/*", noop);
    router.add("GET", "/kv/special", noop);  // shadowed by the earlier prefix for GET
    auto m = router.match("GET", "/kv/a");
    assert_non_null(m.route);
    assert_true(m.route->prefix);
    assert_string_equal(m.route->pattern.c_str(), "/kv/");
    assert_non_null(router.match("GET", "/kv/a/b/c").route);
    assert_non_null(router.match("GET", "/kv/").route);
    assert_non_null(router.match("PUT", "/kv/x").route);
    assert_string_equal(router.match("PUT", "/kv/x").route->method.c_str(), "PUT");
    assert_int_equal(router.match("GET", "/kv").status, 404);
    assert_int_equal(router.match("GET", "/kvx").status, 404);
    assert_int_equal(router.match("GET", "/other/kv/a").status, 404);
}

void test_router_404_405(void**) {
    Router router;
    router.add("GET", "/health", noop);
    router.add("GET", "/kv/*", noop);
    router.add("PUT", "/kv/*", noop);
    router.add("DELETE", "/kv/*", noop);
    router.add("POST", "/admin", noop);

    auto m = router.match("GET", "/nope");
    assert_int_equal(m.status, 404);
    assert_null(m.route);

    m = router.match("POST", "/health");
    assert_int_equal(m.status, 405);
    assert_null(m.route);
    assert_string_equal(m.allow.c_str(), "GET, HEAD");
    m = router.match("DELETE", "/health");
    assert_int_equal(m.status, 405);
    assert_string_equal(m.allow.c_str(), "GET, HEAD");

    m = router.match("POST", "/kv/a");
    assert_int_equal(m.status, 405);
    assert_string_equal(m.allow.c_str(), "GET, HEAD, PUT, DELETE");

    m = router.match("GET", "/admin");
    assert_int_equal(m.status, 405);
    assert_string_equal(m.allow.c_str(), "POST");
    // HEAD on a path without GET is 405 too.
    m = router.match("HEAD", "/admin");
    assert_int_equal(m.status, 405);
    assert_string_equal(m.allow.c_str(), "POST");
}

void test_router_head(void**) {
    Router router;
    router.add("GET", "/health", noop);
    auto m = router.match("HEAD", "/health");
    assert_int_equal(m.status, 0);
    assert_non_null(m.route);
    assert_string_equal(m.route->method.c_str(), "GET");
    assert_int_equal(router.match("HEAD", "/missing").status, 404);
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

using rampart::http::Framing;
using rampart::http::Response;

void test_response_error_shape(void**) {
    Response r = Response::error(413, "body_too_large", "request body larger than 16 bytes");
    assert_int_equal(r.status, 413);
    assert_string_equal(r.content_type.c_str(), "application/json");
    assert_string_equal(r.body.c_str(),
                        "{\"error\":\"request body larger than 16 bytes\",\"code\":\"body_too_large\"}\n");
    // Hostile text is escaped, so the body stays one JSON object.
    Response h = Response::error(400, "bad_request", "bad \"name\"\n\\x\x01");
    assert_string_equal(h.body.c_str(), "{\"error\":\"bad \\\"name\\\"\\n\\\\x\\u0001\",\"code\":\"bad_request\"}\n");

    Response j = Response::json(201, "{\"ok\":true}");
    assert_int_equal(j.status, 201);
    assert_string_equal(j.body.c_str(), "{\"ok\":true}");
    assert_string_equal(j.content_type.c_str(), "application/json");
}

void test_serialize(void**) {
    Response r = Response::error(404, "not_found", "no route for /x");
    r.headers.push_back({"Allow", "GET, HEAD"});
    Framing f;
    f.request_id = "abc123";
    f.date = "Sun, 06 Nov 1994 08:49:37 GMT";
    std::string out;
    rampart::http::serialize(r, f, out);
    std::string expected =
        "HTTP/1.1 404 Not Found\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(r.body.size()) + "\r\nX-Request-Id: abc123\r\nAllow: GET, HEAD\r\n\r\n" + r.body;
    assert_string_equal(out.c_str(), expected.c_str());

    // Appends; Connection: close; HEAD keeps Content-Length but drops the body.
    std::string two = "prefix";
    Framing fc;
    fc.date = "D";
    fc.close = true;
    fc.head = true;
    rampart::http::serialize(Response::json(200, "{\"status\":\"ok\"}"), fc, two);
    assert_string_equal(two.c_str(),
                        "prefixHTTP/1.1 200 OK\r\nDate: D\r\nContent-Type: application/json\r\nContent-Length: 15\r\n"
                        "Connection: close\r\n\r\n");

    // HTTP/1.0 keep-alive is announced; no request id, no extra headers.
    std::string ka;
    Framing fk;
    fk.date = "D";
    fk.keep_alive_http10 = true;
    rampart::http::serialize(Response::json(200, "x"), fk, ka);
    assert_string_equal(ka.c_str(),
                        "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Type: application/json\r\nContent-Length: 1\r\n"
                        "Connection: keep-alive\r\n\r\nx");

    // No body and no content type: no Content-Type header.
    Response empty;
    empty.status = 204;
    empty.content_type.clear();
    std::string e;
    rampart::http::serialize(empty, fk, e);
    assert_string_equal(e.c_str(),
                        "HTTP/1.1 204 No Content\r\nDate: D\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
}

void test_status_reason_and_date(void**) {
    assert_string_equal(rampart::http::status_reason(200), "OK");
    assert_string_equal(rampart::http::status_reason(405), "Method Not Allowed");
    assert_string_equal(rampart::http::status_reason(413), "Content Too Large");
    assert_string_equal(rampart::http::status_reason(414), "URI Too Long");
    assert_string_equal(rampart::http::status_reason(417), "Expectation Failed");
    assert_string_equal(rampart::http::status_reason(431), "Request Header Fields Too Large");
    assert_string_equal(rampart::http::status_reason(505), "HTTP Version Not Supported");
    assert_string_equal(rampart::http::status_reason(299), "Unknown");
    assert_string_equal(rampart::http::http_date(784111777).c_str(), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_string_equal(rampart::http::http_date(0).c_str(), "Thu, 01 Jan 1970 00:00:00 GMT");
}

// ---------------------------------------------------------------------------
// Request ids
// ---------------------------------------------------------------------------

void test_request_id_sanity(void**) {
    using rampart::http::is_sane_request_id;
    assert_true(is_sane_request_id("a"));
    assert_true(is_sane_request_id("abc-DEF_123.4:5"));
    assert_true(is_sane_request_id("0123456789abcdef"));
    assert_true(is_sane_request_id(std::string(128, 'x')));
    assert_false(is_sane_request_id(std::string(129, 'x')));
    assert_false(is_sane_request_id(""));
    for (const char* bad : {"a b", "a\nb", "a\rb", "a\tb", "a/b", "a\"b", "a\\b", "a;b", "a,b", "a=b", "{}", "\xc3\xa9",
                            "a\x7f", "<script>", "%41"}) {
        assert_false(is_sane_request_id(bad));
    }
    assert_false(is_sane_request_id(std::string_view("a\0b", 3)));
}

void test_request_id_generation(void**) {
    std::unordered_set<std::string> seen;
    seen.reserve(100000);
    for (int i = 0; i < 100000; ++i) {
        std::string id = rampart::http::generate_request_id();
        assert_int_equal(id.size(), 16);
        for (char c : id) assert_true((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
        assert_true(rampart::http::is_sane_request_id(id));
        assert_true(seen.insert(std::move(id)).second);
    }
    assert_int_equal(seen.size(), 100000);
}

// ---------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------

using rampart::net::Address;
using rampart::net::parse_address;

void test_address_ipv4(void**) {
    Address a;
    std::string err;
    assert_true(parse_address("127.0.0.1:7700", &a, &err));
    assert_string_equal(a.host.c_str(), "127.0.0.1");
    assert_int_equal(a.port, 7700);
    assert_false(a.ipv6);
    assert_int_equal(a.sa()->sa_family, AF_INET);
    auto* sin = reinterpret_cast<const sockaddr_in*>(a.sa());
    assert_int_equal(ntohs(sin->sin_port), 7700);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001u);
    assert_true(rampart::net::is_loopback(a));
    assert_string_equal(rampart::net::format_address(a.sa()).c_str(), "127.0.0.1:7700");

    assert_true(parse_address("0.0.0.0:0", &a, &err));
    assert_int_equal(a.port, 0);
    assert_false(rampart::net::is_loopback(a));
    assert_true(parse_address("10.1.2.3:65535", &a, &err));
    assert_int_equal(a.port, 65535);
    assert_false(rampart::net::is_loopback(a));
    assert_true(parse_address("127.200.3.4:1", &a, &err));
    assert_true(rampart::net::is_loopback(a));
    assert_true(parse_address("128.0.0.1:1", &a, &err));
    assert_false(rampart::net::is_loopback(a));
}

void test_address_ipv6(void**) {
    Address a;
    std::string err;
    assert_true(parse_address("[::1]:7700", &a, &err));
    assert_string_equal(a.host.c_str(), "::1");
    assert_int_equal(a.port, 7700);
    assert_true(a.ipv6);
    assert_int_equal(a.sa()->sa_family, AF_INET6);
    assert_int_equal(ntohs(reinterpret_cast<const sockaddr_in6*>(a.sa())->sin6_port), 7700);
    assert_true(rampart::net::is_loopback(a));
    assert_string_equal(rampart::net::format_address(a.sa()).c_str(), "[::1]:7700");

    assert_true(parse_address("[::]:80", &a, &err));
    assert_false(rampart::net::is_loopback(a));
    assert_true(parse_address("[2001:db8::1]:443", &a, &err));
    assert_false(rampart::net::is_loopback(a));
    assert_string_equal(rampart::net::format_address(a.sa()).c_str(), "[2001:db8::1]:443");
}

void test_address_refused(void**) {
    struct Case {
        const char* text;
        const char* hint;  // a substring of the error, or nullptr
    } cases[] = {
        {"127.0.0.1", nullptr},  // missing port
        {"127.0.0.1:", "port"},  // empty port
        {"127.0.0.1:65536", "port"},
        {"127.0.0.1:99999", "port"},
        {"127.0.0.1:123456", "port"},
        {"127.0.0.1:-1", "port"},
        {"127.0.0.1:7a", "port"},
        {"127.0.0.1: 80", "port"},
        {"localhost:7700", "host names"},  // hostnames refused
        {"example.com:80", "host names"},
        {"1.2.3:80", nullptr},
        {"256.0.0.1:80", nullptr},
        {":7700", nullptr},
        {"::1:7700", "brackets"},  // IPv6 without brackets
        {"fe80::1:80", "brackets"},
        {"[::1]", nullptr},
        {"[::1]:", "port"},
        {"[::1]7700", nullptr},
        {"[::1:7700", nullptr},
        {"[localhost]:80", nullptr},
        {"[127.0.0.1]:80", nullptr},
        {"", nullptr},
    };
    for (const Case& c : cases) {
        Address a;
        std::string err;
        if (parse_address(c.text, &a, &err)) print_message("accepted \"%s\"\n", c.text);
        assert_false(parse_address(c.text, &a, &err));
        assert_false(err.empty());
        if (c.hint && err.find(c.hint) == std::string::npos) print_message("\"%s\": %s\n", c.text, err.c_str());
        if (c.hint) assert_true(err.find(c.hint) != std::string::npos);
    }
}

// ---------------------------------------------------------------------------
// JSON escaping
// ---------------------------------------------------------------------------

void test_json_escape(void**) {
    using rampart::util::json_escape_append;
    using rampart::util::json_string_append;
    auto esc = [](std::string_view s) {
        std::string out;
        json_escape_append(out, s);
        return out;
    };
    assert_string_equal(esc("plain text /kv/a?b=c").c_str(), "plain text /kv/a?b=c");
    assert_string_equal(esc("say \"hi\"").c_str(), "say \\\"hi\\\"");
    assert_string_equal(esc("back\\slash").c_str(), "back\\\\slash");
    assert_string_equal(esc("\n\r\t").c_str(), "\\n\\r\\t");
    assert_string_equal(esc("\x01\x08\x0c\x1f").c_str(), "\\u0001\\u0008\\u000c\\u001f");
    assert_string_equal(esc(std::string_view("a\0b", 3)).c_str(), "a\\u0000b");
    assert_string_equal(esc("\x7f").c_str(), "\\u007f");
    assert_string_equal(esc("").c_str(), "");
    // Every byte value gives printable ASCII without a raw quote or line break.
    for (int c = 0; c < 256; ++c) {
        std::string out = esc(std::string(1, static_cast<char>(c)));
        for (char o : out) assert_true(o >= 0x20 && o < 0x7f);
        if (c != '"' && c != '\\') assert_true(out.find('"') == std::string::npos || out == "\\\"");
    }
    std::string s = "x=";
    json_string_append(s, "a\"b\n");
    assert_string_equal(s.c_str(), "x=\"a\\\"b\\n\"");
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_header_values_kept),
        cmocka_unit_test(test_path_query_split),
        cmocka_unit_test(test_body_content_length),
        cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_pipelined_error_stops),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_limit_header_bytes),
        cmocka_unit_test(test_limit_header_count),
        cmocka_unit_test(test_limit_uri),
        cmocka_unit_test(test_limit_body_content_length),
        cmocka_unit_test(test_limit_body_chunked),
        cmocka_unit_test(test_limit_body_per_path),
        cmocka_unit_test(test_set_limits),
        cmocka_unit_test(test_cl_and_te),
        cmocka_unit_test(test_bad_content_length),
        cmocka_unit_test(test_bad_chunks),
        cmocka_unit_test(test_bad_transfer_encoding),
        cmocka_unit_test(test_obs_fold),
        cmocka_unit_test(test_space_before_colon),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_upgrade),
        cmocka_unit_test(test_expect),
        cmocka_unit_test(test_requests_begun),
        cmocka_unit_test(test_split_everywhere),
        cmocka_unit_test(test_error_codes_and_messages),
        cmocka_unit_test(test_bare_cr_end_of_head_refused),
        cmocka_unit_test(test_empty_transfer_encoding_refused),
        cmocka_unit_test(bug_obs_fold_after_empty_value),
        cmocka_unit_test(bug_transfer_coding_before_chunked),
        cmocka_unit_test(bug_trailers_merged_into_headers),
        cmocka_unit_test(test_router_exact),
        cmocka_unit_test(test_router_prefix),
        cmocka_unit_test(test_router_404_405),
        cmocka_unit_test(test_router_head),
        cmocka_unit_test(test_response_error_shape),
        cmocka_unit_test(test_serialize),
        cmocka_unit_test(test_status_reason_and_date),
        cmocka_unit_test(test_request_id_sanity),
        cmocka_unit_test(test_request_id_generation),
        cmocka_unit_test(test_address_ipv4),
        cmocka_unit_test(test_address_ipv6),
        cmocka_unit_test(test_address_refused),
        cmocka_unit_test(test_json_escape),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
