#include "store/command.h"

#include <type_traits>

namespace rampart::store {

namespace {

// ---- Writer -------------------------------------------------------------

class Writer {
public:
    void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
    void varint(uint64_t v) {
        while (v >= 0x80) {
            u8(static_cast<uint8_t>(v | 0x80));
            v >>= 7;
        }
        u8(static_cast<uint8_t>(v));
    }
    void bytes(std::string_view s) {
        varint(s.size());
        out_.append(s);
    }
    void boolean(bool b) { u8(b ? 1 : 0); }
    void opt(const std::optional<uint64_t>& v) {
        boolean(v.has_value());
        if (v) varint(*v);
    }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

void write_body(Writer&, const Noop&) {}

void write_body(Writer& w, const KvSet& c) {
    w.bytes(c.key);
    w.bytes(c.value);
    w.varint(c.flags);
    w.opt(c.cas);
}

void write_body(Writer& w, const KvDelete& c) {
    w.bytes(c.key);
    w.boolean(c.recurse);
    w.opt(c.cas);
}

void write_body(Writer& w, const Txn& c) {
    w.varint(c.ops.size());
    for (const TxnOp& op : c.ops) {
        w.u8(static_cast<uint8_t>(op.verb));
        w.bytes(op.key);
        w.bytes(op.value);
        w.varint(op.flags);
        w.varint(op.index);
    }
}

// Version 2: meta pairs and a list of checks after the tags.
void write_body(Writer& w, const ServiceRegister& c) {
    w.bytes(c.id);
    w.bytes(c.name);
    w.bytes(c.address);
    w.varint(c.port);
    w.varint(c.tags.size());
    for (const std::string& t : c.tags) w.bytes(t);
    w.varint(c.meta.size());
    for (const auto& [k, v] : c.meta) {
        w.bytes(k);
        w.bytes(v);
    }
    w.varint(c.checks.size());
    for (const CheckDef& d : c.checks) {
        w.bytes(d.id);
        w.bytes(d.name);
        w.bytes(d.notes);
        w.varint(d.ttl_ms);
        w.u8(static_cast<uint8_t>(d.status));
    }
}

void write_body(Writer& w, const ServiceDeregister& c) { w.bytes(c.id); }

// Version 2: the status after the note.
void write_body(Writer& w, const CheckPass& c) {
    w.bytes(c.check_id);
    w.bytes(c.note);
    w.u8(static_cast<uint8_t>(c.status));
}

void write_body(Writer& w, const TokenCreate& c) {
    w.bytes(c.accessor);
    w.bytes(c.secret_hash);
    w.u8(static_cast<uint8_t>(c.role));
    w.bytes(c.prefix);
    w.bytes(c.description);
    w.varint(c.expires_ms);
}

void write_body(Writer& w, const TokenRevoke& c) { w.bytes(c.accessor); }

// ---- Reader -------------------------------------------------------------

// Every read checks the remaining length first; the first failure sticks and
// later reads return zero values, so decode functions stay linear and a
// single check at the end reports the earliest problem.
class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}

    bool failed() const { return !error_.empty(); }
    const std::string& error() const { return error_; }
    // The record's version, for bodies that have more than one.
    uint8_t version = 1;
    size_t offset() const { return pos_; }
    bool at_end() const { return pos_ == in_.size(); }

    void fail(const std::string& what) {
        if (error_.empty()) error_ = "offset " + std::to_string(pos_) + ": " + what;
    }

    uint8_t u8(const char* what) {
        if (failed()) return 0;
        if (pos_ >= in_.size()) {
            fail(std::string("truncated ") + what);
            return 0;
        }
        return static_cast<uint8_t>(in_[pos_++]);
    }

    // Shortest-form LEB128, at most 10 bytes, no bits past 64: one value has
    // exactly one encoding, so equal commands are equal bytes.
    uint64_t varint(const char* what) {
        uint64_t v = 0;
        for (int i = 0; i < 10; i++) {
            if (failed()) return 0;
            if (pos_ >= in_.size()) {
                fail(std::string("truncated ") + what);
                return 0;
            }
            uint8_t b = static_cast<uint8_t>(in_[pos_++]);
            if (i == 9 && b > 1) {
                fail(std::string(what) + " overflows 64 bits");
                return 0;
            }
            v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
            if ((b & 0x80) == 0) {
                if (b == 0 && i > 0) fail(std::string(what) + " is not in shortest form");
                return v;
            }
        }
        fail(std::string(what) + " is too long");
        return 0;
    }

