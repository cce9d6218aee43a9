#include "store/services_json.h"

#include <cjson/cJSON.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>

#include "store/key.h"
#include "store/kv_json.h"

namespace rampart::store {
namespace {

using JsonPtr = std::unique_ptr<cJSON, decltype(&cJSON_Delete)>;

bool absent(const cJSON* item) { return item == nullptr || cJSON_IsNull(item); }

// A string field: absent/null leaves *out alone; any other type is an error.
bool json_string(const cJSON* obj, const char* name, std::string* out, std::string* error) {
    const cJSON* item = cJSON_GetObjectItem(obj, name);
    if (absent(item)) return true;
    if (!cJSON_IsString(item)) {
        *error = std::string(name) + " must be a string";
        return false;
    }
    *out = item->valuestring;
    return true;
}

// The check types Consul has besides TTL: each one named here is refused.
constexpr const char* kOtherCheckKinds[] = {
    "HTTP",         "TCP",       "UDP",      "GRPC", "H2PING", "Args", "ScriptArgs", "Script", "DockerContainerID",
    "AliasService", "AliasNode", "OSService"};

std::string parse_check(const cJSON* obj, CheckDef* d) {
    if (!cJSON_IsObject(obj)) return "a check must be a JSON object";
    for (const char* kind : kOtherCheckKinds) {
        const cJSON* item = cJSON_GetObjectItem(obj, kind);
        bool empty = absent(item) || (cJSON_IsString(item) && item->valuestring[0] == '\0') ||
                     (cJSON_IsArray(item) && cJSON_GetArraySize(item) == 0) || cJSON_IsFalse(item);
        if (!empty) return std::string("only TTL checks are supported (this check has ") + kind + ")";
    }
    std::string error;
    std::string deregister;
    if (!json_string(obj, "DeregisterCriticalServiceAfter", &deregister, &error)) return error;
    if (!deregister.empty()) return "DeregisterCriticalServiceAfter is not supported";
    if (!json_string(obj, "CheckID", &d->id, &error) || (d->id.empty() && !json_string(obj, "ID", &d->id, &error)) ||
        !json_string(obj, "Name", &d->name, &error) || !json_string(obj, "Notes", &d->notes, &error)) {
        return "check " + error;
    }
    const cJSON* ttl = cJSON_GetObjectItem(obj, "TTL");
    if (absent(ttl)) return "a check needs a TTL (only TTL checks are supported)";
    if (cJSON_IsString(ttl)) {
        if (!parse_go_duration_ms(ttl->valuestring, &d->ttl_ms))
            return "check TTL must be a duration such as \"15s\" or \"1m30s\"";
    } else if (cJSON_IsNumber(ttl)) {
        // Go's time.Duration as a JSON number: nanoseconds.
        double ns = ttl->valuedouble;
        if (ns < 0 || ns > 1e18 || std::floor(ns) != ns) return "check TTL must be a duration such as \"15s\"";
        d->ttl_ms = static_cast<uint64_t>(std::ceil(ns / 1e6));
    } else {
        return "check TTL must be a duration string such as \"15s\"";
    }
    if (d->ttl_ms == 0 || d->ttl_ms > kMaxCheckTtlMs) return "check TTL must be between 1ms and 168h";
    std::string status;
    if (!json_string(obj, "Status", &status, &error)) return "check " + error;
    if (!status.empty() && !parse_status(status, &d->status))
        return "check Status must be passing, warning or critical";
    return {};
}

// Tags (an array) and Meta (an object) share their rules: absent or null is
// empty, every member a string, at most `limit` members. Each member goes
// to take(); the result is the error, empty when the field is fine.
template <typename Take>
std::string string_members(const cJSON* root, const char* name, bool object, size_t limit, const char* what,
                           Take take) {
    const cJSON* field = cJSON_GetObjectItem(root, name);
    if (absent(field)) return {};
    std::string shape = std::string(name) + (object ? " must be an object of strings" : " must be an array of strings");
    if (object ? !cJSON_IsObject(field) : !cJSON_IsArray(field)) return shape;
    if (static_cast<size_t>(cJSON_GetArraySize(field)) > limit) return "more than " + std::to_string(limit) + what;
    for (const cJSON* m = field->child; m != nullptr; m = m->next) {
        if (!cJSON_IsString(m)) return shape;
        take(m);
    }
    return {};
}

std::string parse_registration(const cJSON* root, ServiceRegister* r) {
    if (!cJSON_IsObject(root)) return "the body must be a JSON object: a service definition";
    std::string error;
    if (!json_string(root, "ID", &r->id, &error) || !json_string(root, "Name", &r->name, &error) ||
        !json_string(root, "Address", &r->address, &error)) {
        return error;
    }
    std::string kind;
    if (!json_string(root, "Kind", &kind, &error)) return error;
    if (!kind.empty()) return "service kinds (Connect proxies, gateways) are not supported";
    if (r->name.empty()) return "missing service Name";
    if (r->id.empty()) r->id = r->name;
    const cJSON* port = cJSON_GetObjectItem(root, "Port");
    if (!absent(port)) {
        double p = cJSON_IsNumber(port) ? port->valuedouble : -1;
        if (p < 0 || p > 65535 || std::floor(p) != p) return "Port must be an integer from 0 to 65535";
        r->port = static_cast<uint16_t>(p);
    }
    if (std::string e = string_members(root, "Tags", false, Limits::kTags, " Tags",
                                       [&](const cJSON* t) { r->tags.emplace_back(t->valuestring); });
        !e.empty())
        return e;
    if (std::string e = string_members(root, "Meta", true, Limits::kMeta, " Meta pairs",
                                       [&](const cJSON* m) { r->meta.emplace_back(m->string, m->valuestring); });
        !e.empty())
        return e;
    std::sort(r->meta.begin(), r->meta.end());
    std::vector<const cJSON*> checks;
    const cJSON* check = cJSON_GetObjectItem(root, "Check");
    if (!absent(check)) checks.push_back(check);
    const cJSON* list = cJSON_GetObjectItem(root, "Checks");
    if (!absent(list)) {
        if (!cJSON_IsArray(list)) return "Checks must be an array of checks";
        for (const cJSON* c = list->child; c != nullptr; c = c->next) checks.push_back(c);
    }
    if (checks.size() > Limits::kChecks) return "more than " + std::to_string(Limits::kChecks) + " checks";
    for (size_t i = 0; i < checks.size(); i++) {
        CheckDef d;
        if (std::string e = parse_check(checks[i], &d); !e.empty()) return e;
        if (d.id.empty()) {
            d.id = "service:" + r->id;
            if (checks.size() > 1) d.id += ":" + std::to_string(i + 1);
        }
        if (d.name.empty()) d.name = "Service '" + r->name + "' check";
        r->checks.push_back(std::move(d));
    }
    return check_service_definition(*r);
}

// ---- rendering ------------------------------------------------------------------

void str(std::string& out, const char* name, std::string_view value) {
    out += '"';
    out += name;
    out += "\":";
    append_json_string(out, value);
}

void num(std::string& out, const char* name, uint64_t value) {
    out += '"';
    out += name;
    out += "\":" + std::to_string(value);
}

// `items` as a JSON array, each element written by write(out, item).
template <typename Items, typename Write>
void json_array(std::string& out, const Items& items, Write write) {
    out += '[';
    bool first = true;
    for (const auto& item : items) {
        if (!first) out += ',';
        first = false;
        write(out, item);
    }
    out += ']';
}

// (key, value) pairs as a JSON object, each value written by write(out, value).
template <typename Pairs, typename Write>
void json_object(std::string& out, const Pairs& pairs, Write write) {
    out += '{';
    bool first = true;
    for (const auto& [key, value] : pairs) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, key);
        out += ':';
        write(out, value);
    }
    out += '}';
}

