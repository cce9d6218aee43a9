// state.json and its v1 -> v2 migration (core/state/node_state.*), and the
// audit log it writes to (core/audit/audit_log.*): the seed's procedure step
// by step, a failure injected before each step (through the Hooks seam)
// rolls back to the exact v1 bytes, bad and hostile files, every step
// audited with increasing audit_ids; audit rotation and id monotonicity
// across reopen.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "audit/audit_log.h"
#include "metrics/registry.h"
#include "state/node_state.h"
#include "util/sha256.h"

// cmocka last: its fail() macro clashes with the C++ library.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using namespace rampart;

namespace {

const char* kV1 =
    "{\"schema_version\": 1, \"node_id\": \"node_7\", \"raft_id\": 3, \"created_at\": \"2024-01-02T03:04:05Z\"}\n";

std::string make_dir() {
    char tmpl[] = "/tmp/rampart-state-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return tmpl;
}
void remove_dir(const std::string& dir) { assert_int_equal(system(("rm -rf " + dir).c_str()), 0); }

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}
void write(const std::string& path, std::string_view data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
}
bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

std::vector<std::string> lines(const std::string& path) {
    std::vector<std::string> out;
    std::istringstream in(slurp(path));
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Audit ids strictly increase by one, line after line.
void assert_ids_consecutive(const std::vector<std::string>& ls, uint64_t first) {
    for (size_t i = 0; i < ls.size(); i++) {
        uint64_t id = audit::AuditLog::id_of_line(ls[i]);
        if (id != first + i)
            fail_msg("line %zu has audit_id %llu: %s", i, static_cast<unsigned long long>(id), ls[i].c_str());
    }
}

struct Fixture {
    std::string dir = make_dir();
    audit::AuditLog audit{audit::Options{dir + "/audit.jsonl", 1 << 20, 3, "node_7"}};
    metrics::Registry registry;
    metrics::Metric* counter = registry.counter("rampart_migration_events_total", "t", {"result"});
    state::Sinks sinks() { return {&audit, counter}; }
    std::string path(const char* name) const { return dir + "/" + name; }
    ~Fixture() { remove_dir(dir); }
};

void test_v1_migrates_to_v2(void**) {
    Fixture f;
    write(f.path("state.json"), kV1);
    std::string error;
    assert_int_equal(static_cast<int>(state::migrate_state(f.dir, f.sinks(), &error)),
                     static_cast<int>(state::MigrateResult::Migrated));
    state::NodeState s;
    int version = 0;
    assert_true(state::parse_state(slurp(f.path("state.json")), &s, &version, &error));
    assert_int_equal(version, 2);
    assert_string_equal(s.node_id.c_str(), "node_7");
    assert_int_equal(s.raft_id, 3);
    assert_string_equal(s.created_at.c_str(), "2024-01-02T03:04:05Z");  // carried over
    assert_false(s.rampart_version.empty());
    // The backup is the exact v1 bytes, its checksum in sha256sum's format.
    assert_string_equal(slurp(f.path("state.backup.v1")).c_str(), kV1);
    assert_string_equal(slurp(f.path("state.backup.v1.sha256")).c_str(),
                        (util::sha256_hex(kV1) + "  state.backup.v1\n").c_str());
    assert_false(exists(f.path("state.v2.json")));
    // start, 7 steps, complete: each audited, ids consecutive.
    auto ls = lines(f.path("audit.jsonl"));
    assert_int_equal(ls.size(), 9);
    assert_ids_consecutive(ls, 1);
    const char* steps[] = {"start", "backup", "checksum", "load", "convert", "save", "verify", "replace", "complete"};
    for (size_t i = 0; i < 9; i++) {
        assert_true(has(ls[i], "\"event\":\"state_migration\""));
        if (!has(ls[i], std::string("\"step\":\"") + steps[i] + "\"")) fail_msg("%s", ls[i].c_str());
    }
    assert_true(has(ls[8], "\"result\":\"success\""));
    assert_int_equal(f.counter->value({"success"}), 1);
    // Already v2: nothing to do, nothing audited.
    assert_int_equal(static_cast<int>(state::migrate_state(f.dir, f.sinks(), &error)),
                     static_cast<int>(state::MigrateResult::NotNeeded));
    assert_int_equal(lines(f.path("audit.jsonl")).size(), 9);
}

// A file without schema_version is v1 too.
void test_unversioned_file_is_v1(void**) {
    Fixture f;
    write(f.path("state.json"), "{\"node_id\": \"node_7\"}");
    std::string error;
    assert_int_equal(static_cast<int>(state::migrate_state(f.dir, f.sinks(), &error)),
                     static_cast<int>(state::MigrateResult::Migrated));
    state::NodeState s;
    int version = 0;
    assert_true(state::parse_state(slurp(f.path("state.json")), &s, &version, &error));
    assert_int_equal(s.raft_id, 1);
    assert_false(s.created_at.empty());
}

void test_failure_at_every_step_rolls_back(void**) {
    for (int k = 0; k <= static_cast<int>(state::Step::Replace); k++) {
        Fixture f;
        write(f.path("state.json"), kV1);
        auto target = static_cast<state::Step>(k);
        state::Hooks hooks;
        hooks.fail_before = [target](state::Step s) { return s == target; };
        std::string error;
        assert_int_equal(static_cast<int>(state::migrate_state(f.dir, f.sinks(), &error, hooks)),
                         static_cast<int>(state::MigrateResult::Failed));
        if (!has(error, std::string("failed at ") + state::step_name(target))) fail_msg("%s", error.c_str());
        assert_true(has(error, "rolled back"));
        // state.json is the v1 file, byte for byte; no v2 file is left.
        assert_string_equal(slurp(f.path("state.json")).c_str(), kV1);
        assert_false(exists(f.path("state.v2.json")));
        auto ls = lines(f.path("audit.jsonl"));
        assert_ids_consecutive(ls, 1);
        assert_int_equal(ls.size(), static_cast<size_t>(k) + 3);  // start, k steps, failed, rollback
        assert_true(has(ls[ls.size() - 2], "\"result\":\"failed\""));
        assert_true(has(ls.back(), "\"step\":\"rollback\"") && has(ls.back(), "\"result\":\"ok\""));
        assert_int_equal(f.counter->value({"failure"}), 1);
        assert_int_equal(f.counter->value({"success"}), 0);
    }
}

void test_bad_v1_files_roll_back(void**) {
    const char* bad[] = {
        "not json",
        "{\"schema_version\": 1}",                          // no node_id
        "{\"node_id\": \"../../etc\"}",                     // hostile id
        "{\"node_id\": \"n\", \"raft_id\": -1}",            // bad raft id
        "{\"node_id\": \"n\", \"raft_id\": 1.5}",           // not an integer
        "{\"schema_version\": \"1\", \"node_id\": \"n\"}",  // version not a number
        "[1, 2, 3]",
    };
    for (const char* text : bad) {
        Fixture f;
        write(f.path("state.json"), text);
        std::string error;
        assert_int_equal(static_cast<int>(state::migrate_state(f.dir, f.sinks(), &error)),
                         static_cast<int>(state::MigrateResult::Failed));
        if (!has(error, "failed at load")) fail_msg("%s: %s", text, error.c_str());
        assert_string_equal(slurp(f.path("state.json")).c_str(), text);
        assert_false(exists(f.path("state.v2.json")));
    }
    // A huge file is refused without trouble.
    Fixture f;
    write(f.path("state.json"), "{\"node_id\": \"" + std::string(1 << 20, 'a') + "\"}");
    std::string error;
    assert_int_equal(static_cast<int>(state::migrate_state(f.dir, f.sinks(), &error)),
                     static_cast<int>(state::MigrateResult::Failed));
}

void test_ensure_state(void**) {
    Fixture f;
    state::BootInfo boot{"node_7", "9.9.9", "sha256:abc"};
    std::string error;
    // A new node: created.
    assert_true(state::ensure_state(f.dir, boot, f.sinks(), &error));
    state::NodeState s;
    int version = 0;
    assert_true(state::parse_state(slurp(f.path("state.json")), &s, &version, &error));
    assert_int_equal(version, 2);
    assert_string_equal(s.configuration_hash.c_str(), "sha256:abc");
    std::string created = s.created_at;
    // A restart keeps created_at.
    assert_true(state::ensure_state(f.dir, boot, f.sinks(), &error));
    assert_true(state::parse_state(slurp(f.path("state.json")), &s, &version, &error));
    assert_string_equal(s.created_at.c_str(), created.c_str());
    // Another node's data dir, a newer schema: refused.
    boot.node_id = "node_8";
    assert_false(state::ensure_state(f.dir, boot, f.sinks(), &error));
    assert_true(has(error, "belongs to node \"node_7\""));
    write(f.path("state.json"), "{\"schema_version\": 3, \"node_id\": \"node_7\"}");
    boot.node_id = "node_7";
    assert_false(state::ensure_state(f.dir, boot, f.sinks(), &error));
    assert_true(has(error, "schema_version 3"));
    // v1 on start: migrated, then the boot recorded.
    write(f.path("state.json"), kV1);
    assert_true(state::ensure_state(f.dir, boot, f.sinks(), &error));
    assert_true(state::parse_state(slurp(f.path("state.json")), &s, &version, &error));
    assert_int_equal(version, 2);
    assert_int_equal(s.raft_id, 3);
}

// ---- audit log ----------------------------------------------------------------

void test_audit_ids_survive_reopen_and_rotation(void**) {
    std::string dir = make_dir();
    audit::Options o{dir + "/audit.jsonl", 600, 2, "n1"};
    std::string error;
    {
        audit::AuditLog log(o);
        assert_true(log.open(&error));
        for (int i = 1; i <= 3; i++) assert_int_equal(log.append("e", {{"i", int64_t{i}}}, &error), i);
    }
    uint64_t next = 4;
    for (int round = 0; round < 5; round++) {
        audit::AuditLog log(o);
        assert_true(log.open(&error));
        assert_int_equal(log.last_id(), next - 1);
        for (int i = 0; i < 4; i++) {
            uint64_t id = log.append("join_attempt", {{"peer", std::string(60, 'p')}, {"ok", true}}, &error);
            assert_int_equal(id, next++);
        }
    }
    // Rotated by size, at most `keep` old files, each under the limit, and
    // the ids across current, .1 and .2 are consecutive and end at the last.
    assert_true(exists(dir + "/audit.jsonl.1"));
    assert_true(exists(dir + "/audit.jsonl.2"));
    assert_false(exists(dir + "/audit.jsonl.3"));
    std::vector<std::string> all;
    for (const char* name : {"/audit.jsonl.2", "/audit.jsonl.1", "/audit.jsonl"}) {
        struct stat st {};
        assert_int_equal(stat((dir + name).c_str(), &st), 0);
        assert_true(st.st_size <= 600);
        assert_int_equal(st.st_mode & 0777, 0600);
        for (auto& l : lines(dir + name)) all.push_back(l);
    }
    assert_ids_consecutive(all, audit::AuditLog::id_of_line(all.front()));
    assert_int_equal(audit::AuditLog::id_of_line(all.back()), next - 1);
    // Just rotated (empty current file): ids continue from .1.
    rename((dir + "/audit.jsonl").c_str(), (dir + "/audit.jsonl.1").c_str());
    write(dir + "/audit.jsonl", "");
    audit::AuditLog log(o);
    assert_true(log.open(&error));
    assert_int_equal(log.append("e", {}, &error), next);
    remove_dir(dir);
}

void test_audit_line_format(void**) {
    std::string line = audit::AuditLog::format(
        7, 1731412800123, "node_1", "state_migration",
        {{"step", std::string("backup")}, {"n", int64_t{-2}}, {"ok", false}, {"evil", std::string("a\"b\n\x01")}});
    assert_string_equal(line.c_str(),
                        "{\"audit_id\":7,\"ts\":\"2024-11-12T12:00:00.123Z\",\"node_id\":\"node_1\","
                        "\"event\":\"state_migration\",\"fields\":{\"step\":\"backup\",\"n\":-2,\"ok\":false,"
                        "\"evil\":\"a\\\"b\\n\\u0001\"}}\n");
    assert_int_equal(audit::AuditLog::id_of_line(line.substr(0, line.size() - 1)), 7);
    assert_int_equal(audit::AuditLog::id_of_line("{\"audit_id\":12"), 0);  // torn
    assert_int_equal(audit::AuditLog::id_of_line("garbage"), 0);
    // A torn last line (crash mid-write) does not stop the ids.
    std::string dir = make_dir();
    write(dir + "/audit.jsonl", line + "{\"audit_id\":8,\"ts\":\"20");
    audit::AuditLog log(audit::Options{dir + "/audit.jsonl", 1 << 20, 1, "n"});
    std::string error;
    assert_true(log.open(&error));
    assert_int_equal(log.last_id(), 7);
    remove_dir(dir);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_migrates_to_v2),
        cmocka_unit_test(test_unversioned_file_is_v1),
        cmocka_unit_test(test_failure_at_every_step_rolls_back),
        cmocka_unit_test(test_bad_v1_files_roll_back),
        cmocka_unit_test(test_ensure_state),
        cmocka_unit_test(test_audit_ids_survive_reopen_and_rotation),
        cmocka_unit_test(test_audit_line_format),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
