// libFuzzer target for the HTTP request parser (core/http/parser.h).
//
// Input layout:
//   byte 0: limits   bits 0-1 max_header_bytes, 2-3 max_uri_bytes,
//                    4-5 max_body_bytes (each from a small table)
//                    bits 6-7 split mode: whole, fixed step, pseudo-random
//                    pieces, byte by byte
//   byte 1: split parameter (step size or random seed)
//   rest:   the byte stream a client sends on one connection
//
// The stream is fed in pieces; complete requests are taken as they come
// (pipelining) until an error or until the input runs out. Invariants:
//   - feed() never consumes more than offered, and in NeedMore it takes all
//     of it (no stall: progress or a state change on every call);
//   - errors carry a status in {400,413,414,417,431,505}, a code and a
//     message, are sticky, and nothing is read after them;
//   - a completed request respects the limits: body, URI, header bytes and
//     header count; it has a method, an origin-form path, version 1.0/1.1;
//   - requests_begun() never decreases and is at least the number of
//     completed requests;
//   - the same bytes fed in one piece give the same requests, and end in an
//     error exactly when the split feeding does.
// It also checks that no accepted request head contains an obs-fold line
// (a line break followed by SP/HT); RAMPART_FUZZ_STRICT_FOLD=0 turns that
// check off.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "http/parser.h"

using rampart::http::Limits;
using rampart::http::Request;
using rampart::http::RequestParser;
using State = RequestParser::State;

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                     \
        }                                                                                     \
    } while (0)

