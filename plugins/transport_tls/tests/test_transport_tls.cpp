// Unit tests of transport_tls: real mbedTLS handshakes between a server and
// a client session of the plugin, in memory. The test is the host: a real
// libuv loop runs the handshake jobs (work_submit -> uv_queue_work), and
// stream_send queues ciphertext that pump() feeds to the other session.
// Certificates are made per run by scripts/gen-certs.sh (and openssl for
// a second CA, expired and not-yet-valid certificates) under a temp dir.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <uv.h>

#include "context.h"
#include "identity.h"
#include "pins.h"
#include "rampart/plugin.h"
#include "session.h"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
}

extern "C" const rampart_plugin* rampart_plugin_entry(void);

namespace {
struct End;
}
struct rampart_stream {
    End* end;
};

namespace {

// ---- shell helpers ----------------------------------------------------------

std::string g_dir;  // the run's certificates

struct ShellResult {
    int status = -1;
    std::string out;
};

ShellResult sh(const std::string& cmd) {
    ShellResult r;
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return r;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == ' ')) r.out.pop_back();
    return r;
}

std::string run_ok(const std::string& cmd) {
    ShellResult r = sh(cmd);
    if (r.status != 0) fail_msg("command failed (%d): %s\n%s", r.status, cmd.c_str(), r.out.c_str());
    return r.out;
}

std::string path(const std::string& name) { return g_dir + "/" + name; }

void write_file(const std::string& p, const std::string& text, mode_t mode = 0644) {
    FILE* f = fopen(p.c_str(), "wb");
    assert_non_null(f);
    fwrite(text.data(), 1, text.size(), f);
    fclose(f);
    chmod(p.c_str(), mode);
}

std::string cert_sha256(const std::string& pem) {
    return run_ok("openssl x509 -in " + pem + " -outform DER | sha256sum | cut -d' ' -f1");
}

std::string spki_sha256(const std::string& pem) {
    return run_ok("openssl x509 -in " + pem +
                  " -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1");
}

// A certificate for node_1's key with explicit validity, signed by the CA (openssl ca).
void make_dated_cert(const std::string& name, const char* start, const char* end) {
    const std::string d = path("ca-db-" + name);
    run_ok("mkdir -p " + d + " && : > " + d + "/index.txt && echo 01 > " + d + "/serial");
    write_file(d + "/ca.cnf",
               "[ca]\ndefault_ca = c\n[c]\ndatabase = " + d + "/index.txt\nnew_certs_dir = " + d + "\nserial = " + d +
                   "/serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n"
                   "[ext]\nsubjectAltName = DNS:node_1,DNS:localhost\nextendedKeyUsage = serverAuth,clientAuth\n");
    run_ok("cp " + path("node_1.key") + " " + path(name + ".key") + " && chmod 600 " + path(name + ".key"));
    run_ok("openssl req -new -key " + path(name + ".key") + " -subj /CN=node_1 -out " + d + "/req.csr 2>&1");
    run_ok("openssl ca -batch -config " + d + "/ca.cnf -cert " + path("ca.pem") + " -keyfile " + path("ca.key") +
           " -in " + d + "/req.csr -out " + path(name + ".pem") + " -startdate " + start + " -enddate " + end +
           " -extensions ext -notext 2>&1");
}

int group_setup(void**) {
    char tmpl[] = "/tmp/rampart-tls-test.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return -1;
    g_dir = tmpl;
    if (sh(std::string(TLS_TEST_GEN_CERTS) + " " + g_dir + " 3 2>/dev/null").status != 0) return -1;
    if (sh(std::string(TLS_TEST_GEN_CERTS) + " " + g_dir + "/other 1 2>/dev/null").status != 0) return -1;
    make_dated_cert("expired", "20200101000000Z", "20210101000000Z");
    make_dated_cert("future", "20900101000000Z", "20910101000000Z");
    return 0;
}

int group_teardown(void**) {
    if (!g_dir.empty()) (void)sh("rm -rf " + g_dir);
    return 0;
}

// ---- the test host ----------------------------------------------------------

struct Metric {
    std::string name;
    std::map<std::string, double> values;  // label values joined by ','
};

struct Timer {
    rampart_timer_fn fn;
    void* arg;
    uint64_t repeat_ms;
    bool stopped = false;
};

struct Job {
    uv_work_t req;
    rampart_work_fn work;
    rampart_work_fn done;
    void* arg;
};

struct TestHost {
    uv_loop_t loop;
    rampart_host api{};
    std::vector<std::string> logs;
    std::map<std::string, std::unique_ptr<Metric>> metrics;
    std::vector<std::unique_ptr<Timer>> timers;
    int jobs_in_flight = 0;
    int jobs_total = 0;
    bool fail_work_submit = false;
    void* state = nullptr;
};

TestHost* g = nullptr;
const rampart_transport* T = nullptr;

rampart_plugin_ctx* fake_ctx() { return reinterpret_cast<rampart_plugin_ctx*>(0x1); }

void h_log(rampart_plugin_ctx*, rampart_log_level, const char* msg) { g->logs.emplace_back(msg); }

rampart_metric* h_register(const char* name) {
    auto& m = g->metrics[name];
    if (!m) {
        m = std::make_unique<Metric>();
        m->name = name;
    }
    return reinterpret_cast<rampart_metric*>(m.get());
}
rampart_metric* h_counter_register(rampart_plugin_ctx*, const char* name, const char*, const char* const*, size_t) {
    return h_register(name);
}
rampart_metric* h_gauge_register(rampart_plugin_ctx*, const char* name, const char*, const char* const*, size_t) {
    return h_register(name);
}
std::string join(const char* const* labels, size_t n) {
    std::string k;
    for (size_t i = 0; i < n; ++i) {
        if (i) k += ',';
        k += labels[i];
    }
    return k;
}
size_t label_count(const Metric* m) { return m->name == "rampart_tls_handshakes_total" ? 2 : 1; }
void h_counter_add(rampart_metric* metric, const char* const* labels, double delta) {
    auto* m = reinterpret_cast<Metric*>(metric);
    m->values[join(labels, label_count(m))] += delta;
}
void h_gauge_set(rampart_metric* metric, const char* const* labels, double value) {
    auto* m = reinterpret_cast<Metric*>(metric);
    m->values[join(labels, label_count(m))] = value;
}
rampart_timer* h_timer_start(rampart_plugin_ctx*, uint64_t, uint64_t repeat_ms, rampart_timer_fn fn, void* arg) {
    g->timers.push_back(std::make_unique<Timer>(Timer{fn, arg, repeat_ms}));
    return reinterpret_cast<rampart_timer*>(g->timers.back().get());
}
void h_timer_stop(rampart_timer* t) { reinterpret_cast<Timer*>(t)->stopped = true; }
int64_t h_wall_ms(rampart_plugin_ctx*) { return static_cast<int64_t>(time(nullptr)) * 1000; }
uint64_t h_now_ms(rampart_plugin_ctx*) { return uv_now(&g->loop); }

double metric(const char* name, const std::string& labels) {
    auto it = g->metrics.find(name);
    if (it == g->metrics.end()) return 0;
    auto v = it->second->values.find(labels);
    return v == it->second->values.end() ? 0 : v->second;
}

int h_work_submit(rampart_plugin_ctx*, rampart_work_fn work, rampart_work_fn done, void* arg) {
    if (g->fail_work_submit) return -EAGAIN;
    auto* j = new Job{};
    j->work = work;
    j->done = done;
    j->arg = arg;
    j->req.data = j;
    ++g->jobs_in_flight;
    ++g->jobs_total;
    return uv_queue_work(
        &g->loop, &j->req,
        [](uv_work_t* req) { static_cast<Job*>(req->data)->work(static_cast<Job*>(req->data)->arg); },
        [](uv_work_t* req, int) {
            auto* job = static_cast<Job*>(req->data);
            --g->jobs_in_flight;
            job->done(job->arg);
            delete job;
        });
}

