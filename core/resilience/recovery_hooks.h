// recovery.lua's answers, typed, with the safe defaults the node uses when
// the policy is missing, fails or answers outside its contract (counted as
// a policy error, never failing the work). Each call reads the generation
// running now, so an edit + SIGHUP changes the next decision.
//
//   PolicyRecoveryRules  action/backoff_ms/cooldown_ms/window of each task,
//                        for the supervisor
//   on_plugin_failure    a plugin's task tripped its breaker: disable it and
//                        alert (default), or fail closed
//   on_quorum_loss       a leader-only read without a leader: refuse
//                        (default) or serve it stale from this node
//   on_disk_full         below node.min_free_bytes as leader: hand
//                        leadership over (default) or stay
//   on_pin_mismatch      a peer failed its pin: seconds before dialling it
//                        again (default 60)
#pragma once

#include <string>
#include <string_view>

#include "policy/generation.h"
#include "policy/policy_host.h"
#include "resilience/supervisor.h"

namespace rampart::resilience {

namespace recovery_defaults {
inline constexpr double kWindowS = 60;
inline constexpr double kCooldownMs = 30'000;
inline constexpr double kPinMismatchHoldS = 60;
}  // namespace recovery_defaults

class PolicyRecoveryRules final : public RecoveryRules {
public:
    explicit PolicyRecoveryRules(const policy::PolicyHost& host) : host_(host) {}
    std::string action(std::string_view task, int failures, double window_s) override;
    double backoff_ms(int attempt, double rand01) override;
    double cooldown_ms(std::string_view task, int times_opened) override;
    double window_s(std::string_view task) override;

private:
    const policy::PolicyHost& host_;
};

enum class PluginFailure { Disable, FailClosed };
enum class QuorumLoss { Refuse, ServeStale };
enum class DiskFull { Transfer, Stay };

PluginFailure on_plugin_failure(const policy::Generation& g, std::string_view plugin, std::string_view task);
QuorumLoss on_quorum_loss(const policy::Generation& g);
DiskFull on_disk_full(const policy::Generation& g);
double on_pin_mismatch(const policy::Generation& g, std::string_view peer);

const char* plugin_failure_name(PluginFailure f);  // "disable", "fail_closed"

}  // namespace rampart::resilience