    std::string bytes(const char* what, size_t limit) {
        uint64_t n = varint(what);
        if (failed()) return {};
        if (n > limit) {
            fail(std::string(what) + " length " + std::to_string(n) + " over the limit " + std::to_string(limit));
            return {};
        }
        if (n > in_.size() - pos_) {
            fail(std::string("truncated ") + what);
            return {};
        }
        std::string s(in_.substr(pos_, static_cast<size_t>(n)));
        pos_ += static_cast<size_t>(n);
        return s;
    }

    bool boolean(const char* what) {
        uint8_t b = u8(what);
        if (b > 1) fail(std::string(what) + " is not 0 or 1");
        return b == 1;
    }

    std::optional<uint64_t> opt(const char* what) {
        if (!boolean(what)) return std::nullopt;
        uint64_t v = varint(what);
        if (failed()) return std::nullopt;
        return v;
    }

    // A count of items that each take at least one byte: refuse counts the
    // remaining input cannot hold before reserving anything.
    size_t count(const char* what, size_t limit) {
        uint64_t n = varint(what);
        if (failed()) return 0;
        if (n > limit) {
            fail(std::string(what) + " " + std::to_string(n) + " over the limit " + std::to_string(limit));
            return 0;
        }
        if (n > in_.size() - pos_) {
            fail(std::string("truncated ") + what);
            return 0;
        }
        return static_cast<size_t>(n);
    }

private:
    std::string_view in_;
    size_t pos_ = 0;
    std::string error_;
};

Body read_noop(Reader&) { return Noop{}; }

Body read_kv_set(Reader& r) {
    KvSet c;
    c.key = r.bytes("key", Limits::kKey);
    c.value = r.bytes("value", Limits::kValue);
    c.flags = r.varint("flags");
    c.cas = r.opt("cas");
    return c;
}

Body read_kv_delete(Reader& r) {
    KvDelete c;
    c.key = r.bytes("key", Limits::kKey);
    c.recurse = r.boolean("recurse");
    c.cas = r.opt("cas");
    return c;
}

Body read_txn(Reader& r) {
    Txn c;
    size_t n = r.count("txn op count", Limits::kTxnOps);
    for (size_t i = 0; i < n && !r.failed(); i++) {
        TxnOp op;
        uint8_t verb = r.u8("txn verb");
        if (!r.failed() &&
            (verb < static_cast<uint8_t>(TxnVerb::Set) || verb > static_cast<uint8_t>(TxnVerb::DeleteCas)))
            r.fail("unknown txn verb " + std::to_string(verb));
        op.verb = static_cast<TxnVerb>(verb);
        op.key = r.bytes("txn key", Limits::kKey);
        op.value = r.bytes("txn value", Limits::kValue);
        op.flags = r.varint("txn flags");
        op.index = r.varint("txn index");
        c.ops.push_back(std::move(op));
    }
    return c;
}

CheckStatus read_check_status(Reader& r) {
    uint8_t status = r.u8("check status");
    if (!r.failed() && status > static_cast<uint8_t>(CheckStatus::Critical))
        r.fail("unknown check status " + std::to_string(status));
    return static_cast<CheckStatus>(status);
}

Body read_service_register(Reader& r) {
    ServiceRegister c;
    c.id = r.bytes("service id", Limits::kName);
    c.name = r.bytes("service name", Limits::kName);
    c.address = r.bytes("service address", Limits::kName);
    uint64_t port = r.varint("port");
    if (port > 65535) r.fail("port over 65535");
    c.port = static_cast<uint16_t>(port);
    size_t n = r.count("tag count", Limits::kTags);
    for (size_t i = 0; i < n && !r.failed(); i++) c.tags.push_back(r.bytes("tag", Limits::kName));
    if (r.version == 1) {
        CheckDef d;
        d.id = r.bytes("check id", Limits::kName);
        d.ttl_ms = r.varint("check ttl");
        if (!d.id.empty()) c.checks.push_back(std::move(d));
        return c;
    }
    n = r.count("meta count", Limits::kMeta);
    for (size_t i = 0; i < n && !r.failed(); i++) {
        std::string k = r.bytes("meta key", Limits::kMetaKey);
        std::string v = r.bytes("meta value", Limits::kMetaValue);
        c.meta.emplace_back(std::move(k), std::move(v));
    }
    n = r.count("check count", Limits::kChecks);
    for (size_t i = 0; i < n && !r.failed(); i++) {
        CheckDef d;
        d.id = r.bytes("check id", Limits::kName);
        d.name = r.bytes("check name", Limits::kName);
        d.notes = r.bytes("check notes", Limits::kNote);
        d.ttl_ms = r.varint("check ttl");
        d.status = read_check_status(r);
        c.checks.push_back(std::move(d));
    }
    return c;
}

Body read_service_deregister(Reader& r) { return ServiceDeregister{r.bytes("service id", Limits::kName)}; }

Body read_check_pass(Reader& r) {
    CheckPass c;
    c.check_id = r.bytes("check id", Limits::kName);
    c.note = r.bytes("note", Limits::kNote);
    if (r.version >= 2) c.status = read_check_status(r);
    return c;
}

Body read_token_create(Reader& r) {
    TokenCreate c;
    c.accessor = r.bytes("accessor", Limits::kName);
    c.secret_hash = r.bytes("secret hash", Limits::kSecretHash);
    uint8_t role = r.u8("role");
    if (!r.failed() && (role < static_cast<uint8_t>(TokenRole::Read) || role > static_cast<uint8_t>(TokenRole::Admin)))
        r.fail("unknown token role " + std::to_string(role));
    c.role = static_cast<TokenRole>(role);
    c.prefix = r.bytes("prefix", Limits::kKey);
    c.description = r.bytes("description", Limits::kName);
    c.expires_ms = r.varint("expiry");
    return c;
}

Body read_token_revoke(Reader& r) { return TokenRevoke{r.bytes("accessor", Limits::kName)}; }

using BodyReader = Body (*)(Reader&);

// Indexed by CommandType.
constexpr BodyReader kReaders[] = {read_noop,       read_kv_set,           read_kv_delete,
                                   read_txn,        read_service_register, read_service_deregister,
                                   read_check_pass, read_token_create,     read_token_revoke};
constexpr size_t kTypeCount = sizeof kReaders / sizeof kReaders[0];
static_assert(kTypeCount == std::variant_size_v<Body>, "one reader per body type");

std::string over(const char* what, size_t n, size_t limit) {
    return std::string(what) + " length " + std::to_string(n) + " over the limit " + std::to_string(limit);
}

std::string check_body(const Noop&) { return {}; }
std::string check_body(const KvSet& c) {
    if (c.key.size() > Limits::kKey) return over("key", c.key.size(), Limits::kKey);
    if (c.value.size() > Limits::kValue) return over("value", c.value.size(), Limits::kValue);
    return {};
}
std::string check_body(const KvDelete& c) {
    return c.key.size() > Limits::kKey ? over("key", c.key.size(), Limits::kKey) : std::string();
}
std::string check_body(const Txn& c) {
    if (c.ops.size() > Limits::kTxnOps) return over("txn ops", c.ops.size(), Limits::kTxnOps);
    for (const TxnOp& op : c.ops) {
        if (op.key.size() > Limits::kKey) return over("txn key", op.key.size(), Limits::kKey);
        if (op.value.size() > Limits::kValue) return over("txn value", op.value.size(), Limits::kValue);
    }
    return {};
}
std::string check_body(const ServiceRegister& c) {
    for (const std::string* s : {&c.id, &c.name, &c.address})
        if (s->size() > Limits::kName) return over("service field", s->size(), Limits::kName);
    if (c.tags.size() > Limits::kTags) return over("tags", c.tags.size(), Limits::kTags);
    for (const std::string& t : c.tags)
        if (t.size() > Limits::kName) return over("tag", t.size(), Limits::kName);
    if (c.meta.size() > Limits::kMeta) return over("meta", c.meta.size(), Limits::kMeta);
    for (const auto& [k, v] : c.meta) {
        if (k.size() > Limits::kMetaKey) return over("meta key", k.size(), Limits::kMetaKey);
        if (v.size() > Limits::kMetaValue) return over("meta value", v.size(), Limits::kMetaValue);
    }
    if (c.checks.size() > Limits::kChecks) return over("checks", c.checks.size(), Limits::kChecks);
    for (const CheckDef& d : c.checks) {
        for (const std::string* s : {&d.id, &d.name})
            if (s->size() > Limits::kName) return over("check field", s->size(), Limits::kName);
        if (d.notes.size() > Limits::kNote) return over("check notes", d.notes.size(), Limits::kNote);
    }
    return {};
}
std::string check_body(const ServiceDeregister& c) {
    return c.id.size() > Limits::kName ? over("service id", c.id.size(), Limits::kName) : std::string();
}
std::string check_body(const CheckPass& c) {
    if (c.check_id.size() > Limits::kName) return over("check id", c.check_id.size(), Limits::kName);
    return c.note.size() > Limits::kNote ? over("note", c.note.size(), Limits::kNote) : std::string();
}
std::string check_body(const TokenCreate& c) {
    if (c.accessor.size() > Limits::kName) return over("accessor", c.accessor.size(), Limits::kName);
    if (c.secret_hash.size() > Limits::kSecretHash)
        return over("secret hash", c.secret_hash.size(), Limits::kSecretHash);
    if (c.prefix.size() > Limits::kKey) return over("prefix", c.prefix.size(), Limits::kKey);
    return c.description.size() > Limits::kName ? over("description", c.description.size(), Limits::kName)
                                                : std::string();
}
std::string check_body(const TokenRevoke& c) {
    return c.accessor.size() > Limits::kName ? over("accessor", c.accessor.size(), Limits::kName) : std::string();
}

}  // namespace

