// The lightning output norm split over tensor-parallel ranks (model/rank_split.h): each rank's
// per-row sum of squares of its feature slice (in double, so the all-reduced total does not
// depend on how the features were split), and the normalisation of a slice with the total.
#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/cuda/rank_norm_launch.h"

namespace mmx::kernels::cuda::internal {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ double WarpSumDouble(double v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// One block per row: sums[row] = sum_i x[row, i]^2.
__global__ void __launch_bounds__(kThreads) RowSumOfSquaresKernel(const float* x, int64_t width, double* sums) {
  __shared__ double scratch[kThreads / 32];
  const float* row = x + static_cast<int64_t>(blockIdx.x) * width;
  double ss = 0;
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x) ss += static_cast<double>(row[i]) * row[i];
  ss = WarpSumDouble(ss);
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    double v = threadIdx.x < kThreads / 32 ? scratch[threadIdx.x] : 0.0;
    v = WarpSumDouble(v);
    if (threadIdx.x == 0) sums[blockIdx.x] = v;
  }
}

// out[row, i] = x[row, i] / sqrt(total[row] / full_width + eps) * gamma[i] (in place is fine).
__global__ void NormalizeRowsKernel(const float* x, int64_t width, const double* totals, int64_t full_width,
                                    const float* gamma, float eps, float* out) {
  const int64_t row = blockIdx.x;
  const float inv = static_cast<float>(1.0 / sqrt(totals[row] / static_cast<double>(full_width) + eps));
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x) {
    out[row * width + i] = x[row * width + i] * inv * gamma[i];
  }
}

}  // namespace

cudaError_t LaunchRowSumOfSquares(const float* x, int64_t num_rows, int64_t width, double* sums, cudaStream_t stream) {
  RowSumOfSquaresKernel<<<static_cast<unsigned>(num_rows), kThreads, 0, stream>>>(x, width, sums);
  return cudaGetLastError();
}

cudaError_t LaunchNormalizeRows(const float* x, int64_t num_rows, int64_t width, const double* totals,
                                int64_t full_width, const float* gamma, float eps, float* out, cudaStream_t stream) {
  NormalizeRowsKernel<<<static_cast<unsigned>(num_rows), kThreads, 0, stream>>>(x, width, totals, full_width, gamma,
                                                                               eps, out);
  return cudaGetLastError();
}

}  // namespace mmx::kernels::cuda::internal
