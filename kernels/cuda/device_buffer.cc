// DeviceBuffer, PinnedHostBuffer and DeviceCount; see device_buffer.h.
#include "kernels/cuda/device_buffer.h"

#include "absl/strings/str_cat.h"
#include "kernels/cuda/cuda_status.h"

namespace mmx::kernels::cuda {
namespace {

// Makes `device` current for the scope and restores the previous device afterwards, so that
// allocating on cuda:1 does not move the caller's later launches off cuda:0.
class ScopedDevice {
 public:
  absl::Status Enter(int device) {
    MMX_CUDA_RETURN_IF_ERROR(cudaGetDevice(&previous_));
    if (previous_ != device) {
      MMX_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
      switched_ = true;
    }
    return absl::OkStatus();
  }
  ~ScopedDevice() {
    if (switched_) cudaSetDevice(previous_);
  }

 private:
  int previous_ = 0;
  bool switched_ = false;
};

absl::Status CheckRange(size_t offset, size_t bytes, size_t size, const char* what) {
  if (offset > size || bytes > size - offset) {
    return absl::OutOfRangeError(absl::StrCat(what, ": bytes [", offset, ", ", offset + bytes,
                                              ") are not inside a ", size, "-byte device buffer"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int> DeviceCount() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver) {
    cudaGetLastError();  // not sticky: leave no error behind for the next caller
    return 0;
  }
  MMX_RETURN_IF_ERROR(CudaStatus(err, "cudaGetDeviceCount"));
  return count;
}

absl::StatusOr<DeviceBuffer> DeviceBuffer::Allocate(size_t bytes, int device) {
  return AllocateWith("DeviceBuffer::Allocate", bytes, device, /*stream_ordered=*/false, nullptr);
}

absl::StatusOr<DeviceBuffer> DeviceBuffer::AllocateOnStream(size_t bytes, int device, cudaStream_t stream) {
  return AllocateWith("DeviceBuffer::AllocateOnStream", bytes, device, /*stream_ordered=*/true, stream);
}

absl::StatusOr<DeviceBuffer> DeviceBuffer::AllocateWith(const char* fn, size_t bytes, int device,
                                                        bool stream_ordered, cudaStream_t stream) {
  if (device < 0) {
    return absl::InvalidArgumentError(absl::StrCat(fn, ": device ordinal must be >= 0, got ", device));
  }
  DeviceBuffer buffer;
  buffer.device_ = device;
  buffer.stream_ = stream;
  buffer.stream_ordered_ = stream_ordered;
  if (bytes == 0) return buffer;
  const std::string what = absl::StrCat(fn, "(", bytes, " bytes) on cuda:", device);
  ScopedDevice scoped;
  if (absl::Status s = scoped.Enter(device); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
  }
  void* data = nullptr;
  const cudaError_t err = stream_ordered ? cudaMallocAsync(&data, bytes, stream) : cudaMalloc(&data, bytes);
  MMX_RETURN_IF_ERROR(CudaAllocStatus(err, what, bytes, device));
  buffer.data_ = data;
  buffer.size_ = bytes;
  return buffer;
}

DeviceBuffer::~DeviceBuffer() { Release(); }

void DeviceBuffer::Release() {
  if (data_ == nullptr) return;
  ScopedDevice scoped;
  // cudaFree on a device other than the current one works, but can synchronise the wrong one.
  if (scoped.Enter(device_).ok()) {
    if (stream_ordered_) {
      cudaFreeAsync(data_, stream_);
    } else {
      cudaFree(data_);
    }
  }
  data_ = nullptr;
  size_ = 0;
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    device_ = other.device_;
    stream_ = other.stream_;
    stream_ordered_ = other.stream_ordered_;
  }
  return *this;
}

absl::Status DeviceBuffer::CopyFromHost(const void* src, size_t bytes, size_t offset) {
  MMX_RETURN_IF_ERROR(CheckRange(offset, bytes, size_, "DeviceBuffer::CopyFromHost"));
  if (bytes == 0) return absl::OkStatus();
  MMX_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(static_cast<char*>(data_) + offset, src, bytes, cudaMemcpyHostToDevice));
  return absl::OkStatus();
}

absl::Status DeviceBuffer::CopyToHost(void* dst, size_t bytes, size_t offset) const {
  MMX_RETURN_IF_ERROR(CheckRange(offset, bytes, size_, "DeviceBuffer::CopyToHost"));
  if (bytes == 0) return absl::OkStatus();
  MMX_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(dst, static_cast<const char*>(data_) + offset, bytes, cudaMemcpyDeviceToHost));
  return absl::OkStatus();
}

absl::Status DeviceBuffer::Fill(uint8_t value) {
  if (size_ == 0) return absl::OkStatus();
  MMX_CUDA_RETURN_IF_ERROR(cudaMemset(data_, value, size_));
  return absl::OkStatus();
}

absl::Status DeviceBuffer::CopyFromHostAsync(const void* src, size_t bytes, size_t offset,
                                             cudaStream_t stream) {
  MMX_RETURN_IF_ERROR(CheckRange(offset, bytes, size_, "DeviceBuffer::CopyFromHostAsync"));
  if (bytes == 0) return absl::OkStatus();
  MMX_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(static_cast<char*>(data_) + offset, src, bytes,
                                           cudaMemcpyHostToDevice, stream));
  return absl::OkStatus();
}

absl::Status DeviceBuffer::CopyToHostAsync(void* dst, size_t bytes, size_t offset,
                                           cudaStream_t stream) const {
  MMX_RETURN_IF_ERROR(CheckRange(offset, bytes, size_, "DeviceBuffer::CopyToHostAsync"));
  if (bytes == 0) return absl::OkStatus();
  MMX_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, static_cast<const char*>(data_) + offset, bytes,
                                           cudaMemcpyDeviceToHost, stream));
  return absl::OkStatus();
}

absl::StatusOr<PinnedHostBuffer> PinnedHostBuffer::Allocate(size_t bytes) {
  PinnedHostBuffer buffer;
  if (bytes == 0) return buffer;
  void* data = nullptr;
  const cudaError_t err = cudaMallocHost(&data, bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();
    // Pinned memory is host RAM: cudaMemGetInfo's device numbers would mislead here.
    MMX_RETURN_IF_ERROR(
        CudaStatus(err, absl::StrCat("PinnedHostBuffer::Allocate(", bytes, " bytes)")));
  }
  buffer.data_ = data;
  buffer.size_ = bytes;
  return buffer;
}

PinnedHostBuffer::~PinnedHostBuffer() { Release(); }

void PinnedHostBuffer::Release() {
  if (data_ != nullptr) cudaFreeHost(data_);
  data_ = nullptr;
  size_ = 0;
}

PinnedHostBuffer& PinnedHostBuffer::operator=(PinnedHostBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

}  // namespace mmx::kernels::cuda
