// What happens around a handler, seen from the HTTP layer: whether to take
// a connection, what runs before the handler (authentication, admission
// hooks), and what sees each response before it is sent. The daemon plugs
// its auth and plugin host in here; core/http knows neither.
#pragma once

#include <string_view>

namespace rampart::http {

class Exchange;
struct Response;

class Pipeline {
public:
    virtual ~Pipeline() = default;
    // A connection arrived; false closes it at once.
    virtual bool accept(std::string_view source_ip) = 0;
    // Before the route handler (also for requests no route matched, so
    // limits apply to scanners too). True when it answered the request.
    virtual bool before_handler(Exchange& ex) = 0;
    // Every response, early answers included, when it is decided.
    virtual void before_send(Exchange& ex, const Response& resp) = 0;
};

}  // namespace rampart::http
