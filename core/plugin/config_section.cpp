// A plugin's configuration section, checked against the schema it
// declares: unknown keys (listing the allowed ones), types, bounds.
#include <charconv>
#include <cstring>

#include "plugin/host.h"

namespace rampart::plugin {
namespace {

constexpr int64_t kDefaultStringMax = 4096;

std::string allowed_keys(const rampart_config_key* schema) {
    std::string out;
    for (const rampart_config_key* k = schema; k != nullptr && k->key != nullptr; ++k) {
        if (!out.empty()) out += ", ";
        out += k->key;
    }
    return out.empty() ? "(none)" : out;
}

const rampart_config_key* find_key(const rampart_config_key* schema, std::string_view key) {
    for (const rampart_config_key* k = schema; k != nullptr && k->key != nullptr; ++k) {
        if (key == k->key) return k;
    }
    return nullptr;
}

bool parse_int(std::string_view s, int64_t* out) {
    if (s.empty()) return false;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && ptr == s.data() + s.size();
}

bool parse_bool(std::string_view s, bool* out) {
    if (s == "true" || s == "1" || s == "yes")
        *out = true;
    else if (s == "false" || s == "0" || s == "no")
        *out = false;
    else
        return false;
    return true;
}

// Check one value; returns an empty string when fine, else the problem.
std::string check_value(const rampart_config_key& key, std::string_view value) {
    switch (key.type) {
        case RAMPART_CONFIG_INT: {
            int64_t n = 0;
            if (!parse_int(value, &n)) return "expected an integer, got \"" + std::string(value) + "\"";
            if (n < key.min || n > key.max) {
                return "must be between " + std::to_string(key.min) + " and " + std::to_string(key.max) + ", got " +
                       std::to_string(n);
            }
            return "";
        }
        case RAMPART_CONFIG_BOOL: {
            bool b = false;
            return parse_bool(value, &b) ? "" : "expected true or false";
        }
        default: {
            int64_t max = key.max > 0 ? key.max : kDefaultStringMax;
            if (static_cast<int64_t>(value.size()) > max) return "longer than " + std::to_string(max) + " characters";
            if (!value.empty() && static_cast<int64_t>(value.size()) < key.min) {
                return "shorter than " + std::to_string(key.min) + " characters";
            }
            for (unsigned char c : value) {
                if (c < 0x20 || c == 0x7f) return "contains a control character";
            }
            return "";
        }
    }
}

std::vector<std::string> default_values(const rampart_config_key& key) {
    std::string def = key.default_value ? key.default_value : "";
    if (key.type == RAMPART_CONFIG_STRING_LIST) return config::split_list(def);
    if (def.empty() && key.type == RAMPART_CONFIG_INT) def = "0";
    if (def.empty() && key.type == RAMPART_CONFIG_BOOL) def = "false";
    return {def};
}

}  // namespace

bool validate_section(const std::string& plugin, const rampart_config_key* schema, const RawSection& raw,
                      SectionValues* out, std::vector<std::string>* errors) {
    size_t before = errors->size();
    SectionValues values;
    for (const rampart_config_key* k = schema; k != nullptr && k->key != nullptr; ++k) {
        values[k->key] = default_values(*k);
    }
    for (const auto& [name, setting] : raw) {
        const rampart_config_key* key = find_key(schema, name);
        std::string where = setting.origin + ": " + plugin + "." + name + ": ";
        if (key == nullptr) {
            errors->push_back(where + "unknown key in section \"" + plugin + "\"; allowed: " + allowed_keys(schema));
            continue;
        }
        bool wants_list = key->type == RAMPART_CONFIG_STRING_LIST;
        if (!wants_list && (setting.is_list || setting.values.size() != 1)) {
            // No value at all would leave an empty string, read as 0 or
            // false: outside the declared bounds for an INT such as 1..100.
            errors->push_back(where + "expected a single value, got " +
                              (setting.is_list || !setting.values.empty() ? "a list" : "none"));
            continue;
        }
        std::vector<std::string> items = setting.values;
        if (wants_list && setting.from_env) items = config::split_list(setting.values.empty() ? "" : setting.values[0]);
        bool ok = true;
        for (const std::string& v : items) {
            std::string problem = check_value(*key, v);
            if (!problem.empty()) {
                errors->push_back(where + problem);
                ok = false;
            }
        }
        if (ok) values[name] = std::move(items);
    }
    if (errors->size() != before) return false;
    *out = std::move(values);
    return true;
}

}  // namespace rampart::plugin
