#include "plugin/loader.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstddef>

namespace rampart::plugin {
namespace {

// The smallest descriptor the host can read: every field of ABI 1.0.
constexpr size_t kMinDescriptorSize = offsetof(rampart_plugin, hooks) + sizeof(void*);

}  // namespace

Library::~Library() {
    if (handle_ != nullptr) dlclose(handle_);
}

void* Library::symbol(const char* name) const { return dlsym(handle_, name); }

bool open_plugin(const std::string& dir, const std::string& name, Opened* out, std::string* error) {
    std::string path = dir + "/" + name + ".so";
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
        *error = "plugin " + name + ": " + path + " not found";
        return false;
    }
    // RTLD_NOW: a missing symbol fails here, not in the middle of a request.
    // RTLD_LOCAL: plugins cannot see one another's symbols.
    // RTLD_NODELETE: code stays mapped even if a stray callback survives
    // an unload, so a bug becomes a leak rather than a jump into nothing.
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (handle == nullptr) {
        const char* why = dlerror();
        *error = "plugin " + name + ": cannot load " + path + ": " + (why ? why : "unknown error");
        return false;
    }
    auto library = std::make_shared<Library>(handle, path);
    auto entry = reinterpret_cast<rampart_plugin_entry_fn>(library->symbol(RAMPART_PLUGIN_ENTRY_SYMBOL));
    if (entry == nullptr) {
        *error = "plugin " + name + ": " + path + " does not export " RAMPART_PLUGIN_ENTRY_SYMBOL;
        return false;
    }
    const rampart_plugin* d = entry();
    if (d == nullptr) {
        *error = "plugin " + name + ": " RAMPART_PLUGIN_ENTRY_SYMBOL " returned no descriptor";
        return false;
    }
    if (d->abi_major != RAMPART_ABI_MAJOR) {
        *error = "plugin " + name + " built for ABI " + std::to_string(d->abi_major) + ", host has " +
                 std::to_string(RAMPART_ABI_MAJOR) + ": rebuild";
        return false;
    }
    if (d->struct_size < kMinDescriptorSize) {
        *error = "plugin " + name + ": descriptor too small (" + std::to_string(d->struct_size) + " bytes)";
        return false;
    }
    if (d->name == nullptr || name != d->name) {
        *error = "plugin " + name + ": descriptor names itself \"" + (d->name ? d->name : "") +
                 "\"; the file must be named after it";
        return false;
    }
    if (d->init == nullptr) {
        *error = "plugin " + name + ": descriptor has no init";
        return false;
    }
    out->library = std::move(library);
    out->descriptor = d;
    return true;
}

}  // namespace rampart::plugin
