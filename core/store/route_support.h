// What the KV routes do for every store request, shared with the store's
// other routes (services, health): defined in kv_routes.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "http/response.h"
#include "store/command.h"
#include "store/result.h"
#include "store/store.h"

namespace rampart::http {
class Exchange;
}

namespace rampart::store {

class Query;

// Blocking reads wait at most this long (brief: 5 minutes).
inline constexpr uint64_t kMaxBlockingWaitMs = uint64_t{5} * 60 * 1000;

// Propose `cmd` for the request: limits (413), the leader's clock and the
// Idempotency-Key meta (400 when malformed), engine failures (503/507),
// refused results (400 Invalid, 422 key reused, 507 store full); any other
// result goes to `answer`. Adds X-Rampart-Index and Idempotent-Replayed.
using WriteAnswer = std::function<http::Response(const Result&)>;
void propose_write(Store& store, const std::shared_ptr<http::Exchange>& ex, Command cmd, WriteAnswer answer);

// The answer for a request the engine failed with `status` (503 with
// Retry-After, 507, ...).
http::Response read_failure(int status);
// X-Rampart-Index, X-Consul-Index and the headers Consul's clients expect.
void add_read_index(http::Response& r, uint64_t index);
// ?consistency=stale|default|strong, ?stale, ?consistent.
bool parse_read_consistency(const Query& q, Consistency* out, std::string* error);
// A blocking read's wait spread by ±1/16.
uint64_t jittered_wait(uint64_t ms);

}  // namespace rampart::store
