// Whole-file reads and small writes with plain POSIX calls. rampartd does not
// use iostreams: with the C++ runtime linked in (meson option
// static_cxx_runtime), one std::ifstream pulls in every locale facet, about
// 0.3 MiB of code that is resident in every node (docs/store.md, Memory).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace rampart::util {

// The whole file into *out. False, with "<path>: <reason>" in *error, when it
// cannot be opened or read, or is larger than max_bytes.
bool read_whole_file(const std::string& path, std::string* out, std::string* error,
                     size_t max_bytes = static_cast<size_t>(-1));

// Each line of the file, without its '\n' (a last line without one too), in
// order; memory is bounded by the longest line. False when the file cannot
// be opened or read; lines already seen were passed on.
bool for_each_line(const std::string& path, const std::function<void(std::string_view)>& on_line);

// Write all of `data` to `fd` (retried on EINTR and short writes). False,
// with errno set, on an error.
bool write_all(int fd, std::string_view data);

// Create or truncate `path` (mode 0644) and write `data`. False, with
// "<path>: <reason>" in *error, on any failure.
bool write_small_file(const std::string& path, std::string_view data, std::string* error);

}  // namespace rampart::util
