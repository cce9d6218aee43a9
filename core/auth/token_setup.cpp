#include "auth/token_setup.h"

#include <cstdio>

#include "log.h"

namespace rampart::auth {

bool setup_tokens(const config::Config& cfg, bool dev, Authenticator* auth, std::string* error) {
    auth->clear();
    auth->set_enabled(cfg.auth.enabled || dev);
    if (!cfg.auth.bootstrap_token.empty() && !auth->add_token("bootstrap", Role::Admin, cfg.auth.bootstrap_token)) {
        *error = "auth.bootstrap_token must be 16 to 1024 characters";
        return false;
    }
    if (dev) {
        // The dev node's admin token: made once, kept 0600, shown at every
        // start on the terminal (not in the log) so the tour can use it.
        std::string path = cfg.node.data_dir + "/admin-token", token;
        bool created = false;
        if (!load_or_create_token_file(path, &token, &created, error)) return false;
        auth->add_token("dev-admin", Role::Admin, token);
        printf("rampartd --dev: admin token %s (kept in %s)\n", token.c_str(), path.c_str());
        fflush(stdout);
        return true;
    }
    if (auth->enabled() && auth->token_count() == 0) {
        // No token anywhere: a one-time bootstrap token an operator reads
        // from the data directory. The log names the file, never the token.
        std::string path = cfg.node.data_dir + "/bootstrap-token", token;
        bool created = false;
        if (!load_or_create_token_file(path, &token, &created, error)) return false;
        auth->add_token("bootstrap", Role::Admin, token);
        log::warn(created ? "auth enabled without a token: wrote a bootstrap admin token"
                          : "auth enabled without a token: using the bootstrap admin token file",
                  {{"path", path}});
    }
    return true;
}

}  // namespace rampart::auth
