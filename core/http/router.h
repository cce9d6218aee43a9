// Method + path routing with 404 and 405 (with the Allow header).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "http/parser.h"

namespace rampart::http {

class Exchange;
using Handler = std::function<void(Exchange&)>;

struct Route {
    std::string method;
    std::string pattern;  // exact path, or a prefix when it ends in "/*"
    Handler handler;
    bool high_volume = false;  // access log sampled at info (health, metrics, reads)
    bool prefix = false;
    const void* owner = nullptr;  // the plugin that added it; nullptr for the core
    BodySinkFactory body_sink;    // set: the body streams there (see BodySink)
};

// Runs the route's handler; one that throws is logged and answered 500.
// For every caller that runs a handler (the connection, and a forwarded
// request served here after this node took over the leadership).
void run_handler(const Route& route, Exchange& ex);

class Router {
public:
    void add(std::string method, std::string pattern, Handler handler, bool high_volume = false,
             const void* owner = nullptr);
    // Stream the bodies of an added route through `factory` (BodySink).
    void stream_body(std::string_view method, std::string_view pattern, BodySinkFactory factory);
    // The body sink factory of the route `method` `path` goes to, or null
    // (asked for every request: looks at streaming routes only).
    const BodySinkFactory* body_sink(std::string_view method, std::string_view path) const;
    // Whether this exact method and pattern is taken.
    bool has_route(std::string_view method, std::string_view pattern) const;
    // Drop every route `owner` added (a plugin that failed or unloaded).
    void remove_owner(const void* owner);
    // Move every route `owner` added into `dest` (a plugin's own listener).
    void move_owner(const void* owner, Router& dest);

    struct Match {
        const Route* route = nullptr;  // set when status is 0
        int status = 0;                // 404 or 405 when no route
        std::string allow;             // for 405: "GET, HEAD"
    };
    // HEAD is served by the GET route of the same path.
    Match match(std::string_view method, std::string_view path) const;

private:
    static bool path_matches(const Route& route, std::string_view path);
    std::vector<Route> routes_;
};

}  // namespace rampart::http
