// PolicyValue: the values that cross between C++ and a Lua policy.
//
// Small on purpose: nil, boolean, number, string and table. A table is an
// array part (Lua indices 1..n) plus named fields kept sorted by name, so
// that two conversions of the same Lua table compare and print the same
// way (Lua's own iteration order is unspecified). Tables are shared and
// immutable once built: copying a PolicyValue is cheap, and a value taken
// from a Generation stays valid after the generation is gone.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace rampart::policy {

class PolicyValue;

struct PolicyTable {
    std::vector<PolicyValue> array;                           // Lua t[1..n]
    std::vector<std::pair<std::string, PolicyValue>> fields;  // sorted by name, unique
};

class PolicyValue {
public:
    enum class Kind { Nil, Bool, Number, String, Table };

    PolicyValue() = default;
    PolicyValue(std::nullptr_t) {}
    PolicyValue(bool b) : v_(b) {}
    PolicyValue(double d) : v_(d) {}
    PolicyValue(int i) : v_(static_cast<double>(i)) {}
    PolicyValue(long i) : v_(static_cast<double>(i)) {}
    PolicyValue(long long i) : v_(static_cast<double>(i)) {}
    PolicyValue(unsigned i) : v_(static_cast<double>(i)) {}
    PolicyValue(unsigned long i) : v_(static_cast<double>(i)) {}
    PolicyValue(unsigned long long i) : v_(static_cast<double>(i)) {}
    PolicyValue(const char* s) : v_(std::string(s ? s : "")) {}
    PolicyValue(std::string s) : v_(std::move(s)) {}
    PolicyValue(std::string_view s) : v_(std::string(s)) {}
    // Fields are sorted and de-duplicated (the last one wins).
    PolicyValue(PolicyTable t);

    // {"a", 1}, {"b", "x"}: a table with named fields.
    static PolicyValue object(std::initializer_list<std::pair<std::string, PolicyValue>> fields);
    // A table with only an array part.
    static PolicyValue array(std::initializer_list<PolicyValue> items);
    static PolicyValue array(std::vector<PolicyValue> items);

    Kind kind() const { return static_cast<Kind>(v_.index()); }
    bool is_nil() const { return kind() == Kind::Nil; }
    bool is_bool() const { return kind() == Kind::Bool; }
    bool is_number() const { return kind() == Kind::Number; }
    bool is_string() const { return kind() == Kind::String; }
    bool is_table() const { return kind() == Kind::Table; }

    // Typed reads; a value of another kind yields `otherwise`.
    bool as_bool(bool otherwise = false) const;
    double as_number(double otherwise = 0) const;
    const std::string& as_string() const;  // "" unless a string
    const PolicyTable& as_table() const;   // an empty table unless a table

    // Table lookups; nil when absent or when this is not a table.
    const PolicyValue& operator[](std::string_view field) const;
    const PolicyValue& at(size_t index0) const;  // array part, 0-based
    size_t size() const;                         // array part length

    // JSON text (cJSON, unformatted). Tables with only an array part, and
    // empty tables, become arrays; any other table an object whose array
    // items are keyed "1", "2", ... NaN and infinities become null.
    std::string to_json() const;

    static const char* kind_name(Kind kind);

    friend bool operator==(const PolicyValue& a, const PolicyValue& b);

private:
    std::variant<std::monostate, bool, double, std::string, std::shared_ptr<const PolicyTable>> v_;
};

}  // namespace rampart::policy
