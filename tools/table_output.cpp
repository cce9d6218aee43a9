#include "table_output.h"

#include <algorithm>
#include <cstdio>

namespace rampartctl {

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
