#include "model/cuda/device_pages.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/cuda_status.h"

namespace mmx::model::cuda {

DevicePages::~DevicePages() {
  if (arenas_.empty()) return;
  cudaSetDevice(device_);
  for (void* arena : arenas_) cudaFree(arena);
}

absl::StatusOr<void*> DevicePages::Take(size_t bytes) {
  bytes = (bytes + 255) / 256 * 256;
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<void*>& free = free_[bytes];
  if (free.empty()) {
    // An arena of as many pieces as were carved of this size so far (at least 8): the number of
    // allocations grows with the log of the state, not with it.
    const int64_t count = std::max<int64_t>(8, taken_[bytes]);
    void* arena = nullptr;
    cudaError_t err = cudaSetDevice(device_);
    if (err == cudaSuccess) err = cudaMallocAsync(&arena, bytes * static_cast<size_t>(count), stream_);
    if (err != cudaSuccess) {
      cudaGetLastError();  // clear it: the device is fine, it is full
      return absl::ResourceExhaustedError(absl::StrCat("cuda:", device_, ": no room for ", count, " more pieces of ",
                                                       bytes, " bytes of sequence state (", cudaGetErrorString(err),
                                                       ")"));
    }
    arenas_.push_back(arena);
    taken_[bytes] += count;
    for (int64_t i = count - 1; i >= 0; --i) free.push_back(static_cast<char*>(arena) + i * bytes);
  }
  void* piece = free.back();
  free.pop_back();
  in_use_ += static_cast<int64_t>(bytes);
  return piece;
}

void DevicePages::Give(void* piece, size_t bytes) {
  if (piece == nullptr) return;
  bytes = (bytes + 255) / 256 * 256;
  std::lock_guard<std::mutex> lock(mu_);
  free_[bytes].push_back(piece);
  in_use_ -= static_cast<int64_t>(bytes);
}

int64_t DevicePages::bytes_in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_use_;
}

}  // namespace mmx::model::cuda
