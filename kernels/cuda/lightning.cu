// Lightning attention decode (MODEL.md §3.4, one new token per sequence):
//   S = lambda * S + k^T v        S [D key, D value] fp32, updated in place
//   o = q S                       with lambda = exp(-slope)
// One block per (sequence, head). Thread (row group g, column slice c) owns columns
// [c * kCols, c * kCols + kCols) of the rows a = g, g + G, ...: it loads up to kRowBatch of
// its rows at once (so the whole 64 KiB head state is in flight at D = 128), updates them as
// fma(k[a], v[b], lambda * S[a][b]) -- the CPU fast path's exact formula, so the new state is
// bit-identical to it when lambda is -- stores them, and accumulates q[a] * S_new[a][b]. The
// row groups' partial outputs are summed in shared memory (a different order from the CPU's
// sequential sum over a, hence the output tolerance in the tests).
#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/cuda/launch.h"

namespace mmx::kernels::cuda::internal {
namespace {

constexpr int kMaxThreads = 512;
constexpr int kRowBatch = 8;

template <int kCols>
struct Cols;
template <>
struct Cols<4> {
  using T = float4;
  static __device__ __forceinline__ float4 Load(const float* p) { return *reinterpret_cast<const float4*>(p); }
  static __device__ __forceinline__ void Store(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }
  static __device__ __forceinline__ float& At(float4& v, int j) { return (&v.x)[j]; }
};
template <>
struct Cols<1> {
  using T = float;
  static __device__ __forceinline__ float Load(const float* p) { return *p; }
  static __device__ __forceinline__ void Store(float* p, float v) { *p = v; }
  static __device__ __forceinline__ float& At(float& v, int) { return v; }
};

// Threads per block for head_dim D with kCols columns per thread: (D / kCols) column slices
// times as many row groups as fit in kMaxThreads (at most D).
__host__ __device__ inline int RowGroups(int head_dim, int cols) {
  const int slices = head_dim / cols;
  int groups = kMaxThreads / slices;
  if (groups > head_dim) groups = head_dim;
  return groups < 1 ? 1 : groups;
}

template <int kCols>
__global__ void __launch_bounds__(kMaxThreads) LightningDecodeKernel(LightningDecodeArgs a) {
  using C = Cols<kCols>;
  extern __shared__ float smem[];
  const int N = a.num_heads, D = a.head_dim;
  const int64_t seq = blockIdx.x / N;
  const int h = static_cast<int>(blockIdx.x % N);
  const int slices = D / kCols, groups = RowGroups(D, kCols);
  const int slice = threadIdx.x % slices, group = threadIdx.x / slices;
  float* q_s = smem;              // [D]
  float* k_s = smem + D;          // [D]
  float* partial = smem + 2 * D;  // [groups, D]
  const float* qkv = a.qkv + seq * N * 3 * D + static_cast<int64_t>(h) * 3 * D;  // [q | k | v] of head h
  float* out = a.out + seq * N * D + static_cast<int64_t>(h) * D;

  const int32_t slot = a.slots[seq];
  if (slot < 0 || slot >= a.num_slots) {  // block-uniform: no thread reaches a barrier
    for (int b = threadIdx.x; b < D; b += blockDim.x) out[b] = __int_as_float(0x7fc00000);  // NaN
    return;
  }
  for (int i = threadIdx.x; i < D; i += blockDim.x) {
    q_s[i] = qkv[i];
    k_s[i] = qkv[D + i];
  }
  __syncthreads();

  const float lambda = expf(-a.slopes[h]);
  float* S = a.state_pool + (static_cast<int64_t>(slot) * N + h) * D * D;
  const int b0 = slice * kCols;
  float v[kCols], acc[kCols];
#pragma unroll
  for (int j = 0; j < kCols; ++j) {
    v[j] = qkv[2 * D + b0 + j];
    acc[j] = 0.f;
  }
  if (group < groups) {
    for (int a0 = group; a0 < D; a0 += kRowBatch * groups) {
      typename C::T rows[kRowBatch];
#pragma unroll
      for (int r = 0; r < kRowBatch; ++r) {
        const int row = a0 + r * groups;
        if (row < D) rows[r] = C::Load(S + static_cast<int64_t>(row) * D + b0);
      }
#pragma unroll
      for (int r = 0; r < kRowBatch; ++r) {
        const int row = a0 + r * groups;
        if (row < D) {
          const float ka = k_s[row], qa = q_s[row];
#pragma unroll
          for (int j = 0; j < kCols; ++j) {
            float& s = C::At(rows[r], j);
            s = fmaf(ka, v[j], lambda * s);
            acc[j] = fmaf(qa, s, acc[j]);
          }
          C::Store(S + static_cast<int64_t>(row) * D + b0, rows[r]);
        }
      }
    }
#pragma unroll
    for (int j = 0; j < kCols; ++j) partial[group * D + b0 + j] = acc[j];
  }
  __syncthreads();
  for (int b = threadIdx.x; b < D; b += blockDim.x) {
    float sum = 0.f;
    for (int g = 0; g < groups; ++g) sum += partial[g * D + b];
    out[b] = sum;
  }
}

template <int kCols>
cudaError_t Launch(const LightningDecodeArgs& a, cudaStream_t stream) {
  const int groups = RowGroups(a.head_dim, kCols);
  const int threads = (a.head_dim / kCols) * groups;
  const size_t smem = static_cast<size_t>(2 + groups) * a.head_dim * sizeof(float);
  const unsigned blocks = static_cast<unsigned>(a.num_seqs * a.num_heads);
  LightningDecodeKernel<kCols><<<blocks, threads, smem, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchLightningDecode(const LightningDecodeArgs& a, cudaStream_t stream) {
  const bool vec4 = a.head_dim % 4 == 0 && reinterpret_cast<uintptr_t>(a.state_pool) % 16 == 0;
  return vec4 ? Launch<4>(a, stream) : Launch<1>(a, stream);
}

}  // namespace mmx::kernels::cuda::internal
