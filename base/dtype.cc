#include "base/dtype.h"

#include "absl/strings/str_cat.h"

namespace mmx {

absl::StatusOr<DType> ParseDType(const std::string& name) {
  if (name == "BF16") return DType::kBF16;
  if (name == "F16") return DType::kF16;
  if (name == "F32") return DType::kF32;
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported dtype '", name, "' (mmx reads BF16, F16 and F32)"));
}

absl::StatusOr<DType> ParseWireDType(absl::string_view name) {
  if (name == "fp32") return DType::kF32;
  if (name == "bf16") return DType::kBF16;
  return absl::InvalidArgumentError(absl::StrCat("wire_dtype '", name.substr(0, 32),
                                                 "' is neither fp32 (golden-exact) nor bf16 (half the bytes)"));
}

}  // namespace mmx
