// Snapshot payload of the state machine (the adapter wraps it in its own
// envelope with a CRC32C, so this format carries no checksum):
//
//   "RMPSTATE" version:u8 applied kv_index
//   count { key value flags create_index modify_index }
//   count { idempotency_key fingerprint expires_ms result }
//   result = outcome:u8 error count{ key with_value:u8 [value] flags create modify } count{ op_index what }
//   catalog (format 2) = bytes: serialize_catalog() (store/services.h)
//   tokens (format 3) = bytes: TokenTable::serialize() (store/tokens.h)
//   members (format 4) = bytes: serialize_members() (cluster/member_info.h)
//   membership (format 5) = bytes: MembershipState::serialize() (store/membership_state.h)
//
// with LEB128 varints for numbers and lengths.

#include "store/byte_codec.h"
#include "store/key.h"
#include "store/state_machine.h"
#include "store/state_writer.h"

namespace rampart::store {
namespace {

using Out = ByteOut;
using In = ByteIn;

constexpr char kMagic[] = "RMPSTATE";
constexpr size_t kMagicLen = 8;
// 2 adds the services catalog, 3 the tokens, 4 the members, 5 the membership; older ones are still restored
constexpr uint8_t kFormat = 5;
constexpr size_t kMaxTokenBytes = size_t{8} * 1024 * 1024;

void write_entry(Out& o, const Entry& e, bool with_value) {
    if (with_value) o.bytes(e.value());
    o.varint(e.flags());
    o.varint(e.create_index());
    o.varint(e.modify_index());
}

EntryPtr read_entry(In& in, bool with_value) {
    std::string value = with_value ? in.bytes(Limits::kValue) : std::string();
    uint64_t flags = in.varint();
    uint64_t create_index = in.varint();
    uint64_t modify_index = in.varint();
    return Entry::make(value, flags, create_index, modify_index);
}

void write_result(Out& o, const Result& r) {
    o.u8(static_cast<uint8_t>(r.outcome));
    o.bytes(r.error);
    o.varint(r.results.size());
    for (const TxnResult& t : r.results) {
        o.bytes(t.key);
        o.u8(t.with_value ? 1 : 0);
        write_entry(o, *t.entry, t.with_value);
    }
    o.varint(r.errors.size());
    for (const TxnError& e : r.errors) {
        o.varint(e.op_index);
        o.bytes(e.what);
    }
}

constexpr size_t kMaxText = size_t{64} * 1024;
constexpr uint64_t kMaxResults = 1u << 24;

std::shared_ptr<const Result> read_result(In& in) {
    auto r = std::make_shared<Result>();
    uint8_t outcome = in.u8();
    if (outcome > static_cast<uint8_t>(Outcome::KeyReused)) in.invalidate();
    r->outcome = static_cast<Outcome>(outcome);
    r->error = in.bytes(kMaxText);
    uint64_t n = in.varint();
    for (uint64_t i = 0; i < n && i < kMaxResults && in.ok(); i++) {
        TxnResult t;
        t.key = in.bytes(Limits::kKey);
        t.with_value = in.u8() != 0;
        t.entry = read_entry(in, t.with_value);
        r->results.push_back(std::move(t));
    }
    uint64_t m = in.varint();
    for (uint64_t i = 0; i < m && i < Limits::kTxnOps && in.ok(); i++) {
        TxnError e;
        e.op_index = static_cast<uint32_t>(in.varint());
        e.what = in.bytes(kMaxText);
        r->errors.push_back(std::move(e));
    }
    if (n > kMaxResults || m > Limits::kTxnOps) in.invalidate();
    return r;
}

}  // namespace

StateWriter::StateWriter(const State& state)
    : s_(state), kv_(state.kv.begin()), dedup_(state.dedup.records().begin()) {}

bool StateWriter::next(std::string& out, size_t budget) {
    if (phase_ == Phase::Done) return false;
    Out o(out);
    const size_t start = out.size();
    auto full = [&] { return out.size() - start >= budget; };
    if (phase_ == Phase::Head) {
        o.raw(std::string_view(kMagic, kMagicLen));
        o.u8(kFormat);
        o.varint(s_.applied);
        o.varint(s_.kv_index);
        o.varint(s_.kv.size());
        phase_ = Phase::Kv;
    }
    for (; phase_ == Phase::Kv && kv_ != s_.kv.end() && !full(); ++kv_) {
        o.bytes(kv_->first);
        write_entry(o, *kv_->second, true);
    }
    if (full()) return true;
    if (phase_ == Phase::Kv) {
        o.varint(s_.dedup.size());
        phase_ = Phase::Dedup;
    }
    for (; phase_ == Phase::Dedup && dedup_ != s_.dedup.records().end() && !full(); ++dedup_) {
        o.bytes(dedup_->first);
        o.bytes(dedup_->second.fingerprint);
        o.varint(dedup_->second.expires_ms);
        write_result(o, *dedup_->second.outcome);
    }
    if (full()) return true;
    // The catalog, the tokens and the members are small next to the KV data: one piece.
    o.bytes(serialize_catalog(s_.catalog));
    o.bytes(s_.tokens.serialize());
    o.bytes(cluster::serialize_members(s_.members));
    o.bytes(s_.membership.serialize());
    phase_ = Phase::Done;
    return true;
}

std::string StateMachine::serialize(const State& s) {
    std::string out;
    StateWriter writer(s);
    while (writer.next(out, SIZE_MAX)) {
    }
    return out;
}

// Parse into a fresh state and swap it in only when every byte made sense:
// a bad payload leaves the running state untouched.
bool StateMachine::restore(uint64_t index, std::string_view payload, std::string* error) {
    In in(payload);
    auto s = std::make_shared<State>();
    s->dedup = DedupTable(limits_.dedup);
    bool magic_ok = in.raw(kMagicLen) == std::string_view(kMagic, kMagicLen);
    uint8_t format = magic_ok ? in.u8() : 0;
    if (!magic_ok || format < 1 || format > kFormat) {
        *error = "not a state snapshot of a known format";
        return false;
    }
    s->applied = in.varint();
    s->kv_index = in.varint();
    uint64_t count = in.varint();
    for (uint64_t i = 0; i < count && in.ok(); i++) {
        std::string key = in.bytes(Limits::kKey);
        EntryPtr e = read_entry(in, true);
        s->used_bytes += key.size() + e->value().size();
        s->kv.insert_or_assign(std::move(key), std::move(e));
    }
    uint64_t records = in.varint();
    for (uint64_t i = 0; i < records && in.ok(); i++) {
        std::string key = in.bytes(Limits::kIdempotencyKey);
        DedupRecord rec;
        rec.fingerprint = in.bytes(Limits::kFingerprint);
        rec.expires_ms = in.varint();
        rec.outcome = read_result(in);
        s->dedup.insert(std::move(key), std::move(rec));
    }
    if (format >= 2 && in.ok() && !parse_catalog(in.bytes(payload.size()), &s->catalog)) in.invalidate();
    if (format >= 3 && in.ok() && !s->tokens.restore(in.bytes(kMaxTokenBytes))) in.invalidate();
    if (format >= 4 && in.ok() && !cluster::parse_members(in.bytes(payload.size()), &s->members)) in.invalidate();
    if (format >= 5 && in.ok() && !s->membership.restore(in.bytes(kMaxTokenBytes))) in.invalidate();
    if (!in.ok() || !in.at_end() || s->kv.size() != count) {
        *error = "state snapshot is truncated or malformed";
        return false;
    }
    // The engine's index is the authority for what the snapshot covers.
    s->applied = index;
    state_ = std::move(s);
    return true;
}

}  // namespace rampart::store
