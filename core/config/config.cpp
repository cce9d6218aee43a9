// The loader: defaults, then the YAML file, then RAMPART_* variables,
// every value checked against the schema; all problems are collected and
// the Config is built only when there are none.
#include "config/config.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <tuple>

#include "config/yaml_tree.h"

namespace rampart::config {
namespace {

constexpr std::string_view kEnvPrefix = "RAMPART_";
constexpr const char* kEnvFile = "environment";

// Where a key's current value came from, to point diagnostics at it.
struct Origin {
    int line = 0;
    int column = 0;
    std::string env_var;  // set when the environment supplied it
};

size_t index_of(const KeySpec& spec) { return static_cast<size_t>(&spec - schema().data()); }

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// The distinct next path segments below `prefix` ("" for the sections),
// in schema order: the "allowed" list of an unknown-key message.
std::vector<std::string> children(const std::string& prefix) {
    std::vector<std::string> out;
    std::string head = prefix.empty() ? "" : prefix + ".";
    for (const KeySpec& spec : schema()) {
        std::string_view path = spec.path;
        if (!starts_with(path, head)) continue;
        std::string child(path.substr(head.size(), path.find('.', head.size()) - head.size()));
        if (out.empty() || out.back() != child) out.push_back(child);
    }
    return out;
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
    return out;
}

const char* kind_name(const YamlNode& node) {
    switch (node.kind) {
        case YamlNode::Kind::Mapping: return "a mapping";
        case YamlNode::Kind::Sequence: return "a list";
        case YamlNode::Kind::Scalar: break;
    }
    return node.is_null() ? "an empty value" : "a scalar";
}

std::string type_name(const KeySpec& spec) {
    switch (spec.type) {
        case ValueType::String: return "a string";
        case ValueType::Int: return "an integer";
        case ValueType::Bool: return "true or false";
        case ValueType::Address: return "an address (host:port)";
        case ValueType::StringList: return "a list (e.g. [a, b])";
        case ValueType::Enum: break;
    }
    std::string values = spec.enum_values;
    for (size_t at = values.find('|'); at != std::string::npos; at = values.find('|', at)) values.replace(at, 1, ", ");
    return "one of " + values;
}

class Loader {
public:
    explicit Loader(std::string file)
        : file_(std::move(file)), values_(schema().size()), origins_(schema().size()), rejected_(schema().size()) {}

    void apply_defaults() {
        for (const KeySpec& spec : schema()) {
            std::string why;
            if (!parse_value(spec, spec.default_value, &values_[index_of(spec)], &why)) {
                add_error({"schema", 0, 0, spec.path, "bad built-in default: " + why});  // a bug, caught by tests
            }
        }
    }

    void apply_yaml(std::string_view text) {
        YamlDocument doc = parse_yaml(text);
        for (YamlError& e : doc.errors) add_error({file_, e.line, e.column, e.key, std::move(e.message)});
        const std::vector<std::string> sections = children("");
        for (const YamlEntry& entry : doc.root.entries) {
            if (std::find(sections.begin(), sections.end(), entry.key) == sections.end()) {
                // Maybe a plugin's section: decided once plugins.load is known.
                extra_sections_.push_back(entry);
            } else {
                walk(entry, entry.key);
            }
        }
    }

    void apply_environment(const Environment& env) {
        for (const auto& [name, text] : env) {
            if (!starts_with(name, kEnvPrefix) || is_cli_variable(name)) continue;
            const KeySpec* spec = find_env(name);
            if (spec == nullptr) {
                unmatched_env_.emplace_back(name, text);
                continue;
            }
            std::string why;
            size_t i = index_of(*spec);
            if (parse_value(*spec, text, &values_[i], &why)) {
                origins_[i] = Origin{0, 0, name};
            } else {
                rejected_[i] = true;
                add_error({kEnvFile, 0, 0, name, why});
            }
        }
    }

