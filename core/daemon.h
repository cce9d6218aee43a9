// rampartd's process lifecycle: options, start-up, signals, shutdown.
#pragma once

#include <string>

namespace rampart {

// Process exit statuses (the brief's contract).
enum ExitStatus : int {
    kExitOk = 0,
    kExitRuntime = 1,
    kExitUsage = 2,
    kExitConfigError = 78,
};

struct Options {
    std::string config_path = "etc/rampart.yml";
    bool config_path_given = false;
    bool dev = false;
    bool check_config = false;
    bool version = false;
};

// Parse argv; on a usage error prints why and returns false.
bool parse_options(int argc, char** argv, Options* out);
void print_usage();

// Run the daemon until a clean shutdown; returns the exit status.
int run(const Options& options);

}  // namespace rampart
