#include "policy/value.h"

#include <cJSON.h>

#include <algorithm>
#include <cmath>

namespace rampart::policy {

namespace {

const PolicyValue& nil_value() {
    static const PolicyValue nil;
    return nil;
}

const PolicyTable& empty_table() {
    static const PolicyTable empty;
    return empty;
}

struct JsonDeleter {
    void operator()(cJSON* j) const { cJSON_Delete(j); }
};
using JsonPtr = std::unique_ptr<cJSON, JsonDeleter>;

cJSON* to_cjson(const PolicyValue& v) {
    switch (v.kind()) {
        case PolicyValue::Kind::Nil: return cJSON_CreateNull();
        case PolicyValue::Kind::Bool: return cJSON_CreateBool(v.as_bool());
        case PolicyValue::Kind::Number: {
            double d = v.as_number();
            return std::isfinite(d) ? cJSON_CreateNumber(d) : cJSON_CreateNull();
        }
        case PolicyValue::Kind::String: return cJSON_CreateString(v.as_string().c_str());
        case PolicyValue::Kind::Table: break;
    }
    const PolicyTable& t = v.as_table();
    JsonPtr out(t.fields.empty() ? cJSON_CreateArray() : cJSON_CreateObject());
    if (!out) return nullptr;
    for (size_t i = 0; i < t.array.size(); ++i) {
        cJSON* item = to_cjson(t.array[i]);
        if (!item) return nullptr;
        if (t.fields.empty()) {
            cJSON_AddItemToArray(out.get(), item);
        } else {
            cJSON_AddItemToObject(out.get(), std::to_string(i + 1).c_str(), item);
        }
    }
    for (const auto& [name, value] : t.fields) {
        cJSON* item = to_cjson(value);
        if (!item) return nullptr;
        cJSON_AddItemToObject(out.get(), name.c_str(), item);
    }
    return out.release();
}

}  // namespace

PolicyValue::PolicyValue(PolicyTable t) {
    // Stable sort, then keep the last of equal names: a later assignment wins.
    std::stable_sort(t.fields.begin(), t.fields.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::pair<std::string, PolicyValue>> unique;
    unique.reserve(t.fields.size());
    for (auto& f : t.fields) {
        if (!unique.empty() && unique.back().first == f.first) {
            unique.back() = std::move(f);
        } else {
            unique.push_back(std::move(f));
        }
    }
    t.fields = std::move(unique);
    v_ = std::make_shared<const PolicyTable>(std::move(t));
}

PolicyValue PolicyValue::object(std::initializer_list<std::pair<std::string, PolicyValue>> fields) {
    PolicyTable t;
    t.fields.assign(fields.begin(), fields.end());
    return PolicyValue(std::move(t));
}

PolicyValue PolicyValue::array(std::initializer_list<PolicyValue> items) {
    PolicyTable t;
    t.array.assign(items.begin(), items.end());
    return PolicyValue(std::move(t));
}

PolicyValue PolicyValue::array(std::vector<PolicyValue> items) {
    PolicyTable t;
    t.array = std::move(items);
    return PolicyValue(std::move(t));
}

bool PolicyValue::as_bool(bool otherwise) const {
    const bool* b = std::get_if<bool>(&v_);
    return b ? *b : otherwise;
}

double PolicyValue::as_number(double otherwise) const {
    const double* d = std::get_if<double>(&v_);
    return d ? *d : otherwise;
}

const std::string& PolicyValue::as_string() const {
    static const std::string empty;
    const std::string* s = std::get_if<std::string>(&v_);
    return s ? *s : empty;
}

const PolicyTable& PolicyValue::as_table() const {
    const auto* t = std::get_if<std::shared_ptr<const PolicyTable>>(&v_);
    return t ? **t : empty_table();
}

const PolicyValue& PolicyValue::operator[](std::string_view field) const {
    const auto& fields = as_table().fields;
    auto it = std::lower_bound(fields.begin(), fields.end(), field,
                               [](const auto& f, std::string_view name) { return f.first < name; });
    return it != fields.end() && it->first == field ? it->second : nil_value();
}

const PolicyValue& PolicyValue::at(size_t index0) const {
    const auto& array = as_table().array;
    return index0 < array.size() ? array[index0] : nil_value();
}

size_t PolicyValue::size() const { return as_table().array.size(); }

std::string PolicyValue::to_json() const {
    JsonPtr j(to_cjson(*this));
    if (!j) return "null";
    char* text = cJSON_PrintUnformatted(j.get());
    if (!text) return "null";
    std::string out(text);
    cJSON_free(text);
    return out;
}

const char* PolicyValue::kind_name(Kind kind) {
    switch (kind) {
        case Kind::Nil: return "nil";
        case Kind::Bool: return "boolean";
        case Kind::Number: return "number";
        case Kind::String: return "string";
        case Kind::Table: return "table";
    }
    return "?";
}

bool operator==(const PolicyValue& a, const PolicyValue& b) {
    if (a.kind() != b.kind()) return false;
    switch (a.kind()) {
        case PolicyValue::Kind::Nil: return true;
        case PolicyValue::Kind::Bool: return a.as_bool() == b.as_bool();
        case PolicyValue::Kind::Number: return a.as_number() == b.as_number();
        case PolicyValue::Kind::String: return a.as_string() == b.as_string();
        case PolicyValue::Kind::Table: break;
    }
    const PolicyTable& x = a.as_table();
    const PolicyTable& y = b.as_table();
    return x.array == y.array && x.fields == y.fields;
}

}  // namespace rampart::policy
