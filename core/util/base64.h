// Standard base64 (RFC 4648, with padding): Consul's JSON carries KV values
// this way.
#pragma once

#include <string>
#include <string_view>

namespace rampart::util {

std::string base64_encode(std::string_view in);
// False on characters outside the alphabet, bad padding or a bad length.
bool base64_decode(std::string_view in, std::string* out);

}  // namespace rampart::util
