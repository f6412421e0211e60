// Writes and reads NumPy .npy files, format version 1.0, little-endian float32, C order.
// Enough for logits dumps (mmx-coord run --logits-out) and for tests that read them back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mmx {

absl::Status WriteNpyF32(const std::string& path, const std::vector<int64_t>& shape,
                         const float* data);

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
};
// Reads a file written by WriteNpyF32 (descr '<f4', fortran_order False, version 1.0).
absl::StatusOr<NpyArray> ReadNpyF32(const std::string& path);

}  // namespace mmx
