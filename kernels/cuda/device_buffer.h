// Owning GPU memory: DeviceBuffer (cudaMalloc on one device) and PinnedHostBuffer (page-locked
// host memory, the source or target of asynchronous copies), plus DeviceCount().
//
// Not here: typed tensors (base/ has Tensor), memory pools, or stream management. Both classes
// are move-only and not thread-safe; distinct objects may be used from distinct threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mmx::kernels::cuda {

// The number of CUDA devices. 0, not an error, when the machine has no GPU or no usable driver
// (cudaErrorNoDevice, cudaErrorInsufficientDriver): CPU-only machines run the same binaries.
// Any other failure is returned as a Status.
absl::StatusOr<int> DeviceCount();

class DeviceBuffer {
 public:
  // `bytes` of device memory on `device` (uninitialised). The calling thread's current device is
  // left as it was. bytes == 0 gives an empty buffer without calling CUDA.
  // Errors: kInvalidArgument for a negative device ordinal (CUDA reports a too-large one the
  // same way); kResourceExhausted on out-of-memory, saying how many bytes were asked and how
  // many were free on which device; kFailedPrecondition when there is no GPU or driver.
  static absl::StatusOr<DeviceBuffer> Allocate(size_t bytes, int device);
  // The same, stream-ordered (cudaMallocAsync on `stream`, and cudaFreeAsync there when the
  // buffer goes): neither synchronises the device, so a buffer can grow between a rank's
  // collectives, and one freed while work queued on `stream` still reads it stays valid for that
  // work. The stream must outlive the buffer.
  static absl::StatusOr<DeviceBuffer> AllocateOnStream(size_t bytes, int device, cudaStream_t stream);

  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  size_t size() const { return size_; }
  int device() const { return device_; }

  // Synchronous copies of `bytes` at byte `offset` of this buffer (cudaMemcpy: waits for the
  // copy, and for earlier work on the legacy default stream). kOutOfRange if [offset,
  // offset + bytes) is not inside the buffer.
  absl::Status CopyFromHost(const void* src, size_t bytes, size_t offset = 0);
  absl::Status CopyToHost(void* dst, size_t bytes, size_t offset = 0) const;
  // Sets every byte of the buffer to `value` (synchronous).
  absl::Status Fill(uint8_t value);

  // Asynchronous copies on `stream`; the host side should be pinned (PinnedHostBuffer) for the
  // copy to overlap with compute, and must stay alive until the stream reaches the copy.
  absl::Status CopyFromHostAsync(const void* src, size_t bytes, size_t offset, cudaStream_t stream);
  absl::Status CopyToHostAsync(void* dst, size_t bytes, size_t offset, cudaStream_t stream) const;

 private:
  static absl::StatusOr<DeviceBuffer> AllocateWith(const char* fn, size_t bytes, int device, bool stream_ordered,
                                                   cudaStream_t stream);
  void Release();

  void* data_ = nullptr;
  size_t size_ = 0;
  int device_ = 0;
  cudaStream_t stream_ = nullptr;  // set: stream-ordered
  bool stream_ordered_ = false;
};

class PinnedHostBuffer {
 public:
  // `bytes` of page-locked host memory (cudaMallocHost). bytes == 0 gives an empty buffer.
  // kResourceExhausted when the allocation fails for lack of memory; kFailedPrecondition when
  // there is no driver (pinning needs one).
  static absl::StatusOr<PinnedHostBuffer> Allocate(size_t bytes);

  PinnedHostBuffer() = default;
  ~PinnedHostBuffer();
  PinnedHostBuffer(PinnedHostBuffer&& other) noexcept { *this = std::move(other); }
  PinnedHostBuffer& operator=(PinnedHostBuffer&& other) noexcept;
  PinnedHostBuffer(const PinnedHostBuffer&) = delete;
  PinnedHostBuffer& operator=(const PinnedHostBuffer&) = delete;

  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  size_t size() const { return size_; }

 private:
  void Release();

  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace mmx::kernels::cuda