// ---- connection ends ----------------------------------------------------------

struct PeerCopy {
    int verified = 0;
    std::string cn;
    std::vector<std::string> sans;
    std::string cert_sha256, spki_sha256;
    int64_t not_after = 0;
};

struct End {
    rampart_stream stream{this};
    void* session = nullptr;
    End* other = nullptr;
    std::string outq;
    std::string delivered;
    bool freed = false;  // the session was freed: any host call on this stream is a bug
    bool free_in_handshake_done = false;
    int host_calls_after_free = 0;
    int last_input_ret = 0;
    // handshake result
    bool done = false;
    int done_calls = 0;
    rampart_transport_error error = RAMPART_TRANSPORT_OK;
    std::string reason, detail, protocol, cipher;
    int resumed = -1;
    bool has_peer = false;
    PeerCopy peer;
    // stream_closed
    bool closed = false;
    rampart_transport_error closed_error = RAMPART_TRANSPORT_OK;
    std::string closed_reason;

    void free_session() {
        if (session != nullptr) T->session_free(session);
        session = nullptr;
        freed = true;
    }
};

int64_t h_stream_send(rampart_stream* s, const char* data, size_t len) {
    if (s->end->freed) ++s->end->host_calls_after_free;
    s->end->outq.append(data, len);
    return static_cast<int64_t>(s->end->outq.size());
}
void h_stream_deliver(rampart_stream* s, const char* data, size_t len) {
    if (s->end->freed) ++s->end->host_calls_after_free;
    s->end->delivered.append(data, len);
}
void h_stream_handshake_done(rampart_stream* s, const rampart_handshake_result* r) {
    End* e = s->end;
    if (e->freed) ++e->host_calls_after_free;
    e->done = true;
    ++e->done_calls;
    e->error = r->error;
    e->reason = r->reason ? r->reason : "";
    e->detail = r->detail ? r->detail : "";
    e->protocol = r->protocol ? r->protocol : "";
    e->cipher = r->cipher ? r->cipher : "";
    e->resumed = r->resumed;
    e->has_peer = r->peer != nullptr;
    if (r->peer) {
        e->peer.verified = r->peer->verified;
        e->peer.cn = r->peer->subject_cn;
        e->peer.sans.clear();
        for (size_t i = 0; i < r->peer->dns_san_count; ++i) e->peer.sans.emplace_back(r->peer->dns_sans[i]);
        e->peer.cert_sha256 = r->peer->cert_sha256;
        e->peer.spki_sha256 = r->peer->spki_sha256;
        e->peer.not_after = r->peer->not_after_unix;
    }
    if (e->free_in_handshake_done) e->free_session();
}
void h_stream_closed(rampart_stream* s, rampart_transport_error error, const char* reason) {
    if (s->end->freed) ++s->end->host_calls_after_free;
    s->end->closed = true;
    s->end->closed_error = error;
    s->end->closed_reason = reason ? reason : "";
}

int setup(void**) {
    g = new TestHost();
    uv_loop_init(&g->loop);
    rampart_host& a = g->api;
    a.struct_size = sizeof(rampart_host);
    a.abi_major = RAMPART_ABI_MAJOR;
    a.abi_minor = RAMPART_ABI_MINOR;
    a.host_version = "test";
    a.log = h_log;
    a.counter_register = h_counter_register;
    a.gauge_register = h_gauge_register;
    a.counter_add = h_counter_add;
    a.gauge_set = h_gauge_set;
    a.timer_start = h_timer_start;
    a.timer_stop = h_timer_stop;
    a.now_ms = h_now_ms;
    a.wall_ms = h_wall_ms;
    a.stream_send = h_stream_send;
    a.stream_deliver = h_stream_deliver;
    a.stream_handshake_done = h_stream_handshake_done;
    a.stream_closed = h_stream_closed;
    a.work_submit = h_work_submit;
    const rampart_plugin* d = rampart_plugin_entry();
    T = d->transport;
    if (d->init(fake_ctx(), &g->api, &g->state) != 0) return -1;
    return 0;
}

int teardown(void**) {
    // Every job must have finished (a test leaves none behind).
    while (g->jobs_in_flight > 0) uv_run(&g->loop, UV_RUN_ONCE);
    rampart_plugin_entry()->fini(g->state);
    uv_loop_close(&g->loop);
    delete g;
    g = nullptr;
    return 0;
}

// ---- contexts -----------------------------------------------------------------

struct Settings {
    std::string purpose = "peer";
    std::string cert, key, ca, client_cert, client_key, pins;
    bool require = true;
    rampart_transport_settings view() const {
        rampart_transport_settings s{};
        s.struct_size = sizeof s;
        s.purpose = purpose.c_str();
        s.cert_file = cert.c_str();
        s.key_file = key.c_str();
        s.ca_file = ca.c_str();
        s.client_cert_file = client_cert.c_str();
        s.client_key_file = client_key.c_str();
        s.require_client_cert = require ? 1 : 0;
        s.pins_file = pins.c_str();
        return s;
    }
};

Settings node(int i, const std::string& ca_dir = "") {
    Settings s;
    s.cert = path("node_" + std::to_string(i) + ".pem");
    s.key = path("node_" + std::to_string(i) + ".key");
    s.ca = (ca_dir.empty() ? g_dir : ca_dir) + "/ca.pem";
    return s;
}

void* make_ctx(const Settings& s) {
    rampart_transport_settings v = s.view();
    void* c = nullptr;
    char err[512] = "";
    int r = T->context_new(g->state, &v, &c, err, sizeof err);
    if (r != 0) fail_msg("context_new: %s", err);
    return c;
}

void* make_ctx_opts(const Settings& s, const transport_tls::ContextOptions& o) {
    rampart_transport_settings v = s.view();
    std::string err;
    auto* c = transport_tls::Context::create(static_cast<transport_tls::Host*>(g->state), v, o, &err);
    if (c == nullptr) fail_msg("Context::create: %s", err.c_str());
    return c;
}

std::string ctx_error(const Settings& s) {
    rampart_transport_settings v = s.view();
    void* c = nullptr;
    char err[512] = "";
    int r = T->context_new(g->state, &v, &c, err, sizeof err);
    if (r == 0) {
        T->context_release(g->state, c);
        fail_msg("context_new succeeded, expected a failure");
    }
    assert_true(r < 0);
    return err;
}

void assert_contains(const std::string& hay, const std::string& needle) {
    if (hay.find(needle) == std::string::npos) fail_msg("\"%s\" does not contain \"%s\"", hay.c_str(), needle.c_str());
}

// ---- connections ----------------------------------------------------------------

struct Conn {
    End server, client;
    Conn() {
        server.other = &client;
        client.other = &server;
    }
    ~Conn() {
        server.free_session();
        client.free_session();
    }
};

void pump(Conn& c) {
    for (int guard = 0; guard < 100000; ++guard) {
        bool progress = false;
        for (End* e : {&c.server, &c.client}) {
            if (!e->outq.empty()) {
                std::string data;
                data.swap(e->outq);
                if (e->other->session != nullptr)
                    e->other->last_input_ret = T->session_input(e->other->session, data.data(), data.size());
                progress = true;
            }
        }
        if (g->jobs_in_flight > 0) {
            uv_run(&g->loop, UV_RUN_ONCE);
            progress = true;
        }
        if (!progress) return;
    }
    fail_msg("pump did not settle");
}

// Starts both sessions and runs the handshake to its end.
void connect(Conn& c, void* server_ctx, void* client_ctx, const char* expected) {
    assert_int_equal(
        T->session_new(g->state, server_ctx, &c.server.stream, RAMPART_SIDE_SERVER, nullptr, &c.server.session), 0);
    assert_int_equal(
        T->session_new(g->state, client_ctx, &c.client.stream, RAMPART_SIDE_CLIENT, expected, &c.client.session), 0);
    pump(c);
}

void release(void* ctx) { T->context_release(g->state, ctx); }

