#include "state/node_state.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "audit/audit_log.h"
#include "log.h"
#include "metrics/registry.h"
#include "rampart_version.h"
#include "util/file_io.h"
#include "util/sha256.h"

namespace rampart::state {
namespace {

using JsonPtr = std::unique_ptr<cJSON, decltype(&cJSON_Delete)>;

constexpr const char* kState = "state.json";
constexpr const char* kBackup = "state.backup.v1";
constexpr const char* kBackupSum = "state.backup.v1.sha256";
constexpr const char* kNew = "state.v2.json";
constexpr size_t kMaxStateBytes = size_t{64} * 1024;  // a state file is a few hundred bytes

std::string join(const std::string& dir, const char* name) { return dir + "/" + name; }

bool fsync_dir(const std::string& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = ::fsync(fd) == 0;
    ::close(fd);
    return ok;
}

// Write and fsync a whole file (0600), replacing what was there.
bool write_file(const std::string& path, std::string_view data, std::string* error) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        *error = path + ": " + strerror(errno);
        return false;
    }
    bool ok = util::write_all(fd, data) && ::fsync(fd) == 0;
    if (!ok) *error = path + ": " + strerror(errno);
    ::close(fd);
    return ok;
}

// Write beside, fsync, rename over, fsync the directory.
bool replace_file(const std::string& dir, const char* name, std::string_view data, std::string* error) {
    std::string tmp = join(dir, name) + ".tmp";
    if (!write_file(tmp, data, error)) {
        ::unlink(tmp.c_str());
        return false;
    }
    if (::rename(tmp.c_str(), join(dir, name).c_str()) != 0) {
        *error = join(dir, name) + ": " + strerror(errno);
        ::unlink(tmp.c_str());
        return false;
    }
    fsync_dir(dir);
    return true;
}

std::string text_of(const cJSON* obj, const char* key) {
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

std::string now_text() { return audit::utc_timestamp(audit::now_unix_ms()); }

// One migration event: the audit line, and the counter for the outcomes.
class Trail {
public:
    Trail(const Sinks& sinks) : sinks_(sinks) {}
    bool record(std::string_view step, std::string_view result, std::string_view detail = {}) {
        if (sinks_.audit == nullptr) return true;
        audit::Fields f{
            {"step", std::string(step)}, {"result", std::string(result)}, {"from", int64_t{1}}, {"to", int64_t{2}}};
        if (!detail.empty()) f.push_back({"detail", std::string(detail)});
        std::string error;
        if (sinks_.audit->append("state_migration", f, &error) != 0) return true;
        log::error("cannot write the audit log", {{"path", sinks_.audit->path()}, {"error", error}});
        return false;
    }
    void count(const char* result) {
        if (sinks_.migrations != nullptr) sinks_.migrations->add({result}, 1);
    }

private:
    const Sinks& sinks_;
};

bool valid_node_id(const std::string& id) {
    if (id.empty() || id.size() > 63) return false;
    for (char c : id)
        if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
    return true;
}

}  // namespace

const char* step_name(Step step) {
    switch (step) {
        case Step::Backup: return "backup";
        case Step::Checksum: return "checksum";
        case Step::Load: return "load";
        case Step::Convert: return "convert";
        case Step::Save: return "save";
        case Step::Verify: return "verify";
        case Step::Replace: return "replace";
    }
    return "unknown";
}

bool parse_state(std::string_view json, NodeState* out, int* version, std::string* error) {
    if (json.size() > kMaxStateBytes) {
        *error = "state file larger than " + std::to_string(kMaxStateBytes) + " bytes";
        return false;
    }
    JsonPtr root(cJSON_ParseWithLength(json.data(), json.size()), cJSON_Delete);
    if (!root || !cJSON_IsObject(root.get())) {
        *error = "state file is not a JSON object";
        return false;
    }
    const cJSON* sv = cJSON_GetObjectItemCaseSensitive(root.get(), "schema_version");
    if (sv != nullptr && (!cJSON_IsNumber(sv) || sv->valuedouble != static_cast<int>(sv->valuedouble))) {
        *error = "schema_version must be an integer";
        return false;
    }
    *version = sv == nullptr ? 1 : static_cast<int>(sv->valuedouble);
    if (*version < 1 || *version > kSchemaVersion) {
        *error = "schema_version " + std::to_string(*version) + " is not one this build reads (1.." +
                 std::to_string(kSchemaVersion) + "): written by a newer rampart?";
        return false;
    }
    NodeState s;
    s.schema_version = *version;
    s.node_id = text_of(root.get(), "node_id");
    if (!valid_node_id(s.node_id)) {
        *error = "node_id is missing or not 1-63 of A-Z a-z 0-9 _ -";
        return false;
    }
    const cJSON* rid = cJSON_GetObjectItemCaseSensitive(root.get(), "raft_id");
    if (rid != nullptr) {
        if (!cJSON_IsNumber(rid) || rid->valuedouble < 1 || rid->valuedouble > 9007199254740991.0 ||
            rid->valuedouble != static_cast<double>(static_cast<uint64_t>(rid->valuedouble))) {
            *error = "raft_id must be a positive integer";
            return false;
        }
        s.raft_id = static_cast<uint64_t>(rid->valuedouble);
    } else if (*version == 2) {
        *error = "raft_id is missing";
        return false;
    }
    s.created_at = text_of(root.get(), "created_at");
    s.updated_at = text_of(root.get(), "updated_at");
    s.last_boot_time = text_of(root.get(), "last_boot_time");
    s.configuration_hash = text_of(root.get(), "configuration_hash");
    if (std::string st = text_of(root.get(), "system_state"); !st.empty()) s.system_state = st;
    if (*version == 2) {
        const cJSON* v = cJSON_GetObjectItemCaseSensitive(root.get(), "versions");
        if (!cJSON_IsObject(v)) {
            *error = "versions is missing";
            return false;
        }
        s.rampart_version = text_of(v, "rampart");
        const cJSON* sf = cJSON_GetObjectItemCaseSensitive(v, "snapshot_format");
        const cJSON* cv = cJSON_GetObjectItemCaseSensitive(v, "command_version");
        if (cJSON_IsNumber(sf)) s.snapshot_format = sf->valueint;
        if (cJSON_IsNumber(cv)) s.command_version = cv->valueint;
        if (s.created_at.empty()) {
            *error = "created_at is missing";
            return false;
        }
    }
    *out = std::move(s);
    return true;
}

