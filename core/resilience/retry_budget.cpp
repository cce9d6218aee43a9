#include "resilience/retry_budget.h"

#include <algorithm>

namespace rampart::resilience {

void RetryBudget::record_failure() { tokens_ = std::max(0.0, tokens_ - 1); }

void RetryBudget::record_success() { tokens_ = std::min(settings_.max_tokens, tokens_ + settings_.refill); }

void RetryBudget::configure(RetryBudgetSettings settings) {
    settings_ = settings;
    tokens_ = std::min(tokens_, settings_.max_tokens);
}

}  // namespace rampart::resilience
