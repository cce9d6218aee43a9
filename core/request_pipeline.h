// The daemon's request pipeline: authentication, then the plugins' hooks
// in the documented order (include/rampart/plugin.h).
#pragma once

#include <functional>

#include "auth/authenticator.h"
#include "http/pipeline.h"
#include "plugin/host.h"

namespace rampart {

class RequestPipeline : public http::Pipeline {
public:
    RequestPipeline(const auth::Authenticator* auth, plugin::PluginHost* plugins) : auth_(auth), plugins_(plugins) {}

    bool accept(std::string_view source_ip) override;
    bool before_handler(http::Exchange& ex) override;
    void before_send(http::Exchange& ex, const http::Response& resp) override;

    // Last step before the handler: may hand the request elsewhere (a
    // follower forwards to the leader) and answer it later. Returns true
    // when it took the request.
    void set_forward(std::function<bool(http::Exchange&)> forward) { forward_ = std::move(forward); }

private:
    std::function<bool(http::Exchange&)> forward_;
    const auth::Authenticator* auth_;
    plugin::PluginHost* plugins_;
};

}  // namespace rampart