std::string render_state(const NodeState& s) {
    JsonPtr root(cJSON_CreateObject(), cJSON_Delete);
    cJSON_AddNumberToObject(root.get(), "schema_version", kSchemaVersion);
    cJSON_AddStringToObject(root.get(), "node_id", s.node_id.c_str());
    cJSON_AddNumberToObject(root.get(), "raft_id", static_cast<double>(s.raft_id));
    cJSON_AddStringToObject(root.get(), "created_at", s.created_at.c_str());
    cJSON_AddStringToObject(root.get(), "updated_at", s.updated_at.c_str());
    cJSON_AddStringToObject(root.get(), "last_boot_time", s.last_boot_time.c_str());
    cJSON_AddStringToObject(root.get(), "system_state", s.system_state.c_str());
    cJSON_AddStringToObject(root.get(), "configuration_hash", s.configuration_hash.c_str());
    cJSON* v = cJSON_AddObjectToObject(root.get(), "versions");
    cJSON_AddStringToObject(v, "rampart", s.rampart_version.c_str());
    cJSON_AddNumberToObject(v, "snapshot_format", s.snapshot_format);
    cJSON_AddNumberToObject(v, "command_version", s.command_version);
    std::unique_ptr<char, decltype(&cJSON_free)> text(cJSON_Print(root.get()), cJSON_free);
    return std::string(text.get()) + "\n";
}

NodeState convert_v1(const NodeState& v1, std::string_view now) {
    NodeState s = v1;
    s.schema_version = kSchemaVersion;
    if (s.created_at.empty()) s.created_at = std::string(now);
    s.updated_at = std::string(now);
    if (s.last_boot_time.empty()) s.last_boot_time = std::string(now);
    s.rampart_version = RAMPART_VERSION;
    return s;
}

