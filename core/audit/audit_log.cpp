#include "audit/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>

#include "util/file_io.h"
#include "util/json.h"

namespace rampart::audit {
namespace {

std::string errno_text(const std::string& what) { return what + ": " + strerror(errno); }

// The largest audit_id in a file; 0 when none (missing, empty, or only a
// torn last line from a crash).
uint64_t max_id_in(const std::string& path) {
    uint64_t best = 0;
    util::for_each_line(path, [&best](std::string_view line) {
        uint64_t id = AuditLog::id_of_line(line);
        if (id > best) best = id;
    });
    return best;
}

}  // namespace

int64_t now_unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string utc_timestamp(int64_t unix_ms) {
    time_t secs = static_cast<time_t>(unix_ms / 1000);
    struct tm tm {};
    gmtime_r(&secs, &tm);
    char buf[64];  // room for any int fields, so the format is never cut
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
    return buf;
}

AuditLog::AuditLog(Options options) : options_(std::move(options)) {}

AuditLog::~AuditLog() {
    if (fd_ >= 0) ::close(fd_);
}

std::string AuditLog::format(uint64_t id, int64_t unix_ms, std::string_view node_id, std::string_view event,
                             const Fields& fields) {
    std::string out = "{\"audit_id\":" + std::to_string(id) + ",\"ts\":\"" + utc_timestamp(unix_ms) + "\"";
    out += ",\"node_id\":";
    util::json_string_append(out, node_id);
    out += ",\"event\":";
    util::json_string_append(out, event);
    out += ",\"fields\":{";
    bool first = true;
    for (const Field& f : fields) {
        if (!first) out += ',';
        first = false;
        util::json_string_append(out, f.key);
        out += ':';
        if (const auto* s = std::get_if<std::string>(&f.value)) {
            util::json_string_append(out, *s);
        } else if (const auto* i = std::get_if<int64_t>(&f.value)) {
            out += std::to_string(*i);
        } else {
            out += std::get<bool>(f.value) ? "true" : "false";
        }
    }
    out += "}}\n";
    return out;
}

// Lines are written by format() only: the id is the first member.
uint64_t AuditLog::id_of_line(std::string_view line) {
    constexpr std::string_view kPrefix = "{\"audit_id\":";
    if (line.substr(0, kPrefix.size()) != kPrefix || line.empty() || line.back() != '}') return 0;
    line.remove_prefix(kPrefix.size());
    uint64_t id = 0;
    auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), id);
    if (ec != std::errc() || p == line.data() || *p != ',') return 0;
    return id;
}

bool AuditLog::open(std::string* error) {
    if (fd_ >= 0) return true;
    fd_ = ::open(options_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) {
        *error = errno_text(options_.path);
        return false;
    }
    struct stat st {};
    if (fstat(fd_, &st) != 0) {
        *error = errno_text(options_.path);
        ::close(fd_);
        fd_ = -1;
        return false;
    }
    size_ = static_cast<uint64_t>(st.st_size);
    last_id_ = max_id_in(options_.path);
    // Just rotated (or a torn first line): the ids continue from the newest
    // rotated file that has any.
    for (unsigned n = 1; last_id_ == 0 && n <= options_.keep; n++) last_id_ = max_id_in(rotated(n));
    return true;
}

bool AuditLog::rotate(std::string* error) {
    ::close(fd_);
    fd_ = -1;
    if (options_.keep == 0) {
        if (::unlink(options_.path.c_str()) != 0 && errno != ENOENT) {
            *error = errno_text(options_.path);
            return false;
        }
    } else {
        ::unlink(rotated(options_.keep).c_str());
        for (unsigned n = options_.keep; n > 1; n--) ::rename(rotated(n - 1).c_str(), rotated(n).c_str());
        if (::rename(options_.path.c_str(), rotated(1).c_str()) != 0) {
            *error = errno_text(options_.path);
            return false;
        }
    }
    fd_ = ::open(options_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) {
        *error = errno_text(options_.path);
        return false;
    }
    size_ = 0;
    return true;
}

uint64_t AuditLog::append(std::string_view event, const Fields& fields, std::string* error) {
    if (fd_ < 0 && !open(error)) return 0;
    uint64_t id = last_id_ + 1;
    std::string line = format(id, now_unix_ms(), options_.node_id, event, fields);
    if (size_ > 0 && size_ + line.size() > options_.max_bytes && !rotate(error)) return 0;
    if (!util::write_all(fd_, line) || ::fsync(fd_) != 0) {
        *error = errno_text(options_.path);
        // Drop a torn line, so the next event starts on a line of its own.
        if (ftruncate(fd_, static_cast<off_t>(size_)) != 0) *error += " (and the torn line stays)";
        return 0;
    }
    size_ += line.size();
    last_id_ = id;
    return id;
}

}  // namespace rampart::audit
