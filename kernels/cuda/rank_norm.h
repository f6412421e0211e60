// The lightning output norm when a GPU holds only some of the heads (parallel/rank_split.h): an
// RMSNorm over all heads' features is the per-row sum of squares of every rank's slice, summed
// over the ranks (NCCL), then each slice normalised with that total. The CPU twins have the
// same names in kernels/kernels.h.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "absl/status/status.h"

namespace mmx::kernels::cuda {

// sums[t] = sum_i x[t, i]^2 in double, x [num_tokens, width] device fp32, sums device fp64.
absl::Status RowSumOfSquares(const float* x, int64_t num_tokens, int64_t width, double* sums, cudaStream_t stream);
// out[t, i] = x[t, i] / sqrt(total[t] / full_width + eps) * gamma[i]; in place is fine.
// kInvalidArgument unless full_width >= width > 0 and num_tokens < 2^31.
absl::Status NormalizeRows(const float* x, int64_t num_tokens, int64_t width, const double* total_sums,
                           int64_t full_width, const float* gamma, float eps, float* out, cudaStream_t stream);

}  // namespace mmx::kernels::cuda
