// Element types of weights: those safetensors checkpoints store (BF16, F16, F32), and I8, which
// mmx makes itself when it quantizes weights at load (never read from a checkpoint).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mmx {

// kI8: symmetric int8 with one fp32 scale per row (kernels::WeightView::scales).
enum class DType : uint8_t { kBF16, kF16, kF32, kI8 };

inline size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kBF16:
    case DType::kF16: return 2;
    case DType::kF32: return 4;
    case DType::kI8: return 1;
  }
  return 0;
}

inline const char* DTypeName(DType t) {
  switch (t) {
    case DType::kBF16: return "BF16";
    case DType::kF16: return "F16";
    case DType::kF32: return "F32";
    case DType::kI8: return "I8";
  }
  return "?";
}

// Parses a safetensors dtype string. Only the dtypes mmx reads from checkpoints are accepted
// (BF16, F16, F32): I8 is refused, since an int8 tensor in a checkpoint would come without the
// per-row scales mmx's I8 means.
absl::StatusOr<DType> ParseDType(const std::string& name);

// Activations between workers (serving.wire_dtype): "fp32" (as computed, golden-exact, the
// default) or "bf16" (half the bytes); anything else is InvalidArgument naming both.
absl::StatusOr<DType> ParseWireDType(absl::string_view name);
// "bf16" or "fp32".
inline const char* WireDTypeName(DType wire_dtype) { return wire_dtype == DType::kBF16 ? "bf16" : "fp32"; }

}  // namespace mmx
