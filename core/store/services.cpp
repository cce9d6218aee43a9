#include "store/services.h"

#include <algorithm>
#include <set>

#include "store/byte_codec.h"
#include "store/key.h"

namespace rampart::store {
namespace {

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Text that ends up in JSON answers and log lines: valid UTF-8 without
// control characters.
bool plain_text(std::string_view s) {
    if (!valid_utf8(s)) return false;
    return std::none_of(s.begin(), s.end(), [](char ch) {
        auto u = static_cast<unsigned char>(ch);
        return u < 0x20 || u == 0x7f;
    });
}

// Consul's rule for meta keys.
bool meta_key_ok(std::string_view k) {
    if (k.empty() || k.size() > Limits::kMetaKey) return false;
    return std::all_of(k.begin(), k.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
               ch == '-';
    });
}

uint64_t cost(const ServiceEntry& s) {
    uint64_t n = s.id.size() + s.name.size() + s.address.size();
    for (const std::string& t : s.tags) n += t.size();
    for (const auto& [k, v] : s.meta) n += k.size() + v.size();
    for (const std::string& id : s.checks) n += id.size();
    return n;
}

uint64_t cost(const CheckEntry& c) {
    return c.id.size() + c.name.size() + c.notes.size() + c.service_id.size() + c.output.size();
}

uint64_t deadline(const CheckEntry& c) {
    if (c.status == CheckStatus::Critical || c.ttl_ms == 0) return kNoDeadline;
    return c.updated_ms > kNoDeadline - c.ttl_ms ? kNoDeadline : c.updated_ms + c.ttl_ms;
}

void recompute_deadline(Catalog& c) {
    c.next_deadline_ms = kNoDeadline;
    for (const auto& [id, chk] : c.checks) c.next_deadline_ms = std::min(c.next_deadline_ms, deadline(*chk));
}

bool same_service(const ServiceEntry& a, const ServiceEntry& b) {
    return a.name == b.name && a.address == b.address && a.port == b.port && a.tags == b.tags && a.meta == b.meta &&
           a.checks == b.checks;
}

// Consul's output for a lapsed TTL keeps what the service said last.
std::string expired_output(const std::string& last) {
    std::string out = "TTL expired";
    if (!last.empty()) out += " (last output before timeout follows): " + last;
    if (out.size() > Limits::kNote) {
        out.resize(Limits::kNote);
        while (!out.empty() && !valid_utf8(out)) out.pop_back();
    }
    return out;
}

}  // namespace

// ---- applying -----------------------------------------------------------------

void catalog_advance_clock(Catalog& c, uint64_t index, uint64_t leader_ms) {
    c.clock_ms = std::max(c.clock_ms, leader_ms);
    if (c.clock_ms < c.next_deadline_ms) return;
    bool changed = false;
    for (auto& [id, chk] : c.checks) {
        if (deadline(*chk) > c.clock_ms) continue;
        auto next = std::make_shared<CheckEntry>(*chk);
        next->status = CheckStatus::Critical;
        next->output = expired_output(chk->output);
        next->modify_index = index;
        c.bytes = c.bytes - cost(*chk) + cost(*next);
        chk = std::move(next);
        changed = true;
    }
    if (changed) c.index = index;
    recompute_deadline(c);
}

std::string check_output(std::string_view note) {
    if (note.size() > Limits::kNote) return "output longer than " + std::to_string(Limits::kNote) + " bytes";
    if (!valid_utf8(note)) return "output is not valid UTF-8";
    return {};
}

