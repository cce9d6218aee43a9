// Where the daemon's first tokens come from at start: auth.bootstrap_token,
// the --dev admin token file, or a one-time bootstrap token file.
#pragma once

#include <string>

#include "auth/authenticator.h"
#include "config/config.h"

namespace rampart::auth {

// Fill `auth` for this start. Prints the --dev token to stdout (never to
// the log). False with *error when a token file cannot be used.
bool setup_tokens(const config::Config& cfg, bool dev, Authenticator* auth, std::string* error);

}  // namespace rampart::auth
