#include "transport/cluster_token.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "transport/little_endian.h"

namespace mmx::transport {

ClusterToken ClusterToken::Random() {
  char bytes[16];
  size_t done = 0;
  while (done < sizeof(bytes)) {
    const ssize_t n = getrandom(bytes + done, sizeof(bytes) - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::fprintf(stderr, "mmx: getrandom failed: no secure random source for the cluster token\n");
      std::abort();
    }
    done += static_cast<size_t>(n);
  }
  return ClusterToken{GetLE(bytes, 8), GetLE(bytes + 8, 8)};
}

absl::StatusOr<ClusterToken> ClusterToken::FromBytes(std::string_view bytes) {
  if (bytes.size() != 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("cluster token of ", bytes.size(), " bytes, expected 16"));
  }
  return ClusterToken{GetLE(bytes.data(), 8), GetLE(bytes.data() + 8, 8)};
}

std::string ClusterToken::ToBytes() const {
  std::string bytes(16, '\0');
  PutLE(bytes.data(), low, 8);
  PutLE(bytes.data() + 8, high, 8);
  return bytes;
}

}  // namespace mmx::transport