std::string check_service_definition(const ServiceRegister& r) {
    if (r.name.empty()) return "missing service Name";
    if (r.id.empty()) return "missing service ID";
    if (!plain_text(r.id)) return "service ID must be UTF-8 text without control characters";
    if (!plain_text(r.name)) return "service Name must be UTF-8 text without control characters";
    if (!plain_text(r.address)) return "service Address must be UTF-8 text without control characters";
    if (std::string e = check_limits(Command{{}, r}); !e.empty()) return e;
    for (const std::string& t : r.tags)
        if (!plain_text(t)) return "tag " + quoted(t) + " must be UTF-8 text without control characters";
    std::set<std::string_view> seen;
    for (const auto& [k, v] : r.meta) {
        if (!meta_key_ok(k)) return "meta key " + quoted(k) + " must be 1 to 128 of A-Z a-z 0-9 _ -";
        if (!seen.insert(k).second) return "meta key " + quoted(k) + " appears twice";
        if (!valid_utf8(v)) return "meta value of " + quoted(k) + " is not valid UTF-8";
    }
    seen.clear();
    for (const CheckDef& d : r.checks) {
        if (d.id.empty()) return "a check without an ID";
        if (!plain_text(d.id)) return "check ID must be UTF-8 text without control characters";
        if (!seen.insert(d.id).second) return "check ID " + quoted(d.id) + " appears twice";
        if (!plain_text(d.name)) return "check Name must be UTF-8 text without control characters";
        if (!valid_utf8(d.notes)) return "check Notes are not valid UTF-8";
        if (d.ttl_ms == 0 || d.ttl_ms > kMaxCheckTtlMs)
            return "check " + quoted(d.id) + ": TTL must be between 1ms and 168h";
        if (d.status > CheckStatus::Critical) return "check " + quoted(d.id) + ": unknown status";
    }
    return {};
}

Result catalog_register(Catalog& c, uint64_t index, const ServiceRegister& r, uint64_t kv_bytes, uint64_t max_bytes) {
    if (std::string e = check_service_definition(r); !e.empty()) return Result::failure(Outcome::Invalid, e);
    auto old_it = c.services.find(r.id);
    ServicePtr old = old_it == c.services.end() ? nullptr : old_it->second;
    for (const CheckDef& d : r.checks) {
        auto it = c.checks.find(d.id);
        if (it != c.checks.end() && it->second->service_id != r.id) {
            return Result::failure(
                Outcome::Invalid, "check ID " + quoted(d.id) + " belongs to service " + quoted(it->second->service_id));
        }
    }

    // Plan the new entries, then check the size, then commit.
    auto svc = std::make_shared<ServiceEntry>();
    svc->id = r.id;
    svc->name = r.name;
    svc->address = r.address;
    svc->port = r.port;
    svc->tags = r.tags;
    svc->meta = r.meta;
    for (const CheckDef& d : r.checks) svc->checks.push_back(d.id);
    std::sort(svc->checks.begin(), svc->checks.end());
    svc->create_index = old ? old->create_index : index;
    svc->modify_index = index;
    bool changed = !old || !same_service(*old, *svc);

    std::vector<CheckPtr> planned;
    for (const CheckDef& d : r.checks) {
        auto it = c.checks.find(d.id);
        CheckPtr prev = it == c.checks.end() ? nullptr : it->second;
        if (prev && prev->name == d.name && prev->notes == d.notes && prev->ttl_ms == d.ttl_ms) {
            planned.push_back(prev);
            continue;
        }
        auto chk = std::make_shared<CheckEntry>();
        chk->id = d.id;
        chk->name = d.name;
        chk->notes = d.notes;
        chk->service_id = r.id;
        chk->ttl_ms = d.ttl_ms;
        // A check that stays keeps its status, output and TTL clock.
        chk->status = prev ? prev->status : d.status;
        chk->output = prev ? prev->output : std::string();
        chk->updated_ms = prev ? prev->updated_ms : c.clock_ms;
        chk->create_index = prev ? prev->create_index : index;
        chk->modify_index = index;
        planned.push_back(std::move(chk));
        changed = true;
    }
    std::vector<std::string> dropped;
    if (old) {
        for (const std::string& id : old->checks)
            if (!std::binary_search(svc->checks.begin(), svc->checks.end(), id)) dropped.push_back(id);
    }
    if (!dropped.empty()) changed = true;
    if (!changed) return {};

    uint64_t before = c.bytes;
    uint64_t after = before - (old ? cost(*old) : 0) + cost(*svc);
    for (const std::string& id : dropped) after -= cost(*c.checks.at(id));
    for (const CheckPtr& p : planned) {
        auto it = c.checks.find(p->id);
        after = after - (it != c.checks.end() ? cost(*it->second) : 0) + cost(*p);
    }
    // Shrinking always passes, so a full store can be cleaned up.
    if (after > before && kv_bytes + after > max_bytes) {
        return Result::failure(Outcome::StoreFull,
                               "the store is full (cluster.max_store_bytes = " + std::to_string(max_bytes) +
                                   "): deregister services, delete keys or raise the limit");
    }

    for (const std::string& id : dropped) c.checks.erase(id);
    for (CheckPtr& p : planned) c.checks.insert_or_assign(p->id, std::move(p));
    // Only its checks' settings changed: the service entry stays as it was.
    if (old && same_service(*old, *svc)) {
        c.services.insert_or_assign(r.id, old);
    } else {
        c.services.insert_or_assign(r.id, std::move(svc));
    }
    c.bytes = after;
    c.index = index;
    recompute_deadline(c);
    return {};
}

