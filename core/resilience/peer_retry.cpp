#include "resilience/peer_retry.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "metrics/registry.h"
#include "policy/policy_host.h"
#include "policy/shipped.h"

namespace rampart::resilience {

struct PeerRetrier::Call {
    enum class Phase { Attempt, Waiting };

    Request request;
    std::shared_ptr<const policy::Generation> policy;  // the generation the request started with
    PeerRetryLimits limits;
    std::unique_ptr<Timer> timer;  // the attempt's deadline, or the wait before the next one
    Phase phase = Phase::Attempt;
    bool in_flight = false;  // an attempt was sent and has not been judged
    uint64_t serial = 0;     // tells a late `done` of an earlier attempt from the current one
    Abort abort;
    std::string peer;  // the current (or last) attempt's peer; "" for no peer
    std::string last_class;
    int attempts = 0;
};

const char* retry_end_name(RetryEnd end) {
    switch (end) {
        case RetryEnd::Answered: return "answered";
        case RetryEnd::BudgetExhausted: return "budget_exhausted";
        case RetryEnd::BreakerOpen: return "breaker_open";
        case RetryEnd::Cancelled: return "cancelled";
    }
    return "answered";
}

namespace {

// A positive finite number from a data table, or `otherwise` (counted).
double positive(const policy::Generation& g, const policy::PolicyValue& table, const char* field, double otherwise,
                double minimum) {
    const policy::PolicyValue& v = table[field];
    if (v.is_nil()) return otherwise;
    double d = v.as_number(NAN);
    if (!std::isfinite(d) || d < minimum) {
        g.reject("retry", std::string("retry data: ") + field + " must be a number >= " + std::to_string(minimum) +
                              "; using " + std::to_string(otherwise));
        return otherwise;
    }
    return d;
}

// Whether a class counts against the peer: it failed to serve. A 4xx is the
// request's fault, not the peer's.
bool peer_failed(const std::string& retry_class) { return retry_class != "success" && retry_class != "http_4xx"; }

}  // namespace

PeerRetryLimits peer_retry_limits(const policy::Generation& g) {
    PeerRetryLimits l;
    const policy::PolicyValue& budget = g.data("retry", "budget");
    if (budget.is_table()) {
        l.budget.max_tokens = positive(g, budget, "tokens", l.budget.max_tokens, 1);
        l.budget.refill = std::min(positive(g, budget, "refill", l.budget.refill, 0.001), l.budget.max_tokens);
    }
    const policy::PolicyValue& breaker = g.data("retry", "breaker");
    if (breaker.is_table()) {
        l.breaker.failure_threshold =
            static_cast<uint32_t>(positive(g, breaker, "failures", l.breaker.failure_threshold, 1));
        l.breaker.window_ms = static_cast<uint64_t>(
            1000 * positive(g, breaker, "window_s", static_cast<double>(l.breaker.window_ms) / 1000, 0.001));
        l.breaker.cooldown_ms = static_cast<uint64_t>(
            1000 * positive(g, breaker, "cooldown_s", static_cast<double>(l.breaker.cooldown_ms) / 1000, 0.001));
    }
    return l;
}

PeerRetrier::PeerRetrier(Clock& clock, const policy::PolicyHost& policies, Settings settings)
    : clock_(clock), policies_(policies), rand01_override_(std::move(settings.rand01)) {
    rng_.seed(settings.seed != 0 ? settings.seed : (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}());
    if (metrics::Registry* r = settings.registry) {
        requests_ = r->counter("rampart_peer_request_total", "Attempts of requests to peers, by outcome class",
                               {"peer", "status"});
        backoff_ = r->histogram("rampart_peer_backoff_seconds", "Waits before retrying a request to a peer", {},
                                {std::begin(kPeerBackoffBuckets), std::end(kPeerBackoffBuckets)});
        budget_exhausted_ = r->counter("rampart_retry_budget_exhausted_total",
                                       "Retries refused because the peer's retry budget was spent", {"peer"});
        breaker_state_ = r->gauge("rampart_peer_breaker_state",
                                  "The circuit breaker per peer: 0 closed, 1 half-open, 2 open", {"peer"});
        breaker_rejected_ = r->counter("rampart_peer_breaker_rejected_total",
                                       "Requests failed fast because the peer's breaker was open", {"peer"});
    }
}

PeerRetrier::~PeerRetrier() = default;

double PeerRetrier::rand01() {
    if (rand01_override_) return rand01_override_();
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
}

uint64_t PeerRetrier::parse_retry_after(const std::string* header) {
    if (header == nullptr || header->empty() || header->size() > 9) return 0;
    for (char c : *header) {
        if (c < '0' || c > '9') return 0;  // an HTTP-date: our peers never send one
    }
    return std::strtoull(header->c_str(), nullptr, 10) * 1000;
}

PeerRetrier::Peer& PeerRetrier::peer(const std::string& name, const PeerRetryLimits& limits) {
    auto [it, added] = peers_.try_emplace(name, Peer{RetryBudget(limits.budget), CircuitBreaker(limits.breaker), {}});
    Peer& p = it->second;
    if (!added) {
        p.budget.configure(limits.budget);
        p.breaker.configure(limits.breaker);
    } else {
        p.half_open = clock_.timer([this, name] {
            auto found = peers_.find(name);
            if (found != peers_.end()) show_breaker(name, found->second);
        });
    }
    return p;
}

void PeerRetrier::show_breaker(const std::string& name, Peer& p) {
    uint64_t now = clock_.now_ms();
    BreakerState s = p.breaker.state(now);
    if (breaker_state_ != nullptr) {
        double v = s == BreakerState::Closed ? 0 : s == BreakerState::HalfOpen ? 1 : 2;
        breaker_state_->set({name}, v);
    }
    if (s == BreakerState::Open) {
        p.half_open->start(p.breaker.retry_at_ms() > now ? p.breaker.retry_at_ms() - now : 0);
    } else {
        p.half_open->stop();
    }
}

BreakerState PeerRetrier::breaker_state(const std::string& name) const {
    auto it = peers_.find(name);
    return it == peers_.end() ? BreakerState::Closed : it->second.breaker.state(clock_.now_ms());
}

double PeerRetrier::budget_tokens(const std::string& name) const {
    auto it = peers_.find(name);
    return it == peers_.end() ? RetryBudgetSettings{}.max_tokens : it->second.budget.tokens();
}

uint64_t PeerRetrier::start(Request request) {
    uint64_t id = next_id_++;
    auto call = std::make_unique<Call>();
    call->request = std::move(request);
    call->policy = policies_.current();
    call->limits = peer_retry_limits(*call->policy);
    call->timer = clock_.timer([this, id] {
        auto it = calls_.find(id);
        if (it == calls_.end()) return;
        if (it->second->phase == Call::Phase::Attempt) {
            timed_out(id);
        } else {
            attempt(id);
        }
    });
    calls_.emplace(id, std::move(call));
    attempt(id);
    return id;
}

void PeerRetrier::cancel(uint64_t id) {
    auto it = calls_.find(id);
    if (it == calls_.end()) return;
    std::unique_ptr<Call> call = std::move(it->second);
    calls_.erase(it);
    if (call->in_flight && call->abort) call->abort();
}

void PeerRetrier::attempt(uint64_t id) {
    auto it = calls_.find(id);
    if (it == calls_.end()) return;
    Call* c = it->second.get();
    if (c->request.wanted && !c->request.wanted()) {
        finish(id, RetryEnd::Cancelled);
        return;
    }
    std::string target = c->request.target ? c->request.target() : std::string();
    c->peer = target;
    if (!target.empty() && c->request.guarded) {
        Peer& p = peer(target, c->limits);
        uint64_t now = clock_.now_ms();
        if (!p.breaker.allow(now)) {
            if (breaker_rejected_ != nullptr) breaker_rejected_->add({target}, 1);
            show_breaker(target, p);
            finish(id, RetryEnd::BreakerOpen, p.breaker.retry_at_ms() > now ? p.breaker.retry_at_ms() - now : 0);
            return;
        }
        show_breaker(target, p);  // a trial moves it to half-open
    }
    c->attempts++;
    c->phase = Call::Phase::Attempt;
    c->in_flight = true;
    uint64_t serial = ++c->serial;
    if (target.empty()) {
        c->in_flight = false;
        judge(id, PeerOutcome{0, "no_peer", 0});
        return;
    }
    auto budget_ms = static_cast<uint64_t>(policy::request_budget_ms(*c->policy));
    c->timer->start(budget_ms);
    std::weak_ptr<int> alive = alive_;
    Abort abort = c->request.send(target, [this, alive, id, serial](const PeerOutcome& o) {
        if (!alive.expired()) outcome(id, serial, o);
    });
    // `done` may have run inside send: keep the abort only for an attempt still out.
    it = calls_.find(id);
    if (it != calls_.end() && it->second->in_flight && it->second->serial == serial)
        it->second->abort = std::move(abort);
}

void PeerRetrier::outcome(uint64_t id, uint64_t serial, const PeerOutcome& o) {
    auto it = calls_.find(id);
    if (it == calls_.end()) return;
    Call* c = it->second.get();
    if (!c->in_flight || c->serial != serial) return;  // timed out or cancelled meanwhile
    c->in_flight = false;
    c->abort = nullptr;
    c->timer->stop();
    judge(id, o);
}

void PeerRetrier::timed_out(uint64_t id) {
    auto it = calls_.find(id);
    if (it == calls_.end() || !it->second->in_flight) return;
    it->second->in_flight = false;
    Abort abort = std::move(it->second->abort);
    if (abort) abort();
    judge(id, PeerOutcome{0, "timeout", 0});
}

void PeerRetrier::judge(uint64_t id, const PeerOutcome& o) {
    auto it = calls_.find(id);
    if (it == calls_.end()) return;
    Call* c = it->second.get();
    const policy::Generation& g = *c->policy;
    std::string retry_class = policy::classify(g, policy::RequestOutcome{o.status, o.error});
    c->last_class = retry_class;
    Peer* p = nullptr;
    if (!c->peer.empty() && requests_ != nullptr) requests_->add({c->peer, retry_class}, 1);
    if (!c->peer.empty() && c->request.guarded) {
        p = &peer(c->peer, c->limits);
        uint64_t now = clock_.now_ms();
        if (o.not_applied) {
            p->budget.record_failure();
        } else if (peer_failed(retry_class)) {
            p->budget.record_failure();
            p->breaker.record_failure(now);
        } else {
            p->budget.record_success();
            p->breaker.record_success(now);
        }
        show_breaker(c->peer, *p);
    }
    bool capped = c->request.max_attempts > 0 && c->attempts >= c->request.max_attempts;
    if (retry_class == "success" || capped ||
        !policy::should_retry(g, retry_class, c->attempts, c->request.idempotent || o.not_applied)) {
        finish(id, RetryEnd::Answered);
        return;
    }
    if (p != nullptr && !p->budget.allows_retry()) {
        if (budget_exhausted_ != nullptr) budget_exhausted_->add({c->peer}, 1);
        finish(id, RetryEnd::BudgetExhausted);
        return;
    }
    double delay = policy::backoff_delay_ms(g, c->attempts, rand01());
    if (o.retry_after_ms > 0) {
        // The peer knows when it will be back; never wait longer than the
        // policy's own longest delay, so a peer cannot park our requests.
        double cap = policy::backoff_delay_ms(g, policy::defaults::kMaxAttempts, 1.0);
        delay = std::max(delay, std::min(static_cast<double>(o.retry_after_ms), cap));
    }
    auto wait_ms = static_cast<uint64_t>(std::llround(std::max(delay, 0.0)));
    if (backoff_ != nullptr) backoff_->observe(metrics::LabelValues{}, static_cast<double>(wait_ms) / 1000);
    c->phase = Call::Phase::Waiting;
    c->timer->start(wait_ms);
}

void PeerRetrier::finish(uint64_t id, RetryEnd end, uint64_t retry_after_ms) {
    auto it = calls_.find(id);
    if (it == calls_.end()) return;
    std::unique_ptr<Call> call = std::move(it->second);
    calls_.erase(it);
    RetryResult r;
    r.end = end;
    r.retry_class = call->last_class;
    r.peer = call->peer;
    r.attempts = call->attempts;
    r.retry_after_ms = retry_after_ms;
    if (call->request.finish) call->request.finish(r);
}

}  // namespace rampart::resilience
