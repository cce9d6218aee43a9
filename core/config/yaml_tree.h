// A small YAML tree for the configuration loader: mappings, sequences and
// scalars, each with the 1-based line:column where it starts.
//
// Built on libyaml's event API with limits, so that a hostile file costs
// bounded time and memory: at most kMaxYamlBytes of input and
// kMaxYamlDepth levels of nesting; anchors, aliases and explicit tags are
// refused ("billion laughs" needs aliases). Duplicate mapping keys, which
// libyaml accepts silently, are reported. Parsing stops at the first
// syntax error, but what was read before it is kept so the loader can
// still report problems in that part.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace rampart::config {

inline constexpr size_t kMaxYamlBytes = size_t{1} << 20;
inline constexpr int kMaxYamlDepth = 32;
inline constexpr size_t kMaxYamlErrors = 100;

struct YamlEntry;

struct YamlNode {
    enum class Kind { Scalar, Mapping, Sequence };
    Kind kind = Kind::Scalar;
    int line = 0;
    int column = 0;
    std::string scalar;              // Scalar: the text
    bool plain = true;               // Scalar: unquoted, so "", "~" and "null" mean null
    std::vector<YamlEntry> entries;  // Mapping, in file order, without duplicates
    std::vector<YamlNode> items;     // Sequence

    // An unquoted empty, "~" or "null" scalar (YAML's null).
    bool is_null() const;
};

struct YamlEntry {
    std::string key;
    int line = 0;  // of the key
    int column = 0;
    YamlNode value;
};

struct YamlError {
    int line = 0;  // 0 when the problem has no position (e.g. the size)
    int column = 0;
    std::string key;  // dotted path of the mapping key involved, if any
    std::string message;
};

struct YamlDocument {
    YamlNode root;  // a Mapping; empty for an empty file
    std::vector<YamlError> errors;
};

// Read a YAML file of at most kMaxYamlBytes (larger ones are refused
// unread). On failure *why says so: "cannot open: <errno text>", "not a
// regular file", "cannot read: ...", "larger than the limit ...".
bool read_yaml_file(const std::string& path, std::string* text, std::string* why);

// Never throws (allocation failure aside); every problem is in `errors`.
YamlDocument parse_yaml(std::string_view text);

// `text` escaped and cut short for a diagnostic: control bytes, quotes and
// non-ASCII as \xNN, at most 64 bytes, in double quotes.
std::string quote_for_message(std::string_view text);

}  // namespace rampart::config