bool logged(const std::string& needle) {
    for (const std::string& l : g->logs)
        if (l.find(needle) != std::string::npos) return true;
    return false;
}

// ---- handshakes ------------------------------------------------------------------

void test_mtls_ok(void**) {
    void* sctx = make_ctx(node(1));
    void* cctx = make_ctx(node(2));
    {
        Conn c;
        connect(c, sctx, cctx, "node_1");
        assert_true(c.server.done);
        assert_true(c.client.done);
        assert_int_equal(c.server.error, RAMPART_TRANSPORT_OK);
        assert_int_equal(c.client.error, RAMPART_TRANSPORT_OK);
        assert_string_equal(c.server.reason.c_str(), "ok");
        assert_string_equal(c.server.protocol.c_str(), "TLSv1.2");
        assert_contains(c.server.cipher, "ECDHE-ECDSA");
        assert_true(c.server.cipher.find("GCM") != std::string::npos ||
                    c.server.cipher.find("CHACHA20") != std::string::npos);
        assert_int_equal(c.server.resumed, 0);
        assert_int_equal(c.client.resumed, 0);
        // The server sees node_2, verified, with the fingerprints openssl computes.
        assert_true(c.server.has_peer);
        assert_int_equal(c.server.peer.verified, 1);
        assert_string_equal(c.server.peer.cn.c_str(), "node_2");
        assert_int_equal(c.server.peer.sans.size(), 3);  // IP SANs are not listed
        assert_string_equal(c.server.peer.sans[0].c_str(), "node_2");
        assert_string_equal(c.server.peer.sans[1].c_str(), "rampart-node-2");
        assert_string_equal(c.server.peer.sans[2].c_str(), "localhost");
        assert_string_equal(c.server.peer.cert_sha256.c_str(), cert_sha256(path("node_2.pem")).c_str());
        assert_string_equal(c.server.peer.spki_sha256.c_str(), spki_sha256(path("node_2.pem")).c_str());
        std::string end =
            run_ok("date -u -d \"$(openssl x509 -in " + path("node_2.pem") + " -noout -enddate | cut -d= -f2)\" +%s");
        assert_int_equal(c.server.peer.not_after, std::stoll(end));
        // The client sees node_1.
        assert_true(c.client.has_peer);
        assert_int_equal(c.client.peer.verified, 1);
        assert_string_equal(c.client.peer.cn.c_str(), "node_1");
        assert_string_equal(c.client.peer.cert_sha256.c_str(), cert_sha256(path("node_1.pem")).c_str());
        assert_int_equal(c.server.done_calls, 1);
        assert_int_equal(c.client.done_calls, 1);
    }
    // The handshake ran in worker jobs.
    assert_true(g->jobs_total >= 3);
    assert_int_equal(metric("rampart_tls_handshakes_total", "server,ok"), 1);
    assert_int_equal(metric("rampart_tls_handshakes_total", "client,ok"), 1);
    release(sctx);
    release(cctx);
}

void test_resumption(void**) {
    void* sctx = make_ctx(node(1));
    void* cctx = make_ctx(node(2));
    {
        Conn a;
        connect(a, sctx, cctx, "node_1");
        assert_int_equal(a.client.error, RAMPART_TRANSPORT_OK);
        assert_int_equal(a.client.resumed, 0);
    }
    {
        Conn b;
        connect(b, sctx, cctx, "node_1");
        assert_int_equal(b.client.error, RAMPART_TRANSPORT_OK);
        assert_int_equal(b.server.error, RAMPART_TRANSPORT_OK);
        assert_int_equal(b.client.resumed, 1);
        assert_int_equal(b.server.resumed, 1);
        // The identity survives resumption (it travels in the ticket).
        assert_true(b.server.has_peer);
        assert_int_equal(b.server.peer.verified, 1);
        assert_string_equal(b.server.peer.cn.c_str(), "node_2");
        assert_true(b.client.has_peer);
        assert_string_equal(b.client.peer.cn.c_str(), "node_1");
        // Data flows on a resumed session.
        assert_int_equal(T->session_write(b.client.session, "ping", 4), 0);
        pump(b);
        assert_string_equal(b.server.delivered.c_str(), "ping");
    }
    // Another expected peer name has no cached session.
    {
        Conn c;
        connect(c, sctx, cctx, "localhost");
        assert_int_equal(c.client.error, RAMPART_TRANSPORT_OK);
        assert_int_equal(c.client.resumed, 0);
    }
    // A new context (a reload) starts from scratch: new ticket keys.
    void* sctx2 = make_ctx(node(1));
    {
        Conn d;
        connect(d, sctx2, cctx, "node_1");
        assert_int_equal(d.client.error, RAMPART_TRANSPORT_OK);
        assert_int_equal(d.server.resumed, 0);
    }
    release(sctx);
    release(sctx2);
    release(cctx);
}

void test_application_data(void**) {
    void* sctx = make_ctx(node(1));
    void* cctx = make_ctx(node(2));
    {
        Conn c;
        connect(c, sctx, cctx, "node_1");
        assert_int_equal(T->session_write(c.client.session, "hello", 5), 0);
        pump(c);
        assert_string_equal(c.server.delivered.c_str(), "hello");
        std::string big(100 * 1024 + 7, '\0');
        for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131 + 7) & 0xff);
        assert_int_equal(T->session_write(c.server.session, big.data(), big.size()), 0);
        assert_int_equal(T->session_write(c.client.session, big.data(), big.size()), 0);
        pump(c);
        assert_true(c.client.delivered == big);
        assert_true(c.server.delivered == "hello" + big);
        // Ciphertext split into 1-byte pieces still decrypts.
        assert_int_equal(T->session_write(c.client.session, "slow", 4), 0);
        std::string wire;
        wire.swap(c.client.outq);
        for (char ch : wire) assert_int_equal(T->session_input(c.server.session, &ch, 1), 0);
        assert_true(c.server.delivered == "hello" + big + "slow");
        assert_false(c.server.closed);
    }
    release(sctx);
    release(cctx);
}

void test_close_notify(void**) {
    void* sctx = make_ctx(node(1));
    void* cctx = make_ctx(node(2));
    {
        Conn c;
        connect(c, sctx, cctx, "node_1");
        T->session_shutdown(c.client.session);
        assert_false(c.client.outq.empty());
        pump(c);
        assert_true(c.server.closed);
        assert_int_equal(c.server.closed_error, RAMPART_TRANSPORT_OK);
        assert_string_equal(c.server.closed_reason.c_str(), "close_notify");
        // Writing after shutdown is refused.
        assert_true(T->session_write(c.client.session, "x", 1) < 0);
    }
    release(sctx);
    release(cctx);
}

void test_write_before_handshake(void**) {
    void* sctx = make_ctx(node(1));
    {
        Conn c;
        assert_int_equal(
            T->session_new(g->state, sctx, &c.server.stream, RAMPART_SIDE_SERVER, nullptr, &c.server.session), 0);
        assert_int_equal(T->session_write(c.server.session, "x", 1), -ENOTCONN);
    }
    release(sctx);
}

void test_wrong_ca(void**) {
    void* sctx = make_ctx(node(1));
    Settings cs = node(2);
    cs.ca = path("other/ca.pem");  // the client trusts another CA
    void* cctx = make_ctx(cs);
    {
        Conn c;
        connect(c, sctx, cctx, "node_1");
        assert_int_equal(c.client.error, RAMPART_TRANSPORT_TLS_ERROR);
        assert_string_equal(c.client.reason.c_str(), "unknown_ca");
        assert_contains(c.client.detail, "node_1");
        // The server hears the client's unknown_ca alert.
        assert_int_equal(c.server.error, RAMPART_TRANSPORT_TLS_ERROR);
        assert_string_equal(c.server.reason.c_str(), "unknown_ca");
        assert_contains(c.server.detail, "alert");
    }
    assert_int_equal(metric("rampart_tls_handshakes_total", "client,unknown_ca"), 1);
    release(sctx);
    release(cctx);
}

