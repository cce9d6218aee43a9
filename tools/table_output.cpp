#include "table_output.h"

#include <algorithm>
#include <cstdio>

#include "http_client.h"

namespace rampartctl {

JsonPtr request_json(const std::string& addr, const std::string& token, int timeout_ms, const char* method,
                     const std::string& path, std::string* raw) {
    JsonPtr none(nullptr, cJSON_Delete);
    HttpResult r = http_request(addr, method, path, token, "", timeout_ms);
    if (!r.ok) {
        fprintf(stderr, "rampartctl: %s: %s\n", addr.c_str(), r.error.c_str());
        return none;
    }
    JsonPtr body(cJSON_ParseWithLength(r.body.data(), r.body.size()), cJSON_Delete);
    if (r.status != 200) {
        std::string why = body ? json_text(body.get(), "error") : "-";
        fprintf(stderr, "rampartctl: HTTP %d: %s\n", r.status, why == "-" ? r.body.c_str() : why.c_str());
        return none;
    }
    if (!body) {
        fprintf(stderr, "rampartctl: %s: the answer is not JSON\n", addr.c_str());
        return none;
    }
    *raw = std::move(r.body);
    return body;
}

std::string json_text(const cJSON* obj, const char* name) {
    const cJSON* f = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (cJSON_IsString(f)) return f->valuestring;
    if (cJSON_IsNumber(f)) return std::to_string(static_cast<long long>(f->valuedouble));
    if (cJSON_IsBool(f)) return cJSON_IsTrue(f) ? "true" : "false";
    return "-";
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<size_t> width;
    for (const auto& row : rows) {
        width.resize(std::max(width.size(), row.size()));
        for (size_t i = 0; i < row.size(); i++) width[i] = std::max(width[i], row[i].size());
    }
    for (const auto& row : rows) {
        std::string line;
        for (size_t i = 0; i < row.size(); i++) {
            line += row[i];
            if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
        }
        printf("%s\n", line.c_str());
    }
}

}  // namespace rampartctl
