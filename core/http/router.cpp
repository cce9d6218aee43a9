#include "http/router.h"

#include <exception>

#include "http/exchange.h"
#include "log.h"

namespace rampart::http {

void run_handler(const Route& route, Exchange& ex) {
    try {
        route.handler(ex);
    } catch (const std::exception& e) {
        log::error("handler failed", {{"request_id", ex.request_id()}, {"error", e.what()}});
        ex.respond(Response::error(500, "internal_error", "internal error"));
    }
}

void Router::add(std::string method, std::string pattern, Handler handler, bool high_volume, const void* owner) {
    Route route;
    route.prefix = pattern.size() >= 2 && pattern.compare(pattern.size() - 2, 2, "/*") == 0;
    if (route.prefix) pattern.pop_back();  // keep the trailing '/'
    route.method = std::move(method);
    route.pattern = std::move(pattern);
    route.handler = std::move(handler);
    route.high_volume = high_volume;
    route.owner = owner;
    routes_.push_back(std::move(route));
}

void Router::stream_body(std::string_view method, std::string_view pattern, BodySinkFactory factory) {
    for (Route& r : routes_) {
        if (r.method == method && r.pattern == pattern) {
            r.body_sink = std::move(factory);
            return;
        }
    }
}

const BodySinkFactory* Router::body_sink(std::string_view method, std::string_view path) const {
    for (const Route& r : routes_) {
        if (r.body_sink && r.method == method && path_matches(r, path)) return &r.body_sink;
    }
    return nullptr;
}

bool Router::has_route(std::string_view method, std::string_view pattern) const {
    bool prefix = pattern.size() >= 2 && pattern.substr(pattern.size() - 2) == "/*";
    if (prefix) pattern.remove_suffix(1);
    for (const Route& r : routes_) {
        if (r.method == method && r.pattern == pattern && r.prefix == prefix) return true;
    }
    return false;
}

void Router::remove_owner(const void* owner) {
    std::erase_if(routes_, [owner](const Route& r) { return r.owner == owner; });
}

void Router::move_owner(const void* owner, Router& dest) {
    for (Route& r : routes_) {
        if (r.owner == owner) dest.routes_.push_back(std::move(r));
    }
    remove_owner(owner);
}

bool Router::path_matches(const Route& route, std::string_view path) {
    if (route.prefix) return path.substr(0, route.pattern.size()) == route.pattern;
    return path == route.pattern;
}

Router::Match Router::match(std::string_view method, std::string_view path) const {
    Match m;
    std::string_view wanted = method == "HEAD" ? std::string_view("GET") : method;
    bool path_known = false;
    for (const Route& route : routes_) {
        if (!path_matches(route, path)) continue;
        if (route.method == wanted) {
            m.route = &route;
            return m;
        }
        path_known = true;
        if (m.allow.find(route.method) == std::string::npos) {
            if (!m.allow.empty()) m.allow += ", ";
            m.allow += route.method;
            if (route.method == "GET") m.allow += ", HEAD";
        }
    }
    m.status = path_known ? 405 : 404;
    return m;
}

}  // namespace rampart::http