    // Rules that span keys; checked once every source has been applied,
    // and skipped when a key involved was already rejected (its value is
    // then only the default, and a second error about it would mislead).
    void cross_check() {
        if (rejected("api.tls.cert") || rejected("api.tls.key") || rejected("api.tls.ca") ||
            rejected("api.tls.require_client_cert") || rejected("api.listen") || rejected("peer.listen")) {
            return;
        }
        const auto& cert = text_of("api.tls.cert");
        const auto& key = text_of("api.tls.key");
        if (cert.empty() != key.empty()) {
            const char* missing = cert.empty() ? "api.tls.cert" : "api.tls.key";
            const char* given = cert.empty() ? "api.tls.key" : "api.tls.cert";
            add_error(at_key(given, std::string(given) + " is set but " + missing + " is empty; set both or neither"));
        }
        if (std::get<bool>(value_of("api.tls.require_client_cert")) &&
            (cert.empty() || text_of("api.tls.ca").empty())) {
            add_error(at_key("api.tls.require_client_cert", "needs api.tls.cert, api.tls.key and api.tls.ca"));
        }
        if (!rejected("cluster.heartbeat_ms") && !rejected("cluster.election_timeout_ms")) {
            int64_t heartbeat = std::get<int64_t>(value_of("cluster.heartbeat_ms"));
            int64_t election = std::get<int64_t>(value_of("cluster.election_timeout_ms"));
            if (heartbeat * 2 > election) {
                add_error(at_key("cluster.heartbeat_ms", "must be at most half of cluster.election_timeout_ms (" +
                                                             std::to_string(heartbeat) + " > " +
                                                             std::to_string(election) +
                                                             " / 2): followers would call elections "
                                                             "between heartbeats"));
            }
        }
        const auto& api = text_of("api.listen");
        if (api == text_of("peer.listen") && !api.ends_with(":0")) {
            add_error(at_key("peer.listen", "api.listen and peer.listen must differ (both are " + api + ")"));
        }
    }

    // Sections and variables no core key claimed belong to a plugin listed
    // in plugins.load, or are errors (sections) / warnings (variables).
    void resolve_plugin_sections() {
        const auto& loaded = std::get<std::vector<std::string>>(value_of("plugins.load"));
        for (const YamlEntry& entry : extra_sections_) {
            if (std::find(loaded.begin(), loaded.end(), entry.key) == loaded.end()) {
                add_error(at(entry, entry.key,
                             "unknown section " + quote_for_message(entry.key) + "; allowed: " + join(children("")) +
                                 ", or a plugin named in plugins.load"));
                continue;
            }
            plugin_section_from_yaml(entry);
        }
        for (const auto& [name, text] : unmatched_env_) {
            if (!plugin_setting_from_env(loaded, name, text)) warn_unknown_env(name);
        }
    }

    LoadResult finish() {
        LoadResult result;
        // File problems in file order (YAML errors were found first), then
        // the rest (environment, limits) in the order they were found.
        std::stable_sort(errors_.begin(), errors_.end(), [this](const Diagnostic& a, const Diagnostic& b) {
            auto rank = [this](const Diagnostic& d) {
                bool positioned = d.file == file_ && d.line > 0;
                return std::tuple(positioned ? 0 : 1, positioned ? d.line : 0, positioned ? d.column : 0);
            };
            return rank(a) < rank(b);
        });
        result.errors = std::move(errors_);
        result.warnings = std::move(warnings_);
        if (!result.errors.empty()) return result;
        result.config = std::make_unique<Config>();
        for (const KeySpec& spec : schema()) set_value(*result.config, spec, values_[index_of(spec)]);
        result.config->source_file = file_;
        result.config->plugin_sections = std::move(plugin_sections_);
        for (const KeySpec& spec : schema()) {
            const Origin& o = origins_[index_of(spec)];
            if (o.line > 0 || !o.env_var.empty()) result.config->explicit_keys.emplace_back(spec.path);
        }
        return result;
    }

    void add_error(Diagnostic d) {
        if (errors_.size() < kMaxYamlErrors) {
            errors_.push_back(std::move(d));
        } else if (errors_.size() == kMaxYamlErrors) {
            errors_.push_back({file_, 0, 0, "", "too many errors; stopped reporting"});
        }
    }

private:
    std::string position(const YamlNode& node) const {
        return file_ + ":" + std::to_string(node.line) + ":" + std::to_string(node.column);
    }

    // A plugin's section is flat: key: scalar, or key: [scalars].
    void plugin_section_from_yaml(const YamlEntry& section) {
        Config::PluginSection& out = plugin_sections_[section.key];
        const YamlNode& node = section.value;
        if (node.is_null()) return;
        if (node.kind != YamlNode::Kind::Mapping) {
            add_error(at(node, section.key, "expected a mapping of keys, got " + std::string(kind_name(node))));
            return;
        }
        for (const YamlEntry& child : node.entries) {
            std::string path = section.key + "." + child.key;
            Config::PluginSetting setting;
            setting.origin = position(child.value);
            if (child.value.kind == YamlNode::Kind::Sequence) {
                setting.is_list = true;
                for (const YamlNode& item : child.value.items) {
                    if (item.kind != YamlNode::Kind::Scalar) {
                        add_error(at(item, path, "list items must be strings, got " + std::string(kind_name(item))));
                        continue;
                    }
                    setting.values.push_back(item.scalar);
                }
            } else if (child.value.kind == YamlNode::Kind::Scalar) {
                setting.values.push_back(child.value.is_null() ? "" : child.value.scalar);
            } else {
                add_error(at(child.value, path,
                             "plugin settings are scalars or lists, got " + std::string(kind_name(child.value))));
                continue;
            }
            out[child.key] = std::move(setting);
        }
    }

