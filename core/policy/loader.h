// Builds a generation from a directory of policies: every step that can
// refuse a reload (reading, compiling, running each file under the load
// budget, checking entry points, captures, probes, selftest) happens here,
// before anything is swapped. Internal to core/policy.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "policy/generation.h"
#include "policy/specs.h"

namespace rampart::policy {

inline constexpr size_t kMaxPolicyFileBytes = 1u << 20;

class GenerationBuilder {
public:
    GenerationBuilder(const Limits& limits, const std::vector<PolicySpec>& specs, std::shared_ptr<Counters> counters)
        : limits_(limits), specs_(specs), counters_(std::move(counters)) {}

    // A complete generation, or nullptr with every problem found, each as
    // "dir/file.lua:line: message" (file-level problems have no line).
    std::unique_ptr<Generation> build(const std::string& dir, uint64_t number, std::vector<std::string>* errors) const;

    // An empty generation: every call returns its fallback.
    std::unique_ptr<Generation> empty() const;

private:
    void load_file(Generation& g, const std::string& dir, const std::string& file,
                   std::vector<std::string>* errors) const;

    Limits limits_;
    std::vector<PolicySpec> specs_;
    std::shared_ptr<Counters> counters_;
};

}  // namespace rampart::policy
