// Helpers for the CUDA tests: skip without a GPU, move vectors to and from the device, and
// synchronise with the error of any kernel that faulted.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/device_buffer.h"

namespace mmx::kernels::cuda::testing {

// True when at least one CUDA device can run kernels; a DeviceCount() error fails the test.
inline bool HasGpu() {
  absl::StatusOr<int> count = DeviceCount();
  EXPECT_TRUE(count.ok()) << count.status();
  return count.ok() && *count > 0;
}

// Device tests start with this: CTest reports them Skipped on machines without a GPU.
#define MMX_SKIP_WITHOUT_GPU()                                                   \
  do {                                                                           \
    if (!::mmx::kernels::cuda::testing::HasGpu()) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

// A device copy of `host` on cuda:0 (at least one byte, so a pointer always exists).
template <typename T>
DeviceBuffer ToDevice(const std::vector<T>& host) {
  const size_t bytes = host.size() * sizeof(T);
  absl::StatusOr<DeviceBuffer> buffer = DeviceBuffer::Allocate(std::max<size_t>(bytes, 1), 0);
  if (!buffer.ok()) {
    ADD_FAILURE() << buffer.status();
    return DeviceBuffer();
  }
  const absl::Status copied = buffer->CopyFromHost(host.data(), bytes);
  EXPECT_TRUE(copied.ok()) << copied;
  return std::move(*buffer);
}

// Uninitialised device memory for n elements of T, filled with 0xff bytes (NaN for floats, -1
// for ints) so that an element a kernel forgot to write shows up.
template <typename T>
DeviceBuffer DeviceArray(size_t n) {
  absl::StatusOr<DeviceBuffer> buffer = DeviceBuffer::Allocate(std::max<size_t>(n * sizeof(T), 1), 0);
  if (!buffer.ok()) {
    ADD_FAILURE() << buffer.status();
    return DeviceBuffer();
  }
  const absl::Status filled = buffer->Fill(0xff);
  EXPECT_TRUE(filled.ok()) << filled;
  return std::move(*buffer);
}

// Waits for all queued work and returns the first n elements of `buffer`.
template <typename T>
std::vector<T> ToHost(const DeviceBuffer& buffer, size_t n) {
  std::vector<T> host(n);
  const absl::Status synced = CudaStatus(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  EXPECT_TRUE(synced.ok()) << synced;
  const absl::Status copied = buffer.CopyToHost(host.data(), n * sizeof(T));
  EXPECT_TRUE(copied.ok()) << copied;
  return host;
}

}  // namespace mmx::kernels::cuda::testing