void test_client_from_other_ca(void**) {
    void* sctx = make_ctx(node(1));
    Settings cs;
    cs.cert = path("other/node_1.pem");
    cs.key = path("other/node_1.key");
    cs.ca = path("ca.pem");
    void* cctx = make_ctx(cs);
    {
        Conn c;
        connect(c, sctx, cctx, "node_1");
        assert_int_equal(c.server.error, RAMPART_TRANSPORT_TLS_ERROR);
        assert_string_equal(c.server.reason.c_str(), "unknown_ca");
        assert_int_equal(c.client.error, RAMPART_TRANSPORT_TLS_ERROR);
    }
    assert_int_equal(metric("rampart_tls_handshakes_total", "server,unknown_ca"), 1);
    release(sctx);
    release(cctx);
}

void test_expired_server_cert(void**) {
    Settings ss = node(1);
    ss.cert = path("expired.pem");
    ss.key = path("expired.key");
    transport_tls::ContextOptions o;
    o.allow_expired = true;
    void* sctx = make_ctx_opts(ss, o);
    void* cctx = make_ctx(node(2));
    {
        Conn c;
        connect(c, sctx, cctx, "node_1");
        assert_int_equal(c.client.error, RAMPART_TRANSPORT_TLS_ERROR);
        assert_string_equal(c.client.reason.c_str(), "expired");
        assert_contains(c.client.detail, "2021-01-01");
        assert_string_equal(c.server.reason.c_str(), "expired");  // the client's certificate_expired alert
    }
    // And an expired client certificate, seen by the server.
    void* sctx2 = make_ctx(node(1));
    void* cctx2 = make_ctx_opts(ss, o);
    {
        Conn c;
        connect(c, sctx2, cctx2, "node_1");
        assert_int_equal(c.server.error, RAMPART_TRANSPORT_TLS_ERROR);
        assert_string_equal(c.server.reason.c_str(), "expired");
    }
    release(sctx);
    release(cctx);
    release(sctx2);
    release(cctx2);
}

void test_name_mismatch(void**) {
    void* sctx = make_ctx(node(1));
    void* cctx = make_ctx(node(2));
    {
        Conn c;
        connect(c, sctx, cctx, "node_3");
        assert_int_equal(c.client.error, RAMPART_TRANSPORT_TLS_ERROR);
        assert_string_equal(c.client.reason.c_str(), "name_mismatch");
        assert_contains(c.client.detail, "node_3");
        assert_int_equal(c.server.error, RAMPART_TRANSPORT_TLS_ERROR);
        // IP addresses are not names (mbedTLS 2.28 cannot match IP SANs).
        Conn d;
        connect(d, sctx, cctx, "127.0.0.1");
        assert_string_equal(d.client.reason.c_str(), "name_mismatch");
        // Another DNS SAN of the same certificate matches.
        Conn e;
        connect(e, sctx, cctx, "rampart-node-1");
        assert_int_equal(e.client.error, RAMPART_TRANSPORT_OK);
    }
    assert_int_equal(metric("rampart_tls_handshakes_total", "client,name_mismatch"), 2);
    release(sctx);
    release(cctx);
}

void test_missing_client_cert(void**) {
    void* sctx = make_ctx(node(1));
    transport_tls::ContextOptions o;
    o.no_client_cert = true;
    void* cctx = make_ctx_opts(node(2), o);
    {
        Conn c;
        connect(c, sctx, cctx, "node_1");
        assert_int_equal(c.server.error, RAMPART_TRANSPORT_TLS_ERROR);
        assert_string_equal(c.server.reason.c_str(), "no_client_certificate");
        assert_false(c.server.has_peer);
        // The client hears why instead of waiting for its timeout.
        assert_int_equal(c.client.error, RAMPART_TRANSPORT_TLS_ERROR);
        assert_contains(c.client.detail, "handshake_failure");
    }
    assert_int_equal(metric("rampart_tls_handshakes_total", "server,no_client_certificate"), 1);
    release(sctx);
    release(cctx);
}

void test_optional_client_cert(void**) {
    Settings ss = node(1);
    ss.require = false;  // CA given, client certificate optional (HTTPS API)
    void* sctx = make_ctx(ss);
    transport_tls::ContextOptions o;
    o.no_client_cert = true;
    void* anon = make_ctx_opts(node(2), o);
    Settings other;
    other.cert = path("other/node_1.pem");
    other.key = path("other/node_1.key");
    other.ca = path("ca.pem");
    void* stranger = make_ctx(other);
    void* member = make_ctx(node(2));
    {
        Conn a;  // no certificate: accepted, no identity
        connect(a, sctx, anon, "node_1");
        assert_int_equal(a.server.error, RAMPART_TRANSPORT_OK);
        assert_false(a.server.has_peer);
        Conn b;  // a certificate that does not verify: accepted, verified=0
        connect(b, sctx, stranger, "node_1");
        assert_int_equal(b.server.error, RAMPART_TRANSPORT_OK);
        assert_true(b.server.has_peer);
        assert_int_equal(b.server.peer.verified, 0);
        Conn c;  // a good one: verified=1
        connect(c, sctx, member, "node_1");
        assert_int_equal(c.server.error, RAMPART_TRANSPORT_OK);
        assert_int_equal(c.server.peer.verified, 1);
    }
    // No CA at all: no client certificate is asked for.
    Settings plain = node(1);
    plain.ca = "";
    plain.require = false;
    void* sctx2 = make_ctx(plain);
    {
        Conn d;
        connect(d, sctx2, member, "node_1");
        assert_int_equal(d.server.error, RAMPART_TRANSPORT_OK);
        assert_false(d.server.has_peer);
        // ... and that context cannot dial out (nothing to verify a server with).
        void* s = nullptr;
        assert_int_equal(T->session_new(g->state, sctx2, &d.client.stream, RAMPART_SIDE_CLIENT, "node_1", &s), -EINVAL);
    }
    release(sctx);
    release(sctx2);
    release(anon);
    release(stranger);
    release(member);
}

// ---- pins ------------------------------------------------------------------------

std::string pins_file(const std::string& name, const std::string& json) {
    std::string p = path(name);
    write_file(p, json);
    return p;
}

const std::string kWrongHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

void test_pin_match_both_forms(void**) {
    const std::string n1_cert = cert_sha256(path("node_1.pem"));
    const std::string n2_spki = spki_sha256(path("node_2.pem"));
    Settings ss = node(1);  // the server pins node_2's key
    ss.pins =
        pins_file("pins-a.json", "{\"peers\": {\"node_2\": \"spki-sha256:" + n2_spki + "\"}, \"report_only\": false}");
    Settings cs = node(2);  // the client pins node_1's certificate
    cs.pins = pins_file("pins-b.json", "{\"peers\": {\"node_1\": \"sha256:" + n1_cert + "\"}}");
    void* sctx = make_ctx(ss);
    void* cctx = make_ctx(cs);
    {
        Conn c;
        connect(c, sctx, cctx, "node_1");
        assert_int_equal(c.server.error, RAMPART_TRANSPORT_OK);
        assert_int_equal(c.client.error, RAMPART_TRANSPORT_OK);
    }
    assert_int_equal(metric("rampart_pinning_violations_total", "node_1"), 0);
    assert_int_equal(metric("rampart_pinning_violations_total", "node_2"), 0);
    release(sctx);
    release(cctx);
}

