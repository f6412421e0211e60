// The data plane's shared secret: every envelope carries it and a receiver drops messages with
// another (transport/inbox.h). 128 bits from the kernel's CSPRNG, new for every coordinator
// start, handed to workers in their Assignment over the (TLS) control session.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace mmx::transport {

struct ClusterToken {
  uint64_t low = 0;
  uint64_t high = 0;

  // Fresh from getrandom(2); aborts only if the kernel has no entropy source at all.
  static ClusterToken Random();
  // From the 16 bytes ToBytes wrote (little-endian low, then high); InvalidArgument otherwise.
  static absl::StatusOr<ClusterToken> FromBytes(std::string_view bytes);
  std::string ToBytes() const;

  // In time that does not depend on where two tokens differ.
  bool Equals(const ClusterToken& other) const {
    return ((low ^ other.low) | (high ^ other.high)) == 0;
  }
};

}  // namespace mmx::transport
