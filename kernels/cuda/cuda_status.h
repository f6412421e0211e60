// Native CUDA, cuBLAS and NCCL result codes as absl::Status, converted at the call site with
// context (STYLE.md §3): `MMX_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(...))` returns a Status that
// names the file, line and expression, the native code's name and its description.
//
// Not here: retries, logging, or any CUDA call of its own except cudaMemGetInfo for the
// out-of-memory message. Thread-safe (pure functions over their arguments).
#pragma once

#include <cstddef>

#include <cublas_api.h>
#include <cuda_runtime_api.h>
#include <nccl.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "base/status_macros.h"

namespace mmx::kernels::cuda {

// OK for cudaSuccess. Otherwise "<what>: <cudaErrorName> (<code>): <description>" with a code
// chosen by what the caller can do about it:
//   kResourceExhausted  cudaErrorMemoryAllocation (use CudaAllocStatus where the size is known)
//   kInvalidArgument    invalid value, device ordinal, launch configuration, copy direction or
//                       handle: a bad argument from our side
//   kFailedPrecondition no device, no or too old a driver, no kernel image for this GPU: fix the
//                       machine, do not retry
//   kUnavailable        device busy or lost (exclusive mode, uncorrectable ECC/NVLink error)
//   kUnimplemented      cudaErrorNotSupported
//   kInternal           everything else, including the sticky kernel faults (illegal address,
//                       launch failure, ...), whose message says the context is unusable
absl::Status CudaStatus(cudaError_t err, absl::string_view what);

// OK for CUBLAS_STATUS_SUCCESS. "<what>: <CUBLAS_STATUS_NAME>: <description>"; ALLOC_FAILED is
// kResourceExhausted, INVALID_VALUE kInvalidArgument, NOT_SUPPORTED kUnimplemented,
// NOT_INITIALIZED / ARCH_MISMATCH / LICENSE_ERROR kFailedPrecondition, the rest kInternal.
absl::Status CudaStatus(cublasStatus_t status, absl::string_view what);

// OK for ncclSuccess. "<what>: NCCL error <code>: <description>"; kInvalidArgument for
// ncclInvalidArgument, kFailedPrecondition for ncclInvalidUsage, kUnavailable for
// ncclSystemError / ncclRemoteError / ncclInProgress (a peer or the network: retry the call),
// kInternal for the rest.
absl::Status CudaStatus(ncclResult_t result, absl::string_view what);

// The out-of-memory message, from numbers the caller already has (pure; tested directly):
// kResourceExhausted "<what>: out of memory on cuda:<device>: asked for <bytes> bytes (<GiB>),
// <free> bytes free of <total> (<GiB>)".
absl::Status OutOfMemoryStatus(absl::string_view what, size_t requested_bytes, int device,
                               size_t free_bytes, size_t total_bytes);

// Like CudaStatus(err, what), but cudaErrorMemoryAllocation becomes OutOfMemoryStatus with the
// free and total memory of `device` read by cudaMemGetInfo (on the calling thread's current
// device, which the caller has set to `device`); if that query fails too, the message says so.
absl::Status CudaAllocStatus(cudaError_t err, absl::string_view what, size_t requested_bytes,
                             int device);

}  // namespace mmx::kernels::cuda

#define MMX_CUDA_STRINGIFY_INNER_(x) #x
#define MMX_CUDA_STRINGIFY_(x) MMX_CUDA_STRINGIFY_INNER_(x)

// Evaluates a cudaError_t, cublasStatus_t or ncclResult_t expression once and returns its
// Status from the enclosing function if it is not success. The message starts with
// "file:line: expression".
#define MMX_CUDA_RETURN_IF_ERROR(expr)                                                          \
  MMX_RETURN_IF_ERROR(::mmx::kernels::cuda::CudaStatus(                                         \
      (expr), __FILE__ ":" MMX_CUDA_STRINGIFY_(__LINE__) ": " #expr))
