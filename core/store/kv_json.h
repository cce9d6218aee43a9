// Consul's JSON shapes for the KV and txn endpoints:
//   entries  [{"LockIndex":0,"Key":"k","Flags":0,"Value":"<base64>"|null,
//              "CreateIndex":1,"ModifyIndex":2}]
//   txn in   [{"KV":{"Verb":"cas","Key":"k","Value":"<base64>","Flags":0,"Index":5}}]
//   txn out  {"Results":[{"KV":{...}}],"Errors":null}
//            {"Results":null,"Errors":[{"OpIndex":0,"What":"..."}]}
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/command.h"
#include "store/result.h"

namespace rampart::store {

// A JSON string of UTF-8 text: quotes, backslashes and control characters
// escaped, other bytes as they are (keys are checked UTF-8).
void append_json_string(std::string& out, std::string_view s);

using NamedEntry = std::pair<std::string_view, EntryPtr>;
std::string render_entries(const std::vector<NamedEntry>& entries);
std::string render_keys(const std::vector<std::string>& keys);
std::string render_txn(const Result& result);

struct TxnParse {
    Txn txn;
    int status = 200;  // 400 malformed, 413 too many operations or a value too large
    std::string error;
    bool ok() const { return status == 200; }
};
TxnParse parse_txn(std::string_view body);

}  // namespace rampart::store
