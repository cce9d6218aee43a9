// Structured logging: JSON lines (default) or console text on stderr.
//
// Callers pass typed fields; the logger never sees a request's headers, so
// Authorization values and tokens cannot reach a log line by accident.
// Only the loop thread logs (no locking); lines are written with one
// write(2) each so that concurrent processes never interleave a line.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace rampart::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };
enum class Format { Json, Console };

bool parse_level(std::string_view s, Level* out);
bool parse_format(std::string_view s, Format* out);
const char* level_name(Level level);

struct Field {
    enum class Kind { String, Int, Double, Bool };
    std::string_view key;
    Kind kind;
    std::string_view str{};
    int64_t num = 0;
    double dbl = 0;

    Field(std::string_view k, std::string_view v) : key(k), kind(Kind::String), str(v) {}
    Field(std::string_view k, const char* v) : key(k), kind(Kind::String), str(v ? v : "") {}
    Field(std::string_view k, const std::string& v) : key(k), kind(Kind::String), str(v) {}
    Field(std::string_view k, int v) : key(k), kind(Kind::Int), num(v) {}
    Field(std::string_view k, long v) : key(k), kind(Kind::Int), num(v) {}
    Field(std::string_view k, long long v) : key(k), kind(Kind::Int), num(v) {}
    Field(std::string_view k, unsigned v) : key(k), kind(Kind::Int), num(v) {}
    Field(std::string_view k, unsigned long v) : key(k), kind(Kind::Int), num(static_cast<int64_t>(v)) {}
    Field(std::string_view k, double v) : key(k), kind(Kind::Double), dbl(v) {}
    Field(std::string_view k, bool v) : key(k), kind(Kind::Bool), num(v ? 1 : 0) {}
};

struct Settings {
    Level level = Level::Info;
    Format format = Format::Json;
    int64_t sampling = 100;  // 1 in N for high-volume routes at info
    std::string node_id;
    int fd = 2;
};

void configure(const Settings& settings);
const Settings& settings();

inline bool enabled(Level level) { return level >= settings().level; }

// True once every `sampling` calls: high-volume successful requests log
// only when this says so. Errors never go through it.
bool sample();

void write(Level level, std::string_view msg, std::initializer_list<Field> fields = {});

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
    if (enabled(Level::Debug)) write(Level::Debug, m, f);
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
    if (enabled(Level::Info)) write(Level::Info, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
    if (enabled(Level::Warn)) write(Level::Warn, m, f);
}
inline void error(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::Error, m, f); }

// Format one line without writing it (tests use this).
std::string format_line(Level level, std::string_view msg, std::initializer_list<Field> fields, int64_t unix_ms);

}  // namespace rampart::log
