#include "store/command.h"

#include <type_traits>

#include "store/byte_codec.h"

namespace rampart::store {

namespace {

// ---- Writer -------------------------------------------------------------

// Booleans and optional numbers: the only field kinds the records add to
// the shared codec (store/byte_codec.h).
void put_bool(ByteOut& w, bool b) { w.u8(b ? 1 : 0); }
void put_opt(ByteOut& w, const std::optional<uint64_t>& v) {
    put_bool(w, v.has_value());
    if (v) w.varint(*v);
}

void write_body(ByteOut&, const Noop&) {}

void write_body(ByteOut& w, const KvSet& c) {
    w.bytes(c.key);
    w.bytes(c.value);
    w.varint(c.flags);
    put_opt(w, c.cas);
}

void write_body(ByteOut& w, const KvDelete& c) {
    w.bytes(c.key);
    put_bool(w, c.recurse);
    put_opt(w, c.cas);
}

void write_body(ByteOut& w, const Txn& c) {
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
void write_body(ByteOut& w, const ServiceRegister& c) {
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

void write_body(ByteOut& w, const ServiceDeregister& c) { w.bytes(c.id); }

// Version 2: the status after the note.
void write_body(ByteOut& w, const CheckPass& c) {
    w.bytes(c.check_id);
    w.bytes(c.note);
    w.u8(static_cast<uint8_t>(c.status));
}

void write_body(ByteOut& w, const TokenCreate& c) {
    w.bytes(c.accessor);
    w.bytes(c.secret_hash);
    w.u8(static_cast<uint8_t>(c.role));
    w.bytes(c.prefix);
    w.bytes(c.description);
    w.varint(c.expires_ms);
}

void write_body(ByteOut& w, const TokenRevoke& c) { w.bytes(c.accessor); }

// ---- Reader -------------------------------------------------------------

// Strict like the rest of the codec: a bool is 0 or 1, nothing else.
bool get_bool(ByteIn& r, const char* what) {
    uint8_t b = r.u8(what);
    if (b > 1) r.fail(std::string(what) + " is not 0 or 1");
    return b == 1;
}

std::optional<uint64_t> get_opt(ByteIn& r, const char* what) {
    if (!get_bool(r, what)) return std::nullopt;
    uint64_t v = r.varint(what);
    if (!r.ok()) return std::nullopt;
    return v;
}

Body read_noop(ByteIn&, uint8_t) { return Noop{}; }

Body read_kv_set(ByteIn& r, uint8_t) {
    KvSet c;
    c.key = r.bytes(Limits::kKey, "key");
    c.value = r.bytes(Limits::kValue, "value");
    c.flags = r.varint("flags");
    c.cas = get_opt(r, "cas");
    return c;
}

Body read_kv_delete(ByteIn& r, uint8_t) {
    KvDelete c;
    c.key = r.bytes(Limits::kKey, "key");
    c.recurse = get_bool(r, "recurse");
    c.cas = get_opt(r, "cas");
    return c;
}

Body read_txn(ByteIn& r, uint8_t) {
    Txn c;
    size_t n = r.count(Limits::kTxnOps, "txn op count");
    for (size_t i = 0; i < n && r.ok(); i++) {
        TxnOp op;
        uint8_t verb = r.u8("txn verb");
        if (r.ok() && (verb < static_cast<uint8_t>(TxnVerb::Set) || verb > static_cast<uint8_t>(TxnVerb::DeleteCas)))
            r.fail("unknown txn verb " + std::to_string(verb));
        op.verb = static_cast<TxnVerb>(verb);
        op.key = r.bytes(Limits::kKey, "txn key");
        op.value = r.bytes(Limits::kValue, "txn value");
        op.flags = r.varint("txn flags");
        op.index = r.varint("txn index");
        c.ops.push_back(std::move(op));
    }
    return c;
}

CheckStatus read_check_status(ByteIn& r) {
    uint8_t status = r.u8("check status");
    if (r.ok() && status > static_cast<uint8_t>(CheckStatus::Critical))
        r.fail("unknown check status " + std::to_string(status));
    return static_cast<CheckStatus>(status);
}

Body read_service_register(ByteIn& r, uint8_t version) {
    ServiceRegister c;
    c.id = r.bytes(Limits::kName, "service id");
    c.name = r.bytes(Limits::kName, "service name");
    c.address = r.bytes(Limits::kName, "service address");
    uint64_t port = r.varint("port");
    if (port > 65535) r.fail("port over 65535");
    c.port = static_cast<uint16_t>(port);
    size_t n = r.count(Limits::kTags, "tag count");
    for (size_t i = 0; i < n && r.ok(); i++) c.tags.push_back(r.bytes(Limits::kName, "tag"));
    if (version == 1) {
        CheckDef d;
        d.id = r.bytes(Limits::kName, "check id");
        d.ttl_ms = r.varint("check ttl");
        if (!d.id.empty()) c.checks.push_back(std::move(d));
        return c;
    }
    n = r.count(Limits::kMeta, "meta count");
    for (size_t i = 0; i < n && r.ok(); i++) {
        std::string k = r.bytes(Limits::kMetaKey, "meta key");
        std::string v = r.bytes(Limits::kMetaValue, "meta value");
        c.meta.emplace_back(std::move(k), std::move(v));
    }
    n = r.count(Limits::kChecks, "check count");
    for (size_t i = 0; i < n && r.ok(); i++) {
        CheckDef d;
        d.id = r.bytes(Limits::kName, "check id");
        d.name = r.bytes(Limits::kName, "check name");
        d.notes = r.bytes(Limits::kNote, "check notes");
        d.ttl_ms = r.varint("check ttl");
        d.status = read_check_status(r);
        c.checks.push_back(std::move(d));
    }
    return c;
}

Body read_service_deregister(ByteIn& r, uint8_t) { return ServiceDeregister{r.bytes(Limits::kName, "service id")}; }

Body read_check_pass(ByteIn& r, uint8_t version) {
    CheckPass c;
    c.check_id = r.bytes(Limits::kName, "check id");
    c.note = r.bytes(Limits::kNote, "note");
    if (version >= 2) c.status = read_check_status(r);
    return c;
}

Body read_token_create(ByteIn& r, uint8_t) {
    TokenCreate c;
    c.accessor = r.bytes(Limits::kName, "accessor");
    c.secret_hash = r.bytes(Limits::kSecretHash, "secret hash");
    uint8_t role = r.u8("role");
    if (r.ok() && (role < static_cast<uint8_t>(TokenRole::Read) || role > static_cast<uint8_t>(TokenRole::Admin)))
        r.fail("unknown token role " + std::to_string(role));
    c.role = static_cast<TokenRole>(role);
    c.prefix = r.bytes(Limits::kKey, "prefix");
    c.description = r.bytes(Limits::kName, "description");
    c.expires_ms = r.varint("expiry");
    return c;
}

Body read_token_revoke(ByteIn& r, uint8_t) { return TokenRevoke{r.bytes(Limits::kName, "accessor")}; }

// A reader takes the record's version for bodies that have more than one.
using BodyReader = Body (*)(ByteIn&, uint8_t);

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
    if (t == CommandType::Batch) return "batch";
    static const char* const names[] = {"noop",       "kv_set",           "kv_delete",
                                        "txn",        "service_register", "service_deregister",
                                        "check_pass", "token_create",     "token_revoke"};
    auto i = static_cast<size_t>(t);
    return i < kTypeCount ? names[i] : "unknown";
}

uint8_t record_version(CommandType t) {
    if (t == CommandType::Batch) return kBatchVersion;
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
    ByteOut w;
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
    ByteIn r(bytes);
    uint8_t type = r.u8("type");
    uint8_t version = r.u8("version");
    if (!r.ok()) return {std::nullopt, r.error()};
    if (type == static_cast<uint8_t>(CommandType::Batch))
        return {std::nullopt, "offset 0: a batch record where one command belongs (batches do not nest)"};
    if (type >= kTypeCount) return {std::nullopt, "offset 0: unknown command type " + std::to_string(type)};
    if (version < 1 || version > record_version(static_cast<CommandType>(type)))
        return {std::nullopt, "offset 1: unknown version " + std::to_string(version) + " of " +
                                  type_name(static_cast<CommandType>(type))};
    Command cmd;
    cmd.meta.leader_ms = r.varint("leader time");
    cmd.meta.idempotency_key = r.bytes(Limits::kIdempotencyKey, "idempotency key");
    cmd.meta.fingerprint = r.bytes(Limits::kFingerprint, "fingerprint");
    cmd.body = kReaders[type](r, version);
    if (r.ok() && !r.at_end())
        r.fail(std::to_string(bytes.size() - r.offset()) + " trailing bytes after " +
               type_name(static_cast<CommandType>(type)));
    if (!r.ok()) return {std::nullopt, r.error()};
    return {std::move(cmd), {}};
}

// ---- Batch records ---------------------------------------------------------

bool is_batch_record(std::string_view bytes) {
    return !bytes.empty() && static_cast<uint8_t>(bytes[0]) == static_cast<uint8_t>(CommandType::Batch);
}

std::string encode_batch(const std::vector<std::string_view>& records) {
    ByteOut w;
    w.u8(static_cast<uint8_t>(CommandType::Batch));
    w.u8(kBatchVersion);
    w.varint(records.size());
    for (std::string_view r : records) w.bytes(r);
    return w.take();
}

bool decode_batch(std::string_view bytes, std::vector<std::string_view>* records, std::string* error) {
    ByteIn r(bytes);
    records->clear();
    uint8_t type = r.u8("type");
    uint8_t version = r.u8("version");
    if (r.ok() && type != static_cast<uint8_t>(CommandType::Batch)) r.fail("not a batch record");
    if (r.ok() && version != kBatchVersion) r.fail("unknown version " + std::to_string(version) + " of batch");
    // Each record takes at least its length byte plus kMinCommandRecord.
    uint64_t n = r.count(kBatchCommands, "batch count");
    if (r.ok() && n == 0) r.fail("empty batch");
    for (uint64_t i = 0; i < n && r.ok(); i++) {
        size_t len = static_cast<size_t>(r.varint("record length"));
        if (r.ok() && len < kMinCommandRecord) r.fail("record " + std::to_string(i) + " too short");
        std::string_view rec = r.raw(len, "record");
        if (!r.ok()) break;
        // Only plain commands: no nested batch, restore or membership record.
        if (static_cast<uint8_t>(rec[0]) >= static_cast<uint8_t>(CommandType::Batch)) {
            r.fail("record " + std::to_string(i) + " has type " + std::to_string(static_cast<uint8_t>(rec[0])) +
                   ", which a batch cannot carry");
            break;
        }
        records->push_back(rec);
    }
    if (r.ok() && !r.at_end()) r.fail(std::to_string(bytes.size() - r.offset()) + " trailing bytes after batch");
    if (r.ok()) return true;
    records->clear();
    *error = r.error();
    return false;
}

// ---- Older record versions (issue 6, cluster/version_gate.h) --------------

namespace {

// Version 1: at most one TTL check (id and TTL only, initially critical), no meta.
bool write_body_v1(ByteOut& w, const ServiceRegister& c) {
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
bool write_body_v1(ByteOut& w, const CheckPass& c) {
    if (c.status != CheckStatus::Passing) return false;
    w.bytes(c.check_id);
    w.bytes(c.note);
    return true;
}

template <class T>
bool write_body_v1(ByteOut&, const T&) {
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
    ByteOut w;
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
