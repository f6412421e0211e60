#include "kernels/cuda/rank_norm.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/rank_norm_launch.h"

namespace mmx::kernels::cuda {
namespace {

absl::Status CheckRows(const char* fn, const void* x, const void* y, int64_t num_tokens, int64_t width) {
  if (num_tokens < 0 || width <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(fn, ": need num_tokens >= 0 and width > 0, got ", num_tokens,
                                                   " and ", width));
  }
  if (num_tokens > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(fn, ": more than 2^31 rows"));
  }
  if (num_tokens > 0 && (x == nullptr || y == nullptr)) return absl::InvalidArgumentError(absl::StrCat(fn, ": null pointer"));
  return absl::OkStatus();
}

}  // namespace

absl::Status RowSumOfSquares(const float* x, int64_t num_tokens, int64_t width, double* sums, cudaStream_t stream) {
  MMX_RETURN_IF_ERROR(CheckRows("RowSumOfSquares", x, sums, num_tokens, width));
  if (num_tokens == 0) return absl::OkStatus();
  return CudaStatus(internal::LaunchRowSumOfSquares(x, num_tokens, width, sums, stream), "RowSumOfSquares: kernel launch");
}

absl::Status NormalizeRows(const float* x, int64_t num_tokens, int64_t width, const double* total_sums,
                           int64_t full_width, const float* gamma, float eps, float* out, cudaStream_t stream) {
  MMX_RETURN_IF_ERROR(CheckRows("NormalizeRows", x, out, num_tokens, width));
  if (full_width < width) {
    return absl::InvalidArgumentError(absl::StrCat("NormalizeRows: full_width ", full_width, " < slice width ", width));
  }
  if (num_tokens == 0) return absl::OkStatus();
  if (total_sums == nullptr || gamma == nullptr) return absl::InvalidArgumentError("NormalizeRows: null pointer");
  return CudaStatus(internal::LaunchNormalizeRows(x, num_tokens, width, total_sums, full_width, gamma, eps, out, stream),
                    "NormalizeRows: kernel launch");
}

}  // namespace mmx::kernels::cuda
