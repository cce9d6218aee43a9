// One TLS session over one host stream: the handshake runs in host worker
// jobs (at most one in flight), records are encrypted and decrypted on the
// loop thread afterwards. mbedTLS only ever sees in-memory buffers.
//
//   loop thread                         worker thread
//   input() -> in_ (or pending_ while a job runs)
//           -> work_submit ----------->  handshake steps: read in_,
//                                        write out_, until WANT_READ,
//                                        done or error (no host calls)
//   done()  <-------------------------- (job ends)
//     send out_ (stream_send); more input queued? submit again;
//     done: handshake_done(OK), then leftover records;
//     error: handshake_done(TLS_ERROR, reason)
//   after the handshake: input() -> mbedtls_ssl_read -> stream_deliver,
//   write() -> mbedtls_ssl_write -> stream_send.
//
// A host callback may free the session (session_free) while the session is
// calling it: entry points hold a busy count and delete the session only
// when the outermost one returns; a session freed while its job runs is
// deleted by the job's done callback, and the job itself never calls the
// host.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include <mbedtls/ssl.h>

#include "context.h"
#include "identity.h"
#include "rampart/plugin.h"

namespace transport_tls {

// Handshake bytes buffered (received but not yet consumed) before a
// handshake is given up as hostile: real handshake flights are a few KiB.
constexpr size_t kMaxHandshakeBuffered = size_t{256} * 1024;

class Session {
public:
    // Takes a reference on `ctx`. A client session submits its first
    // handshake job at once.
    static int create(Context* ctx, rampart_stream* stream, rampart_transport_side side, const char* expected_peer,
                      Session** out);

    int input(const char* data, size_t len);
    int write(const char* data, size_t len);
    void shutdown();
    void free();

    // Only through free() (or the deferred paths it sets up).
    ~Session();

    // For tests: is a worker job in flight.
    bool job_running() const { return job_running_; }

private:
    enum class Phase { kHandshake, kOpen, kClosed };

    struct Busy {
        explicit Busy(Session* s) : s_(s) { ++s_->busy_; }
        ~Busy();
        Busy(const Busy&) = delete;
        Busy& operator=(const Busy&) = delete;
        Session* s_;
    };

    Session(Context* ctx, rampart_stream* stream, rampart_transport_side side, const char* expected_peer);
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    static void destroy(Session* s) { std::unique_ptr<Session> owned(s); }
    static int bio_send(void* arg, const unsigned char* buf, size_t len);
    static int bio_recv(void* arg, unsigned char* buf, size_t len);
    static int verify_cb(void* arg, mbedtls_x509_crt* crt, int depth, uint32_t* flags);
    static void job_work(void* arg);
    static void job_done(void* arg);

    bool submit();
    void handshake_steps();  // worker thread (or the loop, for a resumption: see run_inline)
    void run_inline();
    void after_job();
    void finish_handshake();
    void fail_handshake(const char* reason, const std::string& detail);
    void classify(int ret, const char** reason, std::string* detail) const;
    void report_pin_violation(bool refused);
    int read_records();
    void take_pending();
    void compact_in();
    int64_t flush();
    const char* side_name() const { return side_ == RAMPART_SIDE_SERVER ? "server" : "client"; }
    std::string peer_label() const;

    Context* ctx_;
    const Host* host_;
    rampart_stream* stream_;
    rampart_transport_side side_;
    std::string expected_peer_;
    mbedtls_ssl_context ssl_;

    std::string in_;  // ciphertext mbedTLS reads (from in_pos_)
    size_t in_pos_ = 0;
    std::string out_;      // ciphertext mbedTLS wrote, not yet sent
    std::string pending_;  // arrived while a job ran
    Phase phase_ = Phase::kHandshake;
    bool shutdown_ = false;
    bool job_running_ = false;
    std::atomic<bool> freed_{false};
    int busy_ = 0;

    // Written by the job (worker), read by the done callback (loop).
    int job_ret_ = 0;
    // A server whose client offered a session ticket runs the handshake on
    // the loop thread while it stays an abbreviated one (no ECC): a thread
    // hop costs more than the work. Set from the ClientHello.
    bool inline_ = false;
    bool hello_checked_ = false;
    static constexpr int kContinueOnWorker = 1;  // job_ret_: go on in a worker job
    bool resumed_ = false;
    bool pin_violation_ = false;
    std::string pin_peer_;
    size_t pin_count_ = 0;
    bool pin_uses_cert_ = false;
    bool pin_uses_spki_ = false;
    std::string presented_cert_sha256_;
    std::string presented_spki_sha256_;
    // The leaf the other side presented, noted by the verify callback: a
    // failed verification leaves mbedTLS with no peer certificate to ask.
    bool leaf_seen_ = false;
    Identity leaf_;
    std::string leaf_valid_from_;
    std::string leaf_valid_to_;
};

}  // namespace transport_tls
