// Opening plugin shared objects and checking their descriptors. Nothing
// here calls into the plugin beyond its entry function.
#pragma once

#include <memory>
#include <string>

#include "rampart/plugin.h"

namespace rampart::plugin {

// A dlopen()ed library; dlclose() when the last owner lets go.
class Library {
public:
    Library(void* handle, std::string path) : handle_(handle), path_(std::move(path)) {}
    ~Library();
    Library(const Library&) = delete;
    Library& operator=(const Library&) = delete;
    const std::string& path() const { return path_; }
    void* symbol(const char* name) const;

private:
    void* handle_;
    std::string path_;
};

struct Opened {
    std::shared_ptr<Library> library;
    const rampart_plugin* descriptor = nullptr;
};

// Open `dir`/`name`.so and validate its descriptor: the entry symbol
// exists, the ABI major matches, the struct is large enough, the name
// equals the file name, init is present. On failure returns false with a
// one-line reason in *error naming the plugin.
bool open_plugin(const std::string& dir, const std::string& name, Opened* out, std::string* error);

}  // namespace rampart::plugin
