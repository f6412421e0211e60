// An owned cuBLAS handle (cublasCreate / cublasDestroy), for GemmOptions::cublas.
// Not thread-safe: one handle per stream-owning thread, as cuBLAS recommends.
#pragma once

#include <utility>

#include <cublas_api.h>

#include "absl/status/statusor.h"

namespace mmx::kernels::cuda {

class CublasHandle {
 public:
  // A handle on the calling thread's current device. kFailedPrecondition without a GPU or
  // driver (CUBLAS_STATUS_NOT_INITIALIZED), kResourceExhausted if cuBLAS cannot allocate.
  static absl::StatusOr<CublasHandle> Create();

  CublasHandle() = default;
  ~CublasHandle();
  CublasHandle(CublasHandle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  CublasHandle& operator=(CublasHandle&& other) noexcept;
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;

  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

}  // namespace mmx::kernels::cuda