void test_pin_mismatch_client(void**) {
    const std::string n1_cert = cert_sha256(path("node_1.pem"));
    Settings cs = node(2);
    cs.pins =
        pins_file("pins-c.json", "{\"peers\": {\"node_1\": \"sha256:" + kWrongHex + "\"}, \"report_only\": false}");
    void* sctx = make_ctx(node(1));
    void* cctx = make_ctx(cs);
    {
        Conn c;
        connect(c, sctx, cctx, "node_1");
        assert_int_equal(c.client.error, RAMPART_TRANSPORT_TLS_ERROR);
        assert_string_equal(c.client.reason.c_str(), "pin_mismatch");
        assert_int_equal(c.server.error, RAMPART_TRANSPORT_TLS_ERROR);  // it hears bad_certificate
    }
    assert_int_equal(metric("rampart_pinning_violations_total", "node_1"), 1);
    assert_int_equal(metric("rampart_tls_handshakes_total", "client,pin_mismatch"), 1);
    // The log names the masked fingerprint, never the full one.
    const std::string masked = "sha256:" + n1_cert.substr(0, 4) + "..." + n1_cert.substr(60);
    assert_true(logged(masked));
    assert_true(logged("pin mismatch for peer node_1"));
    for (const std::string& l : g->logs) assert_true(l.find(n1_cert) == std::string::npos);
    release(sctx);
    release(cctx);
}

void test_pin_mismatch_server(void**) {
    const std::string n2_spki = spki_sha256(path("node_2.pem"));
    Settings ss = node(1);
    ss.pins = pins_file("pins-d.json", "{\"peers\": {\"rampart-node-2\": \"spki-sha256:" + kWrongHex +
                                           "\", \"node_3\": \"sha256:" + kWrongHex + "\"}}");
    Settings ss_opt = ss;
    ss_opt.require = false;  // optional client certificates: refused after the handshake
    void* sctx = make_ctx(ss);
    void* sctx_opt = make_ctx(ss_opt);
    void* cctx = make_ctx(node(2));
    {
        Conn c;
        connect(c, sctx, cctx, "node_1");
        assert_int_equal(c.server.error, RAMPART_TRANSPORT_TLS_ERROR);
        assert_string_equal(c.server.reason.c_str(), "pin_mismatch");
        assert_true(c.server.has_peer);  // the refused certificate, for the log
        assert_int_equal(c.server.peer.verified, 0);
        assert_int_equal(c.client.error, RAMPART_TRANSPORT_TLS_ERROR);
        Conn d;
        connect(d, sctx_opt, cctx, "node_1");
        assert_int_equal(d.server.error, RAMPART_TRANSPORT_TLS_ERROR);
        assert_string_equal(d.server.reason.c_str(), "pin_mismatch");
        // The client hears a fatal alert on its first read.
        assert_true(d.client.error != RAMPART_TRANSPORT_OK || d.client.closed);
    }
    assert_int_equal(metric("rampart_pinning_violations_total", "rampart-node-2"), 2);
    assert_true(logged("spki-sha256:" + n2_spki.substr(0, 4) + "..." + n2_spki.substr(60)));
    release(sctx);
    release(sctx_opt);
    release(cctx);
}

void test_pin_report_only(void**) {
    Settings cs = node(2);
    cs.pins =
        pins_file("pins-e.json", "{\"peers\": {\"node_1\": \"sha256:" + kWrongHex + "\"}, \"report_only\": true}");
    void* sctx = make_ctx(node(1));
    void* cctx = make_ctx(cs);
    {
        Conn c;
        connect(c, sctx, cctx, "node_1");
        assert_int_equal(c.client.error, RAMPART_TRANSPORT_OK);
        assert_int_equal(c.server.error, RAMPART_TRANSPORT_OK);
    }
    assert_int_equal(metric("rampart_pinning_violations_total", "node_1"), 1);
    assert_int_equal(metric("rampart_tls_handshakes_total", "client,ok"), 1);
    assert_true(logged("report_only"));
    release(sctx);
    release(cctx);
}

void test_pin_set_current_next(void**) {
    const std::string n1_cert = cert_sha256(path("node_1.pem"));
    const std::string n1_spki = spki_sha256(path("node_1.pem"));
    void* sctx = make_ctx(node(1));
    const std::string sets[] = {
        "[\"sha256:" + kWrongHex + "\", \"sha256:" + n1_cert + "\"]",       // next is live
        "[\"spki-sha256:" + n1_spki + "\", \"sha256:" + kWrongHex + "\"]",  // current is live
        "[\"SHA256:" + kWrongHex + "\"]",                                   // (prefix is case-sensitive: invalid)
    };
    for (int i = 0; i < 2; ++i) {
        Settings cs = node(2);
        cs.pins = pins_file("pins-set.json", "{\"peers\": {\"node_1\": " + sets[i] + "}}");
        void* cctx = make_ctx(cs);
        Conn c;
        connect(c, sctx, cctx, "node_1");
        assert_int_equal(c.client.error, RAMPART_TRANSPORT_OK);
        c.client.free_session();
        c.server.free_session();
        release(cctx);
    }
    Settings bad = node(2);
    bad.pins = pins_file("pins-set.json", "{\"peers\": {\"node_1\": " + sets[2] + "}}");
    assert_contains(ctx_error(bad), "peers.node_1[0]");
    // Two wrong pins: refused.
    Settings cs = node(2);
    cs.pins = pins_file("pins-set.json",
                        "{\"peers\": {\"node_1\": [\"sha256:" + kWrongHex + "\", \"spki-sha256:" + kWrongHex + "\"]}}");
    void* cctx = make_ctx(cs);
    {
        Conn c;
        connect(c, sctx, cctx, "node_1");
        assert_string_equal(c.client.reason.c_str(), "pin_mismatch");
    }
    release(cctx);
    release(sctx);
}

void test_pins_malformed(void**) {
    const std::string hex = kWrongHex;
    struct Case {
        const char* json;
        const char* expect;
    };
    const std::string h = "\"sha256:" + hex + "\"";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"", "not valid JSON"},
        {"{", "not valid JSON"},
        {"[]", "top level must be an object"},
        {"\"x\"", "top level must be an object"},
        {"{}", "peers is missing"},
        {"{\"peers\": []}", "peers must be an object"},
        {"{\"peers\": {}, \"report_only\": \"no\"}", "report_only must be true or false"},
        {"{\"peers\": {}, \"extra\": 1}", "unknown key extra"},
        {"{\"peers\": {\"node_1\": 5}}", "peers.node_1: expected a string"},
        {"{\"peers\": {\"node_1\": \"md5:" + hex + "\"}}", "peers.node_1: unknown pin form"},
        {"{\"peers\": {\"node_1\": \"sha256:abcd\"}}", "peers.node_1: a pin needs 64 hex digits"},
        {"{\"peers\": {\"node_1\": \"sha256:" + hex + "00\"}}", "peers.node_1: a pin needs 64 hex digits"},
        {"{\"peers\": {\"node_1\": \"sha256:" + hex.substr(0, 63) + "g\"}}", "not a hex digit"},
        {"{\"peers\": {\"node_1\": []}}", "peers.node_1: an empty pin list"},
        {"{\"peers\": {\"node_1\": [" + h + ", 7]}}", "peers.node_1[1]: expected a string"},
        {"{\"peers\": {\"node_1\": [[" + h + "]]}}", "peers.node_1[0]"},
        {"{\"peers\": {\"node_1\": " + h + ", \"node_1\": " + h + "}}", "peers.node_1 appears twice"},
        {"{\"peers\": {\"\": " + h + "}}", "empty node id"},
        {"{\"peers\": {\"node_1\": null}}", "peers.node_1"},
        {"{\"peers\": {}, \"peers\": {}}", "peers appears twice"},
        {"{\"peers\": {}} trailing", "not valid JSON"},
    };
    for (size_t i = 0; i < cases.size(); ++i) {
        Settings s = node(1);
        s.pins = pins_file("bad-pins.json", cases[i].first);
        std::string err = ctx_error(s);
        assert_contains(err, path("bad-pins.json"));
        assert_contains(err, cases[i].second);
    }
    // Oversized.
    Settings s = node(1);
    s.pins = path("big-pins.json");
    std::string big = "{\"peers\": {}, \"report_only\": false}" + std::string(transport_tls::kMaxPinsFileBytes, ' ');
    write_file(s.pins, big);
    assert_contains(ctx_error(s), "larger than");
    // Missing.
    s.pins = path("no-such-pins.json");
    assert_contains(ctx_error(s), "no-such-pins.json cannot be read");
    // An empty peers map is valid (pinning nobody).
    s.pins = pins_file("empty-pins.json", "{\"peers\": {}}");
    release(make_ctx(s));
    // Upper-case hex is fine.
    std::string upper = kWrongHex;
    for (char& ch : upper) ch = static_cast<char>(toupper(static_cast<unsigned char>(ch)));
    s.pins = pins_file("upper-pins.json", "{\"peers\": {\"node_2\": \"sha256:" + upper + "\"}}");
    release(make_ctx(s));
}

