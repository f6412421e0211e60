// Element types of weights as they appear in safetensors checkpoints.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace mmx {

enum class DType : uint8_t { kBF16, kF16, kF32 };

inline size_t DTypeSize(DType t) { return t == DType::kF32 ? 4 : 2; }

inline const char* DTypeName(DType t) {
  switch (t) {
    case DType::kBF16: return "BF16";
    case DType::kF16: return "F16";
    case DType::kF32: return "F32";
  }
  return "?";
}

// Parses a safetensors dtype string. Only the dtypes mmx computes with are accepted.
absl::StatusOr<DType> ParseDType(const std::string& name);

}  // namespace mmx
