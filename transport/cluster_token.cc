#include "transport/cluster_token.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace mmx::transport {
namespace {

void PutLE(char* out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xFFu);
}

uint64_t GetLE(const char* in) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= uint64_t{static_cast<uint8_t>(in[i])} << (8 * i);
  return value;
}

}  // namespace

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
  return ClusterToken{GetLE(bytes), GetLE(bytes + 8)};
}

absl::StatusOr<ClusterToken> ClusterToken::FromBytes(std::string_view bytes) {
  if (bytes.size() != 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("cluster token of ", bytes.size(), " bytes, expected 16"));
  }
  return ClusterToken{GetLE(bytes.data()), GetLE(bytes.data() + 8)};
}

std::string ClusterToken::ToBytes() const {
  std::string bytes(16, '\0');
  PutLE(bytes.data(), low);
  PutLE(bytes.data() + 8, high);
  return bytes;
}

}  // namespace mmx::transport