// ---- material checks -------------------------------------------------------------

void test_key_permissions(void**) {
    Settings s = node(1);
    s.purpose = "api";
    s.key = path("k0644.key");
    run_ok("cp " + path("node_1.key") + " " + s.key + " && chmod 0644 " + s.key);
    assert_string_equal(ctx_error(s).c_str(),
                        ("TLS api key " + s.key + " has insecure permissions 0644 (must be 0600)").c_str());
    run_ok("chmod 0640 " + s.key);
    assert_string_equal(ctx_error(s).c_str(),
                        ("TLS api key " + s.key + " has insecure permissions 0640 (must be 0600)").c_str());
    run_ok("chmod 0602 " + s.key);
    assert_contains(ctx_error(s), "insecure permissions 0602");
    run_ok("chmod 0400 " + s.key);
    release(make_ctx(s));
    run_ok("chmod 0600 " + s.key);
    release(make_ctx(s));
    // The client key is checked too.
    Settings c = node(1);
    c.client_cert = path("node_2.pem");
    c.client_key = path("k2-0644.key");
    run_ok("cp " + path("node_2.key") + " " + c.client_key + " && chmod 0644 " + c.client_key);
    assert_string_equal(
        ctx_error(c).c_str(),
        ("TLS peer client key " + c.client_key + " has insecure permissions 0644 (must be 0600)").c_str());
}

void test_key_cert_mismatch(void**) {
    Settings s = node(1);
    s.key = path("node_2.key");
    std::string err = ctx_error(s);
    assert_contains(err, "TLS peer key " + path("node_2.key") + " does not match certificate " + path("node_1.pem"));
    Settings c = node(1);
    c.client_cert = path("node_3.pem");
    c.client_key = path("node_2.key");
    assert_contains(ctx_error(c), "TLS peer client key " + path("node_2.key") + " does not match certificate");
}

void test_missing_and_bad_files(void**) {
    Settings s = node(1);
    s.cert = path("nope.pem");
    assert_contains(ctx_error(s), "TLS peer certificate " + path("nope.pem") + " cannot be read: No such file");
    s = node(1);
    s.key = path("nope.key");
    assert_contains(ctx_error(s), "TLS peer key " + path("nope.key") + " cannot be read");
    s = node(1);
    s.ca = path("nope-ca.pem");
    assert_contains(ctx_error(s), "TLS peer CA file " + path("nope-ca.pem") + " cannot be read");
    s = node(1);
    s.cert = "";
    assert_contains(ctx_error(s), "certificate is not set");
    // Not a certificate / not a key.
    s = node(1);
    s.cert = pins_file("junk.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    assert_contains(ctx_error(s), "junk.pem holds no valid PEM or DER certificate");
    s = node(1);
    s.key = path("junk.key");
    write_file(s.key, "not a key\n", 0600);
    assert_contains(ctx_error(s), "junk.key is not a valid private key");
    s = node(1);
    s.ca = path("node_1.key");  // a key where the CA should be
    assert_contains(ctx_error(s), "CA file");
    s = node(1);
    s.cert = g_dir;  // a directory
    assert_contains(ctx_error(s), "is not a regular file");
    // require_client_cert without a CA cannot work.
    s = node(1);
    s.ca = "";
    s.require = true;
    assert_contains(ctx_error(s), "require_client_cert needs a CA file");
}

void test_own_cert_validity(void**) {
    Settings s = node(1);
    s.cert = path("expired.pem");
    s.key = path("expired.key");
    std::string err = ctx_error(s);
    assert_contains(err, "TLS peer certificate " + path("expired.pem") + " expired on 2021-01-01T00:00:00Z");
    s.cert = path("future.pem");
    s.key = path("future.key");
    assert_contains(ctx_error(s), "is not valid before 2090-01-01");
    // The client certificate too.
    s = node(1);
    s.client_cert = path("expired.pem");
    s.client_key = path("expired.key");
    assert_contains(ctx_error(s), "TLS peer client certificate " + path("expired.pem") + " expired on");
}

void test_cert_expiry_metric(void**) {
    Settings s = node(1);
    s.purpose = "api";
    s.client_cert = path("node_2.pem");
    s.client_key = path("node_2.key");
    void* ctx = make_ctx(s);
    double v = metric("rampart_tls_cert_expiry_seconds", "api");
    assert_true(v > 360.0 * 86400 && v <= 366.0 * 86400);
    assert_true(metric("rampart_tls_cert_expiry_seconds", "api_client") > 360.0 * 86400);
    assert_int_equal(g->timers.size(), 1);
    Timer* t = g->timers[0].get();
    assert_int_equal(t->repeat_ms, 60000);
    g->metrics["rampart_tls_cert_expiry_seconds"]->values.clear();
    t->fn(t->arg);  // the 60 s refresh
    assert_true(metric("rampart_tls_cert_expiry_seconds", "api") > 360.0 * 86400);
    release(ctx);
    assert_true(t->stopped);
    // Same client and server material: one series.
    void* ctx2 = make_ctx(node(1));
    assert_true(g->metrics["rampart_tls_cert_expiry_seconds"]->values.count("peer_client") == 0);
    release(ctx2);
}

// ---- hostile input and lifetimes --------------------------------------------------

void test_garbage_input(void**) {
    void* sctx = make_ctx(node(1));
    unsigned seed = 12345;
    auto rnd = [&seed]() {
        seed = seed * 1103515245 + 12345;
        return static_cast<unsigned char>(seed >> 16);
    };
    const std::vector<std::string> inputs = {
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        std::string("\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", 10),       // a ClientHello far too short
        std::string("\x16\x03\x03\xff\xff", 5) + std::string(70000, 'A'),  // a record over the limit
        std::string("\x17\x03\x03\x00\x10", 5) + std::string(16, 'x'),     // app data before a handshake
        std::string("\x15\x03\x03\x00\x02\x02\x28", 7),                    // a fatal alert
        std::string("\x16\x03\x03\x00\x00", 5),                            // an empty handshake record
    };
    for (const std::string& in : inputs) {
        Conn c;
        assert_int_equal(
            T->session_new(g->state, sctx, &c.server.stream, RAMPART_SIDE_SERVER, nullptr, &c.server.session), 0);
        (void)T->session_input(c.server.session, in.data(), in.size());
        pump(c);
        assert_true(c.server.done);
        assert_int_equal(c.server.error, RAMPART_TRANSPORT_TLS_ERROR);
        assert_string_equal(c.server.reason.c_str(), "protocol");
        // Input after the failure is ignored.
        assert_true(T->session_input(c.server.session, "x", 1) <= 0);
    }
    for (int round = 0; round < 40; ++round) {
        std::string in(1 + rnd() * 8, '\0');
        for (char& ch : in) ch = static_cast<char>(rnd());
        if (round % 2 == 0) in[0] = 0x16;  // look like a handshake record
        Conn c;
        assert_int_equal(
            T->session_new(g->state, sctx, &c.server.stream, RAMPART_SIDE_SERVER, nullptr, &c.server.session), 0);
        (void)T->session_input(c.server.session, in.data(), in.size());
        pump(c);
        assert_true(!c.server.done || c.server.error == RAMPART_TRANSPORT_TLS_ERROR);
    }
    release(sctx);
}

// The client's first flight, captured, then replayed truncated and corrupted.
void test_truncated_and_corrupted_hello(void**) {
    void* sctx = make_ctx(node(1));
    void* cctx = make_ctx(node(2));
    std::string hello;
    {
        Conn c;
        assert_int_equal(
            T->session_new(g->state, cctx, &c.client.stream, RAMPART_SIDE_CLIENT, "node_1", &c.client.session), 0);
        while (g->jobs_in_flight > 0) uv_run(&g->loop, UV_RUN_ONCE);
        hello = c.client.outq;
        assert_true(hello.size() > 50);
        assert_int_equal(static_cast<unsigned char>(hello[0]), 0x16);
    }
    for (size_t cut : {static_cast<size_t>(1), static_cast<size_t>(5), hello.size() / 2, hello.size() - 1}) {
        Conn c;
        assert_int_equal(
            T->session_new(g->state, sctx, &c.server.stream, RAMPART_SIDE_SERVER, nullptr, &c.server.session), 0);
        (void)T->session_input(c.server.session, hello.data(), cut);
        pump(c);
        assert_false(c.server.done);  // waiting for the rest (the host's timeout ends it)
    }
    for (size_t pos = 5; pos < hello.size(); pos += 7) {
        std::string bad = hello;
        bad[pos] = static_cast<char>(bad[pos] ^ 0x5a);
        Conn c;
        assert_int_equal(
            T->session_new(g->state, sctx, &c.server.stream, RAMPART_SIDE_SERVER, nullptr, &c.server.session), 0);
        (void)T->session_input(c.server.session, bad.data(), bad.size());
        pump(c);
        // Some flips land in random bytes and still parse; none may crash.
        assert_true(!c.server.done || c.server.error == RAMPART_TRANSPORT_TLS_ERROR || c.server.reason == "ok");
    }
    release(sctx);
    release(cctx);
}

void test_garbage_after_handshake(void**) {
    void* sctx = make_ctx(node(1));
    void* cctx = make_ctx(node(2));
    {
        Conn c;
        connect(c, sctx, cctx, "node_1");
        assert_int_equal(c.server.error, RAMPART_TRANSPORT_OK);
        std::string junk = std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, 'z');
        assert_int_equal(T->session_input(c.server.session, junk.data(), junk.size()), -EPROTO);
        assert_true(c.server.closed);
        assert_int_equal(c.server.closed_error, RAMPART_TRANSPORT_TLS_ERROR);
        assert_string_equal(c.server.closed_reason.c_str(), "protocol");
        assert_int_equal(T->session_write(c.server.session, "x", 1), -EPIPE);
    }
    release(sctx);
    release(cctx);
}