CommandType Command::type() const { return static_cast<CommandType>(body.index()); }

const char* type_name(CommandType t) {
    static const char* const names[] = {"noop",       "kv_set",           "kv_delete",
                                        "txn",        "service_register", "service_deregister",
                                        "check_pass", "token_create",     "token_revoke"};
    auto i = static_cast<size_t>(t);
    return i < kTypeCount ? names[i] : "unknown";
}

uint8_t record_version(CommandType t) {
    return t == CommandType::ServiceRegister || t == CommandType::CheckPass ? 2 : kCommandVersion;
}

std::string check_limits(const Command& cmd) {
    if (cmd.meta.idempotency_key.size() > Limits::kIdempotencyKey)
        return over("idempotency key", cmd.meta.idempotency_key.size(), Limits::kIdempotencyKey);
    if (cmd.meta.fingerprint.size() > Limits::kFingerprint)
        return over("fingerprint", cmd.meta.fingerprint.size(), Limits::kFingerprint);
    return std::visit([](const auto& b) { return check_body(b); }, cmd.body);
}

std::string encode(const Command& cmd) {
    Writer w;
    // The variant's alternatives are declared in CommandType order.
    w.u8(static_cast<uint8_t>(cmd.type()));
    w.u8(record_version(cmd.type()));
    w.varint(cmd.meta.leader_ms);
    w.bytes(cmd.meta.idempotency_key);
    w.bytes(cmd.meta.fingerprint);
    std::visit([&w](const auto& b) { write_body(w, b); }, cmd.body);
    return w.take();
}

