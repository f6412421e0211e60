#include "coordinator/api_keys.h"

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "proto/join_token.h"

namespace mmx::coordinator {
namespace {

constexpr size_t kMinKeyLength = 16;

absl::StatusOr<std::string> ReadKeyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--api-keys: cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<std::vector<ApiKey>> ParseApiKeys(const std::string& text, const std::string& source) {
  std::vector<ApiKey> keys;
  std::set<std::string> names, values;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    const std::vector<std::string> fields = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    const std::string where = absl::StrCat(source, ":", line_number, ": ");
    if (fields.size() != 3) {
      return absl::InvalidArgumentError(absl::StrCat(where, "expected NAME ROLE KEY (", fields.size(), " fields)"));
    }
    ApiKey key{fields[0], fields[1] == "admin", fields[2]};
    if (fields[1] != "user" && fields[1] != "admin") {
      return absl::InvalidArgumentError(absl::StrCat(where, "role '", fields[1], "' is not user or admin"));
    }
    if (key.key.size() < kMinKeyLength) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "the key of '", key.name, "' is shorter than ", kMinKeyLength, " characters"));
    }
    if (!names.insert(key.name).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, "name '", key.name, "' is used twice"));
    }
    if (!values.insert(key.key).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, "the key of '", key.name, "' is also another name's"));
    }
    keys.push_back(std::move(key));
  }
  if (keys.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no keys (lines NAME ROLE KEY)"));
  return keys;
}

absl::StatusOr<std::unique_ptr<ApiKeys>> ApiKeys::Load(const std::string& path) {
  absl::StatusOr<std::string> text = ReadKeyFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::vector<ApiKey>> keys = ParseApiKeys(*text, path);
  if (!keys.ok()) return keys.status();
  return std::make_unique<ApiKeys>(*std::move(keys), path);
}

ApiKeys::ApiKeys(std::vector<ApiKey> keys, std::string path) : path_(std::move(path)), keys_(std::move(keys)) {}

absl::Status ApiKeys::Reload() {
  absl::StatusOr<std::string> text = ReadKeyFile(path_);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::vector<ApiKey>> keys = ParseApiKeys(*text, path_);
  if (!keys.ok()) return keys.status();
  absl::MutexLock lock(&mu_);
  keys_ = *std::move(keys);
  return absl::OkStatus();
}

size_t ApiKeys::size() const {
  absl::MutexLock lock(&mu_);
  return keys_.size();
}

absl::StatusOr<Caller> ApiKeys::Authenticate(const std::string& authorization) const {
  if (authorization.empty()) {
    return absl::UnauthenticatedError("this server needs an API key: send `authorization: Bearer KEY` (mmx --api-key, "
                                      "or the MMX_API_KEY environment variable)");
  }
  absl::string_view presented = authorization;
  if (!absl::ConsumePrefix(&presented, "Bearer ")) {
    return absl::UnauthenticatedError("the authorization metadata must be `Bearer KEY`");
  }
  const std::string key(presented);
  absl::MutexLock lock(&mu_);
  const ApiKey* found = nullptr;
  for (const ApiKey& k : keys_) {
    if (rpc::ConstantTimeEquals(k.key, key) && found == nullptr) found = &k;  // every key compared
  }
  if (found == nullptr) return absl::UnauthenticatedError("unknown API key");
  return Caller{found->name, found->admin};
}

}  // namespace mmx::coordinator