void test_free_while_job_runs(void**) {
    void* sctx = make_ctx(node(1));
    void* cctx = make_ctx(node(2));
    for (int round = 0; round < 3; ++round) {
        Conn c;
        assert_int_equal(
            T->session_new(g->state, sctx, &c.server.stream, RAMPART_SIDE_SERVER, nullptr, &c.server.session), 0);
        assert_int_equal(
            T->session_new(g->state, cctx, &c.client.stream, RAMPART_SIDE_CLIENT, "node_1", &c.client.session), 0);
        // The client's job is in flight right now: free it.
        if (round == 0) {
            c.client.free_session();
        } else {
            while (g->jobs_in_flight > 0) uv_run(&g->loop, UV_RUN_ONCE);
            std::string hello;
            hello.swap(c.client.outq);
            assert_int_equal(T->session_input(c.server.session, hello.data(), hello.size()), 0);
            assert_true(static_cast<transport_tls::Session*>(c.server.session)->job_running());
            if (round == 2) T->session_input(c.server.session, "more", 4);  // queued behind the job
            c.server.free_session();
        }
        while (g->jobs_in_flight > 0) uv_run(&g->loop, UV_RUN_ONCE);
        assert_int_equal(c.client.host_calls_after_free, 0);
        assert_int_equal(c.server.host_calls_after_free, 0);
    }
    // The contexts stay alive while a freed session's job runs, even when released first.
    {
        Conn c;
        void* cctx2 = make_ctx(node(2));
        assert_int_equal(
            T->session_new(g->state, cctx2, &c.client.stream, RAMPART_SIDE_CLIENT, "node_1", &c.client.session), 0);
        release(cctx2);
        c.client.free_session();
        while (g->jobs_in_flight > 0) uv_run(&g->loop, UV_RUN_ONCE);
    }
    release(sctx);
    release(cctx);
}

void test_free_inside_callbacks(void**) {
    void* sctx = make_ctx(node(1));
    void* cctx = make_ctx(node(2));
    Settings wrong = node(2);
    wrong.ca = path("other/ca.pem");
    void* bad = make_ctx(wrong);
    {
        Conn c;  // the host frees a failed session from inside handshake_done
        c.client.free_in_handshake_done = true;
        c.server.free_in_handshake_done = true;
        connect(c, sctx, bad, "node_1");
        assert_true(c.client.done);
        assert_true(c.client.freed);
        assert_int_equal(c.client.host_calls_after_free, 0);
        Conn d;  // ... and a successful one
        d.server.free_in_handshake_done = true;
        connect(d, sctx, cctx, "node_1");
        assert_true(d.server.done);
        assert_int_equal(d.server.host_calls_after_free, 0);
    }
    release(sctx);
    release(cctx);
    release(bad);
}

void test_work_submit_failure(void**) {
    void* sctx = make_ctx(node(1));
    void* cctx = make_ctx(node(2));
    g->fail_work_submit = true;
    {
        Conn c;
        void* s = nullptr;
        assert_true(T->session_new(g->state, cctx, &c.client.stream, RAMPART_SIDE_CLIENT, "node_1", &s) < 0);
        assert_int_equal(
            T->session_new(g->state, sctx, &c.server.stream, RAMPART_SIDE_SERVER, nullptr, &c.server.session), 0);
        assert_true(T->session_input(c.server.session, "\x16\x03\x01\x00\x01\x01", 6) < 0);
        assert_true(c.server.done);
        assert_string_equal(c.server.reason.c_str(), "protocol");
    }
    g->fail_work_submit = false;
    release(sctx);
    release(cctx);
}

void test_concurrent_handshakes(void**) {
    void* sctx = make_ctx(node(1));
    void* cctx = make_ctx(node(2));
    void* cctx3 = make_ctx(node(3));
    {
        std::vector<std::unique_ptr<Conn>> conns;
        for (int i = 0; i < 12; ++i) {
            conns.push_back(std::make_unique<Conn>());
            Conn& c = *conns.back();
            assert_int_equal(
                T->session_new(g->state, sctx, &c.server.stream, RAMPART_SIDE_SERVER, nullptr, &c.server.session), 0);
            assert_int_equal(T->session_new(g->state, i % 2 ? cctx : cctx3, &c.client.stream, RAMPART_SIDE_CLIENT,
                                            i % 3 ? "node_1" : "localhost", &c.client.session),
                             0);
        }
        // Pump all of them together so jobs overlap on the worker threads.
        for (int guard = 0; guard < 100000; ++guard) {
            bool progress = false;
            for (auto& cp : conns) {
                for (End* e : {&cp->server, &cp->client}) {
                    if (!e->outq.empty()) {
                        std::string data;
                        data.swap(e->outq);
                        T->session_input(e->other->session, data.data(), data.size());
                        progress = true;
                    }
                }
            }
            if (g->jobs_in_flight > 0) {
                uv_run(&g->loop, UV_RUN_ONCE);
                progress = true;
            }
            if (!progress) break;
        }
        for (auto& cp : conns) {
            assert_int_equal(cp->server.error, RAMPART_TRANSPORT_OK);
            assert_int_equal(cp->client.error, RAMPART_TRANSPORT_OK);
            assert_true(cp->server.done && cp->client.done);
        }
    }
    release(sctx);
    release(cctx);
    release(cctx3);
}

// ---- interop: openssl s_client over a real loopback socket ------------------------

struct SClientRun {
    std::string out;  // s_client's stdout and stderr
};

