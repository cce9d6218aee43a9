// libFuzzer target for the transport_tls plugin's sessions
// (plugins/transport_tls/session.*, driven through the plugin's ABI table
// in transport_tls.cpp): arbitrary bytes arrive as ciphertext, in pieces,
// at a session, and the plugin must never crash, leak, hang or break the
// ABI contract (include/rampart/plugin.h, "transport (ABI 1.1)"). A failed
// handshake is the expected outcome.
//
// Input layout:
//   byte 0: mode
//     bits 0-1 target
//       0 server handshake: the bytes go to a fresh server session
//       1 client handshake: a fresh client session sends its ClientHello,
//         then the bytes go to it (as the server's answer)
//       2 open server: a real (resumed) handshake between a client and a
//         server session of the plugin first, then the bytes go to the server
//       3 open client: the same, the bytes go to the client
//     bits 2-3 variant
//       server side: its context, 0 mTLS required + pins, 1 client
//       certificate optional + pins in report_only, 2 no CA (API style),
//       3 mTLS required, no pins
//       client handshake (target 1): the expected peer, node_1 (pinned, and
//       a cached session is offered), localhost, 127.0.0.1, node_9 (a pin
//       nothing matches)
//       open modes: the server context as above
//     bit 4 deferred jobs: work_submit queues the job instead of running it
//       and its done callback at once; queued jobs run when a piece asks for
//       it (flag 0x1) and after the session was freed at the end
//     bits 5-6 where the host frees the session: 0 at the end, 1 inside
//       stream_handshake_done, 2 inside stream_closed or stream_deliver,
//       3 inside the first stream_send after the input started
//     bit 7 session_shutdown before the final session_free
//   byte 1: bits 0-3 the number k of sized pieces
//   then k big-endian u16: bits 0-11 the piece's length, bits 12-15 flags
//     0x1 run the queued worker jobs first (deferred jobs only)
//     0x2 open modes: the piece is plaintext that the other session writes,
//         its records are what arrives (else the piece itself arrives raw)
//     0x4 open modes: the other session sends close_notify first
//     0x8 session_write(piece) on the fuzzed session as well
//   then the payload: the k pieces in order (cut short when it runs out);
//   what is left after them is one last raw piece.
//   A bare TLS record therefore works as an input after the two bytes
//   00 00 (server) or 01 00 (client).
//
// Invariants checked (abort otherwise), besides ASan/UBSan/LSan:
//   - no host call on a stream after its session was freed;
//   - stream_handshake_done at most once, before any deliver/closed; a
//     handshake from raw bytes never succeeds (targets 0 and 1); a failure
//     is tls_error with a known reason, a one-line detail without a whole
//     fingerprint, and an unverified peer;
//   - stream_closed at most once, after a successful handshake, and only
//     as (ok, "close_notify") or (tls_error, "protocol");
//   - session_input returns 0, -EPROTO (then the failure was reported) or,
//     while a job is queued, -EMSGSIZE;
//   - session_write returns -ENOTCONN before the handshake, -EPIPE after a
//     failure or close, 0 while open;
//   - open modes while only real records flowed: each side delivers exactly
//     the bytes the other wrote, and a close_notify closes the other side
//     with (ok, "close_notify");
//   - two sessions exchanging records settle (no endless ping-pong).
//
// Certificates: scripts/gen-certs.sh writes a throwaway CA and nodes into a
// temp dir in LLVMFuzzerInitialize; the contexts are built from it once and
// the dir is removed straight away (no key material outlives start-up, none
// is committed). Seeds in tests/fuzz/corpus/fuzz_tls_session/: records that
// openssl s_client / s_server sent (captured on loopback with a throwaway
// CA; the certificates in them are public and signed by nothing the fuzzer
// trusts), truncated and garbage records, and open-mode piece scripts.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "rampart/plugin.h"

extern "C" const rampart_plugin* rampart_plugin_entry(void);

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                     \
        }                                                                                     \
    } while (0)

namespace {
struct End;
}
struct rampart_stream {
    End* end;
};

