// Device side of kernels/cuda/rank_norm.h (nvcc compiles this header: no absl, C++17).
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace mmx::kernels::cuda::internal {

cudaError_t LaunchRowSumOfSquares(const float* x, int64_t num_rows, int64_t width, double* sums, cudaStream_t stream);
cudaError_t LaunchNormalizeRows(const float* x, int64_t num_rows, int64_t width, const double* totals,
                                int64_t full_width, const float* gamma, float eps, float* out, cudaStream_t stream);

}  // namespace mmx::kernels::cuda::internal
