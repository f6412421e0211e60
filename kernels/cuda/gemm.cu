// GEMV / small-batch GEMM with bf16 weights and fp32 activations, fp32 accumulation: the
// memory-bound decode case (kernels_cuda.h Gemm). Also the fp32 -> bf16 conversion that the
// cuBLAS path (kernels_cuda.cc) feeds its activations through.
//
// GemvBf16Vec8: one warp owns kRowsPerWarp consecutive output rows. Each lane reads 16-byte
// chunks (8 bf16 columns) of those rows, lane-interleaved so a warp reads 512 contiguous bytes
// of every row per step, and the matching 32 bytes of each token's activations (through the
// read-only cache: all warps of an SM read the same x, which at 8 tokens x 6144 columns is
// 192 KiB and mostly stays in L1/L2). The bf16 pairs are widened exactly (x << 16 and
// x & 0xffff0000). Each weight chunk is used for all tokens and each activation chunk for all
// the warp's rows, in registers. A butterfly shuffle sums the 32 lanes' partials at the end.
// Rows are spread over many small blocks so the last wave is short. No shared memory, no
// __syncthreads.
//
// GemvBf16Scalar: the same contract for any alignment and any column count (one warp per row,
// 2-byte loads). Used when cols is not a multiple of 8 or a pointer is not 16-byte aligned.
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"

namespace mmx::kernels::cuda::internal {
namespace {

constexpr int kRowsPerWarp = 4;
constexpr int kWarpsPerBlock = 4;
constexpr int kThreads = kWarpsPerBlock * kWarpSize;

__device__ __forceinline__ float LowBf16(uint32_t pair) { return __uint_as_float(pair << 16); }
__device__ __forceinline__ float HighBf16(uint32_t pair) { return __uint_as_float(pair & 0xffff0000u); }

// acc += dot(x[0..8), w[0..8)) with x as two float4 and w as 8 bf16 in a uint4.
__device__ __forceinline__ float Dot8(float4 a, float4 b, uint4 w, float acc) {
  acc = fmaf(a.x, LowBf16(w.x), acc);
  acc = fmaf(a.y, HighBf16(w.x), acc);
  acc = fmaf(a.z, LowBf16(w.y), acc);
  acc = fmaf(a.w, HighBf16(w.y), acc);
  acc = fmaf(b.x, LowBf16(w.z), acc);
  acc = fmaf(b.y, HighBf16(w.z), acc);
  acc = fmaf(b.z, LowBf16(w.w), acc);
  acc = fmaf(b.w, HighBf16(w.w), acc);
  return acc;
}

// kMaxT: register tile of tokens (1, 2, 4 or 8); num_tokens <= kMaxT.
// blockIdx.y: the K split (gridDim.y splits, each a range of the row's chunks); with more than
// one, the sums go to partials [split, token, row].
template <int kMaxT>
__global__ void __launch_bounds__(kThreads)
    GemvBf16Vec8(const float* __restrict__ x, int num_tokens, const uint16_t* __restrict__ w,
                 int64_t rows, int64_t cols, float* __restrict__ y, float* __restrict__ partials) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t row0 = (static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize) * kRowsPerWarp;
  if (row0 >= rows) return;  // the whole warp leaves together
  const int64_t num_rows = rows - row0 < kRowsPerWarp ? rows - row0 : kRowsPerWarp;
  const int64_t chunks = cols / 8;
  const uint4* wc = reinterpret_cast<const uint4*>(w) + row0 * chunks;
  const float4* xc = reinterpret_cast<const float4*>(x);  // chunk c of token t: xc[2 * (t * chunks + c)]
  float acc[kRowsPerWarp][kMaxT];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
    for (int t = 0; t < kMaxT; ++t) acc[r][t] = 0.f;