namespace {

const rampart_transport* T = nullptr;
void* g_state = nullptr;
rampart_host g_api{};

// ---- the fake host -------------------------------------------------------------

enum FreeAt { kFreeAtEnd = 0, kFreeInHandshakeDone = 1, kFreeInClosedOrDeliver = 2, kFreeInSend = 3 };

struct Job {
    rampart_work_fn work;
    rampart_work_fn done;
    void* arg;
};

bool g_deferred = false;
std::deque<Job> g_jobs;

struct End {
    const char* name = "";  // for RAMPART_FUZZ_VERBOSE
    rampart_stream stream{this};
    void* session = nullptr;
    bool freed = false;  // the host freed the session: no host call on this stream may follow
    FreeAt free_at = kFreeAtEnd;
    bool armed = false;  // free_at may trigger
    bool freed_early = false;
    std::string outq;  // ciphertext it sent, not yet passed on
    std::string delivered;
    int done_calls = 0;
    bool handshake_ok = false;
    bool handshake_failed = false;
    int closed_calls = 0;
    rampart_transport_error closed_error = RAMPART_TRANSPORT_OK;
    std::string closed_reason;

    void free_session() {
        if (session != nullptr) T->session_free(session);
        session = nullptr;
        freed = true;
    }
    void free_now() {
        freed_early = true;
        free_session();
    }
    bool open() const { return handshake_ok && closed_calls == 0; }
};

void run_jobs() {
    // A job's done callback may submit the next one: run until none is left.
    for (int guard = 0; !g_jobs.empty(); ++guard) {
        CHECK(guard < 100000);
        Job j = g_jobs.front();
        g_jobs.pop_front();
        j.work(j.arg);
        j.done(j.arg);
    }
}

int h_work_submit(rampart_plugin_ctx*, rampart_work_fn work, rampart_work_fn done, void* arg) {
    CHECK(work != nullptr && done != nullptr);
    if (g_deferred) {
        g_jobs.push_back(Job{work, done, arg});
        return 0;
    }
    work(arg);
    done(arg);
    return 0;
}

void h_log(rampart_plugin_ctx*, rampart_log_level, const char* msg) {
    CHECK(msg != nullptr && std::strlen(msg) < 65536);
}

int g_metric_token;
rampart_metric* h_register(rampart_plugin_ctx*, const char* name, const char*, const char* const*, size_t) {
    CHECK(name != nullptr);
    return reinterpret_cast<rampart_metric*>(&g_metric_token);
}
void check_labels(const char* const* labels, size_t n) {
    for (size_t i = 0; i < n; ++i) CHECK(labels[i] != nullptr && std::strlen(labels[i]) < 4096);
}
void h_counter_add(rampart_metric*, const char* const* labels, double) { check_labels(labels, 1); }
void h_gauge_set(rampart_metric*, const char* const* labels, double) { check_labels(labels, 1); }
int g_timer_token;
rampart_timer* h_timer_start(rampart_plugin_ctx*, uint64_t, uint64_t, rampart_timer_fn, void*) {
    return reinterpret_cast<rampart_timer*>(&g_timer_token);
}
void h_timer_stop(rampart_timer*) {}
int64_t h_wall_ms(rampart_plugin_ctx*) { return static_cast<int64_t>(std::time(nullptr)) * 1000; }
uint64_t h_now_ms(rampart_plugin_ctx*) { return 0; }

int64_t h_stream_send(rampart_stream* s, const char* data, size_t len) {
    End* e = s->end;
    CHECK(!e->freed);
    CHECK(data != nullptr && len > 0);
    e->outq.append(data, len);
    const auto held = static_cast<int64_t>(e->outq.size());
    if (e->armed && e->free_at == kFreeInSend) e->free_now();
    return held;
}

void h_stream_deliver(rampart_stream* s, const char* data, size_t len) {
    End* e = s->end;
    CHECK(!e->freed);
    CHECK(e->open());
    CHECK(data != nullptr && len > 0);
    e->delivered.append(data, len);
    if (e->armed && e->free_at == kFreeInClosedOrDeliver) e->free_now();
}

bool all_hex(const char* s) {
    if (s == nullptr) return false;
    for (; *s; ++s)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return false;
    return true;
}

// "never contains key material or whole fingerprints"
bool has_long_hex_run(const char* s) {
    int run = 0;
    for (; *s; ++s) {
        const char c = *s;
        const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        run = hex ? run + 1 : 0;
        if (run >= 64) return true;
    }
    return false;
}

bool known_reason(const char* r) {
    for (const char* k :
         {"unknown_ca", "expired", "name_mismatch", "no_client_certificate", "pin_mismatch", "protocol"})
        if (std::strcmp(r, k) == 0) return true;
    return false;
}

bool g_raw_handshake = false;  // targets 0 and 1: no handshake may succeed

// RAMPART_FUZZ_VERBOSE=1: print every handshake result and close (to see
// what a seed reaches).
bool verbose() {
    static const bool on = [] {
        const char* v = std::getenv("RAMPART_FUZZ_VERBOSE");
        return v != nullptr && std::strcmp(v, "1") == 0;
    }();
    return on;
}

void h_stream_handshake_done(rampart_stream* s, const rampart_handshake_result* r) {
    End* e = s->end;
    CHECK(!e->freed);
    CHECK(++e->done_calls == 1);
    CHECK(e->delivered.empty() && e->closed_calls == 0);
    CHECK(r != nullptr && r->struct_size == sizeof(rampart_handshake_result));
    CHECK(r->reason != nullptr && r->detail != nullptr && r->protocol != nullptr && r->cipher != nullptr);
    if (verbose())
        std::fprintf(stderr, "%s handshake_done: %s %s (%s) peer=%s\n", e->name,
                     r->error == RAMPART_TRANSPORT_OK ? "ok" : "tls_error", r->reason, r->detail,
                     r->peer != nullptr ? r->peer->subject_cn : "-");
    CHECK(std::strchr(r->detail, '\n') == nullptr);
    CHECK(!has_long_hex_run(r->detail));
    if (r->peer != nullptr) {
        const rampart_peer_identity* p = r->peer;
        CHECK(p->struct_size >= sizeof(rampart_peer_identity));
        CHECK(p->subject_cn != nullptr);
        CHECK(p->dns_san_count == 0 || p->dns_sans != nullptr);
        for (size_t i = 0; i < p->dns_san_count; ++i) CHECK(p->dns_sans[i] != nullptr);
        CHECK(all_hex(p->cert_sha256) && std::strlen(p->cert_sha256) == 64);
        CHECK(all_hex(p->spki_sha256) && std::strlen(p->spki_sha256) == 64);
    }
    if (r->error == RAMPART_TRANSPORT_OK) {
        CHECK(!g_raw_handshake);  // nobody can forge a handshake from raw bytes
        CHECK(std::strcmp(r->reason, "ok") == 0);
        CHECK(std::strcmp(r->protocol, "TLSv1.2") == 0);
        e->handshake_ok = true;
    } else {
        CHECK(r->error == RAMPART_TRANSPORT_TLS_ERROR);
        CHECK(known_reason(r->reason));
        CHECK(r->peer == nullptr || r->peer->verified == 0);
        CHECK(r->resumed == 0);
        e->handshake_failed = true;
    }
    if (e->armed && e->free_at == kFreeInHandshakeDone) e->free_now();
}

void h_stream_closed(rampart_stream* s, rampart_transport_error error, const char* reason) {
    End* e = s->end;
    CHECK(!e->freed);
    CHECK(e->handshake_ok);
    CHECK(++e->closed_calls == 1);
    CHECK(reason != nullptr);
    if (verbose()) std::fprintf(stderr, "%s stream_closed: %d %s\n", e->name, static_cast<int>(error), reason);
    CHECK((error == RAMPART_TRANSPORT_OK && std::strcmp(reason, "close_notify") == 0) ||
          (error == RAMPART_TRANSPORT_TLS_ERROR && std::strcmp(reason, "protocol") == 0));
    e->closed_error = error;
    e->closed_reason = reason;
    if (e->armed && e->free_at == kFreeInClosedOrDeliver) e->free_now();
}

// ---- start-up: certificates and contexts --------------------------------------------

std::string run_cmd(const std::string& cmd) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        std::fprintf(stderr, "fuzz_tls_session: command failed: %s\n", cmd.c_str());
        std::abort();
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
}

