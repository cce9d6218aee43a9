#include "snapshot_command.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "http_client.h"
#include "store/snapshot_file.h"

namespace rampartctl {
namespace {

using rampart::store::crc_text;
using rampart::store::SnapshotFileInfo;

constexpr int kOk = 0;
constexpr int kFailure = 1;
constexpr int kUsage = 2;
constexpr int kTimeoutMs = 120000;  // a whole state, both ways

int fail(const std::string& msg) {
    fprintf(stderr, "rampartctl: %s\n", msg.c_str());
    return kFailure;
}

bool read_file(const std::string& path, std::string* out, std::string* error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        *error = path + ": " + strerror(errno);
        return false;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    *out = ss.str();
    return true;
}

// Beside, fsync'ed, renamed over: a crash never leaves half a snapshot
// under the name.
bool write_file(const std::string& path, const std::string& data, std::string* error) {
    std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        *error = tmp + ": " + strerror(errno);
        return false;
    }
    size_t off = 0;
    bool ok = true;
    while (ok && off < data.size()) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) off += static_cast<size_t>(n);
    }
    ok = ok && ::fsync(fd) == 0;
    if (!ok) *error = tmp + ": " + strerror(errno);
    ::close(fd);
    if (ok && ::rename(tmp.c_str(), path.c_str()) != 0) {
        *error = path + ": " + strerror(errno);
        ok = false;
    }
    if (!ok) ::unlink(tmp.c_str());
    return ok;
}

std::string describe_json(const SnapshotFileInfo& i, uint64_t bytes) {
    return "\"index\":" + std::to_string(i.index) + ",\"term\":" + std::to_string(i.term) +
           ",\"kv_index\":" + std::to_string(i.kv_index) + ",\"keys\":" + std::to_string(i.keys) +
           ",\"size\":" + std::to_string(bytes) + ",\"checksum\":\"" + crc_text(i.payload_crc) + "\"";
}

std::string answer_error(const HttpResult& r) {
    std::string body = r.body;
    while (!body.empty() && body.back() == '\n') body.pop_back();
    return "HTTP " + std::to_string(r.status) + ": " + body;
}

int save(const std::string& file, const NodeAccess& node) {
    HttpResult r = http_request(node.addr, "GET", "/v1/snapshot", node.token, "", kTimeoutMs);
    if (!r.ok) return fail(r.error);
    if (r.status != 200) return fail(answer_error(r));
    SnapshotFileInfo info;
    std::string_view payload;
    std::string error;
    if (!rampart::store::decode_snapshot_file(r.body, &info, &payload, &error))
        return fail("the node sent a bad snapshot: " + error);
    if (!write_file(file, r.body, &error)) return fail(error);
    if (node.json) {
        printf("{\"file\":\"%s\",%s}\n", file.c_str(), describe_json(info, r.body.size()).c_str());
    } else {
        printf("saved %s: index %llu, %llu keys, %zu bytes, %s\n", file.c_str(),
               static_cast<unsigned long long>(info.index), static_cast<unsigned long long>(info.keys), r.body.size(),
               crc_text(info.payload_crc).c_str());
    }
    return kOk;
}

int restore(const std::string& file, const NodeAccess& node) {
    std::string data, error;
    if (!read_file(file, &data, &error)) return fail(error);
    // Refuse a bad file here, without bothering the node.
    rampart::store::SnapshotInspection check = rampart::store::inspect_snapshot_file(data);
    if (!check.ok()) return fail(file + ": " + check.error + "; nothing was restored");
    HttpResult r = http_request(node.addr, "PUT", "/v1/snapshot", node.token, data, kTimeoutMs);
    if (!r.ok) return fail(r.error);
    if (r.status != 200) return fail(answer_error(r));
    if (node.json) {
        fputs(r.body.c_str(), stdout);
    } else {
        std::string index;
        for (const auto& [k, v] : r.headers)
            if (strcasecmp(k.c_str(), "X-Rampart-Index") == 0) index = v;
        printf("restored %s: %llu keys, now at index %s\n", file.c_str(),
               static_cast<unsigned long long>(check.info.keys), index.c_str());
    }
    return kOk;
}

int inspect(const std::string& file, const NodeAccess& node) {
    std::string data, error;
    if (!read_file(file, &data, &error)) return fail(error);
    rampart::store::SnapshotInspection r = rampart::store::inspect_snapshot_file(data);
    const char* verdict = r.ok() ? "OK" : "BAD";
    if (node.json) {
        std::string out = "{\"file\":\"" + file + "\",\"ok\":" + (r.ok() ? "true" : "false");
        if (r.header_ok) out += "," + describe_json(r.info, r.file_bytes);
        if (!r.ok()) {
            std::string e;
            for (char c : r.error) e += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
            out += ",\"error\":\"" + e + "\"";
        }
        printf("%s}\n", out.c_str());
    } else if (!r.header_ok) {
        printf("file:      %s\nsize:      %llu bytes\nchecksum:  BAD (%s)\n", file.c_str(),
               static_cast<unsigned long long>(r.file_bytes), r.error.c_str());
    } else {
        printf(
            "file:      %s\nformat:    %u\nindex:     %llu\nterm:      %llu\nkv_index:  %llu\n"
            "size:      %llu bytes\nkeys:      %llu\nchecksum:  %s %s\n",
            file.c_str(), r.info.format, static_cast<unsigned long long>(r.info.index),
            static_cast<unsigned long long>(r.info.term), static_cast<unsigned long long>(r.info.kv_index),
            static_cast<unsigned long long>(r.file_bytes), static_cast<unsigned long long>(r.info.keys),
            crc_text(r.info.payload_crc).c_str(), verdict);
        if (!r.ok()) printf("problem:   %s\n", r.error.c_str());
    }
    return r.ok() ? kOk : kFailure;
}

}  // namespace

int snapshot_command(const std::vector<std::string>& args, const NodeAccess& node) {
    if (args.size() != 3) {
        fprintf(stderr, "usage: rampartctl snapshot save|restore|inspect FILE\n");
        return kUsage;
    }
    if (args[1] == "save") return save(args[2], node);
    if (args[1] == "restore") return restore(args[2], node);
    if (args[1] == "inspect") return inspect(args[2], node);
    fprintf(stderr, "rampartctl: unknown snapshot command '%s'\nusage: rampartctl snapshot save|restore|inspect FILE\n",
            args[1].c_str());
    return kUsage;
}

}  // namespace rampartctl
