#include "proto/join_token.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace mmx::rpc {

absl::StatusOr<std::string> ReadJoinTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read the join token file ", path));
  std::stringstream text;
  text << in.rdbuf();
  const std::string token(absl::StripAsciiWhitespace(text.str()));
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "join token file ", path, ": ", why, "; make one with: openssl rand -hex 32 > ", path));
  };
  if (token.empty()) return bad("it is empty");
  for (const char c : token) {
    if (c == '\n') return bad("it has more than one line");
    if (c < 0x21 || c > 0x7E) return bad("it has a character other than printable ASCII");
  }
  if (token.size() < kMinJoinTokenBytes) {
    return bad(absl::StrCat("the token has ", token.size(), " characters, fewer than ", kMinJoinTokenBytes));
  }
  return token;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace mmx::rpc