void write_text(const std::string& path, const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "wb");
    CHECK(f != nullptr);
    CHECK(std::fwrite(text.data(), 1, text.size(), f) == text.size());
    std::fclose(f);
}

void* make_ctx(const std::string& dir, const char* purpose, int node, bool ca, bool require, const std::string& pins) {
    const std::string cert = dir + "/node_" + std::to_string(node) + ".pem";
    const std::string key = dir + "/node_" + std::to_string(node) + ".key";
    const std::string ca_file = ca ? dir + "/ca.pem" : "";
    rampart_transport_settings s{};
    s.struct_size = sizeof s;
    s.purpose = purpose;
    s.cert_file = cert.c_str();
    s.key_file = key.c_str();
    s.ca_file = ca_file.c_str();
    s.client_cert_file = "";
    s.client_key_file = "";
    s.require_client_cert = require ? 1 : 0;
    s.pins_file = pins.c_str();
    void* c = nullptr;
    char err[512] = "";
    if (T->context_new(g_state, &s, &c, err, sizeof err) != 0) {
        std::fprintf(stderr, "fuzz_tls_session: context_new: %s\n", err);
        std::abort();
    }
    return c;
}

void* g_server_ctx[4];
void* g_open_client_ctx[4];  // node_2, one per server variant (its resumption cache)
void* g_fuzz_client_ctx;     // node_2, for target 1: holds one cached session for node_1
const char* const kExpectedPeers[4] = {"node_1", "localhost", "127.0.0.1", "node_9"};

