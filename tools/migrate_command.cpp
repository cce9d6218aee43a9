#include "migrate_command.h"

#include <cstdio>
#include <cstdlib>

#include "audit/audit_log.h"
#include "state/node_state.h"

namespace rampartctl {

int migrate_command(const std::vector<std::string>& args, bool json) {
    if (args.size() > 2) {
        fprintf(stderr, "usage: rampartctl migrate-state [DIR]\n");
        return 2;
    }
    std::string dir = "/var/lib/rampart";
    if (const char* env = getenv("RAMPART_NODE_DATA_DIR"); env != nullptr && *env != '\0') dir = env;
    if (args.size() == 2) dir = args[1];
    rampart::audit::Options options;
    options.path = dir + "/audit.jsonl";
    rampart::audit::AuditLog audit(options);
    std::string error;
    if (!audit.open(&error)) {
        fprintf(stderr, "rampartctl: cannot open the audit log: %s\n", error.c_str());
        return 1;
    }
    rampart::state::Sinks sinks{&audit, nullptr};
    rampart::state::MigrateResult r = rampart::state::migrate_state(dir, sinks, &error);
    const char* what = r == rampart::state::MigrateResult::Migrated    ? "migrated"
                       : r == rampart::state::MigrateResult::NotNeeded ? "already_v2"
                                                                       : "failed";
    if (json) {
        printf("{\"dir\":\"%s\",\"result\":\"%s\"}\n", dir.c_str(), what);
    } else if (r == rampart::state::MigrateResult::Migrated) {
        printf("%s/state.json: migrated to schema_version 2 (backup: state.backup.v1, state.backup.v1.sha256)\n",
               dir.c_str());
    } else if (r == rampart::state::MigrateResult::NotNeeded) {
        printf("%s/state.json: already schema_version 2\n", dir.c_str());
    }
    if (r == rampart::state::MigrateResult::Failed) {
        fprintf(stderr, "rampartctl: %s\n", error.c_str());
        return 1;
    }
    return 0;
}

}  // namespace rampartctl
