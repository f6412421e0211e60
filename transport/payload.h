// Payload: the bytes of a received message, in pooled memory (base/buffer_pool.h: reused, huge
// pages when large). A rendezvous receive writes straight into it; a receiver whose rows are
// fp32 on the wire takes the same memory over as its activation rows (ReleaseAs<float>,
// activation_rows.h) instead of copying them out. Send from pooled memory too (PooledFloats)
// where rows are large: the sender's pages are the ones a CMA rendezvous pins.
#pragma once

#include <cstdint>

#include "base/pooled_buffer.h"

namespace mmx::transport {

using Payload = PooledBuffer<uint8_t>;
// Rows to send from, or received into: pooled, left uninitialized by resize().
using PooledFloats = PooledBuffer<float>;

}  // namespace mmx::transport
