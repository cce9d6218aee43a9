// The replicated membership state (issue 6): join tokens, stored by the
// SHA-256 of their secret, and the members that joined or left through the
// log. Every node applies the same records to the same tables; the leader's
// membership manager (cluster/membership_manager.h) turns the member table
// into the engine's configuration.
//
// Members bootstrapped from etc/peers.yml are not in the table until they
// leave: the table records what changed, the engine's configuration is who
// is a member.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "store/membership_record.h"
#include "store/result.h"

namespace rampart::store {

struct JoinToken {
    std::string id;
    std::string hash;
    MemberRole role = MemberRole::Voter;
    uint64_t max_uses = 1;  // 0 = unlimited until expiry
    uint64_t uses = 0;
    uint64_t create_index = 0;
    uint64_t create_ms = 0;
    uint64_t expires_ms = 0;
    bool used_up() const { return max_uses != 0 && uses >= max_uses; }
};

struct MemberRecord {
    std::string node_id;
    uint64_t raft_id = 0;  // 0 once left
    std::string address;
    MemberRole role = MemberRole::Voter;  // the role granted at join
    bool left = false;
    uint64_t index = 0;  // the entry that last changed it
};

class MembershipState {
public:
    static constexpr size_t kMaxTokens = 256;
    static constexpr size_t kMaxMembers = 4096;

    // Apply one record at `index` (deterministic). Failed with the reason
    // for a join the token does not allow ("join token expired", ...).
    Result apply(uint64_t index, const MembershipRecord& record);

    const JoinToken* token_by_hash(std::string_view hash) const;
    const std::map<std::string, JoinToken, std::less<>>& tokens() const { return tokens_; }
    const MemberRecord* member(std::string_view node_id) const;
    const std::map<std::string, MemberRecord, std::less<>>& members() const { return members_; }

    // Why a join with this token would be refused at `now_ms`, or "".
    std::string join_refusal(const JoinToken* token, uint64_t now_ms) const;

    // The snapshot section (store/state_snapshot.cpp, format 4).
    std::string serialize() const;
    bool restore(std::string_view bytes);

private:
    void expire(uint64_t now_ms);

    std::map<std::string, JoinToken, std::less<>> tokens_;      // by id
    std::map<std::string, MemberRecord, std::less<>> members_;  // by node id
};

// Granted role: the token's, or less if the node asks for less.
MemberRole granted_role(MemberRole token_role, MemberRole asked);

}  // namespace rampart::store
