// rampartctl pins: compute a certificate's pins and edit
// etc/pinned_certs.json offline (docs/tls.md, "Rotating a certificate").
#pragma once

#include <string>
#include <vector>

namespace rampartctl {

// args[0] == "pins". Returns the process exit status (0, 1, 2 usage).
int pins_command(const std::vector<std::string>& args, bool json);

}  // namespace rampartctl
