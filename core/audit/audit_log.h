// audit.jsonl: the node's append-only record of security- and
// durability-relevant events (state migration, snapshot restores, and later
// joins and token changes). One JSON object per line:
//
//   {"audit_id":7,"ts":"2025-11-12T12:00:00.123Z","node_id":"node_1",
//    "event":"state_migration","fields":{"step":"backup","result":"ok"}}
//
// audit_id increases by one per event and survives restarts and rotation:
// open() takes the largest id found in the current file or, when that is
// empty, in the newest rotated one. The file rotates by size: audit.jsonl
// becomes audit.jsonl.1, .1 becomes .2, ... and the oldest beyond `keep` is
// removed. Each event is written with one write(2) on an O_APPEND descriptor
// and fsync'ed: events are rare (start, migration, restore, joins), and an
// audit trail that loses its last lines on a crash is not one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace rampart::audit {

struct Field {
    std::string key;
    std::variant<std::string, int64_t, bool> value;
};
using Fields = std::vector<Field>;

struct Options {
    std::string path;                                 // e.g. <data_dir>/audit.jsonl
    uint64_t max_bytes = uint64_t{10} * 1024 * 1024;  // node.audit_max_bytes: rotate before passing this
    unsigned keep = 5;                                // node.audit_keep: rotated files kept (0 = none)
    std::string node_id;
};

class AuditLog {
public:
    explicit AuditLog(Options options);
    ~AuditLog();
    AuditLog(const AuditLog&) = delete;
    AuditLog& operator=(const AuditLog&) = delete;

    // Open (creating with mode 0600) and find the last audit_id.
    bool open(std::string* error);
    // Append one event; returns its audit_id, or 0 with *error.
    uint64_t append(std::string_view event, const Fields& fields, std::string* error);

    uint64_t last_id() const { return last_id_; }
    const std::string& path() const { return options_.path; }
    bool is_open() const { return fd_ >= 0; }

    // The line append() would write (tests, and tools that print events).
    static std::string format(uint64_t id, int64_t unix_ms, std::string_view node_id, std::string_view event,
                              const Fields& fields);
    // The audit_id of a line, 0 if it has none.
    static uint64_t id_of_line(std::string_view line);

private:
    bool rotate(std::string* error);
    std::string rotated(unsigned n) const { return options_.path + "." + std::to_string(n); }

    Options options_;
    int fd_ = -1;
    uint64_t size_ = 0;
    uint64_t last_id_ = 0;
};

// RFC 3339 UTC with milliseconds: "2025-11-12T12:00:00.123Z".
std::string utc_timestamp(int64_t unix_ms);
int64_t now_unix_ms();

}  // namespace rampart::audit
