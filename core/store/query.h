// Percent-decoding and query strings for the store's routes (Consul's
// parameters: ?recurse, ?cas=5, ?wait=30s, ...). A parameter without a
// value ("?recurse") is present with an empty value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rampart::store {

// %XX and (in queries) '+' for space; false on a broken escape.
bool percent_decode(std::string_view in, bool plus_is_space, std::string* out);

class Query {
public:
    // False with *error on a broken escape.
    bool parse(std::string_view query, std::string* error);
    bool has(std::string_view name) const { return get(name) != nullptr; }
    const std::string* get(std::string_view name) const;
    // An unsigned decimal parameter: nullopt when absent; *error set when
    // present but not a number.
    std::optional<uint64_t> number(std::string_view name, std::string* error) const;

private:
    std::vector<std::pair<std::string, std::string>> params_;
};

// Consul's wait values: "30s", "5m", "100ms", "1h"; a bare number means
// seconds. False on anything else.
bool parse_duration_ms(std::string_view text, uint64_t* ms);

}  // namespace rampart::store