void string_json(std::string& out, std::string_view s) { append_json_string(out, s); }

void tags_json(std::string& out, const std::vector<std::string>& tags) { json_array(out, tags, string_json); }

void meta_json(std::string& out, const std::vector<std::pair<std::string, std::string>>& meta) {
    json_object(out, meta, string_json);
}

constexpr char kWeights[] = "{\"Passing\":1,\"Warning\":1}";
constexpr char kDatacenter[] = "dc1";

// AgentService, and the Service of a health entry (with indexes).
void service_json(std::string& out, const ServiceEntry& s, bool with_indexes) {
    out += '{';
    str(out, "ID", s.id);
    out += ',';
    str(out, "Service", s.name);
    out += ",\"Tags\":";
    tags_json(out, s.tags);
    out += ",\"Meta\":";
    meta_json(out, s.meta);
    out += ',';
    num(out, "Port", s.port);
    out += ',';
    str(out, "Address", s.address);
    out += ",\"Weights\":";
    out += kWeights;
    out += ",\"EnableTagOverride\":false";
    if (with_indexes) {
        out += ',';
        num(out, "CreateIndex", s.create_index);
        out += ',';
        num(out, "ModifyIndex", s.modify_index);
    } else {
        out += ',';
        str(out, "Datacenter", kDatacenter);
    }
    out += '}';
}

