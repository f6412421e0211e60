// CublasHandle; see cublas_handle.h.
#include "kernels/cuda/cublas_handle.h"

#include <cublas_v2.h>

#include "kernels/cuda/cuda_status.h"

namespace mmx::kernels::cuda {

absl::StatusOr<CublasHandle> CublasHandle::Create() {
  CublasHandle handle;
  MMX_CUDA_RETURN_IF_ERROR(cublasCreate(&handle.handle_));
  return handle;
}

CublasHandle::~CublasHandle() {
  if (handle_ != nullptr) cublasDestroy(handle_);
}

CublasHandle& CublasHandle::operator=(CublasHandle&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) cublasDestroy(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

}  // namespace mmx::kernels::cuda
