// Options after a rampartctl subcommand (`kv put KEY --cas 5 -`): switches,
// options with a value (`--cas 5` or `--cas=5`), and positionals. "--" ends
// the options, so a key may start with '-'; a lone "-" is a positional
// (stdin).
#pragma once

#include <algorithm>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace rampartctl {

struct CliOptions {
    std::vector<std::string> positional;
    std::map<std::string, std::string, std::less<>> values;
    std::set<std::string, std::less<>> switches;
    std::string error;  // set when parsing failed (a usage error)

    bool has(std::string_view name) const { return switches.count(name) > 0 || values.count(name) > 0; }
    const std::string* value(std::string_view name) const {
        auto it = values.find(name);
        return it == values.end() ? nullptr : &it->second;
    }
};

// Parse args[from…]. False (with out->error) for an unknown option, a
// missing value or an option given twice.
inline bool parse_cli_options(const std::vector<std::string>& args, size_t from,
                              std::initializer_list<std::string_view> with_value,
                              std::initializer_list<std::string_view> switches, CliOptions* out) {
    auto known = [](std::initializer_list<std::string_view> list, std::string_view name) {
        return std::find(list.begin(), list.end(), name) != list.end();
    };
    bool options_done = false;
    for (size_t i = from; i < args.size(); i++) {
        const std::string& a = args[i];
        if (options_done || a.size() < 2 || a.compare(0, 2, "--") != 0) {
            out->positional.push_back(a);
            continue;
        }
        if (a == "--") {
            options_done = true;
            continue;
        }
        size_t eq = a.find('=');
        std::string name = a.substr(0, eq);
        if (out->has(name)) {
            out->error = name + " given twice";
            return false;
        }
        if (known(switches, name) && eq == std::string::npos) {
            out->switches.insert(name);
        } else if (known(with_value, name)) {
            if (eq != std::string::npos) {
                out->values[name] = a.substr(eq + 1);
            } else if (i + 1 < args.size()) {
                out->values[name] = args[++i];
            } else {
                out->error = name + " needs a value";
                return false;
            }
        } else {
            out->error = "unknown option " + name;
            return false;
        }
    }
    return true;
}

}  // namespace rampartctl