void check_json(std::string& out, const CheckEntry& k, const Catalog& c, const NodeInfo& node) {
    auto svc = c.services.find(k.service_id);
    out += '{';
    str(out, "Node", node.name);
    out += ',';
    str(out, "CheckID", k.id);
    out += ',';
    str(out, "Name", k.name);
    out += ',';
    str(out, "Status", status_name(k.status));
    out += ',';
    str(out, "Notes", k.notes);
    out += ',';
    str(out, "Output", k.output);
    out += ',';
    str(out, "ServiceID", k.service_id);
    out += ',';
    str(out, "ServiceName", svc != c.services.end() ? std::string_view(svc->second->name) : std::string_view());
    out += ",\"ServiceTags\":";
    tags_json(out, svc != c.services.end() ? svc->second->tags : std::vector<std::string>{});
    out += ",\"Type\":\"ttl\",";
    str(out, "TTL", format_duration_ms(k.ttl_ms));
    out += ",\"Definition\":{},";
    num(out, "CreateIndex", k.create_index);
    out += ',';
    num(out, "ModifyIndex", k.modify_index);
    out += '}';
}

// The node's fields that open both a health entry's Node and a catalog entry.
void node_head(std::string& out, const NodeInfo& node) {
    out += "{\"ID\":\"\",";
    str(out, "Node", node.name);
    out += ',';
    // Consul's clients fall back to the node's Address when a
    // ServiceAddress is empty.
    str(out, "Address", node.address);
    out += ',';
    str(out, "Datacenter", kDatacenter);
    out += ",\"TaggedAddresses\":null,";
}

void node_json(std::string& out, const NodeInfo& node) {
    node_head(out, node);
    out += "\"Meta\":null,\"CreateIndex\":1,\"ModifyIndex\":1}";
}

// One entry of GET /v1/catalog/service/<name>.
void catalog_service_json(std::string& out, const ServiceEntry& s, const NodeInfo& node) {
    node_head(out, node);
    out += "\"NodeMeta\":null,\"ServiceKind\":\"\",";
    str(out, "ServiceID", s.id);
    out += ',';
    str(out, "ServiceName", s.name);
    out += ",\"ServiceTags\":";
    tags_json(out, s.tags);
    out += ',';
    str(out, "ServiceAddress", s.address);
    out += ",\"ServiceWeights\":";
    out += kWeights;
    out += ",\"ServiceMeta\":";
    meta_json(out, s.meta);
    out += ',';
    num(out, "ServicePort", s.port);
    out += ",\"ServiceEnableTagOverride\":false,";
    num(out, "CreateIndex", s.create_index);
    out += ',';
    num(out, "ModifyIndex", s.modify_index);
    out += '}';
}

// cJSON stops strings at a NUL: refuse bodies that hide one in a string
// rather than silently cutting the value. Null with *error set, or the tree
// (null for JSON that does not parse, which each caller words its own way).
JsonPtr parse_body(std::string_view body, std::string* error) {
    if (body.find("\\u0000") != std::string_view::npos) {
        *error = "strings must not contain NUL characters";
        return {nullptr, cJSON_Delete};
    }
    return {cJSON_ParseWithLength(body.data(), body.size()), cJSON_Delete};
}

}  // namespace

RegisterParse parse_service_registration(std::string_view body) {
    RegisterParse p;
    JsonPtr root = parse_body(body, &p.error);
    if (!root) {
        if (p.error.empty()) p.error = "the body is not valid JSON";
        return p;
    }
    p.error = parse_registration(root.get(), &p.reg);
    return p;
}

CheckUpdateParse parse_check_update(std::string_view body) {
    CheckUpdateParse p;
    JsonPtr root = parse_body(body, &p.error);
    if (!root || !cJSON_IsObject(root.get())) {
        if (p.error.empty()) p.error = "the body must be a JSON object: {\"Status\": \"passing\", \"Output\": \"...\"}";
        return p;
    }
    std::string status;
    if (!json_string(root.get(), "Status", &status, &p.error) ||
        !json_string(root.get(), "Output", &p.output, &p.error))
        return p;
    if (!parse_status(status, &p.status)) {
        p.error = "Status must be passing, warning or critical";
        return p;
    }
    p.output = truncate_output(std::move(p.output));
    if (!valid_utf8(p.output)) p.error = "Output is not valid UTF-8";
    return p;
}

