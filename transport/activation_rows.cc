#include "transport/activation_rows.h"

#include <cstring>
#include <optional>
#include <utility>

#include "base/bf16.h"

namespace mmx::transport {

v1::RowsDType RowsDTypeOf(DType wire_dtype) { return wire_dtype == DType::kBF16 ? v1::ROWS_BF16 : v1::ROWS_FP32; }

std::optional<uint64_t> RowsBytes(int dtype, int64_t values) {
  switch (dtype) {
    case v1::ROWS_FP32: return static_cast<uint64_t>(values) * sizeof(float);
    case v1::ROWS_BF16: return static_cast<uint64_t>(values) * sizeof(uint16_t);
    default: return std::nullopt;
  }
}

void EncodedRows::Encode(const float* x, int64_t values, v1::RowsDType dtype) {
  if (dtype != v1::ROWS_BF16) {
    data_ = x;
    bytes_ = static_cast<size_t>(values) * sizeof(float);
    return;
  }
  bf16_.resize(static_cast<size_t>(values));
  for (int64_t i = 0; i < values; ++i) bf16_[i] = FloatToBf16(x[i]);
  data_ = bf16_.data();
  bytes_ = bf16_.size() * sizeof(uint16_t);
}

void DecodeRows(const void* data, int64_t values, v1::RowsDType dtype, float* out) {
  if (dtype != v1::ROWS_BF16) {
    std::memcpy(out, data, static_cast<size_t>(values) * sizeof(float));
    return;
  }
  // The payload's bytes may sit at any alignment: read them as bytes.
  const uint8_t* bytes = static_cast<const uint8_t*>(data);
  for (int64_t i = 0; i < values; ++i) {
    uint16_t v;
    std::memcpy(&v, bytes + 2 * i, sizeof v);
    out[i] = Bf16ToFloat(v);
  }
}

void DecodeRows(Payload&& payload, int64_t values, v1::RowsDType dtype, PooledFloats* out) {
  if (dtype != v1::ROWS_BF16 && payload.size() == static_cast<size_t>(values) * sizeof(float)) {
    std::optional<PooledFloats> rows = payload.ReleaseAs<float>();
    if (rows.has_value()) {
      *out = std::move(*rows);
      return;
    }
  }
  out->resize(static_cast<size_t>(values));
  DecodeRows(payload.data(), values, dtype, out->data());
}

}  // namespace mmx::transport
