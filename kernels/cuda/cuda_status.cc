// Native result codes -> absl::Status; see cuda_status.h for the mapping.
#include "kernels/cuda/cuda_status.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mmx::kernels::cuda {
namespace {

absl::StatusCode CudaCode(cudaError_t err) {
  switch (err) {
    case cudaSuccess:
      return absl::StatusCode::kOk;
    case cudaErrorMemoryAllocation:
      return absl::StatusCode::kResourceExhausted;
    case cudaErrorInvalidValue:
    case cudaErrorInvalidDevice:
    case cudaErrorInvalidConfiguration:
    case cudaErrorInvalidMemcpyDirection:
    case cudaErrorInvalidResourceHandle:
      return absl::StatusCode::kInvalidArgument;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorCallRequiresNewerDriver:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
    case cudaErrorDeviceNotLicensed:
    case cudaErrorSystemNotReady:
    case cudaErrorInitializationError:
      return absl::StatusCode::kFailedPrecondition;
    case cudaErrorDevicesUnavailable:
    case cudaErrorECCUncorrectable:
    case cudaErrorNvlinkUncorrectable:
      return absl::StatusCode::kUnavailable;
    case cudaErrorNotSupported:
      return absl::StatusCode::kUnimplemented;
    default:
      return absl::StatusCode::kInternal;
  }
}

// Errors after which the CUDA context is corrupt: every later call fails the same way.
bool IsStickyFault(cudaError_t err) {
  switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorMisalignedAddress:
    case cudaErrorIllegalInstruction:
    case cudaErrorHardwareStackError:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
      return true;
    default:
      return false;
  }
}

std::string Gib(size_t bytes) {
  return absl::StrFormat("%.2f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
}

}  // namespace

absl::Status CudaStatus(cudaError_t err, absl::string_view what) {
  const absl::StatusCode code = CudaCode(err);
  if (code == absl::StatusCode::kOk) return absl::OkStatus();
  std::string message = absl::StrCat(what, ": ", cudaGetErrorName(err), " (", static_cast<int>(err),
                                     "): ", cudaGetErrorString(err));
  if (err == cudaErrorInsufficientDriver || err == cudaErrorNoDevice) {
    int runtime = 0;
    cudaRuntimeGetVersion(&runtime);
    absl::StrAppend(&message, "; HINT: this needs an NVIDIA GPU and a driver for CUDA runtime ",
                    runtime / 1000, ".", runtime % 1000 / 10, " or newer (nvidia-smi shows both)");
  } else if (IsStickyFault(err)) {
    absl::StrAppend(&message,
                    "; the CUDA context is now unusable and every later call will fail: restart "
                    "the process (compute-sanitizer finds the faulting kernel)");
  }
  return absl::Status(code, message);
}

absl::Status CudaStatus(cublasStatus_t status, absl::string_view what) {
  absl::StatusCode code;
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return absl::OkStatus();
    case CUBLAS_STATUS_ALLOC_FAILED: code = absl::StatusCode::kResourceExhausted; break;
    case CUBLAS_STATUS_INVALID_VALUE: code = absl::StatusCode::kInvalidArgument; break;
    case CUBLAS_STATUS_NOT_SUPPORTED: code = absl::StatusCode::kUnimplemented; break;
    case CUBLAS_STATUS_NOT_INITIALIZED:
    case CUBLAS_STATUS_ARCH_MISMATCH:
    case CUBLAS_STATUS_LICENSE_ERROR: code = absl::StatusCode::kFailedPrecondition; break;
    default: code = absl::StatusCode::kInternal; break;
  }
  return absl::Status(code, absl::StrCat(what, ": ", cublasGetStatusName(status), ": ",
                                         cublasGetStatusString(status)));
}

absl::Status CudaStatus(ncclResult_t result, absl::string_view what) {
  absl::StatusCode code;
  switch (result) {
    case ncclSuccess: return absl::OkStatus();
    case ncclInvalidArgument: code = absl::StatusCode::kInvalidArgument; break;
    case ncclInvalidUsage: code = absl::StatusCode::kFailedPrecondition; break;
    case ncclSystemError:
    case ncclRemoteError:
    case ncclInProgress: code = absl::StatusCode::kUnavailable; break;
    default: code = absl::StatusCode::kInternal; break;
  }
  return absl::Status(code, absl::StrCat(what, ": NCCL error ", static_cast<int>(result), ": ",
                                         ncclGetErrorString(result)));
}

absl::Status OutOfMemoryStatus(absl::string_view what, size_t requested_bytes, int device,
                               size_t free_bytes, size_t total_bytes) {
  return absl::ResourceExhaustedError(absl::StrCat(
      what, ": out of memory on cuda:", device, ": asked for ", requested_bytes, " bytes (",
      Gib(requested_bytes), "), ", free_bytes, " bytes free of ", total_bytes, " (",
      Gib(free_bytes), " of ", Gib(total_bytes), ")"));
}

absl::Status CudaAllocStatus(cudaError_t err, absl::string_view what, size_t requested_bytes,
                             int device) {
  if (err != cudaErrorMemoryAllocation) return CudaStatus(err, what);
  cudaGetLastError();  // the allocation failure is not sticky; clear it before querying
  size_t free_bytes = 0, total_bytes = 0;
  const cudaError_t info = cudaMemGetInfo(&free_bytes, &total_bytes);
  if (info != cudaSuccess) {
    cudaGetLastError();
    return absl::ResourceExhaustedError(absl::StrCat(
        what, ": out of memory on cuda:", device, ": asked for ", requested_bytes, " bytes (",
        Gib(requested_bytes), "); free memory unknown (cudaMemGetInfo: ", cudaGetErrorName(info),
        ")"));
  }
  return OutOfMemoryStatus(what, requested_bytes, device, free_bytes, total_bytes);
}

}  // namespace mmx::kernels::cuda
