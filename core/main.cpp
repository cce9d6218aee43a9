// rampartd: the replicated key-value and service-registry daemon.
#include "daemon.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace {

// glibc's malloc tuned for a small resident set (issue 5: a router has
// little RAM), set before the first thread starts:
//  - one arena: glibc gives each thread that allocates (the libuv pool's
//    snapshot fills, fsyncs, DNS) an arena of its own, whose freed pages it
//    keeps (measured: ~0.6 MiB after 10,000 keys); the pool threads
//    allocate little, so sharing the main arena's lock costs nothing
//    measurable;
//  - a fixed mmap threshold: glibc otherwise raises it to the largest block
//    ever freed (up to 32 MiB), after which big transient buffers (request
//    bodies, snapshot pieces, txn results) come from the heap and their pages
//    stay; a fixed one keeps them in mmap, returned on free;
//  - a fixed trim threshold, so the heap's free top goes back too.
void tune_malloc() {
#if defined(__GLIBC__)
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 256 * 1024);
#endif
}

}  // namespace

int main(int argc, char** argv) {
    tune_malloc();
    rampart::Options options;
    if (!rampart::parse_options(argc, argv, &options)) {
        rampart::print_usage();
        return rampart::kExitUsage;
    }
    return rampart::run(options);
}