    // RAMPART_<PLUGIN>_<KEY> for a plugin in plugins.load (names may hold
    // '_', so match whole plugin names as prefixes).
    bool plugin_setting_from_env(const std::vector<std::string>& loaded, const std::string& name,
                                 const std::string& text) {
        for (const std::string& plugin : loaded) {
            std::string prefix = std::string(kEnvPrefix) + plugin + "_";
            for (char& c : prefix) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
            if (!starts_with(name, prefix) || name.size() == prefix.size()) continue;
            std::string key = name.substr(prefix.size());
            for (char& c : key) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
            Config::PluginSetting setting;
            setting.values.push_back(text);
            setting.from_env = true;
            setting.origin = "environment " + name;
            plugin_sections_[plugin][key] = std::move(setting);
            return true;
        }
        return false;
    }

    // `entry` is a section or a nested group ("api.tls") at `path`.
    void walk(const YamlEntry& entry, const std::string& path) {
        const YamlNode& node = entry.value;
        if (node.is_null()) return;  // "log:" with nothing under it
        if (node.kind != YamlNode::Kind::Mapping) {
            add_error(at(node, path, "expected a mapping of keys, got " + std::string(kind_name(node))));
            return;
        }
        for (const YamlEntry& child : node.entries) {
            // "tls.cert: x" is not a shorthand for "tls: {cert: x}": one name per level.
            bool plain_name = !child.key.empty() && child.key.find('.') == std::string::npos;
            std::string child_path = path + "." + child.key;
            if (const KeySpec* spec = plain_name ? find_key(child_path) : nullptr) {
                apply_node(*spec, child);
            } else if (plain_name && !children(child_path).empty()) {
                walk(child, child_path);
            } else {
                add_error(at(child, child_path,
                             "unknown key " + quote_for_message(child.key) + " in section \"" + path +
                                 "\"; allowed: " + join(children(path))));
            }
        }
    }

    void apply_node(const KeySpec& spec, const YamlEntry& entry) {
        const YamlNode& node = entry.value;
        Value value;
        std::string why;
        bool ok = spec.type == ValueType::StringList ? list_from_yaml(spec, node, &value, &why)
                                                     : scalar_from_yaml(spec, node, &value, &why);
        if (!ok) {
            // An empty value has no useful position of its own: point at the key.
            if (!why.empty()) add_error(node.is_null() ? at(entry, spec.path, why) : at(node, spec.path, why));
            rejected_[index_of(spec)] = true;
            return;
        }
        size_t i = index_of(spec);
        values_[i] = std::move(value);
        origins_[i] = Origin{node.line, node.column, ""};
    }

    bool scalar_from_yaml(const KeySpec& spec, const YamlNode& node, Value* out, std::string* why) {
        bool empty_allowed = spec.type == ValueType::String;
        if (node.kind != YamlNode::Kind::Scalar || (node.is_null() && !empty_allowed)) {
            *why = "expected " + type_name(spec) + ", got " + kind_name(node);
            return false;
        }
        return parse_value(spec, node.is_null() ? "" : node.scalar, out, why);
    }

    // Item errors are reported here with their own positions; *why stays
    // empty then, so the caller adds nothing more.
    bool list_from_yaml(const KeySpec& spec, const YamlNode& node, Value* out, std::string* why) {
        std::vector<std::string> items;
        if (!node.is_null() && node.kind != YamlNode::Kind::Sequence) {
            *why = "expected " + type_name(spec) + ", got " + kind_name(node);
            return false;
        }
        bool ok = true;
        for (const YamlNode& item : node.items) {
            std::string item_why;
            if (item.kind != YamlNode::Kind::Scalar) {
                item_why = "list items must be strings, got " + std::string(kind_name(item));
            } else if (check_list_item(spec, item.scalar, &item_why)) {
                items.push_back(item.scalar);
                continue;
            }
            add_error(at(item, spec.path, item_why));
            ok = false;
        }
        if (!ok) return false;
        *out = std::move(items);
        return check_value(spec, *out, why);
    }