namespace {

constexpr size_t kHeaderLimits[] = {16, 64, 512, 8192};
constexpr size_t kUriLimits[] = {1, 16, 256, 8192};
constexpr size_t kBodyLimits[] = {0, 8, 300, 65536};
constexpr size_t kMaxHeaders = 256;

enum class Split { Whole, Step, Random, Bytes };

struct Run {
    std::vector<Request> requests;
    bool error = false;
    int status = 0;
};

bool allowed_status(int status) {
    switch (status) {
        case 400:
        case 413:
        case 414:
        case 417:
        case 431:
        case 505: return true;
        default: return false;
    }
}

void check_request(const Request& r, const Limits& limits) {
    CHECK(!r.method.empty() && r.method.size() <= 32);
    CHECK(r.target.size() <= limits.max_uri_bytes);
    CHECK(!r.path.empty() && r.path[0] == '/');
    CHECK(r.path.size() <= r.target.size());
    CHECK(r.target.compare(0, r.path.size(), r.path) == 0);
    CHECK(r.query.size() <= r.target.size());
    CHECK(r.version_major == 1 && (r.version_minor == 0 || r.version_minor == 1));
    CHECK(r.body.size() <= limits.max_body_bytes);
    CHECK(r.headers.size() <= kMaxHeaders);
    size_t header_bytes = 0;
    size_t hosts = 0;
    for (const auto& h : r.headers) {
        CHECK(!h.name.empty());
        header_bytes += h.name.size() + h.value.size();
        for (char c : h.name) CHECK(c != ' ' && c != '\t' && c != ':' && c != '\r' && c != '\n');
        for (char c : h.value) CHECK(c != '\r' && c != '\n' && c != '\0');
        if (h.name.size() == 4 && (h.name[0] | 0x20) == 'h' && (h.name[1] | 0x20) == 'o' && (h.name[2] | 0x20) == 's' &&
            (h.name[3] | 0x20) == 't') {
            ++hosts;
        }
    }
    // Each header line also costs ": " and CRLF on the wire.
    if (!r.headers.empty()) header_bytes += 4 * (r.headers.size() - 1);
    CHECK(header_bytes <= limits.max_header_bytes);
    if (r.version_minor == 1) CHECK(hosts >= 1);  // (trailers may add more)
    CHECK(r.header("host") != nullptr || r.version_minor == 0);
}

bool strict_fold() {
    static const bool on = [] {
        const char* v = std::getenv("RAMPART_FUZZ_STRICT_FOLD");
        return v == nullptr || std::strcmp(v, "0") != 0;
    }();
    return on;
}

// The head of the request occupying data[begin, end): no line of it may
// start with whitespace (obs-fold), since the parser refuses folding.
void check_no_fold(const char* data, size_t begin, size_t end) {
    size_t i = begin;
    while (i < end && (data[i] == '\r' || data[i] == '\n')) ++i;  // tolerated empty lines
    for (; i + 1 < end; ++i) {
        if (data[i] != '\n') continue;
        char next = data[i + 1];
        if (next == '\r' || next == '\n') return;  // end of the head
        CHECK(next != ' ' && next != '\t');
    }
}

// Feed `data` cut at `cuts` (ascending, inside the data) and check every
// step of the way.
Run feed_all(const char* data, size_t size, const std::vector<size_t>& cuts, const Limits& limits) {
    RequestParser parser(limits);
    Run run;
    uint64_t begun = 0;
    size_t start = 0;
    size_t request_start = 0;  // where the current request's bytes begin
    for (size_t i = 0; i <= cuts.size(); ++i) {
        size_t end = i < cuts.size() ? cuts[i] : size;
        size_t pos = start;
        while (pos < end) {
            size_t avail = end - pos;
            size_t n = parser.feed(data + pos, avail);
            CHECK(n <= avail);
            pos += n;
            CHECK(parser.requests_begun() >= begun);
            begun = parser.requests_begun();
            switch (parser.state()) {
                case State::Complete: {
                    CHECK(!parser.in_progress());
                    CHECK(!parser.expects_continue());
                    // Completed means at least one byte of it was in this call or
                    // an earlier one; the call itself must not stall forever.
                    CHECK(n > 0);
                    CHECK(parser.feed(data + pos, end - pos) == 0);  // nothing read until taken
                    Request r = parser.take_request();
                    CHECK(parser.state() == State::NeedMore);
                    check_request(r, limits);
                    if (strict_fold()) check_no_fold(data, request_start, pos);
                    request_start = pos;
                    run.requests.push_back(std::move(r));
                    CHECK(begun >= run.requests.size());
                    break;
                }
                case State::Error: {
                    const auto& e = parser.error();
                    CHECK(allowed_status(e.status));
                    CHECK(!e.code.empty());
                    CHECK(!e.message.empty());
                    CHECK(!parser.in_progress());
                    CHECK(begun >= run.requests.size());
                    // Sticky: nothing more is read.
                    if (pos < size) CHECK(parser.feed(data + pos, size - pos) == 0);
                    CHECK(parser.state() == State::Error);
                    run.error = true;
                    run.status = e.status;
                    return run;
                }
                case State::NeedMore:
                    CHECK(n == avail);
                    if (parser.expects_continue()) CHECK(parser.in_progress());
                    break;
            }
        }
        start = end;
    }
    CHECK(begun >= run.requests.size());
    CHECK(begun <= run.requests.size() + 1);
    return run;
}

bool same_request(const Request& a, const Request& b) {
    if (a.method != b.method || a.target != b.target || a.path != b.path || a.query != b.query ||
        a.version_major != b.version_major || a.version_minor != b.version_minor || a.keep_alive != b.keep_alive ||
        a.body != b.body || a.headers.size() != b.headers.size()) {
        return false;
    }
    for (size_t i = 0; i < a.headers.size(); ++i) {
        if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value) return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* raw, size_t raw_size) {
    if (raw_size < 2) return 0;
    const uint8_t mode = raw[0];
    const uint8_t param = raw[1];
    const char* data = reinterpret_cast<const char*>(raw + 2);
    const size_t size = raw_size - 2;

    Limits limits;
    limits.max_header_bytes = kHeaderLimits[mode & 3];
    limits.max_uri_bytes = kUriLimits[(mode >> 2) & 3];
    limits.max_body_bytes = kBodyLimits[(mode >> 4) & 3];
    const Split split = static_cast<Split>((mode >> 6) & 3);

    std::vector<size_t> cuts;
    switch (split) {
        case Split::Whole: break;
        case Split::Step: {
            size_t step = static_cast<size_t>(param % 32) + 1;
            for (size_t i = step; i < size; i += step) cuts.push_back(i);
            break;
        }
        case Split::Random: {
            uint32_t x = param * 2654435761u + 1;
            for (size_t i = 0;;) {
                x = x * 1664525u + 1013904223u;
                i += (x >> 24) % 24 + 1;
                if (i >= size) break;
                cuts.push_back(i);
            }
            break;
        }
        case Split::Bytes:
            for (size_t i = 1; i < size; ++i) cuts.push_back(i);
            break;
    }

    Run split_run = feed_all(data, size, cuts, limits);
    if (!cuts.empty()) {
        // Splitting must not change what is accepted.
        Run whole = feed_all(data, size, {}, limits);
        CHECK(whole.requests.size() == split_run.requests.size());
        for (size_t i = 0; i < whole.requests.size(); ++i) {
            CHECK(same_request(whole.requests[i], split_run.requests[i]));
        }
        CHECK(whole.error == split_run.error);
    }
    return 0;
}