Result catalog_deregister(Catalog& c, uint64_t index, const ServiceDeregister& d) {
    auto it = c.services.find(d.id);
    if (it == c.services.end()) return Result::failure(Outcome::Failed, "unknown service ID " + quoted(d.id));
    for (const std::string& id : it->second->checks) {
        auto chk = c.checks.find(id);
        c.bytes -= cost(*chk->second);
        c.checks.erase(chk);
    }
    c.bytes -= cost(*it->second);
    c.services.erase(it);
    c.index = index;
    recompute_deadline(c);
    return {};
}

Result catalog_update_check(Catalog& c, uint64_t index, const CheckPass& p) {
    if (std::string e = check_output(p.note); !e.empty()) return Result::failure(Outcome::Invalid, e);
    if (p.status > CheckStatus::Critical) return Result::failure(Outcome::Invalid, "unknown check status");
    auto it = c.checks.find(p.check_id);
    if (it == c.checks.end()) return Result::failure(Outcome::Failed, "unknown check ID " + quoted(p.check_id));
    const CheckEntry& cur = *it->second;
    auto next = std::make_shared<CheckEntry>(cur);
    next->status = p.status;
    next->output = p.note;
    next->updated_ms = c.clock_ms;
    if (cur.status != p.status || cur.output != p.note) {
        next->modify_index = index;
        c.index = index;
    }
    // Outputs are bounded per check and never refused for space: a
    // heartbeat must work on a full store.
    c.bytes = c.bytes - cost(cur) + cost(*next);
    it->second = std::move(next);
    recompute_deadline(c);
    return {};
}

// ---- reads ----------------------------------------------------------------------

std::vector<ServicePtr> services_named(const Catalog& c, std::string_view name) {
    std::vector<ServicePtr> out;
    for (const auto& [id, s] : c.services)
        if (s->name == name) out.push_back(s);
    return out;
}

std::vector<CheckPtr> checks_of(const Catalog& c, const ServiceEntry& s) {
    std::vector<CheckPtr> out;
    for (const std::string& id : s.checks) {
        auto it = c.checks.find(id);
        if (it != c.checks.end()) out.push_back(it->second);
    }
    return out;
}

const char* status_name(CheckStatus s) {
    switch (s) {
        case CheckStatus::Passing: return "passing";
        case CheckStatus::Warning: return "warning";
        default: return "critical";
    }
}

bool parse_status(std::string_view text, CheckStatus* out) {
    for (CheckStatus s : {CheckStatus::Passing, CheckStatus::Warning, CheckStatus::Critical}) {
        if (text == status_name(s)) {
            *out = s;
            return true;
        }
    }
    return false;
}

// ---- snapshots --------------------------------------------------------------------
//
//   clock_ms index
//   count { id name address port count{tag} count{key value} create modify }
//   count { id name notes service_id ttl_ms status:u8 output updated_ms create modify }
//
// LEB128 varints (store/byte_codec.h); a service's check list is rebuilt
// from the checks.