// Passes the ciphertext each side sent to the other until both are quiet.
void pump(End& a, End& b) {
    for (int guard = 0;; ++guard) {
        CHECK(guard < 1000);  // two sessions must not ping-pong forever
        bool progress = false;
        for (End* from : {&a, &b}) {
            End* to = from == &a ? &b : &a;
            if (from->outq.empty()) continue;
            std::string data;
            data.swap(from->outq);
            progress = true;
            if (to->session == nullptr) continue;
            const int r = T->session_input(to->session, data.data(), data.size());
            CHECK(r == 0 || r == -EPROTO || (r == -EMSGSIZE && !g_jobs.empty()));
        }
        if (!g_jobs.empty()) {
            run_jobs();
            progress = true;
        }
        if (!progress) return;
    }
}

// A real handshake between a fresh server session of `sctx` and a fresh
// client session of `cctx` (expecting node_1).
void connect(End& server, End& client, void* sctx, void* cctx) {
    CHECK(T->session_new(g_state, sctx, &server.stream, RAMPART_SIDE_SERVER, nullptr, &server.session) == 0);
    CHECK(T->session_new(g_state, cctx, &client.stream, RAMPART_SIDE_CLIENT, "node_1", &client.session) == 0);
    pump(server, client);
}

void init_contexts() {
    const rampart_plugin* d = rampart_plugin_entry();
    T = d->transport;
    g_api.struct_size = sizeof g_api;
    g_api.abi_major = RAMPART_ABI_MAJOR;
    g_api.abi_minor = RAMPART_ABI_MINOR;
    g_api.host_version = "fuzz";
    g_api.log = h_log;
    g_api.counter_register = h_register;
    g_api.gauge_register = h_register;
    g_api.counter_add = h_counter_add;
    g_api.gauge_set = h_gauge_set;
    g_api.timer_start = h_timer_start;
    g_api.timer_stop = h_timer_stop;
    g_api.now_ms = h_now_ms;
    g_api.wall_ms = h_wall_ms;
    g_api.stream_send = h_stream_send;
    g_api.stream_deliver = h_stream_deliver;
    g_api.stream_handshake_done = h_stream_handshake_done;
    g_api.stream_closed = h_stream_closed;
    g_api.work_submit = h_work_submit;
    CHECK(d->init(reinterpret_cast<rampart_plugin_ctx*>(0x1), &g_api, &g_state) == 0);

    char tmpl[] = "/tmp/rampart-fuzz-tls.XXXXXX";
    CHECK(mkdtemp(tmpl) != nullptr);
    const std::string dir = tmpl;
    run_cmd(std::string(TLS_FUZZ_GEN_CERTS) + " " + dir + " 2 2>/dev/null");
    const std::string cert1 =
        run_cmd("openssl x509 -in " + dir + "/node_1.pem -outform DER | sha256sum | cut -d' ' -f1");
    const std::string spki2 = run_cmd("openssl x509 -in " + dir + "/node_2.pem -pubkey -noout | openssl pkey -pubin " +
                                      "-outform DER | sha256sum | cut -d' ' -f1");
    const std::string bogus(64, 'e');
    // node_1 (the server) and node_2 (the client) pass their pins; node_9
    // and a node_3 have pins nothing matches.
    const std::string peers = "{\"node_1\": \"sha256:" + cert1 + "\", \"node_2\": [\"spki-sha256:" + bogus +
                              "\", \"spki-sha256:" + spki2 + "\"], \"node_3\": \"sha256:" + bogus +
                              "\", \"node_9\": [\"spki-sha256:" + bogus + "\"]}";
    write_text(dir + "/pins.json", "{\"peers\": " + peers + ", \"report_only\": false}");
    write_text(dir + "/pins-report.json", "{\"peers\": " + peers + ", \"report_only\": true}");

    g_server_ctx[0] = make_ctx(dir, "peer", 1, true, true, dir + "/pins.json");
    g_server_ctx[1] = make_ctx(dir, "api", 1, true, false, dir + "/pins-report.json");
    g_server_ctx[2] = make_ctx(dir, "api", 1, false, false, "");
    g_server_ctx[3] = make_ctx(dir, "peer", 1, true, true, "");
    for (void*& c : g_open_client_ctx) c = make_ctx(dir, "peer", 2, true, false, dir + "/pins.json");
    g_fuzz_client_ctx = make_ctx(dir, "peer", 2, true, false, dir + "/pins.json");
    // Everything is in memory now: no key material stays on disk.
    run_cmd("rm -rf " + dir);

    // Prime the resumption caches: every open-mode run then resumes (cheap,
    // and the same path every time), and target 1 offers a cached session
    // to node_1.
    for (int v = 0; v < 4; ++v) {
        End server, client;
        connect(server, client, g_server_ctx[v], g_open_client_ctx[v]);
        CHECK(server.handshake_ok && client.handshake_ok);
        server.free_session();
        client.free_session();
    }
    {
        End server, client;
        connect(server, client, g_server_ctx[0], g_fuzz_client_ctx);
        CHECK(server.handshake_ok && client.handshake_ok);
        server.free_session();
        client.free_session();
    }
}

