#include "log.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <ctime>

#include "util/json.h"

namespace rampart::log {
namespace {

Settings g_settings;
int64_t g_sample_counter = 0;

int64_t now_unix_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// RFC 3339 UTC with milliseconds: 2026-11-23T20:37:52.123Z
void append_timestamp(std::string& out, int64_t unix_ms) {
    time_t secs = static_cast<time_t>(unix_ms / 1000);
    struct tm tm_utc;
    gmtime_r(&secs, &tm_utc);
    char buf[40];
    int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm_utc.tm_year + 1900, tm_utc.tm_mon + 1,
                     tm_utc.tm_mday, tm_utc.tm_hour, tm_utc.tm_min, tm_utc.tm_sec, static_cast<int>(unix_ms % 1000));
    out.append(buf, static_cast<size_t>(n));
}

void append_number(std::string& out, const Field& f) {
    char buf[40];
    int n = 0;
    if (f.kind == Field::Kind::Double) {
        n = snprintf(buf, sizeof buf, "%.3f", f.dbl);
    } else {
        n = snprintf(buf, sizeof buf, "%" PRId64, f.num);
    }
    out.append(buf, static_cast<size_t>(n));
}

void append_json_field(std::string& out, const Field& f) {
    out += ",\"";
    util::json_escape_append(out, f.key);
    out += "\":";
    switch (f.kind) {
        case Field::Kind::String: util::json_string_append(out, f.str); break;
        case Field::Kind::Bool: out += f.num ? "true" : "false"; break;
        default: append_number(out, f);
    }
}

// Console values are quoted only when they contain spaces or quotes, so
// lines stay readable and still split unambiguously.
void append_console_field(std::string& out, const Field& f) {
    out += ' ';
    out += f.key;
    out += '=';
    if (f.kind == Field::Kind::String) {
        bool needs_quotes = f.str.empty() || f.str.find_first_of(" \"=") != std::string_view::npos;
        if (needs_quotes) {
            util::json_string_append(out, f.str);
        } else {
            util::json_escape_append(out, f.str);
        }
    } else if (f.kind == Field::Kind::Bool) {
        out += f.num ? "true" : "false";
    } else {
        append_number(out, f);
    }
}

}  // namespace

bool parse_level(std::string_view s, Level* out) {
    if (s == "debug")
        *out = Level::Debug;
    else if (s == "info")
        *out = Level::Info;
    else if (s == "warn")
        *out = Level::Warn;
    else if (s == "error")
        *out = Level::Error;
    else
        return false;
    return true;
}

bool parse_format(std::string_view s, Format* out) {
    if (s == "json")
        *out = Format::Json;
    else if (s == "console")
        *out = Format::Console;
    else
        return false;
    return true;
}

const char* level_name(Level level) {
    switch (level) {
        case Level::Debug: return "debug";
        case Level::Info: return "info";
        case Level::Warn: return "warn";
        default: return "error";
    }
}

void configure(const Settings& settings) { g_settings = settings; }
const Settings& settings() { return g_settings; }

bool sample() {
    if (g_settings.sampling <= 1) return true;
    return (g_sample_counter++ % g_settings.sampling) == 0;
}

std::string format_line(Level level, std::string_view msg, std::initializer_list<Field> fields, int64_t unix_ms) {
    std::string line;
    line.reserve(256);
    if (g_settings.format == Format::Json) {
        line += "{\"ts\":\"";
        append_timestamp(line, unix_ms);
        line += "\",\"level\":\"";
        line += level_name(level);
        line += "\",\"msg\":";
        util::json_string_append(line, msg);
        if (!g_settings.node_id.empty()) append_json_field(line, Field("node_id", g_settings.node_id));
        for (const Field& f : fields) append_json_field(line, f);
        line += "}\n";
    } else {
        append_timestamp(line, unix_ms);
        line += ' ';
        line += level_name(level);
        line += ' ';
        util::json_escape_append(line, msg);
        for (const Field& f : fields) append_console_field(line, f);
        line += '\n';
    }
    return line;
}

void write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
    std::string line = format_line(level, msg, fields, now_unix_ms());
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(g_settings.fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // a full or closed log sink must not stop the daemon
        p += n;
        left -= static_cast<size_t>(n);
    }
}

}  // namespace rampart::log
