// One safetensors file, mmap'ed read-only, its header parsed and bounds-checked once.
// Format: 8-byte little-endian header length N, N bytes of JSON
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then data;
// offsets are relative to the end of the header.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/dtype.h"

namespace mmx::model {

struct TensorInfo {
  std::string name;
  std::string file;             // path of the shard that holds it
  DType dtype = DType::kBF16;
  std::vector<int64_t> shape;
  const void* data = nullptr;   // inside the mmap; valid while the file is open
  uint64_t num_bytes = 0;

  int64_t num_elements() const;
};

class SafetensorsFile {
 public:
  // Maps `path` and validates its header: JSON well-formed, each entry's dtype known, shape
  // non-negative, data_offsets inside the file and matching shape x dtype size.
  // NotFound if the file is missing; DataLoss (naming file and tensor) if anything is corrupt.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* Find(const std::string& name) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::map<std::string, TensorInfo> tensors_;
};

// Writes a safetensors file (used by mmx-mkmodel and tests). Tensors are written in the order
// given, data contiguous, header padded to 8 bytes, __metadata__ {"format": "pt"}.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kBF16;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;   // exactly num_elements * DTypeSize(dtype)
};
absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors);

}  // namespace mmx::model
