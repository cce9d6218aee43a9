#include "cluster/lost_log_watch.h"

bool rampart_lost_log_observe(struct rampart_lost_log_watch* w, uint64_t term, uint64_t member, uint64_t last_log_index,
                              uint64_t match_index) {
    if (w->acted_in == term) return false;
    const bool below = last_log_index < match_index;
    if (member != w->member) {
        if (!below) return false;
        w->member = member;
        w->answers = 0;
    }
    if (!below) {
        w->answers = 0;
        return false;
    }
    if (++w->answers < RAMPART_LOST_LOG_ANSWERS) return false;
    w->answers = 0;
    w->acted_in = term;
    return true;
}
