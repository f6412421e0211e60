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
  // non-negative, data_offsets inside the file and matching shape x dtype size, no two tensors
  // overlapping. Reads the header only; tensor bytes are paged in when the caller touches them.
  // NotFound if the file is missing; DataLoss (naming file and tensor) if anything is corrupt;
  // InvalidArgument for a valid safetensors dtype mmx does not compute with (I64, F64, F8, ...).
  // Thread-safe for readers once open; the TensorInfo data pointers die with this object.
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
// InvalidArgument if a tensor's bytes do not match its shape; the errno's code if the file
// cannot be written.
absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors);

// The header half of a tensor to write: its bytes come later, through SafetensorsWriter::Write.
struct TensorSpec {
  std::string name;
  DType dtype = DType::kBF16;
  std::vector<int64_t> shape;

  uint64_t num_bytes() const;
};

// Streams a safetensors file whose tensor list is known up front: the header is written by
// Create, then the data section through any number of Write calls (tensors in spec order,
// back to back), so a multi-GB shard never has to be in memory. The file is written as
// PATH.partial and renamed to PATH by Close, so an interrupted write never leaves a file that
// looks complete. Not thread-safe.
class SafetensorsWriter {
 public:
  enum class Mode {
    kBuffered,  // ordinary writes through the page cache
    // O_DIRECT through an aligned staging buffer, for multi-GB files: copying into the page
    // cache costs more CPU than generating random weights, and it leaves gigabytes of dirty
    // pages to flush behind the writer's back. Falls back to kBuffered where the filesystem
    // refuses O_DIRECT (tmpfs). The bytes on disk are the same either way.
    kDirect,
  };

  // InvalidArgument for duplicate names or negative dims; the errno's code if PATH.partial
  // cannot be created.
  static absl::StatusOr<std::unique_ptr<SafetensorsWriter>> Create(const std::string& path,
                                                                   std::vector<TensorSpec> specs,
                                                                   Mode mode = Mode::kBuffered);
  // Removes PATH.partial unless Close succeeded.
  ~SafetensorsWriter();

  // Appends `size` bytes to the data section. FailedPrecondition past the declared total.
  absl::Status Write(const void* data, size_t size);
  // FailedPrecondition unless exactly data_size() bytes were written; then flushes, closes and
  // renames the file into place.
  absl::Status Close();

  uint64_t data_size() const { return data_size_; }
  uint64_t bytes_written() const { return bytes_written_; }
  // Whether writes really bypass the page cache (kDirect and the filesystem accepted it).
  bool is_direct() const { return direct_; }

 private:
  struct FreeDeleter {
    void operator()(uint8_t* p) const;
  };

  SafetensorsWriter() = default;
  // Appends raw file bytes (header or data), through the staging buffer when direct.
  absl::Status Append(const void* data, size_t size);
  // Writes the staging buffer's first `size` bytes; switches to buffered writes if the kernel
  // refuses this O_DIRECT write.
  absl::Status FlushStaging(size_t size);

  std::string path_;
  std::string partial_path_;
  int fd_ = -1;
  uint64_t data_size_ = 0;
  uint64_t bytes_written_ = 0;
  bool closed_ = false;
  // Mode::kDirect only: file bytes go through staging_, flushed in whole aligned buffers.
  bool direct_ = false;                            // O_DIRECT still on
  std::unique_ptr<uint8_t, FreeDeleter> staging_;
  size_t staged_ = 0;                              // bytes waiting in staging_
  uint64_t flushed_ = 0;                           // bytes written to the file from staging_
};

}  // namespace mmx::model
