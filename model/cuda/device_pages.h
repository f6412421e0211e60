// DevicePages: one GPU's memory for sequence state that comes and goes while serving (KV cache
// pages of model/kv_cache.h's layout, and the page tables the attention kernels read), in pieces
// of a few sizes. Pieces are carved from arenas allocated stream-ordered (cudaMallocAsync: no
// device-wide synchronisation, so never one between the ranks' collectives) and are never freed
// while serving: a piece given back is handed out again. Reuse is safe without waiting because
// every read and write of a piece is enqueued on the one stream of its CudaLayerOps, so a new
// owner's writes come after the old owner's reads.
//
// Thread-safe: sequences give their pieces back from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include <cuda_runtime_api.h>

#include "absl/status/statusor.h"

namespace mmx::model::cuda {

class DevicePages {
 public:
  // Arenas on `device`, allocated on `stream` (the ops' stream; only Take uses it).
  DevicePages(int device, cudaStream_t stream) : device_(device), stream_(stream) {}
  ~DevicePages();  // frees the arenas (cudaFree: the owner's work is done by then)
  DevicePages(const DevicePages&) = delete;
  DevicePages& operator=(const DevicePages&) = delete;

  // A piece of `bytes` (a multiple of 256 is best: pieces are 256-byte aligned), one given back
  // earlier if there is one. ResourceExhausted naming the bytes when the GPU has no room.
  absl::StatusOr<void*> Take(size_t bytes);
  // Gives back a piece Take(bytes) returned.
  void Give(void* piece, size_t bytes);

  // Bytes in pieces handed out now.
  int64_t bytes_in_use() const;

 private:
  const int device_;
  const cudaStream_t stream_;
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;  // by piece size
  std::vector<void*> arenas_;
  int64_t in_use_ = 0;
  std::map<size_t, int64_t> taken_;  // pieces ever carved, by size: the next arena's count
};

}  // namespace mmx::model::cuda