namespace {

using Out = ByteOut;
using In = ByteIn;

}  // namespace

std::string serialize_catalog(const Catalog& c) {
    Out o;
    o.varint(c.clock_ms);
    o.varint(c.index);
    o.varint(c.services.size());
    for (const auto& [id, s] : c.services) {
        o.bytes(s->id);
        o.bytes(s->name);
        o.bytes(s->address);
        o.varint(s->port);
        o.varint(s->tags.size());
        for (const std::string& t : s->tags) o.bytes(t);
        o.varint(s->meta.size());
        for (const auto& [k, v] : s->meta) {
            o.bytes(k);
            o.bytes(v);
        }
        o.varint(s->create_index);
        o.varint(s->modify_index);
    }
    o.varint(c.checks.size());
    for (const auto& [id, k] : c.checks) {
        o.bytes(k->id);
        o.bytes(k->name);
        o.bytes(k->notes);
        o.bytes(k->service_id);
        o.varint(k->ttl_ms);
        o.varint(static_cast<uint8_t>(k->status));
        o.bytes(k->output);
        o.varint(k->updated_ms);
        o.varint(k->create_index);
        o.varint(k->modify_index);
    }
    return o.take();
}

bool parse_catalog(std::string_view bytes, Catalog* out) {
    In in(bytes);
    Catalog c;
    c.clock_ms = in.varint();
    c.index = in.varint();
    std::map<std::string, std::shared_ptr<ServiceEntry>, std::less<>> services;
    uint64_t n = in.count(bytes.size());
    for (uint64_t i = 0; i < n && in.ok(); i++) {
        auto s = std::make_shared<ServiceEntry>();
        s->id = in.bytes(Limits::kName);
        s->name = in.bytes(Limits::kName);
        s->address = in.bytes(Limits::kName);
        uint64_t port = in.varint();
        if (port > 65535) in.invalidate();
        s->port = static_cast<uint16_t>(port);
        uint64_t tags = in.count(Limits::kTags);
        for (uint64_t t = 0; t < tags && in.ok(); t++) s->tags.push_back(in.bytes(Limits::kName));
        uint64_t meta = in.count(Limits::kMeta);
        for (uint64_t m = 0; m < meta && in.ok(); m++) {
            std::string k = in.bytes(Limits::kMetaKey);
            std::string v = in.bytes(Limits::kMetaValue);
            s->meta.emplace_back(std::move(k), std::move(v));
        }
        s->create_index = in.varint();
        s->modify_index = in.varint();
        if (in.ok() && !services.emplace(s->id, s).second) in.invalidate();
    }
    n = in.count(bytes.size());
    for (uint64_t i = 0; i < n && in.ok(); i++) {
        auto k = std::make_shared<CheckEntry>();
        k->id = in.bytes(Limits::kName);
        k->name = in.bytes(Limits::kName);
        k->notes = in.bytes(Limits::kNote);
        k->service_id = in.bytes(Limits::kName);
        k->ttl_ms = in.varint();
        uint64_t status = in.varint();
        if (status > static_cast<uint64_t>(CheckStatus::Critical)) in.invalidate();
        k->status = static_cast<CheckStatus>(status);
        k->output = in.bytes(Limits::kNote);
        k->updated_ms = in.varint();
        k->create_index = in.varint();
        k->modify_index = in.varint();
        if (!in.ok()) break;
        auto owner = services.find(k->service_id);
        if (owner == services.end() || owner->second->checks.size() >= Limits::kChecks ||
            !c.checks.emplace(k->id, k).second) {
            in.invalidate();
            break;
        }
        owner->second->checks.push_back(k->id);  // ids arrive sorted: the map's order
        c.bytes += cost(*k);
    }
    if (!in.ok() || !in.at_end()) return false;
    for (auto& [id, s] : services) {
        c.bytes += cost(*s);
        c.services.emplace(id, std::move(s));
    }
    recompute_deadline(c);
    *out = std::move(c);
    return true;
}

}  // namespace rampart::store
