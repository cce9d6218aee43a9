// Who sent a request, as authentication established it.
#pragma once

#include <string>

namespace rampart::auth {

enum class IdentityKind { None, Token, Certificate, Peer };

struct Identity {
    IdentityKind kind = IdentityKind::None;
    std::string name;  // token name, certificate node id; "" when none
    std::string role;  // "admin" | "write" | "read" | ""
};

}  // namespace rampart::auth
