// Replicated commands: the versioned binary records that go into the Raft
// log (issue 5). No JSON in the log: a record is
//
//   type:u8  version:u8  meta  body
//   meta  = leader_ms:varint  idempotency_key:bytes  fingerprint:bytes
//   bytes = length:varint  data
//
// with unsigned LEB128 varints (shortest form only) and the body laid out per
// type below. The decoder is strict: truncated input, trailing bytes, an
// unknown type or version, a non-canonical varint, a bool other than 0/1 or a
// length over its limit is an error with the offset, never undefined
// behaviour. Every node decodes the same bytes to the same command, which is
// what makes apply deterministic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace rampart::store {

// Type bytes are part of the on-disk format: never renumber.
enum class CommandType : uint8_t {
    Noop = 0,
    KvSet = 1,
    KvDelete = 2,
    Txn = 3,
    ServiceRegister = 4,
    ServiceDeregister = 5,
    CheckPass = 6,
    TokenCreate = 7,
    TokenRevoke = 8,
    // Group commit (store/store.h): several encoded commands of the types
    // above in one Raft entry. decode() never sees it: decode_batch() splits
    // it and each sub-record goes through decode() on its own.
    Batch = 9,
    // A snapshot restore (store/snapshot_file.h): the record is this type
    // byte, a version byte and a whole snapshot file. The state machine
    // reads it before decode(), which never sees it.
    SnapshotRestore = 64,

    // Cluster membership (issue 6): 80-89 are membership records with a
    // codec of their own (store/membership_record.h); the state machine
    // reads them before decode(), which never sees them.
    MembershipFirst = 80,
    MembershipLast = 89,
};

// The record version this build writes for most types. A new field means a
// new version of that type, decoded side by side with the old one:
// record_version() says what encode() writes for each type.
inline constexpr uint8_t kCommandVersion = 1;

// Limits shared with the HTTP layer (brief: key 512 B, value 512 KiB, txn 64).
struct Limits {
    static constexpr size_t kKey = 512;
    static constexpr size_t kValue = size_t{512} * 1024;
    static constexpr size_t kTxnOps = 64;
    static constexpr size_t kIdempotencyKey = 256;
    static constexpr size_t kFingerprint = 64;
    static constexpr size_t kName = 256;  // service id/name/address, check id, token accessor
    static constexpr size_t kTags = 64;
    static constexpr size_t kNote = 4096;
    static constexpr size_t kSecretHash = 64;
    static constexpr size_t kChecks = 32;      // checks per service
    static constexpr size_t kMeta = 64;        // service meta pairs (Consul: 64)
    static constexpr size_t kMetaKey = 128;    // Consul: 128
    static constexpr size_t kMetaValue = 512;  // Consul: 512
};

// Carried by every write: the idempotency key (scoped by identity by the
// caller), the request fingerprint, and the leader's wall clock when it
// proposed the entry (expiry of idempotency records uses this, not the
// applying node's clock).
struct Meta {
    std::string idempotency_key;
    std::string fingerprint;
    uint64_t leader_ms = 0;
    bool operator==(const Meta&) const = default;
};

struct Noop {
    bool operator==(const Noop&) const = default;
};

struct KvSet {
    std::string key;
    std::string value;
    uint64_t flags = 0;
    std::optional<uint64_t> cas;  // 0 = create only
    bool operator==(const KvSet&) const = default;
};

struct KvDelete {
    std::string key;
    bool recurse = false;
    std::optional<uint64_t> cas;
    bool operator==(const KvDelete&) const = default;
};

// Consul's /v1/txn KV verbs. Numbers are on-disk format.
enum class TxnVerb : uint8_t {
    Set = 1,
    Cas = 2,
    Get = 3,
    GetTree = 4,
    CheckIndex = 5,
    CheckNotExists = 6,
    Delete = 7,
    DeleteTree = 8,
    DeleteCas = 9,
};

struct TxnOp {
    TxnVerb verb = TxnVerb::Get;
    std::string key;
    std::string value;
    uint64_t flags = 0;
    uint64_t index = 0;  // Cas, CheckIndex, DeleteCas
    bool operator==(const TxnOp&) const = default;
};

struct Txn {
    std::vector<TxnOp> ops;
    bool operator==(const Txn&) const = default;
};