DecodeResult decode(std::string_view bytes) {
    Reader r(bytes);
    uint8_t type = r.u8("type");
    uint8_t version = r.u8("version");
    if (r.failed()) return {std::nullopt, r.error()};
    if (type >= kTypeCount) return {std::nullopt, "offset 0: unknown command type " + std::to_string(type)};
    if (version < 1 || version > record_version(static_cast<CommandType>(type)))
        return {std::nullopt, "offset 1: unknown version " + std::to_string(version) + " of " +
                                  type_name(static_cast<CommandType>(type))};
    r.version = version;
    Command cmd;
    cmd.meta.leader_ms = r.varint("leader time");
    cmd.meta.idempotency_key = r.bytes("idempotency key", Limits::kIdempotencyKey);
    cmd.meta.fingerprint = r.bytes("fingerprint", Limits::kFingerprint);
    cmd.body = kReaders[type](r);
    if (!r.failed() && !r.at_end())
        r.fail(std::to_string(bytes.size() - r.offset()) + " trailing bytes after " +
               type_name(static_cast<CommandType>(type)));
    if (r.failed()) return {std::nullopt, r.error()};
    return {std::move(cmd), {}};
}

// ---- Older record versions (issue 6, cluster/version_gate.h) --------------

namespace {

// Version 1: at most one TTL check (id and TTL only, initially critical), no meta.
bool write_body_v1(Writer& w, const ServiceRegister& c) {
    if (!c.meta.empty() || c.checks.size() > 1) return false;
    const CheckDef none;
    const CheckDef& d = c.checks.empty() ? none : c.checks.front();
    if (!d.name.empty() || !d.notes.empty() || d.status != CheckStatus::Critical) return false;
    w.bytes(c.id);
    w.bytes(c.name);
    w.bytes(c.address);
    w.varint(c.port);
    w.varint(c.tags.size());
    for (const std::string& t : c.tags) w.bytes(t);
    w.bytes(d.id);
    w.varint(d.ttl_ms);
    return true;
}

// Version 1: no status, always passing.
bool write_body_v1(Writer& w, const CheckPass& c) {
    if (c.status != CheckStatus::Passing) return false;
    w.bytes(c.check_id);
    w.bytes(c.note);
    return true;
}

template <class T>
bool write_body_v1(Writer&, const T&) {
    return false;  // no other type has an older version
}

}  // namespace

bool encode_as(const Command& cmd, uint8_t version, std::string* out) {
    uint8_t newest = record_version(cmd.type());
    if (version == newest) {
        *out = encode(cmd);
        return true;
    }
    if (version != 1 || newest < 1) return false;
    Writer w;
    w.u8(static_cast<uint8_t>(cmd.type()));
    w.u8(1);
    w.varint(cmd.meta.leader_ms);
    w.bytes(cmd.meta.idempotency_key);
    w.bytes(cmd.meta.fingerprint);
    if (!std::visit([&w](const auto& b) { return write_body_v1(w, b); }, cmd.body)) return false;
    *out = w.take();
    return true;
}

}  // namespace rampart::store
