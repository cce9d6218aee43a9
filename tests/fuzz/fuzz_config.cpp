// libFuzzer target for the configuration loader: any bytes must give
// either a Config or diagnostics, never a crash, a leak or a hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace rampart::config;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    LoadResult result = load_string(text, "fuzz.yml", Environment{});
    // Formatting is part of the contract too: run it over every message.
    for (const Diagnostic& d : result.errors) {
        if (d.to_string().empty()) __builtin_trap();
    }
    for (const Diagnostic& d : result.warnings) (void)d.to_string();
    // A loaded config must be exactly what a failed one is not.
    if (result.ok() != result.errors.empty()) __builtin_trap();
    return 0;
}