MigrateResult migrate_state(const std::string& dir, const Sinks& sinks, std::string* error, const Hooks& hooks) {
    std::string original;
    if (!util::read_whole_file(join(dir, kState), &original, error)) return MigrateResult::Failed;
    NodeState v1;
    int version = 0;
    std::string parse_error;
    bool parsed = parse_state(original, &v1, &version, &parse_error);
    if (parsed && version == kSchemaVersion) return MigrateResult::NotNeeded;

    Trail trail(sinks);
    log::info("Starting state v1 -> v2 migration", {{"dir", dir}});
    trail.record("start", "ok");
    bool new_written = false;
    Step step = Step::Backup;
    std::string why;
    auto failing = [&](Step s) {
        step = s;
        if (hooks.fail_before && hooks.fail_before(s)) {
            why = std::string("injected failure before ") + step_name(s);
            return true;
        }
        return false;
    };
    auto done = [&](Step s, const char* msg) {
        log::info(msg, {{"step", step_name(s)}});
        return trail.record(step_name(s), "ok");
    };
    NodeState v2;
    std::string rendered, sum;
    bool ok = false;
    do {
        // 1. Backup: the exact bytes of state.json.
        if (failing(Step::Backup) || !write_file(join(dir, kBackup), original, &why)) break;
        if (!done(Step::Backup, "Creating backup of v1 state")) break;
        // 2. Its checksum, in sha256sum's format (`sha256sum -c` checks it).
        sum = util::sha256_hex(original);
        if (failing(Step::Checksum) || !write_file(join(dir, kBackupSum), sum + "  " + kBackup + "\n", &why) ||
            !fsync_dir(dir))
            break;
        if (!done(Step::Checksum, "Computing checksum of backup")) break;
        // 3. Load.
        if (failing(Step::Load)) break;
        if (!parsed) {
            why = "state.json is not a valid v1 state: " + parse_error;
            break;
        }
        if (!done(Step::Load, "Loading v1 state")) break;
        // 4. Convert.
        if (failing(Step::Convert)) break;
        v2 = convert_v1(v1, now_text());
        rendered = render_state(v2);
        if (!done(Step::Convert, "Converting v1 state to v2")) break;
        // 5. Save beside.
        if (failing(Step::Save)) break;
        new_written = true;
        if (!write_file(join(dir, kNew), rendered, &why)) break;
        if (!done(Step::Save, "Saving v2 state")) break;
        // 6. Verify: the backup still hashes to its checksum file, and the new
        // file reads back as the v2 state we meant to write.
        if (failing(Step::Verify)) break;
        std::string backup, sumfile, reread;
        NodeState check;
        int check_version = 0;
        std::string check_error;
        if (!util::read_whole_file(join(dir, kBackup), &backup, &why) ||
            !util::read_whole_file(join(dir, kBackupSum), &sumfile, &why))
            break;
        if (util::sha256_hex(backup) != sum || sumfile.compare(0, sum.size(), sum) != 0 || backup != original) {
            why = "Backup checksum verification failed";
            break;
        }
        if (!util::read_whole_file(join(dir, kNew), &reread, &why)) break;
        if (reread != rendered || !parse_state(reread, &check, &check_version, &check_error) ||
            check_version != kSchemaVersion || check.node_id != v1.node_id || check.raft_id != v1.raft_id) {
            why = "the v2 state did not read back as written" + (check_error.empty() ? "" : ": " + check_error);
            break;
        }
        if (!done(Step::Verify, "Verifying backup checksum")) break;
        // 7. Replace, atomically.
        if (failing(Step::Replace)) break;
        if (::rename(join(dir, kNew).c_str(), join(dir, kState).c_str()) != 0) {
            why = join(dir, kState) + ": " + strerror(errno);
            break;
        }
        new_written = false;
        fsync_dir(dir);
        if (!done(Step::Replace, "Replacing state.json with v2")) break;
        ok = true;
    } while (false);

    if (ok) {
        trail.record("complete", "success");
        trail.count("success");
        log::info("State migration v1 -> v2 completed successfully", {{"dir", dir}});
        return MigrateResult::Migrated;
    }
    if (why.empty()) why = "the audit log could not be written";
    trail.record(step_name(step), "failed", why);
    // 8. Roll back: state.json holds the v1 bytes again and state.v2.json is
    // gone. The backup and its checksum stay for the operator.
    std::string now, rollback_error;
    bool restored = util::read_whole_file(join(dir, kState), &now, &rollback_error) && now == original;
    if (!restored) restored = replace_file(dir, kState, original, &rollback_error);
    if (new_written) ::unlink(join(dir, kNew).c_str());
    trail.record("rollback", restored ? "ok" : "failed", rollback_error);
    trail.count("failure");
    log::error("CRITICAL: state migration v1 -> v2 failed: Rolling back to v1 state", {{"severity", "critical"},
                                                                                       {"step", step_name(step)},
                                                                                       {"error", why},
                                                                                       {"rolled_back", restored},
                                                                                       {"backup", join(dir, kBackup)}});
    *error = std::string("state migration failed at ") + step_name(step) + ": " + why +
             (restored ? " (rolled back to v1)" : " (ROLLBACK FAILED: " + rollback_error + ")");
    return MigrateResult::Failed;
}

bool ensure_state(const std::string& dir, const BootInfo& boot, const Sinks& sinks, std::string* error,
                  const Hooks& hooks) {
    std::string path = join(dir, kState);
    struct stat st {};
    std::string now = now_text();
    NodeState s;
    if (::stat(path.c_str(), &st) != 0) {
        s.node_id = boot.node_id;
        s.created_at = now;
        s.rampart_version = boot.rampart_version;
        if (sinks.audit != nullptr) {
            std::string audit_error;
            sinks.audit->append("state_created", {{"node_id", boot.node_id}, {"schema_version", int64_t{2}}},
                                &audit_error);
        }
    } else {
        if (migrate_state(dir, sinks, error, hooks) == MigrateResult::Failed) return false;
        std::string text;
        int version = 0;
        if (!util::read_whole_file(path, &text, error)) return false;
        if (!parse_state(text, &s, &version, error)) {
            *error = path + ": " + *error;
            return false;
        }
        if (s.node_id != boot.node_id) {
            *error =
                path + ": this data_dir belongs to node \"" + s.node_id + "\", not \"" + boot.node_id + "\" (node.id)";
            return false;
        }
    }
    if (sinks.audit != nullptr) {
        std::string audit_error;
        if (sinks.audit->append("node_start", {{"version", boot.rampart_version}, {"created_at", s.created_at}},
                                &audit_error) == 0)
            log::error("cannot write the audit log", {{"path", sinks.audit->path()}, {"error", audit_error}});
    }
    s.updated_at = now;
    s.last_boot_time = now;
    s.system_state = "running";
    s.configuration_hash = boot.configuration_hash;
    s.rampart_version = boot.rampart_version;
    return replace_file(dir, kState, render_state(s), error);
}

}  // namespace rampart::state
