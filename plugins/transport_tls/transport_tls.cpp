// transport_tls: the ABI glue. mbedTLS 2.28 TLS 1.2 behind the plugin
// ABI's byte-stream transport (include/rampart/plugin.h, "transport"):
// contexts (context.h), sessions (session.h), pins (pins.h), identities
// (identity.h). No configuration keys: the material comes from the host in
// rampart_transport_settings (api.tls, peers.yml). See README.md.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "context.h"
#include "host.h"
#include "rampart/plugin.h"
#include "session.h"

namespace {

using transport_tls::Context;
using transport_tls::ContextOptions;
using transport_tls::Host;
using transport_tls::Session;

void copy_error(const std::string& msg, char* err, size_t err_len) {
    if (err == nullptr || err_len == 0) return;
    (void)std::snprintf(err, err_len, "%s", msg.c_str());
}

int cb_init(rampart_plugin_ctx* ctx, const rampart_host* host, void** state) {
    try {
        auto h = std::make_unique<Host>();
        std::string why;
        if (!h->setup(ctx, host, &why)) {
            if (host->log) host->log(ctx, RAMPART_LOG_ERROR, why.c_str());
            return -ENOTSUP;
        }
        h->log(RAMPART_LOG_INFO,
               "transport_tls ready: TLS 1.2 (mbedTLS 2.28), ECDHE with AES-GCM/ChaCha20-Poly1305, X25519 first, "
               "session tickets");
        *state = h.release();
        return 0;
    } catch (...) {
        return -ENOMEM;
    }
}

void cb_fini(void* state) { std::unique_ptr<Host> owned(static_cast<Host*>(state)); }

int cb_context_new(void* state, const rampart_transport_settings* settings, void** context, char* err, size_t err_len) {
    try {
        if (state == nullptr || settings == nullptr || context == nullptr) {
            copy_error("TLS: context_new called without settings", err, err_len);
            return -EINVAL;
        }
        std::string error;
        Context* c = Context::create(static_cast<Host*>(state), *settings, ContextOptions{}, &error);
        if (c == nullptr) {
            copy_error(error, err, err_len);
            return -EINVAL;
        }
        *context = c;
        return 0;
    } catch (const std::bad_alloc&) {
        copy_error("TLS: out of memory", err, err_len);
        return -ENOMEM;
    } catch (...) {
        copy_error("TLS: internal error building the context", err, err_len);
        return -EINVAL;
    }
}

void cb_context_release(void*, void* context) {
    try {
        if (context != nullptr) static_cast<Context*>(context)->release();
    } catch (...) {
    }
}

int cb_session_new(void*, void* context, rampart_stream* stream, rampart_transport_side side, const char* expected_peer,
                   void** session) {
    try {
        if (context == nullptr || session == nullptr) return -EINVAL;
        Session* s = nullptr;
        int r = Session::create(static_cast<Context*>(context), stream, side, expected_peer, &s);
        if (r != 0) return r;
        *session = s;
        return 0;
    } catch (const std::bad_alloc&) {
        return -ENOMEM;
    } catch (...) {
        return -EINVAL;
    }
}

int cb_session_input(void* session, const char* data, size_t len) {
    try {
        return static_cast<Session*>(session)->input(data, len);
    } catch (const std::bad_alloc&) {
        return -ENOMEM;
    } catch (...) {
        return -EPROTO;
    }
}

int cb_session_write(void* session, const char* data, size_t len) {
    try {
        return static_cast<Session*>(session)->write(data, len);
    } catch (const std::bad_alloc&) {
        return -ENOMEM;
    } catch (...) {
        return -EIO;
    }
}

void cb_session_shutdown(void* session) {
    try {
        static_cast<Session*>(session)->shutdown();
    } catch (...) {
    }
}

void cb_session_free(void* session) {
    try {
        if (session != nullptr) static_cast<Session*>(session)->free();
    } catch (...) {
    }
}

const rampart_transport kTransport = {
    sizeof(rampart_transport),
    "tls",
    cb_context_new,
    cb_context_release,
    cb_session_new,
    cb_session_input,
    cb_session_write,
    cb_session_shutdown,
    cb_session_free,
};

const rampart_hooks kHooks = {sizeof(rampart_hooks), nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};

const rampart_plugin kDescriptor = {
    RAMPART_ABI_MAJOR,
    sizeof(rampart_plugin),
    "transport_tls",
    "0.1.0",
    "Mutual TLS 1.2 (mbedTLS) for the peer port and HTTPS for the API, with certificate pinning",
    nullptr,
    nullptr,
    cb_init,
    nullptr,
    cb_fini,
    &kHooks,
    &kTransport,
};

}  // namespace

extern "C" RAMPART_PLUGIN_EXPORT const rampart_plugin* rampart_plugin_entry(void) { return &kDescriptor; }