// Check states, Consul's names: passing, warning, critical. On-disk format.
enum class CheckStatus : uint8_t { Passing = 0, Warning = 1, Critical = 2 };

// A TTL check registered with its service (version 2 of service_register).
struct CheckDef {
    std::string id;
    std::string name;
    std::string notes;
    uint64_t ttl_ms = 0;
    CheckStatus status = CheckStatus::Critical;  // initial status (Consul's default for TTL checks)
    bool operator==(const CheckDef&) const = default;
};

// Version 1 carried at most one TTL check (check id + TTL; an empty id for
// none) and no meta; it decodes into `checks` as one check, initially
// critical.
struct ServiceRegister {
    std::string id;
    std::string name;
    std::string address;
    uint16_t port = 0;
    std::vector<std::string> tags;
    std::vector<std::pair<std::string, std::string>> meta;  // v2
    std::vector<CheckDef> checks;                           // v2 (v1: at most one)
    bool operator==(const ServiceRegister&) const = default;
};

struct ServiceDeregister {
    std::string id;
    bool operator==(const ServiceDeregister&) const = default;
};

// Sets a check's status and output (Consul's check pass/warn/fail/update);
// version 1 had no status (always passing).
struct CheckPass {
    std::string check_id;
    std::string note;
    CheckStatus status = CheckStatus::Passing;  // v2
    bool operator==(const CheckPass&) const = default;
};

// Token roles are on-disk format.
enum class TokenRole : uint8_t { Read = 1, Write = 2, Admin = 3 };

struct TokenCreate {
    std::string accessor;     // public id
    std::string secret_hash;  // hash of the secret; the secret never enters the log
    TokenRole role = TokenRole::Read;
    std::string prefix;  // key prefix scope; empty = all
    std::string description;
    uint64_t expires_ms = 0;  // 0 = never
    bool operator==(const TokenCreate&) const = default;
};

struct TokenRevoke {
    std::string accessor;
    bool operator==(const TokenRevoke&) const = default;
};

using Body =
    std::variant<Noop, KvSet, KvDelete, Txn, ServiceRegister, ServiceDeregister, CheckPass, TokenCreate, TokenRevoke>;

struct Command {
    Meta meta;
    Body body;
    CommandType type() const;
    bool operator==(const Command&) const = default;
};

// Check a command against the limits before proposing it. Empty = fine.
std::string check_limits(const Command& cmd);

// Encode; the caller checks limits first (encode() of an over-limit command
// produces a record the decoder refuses).
std::string encode(const Command& cmd);

struct DecodeResult {
    std::optional<Command> command;  // set on success
    std::string error;               // "offset N: what", on failure
    bool ok() const { return command.has_value(); }
};

DecodeResult decode(std::string_view bytes);

const char* type_name(CommandType t);

// The version encode() writes for `t`: 2 for service_register and
// check_pass, kCommandVersion for the others.
uint8_t record_version(CommandType t);

// ---- Batch records (group commit) -----------------------------------------
//
//   type:u8 (9)  version:u8 (1)  count:varint  count * (length:varint  record)
//
// Each record is an encoded command of types 0-8 (encode() / encode_as());
// a batch never holds a batch, a snapshot restore or a membership record.
// count is 1..kBatchCommands; no trailing bytes.
inline constexpr uint8_t kBatchVersion = 1;
inline constexpr size_t kBatchCommands = 256;
// The shortest command record: type, version, leader_ms, two empty byte fields.
inline constexpr size_t kMinCommandRecord = 5;

bool is_batch_record(std::string_view bytes);
// The records must be encoded commands (not checked here: the decoder
// refuses what this cannot carry).
std::string encode_batch(const std::vector<std::string_view>& records);
// Split a batch record into its sub-records (views into `bytes`). False
// with *error ("offset N: what") on any malformed or hostile input.
bool decode_batch(std::string_view bytes, std::vector<std::string_view>* records, std::string* error);

// ---- Older record versions (issue 6, cluster/version_gate.h) --------------
// A leader whose voters do not all decode record_version() of a type writes
// an older version: encode_as() writes `cmd` as `version` of its type, or
// returns false when that version cannot carry it (a service with meta or
// several checks in service_register 1, a warning in check_pass 1, any
// version this build does not have).
bool encode_as(const Command& cmd, uint8_t version, std::string* out);

}  // namespace rampart::store
