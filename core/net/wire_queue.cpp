#include "net/wire_queue.h"

#include <memory>

namespace rampart::net {

struct WireQueue::Write {
    uv_write_t req{};
    std::string data;
    WireQueue* queue = nullptr;
};

int WireQueue::flush() {
    if (pending_.empty() || writes_in_flight_ > 0) return 0;  // cb_write flushes the rest
    uv_buf_t buf = uv_buf_init(pending_.data(), static_cast<unsigned>(pending_.size()));
    int n = uv_try_write(stream_, &buf, 1);
    if (n < 0 && n != UV_EAGAIN) return n;
    if (n > 0) pending_.erase(0, static_cast<size_t>(n));
    if (pending_.empty()) return 0;
    auto w = std::make_unique<Write>();
    w->data.swap(pending_);
    w->queue = this;
    w->req.data = w.get();
    buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    int rc = uv_write(&w->req, stream_, &buf, 1, cb_write);
    if (rc != 0) return rc;
    bytes_in_flight_ += w->data.size();
    writes_in_flight_++;
    (void)w.release();  // owned by libuv until cb_write
    return 0;
}

void WireQueue::cb_write(uv_write_t* req, int status) {
    std::unique_ptr<Write> w(static_cast<Write*>(req->data));
    WireQueue* q = w->queue;
    q->writes_in_flight_--;
    q->bytes_in_flight_ -= w->data.size();
    if (status == 0) status = q->flush();
    if (q->on_written_) q->on_written_(status);
}

}  // namespace rampart::net
