#include "policy/policy_host.h"

#include "policy/loader.h"

namespace rampart::policy {

PolicyHost::PolicyHost(Limits limits, std::vector<PolicySpec> specs)
    : limits_(limits), specs_(std::move(specs)), counters_(std::make_shared<Counters>()) {
    current_ = GenerationBuilder(limits_, specs_, counters_).empty();
}

LoadReport PolicyHost::build(const std::string& dir, std::unique_ptr<Generation>* out) const {
    LoadReport report;
    std::vector<std::string> errors;
    *out = GenerationBuilder(limits_, specs_, counters_).build(dir, next_number_, &errors);
    for (const std::string& e : errors) report.errors.push_back("policy reload halted: " + e);
    report.ok = *out != nullptr;
    if (report.ok) report.policies = (*out)->policies();
    return report;
}

LoadReport PolicyHost::load(const std::string& dir) {
    std::unique_ptr<Generation> next;
    LoadReport report = build(dir, &next);
    if (report.ok) {
        ++next_number_;
        current_ = std::shared_ptr<const Generation>(std::move(next));
        ++counters_->reloads_ok;
    } else {
        ++counters_->reloads_failed;
    }
    report.generation = current_->number();
    return report;
}

LoadReport PolicyHost::check(const std::string& dir) const {
    std::unique_ptr<Generation> next;
    LoadReport report = build(dir, &next);
    report.generation = current_->number();
    return report;
}

const PolicyCounters& PolicyHost::counters(std::string_view policy) const {
    static const PolicyCounters none;
    auto it = counters_->policies.find(policy);
    return it == counters_->policies.end() ? none : it->second;
}

void PolicyHost::set_error_sink(std::function<void(std::string_view, std::string_view)> sink) {
    counters_->on_error = std::move(sink);
}

}  // namespace rampart::policy
