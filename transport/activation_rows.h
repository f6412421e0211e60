// Activation rows on the data plane (stage -> stage, dispatch, combine), in the dtype their
// header names (wire.proto RowsDType): fp32 as computed, or bf16 rounded to nearest even, which
// halves every crossing's bytes at the cost of one rounding per crossing (serving.wire_dtype;
// docs/benchmarks.md has what it does to the golden prompts). Receivers always get fp32 back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "base/dtype.h"
#include "mmx/v1/wire.pb.h"
#include "transport/payload.h"

namespace mmx::transport {

// The header value for a serving.wire_dtype (kF32 or kBF16).
v1::RowsDType RowsDTypeOf(DType wire_dtype);

// Bytes of `values` activations in `dtype`; nullopt for a value no version of the protocol
// defines (a receiver refuses the message).
std::optional<uint64_t> RowsBytes(int dtype, int64_t values);

// Rows ready to send: x itself (fp32), or its bf16 rounding in a buffer this object owns.
class EncodedRows {
 public:
  void Encode(const float* x, int64_t values, v1::RowsDType dtype);
  const void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  PooledBuffer<uint16_t> bf16_;  // pooled, as the rows it stands for
  const void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Widens `values` activations of `dtype` at `data` (bytes as RowsBytes says) into out.
void DecodeRows(const void* data, int64_t values, v1::RowsDType dtype, float* out);
// The same for a received payload of exactly RowsBytes: fp32 rows become *out with no copy (out
// takes the payload's memory over; the rendezvous wrote them there), bf16 rows are widened into
// *out. The payload is left empty or unchanged.
void DecodeRows(Payload&& payload, int64_t values, v1::RowsDType dtype, PooledFloats* out);

}  // namespace mmx::transport
