#include "store/snapshot_recovery.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "cluster/raft_adapter.h"
#include "util/file_io.h"

namespace rampart::store {
namespace {

bool parse_name(const char* name, EngineSnapshot* out) {
    unsigned long long term = 0, index = 0, ts = 0;
    int consumed = 0;
    if (sscanf(name, "snapshot-%llu-%llu-%llu%n", &term, &index, &ts, &consumed) != 3) return false;
    if (name[consumed] != '\0') return false;  // ".meta", ".corrupt", ".tmp" ...
    out->name = name;
    out->term = term;
    out->index = index;
    out->timestamp = ts;
    return true;
}

bool file_size(const std::string& path, uint64_t* size) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return false;
    *size = static_cast<uint64_t>(st.st_size);
    return true;
}

constexpr unsigned char kLz4Magic[4] = {0x04, 0x22, 0x4d, 0x18};

}  // namespace

std::vector<EngineSnapshot> list_engine_snapshots(const std::string& raft_dir) {
    std::vector<EngineSnapshot> out;
    std::unique_ptr<DIR, decltype(&closedir)> dir(opendir(raft_dir.c_str()), closedir);
    if (!dir) return out;
    while (struct dirent* e = readdir(dir.get())) {
        EngineSnapshot s;
        if (parse_name(e->d_name, &s)) out.push_back(std::move(s));
    }
    std::sort(out.begin(), out.end(), [](const EngineSnapshot& a, const EngineSnapshot& b) {
        if (a.index != b.index) return a.index > b.index;
        if (a.term != b.term) return a.term > b.term;
        return a.timestamp > b.timestamp;
    });
    return out;
}

std::string check_engine_snapshot(const std::string& path, bool* unverifiable) {
    *unverifiable = false;
    uint64_t meta_size = 0;
    if (!file_size(path + ".meta", &meta_size)) return "its .meta file is missing";
    if (meta_size == 0) return "its .meta file is empty";
    std::string data;
    std::string error;
    if (!util::read_whole_file(path, &data, &error)) return "cannot read it: " + error;
    if (data.size() >= 4 && std::memcmp(data.data(), kLz4Magic, 4) == 0) {
        *unverifiable = true;
        return {};
    }
    const void* payload = nullptr;
    size_t len = 0;
    if (rampart_raft_snapshot_check(data.data(), data.size(), &payload, &len) != 0)
        return "its checksum envelope does not match its " + std::to_string(data.size()) + " bytes";
    return {};
}

RecoveryReport recover_engine_snapshots(const std::string& raft_dir, unsigned retention) {
    RecoveryReport r;
    r.found = list_engine_snapshots(raft_dir);
    if (retention == 0) retention = 1;
    size_t good = 0;
    for (const EngineSnapshot& s : r.found) {
        std::string path = raft_dir + "/" + s.name;
        if (good == 0) {
            bool unverifiable = false;
            std::string why = check_engine_snapshot(path, &unverifiable);
            if (unverifiable) r.unverified.push_back(s.name);
            if (!why.empty()) {
                r.reasons.push_back(s.name + ": " + why);
                for (const std::string& f : {path, path + ".meta"}) {
                    if (::rename(f.c_str(), (f + ".corrupt").c_str()) == 0) {
                        r.moved_aside.push_back(f + ".corrupt");
                    } else if (errno != ENOENT) {
                        r.error = f + ": cannot move it aside: " + strerror(errno);
                        return r;
                    }
                }
                continue;
            }
        }
        // The newest good one and those after it: keep `retention`.
        if (++good > retention) {
            for (const std::string& f : {path, path + ".meta"}) {
                if (::unlink(f.c_str()) == 0) r.pruned.push_back(f);
            }
        }
    }
    return r;
}

}  // namespace rampart::store
