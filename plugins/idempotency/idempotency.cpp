// idempotency: the HTTP fast path for `Idempotency-Key` on writes.
//
// A write (PUT, POST, DELETE, PATCH) to a routed path that carries the
// header is deduplicated per client: the first request creates an
// in-flight record and goes on to its handler; on_response turns that
// record into a completed one holding the answer. Duplicates are answered
// from the record in on_dedup, so the handler never sees them. See
// README.md for the behaviour and design; record.h for the record.
#include <rampart/plugin.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "fingerprint.h"
#include "record.h"
#include "store.h"

namespace idempotency {
namespace {

constexpr uint64_t kSweepIntervalMs = 2000;
constexpr const char* kHeader = "Idempotency-Key";
constexpr const char* kReplayedHeader = "Idempotent-Replayed";
// A scope longer than this is stored as a hash of the identity name.
constexpr size_t kScopeInline = 256;

enum class Mode { Replay, Reject };

struct Config {
    Mode mode = Mode::Replay;
    Limits limits;
    uint64_t ttl_ms = 600000;
    uint64_t in_flight_ms = 60000;
    size_t max_body_bytes = 65536;
};

bool is_write(std::string_view method) {
    return method == "PUT" || method == "POST" || method == "DELETE" || method == "PATCH";
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// Headers that describe this one exchange rather than the outcome of the
// write: replaying them would lie (a stale rate-limit budget, the first
// request's id) or break framing.
bool replayable_header(std::string_view name) {
    static constexpr std::string_view kPerExchange[] = {
        "x-request-id",   "date",         "connection",          "keep-alive",  "transfer-encoding",
        "content-length", "content-type", "idempotent-replayed", "retry-after", "www-authenticate",
        "upgrade",
    };
    for (std::string_view n : kPerExchange) {
        if (iequals(name, n)) return false;
    }
    return !istarts_with(name, "ratelimit") && !istarts_with(name, "x-ratelimit");
}

// Who the key belongs to: a token's or certificate's name, or the source
// address when the request is anonymous. Two clients can use the same key
// without seeing each other's answers.
std::string scope_of(const rampart_identity* id) {
    if (id == nullptr) return "ip:";
    const char* prefix = "ip:";
    const char* name = id->source_ip ? id->source_ip : "";
    switch (id->kind) {
        case RAMPART_IDENTITY_TOKEN:
            prefix = "token:";
            name = id->name ? id->name : "";
            break;
        case RAMPART_IDENTITY_CERTIFICATE:
            prefix = "cert:";
            name = id->name ? id->name : "";
            break;
        case RAMPART_IDENTITY_PEER:
            prefix = "peer:";
            name = id->name ? id->name : "";
            break;
        default: break;
    }
    std::string scope = prefix;
    if (std::strlen(name) > kScopeInline) {
        scope += "sha256:";
        scope += to_hex(sha256(name));
    } else {
        scope += name;
    }
    return scope;
}

std::string error_json(std::string_view message, std::string_view code) {
    // Messages and codes are our own constants: nothing to escape.
    std::string out = "{\"error\":\"";
    out.append(message);
    out += "\",\"code\":\"";
    out.append(code);
    out += "\"}\n";
    return out;
}

class Plugin {
public:
    Plugin(rampart_plugin_ctx* ctx, const rampart_host* host) : ctx_(ctx), host_(host) {}

    int init();
    int reload();
    void fini();
    rampart_verdict on_dedup(rampart_request* req);
    void on_response(rampart_request* req, const rampart_response_view* resp);
    void sweep();

private:
    // Who created an in-flight record. The host's request serial is unique;
    // a request id alone is not (a client may send its own X-Request-Id).
    std::string owner_of(rampart_request* req) const {
        if (RAMPART_HOST_HAS(host_, request_serial)) return "serial:" + std::to_string(host_->request_serial(req));
        const char* id = host_->request_id(req);
        return id ? std::string(id).substr(0, kMaxOwner) : std::string();
    }

    int read_config(Config* out);
    void log(rampart_log_level level, const std::string& msg) { host_->log(ctx_, level, msg.c_str()); }
    void count(const char* result) {
        if (requests_ != nullptr) host_->counter_add(requests_, &result, 1);
    }
    void publish_size() {
        if (keys_ != nullptr) host_->gauge_set(keys_, nullptr, static_cast<double>(store_.size()));
    }
    rampart_verdict answer(rampart_request* req, int status, std::string_view content_type, std::string_view body);
    rampart_verdict answer_error(rampart_request* req, int status, std::string_view message, std::string_view code) {
        std::string body = error_json(message, code);
        return answer(req, status, "application/json", body);
    }
    rampart_verdict replay(rampart_request* req, const Record& r);
    // `in_flight` is a copy: the store may move or drop the original.
    void complete(const Record& in_flight, const rampart_response_view* resp);

    rampart_plugin_ctx* ctx_;
    const rampart_host* host_;
    Config cfg_;
    Store store_;
    rampart_metric* requests_ = nullptr;
    rampart_metric* keys_ = nullptr;
    rampart_timer* sweeper_ = nullptr;
    // Set while this plugin answers from on_dedup: the host calls every
    // on_response from inside respond(), ours included, and that answer
    // must not be taken for the handler's.
    bool answering_ = false;
};

int Plugin::read_config(Config* out) {
    Config c;
    std::string_view mode = host_->config_string(ctx_, "mode");
    if (mode == "replay") {
        c.mode = Mode::Replay;
    } else if (mode == "reject") {
        c.mode = Mode::Reject;
    } else {
        log(RAMPART_LOG_ERROR,
            "[idempotency] mode must be \"replay\" or \"reject\", got \"" + std::string(mode) + "\"");
        return -EINVAL;
    }
    c.limits.max_keys = static_cast<size_t>(host_->config_int(ctx_, "max_keys"));
    c.limits.max_bytes = static_cast<size_t>(host_->config_int(ctx_, "max_memory_bytes"));
    c.ttl_ms = static_cast<uint64_t>(host_->config_int(ctx_, "ttl_s")) * 1000;
    c.in_flight_ms = static_cast<uint64_t>(host_->config_int(ctx_, "in_flight_timeout_s")) * 1000;
    c.max_body_bytes = static_cast<size_t>(host_->config_int(ctx_, "max_body_bytes"));
    // The host validated the bounds; these only guard a host that did not.
    if (c.limits.max_keys == 0 || c.limits.max_bytes == 0 || c.ttl_ms == 0 || c.in_flight_ms == 0) {
        log(RAMPART_LOG_ERROR, "[idempotency] max_keys, max_memory_bytes, ttl_s and in_flight_timeout_s must be > 0");
        return -EINVAL;
    }
    *out = c;
    return 0;
}

int Plugin::init() {
    int rc = read_config(&cfg_);
    if (rc != 0) return rc;
    store_.set_limits(cfg_.limits);
    static const char* const kResultLabel[] = {"result"};
    requests_ = host_->counter_register(ctx_, "rampart_idempotency_requests_total",
                                        "Writes carrying Idempotency-Key, by outcome", kResultLabel, 1);
    keys_ = host_->gauge_register(ctx_, "rampart_idempotency_keys", "Idempotency records held", nullptr, 0);
    publish_size();
    sweeper_ = host_->timer_start(
        ctx_, kSweepIntervalMs, kSweepIntervalMs,
        [](void* self) {
            try {
                static_cast<Plugin*>(self)->sweep();
            } catch (...) {
            }
        },
        this);
    if (sweeper_ == nullptr) return -ENOMEM;
    return 0;
}

int Plugin::reload() {
    Config c;
    int rc = read_config(&c);
    if (rc != 0) return rc;
    // Records stay; a new ttl_s applies to records made from now on.
    cfg_ = c;
    store_.set_limits(cfg_.limits);
    publish_size();
    return 0;
}

void Plugin::fini() {
    if (sweeper_ != nullptr) host_->timer_stop(sweeper_);
    sweeper_ = nullptr;
}

void Plugin::sweep() {
    if (store_.sweep(host_->now_ms(ctx_)) > 0) publish_size();
}

rampart_verdict Plugin::answer(rampart_request* req, int status, std::string_view content_type, std::string_view body) {
    std::string ct(content_type);
    answering_ = true;
    int rc = host_->respond(req, status, ct.c_str(), body.data(), body.size());
    answering_ = false;
    return rc == 0 ? RAMPART_ANSWERED : RAMPART_CONTINUE;
}

rampart_verdict Plugin::replay(rampart_request* req, const Record& r) {
    if (r.flags & kResponseStored) {
        // Headers first: the host attaches added headers when respond() runs.
        for (const Header& h : r.headers) host_->response_header_add(req, h.name.c_str(), h.value.c_str());
        host_->response_header_add(req, kReplayedHeader, "true");
        return answer(req, r.status, r.content_type, r.body);
    }
    if (r.flags & kResponseTooLarge) {
        // The write happened; running it again is the one thing we must
        // not do, and the answer is gone. Say so, with the original status.
        return answer_error(req, 409,
                            "the request with this Idempotency-Key completed with status " + std::to_string(r.status) +
                                ", but its response was too large to keep for replay",
                            "idempotency_response_too_large");
    }
    // Completed while in reject mode: nothing kept to replay.
    return answer_error(req, 409, "a request with this Idempotency-Key was already processed", "duplicate_request");
}

rampart_verdict Plugin::on_dedup(rampart_request* req) {
    std::string_view method = host_->request_method(req);
    // Unrouted requests answer 404/405 without side effects: nothing to
    // protect, and caching those would only use up keys.
    if (!is_write(method) || host_->request_route(req) == nullptr) return RAMPART_CONTINUE;
    const char* raw_key = host_->request_header(req, kHeader);
    if (raw_key == nullptr) return RAMPART_CONTINUE;
    std::string_view key = raw_key;
    if (!valid_key(key)) {
        count("invalid");
        return answer_error(req, 400, "Idempotency-Key must be 1 to 255 printable ASCII characters",
                            "bad_idempotency_key");
    }
    std::string scope = scope_of(host_->request_identity(req));
    uint64_t now = host_->now_ms(ctx_);
    size_t before = store_.size();
    Record* existing = store_.find(scope, key, now);
    if (store_.size() != before) publish_size();  // an expired record went

    if (existing != nullptr && cfg_.mode == Mode::Reject) {
        count("rejected");
        return answer_error(req, 409, "a request with this Idempotency-Key was already received", "duplicate_request");
    }
    size_t body_len = 0;
    const char* body = host_->request_body(req, &body_len);
    Digest fp = fingerprint(method, host_->request_path(req), host_->request_query(req),
                            std::string_view(body ? body : "", body ? body_len : 0));
    if (existing != nullptr) {
        // A different request under a used key is a client bug whatever
        // the first one's state: say so rather than "try again later".
        if (existing->fingerprint != fp) {
            count("mismatch");
            return answer_error(req, 422,
                                "this Idempotency-Key was used with a different request (method, path or body)",
                                "idempotency_key_reused");
        }
        if (existing->state == State::InFlight) {
            count("in_flight");
            return answer_error(req, 409, "a request with this Idempotency-Key is still in progress; retry later",
                                "idempotency_in_flight");
        }
        count("replayed");
        return replay(req, *existing);
    }

    Record r;
    r.state = State::InFlight;
    r.created_unix_ms = host_->wall_ms(ctx_);
    r.expires_unix_ms = r.created_unix_ms + static_cast<int64_t>(cfg_.in_flight_ms);
    r.fingerprint = fp;
    r.scope = std::move(scope);
    r.key = std::string(key);
    r.owner = owner_of(req);
    if (store_.put(std::move(r), now + cfg_.in_flight_ms) == nullptr) {
        // Cannot happen within the configured bounds (an in-flight record
        // is a few hundred bytes, the budget at least 64 KiB); if it does,
        // let the write through rather than refuse service.
        log(RAMPART_LOG_WARN, "[idempotency] could not record a key; request not deduplicated");
        return RAMPART_CONTINUE;
    }
    publish_size();
    count("new");
    return RAMPART_CONTINUE;
}

void Plugin::complete(const Record& in_flight, const rampart_response_view* resp) {
    uint64_t now = host_->now_ms(ctx_);
    Record done = in_flight;
    done.state = State::Completed;
    done.status = static_cast<uint16_t>(resp->status);
    done.owner.clear();
    done.created_unix_ms = host_->wall_ms(ctx_);
    done.expires_unix_ms = done.created_unix_ms + static_cast<int64_t>(cfg_.ttl_ms);
    done.flags = 0;
    bool keep_response = cfg_.mode == Mode::Replay;
    if (keep_response && resp->body_len > cfg_.max_body_bytes) {
        done.flags = kResponseTooLarge;
        keep_response = false;
    }
    if (keep_response) {
        done.flags = kResponseStored;
        std::string_view ct = resp->content_type ? resp->content_type : "";
        done.content_type = valid_header_value(ct) && ct.size() <= kMaxContentType ? std::string(ct) : std::string();
        done.body.assign(resp->body ? resp->body : "", resp->body ? resp->body_len : 0);
        for (size_t i = 0; i < resp->header_count && done.headers.size() < kMaxHeaders; ++i) {
            const char* name = resp->header_names ? resp->header_names[i] : nullptr;
            const char* value = resp->header_values ? resp->header_values[i] : nullptr;
            if (name == nullptr || value == nullptr || !replayable_header(name)) continue;
            if (!valid_header_name(name) || !valid_header_value(value)) continue;
            done.headers.push_back({name, value});
        }
    }
    Record* stored = store_.put(done, now + cfg_.ttl_ms);
    if (stored == nullptr && keep_response) {
        // Over the memory budget on its own: keep the fact, not the answer.
        done.flags = kResponseTooLarge;
        done.content_type.clear();
        done.headers.clear();
        done.body.clear();
        stored = store_.put(std::move(done), now + cfg_.ttl_ms);
    }
    if (stored == nullptr) store_.erase(in_flight.scope, in_flight.key);  // never leave it in flight
    publish_size();
}

void Plugin::on_response(rampart_request* req, const rampart_response_view* resp) {
    if (answering_ || resp == nullptr) return;
    std::string_view method = host_->request_method(req);
    if (!is_write(method) || host_->request_route(req) == nullptr) return;
    const char* raw_key = host_->request_header(req, kHeader);
    if (raw_key == nullptr || !valid_key(raw_key)) return;
    std::string scope = scope_of(host_->request_identity(req));
    Record* r = store_.peek(scope, raw_key);
    // Only the request that created the record completes it: a duplicate
    // or an early answer for another request leaves it alone.
    if (r == nullptr || r->state != State::InFlight || r->owner.empty() || r->owner != owner_of(req)) return;
    int status = resp->status;
    // Server errors, timeouts and rate limits say nothing final about the
    // write: free the key so the client's retry runs.
    if (status >= 500 || status == 408 || status == 429 || status < 100 || status > 599) {
        store_.erase(scope, raw_key);
        publish_size();
        return;
    }
    complete(Record(*r), resp);
}

// ---- the C seam: nothing thrown crosses it --------------------------------

int cb_init(rampart_plugin_ctx* ctx, const rampart_host* host, void** state) {
    try {
        auto p = std::make_unique<Plugin>(ctx, host);
        int rc = p->init();
        if (rc != 0) {
            p->fini();
            return rc;
        }
        *state = p.release();
        return 0;
    } catch (...) {
        return -ENOMEM;
    }
}

int cb_reload(void* state, rampart_plugin_ctx*) {
    try {
        return static_cast<Plugin*>(state)->reload();
    } catch (...) {
        return -ENOMEM;
    }
}

void cb_fini(void* state) {
    std::unique_ptr<Plugin> p(static_cast<Plugin*>(state));
    if (p) p->fini();
}

rampart_verdict cb_on_dedup(void* state, rampart_request* req) {
    try {
        return static_cast<Plugin*>(state)->on_dedup(req);
    } catch (...) {
        // Out of memory: fail open. The write still runs once; only its
        // deduplication is lost.
        return RAMPART_CONTINUE;
    }
}

void cb_on_response(void* state, rampart_request* req, const rampart_response_view* resp) {
    try {
        static_cast<Plugin*>(state)->on_response(req, resp);
    } catch (...) {
    }
}

const rampart_config_key kSchema[] = {
    {"mode", RAMPART_CONFIG_STRING, "replay", 0, 16,
     "replay: duplicates get the stored response; reject: any duplicate within ttl_s gets 409"},
    {"max_keys", RAMPART_CONFIG_INT, "10000", 1, 1000000, "records kept; the least recently used go first"},
    {"ttl_s", RAMPART_CONFIG_INT, "600", 1, 86400, "seconds a completed record is kept"},
    {"max_body_bytes", RAMPART_CONFIG_INT, "65536", 0, static_cast<int64_t>(kMaxRecordBody),
     "largest response body kept for replay"},
    {"max_memory_bytes", RAMPART_CONFIG_INT, "8388608", 65536, int64_t{1} << 30,
     "memory all records may use; the least recently used go first"},
    {"in_flight_timeout_s", RAMPART_CONFIG_INT, "60", 1, 86400,
     "seconds an unanswered request holds its key before a retry may run"},
    {nullptr, RAMPART_CONFIG_STRING, nullptr, 0, 0, nullptr},
};

const rampart_hooks kHooks = [] {
    rampart_hooks h{};
    h.struct_size = sizeof h;
    h.on_dedup = cb_on_dedup;
    h.on_response = cb_on_response;
    return h;
}();

const rampart_plugin kDescriptor = {
    RAMPART_ABI_MAJOR,
    sizeof(rampart_plugin),
    "idempotency",
    "1.0.0",
    "Idempotency-Key on writes: replay or reject duplicates",
    kSchema,
    nullptr,
    cb_init,
    cb_reload,
    cb_fini,
    &kHooks,
    nullptr,  // no transport
};

}  // namespace
}  // namespace idempotency

extern "C" RAMPART_PLUGIN_EXPORT const rampart_plugin* rampart_plugin_entry(void) { return &idempotency::kDescriptor; }
