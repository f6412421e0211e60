// Explicit little-endian byte order for the data plane's binary fields (the envelope, the
// cluster token, framed UCX addresses), independent of the host's.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mmx::transport {

// Writes the low `bytes` bytes of `value` (at most 8) to `out`, least significant first.
inline void PutLE(char* out, uint64_t value, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xFFu);
}

// Reads `bytes` bytes (at most 8) written by PutLE.
inline uint64_t GetLE(const char* in, size_t bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < bytes; ++i) value |= uint64_t{static_cast<uint8_t>(in[i])} << (8 * i);
  return value;
}

}  // namespace mmx::transport
