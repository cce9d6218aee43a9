// Bytes bound for one libuv stream: written at once when the socket takes
// them, else queued as one uv_write at a time. The owner reads backlog()
// to apply back-pressure and hears of completed writes (or a failed one)
// through the callback.
#pragma once

#include <uv.h>

#include <cstddef>
#include <functional>
#include <string>

namespace rampart::net {

class WireQueue {
public:
    // `on_written(status)`: a queued write finished (status < 0: it failed).
    WireQueue(uv_stream_t* stream, std::function<void(int)> on_written)
        : stream_(stream), on_written_(std::move(on_written)) {}
    WireQueue(const WireQueue&) = delete;
    WireQueue& operator=(const WireQueue&) = delete;

    void append(const char* data, size_t len) { pending_.append(data, len); }
    // Hand pending bytes to the socket. Returns 0 or a libuv error.
    int flush();
    // Bytes not yet written by the kernel's send buffer.
    size_t backlog() const { return pending_.size() + bytes_in_flight_; }
    bool idle() const { return pending_.empty() && writes_in_flight_ == 0; }
    // The stream is closing: completions still arrive (cancelled) but must
    // not call back into a dying owner.
    void detach() { on_written_ = nullptr; }

private:
    struct Write;
    static void cb_write(uv_write_t* req, int status);

    uv_stream_t* stream_;
    std::function<void(int)> on_written_;
    std::string pending_;
    size_t writes_in_flight_ = 0;
    size_t bytes_in_flight_ = 0;
};

}  // namespace rampart::net
