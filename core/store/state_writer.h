// The state's snapshot payload (store/state_snapshot.cpp), written piece by
// piece: StateMachine::serialize() runs it to the end in one string, and
// GET /v1/snapshot pulls pieces as the client drains them, so the store is
// never copied whole a second time (issue 5: a router has little RAM).
#pragma once

#include <cstddef>
#include <string>

#include "store/state_machine.h"

namespace rampart::store {

class StateWriter {
public:
    // `state` must stay alive and unchanged while the writer is used: hold
    // its Version (the state is copy-on-write, so a held version never
    // changes).
    explicit StateWriter(const State& state);

    // Append the next piece to `out`: whole items (entries, records, the
    // catalog and token sections) until about `budget` bytes, at least one
    // item. False, appending nothing, once the payload is complete.
    bool next(std::string& out, size_t budget);

private:
    enum class Phase { Head, Kv, Dedup, Done };
    const State& s_;
    Phase phase_ = Phase::Head;
    KvMap::const_iterator kv_;
    DedupTable::Records::const_iterator dedup_;
};

}  // namespace rampart::store
