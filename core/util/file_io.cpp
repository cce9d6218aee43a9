#include "util/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace rampart::util {
namespace {

struct Fd {
    int fd;
    explicit Fd(int f) : fd(f) {}
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
};

bool failed(const std::string& path, const char* reason, std::string* error) {
    if (error != nullptr) *error = path + ": " + reason;
    return false;
}

// read(2) retried on EINTR; -1 on error.
ssize_t read_some(int fd, char* buf, size_t len) {
    for (;;) {
        ssize_t n = ::read(fd, buf, len);
        if (n >= 0 || errno != EINTR) return n;
    }
}

}  // namespace

bool read_whole_file(const std::string& path, std::string* out, std::string* error, size_t max_bytes) {
    Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (f.fd < 0) return failed(path, strerror(errno), error);
    struct stat st {};
    if (fstat(f.fd, &st) != 0) return failed(path, strerror(errno), error);
    if (static_cast<uint64_t>(st.st_size) > max_bytes) return failed(path, "larger than allowed", error);
    std::string data;
    data.reserve(static_cast<size_t>(st.st_size));
    char buf[16384];
    for (;;) {
        ssize_t n = read_some(f.fd, buf, sizeof buf);
        if (n < 0) return failed(path, strerror(errno), error);
        if (n == 0) break;
        if (data.size() + static_cast<size_t>(n) > max_bytes) return failed(path, "larger than allowed", error);
        data.append(buf, static_cast<size_t>(n));
    }
    *out = std::move(data);
    return true;
}

bool for_each_line(const std::string& path, const std::function<void(std::string_view)>& on_line) {
    Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (f.fd < 0) return false;
    std::string pending;
    char buf[16384];
    for (;;) {
        ssize_t n = read_some(f.fd, buf, sizeof buf);
        if (n < 0) return false;
        if (n == 0) break;
        std::string_view chunk(buf, static_cast<size_t>(n));
        for (size_t nl; (nl = chunk.find('\n')) != std::string_view::npos; chunk.remove_prefix(nl + 1)) {
            if (pending.empty()) {
                on_line(chunk.substr(0, nl));
            } else {
                pending.append(chunk.substr(0, nl));
                on_line(pending);
                pending.clear();
            }
        }
        pending.append(chunk);
    }
    if (!pending.empty()) on_line(pending);
    return true;
}

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        if (n == 0) {
            errno = EIO;  // a write that takes nothing and says no error
            return false;
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

bool write_small_file(const std::string& path, std::string_view data, std::string* error) {
    Fd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (f.fd < 0 || !write_all(f.fd, data)) return failed(path, strerror(errno), error);
    const int fd = std::exchange(f.fd, -1);
    if (::close(fd) != 0) return failed(path, strerror(errno), error);
    return true;
}

}  // namespace rampart::util
