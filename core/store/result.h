// What applying a command produced: the deterministic answer every node
// computes for the same entry, handed to the request that proposed it and
// kept by idempotency records.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "store/entry.h"

namespace rampart::store {

// Numbers are snapshot format: never renumber.
enum class Outcome : uint8_t {
    Ok = 0,         // applied (PUT/DELETE answer true; txn committed)
    Failed = 1,     // a CAS or check did not hold: PUT/DELETE false, txn rolled back (409)
    StoreFull = 2,  // over the store size cap: nothing changed (507)
    Invalid = 3,    // a command this state machine refuses (bad key, unsupported type)
    KeyReused = 4,  // idempotency key seen with another request fingerprint (422)
};

// One txn result, as Consul returns it: the entry after the operation, with
// its value only for get and get-tree.
struct TxnResult {
    std::string key;
    EntryPtr entry;
    bool with_value = false;
};

struct TxnError {
    uint32_t op_index = 0;
    std::string what;
};

struct Result {
    Outcome outcome = Outcome::Ok;
    std::string error;  // why, for StoreFull / Invalid / KeyReused
    std::vector<TxnResult> results;
    std::vector<TxnError> errors;
    // Set on the copy handed out for an idempotent duplicate: the stored
    // answer of the first request; this entry changed nothing.
    bool replayed = false;

    // Roughly what keeping this result costs, for the records' byte budget.
    size_t byte_size() const;

    // A command that did not apply: its outcome and why.
    static Result failure(Outcome outcome, std::string why) {
        Result r;
        r.outcome = outcome;
        r.error = std::move(why);
        return r;
    }
};

}  // namespace rampart::store