// ---- one input ----------------------------------------------------------------------

struct Piece {
    size_t off, len;
    unsigned flags;
};

void check_write(End& e, int r) {
    if (!e.handshake_ok && !e.handshake_failed)
        CHECK(r == -ENOTCONN);
    else if (e.open())
        CHECK(r == 0 || r == -EPIPE);  // -EPIPE: a shutdown of our own (only at the end) or an error
    else
        CHECK(r == -EPIPE);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    init_contexts();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* raw, size_t size) {
    if (size < 2) return 0;
    const uint8_t mode = raw[0];
    const int target = mode & 3;
    const int variant = (mode >> 2) & 3;
    const bool deferred = (mode & 0x10) != 0;
    const auto free_at = static_cast<FreeAt>((mode >> 5) & 3);
    const bool shutdown_at_end = (mode & 0x80) != 0;
    const size_t k = raw[1] & 15;
    size_t pos = 2;
    std::vector<Piece> pieces;
    std::vector<unsigned> flags;
    for (size_t i = 0; i < k && pos + 1 < size; ++i, pos += 2) {
        const unsigned d = (unsigned{raw[pos]} << 8) | raw[pos + 1];
        pieces.push_back(Piece{0, d & 0x0fff, d >> 12});
    }
    const char* payload = reinterpret_cast<const char*>(raw) + pos;
    const size_t payload_len = size - pos;
    size_t at = 0;
    for (Piece& p : pieces) {
        p.off = at;
        if (p.len > payload_len - at) p.len = payload_len - at;
        at += p.len;
    }
    if (at < payload_len || pieces.empty()) pieces.push_back(Piece{at, payload_len - at, 0});

    const bool open_mode = target >= 2;
    g_raw_handshake = !open_mode;
    g_deferred = false;  // the open modes' handshake runs its jobs at once
    End a, b;            // a: the fuzzed session; b: the other side (open modes)
    a.name = "fuzzed";
    b.name = "other";
    bool clean = true;       // only real records reached the fuzzed session so far
    std::string to_a, to_b;  // plaintext written towards each side

    if (target == 0) {
        g_deferred = deferred;
        CHECK(T->session_new(g_state, g_server_ctx[variant], &a.stream, RAMPART_SIDE_SERVER, nullptr, &a.session) == 0);
    } else if (target == 1) {
        g_deferred = deferred;
        CHECK(T->session_new(g_state, g_fuzz_client_ctx, &a.stream, RAMPART_SIDE_CLIENT, kExpectedPeers[variant],
                             &a.session) == 0);
        run_jobs();  // the ClientHello goes out first
        CHECK(!a.outq.empty());
        a.outq.clear();
    } else {
        End& server = target == 2 ? a : b;
        End& client = target == 2 ? b : a;
        connect(server, client, g_server_ctx[variant], g_open_client_ctx[variant]);
        CHECK(server.handshake_ok && client.handshake_ok);
        g_deferred = deferred;  // no jobs after the handshake anyway
    }
    a.free_at = free_at;
    a.armed = true;

    for (const Piece& p : pieces) {
        if (a.session == nullptr) break;
        const char* data = payload + p.off;
        if ((p.flags & 0x1) != 0) run_jobs();
        if (a.session == nullptr) break;
        if (open_mode && (p.flags & 0x4) != 0 && b.session != nullptr) {
            const bool a_was_open = a.open();
            T->session_shutdown(b.session);
            pump(a, b);
            if (clean && a_was_open && !a.freed_early) {
                CHECK(a.closed_calls == 1);
                CHECK(a.closed_error == RAMPART_TRANSPORT_OK && a.closed_reason == "close_notify");
            }
        }
        if (a.session == nullptr) break;
        if (open_mode && (p.flags & 0x2) != 0) {
            if (b.session != nullptr) {
                const int r = T->session_write(b.session, data, p.len);
                check_write(b, r);
                if (r == 0) to_a.append(data, p.len);
                pump(a, b);
            }
        } else {
            if (p.len > 0) clean = false;
            const int r = T->session_input(a.session, data, p.len);
            CHECK(r == 0 || r == -EPROTO || (r == -EMSGSIZE && deferred && !g_jobs.empty()));
            if (r == -EPROTO) CHECK(a.freed || a.handshake_failed || a.closed_error == RAMPART_TRANSPORT_TLS_ERROR);
            if (open_mode)
                pump(a, b);
            else
                a.outq.clear();  // nobody answers
        }
        if (a.session != nullptr && (p.flags & 0x8) != 0) {
            const int r = T->session_write(a.session, data, p.len);
            check_write(a, r);
            if (r == 0) to_b.append(data, p.len);
            if (open_mode) pump(a, b);
        }
        if (!open_mode) a.outq.clear();
    }

    if (a.session != nullptr && shutdown_at_end) {
        T->session_shutdown(a.session);
        if (open_mode) pump(a, b);
    }
    if (open_mode && clean && !a.freed_early) {
        CHECK(a.delivered == to_a);
        CHECK(b.delivered == to_b);
    }
    // The host frees the sessions (a queued job then only cleans up), then
    // the loop runs what is left.
    a.free_session();
    b.free_session();
    run_jobs();
    g_deferred = false;
    return 0;
}
