#include "config/yaml_tree.h"

#include <sys/stat.h>
#include <yaml.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_map>

namespace rampart::config {
namespace {

// libyaml structs live on the stack; these guards only release what
// yaml_*_initialize / yaml_parser_parse allocated inside them.
struct ParserDeleter {
    void operator()(yaml_parser_t* parser) const { yaml_parser_delete(parser); }
};
struct EventDeleter {
    void operator()(yaml_event_t* event) const { yaml_event_delete(event); }
};
using ParserGuard = std::unique_ptr<yaml_parser_t, ParserDeleter>;
using EventGuard = std::unique_ptr<yaml_event_t, EventDeleter>;

int line_of(const yaml_mark_t& mark) { return static_cast<int>(mark.line) + 1; }
int column_of(const yaml_mark_t& mark) { return static_cast<int>(mark.column) + 1; }

std::string join_path(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

// Turns the event stream into a YamlNode tree. Every build step returns
// false once parsing must stop (syntax error or a refused construct);
// what was built until then stays in the tree.
class Builder {
public:
    explicit Builder(std::string_view text) : text_(text) {}

    YamlDocument run() {
        doc_.root.kind = YamlNode::Kind::Mapping;
        yaml_parser_t parser;
        if (!yaml_parser_initialize(&parser)) {
            add_error(0, 0, "", "out of memory starting the YAML parser");
            return std::move(doc_);
        }
        ParserGuard guard(&parser);
        parser_ = &parser;
        yaml_parser_set_input_string(parser_, reinterpret_cast<const unsigned char*>(text_.data()), text_.size());
        parse_stream();
        return std::move(doc_);
    }

private:
    void parse_stream() {
        yaml_event_t event;
        if (!next(&event)) return;  // STREAM_START
        EventGuard stream_start(&event);
        yaml_event_t doc_start;
        if (!next(&doc_start)) return;
        EventGuard doc_guard(&doc_start);
        if (doc_start.type != YAML_DOCUMENT_START_EVENT) return;  // empty stream
        if (!parse_root()) return;
        yaml_event_t doc_end;  // DOCUMENT_END
        if (!next(&doc_end)) return;
        EventGuard end_guard(&doc_end);
        yaml_event_t after;
        if (!next(&after)) return;
        EventGuard after_guard(&after);
        if (after.type == YAML_DOCUMENT_START_EVENT) {
            add_error(line_of(after.start_mark), column_of(after.start_mark), "",
                      "only one YAML document is allowed (found a second \"---\")");
        }
    }

    bool parse_root() {
        yaml_event_t event;
        if (!next(&event)) return false;
        EventGuard guard(&event);
        YamlNode root;
        bool ok = build(event, 1, "", &root);
        if (root.kind == YamlNode::Kind::Mapping) {
            doc_.root = std::move(root);
        } else if (!(root.kind == YamlNode::Kind::Scalar && root.is_null())) {
            add_error(root.line, root.column, "",
                      "the top level must be a mapping of sections (e.g. \"api:\"), not a " +
                          std::string(root.kind == YamlNode::Kind::Scalar ? "scalar" : "list"));
        }
        return ok;
    }

    bool next(yaml_event_t* event) {
        if (yaml_parser_parse(parser_, event)) return true;
        syntax_error();
        return false;
    }

    bool build(const yaml_event_t& event, int depth, const std::string& path, YamlNode* out) {
        out->line = line_of(event.start_mark);
        out->column = column_of(event.start_mark);
        if (!refuse_decorations(event, path)) return false;
        switch (event.type) {
            case YAML_SCALAR_EVENT:
                out->kind = YamlNode::Kind::Scalar;
                out->scalar.assign(reinterpret_cast<const char*>(event.data.scalar.value), event.data.scalar.length);
                out->plain = event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                return true;
            case YAML_MAPPING_START_EVENT:
                out->kind = YamlNode::Kind::Mapping;
                return check_depth(depth, *out, path) && build_mapping(depth, path, out);
            case YAML_SEQUENCE_START_EVENT:
                out->kind = YamlNode::Kind::Sequence;
                return check_depth(depth, *out, path) && build_sequence(depth, path, out);
            default: add_error(out->line, out->column, path, "unexpected YAML event"); return false;
        }
    }

    bool build_mapping(int depth, const std::string& path, YamlNode* out) {
        std::unordered_map<std::string, int> first_line;  // hashed: a 1 MiB file can hold 100k keys
        while (true) {
            yaml_event_t key_event;
            if (!next(&key_event)) return false;
            EventGuard key_guard(&key_event);
            if (key_event.type == YAML_MAPPING_END_EVENT) return true;
            YamlEntry entry;
            if (!build(key_event, depth + 1, path, &entry.value)) return false;
            entry.line = entry.value.line;
            entry.column = entry.value.column;
            bool key_ok = entry.value.kind == YamlNode::Kind::Scalar;
            if (!key_ok) add_error(entry.line, entry.column, path, "mapping keys must be plain strings");
            entry.key = std::move(entry.value.scalar);
            entry.value = YamlNode();

            yaml_event_t value_event;
            if (!next(&value_event)) return false;
            EventGuard value_guard(&value_event);
            std::string key_path = join_path(path, entry.key);
            bool value_ok = build(value_event, depth + 1, key_path, &entry.value);
            // A refused scalar is left out; a collection cut short by an
            // error stays, so the part before the error is still checked.
            bool keep = key_ok && (value_ok || entry.value.kind != YamlNode::Kind::Scalar);
            if (keep && keep_unique(first_line, entry, key_path)) out->entries.push_back(std::move(entry));
            if (!value_ok) return false;
        }
    }

    // The first occurrence wins the tree; later ones are errors.
    bool keep_unique(std::unordered_map<std::string, int>& first_line, const YamlEntry& entry,
                     const std::string& key_path) {
        auto [it, inserted] = first_line.emplace(entry.key, entry.line);
        if (inserted) return true;
        add_error(entry.line, entry.column, key_path,
                  "duplicate key " + quote_for_message(entry.key) + " (first defined at line " +
                      std::to_string(it->second) + ")");
        return false;
    }

    bool build_sequence(int depth, const std::string& path, YamlNode* out) {
        while (true) {
            yaml_event_t event;
            if (!next(&event)) return false;
            EventGuard guard(&event);
            if (event.type == YAML_SEQUENCE_END_EVENT) return true;
            YamlNode item;
            bool ok = build(event, depth + 1, path, &item);
            if (ok || item.kind != YamlNode::Kind::Scalar) out->items.push_back(std::move(item));
            if (!ok) return false;
        }
    }

    bool check_depth(int depth, const YamlNode& node, const std::string& path) {
        if (depth <= kMaxYamlDepth) return true;
        add_error(node.line, node.column, path, "nesting is deeper than " + std::to_string(kMaxYamlDepth) + " levels");
        return false;
    }

    // Anchors and aliases let a few bytes expand into gigabytes; tags would
    // change how a scalar is read. The config needs neither.
    bool refuse_decorations(const yaml_event_t& event, const std::string& path) {
        const yaml_char_t* anchor = nullptr;
        const yaml_char_t* tag = nullptr;
        switch (event.type) {
            case YAML_ALIAS_EVENT: anchor = event.data.alias.anchor; break;
            case YAML_SCALAR_EVENT:
                anchor = event.data.scalar.anchor;
                tag = event.data.scalar.tag;
                break;
            case YAML_MAPPING_START_EVENT:
                anchor = event.data.mapping_start.anchor;
                tag = event.data.mapping_start.tag;
                break;
            case YAML_SEQUENCE_START_EVENT:
                anchor = event.data.sequence_start.anchor;
                tag = event.data.sequence_start.tag;
                break;
            default: return true;
        }
        const char* what = event.type == YAML_ALIAS_EVENT ? "aliases (*name) are not supported"
                           : anchor != nullptr            ? "anchors (&name) are not supported"
                           : tag != nullptr               ? "tags (!name) are not supported; write plain values"
                                                          : nullptr;
        if (what == nullptr) return true;
        add_error(line_of(event.start_mark), column_of(event.start_mark), path, what);
        return false;
    }

    void syntax_error() {
        const yaml_parser_t& p = *parser_;
        std::string problem = p.problem != nullptr ? p.problem : "unknown error";
        if (p.error == YAML_READER_ERROR) {
            // Reader errors carry a byte offset, not a mark.
            auto [line, column] = position_of(p.problem_offset);
            std::string byte;
            if (p.problem_value >= 0) {
                char hex[16];
                snprintf(hex, sizeof hex, " (byte 0x%02x)", static_cast<unsigned>(p.problem_value) & 0xffu);
                byte = hex;
            }
            add_error(line, column, "", "invalid YAML input: " + problem + byte);
            return;
        }
        if (p.error == YAML_MEMORY_ERROR) {
            add_error(0, 0, "", "out of memory parsing YAML");
            return;
        }
        std::string message = "YAML syntax error: " + problem;
        if (p.context != nullptr) {
            message += " (" + std::string(p.context) + " at line " + std::to_string(line_of(p.context_mark)) +
                       ", column " + std::to_string(column_of(p.context_mark)) + ")";
        }
        size_t at = p.problem_mark.index;
        if (at < text_.size() && text_[at] == '\t') message += "; tabs cannot indent YAML, use spaces";
        add_error(line_of(p.problem_mark), column_of(p.problem_mark), "", message);
    }

    std::pair<int, int> position_of(size_t offset) const {
        int line = 1, column = 1;
        for (size_t i = 0; i < offset && i < text_.size(); ++i) {
            if (text_[i] == '\n') {
                ++line;
                column = 1;
            } else {
                ++column;
            }
        }
        return {line, column};
    }

    void add_error(int line, int column, const std::string& key, std::string message) {
        if (doc_.errors.size() < kMaxYamlErrors) {
            doc_.errors.push_back({line, column, key, std::move(message)});
        } else if (doc_.errors.size() == kMaxYamlErrors) {
            doc_.errors.push_back({0, 0, "", "too many errors; stopped reporting"});
        }
    }

    std::string_view text_;
    yaml_parser_t* parser_ = nullptr;
    YamlDocument doc_;
};

}  // namespace

bool YamlNode::is_null() const {
    return kind == Kind::Scalar && plain &&
           (scalar.empty() || scalar == "~" || scalar == "null" || scalar == "Null" || scalar == "NULL");
}

bool read_yaml_file(const std::string& path, std::string* text, std::string* why) {
    std::unique_ptr<FILE, int (*)(FILE*)> file(fopen(path.c_str(), "rb"), fclose);
    struct stat st {};
    if (!file || fstat(fileno(file.get()), &st) != 0) {
        *why = std::string("cannot open: ") + strerror(errno);
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        *why = "not a regular file";
        return false;
    }
    text->resize(kMaxYamlBytes + 1);
    size_t got = fread(text->data(), 1, text->size(), file.get());
    if (ferror(file.get())) {
        *why = std::string("cannot read: ") + strerror(errno);
        return false;
    }
    if (got > kMaxYamlBytes) {
        *why = "larger than the limit of " + std::to_string(kMaxYamlBytes) + " bytes (1 MiB)";
        return false;
    }
    text->resize(got);
    return true;
}

std::string quote_for_message(std::string_view text) {
    constexpr size_t kShown = 64;
    std::string out = "\"";
    for (unsigned char c : text.substr(0, kShown)) {
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            char hex[8];
            snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + (text.size() > kShown ? "...\"" : "\"");
}

YamlDocument parse_yaml(std::string_view text) {
    if (text.size() > kMaxYamlBytes) {
        YamlDocument doc;
        doc.root.kind = YamlNode::Kind::Mapping;
        doc.errors.push_back({0, 0, "",
                              "the file is " + std::to_string(text.size()) + " bytes; the limit is " +
                                  std::to_string(kMaxYamlBytes) + " (1 MiB)"});
        return doc;
    }
    return Builder(text).run();
}

}  // namespace rampart::config
