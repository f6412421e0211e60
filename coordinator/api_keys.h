// API keys (`mmx-coord serve --api-keys FILE`): who is calling the public API. The file has one
// key per line, `NAME ROLE KEY` (ROLE `user` or `admin`; `#` starts a comment line), and is read
// again on SIGHUP. Clients send `authorization: Bearer KEY` in their gRPC metadata.
//
// A `user` sees and cancels only the jobs it submitted (another's are NOT_FOUND, as unknown ones)
// and gets the cluster's status without per-worker detail; an `admin` sees everything. Keys are
// compared in constant time and never logged or echoed. Without --api-keys every caller is an
// anonymous admin (a cluster on a trusted network, as before).
//
// Thread-safe: Authenticate runs on gRPC threads while Reload swaps the table.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace mmx::coordinator {

struct Caller {
  std::string name;  // the key's NAME ("" for the anonymous caller of an open cluster)
  bool admin = true;
};

struct ApiKey {
  std::string name;
  bool admin = false;
  std::string key;
};

// Parses the file's text. InvalidArgument naming `source`, the line and what is wrong (never the
// key itself): a line that is not three fields, an unknown role, a key shorter than 16
// characters, a repeated name or key.
absl::StatusOr<std::vector<ApiKey>> ParseApiKeys(const std::string& text, const std::string& source);

class ApiKeys {
 public:
  // Reads and parses `path` (NotFound if it cannot be read).
  static absl::StatusOr<std::unique_ptr<ApiKeys>> Load(const std::string& path);
  explicit ApiKeys(std::vector<ApiKey> keys, std::string path = "");

  // Reads the file again (SIGHUP). On an error the keys in force stay, and the error says why.
  absl::Status Reload();
  size_t size() const;

  // The caller whose key `authorization` carries ("Bearer KEY"). UNAUTHENTICATED when it is
  // missing, malformed or unknown, saying which (without the key).
  absl::StatusOr<Caller> Authenticate(const std::string& authorization) const;

 private:
  const std::string path_;
  mutable absl::Mutex mu_;
  std::vector<ApiKey> keys_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mmx::coordinator