  const int64_t per_split = (chunks + gridDim.y - 1) / gridDim.y;
  const int64_t c_begin = static_cast<int64_t>(blockIdx.y) * per_split;
  const int64_t c_end = c_begin + per_split < chunks ? c_begin + per_split : chunks;
#pragma unroll 2
  for (int64_t c = c_begin + lane; c < c_end; c += kWarpSize) {
    uint4 wv[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) wv[r] = r < num_rows ? __ldg(wc + r * chunks + c) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int t = 0; t < kMaxT; ++t) {
      if (t < num_tokens) {
        const float4 a = __ldg(xc + 2 * (t * chunks + c));
        const float4 b = __ldg(xc + 2 * (t * chunks + c) + 1);
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) acc[r][t] = Dot8(a, b, wv[r], acc[r][t]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
    for (int t = 0; t < kMaxT; ++t) acc[r][t] = WarpSum(acc[r][t]);
  if (lane == 0) {
    float* out = gridDim.y > 1 ? partials + static_cast<int64_t>(blockIdx.y) * num_tokens * rows : y;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
      for (int t = 0; t < kMaxT; ++t)
        if (r < num_rows && t < num_tokens) out[t * rows + row0 + r] = acc[r][t];
  }
}

// y[i] = sum over the splits s, in order, of partials[s * n + i].
__global__ void SumSplitsKernel(const float* __restrict__ partials, int splits, int64_t n, float* __restrict__ y) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float s = partials[i];
    for (int k = 1; k < splits; ++k) s += partials[k * n + i];
    y[i] = s;
  }
}

__global__ void __launch_bounds__(kThreads)
    GemvBf16Scalar(const float* __restrict__ x, int num_tokens, const uint16_t* __restrict__ w,
                   int64_t rows, int64_t cols, float* __restrict__ y) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
  if (row >= rows) return;
  const uint16_t* wr = w + row * cols;
  float acc[kMaxGemvTokens];
#pragma unroll
  for (int t = 0; t < kMaxGemvTokens; ++t) acc[t] = 0.f;
  for (int64_t i = lane; i < cols; i += kWarpSize) {
    const float wi = __uint_as_float(static_cast<uint32_t>(wr[i]) << 16);
#pragma unroll
    for (int t = 0; t < kMaxGemvTokens; ++t)
      if (t < num_tokens) acc[t] = fmaf(x[t * cols + i], wi, acc[t]);
  }
#pragma unroll
  for (int t = 0; t < kMaxGemvTokens; ++t) {
    const float sum = WarpSum(acc[t]);
    if (lane == 0 && t < num_tokens) y[t * rows + row] = sum;
  }
}

__global__ void FloatToBf16Kernel(const float* __restrict__ x, int64_t n, uint16_t* __restrict__ out) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = __bfloat16_as_ushort(__float2bfloat16_rn(x[i]));
  }
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

unsigned BlocksFor(int64_t units, int64_t per_block) {
  return static_cast<unsigned>((units + per_block - 1) / per_block);
}

}  // namespace

int GemvBf16Splits(int64_t rows, int64_t cols) {
  if (cols % 8 != 0) return 1;
  const int64_t row_blocks = (rows + kRowsPerWarp * kWarpsPerBlock - 1) / (kRowsPerWarp * kWarpsPerBlock);
  const int64_t by_blocks = (256 + row_blocks - 1) / row_blocks;
  const int64_t by_columns = cols / 8 / 32;  // at least one chunk per lane per split
  int64_t splits = by_blocks < by_columns ? by_blocks : by_columns;
  if (splits > 32) splits = 32;
  return splits < 1 ? 1 : static_cast<int>(splits);
}

cudaError_t LaunchGemvBf16(const GemvArgs& a, cudaStream_t stream) {
  const bool vec8 = a.cols % 8 == 0 && Aligned16(a.w) && Aligned16(a.x);
  if (!vec8) {
    GemvBf16Scalar<<<BlocksFor(a.rows, kWarpsPerBlock), kThreads, 0, stream>>>(a.x, a.num_tokens, a.w, a.rows,
                                                                               a.cols, a.y);
    return cudaGetLastError();
  }
  const int splits = a.splits > 1 && a.partials != nullptr ? a.splits : 1;
  const dim3 grid(BlocksFor(a.rows, kRowsPerWarp * kWarpsPerBlock), static_cast<unsigned>(splits));
  if (a.num_tokens <= 1) {
    GemvBf16Vec8<1><<<grid, kThreads, 0, stream>>>(a.x, a.num_tokens, a.w, a.rows, a.cols, a.y, a.partials);
  } else if (a.num_tokens <= 2) {
    GemvBf16Vec8<2><<<grid, kThreads, 0, stream>>>(a.x, a.num_tokens, a.w, a.rows, a.cols, a.y, a.partials);
  } else if (a.num_tokens <= 4) {
    GemvBf16Vec8<4><<<grid, kThreads, 0, stream>>>(a.x, a.num_tokens, a.w, a.rows, a.cols, a.y, a.partials);
  } else {
    GemvBf16Vec8<kMaxGemvTokens><<<grid, kThreads, 0, stream>>>(a.x, a.num_tokens, a.w, a.rows, a.cols, a.y,
                                                                a.partials);
  }
  if (splits > 1) {
    const int64_t n = static_cast<int64_t>(a.num_tokens) * a.rows;
    const int64_t blocks = (n + 255) / 256;
    SumSplitsKernel<<<static_cast<unsigned>(blocks < 65536 ? blocks : 65536), 256, 0, stream>>>(a.partials, splits, n,
                                                                                                a.y);
  }
  return cudaGetLastError();
}

cudaError_t LaunchFloatToBf16(const float* x, int64_t n, uint16_t* out, cudaStream_t stream) {
  constexpr int kBlock = 256;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  FloatToBf16Kernel<<<static_cast<unsigned>(blocks < 65536 ? blocks : 65536), kBlock, 0, stream>>>(x, n, out);
  return cudaGetLastError();
}

}  // namespace mmx::kernels::cuda::internal
