// The selection kernels: RouterTopK (MoE routing) and ArgmaxRows (greedy sampling).
//
// RouterTopK runs kernels/cpu/reference.cc's loop, one thread per token: max, sum of
// exp(z - max) in expert order, p = exp(z - max) / sum, then k selection passes that each take
// the largest remaining p with ties to the lower expert id (what the CPU's stable sort gives),
// and the weights p / (sum of the chosen p, in selection order). Only expf differs from the
// CPU (CUDA's is within 2 ulp), so ids match except where two probabilities are that close.
//
// ArgmaxRows is model::Argmax (sampling.cc: the first index whose value is greater than every
// earlier one) per row, one block per row. To make the parallel reduction give the sequential
// loop's answer with NaNs too, a NaN at index 0 counts as +inf (the loop never leaves index 0)
// and a NaN elsewhere as -inf (the loop never picks it; index 0 wins every tie with it).
#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"

namespace mmx::kernels::cuda::internal {
namespace {

constexpr int kRouterThreads = 128;
constexpr int kArgmaxThreads = 512;

__global__ void __launch_bounds__(kRouterThreads)
    RouterTopKKernel(const float* __restrict__ logits, int64_t num_tokens, int num_experts, int k,
                     int* __restrict__ ids, float* __restrict__ weights) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= num_tokens) return;
  const float* z = logits + t * num_experts;
  float max_z = -INFINITY;
  for (int e = 0; e < num_experts; ++e) max_z = fmaxf(max_z, z[e]);
  float sum = 0.f;
  for (int e = 0; e < num_experts; ++e) sum += expf(z[e] - max_z);
  int chosen[kMaxRouterK];
  float chosen_p[kMaxRouterK];
  float top_sum = 0.f;
  for (int j = 0; j < k; ++j) {
    int best = -1;
    float best_p = 0.f;
    for (int e = 0; e < num_experts; ++e) {
      bool taken = false;
      for (int i = 0; i < j; ++i) taken |= chosen[i] == e;
      if (taken) continue;
      const float p = expf(z[e] - max_z) / sum;
      if (best < 0 || p > best_p) {
        best = e;
        best_p = p;
      }
    }
    chosen[j] = best;
    chosen_p[j] = best_p;
    top_sum += best_p;
  }
  for (int j = 0; j < k; ++j) {
    ids[t * k + j] = chosen[j];
    weights[t * k + j] = chosen_p[j] / top_sum;
  }
}

struct Best {
  float value;
  int64_t index;
};

// The better of two candidates: the larger value, the lower index on a tie.
__device__ __forceinline__ Best Better(Best a, Best b) {
  return (b.value > a.value || (b.value == a.value && b.index < a.index)) ? b : a;
}

__device__ __forceinline__ Best WarpBest(Best v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    Best other;
    other.value = __shfl_xor_sync(kFullMask, v.value, offset);
    other.index = __shfl_xor_sync(kFullMask, v.index, offset);
    v = Better(v, other);
  }
  return v;
}

__global__ void __launch_bounds__(kArgmaxThreads)
    ArgmaxRowsKernel(const float* __restrict__ logits, int64_t vocab, int32_t* __restrict__ ids) {
  __shared__ Best scratch[kArgmaxThreads / kWarpSize];
  const float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  // Indices past the row end never win: INT64_MAX loses every tie.
  Best best{-INFINITY, INT64_MAX};
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    float v = row[i];
    if (isnan(v)) v = i == 0 ? INFINITY : -INFINITY;
    best = Better(best, Best{v, i});
  }
  best = WarpBest(best);
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  if (lane == 0) scratch[warp] = best;
  __syncthreads();
  if (warp == 0) {
    best = lane < kArgmaxThreads / kWarpSize ? scratch[lane] : Best{-INFINITY, INT64_MAX};
    best = WarpBest(best);
    if (lane == 0) ids[blockIdx.x] = static_cast<int32_t>(best.index);
  }
}

}  // namespace

cudaError_t LaunchRouterTopK(const float* logits, int64_t num_tokens, int num_experts, int k, int* ids,
                             float* weights, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((num_tokens + kRouterThreads - 1) / kRouterThreads);
  RouterTopKKernel<<<blocks, kRouterThreads, 0, stream>>>(logits, num_tokens, num_experts, k, ids, weights);
  return cudaGetLastError();
}

cudaError_t LaunchArgmaxRows(const float* logits, int64_t num_rows, int64_t vocab, int32_t* ids,
                             cudaStream_t stream) {
  ArgmaxRowsKernel<<<static_cast<unsigned>(num_rows), kArgmaxThreads, 0, stream>>>(logits, vocab, ids);
  return cudaGetLastError();
}

}  // namespace mmx::kernels::cuda::internal