// Runs `openssl s_client` against a server session of `sctx` on a loopback
// socket: the test pumps bytes between the socket and the session. The
// client sends `input` and keeps stdin open briefly, so it reads the reply.
SClientRun run_s_client(void* sctx, End& server, const std::string& args, const std::string& reply) {
    SClientRun run;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    assert_int_equal(listen(lfd, 1), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &sl), 0);
    const std::string out_file = path("s_client.out");
    const std::string cmd =
        "(printf 'hello\\n'; sleep 0.4) | openssl s_client -connect 127.0.0.1:" + std::to_string(ntohs(sa.sin_port)) +
        " " + args + " > " + out_file + " 2>&1";
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    pollfd lp{lfd, POLLIN, 0};
    if (poll(&lp, 1, 10000) != 1) {
        kill(pid, SIGKILL);
        fail_msg("s_client did not connect");
    }
    int fd = accept(lfd, nullptr, nullptr);
    close(lfd);
    assert_true(fd >= 0);
    assert_int_equal(T->session_new(g->state, sctx, &server.stream, RAMPART_SIDE_SERVER, nullptr, &server.session), 0);
    bool replied = false;
    const uint64_t start = uv_now(&g->loop);
    for (;;) {
        uv_update_time(&g->loop);
        if (uv_now(&g->loop) - start > 10000) break;
        if (!server.outq.empty()) {
            std::string data;
            data.swap(server.outq);
            (void)send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        }
        if (server.done && server.error == RAMPART_TRANSPORT_OK && !replied && !reply.empty()) {
            replied = true;
            assert_int_equal(T->session_write(server.session, reply.data(), reply.size()), 0);
            continue;
        }
        if (g->jobs_in_flight > 0) {
            uv_run(&g->loop, UV_RUN_ONCE);
            continue;
        }
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 20) == 1) {
            char buf[16384];
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0) break;
            if (server.session != nullptr) (void)T->session_input(server.session, buf, static_cast<size_t>(n));
        }
    }
    close(fd);
    int status = 0;
    (void)waitpid(pid, &status, 0);
    run.out = run_ok("cat " + out_file);
    return run;
}

std::string s_client_args(const std::string& extra) {
    return "-CAfile " + path("ca.pem") + " -servername node_1 -verify_return_error " + extra;
}

void test_interop_openssl_s_client(void**) {
    void* sctx = make_ctx(node(1));
    const std::string sess = path("s_client.sess");
    {
        End server;
        SClientRun r = run_s_client(
            sctx, server,
            s_client_args("-cert " + path("node_2.pem") + " -key " + path("node_2.key") + " -sess_out " + sess),
            "world\n");
        assert_int_equal(server.error, RAMPART_TRANSPORT_OK);
        assert_true(server.has_peer);
        assert_int_equal(server.peer.verified, 1);
        assert_string_equal(server.peer.cn.c_str(), "node_2");
        assert_string_equal(server.delivered.c_str(), "hello\n");
        assert_contains(r.out, "Server Temp Key: X25519");
        assert_contains(r.out, "New, TLSv1.2, Cipher is ECDHE-ECDSA-");
        assert_contains(r.out, "Verify return code: 0 (ok)");
        assert_contains(r.out, "world");
        server.free_session();
    }
    {
        End server;  // the saved session resumes (session ticket)
        SClientRun r = run_s_client(
            sctx, server,
            s_client_args("-cert " + path("node_2.pem") + " -key " + path("node_2.key") + " -sess_in " + sess), "");
        assert_int_equal(server.error, RAMPART_TRANSPORT_OK);
        assert_int_equal(server.resumed, 1);
        assert_contains(r.out, "Reused, TLSv1.2");
        server.free_session();
    }
    {
        End server;  // no client certificate
        (void)run_s_client(sctx, server, s_client_args(""), "");
        assert_int_equal(server.error, RAMPART_TRANSPORT_TLS_ERROR);
        assert_string_equal(server.reason.c_str(), "no_client_certificate");
        server.free_session();
    }
    {
        End server;  // TLS 1.3 only: refused (1.2 is the ceiling)
        (void)run_s_client(sctx, server, s_client_args("-tls1_3"), "");
        assert_int_equal(server.error, RAMPART_TRANSPORT_TLS_ERROR);
        assert_string_equal(server.reason.c_str(), "protocol");
        server.free_session();
    }
    {
        End server;  // no ECDHE, no AEAD: refused
        (void)run_s_client(
            sctx, server,
            s_client_args("-tls1_2 -cipher AES128-SHA256 -cert " + path("node_2.pem") + " -key " + path("node_2.key")),
            "");
        assert_int_equal(server.error, RAMPART_TRANSPORT_TLS_ERROR);
        server.free_session();
    }
    release(sctx);
}

// ---- small units ---------------------------------------------------------------

void test_mask_and_hex(void**) {
    const std::string hex = "ab12" + std::string(56, '0') + "9f0e";
    assert_string_equal(transport_tls::mask_fingerprint("sha256", hex).c_str(), "sha256:ab12...9f0e");
    const unsigned char b[] = {0x00, 0x0f, 0xa0, 0xff};
    assert_string_equal(transport_tls::to_hex(b, 4).c_str(), "000fa0ff");
    mbedtls_x509_time t{};
    t.year = 2021;
    t.mon = 1;
    t.day = 1;
    assert_int_equal(transport_tls::x509_time_unix(t), 1609459200);
    t.year = 2000;
    t.mon = 2;
    t.day = 29;
    t.hour = 12;
    assert_int_equal(transport_tls::x509_time_unix(t), 951825600);
}

void test_gen_certs_script(void**) {
    const std::string d = path("gen");
    const std::string script = TLS_TEST_GEN_CERTS;
    assert_int_equal(sh(script + " " + d + " 2 2>/dev/null").status, 0);
    assert_string_equal(
        run_ok("stat -c %a " + d + "/ca.key " + d + "/node_1.key " + d + "/node_2.key | sort -u").c_str(), "600");
    assert_contains(run_ok("openssl x509 -in " + d + "/node_2.pem -noout -ext subjectAltName"),
                    "DNS:node_2, DNS:rampart-node-2, DNS:localhost, IP Address:127.0.0.1");
    assert_contains(run_ok("openssl verify -CAfile " + d + "/ca.pem " + d + "/node_2.pem"), "OK");
    const std::string before = run_ok("sha256sum " + d + "/ca.pem");
    ShellResult again = sh(script + " " + d + " 2 2>&1");
    assert_int_equal(again.status, 1);
    assert_contains(again.out, "refusing to overwrite");
    assert_string_equal(run_ok("sha256sum " + d + "/ca.pem").c_str(), before.c_str());
    assert_int_equal(sh(script + " --force " + d + " 1 2>/dev/null").status, 0);
    assert_true(run_ok("sha256sum " + d + "/ca.pem") != before);
    assert_int_equal(sh(script + " " + d + "/x zero 2>/dev/null").status, 2);
    assert_int_equal(sh(script + " " + d + "/x 0 2>/dev/null").status, 2);
    assert_int_equal(sh(script + " --bogus 2>/dev/null").status, 2);
    assert_int_equal(sh(script + " a 1 extra 2>/dev/null").status, 2);
    // P-256 keys, 1-year nodes, 10-year CA.
    assert_contains(run_ok("openssl pkey -in " + d + "/node_1.key -noout -text"), "prime256v1");
    assert_contains(run_ok("openssl x509 -in " + d + "/ca.pem -noout -text"), "CA:TRUE");
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_and_hex),
        cmocka_unit_test(test_gen_certs_script),
        cmocka_unit_test_setup_teardown(test_mtls_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resumption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_application_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_before_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_from_other_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_server_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_client_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_optional_client_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_match_both_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_mismatch_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_mismatch_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_report_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_set_current_next, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pins_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_permissions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_cert_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_cert_validity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cert_expiry_metric, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_corrupted_hello, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_after_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_while_job_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_inside_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_work_submit_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_handshakes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interop_openssl_s_client, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
