// cuda_status: known CUDA, cuBLAS and NCCL codes map to the documented absl codes with the call
// site and the native name in the message; the out-of-memory message carries both byte counts.
// Host-only: these run on every machine.
#include "kernels/cuda/cuda_status.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace mmx::kernels::cuda {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(CudaStatusTest, SuccessIsOk) {
  EXPECT_THAT(CudaStatus(cudaSuccess, "x"), IsOk());
  EXPECT_THAT(CudaStatus(CUBLAS_STATUS_SUCCESS, "x"), IsOk());
  EXPECT_THAT(CudaStatus(ncclSuccess, "x"), IsOk());
}

TEST(CudaStatusTest, MapsRuntimeErrorsByWhatTheCallerCanDo) {
  const struct {
    cudaError_t err;
    absl::StatusCode code;
    const char* name;
  } cases[] = {
      {cudaErrorMemoryAllocation, absl::StatusCode::kResourceExhausted, "cudaErrorMemoryAllocation"},
      {cudaErrorInvalidValue, absl::StatusCode::kInvalidArgument, "cudaErrorInvalidValue"},
      {cudaErrorInvalidDevice, absl::StatusCode::kInvalidArgument, "cudaErrorInvalidDevice"},
      {cudaErrorNoDevice, absl::StatusCode::kFailedPrecondition, "cudaErrorNoDevice"},
      {cudaErrorInsufficientDriver, absl::StatusCode::kFailedPrecondition, "cudaErrorInsufficientDriver"},
      {cudaErrorNoKernelImageForDevice, absl::StatusCode::kFailedPrecondition, "cudaErrorNoKernelImageForDevice"},
      {cudaErrorDevicesUnavailable, absl::StatusCode::kUnavailable, "cudaErrorDevicesUnavailable"},
      {cudaErrorECCUncorrectable, absl::StatusCode::kUnavailable, "cudaErrorECCUncorrectable"},
      {cudaErrorNotSupported, absl::StatusCode::kUnimplemented, "cudaErrorNotSupported"},
      {cudaErrorIllegalAddress, absl::StatusCode::kInternal, "cudaErrorIllegalAddress"},
      {cudaErrorLaunchFailure, absl::StatusCode::kInternal, "cudaErrorLaunchFailure"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(CudaStatus(c.err, "copy logits"),
                StatusIs(c.code, AllOf(HasSubstr("copy logits: "), HasSubstr(c.name),
                                       HasSubstr(absl::StrCat("(", static_cast<int>(c.err), ")")),
                                       HasSubstr(cudaGetErrorString(c.err)))));
  }
}

TEST(CudaStatusTest, StickyFaultsSayTheContextIsUnusable) {
  EXPECT_THAT(CudaStatus(cudaErrorIllegalAddress, "gemm"), StatusIs(absl::StatusCode::kInternal, HasSubstr("restart")));
  EXPECT_THAT(CudaStatus(cudaErrorInvalidValue, "gemm"),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::Not(HasSubstr("restart"))));
}

TEST(CudaStatusTest, MissingDriverGivesAHint) {
  EXPECT_THAT(CudaStatus(cudaErrorInsufficientDriver, "cudaGetDeviceCount"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("HINT: this needs an NVIDIA GPU")));
}

TEST(CudaStatusTest, MapsCublasStatuses) {
  EXPECT_THAT(CudaStatus(CUBLAS_STATUS_ALLOC_FAILED, "cublasCreate"),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("cublasCreate: "), HasSubstr("CUBLAS_STATUS_ALLOC_FAILED"))));
  EXPECT_THAT(CudaStatus(CUBLAS_STATUS_INVALID_VALUE, "gemm"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CUBLAS_STATUS_INVALID_VALUE")));
  EXPECT_THAT(CudaStatus(CUBLAS_STATUS_NOT_INITIALIZED, "gemm"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(CudaStatus(CUBLAS_STATUS_ARCH_MISMATCH, "gemm"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(CudaStatus(CUBLAS_STATUS_NOT_SUPPORTED, "gemm"), StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(CudaStatus(CUBLAS_STATUS_EXECUTION_FAILED, "gemm"), StatusIs(absl::StatusCode::kInternal));
}

TEST(CudaStatusTest, MapsNcclResults) {
  EXPECT_THAT(CudaStatus(ncclSystemError, "all-reduce"),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr("all-reduce: NCCL error 2: "), HasSubstr(ncclGetErrorString(ncclSystemError)))));
  EXPECT_THAT(CudaStatus(ncclRemoteError, "x"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(CudaStatus(ncclInProgress, "x"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(CudaStatus(ncclInvalidArgument, "x"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CudaStatus(ncclInvalidUsage, "x"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(CudaStatus(ncclInternalError, "x"), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(CudaStatus(ncclUnhandledCudaError, "x"), StatusIs(absl::StatusCode::kInternal));
}

TEST(CudaStatusTest, OutOfMemoryMessageHasBothByteCountsAndTheDevice) {
  EXPECT_THAT(OutOfMemoryStatus("load expert 7", 2147483648u, 3, 1073741824u, 85899345920u),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("load expert 7: out of memory on cuda:3"),
                             HasSubstr("asked for 2147483648 bytes (2.00 GiB)"),
                             HasSubstr("1073741824 bytes free of 85899345920 (1.00 GiB of 80.00 GiB)"))));
}

TEST(CudaStatusTest, AllocStatusReportsTheRequestOnOutOfMemory) {
  // Without a GPU cudaMemGetInfo fails and the message says the free memory is unknown; with
  // one it gives the numbers. Either way the request is named.
  EXPECT_THAT(CudaAllocStatus(cudaErrorMemoryAllocation, "kv cache", 123456789, 0),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("kv cache: out of memory on cuda:0"), HasSubstr("asked for 123456789 bytes"))));
  EXPECT_THAT(CudaAllocStatus(cudaErrorInvalidValue, "kv cache", 1, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cudaErrorInvalidValue")));
  EXPECT_THAT(CudaAllocStatus(cudaSuccess, "kv cache", 1, 0), IsOk());
}

cudaError_t FailingCudaCall() { return cudaErrorInvalidValue; }
cublasStatus_t FailingCublasCall() { return CUBLAS_STATUS_INVALID_VALUE; }
ncclResult_t FailingNcclCall() { return ncclRemoteError; }

absl::Status UsesMacroWithCuda() {
  MMX_CUDA_RETURN_IF_ERROR(cudaSuccess);
  MMX_CUDA_RETURN_IF_ERROR(FailingCudaCall());
  return absl::InternalError("not reached");
}
absl::Status UsesMacroWithCublas() {
  MMX_CUDA_RETURN_IF_ERROR(FailingCublasCall());
  return absl::InternalError("not reached");
}
absl::Status UsesMacroWithNccl() {
  MMX_CUDA_RETURN_IF_ERROR(FailingNcclCall());
  return absl::InternalError("not reached");
}

TEST(CudaStatusTest, MacroReturnsTheStatusWithFileLineAndExpression) {
  EXPECT_THAT(UsesMacroWithCuda(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("cuda_status_test.cc:"), HasSubstr(": FailingCudaCall(): cudaErrorInvalidValue"))));
  EXPECT_THAT(UsesMacroWithCublas(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("FailingCublasCall(): CUBLAS_STATUS_INVALID_VALUE")));
  EXPECT_THAT(UsesMacroWithNccl(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("FailingNcclCall(): NCCL error 6")));
}

}  // namespace
}  // namespace mmx::kernels::cuda
