// rampartd: the replicated key-value and service-registry daemon.
#include "daemon.h"

int main(int argc, char** argv) {
    rampart::Options options;
    if (!rampart::parse_options(argc, argv, &options)) {
        rampart::print_usage();
        return rampart::kExitUsage;
    }
    return rampart::run(options);
}
