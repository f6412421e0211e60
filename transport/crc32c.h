// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of the transport envelope.
// A byte-at-a-time table: envelopes are tens of bytes, so a faster variant would buy nothing.
// Not for payloads (see docs/protocol.md "Transport envelope" for why payloads are unchecked).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mmx::transport {

// Extends `crc` (the value returned for the bytes before `data`; 0 to start) over `size` bytes.
// Crc32c(0, "123456789", 9) == 0xE3069283. Pure function, thread-safe.
uint32_t Crc32c(uint32_t crc, const void* data, size_t size);

}  // namespace mmx::transport