    template <typename Positioned>
    Diagnostic at(const Positioned& where, const std::string& key, std::string message) const {
        return {file_, where.line, where.column, key, std::move(message)};
    }

    Diagnostic at_key(const char* path, std::string message) const {
        const Origin& origin = origins_[index_of(*find_key(path))];
        if (!origin.env_var.empty()) return {kEnvFile, 0, 0, origin.env_var, std::move(message)};
        return {file_, origin.line, origin.column, path, std::move(message)};
    }

    bool rejected(const char* path) const { return rejected_[index_of(*find_key(path))]; }
    const Value& value_of(const char* path) const { return values_[index_of(*find_key(path))]; }
    const std::string& text_of(const char* path) const { return std::get<std::string>(value_of(path)); }

    static const KeySpec* find_env(std::string_view name) {
        for (const KeySpec& spec : schema()) {
            if (env_name(spec.path) == name) return &spec;
        }
        return nullptr;
    }

    // rampartctl's own variables share the prefix; they are not ours.
    static bool is_cli_variable(std::string_view name) {
        return starts_with(name, "RAMPART_HTTP_") || name == "RAMPART_CACERT";
    }

    // Other tools may set RAMPART_* too, so only a name inside one of our
    // sections (a likely typo) is worth a warning, and never an error.
    void warn_unknown_env(const std::string& name) {
        for (const std::string& section : children("")) {
            std::string head = env_name(section) + "_";
            if (!starts_with(name, head)) continue;
            std::string key = name.substr(head.size());
            for (char& c : key) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
            std::vector<std::string> allowed;
            for (const KeySpec& spec : schema()) {
                if (starts_with(spec.path, section + ".")) allowed.push_back(env_name(spec.path));
            }
            warnings_.push_back({kEnvFile, 0, 0, name,
                                 "not a configuration variable: section \"" + section + "\" has no key " +
                                     quote_for_message(key) + "; ignored (known: " + join(allowed) + ")"});
            return;
        }
    }

    std::string file_;
    std::vector<Value> values_;              // indexed like schema()
    std::vector<Origin> origins_;            // indexed like schema()
    std::vector<bool> rejected_;             // indexed like schema(): a source gave a bad value
    std::vector<YamlEntry> extra_sections_;  // top-level sections no core key claimed
    std::vector<std::pair<std::string, std::string>> unmatched_env_;
    std::map<std::string, Config::PluginSection, std::less<>> plugin_sections_;
    std::vector<Diagnostic> errors_;
    std::vector<Diagnostic> warnings_;
};

// Nothing may escape the public functions: out of memory becomes an error.
template <typename Fn>
LoadResult guarded(const std::string& file, Fn&& fn) {
    try {
        return fn();
    } catch (...) {
        LoadResult result;
        result.errors.push_back({file, 0, 0, "", "internal error while loading (out of memory?)"});
        return result;
    }
}

}  // namespace

std::string Diagnostic::to_string() const {
    std::string out = file;
    if (line > 0) out += ":" + std::to_string(line);
    if (line > 0 && column > 0) out += ":" + std::to_string(column);
    if (!out.empty()) out += ": ";
    if (!key.empty()) out += key + ": ";
    return out + message;
}

Environment process_environment() {
    Environment env;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        std::string_view text = *entry;
        size_t eq = text.find('=');
        if (eq == std::string_view::npos || !starts_with(text, kEnvPrefix)) continue;
        env.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
    }
    return env;
}

LoadResult load_string(std::string_view yaml, const std::string& file, const Environment& env) {
    return guarded(file, [&] {
        Loader loader(file);
        loader.apply_defaults();
        loader.apply_yaml(yaml);
        loader.apply_environment(env);
        loader.resolve_plugin_sections();
        loader.cross_check();
        return loader.finish();
    });
}

LoadResult load_file(const std::string& path, const Environment& env) {
    return guarded(path, [&] {
        std::string text, why;
        if (read_yaml_file(path, &text, &why)) return load_string(text, path, env);
        LoadResult result;
        result.errors.push_back({path, 0, 0, "", why});
        return result;
    });
}

LoadResult load_defaults(const Environment& env) {
    return guarded("", [&] {
        Loader loader("");
        loader.apply_defaults();
        loader.apply_environment(env);
        loader.resolve_plugin_sections();
        loader.cross_check();
        return loader.finish();
    });
}

std::vector<std::string> changed_keys(const Config& before, const Config& after) {
    std::vector<std::string> changed;
    for (const KeySpec& spec : schema()) {
        if (get_value(before, spec) != get_value(after, spec)) changed.emplace_back(spec.path);
    }
    return changed;
}

}  // namespace rampart::config
