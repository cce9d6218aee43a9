#include "limiter.h"

#include <charconv>
#include <cmath>

namespace ratelimit {
namespace {

constexpr size_t kMinKeys = 16;
constexpr size_t kMaxReasons = 16;  // distinct auth-failure reasons kept apart; more fold into "other"

uint32_t ceil_seconds(uint64_t ms) {
    uint64_t s = (ms + 999) / 1000;
    if (s < 1) s = 1;
    return s > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(s);
}

void append_uint(std::string& out, uint64_t v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
}

// `"name";a=1;b=2` (rule names are [a-z0-9_], safe in an sf-string).
void append_item(std::string& out, const std::string& name, char k1, uint64_t v1, char k2, uint64_t v2) {
    if (!out.empty()) out += ", ";
    out += '"';
    out += name;
    out += "\";";
    out += k1;
    out += '=';
    append_uint(out, v1);
    out += ';';
    out += k2;
    out += '=';
    append_uint(out, v2);
}

// The policy item: quota q per window w (whole seconds, at least 1).
void append_policy_item(std::string& out, const Rule& r) {
    double w = std::max(1.0, std::round(r.window_s));
    double q = std::max(1.0, std::round(r.limit * w / r.window_s));
    append_item(out, r.name, 'q', static_cast<uint64_t>(q), 'w', static_cast<uint64_t>(w));
}

uint64_t seconds_to_ms(double s) { return static_cast<uint64_t>(std::llround(s * 1000.0)); }

}  // namespace

const char* decision_name(Decision d) {
    switch (d) {
        case Decision::Allowed: return "allowed";
        case Decision::Limited: return "limited";
        case Decision::ShadowLimited: return "shadow_limited";
        case Decision::Blocked: return "blocked";
        default: return "allowlisted";
    }
}

void Outcome::clear() {
    exempt = refuse = blocked = has_headers = false;
    retry_after_s = 0;
    cause = nullptr;
    route = RouteClass::Other;
    policy = nullptr;
    limit.clear();
    body.clear();
}

Limiter::Limiter(size_t max_keys) : keys_(max_keys < kMinKeys ? kMinKeys : max_keys) {
    ip_key_.reserve(24);
    id_key_.reserve(64);
    pending_.reserve(8);
    penalized_.reserve(4);
}

void Limiter::set_max_keys(size_t n) { keys_.set_capacity(n < kMinKeys ? kMinKeys : n); }

void Limiter::set_rules(std::vector<Rule> rules, uint64_t now_ms) {
    std::vector<int> map(rules_.size(), -1);
    for (size_t i = 0; i < rules_.size(); ++i) {
        for (size_t j = 0; j < rules.size(); ++j) {
            if (rules_[i].name != rules[j].name) continue;
            // The key changes meaning (address vs identity, requests vs
            // failures): start over rather than carry a stale bucket.
            bool failed_i = rules_[i].auth == AuthMatch::Failed, failed_j = rules[j].auth == AuthMatch::Failed;
            if (rules_[i].key == rules[j].key && failed_i == failed_j) map[i] = static_cast<int>(j);
        }
    }
    std::vector<Rate> rates;
    rates.reserve(rules.size());
    for (const Rule& r : rules) rates.push_back(r.rate());

    keys_.erase_if([&](std::string_view, Entry& e) {
        size_t kept = 0;
        for (Slot& s : e.slots) {
            int j = s.rule < map.size() ? map[s.rule] : -1;
            if (j < 0) continue;
            const Rule& now_rule = rules[static_cast<size_t>(j)];
            if (!(rates_[s.rule] == rates[static_cast<size_t>(j)])) {
                s.bucket.rescale(rates_[s.rule], rates[static_cast<size_t>(j)], now_ms);
            }
            if (!now_rule.block.enabled) {
                s.block_until = 0;
                s.failures = SlidingCount{};
            }
            s.rule = static_cast<uint16_t>(j);
            e.slots[kept++] = s;
        }
        e.slots.resize(kept);
        return kept == 0;
    });

    std::vector<Counts> counts(rules.size(), Counts{});
    for (size_t i = 0; i < rules_.size(); ++i) {
        if (map[i] >= 0) {
            counts[static_cast<size_t>(map[i])] = counts_[i];
        } else {
            retired_counts_.emplace_back(rules_[i].name, counts_[i]);
        }
    }
    rules_ = std::move(rules);
    rates_ = std::move(rates);
    counts_ = std::move(counts);
    rebuild_tables();
}

void Limiter::rebuild_tables() {
    failed_.clear();
    for (auto& t : table_) t.clear();
    for (auto& h : policy_header_) h.clear();
    for (size_t i = 0; i < rules_.size(); ++i) {
        const Rule& r = rules_[i];
        auto idx = static_cast<uint16_t>(i);
        if (r.auth == AuthMatch::Failed) {
            failed_.push_back(idx);
            continue;
        }
        if (!r.route_known) continue;
        Caller c = r.auth == AuthMatch::Authenticated ? Caller::Authenticated : Caller::Unauthenticated;
        for (size_t rc = 0; rc < kRouteClassCount; ++rc) {
            if (!r.any_route && static_cast<size_t>(r.route) != rc) continue;
            size_t t = table_index(c, static_cast<RouteClass>(rc));
            table_[t].push_back(idx);
            if (!r.shadow) append_policy_item(policy_header_[t], r);
        }
    }
}

void Limiter::make_ip_key(const Address& a, std::string_view raw) {
    ip_key_.clear();
    if (a.family == 4) {
        ip_key_.push_back('4');
        for (int shift = 24; shift >= 0; shift -= 8) ip_key_.push_back(static_cast<char>((a.v4 >> shift) & 0xff));
    } else if (a.family == 6) {
        ip_key_.push_back('6');
        for (uint64_t half : {a.hi, a.lo}) {
            for (int shift = 56; shift >= 0; shift -= 8) ip_key_.push_back(static_cast<char>((half >> shift) & 0xff));
        }
    } else {
        // Not an address (a Unix socket peer, say): the text, bounded.
        ip_key_.push_back('?');
        ip_key_.append(raw.substr(0, 64));
    }
}

uint32_t Limiter::slot_index(Entry* e, uint16_t rule, uint64_t now_ms) {
    for (uint32_t i = 0; i < e->slots.size(); ++i) {
        if (e->slots[i].rule == rule) return i;
    }
    Slot s;
    s.rule = rule;
    s.bucket = Bucket::full(rates_[rule], now_ms);
    e->slots.push_back(s);
    return static_cast<uint32_t>(e->slots.size() - 1);
}

uint64_t Limiter::penalty_ms(const Rule& r) const {
    return r.retry_after_s > 0 ? uint64_t{r.retry_after_s} * 1000 : seconds_to_ms(r.window_s);
}

void Limiter::refuse(Outcome* out, const Rule& r, uint32_t seconds, bool blocked) {
    out->refuse = true;
    if (seconds > out->retry_after_s) out->retry_after_s = seconds;
    if (out->cause == nullptr || (blocked && !out->blocked)) out->cause = &r;
    if (blocked) out->blocked = true;
}

void Limiter::admit(const RequestInfo& req, uint64_t now_ms, Outcome* out) {
    out->clear();
    if (req.caller == Caller::Peer) {
        out->exempt = true;
        return;
    }
    RouteClass rc = classify_path(req.path);
    out->route = rc;
    Address addr;
    parse_address(req.source_ip, &addr);
    make_ip_key(addr, req.source_ip);
    pending_.clear();
    penalized_.clear();
    bool dynamic_policy = false;
    Entry* ip_entry = nullptr;
    Entry* id_entry = nullptr;

    // 1. Penalties and blocks earned by authentication failures.
    if (!failed_.empty()) {
        ip_entry = keys_.find(ip_key_);
        for (size_t k = 0; ip_entry != nullptr && k < failed_.size(); ++k) {
            uint16_t fi = failed_[k];
            const Rule& f = rules_[fi];
            const Slot* s = nullptr;
            for (const Slot& x : ip_entry->slots) {
                if (x.rule == fi) s = &x;
            }
            if (s == nullptr || (!f.allow.empty() && f.allow.contains(addr))) continue;
            bool blocked = s->block_until > now_ms;
            uint64_t until = blocked ? s->block_until : s->penalty_until;
            if (until <= now_ms) continue;
            if (f.shadow) {
                count(fi, Decision::ShadowLimited);
                continue;
            }
            count(fi, blocked ? Decision::Blocked : Decision::Limited);
            uint32_t secs = ceil_seconds(until - now_ms);
            refuse(out, f, secs, blocked);
            penalized_.push_back({fi, secs});
        }
    }

    // 2. The request rules for this caller and route class. A source that
    // is already refused for its failures spends nothing here.
    if (!out->refuse) {
        const std::vector<uint16_t>& list = table_[table_index(req.caller, rc)];
        for (uint16_t ri : list) {
            const Rule& r = rules_[ri];
            if (!r.allow.empty() && r.allow.contains(addr)) {
                count(ri, Decision::Allowlisted);
                dynamic_policy = true;
                continue;
            }
            Entry* e;
            if (r.key == KeyKind::Ip) {
                if (ip_entry == nullptr) ip_entry = keys_.find_or_insert(ip_key_);
                e = ip_entry;
            } else {
                if (id_entry == nullptr) {
                    id_key_.assign("i");
                    id_key_ += req.identity_kind;
                    id_key_ += ':';
                    id_key_.append(req.identity);
                    // Both entries were just touched; with at least 16 keys
                    // this insert cannot evict ip_entry.
                    id_entry = keys_.find_or_insert(id_key_);
                }
                e = id_entry;
            }
            uint32_t si = slot_index(e, ri, now_ms);
            Bucket& b = e->slots[si].bucket;
            b.refill(rates_[ri], now_ms);
            bool ok = b.tokens >= 1.0;
            if (r.shadow) {
                if (ok) b.take();
                count(ri, ok ? Decision::Allowed : Decision::ShadowLimited);
                continue;
            }
            count(ri, ok ? Decision::Allowed : Decision::Limited);
            if (!ok) {
                uint32_t secs = r.retry_after_s > 0 ? r.retry_after_s : ceil_seconds(b.ms_until(rates_[ri], 1.0));
                refuse(out, r, secs, false);
            }
            pending_.push_back({e, si, ri});
        }
        // All or nothing: a refused request spends no token.
        if (!out->refuse) {
            for (const Pending& p : pending_) p.entry->slots[p.slot].bucket.take();
        }
    }

    write_headers(out, req.caller, rc, dynamic_policy);
    if (out->refuse) write_body(out);
}

void Limiter::write_headers(Outcome* out, Caller caller, RouteClass rc, bool dynamic_policy) {
    if (pending_.empty() && penalized_.empty()) return;
    out->has_headers = true;
    if (!dynamic_policy && penalized_.empty()) {
        out->policy = &policy_header_[table_index(caller, rc)];
    } else {
        out->policy_buf.clear();
        for (const Penalized& p : penalized_) append_policy_item(out->policy_buf, rules_[p.rule]);
        for (const Pending& p : pending_) append_policy_item(out->policy_buf, rules_[p.rule]);
        out->policy = &out->policy_buf;
    }
    for (const Penalized& p : penalized_) append_item(out->limit, rules_[p.rule].name, 'r', 0, 't', p.seconds);
    for (const Pending& p : pending_) {
        const Bucket& b = p.entry->slots[p.slot].bucket;
        const Rate& rate = rates_[p.rule];
        uint64_t remaining = b.tokens >= 1.0 ? static_cast<uint64_t>(b.tokens) : 0;
        uint64_t to_full = b.tokens >= rate.capacity ? 0 : ceil_seconds(b.ms_until(rate, rate.capacity));
        append_item(out->limit, rules_[p.rule].name, 'r', remaining, 't', to_full);
    }
}

void Limiter::write_body(Outcome* out) {
    const Rule& r = *out->cause;
    const char* why;
    if (out->blocked) {
        why = "this address is blocked after repeated failed authentications";
    } else if (r.auth == AuthMatch::Failed) {
        why = "too many failed authentications from this address";
    } else if (r.key == KeyKind::Identity) {
        why = "too many requests for this identity";
    } else {
        why = "too many requests from this address";
    }
    out->body = "{\"error\":\"rate limit exceeded for " + r.name + ": " + why + "; retry after " +
                std::to_string(out->retry_after_s) + " s\",\"code\":\"rate_limited\"}\n";
}

void Limiter::auth_failure(std::string_view source_ip, std::string_view reason, uint64_t now_ms,
                           std::vector<BlockEvent>* events) {
    bool counted = false;
    for (auto& [name, n] : reasons_) {
        if (name == reason) {
            ++n;
            counted = true;
            break;
        }
    }
    if (!counted) {
        // The last place is kept for "other", so a host that invents
        // reasons cannot grow this (or the metric's series) without bound.
        std::string_view name = reasons_.size() + 1 < kMaxReasons ? reason.substr(0, 64) : std::string_view("other");
        bool found = false;
        for (auto& [n, c] : reasons_) {
            if (n == name) {
                ++c;
                found = true;
            }
        }
        if (!found) reasons_.emplace_back(std::string(name), 1);
    }
    if (reason == "forbidden" || failed_.empty()) return;
    Address addr;
    parse_address(source_ip, &addr);
    make_ip_key(addr, source_ip);
    Entry* e = nullptr;
    for (uint16_t fi : failed_) {
        const Rule& f = rules_[fi];
        if (!f.allow.empty() && f.allow.contains(addr)) {
            count(fi, Decision::Allowlisted);
            continue;
        }
        if (e == nullptr) e = keys_.find_or_insert(ip_key_);
        Slot& s = e->slots[slot_index(e, fi, now_ms)];
        s.bucket.refill(rates_[fi], now_ms);
        if (f.block.enabled) {
            double n = s.failures.add(seconds_to_ms(f.block.window_s), now_ms);
            if (n + 1e-9 >= f.block.threshold && s.block_until <= now_ms) {
                s.block_until = now_ms + seconds_to_ms(f.block.duration_s);
                if (events != nullptr) events->push_back({f.name, n, f.block.duration_s, f.shadow});
            }
        }
        // Failures within the budget spend a token; one beyond it starts a
        // penalty (Retry-After) unless one is already running.
        if (!s.bucket.take() && s.penalty_until <= now_ms) s.penalty_until = now_ms + penalty_ms(f);
    }
}

size_t Limiter::trim(uint64_t now_ms, size_t max_checked) {
    return keys_.trim_cold(max_checked, [&](Entry& e) {
        for (Slot& s : e.slots) {
            const Rate& rate = rates_[s.rule];
            s.bucket.refill(rate, now_ms);
            if (s.bucket.tokens < rate.capacity || s.penalty_until > now_ms || s.block_until > now_ms) return false;
            const Rule& r = rules_[s.rule];
            if (r.block.enabled && !s.failures.idle(seconds_to_ms(r.block.window_s), now_ms)) return false;
        }
        return true;
    });
}

bool Limiter::inspect(std::string_view rule, std::string_view who, uint64_t now_ms, SlotView* out) {
    size_t ri = rules_.size();
    for (size_t i = 0; i < rules_.size(); ++i) {
        if (rules_[i].name == rule) ri = i;
    }
    if (ri == rules_.size()) return false;
    std::string key;
    if (rules_[ri].key == KeyKind::Identity) {
        if (who.size() < 2 || who[1] != ':') return false;
        key = "i" + std::string(who);
    } else {
        Address a;
        parse_address(who, &a);
        make_ip_key(a, who);
        key = ip_key_;
    }
    Entry* e = keys_.peek(key);
    if (e == nullptr) return false;
    for (Slot& s : e->slots) {
        if (s.rule != ri) continue;
        s.bucket.refill(rates_[ri], now_ms);
        *out = SlotView{s.bucket.tokens, s.penalty_until, s.block_until};
        return true;
    }
    return false;
}

}  // namespace ratelimit
