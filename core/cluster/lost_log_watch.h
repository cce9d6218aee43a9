/* A member whose data directory was wiped (or replaced by an older copy)
 * and that comes back under its old Raft id (no join token) answers the
 * leader's appends below the index it had acknowledged. libraft 0.22.1
 * never refills such a node:
 *  - while it streams to the node (pipeline), it takes the rejections for
 *    stale ones and ignores them;
 *  - once it probes the node (after an election timeout without contact),
 *    a rejection steps its next index below the match index it keeps
 *    (match never goes back), after which it sends the node only empty
 *    heartbeats (the in-flight count underflows) that the node accepts:
 *    successful answers, still below the match index.
 * A new leader starts every follower's progress afresh, so the adapter
 * hands leadership over when one member gives such answers, rejected or
 * not, several times in a row; once per term. One answer could be a stale
 * one from an old connection; three in a row are not.
 *
 * Pure bookkeeping, no libraft: raft_adapter.c feeds it every
 * AppendEntries result of its term while it leads. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { RAMPART_LOST_LOG_ANSWERS = 3 };

struct rampart_lost_log_watch {
    uint64_t member;   /* the member answering below, 0: none */
    unsigned answers;  /* its such answers in a row */
    uint64_t acted_in; /* the term in which it was acted on */
};

/* One answer of `member` in `term`: its last log index and the match index
 * the leader keeps for it. True when the leader should act now. */
bool rampart_lost_log_observe(struct rampart_lost_log_watch* w, uint64_t term, uint64_t member, uint64_t last_log_index,
                              uint64_t match_index);

#ifdef __cplusplus
}
#endif