bool parse_go_duration_ms(std::string_view s, uint64_t* ms) {
    if (s == "0") {
        *ms = 0;
        return true;
    }
    if (!s.empty() && s[0] == '+') s.remove_prefix(1);
    if (s.empty()) return false;
    // Nanoseconds as a long double: exact enough for whole milliseconds.
    long double total = 0;
    while (!s.empty()) {
        size_t i = 0;
        long double value = 0;
        bool digits = false;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            value = value * 10 + (s[i++] - '0');
            digits = true;
        }
        if (i < s.size() && s[i] == '.') {
            i++;
            long double scale = 0.1L;
            while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
                value += (s[i++] - '0') * scale;
                scale /= 10;
                digits = true;
            }
        }
        if (!digits) return false;
        size_t u = i;
        while (u < s.size() && !(s[u] >= '0' && s[u] <= '9') && s[u] != '.') u++;
        std::string_view unit = s.substr(i, u - i);
        long double ns = 0;
        if (unit == "ns") {
            ns = 1;
        } else if (unit == "us" || unit == "\xc2\xb5s" || unit == "\xce\xbcs") {
            ns = 1e3L;
        } else if (unit == "ms") {
            ns = 1e6L;
        } else if (unit == "s") {
            ns = 1e9L;
        } else if (unit == "m") {
            ns = 60e9L;
        } else if (unit == "h") {
            ns = 3600e9L;
        } else {
            return false;
        }
        total += value * ns;
        if (total > 9.2e18L) return false;  // Go's limit: int64 nanoseconds
        s.remove_prefix(u);
    }
    *ms = static_cast<uint64_t>(std::ceil(total / 1e6L - 1e-9L));
    return true;
}

std::string format_duration_ms(uint64_t ms) {
    if (ms == 0) return "0s";
    if (ms < 1000) return std::to_string(ms) + "ms";
    std::string out;
    uint64_t h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, rest = ms % 1000;
    if (h > 0) out += std::to_string(h) + "h";
    if (h > 0 || m > 0) out += std::to_string(m) + "m";
    out += std::to_string(s);
    if (rest > 0) {
        std::string frac = std::to_string(rest + 1000).substr(1);
        while (frac.back() == '0') frac.pop_back();
        out += "." + frac;
    }
    return out + "s";
}

std::string truncate_output(std::string text) {
    if (text.size() <= Limits::kNote) return text;
    text.resize(Limits::kNote);
    // Back off a cut multi-byte character (at most 3 continuation bytes).
    for (int i = 0; i < 4 && !text.empty() && !valid_utf8(text); i++) text.pop_back();
    return text;
}

std::string render_agent_services(const Catalog& c) {
    std::string out;
    json_object(out, c.services, [](std::string& o, const ServicePtr& s) { service_json(o, *s, false); });
    return out + "\n";
}

std::string render_agent_checks(const Catalog& c, const NodeInfo& node) {
    std::string out;
    json_object(out, c.checks, [&](std::string& o, const CheckPtr& k) { check_json(o, *k, c, node); });
    return out + "\n";
}

std::string render_catalog_services(const Catalog& c) {
    std::map<std::string_view, std::set<std::string_view>> names;
    for (const auto& [id, s] : c.services) {
        auto& tags = names[s->name];
        for (const std::string& t : s->tags) tags.insert(t);
    }
    std::string out;
    json_object(out, names,
                [](std::string& o, const std::set<std::string_view>& tags) { json_array(o, tags, string_json); });
    return out + "\n";
}

std::string render_catalog_service(const std::vector<ServicePtr>& services, const NodeInfo& node) {
    std::string out;
    json_array(out, services, [&](std::string& o, const ServicePtr& s) { catalog_service_json(o, *s, node); });
    return out + "\n";
}

std::string render_health_service(const Catalog& c, const std::vector<ServicePtr>& services, const NodeInfo& node) {
    std::string out;
    json_array(out, services, [&](std::string& o, const ServicePtr& s) {
        o += "{\"Node\":";
        node_json(o, node);
        o += ",\"Service\":";
        service_json(o, *s, true);
        o += ",\"Checks\":";
        json_array(o, checks_of(c, *s), [&](std::string& o2, const CheckPtr& k) { check_json(o2, *k, c, node); });
        o += '}';
    });
    return out + "\n";
}

std::string render_health_checks(const Catalog& c, const std::vector<CheckPtr>& checks, const NodeInfo& node) {
    std::string out;
    json_array(out, checks, [&](std::string& o, const CheckPtr& k) { check_json(o, *k, c, node); });
    return out + "\n";
}

}  // namespace rampart::store
