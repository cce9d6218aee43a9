#include "http/exchange.h"

#include <uv.h>

#include "http/connection.h"
#include "http/pipeline.h"

namespace rampart::http {

Exchange::Exchange(Connection* conn, Request request, std::string request_id, std::string source_ip, Pipeline* pipeline)
    : conn_(conn),
      pipeline_(pipeline),
      request_(std::move(request)),
      request_id_(std::move(request_id)),
      source_ip_(std::move(source_ip)),
      start_ns_(uv_hrtime()) {
    static uint64_t next_serial = 1;  // one loop thread: no atomics needed
    serial_ = next_serial++;
}

void Exchange::downgrade_to_stale() {
    request_.query += request_.query.empty() ? "stale" : "&stale";
    add_response_header("X-Rampart-Stale", "quorum_lost");
}

double Exchange::elapsed_seconds() const { return static_cast<double>(uv_hrtime() - start_ns_) / 1e9; }

void Exchange::respond(Response response) {
    if (responded_) return;
    responded_ = true;
    response_ = std::move(response);
    for (auto& header : extra_headers_) response_.headers.push_back(std::move(header));
    extra_headers_.clear();
    // Plugins see every answer (idempotency captures it, metrics count it),
    // even when the client has gone.
    if (pipeline_ != nullptr) pipeline_->before_send(*this, response_);
    if (conn_ != nullptr) conn_->exchange_done();
}

}  // namespace rampart::http

namespace rampart::http {

const net::PeerIdentity* Exchange::client_certificate() const { return conn_ ? conn_->peer_identity() : nullptr; }

bool Exchange::from_peer() const { return conn_ != nullptr && conn_->internal(); }

}  // namespace rampart::http
