// The services catalog with TTL checks (issue 5; Consul's agent, catalog
// and health endpoints): part of the replicated state, applied by the
// state machine at Raft indexes.
//
// Time is the leader's: every log entry carries the leader's wall clock
// (Meta::leader_ms), and the catalog's clock is the newest such value
// applied, so it never goes back and is the same on every node at the same
// index. A check whose TTL has lapsed by that clock turns critical while
// the entry is applied; the leader proposes a cheap noop when the earliest
// deadline passes (CheckTicker) so that happens on time even when nothing
// else is written. Reads only ever show applied state.
//
// Entries are immutable once in the maps (shared_ptr<const>), so a
// copy-on-write State copies pointers, not services.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/command.h"
#include "store/result.h"

namespace rampart::store {

struct ServiceEntry {
    std::string id;
    std::string name;
    std::string address;
    uint16_t port = 0;
    std::vector<std::string> tags;
    std::vector<std::pair<std::string, std::string>> meta;
    std::vector<std::string> checks;  // ids of its checks, sorted
    uint64_t create_index = 0;
    uint64_t modify_index = 0;
};
using ServicePtr = std::shared_ptr<const ServiceEntry>;

struct CheckEntry {
    std::string id;
    std::string name;
    std::string notes;
    std::string service_id;
    uint64_t ttl_ms = 0;
    CheckStatus status = CheckStatus::Critical;
    std::string output;
    // Catalog clock at the last status update: the TTL runs from here.
    uint64_t updated_ms = 0;
    uint64_t create_index = 0;
    uint64_t modify_index = 0;  // moves only when status or output change
};
using CheckPtr = std::shared_ptr<const CheckEntry>;

inline constexpr uint64_t kNoDeadline = std::numeric_limits<uint64_t>::max();
// Longest TTL accepted: a week (a bound, so deadlines never overflow).
inline constexpr uint64_t kMaxCheckTtlMs = uint64_t{7} * 24 * 3600 * 1000;

struct Catalog {
    std::map<std::string, ServicePtr, std::less<>> services;  // by service id
    std::map<std::string, CheckPtr, std::less<>> checks;      // by check id
    uint64_t index = 0;                                       // last Raft index that changed what reads show
    uint64_t clock_ms = 0;                                    // newest leader time applied; never goes back
    uint64_t bytes = 0;                                       // strings held, counted toward cluster.max_store_bytes
    // Earliest TTL deadline of a passing or warning check (derived).
    uint64_t next_deadline_ms = kNoDeadline;
};

// ---- applying (deterministic, never fails: problems are Results) ----------

// Advance the clock to `leader_ms` (if newer) and turn every check whose TTL
// has lapsed critical at `index`. Runs for every applied entry; O(1) unless
// a deadline has passed.
void catalog_advance_clock(Catalog& c, uint64_t index, uint64_t leader_ms);

// Register or replace a service and its checks (Consul's agent semantics:
// checks that keep their id keep their status and output; checks no longer
// listed go). StoreFull when the catalog would grow past `max_bytes`
// counting `kv_bytes`; Invalid for a bad definition; nothing changes and the
// index stays when the definition is what is already there.
Result catalog_register(Catalog& c, uint64_t index, const ServiceRegister& r, uint64_t kv_bytes, uint64_t max_bytes);
// Failed ("unknown service id") when there is no such service.
Result catalog_deregister(Catalog& c, uint64_t index, const ServiceDeregister& d);
// Set status and output; restarts the TTL. Failed for an unknown check.
// The index moves only when status or output change, so heartbeats do not
// wake blocking readers.
Result catalog_update_check(Catalog& c, uint64_t index, const CheckPass& p);

// Why a definition is not acceptable (for a 400), empty when it is. The
// HTTP layer checks before proposing, apply checks again.
std::string check_service_definition(const ServiceRegister& r);
// A note/output: valid UTF-8 within Limits::kNote.
std::string check_output(std::string_view note);

// ---- reads -------------------------------------------------------------------

// Services with this name, by id.
std::vector<ServicePtr> services_named(const Catalog& c, std::string_view name);
std::vector<CheckPtr> checks_of(const Catalog& c, const ServiceEntry& s);
const char* status_name(CheckStatus s);
// "passing", "warning", "critical" (Consul's spelling); false otherwise.
bool parse_status(std::string_view text, CheckStatus* out);

// ---- snapshots ---------------------------------------------------------------

std::string serialize_catalog(const Catalog& c);
// Replace *out; false (and *out untouched) on any malformed byte.
bool parse_catalog(std::string_view bytes, Catalog* out);

}  // namespace rampart::store
